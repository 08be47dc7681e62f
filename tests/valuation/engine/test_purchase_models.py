"""MBG/NBD and Pareto/NBD against published CDNOW estimates and hand-derived expressions."""

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, stats

from valuation.engine import BgNbdParams, EngineSettings, MbgNbdParams, ParetoNbdParams, fit_mbgnbd, fit_pareto_nbd
from valuation.engine.forecast import median_remaining_weeks, purchases_if_alive
from valuation.engine.pareto_nbd import pareto_nbd_individual_log_likelihood
from valuation.engine.purchase_models import expected_purchases_if_alive, fit_purchase_model, p_alive, survival_if_alive

DATA = Path(__file__).parents[2] / "data"


@pytest.fixture(scope="module")
def cdnow() -> pd.DataFrame:
    return pd.read_csv(DATA / "cdnow_summary.csv")


def sig(value: float, digits: int) -> float:
    return float(f"{value:.{digits}g}")


def test_pareto_nbd_cdnow_matches_published_estimates(cdnow):
    # Fader, Hardie & Lee (2005), table 1: r 0.55, alpha 10.58, s 0.61, beta 11.67, LL -9595.0.
    fit = fit_pareto_nbd(cdnow["x"], cdnow["t_x"], cdnow["T"])
    assert fit.converged and not fit.at_bound and fit.covariance is not None
    assert (sig(fit.r, 2), round(fit.alpha, 2), sig(fit.s, 2), round(fit.beta, 2)) == (0.55, 10.58, 0.61, 11.67)
    assert fit.log_likelihood == pytest.approx(-9595.0, abs=0.05)
    published = ParetoNbdParams(r=0.55, alpha=10.58, s=0.61, beta=11.67)
    ll = pareto_nbd_individual_log_likelihood(published, cdnow["x"], cdnow["t_x"], cdnow["T"]).sum()
    assert ll == pytest.approx(-9595.0, abs=0.5)


def test_mbgnbd_cdnow_matches_reference_implementation(cdnow):
    # lifetimes 0.11.3 ModifiedBetaGeoFitter on the same CDNOW sample:
    # r 0.524838, alpha 6.182988, a 0.891356, b 1.614000.
    fit = fit_mbgnbd(cdnow["x"], cdnow["t_x"], cdnow["T"])
    assert fit.converged
    assert (fit.r, fit.alpha, fit.a, fit.b) == pytest.approx((0.524838, 6.182988, 0.891356, 1.614000), rel=2e-5)


def test_mbgnbd_p_alive_by_hand():
    params = MbgNbdParams(r=0.5, alpha=6.0, a=0.9, b=1.6)
    # x = 0, T = 30: 1 / (1 + 0.9/1.6 * (36/6)^0.5) = 1 / (1 + 0.5625 * 2.449490)
    assert float(p_alive(params, 0, 0.0, 30.0)) == pytest.approx(1 / (1 + 0.5625 * math.sqrt(6)), rel=1e-12)
    # x = 2, t_x = 20, T = 30: 1 / (1 + 0.9/3.6 * (36/26)^2.5)
    assert float(p_alive(params, 2, 20.0, 30.0)) == pytest.approx(1 / (1 + 0.25 * (36 / 26) ** 2.5), rel=1e-12)


def test_pareto_expected_purchases_by_quadrature():
    # E[X(T, T+t) | alive] = E[lambda] E[(1 - exp(-mu t)) / mu], lambda ~ Gamma(r+x, alpha+T),
    # mu ~ Gamma(s, beta+T): integrate over mu numerically.
    params = ParetoNbdParams(r=0.55, alpha=10.58, s=0.61, beta=11.67)
    x, T, t = 3, 38.86, 52.0
    density = stats.gamma(a=params.s, scale=1 / (params.beta + T)).pdf
    inner, _ = integrate.quad(lambda mu: -math.expm1(-mu * t) / mu * density(mu), 0, np.inf, limit=200)
    expected = (params.r + x) / (params.alpha + T) * inner
    assert float(expected_purchases_if_alive(params, t, x, T)) == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize(("model", "extra"), [("bgnbd", 0), ("mbgnbd", 1)])
def test_bg_family_survival_by_quadrature(model, extra):
    # P(alive at T+t | alive at T) = E_p[(1 + p t / (alpha+T))^-(r+x)], p ~ Beta(a, b+x+extra).
    cls = BgNbdParams if model == "bgnbd" else MbgNbdParams
    params = cls(r=0.8, alpha=6.0, a=0.7, b=3.0)
    x, T, t = 4, 40.0, 150.0
    beta = stats.beta(params.a, params.b + x + extra)
    value, _ = integrate.quad(lambda p: (1 + p * t / (params.alpha + T)) ** -(params.r + x) * beta.pdf(p), 0, 1,
                              limit=200)
    assert float(survival_if_alive(params, t, x, T)) == pytest.approx(value, rel=1e-7)


def test_pareto_median_lifetime_and_value_to_infinity_by_hand():
    params = ParetoNbdParams(r=0.5, alpha=8.0, s=3.0, beta=30.0)
    x, T = np.array([2.0]), np.array([20.0])
    # Given alive: ((beta+T)/(beta+T+t))^s = 1/2  ->  t = (beta+T)(2^(1/s) - 1) = 50 * 0.259921
    unconditional, if_alive = median_remaining_weeks(params, x, T, np.array([0.8]))
    assert if_alive[0] == pytest.approx(50 * (2 ** (1 / 3) - 1), rel=2e-3)
    # Unconditional with P(alive) 0.8: 0.8 S(t) = 1/2  ->  t = 50 ((0.8/0.5)^(1/3) - 1)
    assert unconditional[0] == pytest.approx(50 * (1.6 ** (1 / 3) - 1), rel=2e-3)
    assert median_remaining_weeks(params, x, T, np.array([0.4]))[0][0] == 0.0
    # Undiscounted purchases to infinity: (r+x)(beta+T)/((alpha+T)(s-1)) = 2.5 * 50 / (28 * 2)
    plain, horizon, infinite = purchases_if_alive(params, x, T, EngineSettings(annual_discount_rate=0.0))
    assert infinite[0] == pytest.approx(2.5 * 50 / 56, rel=1e-3)
    assert plain[0] == pytest.approx(horizon[0]) and horizon[0] < infinite[0]


def test_bgnbd_covariance_matches_the_bootstrap(cdnow):
    # The ML covariance drives the parameter uncertainty of the ranges: check it against an
    # independent estimate, the spread of fits on bootstrap resamples of the customers.
    fit = fit_purchase_model("bgnbd", cdnow["x"], cdnow["t_x"], cdnow["T"])
    se = np.sqrt(np.diag(np.asarray(fit.covariance)))
    rng = np.random.default_rng(5)
    thetas = []
    for _ in range(30):
        pick = rng.integers(0, len(cdnow), len(cdnow))
        boot = fit_purchase_model("bgnbd", cdnow["x"].to_numpy()[pick], cdnow["t_x"].to_numpy()[pick],
                                  cdnow["T"].to_numpy()[pick])
        thetas.append(np.log([boot.r, boot.alpha, boot.a, boot.b]))
    boot_se = np.std(thetas, axis=0, ddof=1)
    # 30 resamples give the standard error to about +-13 % (1/sqrt(2*29)); allow 40 %.
    assert np.all(np.abs(se / boot_se - 1) < 0.4)


@pytest.mark.parametrize("fit", [fit_pareto_nbd, fit_mbgnbd])
@pytest.mark.parametrize("sample_size", [None, 1_000])
def test_a_fit_does_not_depend_on_the_order_of_the_customers(cdnow, fit, sample_size, monkeypatch):
    """The same customers in another order give the very same parameters, also when the fit
    samples (on CDNOW's Pareto/NBD ridge the order used to decide whether the fit looked identified)."""
    if sample_size:
        monkeypatch.setattr("valuation.engine.likelihood.MAX_FIT_CUSTOMERS", sample_size)
    x, t_x, T = (cdnow[c].to_numpy(dtype=float) for c in ("x", "t_x", "T"))
    fits = []
    for seed in (0, 1, 2):
        order = np.random.default_rng(seed).permutation(len(x)) if seed else np.arange(len(x))
        fits.append(fit(x[order], t_x[order], T[order]))
    assert fits[0].sampled is bool(sample_size)
    assert fits[0] == fits[1] == fits[2]


def test_fit_rows_are_shared_only_inside_a_back_test_block():
    """The back-test's models reuse one build of their fit rows; nothing is kept afterwards,
    so a long-running worker holds no copy of the last customers."""
    from valuation.engine import likelihood

    x, t_x, T = np.array([0.0, 2, 5]), np.array([0.0, 10, 30]), np.array([40.0, 40, 40])
    assert likelihood.Rows.build(x, t_x, T)[0] is not likelihood.Rows.build(x, t_x, T)[0]
    with likelihood.shared_rows():
        first = likelihood.Rows.build(x, t_x, T)[0]
        assert likelihood.Rows.build(x.copy(), t_x.copy(), T.copy())[0] is first
        assert likelihood.Rows.build(x, t_x, T + 1)[0] is not first  # other customers: built anew
    assert likelihood._LAST_BUILD == []
