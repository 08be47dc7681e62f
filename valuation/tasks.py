"""Celery tasks: thin wrappers around valuation.services. They take ids, never instances."""

import datetime as dt
import logging

from celery import group, shared_task
from django.conf import settings
from kombu.exceptions import OperationalError as KombuOperationalError
from redis.exceptions import RedisError

from . import services
from .models import ValuationRun

logger = logging.getLogger(__name__)

# What a publish raises when Redis is down or hanging.
MAX_NIGHTLY_ATTEMPTS = 3
QUEUE_ERRORS = (KombuOperationalError, RedisError, ConnectionError, OSError, TimeoutError)


@shared_task(name="valuation.tasks.nightly_valuation", ignore_result=True)
def nightly_valuation() -> int | None:
    """Beat's entry: start today's run unless it is done or running; resume stalled chunks."""
    stalled = services.resume_stalled_runs(stalled_after=dt.timedelta(seconds=settings.CVM_STALLED_AFTER_SECONDS))
    if stalled:
        queue_chunks(stalled)
        return None
    as_of = services.today()
    if ValuationRun.objects.filter(as_of=as_of, status=ValuationRun.Status.COMPLETED).exists():
        return None
    failures = ValuationRun.objects.filter(as_of=as_of, trigger="nightly", status=ValuationRun.Status.FAILED)
    if failures.count() >= MAX_NIGHTLY_ATTEMPTS:
        return None  # a run that keeps failing waits for a person (the failures are on the settings page)
    try:
        run = services.start_run(as_of=as_of, trigger=ValuationRun.Trigger.NIGHTLY)
    except services.RunAlreadyRunning:
        logger.info("Nightly valuation skipped: a run is already in progress.")
        return None
    prepare_valuation(run.pk)
    return run.pk


@shared_task(name="valuation.tasks.prepare_valuation", ignore_result=True, time_limit=3600)
def prepare_valuation(run_id: int) -> None:
    try:
        chunk_ids = services.prepare_run(run_id=run_id)
    except Exception as exc:
        services.fail_run(run_id=run_id, error=f"{type(exc).__name__}: {exc}")
        raise
    if not chunk_ids:
        services.finish_run_if_complete(run_id=run_id)
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
        raise
    except Exception as exc:
        services.fail_run(run_id=run_id, error=f"Chunk {chunk_id}: {type(exc).__name__}: {exc}")
        raise
    services.finish_run_if_complete(run_id=run_id)
