"""The whole valuation on simulated transactions, the backtest and settings storage."""

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from valuation.engine import (
    BgNbdParams,
    EngineSettings,
    GammaGammaParams,
    backtest,
    valuate,
)
from valuation.engine.simulate import simulate_transactions

BG = BgNbdParams(r=0.8, alpha=20.0, a=0.7, b=3.0)
GG = GammaGammaParams(p=6.0, q=4.0, v=50.0)
AS_OF = dt.date(2025, 12, 31)


@pytest.fixture(scope="module")
def transactions() -> pd.DataFrame:
    return simulate_transactions(400, BG, GG, dt.date(2023, 1, 1), AS_OF, seed=2)


def test_valuate_all_customers(transactions):
    customers = pd.DataFrame(
        {
            "customer_id": np.arange(1, 402),  # 401 has no transactions
            "active": [True] * 400 + [False],
            "referred_by": [None, 1, 1] + [None] * 398,
            "wallet": [1000.0] + [None] * 400,
        }
    )
    services = pd.DataFrame(
        {
            "customer_id": [1, 1, 2, 999],
            "date": [dt.date(2025, 6, 1), dt.date(2025, 7, 1), dt.date(2025, 8, 1), dt.date(2025, 8, 1)],
            "service_type": ["training", "hotline", "training", "training"],
            "quantity": [2.0, 1.0, 3.0, 1.0],
            "unit": ["hour", "occurrence", "hour", "hour"],
            "cost": [200.0, 10.0, 300.0, 100.0],
        }
    )
    result = valuate(transactions, services, customers, AS_OF, EngineSettings())
    frame = result.customers
    assert list(frame.index) == list(range(1, 402))
    assert result.fit.model == "bgnbd" and result.fit.fallback is None
    numeric = frame.drop(columns=["first_purchase", "last_purchase", "share_of_supply",
                                  "abc_class", "segment", "strategy", "is_thin", "active", "basis", "lost"])
    assert np.isfinite(numeric.to_numpy(dtype=float)).all()

    assert frame.loc[1, "value_to_customer"] == 210.0 and frame.loc[1, "service_hours"] == 2.0
    assert frame.loc[1, "profit_after_services"] == pytest.approx(frame.loc[1, "margin_window"] - 210.0)
    assert frame.loc[1, "share_of_supply"] == pytest.approx(frame.loc[1, "revenue_window"] / 1000.0)
    assert np.isnan(frame.loc[2, "share_of_supply"])
    # Incremental referral value: the referred customers' CLV, never their past margin.
    assert frame.loc[1, "referral_value"] == pytest.approx(frame.loc[[2, 3], "clv"].clip(lower=0).sum())
    assert frame.loc[1, "referral_value"] > 0

    none = frame.loc[401]
    assert none["purchase_days"] == 0 and none["clv"] == 0 and none["is_thin"] and none["basis"] == "lost"
    assert none["abc_class"] == "C" and none["segment"] == "uncritical"
    assert set(frame["segment"]) <= {"uncritical", "problem", "potential", "investment"}
    assert set(frame["abc_class"]) == {"A", "B", "C"}
    assert result.fit.bgnbd.converged
    assert set(result.by_type["customer_id"]) == {1, 2}


def test_backtest_beats_the_naive_rate(transactions):
    report = backtest(transactions, dt.date(2025, 6, 30), AS_OF, EngineSettings())
    assert report["holdout_weeks"] == pytest.approx(184 / 7)
    first_seen = transactions.groupby("customer_id")["date"].min()
    assert report["customers"] == int((first_seen <= pd.Timestamp("2025-06-30")).sum())
    assert report["mae_per_customer"] < report["naive_mae_per_customer"]
    assert report["expected_repeat_purchases"] == pytest.approx(report["actual_repeat_purchases"], rel=0.25)
    assert set(report["bgnbd"]) >= {"r", "alpha", "a", "b"}
    later = backtest(transactions, dt.date(2025, 6, 30), AS_OF, first_seen_from=dt.date(2024, 1, 1))
    assert later["customers"] == int(
        ((first_seen >= pd.Timestamp("2024-01-01")) & (first_seen <= pd.Timestamp("2025-06-30"))).sum()
    )


def test_settings_round_trip_and_validation():
    settings = EngineSettings(
        segment_policy="fixed", fixed_classic_threshold=1.0, fixed_value_to_threshold=2.0
    )
    assert EngineSettings.from_dict(settings.to_dict()) == settings
    assert EngineSettings.from_dict({"window_months": 6, "retired_option": 1}).window_months == 6
    with pytest.raises(ValueError):
        EngineSettings(segment_policy="fixed")
    with pytest.raises(ValueError):
        EngineSettings(classic_value="revenue")
    with pytest.raises(ValueError):
        EngineSettings(interval_low=0.9, interval_high=0.1)
