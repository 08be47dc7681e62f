"""Gamma-Gamma against the published CDNOW estimates (Fader & Hardie 2013) and simulated truth."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from valuation.engine import GammaGammaParams, fit_gamma_gamma, gamma_gamma_expected_value
from valuation.engine.bgnbd import BgNbdParams
from valuation.engine.simulate import simulate_customers

DATA = Path(__file__).parents[2] / "data"


@pytest.fixture(scope="module")
def cdnow() -> pd.DataFrame:
    return pd.read_csv(DATA / "cdnow_summary.csv")


def test_cdnow_fit_matches_published_estimates(cdnow):
    fit = fit_gamma_gamma(cdnow["x"], cdnow["zbar"])
    assert fit.converged
    assert fit.n_customers == 946  # customers with at least one repeat purchase
    assert fit.p == pytest.approx(6.25, abs=0.005)
    assert fit.q == pytest.approx(3.74, abs=0.005)
    assert fit.v == pytest.approx(15.44, abs=0.015)


def test_conditional_expectation_by_hand():
    params = GammaGammaParams(p=6.25, q=3.74, v=15.44)
    # p (v + x zbar) / (p x + q - 1) = 6.25 * (15.44 + 2 * 22.35) / (12.5 + 2.74)
    expected = 6.25 * (15.44 + 2 * 22.35) / (12.5 + 2.74)
    assert gamma_gamma_expected_value(params, 2, 22.35) == pytest.approx(expected)
    assert params.population_mean == pytest.approx(6.25 * 15.44 / 2.74)


def test_fallback_to_population_mean():
    params = GammaGammaParams(p=6.25, q=3.74, v=15.44)
    values = gamma_gamma_expected_value(params, [0, 3, 3, 3], [0.0, -5.0, 0.0, np.nan])
    assert values == pytest.approx([params.population_mean] * 4)
    assert gamma_gamma_expected_value(params, [0], [0.0], fallback=12.0) == pytest.approx([12.0])


def test_customers_without_repeat_data_are_ignored_by_the_fit(cdnow):
    noisy = pd.concat([cdnow, pd.DataFrame({"x": [0, 5], "zbar": [1000.0, -20.0]})])
    a = fit_gamma_gamma(cdnow["x"], cdnow["zbar"])
    b = fit_gamma_gamma(noisy["x"], noisy["zbar"])
    assert (a.p, a.q, a.v) == pytest.approx((b.p, b.q, b.v))


def test_parameter_recovery_on_simulated_customers():
    truth = GammaGammaParams(p=4.0, q=5.0, v=60.0)
    sim = simulate_customers(
        30_000, BgNbdParams(1.0, 5.0, 0.5, 5.0), 60.0, gamma_gamma=truth, seed=8
    )
    fit = fit_gamma_gamma(sim["frequency"], sim["mean_repeat_margin"])
    assert fit.converged
    assert fit.p == pytest.approx(truth.p, rel=0.05)
    assert fit.q == pytest.approx(truth.q, rel=0.10)
    assert fit.v == pytest.approx(truth.v, rel=0.12)
    assert fit.population_mean == pytest.approx(truth.population_mean, rel=0.03)


def test_needs_repeat_buyers():
    with pytest.raises(ValueError):
        fit_gamma_gamma([0, 0, 1], [0.0, 0.0, 5.0])
