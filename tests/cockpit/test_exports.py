"""Value exports for people: headers in their language; German Excel opens the German CSV as is."""

import csv
import datetime as dt
import io
from decimal import Decimal

import pytest
from openpyxl import load_workbook

from tests.api.conftest import completed_run, value_row
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def values(rep):
    run = completed_run(dt.date(2025, 2, 28))
    value_row(run, CustomerFactory(number="A-1", name="Müller GmbH", owner=rep))


def test_english_csv_has_human_headers_and_points(client, manager, values):
    client.force_login(manager)
    body = b"".join(client.get("/imports/export/values.csv", HTTP_ACCEPT_LANGUAGE="en").streaming_content).decode("utf-8")
    assert not body.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(body)))
    head = dict(zip(rows[0], rows[1], strict=True))
    assert rows[0][:3] == ["Customer no.", "Customer", "Owner"] and "customer_number" not in body
    assert "." in head["CLV"] and "," not in head["CLV"]
    assert head["Valued as of"] == "2025-02-28"


def test_german_csv_is_for_german_excel(client, manager, values):
    client.force_login(manager)
    raw = b"".join(client.get("/imports/export/values.csv", HTTP_ACCEPT_LANGUAGE="de").streaming_content)
    assert raw.startswith("\ufeff".encode("utf-8"))  # Excel reads UTF-8 (umlauts) only with the BOM
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig")), delimiter=";"))
    head = dict(zip(rows[0], rows[1], strict=True))
    assert rows[0][:3] == ["Kundennr.", "Kunde", "Betreuer"]
    assert head["Kunde"] == "Müller GmbH"
    assert "," in head["CLV"] and "." not in head["CLV"]  # decimal comma, no thousands mark
    assert Decimal(head["CLV"].replace(",", ".")) > 0
    assert head["Bewertet zum"] == "28.02.2025"
    assert head["Segment"] and head["Segment"] not in {"problem", "investment", "potential", "uncritical"}


def test_xlsx_has_human_headers_and_real_numbers(client, manager, values):
    client.force_login(manager)
    response = client.get("/imports/export/values.xlsx", HTTP_ACCEPT_LANGUAGE="de")
    rows = list(load_workbook(io.BytesIO(b"".join(response.streaming_content))).active.values)
    assert rows[0][0] == "Kundennr."
    assert isinstance(rows[1][rows[0].index("CLV")], (int, float))
