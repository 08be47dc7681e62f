"""Disk and load time of the value history on PostgreSQL: one run's N value rows loaded four
ways, each measured in the same run as the floor (the same rows COPYed into a plain table
without any index):

  fresh   the nightly path (valuation/history.py): COPY into a fresh table without indexes,
          build the full index set, attach it as the run's partition
  attach  CREATE TABLE ... PARTITION OF first (foreign keys checked row by row), COPY, then
          build the same indexes
  old     the layout before partitioning: one table with the model's 14 indexes
  thinned the fresh partition after thinning: the customer index only

then the two-year total under the thinning rule (every run of 90 days, month-end snapshots
for the rest of the 730 days).

    DATABASE_URL=postgres://.../cvm_history_big python bench/bench_history.py --customers 1000000

Needs a migrated PostgreSQL database; it adds N synthetic customers when fewer are there
(--keep leaves its tables for a look). Value rows are synthetic (generate_series with hashed
figures and cents, a third with service costs by type): sizes depend on row widths, which
match the nightly run's columns, not on the figures.
"""

import argparse
import datetime as dt
import io
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cvm.settings")

import django

django.setup()

from django.db import connection

from core.copy_text import copy_into
from valuation import history
from valuation.models import ValuationRun

PARENT = history.PARENT
FLOOR = "bench_history_floor"
OLD = "bench_history_old"
COLUMNS = [
    "run_id",
    "customer_id",
    "revenue_lifetime",
    "margin_lifetime",
    "revenue_window",
    "margin_window",
    "profit_after_services",
    "share_of_supply",
    "abc_class",
    "purchase_days",
    "p_alive",
    "expected_purchases",
    "clv",
    "clv_low",
    "clv_high",
    "clv_to_infinity",
    "median_lifetime_weeks",
    "basis",
    "is_thin",
    "referral_value",
    "value_to_customer",
    "service_count",
    "service_hours",
    "value_to_by_type",
    "segment",
    "recency_weeks",
    "age_weeks",
    "mean_repeat_margin",
]
SEGMENTS = "ARRAY['uncritical','problem','potential','investment']"
DAILY_RUNS, YEARS_DAYS = 90, 730
MONTH_ENDS = round((YEARS_DAYS - DAILY_RUNS) / (365.2425 / 12))  # 640 days: 21 month-end snapshots


def ensure_customers(cursor, n: int) -> None:
    cursor.execute("SELECT COUNT(*) FROM customers_customer")
    have = cursor.fetchone()[0]
    if have >= n:
        return
    started = time.perf_counter()
    cursor.execute(
        """
        INSERT INTO customers_customer (number, name, industry, region, acquisition_channel, status, is_demo,
                                        created_at, updated_at)
        SELECT 'H' || lpad(g::text, 9, '0'), 'History ' || g, 'Industry ' || (g %% 8), 'Region ' || (g %% 6),
               'direct_sales', 'active', false, now(), now()
        FROM generate_series(%s, %s) g
    """,
        [have + 1, n],
    )
    print(f"customers added: {n - have:,} in {time.perf_counter() - started:.1f} s", flush=True)


def value_rows(cursor, run_id: int, n: int) -> bytes:
    """The COPY text of N customers' value rows, made once and loaded into every layout."""
    sql = f"""
        COPY (SELECT %s, c.id, h.m * 3 + 0.37, h.m + 0.21, h.m * 0.3 + 0.55, h.m * 0.1 + 0.13, h.m * 0.1 - h.v + 0.09,
                     CASE WHEN h.x %% 4 = 0 THEN NULL ELSE (h.x %% 1000) / 1000.0 END,
                     CASE WHEN h.m > 40000 THEN 'A' WHEN h.m > 15000 THEN 'B' ELSE 'C' END, 1 + h.x %% 40,
                     h.p, h.p * 4.2, h.m * 0.2 + 0.47, h.m * 0.1 + 0.11, h.m * 0.4 + 0.83, h.m * 0.5 + 0.29,
                     52.0 + h.x %% 300, 'model', h.x %% 9 = 0, 0, h.v + 0.25, h.x %% 9, (h.x %% 40) * 0.25,
                     CASE WHEN h.x %% 3 = 0 THEN jsonb_build_object('hotline', (h.v * 0.4)::numeric(12, 2),
                                                                   'onsite', (h.v * 0.6)::numeric(12, 2))
                          ELSE '{{}}'::jsonb END,
                     ({SEGMENTS})[1 + (h.x / 7) %% 4], (h.x %% 100)::float / 7, 100 + (h.x %% 50)::float / 3,
                     150.0 + (h.x %% 997) / 13.0
              FROM customers_customer c,
                   LATERAL (SELECT abs(hashint8(c.id)) AS x) r,
                   LATERAL (SELECT (r.x %% 50000)::numeric AS m, ((r.x / 50000) %% 2000)::numeric AS v,
                                   (r.x %% 1000) / 1000.0 AS p, r.x AS x) h
              ORDER BY c.id LIMIT %s) TO STDOUT
    """
    buffer = io.BytesIO()
    raw = cursor.cursor
    with raw.copy(raw.mogrify(sql, [run_id, n])) as copy:
        for block in copy:
            buffer.write(block)
    return buffer.getvalue()


def copy_rows(cursor, table: str, data: bytes) -> float:
    started = time.perf_counter()
    with copy_into(cursor, table, COLUMNS) as copy:
        for k in range(0, len(data), 1 << 20):
            copy.write(data[k : k + (1 << 20)])
    connection.commit()
    return time.perf_counter() - started


def timed(cursor, sqls: list[str]) -> float:
    started = time.perf_counter()
    for sql in sqls:
        cursor.execute(sql)
    connection.commit()
    return time.perf_counter() - started


def size(cursor, table: str) -> tuple[int, int, int]:
    """(total, heap with TOAST, indexes) in bytes."""
    cursor.execute(
        "SELECT pg_total_relation_size(%s::regclass), pg_table_size(%s::regclass), pg_indexes_size(%s::regclass)",
        [table] * 3,
    )
    return cursor.fetchone()


def old_layout_sql(table: str) -> list[str]:
    """The value table as it was before partitioning: primary key, unique (run, customer),
    the history index and the model's list indexes (migrations 0001-0008)."""
    return [
        f"CREATE TABLE {table} (LIKE {PARENT} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)",
        f"ALTER TABLE {table} ADD PRIMARY KEY (id)",
        f"ALTER TABLE {table} ADD UNIQUE (run_id, customer_id)",
        f"CREATE INDEX {table}_history ON {table} (customer_id, run_id)",
        *(f"CREATE INDEX {table}_{suffix} ON {table} ({cols})" for suffix, cols in history.list_index_definitions()),
        f"ALTER TABLE {table} ADD FOREIGN KEY (run_id) REFERENCES valuation_valuationrun (id) "
        "DEFERRABLE INITIALLY DEFERRED",
        f"ALTER TABLE {table} ADD FOREIGN KEY (customer_id) REFERENCES customers_customer (id) "
        "DEFERRABLE INITIALLY DEFERRED",
    ]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--keep", action="store_true", help="Leave the bench's runs and tables in place.")
    parser.add_argument("--skip-old", action="store_true", help="Skip loading the old 14-index table.")
    args = parser.parse_args()
    if connection.vendor != "postgresql" or not history.is_partitioned():
        sys.exit("Set DATABASE_URL to a migrated PostgreSQL database (the value table partitioned by run).")
    n = args.customers
    print(f"load average before: {os.getloadavg()}", flush=True)
    with connection.cursor() as cursor:
        ensure_customers(cursor, n)
        connection.commit()
        for table in (FLOOR, OLD):
            cursor.execute(f"DROP TABLE IF EXISTS {table}")
        runs = [
            ValuationRun.objects.create(
                as_of=dt.date(2026, 6, 30) - dt.timedelta(days=k), stage="bench", status=ValuationRun.Status.COMPLETED
            )
            for k in range(2)
        ]
        fresh, attach = runs
        started = time.perf_counter()
        data = value_rows(cursor, fresh.pk, n)
        rows = data.count(b"\n")
        print(
            f"rows made: {rows:,} ({len(data) / rows:.0f} bytes of COPY text each) in "
            f"{time.perf_counter() - started:.1f} s",
            flush=True,
        )
        # The same rows for the second run: run_id is each line's first field.
        other = f"{attach.pk}\t".encode() + data[len(f"{fresh.pk}\t") :].replace(
            f"\n{fresh.pk}\t".encode(), f"\n{attach.pk}\t".encode()
        )

        # floor: the same rows into a plain table without any index
        cursor.execute(f"CREATE TABLE {FLOOR} (LIKE {PARENT} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)")
        connection.commit()
        floor_copy = copy_rows(cursor, FLOOR, data)
        floor_size = size(cursor, FLOOR)

        # the nightly path: fresh table, COPY, indexes, attach
        history.open_run(run_id=fresh.pk)
        connection.commit()
        fresh_copy = copy_rows(cursor, history.load_table(run_id=fresh.pk), data)
        started = time.perf_counter()
        history.close_run(run_id=fresh.pk)
        connection.commit()
        fresh_index = time.perf_counter() - started
        full_size = size(cursor, history.partition_name(fresh.pk))

        # created as a partition first, indexes after the load
        name = history.partition_name(attach.pk)
        timed(cursor, [f'CREATE TABLE "{name}" PARTITION OF {PARENT} FOR VALUES IN ({attach.pk})'])
        attach_copy = copy_rows(cursor, name, other)
        attach_index = timed(cursor, [*history.full_index_sql(name, f"cv_r{attach.pk}"), f'ANALYZE "{name}"'])

        old_copy = old_size = None
        if not args.skip_old:
            timed(cursor, old_layout_sql(OLD))
            old_copy = copy_rows(cursor, OLD, data)
            old_size = size(cursor, OLD)

        started = time.perf_counter()
        history.thin_indexes(run_id=fresh.pk)
        connection.commit()
        thin_seconds = time.perf_counter() - started
        thin_size = size(cursor, history.partition_name(fresh.pk))

        print(f"\n=== {rows:,} value rows of one run (load average {os.getloadavg()[0]:.1f}) ===")
        print(f"{'layout':<46}{'total MB':>10}{'bytes/row':>11}{'heap B/row':>11}{'index B/row':>12}")
        for label, (total, heap, indexes) in (
            ("floor: plain table, no index", floor_size),
            ("recent run: partition, full indexes", full_size),
            ("thinned run: partition, customer index only", thin_size),
            *((("old layout: one table, 14 indexes", old_size),) if old_size else ()),
        ):
            print(f"{label:<46}{total / 1e6:>10.1f}{total / rows:>11.0f}{heap / rows:>11.0f}{indexes / rows:>12.0f}")

        print("\nload (seconds)                                 COPY   indexes+attach   total   x floor COPY")
        print(f"floor: COPY into a plain unindexed table     {floor_copy:6.1f}{'':>17}{floor_copy:8.1f}{1:10.1f}")
        total = fresh_copy + fresh_index
        print(
            f"fresh unindexed table, index, attach          {fresh_copy:6.1f}{fresh_index:17.1f}{total:8.1f}"
            f"{total / floor_copy:10.1f}"
        )
        total = attach_copy + attach_index
        print(
            f"partition first, COPY, then index             {attach_copy:6.1f}{attach_index:17.1f}{total:8.1f}"
            f"{total / floor_copy:10.1f}"
        )
        if old_copy is not None:
            print(
                f"old: COPY into the table with 14 indexes      {old_copy:6.1f}{'':>17}{old_copy:8.1f}"
                f"{old_copy / floor_copy:10.1f}"
            )
        print(f"thinning the run's indexes: {thin_seconds:.2f} s")

        per_million = 1_000_000 / rows
        full_1m, thin_1m, floor_1m = (s[0] * per_million / 1e6 for s in (full_size, thin_size, floor_size))
        kept = DAILY_RUNS + MONTH_ENDS
        full_runs = 2  # the latest and the one before keep every list index (CVM_VALUATION_FULL_INDEX_RUNS)
        two_years = full_runs * full_1m + (kept - full_runs) * thin_1m
        scale = "measured" if rows == 1_000_000 else f"scaled from {rows:,} rows"
        print(f"\n=== two years at 1M customers ({scale}) ===")
        print(
            f"per kept run: recent (full indexes) {full_1m:.0f} MB, thinned {thin_1m:.0f} MB; floor {floor_1m:.0f} MB"
        )
        print(f"runs kept: {DAILY_RUNS} daily (90 days) + {MONTH_ENDS} month-end snapshots (640 days / 30.44) = {kept}")
        print(
            f"total: {full_runs} x {full_1m:.0f} MB + {kept - full_runs} x {thin_1m:.0f} MB = "
            f"{two_years / 1000:.1f} GB  (target < 50 GB; floor {kept} x {floor_1m:.0f} MB = "
            f"{kept * floor_1m / 1000:.1f} GB)"
        )
        print(
            f"per nightly run averaged over two years: {two_years / 1000:.1f} GB / {YEARS_DAYS} nights = "
            f"{two_years / YEARS_DAYS:.0f} MB (target <= 150 MB)"
        )
        if old_size:
            old_1m = old_size[0] * per_million / 1e6
            print(
                f"before (every run kept, 14 indexes): {YEARS_DAYS} x {old_1m:.0f} MB = {YEARS_DAYS * old_1m / 1000:.0f} GB"
            )
        print(f"load average after: {os.getloadavg()}")

        if not args.keep:
            for table in (FLOOR, OLD):
                cursor.execute(f"DROP TABLE IF EXISTS {table}")
            history.drop_runs([r.pk for r in runs])
            connection.commit()


if __name__ == "__main__":
    main()
