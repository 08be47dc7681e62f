"""Faults the production stack must survive (real PostgreSQL, Redis and Celery workers in CI)."""

import datetime as dt
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest
from django.db import connection

from cvm.celery import app as celery_app
from services.models import ServiceType
from tests.factories import CustomerFactory
from tests.workers import kill_hard, make_company, reset_broker_connections, start_worker, stop, wait_for
from valuation import services, tasks
from valuation.models import CustomerValue, ValuationChunk, ValuationRun

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]
AS_OF = dt.date(2026, 1, 31)


def test_a_worker_killed_mid_run_the_run_still_completes(broker, capsys, settings):
    settings.CVM_RUN_STALE_SECONDS = 3
    customers = make_company(1500)
    # Many small chunks: a chunk only writes its staged rows (a few milliseconds), so with 15
    # of them a worker once wrote them all between two looks at the table.
    first = start_worker("victim", chunk_size=25, concurrency=1)
    try:
        run = tasks.request_recompute(as_of=AS_OF)
        deadline = time.monotonic() + 120
        while not run.chunks.filter(status="done").exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        done_at_kill = run.chunks.filter(status="done").count()
        assert 0 < done_at_kill < run.chunks.count(), "the kill must land in the middle of the run"
        kill_hard(first)
        killed_at = time.monotonic()
    finally:
        if first.poll() is None:
            stop(first)
    second = start_worker("rescuer", chunk_size=100, concurrency=2)
    try:
        # Beat ticks (here every second, with a 3 s stall limit) queue the lost chunk again.
        deadline = time.monotonic() + 180
        while ValuationRun.objects.get(pk=run.pk).status == "running" and time.monotonic() < deadline:
            tasks.queue_chunks(services.resume_stalled_runs())
            time.sleep(1)
        run = wait_for(run.pk, timeout=10)
        recovered_in = time.monotonic() - killed_at
    finally:
        output = stop(second)
    assert run.status == ValuationRun.Status.COMPLETED, (run.error, output[-2000:])
    assert CustomerValue.objects.filter(run=run).count() == len(customers)
    assert CustomerValue.objects.filter(run=run).values("customer").distinct().count() == len(customers)
    with capsys.disabled():
        print(f"\n[fault] worker killed after {done_at_kill}/{run.chunk_count} chunks; "
              f"run completed {recovered_in:.1f} s after the kill")


def test_two_nightly_runs_started_at_once_make_one(monkeypatch):
    make_company(60)
    monkeypatch.setattr(services, "today", lambda: AS_OF)
    barrier = threading.Barrier(2)
    results = []

    def beat_tick():
        barrier.wait()
        try:
            results.append(tasks.nightly_valuation())
        finally:
            connection.close()

    threads = [threading.Thread(target=beat_tick) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert ValuationRun.objects.count() == 1
    assert ValuationRun.objects.get().status == ValuationRun.Status.COMPLETED
    assert sorted(r is None for r in results) == [False, True]
    assert CustomerValue.objects.count() == 60


class HangingServer:
    """Accepts connections and never answers: a Redis that hangs."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.held = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.held.append(conn)

    def close(self):
        self.sock.close()
        for conn in self.held:
            conn.close()


@pytest.fixture(params=["stopped", "hanging"])
def broken_broker(request, broker):
    if request.param == "stopped":
        url, server = "redis://127.0.0.1:1/0", None
    else:
        server = HangingServer()
        url = f"redis://127.0.0.1:{server.port}/0"
    celery_app.conf.update(broker_url=url)
    reset_broker_connections()
    yield request.param
    if server:
        server.close()
    celery_app.conf.update(broker_url=broker)
    reset_broker_connections()


def test_pages_keep_answering_while_redis_is_down_or_hanging(broken_broker, client, manager, inside_sales, capsys):
    customer = CustomerFactory()
    timings = {}
    client.force_login(manager)
    for path in (f"/customers/{customer.pk}/", "/dashboard/", "/services/log/", "/settings/"):
        started = time.monotonic()
        assert client.get(path).status_code == 200
        timings[path] = time.monotonic() - started
    client.force_login(inside_sales)
    started = time.monotonic()
    hotline = ServiceType.objects.get(code="hotline")
    response = client.post("/services/log/", {"customer": customer.number, "service_type": hotline.pk,
                                               "date": "2026-01-15", "quantity": "1", "note": "Redis outage"})
    timings["log a service"] = time.monotonic() - started
    assert response.status_code == 302, response.content.decode()[:3000]
    assert customer.service_events.count() == 1
    client.force_login(manager)
    started = time.monotonic()
    response = client.post("/settings/recompute/", follow=True)
    timings["recompute now"] = time.monotonic() - started
    assert response.status_code == 200
    assert b"not reachable" in response.content
    assert max(v for k, v in timings.items() if k != "recompute now") < 2.0, timings
    assert timings["recompute now"] < 5.0, timings
    with capsys.disabled():
        print(f"\n[fault] Redis {broken_broker}: " + ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in timings.items()))


def test_the_nightly_run_catches_up_once_redis_is_back(broker, monkeypatch):
    make_company(40)
    monkeypatch.setattr(services, "today", lambda: AS_OF)
    celery_app.conf.update(broker_url="redis://127.0.0.1:1/0")
    reset_broker_connections()
    with pytest.raises(services.QueueUnavailable):
        tasks.request_recompute(as_of=AS_OF)
    celery_app.conf.update(broker_url=broker)
    reset_broker_connections()
    worker = start_worker("catchup", chunk_size=20)
    try:
        tasks.nightly_valuation.delay()  # the next beat tick
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not ValuationRun.objects.filter(status="completed").exists():
            time.sleep(0.5)
    finally:
        output = stop(worker)
    # the worker's own clock decides the as-of date of a nightly run
    assert ValuationRun.objects.filter(trigger="nightly", status="completed").count() == 1, output[-2000:]
    assert CustomerValue.objects.count() == 40


def test_a_killed_recompute_command_does_not_block_the_next_run(capsys):
    """kill -9 of `recompute_values` mid-run: the next start takes the run over at once
    instead of refusing for the staleness limit (it was 30 minutes)."""
    from tests.conftest import require_service
    from tests.workers import ROOT, database_url

    require_service(connection.vendor == "postgresql", "PostgreSQL (the command runs in its own process)")
    make_company(3000)
    env = {**os.environ, "DATABASE_URL": database_url(), "CVM_VALUATION_CHUNK_SIZE": "100", "REDIS_URL": ""}
    command = subprocess.Popen(
        [sys.executable, "manage.py", "recompute_values", "--as-of", AS_OF.isoformat()],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while not ValuationChunk.objects.filter(status="done").exists() and time.monotonic() < deadline:
            assert command.poll() is None, "the command ended before it could be killed"
            time.sleep(0.05)
    finally:
        command.send_signal(signal.SIGKILL)
        command.wait(timeout=10)
    killed = ValuationRun.objects.get(status=ValuationRun.Status.RUNNING)
    started = time.monotonic()
    run = services.start_run(as_of=AS_OF, trigger=ValuationRun.Trigger.MANUAL)
    waited = time.monotonic() - started
    killed.refresh_from_db()
    assert killed.status == ValuationRun.Status.FAILED and "process" in killed.error
    assert run.status == ValuationRun.Status.RUNNING and waited < 5
    with capsys.disabled():
        print(f"\n[fault] recompute_values killed -9 mid-run; the next start took it over in {waited * 1000:.0f} ms")
