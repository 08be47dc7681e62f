import pytest

from tests.e2e.conftest import screenshot

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_anonymous_user_is_sent_to_login_and_lands_on_overview(page, live_server, manager):
    page.goto(f"{live_server.url}/")
    assert "/login/" in page.url
    page.fill("#id_username", manager.username)
    page.fill("#id_password", "wrong")
    page.click("main button[type=submit]")  # the header holds the language buttons
    assert page.locator("[role=alert]").is_visible()
    page.fill("#id_password", "secret-pass-123")
    page.click("main button[type=submit]")  # the header holds the language buttons
    page.wait_for_url(f"{live_server.url}/")
    assert page.locator("h1").inner_text() == "Overview"
    screenshot(page, "overview")
