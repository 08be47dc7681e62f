"""Every URL of the cockpit, for every role: who gets in, who gets 404/403, and what leaks."""

import datetime as dt
from decimal import Decimal

import pytest
from django.urls import reverse

from tests.conftest import make_user
from tests.factories import ServiceEventFactory, TransactionFactory

from .factories import days_ago

pytestmark = pytest.mark.django_db

# Figures of the value FROM the customer in CustomerValueFactory, as the pages print them
# (two decimals in the cockpit, whole units in the list), and P(alive).
MONEY_FRAGMENTS = [
    "45,678", "45,679", "13,579", "11,111", "98,765", "24,680", "37,373", "21,212", "52,525", "87%",
]


@pytest.fixture
def event(rep, rep_customer):
    return ServiceEventFactory(customer=rep_customer, logged_by=rep, date=days_ago(10), quantity=Decimal("2"))


def customer_urls(customer):
    return [
        reverse("customers:detail", args=[customer.pk]),
        reverse("customers:statement", args=[customer.pk]),
        reverse("customers:statement", args=[customer.pk]) + "?format=pdf",
    ]


def event_urls(event):
    return [
        reverse("services:event-edit", args=[event.pk]),
        reverse("services:event-delete", args=[event.pk]),
        reverse("services:event-history", args=[event.pk]),
    ]


def all_urls(customer, event):
    return [
        reverse("customers:list"),
        reverse("services:log"),
        reverse("services:customer-search") + "?q=K",
        *customer_urls(customer),
        *event_urls(event),
    ]


def test_anonymous_users_are_sent_to_login_everywhere(client, rep_customer, event):
    for url in all_urls(rep_customer, event):
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith(reverse("login") + "?next="), url
    response = client.post(reverse("services:log"), {"customer": rep_customer.number})
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_a_login_without_role_is_refused(client, rep_customer, event):
    client.force_login(make_user(None, username="nobody"))
    for url in all_urls(rep_customer, event):
        assert client.get(url).status_code == 403, url


def test_rep_opens_every_page_of_own_customer(client, rep, rep_customer, event):
    client.force_login(rep)
    for url in all_urls(rep_customer, event):
        assert client.get(url).status_code == 200, url


def test_rep_gets_404_for_another_reps_customer_and_entries(client, rep, other_rep, other_customer):
    foreign_event = ServiceEventFactory(customer=other_customer, logged_by=other_rep, date=days_ago(3))
    client.force_login(rep)
    for url in customer_urls(other_customer) + event_urls(foreign_event):
        assert client.get(url).status_code == 404, url
    assert client.post(reverse("services:event-delete", args=[foreign_event.pk])).status_code == 404
    assert other_customer.name not in client.get(reverse("customers:list")).content.decode()
    search = client.get(reverse("services:customer-search"), {"q": "K-"}).json()["results"]
    assert other_customer.number not in [row["number"] for row in search]


def test_rep_cannot_log_for_another_reps_customer(client, rep, other_customer):
    client.force_login(rep)
    response = client.post(
        reverse("services:log"),
        {"customer": other_customer.number, "service_type": 7, "date": dt.date.today().isoformat(), "quantity": "1"},
    )
    assert response.status_code == 200
    assert other_customer.service_events.count() == 0
    assert "No customer with the number" in response.content.decode()


def test_inside_sales_sees_services_and_segment_but_no_money(client, inside_sales, rep, rep_customer, event):
    TransactionFactory(customer=rep_customer, date=days_ago(20), revenue=Decimal("4321.00"), cost_of_goods=Decimal("1234.00"))
    client.force_login(inside_sales)
    detail = client.get(reverse("customers:detail", args=[rep_customer.pk])).content.decode()
    assert "Value to the customer" in detail
    assert "investment customers" in detail and "Strategy" in detail
    assert "Value from the customer" not in detail
    for fragment in MONEY_FRAGMENTS + ["3,087", "3087"]:  # 3,087 = the transaction's margin in the chart
        assert fragment not in detail, fragment
    assert '"Margin"' not in detail and "CLV" not in detail
    assert "Value statement" not in detail

    listing = client.get(reverse("customers:list"), {"sort": "-clv"}).content.decode()
    assert rep_customer.name in listing
    for fragment in MONEY_FRAGMENTS:
        assert fragment not in listing, fragment
    assert "CLV" not in listing and "Margin" not in listing and "Revenue" not in listing

    for url in customer_urls(rep_customer)[1:]:
        assert client.get(url).status_code == 403, url
    for url in [reverse("services:log"), reverse("services:event-history", args=[event.pk])]:
        assert client.get(url).status_code == 200


def test_inside_sales_may_not_change_a_reps_entry(client, inside_sales, event):
    client.force_login(inside_sales)
    assert client.get(reverse("services:event-edit", args=[event.pk])).status_code == 403
    assert client.post(reverse("services:event-delete", args=[event.pk])).status_code == 403


def test_manager_sees_everything(client, manager, rep_customer, other_customer, event):
    client.force_login(manager)
    for url in all_urls(other_customer, event):
        assert client.get(url).status_code == 200, url
    detail = client.get(reverse("customers:detail", args=[rep_customer.pk])).content.decode()
    assert "Value from the customer" in detail and "€37,373.37" in detail
    listing = client.get(reverse("customers:list")).content.decode()
    assert rep_customer.name in listing and other_customer.name in listing


def test_rep_sees_all_figures_of_own_customer(client, rep, rep_customer):
    client.force_login(rep)
    detail = client.get(reverse("customers:detail", args=[rep_customer.pk])).content.decode()
    for shown in ["€45,678.91", "€13,579.24", "€11,111.11", "€98,765.43", "€24,680.12", "€37,373.37",
                  "€21,212.21", "€52,525.25", "80% of outcomes", "87%", "€2,468.13"]:
        assert shown in detail, shown


def test_pages_need_a_role_even_for_staff_without_group(client, rep_customer):
    staff = make_user(None, username="staffer", is_staff=True)
    client.force_login(staff)
    assert client.get(reverse("customers:detail", args=[rep_customer.pk])).status_code == 403

