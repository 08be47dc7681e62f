"""Reading the CSV files people export from their systems: one reader for the import and the
offline valuation, so a file one accepts the other accepts too.

What files may look like: comma-, semicolon-, tab- or pipe-separated (detected from the header
line); UTF-8 with or without byte-order mark, or Windows-1252 (detected); amounts with a
decimal point (``1,234.56``) or a decimal comma (``1.234,56``, German Excel), decided per file;
dates as ``YYYY-MM-DD`` or ``DD.MM.YYYY``, optionally followed by a time of day.

Speed: a whole file is read by pyarrow's CSV parser and its cells are checked with pyarrow's
vectorised string functions (a million rows in about a second); a file that parser does not
take the same way as Python's csv module (blank lines, line breaks inside quoted cells, a row
with another number of fields, ...) is read by the csv module instead, so both give the same
frame and the same messages.
"""

from __future__ import annotations

import codecs
import csv
import functools
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

# A date, optionally followed by a time (" 14:30", "T14:30:00", "14:30:00.123", "+01:00"):
# the valuation counts days, so the time is read and dropped.
ISO_DATE = r"(\d{4}-\d{1,2}-\d{1,2})"
GERMAN_DATE = r"(\d{1,2}\.\d{1,2}\.\d{4})"
TIME_OF_DAY = r"(?:[ T]\d{1,2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?"
# Spaces (also no-break and thin), currency signs and apostrophes (Swiss thousands) in amounts.
AMOUNT_NOISE = "[\t\n\r\f\v \u00a0\u202f\u2009€$']|EUR"
AMOUNT = r"^[-+]?\d+(\.\d+)?$"
DATE = (
    r"^(?:(?P<y1>\d{4})-(?P<m1>\d{1,2})-(?P<d1>\d{1,2})|(?P<d2>\d{1,2})\.(?P<m2>\d{1,2})\.(?P<y2>\d{4}))"
    + TIME_OF_DAY
    + "$"
)


# 0001-01-01 in days since 1970-01-01: the first day datetime64 and Python's date share.
FIRST_DAY = -719162


def detect_encoding(path: Path) -> str:
    """utf-8-sig when a BOM is present, utf-8 when the whole file decodes, else Windows-1252."""
    with open(path, "rb") as handle:
        if handle.read(3) == codecs.BOM_UTF8:
            return "utf-8-sig"
        handle.seek(0)
        decoder = codecs.getincrementaldecoder("utf-8")()
        try:
            while block := handle.read(1 << 20):
                # Plain ASCII (most exports) is UTF-8: checked in C, no decoding needed,
                # unless the block before ended inside a character.
                if block.isascii() and not decoder.getstate()[0]:
                    continue
                decoder.decode(block)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return "cp1252"
    return "utf-8"


def sniff_delimiter(header_line: str) -> str:
    """The separator used most often in the header line (ties: comma)."""
    counts = {sep: header_line.count(sep) for sep in (",", ";", "\t", "|")}
    best = max(counts, key=lambda sep: (counts[sep], sep == ","))
    return best if counts[best] else ","


def normalise_delimiter(value: str | None) -> str | None:
    if not value:
        return None
    return {"tab": "\t", "\\t": "\t", "semicolon": ";", "comma": ","}.get(value.lower(), value)


def normalise_header(name: str) -> str:
    """Header names compared case-insensitively; text in brackets ("owner (username)") ignored."""
    name = re.sub(r"\(.*?\)", "", name.replace("\ufeff", "")).strip().lower()
    return re.sub(r"[\s\-]+", "_", name)


def open_text(path: Path, encoding: str):
    # cp1252 leaves five bytes undefined; those would only come from a broken file.
    return open(path, encoding=encoding, errors="replace" if encoding == "cp1252" else "strict", newline="")


def first_line(path: Path, encoding: str) -> str:
    with open_text(path, encoding) as handle:
        for line in handle:
            if line.strip():
                return line
    return ""


def detect_decimal_comma(values: pd.Series | pa.ChunkedArray, *, delimiter: str) -> bool:
    """Decimal comma when more amounts end in ``,dd`` than in ``.dd``; without a hint, ';' files use it."""
    text = _arrow_text(values)
    chunks = text.chunks if isinstance(text, pa.ChunkedArray) else [text]
    present: dict[str, bool] = {}

    def has(mark: str) -> bool:
        if mark not in present:
            present[mark] = any(pc.any(pc.match_substring(chunk, mark)).as_py() for chunk in chunks)
        return present[mark]

    def matches(pattern: str, *marks: str):
        # Each pattern needs its marks in the cell: a mark found nowhere spares the scan.
        if not all(has(mark) for mark in marks):
            return None
        return pc.match_substring_regex(text, pattern)

    def rows(*masks) -> int:
        # Cells matching either pattern, each counted once ("1.234,56" matches both).
        found = [mask for mask in masks if mask is not None]
        if not found:
            return 0
        either = found[0]
        for mask in found[1:]:
            either = pc.or_kleene(either, mask)
        return pc.sum(either).as_py() or 0

    comma = rows(matches(r",\d{1,2}$", ","), matches(r"\.\d{3},", ",", "."))
    if not comma:
        # Then one cell with a decimal point decides (point > comma): the scan stops at the
        # first block of cells that has one, which in a plain file is the first.
        point_patterns = [
            pattern for pattern, marks in ((r"\.\d{1,2}$", "."), (r",\d{3}\.", ",.")) if all(map(has, marks))
        ]
        for chunk in chunks:
            if any(pc.any(pc.match_substring_regex(chunk, pattern)).as_py() for pattern in point_patterns):
                return False
        return delimiter == ";"
    point = rows(matches(r"\.\d{1,2}$", "."), matches(r",\d{3}\.", ",", "."))
    return bool(comma > point)


def read_table(path: Path, *, delimiter: str | None = None) -> tuple[pd.DataFrame, str, str]:
    """The whole file as text cells (stripped), with normalised header names and a ``line``
    column (the line number in the file); empty lines and Excel's ";;;" lines are skipped.
    Returns (frame, encoding, delimiter). Raises ValueError for an empty file or a row with
    a different number of fields than the header line. For files that fit in memory (the
    import reads large files in batches with the same pieces)."""
    encoding = detect_encoding(path)
    delimiter = normalise_delimiter(delimiter) or sniff_delimiter(first_line(path, encoding))
    frame = _read_table_arrow(path, encoding, delimiter)
    if frame is None:
        frame = _read_table_python(path, encoding, delimiter)
    return frame, encoding, delimiter


def read_columns(
    path: Path, *, delimiter: str | None = None
) -> tuple[dict[str, pa.ChunkedArray], np.ndarray, str, str]:
    """:func:`read_table` without the pandas frame: each column's stripped cells as one pyarrow
    string array, so that a caller that checks and converts whole columns makes no Python
    string per cell. Returns (columns by normalised header name, in the file's order; where
    two headers normalise alike the first is kept), the line number of each row, the
    encoding and the delimiter. Same files, same rows, same errors as read_table."""
    encoding = detect_encoding(path)
    delimiter = normalise_delimiter(delimiter) or sniff_delimiter(first_line(path, encoding))
    cells = _read_cells_arrow(path, encoding, delimiter)
    if cells is None:
        frame = _read_table_python(path, encoding, delimiter)
        names = list(frame.columns[1:])
        cells = (
            names,
            [pa.chunked_array([pa.array(frame.iloc[:, i + 1].tolist(), type=pa.string())]) for i in range(len(names))],
            frame["line"].to_numpy(dtype=np.int64),
        )
    names, arrays, line = cells
    columns: dict[str, pa.ChunkedArray] = {}
    for name, array in zip(names, arrays, strict=True):
        columns.setdefault(name, array)
    return columns, line, encoding, delimiter


def _read_table_arrow(path: Path, encoding: str, delimiter: str) -> pd.DataFrame | None:
    """The frame of :func:`read_table` from pyarrow's parser (see _read_cells_arrow), or None."""
    cells = _read_cells_arrow(path, encoding, delimiter)
    if cells is None:
        return None
    names, arrays, line = cells
    frame = pd.DataFrame({"line": line, **{f"_{i}": cell.to_pandas() for i, cell in enumerate(arrays)}})
    frame.columns = ["line", *names]
    return frame


def _read_cells_arrow(
    path: Path, encoding: str, delimiter: str
) -> tuple[list[str], list[pa.ChunkedArray], np.ndarray] | None:
    """(normalised header names, stripped cells per column, line numbers) from pyarrow's
    parser, or None when the file needs the csv module: the header is not on the first line,
    a line is blank, a quoted cell spans lines, a row has another number of fields, or the
    parser rejects the file for any other reason. Each row's line number is its position + 2
    (header on line 1), which holds because the rows read must equal the lines in the file;
    Excel's ";;;" rows are dropped afterwards."""
    with open(path, "rb") as handle:
        data = handle.read()
    lines = data.count(b"\n") + (0 if data.endswith(b"\n") else 1)
    with open_text(path, encoding) as handle:
        header_line = handle.readline()
    if not header_line.strip():
        return None
    header = next(csv.reader([header_line], delimiter=delimiter))
    if not any(cell.strip() for cell in header):  # an Excel ";;;" line first: the csv module skips it
        return None
    names = [f"c{i}" for i in range(len(header))]
    try:
        table = pacsv.read_csv(
            pa.py_buffer(data),
            read_options=pacsv.ReadOptions(
                column_names=names, skip_rows=1, encoding="utf8" if encoding.startswith("utf-8") else encoding
            ),
            parse_options=pacsv.ParseOptions(delimiter=delimiter, newlines_in_values=False, ignore_empty_lines=True),
            convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys(names, pa.string()),
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except (pa.ArrowInvalid, UnicodeDecodeError, LookupError):
        return None
    if table.num_rows != lines - 1:
        return None
    cells = [_trim(table[name]) for name in names]
    filled = functools.reduce(pc.or_, [pc.not_equal(pc.binary_length(cell), 0) for cell in cells])
    line = np.arange(2, table.num_rows + 2, dtype=np.int64)
    if not pc.all(filled).as_py():
        cells = [pc.filter(cell, filled) for cell in cells]
        line = line[filled.to_numpy(zero_copy_only=False)]
    return [normalise_header(cell) for cell in header], cells, line


def _trim(cells: pa.ChunkedArray) -> pa.ChunkedArray:
    """The cells stripped as str.strip strips them (the ASCII variant when all are ASCII: faster)."""
    if not _may_need_trim(cells):
        return cells
    if pc.all(pc.string_is_ascii(cells)).as_py() is not False:
        return pc.ascii_trim_whitespace(cells)
    return pc.utf8_trim_whitespace(cells)


def _may_need_trim(cells: pa.ChunkedArray) -> bool:
    """False when no cell starts or ends with a byte outside printable ASCII without the
    space (0x21-0x7E): then no whitespace, ASCII or Unicode, can be stripped. Read from the
    arrays' offsets and bytes, which costs a fraction of stripping (a copy of every cell)."""
    for chunk in cells.chunks:
        if chunk.type != pa.string() or chunk.null_count:
            return True
        _, offsets, data = chunk.buffers()
        if data is None:  # no bytes at all: only empty cells
            continue
        ends = np.frombuffer(offsets, dtype=np.int32)[chunk.offset : chunk.offset + len(chunk) + 1]
        filled = ends[1:] > ends[:-1]
        raw = np.frombuffer(data, dtype=np.uint8)
        for edge in (raw[ends[:-1][filled]], raw[ends[1:][filled] - 1]):
            if ((edge < 0x21) | (edge > 0x7E)).any():
                return True
    return False


def _read_table_python(path: Path, encoding: str, delimiter: str) -> pd.DataFrame:
    rows: list[list[str]] = []
    with open_text(path, encoding) as handle:
        reader = csv.reader(handle, delimiter=delimiter)
        header = None
        for raw in reader:
            if any(cell.strip() for cell in raw):
                header = [normalise_header(cell) for cell in raw]
                break
        if header is None:
            raise ValueError("the file is empty")
        width = len(header)
        for raw in reader:
            if not "".join(raw).strip():
                continue
            if len(raw) != width:
                raise ValueError(
                    f"line {reader.line_num}: expected {width} fields as in the header line, found {len(raw)}"
                )
            rows.append([reader.line_num, *map(str.strip, raw)])
    frame = pd.DataFrame(rows, columns=["line", *header], dtype=object)
    frame["line"] = frame["line"].astype("int64")
    return frame


def _arrow_text(values: pd.Series | pa.ChunkedArray | pa.Array) -> pa.Array | pa.ChunkedArray:
    """The cells as one pyarrow string array (a missing cell becomes the text "nan", as
    ``astype(str)`` makes it, so it is reported like any other bad text); pyarrow strings
    (read_columns) are taken as they are."""
    if isinstance(values, pa.ChunkedArray | pa.Array):
        return values if values.type == pa.string() else pc.cast(values, pa.string())
    text = values.astype(str)
    try:
        return pa.array(text, type=pa.string(), from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return pa.array([str(v) for v in text], type=pa.string())


def _index(values) -> pd.Index | None:
    # Results of a pandas Series keep its index; of pyarrow cells, positions.
    return values.index if isinstance(values, pd.Series) else None


def parse_dates(values: pd.Series | pa.ChunkedArray) -> pd.Series:
    """Day of each ``YYYY-MM-DD`` or ``DD.MM.YYYY`` text, a time of day after it dropped;
    NaT where the text is no such date (or no day in the calendar)."""
    text = _arrow_text(values)
    # pyarrow's date parser takes exactly zero-padded YYYY-MM-DD (no space, no time): when
    # it takes every cell, that is what the steps below would find, at a fraction of the cost.
    if len(text) and (days := _iso_days(text)) is not None:
        return pd.Series(days, index=_index(values), dtype="datetime64[s]")
    text = pc.utf8_trim_whitespace(text)
    # Most files write every date one way, zero-padded and without a time: then the parts
    # stand at fixed places. Otherwise each cell is taken apart by the pattern DATE.
    for pattern, places in (
        (r"^\d{4}-\d{2}-\d{2}$", ((0, 4), (5, 7), (8, 10))),
        (r"^\d{2}\.\d{2}\.\d{4}$", ((6, 10), (3, 5), (0, 2))),
    ):
        if len(text) and pc.all(pc.match_substring_regex(text, pattern)).as_py():
            if places[0] == (0, 4) and (days := _iso_days(text)) is not None:
                return pd.Series(days, index=_index(values), dtype="datetime64[s]")
            year, month, day = (pc.utf8_slice_codeunits(text, start, stop) for start, stop in places)
            break
    else:
        parts = pc.extract_regex(text, pattern=DATE)
        year, month, day = (
            pc.if_else(
                pc.not_equal(pc.struct_field(parts, f"{p}1"), ""),
                pc.struct_field(parts, f"{p}1"),
                pc.struct_field(parts, f"{p}2"),
            )
            for p in ("y", "m", "d")
        )
    year, month, day = (
        pc.fill_null(pc.cast(pc.if_else(pc.equal(part, ""), None, part), pa.int64()), 0).to_numpy(zero_copy_only=False)
        for part in (year, month, day)
    )
    return pd.Series(_calendar_days(year, month, day), index=_index(values), dtype="datetime64[s]")


def _iso_days(text: pa.ChunkedArray | pa.Array) -> np.ndarray | None:
    """YYYY-MM-DD texts as datetime64[s] by pyarrow's date parser, or None when one of them is
    no day of the calendar from year 1 on (then _calendar_days names which)."""
    try:
        days = pc.cast(text, pa.date32())
    except pa.ArrowInvalid:
        return None
    if pc.min(pc.cast(days, pa.int32())).as_py() < FIRST_DAY:  # year 0 parses, but is no year
        return None
    return days.to_numpy(zero_copy_only=False).astype("datetime64[D]").astype("datetime64[s]")


def _calendar_days(year: np.ndarray, month: np.ndarray, day: np.ndarray) -> np.ndarray:
    """The days as datetime64[s]; NaT where year, month and day name no day of the calendar."""
    ok = (year >= 1) & (month >= 1) & (month <= 12) & (day >= 1)
    first = ((np.where(ok, year, 1970) - 1970) * 12 + np.where(ok, month, 1) - 1).astype("datetime64[M]")
    days_in_month = ((first + 1).astype("datetime64[D]") - first.astype("datetime64[D]")).astype(np.int64)
    ok &= day <= days_in_month
    parsed = (first.astype("datetime64[D]") + np.where(ok, day - 1, 0)).astype("datetime64[s]")
    parsed[~ok] = np.datetime64("NaT")
    return parsed


# Bytes of a plain number (AMOUNT): digits, the point and the signs.
_PLAIN_BYTE = np.zeros(256, dtype=bool)
_PLAIN_BYTE[list(b"0123456789.+-")] = True


def _plain_numbers(text: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray | None:
    """The cells as float64 when every cell matches AMOUNT, else None. pyarrow's number
    parser decides, and rejects every malformed number; of the forms it takes beyond AMOUNT
    (exponents, inf and nan, a point first, last or after the sign) none passes the byte
    checks below, which cost a fraction of matching AMOUNT cell by cell."""
    try:
        numbers = pc.cast(text, pa.float64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    for chunk in text.chunks if isinstance(text, pa.ChunkedArray) else [text]:
        if len(chunk) == 0:
            continue
        if chunk.null_count or chunk.type != pa.string():
            return None
        _, offsets, data = chunk.buffers()
        ends = np.frombuffer(offsets, dtype=np.int32)[chunk.offset : chunk.offset + len(chunk) + 1]
        if data is None or (ends[1:] <= ends[:-1]).any():  # an empty cell is no number
            return None
        raw = np.frombuffer(data, dtype=np.uint8)
        if not _PLAIN_BYTE[raw[ends[0] : ends[-1]]].all():
            return None
        first, last = raw[ends[:-1]], raw[ends[1:] - 1]
        if (first == ord(".")).any() or ((last < ord("0")) | (last > ord("9"))).any():
            return None
        signed = ends[:-1][(first == ord("+")) | (first == ord("-"))]
        after_sign = raw[signed + 1]  # a sign alone ends in no digit: excluded above
        if ((after_sign < ord("0")) | (after_sign > ord("9"))).any():
            return None
    return numbers


def parse_amounts(values: pd.Series | pa.ChunkedArray, *, decimal_comma: bool) -> pd.Series:
    """Numbers from amount texts: thousands separators, spaces and currency signs dropped,
    the decimal separator of the file made a point; NaN where the text is no number."""
    text = _arrow_text(values)
    if not decimal_comma and (plain := _plain_numbers(text)) is not None:
        # Plain numbers everywhere (the usual export): nothing to clean.
        return pd.Series(plain.to_numpy(zero_copy_only=False), index=_index(values))
    if decimal_comma:
        text = pc.replace_substring(pc.replace_substring(text, ".", ""), ",", ".")
    else:
        text = pc.replace_substring(text, ",", "")
    cleaned = pc.replace_substring_regex(text, AMOUNT_NOISE, "")
    number = pc.if_else(pc.match_substring_regex(cleaned, AMOUNT), cleaned, None)
    return pd.Series(pc.cast(number, pa.float64()).to_numpy(zero_copy_only=False), index=_index(values))


def write_frame(frame: pd.DataFrame, path: Path, *, index_label: str, decimals: int = 4) -> None:
    """``frame.to_csv(path, index_label=index_label, float_format=f"%.{decimals}f")``, byte for
    byte, formatted column by column with numpy and pyarrow: pandas formats every float through
    Python's ``%`` operator, about 30 s for a million rows of forty columns. Columns of other
    kinds than float, integer, bool, midnight datetimes and text are left to pandas. One
    difference: a text holding a bare carriage return is quoted here (pandas leaves it bare,
    which splits the row for a reader)."""
    if 0 <= decimals <= 8 and not frame.columns.has_duplicates and _write_blocks(frame, path, index_label, decimals):
        return
    frame.to_csv(path, index_label=index_label, float_format=f"%.{decimals}f")


# Rows formatted at a time by write_frame (bounds the memory of the texts).
_WRITE_ROWS = 100_000


def _write_blocks(frame: pd.DataFrame, path: Path, index_label: str, decimals: int) -> bool:
    """write_frame block by block; False (the file then incomplete) at a column it does not handle."""
    with open(path, "w", newline="") as handle:
        csv.writer(handle, lineterminator="\n").writerow([index_label, *frame.columns])
    with open(path, "ab") as handle:
        for start in range(0, len(frame), _WRITE_ROWS):
            block = frame.iloc[start : start + _WRITE_ROWS]
            columns = [_cell_texts(block.index, decimals)] + [_cell_texts(block[c], decimals) for c in block.columns]
            if any(column is None for column in columns):
                return False
            lines = pc.binary_join_element_wise(*columns, ",")
            lines = pc.binary_join_element_wise(lines, pa.scalar("", pa.string()), "\n")
            _, offsets, data = lines.buffers()
            ends = np.frombuffer(offsets, dtype=np.int32)[lines.offset : lines.offset + len(lines) + 1]
            handle.write(memoryview(data)[ends[0] : ends[-1]])
    return True


def _cell_texts(values: pd.Series | pd.Index, decimals: int) -> pa.Array | None:
    """The cells as pandas' to_csv writes them (missing: empty; text quoted where the csv
    module's QUOTE_MINIMAL quotes it), or None for a kind of column not handled here."""
    dtype = values.dtype
    if isinstance(dtype, pd.api.extensions.ExtensionDtype) and not pd.api.types.is_string_dtype(dtype):
        # Nullable integers and booleans, categories...: their missing values (pd.NA) would be
        # written "nan" or refused by pyarrow; pandas writes them empty.
        return None
    array = values.to_numpy()
    if dtype.kind == "f":
        text = _fixed_point(array.astype(np.float64), decimals)
    elif dtype.kind in "iu":
        text = pc.cast(pa.array(array), pa.string())
    elif dtype.kind == "b":
        text = pc.if_else(pa.array(array), "True", "False")
    elif dtype.kind == "M" and getattr(dtype, "tz", None) is None:
        days = array.astype("datetime64[D]")
        known = ~np.isnat(array)
        if (days[known] != array[known]).any():  # a time of day: pandas writes it, left to pandas
            return None
        text = pc.cast(pa.array(days, mask=~known), pa.string())
    elif dtype.kind == "O" or pd.api.types.is_string_dtype(dtype):
        try:
            text = pa.array(array, type=pa.string(), from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            return None
        quote = pc.match_substring_regex(text, '[,"\r\n]')
        quoted = pc.binary_join_element_wise('"', pc.replace_substring(text, '"', '""'), '"', "")
        text = pc.if_else(pc.fill_null(quote, False), quoted, text)
    else:
        return None
    if isinstance(text, pa.ChunkedArray):
        text = text.combine_chunks()
    return pc.fill_null(text, "") if text.null_count else text


def _fixed_point(values: np.ndarray, decimals: int) -> pa.Array:
    """``"%.{decimals}f" % v`` for every value (NaN: null). Rounded in floating point where
    that is exact; values near a rounding tie, very large ones and infinities are formatted
    by Python itself."""
    scale = 10**decimals
    missing = np.isnan(values)
    with np.errstate(invalid="ignore", over="ignore"):
        scaled = values * scale
        tie = np.abs(np.abs(scaled - np.trunc(scaled)) - 0.5) < 1e-4
        own = ~missing & (tie | ~(np.abs(scaled) < 2.0**50))
    units = np.where(missing | own, 0.0, np.abs(np.rint(scaled))).astype(np.int64)
    whole = pc.cast(pa.array(units // scale), pa.string())
    if decimals:
        part = pc.utf8_lpad(pc.cast(pa.array(units % scale), pa.string()), decimals, "0")
        text = pc.binary_join_element_wise(whole, part, ".")
    else:
        text = whole
    text = pc.if_else(pa.array(np.signbit(values)), pc.binary_join_element_wise("-", text, ""), text)
    if own.any():
        replacement = pa.array([f"%.{decimals}f" % v for v in values[own]], type=pa.string())
        text = pc.replace_with_mask(text, pa.array(own), replacement)
    return pc.if_else(pa.array(missing), pa.scalar(None, pa.string()), text)
