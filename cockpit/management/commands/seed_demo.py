"""Fill the database with a reproducible demo company (see cockpit/demo/)."""

import time
from datetime import date

from django.core.management.base import BaseCommand, CommandError

from cockpit.demo import (
    DEFAULT_CHUNK_SIZE,
    DEFAULT_SERVICE_EVENTS_PER_CUSTOMER,
    DEFAULT_TRANSACTIONS_PER_CUSTOMER,
    DEMO_PASSWORD,
    DemoDataConflict,
    seed_demo,
    seed_value_history,
)


class Command(BaseCommand):
    help = (
        "Replace the demo data with a reproducible industrial supplier: customers, three years of "
        "purchases and free services, and demo logins. Refuses when real data exists unless --force."
    )

    def add_arguments(self, parser):
        parser.add_argument("--customers", type=int, default=2000, help="Number of customers (default 2000).")
        parser.add_argument("--seed", type=int, default=42, help="Random seed (default 42).")
        parser.add_argument("--as-of", type=date.fromisoformat, default=None, metavar="YYYY-MM-DD",
                            help="Last day of the history (default today).")
        parser.add_argument("--years", type=int, default=3, help="Years of history (default 3).")
        parser.add_argument("--force", action="store_true",
                            help="Add demo data even though non-demo data exists (never deletes it).")
        parser.add_argument("--if-empty", action="store_true",
                            help="Do nothing when the database already holds customers.")
        parser.add_argument("--history-months", type=int, default=12,
                            help="Value the company at monthly as-of dates over this many months, ending at "
                                 "the as-of date (default 12; 0 for none).")
        parser.add_argument("--chunk-size", type=int, default=DEFAULT_CHUNK_SIZE, help="Customers per chunk.")
        parser.add_argument("--transactions-per-customer", type=float, default=DEFAULT_TRANSACTIONS_PER_CUSTOMER,
                            help="Approximate mean transaction lines per customer over three years "
                                 f"(default {DEFAULT_TRANSACTIONS_PER_CUSTOMER:g}); scales the purchase rate.")
        parser.add_argument("--service-events-per-customer", type=float,
                            default=DEFAULT_SERVICE_EVENTS_PER_CUSTOMER,
                            help="Approximate mean free services per customer over three years "
                                 f"(default {DEFAULT_SERVICE_EVENTS_PER_CUSTOMER:g}).")

    def handle(self, *args, **options):
        if options["customers"] < 1 or options["years"] < 1 or options["chunk_size"] < 1:
            raise CommandError("--customers, --years and --chunk-size must be at least 1.")
        if options["history_months"] < 0:
            raise CommandError("--history-months cannot be negative.")
        if options["transactions_per_customer"] <= 0 or options["service_events_per_customer"] < 0:
            raise CommandError("--transactions-per-customer must be positive, --service-events-per-customer "
                               "not negative.")
        verbose = options["verbosity"] > 1
        try:
            report = seed_demo(
                customers=options["customers"], seed=options["seed"], as_of=options["as_of"],
                years=options["years"], force=options["force"], if_empty=options["if_empty"],
                chunk_size=options["chunk_size"],
                transactions_per_customer=options["transactions_per_customer"],
                service_events_per_customer=options["service_events_per_customer"],
                progress=self.stdout.write if verbose else None,
            )
        except DemoDataConflict as error:
            raise CommandError(str(error)) from error
        if report.skipped:
            self.stdout.write("The database already holds customers; nothing seeded (--if-empty).")
            return

        if report.replaced_customers:
            self.stdout.write(f"Replaced {report.replaced_customers:,} demo customers.")
        self.stdout.write(self.style.SUCCESS(
            f"Demo data from {report.first_day} to {report.as_of}: {report.customers:,} customers, "
            f"{report.transactions:,} transactions, {report.service_events:,} service events "
            f"in {report.seconds['total']:.1f} s."
        ))
        for table, label in (("customers", "customers"), ("transactions", "transactions"),
                             ("service_events", "service events")):
            self.stdout.write(
                f"  {label:<15} {getattr(report, table):>12,} rows {report.seconds[table]:8.1f} s "
                f"{report.rate(table):>12,.0f} rows/s"
            )
        if options["history_months"]:
            self.stdout.write(f"Valuing at {options['history_months']} monthly as-of dates…")
            started = time.perf_counter()
            runs = seed_value_history(as_of=report.as_of, months=options["history_months"], progress=self.stdout.write)
            self.stdout.write(self.style.SUCCESS(f"{len(runs)} valuation runs in {time.perf_counter() - started:.1f} s."))
        self.stdout.write(f"Logins (password {DEMO_PASSWORD}):")
        for login in report.logins:
            self.stdout.write(f"  {login.username:<8} {login.full_name:<18} {login.role.value}")
