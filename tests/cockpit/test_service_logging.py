"""Logging free services: post/redirect/get, errors next to the field, own entries, history."""

import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied
from django.urls import reverse
from django.utils import timezone

from customers.roles import Role
from services import services
from services.models import ServiceEvent, ServiceType
from tests.conftest import make_user
from tests.factories import CustomerFactory, ServiceEventFactory

from .factories import days_ago

pytestmark = pytest.mark.django_db


@pytest.fixture
def hotline():
    return ServiceType.objects.get(code="hotline")  # 65.00 per hour in the catalogue


def entry(for_customer, service_type, **overrides):
    return {
        "customer": for_customer.number,
        "service_type": service_type.pk,
        "date": days_ago(1).isoformat(),
        "quantity": "2",
        "note": "Explained the new firmware",
        **overrides,
    }


def test_a_valid_entry_creates_one_event_and_comes_back(client, inside_sales, rep_customer, hotline):
    client.force_login(inside_sales)
    response = client.post(reverse("services:log"), entry(rep_customer, hotline))
    assert response.status_code == 302 and response["Location"] == reverse("services:log")
    event = ServiceEvent.objects.get()
    assert (event.customer, event.service_type, event.quantity, event.logged_by) == (
        rep_customer, hotline, Decimal("2"), inside_sales
    )
    page = client.get(response["Location"]).content.decode()
    assert "valued at €130.00" in page  # 2 h x 65.00
    assert 'id="recent-entries"' in page and "€130.00" in page
    assert "autofocus" in page


def test_the_search_box_label_is_accepted_too(client, inside_sales, rep_customer, hotline):
    client.force_login(inside_sales)
    label = f"{rep_customer.number} — {rep_customer.name}"
    assert client.post(reverse("services:log"), entry(rep_customer, hotline, customer=label)).status_code == 302
    assert ServiceEvent.objects.filter(customer=rep_customer).count() == 1


def test_logging_from_the_cockpit_goes_back_to_the_cockpit(client, rep, rep_customer, hotline):
    client.force_login(rep)
    cockpit = reverse("customers:detail", args=[rep_customer.pk])
    response = client.post(reverse("services:log"), {**entry(rep_customer, hotline), "next": cockpit + "#services"})
    assert response["Location"] == cockpit + "#services"
    response = client.post(reverse("services:log"), {**entry(rep_customer, hotline), "next": "https://evil.example/"})
    assert response["Location"] == reverse("services:log")


@pytest.mark.parametrize(("quantity", "message"), [("0", "greater than or equal to 0.01"), ("abc", "Enter a number"), ("-1", "greater than")])
def test_invalid_quantity_shows_the_error_at_the_field_and_keeps_the_input(client, inside_sales, rep_customer, hotline, quantity, message):
    client.force_login(inside_sales)
    response = client.post(reverse("services:log"), entry(rep_customer, hotline, quantity=quantity, note="Keep me"))
    assert response.status_code == 200
    html = response.content.decode()
    error_at = html.index('id="id_quantity_error"')
    assert html.rindex('id="id_quantity"', 0, error_at) > html.rindex('id="id_date"', 0, error_at)
    assert message in html[error_at : error_at + 300]
    assert 'value="Keep me"' in html and f'value="{rep_customer.number}"' in html
    assert f'value="{quantity}"' in html
    assert f'<option value="{hotline.pk}" selected>' in html
    assert ServiceEvent.objects.count() == 0


def test_unknown_customer_and_future_date_are_errors(client, inside_sales, rep_customer, hotline):
    client.force_login(inside_sales)
    tomorrow = (timezone.localdate() + dt.timedelta(days=1)).isoformat()
    html = client.post(reverse("services:log"), entry(rep_customer, hotline, customer="NOPE-1", date=tomorrow)).content.decode()
    assert "No customer with the number “NOPE-1”" in html
    assert "The date lies in the future" in html
    assert ServiceEvent.objects.count() == 0


def test_german_input_formats(client, inside_sales, rep_customer, hotline):
    client.force_login(inside_sales)
    day = days_ago(2)
    data = entry(rep_customer, hotline, quantity="1,5", date=day.strftime("%d.%m.%Y"))
    assert client.post(reverse("services:log"), data, HTTP_ACCEPT_LANGUAGE="de").status_code == 302
    event = ServiceEvent.objects.get()
    assert (event.quantity, event.date) == (Decimal("1.5"), day)


def test_recent_list_shows_only_own_entries_at_most_twenty(client, inside_sales, rep, rep_customer, hotline):
    for i in range(22):
        ServiceEventFactory(customer=rep_customer, logged_by=inside_sales, date=days_ago(i), note=f"mine {i}")
    ServiceEventFactory(customer=rep_customer, logged_by=rep, note="someone else's")
    client.force_login(inside_sales)
    response = client.get(reverse("services:log"))
    assert len(response.context["recent"]) == 20
    assert "someone else" not in response.content.decode()


def test_edit_own_entry_keeps_the_history(client, inside_sales, rep_customer, hotline):
    event = ServiceEventFactory(customer=rep_customer, service_type=hotline, logged_by=inside_sales, date=days_ago(5), note="first")
    client.force_login(inside_sales)
    url = reverse("services:event-edit", args=[event.pk])
    assert client.get(url).status_code == 200
    response = client.post(url, entry(rep_customer, hotline, quantity="3", note="corrected", date=days_ago(5).isoformat()))
    assert response.status_code == 302
    event.refresh_from_db()
    assert (event.quantity, event.note) == (Decimal("3"), "corrected")
    latest, before = event.history.order_by("-history_date", "-history_id")[:2]
    assert latest.history_user == inside_sales and latest.history_type == "~"
    assert (before.quantity, latest.quantity) == (Decimal("1"), Decimal("3"))
    changed = {c.field for c in latest.diff_against(before).changes}
    assert changed == {"quantity", "note"}

    html = client.get(reverse("services:event-history", args=[event.pk])).content.decode()
    assert "Changed" in html and "Logged" in html and inside_sales.get_full_name() in html
    assert "<del>first</del>" in html and "<ins>corrected</ins>" in html
    assert "<del>1</del>" in html and "<ins>3</ins>" in html


def test_only_own_entries_can_be_changed_but_managers_change_any(client, inside_sales, manager, rep_customer, hotline):
    colleague = make_user(Role.INSIDE_SALES, username="inside2")
    event = ServiceEventFactory(customer=rep_customer, logged_by=colleague, date=days_ago(3))
    client.force_login(inside_sales)
    assert client.post(reverse("services:event-edit", args=[event.pk]), entry(rep_customer, hotline)).status_code == 403
    assert client.post(reverse("services:event-delete", args=[event.pk])).status_code == 403
    with pytest.raises(PermissionDenied):
        services.delete_service_event(user=inside_sales, event=event)

    client.force_login(manager)
    assert client.post(reverse("services:event-edit", args=[event.pk]), entry(rep_customer, hotline, quantity="4")).status_code == 302
    event.refresh_from_db()
    assert event.quantity == Decimal("4") and event.logged_by == colleague
    assert event.history.latest().history_user == manager


def test_delete_own_entry_keeps_a_history_record(client, rep, rep_customer):
    event = ServiceEventFactory(customer=rep_customer, logged_by=rep, date=days_ago(3))
    client.force_login(rep)
    url = reverse("services:event-delete", args=[event.pk])
    assert "Delete this entry?" in client.get(url).content.decode()
    assert client.post(url).status_code == 302
    assert not ServiceEvent.objects.filter(pk=event.pk).exists()
    deleted = ServiceEvent.history.filter(id=event.pk).latest()
    assert deleted.history_type == "-" and deleted.history_user == rep


def test_rep_cannot_move_an_entry_to_another_reps_customer(client, rep, other_customer, rep_customer, hotline):
    event = ServiceEventFactory(customer=rep_customer, logged_by=rep, date=days_ago(3))
    client.force_login(rep)
    response = client.post(reverse("services:event-edit", args=[event.pk]), entry(other_customer, hotline))
    assert response.status_code == 200 and "No customer with the number" in response.content.decode()
    event.refresh_from_db()
    assert event.customer == rep_customer


def test_customer_search_finds_visible_customers_by_prefix_at_most_ten(client, rep, other_rep):
    for i in range(12):
        CustomerFactory(owner=rep, number=f"R{i:03d}", name=f"Rhein Metall {i}")
    CustomerFactory(owner=other_rep, number="R999", name="Rhein Foreign")
    CustomerFactory(owner=rep, number="X1", name="Oberrhein KG")
    client.force_login(rep)
    results = client.get(reverse("services:customer-search"), {"q": "rhein"}).json()["results"]
    assert len(results) == 10
    assert all(r["name"].startswith("Rhein Metall") for r in results)
    assert client.get(reverse("services:customer-search"), {"q": "R01"}).json()["results"][0]["number"] == "R010"
    assert client.get(reverse("services:customer-search"), {"q": "  "}).json() == {"results": []}
    assert client.post(reverse("services:customer-search"), {"q": "R"}).status_code == 405


def test_log_service_event_service_checks_the_rules(rep, other_customer, hotline):
    with pytest.raises(PermissionDenied):
        services.log_service_event(user=rep, customer=other_customer, service_type=hotline, date=days_ago(1))


def test_a_date_before_1990_is_refused_as_by_the_api_and_the_import(client, inside_sales, rep_customer, hotline):
    client.force_login(inside_sales)
    html = client.post(reverse("services:log"), entry(rep_customer, hotline, date="1900-01-01")).content.decode()
    assert "Implausible date: before" in html
    assert ServiceEvent.objects.count() == 0
