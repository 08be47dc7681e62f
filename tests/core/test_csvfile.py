"""core.csvfile: what a file looks like after reading, on pyarrow's fast path and on the
csv module's path for the files that parser does not take the same way."""

import codecs

import numpy as np
import pandas as pd
import pytest

from core import csvfile


def read(path):
    frame, encoding, delimiter = csvfile.read_table(path)
    return frame, encoding, delimiter


def test_plain_file_cells_are_stripped_text_with_line_numbers(tmp_path):
    path = tmp_path / "plain.csv"
    path.write_text("Customer ID,Date,Revenue\n A1 ,2025-01-02, 10.5\nB2,2025-01-03,7\n")
    frame, encoding, delimiter = read(path)
    assert (encoding, delimiter) == ("utf-8", ",")
    assert list(frame.columns) == ["line", "customer_id", "date", "revenue"]
    assert frame["line"].tolist() == [2, 3]
    assert frame["customer_id"].tolist() == ["A1", "B2"]
    assert frame["revenue"].tolist() == ["10.5", "7"]


def test_blank_lines_excel_lines_and_a_quoted_line_break_keep_the_lines_of_the_file(tmp_path):
    path = tmp_path / "gaps.csv"
    path.write_text('\ncustomer_id;date;note\nA;2025-01-02;"two\nlines"\n\n;;;\nB;2025-01-03;x\n')
    frame, _, delimiter = read(path)
    assert delimiter == ";"
    assert frame["customer_id"].tolist() == ["A", "B"]
    assert frame["note"].tolist() == ["two\nlines", "x"]
    assert frame["line"].tolist() == [4, 7]


def test_excel_lines_on_the_fast_path_are_skipped_and_lines_still_counted(tmp_path):
    path = tmp_path / "excel.csv"
    path.write_text("customer_id;date;revenue\nA;2025-01-02;1\n;;\n  ; ;\nB;2025-01-03;2\n")
    frame, _, _ = read(path)
    assert frame["customer_id"].tolist() == ["A", "B"]
    assert frame["line"].tolist() == [2, 5]


def test_a_row_with_another_number_of_fields_is_named(tmp_path):
    path = tmp_path / "fields.csv"
    path.write_text("customer_id,date,revenue\nA,2025-01-02,1\nB,2025-01-03,2,3\n")
    with pytest.raises(ValueError, match="line 3: expected 3 fields as in the header line, found 4"):
        read(path)


def test_bom_and_windows_1252(tmp_path):
    bom = tmp_path / "bom.csv"
    bom.write_bytes(codecs.BOM_UTF8 + "Customer_ID,Date,Revenue\nMüller,2025-01-02,1\n".encode())
    frame, encoding, _ = read(bom)
    assert encoding == "utf-8-sig"
    assert list(frame.columns) == ["line", "customer_id", "date", "revenue"]
    assert frame["customer_id"].tolist() == ["Müller"]
    ansi = tmp_path / "ansi.csv"
    ansi.write_bytes("customer_id;date;revenue\nMüller;02.01.2025;1,5\n".encode("cp1252"))
    frame, encoding, _ = read(ansi)
    assert encoding == "cp1252"
    assert frame["customer_id"].tolist() == ["Müller"]


def test_empty_file_is_an_error(tmp_path):
    path = tmp_path / "empty.csv"
    path.write_text("\n\n")
    with pytest.raises(ValueError, match="the file is empty"):
        read(path)


@pytest.mark.parametrize(
    ("cells", "expected"),
    [
        (["2025-01-02", "2024-02-29", "2025-12-31"], ["2025-01-02", "2024-02-29", "2025-12-31"]),
        (["02.01.2025", "29.02.2024"], ["2025-01-02", "2024-02-29"]),
        (["2025-02-29", "2025-04-31", "2025-13-01", "2025-00-10"], [None, None, None, None]),
        (["31.02.2025", "00.01.2025"], [None, None]),
        (["2025-1-2", "2.1.2025", " 2025-01-02 "], ["2025-01-02", "2025-01-02", "2025-01-02"]),
        (
            ["02.01.2025 14:30", "2025-01-02T08:00:59+01:00", "2025-01-02 14:30:00.123"],
            ["2025-01-02", "2025-01-02", "2025-01-02"],
        ),
        (["2025-01-02x", "12025-01-01", "0000-01-01", "", "soon", None], [None] * 6),
        (["2025-01-02", "02.01.2025", "2025-02-30"], ["2025-01-02", "2025-01-02", None]),
    ],
)
def test_dates(cells, expected):
    parsed = csvfile.parse_dates(pd.Series(cells, dtype=object))
    assert [None if pd.isna(v) else v.date().isoformat() for v in parsed] == expected


@pytest.mark.parametrize(
    ("cells", "decimal_comma", "expected"),
    [
        (["10.5", "-3", "+7.25", "0"], False, [10.5, -3.0, 7.25, 0.0]),
        (["1,234.50", "EUR 5", "1'000.00", "12 $"], False, [1234.5, 5.0, 1000.0, 12.0]),
        (["1.234,50", "-10,25", "1 000,5 €", "3"], True, [1234.5, -10.25, 1000.5, 3.0]),
        (["ten", "", "1e5", "5.", "--1", None], False, [None] * 6),
    ],
)
def test_amounts(cells, decimal_comma, expected):
    parsed = csvfile.parse_amounts(pd.Series(cells, dtype=object), decimal_comma=decimal_comma)
    assert [None if np.isnan(v) else v for v in parsed] == expected


@pytest.mark.parametrize("odd", ["1e5", "1E-3", "5.", ".5", "-.5", "+.5", "inf", "-inf", "nan", "NaN", "\u0661\u0662"])
def test_a_number_pyarrow_reads_but_no_plain_amount_is_refused_among_plain_ones(odd):
    """Plain columns are converted by pyarrow's parser, which also takes these forms."""
    parsed = csvfile.parse_amounts(pd.Series(["10.5", odd, "-3"], dtype=object), decimal_comma=False)
    assert [None if np.isnan(v) else v for v in parsed] == [10.5, None, -3.0]


@pytest.mark.parametrize(
    ("cells", "delimiter", "expected"),
    [
        (["1,5", "2,25", "3"], ",", True),
        (["1.5", "2.25", "3"], ";", False),
        (["1.234,5"], ",", True),
        (["1,234.5"], ";", False),
        (["5", "6"], ";", True),
        (["5", "6"], ",", False),
        # A cell like "1.234,56" is one decimal-comma amount, not two: three of five cells end in .dd
        (["1.234,56", "2.345,67", "1.5", "2.25", "3.75"], ",", False),
    ],
)
def test_decimal_comma(cells, delimiter, expected):
    assert csvfile.detect_decimal_comma(pd.Series(cells), delimiter=delimiter) is expected


def test_plain_and_german_files_take_the_fast_path(tmp_path, monkeypatch):
    """Only files pyarrow cannot read as the csv module does go through the csv module."""

    def slow(*args):
        raise AssertionError("read with the csv module")

    monkeypatch.setattr(csvfile, "_read_table_python", slow)
    plain = tmp_path / "plain.csv"
    plain.write_text("customer_id,date,revenue\nA,2025-01-02,1\n")
    german = tmp_path / "german.csv"
    german.write_bytes("Kunde;Datum;Umsatz\r\nMüller;02.01.2025 14:30;1.234,50\r\n".encode("cp1252"))
    assert read(plain)[0]["customer_id"].tolist() == ["A"]
    assert read(german)[0]["umsatz"].tolist() == ["1.234,50"]


def test_an_excel_line_before_the_header_reads_as_on_the_csv_module_path(tmp_path):
    path = tmp_path / "excel_first.csv"
    path.write_text(";;;\ncustomer_id;date;revenue\nA;2025-01-02;1,5\nB;2025-01-03;2\n")
    frame, _, delimiter = read(path)
    assert delimiter == ";"
    assert list(frame.columns) == ["line", "customer_id", "date", "revenue"]
    assert frame["customer_id"].tolist() == ["A", "B"]
    assert frame["line"].tolist() == [3, 4]


def test_a_character_cut_by_the_encoding_check_block_edge_is_not_utf8(tmp_path):
    """The detection skips decoding ASCII blocks, but not a block that must finish a character."""
    block = 1 << 20
    cut = tmp_path / "cut.csv"
    cut.write_bytes(b"customer_id\n" + b"a" * (block - 13) + b"\xc3" + b"abc\n")  # 0xC3 then ASCII: no UTF-8
    whole = tmp_path / "whole.csv"
    whole.write_bytes(b"customer_id\n" + b"a" * (block - 13) + "é".encode() + b"abc\n")
    assert csvfile.detect_encoding(cut) == "cp1252"
    assert csvfile.detect_encoding(whole) == "utf-8"


def test_cells_with_unicode_spaces_at_either_end_are_stripped_on_the_fast_path(tmp_path):
    path = tmp_path / "spaces.csv"
    path.write_text("customer_id,date\n\u00a0A1,2025-01-02\nB2\u2009,2025-01-03\nC3,2025-01-04\n", encoding="utf-8")
    columns, line, _, _ = csvfile.read_columns(path)
    assert columns["customer_id"].to_pylist() == ["A1", "B2", "C3"]
    assert line.tolist() == [2, 3, 4]


def test_written_values_are_what_pandas_writes(tmp_path):
    """write_frame is to_csv with a fixed number of decimals, byte for byte: rounding ties,
    negative zero, huge numbers, infinity, missing values, dates and quoted text."""
    rng = np.random.default_rng(5)
    floats = np.r_[
        rng.normal(0, 1000, 500), rng.normal(0, 1e-3, 200), np.round(rng.normal(0, 100, 200), 2),
        [0.0, -0.0, 0.00005, 0.00015, -0.00005, 1.23445, 2.5e-5, 9.99995, 1e15, 1e300, np.inf, -np.inf, np.nan],
    ]
    n = len(floats)
    frame = pd.DataFrame(
        {
            "value": floats,
            "count": rng.integers(-5, 10**9, n),
            "flag": rng.random(n) < 0.5,
            "day": pd.Series(pd.to_datetime("2024-01-01") + pd.to_timedelta(rng.integers(0, 900, n), unit="D")).where(
                rng.random(n) < 0.9
            ),
            "text": pd.array(rng.choice(["plain", "a, b", 'say "hi"', "two\nlines", "", None], n), dtype="str"),
        },
        index=pd.Index([f"C{i}" if i % 7 else f"C,{i}" for i in range(n)], dtype=object),
    )
    ours, theirs = tmp_path / "ours.csv", tmp_path / "theirs.csv"
    csvfile.write_frame(frame, ours, index_label="customer_id", decimals=4)
    frame.to_csv(theirs, index_label="customer_id", float_format="%.4f")
    assert ours.read_bytes() == theirs.read_bytes()


def test_a_time_of_day_is_written_by_pandas_itself(tmp_path):
    frame = pd.DataFrame({"at": pd.to_datetime(["2024-01-01 10:30", "2024-01-02 00:00"])}, index=["a", "b"])
    ours, theirs = tmp_path / "ours.csv", tmp_path / "theirs.csv"
    csvfile.write_frame(frame, ours, index_label="id")
    frame.to_csv(theirs, index_label="id", float_format="%.4f")
    assert ours.read_bytes() == theirs.read_bytes()


@pytest.mark.parametrize(
    "column",
    [
        pd.array([1, None, 3], dtype="Int64"),  # pandas writes the missing count empty, not "nan"
        pd.array([True, None, False], dtype="boolean"),  # a missing flag
        pd.array([1.5, None, 2.25], dtype="Float64"),
    ],
    ids=["Int64", "boolean", "Float64"],
)
def test_nullable_columns_with_a_missing_value_are_written_as_pandas_writes_them(tmp_path, column):
    frame = pd.DataFrame({"column": column}, index=pd.Index(["a", "b", "c"], dtype=object))
    ours, theirs = tmp_path / "ours.csv", tmp_path / "theirs.csv"
    csvfile.write_frame(frame, ours, index_label="id")
    frame.to_csv(theirs, index_label="id", float_format="%.4f")
    assert ours.read_bytes() == theirs.read_bytes()
