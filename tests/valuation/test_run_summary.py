"""The dashboard's figures from a run's summary equal the figures computed from its value rows."""

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from customers.models import Customer
from customers.roles import Role
from services.models import ServiceEvent, ServiceType, StandardCost
from tests.conftest import make_user
from valuation import dashboard, figure_rules, run_summary
from valuation.dashboard import DashboardFilters
from valuation.models import CustomerValue, RunSummary, RunSummaryCell, RunSummaryView, Segment

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
    # Services over the dashboard's 24 months and outside them, with a cost change on the way;
    # some by customers who are in no run yet (customers[:5] are not in the latest).
    hotline, training = ServiceType.objects.get(code="hotline"), ServiceType.objects.get(code="training")
    StandardCost.objects.create(service_type=hotline, valid_from=dt.date(2025, 10, 15), cost_per_unit=Decimal("80.00"))
    ServiceEvent.objects.bulk_create(
        ServiceEvent(customer=customers[i], service_type=[hotline, training][i % 2],
                     date=dt.date(2026, 2, 27) - dt.timedelta(days=9 * i), quantity=Decimal("1.5") if i % 4 else 1)
        for i in range(0, 90, 1)
    )
    return {"latest": latest, "earlier": earlier, "oldest": oldest, "owners": owners}


def figures(run, earlier, filters, *, from_summary: bool):
    """The run's figures either way; the value rows' way reads the service cost from the events."""
    settings = run.engine_settings
    compute = dashboard.run_figures if from_summary else dashboard.figures_from_values
    result = compute(run=run, earlier=earlier, filters=filters, horizon_months=settings.horizon_months,
                     classic_value=settings.classic_value)
    if not from_summary:
        result["service_cost"] = dashboard.service_cost_by_month(
            filters=filters, months=dashboard.month_starts(today=run.as_of))
    return result


def test_summary_figures_equal_value_row_figures_for_every_filter(runs):
    latest, earlier, oldest, owners = runs["latest"], runs["earlier"], runs["oldest"], runs["owners"]
    run_summary.write_run_summary(run_id=latest.pk)
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
    whole = figures(latest, earlier, DashboardFilters(), from_summary=False)
    assert whole["migration"]["compared"] > 0
    assert whole["service_cost"] and whole["whale"] and whole["scatter"] and all(whole["actions"].values())


def test_every_filter_the_form_offers_is_stored(runs):
    """Each owner, region and industry, alone or combined, has its own view of the run."""
    latest, owners = runs["latest"], runs["owners"]
    run_summary.write_run_summary(run_id=latest.pk)
    offered = [None, *(owner.pk for owner in owners)], ["", "North", "South"], ["", "Steel", "Food"]
    for owner_id in offered[0]:
        for region in offered[1]:
            for industry in offered[2]:
                chosen = DashboardFilters(owner_id=owner_id, region=region, industry=industry)
                expected = figures(latest, runs["earlier"], chosen, from_summary=False)
                stored = figures(latest, runs["earlier"], chosen, from_summary=True)
                assert stored == expected, chosen
    # No view for a filter nobody can choose: customers without an owner or a region.
    assert not RunSummaryView.objects.filter(run=latest, region="", owner_id__isnull=False, industry="").exclude(
        owner_id__in=[owner.pk for owner in owners]).exists()


def test_the_whale_curve_of_a_large_filter_is_the_same_picked_ranks(runs):
    """Past WHALE_POINTS customers the curve is a pick of ranks: the summary picks the same."""
    latest = runs["latest"]
    customers = Customer.objects.bulk_create(
        Customer(number=f"W-{i:04d}", name=f"Whale {i}", region="East", industry="Glass") for i in range(1200))
    CustomerValue.objects.bulk_create(
        CustomerValue(run=latest, customer=customer, revenue_lifetime=Decimal(0), margin_lifetime=Decimal(0),
                      revenue_window=Decimal(0), margin_window=Decimal(0), value_to_customer=Decimal(0),
                      profit_after_services=Decimal((i * 37) % 1001 - 300) + Decimal("0.01"), abc_class="C",
                      p_alive=0.9, expected_purchases=1.0, clv=Decimal(0), clv_low=Decimal(0), clv_high=Decimal(0),
                      segment=SEGMENTS[i % 4])
        for i, customer in enumerate(customers)
    )
    run_summary.write_run_summary(run_id=latest.pk)
    chosen = DashboardFilters(region="East")
    stored = figures(latest, None, chosen, from_summary=True)
    assert len(stored["whale"]) > figure_rules.WHALE_POINTS
    assert stored["whale"] == figures(latest, None, chosen, from_summary=False)["whale"]
    assert len(stored["scatter"]) <= figure_rules.SCATTER_BUDGET


def test_a_filter_reads_a_few_summary_rows_and_its_shown_customers_by_id(runs):
    latest, earlier, owners = runs["latest"], runs["earlier"], runs["owners"]
    run_summary.write_run_summary(run_id=latest.pk)
    for chosen in (DashboardFilters(), DashboardFilters(owner_id=owners[0].pk, region="North")):
        with CaptureQueriesContext(connection) as captured:
            shown = figures(latest, earlier, chosen, from_summary=True)
        # The summary row, the cells, the filter's view, the listed customers' rows (by id: no
        # scan of the run's rows), the service types.
        assert len(captured) == 5
        reads = [query["sql"] for query in captured if CustomerValue._meta.db_table in query["sql"]]
        assert len(reads) == 1 and ('"customer_id" IN (' in reads[0] or "= ANY(" in reads[0])
        assert shown["totals"]["customers"] == CustomerValue.objects.filter(
            chosen.customer_q(), run=latest).count()


def test_a_customer_deleted_after_the_run_drops_out_of_the_work_lists(runs):
    latest, earlier = runs["latest"], runs["earlier"]
    run_summary.write_run_summary(run_id=latest.pk)
    before = figures(latest, earlier, DashboardFilters(), from_summary=True)["actions"]
    listed = next(row["customer_id"] for rows in before.values() for row in rows)
    Customer.objects.filter(pk=listed).delete()
    after = figures(latest, earlier, DashboardFilters(), from_summary=True)["actions"]
    assert all(row["customer_id"] != listed for rows in after.values() for row in rows)
    assert sum(map(len, after.values())) == sum(map(len, before.values())) - sum(
        row["customer_id"] == listed for rows in before.values() for row in rows)


def test_writing_the_summary_again_replaces_it(runs):
    latest = runs["latest"]
    run_summary.write_run_summary(run_id=latest.pk)
    cells = RunSummaryCell.objects.filter(run=latest).count()
    run_summary.write_run_summary(run_id=latest.pk)
    assert RunSummaryCell.objects.filter(run=latest).count() == cells
    assert RunSummary.objects.filter(run=latest).count() == 1


def test_only_the_latest_run_keeps_a_summary(runs):
    """The dashboard shows the latest run: an older run's summary goes, and that run's figures
    come from its value rows again."""
    run_summary.write_run_summary(run_id=runs["earlier"].pk)
    run_summary.write_run_summary(run_id=runs["latest"].pk)
    assert set(RunSummary.objects.values_list("run_id", flat=True)) == {runs["latest"].pk}
    assert not RunSummaryView.objects.exclude(run=runs["latest"]).exists()
    assert not RunSummaryCell.objects.exclude(run=runs["latest"]).exists()


def test_a_run_of_the_same_day_is_never_the_comparison(runs):
    """A run that replaces one of its own as-of date compares with an earlier day's run, never
    with the run it replaces (that one is dropped as soon as this one completes)."""
    replaced = runs["latest"]
    again = CompletedRunFactory(as_of=replaced.as_of)
    CustomerValue.objects.bulk_create(
        CustomerValue(**{f.attname: getattr(value, f.attname) for f in CustomerValue._meta.concrete_fields
                         if f.attname not in ("id", "run_id")}, run=again)
        for value in CustomerValue.objects.filter(run=replaced)
    )
    run_summary.write_run_summary(run_id=again.pk)
    assert RunSummary.objects.get(run=again).earlier == runs["earlier"]
    CustomerValue.objects.filter(run__in=[runs["earlier"], runs["oldest"]]).delete()
    for run in (runs["earlier"], runs["oldest"]):
        run.delete()
    run_summary.write_run_summary(run_id=again.pk)
    assert RunSummary.objects.get(run=again).earlier is None
    assert set(RunSummaryCell.objects.filter(run=again).values_list("before_segment", flat=True)) == {""}


def test_lost_dates_read_as_iso_days_whatever_the_servers_date_style(runs):
    """A server set to a German DateStyle writes dates as 31.12.2025 when they are cast to
    text; the work lists read the lost date as an ISO day either way."""
    customer = Customer.objects.get(number="S-010")
    Customer.objects.filter(pk=customer.pk).update(status=Customer.Status.LOST, lost_on=dt.date(2025, 12, 31))
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET DateStyle = 'German, DMY'")
    rows = run_summary.summary_rows(run=runs["latest"])
    lost_on = dict(zip(rows["customer_id"].tolist(), rows["lost_on"].tolist(), strict=True))
    assert lost_on[customer.pk] == "2025-12-31"


def test_scatter_points_written_as_text_store_what_plain_json_stores():
    """Names with quotes, backslashes, umlauts and line breaks: the view reads back the same."""
    import numpy as np

    names = np.asarray(['Müller "&" Söhne', "back\\slash", "line\nbreak", "plain"], dtype=object)
    rows = {
        "customer_id": np.asarray([4, 1, 3, 2], dtype=np.int64),
        "owner_id": np.zeros(4, dtype=np.int64),
        "region": np.asarray(["Nord", "", "Süd", "Nord"], dtype=object),
        "industry": np.asarray(["Stahl"] * 4, dtype=object),
        "name": names,
        "number": np.asarray(["K-1", "K-2", "K-3", "K-4"], dtype=object),
        "status": np.asarray(["active"] * 4, dtype=object),
        "lost_on": np.asarray([""] * 4, dtype=object),
        "segment": np.asarray([SEGMENTS[0], SEGMENTS[1], SEGMENTS[2], "other"], dtype=object),
        "basis": np.asarray(["model"] * 4, dtype=object),
        "abc_class": np.asarray(["A", "B", "C", "A"], dtype=object),
        "p_alive": np.asarray([0.9, 0.2, np.nan, 0.5]),
        **{column: np.asarray([150, -20, 0, 99999], dtype=np.int64) for column in run_summary.CENTS_COLUMNS},
    }
    views = run_summary.filter_views(rows=rows, horizon_months=36)
    for figures in views.values():
        scatter = figures["scatter"]
        assert isinstance(scatter, run_summary.EncodedJson)
        plain = {**figures, "scatter": run_summary.json.loads(scatter)}
        assert run_summary.pack(figures) == run_summary.pack(plain)
        assert run_summary.unpack(run_summary.pack(figures)) == plain
    every = run_summary.unpack(run_summary.pack(views[(None, "", "")]))
    # Every customer of a known segment is drawn (a handful, below every quota).
    assert sorted(point[1] for point in every["scatter"]) == sorted(names[:3].tolist())


def test_the_summary_counts_each_segments_nps_as_the_answers_read_on_its_date_would(runs):
    from cockpit.nps import segment_nps
    from customers.models import SurveyAnswer

    latest = runs["latest"]  # as of 2026-01-31; customers[:5] are not valued in it
    customers = list(Customer.objects.order_by("number"))
    answers = []
    for i, customer in enumerate(customers):
        for k in range(i % 4):
            answers.append(SurveyAnswer(customer=customer, score=(i + 3 * k) % 11,
                                        answered_on=dt.date(2026, 1, 31) - dt.timedelta(days=4 * i + k)))
    SurveyAnswer.objects.bulk_create(answers)

    run_summary.write_run_summary(run_id=latest.pk)
    counted = RunSummary.objects.get(run=latest).nps_by_segment

    live = segment_nps(run=latest, today=latest.as_of)
    assert segment_nps(run=latest, counted=counted) == live
    assert sum(row["answers"] for row in live) > 30


def test_a_customer_the_run_did_not_value_counts_in_no_segment(runs):
    from customers.models import SurveyAnswer

    latest = runs["latest"]
    outside = Customer.objects.get(number="S-000")  # not in the latest run
    SurveyAnswer.objects.create(customer=outside, score=10, answered_on=dt.date(2026, 1, 10))
    run_summary.write_run_summary(run_id=latest.pk)
    assert RunSummary.objects.get(run=latest).nps_by_segment == {}


def test_the_summary_counts_the_answers_of_the_12_months_up_to_the_runs_date_and_none_after(runs):
    from customers.models import SurveyAnswer

    latest = runs["latest"]  # as of 2026-01-31
    customer = Customer.objects.get(number="S-010")  # valued in the latest run
    segment = CustomerValue.objects.get(run=latest, customer=customer).segment
    for score, day in ((0, dt.date(2025, 1, 31)),  # a year before the run's date: outside
                       (10, dt.date(2025, 2, 1)),  # the window's first day
                       (7, dt.date(2026, 1, 31)),  # the run's date
                       (3, dt.date(2026, 2, 1))):  # after the run's date: the next run's
        SurveyAnswer.objects.create(customer=customer, score=score, answered_on=day)

    run_summary.write_run_summary(run_id=latest.pk)

    assert RunSummary.objects.get(run=latest).nps_by_segment == {
        segment: {"promoters": 1, "passives": 1, "detractors": 0}
    }


def test_the_runs_rows_are_its_value_rows_with_their_customers_sorted_by_id(runs):
    """PostgreSQL reads the value rows and the customers apart and joins them in memory: each
    value row once, with its own customer's attributes, whatever the names hold; money in cents."""
    latest = runs["latest"]
    odd = Customer.objects.get(number="S-020")
    Customer.objects.filter(pk=odd.pk).update(name='Müller, "Söhne"\nGmbH', region="", status=Customer.Status.LOST,
                                              lost_on=dt.date(2025, 11, 3))
    Customer.objects.create(number="S-999", name="In no run")  # a customer without a value row
    rows = run_summary.summary_rows(run=latest)
    values = list(CustomerValue.objects.filter(run=latest).select_related("customer").order_by("customer_id"))
    assert rows["customer_id"].tolist() == [v.customer_id for v in values]
    cents = {"profit": "profit_after_services", "clv": "clv", "margin_window": "margin_window",
             "margin_lifetime": "margin_lifetime", "value_to_customer": "value_to_customer",
             "revenue_window": "revenue_window"}
    for at, value in enumerate(values):
        customer = value.customer
        assert (rows["owner_id"][at], rows["region"][at], rows["industry"][at], rows["name"][at], rows["number"][at],
                rows["status"][at], rows["lost_on"][at]) == (
            customer.owner_id or 0, customer.region, customer.industry, customer.name, customer.number,
            customer.status, customer.lost_on.isoformat() if customer.lost_on else "")
        assert (rows["segment"][at], rows["basis"][at], rows["abc_class"][at]) == (value.segment, value.basis, value.abc_class)
        assert rows["p_alive"][at] == pytest.approx(value.p_alive)
        for column, field in cents.items():
            assert rows[column][at] == int(getattr(value, field) * 100), (column, value.customer_id)
    assert rows["name"][rows["customer_id"].tolist().index(odd.pk)] == 'Müller, "Söhne"\nGmbH'


def test_values_are_kept_only_where_they_are_what_the_finish_would_read_back():
    """run_summary.written_values: kept on PostgreSQL, whose finish would read the rows back;
    not on SQLite (its summary joins in one query), nor when an amount is not finite (written
    as numeric NaN, which reading back refuses: both ways of running then fail alike)."""
    import numpy as np
    import pandas as pd

    frame = pd.DataFrame(
        {"segment": ["problem", "investment"], "basis": ["model", "model"], "abc_class": ["A", "C"],
         "p_alive": [0.5, np.nan], "profit_after_services": [1.005, -2.0], "clv": [10.0, 0.125],
         "margin_window": [3.0, 4.0], "margin_lifetime": [5.0, 6.0], "value_to_customer": [0.0, 7.5],
         "revenue_window": [8.0, 9.0]},
        index=pd.Index([9, 4], name="customer_id"),
    )
    kept = run_summary.written_values(frame)
    if connection.vendor != "postgresql":
        assert kept is None
        return
    assert kept["customer_id"].tolist() == [4, 9]
    assert kept["clv"].tolist() == [12, 1000] and kept["profit"].tolist() == [-200, 100]
    assert kept["segment"].tolist() == ["investment", "problem"] and np.isnan(kept["p_alive"][0])
    assert run_summary.written_values(frame.assign(clv=[10.0, np.nan])) is None


def test_text_read_as_categories_comes_back_as_the_same_strings_or_refuses_a_gap():
    """The summary reads segments, regions and the like as categories and hands them on as
    strings: the same strings row by row ("" included); a missing value is refused, never
    turned into another category's text."""
    import io

    import numpy as np
    import pandas as pd

    frame = pd.read_csv(io.StringIO("b,x\n,y\na,z\nb,\n"), names=["segment", "name"], keep_default_na=False,
                        dtype={"segment": "category", "name": object})
    segments = run_summary._objects(frame["segment"])
    assert segments.dtype == object and segments.tolist() == ["b", "", "a", "b"]
    assert all(type(value) is str for value in segments)
    assert run_summary._objects(frame["name"]).tolist() == ["x", "y", "z", ""]
    with pytest.raises(ValueError, match="missing values"):
        run_summary._objects(pd.Series(pd.Categorical(["a", None, "c"]), name="segment"))
    assert np.array_equal(run_summary._objects(pd.Series(pd.Categorical(["c", "a"]))), np.array(["c", "a"], dtype=object))
