import pytest
from django.db import OperationalError
from django.test import Client

pytestmark = pytest.mark.django_db


@pytest.mark.axes
def test_repeated_wrong_passwords_lock_the_login(rep, settings):
    settings.AXES_ENABLED = True
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        response = client.post("/login/", {"username": rep.username, "password": "wrong"})
        assert response.status_code == 200
    assert client.post("/login/", {"username": rep.username, "password": "wrong"}).status_code == 429
    locked = client.post("/login/", {"username": rep.username, "password": "secret-pass-123"})
    assert locked.status_code == 429
    assert b"Too many failed logins" in locked.content
    other = Client().post("/login/", {"username": "someone-else", "password": "x"})
    assert other.status_code == 200


def test_every_response_carries_a_strict_content_security_policy(client):
    policy = client.get("/login/").headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy
    assert "unsafe-eval" not in policy
    assert "frame-ancestors 'none'" in policy


def test_database_outage_answers_503_without_a_stack_trace(client, manager, monkeypatch, settings):
    settings.DEBUG = False
    client.force_login(manager)
    client.raise_request_exception = False

    def broken(*args, **kwargs):
        raise OperationalError("could not connect to server: Connection refused")

    monkeypatch.setattr("cockpit.worklist.worklist", broken)
    response = client.get("/")
    assert response.status_code == 503
    assert b"database cannot be reached" in response.content
    assert b"Traceback" not in response.content and b"Connection refused" not in response.content
    assert response["Retry-After"] == "30"
