"""CLV, P(alive) and the predictive interval of value_customers: edge cases, chunking,
discounting, coverage."""

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from valuation.engine import (
    FALLBACK_OWN_SPEND,
    WEEKS_PER_MONTH,
    BgNbdParams,
    EngineSettings,
    GammaGammaParams,
    ValuationModels,
    bgnbd_expected_purchases,
    fit_valuation_models,
    summarise_transactions,
    value_customers,
)
from valuation.engine.fit_quality import gate
from valuation.engine.forecast import GRID_STEP, simulation_mean
from valuation.engine.simulate import simulate_customers

BG = BgNbdParams(r=0.8, alpha=6.0, a=0.7, b=3.0)
GG = GammaGammaParams(p=6.0, q=4.0, v=50.0)
FIT = ValuationModels(model="bgnbd", purchase=BG, gamma_gamma=GG, bgnbd=BG, population_margin=GG.population_mean,
                      fit_quality=gate([], []))


def scores(summary: pd.DataFrame, models: ValuationModels, settings: EngineSettings | None = None):
    """The numbers of value_customers (without the basis label)."""
    return value_customers(summary, models, settings).drop(columns="basis")


def fit_with_bgnbd(summary: pd.DataFrame, settings: EngineSettings | None = None) -> ValuationModels:
    return fit_valuation_models(summary, settings, model="bgnbd")


def as_summary(sim: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "purchase_days": sim["frequency"].to_numpy() + 1,
            "recency_weeks": sim["recency"].to_numpy(),
            "age_weeks": sim["T"].to_numpy(),
            "mean_repeat_margin": sim["mean_repeat_margin"].to_numpy(),
        },
        index=pd.Index(np.arange(len(sim)) + 1, name="customer_id"),
    )


@pytest.fixture(scope="module")
def population():
    T = np.random.default_rng(3).integers(1, 500, 3000) / 7.0
    summary = as_summary(simulate_customers(3000, BG, T, gamma_gamma=GG, seed=5))
    return summary, fit_with_bgnbd(summary, EngineSettings())


def test_scores_are_finite_and_ordered(population):
    summary, fit = population
    scored = scores(summary, fit, EngineSettings())
    assert list(scored.index) == list(summary.index)
    assert np.isfinite(scored.drop(columns="is_thin").to_numpy()).all()
    assert ((scored["p_alive"] >= 0) & (scored["p_alive"] <= 1)).all()
    assert (scored["clv_low"] <= scored["clv_high"]).all()
    assert (scored["clv"] >= 0).all()
    assert (scored["discounted_purchases"] < scored["expected_purchases"]).all()


def test_chunks_score_like_the_whole(population):
    summary, fit = population
    settings = EngineSettings()
    whole = scores(summary, fit, settings)
    # Chunks by id range, as the nightly run does, and a scattered chunk.
    parts = [scores(summary.loc[lo:hi], fit, settings) for lo, hi in ((1, 1000), (1001, 3000))]
    pd.testing.assert_frame_equal(pd.concat(parts), whole)
    scattered = summary.iloc[::7]
    pd.testing.assert_frame_equal(scores(scattered, fit, settings), whole.iloc[::7])


def test_deterministic_for_a_seed(population):
    summary, fit = population
    a = scores(summary, fit, EngineSettings(random_seed=4))
    b = scores(summary, fit, EngineSettings(random_seed=4))
    c = scores(summary, fit, EngineSettings(random_seed=5))
    pd.testing.assert_frame_equal(a, b)
    assert not np.allclose(a["clv_high"], c["clv_high"])
    pd.testing.assert_series_equal(a["clv"], c["clv"])  # the point value uses no random numbers


def test_ranges_on_threads_equal_ranges_on_one(population, monkeypatch):
    """The ranges' groups run on several threads: the same numbers as one after the other."""
    from valuation.engine import forecast

    summary, fit = population
    assert summary["purchase_days"].nunique() > 10  # many groups to share out
    monkeypatch.setattr(forecast, "RANGE_THREADS", 1)
    alone = scores(summary, fit, EngineSettings())
    monkeypatch.setattr(forecast, "RANGE_THREADS", 3)
    pd.testing.assert_frame_equal(scores(summary, fit, EngineSettings()), alone)


def edge_summary() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "purchase_days": [1, 0, 4, 4, 4, 20],
            "recency_weeks": [0.0, 0.0, 20.0, 20.0, 20.0, 49.0],
            "age_weeks": [30.0, 0.0, 40.0, 40.0, 40.0, 50.0],
            "mean_repeat_margin": [0.0, 0.0, 25.0, 0.0, -30.0, 60.0],
        },
        index=pd.Index(["one", "none", "good", "zero", "negative", "loyal"], name="customer_id"),
    )


def test_edge_customers():
    fit = FIT
    scored = scores(edge_summary(), fit, EngineSettings())
    assert np.isfinite(scored.drop(columns="is_thin").to_numpy()).all()

    one = scored.loc["one"]
    assert one["p_alive"] == 1.0  # no repeat purchase: the model cannot see a drop-out
    assert one["expected_margin_per_purchase"] == pytest.approx(GG.population_mean)
    assert one["clv"] > 0 and one["is_thin"]

    none = scored.loc["none"]
    assert (none[["p_alive", "expected_purchases", "clv", "clv_low", "clv_high"]] == 0).all()
    assert none["is_thin"]

    for name in ("zero", "negative"):
        row = scored.loc[name]
        assert row["expected_margin_per_purchase"] == 0
        assert row["clv"] == row["clv_low"] == row["clv_high"] == 0
        assert row["expected_purchases"] == scored.loc["good", "expected_purchases"]

    assert scored.loc["good", "clv"] > 0 and not scored.loc["good", "is_thin"]
    assert scored.loc["loyal", "clv_low"] > 0
    assert scored.loc["loyal", "clv"] > scored.loc["good", "clv"]


def test_all_purchases_on_one_day():
    rows = pd.DataFrame(
        {
            "customer_id": [7, 7, 7],
            "date": [dt.date(2025, 3, 4)] * 3,
            "revenue": [100.0, 50.0, 20.0],
            "cost": [60.0, 30.0, 10.0],
        }
    )
    summary = summarise_transactions(rows, dt.date(2025, 12, 31))
    assert summary.loc[7, "purchase_days"] == 1 and summary.loc[7, "frequency"] == 0
    scored = scores(summary, FIT, EngineSettings())
    assert scored.loc[7, "p_alive"] == 1.0
    assert np.isfinite(scored.drop(columns="is_thin").to_numpy()).all()


def test_without_spend_model_margin_is_the_customers_own():
    """The spend fallback: each customer's own mean margin per purchase day, fixed."""
    fit = ValuationModels(model="bgnbd", purchase=BG, gamma_gamma=None, bgnbd=BG, population_margin=40.0,
                          fit_quality={"ok": False, "problems": [], "fallback": FALLBACK_OWN_SPEND})
    summary = edge_summary().assign(mean_purchase_margin=[40.0, 0.0, 25.0, 10.0, 0.0, 60.0])
    scored = scores(summary, fit, EngineSettings())
    assert scored.loc["one", "expected_margin_per_purchase"] == 40.0
    assert scored.loc["good", "expected_margin_per_purchase"] == 25.0
    assert scored.loc["zero", "expected_margin_per_purchase"] == 0.0  # repeat purchases without margin
    assert np.isfinite(scored.drop(columns="is_thin").to_numpy()).all()


def test_without_any_buyer():
    summary = pd.DataFrame({"purchase_days": [0, 0], "recency_weeks": [0.0, 0.0], "age_weeks": [0.0, 0.0],
                            "mean_repeat_margin": [0.0, 0.0]})
    fit = fit_with_bgnbd(summary)
    assert fit.purchase is None and fit.bgnbd is None and fit.gamma_gamma is None
    scored = value_customers(summary, fit)
    assert (scored["basis"] == "no_purchase").all()
    assert (scored.drop(columns=["is_thin", "basis"]).to_numpy() == 0).all()


def test_discounted_purchases_follow_month_ends():
    settings = EngineSettings(horizon_months=24, annual_discount_rate=0.10)
    summary = edge_summary().loc[["good"]]
    scored = scores(summary, FIT, settings)
    month_ends = np.arange(25) * WEEKS_PER_MONTH
    cumulative = bgnbd_expected_purchases(BG, month_ends, 3, 20.0, 40.0)
    factors = 1.1 ** (-np.arange(1, 25) / 12)
    # Monthly G is interpolated between every third month (forecast.purchases_if_alive):
    # far below 0.1 % off the month-by-month sum.
    assert scored.loc["good", "discounted_purchases"] == pytest.approx(np.diff(cumulative) @ factors, rel=1e-3)
    assert scored.loc["good", "expected_purchases"] == pytest.approx(cumulative[-1])
    assert scored.loc["good", "clv"] == pytest.approx(
        np.diff(cumulative) @ factors * scored.loc["good", "expected_margin_per_purchase"], rel=1e-3
    )


def test_simulation_mean_matches_closed_form():
    settings = EngineSettings(simulation_draws=20_000, horizon_months=24)
    T = BG.alpha * (np.exp(8 * GRID_STEP) - 1)  # exactly on a grid point
    summary = pd.DataFrame(
        {"purchase_days": [4], "recency_weeks": [T], "age_weeks": [T], "mean_repeat_margin": [30.0]}
    )
    scored = scores(summary, FIT, settings)
    # Alive for sure (last purchase today is not quite that; divide P(alive) out).
    mean_w = simulation_mean(BG, GG, 3, T, settings)
    simulated = scored.loc[0, "p_alive"] * (GG.v + 3 * 30.0) * mean_w
    assert simulated == pytest.approx(scored.loc[0, "clv"], rel=0.03)


def test_interval_covers_simulated_future():
    """10,000 customers simulated from known models, scored at the end of their calibration
    period; the discounted margin of the next 12 months is compared with [clv_low, clv_high].

    The predictive distribution has an atom at 0 (gone, or no purchase), so the 80 % interval
    covers more than 80 % overall; where the atom is below 10 % (clv_low > 0, about a third of
    the customers here) the coverage is the nominal 80 %, and the share above clv_high never
    exceeds 10 %.
    """
    truth_bg = BgNbdParams(r=2.0, alpha=8.0, a=0.6, b=8.0)
    settings = EngineSettings(horizon_months=12)
    T = np.random.default_rng(1).uniform(30, 80, 10_000)
    sim = simulate_customers(
        10_000, truth_bg, T, holdout_weeks=settings.horizon_weeks, gamma_gamma=GG,
        monthly_discount_factor=settings.monthly_discount_factor, seed=1,
    )
    summary = as_summary(sim)
    scored = scores(summary, fit_with_bgnbd(summary, settings), settings)
    actual = sim["holdout_margin_discounted"].to_numpy()
    inside = (actual >= scored["clv_low"].to_numpy()) & (actual <= scored["clv_high"].to_numpy())
    no_atom = scored["clv_low"].to_numpy() > 0
    assert no_atom.sum() > 3000
    assert 0.75 <= inside[no_atom].mean() <= 0.85
    assert 0.80 <= inside.mean() <= 0.95
    assert 0.07 <= (actual > scored["clv_high"].to_numpy()).mean() <= 0.11
    assert (actual < scored["clv_low"].to_numpy()).mean() <= 0.11
    assert scored["clv"].sum() == pytest.approx(actual.sum(), rel=0.05)
