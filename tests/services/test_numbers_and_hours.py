"""Numbers typed as "2,5" or "2.5" in either language; time given in hours across units."""

from decimal import Decimal

import pandas as pd
import pytest
from django.urls import reverse
from django.utils import translation

from core.numbers import parse_decimal
from services.forms import ServiceEventForm
from services.models import ServiceEvent
from tests.factories import CustomerFactory
from valuation.selectors import service_totals


@pytest.mark.parametrize("language", ["en", "de"])
@pytest.mark.parametrize(
    ("typed", "number"),
    [("2,5", "2.5"), ("2.5", "2.5"), ("0,25", "0.25"), (" 7,50 ", "7.5"), ("1.234,56", "1234.56"),
     ("1,234.56", "1234.56"), ("1 234,5", "1234.5"), ("3", "3"), ("-1,5", "-1.5")],
)
def test_both_decimal_marks_are_read_in_both_languages(typed, number, language):
    assert parse_decimal(typed, language=language) == Decimal(number)


def test_three_digits_after_one_mark_follow_the_language():
    assert parse_decimal("1.234", language="de") == Decimal("1234")
    assert parse_decimal("1.234", language="en") == Decimal("1.234")
    assert parse_decimal("1,234", language="en") == Decimal("1234")
    assert parse_decimal("1,234", language="de") == Decimal("1.234")


@pytest.mark.parametrize("typed", ["", "abc", "2,5,5,", "1.2.3,4,5", "--1", "1e3"])
def test_what_is_not_a_number(typed):
    assert parse_decimal(typed, language="en") is None


@pytest.mark.django_db
@pytest.mark.parametrize("language", ["en", "de"])
@pytest.mark.parametrize("typed", ["2,5", "2.5"])
def test_the_service_form_takes_2_5_both_ways(client, rep, language, typed):
    customer = CustomerFactory(owner=rep, number="K-77")
    client.force_login(rep)
    hotline = ServiceEvent._meta.get_field("service_type").related_model.objects.get(code="hotline")
    response = client.post(
        reverse("services:log"),
        {"customer": "K-77", "service_type": hotline.pk, "date": "2026-01-05" if language == "en" else "05.01.2026",
         "quantity": typed, "note": ""},
        HTTP_ACCEPT_LANGUAGE=language,
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert ServiceEvent.objects.get(customer=customer).quantity == Decimal("2.5")


@pytest.mark.django_db
def test_the_form_shows_a_quantity_in_the_pages_format(rep):
    with translation.override("de"):
        form = ServiceEventForm(user=rep, initial={"quantity": Decimal("2.50")})
        assert 'value="2,50"' in str(form["quantity"]) or 'value="2,5"' in str(form["quantity"])


def test_days_count_as_hours_and_occurrences_add_none():
    by_type = pd.DataFrame({
        "customer_id": [1, 1, 1, 2],
        "service_type": ["hotline", "commissioning", "technical_tip", "training"],
        "unit": ["hour", "day", "occurrence", "day"],
        "count": [2, 3, 1, 1],
        "quantity": [1.5, 7.5, 4.0, 0.5],
        "cost": [100.0, 8000.0, 160.0, 475.0],
    })
    totals = service_totals(by_type, hours_per_day=8)
    assert totals.loc[1, "service_hours"] == pytest.approx(1.5 + 7.5 * 8)  # 61.5, not 1.5
    assert totals.loc[2, "service_hours"] == pytest.approx(4.0)
    assert service_totals(by_type, hours_per_day=7.5).loc[1, "service_hours"] == pytest.approx(1.5 + 7.5 * 7.5)


def test_the_engine_counts_days_as_hours_too():
    import datetime as dt

    from valuation.engine.settings import EngineSettings
    from valuation.engine.summary import summarise_services

    services = pd.DataFrame({
        "customer_id": [1, 1], "date": [pd.Timestamp("2026-03-01")] * 2, "service_type": ["hotline", "commissioning"],
        "quantity": [1.0, 7.5], "unit": ["hour", "day"], "cost": [65.0, 8250.0],
    })
    totals, _by_type = summarise_services(services, as_of=dt.date(2026, 6, 30), settings=EngineSettings(hours_per_day=8))
    assert totals.loc[1, "service_hours"] == pytest.approx(61.0)
