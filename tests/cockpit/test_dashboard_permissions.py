"""Every manager page and endpoint: anonymous -> login, rep and inside sales -> 403, manager -> works."""

import pytest

from tests.valuation.factories import CompletedRunFactory

pytestmark = pytest.mark.django_db

# (method, url, what a manager gets with an empty request)
ENDPOINTS = [
    ("get", "/dashboard/", 200),
    ("get", "/settings/", 200),
    ("post", "/settings/standard-costs/", 200),  # empty form: shown again with errors
    ("post", "/settings/segment-policy/", 200),
    ("post", "/settings/valuation/", 200),
    ("post", "/settings/recompute/", 302),  # queued: back to the status panel
    ("get", "/settings/runs/{run}/status/", 200),
]


@pytest.fixture
def endpoint_url():
    run = CompletedRunFactory()
    return lambda url: url.format(run=run.pk)


@pytest.fixture
def queue_accepts(monkeypatch):
    from valuation import tasks

    monkeypatch.setattr(tasks, "request_recompute", lambda *, user, as_of=None, in_background=False: CompletedRunFactory())


@pytest.mark.parametrize(("method", "url", "_status"), ENDPOINTS)
def test_anonymous_is_sent_to_login(client, endpoint_url, method, url, _status):
    response = getattr(client, method)(endpoint_url(url))
    assert response.status_code == 302
    assert response.url.startswith("/login/")


@pytest.mark.parametrize("role", ["rep", "inside_sales"])
@pytest.mark.parametrize(("method", "url", "_status"), ENDPOINTS)
def test_reps_and_inside_sales_are_refused(client, request, endpoint_url, role, method, url, _status):
    client.force_login(request.getfixturevalue(role))
    assert getattr(client, method)(endpoint_url(url)).status_code == 403


@pytest.mark.parametrize(("method", "url", "status"), ENDPOINTS)
def test_manager_gets_through(client, manager, endpoint_url, queue_accepts, method, url, status):
    client.force_login(manager)
    assert getattr(client, method)(endpoint_url(url)).status_code == status


def test_user_without_role_is_refused(client, db):
    from tests.conftest import make_user

    client.force_login(make_user(None, username="nobody"))
    assert client.get("/dashboard/").status_code == 403
    assert client.get("/settings/").status_code == 403


def test_post_only_endpoints_refuse_get(client, manager):
    client.force_login(manager)
    for url in ("/settings/standard-costs/", "/settings/recompute/"):
        assert client.get(url).status_code == 405
