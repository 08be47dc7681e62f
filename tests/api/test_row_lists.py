"""API lists answered from database rows (core.api_rows) give the same bytes as DRF's
serializers over model instances, for every role, with missing values and odd amounts."""

import datetime as dt
from decimal import Decimal
from unittest import mock

import pytest
from django.db.models import F
from rest_framework import serializers

from core import api_rows
from core.api_rows import row_plan
from customers.models import Customer, SurveyAnswer
from services.models import ServiceType, StandardCost
from tests.factories import CustomerFactory

from .conftest import results, value_row

ROLES = ["manager", "rep", "inside_sales"]
LISTS = [
    "/api/v1/values/",
    "/api/v1/values/?ordering=-clv",
    "/api/v1/values/?segment=investment&page_size=2",
    "/api/v1/customers/",
    "/api/v1/customers/?ordering=-yearly_wallet",
    "/api/v1/service-events/",
    "/api/v1/standard-costs/",
    "/api/v1/service-types/",
    "/api/v1/survey-answers/",
    "/api/v1/transactions/",
    "/api/v1/valuation-runs/",
]
FROM_ROWS = {"values", "customers", "service-events", "standard-costs", "survey-answers", "customer values"}


@pytest.fixture
def odd_world(world, rep, manager):
    """The API world plus rows with every optional value missing, and some set."""
    mine = world["mine"]
    orphan = CustomerFactory(owner=None, name="No owner", acquired_on=None, yearly_wallet=None)
    lost = CustomerFactory(
        owner=rep, name="Lost one", status=Customer.Status.LOST, lost_on=dt.date(2025, 1, 2),
        referred_by=mine[0], yearly_wallet=Decimal("1234567.5"),
    )
    run = world["runs"][1]
    value_row(run, orphan, clv=Decimal("0"), clv_low=None, clv_high=None, p_alive=None, expected_purchases=None,
              value_to_by_type={}, share_of_supply=None, clv_to_infinity=None, median_lifetime_weeks=None)
    value_row(run, lost, clv=Decimal("-0.01"), value_to_by_type={"hotline": 0.1, "training": 1e-9}, is_thin=True)
    hotline = ServiceType.objects.get(code="hotline")
    StandardCost.objects.create(service_type=hotline, valid_from=dt.date(2020, 1, 1), cost_per_unit=Decimal("0.5"),
                                created_by=None)
    StandardCost.objects.create(service_type=hotline, valid_from=dt.date(2020, 2, 1), cost_per_unit=Decimal("12"),
                                created_by=manager)
    SurveyAnswer.objects.create(customer=mine[0], answered_on=dt.date(2025, 2, 1), score=9, comment="Gut", logged_by=rep)
    SurveyAnswer.objects.create(customer=lost, answered_on=dt.date(2025, 1, 1), score=3, external_id="S-1")
    return world | {"orphan": orphan, "lost": lost}


def both_ways(client, url: str):
    """The answer from rows, then DRF's answer with the row path switched off."""
    with mock.patch.object(api_rows.RowPlan, "represent", autospec=True, side_effect=api_rows.RowPlan.represent) as rows:
        fast = client.get(url)
    with mock.patch("core.api_rows.row_plan", return_value=None):
        slow = client.get(url)
    return fast, slow, rows.called


@pytest.mark.django_db
@pytest.mark.parametrize("role", ROLES)
def test_every_list_answers_the_same_bytes_from_rows(clients, odd_world, role):
    for url in LISTS + [f"/api/v1/customers/{customer.pk}/values/" for customer in odd_world["mine"]]:
        fast, slow, from_rows = both_ways(clients[role], url)
        assert fast.status_code == slow.status_code, url
        assert fast.content == slow.content, url
        name = "customer values" if url.endswith("/values/") and "/customers/" in url else url.split("/")[3]
        if fast.status_code == 200:
            assert from_rows == (name in FROM_ROWS), url


@pytest.mark.django_db
def test_rows_carry_missing_values_and_amounts_as_drf_writes_them(clients, odd_world):
    values = {row["customer_name"]: row for row in results(clients["manager"].get("/api/v1/values/"))}
    assert values["No owner"]["clv_low"] is None and values["No owner"]["p_alive"] is None
    assert values["No owner"]["value_to_by_type"] == {}
    assert values["Lost one"]["clv"] == "-0.01" and values["Lost one"]["strategy"]
    customers = {row["name"]: row for row in results(clients["manager"].get("/api/v1/customers/"))}
    assert customers["No owner"]["owner"] is None and customers["No owner"]["yearly_wallet"] is None
    assert customers["Lost one"]["yearly_wallet"] == "1234567.50"
    assert customers["Lost one"]["referred_by"] == odd_world["mine"][0].pk
    assert customers["Lost one"]["lost_on"] == "2025-01-02"
    inside = results(clients["inside_sales"].get("/api/v1/values/"))
    assert inside and all("clv" not in row and "value_to_customer" in row for row in inside)


@pytest.mark.django_db
def test_a_list_from_rows_takes_no_more_queries_than_from_instances(clients, odd_world, django_assert_max_num_queries):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    for url in ("/api/v1/values/", "/api/v1/customers/", "/api/v1/service-events/"):
        with mock.patch("core.api_rows.row_plan", return_value=None), CaptureQueriesContext(connection) as slow:
            clients["manager"].get(url)
        with django_assert_max_num_queries(len(slow)):
            clients["manager"].get(url)


def _serializer(fields: list[str], **declared) -> serializers.ModelSerializer:
    meta = type("Meta", (), {"model": Customer, "fields": fields})
    return type("Probe", (serializers.ModelSerializer,), {"Meta": meta, **declared})()


@pytest.mark.django_db
def test_fields_that_need_an_instance_keep_drfs_path():
    customers = Customer.objects.all()
    assert row_plan(_serializer(["id", "name", "owner"]), customers).columns == ("id", "name", "owner")
    # A method, not a column.
    label = serializers.CharField(source="get_status_display")
    assert row_plan(_serializer(["id", "label"], label=label), customers) is None
    # DRF leaves the key out where the owner is missing; from rows it would be null.
    owner_name = serializers.CharField(source="owner.username")
    assert row_plan(_serializer(["id", "owner_name"], owner_name=owner_name), customers) is None
    owner_name = serializers.CharField(source="owner.username", allow_null=True)
    assert row_plan(_serializer(["id", "owner_name"], owner_name=owner_name), customers).columns == (
        "id", "owner__username",
    )
    shout = serializers.SerializerMethodField()
    assert row_plan(_serializer(["id", "shout"], shout=shout, get_shout=lambda self, c: c.name), customers) is None
    twice = serializers.IntegerField()
    annotated = customers.annotate(twice=F("id") * 2)
    assert row_plan(_serializer(["id", "twice"], twice=twice), annotated).columns == ("id", "twice")
    assert row_plan(_serializer(["id", "twice"], twice=serializers.IntegerField()), customers) is None
