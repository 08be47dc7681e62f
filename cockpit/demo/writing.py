"""Writing the drawn chunks in bulk: preformatted COPY text on PostgreSQL, executemany on SQLite."""

from __future__ import annotations

import time
from contextlib import contextmanager

import numpy as np
from django.db import connection

from core.copy_text import block as copy_block
from core.copy_text import copy_into
from customers.models import Customer, Transaction
from services.models import ServiceEvent

from .company import CATEGORIES, CHANNELS, INDUSTRIES, REGIONS, SALES_CHANNELS, WRITE_BATCH

# --- writing -------------------------------------------------------------------------------
# PostgreSQL gets COPY text blocks built as byte matrices: each field is a fixed-width block of
# bytes, shorter values padded with NUL; dropping every NUL at once leaves the tab-separated
# rows. NUL cannot occur in text, so the padding never eats data.

_TAB = np.uint8(9)
_NEWLINE = np.uint8(10)
_DOT = np.uint8(46)


def _byte_table(strings: list[str]) -> np.ndarray:
    encoded = [s.encode() for s in strings]
    width = max((len(b) for b in encoded), default=1) or 1
    table = np.zeros((len(encoded), width), dtype=np.uint8)
    for row, raw in enumerate(encoded):
        table[row, : len(raw)] = np.frombuffer(raw, dtype=np.uint8)
    return table


def _digits(values: np.ndarray, width: int, *, zero_pad: bool = False) -> np.ndarray:
    """Decimal digits of non-negative integers, right-aligned; unpadded unless ``zero_pad``."""
    values = np.asarray(values, dtype=np.int64)
    powers = 10 ** np.arange(width - 1, -1, -1, dtype=np.int64)
    out = ((values[:, None] // powers) % 10 + 48).astype(np.uint8)
    if not zero_pad:
        leading = values[:, None] < powers
        leading[:, -1] = False
        out[leading] = 0
    return out


def _money(cents: np.ndarray, width: int = 12) -> np.ndarray:
    cents = np.asarray(cents, dtype=np.int64)
    if len(cents) and cents.min() < 0:
        raise ValueError("negative amounts are not generated")
    dot = np.full((len(cents), 1), _DOT, dtype=np.uint8)
    return np.hstack([_digits(cents // 100, width), dot, _digits(cents % 100, 2, zero_pad=True)])


def _ascii_strings(matrix: np.ndarray) -> list[str]:
    """Rows of a NUL-padded ASCII byte matrix as Python strings (for executemany)."""
    width = matrix.shape[1]
    return np.ascontiguousarray(matrix).view(f"S{width}").ravel().astype(f"U{width}").tolist()


def _batches(n: int):
    for start in range(0, n, WRITE_BATCH):
        yield slice(start, min(start + WRITE_BATCH, n))


class _Writer:
    def __init__(self, *, created_at):
        self.postgres = connection.vendor == "postgresql"
        self.created_at = created_at.isoformat(sep=" ") if self.postgres else \
            connection.ops.adapt_datetimefield_value(created_at)
        self.products = [p for c in CATEGORIES for p in c[4]]
        self.product_bytes = _byte_table(self.products)
        self.channel_bytes = _byte_table(SALES_CHANNELS)
        self.product_objects = np.array(self.products, dtype=object)
        self.channel_objects = np.array(SALES_CHANNELS, dtype=object)

    def _copy(self, table: str, columns: list[str], block: bytes) -> None:
        with connection.cursor() as cursor, copy_into(cursor, table, columns) as copy:
            copy.write(block)

    def _insert(self, table: str, columns: list[str], rows) -> None:
        sql = (f"INSERT INTO {connection.ops.quote_name(table)} ({', '.join(columns)}) "
               f"VALUES ({', '.join(['%s'] * len(columns))})")
        with connection.cursor() as cursor:
            cursor.executemany(sql, rows)

    def customers(self, people, *, ids, first_number, calendar, owners) -> None:
        columns = ["id", "number", "name", "industry", "region", "owner_id", "acquired_on",
                   "acquisition_channel", "referred_by_id", "status", "lost_on", "yearly_wallet",
                   "is_demo", "created_at", "updated_at"]
        channel = np.array([c.value for c, _ in CHANNELS], dtype=object)[people["channel"]]
        channel[people["referred"]] = Customer.Channel.REFERRAL.value
        referred_by = np.where(people["referred"], ids[np.maximum(people["referrer"], 0)], -1)
        status = np.where(people["lost"], Customer.Status.LOST.value, Customer.Status.ACTIVE.value)
        lost_on = calendar.text[calendar.index(people["lost_on"])]
        acquired = calendar.text[calendar.index(np.maximum(people["acquired"], calendar.low))]
        wallet = people["wallet"]
        industries = [name for name, _ in INDUSTRIES]
        regions = [name for name, _, _ in REGIONS]
        true = "t" if self.postgres else True
        rows = [
            (i, f"C{first_number + k:06d}", name, industries[ind], regions[reg], owner, acq, chan,
             ref if ref > 0 else None, st, lost if st == "lost" else None,
             (f"{w:.2f}" if self.postgres else w) if w == w else None, true, self.created_at, self.created_at)
            for k, (i, name, ind, reg, owner, acq, chan, ref, st, lost, w) in enumerate(zip(
                ids.tolist(), people["name"], people["industry"].tolist(), people["region"].tolist(),
                owners.tolist(), acquired.tolist(), channel.tolist(), referred_by.tolist(), status.tolist(),
                lost_on.tolist(), wallet.tolist(), strict=False))
        ]
        table = Customer._meta.db_table
        if self.postgres:
            with connection.cursor() as cursor, copy_into(cursor, table, columns) as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            self._insert(table, columns, rows)

    def transactions(self, lines, *, customer_ids, first_number, calendar) -> None:
        columns = ["customer_id", "external_id", "date", "revenue", "cost_of_goods", "product", "channel"]
        table = Transaction._meta.db_table
        n = len(customer_ids)
        # Recognisable and stable across runs: DEMO-<customer number>-<line of that customer>.
        for part in _batches(n):
            ids = customer_ids[part]
            external = np.hstack([
                np.tile(np.frombuffer(b"DEMO-", dtype=np.uint8), (len(ids), 1)),
                _digits(first_number + lines["customer"][part], 7, zero_pad=True),
                np.full((len(ids), 1), ord("-"), dtype=np.uint8),
                _digits(lines["line_no"][part], 5, zero_pad=True),
            ])
            day = calendar.index(lines["day"][part])
            if self.postgres:
                self._copy(table, columns, copy_block([
                    _digits(ids, 19), external, calendar.bytes[day], _money(lines["revenue"][part]),
                    _money(lines["cost"][part]), self.product_bytes[lines["product"][part]],
                    self.channel_bytes[lines["channel"][part]],
                ]))
            else:
                self._insert(table, columns, zip(
                    ids.tolist(), _ascii_strings(external), calendar.text[day].tolist(),
                    (lines["revenue"][part] / 100).tolist(), (lines["cost"][part] / 100).tolist(),
                    self.product_objects[lines["product"][part]].tolist(),
                    self.channel_objects[lines["channel"][part]].tolist(), strict=False,
                ))

    def events(self, events, *, customer_ids, type_ids, logged_by, calendar) -> None:
        columns = ["customer_id", "service_type_id", "date", "quantity", "note", "logged_by_id",
                   "created_at", "updated_at"]
        table = ServiceEvent._meta.db_table
        notes = events["notes"]
        created = self.created_at
        for part in _batches(len(customer_ids)):
            day = calendar.index(events["day"][part])
            note, number = events["note"][part], events["number"][part]
            if self.postgres:
                stamp = np.tile(np.frombuffer(created.encode(), dtype=np.uint8), (len(note), 1))
                self._copy(table, columns, copy_block([
                    _digits(customer_ids[part], 19), _digits(type_ids[part], 19), calendar.bytes[day],
                    _money(events["quantity"][part], 6),
                    np.hstack([notes.prefix_bytes[note], _digits(number, 7), notes.suffix_bytes[note]]),
                    _digits(logged_by[part], 19), stamp, stamp,
                ]))
            else:
                text = [f"{notes.prefix[t]}{k}{notes.suffix[t]}" for t, k in zip(note.tolist(), number.tolist(), strict=False)]
                self._insert(table, columns, zip(
                    customer_ids[part].tolist(), type_ids[part].tolist(), calendar.text[day].tolist(),
                    (events["quantity"][part] / 100).tolist(), text, logged_by[part].tolist(),
                    [created] * len(text), [created] * len(text), strict=False,
                ))


class _fast_sqlite_writes:
    """SQLite: skip fsync while seeding (outside a transaction only: the pragma needs that)."""

    def __enter__(self):
        self.previous = None
        if connection.vendor == "sqlite" and not connection.in_atomic_block:
            with connection.cursor() as cursor:
                self.previous = cursor.execute("PRAGMA synchronous").fetchone()[0]
                cursor.execute("PRAGMA synchronous = OFF")
        return self

    def __exit__(self, *exc):
        if self.previous is not None:
            with connection.cursor() as cursor:
                cursor.execute(f"PRAGMA synchronous = {int(self.previous)}")
        return False


@contextmanager
def _bulk_load(models_, *, say):
    """PostgreSQL: load ``models_``' tables without secondary indexes and foreign keys.

    Maintaining four indexes and a foreign-key trigger per row made COPY into the
    transaction table about 2.5 times slower than COPY into the bare table plus one index
    build per index at the end (2.4M rows: 41 s against 16 s). Only used inside the one
    transaction of a seed into a database holding nothing but demo data: the definitions
    are read from the catalogue and restored verbatim, and a failure rolls back the drops.
    Other sessions wait for the tables until the seed commits.
    """
    tables = [model._meta.db_table for model in models_]
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        # Unique and foreign-key constraints (the primary keys stay: other tables point at them).
        cursor.execute(
            "SELECT conrelid::regclass::text, conname, contype, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = ANY(%s::regclass[]) AND contype IN ('u', 'f') ORDER BY contype DESC, conname",
            [tables],
        )
        constraints = cursor.fetchall()
        # Plain indexes, not those that back a constraint.
        cursor.execute(
            "SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid) FROM pg_index i "
            "WHERE i.indrelid = ANY(%s::regclass[]) AND NOT i.indisprimary "
            "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid) ORDER BY 1",
            [tables],
        )
        indexes = cursor.fetchall()
        # A column's statistics target (ALTER INDEX ... SET STATISTICS, e.g. the customer
        # search's, customers migration 0007) is not part of the index's definition.
        cursor.execute(
            "SELECT a.attrelid::regclass::text, a.attnum, a.attstattarget FROM pg_attribute a "
            "JOIN pg_index i ON i.indexrelid = a.attrelid WHERE i.indrelid = ANY(%s::regclass[]) "
            "AND NOT i.indisprimary AND a.attnum > 0 AND a.attstattarget >= 0",
            [tables],
        )
        statistics = [row for row in cursor.fetchall() if row[0] in dict(indexes)]
        for table, name, _, _ in reversed(constraints):  # foreign keys first
            cursor.execute(f"ALTER TABLE {quote(table)} DROP CONSTRAINT {quote(name)}")
        for name, _ in indexes:
            cursor.execute(f"DROP INDEX {quote(name)}")
    yield
    clock = time.perf_counter()
    with connection.cursor() as cursor:
        for _, definition in indexes:
            cursor.execute(definition)
        for name, column, target in statistics:
            cursor.execute(f"ALTER INDEX {quote(name)} ALTER COLUMN {int(column)} SET STATISTICS {int(target)}")
        # Unique constraints before the foreign keys (ordered by contype: 'u' > 'f').
        for table, name, _, definition in constraints:
            cursor.execute(f"ALTER TABLE {quote(table)} ADD CONSTRAINT {quote(name)} {definition}")
        # Fresh statistics, so the first queries on the new data get sensible plans.
        cursor.execute("ANALYZE " + ", ".join(quote(t) for t in tables))
    say(f"indexes and constraints rebuilt in {time.perf_counter() - clock:.1f} s")
