"""COPY text for the value rows: the same rounding and NULLs as the bulk_create path."""

import math
from decimal import Decimal

import numpy as np
import pytest

from core import copy_text
from valuation.services import _money


def rows(block: bytes) -> list[list[str]]:
    return [line.split("\t") for line in block.decode().splitlines()]


def test_money_rounds_like_the_decimal_path_including_half_cents():
    values = np.array([0.0, 1.0, -1.0, 12.345, 100.125, 1.015, 2.675, -0.004, -2.5, 0.005,
                       1234567.891, 99.999, 1e-9, -1e-9, 0.125, 1.005])
    text = [row[0] for row in rows(copy_text.block([copy_text.money(values, exact=_money)]))]
    assert [Decimal(t) for t in text] == [_money(v) for v in values]
    assert text[4:6] == ["100.12", "1.02"]  # half-cent ties go to the even cent, as Decimal does


def test_money_of_random_amounts_matches_the_decimal_path():
    rng = np.random.default_rng(3)
    values = np.concatenate([rng.normal(0, 5000, 5000), np.round(rng.normal(0, 500, 2000), 3)])
    text = [row[0] for row in rows(copy_text.block([copy_text.money(values, exact=_money)]))]
    assert [Decimal(t) for t in text] == [_money(v) for v in values]


def test_floats_round_trip_and_nan_becomes_null():
    values = np.array([0.1, 1 / 3, 2.5e-12, math.nan])
    text = rows(copy_text.block([copy_text.floats(values, null_nan=True), copy_text.integers([1, -2, 3, 40])]))
    assert [float(row[0]) for row in text[:3]] == values[:3].tolist()
    assert text[3] == ["\\N", "40"]
    assert [row[1] for row in text] == ["1", "-2", "3", "40"]


def test_columns_of_short_values_and_empty_strings_keep_their_fields():
    """Each column is cut to its longest value: an all-empty column still gives empty fields,
    and the widest value keeps its last byte."""
    text = rows(copy_text.block([
        copy_text.integers([7, 12345678901234, -3]),
        copy_text.strings(["", "", ""]),
        copy_text.strings(["a", "bcd", ""]),
        copy_text.floats([1.0, 0.1 + 0.2, -1e300]),
    ]))
    assert text == [["7", "", "a", "1.0"], ["12345678901234", "", "bcd", repr(0.1 + 0.2)], ["-3", "", "", "-1e+300"]]


@pytest.mark.services
@pytest.mark.django_db
def test_a_query_failing_mid_copy_raises_its_error_and_leaves_the_connection_usable():
    """copy_out_csv reads libpq directly: an error after some rows have been sent is raised
    as the server's error, and the connection is idle again for the next statement."""
    import psycopg
    from django.db import connection, transaction

    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL only: COPY")
    assert copy_text.copy_out_csv("SELECT x, x * 2 FROM generate_series(1, 3) AS x").read() == b"1,2\n2,4\n3,6\n"
    with pytest.raises(psycopg.errors.DivisionByZero), transaction.atomic():
        copy_text.copy_out_csv("SELECT 1 / (5000 - x) FROM generate_series(1, 10000) AS x")
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_sleep(0.3), 42")
        assert cursor.fetchone()[1] == 42
