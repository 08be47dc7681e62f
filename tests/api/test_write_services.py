"""Pages, API and imports write through the same services: the API cannot do what the
settings page refuses, and one API call leaves one history row."""

import datetime as dt
from decimal import Decimal

import pytest

from services.models import ServiceEvent, ServiceType, StandardCost
from services.selectors import service_event_value
from tests.factories import CustomerFactory, ServiceEventFactory

from .conftest import client_for

pytestmark = pytest.mark.django_db


def test_api_refuses_a_back_dated_standard_cost_like_the_settings_page(manager):
    hotline = ServiceType.objects.get(code="hotline")
    StandardCost.objects.create(service_type=hotline, valid_from=dt.date(2024, 1, 1), cost_per_unit=Decimal("65.00"))
    call = ServiceEventFactory(service_type=hotline, date=dt.date(2024, 7, 1), quantity=Decimal("1"))
    before = service_event_value(call)

    response = client_for(manager).post(
        "/api/v1/standard-costs/",
        {"service_type": "hotline", "valid_from": "2023-06-01", "cost_per_unit": "1.00"},
        format="json",
    )

    assert response.status_code == 400, response.content
    assert "valid_from" in response.json()
    assert service_event_value(ServiceEvent.objects.get(pk=call.pk)) == before == Decimal("65.00")


def test_api_adds_a_later_standard_cost(manager):
    hotline = ServiceType.objects.get(code="hotline")
    latest = StandardCost.objects.filter(service_type=hotline).order_by("-valid_from").first()
    later = (latest.valid_from if latest else dt.date(2024, 1, 1)) + dt.timedelta(days=30)
    response = client_for(manager).post(
        "/api/v1/standard-costs/",
        {"service_type": "hotline", "valid_from": later.isoformat(), "cost_per_unit": "70.00"},
        format="json",
    )
    assert response.status_code == 201, response.content
    assert response.json()["created_by"] == manager.username


def test_api_create_with_external_id_writes_one_history_row(inside_sales):
    customer = CustomerFactory()
    response = client_for(inside_sales).post(
        "/api/v1/service-events/",
        {"customer": customer.pk, "service_type": "hotline", "date": "2026-01-15", "quantity": "1",
         "note": "called about the pump", "external_id": "TICKET-42"},
        format="json",
    )
    assert response.status_code == 201, response.content
    event = ServiceEvent.objects.get(external_id="TICKET-42")
    assert [record.history_type for record in event.history.all()] == ["+"]
