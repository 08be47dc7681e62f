"""Whatever shape a company's history has, the engine answers with finite numbers."""

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from valuation.engine import PURCHASE_MODELS, EngineSettings, valuate, valuate_with_backtest

AS_OF = dt.date(2026, 6, 30)


@st.composite
def histories(draw):
    n_customers = draw(st.integers(min_value=1, max_value=40))
    style = draw(st.sampled_from(["regular", "random", "one_day", "single", "losses", "huge"]))
    seed = draw(st.integers(min_value=0, max_value=10_000))
    rng = np.random.default_rng(seed)
    rows = []
    for c in range(n_customers):
        if style == "single":
            k = 1
        elif style == "regular":
            k = 1 + c % 7
        else:
            k = int(rng.integers(1, 60))
        if style == "one_day":
            days = np.full(k, int(rng.integers(0, 900)))
        elif style == "regular":
            days = np.arange(k) * 37 + c
        else:
            days = rng.integers(0, 900, k)
        revenue = rng.gamma(2.0, 500.0, k) * (1e6 if style == "huge" else 1)
        cost = revenue * (rng.uniform(1.0, 1.5, k) if style == "losses" else rng.uniform(0.4, 0.9, k))
        for d, r, co in zip(days, revenue, cost, strict=False):
            rows.append((f"C{c}", pd.Timestamp("2024-01-01") + pd.Timedelta(days=int(d)), r, co))
    tx = pd.DataFrame(rows, columns=["customer_id", "date", "revenue", "cost"])
    ids = [f"C{c}" for c in range(n_customers)] + ["never"]
    customers = pd.DataFrame({"customer_id": ids, "active": True, "referred_by": None, "wallet": np.nan})
    return tx, customers


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories(), st.sampled_from(PURCHASE_MODELS))
def test_valuate_claims_only_finite_numbers_with_each_model(history, model):
    tx, customers = history
    services = pd.DataFrame(columns=["customer_id", "date", "service_type", "quantity", "unit", "cost"])
    result = valuate(tx, services, customers, AS_OF, EngineSettings(simulation_draws=50), model=model)
    assert result.fit.model == model
    assert_claims_only_finite_numbers(result)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories(), st.booleans())
def test_valuate_with_backtest_claims_only_finite_numbers(history, with_returns):
    tx, customers = history
    if with_returns:
        returns = tx.iloc[::3].assign(revenue=lambda f: -0.3 * f["revenue"], cost=lambda f: -0.3 * f["cost"])
        tx = pd.concat([tx, returns])
    services = pd.DataFrame(columns=["customer_id", "date", "service_type", "quantity", "unit", "cost"])
    result = valuate_with_backtest(tx, services, customers, AS_OF, EngineSettings(simulation_draws=50))
    assert_claims_only_finite_numbers(result)


def assert_claims_only_finite_numbers(result) -> None:
    frame = result.customers
    numbers = frame.select_dtypes("number").drop(columns=["share_of_supply"], errors="ignore")
    assert not np.isinf(numbers.to_numpy(dtype=float)).any()
    # NaN means "not claimed": only where the gate sent the customer to the fallback.
    unclaimed = numbers.isna().any(axis=1)
    assert (frame.loc[unclaimed, "basis"] == "trailing_margin_rate").all()
    quality = result.fit.fit_quality
    assert quality["ok"] == (not quality["problems"])
    if not quality["ok"]:
        assert all(p["code"] and p["message"] for p in quality["problems"])
    claimed = frame[frame["basis"] == "model"]
    assert (claimed["clv_low"] <= claimed["clv_high"] + 1e-9).all()
    assert ((claimed["p_alive"] >= 0) & (claimed["p_alive"] <= 1)).all()
    assert frame.loc["never", "clv"] == 0


def test_parameter_draws_of_a_nearly_flat_fit_stay_finite():
    """Six months of wholesaler invoices leave Pareto/NBD's drop-out on a flat ridge (s ~ 5e-5,
    beta ~ 66,000, variances in the hundreds on the log scale): the range draws stay inside the
    fit's own bounds instead of overflowing into infinite parameters."""
    import warnings

    from valuation.engine import ParetoNbdParams
    from valuation.engine.forecast import parameter_draws
    from valuation.engine.likelihood import LOG_BOUND

    flat = ParetoNbdParams(r=0.74, alpha=8.8, s=5e-5, beta=65_780.0,
                           covariance=tuple(map(tuple, np.diag([0.01, 0.01, 400.0, 400.0]).tolist())))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an overflow in exp() fails the test
        draws, _ = parameter_draws(flat, None, 2000, seed=1)
    assert np.isfinite(draws).all()
    assert (np.abs(np.log(draws)) <= LOG_BOUND + 1e-9).all()


def test_spend_draws_keep_a_large_money_scale():
    """v is money: a margin scale of 290,000 (yen, forint, a big B2B order) lies inside the
    spend fit's own range (log v up to 30), so its draws stay centred on it; only q - 1 keeps
    the fit's floor of e^-8."""
    from valuation.engine import BgNbdParams, GammaGammaParams
    from valuation.engine.forecast import parameter_draws

    spend = GammaGammaParams(p=2.0, q=30.0, v=290_000.0, covariance=tuple(map(tuple, (0.01 * np.eye(3)).tolist())))
    _, draws = parameter_draws(BgNbdParams(r=0.5, alpha=5.0, a=0.8, b=2.5), spend, 4000, seed=3)
    assert np.median(draws[:, 2]) == pytest.approx(290_000, rel=0.02)
    mean_spend = draws[:, 0] * draws[:, 2] / (draws[:, 1] - 1.0)
    assert np.median(mean_spend) == pytest.approx(2.0 * 290_000 / 29.0, rel=0.05)
