"""The value statement: hand-worked totals across a standard-cost change, PDF, bad dates."""

import datetime as dt
from decimal import Decimal

import pytest
from django.urls import reverse

from cockpit.statement import PDF_BASE_URL, static_path_for, value_statement
from services.models import ServiceType, StandardCost
from tests.factories import ServiceEventFactory

pytestmark = pytest.mark.django_db

CHANGE = dt.date(2025, 7, 1)
PERIOD = {"from": "2025-03-01", "to": "2025-12-31"}


@pytest.fixture
def services_given(rep_customer):
    hotline = ServiceType.objects.get(code="hotline")
    training = ServiceType.objects.get(code="training")
    StandardCost.objects.filter(service_type=hotline).update(cost_per_unit=Decimal("60.00"))
    StandardCost.objects.create(service_type=hotline, valid_from=CHANGE, cost_per_unit=Decimal("72.50"))
    # Training stays at the catalogue's 950.00 per day.
    for day, service_type, quantity in [
        (dt.date(2025, 2, 28), hotline, "3"),  # the day before the period: not on the statement
        (dt.date(2025, 3, 1), hotline, "0.25"),  # first day of the period: 0.25 h x 60.00 = 15.00
        (dt.date(2025, 6, 30), hotline, "1.5"),  # 1.5 h x 60.00 = 90.00 (the old cost)
        (CHANGE, hotline, "2"),  # 2 h x 72.50 = 145.00 (the new cost, from its first day)
        (dt.date(2025, 8, 10), training, "1"),  # 1 day x 950.00
        (dt.date(2025, 9, 15), hotline, "0.5"),  # 0.5 h x 72.50 = 36.25
        (dt.date(2025, 12, 31), training, "0.5"),  # last day of the period: 475.00
        (dt.date(2026, 1, 1), training, "2"),  # after the period
    ]:
        ServiceEventFactory(customer=rep_customer, service_type=service_type, date=day, quantity=Decimal(quantity))
    return hotline, training


def test_totals_by_type_and_grand_total_are_hand_worked(rep_customer, services_given):
    statement = value_statement(customer=rep_customer, start=dt.date(2025, 3, 1), end=dt.date(2025, 12, 31))
    by_type = {row["type_name"]: row for row in statement.by_type}
    hotline, training = by_type["Free hotline"], by_type["Training or seminar"]
    assert (hotline["count"], hotline["units"], hotline["value"]) == (4, Decimal("4.25"), Decimal("286.25"))
    assert (training["count"], training["units"], training["value"]) == (2, Decimal("1.5"), Decimal("1425.00"))
    assert statement.total == Decimal("1711.25")
    assert statement.count == 6
    assert [e.unit_cost for e in statement.events if e.service_type.code == "hotline"] == [
        Decimal("60.00"), Decimal("60.00"), Decimal("72.50"), Decimal("72.50")
    ]


def test_statement_page_shows_the_totals(client, rep, rep_customer, services_given):
    client.force_login(rep)
    html = client.get(reverse("customers:statement", args=[rep_customer.pk]), PERIOD).content.decode()
    assert "€286.25" in html and "€1,425.00" in html
    assert 'id="statement-total">€1,711.25<' in html
    assert "Download PDF" in html and "format=pdf" in html


def test_statement_amounts_in_german(client, rep, rep_customer, services_given):
    client.force_login(rep)
    html = client.get(
        reverse("customers:statement", args=[rep_customer.pk]), PERIOD, HTTP_ACCEPT_LANGUAGE="de"
    ).content.decode()
    assert "1.711,25\u00a0€" in html


def test_pdf_download(client, rep, rep_customer, services_given):
    client.force_login(rep)
    response = client.get(reverse("customers:statement", args=[rep_customer.pk]), {**PERIOD, "format": "pdf"})
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"].startswith('attachment; filename="value-statement-K-1001-20250301-20251231.pdf"')
    assert response.content.startswith(b"%PDF")


def test_default_period_is_the_last_twelve_months(client, rep, rep_customer):
    client.force_login(rep)
    response = client.get(reverse("customers:statement", args=[rep_customer.pk]))
    statement = response.context["statement"]
    assert statement.end == dt.date.today() or (statement.end - statement.start).days in (364, 365)
    assert 364 <= (statement.end - statement.start).days <= 365
    assert "No free services were given" in response.content.decode()


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"from": "2025-13-45", "to": "2025-12-31"}, "Enter the start as a date"),
        ({"from": "2025-01-01", "to": "yesterday"}, "Enter the end as a date"),
        ({"from": "2025-12-31", "to": "2025-01-01"}, "The period starts after it ends"),
        ({"from": "2000-01-01", "to": "2025-01-01"}, "The period is too long"),
        ({"from": "2025-13-45", "format": "pdf"}, "Enter the start as a date"),
    ],
)
def test_bad_dates_give_a_clear_message(client, rep, rep_customer, params, message):
    client.force_login(rep)
    response = client.get(reverse("customers:statement", args=[rep_customer.pk]), params)
    assert response.status_code == 400
    assert response["Content-Type"].startswith("text/html")
    assert message in response.content.decode()


def test_the_pdf_may_load_static_files_only():
    assert static_path_for(PDF_BASE_URL + "static/css/statement.css").endswith("css/statement.css")
    for url in [
        "file:///etc/passwd",
        "http://169.254.169.254/latest/meta-data/",
        PDF_BASE_URL + "static/../../etc/passwd",
        PDF_BASE_URL + "media/upload.png",
        "https://example.com/static/css/statement.css",
    ]:
        assert static_path_for(url) is None, url
