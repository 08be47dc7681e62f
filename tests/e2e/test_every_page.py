"""Every page, for every role, in both languages, at a phone's and a laptop's width: nothing
wider than the screen, and axe-core finds no serious or critical accessibility violation.

One test per language walks all pages (a browser context per role, both widths in it) to keep
the run short. What it measured goes to test-artifacts/every-page-<lang>.json.
"""

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.sessions.backends.db import SessionStore
from django.utils import timezone

from customers.roles import Role
from services.models import ServiceEvent, ServiceType
from tests.cockpit.factories import CustomerValueFactory
from tests.conftest import make_user
from tests.e2e.conftest import SCREENSHOTS
from tests.e2e.test_dashboard import make_valuation
from tests.factories import CustomerFactory, ServiceEventFactory, TransactionFactory
from tests.valuation.factories import CompletedRunFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

AXE = (Path(__file__).parent / "vendor" / "axe.min.js").read_text()
WIDTHS = (390, 1440)
LONG_NOTE = ("Rückruf wegen Druckabfall an Linie 4; Dichtungsprüfung am Telefon erklärt und "
             "Ersatzteilliste HX-4471-B-REV-2026-EDELSTAHL geschickt")

# Sideways overflow of the page, and of any element that scrolls on its own (a wide table in a
# scrolling box is still wider than the screen).
OVERFLOW = """() => {
    const width = document.documentElement.clientWidth;
    const found = [];
    const page = document.documentElement.scrollWidth - width;
    if (page > 0) found.push(["page", page]);
    for (const e of document.querySelectorAll("body *")) {
        const style = getComputedStyle(e);
        if (!["auto", "scroll"].includes(style.overflowX) || e.closest(".js-plotly-plot, svg")) continue;
        const over = e.scrollWidth - e.clientWidth;
        if (over > 1) found.push([`${e.tagName.toLowerCase()}#${e.id}.${[...e.classList].join(".")}`, over]);
    }
    return found;
}"""
AXE_RUN = """async () => {
    const result = await axe.run(document, {resultTypes: ["violations"]});
    return result.violations.filter(v => ["serious", "critical"].includes(v.impact))
        .map(v => `${v.id} (${v.impact}): ${v.nodes.slice(0, 3).map(n => n.target.join(" ")).join(", ")}`);
}"""


@pytest.fixture
def people():
    return {
        "sales rep": make_user(Role.SALES_REP, username="rep_pages", first_name="Rita", last_name="Reisinger-Schmidt"),
        "inside sales": make_user(Role.INSIDE_SALES, username="inside_pages", first_name="Ina", last_name="Innendienst"),
        "manager": make_user(Role.MANAGER, username="manager_pages", first_name="Mia", last_name="Manager", is_staff=True),
    }


@pytest.fixture
def shop(people):
    """A company with a valuation, and one customer of the rep with a long, busy history."""
    make_valuation(60)
    rep, inside = people["sales rep"], people["inside sales"]
    today = timezone.localdate()
    customer = CustomerFactory(owner=rep, number="K-100001", name="Müller & Söhne Präzisionsmaschinenbau GmbH & Co. KG",
                               region="Baden-Württemberg", industry="Sondermaschinenbau")
    types = {t.code: t for t in ServiceType.objects.all()}
    for month in range(14):
        day = today - dt.timedelta(days=10 + 30 * month)
        TransactionFactory(customer=customer, date=day, revenue=Decimal("123456.78"), cost_of_goods=Decimal("98765.43"))
        for code, quantity in (("hotline", "1.5"), ("training", "2")):
            ServiceEventFactory(customer=customer, service_type=types[code], date=day, quantity=Decimal(quantity),
                                logged_by=inside, note=LONG_NOTE)
    run = CompletedRunFactory(as_of=today)
    CustomerValueFactory(run=run, customer=customer, clv=Decimal("1234567.89"), clv_low=Decimal("987654.32"),
                         clv_high=Decimal("2345678.90"))
    CustomerFactory(owner=rep, number="K-100002", name="Neukunde ohne Käufe AG")
    return {"customer": customer, "event": ServiceEvent.objects.filter(customer=customer).latest("id"),
            "empty": CustomerFactory(owner=rep, number="K-100003", name="Leer GmbH")}


def pages_of(role: str, shop: dict) -> list[str]:
    customer, event = shop["customer"].pk, shop["event"].pk
    common = ["/", "/customers/", "/customers/?q=M%C3%BCller", f"/customers/{customer}/", f"/customers/{shop['empty'].pk}/",
              "/services/log/", "/no-such-page/"]
    if role in ("inside sales", "manager"):
        common += [f"/services/events/{event}/edit/", f"/services/events/{event}/delete/", f"/services/events/{event}/history/"]
    if role in ("sales rep", "manager"):
        common += [f"/customers/{customer}/statement/"]
    if role == "manager":
        common += ["/dashboard/", "/settings/", "/imports/"]
    else:
        common += ["/settings/"]  # 403
    return common


def _session_cookie(user, live_server) -> dict:
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.save()
    return {"name": django_settings.SESSION_COOKIE_NAME, "value": session.session_key, "url": live_server.url}


@pytest.mark.parametrize("language", ["en", "de"])
def test_every_page_fits_the_screen_and_passes_axe(browser, live_server, people, shop, language):
    problems, measured = [], []
    for role, user in [(None, None), *people.items()]:
        context = browser.new_context(viewport={"width": WIDTHS[0], "height": 800}, locale=language, bypass_csp=True)
        if user is not None:
            context.add_cookies([_session_cookie(user, live_server)])
        page = context.new_page()
        page.set_default_timeout(15000)
        paths = ["/login/"] if user is None else pages_of(role, shop)
        for path in paths:
            for width in WIDTHS:
                page.set_viewport_size({"width": width, "height": 800})
                response = page.goto(live_server.url + path)
                assert response.status < 500, f"{role} {path}: {response.status}"
                page.wait_for_load_state("load")
                overflow = page.evaluate(OVERFLOW)
                entry = {"role": role or "anonymous", "path": path, "width": width, "status": response.status, "overflow": overflow}
                if overflow:
                    problems.append(f"{role} {language} {width}px {path}: wider than the screen: {overflow}")
                    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
                    page.screenshot(path=str(SCREENSHOTS / f"overflow-{language}-{width}-{path.strip('/').replace('/', '_') or 'home'}.png"), full_page=True)
                if width == WIDTHS[-1]:
                    page.evaluate(AXE)
                    violations = page.evaluate(AXE_RUN)
                    entry["axe"] = violations
                    problems += [f"{role} {language} {path}: {v}" for v in violations]
                measured.append(entry)
        context.close()
    out = Path(__file__).resolve().parents[2] / "test-artifacts"
    out.mkdir(exist_ok=True)
    (out / f"every-page-{language}.json").write_text(json.dumps(measured, indent=1))
    assert problems == []
