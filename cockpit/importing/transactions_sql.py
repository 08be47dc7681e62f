"""Transactions on PostgreSQL: the file's text into COPY, every check as one set-based query, one merge."""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd
from django.db import DatabaseError, connection, transaction
from django.utils.translation import gettext as _

from core.copy_text import copy_into
from core.csvfile import (
    detect_decimal_comma,
    normalise_header,
)
from core.csvfile import open_text as _open_text
from core.plausibility import EARLIEST_DATE, MAX_AMOUNT, latest_plausible_date
from customers.models import Customer, Transaction

from .checks import amount_problems, date_problems, too_long
from .kinds import SPECS
from .results import CHUNK_ROWS, MAX_ERRORS_SHOWN, PREVIEW_ROWS, ImportResult, RowError
from .staging import _counts, _fetch, _report_duplicates

# --- transactions on PostgreSQL: the checks in SQL -------------------------------------------------
# A million rows are checked faster by one set-based query than by pandas in Python: the raw,
# stripped text goes into the staging table by COPY (Python only splits the lines, while the
# server parses the COPY on the other core), then one scan lists every problem, and one
# INSERT ... SELECT converts and merges. The rules and texts are those of the pandas checks.

RAW_TRANSACTIONS = "cvm_import_transactions_raw"
RAW_DATES = "cvm_import_dates"
PARSED_TRANSACTIONS = "cvm_import_transactions_parsed"
IMPORT_WORK_MEM = "256MB"
TRANSACTION_LIMITS = {"external_id": 64, "customer_number": 32, "product": 100, "channel": 50}
SQL_AMOUNT = r"'^[-+]?[0-9]+([.][0-9]{1,2})?$'"
SQL_NUMBER = r"'^[-+]?[0-9]+([.][0-9]+)?$'"
# What the pandas check removes from odd amounts: inner spaces, currency signs, apostrophes.
SQL_AMOUNT_NOISE = "'[[:space:]\u00a0\u202f\u2009€$'']|EUR'"
# The same characters for translate(), which is much cheaper than a regex; on an amount that
# passed the check it removes exactly what the regex removes.
SQL_AMOUNT_NOISE_CHARS = "' \t\n\r\v\f\u00a0\u202f\u2009€$''EUR'"


def _sql_date_table(cursor, *, earliest: dt.date) -> None:
    """The file's distinct date texts, each parsed once, with its problem (NULL when fine).

    A file has a few thousand distinct dates, so this is far cheaper than parsing per row.
    """
    days_in_month = """CASE WHEN m = 2 THEN CASE WHEN mod(y, 4) = 0 AND (mod(y, 100) <> 0 OR mod(y, 400) = 0)
                                               THEN 29 ELSE 28 END
                            WHEN m IN (4, 6, 9, 11) THEN 30 ELSE 31 END"""
    cursor.execute(f"DROP TABLE IF EXISTS {RAW_DATES}")
    cursor.execute(f"""
        CREATE TEMPORARY TABLE {RAW_DATES} ON COMMIT DROP AS
        WITH parts AS (
            SELECT text,
                   CASE WHEN text ~ '^[0-9]{{4}}-[0-9]{{1,2}}-[0-9]{{1,2}}$' THEN string_to_array(text, '-')::int[] END AS iso,
                   CASE WHEN text ~ '^[0-9]{{1,2}}[.][0-9]{{1,2}}[.][0-9]{{4}}$' THEN string_to_array(text, '.')::int[] END AS german
            FROM (SELECT DISTINCT date AS text FROM {RAW_TRANSACTIONS}) d
        ), ymd AS (
            SELECT text, iso IS NOT NULL OR german IS NOT NULL AS shaped,
                   COALESCE(iso[1], german[3]) AS y, COALESCE(iso[2], german[2]) AS m, COALESCE(iso[3], german[1]) AS d
            FROM parts
        ), parsed AS (
            SELECT text, shaped,
                   CASE WHEN y >= 1 AND m BETWEEN 1 AND 12 AND d BETWEEN 1 AND {days_in_month} THEN make_date(y, m, d) END AS value
            FROM ymd
        )
        SELECT text, value,
               CASE WHEN text = '' THEN 'required' WHEN NOT shaped THEN 'format' WHEN value IS NULL THEN 'calendar'
                    WHEN value < %s THEN 'early' WHEN value > %s THEN 'late' END AS problem
        FROM parsed
    """, [earliest, latest_plausible_date()])
    cursor.execute(f"ANALYZE {RAW_DATES}")


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
    # The hash joins and the sort over a million rows fit in 256 MB; with the default 4 MB
    # they spill to disk and take several times longer. Only for this transaction.
    cursor.execute("SELECT current_setting('work_mem')")
    work_mem = cursor.fetchone()[0]
    cursor.execute("SELECT set_config('work_mem', %s, true)", [IMPORT_WORK_MEM])
    clock = time.perf_counter()
    result.copied_as_is = _stage_file_by_copy(cursor, path, result)
    if result.copied_as_is:
        on_batch()
    else:
        _stage_rows(cursor, batches(), result, on_batch)
    result.steps["stage"] = time.perf_counter() - clock
    if result.columns:
        _check_and_merge_transactions_in_sql(cursor, result)
    cursor.execute("SELECT set_config('work_mem', %s, true)", [work_mem])


# --- the file's bytes straight into COPY ------------------------------------------------------------
# Python's csv module and PostgreSQL's COPY read the same plain files alike: no quotes, one
# record per line. For those files the bytes go to the server as they are, in 1 MB blocks,
# and the server splits, strips and checks them; Python never looks at a row. Any other
# file (quotes, records over several lines, empty lines, rows of the wrong width, bytes the
# encoding does not define) is read row by row by read_rows as before, so every problem
# keeps its message. The test is cheap and exact: COPY must accept the file, and the number
# of rows it read must equal the number of lines after the header.

RAW_FILE = "cvm_import_file"
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


def _stage_file_by_copy(cursor, path: Path, result: ImportResult) -> bool:
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
            cursor.execute(f"DROP TABLE IF EXISTS {RAW_FILE}")
            # Line 1 is the header: the n-th record is line n + 1.
            cursor.execute(f"""CREATE TEMPORARY TABLE {RAW_FILE} (line integer GENERATED ALWAYS AS IDENTITY (START 2),
                               {', '.join(f'{f} text' for f in fields)}) ON COMMIT DROP""")
            with open(path, "rb") as handle, copy_into(cursor, RAW_FILE, fields, options=options) as copy:
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
            cursor.execute(f"SELECT COUNT(*) FROM {RAW_FILE}")
            if cursor.fetchone()[0] != lines - 1:
                raise _NotPlain
    except (_NotPlain, DatabaseError, connection.Database.Error):
        return False
    _stage_from_file(cursor, header, fields, result, strip=padded.found)
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


def _stage_from_file(cursor, header: list[str], fields: list[str], result: ImportResult, *, strip: bool) -> None:
    """The raw table the checks read, from the file's table: the spec's columns, stripped as
    read_rows strips them (only if some field needs it), without the lines read_rows skips
    (only separators and spaces)."""
    spaces = _sql_text(PYTHON_WHITESPACE)

    def stripped(name: str) -> str:
        return f"btrim({name}, {spaces})" if strip else name

    columns = SPECS["transactions"].columns
    picked = [stripped(fields[header.index(name)]) if name in header else "''" for name in columns]
    blank = " AND ".join(f"{stripped(f)} = ''" for f in fields)
    cursor.execute(f"DROP TABLE IF EXISTS {RAW_TRANSACTIONS}")
    cursor.execute(f"""
        CREATE TEMPORARY TABLE {RAW_TRANSACTIONS} ON COMMIT DROP AS
        SELECT line, {', '.join(f'{sql} AS {name}' for sql, name in zip(picked, columns, strict=True))}
        FROM {RAW_FILE} WHERE NOT ({blank})
    """)
    cursor.execute(f"SELECT line, {', '.join(fields)} FROM {RAW_FILE} WHERE NOT ({blank}) ORDER BY line LIMIT {PREVIEW_ROWS}")
    result.preview = [list(row[1:]) for row in cursor.fetchall()]
    cursor.execute(f"DROP TABLE {RAW_FILE}")
    result.columns = header
    cursor.execute(f"SELECT COUNT(*) FROM {RAW_TRANSACTIONS}")
    result.rows = cursor.fetchone()[0]
    # As the row-by-row path: the decimal separator is judged on the first CHUNK_ROWS rows.
    cursor.execute(f"""SELECT DISTINCT revenue FROM (SELECT revenue FROM {RAW_TRANSACTIONS} ORDER BY line
                       LIMIT {CHUNK_ROWS}) r WHERE revenue <> ''""")
    amounts = pd.Series([row[0] for row in cursor.fetchall()], dtype=object)
    result.decimal_comma = detect_decimal_comma(amounts, delimiter=result.delimiter)


def _stage_rows(cursor, batches: Iterator[list[list]], result: ImportResult, on_batch) -> None:
    columns = SPECS["transactions"].columns
    cursor.execute(f"DROP TABLE IF EXISTS {RAW_TRANSACTIONS}")
    cursor.execute(f"CREATE TEMPORARY TABLE {RAW_TRANSACTIONS} (line integer, {', '.join(f'{c} text' for c in columns)}) ON COMMIT DROP")
    # FORCE_NOT_NULL: an empty field is the empty string, as in the file, not NULL.
    revenue_at = 1 + columns.index("revenue")
    options = f"WITH (FORMAT csv, FORCE_NOT_NULL ({', '.join(columns)}))"
    with copy_into(cursor, RAW_TRANSACTIONS, ["line", *columns], options=options) as copy:
        for batch in batches:
            if not result.rows:
                amounts = pd.Series(list({row[revenue_at] for row in batch} - {""}), dtype=object)
                result.decimal_comma = detect_decimal_comma(amounts, delimiter=result.delimiter)
            result.rows += len(batch)
            buffer = io.StringIO()
            csv.writer(buffer, lineterminator="\n").writerows(batch)
            copy.write(buffer.getvalue())
            on_batch()


def _check_and_merge_transactions_in_sql(cursor, result: ImportResult) -> None:
    table, customers = Transaction._meta.db_table, Customer._meta.db_table
    clock = time.perf_counter()
    # Temporary tables are never auto-analysed; without statistics the planner hashes the
    # million raw rows instead of the few thousand dates, and spills.
    cursor.execute(f"ANALYZE {RAW_TRANSACTIONS}")
    _sql_date_table(cursor, earliest=EARLIEST_DATE)
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
    fields = ["customer_id", "date", "revenue", "cost_of_goods", "product", "channel"]
    # One scan of the raw rows checks and converts: every row gets its problems (NULL when
    # fine) and its values, which are only read once no row has a problem. OFFSET 0 keeps
    # each inner query apart, so that its regexes and casts run once per row.
    cursor.execute(f"DROP TABLE IF EXISTS {PARSED_TRANSACTIONS}")
    cursor.execute(f"""
        CREATE TEMPORARY TABLE {PARSED_TRANSACTIONS} ON COMMIT DROP AS
        SELECT p.line, p.external_id, p.customer_id, p.date, {amounts["revenue"][2]} AS revenue,
               {amounts["cost_of_goods"][2]} AS cost_of_goods, p.product, p.channel,
               CASE WHEN p.customer_id IS NULL THEN p.customer_number END AS number_given,
               {', '.join(f'{sql} AS {name}_problem' for name, sql in problems.items())}
        FROM (
            SELECT q.*, NULLIF(q.revenue_shaped, '')::numeric AS revenue_number,
                   NULLIF(q.cost_of_goods_shaped, '')::numeric AS cost_of_goods_number
            FROM (
                SELECT a.line, a.external_id, a.customer_number, c.id AS customer_id, d.value AS date,
                       d.problem AS date_problem, a.revenue, a.cost_of_goods, a.product, a.channel,
                       {amounts["revenue"][1]} AS revenue_shaped, {amounts["cost_of_goods"][1]} AS cost_of_goods_shaped
                FROM (
                    SELECT r.*, {amounts["revenue"][0]} AS revenue_plain, {amounts["cost_of_goods"][0]} AS cost_of_goods_plain
                    FROM {RAW_TRANSACTIONS} r
                    OFFSET 0
                ) a
                JOIN {RAW_DATES} d ON d.text = a.date
                LEFT JOIN {customers} c ON c.number = a.customer_number
                OFFSET 0
            ) q
            OFFSET 0
        ) p
    """)
    found = "num_nonnulls(" + ", ".join(f"{name}_problem" for name in problems) + ")"
    rows = _fetch(cursor, f"""
        SELECT line, number_given, {', '.join(f'{name}_problem' for name in problems)}, COUNT(*) OVER (), SUM({found}) OVER ()
        FROM {PARSED_TRANSACTIONS} WHERE {found} > 0 ORDER BY line LIMIT {MAX_ERRORS_SHOWN}
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
    _report_duplicates(cursor, PARSED_TRANSACTIONS, "external_id", "external_id", result)
    result.steps["check"] = time.perf_counter() - clock
    if not result.ok:
        return

    differs = " OR ".join(f"t.{name} IS DISTINCT FROM s.{name}" for name in fields)
    if result.dry_run:
        _counts(cursor, f"""SELECT COUNT(*), COUNT(*) FILTER (WHERE {differs})
                            FROM {PARSED_TRANSACTIONS} s JOIN {table} t ON t.external_id = s.external_id""", result)
        return
    cursor.execute(f"ANALYZE {PARSED_TRANSACTIONS}")
    # Set operations instead of INSERT ... ON CONFLICT: the changed rows are updated in one
    # UPDATE ... FROM, the new ones appended by one INSERT ... SELECT of the rows whose id the
    # table does not hold. ON CONFLICT costs a speculative insertion per row and kept the
    # update path (re-import) at the speed of a row-by-row upsert.
    cursor.execute(f"""
        UPDATE {table} t SET {', '.join(f'{name} = s.{name}' for name in fields)}
        FROM {PARSED_TRANSACTIONS} s WHERE t.external_id = s.external_id AND ({differs})
    """)
    updated = cursor.rowcount
    result.steps["update"] = time.perf_counter() - clock - result.steps["check"]
    # File order (the line), which keeps the index inserts of ids that grow with the file (the
    # usual case) at the right edge of the unique index. (Customer order was measured too:
    # its inserts took 23-31 s against 19 s for a million rows, the unique index's random
    # inserts costing more than the (customer, date) index's saved ones.)
    cursor.execute(f"""
        INSERT INTO {table} (external_id, {', '.join(fields)})
        SELECT external_id, {', '.join(fields)} FROM {PARSED_TRANSACTIONS} s
        WHERE NOT EXISTS (SELECT 1 FROM {table} t WHERE t.external_id = s.external_id)
        ORDER BY line
    """)
    result.new, result.updated = cursor.rowcount, updated
    result.unchanged = result.rows - result.new - result.updated
    result.steps["insert"] = time.perf_counter() - clock - result.steps["check"] - result.steps["update"]
