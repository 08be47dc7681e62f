"""The nightly run through a real Redis and a real Celery worker process (CI runs these on
PostgreSQL; on a laptop without the services they skip, in CI they fail)."""

import datetime as dt
import os
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import pytest
from django.db import connection

from customers.models import Customer, Transaction
from cvm.celery import app as celery_app
from tests.conftest import require_service
from valuation import services
from valuation.models import CustomerValue, ValuationRun

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]
REDIS_URL = os.environ.get("CVM_TEST_REDIS_URL", "")


def redis_answers(url: str) -> bool:
    if not url:
        return False
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


def reset_broker_connections() -> None:
    """Drop pooled connections so the next publish connects to the configured broker_url."""
    if celery_app._pool is not None:
        celery_app._pool.force_close_all()
        celery_app._pool = None
    celery_app.amqp._producer_pool = None


@pytest.fixture
def broker():
    require_service(redis_answers(REDIS_URL), f"Redis at {REDIS_URL or 'CVM_TEST_REDIS_URL'}")
    require_service(connection.vendor == "postgresql", "PostgreSQL (a worker process cannot share SQLite's test database)")
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()
    saved = {k: celery_app.conf[k] for k in ("task_always_eager", "broker_url")}
    celery_app.conf.update(task_always_eager=False, broker_url=REDIS_URL)
    reset_broker_connections()
    yield REDIS_URL
    celery_app.conf.update(saved)
    reset_broker_connections()


def database_url() -> str:
    db = connection.settings_dict
    return f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


def start_worker(name: str, *, chunk_size: int) -> subprocess.Popen:
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "REDIS_URL": REDIS_URL,
        "CVM_VALUATION_CHUNK_SIZE": str(chunk_size),
        "CELERY_VISIBILITY_TIMEOUT": "20",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "cvm", "worker", "--pool=prefork", "--concurrency=2",
         "--loglevel=WARNING", "-n", f"{name}@%h", "--without-gossip", "--without-mingle"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )


def stop(worker: subprocess.Popen) -> str:
    worker.terminate()
    try:
        output, _ = worker.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        worker.kill()
        output, _ = worker.communicate()
    return output


def make_company(n_customers: int) -> list[Customer]:
    customers = Customer.objects.bulk_create(
        Customer(number=f"W{i:05d}", name=f"Worker Test {i}", acquired_on=dt.date(2024, 1, 1)) for i in range(n_customers)
    )
    rows = []
    for i, customer in enumerate(customers):
        for k in range(1 + i % 6):
            rows.append(Transaction(customer=customer, external_id=f"W-{i}-{k}", date=dt.date(2024, 1, 1) + dt.timedelta(days=37 * k + i % 29),
                                    revenue=Decimal(100 + 10 * (i % 13)), cost_of_goods=Decimal(60)))
    Transaction.objects.bulk_create(rows)
    return customers


def wait_for(run_id: int, timeout: float) -> ValuationRun:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = ValuationRun.objects.get(pk=run_id)
        if run.status != ValuationRun.Status.RUNNING:
            return run
        time.sleep(0.5)
    return ValuationRun.objects.get(pk=run_id)


def test_a_real_worker_runs_the_chunked_valuation(broker):
    customers = make_company(240)
    worker = start_worker("w1", chunk_size=50)
    try:
        run = services.request_recompute(as_of=dt.date(2026, 1, 31))
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
        services.request_recompute(as_of=dt.date(2026, 1, 31))
    assert time.monotonic() - started < 5
    failed = ValuationRun.objects.get()
    assert failed.status == ValuationRun.Status.FAILED
    assert "not reachable" in failed.error
