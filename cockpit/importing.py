"""CSV import of customers, transactions and services: one service for the command and the upload page.

File formats
============
One header line naming the columns (any order, case-insensitive; text in brackets such as
``owner (username)`` is ignored), then one row per record. Columns marked * are required.

customers
    ``number*, name*, industry, region, owner (username), acquired_on, acquisition_channel,
    referred_by (customer number), status, lost_on, yearly_wallet``
    ``acquisition_channel`` is one of direct_sales, referral, trade_fair, online, partner, other
    (empty: direct_sales); ``status`` is active or lost (empty: active; lost needs ``lost_on``).
    ``referred_by`` may name a customer defined further down in the same file.
transactions
    ``external_id*, customer_number*, date*, revenue*, cost_of_goods, product, channel``
    ``revenue`` may be negative (credit notes); empty ``cost_of_goods`` is 0.
services
    ``external_id, customer_number*, service_type* (code), date*, quantity, note,
    logged_by (username)``
    ``quantity`` must be positive (empty: 1); empty ``logged_by`` is the importing user.
    Rows without ``external_id`` get a key made from their content, so re-importing the same
    file adds nothing; give an ``external_id`` when a corrected file should change a row in place.

What files may look like
------------------------
- comma-, semicolon- or tab-separated (detected from the header line, or ``--delimiter``);
- UTF-8 with or without byte-order mark, or Windows-1252 (detected);
- amounts with a decimal point (``1234.56``, ``1,234.56``) or a decimal comma
  (``1.234,56``, German Excel), decided per file from its first rows;
- dates as ``YYYY-MM-DD`` or ``DD.MM.YYYY``;
- empty lines are skipped.

Rules
-----
Every row is checked and every problem is reported with its line in the file, its column and
what is wrong (the list shown is capped at ``MAX_ERRORS_SHOWN``, the count is complete).
Dates before 1990 (customers' ``acquired_on``: before 1900) or after tomorrow and amounts
beyond 100 billion are refused as implausible. An import is all-or-nothing: one bad row
imports nothing. Rows are matched by ``external_id`` (customers by ``number``), so importing
the same file twice changes nothing and a corrected file updates the rows in place.

How it stays fast for large files
---------------------------------
The file is read in batches of ``CHUNK_ROWS`` rows with the csv module into a temporary
staging table, all in one database transaction, so memory stays bounded by the batch size and
a failure leaves the database as it was.

- Transactions on PostgreSQL: the raw text goes in by ``COPY``; one set-based query lists
  every problem (dates are parsed once per distinct value), then one
  ``INSERT ... SELECT ... ON CONFLICT DO UPDATE`` converts and merges, touching only rows that
  differ.
- Otherwise (SQLite, customers, services): each batch is checked with vectorised pandas
  string operations and the checked rows are staged (PostgreSQL: ``COPY``; SQLite:
  ``executemany``); checks that need the whole file (duplicate ids, referrals) run as SQL on
  the staging table, then one ``INSERT ... ON CONFLICT DO UPDATE`` merges it.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import operator
import re
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from django.contrib.auth import get_user_model
from django.db import DatabaseError, OperationalError, connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from core.copy_text import copy_into
from core.csvfile import (
    detect_decimal_comma,
    detect_encoding,
    normalise_delimiter,
    normalise_header,
    sniff_delimiter,
)
from core.csvfile import first_line as _first_line
from core.csvfile import open_text as _open_text
from core.plausibility import EARLIEST_ACQUISITION, EARLIEST_DATE, MAX_AMOUNT, MAX_QUANTITY, latest_plausible_date
from customers.models import Customer, SurveyAnswer, Transaction
from services.models import ServiceEvent, ServiceType

KINDS = ("customers", "transactions", "services", "survey_answers")
KIND_LABELS = {"customers": gettext_lazy("customers"), "transactions": gettext_lazy("transactions"), "services": gettext_lazy("free services"),
               "survey_answers": gettext_lazy("survey answers")}
DELIMITER_NAMES = {"\t": gettext_lazy("tab"), ",": gettext_lazy("comma"), ";": gettext_lazy("semicolon")}
# 20k rows keep a chunk's DataFrame and COPY buffer at a few MB; larger chunks gained <5 %.
CHUNK_ROWS = 20_000
MAX_ERRORS_SHOWN = 200
PREVIEW_ROWS = 10
# The widest kind has 11 columns; a header far wider is no export of ours but an attack or a
# wrong file (a 1M-column header took minutes in the duplicate check).
MAX_COLUMNS = 200
# No row of ours comes near this; it bounds the memory and time one line can take.
MAX_LINE_BYTES = 100_000

@dataclass(frozen=True)
class RowError:
    line: int
    column: str
    message: str

    def __str__(self) -> str:
        where = (_("line %(line)s, column %(column)s") if self.column else _("line %(line)s")) % {
            "line": self.line, "column": self.column}
        return f"{where}: {self.message}"


@dataclass
class ImportResult:
    kind: str
    dry_run: bool = False
    rows: int = 0
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: list[RowError] = field(default_factory=list)
    error_count: int = 0
    columns: list[str] = field(default_factory=list)
    preview: list[list[str]] = field(default_factory=list)
    encoding: str = ""
    delimiter: str = ""
    decimal_comma: bool = False
    committed: bool = False
    seconds: float = 0.0
    # True when the file's bytes went to COPY as they are (see _stage_file_by_copy).
    copied_as_is: bool = False
    # Seconds per step of the PostgreSQL transactions import, for bench/bench_import.py.
    steps: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.error_count == 0

    @property
    def more_errors(self) -> int:
        return self.error_count - len(self.errors)

    @property
    def delimiter_name(self) -> str:
        return str(DELIMITER_NAMES.get(self.delimiter, self.delimiter))

    @property
    def kind_label(self) -> str:
        return str(KIND_LABELS.get(self.kind, self.kind))

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0

    def add_error(self, line: int, column: str, message: str) -> None:
        self.error_count += 1
        if len(self.errors) < MAX_ERRORS_SHOWN:
            self.errors.append(RowError(int(line), column, message))

    def add_errors(self, lines: pd.Series, column: str, message: str | pd.Series) -> None:
        """Vectorised: one error per line in ``lines`` (a message per line or one for all)."""
        count = len(lines)
        if not count:
            return
        room = MAX_ERRORS_SHOWN - len(self.errors)
        if room > 0:
            shown = lines.iloc[:room]
            messages = message.loc[shown.index] if isinstance(message, pd.Series) else [message] * len(shown)
            self.errors.extend(RowError(int(line), column, str(text)) for line, text in zip(shown, messages, strict=False))
        self.error_count += count

    def add_found(self, shown: list[RowError], count: int) -> None:
        """Problems found by a query: the first ones by line, and how many there are in all."""
        self.errors = sorted([*self.errors, *shown], key=_error_order)[:MAX_ERRORS_SHOWN]
        self.error_count += count

    def sort_errors(self) -> None:
        self.errors.sort(key=_error_order)


def _error_order(error: RowError) -> tuple[int, str]:
    return error.line, error.column


class ImportAborted(Exception):
    """Raised inside the transaction to roll back a dry run or a file with errors."""


class ImportTooSlow(Exception):
    """The time limit (``time_limit`` of import_file) ran out: nothing was written."""


# --- reading the file ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RawProblem:
    line: int
    kind: str  # "nul" or "long"


def scan_raw_lines(path: Path) -> RawProblem | None:
    """The first NUL byte or over-long line, found over raw 1 MB blocks with C-level bytes
    methods, before the csv reader takes either into a cell. A NUL is stored by SQLite but
    refused by PostgreSQL; a line of megabytes costs memory and time in every later step."""
    line, carry = 1, 0
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            parts = block.split(b"\n")
            found: list[RawProblem] = []
            nul = block.find(b"\x00")
            if nul >= 0:
                found.append(RawProblem(line + block.count(b"\n", 0, nul), "nul"))
            if carry + len(parts[0]) > MAX_LINE_BYTES or max(map(len, parts)) > MAX_LINE_BYTES:
                lengths = [carry + len(parts[0]), *map(len, parts[1:])]
                first_long = next(i for i, length in enumerate(lengths) if length > MAX_LINE_BYTES)
                found.append(RawProblem(line + first_long, "long"))
            if found:
                return min(found, key=lambda problem: problem.line)
            carry = len(parts[-1]) + (carry if len(parts) == 1 else 0)
            line += len(parts) - 1
    return None


def _report_raw_problem(problem: RawProblem, path: Path, result: ImportResult) -> None:
    if problem.kind == "long":
        result.add_error(problem.line, "", _("The line is longer than %(kb)s KB; nothing was read.") % {"kb": MAX_LINE_BYTES // 1000})
        return
    result.add_error(problem.line, _nul_column(path, problem.line, result), _("Contains a NUL character (\\0), which cannot be stored."))


def _nul_column(path: Path, line: int, result: ImportResult) -> str:
    """The header name of the cell holding the NUL, when the line reads as one record."""
    with _open_text(path, result.encoding) as handle:
        lines = [text for _, text in zip(range(line), handle, strict=False)]
    header = next(csv.reader([lines[0]], delimiter=result.delimiter), [])
    cells = next(csv.reader([lines[-1].replace("\x00", "\ufffd")], delimiter=result.delimiter), [])
    index = next((i for i, cell in enumerate(cells) if "\ufffd" in cell), None)
    return normalise_header(header[index]) if index is not None and index < len(header) and line > 1 else ""


def read_rows(handle, *, delimiter: str, columns: list[str], result: ImportResult) -> Iterator[list[list]]:
    """The file's rows in batches of ``CHUNK_ROWS``, each row ``[line, *values]`` with stripped values.

    Columns the file lacks come through as empty strings. This loop is the only per-row Python
    work of an import, so it sticks to C-level calls (csv, itemgetter, map).
    """
    # strict: a quote opened and never closed is an error at the end of the file instead of
    # swallowing the rest of the file into one cell.
    reader = csv.reader(handle, delimiter=delimiter, strict=True)
    next_start = 1  # where the record after the last one read starts: a broken record's line
    try:
        header: list[str] | None = None
        for raw in reader:
            next_start = reader.line_num + 1
            if len(raw) > MAX_COLUMNS:
                result.add_error(reader.line_num, "", _("The header line has %(count)s columns; at most %(most)s are read.") % {"count": f"{len(raw):,}", "most": MAX_COLUMNS})
                return
            if any(cell.strip() for cell in raw):
                header = [normalise_header(cell) for cell in raw]
                break
        if header is None:
            result.add_error(1, "", _("The file is empty."))
            return
        result.columns = header
        spec = SPECS[result.kind]
        missing = [name for name in spec.required if name not in header]
        for name in missing:
            result.add_error(reader.line_num, name, _("This column is missing from the header line."))
        counts = Counter(name for name in header if name)
        duplicated = sorted(name for name, count in counts.items() if count > 1)
        for name in duplicated:
            result.add_error(reader.line_num, name, _("This column appears more than once in the header line."))
        if missing or duplicated:
            return
        width = len(header)
        # Position ``width`` is the empty string appended to every row: the value of an absent column.
        pick = operator.itemgetter(*[header.index(name) if name in header else width for name in columns])
        batch: list[list] = []
        for raw in reader:
            next_start = reader.line_num + 1
            if len(raw) != width:
                if "".join(raw).strip():  # else an empty line
                    if len(result.preview) < PREVIEW_ROWS:
                        result.preview.append(raw)
                    result.add_error(reader.line_num, "", _("Expected %(width)s fields as in the header line, found %(found)s.") % {"width": width, "found": len(raw)})
                    result.rows += 1
                continue
            raw.append("")
            row = [reader.line_num, *map(str.strip, pick(raw))]
            if not any(row[1:]) and not "".join(raw).strip():
                continue  # Excel's ";;;;" lines
            if len(result.preview) < PREVIEW_ROWS:
                result.preview.append(raw[:width])
            batch.append(row)
            if len(batch) >= CHUNK_ROWS:
                yield batch
                batch = []
        if batch:
            yield batch
    except csv.Error as exc:
        raise csv.Error(f"line {next_start}: {exc}") from None


def _frame(batch: list[list], columns: list[str]) -> pd.DataFrame:
    frame = pd.DataFrame(batch, columns=["line", *columns], dtype=object)
    frame["line"] = frame["line"].astype(np.int64)
    return frame


# --- problem texts --------------------------------------------------------------------------------
# Shared by the pandas checks and the SQL checks, so both paths name a problem the same way.
# Built while a request (or a command) runs, so they come in its language.

UNKNOWN_TEXTS = {
    "customer number": gettext_lazy("Unknown customer number “%(value)s”."),
    "service type": gettext_lazy("Unknown service type “%(value)s”."),
    "user": gettext_lazy("Unknown user “%(value)s”."),
}


def too_long(max_length: int) -> str:
    return _("Longer than %(n)s characters.") % {"n": max_length}


def date_problems(earliest: dt.date) -> dict[str, str]:
    latest = latest_plausible_date()
    return {
        "required": _("A date is required."),
        "format": _("Not a date: use YYYY-MM-DD or DD.MM.YYYY."),
        "calendar": _("No such day in the calendar."),
        "early": _("Implausible date: before %(date)s.") % {"date": earliest.isoformat()},
        "late": _("Implausible date: after %(date)s (in the future).") % {"date": latest.isoformat()},
    }


def amount_problems(*, minimum: float, maximum: float, positive: bool = False) -> dict[str, str]:
    if positive:
        below = _("Must be positive.")
    else:
        below = _("Must not be below %(n)s.") % {"n": f"{minimum:,.0f}"} if minimum else _("Must not be negative.")
    return {
        "required": _("An amount is required."),
        "number": _("Not a number."),
        "decimals": _("More than 2 decimal places."),
        "below": below,
        "above": _("Implausibly large: above %(n)s.") % {"n": f"{maximum:,.2f}"},
    }


# --- vectorised checks ---------------------------------------------------------------------------


class Checker:
    """Checks and converts the str columns of one chunk; every problem goes to the result.

    Each column is factorised first and checked once per distinct value: dates, customer
    numbers and codes repeat a lot, so most checks touch a few thousand values per chunk.
    """

    def __init__(self, frame: pd.DataFrame, result: ImportResult, context: dict):
        self.frame = frame
        self.result = result
        self.context = context
        self.bad = np.zeros(len(frame), dtype=bool)
        self.lines = frame["line"]

    def distinct(self, column: str) -> tuple[np.ndarray, pd.Series]:
        codes, uniques = pd.factorize(self.frame[column], use_na_sentinel=False)
        return codes, pd.Series(uniques, dtype=object)

    def fail(self, codes: np.ndarray | None, mask: pd.Series, column: str, message) -> None:
        """``mask`` over the distinct values (expanded through ``codes``) or, without codes, over the rows."""
        mask = mask.fillna(False).astype(bool).to_numpy()
        if not mask.any():
            return
        rows = mask[codes] if codes is not None else mask
        if isinstance(message, pd.Series):
            message = pd.Series(message.to_numpy()[codes] if codes is not None else message.to_numpy())[rows]
            message.index = self.lines[rows].index
        self.result.add_errors(self.lines[rows], column, message)
        self.bad |= rows

    def text(self, column: str, *, max_length: int, required: bool = False) -> np.ndarray:
        codes, values = self.distinct(column)
        if required:
            self.fail(codes, values == "", column, _("A value is required."))
        self.fail(codes, values.str.len() > max_length, column, too_long(max_length))
        return values.to_numpy()[codes]

    def date(self, column: str, *, required: bool, earliest: dt.date = EARLIEST_DATE) -> np.ndarray:
        codes, values = self.distinct(column)
        problems = date_problems(earliest)
        empty = values == ""
        if required:
            self.fail(codes, empty, column, problems["required"])
        iso = values.str.fullmatch(r"\d{4}-\d{1,2}-\d{1,2}")
        german = values.str.fullmatch(r"\d{1,2}\.\d{1,2}\.\d{4}")
        self.fail(codes, ~empty & ~iso & ~german, column, problems["format"])
        # Seconds, not nanoseconds: any year from 1 to 9999 parses (and is then judged implausible);
        # there is no year 0.
        parsed = pd.Series(pd.NaT, index=values.index, dtype="datetime64[s]")
        iso_parsable, german_parsable = iso & ~values.str.startswith("0000"), german & ~values.str.endswith("0000")
        if iso_parsable.any():
            parsed[iso_parsable] = pd.to_datetime(values[iso_parsable], format="%Y-%m-%d", errors="coerce").astype("datetime64[s]")
        if german_parsable.any():
            parsed[german_parsable] = pd.to_datetime(values[german_parsable], format="%d.%m.%Y", errors="coerce").astype("datetime64[s]")
        self.fail(codes, (iso | german) & parsed.isna(), column, problems["calendar"])
        self.fail(codes, parsed < pd.Timestamp(earliest), column, problems["early"])
        self.fail(codes, parsed > pd.Timestamp(latest_plausible_date()), column, problems["late"])
        return parsed.dt.strftime("%Y-%m-%d").where(parsed.notna(), None).to_numpy()[codes]

    def amount(
        self, column: str, *, required: bool, minimum: float, maximum: float = MAX_AMOUNT, default: str | None = None,
        positive: bool = False,
    ) -> np.ndarray:
        codes, values = self.distinct(column)
        problems = amount_problems(minimum=minimum, maximum=maximum, positive=positive)
        empty = values == ""
        if required:
            self.fail(codes, empty, column, problems["required"])
        if "decimal_comma" not in self.context:
            self.context["decimal_comma"] = detect_decimal_comma(values[~empty], delimiter=self.result.delimiter)
            self.result.decimal_comma = self.context["decimal_comma"]
        # One translate pass: drop thousands separators, make the decimal separator a point.
        table = str.maketrans(",", ".", ".") if self.context["decimal_comma"] else str.maketrans("", "", ",")
        cleaned = values.str.translate(table)
        valid = cleaned.str.fullmatch(r"[-+]?\d+(\.\d{1,2})?")
        if not valid[~empty].all():
            # Rare: currency signs or spaces inside the number; look closer only at these values.
            odd = ~valid & ~empty
            cleaned[odd] = cleaned[odd].str.replace(r"[\s\u00a0\u202f\u2009€$']|EUR", "", regex=True)
            valid = cleaned.str.fullmatch(r"[-+]?\d+(\.\d{1,2})?")
            number = cleaned.str.fullmatch(r"[-+]?\d+(\.\d+)?")
            self.fail(codes, ~empty & ~number, column, problems["number"])
            self.fail(codes, number & ~valid, column, problems["decimals"])
        numeric = pd.to_numeric(cleaned.where(valid), errors="coerce")
        self.fail(codes, numeric <= 0 if positive else numeric < minimum, column, problems["below"])
        self.fail(codes, numeric > maximum, column, problems["above"])
        if default is not None:
            cleaned = cleaned.where(~empty, default)
        return cleaned.where(valid | (empty & (default is not None)), None).to_numpy()[codes]

    def choice(self, column: str, choices, *, default: str) -> np.ndarray:
        """A TextChoices value given as its code or its label, in any case."""
        lookup = {}
        for value, label in choices:
            lookup[value.lower()] = value
            lookup[str(label).lower()] = value
            lookup[value.replace("_", " ")] = value
        codes, values = self.distinct(column)
        values = values.str.lower()
        mapped = values.map(lookup)
        empty = values == ""
        allowed = ", ".join(value for value, _ in choices)
        self.fail(codes, ~empty & mapped.isna(), column, _("Unknown value; allowed: %(allowed)s.") % {"allowed": allowed})
        return mapped.where(~empty, default).to_numpy()[codes]

    def lookup(self, column: str, mapping: dict, *, what: str, required: bool) -> np.ndarray:
        codes, values = self.distinct(column)
        empty = values == ""
        if required:
            self.fail(codes, empty, column, _("A value is required."))
        ids = values.map(mapping)
        unknown = ~empty & ids.isna()
        if unknown.any():
            unknown_text = str(UNKNOWN_TEXTS.get(what) or _("Unknown value “%(value)s”."))
            messages = pd.Series("", index=values.index, dtype=object)
            messages[unknown] = values[unknown].map(lambda value: unknown_text % {"value": value})
            self.fail(codes, unknown, column, messages)
        return ids.to_numpy(dtype=object)[codes]

    def rows_failed(self, mask, column: str, message: str) -> None:
        self.fail(None, pd.Series(mask), column, message)

    def good(self) -> np.ndarray:
        return ~self.bad


# --- staging tables and merges ----------------------------------------------------------------------


def _is_postgres() -> bool:
    return connection.vendor == "postgresql"


def _distinct(left: str, right: str) -> str:
    return f"{left} IS DISTINCT FROM {right}" if _is_postgres() else f"{left} IS NOT {right}"


class Staging:
    """A temporary table holding the checked rows of the whole file."""

    def __init__(self, name: str, columns: dict[str, str]):
        self.name = name
        self.columns = columns  # column -> SQL type

    def create(self, cursor) -> None:
        cols = ", ".join(f"{name} {sql_type}" for name, sql_type in self.columns.items())
        cursor.execute(f"DROP TABLE IF EXISTS {self.name}")
        suffix = " ON COMMIT DROP" if _is_postgres() else ""
        cursor.execute(f"CREATE TEMPORARY TABLE {self.name} ({cols}){suffix}")

    def load(self, cursor, frame: pd.DataFrame) -> None:
        names = list(self.columns)
        frame = frame[names]
        if _is_postgres():
            buffer = io.StringIO()
            # csv.writer is several times faster than DataFrame.to_csv; None becomes an empty field (NULL).
            values = frame.astype(object).where(frame.notna(), None)
            csv.writer(buffer, lineterminator="\n").writerows(values.itertuples(index=False, name=None))
            with copy_into(cursor, self.name, names, options="WITH (FORMAT csv)") as copy:
                copy.write(buffer.getvalue())
        else:
            marks = ", ".join(["%s"] * len(names))
            rows = frame.astype(object).where(frame.notna(), None).itertuples(index=False, name=None)
            cursor.executemany(f"INSERT INTO {self.name} ({', '.join(names)}) VALUES ({marks})", list(rows))

    def index(self, cursor, column: str) -> None:
        cursor.execute(f"CREATE INDEX {self.name}_{column} ON {self.name} ({column})")
        if _is_postgres():
            # Temporary tables are never auto-analysed; without statistics the joins below
            # get nested-loop plans that take minutes on a million rows.
            cursor.execute(f"ANALYZE {self.name}")

    def drop(self, cursor) -> None:
        cursor.execute(f"DROP TABLE IF EXISTS {self.name}")


def _fetch(cursor, sql: str, params=()) -> list[tuple]:
    cursor.execute(sql, params)
    return cursor.fetchall()


def _report_duplicates(cursor, table: str, key: str, column: str, result: ImportResult) -> None:
    """Every row whose key already appeared on an earlier line of the file (the first ones listed)."""
    sql = f"""
        SELECT s.line, s.{key}, f.first_line, COUNT(*) OVER () FROM {table} s
        JOIN (SELECT {key}, MIN(line) AS first_line FROM {table}
              WHERE {key} IS NOT NULL AND {key} <> '' GROUP BY {key} HAVING COUNT(*) > 1) f ON f.{key} = s.{key}
        WHERE s.line > f.first_line ORDER BY s.line LIMIT {MAX_ERRORS_SHOWN}
    """
    rows = _fetch(cursor, sql)
    shown = [RowError(line, column, _("Duplicate %(column)s “%(value)s”: already on line %(first)s.") % {"column": column, "value": value, "first": first}) for line, value, first, _total in rows]
    result.add_found(shown, rows[0][3] if rows else 0)


def _counts(cursor, sql: str, result: ImportResult, *, staging: str | None = None) -> None:
    """New, updated and unchanged rows. With `staging`, only the rows staged there (those that
    passed the checks) count: a bad row is no new row."""
    matched, changed = _fetch(cursor, sql)[0]
    matched, changed = int(matched or 0), int(changed or 0)
    staged = int(_fetch(cursor, f"SELECT COUNT(*) FROM {staging}")[0][0]) if staging else result.rows
    result.new = max(0, staged - matched)
    result.updated = changed
    result.unchanged = matched - changed


@dataclass(frozen=True)
class Spec:
    columns: list[str]
    required: list[str]


SPECS = {
    "customers": Spec(
        columns=["number", "name", "industry", "region", "owner", "acquired_on", "acquisition_channel",
                 "referred_by", "status", "lost_on", "yearly_wallet"],
        required=["number", "name"],
    ),
    "transactions": Spec(
        columns=["external_id", "customer_number", "date", "revenue", "cost_of_goods", "product", "channel"],
        required=["external_id", "customer_number", "date", "revenue"],
    ),
    "services": Spec(
        columns=["external_id", "customer_number", "service_type", "date", "quantity", "note", "logged_by"],
        required=["customer_number", "service_type", "date"],
    ),
    "survey_answers": Spec(
        columns=["external_id", "customer_number", "date", "score", "comment", "contact"],
        required=["customer_number", "date", "score"],
    ),
}


def _customer_ids(numbers: pd.Series) -> dict[str, int]:
    wanted = [number for number in numbers.unique().tolist() if number]
    ids: dict[str, int] = {}
    for start in range(0, len(wanted), 10_000):  # stays below SQLite's variable limit
        ids.update(Customer.objects.filter(number__in=wanted[start : start + 10_000]).values_list("number", "id"))
    return ids


def _user_ids() -> dict[str, int]:
    return dict(get_user_model().objects.values_list("username", "id"))


# --- transactions -----------------------------------------------------------------------------------

TRANSACTION_STAGING = Staging(
    "cvm_import_transactions",
    {"line": "integer", "external_id": "varchar(64)", "customer_number": "varchar(32)", "date": "date",
     "revenue": "numeric(14, 2)", "cost_of_goods": "numeric(14, 2)", "product": "varchar(100)",
     "channel": "varchar(50)"},
)


def _check_transactions(frame: pd.DataFrame, result: ImportResult, context: dict) -> pd.DataFrame:
    check = Checker(frame, result, context)
    out = pd.DataFrame({"line": frame["line"]})
    out["external_id"] = check.text("external_id", max_length=64, required=True)
    # Customer numbers are resolved in SQL against the staging table: one join, not a query per chunk.
    out["customer_number"] = check.text("customer_number", max_length=32, required=True)
    out["date"] = check.date("date", required=True)
    out["revenue"] = check.amount("revenue", required=True, minimum=-MAX_AMOUNT)
    out["cost_of_goods"] = check.amount("cost_of_goods", required=False, minimum=-MAX_AMOUNT, default="0")
    out["product"] = check.text("product", max_length=100)
    out["channel"] = check.text("channel", max_length=50)
    return out[check.good()]


def _merge_transactions(cursor, result: ImportResult) -> None:
    table, s = Transaction._meta.db_table, TRANSACTION_STAGING.name
    customers = Customer._meta.db_table
    unknown = f"""SELECT s.line, s.customer_number FROM {s} s
                  WHERE NOT EXISTS (SELECT 1 FROM {customers} c WHERE c.number = s.customer_number) ORDER BY s.line"""
    for line, number in _fetch(cursor, unknown):
        result.add_error(line, "customer_number", _("Unknown customer number “%(number)s”.") % {"number": number})
    fields = ["customer_id", "date", "revenue", "cost_of_goods", "product", "channel"]
    source = {"product": "COALESCE(s.product, '')", "channel": "COALESCE(s.channel, '')", "customer_id": "c.id"}
    differs = " OR ".join(_distinct(f"t.{name}", source.get(name, f"s.{name}")) for name in fields)
    _counts(cursor, f"""SELECT COUNT(*), SUM(CASE WHEN {differs} THEN 1 ELSE 0 END)
                        FROM {s} s JOIN {table} t ON t.external_id = s.external_id
                        JOIN {customers} c ON c.number = s.customer_number""", result, staging=s)
    if result.dry_run or not result.ok or not (result.new or result.updated):
        return
    changed = " OR ".join(_distinct(f"{table}.{name}", f"excluded.{name}") for name in fields)
    cursor.execute(f"""
        INSERT INTO {table} (external_id, {', '.join(fields)})
        SELECT s.external_id, {', '.join(source.get(name, f's.{name}') for name in fields)}
        FROM {s} s JOIN {customers} c ON c.number = s.customer_number WHERE true
        ON CONFLICT (external_id) DO UPDATE SET {', '.join(f'{name} = excluded.{name}' for name in fields)}
        WHERE {changed}
    """)


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


def _sql_amount(column: str, *, decimal_comma: bool, required: bool, minimum: float, maximum: float) -> tuple[str, str]:
    """SQL for an amount column of the raw table: (its value, its problem or NULL)."""
    raw = f"r.{column}"
    # Drop thousands separators and make the decimal separator a point (translate drops what has no partner).
    plain = f"translate({raw}, ',.', '.')" if decimal_comma else f"translate({raw}, ',', '')"
    cleaned = f"regexp_replace({plain}, {SQL_AMOUNT_NOISE}, '', 'g')"

    def bounds(text: str) -> str:
        return f"CASE WHEN {text}::numeric < {minimum!r} THEN 'below' WHEN {text}::numeric > {maximum!r} THEN 'above' END"

    problem = f"""CASE WHEN {raw} = '' THEN {"'required'" if required else 'NULL'}
                       WHEN {plain} ~ {SQL_AMOUNT} THEN {bounds(plain)}
                       WHEN {cleaned} ~ {SQL_AMOUNT} THEN {bounds(cleaned)}
                       WHEN {cleaned} ~ {SQL_NUMBER} THEN 'decimals' ELSE 'number' END"""
    # Only used once every row has passed the checks.
    value = f"(CASE WHEN {raw} = '' THEN '0' ELSE translate({plain}, {SQL_AMOUNT_NOISE_CHARS}, '') END)::numeric(14, 2)"
    return value, problem


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
    revenue, revenue_problem = _sql_amount("revenue", decimal_comma=result.decimal_comma, required=True, **amount_limits)
    cost, cost_problem = _sql_amount("cost_of_goods", decimal_comma=result.decimal_comma, required=False, **amount_limits)

    def text_problem(name: str, required: bool, extra: str = "") -> str:
        empty = f"WHEN r.{name} = '' THEN 'required'" if required else ""
        return f"CASE {empty} WHEN length(r.{name}) > {TRANSACTION_LIMITS[name]} THEN 'long' {extra} END"

    problems = {
        "external_id": text_problem("external_id", True),
        "customer_number": text_problem("customer_number", True, "WHEN c.id IS NULL THEN 'unknown'"),
        "date": "d.problem",
        "revenue": revenue_problem,
        "cost_of_goods": cost_problem,
        "product": text_problem("product", False),
        "channel": text_problem("channel", False),
    }
    found = "num_nonnulls(" + ", ".join(problems) + ")"
    rows = _fetch(cursor, f"""
        SELECT line, number_given, {', '.join(problems)}, SUM({found}) OVER () FROM (
            SELECT r.line, r.customer_number AS number_given, {', '.join(f'{sql} AS {name}' for name, sql in problems.items())}
            FROM {RAW_TRANSACTIONS} r JOIN {RAW_DATES} d ON d.text = r.date
            LEFT JOIN {customers} c ON c.number = r.customer_number
        ) p
        WHERE {found} > 0 ORDER BY line LIMIT {MAX_ERRORS_SHOWN}
    """)
    texts = {name: {"required": _("A value is required."), "long": too_long(limit)} for name, limit in TRANSACTION_LIMITS.items()}
    texts["date"] = date_problems(EARLIEST_DATE)
    texts["revenue"] = texts["cost_of_goods"] = amount_problems(**amount_limits)
    shown = []
    for line, number, *codes, _total in rows:
        for name, code in zip(problems, codes, strict=False):
            if code == "unknown":
                shown.append(RowError(line, name, _("Unknown customer number “%(number)s”.") % {"number": number}))
            elif code:
                shown.append(RowError(line, name, texts[name][code]))
    result.add_found(shown, int(rows[0][-1]) if rows else 0)
    _report_duplicates(cursor, RAW_TRANSACTIONS, "external_id", "external_id", result)
    result.steps["check"] = time.perf_counter() - clock
    if not result.ok:
        return

    fields = ["customer_id", "date", "revenue", "cost_of_goods", "product", "channel"]
    parsed = f"""
        SELECT r.line, r.external_id, c.id AS customer_id, d.value AS date, {revenue} AS revenue,
               {cost} AS cost_of_goods, r.product, r.channel
        FROM {RAW_TRANSACTIONS} r JOIN {RAW_DATES} d ON d.text = r.date JOIN {customers} c ON c.number = r.customer_number
    """
    if result.dry_run:
        differs = " OR ".join(f"t.{name} IS DISTINCT FROM s.{name}" for name in fields)
        _counts(cursor, f"""SELECT COUNT(*), COUNT(*) FILTER (WHERE {differs})
                            FROM ({parsed}) s JOIN {table} t ON t.external_id = s.external_id""", result)
        return
    # Set operations instead of INSERT ... ON CONFLICT: the converted rows are written once to
    # a temporary table, the changed ones are updated in one UPDATE ... FROM, the new ones
    # appended by one INSERT ... SELECT of the rows whose id the table does not hold.
    # ON CONFLICT costs a speculative insertion per row and kept the update path (re-import)
    # at the speed of a row-by-row upsert.
    cursor.execute(f"DROP TABLE IF EXISTS {PARSED_TRANSACTIONS}")
    cursor.execute(f"CREATE TEMPORARY TABLE {PARSED_TRANSACTIONS} ON COMMIT DROP AS {parsed}")
    cursor.execute(f"ANALYZE {PARSED_TRANSACTIONS}")
    result.steps["convert"] = time.perf_counter() - clock - result.steps["check"]
    differs = " OR ".join(f"t.{name} IS DISTINCT FROM s.{name}" for name in fields)
    cursor.execute(f"""
        UPDATE {table} t SET {', '.join(f'{name} = s.{name}' for name in fields)}
        FROM {PARSED_TRANSACTIONS} s WHERE t.external_id = s.external_id AND ({differs})
    """)
    updated = cursor.rowcount
    result.steps["update"] = time.perf_counter() - clock - result.steps["check"] - result.steps["convert"]
    # File order (the line), which keeps the index inserts of ids that grow with the file (the
    # usual case) at the right edge of the unique index.
    cursor.execute(f"""
        INSERT INTO {table} (external_id, {', '.join(fields)})
        SELECT external_id, {', '.join(fields)} FROM {PARSED_TRANSACTIONS} s
        WHERE NOT EXISTS (SELECT 1 FROM {table} t WHERE t.external_id = s.external_id)
        ORDER BY line
    """)
    result.new, result.updated = cursor.rowcount, updated
    result.unchanged = result.rows - result.new - result.updated
    result.steps["insert"] = time.perf_counter() - clock - sum(result.steps[k] for k in ("check", "convert", "update"))


# --- services -----------------------------------------------------------------------------------------

SERVICE_STAGING = Staging(
    "cvm_import_services",
    {"line": "integer", "external_id": "varchar(64)", "content_key": "varchar(40)", "customer_id": "bigint",
     "service_type_id": "bigint", "date": "date", "quantity": "numeric(8, 2)", "note": "text",
     "logged_by_id": "bigint"},
)


def _check_services(frame: pd.DataFrame, result: ImportResult, context: dict) -> pd.DataFrame:
    check = Checker(frame, result, context)
    if "service_types" not in context:
        context["service_types"] = dict(ServiceType.objects.values_list("code", "id"))
        context["users"] = _user_ids()
    out = pd.DataFrame({"line": frame["line"]})
    out["external_id"] = pd.Series(check.text("external_id", max_length=64), index=out.index).replace("", None)
    numbers = frame["customer_number"]
    out["customer_id"] = check.lookup("customer_number", _customer_ids(numbers), what="customer number", required=True)
    out["service_type_id"] = check.lookup("service_type", context["service_types"], what="service type", required=True)
    out["date"] = check.date("date", required=True)
    out["quantity"] = check.amount("quantity", required=False, minimum=0, maximum=MAX_QUANTITY, default="1", positive=True)
    out["note"] = frame["note"]
    out["logged_by_id"] = check.lookup("logged_by", context["users"], what="user", required=False)
    if context.get("user_id"):
        out["logged_by_id"] = out["logged_by_id"].fillna(context["user_id"])
    # Rows without an id are keyed by their content, so the same file imported twice adds nothing.
    content = (
        numbers + "|" + frame["service_type"] + "|" + out["date"].fillna("") + "|"
        + out["quantity"].fillna("") + "|" + out["note"] + "|" + frame["logged_by"]
    )
    good = check.good()
    out, content = out[good], content[good]
    out["content_key"] = pd.util.hash_pandas_object(content, index=False).map("{:016x}".format) if len(out) else None
    for name in ("customer_id", "service_type_id"):
        out[name] = out[name].astype("int64")
    out["logged_by_id"] = out["logged_by_id"].astype("Int64")
    return out


def _merge_services(cursor, result: ImportResult) -> None:
    table, s = ServiceEvent._meta.db_table, SERVICE_STAGING.name
    # The n-th identical row without an id gets the n-th key: two equal calls on one day stay two.
    cursor.execute(f"""
        UPDATE {s} SET external_id = 'csv-' || {s}.content_key || '-' || CAST(r.rn AS varchar(12))
        FROM (SELECT line, ROW_NUMBER() OVER (PARTITION BY content_key ORDER BY line) AS rn
              FROM {s} WHERE external_id IS NULL) r
        WHERE {s}.line = r.line
    """)
    fields = ["customer_id", "service_type_id", "date", "quantity", "note", "logged_by_id"]
    source = {"note": "COALESCE(s.note, '')"}
    differs = " OR ".join(_distinct(f"t.{name}", source.get(name, f"s.{name}")) for name in fields)
    _counts(cursor, f"""SELECT COUNT(*), SUM(CASE WHEN {differs} THEN 1 ELSE 0 END)
                        FROM {s} s JOIN {table} t ON t.external_id = s.external_id""", result, staging=s)
    if result.dry_run or not result.ok:
        return
    now = timezone.now()
    changed = " OR ".join(_distinct(f"{table}.{name}", f"excluded.{name}") for name in fields)
    cursor.execute(f"""
        INSERT INTO {table} (external_id, {', '.join(fields)}, created_at, updated_at)
        SELECT s.external_id, {', '.join(source.get(name, f's.{name}') for name in fields)}, %s, %s FROM {s} s WHERE true
        ON CONFLICT (external_id) DO UPDATE SET {', '.join(f'{name} = excluded.{name}' for name in fields)},
            updated_at = excluded.updated_at
        WHERE {changed}
    """, [now, now])


# --- customers ----------------------------------------------------------------------------------------

CUSTOMER_STAGING = Staging(
    "cvm_import_customers",
    {"line": "integer", "number": "varchar(32)", "name": "varchar(200)", "industry": "varchar(100)",
     "region": "varchar(100)", "owner_id": "bigint", "acquired_on": "date", "acquisition_channel": "varchar(20)",
     "referred_by": "varchar(32)", "status": "varchar(10)", "lost_on": "date", "yearly_wallet": "numeric(14, 2)"},
)


def _check_customers(frame: pd.DataFrame, result: ImportResult, context: dict) -> pd.DataFrame:
    check = Checker(frame, result, context)
    if "users" not in context:
        context["users"] = _user_ids()
    out = pd.DataFrame({"line": frame["line"]})
    out["number"] = check.text("number", max_length=32, required=True)
    out["name"] = check.text("name", max_length=200, required=True)
    out["industry"] = check.text("industry", max_length=100)
    out["region"] = check.text("region", max_length=100)
    out["owner_id"] = check.lookup("owner", context["users"], what="user", required=False)
    out["acquired_on"] = check.date("acquired_on", required=False, earliest=EARLIEST_ACQUISITION)
    out["acquisition_channel"] = check.choice(
        "acquisition_channel", Customer.Channel.choices, default=Customer.Channel.DIRECT_SALES
    )
    out["referred_by"] = pd.Series(check.text("referred_by", max_length=32), index=out.index).replace("", None)
    check.rows_failed(out["referred_by"] == out["number"], "referred_by", "A customer cannot refer itself.")
    out["status"] = check.choice("status", Customer.Status.choices, default=Customer.Status.ACTIVE)
    out["lost_on"] = check.date("lost_on", required=False, earliest=EARLIEST_ACQUISITION)
    lost = out["status"] == Customer.Status.LOST
    lost_on_given = frame["lost_on"] != ""
    check.rows_failed(lost & ~lost_on_given, "lost_on", "A lost customer needs the date it was lost.")
    check.rows_failed(~lost & lost_on_given, "lost_on", _("An active customer has no lost date."))
    out["yearly_wallet"] = check.amount("yearly_wallet", required=False, minimum=0)
    out = out[check.good()]
    out["owner_id"] = out["owner_id"].astype("Int64")
    return out


def _merge_customers(cursor, result: ImportResult) -> None:
    table, s = Customer._meta.db_table, CUSTOMER_STAGING.name
    unknown = f"""
        SELECT s.line, s.referred_by FROM {s} s
        WHERE s.referred_by IS NOT NULL
          AND NOT EXISTS (SELECT 1 FROM {table} c WHERE c.number = s.referred_by)
          AND NOT EXISTS (SELECT 1 FROM {s} o WHERE o.number = s.referred_by)
        ORDER BY s.line
    """
    for line, number in _fetch(cursor, unknown):
        result.add_error(line, "referred_by", _("Unknown customer number “%(number)s” (neither in the database nor a valid row of this file).") % {"number": number})
    fields = ["name", "industry", "region", "owner_id", "acquired_on", "acquisition_channel", "status", "lost_on",
              "yearly_wallet"]
    source = {"industry": "COALESCE(s.industry, '')", "region": "COALESCE(s.region, '')"}
    differs = " OR ".join(
        [_distinct(f"t.{name}", source.get(name, f"s.{name}")) for name in fields]
        + [_distinct("t.referred_by_id", "r.id")]
    )
    _counts(cursor, f"""SELECT COUNT(*), SUM(CASE WHEN {differs} THEN 1 ELSE 0 END)
                        FROM {s} s JOIN {table} t ON t.number = s.number
                        LEFT JOIN {table} r ON r.number = s.referred_by""", result, staging=s)
    if result.dry_run or not result.ok:
        return
    now = timezone.now()
    changed = " OR ".join(_distinct(f"{table}.{name}", f"excluded.{name}") for name in fields)
    cursor.execute(f"""
        INSERT INTO {table} (number, {', '.join(fields)}, is_demo, created_at, updated_at)
        SELECT s.number, {', '.join(source.get(name, f's.{name}') for name in fields)}, %s, %s, %s FROM {s} s WHERE true
        ON CONFLICT (number) DO UPDATE SET {', '.join(f'{name} = excluded.{name}' for name in fields)},
            updated_at = excluded.updated_at
        WHERE {changed}
    """, [False, now, now])
    # Referrals second: a referrer may be a customer the same file creates.
    cursor.execute(f"""
        UPDATE {table} SET referred_by_id = x.ref_id, updated_at = %s
        FROM (SELECT s.number, r.id AS ref_id FROM {s} s LEFT JOIN {table} r ON r.number = s.referred_by) x
        WHERE {table}.number = x.number AND {_distinct(f'{table}.referred_by_id', 'x.ref_id')}
    """, [now])


# --- survey answers (NPS) ---------------------------------------------------------------------------

SURVEY_STAGING = Staging(
    "cvm_import_survey_answers",
    {"line": "integer", "external_id": "varchar(64)", "content_key": "varchar(40)", "customer_id": "bigint",
     "answered_on": "date", "score": "smallint", "comment": "text", "contact": "varchar(200)"},
)


def _check_survey_answers(frame: pd.DataFrame, result: ImportResult, context: dict) -> pd.DataFrame:
    check = Checker(frame, result, context)
    out = pd.DataFrame({"line": frame["line"]})
    out["external_id"] = pd.Series(check.text("external_id", max_length=64), index=out.index).replace("", None)
    numbers = frame["customer_number"]
    out["customer_id"] = check.lookup("customer_number", _customer_ids(numbers), what="customer number", required=True)
    out["answered_on"] = check.date("date", required=True)
    codes, values = check.distinct("score")
    check.fail(codes, values == "", "score", "A value is required.")
    check.fail(codes, (values != "") & ~values.str.fullmatch(r"(10|[0-9])"), "score", "A whole number from 0 to 10.")
    out["score"] = values.to_numpy()[codes]
    out["comment"] = frame["comment"]
    out["contact"] = check.text("contact", max_length=200)
    # Rows without an id are keyed by their content, so the same file imported twice adds nothing.
    content = numbers + "|" + out["answered_on"].fillna("") + "|" + frame["score"] + "|" + frame["contact"]
    good = check.good()
    out, content = out[good], content[good]
    out["content_key"] = pd.util.hash_pandas_object(content, index=False).map("{:016x}".format) if len(out) else None
    out["customer_id"] = out["customer_id"].astype("int64")
    out["score"] = out["score"].astype("int64")
    return out


def _merge_survey_answers(cursor, result: ImportResult) -> None:
    table, s = SurveyAnswer._meta.db_table, SURVEY_STAGING.name
    cursor.execute(f"""
        UPDATE {s} SET external_id = 'csv-' || {s}.content_key || '-' || CAST(r.rn AS varchar(12))
        FROM (SELECT line, ROW_NUMBER() OVER (PARTITION BY content_key ORDER BY line) AS rn
              FROM {s} WHERE external_id IS NULL) r
        WHERE {s}.line = r.line
    """)
    fields = ["customer_id", "answered_on", "score", "comment", "contact"]
    source = {"comment": "COALESCE(s.comment, '')", "contact": "COALESCE(s.contact, '')"}
    differs = " OR ".join(_distinct(f"t.{name}", source.get(name, f"s.{name}")) for name in fields)
    _counts(cursor, f"""SELECT COUNT(*), SUM(CASE WHEN {differs} THEN 1 ELSE 0 END)
                        FROM {s} s JOIN {table} t ON t.external_id = s.external_id""", result)
    if result.dry_run or not result.ok:
        return
    changed = " OR ".join(_distinct(f"{table}.{name}", f"excluded.{name}") for name in fields)
    cursor.execute(f"""
        INSERT INTO {table} (external_id, {', '.join(fields)}, created_at)
        SELECT s.external_id, {', '.join(source.get(name, f's.{name}') for name in fields)}, %s FROM {s} s WHERE true
        ON CONFLICT (external_id) WHERE external_id IS NOT NULL
        DO UPDATE SET {', '.join(f'{name} = excluded.{name}' for name in fields)}
        WHERE {changed}
    """, [timezone.now()])


KIND_STEPS = {
    "survey_answers": (SURVEY_STAGING, _check_survey_answers, _merge_survey_answers, "external_id", "external_id"),
    "customers": (CUSTOMER_STAGING, _check_customers, _merge_customers, "number", "number"),
    "transactions": (TRANSACTION_STAGING, _check_transactions, _merge_transactions, "external_id", "external_id"),
    "services": (SERVICE_STAGING, _check_services, _merge_services, "external_id", "external_id"),
}


def _csv_error_line(exc: csv.Error) -> int:
    found = re.match(r"line (\d+)", str(exc))
    return int(found.group(1)) if found else 0


def _csv_error_text(exc: csv.Error) -> str:
    text = re.sub(r"^line \d+: ", "", str(exc))
    if "unexpected end of data" in text:
        return 'a quote (") opens a field that is never closed, so the file ends inside it'
    return text


# --- the service ----------------------------------------------------------------------------------------


def import_file(
    *,
    kind: str,
    path: str | Path,
    dry_run: bool = False,
    delimiter: str | None = None,
    user=None,
    progress: Callable[[int, float], None] | None = None,
    time_limit: float | None = None,
) -> ImportResult:
    """Check a CSV file completely and, when it has no errors and this is no dry run, import it.

    ``progress(rows_done, seconds)`` is called after each chunk. With ``time_limit`` (seconds),
    a check or import still running after a chunk past that time stops with an error and
    writes nothing (the upload page uses it to answer before the web server's timeout).
    """
    if kind not in KINDS:
        raise ValueError(f"Unknown import kind {kind!r}; one of {', '.join(KINDS)}.")
    path = Path(path)
    result = ImportResult(kind=kind, dry_run=dry_run)
    started = time.perf_counter()
    result.encoding = detect_encoding(path)
    result.delimiter = normalise_delimiter(delimiter) or sniff_delimiter(_first_line(path, result.encoding))
    problem = scan_raw_lines(path)
    if problem is not None:
        _report_raw_problem(problem, path, result)
        result.seconds = time.perf_counter() - started
        return result
    staging, check, merge, key, key_column = KIND_STEPS[kind]
    context: dict = {"user_id": getattr(user, "pk", None)}

    def on_batch() -> None:
        seconds = time.perf_counter() - started
        if progress:
            progress(result.rows, seconds)
        if time_limit is not None and seconds > time_limit:
            raise ImportTooSlow

    try:
        with transaction.atomic(), connection.cursor() as cursor, _open_text(path, result.encoding) as handle:
            def batches():
                return read_rows(handle, delimiter=result.delimiter, columns=SPECS[kind].columns, result=result)

            if kind == "transactions" and _is_postgres():
                _import_transactions_in_sql(cursor, batches, path, result, on_batch)
            else:
                staging.create(cursor)
                for batch in batches():
                    result.rows += len(batch)
                    staging.load(cursor, check(_frame(batch, SPECS[kind].columns), result, context))
                    on_batch()
                if result.columns:
                    staging.index(cursor, key)
                    _report_duplicates(cursor, staging.name, key, key_column, result)
                    merge(cursor, result)
                staging.drop(cursor)
            if dry_run or not result.ok:
                raise ImportAborted
    except ImportAborted:
        pass
    except ImportTooSlow:
        result.add_error(
            0, "", f"Checking this file takes longer than {time_limit:.0f} s, the limit here; nothing was "
            f"written. Import it with the import_csv command, which has no time limit.",
        )
    except UnicodeDecodeError as exc:
        result.add_error(1, "", _("The file cannot be read as text: %(reason)s.") % {"reason": exc.reason})
    except csv.Error as exc:
        result.add_error(_csv_error_line(exc), "", _("The file is not valid CSV: %(problem)s.") % {"problem": _csv_error_text(exc)})
    except OperationalError as exc:
        if "locked" not in str(exc).lower():
            raise
        # SQLite: another import (or the nightly run) is writing; one writer at a time.
        result.add_error(
            0, "", _("The database is busy with another import or the nightly run; nothing was written. "
                     "Try again in a minute."),
        )
    result.committed = result.ok and not dry_run
    result.sort_errors()
    result.seconds = time.perf_counter() - started
    return result
