"""The manager's upload page (preview, then commit) and the value exports."""

import csv
import datetime as dt
import io

import pytest
from openpyxl import load_workbook

from customers.models import Transaction
from tests.api.conftest import completed_run, value_row
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db

GOOD = b"external_id;customer_number;date;revenue;cost_of_goods;product;channel\nR-1;K-1;15.03.2024;1.234,56;100;;\n"


def upload(client, content: bytes, kind="transactions"):
    return client.post("/imports/", {"kind": kind, "file": io.BytesIO(content), "delimiter": ""}, format="multipart")


@pytest.fixture
def customer(db):
    return CustomerFactory(number="K-1")


@pytest.mark.parametrize("role", ["rep", "inside_sales"])
def test_only_managers_may_import_or_export(client, request, role, customer):
    client.force_login(request.getfixturevalue(role))
    for url in ["/imports/", "/imports/export/values.csv", "/imports/export/values.xlsx"]:
        assert client.get(url).status_code == 403
    assert client.post("/imports/commit/").status_code == 403
    assert client.post("/imports/", {"kind": "transactions", "file": io.BytesIO(GOOD)}).status_code == 403
    assert Transaction.objects.count() == 0


def test_anonymous_is_sent_to_login(client):
    assert client.get("/imports/").status_code == 302


def test_preview_then_commit(client, manager, customer, django_assert_num_queries):
    client.force_login(manager)
    with django_assert_num_queries(3):  # session, user, role: the form reads no data
        assert client.get("/imports/").status_code == 200
    response = upload(client, GOOD)
    assert response.status_code == 200
    page = response.content.decode()
    assert 'id="new">1<' in page and "Commit import" in page and "1.234,56" in page and "semicolon" in page
    assert Transaction.objects.count() == 0  # the preview writes nothing
    response = client.post("/imports/commit/")
    assert response.status_code == 302
    assert str(Transaction.objects.get(external_id="R-1").revenue) == "1234.56"
    # the stored file is gone: a second commit imports nothing again
    response = client.post("/imports/commit/", follow=True)
    assert "no checked file" in response.content.decode()


def test_preview_lists_errors_and_offers_no_commit(client, manager, customer):
    client.force_login(manager)
    bad = GOOD + b"R-2;K-404;15.03.2024;1;1;;\nR-3;K-1;32.01.2024;x;1;;\n"
    page = upload(client, bad).content.decode()
    assert 'id="error-count">3<' in page
    assert "K-404" in page and "No such day" in page and "Not a number" in page
    assert "Commit import" not in page
    assert client.post("/imports/commit/").status_code == 302
    assert Transaction.objects.count() == 0


def test_exports(client, manager, rep):
    client.force_login(manager)
    run = completed_run(dt.date(2025, 2, 28))
    for number in ("A-1", "A-2"):
        value_row(run, CustomerFactory(number=number, owner=rep))
    response = client.get("/imports/export/values.csv")
    assert response.status_code == 200 and response.streaming
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0][:3] == ["Customer no.", "Customer", "Owner"]
    assert [row[0] for row in rows[1:]] == ["A-1", "A-2"] and rows[1][2] == "rep_a"
    response = client.get("/imports/export/values.xlsx")
    assert response.status_code == 200
    sheet = load_workbook(io.BytesIO(b"".join(response.streaming_content))).active
    values = list(sheet.values)
    assert values[0][0] == "Customer no." and len(values) == 3


def test_export_command(tmp_path, rep, capsys):
    from django.core.management import call_command

    run = completed_run(dt.date(2025, 2, 28))
    value_row(run, CustomerFactory(number="A-1", owner=rep))
    call_command("export_values")
    assert "A-1" in capsys.readouterr().out
    target = tmp_path / "values.xlsx"
    call_command("export_values", "--format", "xlsx", "--output", str(target))
    assert list(load_workbook(target).active.values)[1][0] == "A-1"


@pytest.mark.parametrize("name", ['=HYPERLINK("http://x")', "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(A1)", "\tx", "\r=1"])
def test_exports_neutralise_formulas(client, manager, rep, tmp_path, capsys, name):
    """A customer name that a spreadsheet would run as a formula reaches no export as one."""
    from django.core.management import call_command

    client.force_login(manager)
    run = completed_run(dt.date(2025, 2, 28))
    value_row(run, CustomerFactory(number="A-1", name=name, owner=rep))
    page_csv = list(csv.reader(io.StringIO(b"".join(client.get("/imports/export/values.csv").streaming_content).decode())))
    assert page_csv[1][1] == "'" + name
    page_xlsx = load_workbook(io.BytesIO(b"".join(client.get("/imports/export/values.xlsx").streaming_content)))
    cell = list(page_xlsx.active.iter_rows(min_row=2))[0][1]
    # (XML stores a carriage return as a line feed)
    assert cell.data_type == "s" and cell.value == "'" + name.replace("\r", "\n")
    # numbers stay numbers
    assert isinstance(list(page_xlsx.active.values)[1][8], (int, float))
    call_command("export_values")
    command_csv = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert command_csv[1][1] == "'" + name
    target = tmp_path / "values.xlsx"
    call_command("export_values", "--format", "xlsx", "--output", str(target))
    assert list(load_workbook(target).active.values)[1][1] == "'" + name.replace("\r", "\n")
