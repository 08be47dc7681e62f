"""Gamma-Gamma model of the value per purchase (here: margin per purchase).

Source: Fader & Hardie (2013), "The Gamma-Gamma Model of Monetary Value" (note), after
Colombo & Jiang (1999). Each purchase's value z ~ Gamma(p, nu) (shape p, rate nu); across
customers nu ~ Gamma(q, v). The data of a customer are x repeat purchases with mean value
zbar; only customers with x >= 1 and zbar > 0 inform the fit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from scipy.special import digamma, gammaln

from .likelihood import LOG_BOUND as _LOG_BOUND
from .likelihood import minimise_with_gradient
from .reductions import dot
from .stored import FittedParams

ArrayLike = np.ndarray | pd.Series | list[float] | float

_WARM_START_ROWS = 50_000


@dataclass(frozen=True)
class GammaGammaParams(FittedParams):
    p: float
    q: float
    v: float  # the covariance is of (log p, log(q - 1), log v)

    @property
    def population_mean(self) -> float:
        """E[Z] = p v / (q - 1) (finite for q > 1 only; infinite otherwise)."""
        return self.p * self.v / (self.q - 1.0) if self.q > 1.0 else math.inf



def _usable(x: np.ndarray, zbar: np.ndarray) -> np.ndarray:
    return (x >= 1) & (zbar > 0) & np.isfinite(zbar)


def gamma_gamma_individual_log_likelihood(
    params: GammaGammaParams, frequency: ArrayLike, mean_value: ArrayLike
) -> np.ndarray:
    """Log density of the observed mean value zbar given x (eq. 3 of the note):
    Gamma(px+q) / (Gamma(px) Gamma(q)) v^q zbar^(px-1) x^(px) / (v + x zbar)^(px+q)."""
    x = np.asarray(frequency, dtype=float)
    z = np.asarray(mean_value, dtype=float)
    p, q, v = params.p, params.q, params.v
    px = p * x
    return (
        gammaln(px + q) - gammaln(px) - gammaln(q) + q * math.log(v)
        + (px - 1) * np.log(z) + px * np.log(x) - (px + q) * np.log(v + x * z)
    )


class _FitData:
    def __init__(self, x: np.ndarray, z: np.ndarray) -> None:
        # Terms depending on x alone are computed per distinct x.
        self.ux, ix = np.unique(x, return_inverse=True)
        self.nx = np.bincount(ix, minlength=len(self.ux)).astype(float)
        self.n = float(len(x))
        self.x = x
        self.xz = x * z
        self.sum_x_log_xz = dot(x, np.log(z) + np.log(x))
        self.sum_log_z = float(np.log(z).sum())

    def negative_log_likelihood(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        p, q, v = np.exp(theta)
        ux, nx = self.ux, self.nx
        log_v_xz = np.log(v + self.xz)
        ll = (
            dot(nx, gammaln(p * ux + q) - gammaln(p * ux))
            - self.n * gammaln(q) + self.n * q * math.log(v)
            + p * self.sum_x_log_xz - self.sum_log_z
            - dot(p * self.x + q, log_v_xz)
        )
        psi = digamma(p * ux + q)
        g_p = dot(nx, ux * (psi - digamma(p * ux))) + self.sum_x_log_xz - dot(self.x, log_v_xz)
        g_q = dot(nx, psi) - self.n * digamma(q) + self.n * math.log(v) - float(log_v_xz.sum())
        g_v = self.n * q / v - dot(p * self.x + q, 1.0 / (v + self.xz))
        grad = -np.array([g_p * p, g_q * q, g_v * v]) / self.n
        return -ll / self.n, grad


def _minimise(data: _FitData, theta0: np.ndarray, gtol: float) -> Any:
    return minimise_with_gradient(data.negative_log_likelihood, theta0, [(-_LOG_BOUND, _LOG_BOUND)] * 2 + [(-30.0, 30.0)], gtol)


def fit_gamma_gamma(frequency: ArrayLike, mean_value: ArrayLike) -> GammaGammaParams:
    """Maximum-likelihood fit (log-parameters, L-BFGS-B, analytic gradient) on the customers
    with at least one repeat purchase and a positive mean value; the rest are ignored."""
    x = np.asarray(frequency, dtype=float)
    z = np.asarray(mean_value, dtype=float)
    keep = _usable(x, z)
    if keep.sum() < 2:
        raise ValueError("the Gamma-Gamma fit needs at least two customers with repeat purchases")
    x, z = x[keep], z[keep]
    data = _FitData(x, z)
    # Start at a moderate spread around the mean value.
    theta = np.log([2.0, 3.0, max(float(np.mean(z)), 1e-6)])
    if len(x) > _WARM_START_ROWS:
        # A fixed subsample finds the neighbourhood; the full data then need few passes.
        pick = np.random.default_rng(0).choice(len(x), _WARM_START_ROWS, replace=False)
        theta = _minimise(_FitData(x[pick], z[pick]), theta, 1e-6).x
    # Gradient of the mean log-likelihood below 1e-7: parameters good to about 1e-7
    # relative; tighter settings only make the line search thrash at float precision.
    result = _minimise(data, theta, 1e-7)
    p, q, v = np.exp(result.x)
    return GammaGammaParams(
        p=float(p),
        q=float(q),
        v=float(v),
        log_likelihood=float(-result.fun * data.n),
        n_customers=int(data.n),
        converged=bool(np.all(np.abs(result.x[:2]) < _LOG_BOUND - 1e-6))
        and (bool(result.success) or float(np.max(np.abs(result.jac))) < 1e-6),
    )


def gamma_gamma_expected_value(
    params: GammaGammaParams,
    frequency: ArrayLike,
    mean_value: ArrayLike,
    fallback: float | None = None,
) -> np.ndarray:
    """E[Z | x, zbar] = p (v + x zbar) / (p x + q - 1) (eq. 5 of the note), a weighted mean of
    the population mean p v / (q - 1) and the customer's zbar.

    Customers without repeat purchases or with a non-positive or missing mean get the
    population mean (``fallback`` replaces it, e.g. when q <= 1 makes it infinite).
    """
    x = np.asarray(frequency, dtype=float)
    z = np.asarray(mean_value, dtype=float)
    p, q, v = params.p, params.q, params.v
    population = params.population_mean if fallback is None else fallback
    use = _usable(x, z)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        own = p * (v + x * np.where(use, z, 0.0)) / (p * x + q - 1.0)
    # p x + q <= 1 leaves the posterior mean infinite; such customers fall back too.
    own_ok = use & (p * x + q > 1.0) & np.isfinite(own)
    return np.where(own_ok, own, population)


# q - 1 below this counts as "q at 1": the population mean spend p v / (q - 1) is then so large
# that it is driven by the bound, not by the data.
_MIN_Q_EXCESS = math.exp(-8.0)
# The search range of fit_gamma_gamma_finite on (log p, log(q - 1), log v): v is money, so its
# range is wider (a margin of 290,000 yen per purchase is e^12.6).
FINITE_BOUNDS = ((-_LOG_BOUND, _LOG_BOUND), (math.log(_MIN_Q_EXCESS), _LOG_BOUND), (-30.0, 30.0))


def fit_gamma_gamma_finite(frequency: ArrayLike, mean_value: ArrayLike) -> GammaGammaParams:
    """Gamma-Gamma fit constrained to q > 1, where the population mean spend p v / (q - 1)
    is finite (Fader & Hardie 2013, eq. 4): the likelihood is maximised over
    (log p, log(q - 1), log v). When the data push q towards 1 the estimate ends at the bound
    q - 1 = e^-8 and at_bound names "q": the spend model is then not usable, the fit-quality
    gate reports it and the valuation falls back. Also returns the covariance of the three
    log-parameters (numerical Hessian) for the parameter uncertainty of the ranges.
    """
    from .likelihood import covariance_from_hessian, numerical_hessian

    x = np.asarray(frequency, dtype=float)
    z = np.asarray(mean_value, dtype=float)
    keep = _usable(x, z)
    if keep.sum() < 2:
        raise ValueError("the Gamma-Gamma fit needs at least two customers with repeat purchases")
    data = _FitData(x[keep], z[keep])
    bounds = list(FINITE_BOUNDS)

    def objective(phi: np.ndarray) -> tuple[float, np.ndarray]:
        # phi = (log p, log(q - 1), log v); chain rule from the log q gradient.
        q = 1.0 + math.exp(phi[1])
        value, grad = data.negative_log_likelihood(np.array([phi[0], math.log(q), phi[2]]))
        grad = grad.copy()
        grad[1] *= (q - 1.0) / q
        return value, grad

    start = np.array([math.log(2.0), math.log(2.0), math.log(max(float(np.mean(z[keep])), 1e-6))])
    result = minimize(objective, start, jac=True, method="L-BFGS-B", bounds=bounds,
                      options={"maxiter": 1000, "ftol": 1e-15, "gtol": 1e-7})
    phi = result.x
    names = ("p", "q", "v")
    at_bound = tuple(
        names[i] for i, (lo, hi) in enumerate(bounds) if phi[i] - lo < 1e-3 or hi - phi[i] < 1e-3
    )
    H = numerical_hessian(lambda t: objective(t)[0] * data.n, phi)
    cov = covariance_from_hessian(H) if not at_bound else None
    converged = not at_bound and cov is not None and (
        bool(result.success) or float(np.max(np.abs(result.jac))) < 1e-6
    )
    return GammaGammaParams(
        p=float(math.exp(phi[0])),
        q=float(1.0 + math.exp(phi[1])),
        v=float(math.exp(phi[2])),
        log_likelihood=float(-result.fun * data.n),
        n_customers=int(data.n),
        converged=converged,
        at_bound=at_bound,
        covariance=None if cov is None else tuple(map(tuple, cov.tolist())),
    )
