"""The dashboard's figures from a run's summary equal the figures computed from its value rows."""

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from customers.models import Customer
from customers.roles import Role
from tests.conftest import make_user
from valuation import dashboard
from valuation.dashboard import DashboardFilters
from valuation.models import CustomerValue, RunSummary, RunSummaryCell, Segment

from .factories import CompletedRunFactory

pytestmark = pytest.mark.django_db
SEGMENTS = [s.value for s in Segment]


@pytest.fixture
def runs():
    """90 customers over two owners (and none), three regions, two industries; three runs, the
    customers of the earliest are only some of today's, some of today's are new."""
    owners = [make_user(Role.SALES_REP, username=f"rep{i}") for i in range(2)]
    customers = Customer.objects.bulk_create(
        Customer(number=f"S-{i:03d}", name=f"Customer {i}", region=["North", "South", ""][i % 3],
                 industry=["Steel", "Food"][i % 2], owner=[*owners, None][i % 3 if i % 7 else 2])
        for i in range(90)
    )
    oldest = CompletedRunFactory(as_of=dt.date(2025, 6, 30))
    earlier = CompletedRunFactory(as_of=dt.date(2025, 9, 30))
    latest = CompletedRunFactory(as_of=dt.date(2026, 1, 31))
    rows = []
    for run, shift, members in ((oldest, 2, customers[:30]), (earlier, 1, customers[:70]), (latest, 0, customers[5:])):
        for i, customer in enumerate(members):
            margin = Decimal(97 * (i % 23) - 700) + Decimal("0.37")
            services = Decimal(45 * (i % 7)) + Decimal("0.05")
            rows.append(CustomerValue(
                run=run, customer=customer, revenue_lifetime=Decimal(5000), margin_lifetime=Decimal(2000) + i,
                revenue_window=margin * 3, margin_window=margin, value_to_customer=services,
                profit_after_services=margin - services, abc_class="ABC"[i % 3], p_alive=(i % 10) / 10,
                expected_purchases=1.0, clv=Decimal(37 * i) + Decimal("0.11"), clv_low=Decimal(0),
                clv_high=Decimal(80 * i), segment=SEGMENTS[(i * 7 + shift) % 4],
            ))
    CustomerValue.objects.bulk_create(rows)
    return {"latest": latest, "earlier": earlier, "oldest": oldest, "owners": owners}


def figures(run, earlier, filters, *, from_summary: bool):
    settings = run.engine_settings
    compute = dashboard.run_figures if from_summary else dashboard.figures_from_values
    return compute(run=run, earlier=earlier, filters=filters, horizon_months=settings.horizon_months,
                   classic_value=settings.classic_value)


def test_summary_figures_equal_value_row_figures_for_every_filter(runs):
    latest, earlier, oldest, owners = runs["latest"], runs["earlier"], runs["oldest"], runs["owners"]
    dashboard.write_run_summary(run_id=latest.pk)
    summary = RunSummary.objects.get(run=latest)
    assert summary.earlier == earlier  # the default comparison: the newest run 90+ days before
    filters = [
        DashboardFilters(),
        DashboardFilters(region="North"),
        DashboardFilters(industry="Food"),
        DashboardFilters(owner_id=owners[0].pk),
        DashboardFilters(owner_id=owners[1].pk, region="South", industry="Steel"),
        DashboardFilters(region=""),
        DashboardFilters(region="Nowhere"),
    ]
    for chosen in filters:
        for comparison in (earlier, oldest, None):  # the default comparison comes from the cells
            expected = figures(latest, comparison, chosen, from_summary=False)
            assert figures(latest, comparison, chosen, from_summary=True) == expected, (chosen, comparison)
    assert figures(latest, earlier, DashboardFilters(), from_summary=False)["migration"]["compared"] > 0


def test_a_filter_reads_a_few_summary_rows_not_the_value_rows(runs):
    latest, earlier = runs["latest"], runs["earlier"]
    dashboard.write_run_summary(run_id=latest.pk)
    with CaptureQueriesContext(connection) as captured:
        whole = figures(latest, earlier, DashboardFilters(), from_summary=True)
    assert len(captured) == 2  # the summary row and the cells
    assert not any(CustomerValue._meta.db_table in query["sql"] for query in captured)
    assert whole["totals"]["customers"] == CustomerValue.objects.filter(run=latest).count()


def test_writing_the_summary_again_replaces_it(runs):
    latest = runs["latest"]
    dashboard.write_run_summary(run_id=latest.pk)
    cells = RunSummaryCell.objects.filter(run=latest).count()
    dashboard.write_run_summary(run_id=latest.pk)
    assert RunSummaryCell.objects.filter(run=latest).count() == cells
    assert RunSummary.objects.filter(run=latest).count() == 1
