"""Value history: which runs thinning keeps, that dropped runs' rows are gone, that it is
idempotent, and (PostgreSQL) one partition per run with the right indexes."""

import datetime as dt

import pytest
from django.db import connection
from django.utils import timezone

from cockpit.selectors import value_history
from customers.models import Customer
from valuation import history, services
from valuation.history import RunDay, plan_thinning
from valuation.models import CustomerValue, RunSummary, ValuationRun

from .test_run import AS_OF, company  # noqa: F401  (the simulated company fixture)

TODAY = dt.date(2026, 6, 30)
D = dt.date


def test_plan_keeps_every_recent_run_and_one_snapshot_per_older_month():
    # Worked by hand for 30 June 2026, 90 days of dailies (from 1 April 2026), 730 days of
    # retention (from 30 June 2024), the two newest completed runs kept whole.
    runs = [
        RunDay(1, D(2024, 5, 31), True),  # before the retention period: dropped
        RunDay(14, D(2024, 6, 30), True),  # first retained day, June 2024's last run: kept
        RunDay(2, D(2024, 7, 15), True),  # July 2024 has a later run: dropped
        RunDay(3, D(2024, 7, 31), True),  # July 2024's snapshot: kept
        RunDay(4, D(2026, 1, 10), True),  # dropped
        RunDay(5, D(2026, 1, 30), True),  # January's last *completed* run: kept
        RunDay(6, D(2026, 1, 31), False),  # failed, older than 90 days: dropped
        RunDay(10, D(2026, 3, 15), True),  # dropped
        RunDay(7, D(2026, 3, 31), True),  # March's snapshot: kept
        RunDay(9, D(2026, 4, 1), True),  # 90 days ago: kept although not a month end
        RunDay(13, D(2026, 6, 20), False),  # failed but recent: kept (the settings page lists it)
        RunDay(11, D(2026, 6, 29), True),  # the run before the latest: full indexes
        RunDay(12, D(2026, 6, 30), True),  # the latest
    ]
    plan = plan_thinning(runs, today=TODAY, daily_days=90, retention_days=730, full_index_runs=2)
    assert plan.drop == [1, 2, 4, 6, 10]
    assert plan.thin == [3, 5, 7, 9, 14]

    kept = [run for run in runs if run.pk not in plan.drop]
    again = plan_thinning(kept, today=TODAY, daily_days=90, retention_days=730, full_index_runs=2)
    assert again.drop == [] and again.thin == plan.thin


def test_plan_never_drops_the_newest_runs_or_a_protected_one():
    runs = [RunDay(1, D(2020, 1, 5), True), RunDay(2, D(2020, 1, 6), True), RunDay(3, D(2020, 1, 7), True)]
    plan = plan_thinning(runs, today=TODAY, daily_days=90, retention_days=730, full_index_runs=1, protected={1})
    assert plan.drop == [2]
    assert plan.thin == [1]


# --- on the database (SQLite here, partitions on PostgreSQL) ----------------------------------


def _add_run(as_of: dt.date, customers: list[Customer], *, clv: int) -> ValuationRun:
    """A completed run whose rows go the way the nightly run writes them."""
    run = ValuationRun.objects.create(
        as_of=as_of,
        status=ValuationRun.Status.COMPLETED,
        finished_at=timezone.make_aware(dt.datetime.combine(as_of, dt.time(3))),
    )
    history.open_run(run_id=run.pk)
    table = history.load_table(run_id=run.pk)
    with connection.cursor() as cursor:
        for customer in customers:
            cursor.execute(
                f"""INSERT INTO {table} (run_id, customer_id, revenue_lifetime, margin_lifetime, revenue_window,
                    margin_window, profit_after_services, abc_class, purchase_days, clv, is_thin, referral_value,
                    value_to_customer, service_count, service_hours, value_to_by_type, segment, basis)
                    VALUES (%s, %s, 0, 0, 0, 0, 0, 'A', 1, %s, false, 0, 0, 0, 0, '{{}}', 'uncritical', 'model')""",
                [run.pk, customer.pk, clv],
            )
    history.close_run(run_id=run.pk)
    return run


@pytest.fixture
def calendar(db, settings, monkeypatch):
    """Runs on a calendar worked by hand (see the plan test): weekly in January 2026, the 15th
    and 31st of March, then daily from 29 June; today is 30 June 2026."""
    settings.CVM_VALUATION_DAILY_DAYS = 90
    settings.CVM_VALUATION_RETENTION_DAYS = 730
    settings.CVM_VALUATION_FULL_INDEX_RUNS = 2
    monkeypatch.setattr(services, "today", lambda: TODAY)
    customers = [Customer.objects.create(number=f"H{i}", name=f"History {i}") for i in range(3)]
    days = [
        D(2024, 5, 31),
        D(2026, 1, 3),
        D(2026, 1, 10),
        D(2026, 1, 17),
        D(2026, 1, 24),
        D(2026, 3, 15),
        D(2026, 3, 31),
        D(2026, 4, 1),
        D(2026, 6, 29),
        D(2026, 6, 30),
    ]
    runs = {day: _add_run(day, customers, clv=100 + k) for k, day in enumerate(days)}
    return customers, runs


def test_thinning_keeps_month_ends_and_the_last_90_days_and_the_history_shows_them(calendar):
    customers, runs = calendar
    dropped = [
        runs[D(2024, 5, 31)],
        runs[D(2026, 1, 3)],
        runs[D(2026, 1, 10)],
        runs[D(2026, 1, 17)],
        runs[D(2026, 3, 15)],
    ]

    result = services.apply_retention()

    assert sorted(result.dropped) == sorted(run.pk for run in dropped)
    assert not ValuationRun.objects.filter(pk__in=[run.pk for run in dropped]).exists()
    assert not CustomerValue.objects.filter(run_id__in=[run.pk for run in dropped]).exists()
    # What the cockpit's value-history chart shows: the month-end snapshots, then every day.
    shown = [row["run__as_of"] for row in value_history(customer_id=customers[0].pk)]
    assert shown == [D(2026, 1, 24), D(2026, 3, 31), D(2026, 4, 1), D(2026, 6, 29), D(2026, 6, 30)]
    assert CustomerValue.objects.filter(run=runs[D(2026, 1, 24)]).count() == 3

    again = services.apply_retention()
    assert again.dropped == [] and again.thinned == []
    assert [row["run__as_of"] for row in value_history(customer_id=customers[0].pk)] == shown


def test_thinning_keeps_the_run_the_latest_summary_compares_with(calendar):
    _customers, runs = calendar
    latest = runs[D(2026, 6, 30)]
    RunSummary.objects.create(run=latest, earlier=runs[D(2026, 1, 10)])

    services.apply_retention()

    assert ValuationRun.objects.filter(pk=runs[D(2026, 1, 10)].pk).exists()
    assert RunSummary.objects.get(run=latest).earlier_id == runs[D(2026, 1, 10)].pk


# --- PostgreSQL: partitions -------------------------------------------------------------------


def _partitions() -> dict[str, list[str]]:
    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT c.relname, COALESCE(array_agg(i.indexname ORDER BY i.indexname)
                                          FILTER (WHERE i.indexname IS NOT NULL), '{}')
               FROM pg_inherits h JOIN pg_class c ON c.oid = h.inhrelid
               LEFT JOIN pg_indexes i ON i.tablename = c.relname
               WHERE h.inhparent = %s::regclass GROUP BY c.relname""",
            [history.PARENT],
        )
        return dict(cursor.fetchall())


@pytest.mark.services
def test_postgres_partition_per_run_thinned_indexes_and_dropped_tables(calendar):
    if not history.is_partitioned():
        pytest.skip("PostgreSQL only: the value table is partitioned by run there")
    _customers, runs = calendar
    full = 2 + len(history.list_index_definitions())  # id, customer, every list index
    before = _partitions()
    assert len(before[history.partition_name(runs[D(2026, 1, 24)].pk)]) == full

    services.apply_retention()

    after = _partitions()
    for day, run in runs.items():
        name = history.partition_name(run.pk)
        if day in (D(2026, 6, 29), D(2026, 6, 30)):
            assert len(after[name]) == full  # the lists read the newest runs
        elif day in (D(2026, 1, 24), D(2026, 3, 31), D(2026, 4, 1)):
            assert after[name] == [f"cv_r{run.pk}_customer"]  # thinned: what the history reads
        else:
            assert name not in after
            assert history._table_state(name) is None  # the partition was dropped whole
    assert history.DEFAULT_PARTITION in after


@pytest.mark.services
@pytest.mark.django_db
def test_postgres_nightly_run_writes_its_own_indexed_partition(company, settings):  # noqa: F811
    if not history.is_partitioned():
        pytest.skip("PostgreSQL only: the value table is partitioned by run there")
    settings.CVM_VALUATION_CHUNK_SIZE = 40
    run = services.run_valuation(as_of=AS_OF)

    name = history.partition_name(run.pk)
    partitions = _partitions()
    assert len(partitions[name]) == 2 + len(history.list_index_definitions())
    with connection.cursor() as cursor:
        cursor.execute(f'SELECT COUNT(*) FROM "{name}"')
        assert cursor.fetchone()[0] == run.rows_written == len(company)
    # Running the same day again replaces the run: the old partition goes with it.
    again = services.run_valuation(as_of=AS_OF)
    assert history._table_state(name) is None
    assert CustomerValue.objects.filter(run=again).count() == len(company)


@pytest.mark.services
@pytest.mark.django_db
def test_every_list_sort_walks_an_index_of_the_runs_partition(company, settings):  # noqa: F811
    """A run's partition keeps its list indexes without the run column (it is the same in every
    row there): the customer list sorted by any value column, either way, and a segment sorted
    by CLV or by value to the customer, still read the partition down an index, never sorted."""
    from django.db.models import F

    from cockpit.selectors import VALUE_COLUMNS, filtered_customers
    from customers.roles import Role
    from tests.conftest import make_user

    if not history.is_partitioned():
        pytest.skip("PostgreSQL only: the value table is partitioned by run there")
    settings.CVM_VALUATION_CHUNK_SIZE = 40
    run = services.run_valuation(as_of=AS_OF)
    user = make_user(Role.MANAGER, username="boss")
    with connection.cursor() as cursor:  # a sort is chosen only where no index gives the order
        cursor.execute("SET LOCAL enable_sort = off")
    orders = [({}, f"latest__{field}") for field, _money in VALUE_COLUMNS.values()]
    orders += [({"segment": "investment"}, "latest__clv"), ({"segment": "problem"}, "latest__value_to_customer")]
    for filters, field in orders:
        for ordering in ([F(field).asc(), "pk"], [F(field).desc(), "-pk"]):
            valued = filtered_customers(user=user, run=run, valued=True, **filters)
            plan = valued.order_by(*ordering)[:26].explain()
            assert "Sort" not in plan, (field, filters, plan)
            assert f"cv_r{run.pk}_" in plan, (field, filters, plan)


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_postgres_a_run_partition_loads_without_autovacuum_and_is_vacuumed_once_full():
    """While its rows load, the run's table takes no autovacuum (one started mid-run at a
    million rows); the finish vacuums it once, freezing its rows (its oldest unfrozen
    transaction id moves forward), and autovacuum is back on for the attached partition."""
    from tests.valued_company import AS_OF as RUN_AS_OF
    from tests.valued_company import simulated_company

    if not history.is_partitioned():
        pytest.skip("PostgreSQL only: the value table is partitioned by run there")
    simulated_company(buyers=60, seed=5, service_every_days=30, service_offset_days=5)

    def table_facts(name):
        with connection.cursor() as cursor:
            # By oid: the browser tests keep copies of tables under the same names in a schema of their own.
            cursor.execute("SELECT reloptions, relfrozenxid::text::bigint FROM pg_class WHERE oid = %s::regclass", [name])
            return cursor.fetchone()

    run = services.start_run(as_of=RUN_AS_OF, trigger="manual", owner=services.owner_label())
    chunk_ids = services.prepare_run(run_id=run.pk)
    options, frozen_when_made = table_facts(history.partition_name(run.pk))
    assert options == ["autovacuum_enabled=false"]
    for chunk_id in chunk_ids:
        services.score_chunk(chunk_id=chunk_id)
    with connection.cursor() as cursor:
        cursor.execute("SELECT txid_current()")  # a transaction id after every chunk's
        after_chunks = cursor.fetchone()[0]
    assert services.finish_run_if_complete(run_id=run.pk, warm=False)
    options, frozen = table_facts(history.partition_name(run.pk))
    assert options is None
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute("SELECT vacuum_count, autovacuum_count FROM pg_stat_all_tables WHERE relid = %s::regclass",
                       [history.partition_name(run.pk)])
        assert cursor.fetchone() == (1, 0)  # vacuumed once, by the finish
    # The freeze moved the oldest unfrozen transaction id past the table's making; past the
    # chunks' writes too unless another session's snapshot (an autovacuum's ANALYZE of another
    # table, say) held the horizon back at that moment, which a shared server may do.
    assert frozen > frozen_when_made
    assert after_chunks > frozen_when_made
