import datetime as dt
from decimal import Decimal

import pandas as pd
import pytest

from services.models import ServiceEvent, ServiceType, StandardCost
from services.selectors import CostHistory, service_event_value, standard_cost_on
from tests.factories import CustomerFactory, ServiceEventFactory

pytestmark = pytest.mark.django_db

CHANGE = dt.date(2025, 7, 1)


@pytest.fixture
def hotline():
    hotline = ServiceType.objects.get(code="hotline")
    StandardCost.objects.filter(service_type=hotline).update(cost_per_unit=Decimal("60.00"))
    StandardCost.objects.create(service_type=hotline, valid_from=CHANGE, cost_per_unit=Decimal("72.50"))
    return hotline


def test_event_before_a_cost_change_keeps_the_old_cost(hotline):
    event = ServiceEventFactory(service_type=hotline, date=CHANGE - dt.timedelta(days=1), quantity=Decimal("1.5"))
    assert service_event_value(event) == Decimal("90.00")


def test_event_on_and_after_the_change_gets_the_new_cost(hotline):
    on_day = ServiceEventFactory(service_type=hotline, date=CHANGE, quantity=Decimal("2"))
    later = ServiceEventFactory(service_type=hotline, date=dt.date(2026, 1, 5), quantity=Decimal("0.25"))
    assert service_event_value(on_day) == Decimal("145.00")
    assert service_event_value(later) == Decimal("18.125")


def test_a_new_cost_never_rewrites_the_past(hotline):
    event = ServiceEventFactory(service_type=hotline, date=dt.date(2025, 3, 3), quantity=Decimal("1"))
    before = service_event_value(event)
    StandardCost.objects.create(service_type=hotline, valid_from=dt.date(2026, 1, 1), cost_per_unit=Decimal("99"))
    assert service_event_value(event) == before == Decimal("60.00")


def test_bulk_paths_match_the_single_path_with_constant_queries(hotline, django_assert_num_queries):
    training = ServiceType.objects.get(code="training")
    StandardCost.objects.create(service_type=training, valid_from=CHANGE, cost_per_unit=Decimal("1010.10"))
    customer = CustomerFactory()
    days = [CHANGE + dt.timedelta(days=d) for d in (-400, -31, -1, 0, 1, 30, 200)]
    for i, day in enumerate(days):
        for service_type in (hotline, training):
            ServiceEventFactory(customer=customer, service_type=service_type, date=day, quantity=Decimal(i + 1) / 4)
    events = list(ServiceEvent.objects.order_by("pk"))
    expected = {e.pk: service_event_value(e) for e in events}

    with django_assert_num_queries(1):
        valued = {e.pk: e.value for e in service_event_value(ServiceEvent.objects.order_by("pk"))}
    assert valued == expected

    frame = pd.DataFrame.from_records(
        ServiceEvent.objects.order_by("pk").values("pk", "service_type_id", "date", "quantity")
    )
    with django_assert_num_queries(1):
        valued_frame = service_event_value(frame)
    for pk, value in zip(valued_frame["pk"], valued_frame["value"], strict=False):
        assert value == pytest.approx(float(expected[pk]), abs=1e-9)

    # The history as a CASE (the nightly run's grouped sums): the same cost on every day, none
    # before the first entry.
    ServiceEventFactory(customer=customer, service_type=hotline, date=dt.date(1999, 1, 1), quantity=Decimal("3"))
    expected_unit = {e.pk: standard_cost_on(service_type_id=e.service_type_id, day=e.date)
                     for e in ServiceEvent.objects.all()}
    with django_assert_num_queries(2):  # the history, then the events
        unit = dict(ServiceEvent.objects.annotate(unit=CostHistory.load().unit_cost_expression()).values_list("pk", "unit"))
    assert unit == expected_unit and Decimal("0.00") in unit.values()


def test_standard_cost_before_any_entry_is_zero():
    hotline = ServiceType.objects.get(code="hotline")
    assert standard_cost_on(service_type_id=hotline.pk, day=dt.date(1999, 1, 1)) == Decimal("0.00")
