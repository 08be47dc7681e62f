"""The statement PDF as a customer sees it: rendered to pixels (pdftoppm) and to text
(pdftotext), it fits A4 portrait, carries the letterhead and page x of y, and has the
totals on page one."""

import datetime as dt
import shutil
import subprocess
from decimal import Decimal

import pytest
from django.urls import reverse

from services.models import ServiceType
from tests.conftest import require_service
from tests.factories import ServiceEventFactory

pytestmark = pytest.mark.django_db

A4_WIDTH_MM, RIGHT_MARGIN_MM, DPI = 210, 16, 72
LONG_NOTE = (
    "Hotline: the customer's maintenance lead called three times about the hydraulic pressure drop "
    "on line 4; we walked him through the seal check and sent part list HX-4471-B-REV-2026-STAINLESS"
)


@pytest.fixture
def many_services(rep_customer):
    hotline = ServiceType.objects.get(code="hotline")
    for number in range(40):
        ServiceEventFactory(
            customer=rep_customer, service_type=hotline, date=dt.date(2025, 3, 1) + dt.timedelta(days=7 * number),
            quantity=Decimal("1.25"), note=LONG_NOTE + " " + "x" * (number * 3),
        )
    return rep_customer


def _pdf(client, user, customer, language):
    client.force_login(user)
    response = client.get(
        reverse("customers:statement", args=[customer.pk]),
        {"from": "2025-03-01", "to": "2026-02-28", "format": "pdf"},
        HTTP_ACCEPT_LANGUAGE=language,
    )
    assert response.status_code == 200
    return response.content


def _pages_as_pixels(pdf: bytes, tmp_path):
    from PIL import Image

    (tmp_path / "statement.pdf").write_bytes(pdf)
    subprocess.run(["pdftoppm", "-r", str(DPI), "-gray", "-png", str(tmp_path / "statement.pdf"), str(tmp_path / "page")], check=True)
    return [Image.open(path) for path in sorted(tmp_path.glob("page-*.png"))]


@pytest.mark.parametrize("language", ["en", "de"])
def test_no_text_runs_past_the_right_margin(client, rep, many_services, tmp_path, settings, language):
    require_service(shutil.which("pdftoppm") is not None, "pdftoppm (apt-get install poppler-utils)")
    settings.CVM_COMPANY_NAME = "Muster Antriebstechnik GmbH"
    pages = _pages_as_pixels(_pdf(client, rep, many_services, language), tmp_path)
    assert len(pages) >= 2
    for number, page in enumerate(pages, start=1):
        width, height = page.size
        assert abs(width - A4_WIDTH_MM / 25.4 * DPI) < 2, "A4 portrait"
        margin_x = round((A4_WIDTH_MM - RIGHT_MARGIN_MM) / 25.4 * DPI) + 1
        # Any ink (darker than light grey) right of the text block is text that ran off.
        ink = page.crop((margin_x, 0, width, height)).point(lambda v: 255 if v < 200 else 0)
        assert ink.getbbox() is None, f"page {number}: ink past the right margin at {ink.getbbox()}"


@pytest.mark.parametrize(
    ("language", "first_page_words"),
    [
        ("en", ["Value statement", "Muster Antriebstechnik GmbH", "Free services in the period", "Page 1 of"]),
        ("de", ["Leistungsnachweis", "Muster Antriebstechnik GmbH", "Kostenfreie Serviceleistungen im Zeitraum", "Seite 1 von"]),
    ],
)
def test_letterhead_totals_and_page_numbers_on_page_one(client, rep, many_services, tmp_path, settings, language, first_page_words):
    require_service(shutil.which("pdftotext") is not None, "pdftotext (apt-get install poppler-utils)")
    settings.CVM_COMPANY_NAME = "Muster Antriebstechnik GmbH"
    settings.CVM_COMPANY_ADDRESS = ["Hafenstraße 12", "28217 Bremen"]
    (tmp_path / "s.pdf").write_bytes(_pdf(client, rep, many_services, language))
    first = subprocess.run(["pdftotext", "-layout", "-f", "1", "-l", "1", str(tmp_path / "s.pdf"), "-"], capture_output=True, text=True, check=True).stdout
    for words in first_page_words + ["Hafenstraße 12", "28217 Bremen"]:
        assert words in first, words
    # The period stays on one line: both dates on the same line of text.
    assert any("2025" in line and "2026" in line for line in first.splitlines() if "03" in line)
