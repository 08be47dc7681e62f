"""A German browser: cockpit and dashboard in German, German numbers and month names in the
charts, no page wider than the window, and the header switch works from the keyboard."""

import pytest
from playwright.sync_api import expect

from customers.roles import Role
from tests.conftest import make_user
from tests.e2e.conftest import screenshot
from tests.e2e.test_cockpit import valued_customer  # noqa: F401 (fixture)
from tests.e2e.test_dashboard import make_valuation

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

GERMAN_SHORT_MONTHS = {"Mär", "Mai", "Okt", "Dez"}  # differ from English; a year of months holds them all


@pytest.fixture
def page(browser):
    """A browser that asks for German (Accept-Language: de-DE), as a German user's does."""
    context = browser.new_context(viewport={"width": 1366, "height": 900}, locale="de-DE")
    page = context.new_page()
    page.set_default_timeout(15000)
    yield page
    context.close()


@pytest.fixture
def sales_rep():
    return make_user(Role.SALES_REP, username="rep_e2e", first_name="Rita", last_name="Rep")


def overflowing(page) -> list[str]:
    """Elements reaching past the window's right edge (long German words push layouts)."""
    return page.evaluate(
        """() => {
            const width = document.documentElement.clientWidth;
            if (document.documentElement.scrollWidth <= width) return [];
            return [...document.querySelectorAll("body *")]
                .filter(e => e.getBoundingClientRect().right > width + 1)
                .filter(e => !e.closest(".tablewrap, .dash-tablewrap, svg"))
                .slice(0, 8)
                .map(e => `${e.tagName.toLowerCase()}#${e.id}.${e.className} ${Math.round(e.getBoundingClientRect().right)}px`);
        }"""
    )


def test_german_cockpit(page, live_server, login, sales_rep, valued_customer):  # noqa: F811
    login(sales_rep)
    page.goto(f"{live_server.url}/customers/{valued_customer.pk}/")
    expect(page.locator("html")).to_have_attribute("lang", "de")
    expect(page.locator("#value-from-title")).to_have_text("Wert vom Kunden")
    expect(page.locator("#value-to-title")).to_have_text("Wert für den Kunden")
    assert "37.373,37\u00a0€" in page.locator("#value-from").inner_text()
    assert "Investitionskunden" in page.get_by_test_id("segment").inner_text()
    page.wait_for_selector("#monthly-chart .xtick text")
    ticks = set(page.eval_on_selector_all("#monthly-chart .xtick text", "texts => texts.map(t => t.textContent)"))
    assert any(month in tick for tick in ticks for month in GERMAN_SHORT_MONTHS), ticks
    assert overflowing(page) == []
    screenshot(page, "cockpit-de")

    page.set_viewport_size({"width": 390, "height": 844})
    page.wait_for_timeout(300)
    assert overflowing(page) == []
    screenshot(page, "cockpit-de-phone")


def test_german_dashboard(page, live_server, login, manager):
    make_valuation()
    login(manager)
    page.goto(f"{live_server.url}/dashboard/")
    page.wait_for_selector("#segment-scatter[data-drawn=true]")
    expect(page.locator("h1")).to_have_text("Segment-Dashboard")
    expect(page.locator("#segment-table")).to_contain_text("Problemgruppe")
    expect(page.locator("#segment-table")).to_contain_text("Investitionskunden")
    y_title = page.locator("#segment-scatter .g-ytitle").text_content()
    assert y_title.startswith("Wert für den Kunden"), y_title
    assert overflowing(page) == []
    screenshot(page, "dashboard-de")

    page.set_viewport_size({"width": 1024, "height": 800})
    page.wait_for_timeout(300)
    assert overflowing(page) == []
    screenshot(page, "dashboard-de-1024")


def test_language_switch_by_keyboard(page, live_server, login, manager):
    login(manager)
    page.goto(f"{live_server.url}/customers/")
    expect(page.locator("h1")).to_have_text("Kunden")
    english = page.locator(".langswitch button[value=en]")
    english.focus()
    page.keyboard.press("Enter")
    expect(page.locator("h1")).to_have_text("Customers")
    assert page.url == f"{live_server.url}/customers/"
    # The choice outlives the page: a new visit stays English although the browser asks for German.
    page.goto(f"{live_server.url}/")
    expect(page.locator("h1")).to_have_text("Overview")
    page.locator(".langswitch button[value=de]").focus()
    page.keyboard.press("Enter")
    expect(page.locator("h1")).to_have_text("Übersicht")
