"""CSV imports as they arrive from real systems: formats, all-or-nothing, idempotency, dry runs."""

import datetime as dt
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command
from django.db.models import Count, Sum

from cockpit import importing
from customers.models import Customer, Transaction
from services.models import ServiceEvent
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db

TRANSACTIONS_HEADER = "external_id,customer_number,date,revenue,cost_of_goods,product,channel"


def write(tmp_path, text: str, *, encoding="utf-8", name="file.csv"):
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def totals():
    return Transaction.objects.aggregate(n=Count("id"), revenue=Sum("revenue"), cost=Sum("cost_of_goods"))


@pytest.fixture
def customers(db):
    return [CustomerFactory(number="K-1", name="Müller"), CustomerFactory(number="K-2", name="Öztürk")]


def test_semicolon_cp1252_decimal_comma_german_dates(tmp_path, customers):
    text = (
        "external_id;customer_number;date;revenue;cost_of_goods;product;channel\r\n"
        "R-1;K-1;15.03.2024;1.234,56;1.000,00;Kühlaggregat;Außendienst\r\n"
        "R-2;K-2;01.04.2024;-50,5;;Größe M;\r\n"
    )
    result = importing.import_file(kind="transactions", path=write(tmp_path, text, encoding="cp1252"))
    assert result.ok, result.errors
    assert (result.encoding, result.delimiter, result.decimal_comma) == ("cp1252", ";", True)
    first = Transaction.objects.get(external_id="R-1")
    assert (first.date, first.revenue, first.cost_of_goods) == (dt.date(2024, 3, 15), Decimal("1234.56"), Decimal("1000.00"))
    assert (first.product, first.channel) == ("Kühlaggregat", "Außendienst")
    second = Transaction.objects.get(external_id="R-2")
    assert (second.revenue, second.cost_of_goods, second.product) == (Decimal("-50.50"), Decimal("0.00"), "Größe M")


def test_utf8_with_bom_and_thousands_separators(tmp_path, customers):
    text = f"\ufeff{TRANSACTIONS_HEADER}\nR-1,K-1,2024-03-15,\"1,234.56\",99.5,Pumpe,\n\n\nR-2,K-2,2024-03-16,7,1,,\n"
    result = importing.import_file(kind="transactions", path=write(tmp_path, text))
    assert result.ok, result.errors
    assert result.encoding == "utf-8-sig" and not result.decimal_comma
    assert result.rows == 2  # the empty lines are skipped
    assert Transaction.objects.get(external_id="R-1").revenue == Decimal("1234.56")
    assert Transaction.objects.get(external_id="R-1").product == "Pumpe"


def test_delimiter_option_and_tabs(tmp_path, customers):
    text = TRANSACTIONS_HEADER.replace(",", "\t") + "\nR-1\tK-1\t2024-03-15\t10.00\t5\t\t\n"
    result = importing.import_file(kind="transactions", path=write(tmp_path, text), delimiter="tab")
    assert result.ok and result.delimiter == "\t"


def test_one_bad_row_imports_nothing_and_every_problem_is_named(tmp_path, customers):
    tomorrow_plus = (dt.date.today() + dt.timedelta(days=5)).strftime("%d.%m.%Y")
    text = "\n".join([
        TRANSACTIONS_HEADER,
        "R-1,K-1,2024-03-15,10,5,,",        # line 2: fine
        "R-2,K-404,2024-03-15,10,5,,",      # line 3: unknown customer
        "R-3,K-1,31.02.2024,10,5,,",        # line 4: no such day
        "R-4,K-1,1989-12-31,10,5,,",        # line 5: before 1990
        f"R-5,K-1,{tomorrow_plus},10,5,,",  # line 6: in the future
        "R-6,K-1,2024-03-15,1e12,5,,",      # line 7: not a plain number
        "R-7,K-1,2024-03-15,200000000000,5,,",  # line 8: absurd amount
        "R-1,K-2,2024-03-16,10,5,,",        # line 9: duplicate id in the file
        "R-9,K-1,2024-03-15,10.123,5,,",    # line 10: too many decimals
        "R-10,K-1,2024-03-15",               # line 11: too few fields
        ",K-1,,,5,,",                        # line 12: id, date and revenue missing
    ]) + "\n"
    result = importing.import_file(kind="transactions", path=write(tmp_path, text))
    assert not result.ok and not result.committed
    found = {(e.line, e.column) for e in result.errors}
    assert found == {
        (3, "customer_number"), (4, "date"), (5, "date"), (6, "date"), (7, "revenue"), (8, "revenue"),
        (9, "external_id"), (10, "revenue"), (11, ""), (12, "external_id"), (12, "date"), (12, "revenue"),
    }
    messages = {(e.line, e.column): e.message for e in result.errors}
    assert "K-404" in messages[(3, "customer_number")]
    assert "line 2" in messages[(9, "external_id")]
    assert "1990" in messages[(5, "date")]
    assert result.error_count == 12
    assert Transaction.objects.count() == 0


def test_missing_columns_are_reported(tmp_path, customers):
    result = importing.import_file(kind="transactions", path=write(tmp_path, "external_id;date\nR-1;2024-01-01\n"))
    assert {(e.line, e.column) for e in result.errors} == {(1, "customer_number"), (1, "revenue")}


def test_error_list_is_capped_but_counted(tmp_path, customers):
    rows = "".join(f"R-{i},K-404,2024-03-15,10,5,,\n" for i in range(500))
    result = importing.import_file(kind="transactions", path=write(tmp_path, TRANSACTIONS_HEADER + "\n" + rows))
    assert result.error_count == 500
    assert len(result.errors) == importing.MAX_ERRORS_SHOWN and result.more_errors == 300


def test_import_twice_changes_nothing_and_a_corrected_file_updates_in_place(tmp_path, customers):
    text = TRANSACTIONS_HEADER + "\nR-1,K-1,2024-03-15,10.00,5,A,\nR-2,K-2,2024-03-16,20,5,B,\n"
    path = write(tmp_path, text)
    first = importing.import_file(kind="transactions", path=path)
    assert (first.new, first.updated, first.unchanged) == (2, 0, 0)
    before = totals()
    second = importing.import_file(kind="transactions", path=path)
    assert (second.new, second.updated, second.unchanged) == (0, 0, 2)
    assert totals() == before
    corrected = write(tmp_path, text.replace("20,5,B", "25,5,B"), name="corrected.csv")
    third = importing.import_file(kind="transactions", path=corrected)
    assert (third.new, third.updated, third.unchanged) == (0, 1, 1)
    assert totals()["n"] == 2 and Transaction.objects.get(external_id="R-2").revenue == Decimal("25.00")


def test_dry_run_writes_nothing(tmp_path, customers):
    path = write(tmp_path, TRANSACTIONS_HEADER + "\nR-1,K-1,2024-03-15,10,5,,\n")
    result = importing.import_file(kind="transactions", path=path, dry_run=True)
    assert result.ok and result.new == 1 and not result.committed
    assert Transaction.objects.count() == 0


def test_customers_file_with_referrals_owners_and_corrections(tmp_path, rep):
    text = (
        "number;name;industry;region;owner (username);acquired_on;acquisition_channel;referred_by (customer number);status;lost_on;yearly_wallet\n"
        "C-2;Zweite GmbH;Bau;Bayern;rep_a;01.02.2021;Referral;C-1;active;;12.500,00\n"
        "C-1;Erste AG;Bau;Hessen;;2020-01-01;trade fair;;lost;31.12.2024;\n"
    )
    path = write(tmp_path, text, encoding="cp1252")
    result = importing.import_file(kind="customers", path=path)
    assert result.ok, result.errors
    second = Customer.objects.get(number="C-2")
    assert (second.owner, second.referred_by.number, second.acquisition_channel, second.yearly_wallet) == (
        rep, "C-1", "referral", Decimal("12500.00"))
    first = Customer.objects.get(number="C-1")
    assert (first.status, first.lost_on, first.acquisition_channel) == ("lost", dt.date(2024, 12, 31), "trade_fair")
    assert importing.import_file(kind="customers", path=path).unchanged == 2
    corrected = write(tmp_path, text.replace("Zweite GmbH", "Zweite GmbH & Co. KG"), encoding="cp1252", name="c2.csv")
    result = importing.import_file(kind="customers", path=corrected)
    assert (result.new, result.updated, result.unchanged) == (0, 1, 1)
    assert Customer.objects.get(number="C-2").name == "Zweite GmbH & Co. KG"


def test_customer_rules(tmp_path, db):
    text = (
        "number,name,owner,status,lost_on,referred_by,yearly_wallet,acquisition_channel\n"
        "C-1,Lost without date,,lost,,,,\n"       # line 2
        "C-2,Active with date,,active,2024-01-01,,,\n"  # line 3
        "C-3,Self,,,,C-3,,\n"                      # line 4
        "C-4,Ghost referrer,,,,C-99,,\n"           # line 5
        "C-5,Unknown owner,nobody,,,,-1,fax\n"     # line 6
        ",No number,,,,,,\n"                       # line 7
    )
    result = importing.import_file(kind="customers", path=write(tmp_path, text))
    assert {(e.line, e.column) for e in result.errors} == {
        (2, "lost_on"), (3, "lost_on"), (4, "referred_by"), (5, "referred_by"), (6, "owner"), (6, "yearly_wallet"),
        (6, "acquisition_channel"), (7, "number"),
    }
    assert Customer.objects.count() == 0


def test_services_file(tmp_path, customers, inside_sales):
    text = (
        "external_id;customer_number;service_type;date;quantity;note;logged_by\n"
        "S-1;K-1;hotline;15.03.2024;1,5;Anruf wegen Störung;inside1\n"
        ";K-1;training;2024-03-16;;Schulung;\n"
        ";K-1;training;2024-03-16;;Schulung;\n"  # the same service twice on one day: two events
    )
    path = write(tmp_path, text, encoding="cp1252")
    result = importing.import_file(kind="services", path=path)
    assert result.ok, result.errors
    assert ServiceEvent.objects.count() == 3
    hotline = ServiceEvent.objects.get(external_id="S-1")
    assert (hotline.quantity, hotline.logged_by, hotline.note) == (Decimal("1.50"), inside_sales, "Anruf wegen Störung")
    again = importing.import_file(kind="services", path=path)
    assert (again.new, again.unchanged) == (0, 3) and ServiceEvent.objects.count() == 3
    bad = write(tmp_path, text + "S-2;K-1;hotline;2024-03-17;-2;;\nS-3;K-9;nope;2024-03-17;1;;ghost\n", encoding="cp1252", name="bad.csv")
    result = importing.import_file(kind="services", path=bad)
    assert {(e.line, e.column) for e in result.errors} == {
        (5, "quantity"), (6, "customer_number"), (6, "service_type"), (6, "logged_by")}


def test_command_reports_progress_errors_and_dry_run(tmp_path, customers, capsys):
    good = write(tmp_path, TRANSACTIONS_HEADER + "\nR-1,K-1,2024-03-15,10,5,,\n")
    call_command("import_csv", "transactions", str(good), "--dry-run")
    out = capsys.readouterr().out
    assert "rows/s" in out and "1 new" in out and "dry run" in out
    assert Transaction.objects.count() == 0
    call_command("import_csv", "transactions", str(good))
    assert Transaction.objects.count() == 1
    bad = write(tmp_path, TRANSACTIONS_HEADER + "\nR-2,K-9,2024-03-15,10,5,,\n", name="bad.csv")
    with pytest.raises(CommandError, match="1 errors"):
        call_command("import_csv", "transactions", str(bad))
    assert "line 2, column customer_number" in capsys.readouterr().err


def test_odd_values_get_the_same_verdict_on_every_database(tmp_path, customers):
    """PostgreSQL checks transactions in SQL, SQLite with pandas: both must agree on these."""
    long_product = "x" * 101
    text = "\n".join([
        "external_id;customer_number;date;revenue;cost_of_goods;product;channel",
        " R-1 ; K-1 ; 29.02.2024 ; 1.234,5 EUR ;€ 7;  Pumpe ;",  # line 2: fine, padded
        "R-2;K-1;29.02.2023;5;;;",             # line 3: no such day
        "R-3;K-1;0000-01-01;5;;;",             # line 4: no such day
        "R-4;K-1;2024-13-01;abc;;;",           # line 5: month 13, not a number
        "R-5;K-1;2024-1-5;1,234;;;",           # line 6: three decimals
        f"R-6;K-1;2024-01-05;5;-200.000.000.000;{long_product};",  # line 7: too negative, too long
        "R-7;K-404;2024-01-05;5;;;",           # line 8: unknown customer
        "R-8;K-1;15/03/2024;;;;",              # line 9: no date format, no revenue
        "R-9;K-1;2024-01-05;€ 5,123;+7;;",     # line 10: three decimals behind a currency sign
        "R-10;K-1;2024-01-05;200.000.000.000,01;1 234,56 €;;",  # line 11: too large; the cost is fine
        "R-11;K-1;2024-01-05;12 EUR 5;-,5;;",  # line 12: noise inside the number; no digit before the comma
    ]) + "\n"
    result = importing.import_file(kind="transactions", path=write(tmp_path, text))
    assert [(e.line, e.column, e.message) for e in result.errors] == [
        (3, "date", "No such day in the calendar."),
        (4, "date", "No such day in the calendar."),
        (5, "date", "No such day in the calendar."),
        (5, "revenue", "Not a number."),
        (6, "revenue", "More than 2 decimal places."),
        (7, "cost_of_goods", "Must not be below -100,000,000,000."),
        (7, "product", "Longer than 100 characters."),
        (8, "customer_number", "Unknown customer number “K-404”."),
        (9, "date", "Not a date: use YYYY-MM-DD or DD.MM.YYYY."),
        (9, "revenue", "An amount is required."),
        (10, "revenue", "More than 2 decimal places."),
        (11, "revenue", "Implausibly large: above 100,000,000,000.00."),
        (12, "cost_of_goods", "Not a number."),
    ]
    fixed = "\n".join(text.splitlines()[:2]) + "\n"
    assert importing.import_file(kind="transactions", path=write(tmp_path, fixed, name="fixed.csv")).ok
    row = Transaction.objects.get(external_id="R-1")
    assert (row.customer.number, row.date, row.revenue, row.cost_of_goods, row.product) == (
        "K-1", dt.date(2024, 2, 29), Decimal("1234.50"), Decimal("7.00"), "Pumpe")


def test_digits_of_other_scripts_are_no_number_and_no_date_on_every_database(tmp_path, customers):
    """Python's \\d takes Arabic-Indic and full-width digits; PostgreSQL's check and the number
    columns take only 0-9. Such a cell is refused on both databases alike and nothing is
    written (SQLite stored the text '١٢' as a revenue, and the customer's pages then failed
    reading it)."""
    text = "\n".join([
        "external_id,customer_number,date,revenue,cost_of_goods,product,channel",
        "R-1,K-1,2024-01-05,\u0661\u0662,,,",  # line 2: Arabic-Indic 12
        "R-2,K-1,2024-01-05,5,\uff10,,",  # line 3: full-width 0
        "R-3,K-1,\u0662\u0660\u0662\u0664-01-05,5,,,",  # line 4: Arabic-Indic 2024
    ]) + "\n"
    result = importing.import_file(kind="transactions", path=write(tmp_path, text))
    assert [(e.line, e.column, e.message) for e in result.errors] == [
        (2, "revenue", "Not a number."),
        (3, "cost_of_goods", "Not a number."),
        (4, "date", "Not a date: use YYYY-MM-DD or DD.MM.YYYY."),
    ]
    assert not Transaction.objects.exists()
