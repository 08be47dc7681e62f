"""Settings: standard costs with history, segment policy, valuation settings, recompute now."""

import datetime as dt
import re
from decimal import Decimal

import pytest

from services.models import ServiceEvent, ServiceType, StandardCost
from services.selectors import service_event_value
from tests.factories import ServiceEventFactory
from tests.valuation.factories import ChunkFactory, CompletedRunFactory, RunningRunFactory
from valuation.models import ValuationPolicy, ValuationRun
from valuation.selectors import valuation_policy

pytestmark = pytest.mark.django_db


@pytest.fixture
def as_manager(client, manager):
    client.force_login(manager)
    return client


def field_errors(html: str, field_id: str) -> str:
    """The error list rendered right before the field's input (Django's field group)."""
    match = re.search(rf'<ul class="errorlist" id="{field_id}_error">(.*?)</ul>', html, re.S)
    return match.group(1) if match else ""


def test_adding_a_cost_keeps_the_history_and_the_value_of_old_events(as_manager, manager):
    hotline = ServiceType.objects.get(code="hotline")
    old_event = ServiceEventFactory(service_type=hotline, date=dt.date(2025, 5, 1), quantity=Decimal(2))
    before = service_event_value(old_event)

    response = as_manager.post("/settings/standard-costs/", {
        "service_type": hotline.pk, "valid_from": "2026-02-01", "cost_per_unit": "88.50"})

    assert response.status_code == 302
    history = list(StandardCost.objects.filter(service_type=hotline).order_by("valid_from")
                   .values_list("valid_from", "cost_per_unit"))
    assert history == [(dt.date(2000, 1, 1), Decimal("65.00")), (dt.date(2026, 2, 1), Decimal("88.50"))]
    assert StandardCost.objects.get(service_type=hotline, valid_from=dt.date(2026, 2, 1)).created_by == manager
    assert service_event_value(ServiceEvent.objects.get(pk=old_event.pk)) == before == Decimal("130.00")
    new_event = ServiceEventFactory(service_type=hotline, date=dt.date(2026, 2, 3), quantity=Decimal(2))
    assert service_event_value(new_event) == Decimal("177.00")

    page = as_manager.get("/settings/").content.decode()
    assert "2 entries" in page


@pytest.mark.parametrize(("data", "field", "message"), [
    ({"cost_per_unit": "-5"}, "id_cost_per_unit", "cannot be negative"),
    ({"cost_per_unit": "abc"}, "id_cost_per_unit", "Enter a number"),
    ({"valid_from": "2000-01-01"}, "id_valid_from", "already has a cost valid from"),
    ({"valid_from": "1999-06-01"}, "id_valid_from", "must start after it"),
    ({"valid_from": ""}, "id_valid_from", "This field is required"),
])
def test_bad_cost_input_shows_the_error_next_to_the_field(as_manager, data, field, message):
    hotline = ServiceType.objects.get(code="hotline")
    post = {"service_type": hotline.pk, "valid_from": "2026-03-01", "cost_per_unit": "70", **data}
    rows_before = StandardCost.objects.count()

    response = as_manager.post("/settings/standard-costs/", post)

    assert response.status_code == 200
    assert message in field_errors(response.content.decode(), field)
    assert StandardCost.objects.count() == rows_before


def test_segment_policy_fixed_needs_both_amounts(as_manager):
    response = as_manager.post("/settings/segment-policy/", {
        "segment-classic_value": "clv", "segment-segment_policy": "fixed", "segment-segment_quantile": "0.5",
        "segment-fixed_classic_threshold": "", "segment-fixed_value_to_threshold": "300"})
    html = response.content.decode()
    assert response.status_code == 200
    assert "Fixed amounts need a classic value threshold" in field_errors(html, "id_segment-fixed_classic_threshold")
    assert field_errors(html, "id_segment-fixed_value_to_threshold") == ""
    assert valuation_policy().segment_policy == ValuationPolicy.SegmentPolicy.MEDIAN


def test_segment_policy_is_saved(as_manager):
    response = as_manager.post("/settings/segment-policy/", {
        "segment-classic_value": "margin_window", "segment-segment_policy": "fixed", "segment-segment_quantile": "0.5",
        "segment-fixed_classic_threshold": "2500", "segment-fixed_value_to_threshold": "300"})
    assert response.status_code == 302
    policy = valuation_policy()
    assert (policy.classic_value, policy.segment_policy) == ("margin_window", "fixed")
    assert policy.fixed_classic_threshold == Decimal("2500.00")


def test_valuation_settings_validate_abc_shares_next_to_the_field(as_manager):
    data = {"valuation-window_months": "12", "valuation-horizon_months": "36",
            "valuation-annual_discount_rate": "0.08", "valuation-abc_a_share": "0.9",
            "valuation-abc_b_share": "0.8", "valuation-holdout_weeks": "26"}
    response = as_manager.post("/settings/valuation/", data)
    assert response.status_code == 200
    assert "cannot be smaller than the A share" in field_errors(response.content.decode(), "id_valuation-abc_b_share")

    response = as_manager.post("/settings/valuation/", {**data, "valuation-abc_b_share": "0.97"})
    assert response.status_code == 302
    policy = valuation_policy()
    assert (policy.abc_a_share, policy.abc_b_share, policy.annual_discount_rate) == (
        Decimal("0.900"), Decimal("0.970"), Decimal("0.0800"))


def test_recompute_with_the_queue_down_answers_clearly(as_manager, monkeypatch):
    from valuation import services, tasks

    def queue_down(*, user, as_of=None, in_background=False):
        raise services.QueueUnavailable("redis down")

    monkeypatch.setattr(tasks, "request_recompute", queue_down)
    CompletedRunFactory()

    response = as_manager.post("/settings/recompute/")

    html = response.content.decode()
    assert response.status_code == 200
    assert "The task queue is not reachable" in html
    assert "The nightly run will catch up; try again later." in html
    assert 'id="standard-costs"' in html  # the rest of the page still works


def test_recompute_while_a_run_is_running_says_so(as_manager, monkeypatch):
    from valuation import services, tasks

    def busy(*, user, as_of=None, in_background=False):
        raise services.RunAlreadyRunning

    monkeypatch.setattr(tasks, "request_recompute", busy)
    running = RunningRunFactory()

    response = as_manager.post("/settings/recompute/")

    html = response.content.decode()
    assert response.status_code == 200
    assert "A valuation is already running" in html
    assert f'data-status-url="/settings/runs/{running.pk}/status/"' in html


def test_recompute_now_starts_a_run_and_follows_it(as_manager, monkeypatch, manager):
    from valuation import tasks

    calls = []

    def queued(*, user, as_of=None, in_background=False):
        assert in_background  # the page never waits for the run
        calls.append(user)
        return RunningRunFactory(stage="queued")

    monkeypatch.setattr(tasks, "request_recompute", queued)
    response = as_manager.post("/settings/recompute/")
    run = ValuationRun.objects.get()
    assert calls == [manager]
    assert response.status_code == 302
    assert response.url == f"/settings/?run={run.pk}#recompute"

    page = as_manager.get(response.url).content.decode()
    assert f'data-status-url="/settings/runs/{run.pk}/status/"' in page
    assert "queued, waiting for a worker" in page


def test_run_status_reports_stage_and_chunk_progress(as_manager):
    run = RunningRunFactory(stage="scoring")
    ChunkFactory.create_batch(3, run=run, status="done")
    ChunkFactory(run=run)

    status = as_manager.get(f"/settings/runs/{run.pk}/status/").json()

    assert status["status"] == "running" and status["finished"] is False
    # Scoring spans 45 % to 95 % of the bar: 3 of 4 chunks stand at 0.45 + 0.5 x 0.75.
    assert (status["chunks_done"], status["chunks_total"], status["progress"]) == (3, 4, 0.825)
    assert status["stage_display"] == "scoring the customers"
    assert status["progress_display"] == "3 of 4 parts scored"

    ValuationRun.objects.filter(pk=run.pk).update(status="failed", error="Boom: out of memory")
    status = as_manager.get(f"/settings/runs/{run.pk}/status/").json()
    assert status["finished"] is True and status["error"] == "Boom: out of memory"
    assert as_manager.get("/settings/runs/999999/status/").status_code == 404


def test_last_runs_are_listed_with_error(as_manager):
    CompletedRunFactory(rows_written=1234)
    ValuationRun.objects.create(as_of=dt.date(2026, 1, 2), status="failed", error="The task queue is not reachable")
    html = as_manager.get("/settings/").content.decode()
    assert 'id="runs-table"' in html
    assert "1,234" in html
    assert "The task queue is not reachable" in html
