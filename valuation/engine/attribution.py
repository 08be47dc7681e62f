"""Why a customer's value changed between two valuation runs, in named drivers that add up
exactly to the change.

The CLV change is split by sequential substitution (the "chain-linking" of variance
analysis, e.g. Horngren's cost accounting): the inputs of the previous run are replaced by
those of the current run one group at a time, and each step's change in the model's CLV is
that group's driver:

1. time_without_purchase: the previous inputs, with the customer's age moved on by the time
   between the runs (no purchase in between): P(alive) and the expected purchases fall;
2. new_purchases: the current purchase history (frequency, recency, age, mean repeat
   margin) under the previous model parameters and settings;
3. model_refit: the current model parameters (BG/NBD, Gamma-Gamma, population margin) and
   settings (horizon, discount rate);
4. status_change: what the stored CLV differs from the model's when the customer's status
   changed (a customer marked lost).

Every step is rounded to cents, so the drivers telescope: their sum is the stored current
CLV minus the stored previous CLV to the cent. What the model does not reproduce of the
stored figures (rows written by an earlier engine version, cent rounding) is added to the
model-refit driver, or to the status driver when the status changed.

The value to the customer changes through new free services, services that left the
trailing window, and standard-cost changes (value_to_customer_drivers).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .bgnbd import bgnbd_p_alive
from .clv import ModelFit
from .gamma_gamma import gamma_gamma_expected_value
from .predictive import purchases_if_alive
from .settings import EngineSettings

CLV_DRIVERS = ("time_without_purchase", "new_purchases", "model_refit", "status_change")
VALUE_TO_DRIVERS = ("new_services", "expired_services", "standard_cost_changes")
# One row per customer: purchase_days, recency_weeks, age_weeks, mean_repeat_margin,
# clv (stored) and active.
INPUT_COLUMNS = ("purchase_days", "recency_weeks", "age_weeks", "mean_repeat_margin", "clv", "active")


@dataclass(frozen=True)
class RunModel:
    """What a run's CLV was computed with: its fitted models and settings."""

    fit: ModelFit
    settings: EngineSettings


def point_clv(model: RunModel, inputs: pd.DataFrame) -> np.ndarray:
    """The CLV point estimate of engine.clv.score_customers, without the predictive interval:
    P(alive) x discounted expected purchases if alive x expected margin per purchase.

    ``inputs``: purchase_days, recency_weeks, age_weeks, mean_repeat_margin per customer.
    """
    n = len(inputs)
    clv = np.zeros(n)
    fit, settings = model.fit, model.settings
    purchase_days = inputs["purchase_days"].to_numpy(dtype=float)
    buyer = purchase_days >= 1
    if fit.bgnbd is None or not buyer.any():
        return clv
    b = np.flatnonzero(buyer)
    x = np.maximum(purchase_days[b] - 1, 0)
    T = np.clip(np.nan_to_num(inputs["age_weeks"].to_numpy(dtype=float)[b]), 0.0, None)
    t_x = np.minimum(np.clip(np.nan_to_num(inputs["recency_weeks"].to_numpy(dtype=float)[b]), 0.0, None), T)
    m = np.nan_to_num(inputs["mean_repeat_margin"].to_numpy(dtype=float)[b])
    p_alive = bgnbd_p_alive(fit.bgnbd, x, t_x, T)
    _plain, discounted = purchases_if_alive(fit.bgnbd, x, T, settings)
    own = (x >= 1) & (m > 0)
    lost = (x >= 1) & (m <= 0)
    if fit.gamma_gamma is not None:
        margin = gamma_gamma_expected_value(fit.gamma_gamma, x, m, fallback=fit.population_margin)
    else:
        margin = np.where(own, m, fit.population_margin)
    margin = np.where(lost, 0.0, margin)
    clv[b] = p_alive * discounted * margin
    return clv


def _cents(values) -> np.ndarray:
    return np.round(np.asarray(values, dtype=float) * 100.0).astype(np.int64)


def clv_change_drivers(
    previous: pd.DataFrame, current: pd.DataFrame, *, previous_model: RunModel, current_model: RunModel,
    weeks_between: float,
) -> pd.DataFrame:
    """Per customer (current's index), the CLV drivers in cents (int64), CLV_DRIVERS columns,
    plus previous_clv and current_clv in cents. A customer missing from ``previous`` starts
    from nothing (no purchases, CLV 0).

    Sum over CLV_DRIVERS == current_clv - previous_clv exactly, for every customer.
    """
    previous = previous.reindex(current.index)
    missing = previous["clv"].isna().to_numpy()
    # Rows written before the inputs were kept: nothing to substitute, so the change starts
    # at the stored previous CLV (no time driver).
    bought = pd.to_numeric(previous["purchase_days"], errors="coerce").fillna(0).to_numpy() >= 1
    unknown = ~missing & bought & previous[["recency_weeks", "age_weeks"]].isna().any(axis=1).to_numpy()
    previous = previous.fillna({"purchase_days": 0, "recency_weeks": 0.0, "age_weeks": 0.0,
                                "mean_repeat_margin": 0.0, "clv": 0.0})
    previous["active"] = previous["active"].where(~missing, current["active"]).astype(bool)

    stored_before = _cents(previous["clv"])
    stored_after = _cents(current["clv"])
    model_before = _cents(point_clv(previous_model, previous))
    aged = previous.copy()
    has_bought = aged["purchase_days"].to_numpy(dtype=float) >= 1
    aged.loc[has_bought, "age_weeks"] = aged.loc[has_bought, "age_weeks"] + max(weeks_between, 0.0)
    after_time = _cents(point_clv(previous_model, aged))
    model_before = np.where(unknown, stored_before, model_before)
    after_time = np.where(unknown, stored_before, after_time)
    after_purchases = _cents(point_clv(previous_model, current))
    after_refit = _cents(point_clv(current_model, current))

    # What the model does not reproduce of the stored figures, at either end.
    unexplained = (model_before - stored_before) + (stored_after - after_refit)
    status_changed = previous["active"].to_numpy(dtype=bool) != current["active"].to_numpy(dtype=bool)
    drivers = pd.DataFrame(
        {
            "time_without_purchase": after_time - model_before,
            "new_purchases": after_purchases - after_time,
            "model_refit": after_refit - after_purchases + np.where(status_changed, 0, unexplained),
            "status_change": np.where(status_changed, unexplained, 0),
            "previous_clv": stored_before,
            "current_clv": stored_after,
        },
        index=current.index,
    )
    return drivers


def value_to_customer_drivers(
    *, previous: float, current: float, new_services: float, expired_services: float
) -> dict[str, int]:
    """The change in value to the customer in cents: services given since the previous run,
    minus services that left the trailing window, and the rest, which is what standard-cost
    changes (a cost entered for days already valued) did to the figure. Sums exactly."""
    before, after = int(round(previous * 100)), int(round(current * 100))
    new, expired = int(round(new_services * 100)), int(round(expired_services * 100))
    return {
        "new_services": new,
        "expired_services": -expired,
        "standard_cost_changes": (after - before) - new + expired,
    }
