import datetime as dt
import json
from decimal import Decimal

import pytest
from django.urls import reverse

from cockpit.selectors import monthly_margin_and_service_cost, period_rollup
from services.models import ServiceType, StandardCost
from tests.factories import CustomerFactory, ServiceEventFactory, TransactionFactory

from .factories import CustomerValueFactory, ValuationRunFactory, days_ago

pytestmark = pytest.mark.django_db


def test_cockpit_shows_both_value_dimensions_and_the_strategy(client, rep, rep_customer):
    client.force_login(rep)
    response = client.get(reverse("customers:detail", args=[rep_customer.pk]))
    html = response.content.decode()
    assert "Value from the customer" in html and "Value to the customer" in html
    assert "investment customers" in html and "pays back in loyalty" in html
    assert "ABC class A" in html
    assert "Free hotline" in html and "€812.50" in html  # value_to_by_type with the type's name
    assert "Thin history" not in html


def test_thin_history_and_not_valued_notes(client, rep, run):
    thin = CustomerFactory(owner=rep)
    CustomerValueFactory(run=run, customer=thin, is_thin=True)
    fresh = CustomerFactory(owner=rep)
    client.force_login(rep)
    assert "Thin history" in client.get(reverse("customers:detail", args=[thin.pk])).content.decode()
    response = client.get(reverse("customers:detail", args=[fresh.pk]))
    assert response.status_code == 200
    assert "Not valued yet: the nightly run will value this customer" in response.content.decode()


def test_service_history_for_the_chosen_period(client, rep, rep_customer):
    ServiceEventFactory(customer=rep_customer, date=days_ago(30), note="recent help", logged_by=rep)
    ServiceEventFactory(customer=rep_customer, date=days_ago(500), note="old help")
    client.force_login(rep)
    url = reverse("customers:detail", args=[rep_customer.pk])
    html = client.get(url).content.decode()
    assert "recent help" in html and "old help" not in html
    assert rep.get_full_name() in html
    start = days_ago(600).isoformat()
    html = client.get(url, {"from": start, "to": days_ago(0).isoformat()}).content.decode()
    assert "recent help" in html and "old help" in html
    html = client.get(url, {"from": "31.02.2025"}).content.decode()
    assert "Showing the last 12 months instead" in html and "recent help" in html


def test_chart_carries_margin_and_service_cost(client, rep, rep_customer):
    TransactionFactory(customer=rep_customer, date=days_ago(40), revenue=Decimal("1000"), cost_of_goods=Decimal("600"))
    ServiceEventFactory(customer=rep_customer, date=days_ago(40), quantity=Decimal("2"))
    client.force_login(rep)
    response = client.get(reverse("customers:detail", args=[rep_customer.pk]))
    figure = response.context["monthly_chart"]
    assert [trace["name"] for trace in figure["data"]] == ["Margin", "Free services (standard cost)"]
    assert 400.0 in figure["data"][0]["y"] and 130.0 in figure["data"][1]["y"]
    assert len(figure["data"][0]["x"]) in (12, 13)
    assert 'id="monthly-chart-data"' in response.content.decode()
    json.dumps(figure)


def test_value_history_and_segment_changes(client, rep, rep_customer, run):
    older = ValuationRunFactory(as_of=run.as_of - dt.timedelta(days=30), finished_at=run.finished_at - dt.timedelta(days=30))
    CustomerValueFactory(run=older, customer=rep_customer, segment="problem", clv=Decimal("1000"))
    client.force_login(rep)
    response = client.get(reverse("customers:detail", args=[rep_customer.pk]))
    changes = response.context["cockpit"].segment_changes
    assert [(c["from"], c["to"]) for c in changes] == [("problem", "investment")]
    history = response.context["history_chart"]
    assert [t["name"] for t in history["data"]] == ["CLV range", "CLV", "Value to the customer"]
    assert "Segment changes" in response.content.decode()


def test_monthly_aggregation_uses_the_cost_of_each_day():
    customer = CustomerFactory()
    hotline = ServiceType.objects.get(code="hotline")
    StandardCost.objects.create(service_type=hotline, valid_from=dt.date(2025, 5, 15), cost_per_unit=Decimal("80.00"))
    for day, quantity in [(dt.date(2025, 5, 14), "1"), (dt.date(2025, 5, 15), "1"), (dt.date(2025, 6, 2), "0.5")]:
        ServiceEventFactory(customer=customer, service_type=hotline, date=day, quantity=Decimal(quantity))
    TransactionFactory(customer=customer, date=dt.date(2025, 5, 3), revenue=Decimal("100"), cost_of_goods=Decimal("30"))
    TransactionFactory(customer=customer, date=dt.date(2025, 5, 30), revenue=Decimal("50"), cost_of_goods=Decimal("45"))
    # The period before (read in the same rollup for the period figures) stays out of the months.
    ServiceEventFactory(customer=customer, service_type=hotline, date=dt.date(2025, 4, 9), quantity=Decimal("3"))
    TransactionFactory(customer=customer, date=dt.date(2025, 2, 1), revenue=Decimal("900"), cost_of_goods=Decimal("1"))
    rollup = period_rollup(customer_id=customer.pk, start=dt.date(2025, 4, 10), end=dt.date(2025, 6, 30))
    months = monthly_margin_and_service_cost(rollup)
    assert [(m["month"], m["margin"], m["service_cost"]) for m in months] == [
        (dt.date(2025, 4, 1), Decimal(0), Decimal(0)),
        (dt.date(2025, 5, 1), Decimal("75.00"), Decimal("145.00")),  # 65 + 80
        (dt.date(2025, 6, 1), Decimal(0), Decimal("40.00")),
    ]


@pytest.mark.parametrize("query", ["from=9999-12-30&to=9999-12-31", "from=0001-01-01&to=0001-02-01"])
def test_a_period_at_the_end_of_the_calendar_is_refused_clearly(client, rep, rep_customer, query):
    """Month arithmetic past 9999 overflowed into a server error; now the page says which dates it takes."""
    client.force_login(rep)
    response = client.get(reverse("customers:detail", args=[rep_customer.pk]) + "?" + query)
    assert response.status_code == 200
    assert "Choose dates between" in response.content.decode()
    statement = client.get(reverse("customers:statement", args=[rep_customer.pk]) + "?" + query)
    assert statement.status_code == 400 and "Choose dates between" in statement.content.decode()


def test_value_card_labels_horizon_infinity_and_lifetime(client, rep, run):
    customer = CustomerFactory(owner=rep)
    CustomerValueFactory(run=run, customer=customer, clv_to_infinity=Decimal("61000.00"), median_lifetime_weeks=130.45)
    client.force_login(rep)
    html = client.get(reverse("customers:detail", args=[customer.pk])).content.decode()
    assert "CLV, next 36 months (discounted)" in html and "€37,373.37" in html
    assert "Value to infinity (discounted, all future years)" in html and "€61,000.00" in html
    assert "Median remaining lifetime" in html and "about 30 months" in html  # 130.45 weeks = 29.99 months
    assert 'id="value-basis"' not in html


def test_value_card_says_when_the_model_was_not_used(client, rep, run):
    fallback = CustomerFactory(owner=rep)
    CustomerValueFactory(run=run, customer=fallback, basis="trailing_margin_rate", p_alive=None,
                         expected_purchases=None, clv_low=None, clv_high=None, clv_to_infinity=None,
                         median_lifetime_weeks=None)
    lost = CustomerFactory(owner=rep)
    CustomerValueFactory(run=run, customer=lost, basis="lost", p_alive=0.0, expected_purchases=0.0,
                         clv=Decimal("0"), clv_to_infinity=Decimal("0"), median_lifetime_weeks=0.0)
    client.force_login(rep)
    html = client.get(reverse("customers:detail", args=[fallback.pk])).content.decode()
    assert "Trailing margin rate: the model's fit did not pass its checks" in html
    assert html.count("not claimed") == 4  # value to infinity, lifetime, P(alive), purchases
    assert "range €" not in html
    html = client.get(reverse("customers:detail", args=[lost.pk])).content.decode()
    assert "Marked lost: no future value is counted. Win back or let go." in html
    assert "more likely gone than still buying" in html


def test_a_one_time_buyer_with_p_alive_one_is_explained(client, rep, run):
    once = CustomerFactory(owner=rep)
    CustomerValueFactory(run=run, customer=once, purchase_days=1, p_alive=1.0)
    client.force_login(rep)
    html = client.get(reverse("customers:detail", args=[once.pk])).content.decode()
    assert "lets a customer drop out only after a repeat purchase" in html
