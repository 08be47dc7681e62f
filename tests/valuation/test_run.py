"""The valuation run end to end on the database: chunks, replace-not-duplicate, lock, failure."""

import datetime as dt
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command

from customers.models import Customer, Transaction
from tests.valued_company import AS_OF, simulated_company
from valuation import history, selectors, services, tasks
from valuation.engine import SEGMENTS
from valuation.models import CustomerValue, RunSummary, RunSummaryCell, ValuationChunk, ValuationRun

pytestmark = pytest.mark.django_db


@pytest.fixture
def company():
    """120 customers buying over two and a half years, some spoiled with free services, plus
    two customers who never bought."""
    return simulated_company(buyers=120, seed=7, service_every_days=30, service_offset_days=5)


def values_by_customer(run):
    return {
        v["customer_id"]: v
        for v in CustomerValue.objects.filter(run=run).values(
            "customer_id", "clv", "clv_low", "clv_high", "p_alive", "segment", "abc_class", "value_to_customer"
        )
    }


def test_run_values_every_customer_once_with_sane_figures(company, settings):
    settings.CVM_VALUATION_CHUNK_SIZE = 25
    run = services.run_valuation(as_of=AS_OF)
    assert run.status == ValuationRun.Status.COMPLETED
    assert run.chunk_count == 5 and run.chunks.filter(status=ValuationChunk.Status.DONE).count() == 5
    values = values_by_customer(run)
    assert set(values) == {c.pk for c in company}
    for v in values.values():
        assert v["clv_low"] <= v["clv"] <= v["clv_high"] or v["clv_low"] <= v["clv_high"]
        assert 0 <= v["p_alive"] <= 1
        assert v["segment"] in SEGMENTS
    never_bought = values[company[-1].pk]
    assert never_bought["clv"] == 0 and never_bought["p_alive"] == 0
    spoiled = values[company[0].pk]
    assert spoiled["value_to_customer"] > 0
    assert {v["segment"] for v in values.values()} == set(SEGMENTS)
    params = run.parameters["bgnbd"]
    assert params["r"] > 0 and params["alpha"] > 0
    assert run.backtest["customers"] > 0 and "mae_per_customer" in run.backtest
    assert run.company["earned_growth"]


def test_chunked_scoring_equals_one_chunk(company, settings):
    settings.CVM_VALUATION_CHUNK_SIZE = 1000
    whole = values_by_customer(services.run_valuation(as_of=AS_OF))
    settings.CVM_VALUATION_CHUNK_SIZE = 7
    chunked = values_by_customer(services.run_valuation(as_of=AS_OF))
    assert chunked == whole


def test_same_as_of_again_replaces_never_duplicates(company):
    first = services.run_valuation(as_of=AS_OF)
    second = services.run_valuation(as_of=AS_OF)
    assert list(ValuationRun.objects.values_list("pk", flat=True)) == [second.pk]
    assert CustomerValue.objects.count() == len(company)
    assert not ValuationRun.objects.filter(pk=first.pk).exists()


def test_rerunning_a_chunk_replaces_its_rows(company, settings):
    settings.CVM_VALUATION_CHUNK_SIZE = 50
    run = services.run_valuation(as_of=AS_OF)
    before = values_by_customer(run)
    ValuationRun.objects.filter(pk=run.pk).update(status=ValuationRun.Status.RUNNING)
    run.chunks.update(status=ValuationChunk.Status.PENDING)
    for chunk in run.chunks.all():
        services.score_chunk(chunk_id=chunk.pk)
    assert CustomerValue.objects.filter(run=run).count() == len(company)
    assert values_by_customer(run) == before


def test_history_is_kept_across_dates(company):
    services.run_valuation(as_of=AS_OF - dt.timedelta(days=1))
    services.run_valuation(as_of=AS_OF)
    assert ValuationRun.objects.filter(status="completed").count() == 2
    assert CustomerValue.objects.count() == 2 * len(company)


def test_one_run_at_a_time(company):
    running = services.start_run(as_of=AS_OF, trigger="manual")
    with pytest.raises(services.RunAlreadyRunning):
        services.start_run(as_of=AS_OF, trigger="nightly")
    with pytest.raises(services.RunAlreadyRunning):
        services.run_valuation(as_of=AS_OF)
    assert ValuationRun.objects.filter(status="running").get() == running


def test_a_failed_run_leaves_the_previous_one_in_place(company, monkeypatch):
    good = services.run_valuation(as_of=AS_OF - dt.timedelta(days=1))

    def broken(**kwargs):
        raise RuntimeError("disk full while scoring")

    monkeypatch.setattr(services, "score_chunk", broken)
    with pytest.raises(RuntimeError):
        services.run_valuation(as_of=AS_OF)
    failed = ValuationRun.objects.get(as_of=AS_OF)
    assert failed.status == ValuationRun.Status.FAILED
    assert "disk full while scoring" in failed.error
    from valuation.selectors import latest_completed_run

    assert latest_completed_run() == good
    assert CustomerValue.objects.filter(run=good).count() == len(company)
    # and the lock is free again
    monkeypatch.undo()
    assert services.run_valuation(as_of=AS_OF).status == "completed"


def test_a_run_taken_over_while_finishing_stays_failed(company, monkeypatch):
    """A finish that outlives the staleness limit is taken over and marked failed; the old
    finish must not flip it back to completed."""
    from valuation import history

    def taken_over(*, run_id):
        ValuationRun.objects.filter(pk=run_id).update(status=ValuationRun.Status.FAILED, error="taken over")

    monkeypatch.setattr(history, "close_run", taken_over)
    run = services.run_valuation(as_of=AS_OF)
    assert (run.status, run.error) == (ValuationRun.Status.FAILED, "taken over")
    assert not ValuationRun.objects.filter(status=ValuationRun.Status.COMPLETED).exists()


def test_a_tie_broken_away_from_the_back_tests_pick_shows_the_chosen_models_figures():
    backtest = {
        "model": "bgnbd",  # fit_chosen_model broke the tie in favour of BG/NBD
        "models_compared": {"bgnbd": {"purchases": {"predicted_total": 120.0, "mae": 0.8}},
                            "mbgnbd": {"purchases": {"predicted_total": 90.0, "mae": 0.7}}},
        "expected_repeat_purchases": 90.0, "mae_per_customer": 0.7,
        "range_calibration": {"share_above_high": 0.11, "share_below_low": 0.05},
    }
    services.describe_chosen_model(backtest, pick="mbgnbd")
    assert (backtest["expected_repeat_purchases"], backtest["mae_per_customer"]) == (120.0, 0.8)
    assert backtest["range_calibration"]["model"] == "mbgnbd"
    unchanged = {**backtest, "range_calibration": {"share_above_high": 0.1}}
    services.describe_chosen_model(unchanged, pick="bgnbd")
    assert "model" not in unchanged["range_calibration"]


def test_recompute_values_command_prints_progress(company, capsys):
    call_command("recompute_values", "--as-of", AS_OF.isoformat())
    out = capsys.readouterr().out
    assert "fitting the models" in out and "chunk 1/1" in out and "completed: 122 customers" in out


def test_recompute_now_runs_in_process_without_redis(company, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):  # the task is queued once the claim commits
        run = tasks.request_recompute(as_of=AS_OF)
    run.refresh_from_db()
    assert run.status == ValuationRun.Status.COMPLETED
    assert run.trigger == ValuationRun.Trigger.MANUAL


def test_nightly_task_runs_once_per_day(company, monkeypatch):
    from valuation import tasks

    monkeypatch.setattr(services, "today", lambda: AS_OF)
    first = tasks.nightly_valuation()
    assert ValuationRun.objects.get(pk=first).status == "completed"
    assert tasks.nightly_valuation() is None
    assert ValuationRun.objects.count() == 1


def test_referral_value_is_the_referred_customers_discounted_clv_once(company):
    """Incremental referral value: the referred customers' CLV (discounted, negative as 0),
    not their past margin; a lost referral brings nothing; never added to the referrer's
    own CLV. (A self-referral is refused by a database constraint.)"""
    referrer, a, b, gone = company[0], company[1], company[2], company[4]
    Customer.objects.filter(pk__in=[a.pk, b.pk, gone.pk]).update(referred_by=referrer)
    Customer.objects.filter(pk=gone.pk).update(status=Customer.Status.LOST, lost_on=AS_OF - dt.timedelta(days=3))
    run = services.run_valuation(as_of=AS_OF)
    rows = {v.customer_id: v for v in CustomerValue.objects.filter(run=run)}
    assert rows[gone.pk].clv == 0
    expected = sum(max(rows[c.pk].clv, Decimal("0")) for c in (a, b))
    assert expected > 0
    assert rows[referrer.pk].referral_value == expected
    assert rows[a.pk].referral_value == Decimal("0")


def test_lost_customers_have_no_future_and_a_win_back_strategy(company):
    lost = company[5]
    Customer.objects.filter(pk=lost.pk).update(status=Customer.Status.LOST, lost_on=AS_OF - dt.timedelta(days=3))
    run = services.run_valuation(as_of=AS_OF)
    value = CustomerValue.objects.get(run=run, customer=lost)
    assert value.basis == "lost"
    assert value.p_alive == 0 and value.expected_purchases == 0
    assert value.clv == 0 and value.clv_to_infinity == 0 and value.median_lifetime_weeks == 0
    assert value.margin_lifetime > 0  # the history stays
    live = CustomerValue.objects.filter(run=run).exclude(customer=lost).exclude(purchase_days=0)
    assert {v.basis for v in live} <= {"model", "trailing_margin_rate"}


def test_run_stores_the_model_choice_and_the_fit_quality(company):
    run = services.run_valuation(as_of=AS_OF)
    backtest = run.backtest
    assert backtest["model"] in {"bgnbd", "mbgnbd", "pareto_nbd"}
    assert set(backtest["models_compared"]) == {"bgnbd", "mbgnbd", "pareto_nbd"}
    assert set(backtest["fit_quality"]) >= {"ok", "problems"}
    assert run.parameters["model"] == backtest["model"]
    chosen = backtest["models_compared"][backtest["model"]]
    assert len(chosen["conditional_expectations"]) == 8
    if backtest["range_calibration"] is not None:
        assert 0 <= backtest["range_calibration"]["share_above_high"] <= 1


def test_recompute_values_if_missing_skips_a_valued_date(company, capsys):
    call_command("recompute_values", "--as-of", AS_OF.isoformat(), "--if-missing")
    call_command("recompute_values", "--as-of", AS_OF.isoformat(), "--if-missing")
    assert "nothing recomputed" in capsys.readouterr().out
    assert ValuationRun.objects.count() == 1


def test_a_fit_that_fails_its_checks_falls_back_and_claims_nothing(db):
    """30 customers are too few to identify a purchase model: the run values each by its
    trailing margin rate (hand-worked: window margin per month of history, discounted
    over 36 months) and writes P(alive), purchases, range and value to infinity as NULL (the COPY
    writer on PostgreSQL, bulk_create elsewhere)."""
    from valuation.engine import EngineSettings
    from valuation.engine.forecast import discount_factors

    customers = Customer.objects.bulk_create(
        Customer(number=f"F{i:03d}", name=f"Few {i}", acquired_on=dt.date(2025, 1, 1)) for i in range(30)
    )
    Transaction.objects.bulk_create(
        Transaction(customer=c, external_id=f"F-{c.number}-{k}", date=AS_OF - dt.timedelta(days=40 * k + i),
                    revenue=Decimal("100.00"), cost_of_goods=Decimal("40.00"))
        for i, c in enumerate(customers) for k in range(3)
    )
    run = services.run_valuation(as_of=AS_OF)
    assert run.status == ValuationRun.Status.COMPLETED
    assert run.parameters["fit_quality"]["ok"] is False
    assert run.parameters["fit_quality"]["fallback"] == "trailing_margin_rate"
    assert "too_few_customers" in {p["code"] for p in run.backtest["fit_quality"]["problems"]}
    value = CustomerValue.objects.get(run=run, customer=customers[0])
    assert value.basis == "trailing_margin_rate"
    assert value.p_alive is None and value.expected_purchases is None
    assert value.clv_low is None and value.clv_high is None and value.clv_to_infinity is None
    assert value.median_lifetime_weeks is None
    settings = EngineSettings()
    # The oldest purchase is 80 + 29 = 109 days old: the history covers 109 / 30.44 = 3.58 months
    # of the 12-month window, so the window's margin of 3 x 60 is spread over those.
    covered_months = 109 / (365.2425 / 12)
    expected = 3 * 60.0 / covered_months * float(discount_factors(settings, settings.horizon_months)[1:].sum())
    assert float(value.clv) == pytest.approx(expected, abs=0.01)


def test_run_counts_transactions_not_purchase_days(company):
    # A second transaction on a day the customer already bought: one more transaction, the same days.
    first = Transaction.objects.filter(date__lte=AS_OF).order_by("pk").first()
    Transaction.objects.create(customer_id=first.customer_id, external_id="SAME-DAY", date=first.date,
                               revenue=Decimal("1.00"))
    Transaction.objects.create(customer_id=first.customer_id, external_id="AFTER-AS-OF",
                               date=AS_OF + dt.timedelta(days=1), revenue=Decimal("1.00"))
    run = services.run_valuation(as_of=AS_OF)
    dated = Transaction.objects.filter(date__lte=AS_OF)
    purchase_days = dated.values("customer_id", "date").distinct().count()
    assert run.transaction_count == dated.count()
    assert run.transaction_count > purchase_days


def test_a_completed_run_has_its_dashboard_summary(company):
    run = services.run_valuation(as_of=AS_OF)
    assert RunSummary.objects.filter(run=run).exists()
    cells = RunSummaryCell.objects.filter(run=run)
    assert sum(cells.values_list("customers", flat=True)) == CustomerValue.objects.filter(run=run).count()


def _queries_touching(captured, table: str, copies: list[str]) -> list[str]:
    statements = [query["sql"] for query in captured.captured_queries] + copies
    copies.clear()
    return [sql for sql in statements if table in sql]


def test_the_run_reads_the_transactions_once_and_its_chunks_never(company, settings, monkeypatch):
    """Read once, score once: the prepare step scans the transactions in one query; each chunk
    only writes what was staged for it, and a chunk written again writes the same values."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    copies: list[str] = []
    if connection.vendor == "postgresql":  # COPY goes past Django's query log: record it too
        import psycopg

        original = psycopg.Cursor.copy
        monkeypatch.setattr(psycopg.Cursor, "copy",
                            lambda self, statement, *a, **k: copies.append(str(statement)) or original(self, statement, *a, **k))
    settings.CVM_VALUATION_CHUNK_SIZE = 40
    transactions = Transaction._meta.db_table
    run = services.start_run(as_of=AS_OF, trigger="manual", owner=services.owner_label())
    with CaptureQueriesContext(connection) as prepare:
        chunk_ids = services.prepare_run(run_id=run.pk)
    assert len(_queries_touching(prepare, transactions, copies)) == 1
    assert len(chunk_ids) == 4
    with CaptureQueriesContext(connection) as chunks:
        for chunk_id in chunk_ids:
            services.score_chunk(chunk_id=chunk_id)
    assert _queries_touching(chunks, transactions, copies) == []
    assert services.finish_run_if_complete(run_id=run.pk, warm=False)
    first = {v["customer_id"]: v for v in CustomerValue.objects.filter(run=run).values()}
    assert len(first) == len(company)

    # A redelivered chunk (its holder lost, the chunk handed out again) writes the same values.
    ValuationRun.objects.filter(pk=run.pk).update(status=ValuationRun.Status.RUNNING, stage="scoring")
    ValuationChunk.objects.filter(pk=chunk_ids[1]).update(status=ValuationChunk.Status.PENDING)
    with CaptureQueriesContext(connection) as again:
        written = services.score_chunk(chunk_id=chunk_ids[1])
    assert written == 40 and _queries_touching(again, transactions, copies) == []
    second = {v["customer_id"]: v for v in CustomerValue.objects.filter(run=run).values()}
    assert {k: {f: x for f, x in v.items() if f != "id"} for k, v in second.items()} == {
        k: {f: x for f, x in v.items() if f != "id"} for k, v in first.items()}
    assert any(v["clv_low"] is not None and v["clv_high"] > v["clv_low"] for v in second.values())


def test_only_the_latest_run_keeps_its_staged_chunk_values(company):
    first = services.run_valuation(as_of=AS_OF - dt.timedelta(days=1), warm=False)
    assert ValuationChunk.objects.filter(run=first, staged__isnull=False).exists()
    second = services.run_valuation(as_of=AS_OF, warm=False)
    assert not ValuationChunk.objects.filter(run=first, staged__isnull=False).exists()
    assert ValuationChunk.objects.filter(run=second, staged__isnull=True).count() == 0


def test_recompute_values_refuses_a_day_thinning_would_drop_at_once(company, settings):
    """Two newer runs exist: a run 31 days back with 30 days of retention would be dropped the
    moment it completes, so it is refused before anything runs; on an empty history the same
    day would be the newest run, which thinning keeps."""
    settings.CVM_VALUATION_RETENTION_DAYS = 30
    too_old = services.today() - dt.timedelta(days=31)
    assert history.kept_after_thinning(as_of=too_old, today=services.today())
    for days_back in (0, 1):
        ValuationRun.objects.create(as_of=services.today() - dt.timedelta(days=days_back), trigger="manual",
                                    status=ValuationRun.Status.COMPLETED, stage="done")
    with pytest.raises(CommandError, match="thinning would remove this run right after it completes"):
        call_command("recompute_values", "--as-of", too_old.isoformat())
    assert ValuationRun.objects.count() == 2
    assert history.kept_after_thinning(as_of=services.today() - dt.timedelta(days=5), today=services.today())


def test_the_back_test_of_a_young_company_judges_on_the_second_half_of_its_history():
    """Nine months of transactions and the 26-week holdout setting: the models are fitted on
    the first half and judged on the second, not fitted on three months and judged on six."""
    simulated_company(buyers=400, seed=11, service_every_days=30, service_offset_days=5)
    as_of = dt.date(2024, 9, 30)
    first = Transaction.objects.order_by("date").values_list("date", flat=True).first()
    history_days = (as_of - first).days
    backtest = services.run_backtest(as_of=as_of, settings=selectors.engine_settings())
    assert backtest["calibration_end"] == (as_of - dt.timedelta(days=round(history_days / 2))).isoformat()
    assert backtest["holdout_weeks"] == pytest.approx(round(history_days / 2) / 7)
    assert set(backtest["models_compared"]) == {"bgnbd", "mbgnbd", "pareto_nbd"}


def test_a_history_under_eight_weeks_is_not_back_tested(company):
    backtest = services.run_backtest(as_of=dt.date(2024, 1, 30), settings=selectors.engine_settings())
    assert backtest["model"] == "bgnbd" and "Too little history" in backtest["skipped"]


def test_a_company_without_any_transaction_is_valued():
    """Customers entered, nothing bought yet: the run completes and values nobody as a buyer."""
    customer = Customer.objects.create(number="N-1", name="Not yet", acquired_on=dt.date(2026, 1, 1))
    run = services.run_valuation(as_of=AS_OF)
    assert run.status == ValuationRun.Status.COMPLETED
    value = CustomerValue.objects.get(run=run, customer=customer)
    assert value.basis == "no_purchase" and float(value.clv) == 0.0


def refuse_connections_to_threads(monkeypatch, prefix: str) -> list[str]:
    """PostgreSQL refuses a new connection to every thread whose name starts with ``prefix``
    (too many clients); returns the names of the threads refused, as they are refused."""
    import threading

    from django.db import OperationalError
    from django.db.backends.postgresql.base import DatabaseWrapper

    connect = DatabaseWrapper.get_new_connection
    refused = []

    def refusing(self, params):
        if threading.current_thread().name.startswith(prefix):
            refused.append(threading.current_thread().name)
            raise OperationalError("sorry, too many clients already")
        return connect(self, params)

    monkeypatch.setattr(DatabaseWrapper, "get_new_connection", refusing)
    return refused


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_the_runs_heartbeat_goes_on_while_the_finish_writes_the_summary(monkeypatch):
    """The summary takes a minute at a million customers: meanwhile another connection can
    still beat the run's heartbeat (it waited for the whole summary when the summary was
    written inside the completion's transaction)."""
    import threading

    from django.db import connection, connections
    from django.utils import timezone

    from valuation import run_summary

    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL only: row locks between connections")
    simulated_company(buyers=40, seed=3, service_every_days=30, service_offset_days=5)
    write_summary = run_summary.write_run_summary
    beats = []

    def beat(run_id):
        try:
            with connections["default"].cursor() as cursor:
                cursor.execute("SET lock_timeout = '2s'")
                beats.append(ValuationRun.objects.filter(pk=run_id).update(heartbeat_at=timezone.now()))
        except Exception as exc:  # a lock timeout: the beat waited for the finish
            beats.append(exc)
        finally:
            connections.close_all()

    def summary_with_a_beat(*, run_id, **kwargs):
        rows = write_summary(run_id=run_id, **kwargs)
        other = threading.Thread(target=beat, args=(run_id,))
        other.start()
        other.join()
        return rows

    monkeypatch.setattr(run_summary, "write_run_summary", summary_with_a_beat)
    run = services.run_valuation(as_of=AS_OF)
    assert run.status == ValuationRun.Status.COMPLETED
    assert beats == [1]


def test_a_run_taken_over_after_its_summary_was_written_leaves_no_summary(company, monkeypatch):
    """The finish writes the summary before the run completes: when the run is then taken
    over (marked failed), the failed run's summary goes with it instead of lying around."""
    from valuation import run_summary

    previous = services.run_valuation(as_of=AS_OF - dt.timedelta(days=1))
    write_summary = run_summary.write_run_summary

    def written_then_taken_over(*, run_id, **kwargs):
        rows = write_summary(run_id=run_id, **kwargs)
        services.fail_run(run_id=run_id, error="taken over")
        return rows

    monkeypatch.setattr(run_summary, "write_run_summary", written_then_taken_over)
    run = services.run_valuation(as_of=AS_OF)
    assert run.status == ValuationRun.Status.FAILED
    assert not RunSummary.objects.filter(run=run).exists()
    assert not RunSummaryCell.objects.filter(run=run).exists()
    assert RunSummary.objects.filter(run=previous).exists()  # the dashboard's run keeps its own


def test_a_finish_that_fails_after_the_summary_leaves_no_summary(company, monkeypatch):
    from valuation import run_summary

    drop = run_summary.drop_other_summaries

    def broken(*, run_id):  # fails in the completion's transaction only
        if ValuationRun.objects.filter(pk=run_id, status=ValuationRun.Status.COMPLETED).exists():
            raise RuntimeError("connection lost while completing")
        drop(run_id=run_id)

    monkeypatch.setattr(run_summary, "drop_other_summaries", broken)
    with pytest.raises(RuntimeError):
        services.run_valuation(as_of=AS_OF)
    run = ValuationRun.objects.get(as_of=AS_OF)
    assert run.status == ValuationRun.Status.FAILED
    assert not RunSummary.objects.filter(run=run).exists()


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_a_customer_deleted_while_the_indexes_are_built_does_not_fail_the_run(monkeypatch):
    """The run's indexes are built on connections of their own, outside the attach's
    transaction: a customer deleted meanwhile must not fail the attach (and the run)."""
    if not history.is_partitioned():
        pytest.skip("PostgreSQL only: the value table is partitioned by run there")
    customers = simulated_company(buyers=40, seed=3, service_every_days=30, service_offset_days=5)
    gone = customers[0].pk
    build = history.build_indexes

    def build_then_delete(statements, **kwargs):
        build(statements, **kwargs)
        Customer.objects.filter(pk=gone).delete()

    monkeypatch.setattr(history, "build_indexes", build_then_delete)
    run = services.run_valuation(as_of=AS_OF)
    assert run.status == ValuationRun.Status.COMPLETED
    values = set(CustomerValue.objects.filter(run=run).values_list("customer_id", flat=True))
    assert gone not in values and len(values) == run.rows_written == len(customers) - 1


def test_a_run_that_fails_after_its_work_items_were_staged_keeps_none_of_them(company, monkeypatch):
    """The finish finds and loads the run's work items before the run completes: a run that
    then fails leaves neither its items nor their loaded table, and the worklist as it was."""
    from django.db import connection

    from valuation import worklist
    from valuation.models import WorkItem

    services.run_valuation(as_of=AS_OF - dt.timedelta(days=31))
    before = sorted(WorkItem.objects.values_list("id", "run_id"))
    staged, discarded = [], []
    stage, discard = worklist.stage_work_items, worklist.discard_work_items
    monkeypatch.setattr(worklist, "stage_work_items", lambda run, **given: staged.append(stage(run, **given)) or staged[-1])
    monkeypatch.setattr(worklist, "discard_work_items", lambda items: discarded.append(items) or discard(items))

    def broken(run_id):
        raise RuntimeError("the run could not be marked completed")

    monkeypatch.setattr(services, "_complete_run", broken)
    with pytest.raises(RuntimeError):
        services.run_valuation(as_of=AS_OF)
    assert staged and staged[0] is not None and staged[0].count and discarded == staged
    assert ValuationRun.objects.get(as_of=AS_OF).status == ValuationRun.Status.FAILED
    assert sorted(WorkItem.objects.values_list("id", "run_id")) == before
    if connection.vendor == "postgresql":
        assert worklist._loaded_tables() == []


def test_a_finish_that_fails_on_a_worker_fails_the_run_with_its_error(company, monkeypatch, settings):
    """With Celery the last chunk's task finishes the run: when the finish fails, the run is
    failed with the finish's error at once, not left 'finishing' until its heartbeat is stale."""
    settings.CVM_VALUATION_CHUNK_SIZE = 70

    def broken(*, run_id):
        raise RuntimeError("could not build the run's indexes")

    monkeypatch.setattr(history, "close_run", broken)
    run = services.start_run(as_of=AS_OF, trigger=ValuationRun.Trigger.NIGHTLY)
    chunk_ids = services.prepare_run(run_id=run.pk)
    assert len(chunk_ids) == 2
    tasks.score_chunk(chunk_ids[0])
    with pytest.raises(RuntimeError):
        tasks.score_chunk(chunk_ids[1])
    run.refresh_from_db()
    assert run.status == ValuationRun.Status.FAILED
    assert "could not build the run's indexes" in run.error
    # The summary, written while the indexes were built, is not kept for a run that failed.
    assert not RunSummary.objects.filter(run=run).exists()


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_the_run_is_indexed_when_no_extra_connection_is_to_be_had(monkeypatch):
    """The run's indexes are built on connections of their own: when the server refuses them
    (too many clients), they are built on the run's connection and the run completes indexed."""
    from django.db import connection

    if not history.is_partitioned():
        pytest.skip("PostgreSQL only: the value table is partitioned by run there")
    customers = simulated_company(buyers=30, seed=3, service_every_days=30, service_offset_days=5)
    refused = refuse_connections_to_threads(monkeypatch, history.INDEX_BUILDER_THREADS)
    run = services.run_valuation(as_of=AS_OF)
    assert refused
    assert run.status == ValuationRun.Status.COMPLETED and run.rows_written == len(customers)
    with connection.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM pg_indexes WHERE tablename = %s", [history.partition_name(run.pk)])
        assert cursor.fetchone()[0] == 2 + len(history.list_index_definitions())


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_reads_beside_the_run_without_a_connection_of_their_own_give_the_same_values(monkeypatch):
    """The prepare reads the customers and the service costs, the finish the cross-sell peers
    and the service cost views, on connections of their own: when the server refuses those
    (too many clients), they are read on the run's connection and the run stores the same values."""
    from django.db import connection

    from core.own_connection import BACKGROUND_THREADS

    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL only: elsewhere the reads beside are made on the run's connection anyway")
    customers = simulated_company(buyers=30, seed=3, service_every_days=30, service_offset_days=5)
    with_connections = values_by_customer(services.run_valuation(as_of=AS_OF, warm=False))
    refused = refuse_connections_to_threads(monkeypatch, BACKGROUND_THREADS)
    run = services.run_valuation(as_of=AS_OF, warm=False)
    assert run.status == ValuationRun.Status.COMPLETED and run.rows_written == len(customers)
    assert len(refused) >= 4  # customers, service costs, peers, cost views: each read again on the run's
    assert values_by_customer(run) == with_connections


@pytest.mark.services
def test_value_rows_written_in_many_copy_blocks_equal_those_written_in_one(company, monkeypatch):
    """PostgreSQL gets a chunk's value rows in COPY blocks (services.COPY_BLOCK_ROWS): blocks
    of 7 rows store the same values as one block."""
    from django.db import connection as db

    if db.vendor != "postgresql":
        pytest.skip("PostgreSQL only: other databases take the ORM path on both sides")

    def stored(run):
        return {v["customer_id"]: {f: x for f, x in v.items() if f not in ("id", "run_id")}
                for v in CustomerValue.objects.filter(run=run).values()}

    whole = stored(services.run_valuation(as_of=AS_OF, warm=False))
    monkeypatch.setattr(services, "COPY_BLOCK_ROWS", 7)
    assert len(company) > 3 * 7
    assert stored(services.run_valuation(as_of=AS_OF, warm=False)) == whole


@pytest.mark.services
def test_value_rows_stored_equal_those_the_orm_would_write(company):
    """PostgreSQL takes the value rows by binary COPY, other databases through bulk_create: the
    stored rows equal the model instances the ORM path makes of the same staged values."""
    from django.db import connection as db

    if db.vendor != "postgresql":
        pytest.skip("PostgreSQL only: other databases take the ORM path on both sides")
    run = services.run_valuation(as_of=AS_OF, warm=False)
    stored = {v["customer_id"]: {f: x for f, x in v.items() if f not in ("id", "run_id")}
              for v in CustomerValue.objects.filter(run=run).values()}
    expected = {}
    for chunk in ValuationChunk.objects.filter(run=run):
        frame, by_type = services.staged_values(chunk.staged)
        for value in services._value_rows(run.pk, frame, by_type):
            row = {f.attname: getattr(value, f.attname) for f in CustomerValue._meta.concrete_fields}
            expected[value.customer_id] = {f: x for f, x in row.items() if f not in ("id", "run_id")}
    assert stored == expected and len(stored) == len(company)


def test_staged_values_code_their_texts_and_still_read_those_staged_before(company):
    """A chunk's texts are staged as codes into their distinct values; a chunk staged before
    (each text in full) reads back the same."""
    import io

    import numpy as np
    import pandas as pd

    run = services.run_valuation(as_of=AS_OF, warm=False)
    chunk = ValuationChunk.objects.filter(run=run).first()
    frame, by_type = services.staged_values(chunk.staged)
    assert set(frame["segment"]) <= {"uncritical", "problem", "potential", "investment"} and len(frame)
    with np.load(io.BytesIO(bytes(chunk.staged))) as arrays:
        assert arrays["segment"].dtype == np.int32 and "labels:segment" in arrays.files
    full = {"customer_id": frame.index.to_numpy()}
    full |= {name: frame[name].to_numpy().astype(str) if name in services._TEXT_COLUMNS else frame[name].to_numpy()
             for name in services.STAGED_COLUMNS}
    full |= {f"type:{name}": by_type[name].to_numpy().astype(str) if name in services._TEXT_COLUMNS
             else by_type[name].to_numpy() for name in services.STAGED_TYPE_COLUMNS}
    buffer = io.BytesIO()
    np.savez(buffer, **full)
    before_frame, before_types = services.staged_values(buffer.getvalue())
    pd.testing.assert_frame_equal(before_frame, frame)
    pd.testing.assert_frame_equal(before_types, by_type)


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_an_in_process_run_writes_its_chunks_two_at_once_and_stores_what_one_writer_stores(monkeypatch, settings):
    """On PostgreSQL an in-process run writes its chunks on two connections at once (one
    writer leaves a core idle while the server stores its rows); the values are the same."""
    import threading

    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL only: SQLite takes one writer at a time")
    customers = simulated_company(buyers=60, seed=5, service_every_days=30, service_offset_days=5)
    settings.CVM_VALUATION_CHUNK_SIZE = 8
    monkeypatch.setattr(services, "IN_PROCESS_WRITERS", 1)
    one_writer = values_by_customer(services.run_valuation(as_of=AS_OF, warm=False))
    monkeypatch.undo()
    settings.CVM_VALUATION_CHUNK_SIZE = 8
    write = services.score_chunk
    writers, calls, lock = set(), [], threading.Lock()
    both_in = threading.Barrier(2, timeout=20)  # one writer at a time would wait here in vain

    def watched(*, chunk_id, scored=None):
        with lock:
            writers.add(threading.current_thread().name)
            calls.append(chunk_id)
            first_two = len(calls) <= 2
        if first_two:
            both_in.wait()
        return write(chunk_id=chunk_id, scored=scored)

    monkeypatch.setattr(services, "score_chunk", watched)
    run = services.run_valuation(as_of=AS_OF, warm=False)
    assert run.status == ValuationRun.Status.COMPLETED and run.rows_written == len(customers)
    assert run.chunks.filter(status=ValuationChunk.Status.DONE).count() == run.chunk_count >= 8
    assert len(writers) == 2 and all(name.startswith(services.CHUNK_WRITER_THREADS) for name in writers)
    assert sorted(calls) == sorted(run.chunks.values_list("pk", flat=True))
    assert values_by_customer(run) == one_writer


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_chunks_whose_writer_gets_no_connection_are_written_on_the_runs_own(monkeypatch, settings):
    """A writer the server refuses a connection (too many clients) costs time, never the run."""
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL only: SQLite takes one writer at a time")
    customers = simulated_company(buyers=30, seed=3, service_every_days=30, service_offset_days=5)
    settings.CVM_VALUATION_CHUNK_SIZE = 8
    refused = refuse_connections_to_threads(monkeypatch, services.CHUNK_WRITER_THREADS)
    run = services.run_valuation(as_of=AS_OF, warm=False)
    assert run.status == ValuationRun.Status.COMPLETED and run.rows_written == len(customers)
    assert len(refused) == run.chunk_count >= 4
    assert run.chunks.filter(status=ValuationChunk.Status.DONE).count() == run.chunk_count


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_a_chunk_whose_writer_loses_its_connection_mid_copy_is_written_on_the_runs_own(monkeypatch, settings):
    """A connection dropped during a chunk's COPY (psycopg's own error, not Django's): the chunk
    is given back at once and written on the run's connection; the run completes whole."""
    import threading

    import psycopg
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL only: SQLite takes one writer at a time")
    customers = simulated_company(buyers=30, seed=3, service_every_days=30, service_offset_days=5)
    settings.CVM_VALUATION_CHUNK_SIZE = 8
    write_values = services._write_values
    dropped = []

    def dropped_in_a_writer(run_id, frame, by_type):
        if threading.current_thread().name.startswith(services.CHUNK_WRITER_THREADS) and not dropped:
            dropped.append(frame.index[0])
            raise psycopg.OperationalError("server closed the connection unexpectedly")
        return write_values(run_id, frame, by_type)

    monkeypatch.setattr(services, "_write_values", dropped_in_a_writer)
    run = services.run_valuation(as_of=AS_OF, warm=False)
    assert len(dropped) == 1
    assert run.status == ValuationRun.Status.COMPLETED and run.rows_written == len(customers)
    assert CustomerValue.objects.filter(run=run).count() == len(customers)
    retried = run.chunks.get(first_customer_id=dropped[0])
    assert retried.status == ValuationChunk.Status.DONE and retried.attempts == 2



def summary_as_stored(run):
    from valuation import run_summary
    from valuation.models import RunSummaryView

    cells = sorted(RunSummaryCell.objects.filter(run=run).values_list(
        "segment", "before_segment", "owner_id", "region", "industry", "customers", "revenue", "margin",
        "service_cost", "clv", "profit", "profitable", "unprofitable"))
    views = {(v.owner_id, v.region, v.industry): run_summary.unpack(v.packed) for v in RunSummaryView.objects.filter(run=run)}
    return cells, views


@pytest.mark.services  # SQLite reads the rows back either way (run_summary.summary_rows)
def test_summary_from_the_values_kept_in_memory_equals_the_summary_read_back(company, settings, monkeypatch):
    """An in-process run keeps the value columns it writes (run_summary.written_values) and
    does not read its rows back for the summary: the same summary as from its rows read back,
    and the same rows, money to the cent (amounts on a half cent included), P(alive) empty."""
    import numpy as np
    import pandas as pd

    from valuation import run_summary
    from valuation.engine.money import to_money

    settings.CVM_VALUATION_CHUNK_SIZE = 40
    read_values = run_summary._read_values
    reads = []
    monkeypatch.setattr(run_summary, "_read_values", lambda run: reads.append(run.pk) or read_values(run))
    run = services.run_valuation(as_of=AS_OF)
    assert reads == []  # the run's rows were not read back
    kept_summary = summary_as_stored(run)
    assert kept_summary[0] and kept_summary[1]
    run_summary.write_run_summary(run_id=run.pk)
    assert reads == [run.pk]
    assert summary_as_stored(run) == kept_summary

    written = pd.concat([services.staged_values(chunk.staged)[0] for chunk in run.chunks.order_by("-first_customer_id")])
    odd = written.index[[3, 50, 90]]
    written.loc[odd, "clv"] = [0.125, 1.015, -2.675]  # half a cent: binary and decimal rounding may disagree
    written.loc[odd[0], "p_alive"] = np.nan
    for customer_id in odd:
        p_alive = written.loc[customer_id, "p_alive"]
        CustomerValue.objects.filter(run=run, customer_id=customer_id).update(
            clv=to_money(written.loc[customer_id, "clv"]), p_alive=None if np.isnan(p_alive) else p_alive)
    read_back = run_summary.summary_rows(run=run)
    kept = run_summary.summary_rows(run=run, values=run_summary.written_values(written))
    assert len(read_back["customer_id"]) == len(company)
    assert list(kept) == list(read_back)
    for name, column in read_back.items():
        assert kept[name].dtype == column.dtype, name
        assert pd.Series(kept[name]).equals(pd.Series(column)), name
    at = np.searchsorted(kept["customer_id"], odd.to_numpy())
    assert kept["clv"][at].tolist() == [12, 102, -268] and np.isnan(kept["p_alive"][at[0]])


def test_chunks_written_from_the_prepares_frames_write_what_their_staged_values_hold(company, settings):
    """An in-process run's chunks write from the prepare's frames (chunk_frames), a Celery
    chunk from its staged bytes (staged_values): the same frames, column types included."""
    import pandas as pd

    settings.CVM_VALUATION_CHUNK_SIZE = 40
    run = services.start_run(as_of=AS_OF, trigger="manual")
    ahead = services.ReadAhead()
    chunk_ids = services.prepare_run(run_id=run.pk, ahead=ahead)
    assert len(chunk_ids) == 4
    for chunk in ValuationChunk.objects.filter(pk__in=chunk_ids):
        id_range = (chunk.first_customer_id, chunk.last_customer_id)
        kept, kept_types = services.chunk_frames(*ahead.scored, id_range=id_range)
        staged, staged_types = services.staged_values(chunk.staged)
        assert len(kept) > 0
        pd.testing.assert_frame_equal(kept, staged, check_exact=True)
        pd.testing.assert_frame_equal(kept_types.reset_index(drop=True), staged_types, check_exact=True)
    assert sum(len(services.chunk_frames(*ahead.scored, id_range=(c.first_customer_id, c.last_customer_id))[1])
               for c in ValuationChunk.objects.filter(pk__in=chunk_ids)) > 0  # some service costs were staged
