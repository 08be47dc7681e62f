"""Customer lifetime value: P(alive), expected purchases and discounted future margin with a
predictive interval, from a BG/NBD purchase model and a Gamma-Gamma margin model."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .bgnbd import BgNbdParams, bgnbd_p_alive, fit_bgnbd
from .gamma_gamma import GammaGammaParams, fit_gamma_gamma, gamma_gamma_expected_value
from .predictive import margin_interval, purchases_if_alive
from .settings import EngineSettings
from .summary import DateLike, as_timestamp

SCORE_COLUMNS = [
    "p_alive",
    "expected_purchases",
    "discounted_purchases",
    "expected_margin_per_purchase",
    "clv",
    "clv_low",
    "clv_high",
    "is_thin",
]


@dataclass(frozen=True)
class ModelFit:
    """Both fitted models plus the margin per purchase used where the spend model has none.

    population_margin: the Gamma-Gamma population mean p v / (q - 1); when that is not
    available (no spend fit, or q <= 1) the frequency-weighted mean of the positive mean
    repeat margins; 0 when there is none.
    """

    bgnbd: BgNbdParams | None
    gamma_gamma: GammaGammaParams | None
    diagnostics: dict[str, Any] = field(default_factory=dict)
    population_margin: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "bgnbd": self.bgnbd.to_dict() if self.bgnbd else None,
            "gamma_gamma": self.gamma_gamma.to_dict() if self.gamma_gamma else None,
            "population_margin": self.population_margin,
            "diagnostics": self.diagnostics,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelFit:
        return cls(
            bgnbd=BgNbdParams.from_dict(data["bgnbd"]) if data.get("bgnbd") else None,
            gamma_gamma=(
                GammaGammaParams.from_dict(data["gamma_gamma"]) if data.get("gamma_gamma") else None
            ),
            population_margin=float(data.get("population_margin", 0.0)),
            diagnostics=dict(data.get("diagnostics", {})),
        )


def _model_inputs(summary: pd.DataFrame, as_of: DateLike | None) -> pd.DataFrame:
    """frequency, recency_weeks, age_weeks, purchase_days, mean_repeat_margin as clean floats.

    Recency and age are derived from first/last purchase and as_of when not given.
    """
    frame = pd.DataFrame(index=summary.index)
    purchase_days = summary["purchase_days"] if "purchase_days" in summary else summary["frequency"] + 1
    frame["purchase_days"] = pd.to_numeric(purchase_days).fillna(0).astype(np.int64)
    frame["frequency"] = np.maximum(frame["purchase_days"].to_numpy() - 1, 0)
    for column in ("recency_weeks", "age_weeks"):
        if column not in summary:
            if as_of is None:
                raise ValueError(f"summary lacks {column} and no as_of was given")
            first = pd.to_datetime(summary["first_purchase"])
            if column == "recency_weeks":
                end = pd.to_datetime(summary["last_purchase"])
            else:
                end = as_timestamp(as_of)
            frame[column] = (end - first).dt.days / 7.0
        else:
            frame[column] = pd.to_numeric(summary[column])
    for column in ("recency_weeks", "age_weeks"):
        frame[column] = frame[column].fillna(0.0).clip(lower=0.0)
    frame["recency_weeks"] = np.minimum(frame["recency_weeks"], frame["age_weeks"])
    margin = summary.get("mean_repeat_margin", 0.0)
    frame["mean_repeat_margin"] = pd.to_numeric(pd.Series(margin, index=summary.index)).fillna(0.0)
    return frame


def fit_models(
    summary: pd.DataFrame, settings: EngineSettings | None = None, as_of: DateLike | None = None
) -> ModelFit:
    """Fit BG/NBD on every customer with at least one purchase day and Gamma-Gamma on those
    with a repeat purchase and a positive mean repeat margin (see summarise_transactions for
    the columns). A model without enough data is left out (None) and scoring falls back."""
    settings = settings or EngineSettings()
    data = _model_inputs(summary, as_of)
    buyers = data[data["purchase_days"] >= 1]
    diagnostics: dict[str, Any] = {
        "customers": int(len(data)),
        "buyers": int(len(buyers)),
        "repeat_buyers": int((buyers["frequency"] >= 1).sum()),
    }
    started = time.perf_counter()
    bgnbd = None
    if len(buyers):
        bgnbd = fit_bgnbd(
            buyers["frequency"], buyers["recency_weeks"], buyers["age_weeks"],
            random_seed=settings.random_seed,
        )
    diagnostics["bgnbd_seconds"] = round(time.perf_counter() - started, 3)

    spenders = buyers[(buyers["frequency"] >= 1) & (buyers["mean_repeat_margin"] > 0)]
    gamma_gamma = None
    if len(spenders) >= 2:
        try:
            gamma_gamma = fit_gamma_gamma(spenders["frequency"], spenders["mean_repeat_margin"])
        except ValueError:
            gamma_gamma = None
    if len(spenders) >= 3:
        # The Gamma-Gamma model assumes spend independent of frequency; report the check.
        corr = np.corrcoef(spenders["frequency"], spenders["mean_repeat_margin"])[0, 1]
        diagnostics["frequency_margin_correlation"] = round(float(corr), 4) if np.isfinite(corr) else 0.0
    diagnostics["fit_seconds"] = round(time.perf_counter() - started, 3)

    if gamma_gamma is not None and math.isfinite(gamma_gamma.population_mean):
        population = gamma_gamma.population_mean
    elif len(spenders):
        population = float(np.average(spenders["mean_repeat_margin"], weights=spenders["frequency"]))
    else:
        population = 0.0
    return ModelFit(bgnbd, gamma_gamma, diagnostics, population)


def score_customers(
    summary: pd.DataFrame,
    fit: ModelFit,
    settings: EngineSettings | None = None,
    as_of: DateLike | None = None,
) -> pd.DataFrame:
    """Per-customer model figures, one row per row of ``summary`` (same index).

    - p_alive: BG/NBD P(alive); 0 for customers without any purchase (no relationship yet).
    - expected_purchases: P(alive) * E[purchases in the next horizon_months | alive] (FHL eq. 10).
    - discounted_purchases: the same with the purchases of month m discounted by
      (1 + annual_discount_rate) ** (-m / 12), m = 1..horizon_months.
    - expected_margin_per_purchase: Gamma-Gamma conditional mean margin for customers with
      repeat purchases and a positive mean repeat margin; the population margin
      (ModelFit.population_margin) for customers without repeat purchases; 0 for customers whose
      repeat purchases made a non-positive mean margin: the spend model describes positive
      values only, and projecting the population mean onto a customer who has only lost money
      would be wrong. Their loss shows in the historical figures, so clv is never negative.
    - clv = discounted_purchases * expected_margin_per_purchase
      = sum_m d_m E[purchases in month m] E[margin per purchase] (spend independent of
      purchasing, as both models assume).
    - clv_low, clv_high: the interval_low and interval_high quantiles of the predictive
      distribution of the discounted margin of the horizon, by Monte Carlo from the posterior
      (predictive.py). It includes the chance that the customer is gone (margin 0), so the
      low end is often 0. No spend model: spend per purchase is taken as fixed.
    - is_thin: purchase_days < min_purchase_days_for_model or age_weeks < min_age_weeks.

    Deterministic for a given random_seed and independent of which other customers are scored
    in the same call.
    """
    settings = settings or EngineSettings()
    data = _model_inputs(summary, as_of)
    n = len(data)
    x = data["frequency"].to_numpy(dtype=float)
    t_x = data["recency_weeks"].to_numpy(dtype=float)
    T = data["age_weeks"].to_numpy(dtype=float)
    m = data["mean_repeat_margin"].to_numpy(dtype=float)
    buyer = data["purchase_days"].to_numpy() >= 1
    out = {c: np.zeros(n) for c in SCORE_COLUMNS if c != "is_thin"}

    if fit.bgnbd is not None and buyer.any():
        bg, gg = fit.bgnbd, fit.gamma_gamma
        b = np.flatnonzero(buyer)
        p_alive = bgnbd_p_alive(bg, x[b], t_x[b], T[b])
        plain, discounted = purchases_if_alive(bg, x[b], T[b], settings)
        own = (x[b] >= 1) & (m[b] > 0)
        lost = (x[b] >= 1) & (m[b] <= 0)
        if gg is not None:
            margin = gamma_gamma_expected_value(gg, x[b], m[b], fallback=fit.population_margin)
            scale = np.where(own, gg.v + x[b] * np.where(own, m[b], 0.0), gg.v)
        else:
            margin = np.where(own, m[b], fit.population_margin)
            scale = margin.copy()
        margin = np.where(lost, 0.0, margin)
        scale = np.where(lost, 0.0, scale)
        low, high = margin_interval(bg, gg, x[b], T[b], p_alive, scale, settings)
        out["p_alive"][b] = p_alive
        out["expected_purchases"][b] = p_alive * plain
        out["discounted_purchases"][b] = p_alive * discounted
        out["expected_margin_per_purchase"][b] = margin
        out["clv"][b] = p_alive * discounted * margin
        out["clv_low"][b] = low
        out["clv_high"][b] = high

    scored = pd.DataFrame(out, index=summary.index)
    # Guard the contract: no NaN or inf reaches the database.
    numeric = scored.to_numpy()
    if not np.isfinite(numeric).all():
        raise FloatingPointError("non-finite value in customer scores")
    scored["is_thin"] = (data["purchase_days"].to_numpy() < settings.min_purchase_days_for_model) | (
        settings.min_age_weeks > T
    )
    return scored
