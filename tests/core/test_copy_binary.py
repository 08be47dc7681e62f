"""Binary COPY rows: PostgreSQL stores the same values from them as from the text rows."""

import math
from decimal import Decimal

import numpy as np
import pytest
from django.db import connection

from core import copy_binary, copy_text
from valuation.engine.money import to_money

pytestmark = [pytest.mark.services, pytest.mark.django_db]

COLUMNS = "big bigint, small integer, amount numeric(16,2), maybe numeric(16,2), x double precision, " \
          "flag boolean, code varchar(20), doc jsonb, ascii varchar(30), empty text, ascii_doc jsonb"


def _amounts(n, rng):
    values = np.concatenate([
        np.array([0.0, -0.0, 1.0, -1.0, 12.345, 100.125, 1.015, 2.675, -0.004, -2.5, 0.005, 99.999, 1e-9,
                  -1e-9, 0.125, 1.005, 1234567.891, -98765432109.994, 99999999999999.99, math.nan]),
        rng.normal(0, 5000, n), np.round(rng.normal(0, 500, n), 3),
    ])
    return values


def _stored(table, options, block, columns):
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE TEMPORARY TABLE {table} ({COLUMNS})")
        with copy_text.copy_into(cursor, table, columns, options=options) as copy:
            copy.write(block)
        cursor.execute(f"SELECT {', '.join(columns)} FROM {table} ORDER BY big")
        return cursor.fetchall()


def test_binary_rows_store_what_text_rows_store():
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL only: other databases take the rows through the ORM")
    rng = np.random.default_rng(5)
    amounts = _amounts(2000, rng)
    n = len(amounts)
    big = np.arange(n, dtype=np.int64) * 7_000_000_001 - 3
    small = rng.integers(-(2**31), 2**31, n)
    x = rng.lognormal(0, 3, n) * rng.choice([-1, 1], n)
    x[::11] = math.nan
    flag = rng.random(n) < 0.5
    code = rng.choice(["", "model", "trailing_margin_rate", "Kälte", "A"], n)
    doc = rng.choice(["{}", '{"hotline": 12.5, "training": 1010.1}', '{"a\\\\b": "ä"}'], n)
    # Columns of ASCII alone take the byte-cast path of text(), the ones above its encoding.
    ascii_ = rng.choice(["", "A", "model", "trailing margin ~ rate!", "x" * 30], n)
    empty = np.full(n, "")
    ascii_doc = rng.choice(["{}", '{"hotline": 12.5, "training": 1010.1}', '{"a\\\\b": "~"}'], n)
    columns = ["big", "small", "amount", "maybe", "x", "flag", "code", "doc", "ascii", "empty", "ascii_doc"]

    def money_or_null(value):
        return copy_text.NULL.decode() if math.isnan(value) else to_money(value)

    text = copy_text.block([
        copy_text.integers(big), copy_text.integers(small), copy_text.money(amounts, exact=to_money),
        copy_text.money(amounts, exact=money_or_null), copy_text.floats(x, null_nan=True),
        copy_text.booleans(flag), copy_text.strings(np.char.encode(code.astype(str), "utf-8")),
        copy_text.strings(np.char.encode(np.char.replace(doc.astype(str), "\\", "\\\\"), "utf-8")),
        copy_text.strings(np.char.encode(ascii_.astype(str), "utf-8")), copy_text.strings(np.char.encode(empty, "utf-8")),
        copy_text.strings(np.char.encode(np.char.replace(ascii_doc.astype(str), "\\", "\\\\"), "utf-8")),
    ])
    binary = copy_binary.HEADER + copy_binary.rows([
        copy_binary.int8(big), copy_binary.int4(small), copy_binary.numeric_cents(amounts, exact=to_money),
        copy_binary.numeric_cents(amounts, exact=to_money, null_nan=True), copy_binary.float8(x, null_nan=True),
        copy_binary.boolean(flag), copy_binary.text(code), copy_binary.jsonb(doc),
        copy_binary.text(ascii_), copy_binary.text(empty), copy_binary.jsonb(list(ascii_doc)),
    ]) + copy_binary.TRAILER
    from_text = _stored("rows_from_text", "", text, columns)
    from_binary = _stored("rows_from_binary", "WITH (FORMAT binary)", binary, columns)
    assert len(from_binary) == n
    # NaN never equals itself: compare its text.
    assert [tuple(str(v) for v in row) for row in from_binary] == [tuple(str(v) for v in row) for row in from_text]
    amounts_stored = [row[2] for row in from_binary]
    assert amounts_stored[5:7] == [Decimal("100.12"), Decimal("1.02")]  # half-cent ties as Decimal rounds them
    assert amounts_stored[18] == to_money(amounts[18]) > Decimal("99999999999999")  # the largest a column holds
    assert str(amounts_stored[19]) == "NaN" and from_binary[19][3] is None
    assert {row[8] for row in from_binary} == set(ascii_) and {row[9] for row in from_binary} == {""}


def test_amounts_that_no_column_of_cents_holds_are_refused():
    with pytest.raises(ValueError):
        copy_binary.numeric_cents(np.array([1e16]), exact=to_money)
    with pytest.raises(ValueError):
        copy_binary.int4(np.array([2**31]))
