"""Rows for PostgreSQL's binary COPY format, built a column at a time with numpy.

In the text format most of a chunk of value rows went into writing floats as decimal text
(about 0.8 µs a value here) and the server's share into parsing them back. In binary a float
is its 8 bytes, an integer its 4 or 8, and an amount in cents PostgreSQL's numeric (base
10,000 digits), all of fixed width; only text and NULLs vary in length.

Each column is a `Field`: an n x width byte matrix whose rows are the field as COPY sends it
(its length as a 4-byte integer, then its bytes) and, where rows differ in length, the bytes
each row uses. `rows()` joins the fields of each row and keeps the used bytes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

import numpy as np

from .cents import rounded_cents

HEADER = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"  # signature, flags, no extension
TRAILER = b"\xff\xff"
_NULL = np.frombuffer(np.array([-1], dtype=">i4").tobytes(), dtype=np.uint8)

# numeric: digits of base 10,000; an amount of up to 16 integer digits in cents is four
# integer digits and one for the cents, so every non-NaN amount has the same 18 bytes.
_NUMERIC_DIGITS = 5
_NUMERIC_WEIGHT = 3  # the first digit counts 10,000^3
_NUMERIC_POSITIVE, _NUMERIC_NEGATIVE, _NUMERIC_NAN = 0x0000, 0x4000, 0xC000
_CENTS_LIMIT = 10**18  # 10^16 in cents: the five digits hold less


@dataclass
class Field:
    matrix: np.ndarray  # n x width uint8: the 4-byte length, then the value
    used: np.ndarray | None = None  # bytes of each row in use; None: all of them


def _fixed(big_endian: np.ndarray, null: np.ndarray | None = None) -> Field:
    n, size = len(big_endian), big_endian.dtype.itemsize
    matrix = np.empty((n, 4 + size), dtype=np.uint8)
    matrix[:, :4] = np.frombuffer(np.array([size], dtype=">i4").tobytes(), dtype=np.uint8)
    matrix[:, 4:] = np.ascontiguousarray(big_endian).view(np.uint8).reshape(n, size)
    if null is None or not null.any():
        return Field(matrix)
    matrix[null, :4] = _NULL
    return Field(matrix, np.where(null, 4, 4 + size))


def int8(values) -> Field:
    return _fixed(np.asarray(values, dtype=np.int64).astype(">i8"))


def int4(values) -> Field:
    values = np.asarray(values, dtype=np.int64)
    if len(values) and (values.min() < -(2**31) or values.max() >= 2**31):
        raise ValueError("integer out of range for a 4-byte column")
    return _fixed(values.astype(">i4"))


def float8(values, *, null_nan: bool = False) -> Field:
    values = np.asarray(values, dtype=np.float64)
    return _fixed(values.astype(">f8"), np.isnan(values) if null_nan else None)


def boolean(values) -> Field:
    return _fixed(np.asarray(values, dtype=bool).astype(np.uint8))


def text(values, *, prefix: bytes = b"") -> Field:
    """UTF-8 text (no NUL characters, which PostgreSQL's text cannot hold)."""
    values = np.ascontiguousarray(np.asarray(values, dtype=str))
    n, chars = len(values), values.dtype.itemsize // 4
    points = values.view(np.uint32).reshape(n, chars) if chars else np.zeros((n, 0), dtype=np.uint32)
    if not points.size or points.max() < 0x80:
        # ASCII, the most (codes, JSON of slugs and numbers): each code point is its byte, so the
        # bytes are numpy's UTF-32 cells cast (astype("S") took 5x as long: it checks each one).
        encoded = points.astype(np.uint8)
    else:
        utf8 = np.ascontiguousarray(np.char.encode(values, "utf-8"))
        encoded = utf8.view(np.uint8).reshape(n, utf8.dtype.itemsize)
    # Text holds no NUL: the NULs are numpy's padding, the rest the text's bytes.
    lengths = np.count_nonzero(encoded, axis=1) + len(prefix)
    start = 4 + len(prefix)
    matrix = np.zeros((n, start + encoded.shape[1]), dtype=np.uint8)
    matrix[:, :4] = lengths.astype(">i4").view(np.uint8).reshape(n, 4)
    if prefix:
        matrix[:, 4:start] = np.frombuffer(prefix, dtype=np.uint8)
    matrix[:, start:] = encoded
    return Field(matrix, 4 + lengths)


def jsonb(values) -> Field:
    """JSON texts as jsonb (its binary form is a version byte, 1, then the text)."""
    return text(values, prefix=b"\x01")


def numeric_cents(values, *, exact: Callable[[float], Decimal], null_nan: bool = False) -> Field:
    """Amounts rounded to cents as numeric, by the rule of copy_text.money: value x 100 rounded
    to the nearest integer where that cannot differ from ``exact`` (the reference rounding,
    a Decimal of cents), else ``exact`` itself. NaN is NULL with ``null_nan``, else numeric
    NaN (what the text "NaN" gives); an amount of 10^16 or more is refused."""
    values = np.asarray(values, dtype=np.float64)
    n = len(values)
    nan = np.isnan(values)
    cents, doubtful = rounded_cents(values)
    doubtful &= ~nan
    for k in np.flatnonzero(doubtful):
        amount = exact(float(values[k]))
        if not amount.is_finite() or abs(amount) >= Decimal(_CENTS_LIMIT) / 100:
            raise ValueError(f"amount {amount} does not fit a numeric column of cents")
        cents[k] = int(amount.scaleb(2))
    whole, part = np.divmod(np.abs(cents), 100)
    digits = np.stack([whole // 10**12 % 10**4, whole // 10**8 % 10**4, whole // 10**4 % 10**4, whole % 10**4,
                       part * 100], axis=1)
    header = np.empty((n, 4), dtype=np.int64)
    header[:, 0], header[:, 1], header[:, 3] = _NUMERIC_DIGITS, _NUMERIC_WEIGHT, 2
    header[:, 2] = np.where(cents < 0, _NUMERIC_NEGATIVE, _NUMERIC_POSITIVE)
    if nan.any() and not null_nan:
        header[nan] = (0, 0, _NUMERIC_NAN, 0)
    body = np.concatenate([header, digits], axis=1).astype(">u2")
    size = 2 * (4 + _NUMERIC_DIGITS)
    matrix = np.empty((n, 4 + size), dtype=np.uint8)
    matrix[:, :4] = np.frombuffer(np.array([size], dtype=">i4").tobytes(), dtype=np.uint8)
    matrix[:, 4:] = body.view(np.uint8).reshape(n, size)
    if not nan.any():
        return Field(matrix)
    if null_nan:
        matrix[nan, :4] = _NULL
        return Field(matrix, np.where(nan, 4, 4 + size))
    matrix[nan, :4] = np.frombuffer(np.array([8], dtype=">i4").tobytes(), dtype=np.uint8)
    return Field(matrix, np.where(nan, 4 + 8, 4 + size))


def rows(fields: list[Field]) -> bytes:
    """The binary COPY rows of the fields, in column order (no header or trailer)."""
    n = len(fields[0].matrix)
    count = np.empty((n, 2), dtype=np.uint8)
    count[:] = np.frombuffer(np.array([len(fields)], dtype=">i2").tobytes(), dtype=np.uint8)
    flat = np.hstack([count] + [field.matrix for field in fields]).ravel()
    if all(field.used is None for field in fields):
        return flat.tobytes()
    keep = np.hstack([np.ones((n, 2), dtype=bool)] + [
        np.ones(field.matrix.shape, dtype=bool) if field.used is None
        else np.arange(field.matrix.shape[1]) < field.used[:, None]
        for field in fields
    ]).ravel()
    return flat[keep].tobytes()
