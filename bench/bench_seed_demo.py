"""Speed of the demo-data generator against the configured database.

    python bench/bench_seed_demo.py [--customers 100000] [--seed 42] [--as-of 2025-06-30]
                                    [--chunk-size 50000] [--force]
                                    [--transactions-per-customer 48] [--service-events-per-customer 10]

Runs the same service as `manage.py seed_demo` (SQLite by default, DATABASE_URL for
PostgreSQL; the database must be migrated) and prints customers, transactions, service
events, seconds and rows per second, plus the peak memory of this process.
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
os.environ.setdefault("DEBUG", "false")  # no query log growing during the run
os.environ.setdefault("SECRET_KEY", "bench-only-not-secret")

import django

django.setup()

from django.db import connection

from cockpit.demo import (
    DEFAULT_CHUNK_SIZE,
    DEFAULT_SERVICE_EVENTS_PER_CUSTOMER,
    DEFAULT_TRANSACTIONS_PER_CUSTOMER,
    seed_demo,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--as-of", type=date.fromisoformat, default=date(2025, 6, 30))
    parser.add_argument("--chunk-size", type=int, default=DEFAULT_CHUNK_SIZE)
    parser.add_argument("--force", action="store_true", help="Add demo data next to real data.")
    parser.add_argument("--transactions-per-customer", type=float, default=DEFAULT_TRANSACTIONS_PER_CUSTOMER)
    parser.add_argument("--service-events-per-customer", type=float, default=DEFAULT_SERVICE_EVENTS_PER_CUSTOMER)
    args = parser.parse_args()

    print(f"database: {connection.vendor} {connection.settings_dict['NAME']}")
    started = time.perf_counter()
    report = seed_demo(
        customers=args.customers, seed=args.seed, as_of=args.as_of, force=args.force,
        chunk_size=args.chunk_size, progress=print,
        transactions_per_customer=args.transactions_per_customer,
        service_events_per_customer=args.service_events_per_customer,
    )
    seconds = time.perf_counter() - started
    rows = report.customers + report.transactions + report.service_events
    print(f"replaced demo customers: {report.replaced_customers:,}")
    for table in ("customers", "transactions", "service_events"):
        print(f"{table:<15} {getattr(report, table):>12,} rows {report.seconds[table]:8.1f} s "
              f"{report.rate(table):>12,.0f} rows/s")
    print(f"{'total':<15} {rows:>12,} rows {seconds:8.1f} s {rows / seconds:>12,.0f} rows/s "
          f"(including the replacement of old demo data)")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak memory: {peak:,.0f} MB")


if __name__ == "__main__":
    main()
