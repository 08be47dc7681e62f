"""Imports under attack: very wide headers, NUL bytes, broken quoting, oversized uploads, a
check that runs too long and a locked database all answer with a clear error, quickly."""

import io
import time

import pytest
from django.db import OperationalError

from cockpit import importing
from customers.models import Transaction
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db

HEADER = "external_id,customer_number,date,revenue,cost_of_goods,product,channel"


def messages(result) -> list[str]:
    return [str(error) for error in result.errors]


@pytest.mark.parametrize("columns", [20_000, 1_000_000])
def test_a_very_wide_header_is_refused_within_seconds(tmp_path, columns):
    """A 20k-column header took 53 s in the duplicate check; 1M columns never finished."""
    path = tmp_path / "wide.csv"
    path.write_text(",".join(f"c{i}" for i in range(columns)) + "\n" + "1," * (columns - 1) + "1\n")
    started = time.perf_counter()
    result = importing.import_file(kind="transactions", path=path, dry_run=True)
    seconds = time.perf_counter() - started
    print(f"\n{columns:,} columns ({path.stat().st_size / 1e6:.1f} MB): answered in {seconds:.2f} s")
    assert seconds < 5
    # a header this wide is refused either for its column count or for the length of its line
    assert not result.ok and messages(result)[0].startswith("line 1: ")
    assert "at most 200 are read" in messages(result)[0] or "longer than 100 KB" in messages(result)[0]


def test_a_header_with_too_many_columns_is_refused(tmp_path):
    path = tmp_path / "wide.csv"
    path.write_text(",".join("c" for _ in range(5000)) + "\n")
    result = importing.import_file(kind="transactions", path=path, dry_run=True)
    assert messages(result) == ["line 1: The header line has 5,000 columns; at most 200 are read."]


def test_many_duplicate_columns_are_checked_in_linear_time(tmp_path):
    path = tmp_path / "dupes.csv"
    path.write_text(HEADER + "," + ",".join(["extra"] * 150) + "\n")
    started = time.perf_counter()
    result = importing.import_file(kind="transactions", path=path, dry_run=True)
    assert time.perf_counter() - started < 5
    assert messages(result) == ["line 1, column extra: This column appears more than once in the header line."]


def test_an_overlong_line_is_refused(tmp_path):
    path = tmp_path / "long.csv"
    path.write_text(HEADER + "\nR-1,K-1,2024-01-02,1,,," + "x" * 200_000 + "\n")
    result = importing.import_file(kind="transactions", path=path, dry_run=True)
    assert messages(result) == ["line 2: The line is longer than 100 KB; nothing was read."]


def test_a_nul_byte_names_its_line_and_column(tmp_path):
    CustomerFactory(number="K-1")
    path = tmp_path / "nul.csv"
    path.write_text(HEADER + "\nR-1,K-1,2024-01-02,10,,ok,\nR-2,K-1,2024-01-03,10,,bad\x00name,\n")
    result = importing.import_file(kind="transactions", path=path)
    assert messages(result) == ["line 3, column product: Contains a NUL character (\\0), which cannot be stored."]
    assert not Transaction.objects.exists()


@pytest.mark.services
def test_a_nul_byte_on_postgresql_is_an_error_not_a_crash(tmp_path):
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL only")
    test_a_nul_byte_names_its_line_and_column(tmp_path)
    path = tmp_path / "nul_customers.csv"
    path.write_text("number,name\nK-9,Na\x00me\n")
    result = importing.import_file(kind="customers", path=path)
    assert messages(result) == ["line 2, column name: Contains a NUL character (\\0), which cannot be stored."]


def test_an_unterminated_quote_is_an_error_naming_its_line(tmp_path):
    CustomerFactory(number="K-1")
    path = tmp_path / "quote.csv"
    path.write_text(HEADER + '\nR-1,K-1,2024-01-02,10,,ok,\nR-2,K-1,2024-01-03,10,,"broken,\nR-3,K-1,2024-01-04,10,,x,\n')
    result = importing.import_file(kind="transactions", path=path)
    assert messages(result) == [
        'line 3: The file is not valid CSV: a quote (") opens a field that is never closed, so the file ends inside it.'
    ]
    assert not Transaction.objects.exists()


def test_a_check_past_its_time_limit_stops_clearly(tmp_path):
    CustomerFactory(number="K-1")
    path = tmp_path / "slow.csv"
    path.write_text(HEADER + "\nR-1,K-1,2024-01-02,10,,,\n")
    result = importing.import_file(kind="transactions", path=path, time_limit=0)
    assert "takes longer than 0 s" in messages(result)[0] and "import_csv" in messages(result)[0]
    assert not Transaction.objects.exists()


def test_a_locked_sqlite_database_is_a_clear_message(tmp_path, monkeypatch):
    """The losing one of two concurrent SQLite imports ended with a raw traceback."""
    CustomerFactory(number="K-1")
    path = tmp_path / "locked.csv"
    path.write_text(HEADER + "\nR-1,K-1,2024-01-02,10,,,\n")

    def locked(*args, **kwargs):
        raise OperationalError("database is locked")

    monkeypatch.setattr(importing.Staging, "create", locked)
    monkeypatch.setattr(importing, "_import_transactions_in_sql", locked)
    result = importing.import_file(kind="transactions", path=path)
    assert messages(result) == [
        "line 0: The database is busy with another import or the nightly run; nothing was written. Try again in a minute."
    ]


def test_the_upload_page_refuses_files_over_its_limit(client, manager, settings):
    settings.CVM_IMPORT_UPLOAD_MAX_MB = 1
    client.force_login(manager)
    big = (HEADER + "\n" + "R-1,K-1,2024-01-02,10,,,\n" * 60_000).encode()
    assert len(big) > 1024 * 1024
    response = client.post("/imports/", {"kind": "transactions", "file": io.BytesIO(big), "delimiter": ""})
    assert response.status_code in (200, 413)
    assert "larger than 1 MB" in response.content.decode()
    assert not Transaction.objects.exists()


def test_the_upload_page_answers_a_million_columns_quickly(client, manager):
    client.force_login(manager)
    wide = (",".join(f"c{i}" for i in range(1_000_000)) + "\n").encode()
    started = time.perf_counter()
    response = client.post("/imports/", {"kind": "transactions", "file": io.BytesIO(wide), "delimiter": ""})
    seconds = time.perf_counter() - started
    print(f"\nupload page, 1,000,000 columns ({len(wide) / 1e6:.1f} MB): {seconds:.2f} s")
    assert seconds < 5 and "longer than 100 KB" in response.content.decode()


def test_raw_problems_are_found_past_the_first_block(tmp_path):
    """The scan reads 1 MB blocks: line numbers and line lengths carry across their borders."""
    CustomerFactory(number="K-1")
    rows = "".join(f"R-{i:07d},K-1,2024-01-02,10,,widget,\n" for i in range(40_000))  # ~1.3 MB
    path = tmp_path / "late_nul.csv"
    path.write_text(HEADER + "\n" + rows + "R-X,K-1,2024-01-02,10,,bad\x00,\n")
    assert messages(importing.import_file(kind="transactions", path=path, dry_run=True)) == [
        "line 40002, column product: Contains a NUL character (\\0), which cannot be stored."
    ]
    path = tmp_path / "late_long.csv"
    path.write_text(HEADER + "\n" + rows + "R-X,K-1,2024-01-02,10,,," + "y" * 150_000 + "\n")
    assert messages(importing.import_file(kind="transactions", path=path, dry_run=True)) == [
        "line 40002: The line is longer than 100 KB; nothing was read."
    ]
    assert importing.scan_raw_lines(tmp_path / "late_nul.csv").line == 40002
