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

# Queries per page, the same for 1 customer with one of everything and for 50 with 50 of
# everything; only the cockpit ("detail") costs two fewer while there is no earlier run to
# explain the value change against (DETAIL_WITHOUT_EARLIER_RUN). The cockpit reads the period's
# purchases and services in one rollup of 2 grouped queries, from which the monthly chart,
# services by type and the period figures are summed; its rep's-day panels cost: value change 3,
# cross-sell 2, NPS 2 (what-if reuses the cockpit's service types). The list pages include the
# shared cache's queries for the cached filter choices (a get and, on the cold cache measured
# here, a set) and the user's saved filters (one).
QUERIES = {"list": 15, "list-filtered": 15, "list-by-clv": 16, "detail": 19, "statement": 8, "statement-pdf": 8, "log": 5,
           "search": 4, "history": 7}
DETAIL_WITHOUT_EARLIER_RUN = 17


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


@pytest.mark.parametrize("page", [page for page in QUERIES if page != "list-by-clv"])
def test_query_count_is_constant_in_data_size(client, manager, page):
    counts = {}
    client.force_login(manager)
    for size in (1, 50):
        customer = build(size, owner=manager, user=manager)
        event = customer.service_events.order_by("pk").first()
        for _ in range(3):  # a few edits, so the history page has history to read
            event.quantity += 1
            event.save()
        counts[size] = count_queries(client, pages(customer, event.pk)[page])
    single = DETAIL_WITHOUT_EARLIER_RUN if page == "detail" else QUERIES[page]
    assert counts == {1: single, 50: QUERIES[page]}


def test_detail_page_costs_the_rep_a_fixed_count(client, rep):
    client.force_login(rep)
    counts = {}
    for size in (1, 20):
        customer = build(size, owner=rep, user=rep)
        counts[size] = count_queries(client, reverse("customers:detail", args=[customer.pk]))
    assert counts == {1: DETAIL_WITHOUT_EARLIER_RUN, 20: QUERIES["detail"]}


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
    assert counts == {5: QUERIES["list-by-clv"], 50: QUERIES["list-by-clv"]}
