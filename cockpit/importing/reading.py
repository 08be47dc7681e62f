"""Reading a CSV file: raw problems (NUL bytes, over-long lines), rows in batches, CSV errors in words."""

from __future__ import annotations

import csv
import operator
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from django.utils.translation import gettext as _

from core.csvfile import (
    normalise_header,
)
from core.csvfile import open_text as _open_text

from .kinds import SPECS
from .results import CHUNK_ROWS, MAX_COLUMNS, MAX_LINE_BYTES, PREVIEW_ROWS, ImportResult

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
        if not _header_is_complete(header, reader.line_num, result):
            return
        width = len(header)
        # Position ``width`` is the empty string appended to every row: the value of an absent column.
        pick = operator.itemgetter(*[header.index(name) if name in header else width for name in columns])
        batch: list[list] = []
        for raw in reader:
            next_start = reader.line_num + 1
            if len(raw) != width:
                _report_wrong_width(raw, reader.line_num, width, result)
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


def _header_is_complete(header: list[str], line: int, result: ImportResult) -> bool:
    """Every required column there, none twice; else the problems are reported."""
    missing = [name for name in SPECS[result.kind].required if name not in header]
    for name in missing:
        result.add_error(line, name, _("This column is missing from the header line."))
    counts = Counter(name for name in header if name)
    duplicated = sorted(name for name, count in counts.items() if count > 1)
    for name in duplicated:
        result.add_error(line, name, _("This column appears more than once in the header line."))
    return not (missing or duplicated)


def _report_wrong_width(raw: list[str], line: int, width: int, result: ImportResult) -> None:
    """A row with more or fewer fields than the header: an error (and a row), unless it is empty."""
    if not "".join(raw).strip():
        return
    if len(result.preview) < PREVIEW_ROWS:
        result.preview.append(raw)
    result.add_error(line, "", _("Expected %(width)s fields as in the header line, found %(found)s.") % {"width": width, "found": len(raw)})
    result.rows += 1


def _frame(batch: list[list], columns: list[str]) -> pd.DataFrame:
    frame = pd.DataFrame(batch, columns=["line", *columns], dtype=object)
    frame["line"] = frame["line"].astype(np.int64)
    return frame


def _csv_error_line(exc: csv.Error) -> int:
    found = re.match(r"line (\d+)", str(exc))
    return int(found.group(1)) if found else 0


def _csv_error_text(exc: csv.Error) -> str:
    text = re.sub(r"^line \d+: ", "", str(exc))
    if "unexpected end of data" in text:
        return 'a quote (") opens a field that is never closed, so the file ends inside it'
    return text
