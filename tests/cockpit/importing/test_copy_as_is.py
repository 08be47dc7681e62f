"""Plain transaction files go to COPY as they are; the result must equal the row-by-row reader's.

PostgreSQL only: elsewhere every file is read row by row.
"""

import datetime as dt
import random
from decimal import Decimal

import psycopg
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from cockpit import importing
from cockpit.importing import transactions_sql
from customers.models import Transaction
from tests.conftest import require_service
from tests.factories import CustomerFactory

# The COPY path is PostgreSQL's: these run in the PostgreSQL pass, and fail (never skip) in CI
# when PostgreSQL is missing.
pytestmark = [pytest.mark.django_db, pytest.mark.services]


@pytest.fixture(autouse=True)
def _postgresql():
    require_service(connection.vendor == "postgresql", "PostgreSQL (the COPY path is PostgreSQL's)")

HEADER = "external_id;customer_number;date;revenue;cost_of_goods;product;channel"
LATE = (dt.date.today() + dt.timedelta(days=9)).strftime("%d.%m.%Y")

FILES = {
    "plain German Excel": (HEADER + "\r\nR-1;K-1;15.03.2024;1.234,56;1.000,00;Kühlaggregat;Außendienst\r\n"
                           "R-2;K-2;01.04.2024;-50,5;;Größe M;\r\n", "cp1252"),
    "padded fields, Excel's empty lines, no final newline": (
        HEADER + "\n R-1 ;K-1\u00a0;2024-03-15;  10,00;5;\tPumpe ;web\n;;;;;;\n ; ;;;;;\nR-2;K-2;2024-03-16;7;1;;", "utf-8"),
    "byte-order mark, other column order, a column left out": (
        "\ufeffcustomer_number;external_id;revenue;date;extra\nK-1;R-1;3,50;2024-01-02;x\n", "utf-8"),
    "every kind of problem": ("\n".join([
        HEADER,
        "R-1;K-1;2024-03-15;10;5;;",
        "R-2;K-404;2024-03-15;10;5;;",
        "R-3;K-1;31.02.2024;10;5;;",
        "R-4;K-1;1989-12-31;10;5;;",
        f"R-5;K-1;{LATE};10;5;;",
        "R-6;K-1;2024-03-15;1e12;5;;",
        "R-7;K-1;2024-03-15;200000000000;5;;",
        "R-1;K-2;2024-03-16;10;5;;",
        "R-9;K-1;2024-03-15;10,123;5;;",
        ";K-1;2024-03-15;;5;" + "x" * 101 + ";",
    ]) + "\n", "utf-8"),
}
READ_ROW_BY_ROW = {
    "quoted fields": (HEADER + '\nR-1;K-1;2024-03-15;"1.234,56";1;"Pumpe; groß";\n', "utf-8"),
    "a row of the wrong width": (HEADER + "\nR-1;K-1;2024-03-15\n", "utf-8"),
    "an empty line": (HEADER + "\nR-1;K-1;2024-03-15;1;1;;\n\nR-2;K-1;2024-03-15;1;1;;\n", "utf-8"),
}


def outcome(result: importing.ImportResult) -> dict:
    rows = list(Transaction.objects.order_by("external_id").values_list(
        "external_id", "customer__number", "date", "revenue", "cost_of_goods", "product", "channel"))
    return {"errors": [str(e) for e in result.errors], "error_count": result.error_count, "rows": result.rows,
            "counts": (result.new, result.updated, result.unchanged), "preview": result.preview,
            "columns": result.columns, "decimal_comma": result.decimal_comma, "stored": rows}


def both_ways(tmp_path, monkeypatch, text: str, encoding: str):
    path = tmp_path / "file.csv"
    path.write_bytes(text.encode(encoding))
    copied = importing.import_file(kind="transactions", path=path)
    copied_outcome = outcome(copied)
    Transaction.objects.all().delete()
    with monkeypatch.context() as patch:
        patch.setattr(transactions_sql, "_plain_header", lambda path, result: None)
        read = importing.import_file(kind="transactions", path=path)
    return copied, copied_outcome, read, outcome(read)


@pytest.fixture
def customers(db):
    return [CustomerFactory(number="K-1"), CustomerFactory(number="K-2")]


@pytest.mark.parametrize("name", FILES)
def test_a_plain_file_is_copied_as_is_with_the_same_result(tmp_path, monkeypatch, customers, name):
    copied, copied_outcome, read, read_outcome = both_ways(tmp_path, monkeypatch, *FILES[name])
    assert copied.copied_as_is and not read.copied_as_is
    assert copied_outcome == read_outcome
    assert copied_outcome["rows"] > 0


@pytest.mark.parametrize("name", READ_ROW_BY_ROW)
def test_other_files_are_read_row_by_row(tmp_path, monkeypatch, customers, name):
    copied, copied_outcome, _read, read_outcome = both_ways(tmp_path, monkeypatch, *READ_ROW_BY_ROW[name])
    assert not copied.copied_as_is
    assert copied_outcome == read_outcome


def test_padding_is_found_only_at_field_edges():
    finder = importing._PaddingFinder("utf-8", ";")
    finder.feed(b"R-1;K 1;2024-01-01;1;1;Pump A;web\n")
    assert not finder.found
    finder.feed(b"R-2;K-1;2024-01-01;1;1;Pump\xc2\xa0")
    finder.feed(b";web\n")  # the no-break space ends a field across two blocks
    assert finder.found


def _work_tables() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute(r"SELECT relname FROM pg_class WHERE relname LIKE 'cvm\_import\_%'")
        return [row[0] for row in cursor.fetchall()]


@pytest.mark.parametrize("lookup_ratio", [1e18, -1], ids=["joined as the planner likes", "looked up by index"])
@pytest.mark.parametrize("temporary", [False, True], ids=["unlogged work tables", "temporary work tables"])
def test_a_re_import_counts_and_writes_new_changed_and_unchanged_rows_and_leaves_no_table(
        tmp_path, monkeypatch, customers, temporary, lookup_ratio):
    monkeypatch.setattr(transactions_sql, "INDEX_LOOKUP_RATIO", lookup_ratio)  # -1: by index for any analysed table
    kinds = []
    create = transactions_sql.WorkTables.create

    def spy(self, cursor, name, definition, params=None):
        self.temporary = temporary  # as if the user might not create tables in the schema
        kinds.append(self.temporary)
        return create(self, cursor, name, definition, params)

    monkeypatch.setattr(transactions_sql.WorkTables, "create", spy)
    first = tmp_path / "first.csv"
    first.write_text(HEADER + "\nR-1;K-1;15.03.2024;10,00;5;A;web\nR-2;K-2;16.03.2024;20;5;B;\n", encoding="utf-8")
    assert importing.import_file(kind="transactions", path=first).new == 2
    again = tmp_path / "again.csv"
    again.write_text(HEADER + "\nR-1;K-1;15.03.2024;10,00;5;A;web\nR-2;K-1;16.03.2024;20;5;B;\n"
                     "R-3;K-2;17.03.2024;7,5;;;\n", encoding="utf-8")
    before = list(Transaction.objects.order_by("external_id").values_list("external_id", "customer__number"))

    dry = importing.import_file(kind="transactions", path=again, dry_run=True)
    assert (dry.new, dry.updated, dry.unchanged) == (1, 1, 1) and not dry.committed
    assert list(Transaction.objects.order_by("external_id").values_list("external_id", "customer__number")) == before
    assert _work_tables() == []

    with CaptureQueriesContext(connection) as queries:
        done = importing.import_file(kind="transactions", path=again)
    by_index = any("enable_hashjoin" in query["sql"] for query in queries.captured_queries)
    assert by_index == (lookup_ratio < 0)
    assert (done.new, done.updated, done.unchanged) == (1, 1, 1) and done.committed
    assert list(Transaction.objects.order_by("external_id").values_list(
        "external_id", "customer__number", "revenue", "cost_of_goods", "product", "channel")) == [
        ("R-1", "K-1", Decimal("10.00"), Decimal("5.00"), "A", "web"),
        ("R-2", "K-1", Decimal("20.00"), Decimal("5.00"), "B", ""),  # moved to K-1
        ("R-3", "K-2", Decimal("7.50"), Decimal("0.00"), "", ""),
    ]
    assert _work_tables() == []

    bad = tmp_path / "bad.csv"
    bad.write_text(HEADER + "\nR-4;K-404;17.03.2024;1;;;\nR-4;K-1;17.03.2024;1;;;\n", encoding="utf-8")
    failed = importing.import_file(kind="transactions", path=bad)
    assert [str(e) for e in failed.errors] == [
        "line 2, column customer_number: Unknown customer number “K-404”.",
        "line 3, column external_id: Duplicate external_id “R-4”: already on line 2.",
    ]
    assert Transaction.objects.count() == 3 and _work_tables() == []
    assert kinds and set(kinds) == {temporary}
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('enable_hashjoin'), current_setting('enable_mergejoin')")
        assert cursor.fetchone() == ("on", "on")  # the planner's settings put back


@pytest.mark.parametrize("lookup_ratio", [1e18, -1], ids=["joined as the planner likes", "looked up by index"])
def test_ids_and_dates_longer_than_an_index_entry_are_reported_not_a_crash(tmp_path, monkeypatch, customers, lookup_ratio):
    # A btree entry holds at most 2.7 kB: incompressible text beyond that must still get its verdict.
    monkeypatch.setattr(transactions_sql, "INDEX_LOOKUP_RATIO", lookup_ratio)
    noise = random.Random(7).randbytes(4800).hex()  # 9,600 random hex digits: compressed, still over 2.7 kB
    path = tmp_path / "long.csv"
    path.write_text(HEADER + f"\n{noise};K-1;15.03.2024;1;;;\n{noise};K-1;15.03.2024;1;;;\nR-3;K-1;{noise};1;;;\n",
                    encoding="utf-8")
    result = importing.import_file(kind="transactions", path=path)
    assert [str(e) for e in result.errors] == [
        "line 2, column external_id: Longer than 64 characters.",
        "line 3, column external_id: Longer than 64 characters.",
        f"line 3, column external_id: Duplicate external_id “{noise}”: already on line 2.",
        "line 4, column date: Not a date: use YYYY-MM-DD or DD.MM.YYYY.",
    ]
    assert Transaction.objects.count() == 0 and _work_tables() == []


@pytest.mark.parametrize("dry_run", [False, True], ids=["import", "dry run"])
def test_other_writers_wait_while_an_import_compares_and_merges(tmp_path, monkeypatch, customers, dry_run):
    # Between the look at the stored rows and the merge, a row deleted by someone else would
    # be lost and one inserted would break the insert: an import keeps writers out; a dry run
    # writes nothing and keeps nobody out.
    outcome = {}
    check = transactions_sql._has_duplicate_ids

    def meanwhile(cursor, work):
        settings = connection.settings_dict
        with psycopg.connect(dbname=settings["NAME"], user=settings["USER"], password=settings["PASSWORD"],
                             host=settings["HOST"], port=settings["PORT"] or 5432, autocommit=True) as other:
            other.execute("SET lock_timeout = '300ms'")
            try:
                other.execute("DELETE FROM customers_transaction WHERE external_id = 'R-0'")
                outcome["other writer"] = "wrote"
            except psycopg.errors.LockNotAvailable:
                outcome["other writer"] = "waited"
        return check(cursor, work)

    monkeypatch.setattr(transactions_sql, "_has_duplicate_ids", meanwhile)
    path = tmp_path / "file.csv"
    path.write_text(HEADER + "\nR-1;K-1;15.03.2024;1;;;\n", encoding="utf-8")
    result = importing.import_file(kind="transactions", path=path, dry_run=dry_run)
    assert result.ok and result.new == 1
    assert outcome == {"other writer": "wrote" if dry_run else "waited"}
