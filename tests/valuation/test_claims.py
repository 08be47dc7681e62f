"""Chunks are claimed, never just counted; a run whose process died is taken over at once."""

import datetime as dt
import socket
import subprocess
import sys

import pytest
from django.utils import timezone

from tests.valuation.factories import ChunkFactory, RunningRunFactory
from valuation import services
from valuation.models import ValuationChunk, ValuationRun

pytestmark = pytest.mark.django_db

AS_OF = dt.date(2026, 6, 30)


def dead_pid() -> int:
    """The id of a process that has just ended."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_chunk_delivered_twice_is_claimed_once():
    chunk = ChunkFactory(run=RunningRunFactory(stage="scoring"))
    assert services.claim_chunk(chunk_id=chunk.pk) is True
    assert services.claim_chunk(chunk_id=chunk.pk) is False  # the redelivery finds it held
    chunk.refresh_from_db()
    assert (chunk.status, chunk.attempts, chunk.owner) == (ValuationChunk.Status.RUNNING, 1, services.owner_label())


def test_a_held_chunk_whose_holder_stopped_beating_is_claimed_again(settings):
    settings.CVM_RUN_STALE_SECONDS = 60
    silent = timezone.now() - dt.timedelta(seconds=61)
    chunk = ChunkFactory(run=RunningRunFactory(stage="scoring"), status=ValuationChunk.Status.RUNNING,
                         owner="elsewhere:1", heartbeat_at=silent, attempts=1)
    assert services.claim_chunk(chunk_id=chunk.pk) is True
    chunk.refresh_from_db()
    assert chunk.attempts == 2 and chunk.owner == services.owner_label()


def test_a_done_chunk_is_never_claimed():
    chunk = ChunkFactory(run=RunningRunFactory(stage="scoring"), status=ValuationChunk.Status.DONE)
    assert services.claim_chunk(chunk_id=chunk.pk) is False
    assert services.score_chunk(chunk_id=chunk.pk) == 0


def test_a_run_whose_process_is_gone_is_taken_over_at_once():
    """kill -9 of `recompute_values` (or of the web process) left a run "running" with a fresh
    heartbeat; the next start must not wait for the staleness limit."""
    gone = RunningRunFactory(owner=f"{socket.gethostname()}:{dead_pid()}", heartbeat_at=timezone.now())
    run = services.start_run(as_of=AS_OF, trigger=ValuationRun.Trigger.MANUAL)
    gone.refresh_from_db()
    assert gone.status == ValuationRun.Status.FAILED and "process" in gone.error
    assert run.status == ValuationRun.Status.RUNNING


def test_a_run_whose_heartbeat_stopped_is_taken_over(settings):
    settings.CVM_RUN_STALE_SECONDS = 60
    silent = RunningRunFactory(owner="other-host:4242", heartbeat_at=timezone.now() - dt.timedelta(seconds=61))
    services.start_run(as_of=AS_OF, trigger=ValuationRun.Trigger.MANUAL)
    silent.refresh_from_db()
    assert silent.status == ValuationRun.Status.FAILED and "heartbeat" in silent.error


def test_a_live_run_is_not_taken_over():
    RunningRunFactory(owner=services.owner_label(), heartbeat_at=timezone.now())
    with pytest.raises(services.RunAlreadyRunning):
        services.start_run(as_of=AS_OF, trigger=ValuationRun.Trigger.MANUAL)


def test_keep_alive_beats_while_the_process_works(settings, transactional_db):
    settings.CVM_RUN_STALE_SECONDS = 3  # beats every 0.5 s
    old = timezone.now() - dt.timedelta(seconds=30)
    run = RunningRunFactory(heartbeat_at=old)
    with services.keep_alive(run_id=run.pk):
        deadline = timezone.now() + dt.timedelta(seconds=5)
        while timezone.now() < deadline and ValuationRun.objects.get(pk=run.pk).heartbeat_at == old:
            pass
    assert ValuationRun.objects.get(pk=run.pk).heartbeat_at > old


def test_recompute_now_in_the_embedded_setup_records_this_process(settings, django_capture_on_commit_callbacks, monkeypatch):
    """The web process runs the whole run in the embedded setup: if it is killed, the run's
    owner tells the next request at once."""
    from valuation import tasks

    monkeypatch.setattr(tasks.prepare_valuation, "delay", lambda run_id: None)  # keep it running
    run = tasks.request_recompute(as_of=AS_OF)
    assert run.owner == services.owner_label()
