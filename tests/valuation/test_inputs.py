"""The SQL aggregation the nightly run uses must give exactly what the pure engine computes
from raw rows (the engine's definitions are the contract)."""

import datetime as dt
from decimal import Decimal

import pandas as pd
import pytest

from services.models import ServiceEvent, ServiceType, StandardCost
from services.selectors import service_event_value
from tests.factories import CustomerFactory, ServiceEventFactory, TransactionFactory
from valuation import selectors
from valuation.engine.settings import EngineSettings
from valuation.engine.summary import summarise_services, summarise_transactions

pytestmark = pytest.mark.django_db

AS_OF = dt.date(2026, 6, 30)
SETTINGS = EngineSettings(window_months=12)


@pytest.fixture
def history():
    """Three customers: several lines on one day, a purchase exactly on the window start
    (outside), negative margins, one customer without purchases, one lost."""
    a, b, c = CustomerFactory(), CustomerFactory(), CustomerFactory(status="lost", lost_on=dt.date(2026, 1, 31))
    CustomerFactory()  # never bought
    rows = [
        (a, "2024-01-10", "100.00", "60.00"), (a, "2024-01-10", "50.50", "20.25"),
        (a, "2025-06-30", "300.00", "100.00"),  # window start day: outside the window
        (a, "2025-07-01", "200.00", "210.00"), (a, "2026-06-30", "80.00", "40.00"),
        (a, "2026-07-01", "999.00", "0.00"),  # after as-of: ignored
        (b, "2026-03-03", "1000.00", "700.00"),
        (c, "2023-02-01", "10.00", "1.00"), (c, "2023-02-15", "20.00", "2.00"), (c, "2023-02-15", "5.00", "0.50"),
    ]
    for customer, day, revenue, cost in rows:
        TransactionFactory(customer=customer, date=dt.date.fromisoformat(day), revenue=Decimal(revenue),
                           cost_of_goods=Decimal(cost))
    return [a, b, c]


def test_sql_summary_equals_engine_summary(history):
    aggregates = selectors.transaction_summary(as_of=AS_OF, window_months=12)
    ids = sorted(aggregates["customer_id"])
    from_sql = selectors.engine_summary(aggregates, customer_ids=ids, as_of=AS_OF)

    raw = selectors.transactions_frame(until=dt.date(2030, 1, 1))
    from_engine = summarise_transactions(raw, AS_OF, SETTINGS).loc[ids]

    pd.testing.assert_frame_equal(
        from_sql[from_engine.columns], from_engine, check_dtype=False, check_index_type=False, atol=1e-9
    )
    a = from_sql.loc[history[0].pk]
    assert a["purchase_days"] == 4 and a["frequency"] == 3
    assert a["revenue_window"] == pytest.approx(280.00)  # 2025-06-30 lies outside the window
    assert a["margin_window"] == pytest.approx(-10 + 40)
    assert a["mean_repeat_margin"] == pytest.approx((200 + -10 + 40) / 3)
    assert a["age_weeks"] == pytest.approx((AS_OF - dt.date(2024, 1, 10)).days / 7)


def test_customers_without_purchases_get_zero_rows(history):
    customers = selectors.customer_frame(as_of=AS_OF)
    aggregates = selectors.transaction_summary(as_of=AS_OF, window_months=12)
    summary = selectors.engine_summary(aggregates, customer_ids=customers["customer_id"], as_of=AS_OF)
    assert len(summary) == 4
    never = summary.loc[customers["customer_id"].iloc[-1]]
    assert never["purchase_days"] == 0 and never["revenue_lifetime"] == 0
    numbers = summary.drop(columns=["first_purchase", "last_purchase"])
    assert not numbers.isna().any().any()
    active = customers.set_index("customer_id")["active"]
    assert not active[history[2].pk] and active[history[0].pk]


def test_service_value_in_sql_matches_events_valued_one_by_one():
    hotline = ServiceType.objects.get(code="hotline")
    training = ServiceType.objects.get(code="training")
    StandardCost.objects.create(service_type=hotline, valid_from=dt.date(2026, 1, 1), cost_per_unit=Decimal("80"))
    customer = CustomerFactory()
    for day, service_type, quantity in [
        ("2025-06-30", hotline, "3"),  # outside the window
        ("2025-12-31", hotline, "1.5"), ("2026-01-01", hotline, "0.25"), ("2026-05-05", training, "2"),
    ]:
        ServiceEventFactory(customer=customer, service_type=service_type, date=dt.date.fromisoformat(day),
                            quantity=Decimal(quantity))
    by_type = selectors.service_cost_by_type(as_of=AS_OF, window_months=12)
    totals = selectors.service_totals(by_type)

    events = pd.DataFrame(
        [
            {"customer_id": e.customer_id, "date": e.date, "service_type": e.service_type.code,
             "quantity": float(e.quantity), "unit": e.service_type.unit, "cost": float(service_event_value(e))}
            for e in ServiceEvent.objects.select_related("service_type")
        ]
    )
    engine_totals, _ = summarise_services(events, AS_OF, SETTINGS)
    assert totals.loc[customer.pk, "value_to_customer"] == pytest.approx(engine_totals.loc[customer.pk, "value_to_customer"])
    hotline_cost = float(StandardCost.objects.get(service_type=hotline, valid_from=dt.date(2000, 1, 1)).cost_per_unit)
    training_cost = float(StandardCost.objects.get(service_type=training).cost_per_unit)
    assert totals.loc[customer.pk, "value_to_customer"] == pytest.approx(1.5 * hotline_cost + 0.25 * 80 + 2 * training_cost)
    assert totals.loc[customer.pk, "service_count"] == 3
    # Hours across units: 1.75 hotline hours plus 2 training days of 8 hours (the default).
    assert totals.loc[customer.pk, "service_hours"] == pytest.approx(1.75 + 2 * 8)
    assert engine_totals.loc[customer.pk, "service_hours"] == pytest.approx(1.75 + 2 * 8)


def test_customer_id_ranges_cover_every_customer_once():
    customers = [CustomerFactory() for _ in range(7)]
    ranges = selectors.customer_id_ranges(chunk_size=3)
    assert len(ranges) == 3
    covered = [c.pk for c in customers if any(lo <= c.pk <= hi for lo, hi in ranges)]
    assert covered == [c.pk for c in customers]
    assert all(ranges[i][1] < ranges[i + 1][0] for i in range(len(ranges) - 1))
