"""Input rules of the summary: returns, zero-value rows, timestamps and capping, by hand."""

import datetime as dt
import math

import numpy as np
import pandas as pd
import pytest

from valuation.engine import summarise_transactions
from valuation.engine.summary import population_fence

AS_OF = dt.date(2025, 12, 31)


def rows(data):
    return pd.DataFrame(data, columns=["customer_id", "date", "revenue", "cost"])


@pytest.fixture
def with_returns() -> pd.DataFrame:
    return rows(
        [
            (1, "2025-01-01 10:30", 100.0, 60.0),  # margin 40
            (1, "2025-01-01 16:00", -20.0, -12.0),  # return on a purchase day: margin -8
            (1, "2025-02-01 09:00", 0.0, 5.0),  # zero revenue: no purchase, margin -5
            (1, "2025-03-01", -50.0, -30.0),  # credit note on its own day: margin -20
            (1, "2025-04-01", 200.0, 120.0),  # margin 80
            (1, "2025-05-01", 100.0, 40.0),  # margin 60
            (2, "2025-06-01", -10.0, -6.0),  # only a credit note: no purchase day
        ]
    )


def test_returns_and_zero_rows_by_hand(with_returns):
    summary = summarise_transactions(with_returns, AS_OF, input_rule_columns=True)
    one = summary.loc[1]
    assert one["purchase_days"] == 3 and one["frequency"] == 2
    assert one["first_purchase"] == pd.Timestamp("2025-01-01")
    assert one["last_purchase"] == pd.Timestamp("2025-05-01")
    assert one["recency_weeks"] == pytest.approx(120 / 7)
    assert one["age_weeks"] == pytest.approx(364 / 7)
    # kept share f = (40 - 8 - 5 - 20 + 80 + 60) / (40 + 80 + 60) = 147 / 180
    f = 147 / 180
    assert one["mean_repeat_margin"] == pytest.approx(f * (80 + 60) / 2)
    assert one["mean_purchase_margin"] == pytest.approx(f * 180 / 3)
    assert one["revenue_lifetime"] == pytest.approx(330.0)
    assert one["margin_lifetime"] == pytest.approx(147.0)
    assert one["returned_revenue"] == pytest.approx(70.0)
    assert one["capped_purchase_days"] == 0

    two = summary.loc[2]
    assert two["purchase_days"] == 0 and two["frequency"] == 0
    assert pd.isna(two["first_purchase"])
    assert (two["recency_weeks"], two["age_weeks"], two["mean_repeat_margin"]) == (0, 0, 0)
    assert two["margin_lifetime"] == pytest.approx(-4.0)


def test_returns_do_not_change_purchase_counts(with_returns):
    without = with_returns[with_returns["revenue"] > 0]
    a = summarise_transactions(with_returns, AS_OF, input_rule_columns=True).loc[[1]]
    b = summarise_transactions(without, AS_OF)
    columns = ["purchase_days", "frequency", "recency_weeks", "age_weeks", "first_purchase", "last_purchase"]
    pd.testing.assert_frame_equal(a[columns], b[columns])


def test_more_returned_than_bought_leaves_no_spend():
    summary = summarise_transactions(
        rows([(1, "2025-01-01", 100.0, 50.0), (1, "2025-02-01", 100.0, 50.0), (1, "2025-03-01", -300.0, -150.0)]),
        AS_OF,
    )
    assert summary.loc[1, "frequency"] == 1
    assert summary.loc[1, "mean_repeat_margin"] == 0.0  # f clipped to 0
    assert summary.loc[1, "margin_lifetime"] == pytest.approx(-50.0)


def capping_population() -> pd.DataFrame:
    data = []
    for c in range(1, 21):  # 20 customers, one purchase day of margin 100
        data.append((c, "2025-01-10", 100.0, 0.0))
    for c in range(21, 41):  # 20 customers, one purchase day of margin 400
        data.append((c, "2025-01-10", 400.0, 0.0))
    data += [(41, "2025-02-01", 100.0, 0.0), (41, "2025-03-01", 1e9, 0.0)]  # a typo
    data += [(42, "2025-02-01", 30_000.0, 0.0), (42, "2025-03-01", 30_000.0, 0.0), (42, "2025-04-01", 30_000.0, 0.0)]
    return rows(data)


def test_population_fence_by_hand():
    # 45 days: 21 x 100, 20 x 400, 3 x 30,000, 1 x 1e9. Sorted logs: Q1 at index 11 (100),
    # Q3 at index 33 (400); fence = exp(log 400 + 3 (log 400 - log 100)) = 400 * 4^3 = 25,600.
    margins = np.r_[np.full(21, 100.0), np.full(20, 400.0), np.full(3, 30_000.0), 1e9]
    assert population_fence(margins) == pytest.approx(25_600.0)
    assert population_fence(np.full(19, 100.0)) == math.inf  # too few days for a range


def test_far_outliers_capped_and_flagged_never_dropped():
    summary = summarise_transactions(capping_population(), AS_OF, input_rule_columns=True)
    typo = summary.loc[41]
    assert typo["purchase_days"] == 2 and typo["capped_purchase_days"] == 1
    assert typo["mean_repeat_margin"] == pytest.approx(25_600.0)
    assert typo["mean_purchase_margin"] == pytest.approx((100.0 + 25_600.0) / 2)
    assert typo["margin_lifetime"] == pytest.approx(1e9 + 100.0)  # history is what happened
    # Every order of this customer is large: within its own range (10 x median 30,000).
    big = summary.loc[42]
    assert big["capped_purchase_days"] == 0 and big["mean_repeat_margin"] == pytest.approx(30_000.0)
    assert summary["capped_purchase_days"].sum() == 1
