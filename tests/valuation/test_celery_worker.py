"""The nightly run through a real Redis and a real Celery worker process (CI runs these on
PostgreSQL; on a laptop without the services they skip, in CI they fail)."""

import datetime as dt
import time

import pytest

from cvm.celery import app as celery_app
from tests.workers import make_company, reset_broker_connections, start_worker, stop, wait_for
from valuation import services, tasks
from valuation.models import CustomerValue, ValuationRun

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]


def test_a_real_worker_runs_the_chunked_valuation(broker):
    customers = make_company(240)
    worker = start_worker("w1", chunk_size=50)
    try:
        run = tasks.request_recompute(as_of=dt.date(2026, 1, 31))
        run = wait_for(run.pk, timeout=180)
    finally:
        output = stop(worker)
    assert run.status == ValuationRun.Status.COMPLETED, (run.error, output[-3000:])
    assert run.chunk_count == 5
    assert run.chunks.filter(status="done").count() == 5
    assert CustomerValue.objects.filter(run=run).count() == len(customers)
    assert CustomerValue.objects.filter(run=run).values("customer").distinct().count() == len(customers)


def test_recompute_now_fails_fast_and_clearly_when_redis_is_down(broker):
    celery_app.conf.update(broker_url="redis://127.0.0.1:1/0")
    reset_broker_connections()
    started = time.monotonic()
    with pytest.raises(services.QueueUnavailable):
        tasks.request_recompute(as_of=dt.date(2026, 1, 31))
    assert time.monotonic() - started < 5
    failed = ValuationRun.objects.get()
    assert failed.status == ValuationRun.Status.FAILED
    assert "not reachable" in failed.error
