"""Import throughput: a generated transactions CSV (1M rows by default) into the configured database.

    DATABASE_URL=postgres://... python bench/bench_import.py [--rows 1000000] [--customers 10000] [--runs 3]

Creates the bench customers once (numbers BENCH-...), writes the CSV in German Excel style
(semicolon, decimal comma, DD.MM.YYYY) to a temp file, and per run: removes the bench
transactions, imports the file (all rows new), imports it again (nothing changes). Prints
rows/s of each import, the medians over the runs, and the process's peak memory. The imported
rows stay in the database; `--cleanup` removes the bench customers and their transactions.
"""

import argparse
import os
import random
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cvm.settings")

import django

django.setup()

from django.core.management import call_command
from django.db import connection

from cockpit import importing
from customers.models import Customer, Transaction


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def ensure_customers(count: int) -> list[str]:
    numbers = [f"BENCH-{i:07d}" for i in range(count)]
    existing = set(Customer.objects.filter(number__startswith="BENCH-").values_list("number", flat=True))
    Customer.objects.bulk_create(
        [Customer(number=n, name=f"Bench customer {n}") for n in numbers if n not in existing], batch_size=5000
    )
    return numbers


def write_csv(path: Path, rows: int, numbers: list[str]) -> None:
    rng = random.Random(42)
    with open(path, "w", encoding="utf-8", newline="") as handle:
        handle.write("external_id;customer_number;date;revenue;cost_of_goods;product;channel\n")
        lines = []
        for i in range(rows):
            revenue = rng.randint(1000, 5_000_000)  # cents
            cost = revenue * rng.randint(40, 90) // 100
            lines.append(
                f"BENCH-{i:08d};{rng.choice(numbers)};{rng.randint(1, 28):02d}.{rng.randint(1, 12):02d}.{rng.randint(2015, 2025)};"
                f"{revenue // 100:,}".replace(",", ".") + f",{revenue % 100:02d};"
                f"{cost // 100},{cost % 100:02d};P{rng.randint(1, 40)};{rng.choice(['web', 'field', 'phone'])}\n"
            )
            if len(lines) >= 50_000:
                handle.writelines(lines)
                lines = []
        handle.writelines(lines)


def remove_bench_transactions() -> None:
    Transaction.objects.filter(external_id__startswith="BENCH-").delete()
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:  # a first import should meet a tidy table, as in real life
            cursor.execute(f"VACUUM ANALYZE {Transaction._meta.db_table}")


def run(path: Path, label: str) -> float:
    last = [0.0]

    def progress(done: int, seconds: float) -> None:
        if seconds - last[0] >= 2:
            last[0] = seconds
            print(f"  {done:>10,} rows  {done / seconds:>9,.0f} rows/s", flush=True)

    result = importing.import_file(kind="transactions", path=path, progress=progress)
    assert result.ok, result.errors[:5]
    print(
        f"{label}: {result.rows:,} rows in {result.seconds:.1f} s = {result.rows_per_second:,.0f} rows/s "
        f"({result.new:,} new, {result.updated:,} updated, {result.unchanged:,} unchanged); peak RSS {peak_mb():,.0f} MB"
    )
    return result.rows_per_second


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--cleanup", action="store_true")
    args = parser.parse_args()
    call_command("migrate", verbosity=0)
    print(f"database: {connection.vendor}; peak RSS after setup {peak_mb():,.0f} MB")
    numbers = ensure_customers(args.customers)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "transactions.csv"
        started = time.perf_counter()
        write_csv(path, args.rows, numbers)
        print(f"wrote {args.rows:,} rows ({path.stat().st_size / 1e6:,.0f} MB) in {time.perf_counter() - started:.1f} s")
        first, again = [], []
        for number in range(1, args.runs + 1):
            remove_bench_transactions()
            first.append(run(path, f"run {number}, first import"))
            again.append(run(path, f"run {number}, same file again"))
    print(f"median of {args.runs}: first import {statistics.median(first):,.0f} rows/s, "
          f"same file again {statistics.median(again):,.0f} rows/s; peak RSS {peak_mb():,.0f} MB; "
          f"load average {os.getloadavg()[0]:.1f}")
    if args.cleanup:
        Customer.objects.filter(number__startswith="BENCH-").delete()


if __name__ == "__main__":
    main()
