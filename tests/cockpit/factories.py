import datetime as dt
from decimal import Decimal

import factory
from django.utils import timezone

from tests.factories import CustomerFactory
from valuation.models import CustomerValue, Segment, ValuationRun

RUN_SETTINGS = {"window_months": 12, "horizon_months": 36, "interval_low": 0.1, "interval_high": 0.9}


class ValuationRunFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ValuationRun

    as_of = factory.LazyFunction(timezone.localdate)
    status = ValuationRun.Status.COMPLETED
    trigger = ValuationRun.Trigger.COMMAND
    finished_at = factory.LazyFunction(timezone.now)
    settings = factory.LazyFunction(lambda: dict(RUN_SETTINGS))


class CustomerValueFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CustomerValue

    run = factory.SubFactory(ValuationRunFactory)
    customer = factory.SubFactory(CustomerFactory)
    revenue_lifetime = Decimal("98765.43")
    margin_lifetime = Decimal("24680.12")
    revenue_window = Decimal("45678.91")
    margin_window = Decimal("13579.24")
    profit_after_services = Decimal("11111.11")
    abc_class = "A"
    purchase_days = 14
    p_alive = 0.87
    expected_purchases = 6.4
    clv = Decimal("37373.37")
    clv_low = Decimal("21212.21")
    clv_high = Decimal("52525.25")
    is_thin = False
    value_to_customer = Decimal("2468.13")
    service_count = 9
    service_hours = Decimal("12.50")
    value_to_by_type = factory.LazyFunction(lambda: {"hotline": 812.5, "training": 1655.63})
    segment = Segment.INVESTMENT


def days_ago(days: int) -> dt.date:
    return timezone.localdate() - dt.timedelta(days=days)
