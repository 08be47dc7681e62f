"""'Recompute now' in the embedded setup: the request answers at once, the run goes on in a
thread of the web process, and the status the page polls moves with the run's real stages."""

import datetime as dt
import threading

import pytest
from django.urls import reverse

from tests.factories import CustomerFactory, TransactionFactory
from valuation import services, tasks
from valuation.models import ValuationRun

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def company():
    for number in range(40):
        customer = CustomerFactory(number=f"K-{number:03d}")
        for month in range(1, 1 + number % 6):
            TransactionFactory(customer=customer, date=dt.date(2025, month * 2, 10))


def test_the_page_answers_at_once_and_the_run_finishes_in_the_background(client, manager, company, monkeypatch, settings):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    release = threading.Event()
    real_prepare = services.prepare_run

    def held_prepare(*, run_id):
        release.wait(timeout=20)  # a run that takes a while, as a real company's does
        return real_prepare(run_id=run_id)

    monkeypatch.setattr(services, "prepare_run", held_prepare)
    client.force_login(manager)
    response = client.post(reverse("valuation:recompute"))
    # The answer came while the run is still held: the request did not run the valuation.
    run = ValuationRun.objects.get()
    assert response.status_code == 302 and not release.is_set()
    status_url = reverse("valuation:run_status", args=[run.pk])
    status = client.get(status_url).json()
    assert status["finished"] is False and status["status"] == "running"
    first_progress = status["progress"]
    release.set()
    tasks.BACKGROUND_RUNS[run.pk].join(timeout=120)
    status = client.get(status_url).json()
    assert status["status"] == "completed" and status["finished"] is True
    assert first_progress < status["progress"] == 1.0


def test_without_background_the_service_runs_in_process(company, settings):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    run = tasks.request_recompute()
    run.refresh_from_db()
    assert run.status == "completed"
