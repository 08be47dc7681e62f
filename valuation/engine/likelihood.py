"""Shared maximum-likelihood machinery of the purchase models fitted without an analytic
gradient (MBG/NBD, Pareto/NBD): distinct rows with weights, L-BFGS-B on log-parameters, a
numerical Hessian for the standard errors, and the checks the fit-quality gate reads."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import minimize

from .reductions import dot

# Bounds of the log-parameters of every fit (BG/NBD, MBG/NBD, Pareto/NBD, Gamma-Gamma): far
# enough to never bind on sane data, near enough to keep the optimiser away from overflow.
LOG_BOUND = 12.0
# A parameter this close to its bound (in log units) is reported as at the bound.
AT_BOUND = 1e-3
# Above this many customers the challenger models are fitted on a random sample of this
# size: their likelihood has no analytic gradient here, and 50,000 customers pin four
# parameters to well under 1 % (the standard errors reported are those of the sample).
MAX_FIT_CUSTOMERS = 50_000


def minimise_with_gradient(objective, theta0: np.ndarray, bounds, gtol: float):
    """L-BFGS-B on an objective that returns (value, gradient): the closed-form fits
    (BG/NBD, Gamma-Gamma) share these tolerances; ftol is below float precision so that
    gtol decides when to stop."""
    return minimize(objective, theta0, jac=True, method="L-BFGS-B", bounds=bounds,
                    options={"maxiter": 1000, "ftol": 1e-15, "gtol": gtol})


@dataclass(frozen=True)
class Rows:
    """Distinct (x, t_x, T) rows and their weights (t_x is 0 where x is 0)."""

    x: np.ndarray
    t_x: np.ndarray
    T: np.ndarray
    w: np.ndarray

    def unique(self, *columns: str) -> tuple[np.ndarray, np.ndarray]:
        """Distinct values (or value pairs) of the named columns and each row's index into
        them: terms depending on them alone are evaluated once per distinct value."""
        if len(columns) == 1:
            return np.unique(getattr(self, columns[0]), return_inverse=True)
        codes = pd.DataFrame({c: getattr(self, c) for c in columns}).groupby(list(columns), sort=False).ngroup()
        inverse = codes.to_numpy()
        first = np.unique(inverse, return_index=True)[1]
        return np.stack([getattr(self, c)[first] for c in columns], axis=1), inverse

    @classmethod
    def build(
        cls, x: np.ndarray, t_x: np.ndarray, T: np.ndarray, w: np.ndarray | None = None, *, seed: int = 0
    ) -> tuple[Rows, bool]:
        """Rows of all customers, or of a seeded random sample of MAX_FIT_CUSTOMERS when there
        are more (the flag says which). Inside ``shared_rows()`` the last result is reused for
        the same inputs."""
        if not _SHARING:
            return cls._build(x, t_x, T, w, seed=seed)
        inputs = (seed, *(None if v is None else np.array(v, dtype=float) for v in (x, t_x, T, w)))
        last = _LAST_BUILD[:]  # one read: fits on other threads may replace it meanwhile
        if last and _same_inputs(last[0], inputs):
            return last[1]
        result = cls._build(x, t_x, T, w, seed=seed)
        _LAST_BUILD[:] = [inputs, result]
        return result

    @classmethod
    def _build(
        cls, x: np.ndarray, t_x: np.ndarray, T: np.ndarray, w: np.ndarray | None = None, *, seed: int = 0
    ) -> tuple[Rows, bool]:
        x = np.asarray(x, dtype=float)
        t_x = np.where(x > 0, np.asarray(t_x, dtype=float), 0.0)
        T = np.asarray(T, dtype=float)
        w = np.ones_like(x) if w is None else np.asarray(w, dtype=float)
        sampled = w.sum() > MAX_FIT_CUSTOMERS
        if sampled:  # in a canonical order first, so that the sample does not depend on the rows' order
            order = np.lexsort((w, T, t_x, x))
            x, t_x, T, w = x[order], t_x[order], T[order], w[order]
            pick = np.random.default_rng([seed, 7]).choice(len(x), MAX_FIT_CUSTOMERS, replace=True, p=w / w.sum())
            x, t_x, T, w = x[pick], t_x[pick], T[pick], np.ones(MAX_FIT_CUSTOMERS)
        # Sorted: the sums, and so the optimiser's path on a flat likelihood, do not depend on the rows' order.
        grouped = pd.DataFrame({"x": x, "t_x": t_x, "T": T, "w": w}).groupby(["x", "t_x", "T"], sort=True)["w"].sum()
        index = grouped.index
        return cls(
            index.get_level_values(0).to_numpy(dtype=float),
            index.get_level_values(1).to_numpy(dtype=float),
            index.get_level_values(2).to_numpy(dtype=float),
            grouped.to_numpy(dtype=float),
        ), bool(sampled)


# Rows.build's last inputs (copies) and result, kept only inside shared_rows().
_LAST_BUILD: list = []
_SHARING: list = []


@contextmanager
def shared_rows():
    """Within the block, Rows.build reuses its last result for the same inputs: a back-test
    fits the BG/NBD covariance, MBG/NBD and Pareto/NBD on the same customers, and at a million
    customers sorting them costs a third of a second each time. Nothing is kept after the
    block, so a long-running worker does not hold the copies (tens of MB at 1M customers)."""
    _SHARING.append(True)
    try:
        yield
    finally:
        _SHARING.pop()
        if not _SHARING:
            _LAST_BUILD.clear()


def _same_inputs(a: tuple, b: tuple) -> bool:
    return a[0] == b[0] and all(
        (u is None and v is None) or (u is not None and v is not None and u.shape == v.shape and np.array_equal(u, v))
        for u, v in zip(a[1:], b[1:], strict=True)
    )


@dataclass(frozen=True)
class MLResult:
    theta: np.ndarray  # log-parameters at the maximum
    log_likelihood: float
    converged: bool
    iterations: int
    at_bound: tuple[int, ...]  # indices of parameters at a bound
    covariance: np.ndarray | None  # of the log-parameters; None if the Hessian is not invertible


def numerical_hessian(f: Callable[[np.ndarray], float], theta: np.ndarray, step: float = 1e-4) -> np.ndarray:
    """Central-difference Hessian of a scalar function (step in log-parameter units)."""
    k = len(theta)
    H = np.empty((k, k))
    f0 = f(theta)
    for i in range(k):
        ei = np.zeros(k)
        ei[i] = step
        H[i, i] = (f(theta + ei) - 2 * f0 + f(theta - ei)) / step**2
        for j in range(i + 1, k):
            ej = np.zeros(k)
            ej[j] = step
            H[i, j] = H[j, i] = (
                f(theta + ei + ej) - f(theta + ei - ej) - f(theta - ei + ej) + f(theta - ei - ej)
            ) / (4 * step**2)
    return H


def covariance_from_hessian(H_of_negative_ll: np.ndarray) -> np.ndarray | None:
    """Inverse of the observed information; None when it is not positive definite (the
    parameters are not identified by the data)."""
    try:
        np.linalg.cholesky(H_of_negative_ll)
        cov = np.linalg.inv(H_of_negative_ll)
    except np.linalg.LinAlgError:
        return None
    return cov if np.all(np.isfinite(cov)) else None


def maximise(
    row_log_likelihood: Callable[[np.ndarray, Rows], np.ndarray],
    rows: Rows,
    theta0: np.ndarray,
    bounds: list[tuple[float, float]] | None = None,
) -> MLResult:
    """Maximise sum_i w_i l_i(theta) with L-BFGS-B (finite-difference gradient) from theta0,
    then take the Hessian of the total at the maximum for the standard errors."""
    total = float(rows.w.sum())
    bounds = bounds or [(-LOG_BOUND, LOG_BOUND)] * len(theta0)

    def objective(theta: np.ndarray) -> float:
        ll = row_log_likelihood(theta, rows)
        value = -dot(rows.w, ll) / total  # einsum, not BLAS: see reductions.py
        return value if np.isfinite(value) else 1e100

    result = minimize(objective, theta0, method="L-BFGS-B", bounds=bounds,
                      options={"maxiter": 2000, "ftol": 1e-13, "gtol": 1e-7, "eps": 1e-7})
    theta = result.x
    at_bound = tuple(
        i for i, (lo, hi) in enumerate(bounds) if theta[i] - lo < AT_BOUND or hi - theta[i] < AT_BOUND
    )
    H = numerical_hessian(lambda t: objective(t) * total, theta)
    cov = covariance_from_hessian(H) if not at_bound else None
    # A finite-difference gradient never vanishes exactly: an interior point where the
    # optimiser stopped on its tolerances with an invertible Hessian is a maximum.
    converged = bool(result.success) and not at_bound and cov is not None
    return MLResult(theta, float(-result.fun * total), converged, int(result.nit), at_bound, cov)
