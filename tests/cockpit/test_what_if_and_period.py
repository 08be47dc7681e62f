"""What-if on free services and the cockpit's period against the period before."""

import datetime as dt
from decimal import Decimal

import pytest
from django.test import Client

from cockpit.panels import period_figures, previous_period
from customers.roles import Role
from services.models import ServiceType
from tests.conftest import make_user
from tests.factories import CustomerFactory, ServiceEventFactory, TransactionFactory
from valuation.engine import Thresholds
from valuation.engine.what_if import what_if

THRESHOLDS = Thresholds(abc_a_min_margin=5000, abc_b_min_margin=1000, classic_threshold=2000, value_to_threshold=300)


def test_cutting_the_hotline_takes_a_problem_customer_out_of_the_problem_group():
    # margin 1,000, services 800 (hotline 500, training 300): profit 200, problem group.
    base = {"revenue_window": 4000.0, "margin_window": 1000.0, "clv": 1500.0, "value_to_customer": 800.0,
                "value_to_by_type": {"hotline": 500.0, "training": 300.0}, "thresholds": THRESHOLDS}
    cut = what_if(changes={"hotline": ("cut", 0)}, **base)
    assert (cut.value_to_customer, cut.profit_after_services, cut.segment) == (300.0, 700.0, "uncritical")
    charged = what_if(changes={"hotline": ("charge", 0)}, **base)
    assert (charged.revenue_window, charged.profit_after_services, charged.segment) == (4500.0, 700.0, "uncritical")
    halved = what_if(changes={"hotline": ("reduce", 50)}, **base)
    assert (halved.value_to_customer, halved.profit_after_services, halved.segment) == (550.0, 450.0, "problem")
    assert what_if(changes={}, **base).segment == "problem"


def test_previous_period_has_the_same_length():
    assert previous_period(dt.date(2026, 1, 1), dt.date(2026, 1, 31)) == (dt.date(2025, 12, 1), dt.date(2025, 12, 31))


@pytest.mark.django_db
def test_period_figures_against_the_period_before():
    customer = CustomerFactory()
    TransactionFactory(customer=customer, date=dt.date(2026, 2, 10), revenue=Decimal("1000"), cost_of_goods=Decimal("600"))
    TransactionFactory(customer=customer, date=dt.date(2026, 2, 10), revenue=Decimal("200"), cost_of_goods=Decimal("100"))
    TransactionFactory(customer=customer, date=dt.date(2026, 1, 5), revenue=Decimal("500"), cost_of_goods=Decimal("400"))
    TransactionFactory(customer=customer, date=dt.date(2025, 12, 20), revenue=Decimal("9999"), cost_of_goods=Decimal("0"))
    hotline = ServiceType.objects.get(code="hotline")
    ServiceEventFactory(customer=customer, service_type=hotline, date=dt.date(2026, 2, 3), quantity=Decimal("1"))
    figures = period_figures(customer_id=customer.pk, start=dt.date(2026, 2, 1), end=dt.date(2026, 2, 28))
    rows = {row["key"]: row for row in figures["period_rows"]}
    assert figures["previous_start"] == dt.date(2026, 1, 4)
    assert (rows["revenue"]["now"], rows["revenue"]["before"]) == (Decimal("1200"), Decimal("500"))
    assert (rows["margin"]["now"], rows["margin"]["before"]) == (Decimal("500"), Decimal("100"))
    assert (rows["purchases"]["now"], rows["purchases"]["before"]) == (1, 1)
    assert rows["count"]["now"] == 1 and rows["cost"]["now"] > 0
    assert rows["profit"]["now"] == Decimal("500") - rows["cost"]["now"]


@pytest.mark.django_db
def test_what_if_on_the_cockpit_and_the_statement(two_runs):
    from customers.models import Customer

    rep = make_user(Role.SALES_REP)
    customer = Customer.objects.get(number="S0000")  # has hotline services
    customer.owner = rep
    customer.save()
    client = Client()
    client.force_login(rep)
    html = client.get(f"/customers/{customer.pk}/?wi_hotline=cut").content.decode()
    assert 'id="what-if-result"' in html and 'id="what-if-segment"' in html
    html = client.get(f"/customers/{customer.pk}/statement/?wi_hotline=charge").content.decode()
    assert 'id="what-if-result"' in html
    inside = make_user(Role.INSIDE_SALES)
    client.force_login(inside)
    html = client.get(f"/customers/{customer.pk}/?wi_hotline=cut").content.decode()
    assert "what-if" not in html and "value-change" not in html and 'data-figure="margin"' not in html
