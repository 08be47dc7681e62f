"""The whole valuation of one day in one call, for small data sets, CSV exports and tests.

The Django side runs the same steps in chunks: summary by SQL, fit_valuation_models once,
value_customers per chunk, compute_thresholds once, classify per chunk.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .referral import incremental_referral_value
from .segments import Thresholds, classify, compute_thresholds
from .settings import EngineSettings
from .summary import (
    INPUT_RULE_COLUMNS,
    SUMMARY_COLUMNS,
    DateLike,
    as_timestamp,
    summarise_services,
    summarise_transactions,
)
from .value import (
    ValuationModels,
    backtest_models,
    backtest_split,
    fit_chosen_model,
    fit_valuation_models,
    value_customers,
)


@dataclass
class ValuationResult:
    customers: pd.DataFrame
    fit: ValuationModels
    thresholds: Thresholds | None
    by_type: pd.DataFrame
    settings: EngineSettings
    as_of: dt.date


def _complete_summary(summary: pd.DataFrame, ids: pd.Index) -> pd.DataFrame:
    """Customers without transactions get zero counts and sums and no purchase dates."""
    full = summary.reindex(ids)
    numeric = [c for c in SUMMARY_COLUMNS + INPUT_RULE_COLUMNS if c not in ("first_purchase", "last_purchase")]
    for column in numeric:
        full[column] = full[column].fillna(0.0) if column in full else 0.0
    for column in ("purchase_days", "frequency", "capped_purchase_days"):
        full[column] = full[column].astype(np.int64)
    return full


def combine(
    summary: pd.DataFrame, scores: pd.DataFrame, service_totals: pd.DataFrame, customers: pd.DataFrame
) -> pd.DataFrame:
    """One row per scored customer with what classification needs: the scores, the summary,
    the value to the customer (0 without services), the active flag, and
    profit_after_services = margin_window - value_to_customer,
    share_of_supply = revenue_window / wallet (NaN where the wallet is unknown or <= 0).
    ``customers`` is indexed by customer_id with columns active and (optionally) wallet.
    """
    scored = scores.join(summary[[c for c in summary.columns if c not in scores.columns]])
    totals = service_totals.reindex(scored.index)
    scored["value_to_customer"] = totals["value_to_customer"].fillna(0.0).astype(float)
    scored["service_count"] = totals["service_count"].fillna(0).astype(np.int64)
    scored["service_hours"] = totals["service_hours"].fillna(0.0).astype(float)
    scored["profit_after_services"] = scored["margin_window"] - scored["value_to_customer"]
    info = customers.reindex(scored.index)
    scored["active"] = info["active"].fillna(True).astype(bool)
    wallet = (
        pd.to_numeric(info["wallet"], errors="coerce") if "wallet" in info else pd.Series(np.nan, index=scored.index)
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        scored["share_of_supply"] = np.where(wallet > 0, scored["revenue_window"] / wallet, np.nan)
    return scored


def _listed(customers: pd.DataFrame, transactions: pd.DataFrame) -> tuple[pd.Index, pd.DataFrame]:
    """The customers' ids and the transactions of listed customers only."""
    ids = pd.Index(customers["customer_id"], name="customer_id")
    if ids.has_duplicates:
        raise ValueError("customer_id must be unique in customers")
    return ids, transactions[transactions["customer_id"].isin(ids)]


def valuate(
    transactions: pd.DataFrame,
    services: pd.DataFrame,
    customers: pd.DataFrame,
    as_of: DateLike,
    settings: EngineSettings | None = None,
    *,
    model: str = "bgnbd",
    models_compared: dict[str, Any] | None = None,
    score: bool = True,
) -> ValuationResult:
    """Value every customer in ``customers`` (customer_id, active or lost/lost_on, referred_by,
    wallet) with the purchase model ``model``, as the nightly run does.

    1. Summary on as_of with the input rules and the lost flags (lost_flags).
    2. value.fit_valuation_models (the model, Gamma-Gamma and the fit-quality gate) and
       value.value_customers (CLV with its range, or the fallback the gate names).
    3. combine, compute_thresholds, classify; referral_value is
       referral.incremental_referral_value over the referred customers' clv (NaN counts 0).
    Transactions and services of customers not listed are ignored. ``result.fit`` is a
    value.ValuationModels (model, fit_quality, models_compared, ...).
    ``score=False`` stops after step 2's fit: ``result.customers`` is then the summary of
    step 1 and ``result.thresholds`` None (for callers that report the fit alone; scoring a
    million customers costs more than the fit).
    """
    settings = settings or EngineSettings()
    ids, listed_tx = _listed(customers, transactions)
    summary = _complete_summary(summarise_transactions(listed_tx, as_of, settings, input_rule_columns=True), ids)
    summary["lost"] = lost_flags(customers, as_of).reindex(ids).fillna(False).astype(bool).to_numpy()
    listed_services = services[services["customer_id"].isin(ids)] if len(services) else services
    totals, by_type = summarise_services(listed_services, as_of, settings)
    if models_compared:  # a back-test's choice: its ties are broken on this history (fit_chosen_model)
        fit = fit_chosen_model(summary, {**models_compared, "model": model}, settings)
    else:
        fit = fit_valuation_models(summary, settings, model=model)
    if not score:
        return ValuationResult(customers=summary, fit=fit, thresholds=None, by_type=by_type, settings=settings,
                               as_of=as_timestamp(as_of).date())
    scored = combine(summary, value_customers(summary, fit, settings), totals, customers.set_index("customer_id"))
    thresholds = compute_thresholds(scored.fillna({"clv": 0.0}), settings)
    result = classify(scored, thresholds, settings)
    if "referred_by" in customers:
        result["referral_value"] = incremental_referral_value(customers, result["clv"].fillna(0.0))
    else:
        result["referral_value"] = 0.0
    return ValuationResult(
        customers=result, fit=fit, thresholds=thresholds, by_type=by_type, settings=settings,
        as_of=as_timestamp(as_of).date(),
    )


def lost_flags(customers: pd.DataFrame, as_of: DateLike) -> pd.Series:
    """Customers known to be lost on ``as_of``, by customer_id: lost_on <= as_of where a
    lost_on column is given, else ``lost``, else not ``active``."""
    frame = customers.set_index("customer_id")
    if "lost_on" in frame:
        lost_on = pd.to_datetime(frame["lost_on"], errors="coerce")
        return (lost_on.notna() & (lost_on <= as_timestamp(as_of))).rename("lost")
    if "lost" in frame:
        return frame["lost"].fillna(False).astype(bool).rename("lost")
    if "active" in frame:
        return (~frame["active"].fillna(True).astype(bool)).rename("lost")
    return pd.Series(False, index=frame.index, name="lost")


def _choose_model(transactions, as_of, settings, customers) -> tuple[dict, str]:
    try:
        first_day = transactions["date"].min() if len(transactions) else None
        calibration_end = pd.Timestamp(backtest_split(first_day, as_of, settings.holdout_weeks))
        comparison, _ = backtest_models(
            transactions, calibration_end, as_of, settings, lost=lost_flags(customers, calibration_end)
        )
        return comparison, comparison["model"]
    except ValueError as error:
        return {"model": "bgnbd", "reason": f"no back-test: {error}"}, "bgnbd"


def valuate_with_backtest(
    transactions: pd.DataFrame,
    services: pd.DataFrame,
    customers: pd.DataFrame,
    as_of: DateLike,
    settings: EngineSettings | None = None,
    *,
    model: str | None = None,
    score: bool = True,
) -> ValuationResult:
    """:func:`valuate` with the purchase model chosen by a back-test (value.backtest_models)
    with holdout end as_of and calibration end as_of minus the holdout's weeks
    (value.backtest_holdout_weeks: the setting, or half a shorter history). If the history is
    too short for it the model stays BG/NBD and models_compared records why. A ``model`` given
    by the caller (one of PURCHASE_MODELS) skips the back-test; ``score`` as in :func:`valuate`."""
    settings = settings or EngineSettings()
    _ids, listed_tx = _listed(customers, transactions)
    if model is not None:
        comparison = {"model": model, "reason": "chosen by the caller, no back-test"}
    else:
        comparison, model = _choose_model(listed_tx, as_of, settings, customers)
    return valuate(
        listed_tx, services, customers, as_of, settings, model=model, models_compared=comparison, score=score
    )
