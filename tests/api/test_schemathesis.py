"""Property-based run of the whole API against its own OpenAPI schema (schemathesis).

Every operation gets generated requests as a manager; the run fails on any 5xx, on an
undocumented status code, and on a response that does not match the schema.
"""

import datetime as dt
import json
from collections import Counter

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer
from hypothesis import HealthCheck, Phase, settings
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from cvm.wsgi import application

from .conftest import client_for, completed_run, value_row

pytestmark = pytest.mark.django_db

EXAMPLES_PER_OPERATION = 30
stats: Counter = Counter()


@pytest.fixture(scope="module", autouse=True)
def keep_test_connection():
    """The in-process WSGI app must not close the test's database connection around each request
    (on PostgreSQL the connection inside the test transaction counts as obsolete)."""
    for signal in (request_started, request_finished):
        signal.disconnect(close_old_connections)
    yield
    for signal in (request_started, request_finished):
        signal.connect(close_old_connections)


def _our_schema():
    """The schema /api/schema/ serves (to logged-in users only), generated in-process."""
    raw = OpenApiJsonRenderer().render(SchemaGenerator().get_schema(request=None, public=True))
    loaded = schemathesis.openapi.from_dict(json.loads(raw))
    loaded.app = application
    return loaded


schema = _our_schema()


@pytest.fixture
def token(manager, rep, monkeypatch):
    from services.models import ServiceType
    from tests.factories import CustomerFactory, ServiceEventFactory, TransactionFactory
    from valuation import services

    # Start no real valuation while fuzzing: the trigger answers as if one were running.
    def already_running(**kwargs):
        raise services.RunAlreadyRunning("A valuation run is already in progress.")

    monkeypatch.setattr(services, "request_recompute", already_running)
    run = completed_run(dt.date(2025, 2, 28))
    for number in range(1, 4):
        customer = CustomerFactory(owner=rep, pk=number)
        TransactionFactory(customer=customer, pk=number)
        ServiceEventFactory(customer=customer, logged_by=rep, pk=number, service_type=ServiceType.objects.get(code="hotline"))
        value_row(run, customer)
    return client_for(manager)._credentials["HTTP_AUTHORIZATION"]


@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None, derandomize=True,
    phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck),
)
def test_api_conforms_to_its_schema(case, token):
    stats["operations:" + case.operation.label] += 0
    response = case.call(headers={"Authorization": token})
    stats["requests"] += 1
    if response.status_code >= 500:
        stats["5xx"] += 1
    case.validate_response(
        response,
        checks=[status_code_conformance, content_type_conformance, response_schema_conformance],
    )
    assert response.status_code < 500, response.text[:500]


def test_schemathesis_figures():
    """Runs after the generated tests in this module: print and check the totals."""
    operations = sum(1 for key in stats if key.startswith("operations:"))
    if not operations:
        pytest.skip("run together with test_api_conforms_to_its_schema")
    print(f"\nschemathesis: {operations} operations, {stats['requests']} requests, {stats['5xx']} server errors")
    assert stats["requests"] >= 1000
    assert stats["5xx"] == 0


def test_schema_and_docs_need_a_login(client, manager):
    assert client.get("/api/schema/").status_code == 401
    assert client.get("/api/docs/").status_code == 401
    client.force_login(manager)
    assert client.get("/api/schema/?format=json").json()["openapi"].startswith("3.")
    docs = client.get("/api/docs/")
    assert docs.status_code == 200 and b"swagger-ui" in docs.content and b"cdn" not in docs.content.lower()
