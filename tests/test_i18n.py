"""The UI in English and German: the browser's language or the header switch chooses, and
numbers, money and dates follow the language. The message catalogue is complete and compiled."""

import datetime as dt
import gettext
import html
import json
import re
import shutil
from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from services.models import ServiceEvent, ServiceType, StandardCost
from tests.cockpit.factories import CustomerValueFactory, ValuationRunFactory
from tests.factories import CustomerFactory, ServiceEventFactory
from tests.valuation.factories import CompletedRunFactory
from tests.valuation.factories import CustomerValueFactory as DashboardValueFactory

PO_FILE = Path(settings.BASE_DIR) / "locale" / "de" / "LC_MESSAGES" / "django.po"
MO_FILE = PO_FILE.with_suffix(".mo")
GERMAN = {"HTTP_ACCEPT_LANGUAGE": "de-DE,de;q=0.9,en;q=0.5"}
NBSP = "\u00a0"

# English labels that must not show on a German page (whole phrases, so a customer called
# "Test Customer 1" does not count).
ENGLISH_LABELS = [
    "Log out", "Log in", "Username", "Password", "Overview", "Customers", "Log a service", "Settings",
    "Value from the customer", "Value to the customer", "Strategy", "Service history", "Every service",
    "Standard cost", "Standard costs", "Recompute now", "Segment dashboard", "problem group",
    "investment customers", "check potential", "uncritical", "Save service", "Period", "Profit after services",
    "Action lists", "Whale curve", "Earned growth", "Model health", "Movement between segments",
    "Valuation settings", "Segment policy", "Your recent entries", "Background", "Quantity",
    "pays back in loyalty", "Opportunistic selling", "renegotiate", "months", "Show", "Total", "Next", "Previous",
    "Language", "sales rep", "inside sales", "manager", "hour", "hours", "times",
]


def visible_text(response) -> str:
    """What a reader sees: no scripts (chart JSON), no tags, entities decoded."""
    page = response.content.decode()
    page = re.sub(r"<script\b.*?</script>", " ", page, flags=re.S)
    page = re.sub(r"<[^>]+>", " ", page)
    return html.unescape(page)


def english_leaks(text: str) -> list[str]:
    return [label for label in ENGLISH_LABELS if re.search(rf"(?<![\w-]){re.escape(label)}(?![\w-])", text)]


def get_german(client, url):
    response = client.get(url, **GERMAN)
    assert response.status_code == 200
    assert response["Content-Language"] == "de"
    assert '<html lang="de">' in response.content.decode()
    return response


@pytest.fixture
def valued_customer(rep):
    """A rep's customer with a value row whose value to the customer is 1.234,56 €, and a
    hotline service given on 22.11.2026."""
    customer = CustomerFactory(owner=rep, name="Alpha Maschinenbau GmbH", number="K-1001")
    CustomerValueFactory(run=ValuationRunFactory(), customer=customer, value_to_customer=Decimal("1234.56"))
    ServiceEventFactory(customer=customer, date=dt.date(2026, 11, 22), quantity=Decimal("1.5"), note="Anruf")
    return customer


# --- pages in German --------------------------------------------------------------------------


@pytest.mark.django_db
def test_login_page_follows_the_browser_language(client):
    text = visible_text(get_german(client, reverse("login")))
    assert "Anmelden" in text and "Benutzername" in text and "Passwort" in text
    assert english_leaks(text) == []

    english = client.get(reverse("login"), HTTP_ACCEPT_LANGUAGE="en-US,en;q=0.9")
    assert "Username" in visible_text(english) and '<html lang="en">' in english.content.decode()


def test_customer_list_in_german(client, rep, valued_customer):
    client.force_login(rep)
    text = visible_text(get_german(client, reverse("customers:list")))
    assert "Name oder Nummer" in text and "Investitionskunden" in text and "Wert für den Kunden" in text
    assert f"1.235{NBSP}€" in text  # whole euros in the list
    assert "· Außendienst" in text  # the role next to the user's name
    assert english_leaks(text) == []


def test_cockpit_in_german_with_german_money_and_dates(client, rep, valued_customer):
    client.force_login(rep)
    url = reverse("customers:detail", args=[valued_customer.pk]) + "?from=2026-11-01&to=2026-11-30"
    response = get_german(client, url)
    text = visible_text(response)
    assert "Wert vom Kunden" in text and "Wert für den Kunden" in text and "Serviceverlauf" in text
    assert "Investitionskunden" in text
    assert "Die hohen Serviceinvestitionen zahlen sich in Kundenbindung und Folgegeschäften aus." in text
    assert f"1.234,56{NBSP}€" in text
    assert "22.11.2026" in text
    assert "1,5 Stunden" in text
    assert english_leaks(text) == []
    # The charts draw with German separators and month names.
    chart = json.loads(re.search(r'id="monthly-chart-data"[^>]*>(.*?)</script>', response.content.decode(), re.S)[1])
    assert chart["layout"]["separators"] == ",."
    assert "plotly-locale-de.js" in response.content.decode()
    # A period typed the German way works as well as the date picker's ISO dates.
    german_period = reverse("customers:detail", args=[valued_customer.pk]) + "?from=01.11.2026&to=30.11.2026"
    assert "Vom 01.11.2026 bis 30.11.2026" in visible_text(get_german(client, german_period))


def test_cockpit_in_english_keeps_english_formats(client, rep, valued_customer):
    client.force_login(rep)
    url = reverse("customers:detail", args=[valued_customer.pk]) + "?from=2026-11-01&to=2026-11-30"
    text = visible_text(client.get(url, HTTP_ACCEPT_LANGUAGE="en"))
    assert "€1,234.56" in text and "investment customers" in text and "pays back in loyalty" in text
    assert "11/22/2026" in text
    assert {"Value to the customer", "Strategy", "hours"} <= set(english_leaks(text))  # the check can fail


def test_service_log_in_german_accepts_german_dates_and_decimals(client, inside_sales, valued_customer):
    client.force_login(inside_sales)
    response = get_german(client, reverse("services:log"))
    text = visible_text(response)
    assert "Kostenfreie Serviceleistung erfassen" in text and "Serviceleistung speichern" in text
    assert f'value="{timezone.localdate():%d.%m.%Y}"' in response.content.decode()
    assert english_leaks(text) == []

    hotline = ServiceType.objects.get(code="hotline")
    response = client.post(
        reverse("services:log"),
        {"customer": "K-1001", "service_type": hotline.pk, "date": "03.11.2026", "quantity": "2,5", "note": ""},
        **GERMAN,
    )
    assert response.status_code == 302
    event = ServiceEvent.objects.get(logged_by=inside_sales)
    assert event.date == dt.date(2026, 11, 3) and event.quantity == Decimal("2.5")
    page = visible_text(client.get(reverse("services:log"), **GERMAN))
    assert "erfasst, bewertet mit" in page and "03.11.2026" in page


def test_dashboard_in_german(client, manager):
    run = CompletedRunFactory()
    DashboardValueFactory(run=run, segment="problem", clv=Decimal("100.00"), value_to_customer=Decimal("900.00"))
    DashboardValueFactory(run=run, segment="investment")
    client.force_login(manager)
    response = get_german(client, reverse("valuation:dashboard"))
    text = visible_text(response)
    for word in ("Segment-Dashboard", "Problemgruppe", "Investitionskunden", "Potenzial prüfen", "unkritisch",
                 "Walkurve", "Aktionslisten", "Typische Strategie", "Bewertung zum 31.01.2026"):
        assert word in text, word
    # Dashboard and cockpit show the same strategy wording.
    assert "Mit kostenfreien Serviceleistungen verwöhnt, aber nicht so viel wert" in text
    assert english_leaks(text) == []
    scatter = json.loads(re.search(r'id="fig-scatter"[^>]*>(.*?)</script>', response.content.decode(), re.S)[1])
    assert scatter["layout"]["separators"] == ",."
    assert "Wert für den Kunden" in scatter["layout"]["yaxis"]["title"]["text"]


def test_settings_in_german_and_its_forms_take_german_input(client, manager):
    client.force_login(manager)
    response = get_german(client, reverse("valuation:settings"))
    text = visible_text(response)
    assert "Standardkosten" in text and "Jetzt neu berechnen" in text and "Bewertungseinstellungen" in text
    assert "Stunde" in text and "Einsatz" in text  # the units of the service types
    assert english_leaks(text) == []
    # A date picker needs ISO dates whatever the language; decimals show with a comma.
    assert f'type="date" name="valid_from" value="{timezone.localdate():%Y-%m-%d}"' in response.content.decode()
    assert 'value="0,1000"' in response.content.decode()  # the discount rate

    hotline = ServiceType.objects.get(code="hotline")
    response = client.post(
        reverse("valuation:add_standard_cost"),
        {"service_type": hotline.pk, "valid_from": "22.11.2030", "cost_per_unit": "1234,56"},
        **GERMAN,
    )
    assert response.status_code == 302
    cost = StandardCost.objects.get(service_type=hotline, valid_from=dt.date(2030, 11, 22))
    assert cost.cost_per_unit == Decimal("1234.56")
    page = visible_text(client.get(reverse("valuation:settings"), **GERMAN))
    assert "Neue Standardkosten für Kostenlose Hotline gespeichert: gültig ab 22.11.2030." in page
    assert f"dann 1.234,56{NBSP}€ ab 22.11.2030" in page


def test_error_page_in_german(rf):
    from django.db import OperationalError
    from django.utils import translation

    from cvm.views import server_error

    with translation.override("de"):
        try:
            raise OperationalError("down")
        except OperationalError:
            response = server_error(rf.get("/"))
    assert response.status_code == 503
    assert "Vorübergehend nicht erreichbar" in response.content.decode()
    assert '<html lang="de">' in response.content.decode()


# --- the language switch ------------------------------------------------------------------------


def test_the_header_switch_changes_the_language_and_keeps_it(client, rep, valued_customer):
    client.force_login(rep)
    page = client.get(reverse("customers:list"), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    # One button per language, the current one marked; a plain form, so it works by keyboard.
    assert f'action="{reverse("set_language")}"' in page
    assert re.search(r'<button type="submit" name="language" value="de" lang="de"[^>]*>Deutsch</button>', page)
    assert re.search(r'value="en" lang="en"[^>]*aria-current="true"', page)

    response = client.post(reverse("set_language"), {"language": "de", "next": reverse("customers:list")},
                           HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 302 and response["Location"] == reverse("customers:list")
    cookie = response.cookies[settings.LANGUAGE_COOKIE_NAME]
    assert cookie.value == "de" and int(cookie["max-age"]) >= 30 * 24 * 3600
    # The choice beats the browser's language from now on.
    text = visible_text(client.get(reverse("customers:list"), HTTP_ACCEPT_LANGUAGE="en"))
    assert "Name oder Nummer" in text and "Abmelden" in text

    client.post(reverse("set_language"), {"language": "en", "next": reverse("customers:list")})
    text = visible_text(client.get(reverse("customers:list"), **GERMAN))
    assert "Name or number" in text and "Log out" in text


# --- the catalogue ------------------------------------------------------------------------------


def _po_entries(path: Path) -> list[dict]:
    """The entries of a PO file: msgctxt, msgid, msgid_plural, msgstr (list) and flags."""
    entries, entry, field = [], None, None

    def text(quoted: str) -> str:
        return json.loads(quoted)

    for line in path.read_text(encoding="utf-8").splitlines() + [""]:
        if not line.strip():
            if entry is not None:
                entries.append(entry)
            entry = None
            continue
        if entry is None:
            entry = {"msgctxt": None, "msgid": "", "msgid_plural": None, "msgstr": {}, "flags": set()}
        if line.startswith("#,"):
            entry["flags"] |= {flag.strip() for flag in line[2:].split(",")}
        elif line.startswith("#"):
            continue
        elif match := re.match(r'(msgctxt|msgid_plural|msgid|msgstr(?:\[(\d+)\])?) (".*")$', line):
            name, index, value = match[1], match[2], text(match[3])
            field = ("msgstr", int(index or 0)) if name.startswith("msgstr") else (name, None)
            if field[0] == "msgstr":
                entry["msgstr"][field[1]] = value
            else:
                entry[name] = value
        elif line.startswith('"'):
            if field[0] == "msgstr":
                entry["msgstr"][field[1]] += text(line)
            else:
                entry[field[0]] += text(line)
    return [e for e in entries if e["msgid"]]  # without the header


PLACEHOLDER = re.compile(r"%\(\w+\)[sd]|\{\w*\}")


def test_every_german_message_is_translated_and_keeps_its_placeholders():
    entries = _po_entries(PO_FILE)
    assert len(entries) > 400
    problems = []
    for entry in entries:
        if "fuzzy" in entry["flags"]:
            problems.append(f"fuzzy: {entry['msgid']!r}")
        forms = entry["msgstr"].values()
        if not entry["msgstr"] or not all(form.strip() for form in forms):
            problems.append(f"untranslated: {entry['msgid']!r}")
        expected = set(PLACEHOLDER.findall(entry["msgid"] + (entry["msgid_plural"] or "")))
        for form in forms:
            # A singular form may leave its number out ("Nur die letzte Serviceleistung …").
            if not set(PLACEHOLDER.findall(form)) <= expected or (
                entry["msgid_plural"] is None and set(PLACEHOLDER.findall(form)) != expected
            ):
                problems.append(f"placeholders differ: {entry['msgid']!r} -> {form!r}")
    assert problems == []


def test_compiled_catalogue_matches_the_po_file():
    """The .mo is committed (CI needs no gettext); it must say what the .po says."""
    with MO_FILE.open("rb") as handle:
        compiled = gettext.GNUTranslations(handle)
    entries = _po_entries(PO_FILE)
    # One key per singular message and per plural form, plus the header.
    assert len(compiled._catalog) == 1 + sum(len(entry["msgstr"]) for entry in entries)
    for entry in entries:
        key = entry["msgid"] if entry["msgctxt"] is None else f"{entry['msgctxt']}\x04{entry['msgid']}"
        if entry["msgid_plural"] is None:
            assert compiled._catalog[key] == entry["msgstr"][0], entry["msgid"]
        else:
            for index, form in entry["msgstr"].items():
                assert compiled._catalog[(key, index)] == form, entry["msgid"]


@pytest.mark.skipif(shutil.which("xgettext") is None, reason="xgettext (gettext) is not installed")
def test_catalogue_covers_every_marked_string(tmp_path, settings, monkeypatch):
    """makemessages over a copy of the code finds nothing the German catalogue lacks."""
    root = Path(settings.BASE_DIR)
    for name in ("core", "customers", "services", "valuation", "cockpit", "cvm", "templates"):
        shutil.copytree(root / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    shutil.copytree(root / "locale", tmp_path / "locale")
    settings.LOCALE_PATHS = [tmp_path / "locale"]
    monkeypatch.chdir(tmp_path)
    call_command("makemessages", locale=["de"], verbosity=0)
    copy = _po_entries(tmp_path / "locale" / "de" / "LC_MESSAGES" / "django.po")
    missing = [e["msgid"] for e in copy if "fuzzy" in e["flags"] or not all(e["msgstr"].values())]
    assert missing == [], "run makemessages -l de and translate these"
