"""The import page in the reader's language, with honest counts."""

import io

import pytest
from django.db import connection
from django.utils import translation

from cockpit import importing
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db

MIXED = (b"external_id;customer_number;date;revenue;cost_of_goods;product;channel\n"
         b"R-1;K-1;15.03.2024;1.234,56;100;;\n"
         b"R-2;K-1;31.02.2024;10;1;;\n"
         b"R-3;K-1;15.03.2024;abc;1;;\n")


def upload(client, content, language="en"):
    return client.post("/imports/", {"kind": "transactions", "file": io.BytesIO(content), "delimiter": ""},
                       format="multipart", HTTP_ACCEPT_LANGUAGE=language)


def test_bad_rows_are_not_counted_as_new(tmp_path):
    CustomerFactory(number="K-1")
    path = tmp_path / "t.csv"
    path.write_bytes(MIXED)
    result = importing.import_file(kind="transactions", path=path, dry_run=True)
    assert result.rows == 3 and result.error_count == 2
    # Never the bad rows (before, all three counted as new). The pandas path counts the good row;
    # PostgreSQL's set-based check converts nothing while the file has errors, so it counts none.
    assert result.new == (0 if connection.vendor == "postgresql" else 1)


def test_the_preview_shows_no_new_count_while_the_file_has_errors(client, manager):
    CustomerFactory(number="K-1")
    client.force_login(manager)
    page = upload(client, MIXED).content.decode()
    assert 'id="new"' not in page and 'id="no-counts"' in page
    assert 'id="error-count">2<' in page


def test_import_messages_in_german(client, manager):
    CustomerFactory(number="K-1")
    client.force_login(manager)
    page = upload(client, MIXED, language="de").content.decode()
    assert "Kein Datum im Kalender" in page or "Diesen Tag gibt es im Kalender nicht." in page
    assert "Keine Zahl." in page
    assert "Semikolon" in page and "Transaktionen" in page
    assert "No such day" not in page and "Not a number" not in page


def test_the_upload_page_is_styled_and_translated(client, manager):
    client.force_login(manager)
    page = client.get("/imports/", HTTP_ACCEPT_LANGUAGE="de").content.decode()
    assert "css/cockpit-pages.css" in page and 'class="card"' in page
    assert "Inhalt der Datei" in page and "Trennzeichen" in page and "erkennen" in page


def test_row_errors_read_in_the_active_language():
    error = importing.RowError(4, "date", "x")
    with translation.override("de"):
        assert str(error) == "Zeile 4, Spalte date: x"
