"""Real Celery workers against a real Redis for the integration and fault tests."""

import datetime as dt
import os
import signal
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
from valuation.models import ValuationRun

ROOT = Path(__file__).resolve().parents[1]
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
    from kombu import pools

    # Celery's pools live in kombu's global registry, keyed by URL: reset that too.
    pools.reset()
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


def start_worker(name: str, *, chunk_size: int, concurrency: int = 2) -> subprocess.Popen:
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "REDIS_URL": REDIS_URL,
        "CVM_VALUATION_CHUNK_SIZE": str(chunk_size),
        "CVM_RUN_STALE_SECONDS": "3",
        "CELERY_VISIBILITY_TIMEOUT": "20",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "cvm", "worker", "--pool=prefork", f"--concurrency={concurrency}",
         "--loglevel=WARNING", "-n", f"{name}@%h", "--without-gossip", "--without-mingle"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,  # its own process group, so a kill takes the pool children too
    )


def kill_hard(worker: subprocess.Popen) -> None:
    """SIGKILL the worker and its pool processes: no chance to ack or clean up."""
    os.killpg(worker.pid, signal.SIGKILL)
    worker.wait(timeout=10)


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


