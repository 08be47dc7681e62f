"""Earned growth (Reichheld) and referral value, hand-worked."""

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from valuation.engine import earned_growth, referral_value


@pytest.fixture
def customers() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": [1, 2, 3, 4, 5],
            "referred_by": [None, 1, 1, None, None],
            "acquisition_date": [dt.date(2023, 1, 5), dt.date(2024, 2, 1), dt.date(2025, 3, 1), None, None],
        }
    )


@pytest.fixture
def transactions() -> pd.DataFrame:
    return pd.DataFrame(
        [
            (1, "2023-03-01", 100.0), (5, "2023-12-31", 50.0),
            (1, "2024-05-01", 200.0), (2, "2024-02-01", 100.0),
            (1, "2025-01-01", 150.0), (2, "2025-06-01", 60.0), (3, "2025-03-01", 40.0),
            (4, "2025-04-01", 30.0),  # new, not referred: bought growth
            (5, "2025-12-31", 20.0),  # back after a gap: neither retained nor earned
        ],
        columns=["customer_id", "date", "revenue"],
    )


def test_earned_growth_by_year(transactions, customers):
    growth = earned_growth(transactions, customers, freq="YE")
    assert growth["period_end"].tolist() == [pd.Timestamp("2024-12-31"), pd.Timestamp("2025-12-31")]
    y2024, y2025 = growth.to_dict("records")
    assert y2024["period_start"] == pd.Timestamp("2024-01-01")
    assert (y2024["revenue"], y2024["prior_revenue"], y2024["retained_revenue"]) == (300, 150, 200)
    assert y2024["referred_new_revenue"] == 100
    assert y2024["earned_growth_rate"] == pytest.approx(200 / 150 + 100 / 150 - 1)
    assert (y2025["revenue"], y2025["retained_revenue"], y2025["referred_new_revenue"]) == (300, 210, 40)
    assert y2025["nrr"] == pytest.approx(0.7)
    assert y2025["enc"] == pytest.approx(40 / 300)
    assert y2025["earned_growth_rate"] == pytest.approx(0.7 + 40 / 300 - 1)


def test_explicit_period_ends(transactions, customers):
    ends = [dt.date(2023, 12, 31), dt.date(2024, 12, 31), dt.date(2025, 12, 31)]
    growth = earned_growth(transactions, customers, period_end_dates=ends)
    by_year = earned_growth(transactions, customers).iloc[1:].reset_index(drop=True)
    pd.testing.assert_frame_equal(growth, by_year)


def test_no_prior_revenue_gives_undefined_rates(customers):
    tx = pd.DataFrame({"customer_id": [1], "date": ["2025-02-01"], "revenue": [10.0]})
    growth = earned_growth(tx, customers, period_end_dates=["2024-12-31", "2025-01-31", "2025-02-28"])
    assert len(growth) == 1 and np.isnan(growth.loc[0, "nrr"])


def test_referral_value_sums_direct_referrals():
    customers = pd.DataFrame({"customer_id": [1, 2, 3, 4, 5], "referred_by": [None, 1, 1, 2, 5]})
    values = pd.Series([10.0, 20.0, 30.0, 40.0, 50.0], index=[1, 2, 3, 4, 5])
    result = referral_value(customers, values)
    # 1 referred 2 and 3; 2 referred 4 (no chain to 1); 5 referred itself (ignored).
    assert result.to_dict() == {1: 50.0, 2: 40.0, 3: 0.0, 4: 0.0, 5: 0.0}
