"""Why a customer's value changed between two valuation runs, in named drivers that add up
exactly to the change.

The CLV change is split by sequential substitution (the "chain-linking" of variance
analysis, e.g. Horngren's cost accounting): the inputs of the previous run are replaced by
those of the current run one group at a time, and each step's change in the model's CLV is
that group's driver:

1. time_without_purchase: the previous inputs, with the customer's age moved on by the time
   between the runs (no purchase in between): P(alive) and the expected purchases fall;
2. new_purchases: the current purchase history (purchase days, recency, age, mean margins,
   trailing margin) under the previous run's models and settings;
3. model_refit: the current run's models (its chosen purchase model, BG/NBD, MBG/NBD or
   Pareto/NBD, with its fitted parameters, Gamma-Gamma, population margin, fit-quality
   fallback) and settings (horizon, discount rate);
4. status_change: the customer's status of the current run (lost or not).

Every CLV here is value.value_customers' CLV with the run's own stored ValuationModels, the
function the run itself scored with, so re-scoring a run's stored inputs with its stored
models gives its stored CLV to the cent, and model_refit is only the change of the models,
never a difference between two formulas. Every step is rounded to cents as the run writes
(money.to_money), so the drivers telescope: their sum is the stored current CLV minus the
stored previous CLV to the cent. What the model does not reproduce of the stored figures
(rows written before their inputs were kept) is added to the model-refit driver, or to the
status driver when the status changed.

The value to the customer changes through new free services, services that left the
trailing window, and standard-cost changes (value_to_customer_drivers).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .money import to_cents
from .settings import EngineSettings
from .value import ValuationModels, value_customers

CLV_DRIVERS = ("time_without_purchase", "new_purchases", "model_refit", "status_change")
VALUE_TO_DRIVERS = ("new_services", "expired_services", "standard_cost_changes")
# One row per customer: the model inputs a run keeps with each value row, its stored clv,
# and lost (the customer's status in that run).
INPUT_COLUMNS = ("purchase_days", "recency_weeks", "age_weeks", "mean_repeat_margin", "mean_purchase_margin",
                 "margin_window", "lost", "clv")


@dataclass(frozen=True)
class RunModel:
    """What a run's CLV was computed with: its stored models and settings."""

    models: ValuationModels
    settings: EngineSettings

    @classmethod
    def from_stored(cls, parameters: dict[str, Any], settings: dict[str, Any]) -> RunModel:
        """From the JSON a run stores (ValuationModels.to_dict, EngineSettings.to_dict)."""
        return cls(ValuationModels.from_dict(parameters), EngineSettings.from_dict(settings))


def point_clv(model: RunModel, inputs: pd.DataFrame) -> np.ndarray:
    """The run's CLV of each row of ``inputs`` (INPUT_COLUMNS but clv): value_customers with
    the run's models and settings, without the ranges (they do not enter the CLV)."""
    return value_customers(inputs, model.models, model.settings, ranges=False)["clv"].to_numpy(dtype=float)


def _aged(inputs: pd.DataFrame, weeks_between: float) -> pd.DataFrame:
    """The inputs with each buyer's age moved on by weeks_between. Ages are whole days / 7,
    so the days are added (not the weeks): the aged age is the very float the next run
    computes for a customer who did not buy in between."""
    aged = inputs.copy()
    buyer = aged["purchase_days"].to_numpy(dtype=float) >= 1
    days = np.round(aged["age_weeks"].to_numpy(dtype=float) * 7.0) + round(max(weeks_between, 0.0) * 7.0)
    aged["age_weeks"] = np.where(buyer, days / 7.0, aged["age_weeks"].to_numpy(dtype=float))
    return aged


def clv_change_drivers(
    previous: pd.DataFrame, current: pd.DataFrame, *, previous_model: RunModel, current_model: RunModel,
    weeks_between: float,
) -> pd.DataFrame:
    """Per customer (current's index), the CLV drivers in cents (int64), CLV_DRIVERS columns,
    plus previous_clv and current_clv in cents. A customer missing from ``previous`` starts
    from nothing (no purchases, CLV 0).

    Sum over CLV_DRIVERS == current_clv - previous_clv exactly, for every customer.
    """
    current = current.copy()
    current["lost"] = current["lost"].fillna(False).astype(bool)
    previous = previous.reindex(current.index)
    missing = previous["clv"].isna().to_numpy()
    # Rows written before the inputs were kept: nothing to substitute, so the change starts
    # at the stored previous CLV (no time driver).
    bought = pd.to_numeric(previous["purchase_days"], errors="coerce").fillna(0).to_numpy() >= 1
    unknown = ~missing & bought & previous[["recency_weeks", "age_weeks"]].isna().any(axis=1).to_numpy()
    previous = previous.fillna({"purchase_days": 0, "recency_weeks": 0.0, "age_weeks": 0.0,
                                "mean_repeat_margin": 0.0, "mean_purchase_margin": 0.0, "margin_window": 0.0,
                                "clv": 0.0})
    previous["lost"] = previous["lost"].where(~missing, current["lost"]).fillna(False).astype(bool)

    stored_before = to_cents(previous["clv"])
    stored_after = to_cents(current["clv"])
    model_before = to_cents(point_clv(previous_model, previous))
    after_time = to_cents(point_clv(previous_model, _aged(previous, weeks_between)))
    model_before = np.where(unknown, stored_before, model_before)
    after_time = np.where(unknown, stored_before, after_time)
    # The current history under the previous status, then the current models, then the status.
    as_before = current.assign(lost=previous["lost"].to_numpy())
    after_purchases = to_cents(point_clv(previous_model, as_before))
    after_refit = to_cents(point_clv(current_model, as_before))
    after_status = to_cents(point_clv(current_model, current))

    # What the model does not reproduce of the stored figures, at either end.
    unexplained = (model_before - stored_before) + (stored_after - after_status)
    status_changed = previous["lost"].to_numpy(dtype=bool) != current["lost"].to_numpy(dtype=bool)
    return pd.DataFrame(
        {
            "time_without_purchase": after_time - model_before,
            "new_purchases": after_purchases - after_time,
            "model_refit": after_refit - after_purchases + np.where(status_changed, 0, unexplained),
            "status_change": after_status - after_refit + np.where(status_changed, unexplained, 0),
            "previous_clv": stored_before,
            "current_clv": stored_after,
        },
        index=current.index,
    )


def value_to_customer_drivers(
    *, previous: float, current: float, new_services: float, expired_services: float
) -> dict[str, int]:
    """The change in value to the customer in cents: services given since the previous run,
    minus services that left the trailing window, and the rest, which is what standard-cost
    changes (a cost entered for days already valued) did to the figure. Sums exactly."""
    before, after, new, expired = (int(c) for c in to_cents([previous, current, new_services, expired_services]))
    return {
        "new_services": new,
        "expired_services": -expired,
        "standard_cost_changes": (after - before) - new + expired,
    }
