"""The nightly run's one pass over the transactions: per customer and day, the sums it needs.

Every transaction input of a run (as-of and back-test summaries, holdout, revenue by period,
population fences) is computed from this one frame (selectors.run_transaction_inputs).

PostgreSQL does the grouping along the (customer_id, date) index and sends the days packed:
one COPY row per customer, whose only field is the customer's days as fixed-width binary
records, so the client reads about 1M messages instead of 12M rows and parses blocks of
records straight into numpy. Two connections read two halves of the customer ids at once
(both cores work), in one snapshot. SQLite runs the plain GROUP BY.
"""

import datetime as dt
import itertools
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import numpy as np
import pandas as pd
from django.db import connection, transaction

from core import copy_text
from customers.models import Transaction

# Per (customer, day) up to a date: the sums of the purchase rows (revenue > 0) and of the
# other rows (returns, credit notes, zero rows), and how many rows each day has.
DAY_COLUMNS = [
    "customer_id",
    "day",
    "purchase_revenue",
    "purchase_cost",
    "other_revenue",
    "other_cost",
    "rows",
    "other_rows",
]
EPOCH = dt.date(1970, 1, 1)
_FRAME_DTYPES = {
    "customer_id": np.int64,
    "day": np.int32,
    "purchase_revenue": np.float64,
    "purchase_cost": np.float64,
    "other_revenue": np.float64,
    "other_cost": np.float64,
    "rows": np.int32,
    "other_rows": np.int32,
}
# One day as PostgreSQL packs it (int4send / float8send: big-endian, no padding), 48 bytes.
_DAY_RECORD = np.dtype(
    [
        ("customer_id", ">i4"),
        ("day", ">i4"),
        ("purchase_revenue", ">f8"),
        ("purchase_cost", ">f8"),
        ("other_revenue", ">f8"),
        ("other_cost", ">f8"),
        ("rows", ">i4"),
        ("other_rows", ">i4"),
    ]
)
_COPY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00"
_COPY_HEADER = 19  # signature (11), flags (4), header extension length (4, zero)
_COPY_TRAILER = b"\xff\xff"  # a field count of -1
_ROW_PREFIX = 6  # a COPY row: field count (2), then the one field's length (4) and bytes

# Parse the received days every ~8 MB (170k days): small enough to keep the buffers out of
# the peak, large enough that numpy's per-block work does not count.
BLOCK_BYTES = 8 * 1024 * 1024
# Connections reading at once, each a range of customer ids. At 1M customers on 2 cores, two
# parts took 37 s where one took 74 s (under the same load); a parallel plan inside one
# query (Gather Merge) 61 s, because its leader still finalises and sends every day.
SCAN_PARTS = 2
_SNAPSHOT_ID = re.compile(r"[0-9A-F]+-[0-9A-F]+(-[0-9]+)?")


def day_sql(*, day: str = "date", amount: str = "", count: str = "", where: str = "") -> str:
    """The grouped query, one row per (customer, day), in DAY_COLUMNS' order (``rows`` is
    named all_rows: a keyword). It sums the amounts in whole cents (Transaction.revenue_cents),
    exact; PostgreSQL adds them as float8 (``amount``), which is exact below 2^53 cents and
    faster than its numeric sums. The engine works in floats."""
    table = Transaction._meta.db_table
    return f"""
        SELECT customer_id, {day} AS day,
               COALESCE(SUM(revenue_cents{amount}) FILTER (WHERE revenue_cents > 0), 0) / 100.0 AS purchase_revenue,
               COALESCE(SUM(cost_of_goods_cents{amount}) FILTER (WHERE revenue_cents > 0), 0) / 100.0 AS purchase_cost,
               COALESCE(SUM(revenue_cents{amount}) FILTER (WHERE revenue_cents <= 0), 0) / 100.0 AS other_revenue,
               COALESCE(SUM(cost_of_goods_cents{amount}) FILTER (WHERE revenue_cents <= 0), 0) / 100.0 AS other_cost,
               COUNT(*){count} AS all_rows, COUNT(*) FILTER (WHERE revenue_cents <= 0){count} AS other_rows
        FROM {table} WHERE date <= %s{where} GROUP BY customer_id, date
    """


def _packed_sql(*, until: dt.date, lower: int | None, upper: int | None) -> str:
    """One row per customer with ids in [lower, upper): its days as _DAY_RECORD bytes. The
    outer GROUP BY takes the inner one's (customer_id, date) order, so no sort is added and
    each customer's days come in date order (checked after reading, not relied on)."""
    where = (f" AND customer_id >= {int(lower)}" if lower is not None else "") + (
        f" AND customer_id < {int(upper)}" if upper is not None else ""
    )
    days = day_sql(day=f"(date - DATE '{EPOCH.isoformat()}')::int4", amount="::float8", count="::int4", where=where)
    days = days.replace("%s", f"DATE '{until.isoformat()}'")  # COPY takes no parameters; a date is safe
    return f"""
        SELECT string_agg(int4send(customer_id::int4) || int4send(day) || float8send(purchase_revenue)
                          || float8send(purchase_cost) || float8send(other_revenue) || float8send(other_cost)
                          || int4send(all_rows) || int4send(other_rows), ''::bytea)
        FROM ({days}) AS days GROUP BY customer_id
    """


def transaction_days(*, until: dt.date, parts: int | None = None, block_bytes: int | None = None,
                     received: Callable[[], None] | None = None) -> pd.DataFrame:
    """Every (customer, day) with a transaction up to ``until``, one grouped scan of the
    transactions: DAY_COLUMNS, ``day`` in days since 1970-01-01, sorted by customer and day.

    ``parts`` (PostgreSQL): connections reading at once (SCAN_PARTS); inside a transaction
    one, since other connections would not see its uncommitted rows. ``block_bytes``: how
    much is received before it is parsed (BLOCK_BYTES). ``received`` is called once the
    server has sent every day, before this process joins them into the frame (at 1M
    customers 1.5-2 s in which the server is idle)."""
    if connection.vendor == "postgresql":
        parts = 1 if connection.in_atomic_block else (SCAN_PARTS if parts is None else parts)
        frame = _read_postgresql(until=until, parts=parts, block_bytes=block_bytes or BLOCK_BYTES, received=received)
    else:
        with connection.cursor() as cursor:
            cursor.execute(day_sql(), [until])
            records = cursor.fetchall()
        if received is not None:
            received()
        frame = pd.DataFrame.from_records(records, columns=DAY_COLUMNS)
        frame["day"] = (
            pd.to_datetime(frame["day"]).to_numpy().astype("datetime64[D]").astype(np.int64)
            if len(frame)
            else np.zeros(0, np.int64)
        )
        frame = frame.astype(_FRAME_DTYPES)
    customer, day = frame["customer_id"].to_numpy(), frame["day"].to_numpy()
    ordered = len(frame) < 2 or bool(
        np.all((customer[1:] > customer[:-1]) | ((customer[1:] == customer[:-1]) & (day[1:] > day[:-1])))
    )
    if not ordered:
        frame = frame.iloc[np.lexsort((day, customer))].reset_index(drop=True)
    return frame


def _read_postgresql(*, until: dt.date, parts: int, block_bytes: int,
                     received: Callable[[], None] | None) -> pd.DataFrame:
    bounds = [None, *_customer_splits(parts), None] if parts > 1 else [None, None]
    sqls = [
        _packed_sql(until=until, lower=lower, upper=upper) for lower, upper in zip(bounds[:-1], bounds[1:], strict=True)
    ]
    if len(sqls) == 1:
        read = [_read_part(sqls[0], block_bytes)]
    else:
        # The other connections import this transaction's snapshot: all parts see the same
        # transactions, as one query would.
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            cursor.execute("SELECT pg_export_snapshot()")
            snapshot = cursor.fetchone()[0]
            with ThreadPoolExecutor(max_workers=len(sqls) - 1) as pool:
                others = [pool.submit(_read_part_in_snapshot, sql, snapshot, block_bytes) for sql in sqls[1:]]
                read = [_read_part(sqls[0], block_bytes)] + [other.result() for other in others]
    if received is not None:
        received()
    # Column by column, dropping each column's blocks once joined: the peak holds the blocks
    # and one joined column, not two copies of the frame.
    columns = {}
    for name in DAY_COLUMNS:
        blocks = [block for part in read for block in part.pop(name)]
        columns[name] = (
            np.concatenate(blocks, dtype=_FRAME_DTYPES[name]) if blocks else np.zeros(0, dtype=_FRAME_DTYPES[name])
        )
        del blocks
    return pd.DataFrame(columns, copy=False)


def _customer_splits(parts: int) -> list[int]:
    """Customer ids cutting the transactions into ``parts`` ranges of about equal rows: the
    planner's histogram of transactions.customer_id (rows, not customers), else equal
    steps between the smallest and largest id. Balance only: any cut gives the same days."""
    table = Transaction._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT histogram_bounds::text::bigint[] FROM pg_stats "
            "WHERE schemaname = current_schema() AND tablename = %s AND attname = 'customer_id'",
            [table],
        )
        found = cursor.fetchone()
        histogram = found[0] if found and found[0] else None
        if histogram and len(histogram) > parts:
            cuts = [histogram[round(k * (len(histogram) - 1) / parts)] for k in range(1, parts)]
        else:
            cursor.execute(f"SELECT MIN(customer_id), MAX(customer_id) FROM {table}")
            low, high = cursor.fetchone()
            if low is None:
                return []
            cuts = [low + (high - low + 1) * k // parts for k in range(1, parts)]
    return sorted(set(cuts))


def _read_part_in_snapshot(sql: str, snapshot: str, block_bytes: int) -> dict[str, list[np.ndarray]]:
    """_read_part on this thread's own connection, in the snapshot exported by the caller."""
    if not _SNAPSHOT_ID.fullmatch(snapshot):
        raise ValueError(f"unexpected snapshot id {snapshot!r}")
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            cursor.execute(f"SET TRANSACTION SNAPSHOT '{snapshot}'")  # takes no parameters; checked above
            return _read_part(sql, block_bytes)
    finally:
        connection.close()  # this thread's connection: nobody else would close it


def _read_part(sql: str, block_bytes: int) -> dict[str, list[np.ndarray]]:
    """Run one packed query by binary COPY; its days as blocks of native arrays per column.

    Each customer's records arrive whole in one message (PostgreSQL sends one CopyData
    message per row), so a block never splits a customer or a day."""
    columns: dict[str, list[np.ndarray]] = {name: [] for name in DAY_COLUMNS}
    pending = bytearray()

    def parse():
        block = np.frombuffer(pending, dtype=_DAY_RECORD)
        for name in DAY_COLUMNS:
            columns[name].append(block[name].astype(_DAY_RECORD[name].newbyteorder("=")))
        del block  # releases the buffer, so it can be cleared
        pending.clear()

    with (
        _day_scan_settings(),
        connection.cursor() as cursor,
        cursor.cursor.copy(f"COPY ({sql}) TO STDOUT (FORMAT BINARY)") as copy,
    ):
        messages = copy_text.copy_messages(copy)
        first = next(messages, b"")  # the file header comes in front of the first row
        if bytes(first[:11]) != _COPY_SIGNATURE or bytes(first[15:19]) != b"\0\0\0\0":
            raise ValueError("unexpected COPY header")
        for message in itertools.chain([memoryview(first)[_COPY_HEADER:]], messages):
            if len(message) > len(_COPY_TRAILER):  # a customer's row: at least one 48-byte day
                pending += message[_ROW_PREFIX:]
                if len(pending) >= block_bytes:
                    parse()
    if pending:
        parse()
    return columns


@contextmanager
def _day_scan_settings():
    """PostgreSQL, for this one query: aggregate along the (customer_id, date) index, which
    delivers the groups in order, instead of hashing some 12M (customer, day) groups
    (spilled to disk; see selectors._sorted_aggregation); no JIT compilation, and no
    parallel plan (the parts are the parallelism)."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT set_config('enable_hashagg', 'off', true), set_config('jit', 'off', true), "
            "set_config('max_parallel_workers_per_gather', '0', true)"
        )
        yield
