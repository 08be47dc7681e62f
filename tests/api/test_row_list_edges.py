"""Where the row path (core.api_rows) must keep DRF's per-instance answer: fields whose value
DRF reads some other way than from a column, and related fields across a missing row."""

import pytest
from rest_framework import serializers

from core.api_rows import row_plan
from customers.models import Customer
from tests.factories import CustomerFactory


def _serializer(fields: list[str], **declared) -> serializers.ModelSerializer:
    meta = type("Meta", (), {"model": Customer, "fields": fields})
    return type("Probe", (serializers.ModelSerializer,), {"Meta": meta, **declared})


def assert_rows_answer_as_drf(serializer_class, queryset):
    """The plan, where one is made, answers what DRF answers over instances; where DRF fails,
    no plan is made (the list keeps DRF's answer)."""
    try:
        expected = [dict(row) for row in serializer_class(queryset, many=True).data]
    except AttributeError:
        assert row_plan(serializer_class(), queryset) is None
        return
    plan = row_plan(serializer_class(), queryset)
    if plan is not None:
        assert plan.represent(plan.rows(queryset)) == expected


@pytest.fixture
def referrals(rep):
    """A customer with no referrer, one referred by a customer without owner, one referred by
    a customer with an owner."""
    no_owner = CustomerFactory(owner=None, name="C no owner")
    owned = CustomerFactory(owner=rep, name="D owned")
    CustomerFactory(owner=rep, name="A not referred", referred_by=None)
    CustomerFactory(owner=rep, name="B referred by no owner", referred_by=no_owner)
    CustomerFactory(owner=None, name="E referred by owned", referred_by=owned)
    return Customer.objects.order_by("name")


@pytest.mark.django_db
def test_a_field_that_reads_the_instance_itself_keeps_drfs_path(referrals):
    # ModelField's get_attribute hands the whole instance to to_representation.
    name = serializers.ModelField(model_field=Customer._meta.get_field("name"), read_only=True)
    assert_rows_answer_as_drf(_serializer(["id", "name"], name=name), referrals)


@pytest.mark.django_db
def test_a_relation_reached_across_a_missing_row_is_left_out_as_drf_does(referrals):
    # DRF leaves the key out where there is no referrer (read-only, no allow_null); not null.
    slug = serializers.SlugRelatedField(source="referred_by.owner", slug_field="username", read_only=True)
    assert_rows_answer_as_drf(_serializer(["id", "referrer_owner"], referrer_owner=slug), referrals)
    pk = serializers.PrimaryKeyRelatedField(source="referred_by.owner", read_only=True)
    assert_rows_answer_as_drf(_serializer(["id", "referrer_owner"], referrer_owner=pk), referrals)


@pytest.mark.django_db
def test_a_nested_slug_across_a_missing_row_keeps_drfs_path(referrals):
    # The referrer exists but has no owner: DRF's nested slug fails there; rows would say null.
    slug = serializers.SlugRelatedField(source="referred_by", slug_field="owner__username", read_only=True)
    assert_rows_answer_as_drf(_serializer(["id", "referrer_owner"], referrer_owner=slug), referrals)


@pytest.mark.django_db
def test_relations_that_may_be_null_still_come_from_rows(referrals):
    nullable = serializers.SlugRelatedField(source="referred_by.owner", slug_field="username", read_only=True,
                                            allow_null=True)
    probe = _serializer(["id", "referrer_owner", "owner", "referred_by"], referrer_owner=nullable,
                        owner=serializers.SlugRelatedField(slug_field="username", read_only=True))
    assert row_plan(probe(), referrals) is not None
    assert_rows_answer_as_drf(probe, referrals)
