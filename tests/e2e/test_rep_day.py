"""The rep's day in a browser, on the demo company with history, in English and German: each
role's home page, the value-change panel (its waterfall draws) and the what-if. The demo is the
one `make run` builds (the `demo` fixture of tests/e2e/conftest.py, seeded once per session)."""

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import screenshot
from valuation.models import CustomerValue
from valuation.selectors import latest_completed_run

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

TEXT = {
    "en": {"worklist": "Customers to act on", "why": "Why did the value change?", "changes": "What changed since the previous run",
           "log": "Log a free service"},
    "de": {"worklist": "Kunden, bei denen etwas zu tun ist", "why": "Warum hat sich der Wert verändert?",
           "changes": "Was sich seit dem letzten Lauf geändert hat", "log": "Kostenfreie Serviceleistung erfassen"},
}


def sign_in(page, live_server, username):
    page.context.clear_cookies()
    page.goto(f"{live_server.url}/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", "cvm-demo")
    page.click("main button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")


@pytest.mark.parametrize("language", ["en", "de"])
def test_each_role_home_value_change_and_what_if(browser, live_server, demo, language):
    context = browser.new_context(viewport={"width": 1366, "height": 900}, locale="de-DE" if language == "de" else "en-US")
    page = context.new_page()
    page.set_default_timeout(20000)
    words = TEXT[language]
    try:
        # A sales rep: the worklist, each item with its reason and a link.
        sign_in(page, live_server, "rep1")
        expect(page.locator("#worklist-title")).to_have_text(words["worklist"])
        items = page.locator(".work-item")
        assert items.count() > 0
        assert items.first.locator(".work-line").inner_text().strip()
        screenshot(page, f"home-rep-{language}")

        # Done hides the item.
        first_link = items.first.locator("a").get_attribute("href")
        count = items.count()
        items.first.locator("button[value=done]").click()
        page.wait_for_url(f"{live_server.url}/")
        assert page.locator(".work-item").count() <= count

        # The cockpit: why the value changed, as words and a waterfall.
        page.goto(f"{live_server.url}{first_link}")
        expect(page.locator("#value-change-title")).to_have_text(words["why"])
        assert page.locator("#value-change-drivers tbody tr").count() == 4
        page.wait_for_selector("#value-change-chart .waterfalllayer .point path", state="attached")
        # Two totals and four drivers: six bars (a zero driver is a flat one).
        assert page.locator("#value-change-chart .waterfalllayer .point path").count() == 6
        assert page.evaluate("document.getElementById('value-change-chart').data[0].type") == "waterfall"
        screenshot(page, f"value-change-{language}")

        # What if a problem-group customer's services were cut: the resulting profit and segment,
        # on the cockpit and on the value statement.
        spoiled = (CustomerValue.objects.filter(run=latest_completed_run(), customer__owner__username="rep1",
                                                segment="problem").exclude(value_to_by_type={})
                   .order_by("-value_to_customer").values_list("customer_id", flat=True).first())
        for path in (f"/customers/{spoiled}/", f"/customers/{spoiled}/statement/"):
            page.goto(f"{live_server.url}{path}")
            page.locator("#what-if-form select").first.select_option("cut")
            page.locator("#what-if-form button[type=submit]").click()
            expect(page.locator("#what-if-result")).to_be_visible()
            assert page.locator("#what-if-segment").inner_text().strip()
        screenshot(page, f"what-if-{language}")

        # A manager: what changed since the previous run, above the worklist.
        sign_in(page, live_server, "manager")
        expect(page.locator("#changes-title")).to_have_text(words["changes"])
        assert page.locator("#segment-moves tbody tr").count() > 0
        assert page.locator(".work-item").count() > 0
        screenshot(page, f"home-manager-{language}")

        # Inside sales: the quick logging form and their recent entries.
        sign_in(page, live_server, "inside")
        expect(page.locator(".pagehead h1")).to_have_text(words["log"])
        expect(page.locator("#service-log-form")).to_be_visible()
        screenshot(page, f"home-inside-{language}")
    finally:
        context.close()
