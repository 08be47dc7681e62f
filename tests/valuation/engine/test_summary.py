"""Per-customer summary and services, checked against hand-worked figures."""

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from valuation.engine import EngineSettings, summarise_services, summarise_transactions, window_start

AS_OF = dt.date(2026, 6, 30)  # window: 2025-06-30 < date <= 2026-06-30


@pytest.fixture
def transactions() -> pd.DataFrame:
    return pd.DataFrame(
        [
            (1, "2024-01-10", 100.00, 60.00),
            (1, "2024-01-10", 50.50, 20.25),  # same day: one purchase day, margin 70.25
            (1, "2025-06-30", 200.00, 150.00),  # on the window start: outside the window
            (1, "2026-03-01", 80.00, np.nan),  # cost unknown counts as 0
            (1, "2026-07-01", 999.00, 0.00),  # after as_of: ignored
            (2, "2026-06-30", 10.00, 12.00),  # on as_of: inside, negative margin
            (3, "2026-07-02", 5.00, 1.00),  # only after as_of: no row
        ],
        columns=["customer_id", "date", "revenue", "cost"],
    )


def test_hand_worked_summary(transactions):
    summary = summarise_transactions(transactions, AS_OF, EngineSettings())
    assert list(summary.index) == [1, 2]
    one = summary.loc[1]
    assert one["first_purchase"] == pd.Timestamp("2024-01-10")
    assert one["last_purchase"] == pd.Timestamp("2026-03-01")
    assert one["purchase_days"] == 3 and one["frequency"] == 2
    assert one["recency_weeks"] == pytest.approx(781 / 7)  # 2024-01-10 .. 2026-03-01
    assert one["age_weeks"] == pytest.approx(902 / 7)  # 2024-01-10 .. 2026-06-30
    assert one["mean_repeat_margin"] == pytest.approx((50.0 + 80.0) / 2)
    assert one["revenue_lifetime"] == pytest.approx(430.5)
    assert one["margin_lifetime"] == pytest.approx(200.25)
    assert one["revenue_window"] == pytest.approx(80.0)
    assert one["margin_window"] == pytest.approx(80.0)

    two = summary.loc[2]
    assert (two["purchase_days"], two["frequency"]) == (1, 0)
    assert (two["recency_weeks"], two["age_weeks"], two["mean_repeat_margin"]) == (0, 0, 0)
    assert two["margin_window"] == pytest.approx(-2.0)


@pytest.mark.parametrize("numbers", [{1: 10**12, 2: 5, 3: 7}, {1: "C-1", 2: "B-2", 3: "A-3"}])
def test_customer_numbers_far_apart_or_as_text_give_each_customer_the_same_figures(transactions, numbers):
    """Small integer ids are numbered by counting, others by sorting: the figures are the same."""
    base = summarise_transactions(transactions, AS_OF, EngineSettings(), input_rule_columns=True)
    renamed = summarise_transactions(
        transactions.assign(customer_id=transactions["customer_id"].map(numbers)), AS_OF, EngineSettings(),
        input_rule_columns=True,
    )
    assert list(renamed.index) == sorted(numbers[c] for c in base.index)
    back = {v: k for k, v in numbers.items()}
    renamed.index = pd.Index([back[c] for c in renamed.index], name="customer_id")
    pd.testing.assert_frame_equal(renamed.sort_index(), base, check_index_type=False)


def test_dates_as_datetime64_and_missing_cost_column(transactions):
    frame = transactions.assign(date=pd.to_datetime(transactions["date"]))
    by_date = summarise_transactions(
        transactions.assign(date=[dt.date.fromisoformat(d) for d in transactions["date"]]), AS_OF
    )
    pd.testing.assert_frame_equal(summarise_transactions(frame, pd.Timestamp(AS_OF)), by_date)
    no_cost = summarise_transactions(frame.drop(columns="cost"), AS_OF)
    assert no_cost.loc[1, "margin_lifetime"] == pytest.approx(430.5)


def test_empty_transactions():
    empty = pd.DataFrame({"customer_id": [], "date": pd.to_datetime([]), "revenue": [], "cost": []})
    summary = summarise_transactions(empty, AS_OF)
    assert summary.empty


def test_window_start_clips_month_ends():
    assert window_start(dt.date(2024, 2, 29), EngineSettings()) == pd.Timestamp("2023-02-28")
    assert window_start(AS_OF, EngineSettings(window_months=6)) == pd.Timestamp("2025-12-30")


def test_services_in_window():
    services = pd.DataFrame(
        [
            (1, "2025-06-30", "hotline", 1, "occurrence", 5.0),  # window start: outside
            (1, "2026-01-05", "training", 2, "hour", 100.0),
            (1, "2026-02-01", "training", 1, "hour", 50.0),
            (1, "2026-03-01", "commissioning", 1, "day", 400.0),  # a day counts 8 hours (the default)
            (2, "2026-06-30", "hotline", 1, "occurrence", 5.0),
            (2, "2026-07-01", "hotline", 1, "occurrence", 5.0),  # after as_of
        ],
        columns=["customer_id", "date", "service_type", "quantity", "unit", "cost"],
    )
    totals, by_type = summarise_services(services, AS_OF, EngineSettings())
    assert totals.loc[1].tolist() == [550.0, 3, 11.0]
    assert summarise_services(services, AS_OF, EngineSettings(hours_per_day=7.5))[0].loc[1, "service_hours"] == 10.5
    assert totals.loc[2].tolist() == [5.0, 1, 0.0]
    assert by_type.to_dict("records") == [
        {"customer_id": 1, "service_type": "commissioning", "cost": 400.0, "count": 1, "quantity": 1.0},
        {"customer_id": 1, "service_type": "training", "cost": 150.0, "count": 2, "quantity": 3.0},
        {"customer_id": 2, "service_type": "hotline", "cost": 5.0, "count": 1, "quantity": 1.0},
    ]


def test_no_services():
    empty = pd.DataFrame(columns=["customer_id", "date", "service_type", "quantity", "unit", "cost"])
    totals, by_type = summarise_services(empty, AS_OF)
    assert totals.empty and by_type.empty
    assert list(totals.columns) == ["value_to_customer", "service_count", "service_hours"]
