"""Each page costs a fixed number of queries, whether a customer has 5 or 50 of everything."""

from decimal import Decimal

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from services.models import ServiceType
from tests.factories import CustomerFactory, ServiceEventFactory, TransactionFactory
from valuation.selectors import latest_completed_run

from .factories import CustomerValueFactory, ValuationRunFactory, days_ago

pytestmark = pytest.mark.django_db

# Ceilings per page (the counts measured when written, plus a little room). The cockpit
# grew by its rep's-day panels: value change 3, period figures 2, cross-sell 2, NPS 2, what-if 1.
# the list pages include the shared cache's queries for the cached filter choices (a get, or a get and a set)
# The list reads the user's saved filters (one query).
CEILINGS = {"list": 15, "list-filtered": 15, "list-by-clv": 16, "detail": 24, "statement": 10, "statement-pdf": 9, "log": 9,
            "search": 6, "history": 10}


def build(size: int, *, owner, user):
    """`size` customers, each with `size` transactions and `size` services over the year, and
    `size` past valuation runs for the first customer."""
    runs = [ValuationRunFactory(as_of=days_ago(size - i)) for i in range(size)]
    types = list(ServiceType.objects.order_by("pk")[:3])
    customers = [CustomerFactory(owner=owner, region="Bavaria") for _ in range(size)]
    first = customers[0]
    for i, run in enumerate(runs):
        CustomerValueFactory(run=run, customer=first, segment=["problem", "investment"][i % 2], clv=Decimal(1000 + i))
    for customer in customers[1:]:
        CustomerValueFactory(run=runs[-1], customer=customer)
    for i in range(size):
        day = days_ago(3 + (i * 7) % 350)
        TransactionFactory(customer=first, date=day)
        ServiceEventFactory(customer=first, service_type=types[i % 3], date=day, logged_by=user)
    return first


def pages(customer, event_id):
    return {
        "list": reverse("customers:list"),
        "list-filtered": reverse("customers:list") + "?region=Bavaria&segment=investment&abc_class=A&q=T&sort=number",
        "detail": reverse("customers:detail", args=[customer.pk]),
        "statement": reverse("customers:statement", args=[customer.pk]),
        "statement-pdf": reverse("customers:statement", args=[customer.pk]) + "?format=pdf",
        "log": reverse("services:log"),
        "search": reverse("services:customer-search") + "?q=T",
        "history": reverse("services:event-history", args=[event_id]),
    }


def count_queries(client, url) -> int:
    cache.clear()
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200, url
    return len(queries)


@pytest.mark.parametrize("page", [page for page in CEILINGS if page != "list-by-clv"])
def test_query_count_is_constant_in_data_size(client, manager, page):
    counts = {}
    client.force_login(manager)
    for size in (5, 50):
        customer = build(size, owner=manager, user=manager)
        event = customer.service_events.order_by("pk").first()
        for _ in range(3):  # a few edits, so the history page has history to read
            event.quantity += 1
            event.save()
        counts[size] = count_queries(client, pages(customer, event.pk)[page])
    assert counts[5] == counts[50], counts
    assert counts[50] <= CEILINGS[page], counts


def test_detail_page_stays_under_its_ceiling(client, rep, django_assert_max_num_queries):
    customer = build(20, owner=rep, user=rep)
    client.force_login(rep)
    with django_assert_max_num_queries(CEILINGS["detail"]):
        assert client.get(reverse("customers:detail", args=[customer.pk])).status_code == 200


def test_value_sorted_list_costs_the_same_on_its_last_page(client, manager):
    """Sorted by a value column, the page where the valued customers end also reads the
    not-yet-valued ones (one more query, two if it lies past the valued ones); the count
    depends on that position only, never on how many customers there are."""
    client.force_login(manager)
    counts = {}
    for size in (5, 50):
        build(size, owner=manager, user=manager)
        CustomerValueFactory(run=latest_completed_run(), customer=CustomerFactory(owner=manager))
        CustomerFactory(owner=manager, name=f"Not valued yet {size}")
        last_page = (size + 1) // 25 + 1  # size + 1 valued customers end on this page
        url = reverse("customers:list") + f"?sort=-clv&page={last_page}"
        counts[size] = count_queries(client, url)
        assert f"Not valued yet {size}".encode() in client.get(url).content
    assert counts[5] == counts[50] <= CEILINGS["list-by-clv"], counts
