"""The pages cost the same number of queries for 1, 10 and 100 customers."""

import datetime as dt
from decimal import Decimal

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from customers.models import Customer
from customers.roles import Role
from services.models import ServiceEvent, ServiceType, StandardCost
from tests.conftest import make_user
from tests.valuation.factories import ChunkFactory, CompletedRunFactory, RunningRunFactory
from valuation.models import CustomerValue, Segment

pytestmark = pytest.mark.django_db

# Queries on a cold cache: the reads of figures (one of them the run summary) plus the shared
# cache's own queries (a get, and on a miss a set, per cached part); the NPS panel is six of
# them (cache get, the run's own segment counts, company, segments, trend, cache set), five
# where the run counted its segments.
QUERIES = {"/dashboard/": 48, "/dashboard/?region=North&industry=Steel": 48, "/settings/": 8}
SEGMENTS = [s.value for s in Segment]


def build(n: int) -> None:
    """n customers with two owners, values in two runs, services in the last months."""
    owners = [make_user(Role.SALES_REP, username=f"owner{i}") for i in range(2)]
    customers = Customer.objects.bulk_create(
        Customer(number=f"Q{n}-{i:05d}", name=f"Customer {i}", region=["North", "South"][i % 2],
                 industry=["Steel", "Food", "Glass"][i % 3], owner=owners[i % 2])
        for i in range(n)
    )
    earlier, latest = CompletedRunFactory(as_of=dt.date(2025, 9, 30)), CompletedRunFactory()
    rows = []
    for run, shift in ((earlier, 1), (latest, 0)):
        for i, customer in enumerate(customers):
            margin = Decimal(100 * (i % 17) - 300)
            rows.append(CustomerValue(
                run=run, customer=customer, revenue_lifetime=Decimal(5000), margin_lifetime=Decimal(2000),
                revenue_window=Decimal(1000), margin_window=margin, value_to_customer=Decimal(50 * (i % 5)),
                profit_after_services=margin - Decimal(50 * (i % 5)), abc_class="ABC"[i % 3], p_alive=(i % 10) / 10,
                expected_purchases=1.0, clv=Decimal(40 * i), clv_low=Decimal(0), clv_high=Decimal(80 * i),
                segment=SEGMENTS[(i + shift) % 4],
            ))
    CustomerValue.objects.bulk_create(rows)
    hotline = ServiceType.objects.get(code="hotline")
    training = ServiceType.objects.get(code="training")
    today = timezone.localdate()
    # Services in the months up to the latest run's as-of date: the months the panel shows.
    ServiceEvent.objects.bulk_create(
        ServiceEvent(customer=customer, service_type=(hotline, training)[i % 2],
                     date=latest.as_of - dt.timedelta(days=30 * (i % 20)), quantity=Decimal(1))
        for i, customer in enumerate(customers)
    )
    # A few runs for the settings page's run list, one of them running with chunks.
    running = RunningRunFactory(as_of=today, status="failed") if n < 50 else RunningRunFactory(as_of=today)
    ChunkFactory.create_batch(3, run=running)
    StandardCost.objects.create(service_type=hotline, valid_from=dt.date(2025, 1, 1) + dt.timedelta(days=n), cost_per_unit=Decimal(70))


def count_queries(client, url: str) -> int:
    cache.clear()  # count the uncached page: the figures of a new run
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200
    return len(captured)


@pytest.mark.parametrize("url", list(QUERIES))
def test_query_count_does_not_grow_with_customers(client, manager, url):
    client.force_login(manager)
    client.get(url)  # the first visit creates the policy row; measure the steady state
    build(10)
    small = count_queries(client, url)
    build(100)
    large = count_queries(client, url)
    assert (small, large) == (QUERIES[url], QUERIES[url])


def test_dashboard_count_for_a_single_customer(client, manager):
    client.force_login(manager)
    client.get("/dashboard/")
    build(1)
    assert count_queries(client, "/dashboard/") == QUERIES["/dashboard/"]


def test_run_status_endpoint_is_one_query(client, manager, django_assert_num_queries):
    client.force_login(manager)
    client.get("/settings/")  # warm the session and role lookups
    run = RunningRunFactory()
    for chunks in (1, 4):  # 1 chunk, then 5
        ChunkFactory.create_batch(chunks, run=run)
        with django_assert_num_queries(4):  # session, user, role, the run with its chunk counts
            assert client.get(f"/settings/runs/{run.pk}/status/").status_code == 200


def test_a_runs_figures_are_served_from_the_cache_the_second_time(client, manager):
    build(100)
    client.force_login(manager)
    first = count_queries(client, "/dashboard/")
    with CaptureQueriesContext(connection) as again:
        assert client.get("/dashboard/").status_code == 200
    assert len(again) <= first - 6  # segments, scatter, migration, whale, actions, service cost


def test_a_finished_run_leaves_the_dashboard_warm(client, manager):
    """The nightly run computes the unfiltered dashboard into the shared cache."""
    from valuation import services
    from valuation.models import ValuationRun

    build(60)
    run = ValuationRun.objects.filter(status="completed").order_by("-finished_at").first()
    cache.clear()
    services._warm_dashboard()
    client.force_login(manager)
    with CaptureQueriesContext(connection) as warm:
        assert client.get("/dashboard/").status_code == 200
    cache.clear()
    cold = count_queries(client, "/dashboard/")
    assert run is not None and len(warm) <= cold - 6
