import datetime as dt
from decimal import Decimal

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from customers.models import Customer
from services.models import ServiceType
from tests.factories import CustomerFactory, ServiceEventFactory, TransactionFactory
from valuation.models import CustomerValue, Segment, ValuationRun


def client_for(user) -> APIClient:
    client = APIClient()
    if user is not None:
        token, _ = Token.objects.get_or_create(user=user)
        client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


@pytest.fixture
def clients(manager, inside_sales, rep, other_rep):
    return {
        "anonymous": client_for(None),
        "manager": client_for(manager),
        "inside_sales": client_for(inside_sales),
        "rep": client_for(rep),
        "other_rep": client_for(other_rep),
    }


def value_row(run, customer, **overrides) -> CustomerValue:
    figures = {
        "revenue_lifetime": Decimal("5000.00"), "margin_lifetime": Decimal("1500.00"), "revenue_window": Decimal("2000.00"),
        "margin_window": Decimal("600.00"), "profit_after_services": Decimal("400.00"), "abc_class": "A", "purchase_days": 4,
        "p_alive": 0.9, "expected_purchases": 2.5, "clv": Decimal("3000.00"), "clv_low": Decimal("2000.00"),
        "clv_high": Decimal("4000.00"), "value_to_customer": Decimal("200.00"), "service_count": 3,
        "service_hours": Decimal("2.00"), "value_to_by_type": {"hotline": 130.0}, "segment": Segment.INVESTMENT,
    }
    figures.update(overrides)
    return CustomerValue.objects.create(run=run, customer=customer, **figures)


def completed_run(as_of: dt.date) -> ValuationRun:
    return ValuationRun.objects.create(
        as_of=as_of, status=ValuationRun.Status.COMPLETED, finished_at=dt.datetime(as_of.year, as_of.month, as_of.day, 3, tzinfo=dt.UTC),
        stage="done",
    )


@pytest.fixture
def world(manager, inside_sales, rep, other_rep):
    """Two reps with two customers each, transactions, services and two completed runs."""
    mine = [CustomerFactory(owner=rep, name=f"Rep A customer {i}") for i in range(2)]
    theirs = [CustomerFactory(owner=other_rep, name=f"Rep B customer {i}") for i in range(2)]
    for customer in mine + theirs:
        TransactionFactory(customer=customer)
    hotline = ServiceType.objects.get(code="hotline")
    mine_event = ServiceEventFactory(customer=mine[0], service_type=hotline, logged_by=rep)
    inside_event = ServiceEventFactory(customer=mine[1], service_type=hotline, logged_by=inside_sales)
    theirs_event = ServiceEventFactory(customer=theirs[0], service_type=hotline, logged_by=other_rep)
    old = completed_run(dt.date(2025, 1, 31))
    new = completed_run(dt.date(2025, 2, 28))
    for customer in mine + theirs:
        value_row(old, customer, segment=Segment.PROBLEM)
        value_row(new, customer)
    return {
        "mine": mine, "theirs": theirs, "mine_event": mine_event, "inside_event": inside_event,
        "theirs_event": theirs_event, "runs": [old, new],
    }


def results(response) -> list[dict]:
    data = response.json()
    return data["results"] if isinstance(data, dict) and "results" in data else data


__all__ = ["Customer", "client_for", "completed_run", "results", "value_row"]
