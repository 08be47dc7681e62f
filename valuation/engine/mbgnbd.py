"""MBG/NBD purchase model: BG/NBD in which a customer may also drop out right after the
first purchase, so a customer without repeat purchases is not certainly alive.

Source: Batislam, Denizel & Filiztekin (2007), "Empirical validation and comparison of
models for customer base analysis", International Journal of Research in Marketing 24(3),
201-209 (also Hoppe & Wagner 2007). Purchases at Poisson rate lambda ~ Gamma(r, alpha) while
alive; after every purchase, the first included, drop-out with probability p ~ Beta(a, b).
Per customer x repeat purchases, t_x the last one and T the age, in weeks since the first.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.special import betaln, expit, gammaln, hyp2f1

from .likelihood import LOG_BOUND, Rows, maximise
from .reductions import dot
from .stored import FittedParams

NAMES = ("r", "alpha", "a", "b")


@dataclass(frozen=True)
class MbgNbdParams(FittedParams):
    r: float
    alpha: float
    a: float
    b: float


def _log_terms(r, alpha, a, b, x, t_x, T):
    base = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
    alive = betaln(a, b + x + 1) - betaln(a, b) - (r + x) * np.log(alpha + T)
    dropped = betaln(a + 1, b + x) - betaln(a, b) - (r + x) * np.log(alpha + t_x)
    return base, alive, dropped


def mbgnbd_individual_log_likelihood(params: MbgNbdParams, x, t_x, T) -> np.ndarray:
    """log L = log[ B(a, b+x+1)/B(a,b) Gamma(r+x) alpha^r / (Gamma(r) (alpha+T)^(r+x))
    + B(a+1, b+x)/B(a,b) Gamma(r+x) alpha^r / (Gamma(r) (alpha+t_x)^(r+x)) ]
    (Batislam et al. 2007, eq. 4): alive at T, or dropped out right after the purchase at t_x
    (for x = 0 that is the first purchase, t_x = 0)."""
    x, t_x, T = (np.asarray(v, dtype=float) for v in np.broadcast_arrays(x, t_x, T))
    base, alive, dropped = _log_terms(params.r, params.alpha, params.a, params.b, x, t_x, T)
    return base + np.logaddexp(alive, dropped)


def mbgnbd_p_alive(params: MbgNbdParams, x, t_x, T) -> np.ndarray:
    """P(alive | x, t_x, T) = 1 / (1 + a/(b+x) ((alpha+T)/(alpha+t_x))^(r+x)), for every x."""
    x, t_x, T = (np.asarray(v, dtype=float) for v in np.broadcast_arrays(x, t_x, T))
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    log_odds_dead = math.log(a) - np.log(b + x) + (r + x) * (np.log(alpha + T) - np.log(alpha + t_x))
    return expit(-log_odds_dead)


def mbgnbd_expected_purchases_if_alive(params: MbgNbdParams, t, x, T) -> np.ndarray:
    """E[purchases in (T, T+t] | alive at T, x, T]
    = (a+b+x)/(a-1) [1 - ((alpha+T)/(alpha+T+t))^(r+x) 2F1(r+x, b+x+1; a+b+x; z)],
    z = t/(alpha+T+t) (Batislam et al. 2007, eq. 7, without the P(alive) factor). Euler's
    transformation turns it into (a+b+x)/(a-1) [1 - (1-z)^(a-1) 2F1(a+b-r, a-1; a+b+x; z)],
    whose parameters do not grow with x (as in bgnbd.py)."""
    t, x, T = (np.asarray(v, dtype=float) for v in np.broadcast_arrays(t, x, T))
    r, alpha, b = params.r, params.alpha, params.b
    a = params.a if abs(params.a - 1.0) > 1e-7 else 1.0 + 1e-7  # removable singularity at a = 1
    c = a + b + x
    z = t / (alpha + T + t)
    with np.errstate(over="ignore", invalid="ignore"):
        expected = (c / (a - 1)) * (1.0 - (1.0 - z) ** (a - 1) * hyp2f1(a + b - r, a - 1, c, z))
    bad = ~np.isfinite(expected)
    if bad.any():
        # p fixed at its posterior mean a / (a + b + x + 1): exact as a + b grows (bgnbd.py).
        p = params.a / (params.a + params.b + x + 1)
        fixed = -np.expm1((r + x) * (np.log(alpha + T) - np.log(alpha + T + p * t))) / p
        expected = np.where(bad, fixed, expected)
    return expected


class _Split:
    """Per-row likelihood from terms evaluated once per distinct x, t_x and T."""

    def __init__(self, rows: Rows) -> None:
        self.ux, self.ix = rows.unique("x")
        self.ut, self.it = rows.unique("t_x")
        self.uT, self.iT = rows.unique("T")
        self.x = rows.x

    def __call__(self, theta: np.ndarray, rows: Rows) -> np.ndarray:
        r, alpha, a, b = np.exp(theta)
        ux = self.ux
        base = (gammaln(r + ux) - gammaln(r) + r * np.log(alpha))[self.ix]
        alive = (betaln(a, b + ux + 1) - betaln(a, b))[self.ix] - (r + self.x) * np.log(alpha + self.uT)[self.iT]
        dropped = (betaln(a + 1, b + ux) - betaln(a, b))[self.ix] - (r + self.x) * np.log(alpha + self.ut)[self.it]
        return base + np.logaddexp(alive, dropped)


def fit_mbgnbd(frequency, recency, T, weights=None, *, random_seed: int = 0) -> MbgNbdParams:
    """Maximum-likelihood MBG/NBD fit on log-parameters (L-BFGS-B) over distinct rows."""
    rows, sampled = Rows.build(frequency, recency, T, weights, seed=random_seed)
    if rows.w.sum() == 0:
        raise ValueError("fit_mbgnbd needs at least one customer")
    rate = (dot(rows.x, rows.w) + 1.0) / (dot(rows.T, rows.w) + 1.0)
    result = maximise(_Split(rows), rows, np.log([1.0, 1.0 / rate, 1.0, 1.0]),
                      [(-LOG_BOUND, LOG_BOUND)] * 4)
    r, alpha, a, b = np.exp(result.theta)
    return MbgNbdParams(
        r=float(r), alpha=float(alpha), a=float(a), b=float(b),
        log_likelihood=result.log_likelihood, n_customers=int(round(rows.w.sum())),
        converged=result.converged, iterations=result.iterations,
        at_bound=tuple(NAMES[i] for i in result.at_bound),
        covariance=None if result.covariance is None else tuple(map(tuple, result.covariance.tolist())),
        sampled=sampled,
    )
