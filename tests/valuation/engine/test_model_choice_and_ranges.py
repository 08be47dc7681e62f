"""The back-test's tie rule (hand-worked) and the calibration of the 80 % range on customers
drawn from known BG/NBD + Gamma-Gamma parameters."""

import datetime as dt
import math

import numpy as np
import pandas as pd
import pytest

from valuation.engine import (
    BgNbdParams,
    EngineSettings,
    GammaGammaParams,
    ValuationModels,
    fit_chosen_model,
    fit_valuation_models,
    predict_holdout,
    summarise_transactions,
    valuate_with_backtest,
)
from valuation.engine.simulate import simulate_customers, simulate_transactions
from valuation.engine.value import backtest_holdout_weeks, choose_by_backtest, paired_difference, tied_models


def test_paired_difference_by_hand():
    best = np.zeros(4)
    # Differences 4, 0, 2, 2: mean 2, sd sqrt(8/3), SE sqrt(8/3)/2 = 0.8165 -> not a tie.
    clear = paired_difference(np.array([4.0, 0.0, 2.0, 2.0]), best)
    assert clear["mse_difference"] == pytest.approx(2.0)
    assert clear["standard_error"] == pytest.approx(math.sqrt(8 / 3) / 2)
    assert clear["tied"] is False
    # Differences 4, -4, 2, 0: mean 0.5, sd sqrt(35/3), SE 1.708 -> a tie.
    noisy = paired_difference(np.array([4.0, -4.0, 2.0, 0.0]), best)
    assert noisy["mse_difference"] == pytest.approx(0.5)
    assert noisy["standard_error"] == pytest.approx(math.sqrt(35 / 3) / 2)
    assert noisy["tied"] is True


def test_ties_break_toward_the_higher_log_likelihood():
    errors = {"bgnbd": np.array([4.0, -4.0, 2.0, 0.0]) + 10, "mbgnbd": np.full(4, 10.0),
              "pareto_nbd": np.array([14.0, 10.0, 12.0, 12.0])}
    tied = tied_models(errors, "mbgnbd", ["bgnbd", "mbgnbd", "pareto_nbd"])
    assert tied == ["bgnbd", "mbgnbd"]  # Pareto/NBD is worse by 2.45 standard errors
    model, reason = choose_by_backtest("mbgnbd", tied, {"bgnbd": -100.0, "mbgnbd": -105.0}, basis="history")
    assert model == "bgnbd"
    assert "within one standard error" in reason and "bgnbd, mbgnbd" in reason
    # No tie: the lowest RMSE stands whatever the likelihoods say.
    model, reason = choose_by_backtest("mbgnbd", ["mbgnbd"], {"bgnbd": -1.0, "mbgnbd": -105.0}, basis="history")
    assert model == "mbgnbd" and reason.startswith("lowest RMSE")


def test_fit_chosen_model_decides_a_tie_on_the_valuation_history():
    tx = simulate_transactions(800, BgNbdParams(r=0.6, alpha=8.0, a=0.8, b=3.0), GammaGammaParams(p=5.0, q=4.0, v=80.0),
                               dt.date(2024, 1, 1), dt.date(2026, 6, 30), seed=5)
    summary = summarise_transactions(tx, "2026-06-30", input_rule_columns=True)
    comparison = {"model": "pareto_nbd", "reason": "x", "tied": ["bgnbd", "mbgnbd", "pareto_nbd"]}
    fit = fit_chosen_model(summary, comparison)
    each = {m: fit_valuation_models(summary, model=m).purchase.log_likelihood for m in comparison["tied"]}
    best = max(each, key=each.get)
    assert fit.model == comparison["model"] == best
    assert comparison["tie_break_log_likelihood"] == pytest.approx(each)
    assert fit.models_compared is comparison
    # Without a tie the back-test's model is fitted as it is.
    alone = fit_chosen_model(summary, {"model": "pareto_nbd", "tied": ["pareto_nbd"]})
    assert alone.model == "pareto_nbd"


def test_models_fitted_on_threads_equal_models_fitted_one_after_the_other(monkeypatch):
    """The back-test and the tie-break fit their models on several threads: the same choice,
    parameters, covariances and errors as one after the other."""
    from valuation.engine import value

    tx = simulate_transactions(800, BgNbdParams(r=0.6, alpha=8.0, a=0.8, b=3.0), GammaGammaParams(p=5.0, q=4.0, v=80.0),
                               dt.date(2024, 1, 1), dt.date(2026, 6, 30), seed=5)
    customers = pd.DataFrame({"customer_id": tx["customer_id"].unique(), "active": True})
    services = pd.DataFrame(columns=["customer_id", "date", "service_type", "quantity", "unit", "cost"])
    summary = summarise_transactions(tx, "2026-06-30", input_rule_columns=True)

    def choice_and_fit():
        result = valuate_with_backtest(tx, services, customers, dt.date(2026, 6, 30), EngineSettings(simulation_draws=50))
        models = result.fit.to_dict()
        for entry in models["models_compared"]["models_compared"].values():
            entry.pop("seconds")
        models["diagnostics"].pop("fit_seconds")
        tie = fit_chosen_model(summary, {"model": "pareto_nbd", "tied": ["bgnbd", "mbgnbd", "pareto_nbd"]})
        return models, tie.purchase.to_dict(), result.customers

    monkeypatch.setattr(value, "FIT_THREADS", 1)
    alone = choice_and_fit()
    monkeypatch.setattr(value, "FIT_THREADS", 3)
    threaded = choice_and_fit()
    assert threaded[0]["models_compared"]["models_compared"].keys() == {"bgnbd", "mbgnbd", "pareto_nbd"}
    assert threaded[:2] == alone[:2]
    pd.testing.assert_frame_equal(threaded[2], alone[2])


# Frequent buyers who rarely drop out (a wholesaler's customers): most have a positive 10th
# percentile, where a calibrated range leaves 10 % above and 10 % below.
TRUE_BGNBD = BgNbdParams(r=3.0, alpha=6.0, a=0.3, b=8.0)
TRUE_SPEND = GammaGammaParams(p=4.0, q=5.0, v=60.0)
HOLDOUT_WEEKS = 52.0
N = 4000


@pytest.fixture(scope="module")
def population():
    """Customers simulated from known parameters, first purchase 26-104 weeks before the
    calibration end; the summary columns the valuation reads and the actual holdout margin."""
    T = np.random.default_rng(9).uniform(26.0, 104.0, N)
    sim = simulate_customers(N, TRUE_BGNBD, T, holdout_weeks=HOLDOUT_WEEKS, gamma_gamma=TRUE_SPEND, seed=9)
    x = sim["frequency"].to_numpy()
    own = (sim["first_margin"] + x * sim["mean_repeat_margin"]) / (x + 1)
    summary = pd.DataFrame({
        "purchase_days": x + 1, "frequency": x, "recency_weeks": sim["recency"], "age_weeks": sim["T"],
        "mean_repeat_margin": sim["mean_repeat_margin"], "mean_purchase_margin": own,
    })
    return summary, sim["holdout_margin"].to_numpy()


def _shares(summary, actual, models):
    """Share above the 90th and below the 10th percentile: over all customers, and over those
    whose 10th percentile is positive."""
    ranges = predict_holdout(summary, models, HOLDOUT_WEEKS, EngineSettings(simulation_draws=300))
    above = actual > ranges["holdout_high"].to_numpy()
    below = actual < ranges["holdout_low"].to_numpy()
    positive = ranges["holdout_low"].to_numpy() > 0
    assert positive.sum() > 0.5 * len(actual)
    return {"above": above.mean(), "below": below.mean(),
            "above_positive": above[positive].mean(), "below_positive": below[positive].mean()}


def _known(*, spend_model: bool, spend_shape: float | None) -> ValuationModels:
    """The true parameters (no covariance: no parameter uncertainty to claim)."""
    fallback = None if spend_model else "own_margin_per_purchase"
    return ValuationModels(
        model="bgnbd", purchase=TRUE_BGNBD, gamma_gamma=TRUE_SPEND if spend_model else None, bgnbd=TRUE_BGNBD,
        population_margin=TRUE_SPEND.population_mean, spend_shape=spend_shape,
        fit_quality={"ok": spend_model, "problems": [], "fallback": fallback})


# Where the 10th percentile is positive (about 2,400 customers) a calibrated share is 10 %
# with a binomial sampling error of 0.6 points; the bounds allow 4 of them. Over all customers
# the shares are lower: a customer more than 90 % likely to buy nothing has a 90th percentile
# of 0 and lies above it with less than 10 % probability (and never below a 10th of 0).
CALIBRATED = (0.075, 0.125)


def _assert_calibrated(shares):
    assert CALIBRATED[0] <= shares["above_positive"] <= CALIBRATED[1]
    assert CALIBRATED[0] <= shares["below_positive"] <= CALIBRATED[1]
    assert shares["above"] <= CALIBRATED[1] and shares["below"] <= CALIBRATED[1]


def test_range_with_the_spend_model_is_calibrated(population):
    _assert_calibrated(_shares(*population, _known(spend_model=True, spend_shape=TRUE_SPEND.p)))


def test_range_without_a_spend_model_holds_the_spend_uncertainty(population):
    # The gate's own-spend fallback: each customer's own mean margin, uncertain, and each
    # purchase Gamma(k) around it.
    own = _shares(*population, _known(spend_model=False, spend_shape=TRUE_SPEND.p))
    _assert_calibrated(own)
    # Every future purchase worth exactly the own mean (the range before) misses more often.
    fixed = _shares(*population, _known(spend_model=False, spend_shape=None))
    assert fixed["above_positive"] + fixed["below_positive"] > own["above_positive"] + own["below_positive"] + 0.02


@pytest.mark.parametrize(("history_weeks", "setting", "expected"), [
    (104.0, 26, 26.0),  # long enough: the setting
    (27.4, 26, 13.7),  # six months of invoices: half for fitting, half for judging
    (8.0, 26, 4.0),
    (104.0, 2, 2.0),  # a setting under four weeks is the setting's choice
    (4.0, 2, 2.0),
])
def test_the_back_test_holdout_is_at_most_half_the_history(history_weeks, setting, expected):
    assert backtest_holdout_weeks(history_weeks, setting) == pytest.approx(expected)


def test_a_history_under_eight_weeks_gets_no_back_test():
    with pytest.raises(ValueError, match=r"7.0 weeks is too short for a back-test \(at least 8 weeks\)"):
        backtest_holdout_weeks(7.0, 26)
    with pytest.raises(ValueError, match=r"3.0 weeks is too short for a back-test \(at least 4 weeks\)"):
        backtest_holdout_weeks(3.0, 2)


def test_a_short_history_is_back_tested_on_its_second_half():
    """Six months of history and the default 26-week setting: the choice is made on a 13-week
    holdout after a 13-week calibration, not on nine days of calibration."""
    start, as_of = dt.date(2025, 12, 1), dt.date(2026, 6, 1)
    tx = simulate_transactions(1500, BgNbdParams(r=0.6, alpha=8.0, a=0.8, b=3.0), GammaGammaParams(p=5.0, q=4.0, v=80.0),
                               start, as_of, seed=3)
    customers = pd.DataFrame({"customer_id": tx["customer_id"].unique(), "active": True, "referred_by": None,
                              "wallet": np.nan})
    no_services = pd.DataFrame(columns=["customer_id", "date", "service_type", "quantity", "unit", "cost"])
    result = valuate_with_backtest(tx, no_services, customers, as_of, EngineSettings())
    history_days = (pd.Timestamp(as_of) - tx["date"].min()).days
    comparison = result.fit.models_compared
    assert comparison["holdout_weeks"] == pytest.approx(round(history_days / 2) / 7)  # whole days, as the nightly run
    assert set(comparison["models_compared"]) == {"bgnbd", "mbgnbd", "pareto_nbd"}
