"""Valuation results made by hand, for the dashboard tests (no engine run needed)."""

import datetime as dt
from decimal import Decimal

import factory
from django.utils import timezone

from tests.factories import CustomerFactory
from valuation.models import CustomerValue, Segment, ValuationChunk, ValuationRun


class CompletedRunFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ValuationRun

    as_of = dt.date(2026, 1, 31)
    status = ValuationRun.Status.COMPLETED
    trigger = ValuationRun.Trigger.NIGHTLY
    stage = "done"
    finished_at = factory.LazyFunction(timezone.now)
    settings = factory.LazyFunction(lambda: {"classic_value": "clv", "horizon_months": 36, "window_months": 12})
    thresholds = factory.LazyFunction(
        lambda: {"classic_threshold": 1000.0, "value_to_threshold": 200.0, "abc_a_min_margin": 5000.0,
                 "abc_b_min_margin": 1000.0}
    )
    parameters = factory.LazyFunction(
        lambda: {"bgnbd": {"r": 0.24, "alpha": 4.41, "a": 0.79, "b": 2.43, "log_likelihood": -9582.4},
                 "gamma_gamma": {"p": 6.25, "q": 3.74, "v": 15.44}}
    )
    backtest = factory.LazyFunction(
        lambda: {"holdout_weeks": 26, "customers": 100, "expected_repeat_purchases": 180.5,
                 "actual_repeat_purchases": 171.0, "mae_per_customer": 0.81, "naive_mae_per_customer": 1.12}
    )
    company = factory.LazyFunction(
        lambda: {"earned_growth": [
            {"period_start": "2024-02-01", "period_end": "2025-01-31", "revenue": 900000.0, "prior_revenue": 850000.0,
             "retained_revenue": 800000.0, "referred_new_revenue": 20000.0, "nrr": 0.94, "enc": 0.02,
             "earned_growth_rate": 0.96},
            {"period_start": "2025-02-01", "period_end": "2026-01-31", "revenue": 1000000.0, "prior_revenue": 900000.0,
             "retained_revenue": 870000.0, "referred_new_revenue": 40000.0, "nrr": 0.97, "enc": 0.04,
             "earned_growth_rate": 1.01},
        ]}
    )
    customer_count = 0
    rows_written = 0


class RunningRunFactory(CompletedRunFactory):
    status = ValuationRun.Status.RUNNING
    stage = "scoring"
    finished_at = None
    trigger = ValuationRun.Trigger.MANUAL


class ChunkFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ValuationChunk

    run = factory.SubFactory(RunningRunFactory)
    first_customer_id = factory.Sequence(lambda n: n * 1000 + 1)
    last_customer_id = factory.LazyAttribute(lambda o: o.first_customer_id + 999)
    status = ValuationChunk.Status.PENDING


class CustomerValueFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CustomerValue

    run = factory.SubFactory(CompletedRunFactory)
    customer = factory.SubFactory(CustomerFactory)
    revenue_lifetime = Decimal("30000.00")
    margin_lifetime = Decimal("9000.00")
    revenue_window = Decimal("10000.00")
    margin_window = Decimal("3000.00")
    value_to_customer = Decimal("500.00")
    profit_after_services = factory.LazyAttribute(lambda o: o.margin_window - o.value_to_customer)
    abc_class = "B"
    p_alive = 0.9
    expected_purchases = 4.0
    clv = Decimal("8000.00")
    clv_low = factory.LazyAttribute(lambda o: o.clv * Decimal("0.6"))
    clv_high = factory.LazyAttribute(lambda o: o.clv * Decimal("1.4"))
    segment = Segment.INVESTMENT
