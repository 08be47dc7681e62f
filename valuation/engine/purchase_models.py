"""The three purchase models behind one set of functions: BG/NBD, MBG/NBD and Pareto/NBD.

Each answers the same questions for a customer with x repeat purchases, the last at t_x,
age T (weeks): P(alive), expected purchases in (T, T+t] if alive, the chance of still being
alive at T+t if alive at T, and a draw of the posterior for the Monte Carlo ranges.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import numpy as np
from scipy.special import hyp2f1

from .bgnbd import (
    BgNbdParams,
    bgnbd_expected_purchases_if_alive,
    bgnbd_individual_log_likelihood,
    bgnbd_p_alive,
    fit_bgnbd,
)
from .likelihood import Rows, covariance_from_hessian, numerical_hessian
from .mbgnbd import MbgNbdParams, fit_mbgnbd, mbgnbd_expected_purchases_if_alive, mbgnbd_p_alive
from .pareto_nbd import (
    ParetoNbdParams,
    fit_pareto_nbd,
    pareto_nbd_expected_purchases_if_alive,
    pareto_nbd_p_alive,
    pareto_nbd_survival_if_alive,
)
from .reductions import dot

PurchaseParams = BgNbdParams | MbgNbdParams | ParetoNbdParams
PURCHASE_MODELS = ("bgnbd", "mbgnbd", "pareto_nbd")
_CLASSES = {"bgnbd": BgNbdParams, "mbgnbd": MbgNbdParams, "pareto_nbd": ParetoNbdParams}
_NAMES = {"bgnbd": ("r", "alpha", "a", "b"), "mbgnbd": ("r", "alpha", "a", "b"),
          "pareto_nbd": ("r", "alpha", "s", "beta")}


def model_name(params: PurchaseParams) -> str:
    for name, cls in _CLASSES.items():
        if type(params) is cls:
            return name
    raise TypeError(f"not a purchase model: {type(params).__name__}")


def parameter_names(params: PurchaseParams) -> tuple[str, ...]:
    return _NAMES[model_name(params)]


def log_parameters(params: PurchaseParams) -> np.ndarray:
    return np.log([getattr(params, n) for n in parameter_names(params)])


def with_log_parameters(params: PurchaseParams, theta: np.ndarray) -> PurchaseParams:
    return replace(params, **{n: float(math.exp(t)) for n, t in zip(parameter_names(params), theta, strict=False)})


def params_from_dict(name: str, data: dict[str, Any]) -> PurchaseParams:
    values = dict(data)
    for key in ("at_bound",):
        if key in values and values[key] is not None:
            values[key] = tuple(values[key])
    if values.get("covariance") is not None:
        values["covariance"] = tuple(map(tuple, values["covariance"]))
    return _CLASSES[name].from_dict(values)


def fit_purchase_model(name: str, x, t_x, T, *, random_seed: int = 0) -> PurchaseParams:
    """Maximum-likelihood fit of the named model. BG/NBD uses its analytic-gradient fitter
    on all customers and gets its covariance here (numerical Hessian, see
    :func:`bgnbd_covariance`); the others come with theirs."""
    if name == "bgnbd":
        fit = fit_bgnbd(x, t_x, T, random_seed=random_seed)
        at_bound = tuple(
            n for n in _NAMES["bgnbd"] if abs(math.log(getattr(fit, n))) > 12.0 - 1e-3
        )
        cov = None if at_bound else bgnbd_covariance(fit, x, t_x, T, random_seed=random_seed)
        return replace(fit, at_bound=at_bound, covariance=cov,
                       converged=fit.converged and cov is not None)
    if name == "mbgnbd":
        return fit_mbgnbd(x, t_x, T, random_seed=random_seed)
    if name == "pareto_nbd":
        return fit_pareto_nbd(x, t_x, T, random_seed=random_seed)
    raise ValueError(f"unknown purchase model {name!r}; choose from {PURCHASE_MODELS}")


def bgnbd_covariance(params: BgNbdParams, x, t_x, T, *, random_seed: int = 0):
    """Covariance of the BG/NBD log-parameters: inverse numerical Hessian of the
    log-likelihood. Above MAX_FIT_CUSTOMERS it is taken on a random sample and scaled by
    sample size / customers (the information grows with the number of customers)."""
    rows, sampled = Rows.build(x, t_x, T, seed=random_seed)
    theta0 = log_parameters(params)

    def negative_ll(theta: np.ndarray) -> float:
        trial = with_log_parameters(params, theta)
        return -dot(rows.w, bgnbd_individual_log_likelihood(trial, rows.x, rows.t_x, rows.T))

    cov = covariance_from_hessian(numerical_hessian(negative_ll, theta0))
    if cov is None:
        return None
    if sampled:
        cov = cov * rows.w.sum() / max(len(np.asarray(x)), 1)
    return tuple(map(tuple, cov.tolist()))


def p_alive(params: PurchaseParams, x, t_x, T) -> np.ndarray:
    name = model_name(params)
    if name == "bgnbd":
        return bgnbd_p_alive(params, x, t_x, T)
    if name == "mbgnbd":
        return mbgnbd_p_alive(params, x, t_x, T)
    return pareto_nbd_p_alive(params, x, t_x, T)


def expected_purchases_if_alive(params: PurchaseParams, t, x, T) -> np.ndarray:
    """E[purchases in (T, T+t] | alive at T]; depends on x and T only, in all three models."""
    name = model_name(params)
    if name == "bgnbd":
        return bgnbd_expected_purchases_if_alive(params, t, x, T)
    if name == "mbgnbd":
        return mbgnbd_expected_purchases_if_alive(params, t, x, T)
    return pareto_nbd_expected_purchases_if_alive(params, t, x, T)


def survival_if_alive(params: PurchaseParams, t, x, T) -> np.ndarray:
    """P(alive at T+t | alive at T, x).

    BG/NBD: given p and lambda the customer survives the Poisson(lambda t) purchases of t with
    probability E[(1-p)^N] = exp(-lambda p t); lambda | x, T ~ Gamma(r+x, alpha+T) and
    p | x ~ Beta(a, b+x) (FHL 2005, appendix) give E_p[(1 + p t/(alpha+T))^-(r+x)]
    = 2F1(r+x, a; a+b+x; -t/(alpha+T)) (Euler's integral), which Pfaff's transformation turns
    into ((alpha+T)/(alpha+T+t))^a 2F1(a+b-r, a; a+b+x; t/(alpha+T+t)).
    MBG/NBD: the same with p | x ~ Beta(a, b+x+1), so a+b+x+1 and a+b+1-r.
    Pareto/NBD: ((beta+T)/(beta+T+t))^s.
    """
    name = model_name(params)
    t, x, T = (np.asarray(v, dtype=float) for v in np.broadcast_arrays(t, x, T))
    if name == "pareto_nbd":
        return pareto_nbd_survival_if_alive(params, t, T)
    extra = 1.0 if name == "mbgnbd" else 0.0
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    z = t / (alpha + T + t)
    with np.errstate(over="ignore", invalid="ignore"):
        value = (1.0 - z) ** a * hyp2f1(a + b + extra - r, a, a + b + x + extra, z)
    return np.clip(np.where(np.isfinite(value), value, 0.0), 0.0, 1.0)
