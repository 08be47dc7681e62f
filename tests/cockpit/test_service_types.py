"""Service types have an English and a German name, edited in the settings page."""

import datetime as dt
from decimal import Decimal

import pytest
from django.urls import reverse

from services.models import ServiceEvent, ServiceType, StandardCost
from tests.factories import ServiceEventFactory

pytestmark = pytest.mark.django_db

GERMAN = {"HTTP_ACCEPT_LANGUAGE": "de"}


def test_german_pages_show_german_service_names(client, rep, rep_customer):
    ServiceEventFactory(customer=rep_customer, date=dt.date.today() - dt.timedelta(days=3), note="Rückfrage")
    client.force_login(rep)
    german = client.get(reverse("customers:detail", args=[rep_customer.pk]), **GERMAN).content.decode()
    english = client.get(reverse("customers:detail", args=[rep_customer.pk]), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Kostenlose Hotline" in german and "Free hotline" not in german
    assert "Free hotline" in english and "Kostenlose Hotline" not in english
    statement = client.get(reverse("customers:statement", args=[rep_customer.pk]), **GERMAN).content.decode()
    assert "Kostenlose Hotline" in statement
    log_form = client.get(reverse("services:log"), **GERMAN).content.decode()
    assert ">Kostenlose Hotline<" in log_form


def test_a_manager_renames_a_type_in_both_languages(client, manager):
    hotline = ServiceType.objects.get(code="hotline")
    client.force_login(manager)
    page = client.get(reverse("valuation:settings")).content.decode()
    assert reverse("valuation:service_type_edit", args=[hotline.pk]) in page
    response = client.post(reverse("valuation:service_type_edit", args=[hotline.pk]), {
        "name": "Service hotline", "name_de": "Service-Hotline", "unit": "hour", "description": "", "active": "on",
        "sort_order": "7",
    })
    assert response.status_code == 302
    hotline.refresh_from_db()
    assert (hotline.name, hotline.name_de, hotline.code) == ("Service hotline", "Service-Hotline", "hotline")
    assert "Service-Hotline" in client.get(reverse("valuation:settings"), **GERMAN).content.decode()


def test_the_unit_of_a_type_with_logged_services_stays(client, manager):
    hotline = ServiceType.objects.get(code="hotline")
    ServiceEventFactory(service_type=hotline)
    client.force_login(manager)
    response = client.post(reverse("valuation:service_type_edit", args=[hotline.pk]), {
        "name": "Free hotline", "name_de": "Kostenlose Hotline", "unit": "day", "active": "on", "sort_order": "7",
    })
    assert response.status_code == 400
    assert "cannot change" in response.content.decode()
    hotline.refresh_from_db()
    assert hotline.unit == "hour"


def test_a_new_type_comes_with_its_first_cost(client, manager):
    client.force_login(manager)
    response = client.post(reverse("valuation:service_type_new"), {
        "name": "Spare-part search", "name_de": "Ersatzteilsuche", "unit": "hour", "description": "",
        "active": "on", "sort_order": "20", "cost_per_unit": "48,50", "valid_from": "2026-01-01",
    }, **GERMAN)
    assert response.status_code == 302, response.content.decode()[-3000:]
    created = ServiceType.objects.get(name="Spare-part search")
    assert created.code == "spare_part_search"
    assert StandardCost.objects.get(service_type=created).cost_per_unit == Decimal("48.50")


@pytest.mark.parametrize("user", ["rep", "inside_sales"])
def test_only_managers_edit_service_types(client, request, user):
    client.force_login(request.getfixturevalue(user))
    hotline = ServiceType.objects.get(code="hotline")
    assert client.get(reverse("valuation:service_type_edit", args=[hotline.pk])).status_code == 403
    assert client.post(reverse("valuation:service_type_new"), {"name": "x"}).status_code == 403
    assert not ServiceEvent.objects.exists()
