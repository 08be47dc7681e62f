"""A large data set for the scale benches, built once into the configured database.

    DATABASE_URL=postgres://.../cvm_1m python bench/make_scale_data.py
        [--customers 1000000] [--as-of 2025-06-30] [--seed 42] [--return-share 0.02]

Customers, transactions and service events come from the demo generator (cockpit.demo:
numpy draws written by COPY into the tables without their secondary indexes, which are
rebuilt once at the end): BG/NBD-like buying (Gamma-distributed purchase rates, geometric
drop-out after each purchase, Gamma-distributed spend per customer), owners, regions and
industries as in the demo, the demo's service types and their standard-cost history. The
default volume (20 transactions and 1.8 service events per customer on average) gives about
20M transactions and 2M service events for 1M customers, the size issue 14 measures at.

On top, ``--return-share`` of the purchase lines get a credit note (a negative row of 20-100 %
of the line, 1-60 days later, never after as-of), written by one INSERT ... SELECT, so the
input rules for returns are exercised at scale. On PostgreSQL the transactions and service
events are then rewritten in date order, as a daily feed and the service log leave them.

Prints the time of each part, the row counts, the peak memory of this process and the load
average. The database must be migrated and hold no data other than demo data.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cvm.settings")
os.environ.setdefault("DEBUG", "false")
os.environ.setdefault("SECRET_KEY", "bench-only-not-secret")

import django

django.setup()

from django.db import connection

from cockpit.demo import seed_demo
from customers.models import Customer, Transaction
from services.models import ServiceEvent


def add_returns(*, as_of: date, share: float, seed: int) -> int:
    """Credit notes for a pseudo-random ``share`` of the purchase lines, in one statement.

    The choice and the amounts hash the line's id (no random() state: the same data set gives
    the same returns)."""
    table = Transaction._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {table} (customer_id, external_id, date, revenue, cost_of_goods, product, channel)
            SELECT customer_id, 'RET-' || id, LEAST(date + 1 + (hashint %% 60), %s::date),
                   -ROUND(revenue * (0.2 + (hashint %% 81) / 100.0), 2),
                   -ROUND(cost_of_goods * (0.2 + (hashint %% 81) / 100.0), 2), product, channel
            FROM (SELECT t.*, abs(hashtext(t.id::text || %s)) AS hashint FROM {table} t
                  WHERE t.revenue > 0 AND t.date <= %s) AS lines
            WHERE hashint %% 10000 < %s
            """,
            [as_of, str(seed), as_of, int(round(share * 10000))],
        )
        added = cursor.rowcount
        cursor.execute(f"ANALYZE {table}")
    return added


def put_in_date_order() -> None:
    """Rewrite the transactions and the service events in date order, as a daily feed and
    the service log leave them (the generator writes them customer by customer). Reads by
    customer then find each customer's rows spread over the whole table, as they would in
    production: at 1M customers the nightly one pass by a plain (customer, date) index and
    the rows took 19.6-22.1 s so, 14.4-15.2 s with the rows in customer order (one
    connection, EXPLAIN ANALYZE). The service events' order made no difference to the run."""
    with connection.cursor() as cursor:
        cursor.execute("SET maintenance_work_mem = '1GB'")
        cursor.execute(f"CLUSTER {Transaction._meta.db_table} USING transaction_date_idx")
        cursor.execute(f"CLUSTER {ServiceEvent._meta.db_table} USING service_event_date_idx")
        cursor.execute("RESET maintenance_work_mem")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--as-of", type=date.fromisoformat, default=date(2025, 6, 30))
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--chunk-size", type=int, default=100_000)
    parser.add_argument("--transactions-per-customer", type=float, default=20.0)
    parser.add_argument("--service-events-per-customer", type=float, default=1.8)
    parser.add_argument("--return-share", type=float, default=0.02)
    args = parser.parse_args()
    print(f"database: {connection.vendor} {connection.settings_dict['NAME']}, load average {os.getloadavg()[0]:.2f}")

    started = time.perf_counter()
    report = seed_demo(
        customers=args.customers,
        seed=args.seed,
        as_of=args.as_of,
        chunk_size=args.chunk_size,
        transactions_per_customer=args.transactions_per_customer,
        service_events_per_customer=args.service_events_per_customer,
        progress=print,
    )
    seeded = time.perf_counter() - started
    print(
        f"generated and loaded in {seeded:.1f} s (indexes rebuilt at the end): {report.customers:,} customers, "
        f"{report.transactions:,} transactions, {report.service_events:,} service events"
    )
    returns_started = time.perf_counter()
    returns = add_returns(as_of=args.as_of, share=args.return_share, seed=args.seed) if args.return_share > 0 else 0
    print(f"returns: {returns:,} credit notes in {time.perf_counter() - returns_started:.1f} s")
    if connection.vendor == "postgresql":
        ordered_started = time.perf_counter()
        put_in_date_order()
        print(f"transactions and service events put in date order in {time.perf_counter() - ordered_started:.1f} s")
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")
    total = time.perf_counter() - started
    print(
        f"data: {Customer.objects.count():,} customers, {Transaction.objects.count():,} transactions, "
        f"{ServiceEvent.objects.count():,} service events"
    )
    print(
        f"total {total:.1f} s; peak memory {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MiB; "
        f"load average {os.getloadavg()[0]:.2f}"
    )


if __name__ == "__main__":
    main()
