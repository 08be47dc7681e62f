"""Bulk uploads (all or nothing, idempotent, fast) and constant query counts on every list."""

import datetime as dt
import time

import pytest

from customers.models import Transaction
from services.models import ServiceEvent
from tests.conftest import RATE_LIMIT_QUERIES
from tests.factories import CustomerFactory, ServiceEventFactory, TransactionFactory

from .conftest import completed_run, value_row

pytestmark = pytest.mark.django_db


def transaction_rows(customers, n):
    return [
        {"external_id": f"B-{i}", "customer": customers[i % len(customers)].pk, "date": "2025-01-15",
         "revenue": f"{100 + i % 50}.25", "cost_of_goods": "60,00".replace(",", "."), "product": "pumps"}
        for i in range(n)
    ]


def test_bulk_transactions_10000_rows_atomic_and_idempotent(clients, world):
    client, customers = clients["manager"], world["mine"] + world["theirs"]
    rows = transaction_rows(customers, 10_000)
    started = time.perf_counter()
    response = client.post("/api/v1/transactions/bulk/", rows, format="json")
    seconds = time.perf_counter() - started
    assert response.status_code == 200, response.content[:500]
    assert response.json() == {"rows": 10_000, "created": 10_000, "updated": 0, "unchanged": 0}
    assert seconds < 20
    again = client.post("/api/v1/transactions/bulk/", rows, format="json").json()
    assert again == {"rows": 10_000, "created": 0, "updated": 0, "unchanged": 10_000}
    rows[5]["revenue"] = "999.99"
    assert client.post("/api/v1/transactions/bulk/", rows, format="json").json()["updated"] == 1
    assert str(Transaction.objects.get(external_id="B-5").revenue) == "999.99"
    assert Transaction.objects.filter(external_id__startswith="B-").count() == 10_000


def test_bulk_reports_every_error_and_saves_nothing(clients, world):
    rows = transaction_rows(world["mine"], 5)
    rows[1]["date"] = "31.02.2025"
    rows[2]["revenue"] = "abc"
    rows[2]["customer"] = 999_999
    rows[4]["external_id"] = rows[0]["external_id"]
    response = clients["manager"].post("/api/v1/transactions/bulk/", rows, format="json")
    assert response.status_code == 400
    body = response.json()
    # field checks come first; the cross-row checks run once every row is well-formed
    assert {(e["row"], e["field"]) for e in body["errors"]} == {(1, "date"), (2, "revenue")}
    rows[1]["date"], rows[2]["revenue"] = "2025-02-01", "1"
    body = clients["manager"].post("/api/v1/transactions/bulk/", rows, format="json").json()
    assert {(e["row"], e["field"]) for e in body["errors"]} == {(2, "customer"), (4, "external_id")}
    assert body["error_count"] == 2
    assert not Transaction.objects.filter(external_id__startswith="B-").exists()


def test_bulk_transactions_forbidden_for_reps_and_inside_sales(clients, world):
    rows = transaction_rows(world["mine"], 1)
    assert clients["rep"].post("/api/v1/transactions/bulk/", rows, format="json").status_code == 403
    assert clients["inside_sales"].post("/api/v1/transactions/bulk/", rows, format="json").status_code == 403


def test_bulk_service_events_respect_visibility_and_ownership(clients, world, rep):
    mine, theirs = world["mine"][0], world["theirs"][0]
    row = {"customer": mine.pk, "service_type": "hotline", "date": "2025-02-01", "quantity": "1.5", "external_id": "T-1"}
    response = clients["rep"].post("/api/v1/service-events/bulk/", [row, {**row, "external_id": None}], format="json")
    assert response.json() == {"rows": 2, "created": 2, "updated": 0, "unchanged": 0}
    event = ServiceEvent.objects.get(external_id="T-1")
    assert event.logged_by == rep and event.history.count() == 1
    # another rep cannot log for rep_a's customer, nor overwrite rep_a's entry
    response = clients["other_rep"].post("/api/v1/service-events/bulk/", [row], format="json")
    assert response.status_code == 400
    assert {(e["row"], e["field"]) for e in response.json()["errors"]} == {(0, "customer"), (0, "external_id")}
    response = clients["inside_sales"].post("/api/v1/service-events/bulk/", [{**row, "quantity": "9"}], format="json")
    assert response.status_code == 400 and response.json()["errors"][0]["field"] == "external_id"
    # the manager may correct it; the history keeps both versions
    response = clients["manager"].post("/api/v1/service-events/bulk/", [{**row, "quantity": "2"}], format="json")
    assert response.json()["updated"] == 1
    assert [str(h.quantity) for h in event.history.order_by("history_id")] == ["1.50", "2.00"]
    negative = clients["inside_sales"].post("/api/v1/service-events/bulk/", [{**row, "external_id": "T-2", "customer": theirs.pk, "quantity": "-1"}], format="json")
    assert negative.status_code == 400 and negative.json()["errors"][0]["field"] == "quantity"


LISTS = [
    "/api/v1/customers/", "/api/v1/transactions/", "/api/v1/service-types/", "/api/v1/standard-costs/",
    "/api/v1/service-events/", "/api/v1/values/", "/api/v1/segments/", "/api/v1/valuation-runs/",
]


# inside sales may not list transactions at all (403, tested with the permissions)
CASES = [(url, role) for url in LISTS for role in ("manager", "rep", "inside_sales")
         if not (role == "inside_sales" and url == "/api/v1/transactions/")]



# Queries per list beyond the rate limit's: token, user, groups, count, page, plus a prefetch
# where the list shows related rows (a type's costs, a value's run); the same for 4 or 34 customers.
LIST_QUERIES = {
    "/api/v1/customers/": 5, "/api/v1/transactions/": 5, "/api/v1/service-types/": 6, "/api/v1/standard-costs/": 5,
    "/api/v1/service-events/": 5, "/api/v1/values/": 6, "/api/v1/segments/": 5, "/api/v1/valuation-runs/": 5,
}


@pytest.mark.parametrize(("url", "role"), CASES)
def test_list_query_count_does_not_grow_with_rows(clients, world, rep, django_assert_num_queries, url, role):
    client = clients[role]
    client.get(url)  # token and role lookups warm up like in any request
    with django_assert_num_queries(LIST_QUERIES[url] + RATE_LIMIT_QUERIES):
        assert client.get(url).status_code == 200
    run = world["runs"][1]
    for _ in range(30):
        customer = CustomerFactory(owner=rep)
        TransactionFactory(customer=customer)
        ServiceEventFactory(customer=customer, logged_by=rep)
        value_row(run, customer)
    completed_run(dt.date(2024, 12, 31))
    with django_assert_num_queries(LIST_QUERIES[url] + RATE_LIMIT_QUERIES):
        response = client.get(url)
    assert response.status_code == 200


def test_customer_value_history_and_detail_query_counts(clients, world, django_assert_num_queries):
    customer, event = world["mine"][0], world["mine_event"]
    urls = {f"/api/v1/customers/{customer.pk}/values/": 6, f"/api/v1/values/{customer.pk}/": 5,
            f"/api/v1/service-events/{event.pk}/history/": 6}
    for more in (0, 5):  # two runs and one version of the entry, then seven runs and six versions
        for month in range(1, more + 1):
            value_row(completed_run(dt.date(2024, month, 28)), customer)
            event.quantity += 1
            event.save()
        for url, queries in urls.items():
            with django_assert_num_queries(queries + RATE_LIMIT_QUERIES):
                assert clients["rep"].get(url).status_code == 200
