"""Property-based run of the whole API against its own OpenAPI schema (schemathesis).

Every operation gets generated requests with each role's token (manager, sales rep, inside
sales); the run fails on any 5xx, on an undocumented status code, and on a response that does
not match the schema. CVM_FUZZ_EXAMPLES sets the examples per operation and role.
"""

import datetime as dt
import json
import os
import time
from collections import Counter, defaultdict

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

# Measured: 45 examples per operation and role gave 3,927 requests per role, 60 gave 4,422
# (operations with few distinct inputs run out); ~30 ms a request in-process.
EXAMPLES_PER_OPERATION = int(os.environ.get("CVM_FUZZ_EXAMPLES") or 80)
REQUESTS_PER_ROLE = 5000
ROLES = ["manager", "rep", "inside_sales"]
stats: dict[str, Counter] = defaultdict(Counter)
started = time.perf_counter()


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


@pytest.fixture(params=ROLES)
def role_token(request, manager, rep, inside_sales, monkeypatch, settings):
    from services.models import ServiceType
    from tests.factories import CustomerFactory, ServiceEventFactory, TransactionFactory
    from valuation import services, tasks

    # Start no real valuation while fuzzing: the trigger answers as if one were running.
    def already_running(**kwargs):
        raise services.RunAlreadyRunning("A valuation run is already in progress.")

    monkeypatch.setattr(tasks, "request_recompute", already_running)
    run = completed_run(dt.date(2025, 2, 28))
    for number in range(1, 4):
        customer = CustomerFactory(owner=rep, pk=number)
        TransactionFactory(customer=customer, pk=number)
        ServiceEventFactory(customer=customer, logged_by=rep, pk=number, service_type=ServiceType.objects.get(code="hotline"))
        value_row(run, customer)
    # Rate limits have their own tests; here they would only slow the run down.
    settings.CVM_API_THROTTLE_RATES = {}
    user = {"manager": manager, "rep": rep, "inside_sales": inside_sales}[request.param]
    return request.param, client_for(user)._credentials["HTTP_AUTHORIZATION"]


@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None, derandomize=True,
    phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck),
)
def test_api_conforms_to_its_schema(case, role_token):
    role, token = role_token
    stats[role]["operations:" + case.operation.label] += 0
    response = case.call(headers={"Authorization": token})
    stats[role]["requests"] += 1
    stats[role][f"status:{response.status_code}"] += 1
    if response.status_code >= 500:
        stats[role]["5xx"] += 1
    case.validate_response(
        response,
        checks=[status_code_conformance, content_type_conformance, response_schema_conformance],
    )
    assert response.status_code < 500, response.text[:500]


def test_schemathesis_figures():
    """Runs after the generated tests in this module: print and check the totals."""
    if not stats:
        pytest.skip("run together with test_api_conforms_to_its_schema")
    print(f"\nschemathesis in {time.perf_counter() - started:.0f} s:")
    for role in ROLES:
        figures = stats[role]
        operations = sum(1 for key in figures if key.startswith("operations:"))
        statuses = ", ".join(f"{key[7:]}: {n}" for key, n in sorted(figures.items()) if key.startswith("status:"))
        print(f"  {role}: {operations} operations, {figures['requests']} requests, {figures['5xx']} server errors ({statuses})")
    for role in ROLES:
        assert stats[role]["5xx"] == 0, role
        if EXAMPLES_PER_OPERATION >= 80:
            assert stats[role]["requests"] >= REQUESTS_PER_ROLE, role


def test_schema_and_docs_need_a_login(client, manager):
    assert client.get("/api/schema/").status_code == 401
    assert client.get("/api/docs/").status_code == 401
    client.force_login(manager)
    assert client.get("/api/schema/?format=json").json()["openapi"].startswith("3.")
    docs = client.get("/api/docs/")
    assert docs.status_code == 200 and b"swagger-ui" in docs.content and b"cdn" not in docs.content.lower()
