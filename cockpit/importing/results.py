"""What an import found: the counts, the errors by line and column, and the kinds of file."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

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
