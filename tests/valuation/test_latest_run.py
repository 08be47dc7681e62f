""""Latest" is the completed run with the newest as-of date: a back-fill never hides newer figures."""

import datetime as dt
import re

import pytest
from django.test import Client

from customers.models import Customer
from customers.roles import Role
from tests.conftest import make_user
from valuation import services
from valuation.selectors import latest_completed_run, previous_completed_run

pytestmark = pytest.mark.django_db


def _client(user):
    client = Client()
    client.force_login(user)
    return client


def _sections(html: str, *ids: str) -> dict:
    found = {}
    for section_id in ids:
        match = re.search(rf'<section[^>]*id="{section_id}".*?</section>', html, re.S)
        found[section_id] = re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", match.group(0)) if match else None
    return found


def snapshot(manager, rep, customer):
    as_manager, as_rep = _client(manager), _client(rep)
    cockpit = as_rep.get(f"/customers/{customer.pk}/").content.decode()
    return {
        "values": as_manager.get("/api/v1/values/?page_size=200").json(),
        "segments": as_manager.get("/api/v1/segments/").json(),
        "worklist": as_rep.get("/api/v1/worklist/").json(),
        "manager_worklist": as_manager.get("/api/v1/worklist/").json(),
        "value_change": as_rep.get(f"/api/v1/customers/{customer.pk}/value-change/").json(),
        "cockpit": _sections(cockpit, "value-from", "value-to", "value-change", "what-if"),
        "home": _sections(as_manager.get("/").content.decode(), "changes", "worklist"),
        "list": re.findall(r"<tbody>.*?</tbody>", as_manager.get("/customers/?sort=-clv").content.decode(), re.S),
        "export": b"".join(as_manager.get("/imports/export/values.csv").streaming_content),
    }


def test_a_back_fill_leaves_every_figure_unchanged(two_runs):
    previous, current = two_runs
    manager, rep = make_user(Role.MANAGER), make_user(Role.SALES_REP)
    Customer.objects.update(owner=rep)
    services.worklist.rebuild_work_items()
    customer = Customer.objects.order_by("pk").first()
    before = snapshot(manager, rep, customer)
    assert before["worklist"]["items"] and before["value_change"]["drivers"]

    backfill = services.run_valuation(as_of=dt.date(2026, 3, 31))
    assert backfill.finished_at > current.finished_at
    assert latest_completed_run() == current
    assert previous_completed_run(current) == previous

    after = snapshot(manager, rep, customer)
    for name in before:
        assert after[name] == before[name], name


def test_the_latest_run_is_the_newest_as_of_not_the_last_finished(two_runs):
    previous, current = two_runs
    older = services.run_valuation(as_of=dt.date(2026, 1, 31))
    assert latest_completed_run() == current
    assert previous_completed_run(current) == previous
    assert previous_completed_run(previous) == older
