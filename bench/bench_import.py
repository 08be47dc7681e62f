"""Import throughput: a generated transactions CSV (1M rows by default) into the configured database.

    DATABASE_URL=postgres://... python bench/bench_import.py [--rows 1000000] [--customers 10000] [--runs 3]

Creates the bench customers once (numbers BENCH-...), writes the CSV in German Excel style
(semicolon, decimal comma, DD.MM.YYYY) to a temp file, and per run: removes the bench
transactions, imports the file (all rows new), imports it again (nothing changes). Prints
rows/s of each import, the medians over the runs, and the process's peak memory. The imported
rows stay in the database; `--cleanup` removes the bench customers and their transactions.

On PostgreSQL each run also measures the floors, back to back with the imports because the
machine's speed drifts: the file's bytes COPYed as they are into an unindexed table of text
columns, and the same rows already converted COPYed into a fresh copy of the transactions
table, once with its indexes and foreign key and once bare. Each import is printed next to
them with the ratio.
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
from django.db import connection, transaction

from cockpit import importing
from core.copy_text import copy_into
from customers.models import Customer, Transaction


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


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


FLOOR_TABLE = f"bench_import_floor_{os.getpid()}"  # two benches may run at once


def _timed(sql_steps) -> float:
    started = time.perf_counter()
    with connection.cursor() as cursor:
        for step in sql_steps:
            step(cursor)
    return time.perf_counter() - started


def floor_raw_copy(path: Path) -> float:
    """Seconds to COPY the file's bytes as they are into an unindexed table of text columns."""

    def load(cursor):
        cursor.execute(f"DROP TABLE IF EXISTS {FLOOR_TABLE}")
        cursor.execute(f"CREATE TABLE {FLOOR_TABLE} (" + ", ".join(f"c{k} text" for k in range(7)) + ")")
        with open(path, "rb") as handle, copy_into(cursor, FLOOR_TABLE, [f"c{k}" for k in range(7)],
                                                   options="WITH (FORMAT csv, HEADER true, DELIMITER ';')") as copy:
            while block := handle.read(1 << 20):
                copy.write(block)

    seconds = _timed([load])
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE {FLOOR_TABLE}")
    return seconds


TRANSACTION_COLUMNS = ["external_id", "customer_id", "date", "revenue", "cost_of_goods", "product", "channel"]


def converted_rows() -> bytes:
    """The imported bench rows as COPY text, in id order."""
    raw = connection.cursor().cursor
    with raw.copy(f"COPY (SELECT {', '.join(TRANSACTION_COLUMNS)} FROM {Transaction._meta.db_table} "
                  f"WHERE external_id LIKE 'BENCH-%%' ORDER BY id) TO STDOUT") as copy:
        return b"".join(bytes(block) for block in copy)


def floor_converted_copy(*, indexed: bool, data: bytes | None = None, extras: list[str] | None = None) -> float:
    """Seconds to COPY the imported rows, already converted, into a fresh copy of the
    transactions table: with its indexes and the foreign key to customers, or bare (then
    with `extras`, SQL templates for one index or constraint each, if given)."""
    table = Transaction._meta.db_table
    columns = TRANSACTION_COLUMNS
    data = converted_rows() if data is None else data

    def create(cursor):
        cursor.execute(f"DROP TABLE IF EXISTS {FLOOR_TABLE}")
        # Bare still computes the generated cents columns, as the real table does.
        including = "INCLUDING ALL" if indexed else "INCLUDING DEFAULTS INCLUDING IDENTITY INCLUDING GENERATED"
        cursor.execute(f"CREATE TABLE {FLOOR_TABLE} (LIKE {table} {including})")
        if indexed:
            cursor.execute(f"ALTER TABLE {FLOOR_TABLE} ADD FOREIGN KEY (customer_id) REFERENCES {Customer._meta.db_table} (id)")
        for extra in extras or []:
            cursor.execute(extra.format(table=FLOOR_TABLE))

    def load(cursor):
        with copy_into(cursor, FLOOR_TABLE, columns) as copy:
            for start in range(0, len(data), 1 << 20):
                copy.write(data[start:start + (1 << 20)])

    with transaction.atomic():
        _timed([create])
        seconds = _timed([load])
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE {FLOOR_TABLE}")
    return seconds


# What each index and the foreign key of the transactions table add to a bulk load.
SINGLE_EXTRAS = {
    "primary key (id)": "ALTER TABLE {table} ADD PRIMARY KEY (id)",
    "unique (external_id)": "ALTER TABLE {table} ADD UNIQUE (external_id)",
    "index (customer_id, date) + sums": "CREATE INDEX ON {table} (customer_id, date) "
                                        "INCLUDE (revenue_cents, cost_of_goods_cents, product)",
    "index (date)": "CREATE INDEX ON {table} (date)",
    "foreign key to customers": "ALTER TABLE {table} ADD FOREIGN KEY (customer_id) REFERENCES customers_customer (id)",
}


def index_costs() -> None:
    data = converted_rows()
    rows = data.count(b"\n")
    bare = floor_converted_copy(indexed=False, data=data)
    print(f"index costs, {rows:,} converted rows COPYed into a fresh table; bare: {bare:.2f} s; "
          f"load average {load_average()}")
    for name, extra in SINGLE_EXTRAS.items():
        seconds = floor_converted_copy(indexed=False, data=data, extras=[extra])
        print(f"  bare + {name:<32} {seconds:7.2f} s (+{seconds - bare:.2f} s); load average {load_average()}")
    everything = floor_converted_copy(indexed=True, data=data)
    again = floor_converted_copy(indexed=False, data=data)
    print(f"  with all of them {everything:.2f} s; bare again {again:.2f} s; load average {load_average()}")


def index_sizes() -> str:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexrelid::regclass::text, pg_relation_size(indexrelid) FROM pg_index "
            "WHERE indrelid = %s::regclass ORDER BY 1", [Transaction._meta.db_table]
        )
        return ", ".join(f"{name} {size / 1e6:,.0f} MB" for name, size in cursor.fetchall())


def run(path: Path, label: str, floor: float | None = None) -> float:
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
        + (f"; {result.seconds / floor:.1f}x the raw COPY floor ({floor:.2f} s)" if floor else "")
    )
    if result.steps:
        print("  steps (s): " + ", ".join(f"{name} {seconds:.2f}" for name, seconds in result.steps.items())
              + f"; file COPYed as it is: {result.copied_as_is}")
    return result.rows_per_second


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--cleanup", action="store_true")
    parser.add_argument("--index-costs", action="store_true",
                        help="only: what each index of the transactions table adds to loading the imported rows")
    args = parser.parse_args()
    if args.index_costs:
        index_costs()
        return
    call_command("migrate", verbosity=0)
    print(f"database: {connection.vendor}; peak RSS after setup {peak_mb():,.0f} MB")
    numbers = ensure_customers(args.customers)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "transactions.csv"
        started = time.perf_counter()
        write_csv(path, args.rows, numbers)
        print(f"wrote {args.rows:,} rows ({path.stat().st_size / 1e6:,.0f} MB) in {time.perf_counter() - started:.1f} s")
        first, again, raw_floors, indexed_floors, bare_floors = [], [], [], [], []
        postgres = connection.vendor == "postgresql"
        for number in range(1, args.runs + 1):
            remove_bench_transactions()
            raw = floor_raw_copy(path) if postgres else None
            if raw:
                raw_floors.append(raw)
                print(f"run {number}, floor: the file's bytes COPYed into an unindexed text table: {raw:.2f} s "
                      f"= {args.rows / raw:,.0f} rows/s; load average {load_average()}")
            first.append(run(path, f"run {number}, first import", raw))
            again.append(run(path, f"run {number}, same file again", raw))
            if postgres:
                indexed, bare = floor_converted_copy(indexed=True), floor_converted_copy(indexed=False)
                indexed_floors.append(indexed)
                bare_floors.append(bare)
                print(f"run {number}, floor: the converted rows COPYed into a fresh transactions table: "
                      f"with its indexes and foreign key {indexed:.2f} s = {args.rows / indexed:,.0f} rows/s, "
                      f"bare {bare:.2f} s = {args.rows / bare:,.0f} rows/s; load average {load_average()}")
        if postgres:
            print(f"indexes of {Transaction._meta.db_table}: {index_sizes()}")
    median = statistics.median
    print(f"median of {args.runs}: first import {median(first):,.0f} rows/s, "
          f"same file again {median(again):,.0f} rows/s; peak RSS {peak_mb():,.0f} MB; "
          f"load average {load_average()}")
    if raw_floors:
        print(f"median floors: raw COPY of the file {args.rows / median(raw_floors):,.0f} rows/s, converted rows into "
              f"the indexed table {args.rows / median(indexed_floors):,.0f} rows/s, into the bare table "
              f"{args.rows / median(bare_floors):,.0f} rows/s; first import reaches "
              f"{median(first) / (args.rows / median(indexed_floors)):.0%} of the indexed-table floor, "
              f"the same file again {median(again) / (args.rows / median(indexed_floors)):.0%}")
    if args.cleanup:
        Customer.objects.filter(number__startswith="BENCH-").delete()


if __name__ == "__main__":
    main()
