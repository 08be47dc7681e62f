"""Celery tasks: thin interfaces onto valuation.services. They take ids and dates, never
instances, call one service and decide nothing themselves."""

import datetime as dt
import logging
import threading

from celery import current_app, group, shared_task
from django.db import transaction
from kombu.exceptions import OperationalError as KombuOperationalError
from redis.exceptions import RedisError

from core.own_connection import on_own_connection

from . import services
from .models import ValuationRun

logger = logging.getLogger(__name__)

# What a publish raises when Redis is down or hanging.
QUEUE_ERRORS = (KombuOperationalError, RedisError, ConnectionError, OSError, TimeoutError)


@shared_task(name="valuation.tasks.nightly_valuation", ignore_result=True)
def nightly_valuation() -> int | None:
    """Beat's entry: resume a stalled run's chunks, else start today's run if it is due."""
    stalled = services.resume_stalled_runs()
    if stalled:
        queue_chunks(stalled)
        return None
    run = services.start_nightly_run(as_of=services.today())
    if run is None:
        return None
    prepare_valuation(run.pk)
    return run.pk


@shared_task(name="valuation.tasks.prepare_valuation", ignore_result=True, time_limit=3600)
def prepare_valuation(run_id: int) -> None:
    try:
        with services.keep_alive(run_id=run_id):
            chunk_ids = services.prepare_run(run_id=run_id)
    except Exception as exc:
        services.fail_run(run_id=run_id, error=f"{type(exc).__name__}: {exc}")
        raise
    if not chunk_ids:
        finish_run(run_id)
        return
    queue_chunks(chunk_ids)


def queue_chunks(chunk_ids: list[int]) -> None:
    # A group of independent chunk tasks; the last one to finish completes the run (no chord).
    group(score_chunk.si(chunk_id) for chunk_id in chunk_ids).apply_async()


@shared_task(
    name="valuation.tasks.score_chunk",
    ignore_result=True,
    acks_late=True,
    time_limit=600,
    autoretry_for=(services.DatabaseBusy,),
    retry_backoff=5,
    max_retries=5,
)
def score_chunk(chunk_id: int) -> None:
    run_id = services.run_of_chunk(chunk_id=chunk_id)
    try:
        services.score_chunk(chunk_id=chunk_id)
    except services.DatabaseBusy:
        services.release_chunk(chunk_id=chunk_id)  # the retry must be able to claim it again
        raise
    except Exception as exc:
        services.fail_run(run_id=run_id, error=f"Chunk {chunk_id}: {type(exc).__name__}: {exc}")
        raise
    finish_run(run_id)


def finish_run(run_id: int) -> None:
    """The finish on a worker: when it fails, the run fails with its error at once (else it
    stayed 'finishing' until its heartbeat went stale, with only that as the reason)."""
    try:
        services.finish_run_if_complete(run_id=run_id)
    except Exception as exc:
        services.fail_run(run_id=run_id, error=f"Finishing: {type(exc).__name__}: {exc}")
        raise


def request_recompute(*, user=None, as_of: dt.date | None = None, in_background: bool = False) -> ValuationRun:
    """"Recompute now": claim a run and queue it once the claim is committed.

    Raises services.RunAlreadyRunning or services.QueueUnavailable.

    `in_background` (the settings page): in the embedded setup, where tasks run in-process, the
    run goes to a thread of the web process, so the request answers at once and the page polls
    the run's real stage and chunks. With a Celery worker the task is queued as always.
    """
    # In the embedded setup the tasks run in this process, which then holds the whole run.
    owner = services.owner_label() if current_app.conf.task_always_eager else ""
    run = services.start_run(
        as_of=as_of or services.today(), trigger=ValuationRun.Trigger.MANUAL, requested_by=user, owner=owner
    )
    if in_background and current_app.conf.task_always_eager:
        transaction.on_commit(lambda: start_in_thread(run.pk))
        return run
    try:
        # Queued once the claim is committed; outside a transaction on_commit runs at once,
        # so a dead queue is still reported to the person waiting.
        transaction.on_commit(lambda: prepare_valuation.delay(run.pk))
    except QUEUE_ERRORS as exc:
        services.fail_run(run_id=run.pk, error=f"The task queue is not reachable: {exc}")
        raise services.QueueUnavailable("The task queue is not reachable.") from exc
    return run


# The threads of runs started by start_in_thread, by run id (tests wait for them).
BACKGROUND_RUNS: dict[int, threading.Thread] = {}


def start_in_thread(run_id: int) -> threading.Thread:
    """Run the claimed run in a daemon thread of this process (embedded setup only)."""
    thread = threading.Thread(target=_run_in_thread, args=(run_id,), name=f"valuation-run-{run_id}", daemon=True)
    BACKGROUND_RUNS[run_id] = thread
    thread.start()
    return thread


@on_own_connection
def _run_in_thread(run_id: int) -> None:
    try:
        # Eager mode: prepare, then every chunk, one after the other in this thread.
        prepare_valuation.apply(args=(run_id,))
    except Exception:  # the task has marked the run failed; the page shows the error
        logger.exception("Valuation run %s failed in its background thread", run_id)
