"""The demo with history: monthly runs, worklists for every rep, segment movement, NPS answers
and cross-sell hints on first start."""

import datetime as dt
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client

from cockpit import worklist
from cockpit.demo import REPS, history_dates
from customers.models import Customer, SurveyAnswer
from valuation.cross_sell import cross_sell_hints
from valuation.models import ValuationRun
from valuation.selectors import latest_completed_run

AS_OF = dt.date(2026, 6, 30)


def test_history_dates_are_monthly_and_end_at_the_as_of_date():
    dates = history_dates(as_of=AS_OF, months=12)
    assert len(dates) == 12 and dates[-1] == AS_OF and dates[0] == dt.date(2025, 7, 30)
    assert history_dates(as_of=dt.date(2026, 3, 31), months=2) == [dt.date(2026, 2, 28), dt.date(2026, 3, 31)]
    assert history_dates(as_of=AS_OF, months=0) == []


@pytest.mark.django_db
def test_seeded_demo_has_history_worklists_movement_nps_and_hints():
    out = StringIO()
    call_command("seed_demo", "--customers", "400", "--as-of", AS_OF.isoformat(), "--history-months", "3", stdout=out)
    runs = ValuationRun.objects.filter(status=ValuationRun.Status.COMPLETED)
    assert sorted(runs.values_list("as_of", flat=True)) == history_dates(as_of=AS_OF, months=3)
    assert "3 valuation runs" in out.getvalue()
    User = get_user_model()
    for login in REPS:
        assert worklist.worklist(user=User.objects.get(username=login.username)), login.username
    manager = User.objects.get(username="manager")
    client = Client()
    client.force_login(manager)
    home = client.get("/").content.decode()
    assert 'id="segment-moves"' in home
    dashboard = client.get("/dashboard/").content.decode()
    assert "Come back after the next nightly run" not in dashboard and 'id="company-nps"' in dashboard
    assert SurveyAnswer.objects.count() > 100
    run = latest_completed_run()
    sample = list(Customer.objects.filter(values__run=run).order_by("pk")[:40])
    with_hints = sum(bool(cross_sell_hints(customer=c, value=c.values.get(run=run))) for c in sample)
    assert with_hints >= len(sample) // 2
    # Seeding again with --if-empty changes nothing (make run twice).
    call_command("seed_demo", "--if-empty", stdout=StringIO())
    assert ValuationRun.objects.filter(status=ValuationRun.Status.COMPLETED).count() == 3
