"""BG/NBD purchase model: how often a customer buys and whether they are still alive.

Source: Fader, Hardie & Lee (2005), "'Counting Your Customers' the Easy Way: An Alternative
to the Pareto/NBD Model", Marketing Science 24(2), 275-284; equation numbers below refer to
that paper. A customer buys at Poisson rate lambda ~ Gamma(r, alpha) while alive and, after
each repeat purchase, drops out with probability p ~ Beta(a, b). Data per customer:
x = repeat purchases (frequency), t_x = time of the last purchase, T = age, both in weeks
since the first purchase.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import betaln, digamma, expit, gammaln, hyp2f1

from .likelihood import LOG_BOUND as _LOG_BOUND
from .likelihood import minimise_with_gradient  # keeps the optimiser away from overflow
from .reductions import dot
from .stored import FittedParams

ArrayLike = np.ndarray | pd.Series | list[float] | float

# Above this many distinct rows a subsample fit supplies the starting point of the full fit,
# which then needs only a few passes over all rows.
_WARM_START_ROWS = 60_000
# Above this a + b the posterior of the drop-out probability is so narrow that p is taken as
# fixed at its mean; 2F1 with parameters this large cannot be evaluated reliably.
_CONCENTRATED_BETA = 1e4


@dataclass(frozen=True)
class BgNbdParams(FittedParams):
    r: float
    alpha: float
    a: float
    b: float


def _arrays(*values: ArrayLike) -> list[np.ndarray]:
    return [np.asarray(v, dtype=float) for v in np.broadcast_arrays(*values)]


def bgnbd_individual_log_likelihood(
    params: BgNbdParams, x: ArrayLike, t_x: ArrayLike, T: ArrayLike
) -> np.ndarray:
    """Log-likelihood of each customer, eq. (6), evaluated in logs for large x and T."""
    x, t_x, T = _arrays(x, t_x, T)
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    log_a1 = gammaln(r + x) - gammaln(r) + r * math.log(alpha)
    log_a2 = betaln(a, b + x) - betaln(a, b) - (r + x) * np.log(alpha + T)
    with np.errstate(invalid="ignore", divide="ignore"):
        log_a3 = betaln(a + 1, b + x - 1) - betaln(a, b) - (r + x) * np.log(alpha + t_x)
    log_a3 = np.where(x > 0, log_a3, -np.inf)
    return log_a1 + np.logaddexp(log_a2, log_a3)


def bgnbd_log_likelihood(
    params: BgNbdParams, x: ArrayLike, t_x: ArrayLike, T: ArrayLike, weights: ArrayLike | None = None
) -> float:
    """Total log-likelihood (weighted by ``weights`` if given), eq. (6) summed over customers."""
    ll = bgnbd_individual_log_likelihood(params, x, t_x, T)
    if weights is not None:
        ll = ll * np.asarray(weights, dtype=float)
    return float(np.sum(ll))


def bgnbd_p_alive(params: BgNbdParams, x: ArrayLike, t_x: ArrayLike, T: ArrayLike) -> np.ndarray:
    """P(alive | x, t_x, T), eq. (A13): 1 / (1 + [x>0] a/(b+x-1) ((alpha+T)/(alpha+t_x))^(r+x)).

    A customer without repeat purchases is alive with probability 1 in this model (drop-out
    can only follow a repeat purchase).
    """
    x, t_x, T = _arrays(x, t_x, T)
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    with np.errstate(invalid="ignore", divide="ignore"):
        log_odds_dead = (
            math.log(a) - np.log(b + x - 1) + (r + x) * (np.log(alpha + T) - np.log(alpha + t_x))
        )
    return np.where(x > 0, expit(-log_odds_dead), 1.0)


def bgnbd_expected_purchases_if_alive(
    params: BgNbdParams, t: ArrayLike, x: ArrayLike, T: ArrayLike
) -> np.ndarray:
    """E[purchases in (T, T+t] | alive at T, x, T].

    This is eq. (10) without its P(alive) factor. Euler's transformation
    2F1(A, B; C; z) = (1-z)^(C-A-B) 2F1(C-A, C-B; C; z) turns
    ((alpha+T)/(alpha+T+t))^(r+x) 2F1(r+x, b+x; a+b+x-1; z), z = t/(alpha+T+t), into
    (1-z)^(a-1) 2F1(a+b-1-r, a-1; a+b+x-1; z): the first two parameters no longer grow with x
    and z stays in [0, 1), so the series converges fast and nothing over- or underflows for
    large x or b (Pfaff's form with argument -t/(alpha+T) loses all precision there).
    """
    t, x, T = _arrays(t, x, T)
    r, alpha, b = params.r, params.alpha, params.b
    # The expression has a removable singularity at a = 1; step around it.
    a = params.a if abs(params.a - 1.0) > 1e-7 else 1.0 + 1e-7
    c = a + b + x - 1
    z = t / (alpha + T + t)
    if a + b > _CONCENTRATED_BETA:
        return _expected_purchases_fixed_p(params, t, x, T)
    with np.errstate(over="ignore", invalid="ignore"):
        expected = (c / (a - 1)) * (1.0 - (1.0 - z) ** (a - 1) * hyp2f1(a + b - 1 - r, a - 1, c, z))
    bad = ~np.isfinite(expected)
    if bad.any():
        expected = np.where(bad, _expected_purchases_fixed_p(params, t, x, T), expected)
    return expected


def _expected_purchases_fixed_p(params: BgNbdParams, t: np.ndarray, x: np.ndarray, T: np.ndarray) -> np.ndarray:
    """The same expectation with p fixed at its posterior mean a / (a + b + x).

    Given p, E[purchases in t | lambda, p] = (1 - exp(-lambda p t)) / p (FHL 2005, eq. 7) and
    averaging over lambda ~ Gamma(r + x, alpha + T) gives
    (1 - ((alpha + T) / (alpha + T + p t)) ** (r + x)) / p. When a + b is large the Beta
    posterior of p is a spike, so this is exact to O(1 / (a + b)), and it is used where
    the hypergeometric function's parameters are too large to evaluate.
    """
    p = params.a / (params.a + params.b + x)
    return -np.expm1((params.r + x) * (np.log(params.alpha + T) - np.log(params.alpha + T + p * t))) / p


def bgnbd_expected_purchases(
    params: BgNbdParams, t: ArrayLike, x: ArrayLike, t_x: ArrayLike, T: ArrayLike
) -> np.ndarray:
    """Conditional expected purchases in the next ``t`` weeks, eq. (10)."""
    return bgnbd_p_alive(params, x, t_x, T) * bgnbd_expected_purchases_if_alive(params, t, x, T)


def bgnbd_expected_purchases_new_customer(params: BgNbdParams, t: ArrayLike) -> np.ndarray:
    """E[X(t)] for a customer who has just made a first purchase, eq. (9)."""
    return bgnbd_expected_purchases_if_alive(params, t, 0.0, 0.0)


class _FitData:
    """Distinct (x, t_x, T) rows with counts, split so that terms depending on x, t_x or T
    alone are evaluated once per distinct value instead of once per row."""

    def __init__(self, x: np.ndarray, t_x: np.ndarray, T: np.ndarray, w: np.ndarray) -> None:
        rows = (
            pd.DataFrame({"x": x, "t_x": np.where(x > 0, t_x, 0.0), "T": T, "w": w})
            .groupby(["x", "t_x", "T"], sort=False)["w"]
            .sum()
            .reset_index()
        )
        self.n_rows = len(rows)
        self.total = float(rows["w"].sum())
        zero = rows["x"].to_numpy() == 0
        # No repeat purchase: only T matters.
        t0 = rows.loc[zero].groupby("T")["w"].sum()
        self.T0 = t0.index.to_numpy(dtype=float)
        self.w0 = t0.to_numpy(dtype=float)
        rep = rows.loc[~zero]
        self.w = rep["w"].to_numpy(dtype=float)
        self.x = rep["x"].to_numpy(dtype=float)
        self.ux, self.ix = np.unique(self.x, return_inverse=True)
        self.uT, self.iT = np.unique(rep["T"].to_numpy(dtype=float), return_inverse=True)
        self.ut, self.it = np.unique(rep["t_x"].to_numpy(dtype=float), return_inverse=True)
        self.Wx = np.bincount(self.ix, weights=self.w, minlength=len(self.ux))

    def subsample(self, size: int, rng: np.random.Generator) -> _FitData:
        """Rows drawn with probability proportional to their counts; a warm start only."""
        x = np.r_[np.zeros(len(self.T0)), self.x]
        t_x = np.r_[np.zeros(len(self.T0)), self.ut[self.it]]
        T = np.r_[self.T0, self.uT[self.iT]]
        w = np.r_[self.w0, self.w]
        pick = rng.choice(len(w), size=size, replace=True, p=w / w.sum())
        return _FitData(x[pick], t_x[pick], T[pick], np.ones(size))

    def negative_log_likelihood(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        """-LL / n and its gradient with respect to the log-parameters."""
        r, alpha, a, b = np.exp(theta)
        log_alpha = math.log(alpha)

        # x = 0: L = (alpha / (alpha + T))^r.
        log_T0 = np.log(alpha + self.T0)
        ll = r * dot(self.w0, log_alpha - log_T0)
        g_r = dot(self.w0, log_alpha - log_T0)
        g_alpha = r * dot(self.w0, 1.0 / alpha - 1.0 / (alpha + self.T0))
        g_a = g_b = 0.0

        if len(self.w):
            ux, Wx = self.ux, self.Wx
            beta_ab = betaln(a, b)
            c2 = betaln(a, b + ux) - beta_ab
            c3 = betaln(a + 1, b + ux - 1) - beta_ab
            log_T = np.log(alpha + self.uT)
            log_t = np.log(alpha + self.ut)
            rx = r + self.x
            lT = log_T[self.iT]
            lt = log_t[self.it]
            a2 = c2[self.ix] - rx * lT
            a3 = c3[self.ix] - rx * lt
            ll_rows = np.logaddexp(a2, a3)
            pi3 = np.exp(a3 - ll_rows)  # share of the "dropped out at t_x" branch
            wpi3 = self.w * pi3
            ll += dot(Wx, gammaln(r + ux) - gammaln(r)) + r * log_alpha * Wx.sum()
            ll += dot(self.w, ll_rows)
            g_r += dot(Wx, digamma(r + ux) - digamma(r) + log_alpha)
            g_r -= dot(self.w, lT) + dot(wpi3, lt - lT)
            inv_T = (1.0 / (alpha + self.uT))[self.iT]
            inv_t = (1.0 / (alpha + self.ut))[self.it]
            g_alpha += r * Wx.sum() / alpha
            g_alpha -= dot(self.w * rx, inv_T) + dot(wpi3 * rx, inv_t - inv_T)
            S3 = np.bincount(self.ix, weights=wpi3, minlength=len(ux))
            S2 = Wx - S3
            psi_abx = digamma(a + b + ux)
            psi_ab = digamma(a + b)
            g_a = (
                dot(S2, digamma(a) - psi_abx) + dot(S3, digamma(a + 1) - psi_abx)
                - Wx.sum() * (digamma(a) - psi_ab)
            )
            g_b = (
                dot(S2, digamma(b + ux) - psi_abx) + dot(S3, digamma(b + ux - 1) - psi_abx)
                - Wx.sum() * (digamma(b) - psi_ab)
            )

        grad = -np.array([g_r * r, g_alpha * alpha, g_a * a, g_b * b]) / self.total
        return -ll / self.total, grad


def _minimise(data: _FitData, theta0: np.ndarray, gtol: float) -> Any:
    return minimise_with_gradient(data.negative_log_likelihood, theta0, [(-_LOG_BOUND, _LOG_BOUND)] * 4, gtol)


def _converged(result: Any) -> bool:
    # L-BFGS-B may stop on a failed line search at the optimum when the tolerances are tighter
    # than float precision; a vanishing gradient away from the bounds is what counts.
    interior = bool(np.all(np.abs(result.x) < _LOG_BOUND - 1e-6))
    return interior and (bool(result.success) or float(np.max(np.abs(result.jac))) < 1e-6)


def fit_bgnbd(
    frequency: ArrayLike,
    recency: ArrayLike,
    T: ArrayLike,
    weights: ArrayLike | None = None,
    *,
    random_seed: int = 0,
) -> BgNbdParams:
    """Maximum-likelihood BG/NBD fit (eq. 6) on log-parameters with L-BFGS-B.

    Customers with the same (x, t_x, T) share a likelihood term, so the fit runs on distinct
    rows weighted by their counts (optionally times ``weights``), with an analytic gradient.
    Large inputs start from a fit on a subsample (seeded by ``random_seed``).
    """
    x, t_x, T_ = _arrays(frequency, recency, T)
    w = np.ones_like(x) if weights is None else np.asarray(weights, dtype=float)
    if len(x) == 0:
        raise ValueError("fit_bgnbd needs at least one customer")
    if np.any(x < 0) or np.any(t_x < 0) or np.any(t_x > T_ + 1e-9):
        raise ValueError("need x >= 0 and 0 <= t_x <= T")
    data = _FitData(x, t_x, T_, w)

    # Start: a=b=1 and a Gamma(1, alpha) rate matching the observed purchase rate.
    rate = (dot(x, w) + 1.0) / (dot(T_, w) + 1.0)
    theta = np.log([1.0, 1.0 / rate, 1.0, 1.0])
    iterations = 0
    if data.n_rows > _WARM_START_ROWS:
        warm = _minimise(data.subsample(_WARM_START_ROWS, np.random.default_rng(random_seed)), theta, 1e-6)
        theta, iterations = warm.x, warm.nit
    result = _minimise(data, theta, 1e-9)
    r, alpha, a, b = np.exp(result.x)
    return BgNbdParams(
        r=float(r),
        alpha=float(alpha),
        a=float(a),
        b=float(b),
        log_likelihood=float(-result.fun * data.total),
        n_customers=int(round(data.total)),
        converged=_converged(result),
        iterations=int(iterations + result.nit),
    )
