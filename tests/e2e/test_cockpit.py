"""A rep's cockpit, keyboard-only logging by inside sales, and the value statement PDF."""

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from customers.roles import Role
from services.models import ServiceType
from tests.cockpit.factories import CustomerValueFactory, ValuationRunFactory
from tests.conftest import make_user
from tests.e2e.conftest import screenshot
from tests.factories import CustomerFactory, ServiceEventFactory, TransactionFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def sales_rep():
    return make_user(Role.SALES_REP, username="rep_e2e", first_name="Rita", last_name="Rep")


@pytest.fixture
def valued_customer(sales_rep):
    """A customer with a year of purchases and free services and two valuation runs."""
    today = timezone.localdate()
    customer = CustomerFactory(owner=sales_rep, number="K-1001", name="Alpha Maschinenbau GmbH", region="Bavaria")
    types = {t.code: t for t in ServiceType.objects.all()}
    for month in range(12):
        day = today - dt.timedelta(days=15 + 30 * month)
        TransactionFactory(customer=customer, date=day, revenue=Decimal(4000 + 250 * month), cost_of_goods=Decimal(2900))
        ServiceEventFactory(customer=customer, service_type=types["hotline"], date=day, quantity=Decimal("1.5"),
                            logged_by=sales_rep, note="Hotline: machine stops after restart")
        if month % 4 == 0:
            ServiceEventFactory(customer=customer, service_type=types["training"], date=day, quantity=Decimal("1"),
                                logged_by=sales_rep, note="Operator training, two new staff")
    earlier = ValuationRunFactory(as_of=today - dt.timedelta(days=60), finished_at=timezone.now() - dt.timedelta(days=60))
    CustomerValueFactory(run=earlier, customer=customer, segment="potential", clv=Decimal("30500"),
                         clv_low=Decimal("19000"), clv_high=Decimal("44000"), value_to_customer=Decimal("1900"))
    CustomerValueFactory(run=ValuationRunFactory(), customer=customer)
    CustomerFactory(owner=sales_rep, number="K-1002", name="Alpha Zwei KG")
    return customer


def test_rep_opens_a_cockpit_with_both_value_dimensions_and_a_drawn_chart(page, live_server, login, sales_rep, valued_customer):
    problems = []
    page.on("console", lambda m: m.type == "error" and "Failed to load resource" not in m.text and problems.append(m.text))
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on("response", lambda r: r.status >= 400 and "favicon" not in r.url and problems.append(f"{r.status} {r.url}"))
    login(sales_rep)
    page.click("nav >> text=Customers")
    page.wait_for_url(f"{live_server.url}/customers/")
    screenshot(page, "cockpit-customer-list")
    page.click(f"text={valued_customer.name}")
    page.wait_for_url(f"{live_server.url}/customers/{valued_customer.pk}/")
    assert page.locator("#value-from").is_visible() and page.locator("#value-to").is_visible()
    assert "€37,373.37" in page.locator("#value-from").inner_text()
    assert "€2,468.13" in page.locator("#value-to").inner_text()
    page.wait_for_selector("#monthly-chart svg.main-svg")
    page.wait_for_selector("#history-chart .plot-container")
    assert page.locator("#monthly-chart .bars .point").count() >= 10  # the margin bars really drew
    assert page.locator("#service-history tbody tr").count() == 15
    screenshot(page, "cockpit-rep")
    assert problems == []  # no script errors, no Content-Security-Policy violations
    page.set_viewport_size({"width": 820, "height": 1180})
    page.reload()
    page.wait_for_selector("#monthly-chart svg.main-svg")
    screenshot(page, "cockpit-tablet")


def test_inside_sales_logs_a_service_with_the_keyboard_only(page, live_server, login, valued_customer):
    inside = make_user(Role.INSIDE_SALES, username="inside_e2e", first_name="Ines", last_name="Inside")
    login(inside)
    page.goto(f"{live_server.url}/services/log/")
    assert page.evaluate("document.activeElement.id") == "id_customer"  # autofocus

    page.keyboard.type("Alpha")
    page.wait_for_selector("#customer-options [role=option] >> nth=1")
    screenshot(page, "service-log-search")
    page.keyboard.press("ArrowDown")
    assert page.get_attribute("#id_customer", "aria-activedescendant") == "customer-option-1"
    page.keyboard.press("ArrowUp")
    page.keyboard.press("Enter")
    assert page.input_value("#id_customer") == "K-1001 — Alpha Maschinenbau GmbH"
    assert page.locator("#customer-options").is_hidden()

    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "id_service_type"
    page.keyboard.type("Free h")  # type-ahead in the select
    assert page.locator("#id_service_type option:checked").inner_text() == "Free hotline"
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "id_date"
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "id_quantity"
    page.keyboard.press("Control+A")
    page.keyboard.type("1.5")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "id_note"
    page.keyboard.type("Reset the controller by phone")
    page.keyboard.press("Enter")

    page.wait_for_selector(".messages li.success")
    assert "valued at €97.50" in page.locator(".messages").inner_text()  # 1.5 h x 65.00
    first_row = page.locator("#recent-entries tbody tr").first
    assert "Alpha Maschinenbau GmbH" in first_row.inner_text() and "€97.50" in first_row.inner_text()
    assert page.evaluate("document.activeElement.id") == "id_customer"  # ready for the next entry
    assert page.input_value("#id_customer") == ""
    screenshot(page, "service-log-saved")


def test_statement_downloads_as_pdf(page, live_server, login, sales_rep, valued_customer):
    login(sales_rep)
    page.goto(f"{live_server.url}/customers/{valued_customer.pk}/")
    page.click("text=Value statement")
    page.wait_for_selector("#statement-total")
    screenshot(page, "value-statement")
    with page.expect_download() as download_info:
        page.click("#download-pdf")
    download = download_info.value
    assert download.suggested_filename.startswith("value-statement-K-1001-")
    assert download.suggested_filename.endswith(".pdf")
    with open(download.path(), "rb") as pdf:
        assert pdf.read(4) == b"%PDF"

    page.goto(f"{live_server.url}/customers/{valued_customer.pk}/statement/?from=2025-02-30&to=2025-01-01")
    assert "Enter the start as a date" in page.locator("#period-error").inner_text()
    screenshot(page, "value-statement-bad-date")
