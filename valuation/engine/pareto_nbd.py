"""Pareto/NBD purchase model: purchases at Poisson rate lambda ~ Gamma(r, alpha) while alive,
an exponential lifetime with rate mu ~ Gamma(s, beta).

Sources: Schmittlein, Morrison & Colombo (1987), "Counting Your Customers: Who Are They and
What Will They Do Next?", Management Science 33(1); the likelihood and P(alive) in the form
of Fader & Hardie (2005), "A Note on Deriving the Pareto/NBD Model and Related Expressions"
(eqs. 19-22); the conditional expectation from Schmittlein et al. (1987, eq. 22).
Published CDNOW estimates (Fader, Hardie & Lee 2005): r 0.55, alpha 10.58, s 0.61,
beta 11.67, log-likelihood -9595.0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import gammaln, hyp2f1

from .likelihood import LOG_BOUND, Rows, maximise
from .reductions import dot
from .stored import FittedParams

NAMES = ("r", "alpha", "s", "beta")


@dataclass(frozen=True)
class ParetoNbdParams(FittedParams):
    r: float
    alpha: float
    s: float
    beta: float


def _log_a0(r, alpha, s, beta, x, t_x, T):
    """log A_0 of Fader & Hardie (2005, eq. 20-21), the integral over the time of death
    between t_x and T; the case split keeps the 2F1 argument in [0, 1)."""
    rsx = r + s + x
    if alpha >= beta:
        big, b_param = alpha, s + 1.0
    else:
        big, b_param = beta, r + x
    diff = abs(alpha - beta)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        l1 = np.log(hyp2f1(rsx, b_param, rsx + 1.0, diff / (big + t_x))) - rsx * np.log(big + t_x)
        l2 = np.log(hyp2f1(rsx, b_param, rsx + 1.0, diff / (big + T))) - rsx * np.log(big + T)
        # log(e^l1 - e^l2); l1 >= l2 because the integrand is positive.
        return l1 + np.log(-np.expm1(np.minimum(l2 - l1, 0.0)))


def _ll_parts(r, alpha, s, beta, x, t_x, T):
    base = gammaln(r + x) - gammaln(r) + r * np.log(alpha) + s * np.log(beta)
    alive = -(r + x) * np.log(alpha + T) - s * np.log(beta + T)
    dead = np.log(s / (r + s + x)) + _log_a0(r, alpha, s, beta, x, t_x, T)
    return base, alive, dead


def pareto_nbd_individual_log_likelihood(params: ParetoNbdParams, x, t_x, T) -> np.ndarray:
    """log L = log[Gamma(r+x) alpha^r beta^s / Gamma(r)] + log[1 / ((alpha+T)^(r+x) (beta+T)^s)
    + s/(r+s+x) A_0] (Fader & Hardie 2005, eq. 22)."""
    x, t_x, T = (np.asarray(v, dtype=float) for v in np.broadcast_arrays(x, t_x, T))
    base, alive, dead = _ll_parts(params.r, params.alpha, params.s, params.beta, x, t_x, T)
    return base + np.logaddexp(alive, dead)


def pareto_nbd_p_alive(params: ParetoNbdParams, x, t_x, T) -> np.ndarray:
    """P(alive | x, t_x, T) = 1 / (1 + s/(r+s+x) (alpha+T)^(r+x) (beta+T)^s A_0)
    (Fader & Hardie 2005, eq. 24). t_x = T gives 1."""
    x, t_x, T = (np.asarray(v, dtype=float) for v in np.broadcast_arrays(x, t_x, T))
    _, alive, dead = _ll_parts(params.r, params.alpha, params.s, params.beta, x, t_x, T)
    with np.errstate(invalid="ignore"):
        p = np.exp(alive - np.logaddexp(alive, dead))
    return np.where(np.isfinite(p), p, 1.0)


def pareto_nbd_expected_purchases_if_alive(params: ParetoNbdParams, t, x, T) -> np.ndarray:
    """E[purchases in (T, T+t] | alive at T]
    = (r+x)(beta+T) / ((alpha+T)(s-1)) [1 - ((beta+T)/(beta+T+t))^(s-1)]
    (Schmittlein et al. 1987, eq. 22 without P(alive)); the limit s -> 1 is
    (r+x)(beta+T)/(alpha+T) log((beta+T+t)/(beta+T))."""
    t, x, T = (np.asarray(v, dtype=float) for v in np.broadcast_arrays(t, x, T))
    r, alpha, s, beta = params.r, params.alpha, params.s, params.beta
    lead = (r + x) * (beta + T) / (alpha + T)
    log_ratio = np.log1p(t / (beta + T))
    if abs(s - 1.0) < 1e-9:
        return lead * log_ratio
    return lead * (-np.expm1(-(s - 1.0) * log_ratio)) / (s - 1.0)


def pareto_nbd_survival_if_alive(params: ParetoNbdParams, t, T) -> np.ndarray:
    """P(alive at T+t | alive at T) = ((beta+T)/(beta+T+t))^s: mu | alive at T ~ Gamma(s, beta+T)
    (the lifetime is memoryless and independent of purchasing)."""
    t, T = (np.asarray(v, dtype=float) for v in np.broadcast_arrays(t, T))
    return np.exp(-params.s * np.log1p(t / (params.beta + T)))


class _Split:
    """Per-row likelihood with the 2F1 terms evaluated once per distinct (x, t_x) and
    (x, T) pair and the rest once per distinct x or T."""

    def __init__(self, rows: Rows) -> None:
        self.ux, self.ix = rows.unique("x")
        self.uxt, self.ixt = rows.unique("x", "t_x")
        self.uxT, self.ixT = rows.unique("x", "T")
        self.x, self.T = rows.x, rows.T

    def _log_term(self, r, alpha, s, beta, pairs):
        x, t = pairs[:, 0], pairs[:, 1]
        rsx = r + s + x
        big, b_param = (alpha, s + 1.0) if alpha >= beta else (beta, r + x)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            return np.log(hyp2f1(rsx, b_param, rsx + 1.0, abs(alpha - beta) / (big + t))) - rsx * np.log(big + t)

    def __call__(self, theta: np.ndarray, rows: Rows) -> np.ndarray:
        r, alpha, s, beta = np.exp(theta)
        ux = self.ux
        base = (gammaln(r + ux) - gammaln(r) + r * np.log(alpha) + s * np.log(beta))[self.ix]
        alive = -(r + self.x) * np.log(alpha + self.T) - s * np.log(beta + self.T)
        l1 = self._log_term(r, alpha, s, beta, self.uxt)[self.ixt]
        l2 = self._log_term(r, alpha, s, beta, self.uxT)[self.ixT]
        with np.errstate(divide="ignore", invalid="ignore"):
            log_a0 = l1 + np.log(-np.expm1(np.minimum(l2 - l1, 0.0)))
        dead = np.log(s / (r + s + self.x)) + log_a0
        with np.errstate(invalid="ignore"):
            # A 2F1 that fails to evaluate gives NaN: maximise() treats it as a bad point.
            return base + np.logaddexp(alive, dead)


def fit_pareto_nbd(frequency, recency, T, weights=None, *, random_seed: int = 0) -> ParetoNbdParams:
    """Maximum-likelihood Pareto/NBD fit on log-parameters (L-BFGS-B) over distinct rows."""
    rows, sampled = Rows.build(frequency, recency, T, weights, seed=random_seed)
    if rows.w.sum() == 0:
        raise ValueError("fit_pareto_nbd needs at least one customer")
    rate = (dot(rows.x, rows.w) + 1.0) / (dot(rows.T, rows.w) + 1.0)
    mean_T = float(np.average(rows.T, weights=rows.w)) + 1.0
    result = maximise(_Split(rows), rows, np.log([1.0, 1.0 / rate, 1.0, mean_T]),
                      [(-LOG_BOUND, LOG_BOUND)] * 4)
    r, alpha, s, beta = np.exp(result.theta)
    return ParetoNbdParams(
        r=float(r), alpha=float(alpha), s=float(s), beta=float(beta),
        log_likelihood=result.log_likelihood, n_customers=int(round(rows.w.sum())),
        converged=result.converged, iterations=result.iterations,
        at_bound=tuple(NAMES[i] for i in result.at_bound),
        covariance=None if result.covariance is None else tuple(map(tuple, result.covariance.tolist())),
        sampled=sampled,
    )
