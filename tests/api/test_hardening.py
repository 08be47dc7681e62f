"""What an attack on the API found, kept as reproductions: every answer is JSON, no input a
role can send gives a server error, limits answer 413 and 429 with clear messages."""

import json

import pytest
from django.db import OperationalError
from django.test import override_settings
from rest_framework.test import APIClient

from customers.api import CustomerViewSet
from tests.factories import CustomerFactory

from .conftest import client_for

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("path", ["/api/v1/service-events/", "/api/v1/transactions/"])
def test_an_infinite_number_is_a_400(clients, path, rep):
    CustomerFactory(owner=rep, pk=1)
    body = '{"customer": 1e400, "service_type": "hotline", "date": "2024-01-02", "revenue": "1", "external_id": "x"}'
    response = clients["manager"].post(path, body, content_type="application/json")
    assert response.status_code == 400 and "out of range" in response.json()["detail"]


@pytest.mark.parametrize(
    "path", ["/api/v1/service-events/", "/api/v1/service-events/bulk/", "/api/v1/customers/", "/api/v1/transactions/bulk/"]
)
def test_deeply_nested_json_is_a_400(clients, path):
    response = clients["manager"].post(path, "[" * 5000 + "]" * 5000, content_type="application/json")
    assert response.status_code == 400 and "nested deeper" in response.json()["detail"]
    response = clients["manager"].post(path, "[" * 50 + "]" * 50, content_type="application/json")
    assert response.status_code == 400 and "nested deeper" in response.json()["detail"]


def test_the_documented_bulk_maximum_fits_the_request_limit(clients, rep):
    """50,000 rows with short notes are ~8.5 MB; Django's default limit refused them with HTML."""
    customer = CustomerFactory(owner=rep)
    rows = [
        {"external_id": f"E-{i:08d}", "customer": customer.pk, "service_type": "hotline", "date": "2024-03-01",
         "quantity": "1.00", "note": "called about the spare-part order, all fine"}
        for i in range(50_000)
    ]
    body = json.dumps(rows)
    assert len(body) > 8_000_000
    response = clients["manager"].post("/api/v1/service-events/bulk/", body, content_type="application/json")
    assert response.status_code == 200, response.content[:300]
    assert response.json()["created"] == 50_000


@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=1024 * 1024)
def test_an_oversized_body_is_a_json_413(clients):
    body = json.dumps([{"note": "x" * 1000}] * 2000)
    for path in ["/api/v1/service-events/bulk/", "/api/v1/customers/"]:
        response = clients["manager"].post(path, body, content_type="application/json")
        assert response.status_code == 413 and response["Content-Type"] == "application/json"
        assert "1 MB" in response.json()["detail"]


@pytest.mark.parametrize("path", ["/api/v1/", "/api/schema/", "/api/docs/", "/api/v1/customers/"])
def test_anonymous_requests_answer_401(path):
    response = APIClient().get(path)
    assert response.status_code == 401 and response.json()["detail"]
    assert response["WWW-Authenticate"].startswith("Token")


def test_unknown_api_urls_answer_json(clients):
    response = clients["manager"].get("/api/v1/no-such-thing/")
    assert response.status_code == 404 and response.json() == {"detail": "Not found, or not visible to you."}


def test_a_locked_database_is_a_json_503(clients, monkeypatch):
    def locked(self):
        raise OperationalError("database is locked")

    monkeypatch.setattr(CustomerViewSet, "get_queryset", locked)
    response = clients["manager"].get("/api/v1/customers/")
    assert response.status_code == 503 and response["Retry-After"] == "5"
    assert "busy" in response.json()["detail"]


def test_an_unexpected_error_is_a_json_500(manager, monkeypatch):
    def broken(self):
        raise ZeroDivisionError

    monkeypatch.setattr(CustomerViewSet, "get_queryset", broken)
    client = client_for(manager)
    client.raise_request_exception = False
    response = client.get("/api/v1/customers/")
    assert response.status_code == 500 and response.json() == {"detail": "Server error; it was logged."}


def test_djangos_validation_error_is_a_400(clients, monkeypatch):
    from django.core.exceptions import ValidationError

    def invalid(self):
        raise ValidationError({"name": ["Not like this."]})

    monkeypatch.setattr(CustomerViewSet, "get_queryset", invalid)
    response = clients["manager"].get("/api/v1/customers/")
    assert response.status_code == 400 and response.json() == {"name": ["Not like this."]}


def test_wrong_tokens_are_throttled_per_address(settings):
    settings.CVM_API_THROTTLE_RATES = {"address": "5/min"}
    client = APIClient(REMOTE_ADDR="10.0.0.7")
    answers = [client.get("/api/v1/customers/", HTTP_AUTHORIZATION=f"Token wrong{i}").status_code for i in range(8)]
    assert answers == [401] * 5 + [429] * 3
    response = client.get("/api/v1/customers/", HTTP_AUTHORIZATION="Token wrong")
    assert int(response["Retry-After"]) > 0 and "throttled" in response.json()["detail"].lower()
    # another address may still try
    assert APIClient(REMOTE_ADDR="10.0.0.8").get("/api/v1/customers/", HTTP_AUTHORIZATION="Token x").status_code == 401


def test_requests_are_throttled_per_token(settings, manager, rep):
    settings.CVM_API_THROTTLE_RATES = {"token": "3/min"}
    boss, seller = client_for(manager), client_for(rep)
    assert [boss.get("/api/v1/service-types/").status_code for _ in range(4)] == [200, 200, 200, 429]
    assert boss.get("/api/v1/service-types/")["Retry-After"]
    assert seller.get("/api/v1/service-types/").status_code == 200  # each token counts on its own


@pytest.mark.services
def test_requests_are_throttled_per_token_with_the_cache_in_redis(settings, manager):
    """Production keeps the shared cache in Redis (CVM_CACHE_URL): the per-token counts live
    there, every web process counts together, and the limit holds as with the database cache."""
    import redis

    from tests.conftest import require_service
    from tests.workers import REDIS_URL, redis_answers

    require_service(redis_answers(REDIS_URL), f"Redis at {REDIS_URL or 'CVM_TEST_REDIS_URL'}")
    server = redis.Redis.from_url(REDIS_URL)
    server.flushdb()
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL,
                                   "KEY_PREFIX": "cvm-test"}}
    settings.CVM_API_THROTTLE_RATES = {"token": "3/min"}
    boss = client_for(manager)
    assert [boss.get("/api/v1/service-types/").status_code for _ in range(4)] == [200, 200, 200, 429]
    assert [key for key in server.keys("cvm-test:*") if b"throttle_token" in key]
