"""Valuation with a chosen purchase model, a fit-quality gate and honest ranges.

Entry points (plain DataFrames in and out, see each docstring):

- :func:`compare_models`: back-test BG/NBD, MBG/NBD and Pareto/NBD on a calibration summary
  and the holdout outcome; picks the model (``model``, ``models_compared``).
- :func:`backtest_models`: the same from raw transaction rows and two dates.
- :func:`fit_valuation_models`: fit the chosen purchase model and the spend model on the
  summary of the valuation day and run the fit-quality gate.
- :func:`fit_chosen_model`: the same for a back-test's choice, deciding a tie between models
  on the valuation day's history (CHOICE_RULE).
- :func:`value_customers`: per-customer P(alive), expected purchases, CLV with its range,
  value to infinity, remaining lifetime; honours lost customers and the gate's fallback.
- :func:`predict_holdout`: expected, 10th and 90th percentile of the undiscounted margin of
  a holdout period.
"""

from __future__ import annotations

import datetime as dt
import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .bgnbd import BgNbdParams
from .fit_quality import FALLBACK_TRAILING, MIN_SPENDERS, gate, purchase_problems, spend_problems
from .forecast import (
    discount_factors,
    margin_quantiles,
    median_remaining_weeks,
    purchases_if_alive,
)
from .gamma_gamma import GammaGammaParams, fit_gamma_gamma_finite, gamma_gamma_expected_value
from .likelihood import shared_rows
from .purchase_models import (
    PURCHASE_MODELS,
    PurchaseParams,
    expected_purchases_if_alive,
    fit_purchase_model,
    params_from_dict,
)
from .purchase_models import (
    p_alive as model_p_alive,
)
from .settings import WEEKS_PER_MONTH, EngineSettings
from .summary import DateLike, _epoch_days, as_timestamp, summarise_transactions
from .threads import map_on_threads

VALUE_COLUMNS = [
    "p_alive",
    "expected_purchases",
    "discounted_purchases",
    "expected_margin_per_purchase",
    "clv",
    "clv_low",
    "clv_high",
    "clv_to_infinity",
    "median_lifetime_weeks",
    "median_lifetime_if_alive_weeks",
    "is_thin",
    "basis",
]
HOLDOUT_COLUMNS = ["holdout_expected", "holdout_low", "holdout_high"]
# basis: where a customer's future figures come from.
BASIS_MODEL = "model"
BASIS_TRAILING = "trailing_margin_rate"
BASIS_LOST = "lost"
BASIS_NO_PURCHASE = "no_purchase"
# Back-test choice: among models whose total predicted holdout margin is within this share
# of the actual total, the lowest per-customer RMSE of holdout margin wins, unless others are
# tied with it (see choose_by_backtest).
TOTAL_TOLERANCE = 0.25
# A model's mean squared error of holdout margin that exceeds the best model's by at most
# this many standard errors of the paired difference is a tie (the one-standard-error rule).
TIE_STANDARD_ERRORS = 1.0
REASON_LOWEST = "lowest RMSE of holdout margin among models within {tol:.0%} of the actual total"
REASON_TIED = ("RMSE of holdout margin within one standard error of the lowest ({tied}); of these the "
               "highest log-likelihood on the {basis}")
FREQUENCY_BINS = 8  # conditional expectations by calibration frequency 0..6 and 7+


@dataclass(frozen=True)
class ValuationModels:
    """What one valuation run fitted and decided; stored with the run as JSON (to_dict).

    model: the purchase model used ("bgnbd", "mbgnbd", "pareto_nbd").
    purchase / gamma_gamma: their fits (None when not fitted). bgnbd: the BG/NBD fit,
    always reported whichever model is used (the published CDNOW check).
    population_margin: margin per purchase for customers without repeat purchases.
    fit_quality: {"ok", "problems", "fallback"} (fit_quality.gate).
    models_compared: the back-test of compare_models, if one was run.
    spend_shape: Gamma shape of one purchase's margin around the customer's mean, 1 / mean
    purchase_margin_cv2 over customers with 3+ purchase days (None: too few, or the summary
    lacks the column); used by the ranges only.
    history_weeks: how far back the fitted history reaches (the oldest customer's age); the
    fallback's trailing rate divides by it where it is shorter than the window.
    """

    model: str
    purchase: PurchaseParams | None
    gamma_gamma: GammaGammaParams | None
    bgnbd: BgNbdParams | None
    population_margin: float
    fit_quality: dict[str, Any]
    models_compared: dict[str, Any] | None = None
    diagnostics: dict[str, Any] = field(default_factory=dict)
    spend_shape: float | None = None
    history_weeks: float | None = None

    @property
    def fallback(self) -> str | None:
        return self.fit_quality.get("fallback")

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "purchase": self.purchase.to_dict() if self.purchase is not None else None,
            "gamma_gamma": self.gamma_gamma.to_dict() if self.gamma_gamma is not None else None,
            "bgnbd": self.bgnbd.to_dict() if self.bgnbd is not None else None,
            "population_margin": self.population_margin,
            "fit_quality": self.fit_quality,
            "models_compared": self.models_compared,
            "diagnostics": self.diagnostics,
            "spend_shape": self.spend_shape,
            "history_weeks": self.history_weeks,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ValuationModels:
        def gg(d):
            if not d:
                return None
            d = dict(d)
            d["at_bound"] = tuple(d.get("at_bound") or ())
            if d.get("covariance") is not None:
                d["covariance"] = tuple(map(tuple, d["covariance"]))
            return GammaGammaParams.from_dict(d)

        # Runs stored before the model choice kept BG/NBD only, without a gate: read as such.
        model = data.get("model", "bgnbd")
        purchase = data.get("purchase") if "model" in data else data.get("bgnbd")
        return cls(
            model=model,
            purchase=params_from_dict(model, purchase) if purchase else None,
            gamma_gamma=gg(data.get("gamma_gamma")),
            bgnbd=params_from_dict("bgnbd", data["bgnbd"]) if data.get("bgnbd") else None,
            population_margin=float(data.get("population_margin", 0.0)),
            fit_quality=dict(data.get("fit_quality") or gate([], [])),
            models_compared=data.get("models_compared"),
            diagnostics=dict(data.get("diagnostics", {})),
            spend_shape=data.get("spend_shape"),
            history_weeks=data.get("history_weeks"),
        )


def _inputs(summary: pd.DataFrame) -> dict[str, np.ndarray]:
    """Model inputs as arrays; customers without a purchase day get zeros. Without the
    input-rule column mean_purchase_margin (older SQL summaries) it is taken as
    max(margin_lifetime, 0) / purchase_days."""
    n = len(summary)

    def col(name, default=0.0):
        if name in summary:
            return pd.to_numeric(summary[name], errors="coerce").fillna(default).to_numpy(dtype=float)
        return np.full(n, default, dtype=float)

    days = col("purchase_days") if "purchase_days" in summary else col("frequency") + 1
    x = np.maximum(days - 1, 0)
    T = np.clip(col("age_weeks"), 0.0, None)
    t_x = np.minimum(np.clip(col("recency_weeks"), 0.0, None), T)
    if "mean_purchase_margin" in summary:
        own = col("mean_purchase_margin")
    else:
        own = np.where(days > 0, np.maximum(col("margin_lifetime"), 0.0) / np.maximum(days, 1), 0.0)
    lost = (summary["lost"].fillna(False).astype(bool).to_numpy() if "lost" in summary
            else np.zeros(n, dtype=bool))
    return {"days": days, "x": x, "t_x": t_x, "T": T, "m": col("mean_repeat_margin"), "own": own,
            "cv2": col("purchase_margin_cv2"),
            "margin_window": col("margin_window"), "lost": lost}


def spend_shape(d: dict[str, np.ndarray]) -> float | None:
    """Within-customer Gamma shape of purchase margins: 1 / mean(cv2) over customers with at
    least 3 purchase days and a positive mean (a Gamma with shape k has cv^2 = 1 / k; the
    per-customer sample variance makes each cv2 unbiased for the variance part)."""
    measured = (d["days"] >= 3) & (d["cv2"] > 0) & ~d["lost"]
    if measured.sum() < MIN_SPENDERS:
        return None
    return float(1.0 / np.mean(d["cv2"][measured]))


def _fit_spend(d: dict[str, np.ndarray]) -> tuple[GammaGammaParams | None, list[dict[str, str]], float]:
    """Gamma-Gamma (q > 1) on customers with a repeat purchase and a positive mean repeat
    margin; the population margin per purchase p v / (q - 1), or without a usable fit the
    frequency-weighted mean of the positive mean repeat margins."""
    spender = (d["days"] >= 1) & (d["x"] >= 1) & (d["m"] > 0) & ~d["lost"]
    n_spenders = int(spender.sum())
    gg = None
    if n_spenders >= 2:
        try:
            gg = fit_gamma_gamma_finite(d["x"][spender], d["m"][spender])
        except ValueError:
            gg = None
    problems = spend_problems(gg, spenders=n_spenders)
    if gg is not None and not problems:
        population = gg.population_mean
    elif n_spenders:
        population = float(np.average(d["m"][spender], weights=d["x"][spender]))
    else:
        population = 0.0
    return (gg if not problems else None), problems, population


def _distinct_rows(*columns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(inverse, first) of the distinct rows of ``columns``: each row's group, and the first
    row of each group."""
    codes = pd.DataFrame(dict(enumerate(columns))).groupby(list(range(len(columns))), sort=False).ngroup()
    inverse = codes.to_numpy()
    first = np.unique(inverse, return_index=True)[1]
    return inverse, first


def _per_distinct(fn, *columns: np.ndarray, rows: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """fn evaluated once per distinct row of ``columns`` (customers share (x, t_x, T) rows
    by the thousand; P(alive) of Pareto/NBD and every 2F1 are costly per row). ``rows``:
    _distinct_rows of the same columns, when several functions are evaluated on them."""
    if len(columns[0]) == 0:
        return np.zeros(0)
    inverse, first = rows if rows is not None else _distinct_rows(*columns)
    return np.asarray(fn(*(c[first] for c in columns)))[inverse]


def _margin_per_purchase(models: ValuationModels, d: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Expected margin per future purchase and the scale of its Monte Carlo draws.

    Gamma-Gamma (Fader & Hardie 2013, eq. 5): p (v + x zbar) / (p x + q - 1) for repeat
    buyers with a positive mean repeat margin, the population mean for customers without a
    repeat purchase, 0 where the repeat purchases made no positive margin (the spend model
    describes positive values only). Spend fallback: the customer's own mean margin per
    purchase day (>= 0), fixed.
    """
    x, m = d["x"], d["m"]
    own = (x >= 1) & (m > 0)
    negative = (x >= 1) & (m <= 0)
    gg = models.gamma_gamma
    if gg is not None and models.fallback is None:
        margin = gamma_gamma_expected_value(gg, x, m, fallback=models.population_margin)
        scale = np.where(own, gg.v + x * np.where(own, m, 0.0), gg.v)
    else:
        margin = np.maximum(d["own"], 0.0)
        scale = margin.copy()
    margin = np.where(negative, 0.0, margin)
    scale = np.where(negative, 0.0, scale)
    return margin, scale


# Purchase models fitted at once (engine.threads): on two cores the Pareto/NBD fit runs beside
# the BG/NBD ones.
FIT_THREADS = 2


def fit_purchase_models(names: list[str], d: dict[str, np.ndarray], settings: EngineSettings, *,
                        seconds: dict[str, float] | None = None) -> dict[str, PurchaseParams | None]:
    """{name: the model fitted on the buyers (not lost, at least one purchase day) of
    _inputs ``d``, or None (no buyer, or the fit failed)}, on up to FIT_THREADS threads. Each
    fit depends on its inputs and seed only, so the threads change no number. ``seconds``
    receives each fit's time."""
    buyer = (d["days"] >= 1) & ~d["lost"]
    x, t_x, T = d["x"][buyer], d["t_x"][buyer], d["T"][buyer]

    def fit(name: str) -> PurchaseParams | None:
        started = time.perf_counter()
        try:
            return fit_purchase_model(name, x, t_x, T, random_seed=settings.random_seed) if len(x) else None
        except (ValueError, FloatingPointError):
            return None
        finally:
            if seconds is not None:
                seconds[name] = time.perf_counter() - started

    return dict(zip(names, map_on_threads(fit, names, threads=FIT_THREADS, name="valuation-fit"), strict=True))


def fit_valuation_models(
    summary: pd.DataFrame,
    settings: EngineSettings | None = None,
    *,
    model: str = "bgnbd",
    models_compared: dict[str, Any] | None = None,
    _fits: dict[str, PurchaseParams | None] | None = None,
    _spend: tuple | None = None,
) -> ValuationModels:
    """Fit the purchase model ``model`` (usually compare_models(...)["model"]) and the
    Gamma-Gamma spend model on ``summary`` (summarise_transactions' columns, optionally
    ``lost``), and run the fit-quality gate. Lost customers take part in neither fit: their
    status is known, and a model that had to explain their silence would understate the others.
    BG/NBD is always fitted too (reported; the published CDNOW check).
    """
    settings = settings or EngineSettings()
    d = _inputs(summary)
    started = time.perf_counter()
    buyer = (d["days"] >= 1) & ~d["lost"]
    buyers = int(buyer.sum())
    repeat_buyers = int((buyer & (d["x"] >= 1)).sum())
    fits: dict[str, PurchaseParams | None] = dict(_fits or {})  # fits already made by compare_models
    fits.update(fit_purchase_models(sorted({model, "bgnbd"} - set(fits)), d, settings))
    p_problems = purchase_problems(fits[model], buyers=buyers, repeat_buyers=repeat_buyers)
    gg, s_problems, population = _spend if _spend is not None else _fit_spend(d)
    quality = gate(p_problems, s_problems)
    diagnostics = {
        "customers": int(len(summary)),
        "buyers": buyers,
        "repeat_buyers": repeat_buyers,
        "lost": int(d["lost"].sum()),
        "capped_purchase_days": int(summary["capped_purchase_days"].sum()) if "capped_purchase_days" in summary else 0,
        "fit_seconds": round(time.perf_counter() - started, 3),
        "notes": (["BG/NBD lets customers drop out only after a repeat purchase, so every customer "
                   "without one has P(alive) = 1 in this model."] if model == "bgnbd" and not p_problems else []),
    }
    return ValuationModels(
        model=model,
        purchase=fits[model] if not p_problems else None,
        gamma_gamma=gg,
        bgnbd=fits.get("bgnbd"),
        population_margin=population,
        fit_quality=quality,
        models_compared=models_compared,
        diagnostics=diagnostics,
        spend_shape=spend_shape(d),
        history_weeks=float(d["T"].max()) if len(d["T"]) else None,
    )


def trailing_margin_estimate(margin_window: np.ndarray, weights: np.ndarray, settings: EngineSettings,
                             history_weeks: float | None = None) -> np.ndarray:
    """The fallback estimate: the customer's own trailing margin rate, max(margin_window, 0)
    per month of the window, carried forward over the months with the given weights
    (discount factors for a CLV, ones for an undiscounted holdout). Claims nothing about
    drop-out: a customer who stopped buying a month ago keeps the rate of the window.

    A history shorter than the window (a file of six months, a young company) covers fewer
    months: the margin is divided by those (``history_weeks``, the whole history's span, the
    same for every customer), not by the window's, which would halve every rate."""
    months = float(settings.window_months)
    if history_weeks is not None and history_weeks > 0:
        months = min(months, max(history_weeks / WEEKS_PER_MONTH, 1.0))
    rate = np.maximum(margin_window, 0.0) / months
    return rate * float(np.sum(weights))


def value_customers(
    summary: pd.DataFrame, models: ValuationModels, settings: EngineSettings | None = None, *, ranges: bool = True
) -> pd.DataFrame:
    """Per-customer future figures, one row per row of ``summary`` (same index); columns
    VALUE_COLUMNS:

    - p_alive: the chosen model's P(alive); 0 for lost customers and customers without a
      purchase; NaN (not claimed) under the trailing-rate fallback.
    - expected_purchases: p_alive E[purchases in horizon_months | alive]; discounted_purchases
      the same with month m discounted by (1 + rate)^(-m/12) (NaN under the fallback).
    - expected_margin_per_purchase: see _margin_per_purchase (NaN under the fallback).
    - clv = p_alive x discounted_purchases x margin per purchase (horizon_months); under the
      fallback, trailing_margin_estimate over the horizon.
    - clv_low, clv_high: interval_low/interval_high quantiles of the discounted horizon margin,
      with parameter uncertainty (forecast.margin_quantiles); NaN under the fallback.
    - clv_to_infinity: residual lifetime value, the same as clv without the horizon's end
      (forecast.purchases_if_alive); NaN under the fallback.
    - median_lifetime_weeks: median remaining lifetime (0 when more likely gone than alive);
      median_lifetime_if_alive_weeks: the same if still alive (forecast.median_remaining_weeks).
    - is_thin: purchase_days < min_purchase_days_for_model or age_weeks < min_age_weeks.
    - basis: "model", "trailing_margin_rate", "lost" or "no_purchase".
    Lost customers (column ``lost`` true) get 0 for every future figure.
    ``ranges=False`` leaves clv_low and clv_high NaN and skips their simulation (most of the
    time here), for callers that need the expected values only (the run's thresholds).
    """
    settings = settings or EngineSettings()
    d = _inputs(summary)
    n = len(summary)
    out = {c: np.zeros(n) for c in VALUE_COLUMNS if c not in ("is_thin", "basis")}
    basis = np.full(n, BASIS_NO_PURCHASE, dtype=object)
    buyer = (d["days"] >= 1) & ~d["lost"]
    b = np.flatnonzero(buyer)
    H = settings.horizon_months
    d_h = discount_factors(settings, H)[1:]

    if models.fallback == FALLBACK_TRAILING:
        basis[b] = BASIS_TRAILING
        for c in ("p_alive", "expected_purchases", "discounted_purchases", "expected_margin_per_purchase",
                  "clv_low", "clv_high", "clv_to_infinity", "median_lifetime_weeks",
                  "median_lifetime_if_alive_weeks"):
            out[c][b] = np.nan
        out["clv"][b] = trailing_margin_estimate(d["margin_window"][b], d_h, settings, models.history_weeks)
    elif len(b) and models.purchase is not None:
        basis[b] = BASIS_MODEL
        params = models.purchase
        x, t_x, T = d["x"][b], d["t_x"][b], d["T"][b]
        pa = _per_distinct(lambda *a: model_p_alive(params, *a), x, t_x, T)
        plain, discounted, infinite = purchases_if_alive(params, x, T, settings)
        margin, scale = _margin_per_purchase(models, {k: v[b] for k, v in d.items()})
        if ranges:
            low, high = margin_quantiles(
                params, models.gamma_gamma if models.fallback is None else None, x, T, pa, scale,
                (settings.interval_low, settings.interval_high),
                horizon_weeks=settings.horizon_weeks, month_weights=discount_factors(settings, H), settings=settings,
                spend_shape=models.spend_shape,
            )
        else:
            low = high = np.full(len(b), np.nan)
        life, life_if_alive = median_remaining_weeks(params, x, T, pa)
        out["p_alive"][b] = pa
        out["expected_purchases"][b] = pa * plain
        out["discounted_purchases"][b] = pa * discounted
        out["expected_margin_per_purchase"][b] = margin
        out["clv"][b] = pa * discounted * margin
        out["clv_low"][b] = low
        out["clv_high"][b] = high
        out["clv_to_infinity"][b] = pa * infinite * margin
        out["median_lifetime_weeks"][b] = life
        out["median_lifetime_if_alive_weeks"][b] = life_if_alive
    basis[d["lost"]] = BASIS_LOST

    scored = pd.DataFrame(out, index=summary.index)
    numeric = scored.to_numpy()
    # NaN means "not claimed" and belongs to the fallback rows only; inf never.
    unclaimed_ok = (basis == BASIS_TRAILING)[:, None] | (
        ~np.asarray(ranges, dtype=bool) & np.isin(np.array(list(scored.columns)), ["clv_low", "clv_high"])[None, :])
    if np.isinf(numeric).any() or (np.isnan(numeric) & ~unclaimed_ok).any():
        raise FloatingPointError("non-finite value in customer values")
    scored["is_thin"] = (d["days"] < settings.min_purchase_days_for_model) | (d["T"] < settings.min_age_weeks)
    scored["basis"] = basis
    return scored


def predict_holdout(
    summary: pd.DataFrame, models: ValuationModels, holdout_weeks: float, settings: EngineSettings | None = None
) -> pd.DataFrame:
    """Per customer of ``summary`` (the calibration summary), the undiscounted margin of the
    holdout (calibration end, calibration end + holdout_weeks]: holdout_expected =
    p_alive E[purchases | alive] x margin per purchase, and the interval_low/interval_high
    quantiles (holdout_low, holdout_high) with parameter uncertainty. Lost customers and
    customers without a purchase: 0. Under the trailing-rate fallback: the trailing margin
    rate times the holdout's months, and no range (NaN)."""
    settings = settings or EngineSettings()
    d = _inputs(summary)
    n = len(summary)
    expected, low, high = np.zeros(n), np.zeros(n), np.zeros(n)
    buyer = (d["days"] >= 1) & ~d["lost"]
    b = np.flatnonzero(buyer)
    months = int(math.ceil(holdout_weeks / WEEKS_PER_MONTH))
    if models.fallback == FALLBACK_TRAILING:
        # Undiscounted: the rate times the holdout's length in months.
        expected[b] = trailing_margin_estimate(d["margin_window"][b], np.array([holdout_weeks / WEEKS_PER_MONTH]), settings,
                                               models.history_weeks)
        low[b] = high[b] = np.nan
    elif len(b) and models.purchase is not None:
        params = models.purchase
        x, t_x, T = d["x"][b], d["t_x"][b], d["T"][b]
        pa = _per_distinct(lambda *a: model_p_alive(params, *a), x, t_x, T)
        margin, scale = _margin_per_purchase(models, {k: v[b] for k, v in d.items()})
        expected[b] = pa * _per_distinct(lambda xx, TT: expected_purchases_if_alive(params, holdout_weeks, xx, TT), x, T) * margin
        low[b], high[b] = margin_quantiles(
            params, models.gamma_gamma if models.fallback is None else None, x, T, pa, scale,
            (settings.interval_low, settings.interval_high),
            horizon_weeks=holdout_weeks, month_weights=np.ones(months + 1), settings=settings,
            spend_shape=models.spend_shape,
        )
    return pd.DataFrame({"holdout_expected": expected, "holdout_low": low, "holdout_high": high},
                        index=summary.index)


def _errors(predicted: np.ndarray, actual: np.ndarray) -> dict[str, float]:
    total_p, total_a = float(predicted.sum()), float(actual.sum())
    return {
        "mae": float(np.mean(np.abs(predicted - actual))),
        "rmse": float(np.sqrt(np.mean((predicted - actual) ** 2))),
        "predicted_total": total_p,
        "actual_total": total_a,
        "total_error": (total_p - total_a) / total_a if total_a else math.nan,
    }


def _conditional_table(x: np.ndarray, predicted: np.ndarray, actual: np.ndarray,
                       predicted_margin: np.ndarray, actual_margin: np.ndarray) -> list[dict[str, float]]:
    """Mean holdout purchases and margin, predicted and actual, by calibration frequency
    0, 1, ..., 6 and 7+ (Fader, Hardie & Lee 2005, fig. 4)."""
    bins = np.minimum(x.astype(np.int64), FREQUENCY_BINS - 1)
    rows = []
    for k in range(FREQUENCY_BINS):
        members = bins == k
        count = int(members.sum())
        rows.append({
            "frequency": f"{k}+" if k == FREQUENCY_BINS - 1 else str(k),
            "customers": count,
            "predicted_purchases": float(predicted[members].mean()) if count else 0.0,
            "actual_purchases": float(actual[members].mean()) if count else 0.0,
            "predicted_margin": float(predicted_margin[members].mean()) if count else 0.0,
            "actual_margin": float(actual_margin[members].mean()) if count else 0.0,
        })
    return rows


def compare_models(
    calibration: pd.DataFrame,
    holdout: pd.DataFrame,
    holdout_weeks: float,
    settings: EngineSettings | None = None,
    *,
    models: tuple[str, ...] = PURCHASE_MODELS,
) -> dict[str, Any]:
    """Back-test each purchase model: fit on the calibration summary (customers first seen
    on or before the calibration end), predict each customer's holdout, compare with
    ``holdout`` (indexed by customer_id: holdout_purchases = distinct purchase days in the
    holdout, holdout_margin = margin of all rows in it, returns netted; missing = 0).

    Per model: fit_quality, parameters, purchases and margin errors (MAE, RMSE, totals and
    total_error = predicted / actual - 1), the conditional-expectations table, and for the
    chosen model the calibration of its 80 % range (share of customers whose actual holdout
    margin lies above holdout_high / below holdout_low).

    Choice (CHOICE_RULE): among models that pass the gate, those whose total predicted holdout
    margin lies within TOTAL_TOLERANCE of the actual; of these the lowest per-customer RMSE of
    holdout margin (MAE would reward predicting nothing for the many customers who buy nothing
    in a holdout), unless others are tied with it within one standard error of the paired
    squared-error difference (each candidate's ``versus_best``); then the tied model with the
    highest log-likelihood on the back-test's calibration period, and ``tied`` lists them so
    that fit_chosen_model can decide on the valuation's own history. If none is within the
    tolerance, the smallest total error. If none passes the gate, "bgnbd" with its problems
    (the valuation then falls back).
    """
    return _compare(calibration, holdout, holdout_weeks, settings or EngineSettings(), models)[0]


CHOICE_RULE = (
    f"Models that pass the fit-quality gate and whose total predicted holdout margin lies within "
    f"{TOTAL_TOLERANCE:.0%} of the actual are candidates; the lowest per-customer RMSE of holdout margin "
    f"is best. A candidate whose mean squared error exceeds the best one's by at most "
    f"{TIE_STANDARD_ERRORS:g} standard error of the paired per-customer difference is tied with it: "
    f"a back-test cannot tell them apart. Among tied models the one with the highest log-likelihood on "
    f"the history the valuation is fitted on wins (all have four parameters, so this is also the BIC "
    f"order). No candidate: the smallest total error."
)


MIN_BACKTEST_WEEKS = 4.0


def backtest_holdout_weeks(history_weeks: float, holdout_weeks: float) -> float:
    """Weeks of the model-choice back-test's holdout: the setting, or half the history when
    the history is shorter than twice that (six months of invoices and a 26-week setting would
    fit the models on nine days). ValueError when half the history is under MIN_BACKTEST_WEEKS
    (or under the setting, where that is shorter)."""
    weeks = min(float(holdout_weeks), float(history_weeks) / 2.0)
    least = min(MIN_BACKTEST_WEEKS, float(holdout_weeks))
    if weeks < least:
        raise ValueError(f"a history of {history_weeks:.1f} weeks is too short for a back-test "
                         f"(at least {2 * least:g} weeks)")
    return weeks


def backtest_split(first_day: DateLike | None, as_of: DateLike, holdout_weeks: float) -> dt.date:
    """The back-test's calibration end for a history from first_day to as_of
    (backtest_holdout_weeks, in whole days). ValueError, naming why, when there is none."""
    if first_day is None:
        raise ValueError("no transactions to back-test on")
    end = as_timestamp(as_of)
    weeks = backtest_holdout_weeks((end - as_timestamp(first_day)).days / 7.0, holdout_weeks)
    return (end - pd.Timedelta(days=round(weeks * 7))).date()


def backtest_calibration_end(first_day: DateLike | None, as_of: DateLike, holdout_weeks: float) -> dt.date | None:
    """backtest_split, or None when the history is too short for a back-test."""
    try:
        return backtest_split(first_day, as_of, holdout_weeks)
    except ValueError:
        return None


def paired_difference(errors: np.ndarray, best_errors: np.ndarray) -> dict[str, float]:
    """Mean per-customer difference of squared errors to the best model and its standard
    error (sample standard deviation of the differences / sqrt(n)): the paired comparison of
    Diebold & Mariano (1995) with independent customers."""
    diff = np.asarray(errors, dtype=float) - np.asarray(best_errors, dtype=float)
    n = len(diff)
    se = float(np.std(diff, ddof=1) / math.sqrt(n)) if n > 1 else math.inf
    mean = float(np.mean(diff)) if n else 0.0
    return {"mse_difference": mean, "standard_error": se, "tied": bool(mean <= TIE_STANDARD_ERRORS * se)}


def tied_models(squared_errors: dict[str, np.ndarray], best: str, candidates: list[str]) -> list[str]:
    """The candidates (in their order) tied with ``best`` by the one-standard-error rule
    (TIE_STANDARD_ERRORS; Breiman et al. 1984, Hastie et al., ESL 7.10), ``best`` included."""
    return [n for n in candidates
            if n == best or paired_difference(squared_errors[n], squared_errors[best])["tied"]]


def choose_by_backtest(best: str, tied: list[str], log_likelihood: dict[str, float], *, basis: str) -> tuple[str, str]:
    """(model, reason): ``best`` alone, or among several tied models the highest log-likelihood
    (``basis`` names the history it was measured on). Nothing here looks at the holdout
    beyond the tie test, so a tie is broken by how well each model describes the history."""
    if len(tied) <= 1:
        return best, REASON_LOWEST.format(tol=TOTAL_TOLERANCE)
    chosen = max(tied, key=lambda n: (log_likelihood.get(n, -math.inf), n == best))
    return chosen, REASON_TIED.format(tied=", ".join(tied), basis=basis)


def fit_chosen_model(
    summary: pd.DataFrame, comparison: dict[str, Any], settings: EngineSettings | None = None
) -> ValuationModels:
    """Fit the back-test's choice on ``summary`` (the history the valuation uses). When the
    back-test found several models tied (comparison["tied"]), each is fitted on this history
    and the one that passes the gate with the highest log-likelihood wins; ``comparison``
    is updated (model, reason, tie_break_log_likelihood) so that what is shown is what is used."""
    settings = settings or EngineSettings()
    tied = list(comparison.get("tied") or [])
    if len(tied) <= 1:
        return fit_valuation_models(summary, settings, model=comparison.get("model", "bgnbd"),
                                    models_compared=comparison)
    d = _inputs(summary)
    spend = _fit_spend(d)
    shared = fit_purchase_models(list(dict.fromkeys([*tied, "bgnbd"])), d, settings)
    fits = {}
    for name in tied:
        fits[name] = fit_valuation_models(summary, settings, model=name, models_compared=comparison,
                                          _fits=shared, _spend=spend)
        shared[name] = fits[name].purchase
        if fits[name].bgnbd is not None:
            shared["bgnbd"] = fits[name].bgnbd
    passed = {n: f.purchase.log_likelihood for n, f in fits.items() if f.purchase is not None}
    if not passed:  # none passes the gate on this history: the back-test's choice, with its problems
        return fits.get(comparison.get("model"), fits[tied[0]])
    chosen, reason = choose_by_backtest(comparison.get("model", tied[0]), list(passed), passed,
                                        basis="whole history up to the valuation day")
    comparison["model"] = chosen
    comparison["reason"] = reason
    comparison["tie_break_log_likelihood"] = passed
    return fits[chosen]


@shared_rows()
def _compare(calibration, holdout, holdout_weeks, settings, models):
    """compare_models, also returning the chosen fit and its holdout ranges (or None)."""
    actual = holdout.reindex(calibration.index)
    actual_purchases = actual["holdout_purchases"].fillna(0).to_numpy(dtype=float)
    actual_margin = actual["holdout_margin"].fillna(0.0).to_numpy(dtype=float)
    d = _inputs(calibration)
    results: dict[str, dict[str, Any]] = {}
    fitted: dict[str, ValuationModels] = {}
    squared_errors: dict[str, np.ndarray] = {}
    spend = _fit_spend(d)  # shared by all purchase models
    fit_seconds: dict[str, float] = {}
    shared = fit_purchase_models(list(dict.fromkeys([*models, "bgnbd"])), d, settings, seconds=fit_seconds)
    buyer = (d["days"] >= 1) & ~d["lost"]
    xb, tb, Tb = d["x"][buyer], d["t_x"][buyer], d["T"][buyer]
    # The distinct rows are the same for every model: found once.
    by_history = _distinct_rows(xb, tb, Tb) if len(xb) else None
    by_age = _distinct_rows(xb, Tb) if len(xb) else None
    for name in models:
        started = time.perf_counter()
        fit = fit_valuation_models(calibration, settings, model=name, _fits=shared, _spend=spend)
        if fit.bgnbd is not None:
            shared["bgnbd"] = fit.bgnbd
        fitted[name] = fit
        entry: dict[str, Any] = {
            "fit_quality": fit.fit_quality,
            "parameters": fit.purchase.to_dict() if fit.purchase is not None else None,
        }
        if fit.purchase is not None:
            pa = np.zeros(len(calibration))
            expected = np.zeros(len(calibration))
            params = fit.purchase
            pa[buyer] = _per_distinct(lambda *a, params=params: model_p_alive(params, *a), xb, tb, Tb,
                                      rows=by_history)
            expected[buyer] = pa[buyer] * _per_distinct(
                lambda xx, TT, params=params: expected_purchases_if_alive(params, holdout_weeks, xx, TT), xb, Tb,
                rows=by_age)
            margin, _ = _margin_per_purchase(fit, d)
            predicted_margin = expected * margin
            entry["purchases"] = _errors(expected, actual_purchases)
            entry["margin"] = _errors(predicted_margin, actual_margin)
            entry["conditional_expectations"] = _conditional_table(
                d["x"], expected, actual_purchases, predicted_margin, actual_margin)
            squared_errors[name] = (predicted_margin - actual_margin) ** 2
        entry["seconds"] = round(fit_seconds.get(name, 0.0) + time.perf_counter() - started, 3)
        results[name] = entry

    usable = [n for n in models if results[n]["fit_quality"]["fallback"] != FALLBACK_TRAILING and "margin" in results[n]]
    within = [n for n in usable if abs(results[n]["margin"]["total_error"]) <= TOTAL_TOLERANCE]
    tied: list[str] = []
    if within:
        best = min(within, key=lambda n: results[n]["margin"]["rmse"])
        tied = tied_models(squared_errors, best, within)
        for name in within:
            results[name]["versus_best"] = paired_difference(squared_errors[name], squared_errors[best])
        log_likelihood = {n: fitted[n].purchase.log_likelihood for n in tied}
        chosen, reason = choose_by_backtest(best, tied, log_likelihood, basis="back-test's calibration period")
    elif usable:
        chosen = min(usable, key=lambda n: abs(results[n]["margin"]["total_error"]))
        reason = f"no model within {TOTAL_TOLERANCE:.0%} of the actual total; smallest total error"
    else:
        chosen = "bgnbd"
        reason = "no model passed the fit-quality gate"

    calibration_check = None
    if chosen in usable:
        ranges = predict_holdout(calibration, fitted[chosen], holdout_weeks, settings)
        calibration_check = {
            "share_above_high": float(np.mean(actual_margin > ranges["holdout_high"].to_numpy())),
            "share_below_low": float(np.mean(actual_margin < ranges["holdout_low"].to_numpy())),
            "interval": [settings.interval_low, settings.interval_high],
        }
    return {
        "model": chosen,
        "reason": reason,
        "rule": CHOICE_RULE,
        "tied": tied,
        "holdout_weeks": holdout_weeks,
        "customers": int(len(calibration)),
        "models_compared": results,
        "range_calibration": calibration_check,
    }, fitted.get(chosen), (ranges if calibration_check is not None else None)


def holdout_outcome(transactions: pd.DataFrame, calibration_end: DateLike, holdout_end: DateLike) -> pd.DataFrame:
    """Per customer, holdout_purchases (distinct days with a purchase row, revenue > 0) and
    holdout_margin (margin of all rows, returns netted) in (calibration_end, holdout_end]."""
    day = _epoch_days(transactions["date"])
    start = int(np.datetime64(as_timestamp(calibration_end).date(), "D").astype(np.int64))
    end = int(np.datetime64(as_timestamp(holdout_end).date(), "D").astype(np.int64))
    inside = (day > start) & (day <= end)
    revenue = pd.to_numeric(transactions["revenue"], errors="coerce").fillna(0.0).to_numpy(dtype=float)
    cost = (pd.to_numeric(transactions["cost"], errors="coerce").fillna(0.0).to_numpy(dtype=float)
            if "cost" in transactions else np.zeros(len(transactions)))
    frame = pd.DataFrame({
        "customer_id": transactions["customer_id"].to_numpy()[inside],
        "day": day[inside],
        "purchase": revenue[inside] > 0,
        "margin": (revenue - cost)[inside],
    })
    margin = frame.groupby("customer_id")["margin"].sum()
    purchases = frame[frame["purchase"]].drop_duplicates(["customer_id", "day"]).groupby("customer_id").size()
    out = pd.DataFrame({"holdout_margin": margin})
    out["holdout_purchases"] = purchases.reindex(out.index, fill_value=0).astype(np.int64)
    return out


def backtest_models(
    transactions: pd.DataFrame,
    calibration_end: DateLike,
    holdout_end: DateLike,
    settings: EngineSettings | None = None,
    *,
    lost: pd.Series | None = None,
) -> tuple[dict[str, Any], pd.DataFrame]:
    """compare_models from raw rows: the calibration summary at calibration_end (input rules
    of summarise_transactions, customers with a purchase day by then), the holdout outcome
    (holdout_outcome) and, per customer, the chosen model's holdout prediction
    (predict_holdout) next to the actual. ``lost`` (bool by customer_id) marks customers
    known to be lost at calibration end. Returns (comparison, per-customer frame)."""
    settings = settings or EngineSettings()
    calibration = summarise_transactions(transactions, calibration_end, settings, input_rule_columns=True)
    calibration = calibration[calibration["purchase_days"] > 0]
    if lost is not None:
        calibration = calibration.assign(lost=lost.reindex(calibration.index).fillna(False).astype(bool))
    holdout_weeks = (as_timestamp(holdout_end) - as_timestamp(calibration_end)).days / 7.0
    if holdout_weeks <= 0:
        raise ValueError("holdout_end must be after calibration_end")
    outcome = holdout_outcome(transactions, calibration_end, holdout_end)
    comparison, chosen, ranges = _compare(calibration, outcome, holdout_weeks, settings, PURCHASE_MODELS)
    if chosen is None:
        chosen = fit_valuation_models(calibration, settings, model=comparison["model"])
    per_customer = ranges if ranges is not None else predict_holdout(calibration, chosen, holdout_weeks, settings)
    actual = outcome.reindex(calibration.index)
    per_customer["holdout_purchases"] = actual["holdout_purchases"].fillna(0).astype(np.int64)
    per_customer["holdout_margin"] = actual["holdout_margin"].fillna(0.0)
    comparison["fit_quality"] = chosen.fit_quality
    return comparison, per_customer
