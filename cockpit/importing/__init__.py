"""CSV import of customers, transactions and services: one service for the command and the upload page.

The modules: ``results`` (what an import found), ``reading`` (the file), ``checks`` (the
vectorised checks), ``staging`` (staging tables), ``kinds`` (the four kinds of file, their
checks and merges), ``transactions_sql`` (transactions on PostgreSQL, checked in SQL); this
module holds the service, ``import_file``.

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

- Transactions on PostgreSQL: the raw text goes in by ``COPY`` (a plain file's bytes as they
  are) into the import's own unlogged work tables; one set-based query, which PostgreSQL
  splits over its parallel workers, converts every row, lists every problem (dates are
  parsed once per distinct value) and finds the row the table already holds under the id;
  then one ``UPDATE`` writes the rows that differ and one ``INSERT ... SELECT`` the new ones.
  Other writers of transactions wait from that look until the import commits. A database
  user without the right to create tables in the schema gets temporary work tables, which
  parallel workers cannot read: the same results, the checks on one core.
- Otherwise (SQLite, customers, services): each batch is checked with vectorised pandas
  string operations and the checked rows are staged (PostgreSQL: ``COPY``; SQLite:
  ``executemany``); checks that need the whole file (duplicate ids, referrals) run as SQL on
  the staging table, then one ``INSERT ... ON CONFLICT DO UPDATE`` merges it.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from django.db import OperationalError, connection, transaction
from django.utils.translation import gettext as _

from core.csvfile import detect_encoding, normalise_delimiter, sniff_delimiter
from core.csvfile import first_line as _first_line
from core.csvfile import open_text as _open_text

from .checks import Checker
from .kinds import KIND_STEPS, SPECS, Spec
from .reading import _csv_error_line, _csv_error_text, _frame, _report_raw_problem, read_rows, scan_raw_lines
from .results import (
    CHUNK_ROWS,
    DELIMITER_NAMES,
    KIND_LABELS,
    KINDS,
    MAX_ERRORS_SHOWN,
    ImportAborted,
    ImportResult,
    ImportTooSlow,
    RowError,
)
from .staging import Staging, _is_postgres, _report_duplicates
from .transactions_sql import _import_transactions_in_sql, _PaddingFinder

# The package's face: the import service and what the pages, the command and the tests use.
__all__ = [
    "CHUNK_ROWS", "DELIMITER_NAMES", "KINDS", "KIND_LABELS", "MAX_ERRORS_SHOWN", "SPECS", "Checker", "ImportResult",
    "RowError", "Spec", "Staging", "_PaddingFinder", "import_file", "read_rows", "scan_raw_lines",
]


# --- the service ----------------------------------------------------------------------------------------


def _import_through_staging(cursor, batches: Iterator[list[list]], result: ImportResult, context: dict,
                            on_batch: Callable[[], None]) -> None:
    """Each batch checked with pandas into the kind's staging table, then the whole-file checks
    and the merge as SQL."""
    staging, check, merge, key, key_column = KIND_STEPS[result.kind]
    columns = SPECS[result.kind].columns
    staging.create(cursor)
    for batch in batches:
        result.rows += len(batch)
        staging.load(cursor, check(_frame(batch, columns), result, context))
        on_batch()
    if result.columns:
        staging.index(cursor, key)
        _report_duplicates(cursor, staging.name, key, key_column, result)
        merge(cursor, result)
    staging.drop(cursor)


def _report_stop(exc: Exception, result: ImportResult, time_limit: float | None) -> None:
    """An import stopped by its time limit or by a file that is no text or no valid CSV."""
    if isinstance(exc, ImportTooSlow):
        result.add_error(
            0, "", f"Checking this file takes longer than {time_limit:.0f} s, the limit here; nothing was "
            f"written. Import it with the import_csv command, which has no time limit.",
        )
    elif isinstance(exc, UnicodeDecodeError):
        result.add_error(1, "", _("The file cannot be read as text: %(reason)s.") % {"reason": exc.reason})
    else:
        result.add_error(_csv_error_line(exc), "", _("The file is not valid CSV: %(problem)s.") % {"problem": _csv_error_text(exc)})


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
                _import_through_staging(cursor, batches(), result, context, on_batch)
            if dry_run or not result.ok:
                raise ImportAborted
    except ImportAborted:
        pass
    except (ImportTooSlow, UnicodeDecodeError, csv.Error) as exc:
        _report_stop(exc, result, time_limit)
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
