import datetime as dt
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from customers.roles import Role
from services.catalogue import SERVICE_CATALOGUE
from services.models import ServiceEvent, ServiceType, StandardCost
from tests.factories import CustomerFactory, ServiceEventFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("quantity", ["0", "-1.5"])
def test_non_positive_quantity_is_rejected(quantity):
    event = ServiceEventFactory.build(customer=CustomerFactory(), quantity=Decimal(quantity))
    with pytest.raises(ValidationError) as excinfo:
        event.full_clean()
    assert "The quantity must be positive." in str(excinfo.value)
    with pytest.raises(IntegrityError), transaction.atomic():
        event.save()
    assert ServiceEvent.objects.count() == 0


def test_migrate_creates_the_ten_service_types_with_costs():
    codes = set(ServiceType.objects.values_list("code", flat=True))
    assert codes == {row[0] for row in SERVICE_CATALOGUE}
    assert len(codes) == 10
    for service_type in ServiceType.objects.all():
        assert service_type.standard_costs.filter(cost_per_unit__gt=0).exists()


def test_migrate_creates_the_role_groups():
    assert set(Group.objects.values_list("name", flat=True)) >= {r.value for r in Role}


def test_one_standard_cost_per_type_and_day():
    hotline = ServiceType.objects.get(code="hotline")
    StandardCost.objects.create(service_type=hotline, valid_from=dt.date(2025, 1, 1), cost_per_unit=70)
    with pytest.raises(IntegrityError), transaction.atomic():
        StandardCost.objects.create(service_type=hotline, valid_from=dt.date(2025, 1, 1), cost_per_unit=80)
