"""Reading the CSV files people export from their systems: one reader for the import and the
offline valuation, so a file one accepts the other accepts too.

What files may look like: comma-, semicolon-, tab- or pipe-separated (detected from the header
line); UTF-8 with or without byte-order mark, or Windows-1252 (detected); amounts with a
decimal point (``1,234.56``) or a decimal comma (``1.234,56``, German Excel), decided per file;
dates as ``YYYY-MM-DD`` or ``DD.MM.YYYY``, optionally followed by a time of day.
"""

from __future__ import annotations

import codecs
import csv
import re
from pathlib import Path

import pandas as pd

# A date, optionally followed by a time (" 14:30", "T14:30:00", "14:30:00.123", "+01:00"):
# the valuation counts days, so the time is read and dropped.
ISO_DATE = r"(\d{4}-\d{1,2}-\d{1,2})"
GERMAN_DATE = r"(\d{1,2}\.\d{1,2}\.\d{4})"
TIME_OF_DAY = r"(?:[ T]\d{1,2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?"
AMOUNT_NOISE = r"[\s\u00a0\u202f\u2009€$']|EUR"


def detect_encoding(path: Path) -> str:
    """utf-8-sig when a BOM is present, utf-8 when the whole file decodes, else Windows-1252."""
    with open(path, "rb") as handle:
        if handle.read(3) == codecs.BOM_UTF8:
            return "utf-8-sig"
        handle.seek(0)
        decoder = codecs.getincrementaldecoder("utf-8")()
        try:
            while block := handle.read(1 << 20):
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


def detect_decimal_comma(values: pd.Series, *, delimiter: str) -> bool:
    """Decimal comma when more amounts end in ``,dd`` than in ``.dd``; without a hint, ';' files use it."""
    comma = values.str.contains(r",\d{1,2}$|\.\d{3},", regex=True).sum()
    point = values.str.contains(r"\.\d{1,2}$|,\d{3}\.", regex=True).sum()
    if comma or point:
        return bool(comma > point)
    return delimiter == ";"


def read_table(path: Path, *, delimiter: str | None = None) -> tuple[pd.DataFrame, str, str]:
    """The whole file as text cells (stripped), with normalised header names and a ``line``
    column (the line number in the file); empty lines and Excel's ";;;" lines are skipped.
    Returns (frame, encoding, delimiter). Raises ValueError for an empty file or a row with
    a different number of fields than the header line. For files that fit in memory (the
    import reads large files in batches with the same pieces)."""
    encoding = detect_encoding(path)
    delimiter = normalise_delimiter(delimiter) or sniff_delimiter(first_line(path, encoding))
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
                raise ValueError(f"line {reader.line_num}: expected {width} fields as in the header line, found {len(raw)}")
            rows.append([reader.line_num, *map(str.strip, raw)])
    frame = pd.DataFrame(rows, columns=["line", *header], dtype=object)
    frame["line"] = frame["line"].astype("int64")
    return frame, encoding, delimiter


def parse_dates(values: pd.Series) -> pd.Series:
    """Day of each ``YYYY-MM-DD`` or ``DD.MM.YYYY`` text, a time of day after it dropped;
    NaT where the text is no such date (or no day in the calendar)."""
    text = values.astype(str).str.strip()
    iso = text.str.extract(rf"^{ISO_DATE}{TIME_OF_DAY}$", expand=False)
    german = text.str.extract(rf"^{GERMAN_DATE}{TIME_OF_DAY}$", expand=False)
    parsed = pd.Series(pd.NaT, index=values.index, dtype="datetime64[s]")
    if iso.notna().any():
        parsed[iso.notna()] = pd.to_datetime(iso[iso.notna()], format="%Y-%m-%d", errors="coerce").astype("datetime64[s]")
    if german.notna().any():
        parsed[german.notna()] = pd.to_datetime(german[german.notna()], format="%d.%m.%Y", errors="coerce").astype("datetime64[s]")
    return parsed


def parse_amounts(values: pd.Series, *, decimal_comma: bool) -> pd.Series:
    """Numbers from amount texts: thousands separators, spaces and currency signs dropped,
    the decimal separator of the file made a point; NaN where the text is no number."""
    table = str.maketrans(",", ".", ".") if decimal_comma else str.maketrans("", "", ",")
    cleaned = values.astype(str).str.translate(table).str.replace(AMOUNT_NOISE, "", regex=True)
    number = cleaned.str.fullmatch(r"[-+]?\d+(\.\d+)?")
    return pd.to_numeric(cleaned.where(number), errors="coerce")
