"""The whole valuation of one day in one call, for small data sets, CSV exports and tests.

The Django side runs the same steps in chunks: summary by SQL, fit_models once,
score_customers per chunk, compute_thresholds once, classify per chunk.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .clv import ModelFit, fit_models, score_customers
from .referral import referral_value
from .segments import Thresholds, classify, compute_thresholds
from .settings import EngineSettings
from .summary import SUMMARY_COLUMNS, DateLike, as_timestamp, summarise_services, summarise_transactions


@dataclass
class ValuationResult:
    customers: pd.DataFrame
    fit: ModelFit
    thresholds: Thresholds
    by_type: pd.DataFrame
    settings: EngineSettings
    as_of: dt.date


def _complete_summary(summary: pd.DataFrame, ids: pd.Index) -> pd.DataFrame:
    """Customers without transactions get zero counts and sums and no purchase dates."""
    full = summary.reindex(ids)
    numeric = [c for c in SUMMARY_COLUMNS if c not in ("first_purchase", "last_purchase")]
    full[numeric] = full[numeric].fillna(0.0)
    for column in ("purchase_days", "frequency"):
        full[column] = full[column].astype(np.int64)
    return full


def valuate(
    transactions: pd.DataFrame,
    services: pd.DataFrame,
    customers: pd.DataFrame,
    as_of: DateLike,
    settings: EngineSettings | None = None,
) -> ValuationResult:
    """Value every customer in ``customers`` (customer_id, active, referred_by, wallet).

    Transactions and services of customers not listed are ignored. Result columns: the
    summary (summarise_transactions), the services totals (summarise_services), the scores
    (score_customers), abc_class, segment, strategy (classify), plus
    profit_after_services = margin_window - value_to_customer,
    share_of_supply = revenue_window / wallet (NaN where the wallet is unknown or <= 0), and
    referral_value (referral.referral_value over margin_lifetime + clv).
    """
    settings = settings or EngineSettings()
    ids = pd.Index(customers["customer_id"], name="customer_id")
    if ids.has_duplicates:
        raise ValueError("customer_id must be unique in customers")
    listed_tx = transactions[transactions["customer_id"].isin(ids)]
    summary = _complete_summary(summarise_transactions(listed_tx, as_of, settings), ids)
    listed_services = services[services["customer_id"].isin(ids)] if len(services) else services
    totals, by_type = summarise_services(listed_services, as_of, settings)

    fit = fit_models(summary, settings)
    scored = summary.join(score_customers(summary, fit, settings))
    totals = totals.reindex(ids).fillna(0.0)
    totals["service_count"] = totals["service_count"].astype(np.int64)
    scored = scored.join(totals)
    info = customers.set_index("customer_id")
    scored["active"] = info["active"].reindex(ids).fillna(False).astype(bool)
    scored["profit_after_services"] = scored["margin_window"] - scored["value_to_customer"]
    wallet = pd.to_numeric(info["wallet"], errors="coerce").reindex(ids) if "wallet" in info else np.nan
    with np.errstate(divide="ignore", invalid="ignore"):
        scored["share_of_supply"] = np.where(wallet > 0, scored["revenue_window"] / wallet, np.nan)

    thresholds = compute_thresholds(scored, settings)
    result = classify(scored, thresholds, settings)
    referral_base = result["margin_lifetime"] + result["clv"]
    if "referred_by" in customers:
        result["referral_value"] = referral_value(customers, referral_base)
    else:
        result["referral_value"] = 0.0
    return ValuationResult(
        customers=result,
        fit=fit,
        thresholds=thresholds,
        by_type=by_type,
        settings=settings,
        as_of=as_timestamp(as_of).date(),
    )
