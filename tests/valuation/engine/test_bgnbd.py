"""BG/NBD against the published CDNOW results (Fader, Hardie & Lee 2005) and simulated truth."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.special import hyp2f1

from valuation.engine import (
    BgNbdParams,
    bgnbd_expected_purchases,
    bgnbd_log_likelihood,
    bgnbd_p_alive,
    fit_bgnbd,
)
from valuation.engine.bgnbd import bgnbd_expected_purchases_if_alive, bgnbd_individual_log_likelihood
from valuation.engine.simulate import simulate_customers

DATA = Path(__file__).parents[2] / "data"
PUBLISHED = BgNbdParams(r=0.243, alpha=4.414, a=0.793, b=2.426)


@pytest.fixture(scope="module")
def cdnow() -> pd.DataFrame:
    return pd.read_csv(DATA / "cdnow_summary.csv")


def sig3(value: float) -> float:
    return float(f"{value:.3g}")


def test_cdnow_fit_matches_published_estimates(cdnow):
    fit = fit_bgnbd(cdnow["x"], cdnow["t_x"], cdnow["T"])
    assert fit.converged
    assert fit.n_customers == 2357
    assert [sig3(v) for v in (fit.r, fit.alpha, fit.a, fit.b)] == [0.243, 4.41, 0.793, 2.43]
    assert fit.log_likelihood == pytest.approx(-9582.4, abs=0.05)


def test_cdnow_log_likelihood_at_published_parameters(cdnow):
    ll = bgnbd_log_likelihood(PUBLISHED, cdnow["x"], cdnow["t_x"], cdnow["T"])
    assert ll == pytest.approx(-9582.4, abs=0.1)


def test_weights_equal_repeated_rows(cdnow):
    sample = cdnow.iloc[:300]
    repeated = pd.concat([sample, sample.iloc[:100]])
    weights = np.r_[np.full(100, 2.0), np.ones(200)]
    a = fit_bgnbd(repeated["x"], repeated["t_x"], repeated["T"])
    b = fit_bgnbd(sample["x"], sample["t_x"], sample["T"], weights=weights)
    assert (a.r, a.alpha, a.a, a.b) == pytest.approx((b.r, b.alpha, b.a, b.b), rel=1e-5)


def test_paper_example_customer():
    # FHL 2005, section 5: x = 2, t_x = 30.43, T = 38.86, next 39 weeks.
    p_alive = bgnbd_p_alive(PUBLISHED, 2, 30.43, 38.86)
    # By hand: 1 / (1 + 0.793/3.426 * (43.274/34.844)^2.243) = 1 / (1 + 0.23147 * 1.6258)
    assert float(p_alive) == pytest.approx(0.7266, abs=5e-4)
    expected = bgnbd_expected_purchases(PUBLISHED, 39, 2, 30.43, 38.86)
    assert float(expected) == pytest.approx(1.226, abs=1e-3)


def test_pfaff_form_equals_the_papers_formula():
    r, alpha, a, b = PUBLISHED.r, PUBLISHED.alpha, PUBLISHED.a, PUBLISHED.b
    x = np.array([0, 1, 3, 7, 15])
    T = np.array([1.0, 10.0, 30.0, 52.0, 80.0])
    t = 39.0
    z = t / (alpha + T + t)
    paper = (a + b + x - 1) / (a - 1) * (
        1 - ((alpha + T) / (alpha + T + t)) ** (r + x) * hyp2f1(r + x, b + x, a + b + x - 1, z)
    )
    assert bgnbd_expected_purchases_if_alive(PUBLISHED, t, x, T) == pytest.approx(paper, rel=1e-9)


def test_no_repeat_purchase_means_alive():
    assert bgnbd_p_alive(PUBLISHED, 0, 0.0, 50.0) == 1.0


def test_robust_for_large_counts_and_ages():
    x = np.array([0, 1, 500, 5000, 20000])
    t_x = np.array([0, 1.0, 100.0, 999.0, 2000.0])
    T = np.array([0.0, 5000.0, 1000.0, 1000.0, 2000.0])
    p = bgnbd_p_alive(PUBLISHED, x, t_x, T)
    e = bgnbd_expected_purchases(PUBLISHED, 156.0, x, t_x, T)
    ll = bgnbd_individual_log_likelihood(PUBLISHED, x, t_x, T)
    for values in (p, e, ll):
        assert np.isfinite(values).all()
    assert ((p >= 0) & (p <= 1)).all()
    # A customer buying 20 a week with the last purchase today keeps buying about that fast.
    assert e[4] == pytest.approx(10 * 156, rel=0.1)


def test_a_equal_one_is_handled():
    params = BgNbdParams(r=0.5, alpha=5.0, a=1.0, b=3.0)
    near = BgNbdParams(r=0.5, alpha=5.0, a=1.0 + 1e-4, b=3.0)
    value = bgnbd_expected_purchases_if_alive(params, 52.0, 2.0, 30.0)
    assert np.isfinite(value)
    assert value == pytest.approx(bgnbd_expected_purchases_if_alive(near, 52.0, 2.0, 30.0), rel=1e-3)


def test_parameter_recovery_on_simulated_customers():
    truth = BgNbdParams(r=0.5, alpha=6.0, a=0.9, b=3.5)
    T = np.random.default_rng(5).uniform(20, 150, 20_000)
    sim = simulate_customers(20_000, truth, T, seed=11)
    fit = fit_bgnbd(sim["frequency"], sim["recency"], sim["T"])
    assert fit.converged
    # 20k customers: standard errors are a few per cent; allow about 3 of them.
    assert fit.r == pytest.approx(truth.r, rel=0.08)
    assert fit.alpha == pytest.approx(truth.alpha, rel=0.10)
    assert fit.a == pytest.approx(truth.a, rel=0.15)
    assert fit.b == pytest.approx(truth.b, rel=0.20)


def test_large_input_with_warm_start_matches_direct_optimum():
    truth = BgNbdParams(r=0.3, alpha=5.0, a=0.8, b=2.5)
    T = np.random.default_rng(2).integers(0, 400, 150_000) / 7.0
    sim = simulate_customers(150_000, truth, T, seed=4)
    sim["recency"] = np.floor(sim["recency"] * 7) / 7
    fit = fit_bgnbd(sim["frequency"], sim["recency"], sim["T"])
    assert fit.converged
    # The optimum: the log-likelihood does not improve in any direction nearby.
    best = bgnbd_log_likelihood(fit, sim["frequency"], sim["recency"], sim["T"])
    assert best == pytest.approx(fit.log_likelihood, rel=1e-9)
    for name in ("r", "alpha", "a", "b"):
        for step in (0.999, 1.001):
            moved = BgNbdParams(**{**fit.to_dict(), name: getattr(fit, name) * step})
            assert bgnbd_log_likelihood(moved, sim["frequency"], sim["recency"], sim["T"]) < best


def test_params_round_trip_through_dict():
    fit = BgNbdParams(0.2, 4.0, 0.7, 2.0, log_likelihood=-1.5, n_customers=3)
    assert BgNbdParams.from_dict(fit.to_dict()) == fit
    assert BgNbdParams.from_dict(BgNbdParams(1, 2, 3, 4).to_dict()).log_likelihood != 0


def test_rejects_recency_after_age():
    with pytest.raises(ValueError):
        fit_bgnbd([1], [5.0], [4.0])


def test_expected_purchases_stay_finite_for_large_b_and_many_purchases():
    """Fitted on B2B data with b ~ 100 and customers with hundreds of purchase days, the
    closed form must stay finite, positive and increasing in t (Pfaff's form did not)."""
    import numpy as np

    from valuation.engine import BgNbdParams, bgnbd_expected_purchases_if_alive

    params = BgNbdParams(r=1.1713, alpha=2.5955, a=1.1446, b=96.684)
    t = np.arange(1, 37)[None, :] * 4.348
    for x in (0, 1, 5, 30, 100, 300):
        for T in (0.1, 5.0, 50.0, 150.0):
            g = bgnbd_expected_purchases_if_alive(params, t, float(x), T)[0]
            assert np.isfinite(g).all() and (g > 0).all()
            assert (np.diff(g) > 0).all()
            # never more than the posterior-mean rate times the horizon for a customer alive now
            assert g[-1] <= (params.r + x) / (params.alpha + T) * t[0, -1] * 1.0001


def test_expected_purchases_with_a_nearly_fixed_drop_out_probability():
    """Data without visible drop-outs fits a and b in the tens of thousands; the expectation
    then equals the fixed-p form, and the two forms agree where both can be evaluated."""
    import numpy as np

    from valuation.engine import BgNbdParams, bgnbd_expected_purchases_if_alive
    from valuation.engine.bgnbd import _expected_purchases_fixed_p

    t = np.array([[4.0, 26.0, 156.0]])
    spike = BgNbdParams(r=1.07, alpha=7.38, a=47142.3, b=95240.1)
    g = bgnbd_expected_purchases_if_alive(spike, t, 3.0, 60.0)
    assert np.isfinite(g).all() and (np.diff(g) > 0).all()
    # by hand: p = a/(a+b+x) = 0.33108, rate (r+x)/(alpha+T) = 0.060
    p = 47142.3 / (47142.3 + 95240.1 + 3)
    assert g[0, -1] == pytest.approx((1 - (67.38 / (67.38 + p * 156)) ** 4.07) / p, rel=1e-9)
    narrow = BgNbdParams(r=1.07, alpha=7.38, a=900.0, b=1800.0)
    exact = bgnbd_expected_purchases_if_alive(narrow, t, 3.0, 60.0)
    approx = _expected_purchases_fixed_p(narrow, t, np.array(3.0), np.array(60.0))
    np.testing.assert_allclose(exact, approx, rtol=2e-3)
