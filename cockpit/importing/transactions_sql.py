"""Transactions on PostgreSQL: the file's text into COPY, every check as one set-based query, one merge."""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.utils.translation import gettext as _

from core.copy_text import copy_into
from core.csvfile import (
    detect_decimal_comma,
    normalise_header,
)
from core.csvfile import open_text as _open_text
from core.planner import planner_settings
from core.plausibility import EARLIEST_DATE, MAX_AMOUNT, latest_plausible_date
from customers.models import Customer, Transaction

from .checks import amount_problems, date_problems, too_long
from .kinds import SPECS
from .results import CHUNK_ROWS, MAX_ERRORS_SHOWN, PREVIEW_ROWS, ImportResult, RowError
from .staging import _fetch, _report_duplicates

# --- transactions on PostgreSQL: the checks in SQL -------------------------------------------------
# A million rows are checked faster by one set-based query than by pandas in Python: the raw,
# stripped text goes into a work table by COPY, then one scan converts every row, lists every
# problem and finds the row already stored under the id; an UPDATE and an INSERT ... SELECT
# write what differs and what is new. The rules and texts are those of the pandas checks.

IMPORT_WORK_MEM = "256MB"
# The file's ids are looked up in the table's index when it holds this many times the file's rows.
INDEX_LOOKUP_RATIO = 4
TRANSACTION_LIMITS = {"external_id": 64, "customer_number": 32, "product": 100, "channel": 50}
SQL_AMOUNT = r"'^[-+]?[0-9]+([.][0-9]{1,2})?$'"
SQL_NUMBER = r"'^[-+]?[0-9]+([.][0-9]+)?$'"
# What the pandas check removes from odd amounts: inner spaces, currency signs, apostrophes.
SQL_AMOUNT_NOISE = "'[[:space:]\u00a0\u202f\u2009€$'']|EUR'"


def sql_fence(query: str) -> str:
    """A column that keeps a subquery apart, so that its regexes and casts run once per row,
    as OFFSET 0 would; unlike OFFSET 0 it lets PostgreSQL split the scan over parallel workers
    (a volatile column stops the planner from merging the subquery into the outer query, and
    clock_timestamp() is parallel safe). Nothing reads it."""
    return f"clock_timestamp() AS {query}_fence"


class WorkTables:
    """The import's tables: the file as COPY read it, its raw rows, its dates, its parsed rows.

    Unlogged tables named for this import, not temporary ones: PostgreSQL's parallel workers
    cannot read a session's temporary tables, and the checks' one scan took 1.5 s instead of
    2.7 s on two cores with them (1M rows). They are created and dropped inside the import's
    transaction, so no other session ever sees them and a failure or a dry run leaves none
    behind. Where the database user may not create tables they are temporary, as before.
    """

    def __init__(self, cursor):
        cursor.execute("SELECT has_schema_privilege(current_schema(), 'CREATE')")
        self.temporary = not cursor.fetchone()[0]
        tag = uuid.uuid4().hex[:12]
        self.file, self.raw, self.dates, self.parsed = (f"cvm_import_{name}_{tag}" for name in ("file", "raw", "dates", "parsed"))

    def create(self, cursor, name: str, definition: str, params=None) -> int:
        """CREATE TABLE name <definition> (a column list, or AS SELECT ...); the rows it holds."""
        if self.temporary:
            columns, as_select = (definition, "") if definition.lstrip().startswith("(") else ("", definition)
            cursor.execute(f"CREATE TEMPORARY TABLE {name} {columns} ON COMMIT DROP {as_select}", params)
        else:
            cursor.execute(f"CREATE UNLOGGED TABLE {name} {definition}", params)
        return cursor.rowcount

    def drop(self, cursor, *names: str) -> None:
        cursor.execute(f"DROP TABLE IF EXISTS {', '.join(names or (self.file, self.raw, self.dates, self.parsed))}")


def _sql_date_table(cursor, work: WorkTables, *, earliest: dt.date) -> None:
    """The file's distinct date texts, each parsed once, with its problem (NULL when fine).

    A file has a few thousand distinct dates, so this is far cheaper than parsing per row.
    Each step is MATERIALIZED: inlined, every use of a column repeated the regexes and casts
    behind it (55 µs a date, 0.2 s for a 10,000-row file's 3,464 dates; 15 ms so).
    """
    days_in_month = """CASE WHEN m = 2 THEN CASE WHEN mod(y, 4) = 0 AND (mod(y, 100) <> 0 OR mod(y, 400) = 0)
                                               THEN 29 ELSE 28 END
                            WHEN m IN (4, 6, 9, 11) THEN 30 ELSE 31 END"""
    work.create(cursor, work.dates, f"""AS
        WITH parts AS MATERIALIZED (
            SELECT text,
                   CASE WHEN text ~ '^[0-9]{{4}}-[0-9]{{1,2}}-[0-9]{{1,2}}$' THEN string_to_array(text, '-')::int[] END AS iso,
                   CASE WHEN text ~ '^[0-9]{{1,2}}[.][0-9]{{1,2}}[.][0-9]{{4}}$' THEN string_to_array(text, '.')::int[] END AS german
            FROM (SELECT DISTINCT date AS text FROM {work.raw}) d
        ), ymd AS MATERIALIZED (
            SELECT text, iso IS NOT NULL OR german IS NOT NULL AS shaped,
                   COALESCE(iso[1], german[3]) AS y, COALESCE(iso[2], german[2]) AS m, COALESCE(iso[3], german[1]) AS d
            FROM parts
        ), parsed AS MATERIALIZED (
            SELECT text, shaped,
                   CASE WHEN y >= 1 AND m BETWEEN 1 AND 12 AND d BETWEEN 1 AND {days_in_month} THEN make_date(y, m, d) END AS value
            FROM ymd
        )
        SELECT text, value,
               CASE WHEN text = '' THEN 'required' WHEN NOT shaped THEN 'format' WHEN value IS NULL THEN 'calendar'
                    WHEN value < %s THEN 'early' WHEN value > %s THEN 'late' END AS problem
        FROM parsed
    """, [earliest, latest_plausible_date()])
    cursor.execute(f"ANALYZE {work.dates}")


def _sql_amount(column: str, *, decimal_comma: bool, required: bool, minimum: float, maximum: float) -> tuple[str, str, str, str]:
    """SQL for an amount column of the raw table, in steps so that each regex and each cast
    runs once per row: (its plain text over the raw row ``r``, as ``<column>_plain``; its
    shape, the plain text or NULL when it has no amount's shape, over the row ``a``, which
    adds the plain text to ``r``; its value and its problem or NULL, over ``p``, which holds the
    raw text, the plain text as ``<column>_shaped`` and that text as a number as ``<column>_number``)."""
    # Drop thousands separators and make the decimal separator a point (translate drops what has no partner).
    plain = f"a.{column}_plain"

    def translated(text: str) -> str:
        return f"translate({text}, ',.', '.')" if decimal_comma else f"translate({text}, ',', '')"

    def cleaned(text: str) -> str:
        return f"regexp_replace({text}, {SQL_AMOUNT_NOISE}, '', 'g')"

    # CASE stops at the first match: a clean amount costs one regex, noise (currency signs,
    # inner spaces) a second one. What the second removes is what the pandas check removes.
    # The plain text is made once a row (it was made twice, in the test and as the value).
    shaped = f"""CASE WHEN a.{column} = '' THEN '' WHEN {plain} ~ {SQL_AMOUNT} THEN {plain}
                      WHEN {cleaned(plain)} ~ {SQL_AMOUNT} THEN {cleaned(plain)} END"""
    text, number = f"p.{column}_shaped", f"p.{column}_number"
    value = f"""CASE WHEN {text} = '' THEN 0
                     WHEN {number} >= {minimum!r} AND {number} <= {maximum!r} THEN {number}::numeric(14, 2) END"""
    problem = f"""CASE WHEN {text} = '' THEN {"'required'" if required else 'NULL'}
                       WHEN {text} IS NULL THEN CASE WHEN {cleaned(translated(f"p.{column}"))} ~ {SQL_NUMBER}
                                                     THEN 'decimals' ELSE 'number' END
                       WHEN {number} < {minimum!r} THEN 'below' WHEN {number} > {maximum!r} THEN 'above' END"""
    return translated(f"r.{column}"), shaped, value, problem


def _import_transactions_in_sql(cursor, batches: Callable[[], Iterator[list[list]]], path: Path,
                                result: ImportResult, on_batch) -> None:
    # The hash joins and the sorts over a million rows fit in 256 MB; with the default 4 MB
    # (64 MB for an index) they spill to disk and take several times longer.
    with planner_settings(work_mem=f"'{IMPORT_WORK_MEM}'", maintenance_work_mem=f"'{IMPORT_WORK_MEM}'"):
        clock = time.perf_counter()
        work = WorkTables(cursor)
        result.copied_as_is = _stage_file_by_copy(cursor, work, path, result)
        if result.copied_as_is:
            on_batch()
        else:
            _stage_rows(cursor, work, batches(), result, on_batch)
        result.steps["stage"] = time.perf_counter() - clock
        if result.columns:
            _check_and_merge_transactions_in_sql(cursor, work, result)
        work.drop(cursor)


# --- the file's bytes straight into COPY ------------------------------------------------------------
# Python's csv module and PostgreSQL's COPY read the same plain files alike: no quotes, one
# record per line. For those files the bytes go to the server as they are, in 1 MB blocks,
# and the server splits, strips and checks them; Python never looks at a row. Any other
# file (quotes, records over several lines, empty lines, rows of the wrong width, bytes the
# encoding does not define) is read row by row by read_rows as before, so every problem
# keeps its message. The test is cheap and exact: COPY must accept the file, and the number
# of rows it read must equal the number of lines after the header.

COPY_BLOCK = 1 << 20
COPY_ENCODINGS = {"utf-8": "UTF8", "utf-8-sig": "UTF8", "cp1252": "WIN1252"}
# What str.strip() removes: every character Python calls whitespace.
PYTHON_WHITESPACE = "".join(c for c in map(chr, range(0x110000)) if c.isspace())


class _NotPlain(Exception):
    """The file needs the row-by-row reader (its COPY has been rolled back)."""


def _plain_header(path: Path, result: ImportResult) -> list[str] | None:
    """The normalised header when the file can go to COPY as it is, else None."""
    delimiter = result.delimiter
    if len(delimiter) != 1 or not delimiter.isascii() or delimiter in '"\r\n':
        return None  # COPY takes one byte, never the quote or a line end
    with _open_text(path, result.encoding) as handle:
        first = handle.readline()
    if not first.strip() or '"' in first:
        return None  # the header is not on line 1, or is quoted: line numbers need the reader
    header = [normalise_header(cell) for cell in next(csv.reader([first], delimiter=delimiter))]
    spec = SPECS[result.kind]
    if any(name not in header for name in spec.required) or len(set(header)) != len(header):
        return None  # read_rows reports these
    return header


def _stage_file_by_copy(cursor, work: WorkTables, path: Path, result: ImportResult) -> bool:
    """Stage a plain file with one COPY of its bytes; False (nothing staged) for any other file."""
    header = _plain_header(path, result)
    if header is None:
        return False
    fields = [f"f{k}" for k in range(len(header))]
    options = (f"WITH (FORMAT csv, HEADER true, DELIMITER {_sql_text(result.delimiter)}, "
               f"ENCODING '{COPY_ENCODINGS[result.encoding]}', FORCE_NOT_NULL ({', '.join(fields)}))")
    lines = 0
    try:
        with transaction.atomic():
            # Line 1 is the header: the n-th record is line n + 1.
            work.create(cursor, work.file, f"""(line integer GENERATED ALWAYS AS IDENTITY (START 2),
                                                {', '.join(f'{f} text' for f in fields)})""")
            with open(path, "rb") as handle, copy_into(cursor, work.file, fields, options=options) as copy:
                if result.encoding == "utf-8-sig":
                    handle.read(len(codecs.BOM_UTF8))
                padded = _PaddingFinder(result.encoding, result.delimiter)
                last = b"\n"
                while block := handle.read(COPY_BLOCK):
                    if b'"' in block or b"\0" in block:
                        raise _NotPlain
                    lines += block.count(b"\n")
                    last = block[-1:]
                    padded.feed(block)
                    copy.write(block)
                lines += last != b"\n"
                padded.feed(b"\n")
            if cursor.rowcount != lines - 1:
                raise _NotPlain
    except (_NotPlain, DatabaseError, connection.Database.Error):
        return False
    _stage_from_file(cursor, work, header, fields, result, strip=padded.found)
    return True


class _PaddingFinder:
    """Whether any field of the file starts or ends with whitespace (so needs stripping).

    A whitespace character at a field's edge sits next to the delimiter or a line end; the
    file is searched for those byte pairs with bytes.find (memchr speed), and only for the
    characters that occur in it at all. Stripping in SQL costs more than the COPY itself,
    so the usual file without padding skips it.
    """

    def __init__(self, encoding: str, delimiter: str):
        codec = "cp1252" if encoding == "cp1252" else "utf-8"
        self.spaces = []
        for char in PYTHON_WHITESPACE:
            if char in "\r\n" or char == delimiter:
                continue
            try:
                self.spaces.append(char.encode(codec))
            except UnicodeEncodeError:
                continue  # no byte of this encoding decodes to it
        self.edges = [delimiter.encode(), b"\n", b"\r"]
        self.found = False
        self.tail = b""

    def feed(self, block: bytes) -> None:
        if self.found:
            return
        text = self.tail + block
        for space in self.spaces:
            if space in text and any(edge + space in text or space + edge in text for edge in self.edges):
                self.found = True
                return
        self.tail = block[-4:]


def _sql_text(value: str) -> str:
    return "E'" + value.replace("\\", "\\\\").replace("'", "\\'").replace("\t", "\\t") + "'"


def _stage_from_file(cursor, work: WorkTables, header: list[str], fields: list[str], result: ImportResult, *,
                     strip: bool) -> None:
    """The raw table the checks read, from the file's table: the spec's columns, stripped as
    read_rows strips them (only if some field needs it), without the lines read_rows skips
    (only separators and spaces)."""
    spaces = _sql_text(PYTHON_WHITESPACE)

    def stripped(name: str) -> str:
        return f"btrim({name}, {spaces})" if strip else name

    columns = SPECS["transactions"].columns
    picked = [stripped(fields[header.index(name)]) if name in header else "''" for name in columns]
    blank = " AND ".join(f"{stripped(f)} = ''" for f in fields)
    result.rows = work.create(cursor, work.raw, f"""AS
        SELECT line, {', '.join(f'{sql} AS {name}' for sql, name in zip(picked, columns, strict=True))}
        FROM {work.file} WHERE NOT ({blank})
    """)
    cursor.execute(f"SELECT line, {', '.join(fields)} FROM {work.file} WHERE NOT ({blank}) ORDER BY line LIMIT {PREVIEW_ROWS}")
    result.preview = [list(row[1:]) for row in cursor.fetchall()]
    work.drop(cursor, work.file)
    result.columns = header
    # As the row-by-row path: the decimal separator is judged on the first CHUNK_ROWS rows.
    cursor.execute(f"""SELECT DISTINCT revenue FROM (SELECT revenue FROM {work.raw} ORDER BY line
                       LIMIT {CHUNK_ROWS}) r WHERE revenue <> ''""")
    amounts = pd.Series([row[0] for row in cursor.fetchall()], dtype=object)
    result.decimal_comma = detect_decimal_comma(amounts, delimiter=result.delimiter)


def _stage_rows(cursor, work: WorkTables, batches: Iterator[list[list]], result: ImportResult, on_batch) -> None:
    columns = SPECS["transactions"].columns
    work.create(cursor, work.raw, f"(line integer, {', '.join(f'{c} text' for c in columns)})")
    # FORCE_NOT_NULL: an empty field is the empty string, as in the file, not NULL.
    revenue_at = 1 + columns.index("revenue")
    options = f"WITH (FORMAT csv, FORCE_NOT_NULL ({', '.join(columns)}))"
    with copy_into(cursor, work.raw, ["line", *columns], options=options) as copy:
        for batch in batches:
            if not result.rows:
                amounts = pd.Series(list({row[revenue_at] for row in batch} - {""}), dtype=object)
                result.decimal_comma = detect_decimal_comma(amounts, delimiter=result.delimiter)
            result.rows += len(batch)
            buffer = io.StringIO()
            csv.writer(buffer, lineterminator="\n").writerows(batch)
            copy.write(buffer.getvalue())
            on_batch()


def _check_and_merge_transactions_in_sql(cursor, work: WorkTables, result: ImportResult) -> None:
    table, customers = Transaction._meta.db_table, Customer._meta.db_table
    clock = time.perf_counter()
    # The work tables are never auto-analysed; without statistics the planner hashes the
    # million raw rows instead of the few thousand dates, and spills.
    cursor.execute(f"ANALYZE {work.raw}")
    _sql_date_table(cursor, work, earliest=EARLIEST_DATE)
    amount_limits = {"minimum": -MAX_AMOUNT, "maximum": MAX_AMOUNT}
    amounts = {
        name: _sql_amount(name, decimal_comma=result.decimal_comma, required=required, **amount_limits)
        for name, required in (("revenue", True), ("cost_of_goods", False))
    }

    def text_problem(name: str, required: bool, extra: str = "") -> str:
        empty = f"WHEN p.{name} = '' THEN 'required'" if required else ""
        return f"CASE {empty} WHEN length(p.{name}) > {TRANSACTION_LIMITS[name]} THEN 'long' {extra} END"

    problems = {
        "external_id": text_problem("external_id", True),
        "customer_number": text_problem("customer_number", True, "WHEN p.customer_id IS NULL THEN 'unknown'"),
        "date": "p.date_problem",
        "revenue": amounts["revenue"][3],
        "cost_of_goods": amounts["cost_of_goods"][3],
        "product": text_problem("product", False),
        "channel": text_problem("channel", False),
    }
    values = {"customer_id": "p.customer_id", "date": "p.date", "revenue": amounts["revenue"][2],
              "cost_of_goods": amounts["cost_of_goods"][2], "product": "p.product", "channel": "p.channel"}
    fields = list(values)
    # One scan of the raw rows checks and converts: every row gets its problems (NULL when
    # fine) and its values, which are only read once no row has a problem. The same scan
    # finds the row the table already holds under the id, and whether it differs, so that
    # the merge below needs no join of its own. Each inner query is fenced (sql_fence), so
    # that its regexes and casts run once per row.
    if not result.dry_run:
        # Nothing may change the stored rows between this look and the merge: a row deleted
        # meanwhile would be lost, one inserted meanwhile would break the insert. Reading goes
        # on; other writers (another import) wait until this import commits.
        cursor.execute(f"LOCK TABLE {table} IN SHARE ROW EXCLUSIVE MODE")
    by_index = _stored_rows_by_index(cursor, work, table, result.rows)
    with planner_settings(**({"enable_hashjoin": "off", "enable_mergejoin": "off"} if by_index else {})):
        work.create(cursor, work.parsed, f"""AS
            SELECT p.line, p.external_id, {', '.join(f'{sql} AS {name}' for name, sql in values.items())},
                   t.id AS existing_id,
                   t.id IS NOT NULL AND ({' OR '.join(f't.{name} IS DISTINCT FROM {sql}' for name, sql in values.items())}) AS changed,
                   CASE WHEN p.customer_id IS NULL THEN p.customer_number END AS number_given,
                   {', '.join(f'{sql} AS {name}_problem' for name, sql in problems.items())}
            FROM (
                SELECT {sql_fence("p")}, q.*, NULLIF(q.revenue_shaped, '')::numeric AS revenue_number,
                       NULLIF(q.cost_of_goods_shaped, '')::numeric AS cost_of_goods_number
                FROM (
                    SELECT {sql_fence("q")}, a.line, a.external_id, a.customer_number, c.id AS customer_id, d.value AS date,
                           d.problem AS date_problem, a.revenue, a.cost_of_goods, a.product, a.channel,
                           {amounts["revenue"][1]} AS revenue_shaped, {amounts["cost_of_goods"][1]} AS cost_of_goods_shaped
                    FROM (
                        SELECT {sql_fence("a")}, r.*, {amounts["revenue"][0]} AS revenue_plain,
                               {amounts["cost_of_goods"][0]} AS cost_of_goods_plain
                        FROM {work.raw} r
                    ) a
                    JOIN {work.dates} d ON d.text = a.date
                    LEFT JOIN {customers} c ON c.number = a.customer_number
                ) q
            ) p
            LEFT JOIN {table} t ON t.external_id = p.external_id
        """)
    found = "num_nonnulls(" + ", ".join(f"{name}_problem" for name in problems) + ")"
    rows = _fetch(cursor, f"""
        SELECT line, number_given, {', '.join(f'{name}_problem' for name in problems)}, COUNT(*) OVER (), SUM({found}) OVER ()
        FROM {work.parsed} WHERE {found} > 0 ORDER BY line LIMIT {MAX_ERRORS_SHOWN}
    """)
    texts = {name: {"required": _("A value is required."), "long": too_long(limit)} for name, limit in TRANSACTION_LIMITS.items()}
    texts["date"] = date_problems(EARLIEST_DATE)
    texts["revenue"] = texts["cost_of_goods"] = amount_problems(**amount_limits)
    shown = []
    for line, number, *codes, _rows, _total in rows:
        for name, code in zip(problems, codes, strict=True):
            if code == "unknown":
                shown.append(RowError(line, name, _("Unknown customer number “%(number)s”.") % {"number": number}))
            elif code:
                shown.append(RowError(line, name, texts[name][code]))
    result.add_found(shown, int(rows[0][-1]) if rows else 0)
    if _has_duplicate_ids(cursor, work):
        _report_duplicates(cursor, work.parsed, "external_id", "external_id", result)
    result.steps["check"] = time.perf_counter() - clock
    if not result.ok:
        return

    matched, changed = _fetch(cursor, f"SELECT COUNT(existing_id), COUNT(*) FILTER (WHERE changed) FROM {work.parsed}")[0]
    result.new, result.updated = result.rows - matched, changed
    result.unchanged = matched - changed
    if result.dry_run:
        return
    # The changed rows are updated by their id, the new ones appended in file order (the
    # line), which keeps the index inserts of ids that grow with the file (the usual case)
    # at the right edge of the unique index. (Customer order was measured too: its inserts
    # took 23-31 s against 19 s for a million rows, the unique index's random inserts costing
    # more than the (customer, date) index's saved ones.) A statement with nothing to write
    # is skipped: a re-import of an unchanged file writes nothing and joins nothing.
    if changed:
        cursor.execute(f"ANALYZE {work.parsed} (existing_id, changed)")
        cursor.execute(f"""
            UPDATE {table} t SET {', '.join(f'{name} = s.{name}' for name in fields)}
            FROM {work.parsed} s WHERE t.id = s.existing_id AND s.changed
        """)
    result.steps["update"] = time.perf_counter() - clock - result.steps["check"]
    if result.new:
        cursor.execute(f"""
            INSERT INTO {table} (external_id, {', '.join(fields)})
            SELECT external_id, {', '.join(fields)} FROM {work.parsed} WHERE existing_id IS NULL ORDER BY line
        """)
    result.steps["insert"] = time.perf_counter() - clock - result.steps["check"] - result.steps["update"]


def _stored_rows_by_index(cursor, work: WorkTables, table: str, rows: int) -> bool:
    """Whether to look the file's ids up in the table's unique index (the table is much larger
    than the file: hash and merge joins off for that statement); else the planner joins as it likes.

    PostgreSQL 15 joins a million rows to a much larger table by hashing the file and
    scanning the whole table on one core (it has no parallel right join): 10.5-10.8 s
    against 20.9M stored rows, where nested loops over the indexes, on all cores, took
    2.9-3.0 s. Against a table of the file's size the hash join is quicker (2.0-2.1 s against
    2.9 s). The dates get an index for their nested loop: a hash index, which takes a text of
    any length (a btree refuses entries over 2.7 kB, and a bad date may be that long)."""
    cursor.execute("SELECT reltuples FROM pg_class WHERE oid = %s::regclass", [connection.ops.quote_name(table)])
    stored = cursor.fetchone()[0]  # an estimate, -1 before the table's first ANALYZE
    if stored <= INDEX_LOOKUP_RATIO * rows:
        return False
    cursor.execute(f"CREATE INDEX ON {work.dates} USING hash (text)")
    return True


def _has_duplicate_ids(cursor, work: WorkTables) -> bool:
    """Whether two rows of the file may share an id. A unique index on the ids' 64-bit hashes
    fails at the first pair; PostgreSQL builds it with parallel workers, in about 0.3 s for
    a million ids against 0.70 s for grouping them (which the listing of the duplicates then
    does, exactly: a rare clash of two hashes costs only that query). The hash, not the id,
    because a btree refuses entries over 2.7 kB and a bad id may be that long."""
    try:
        with transaction.atomic():
            cursor.execute(f"CREATE UNIQUE INDEX ON {work.parsed} (hashtextextended(external_id, 0)) WHERE external_id <> ''")
    except IntegrityError:
        return True
    return False
