"""Backtest of the purchase model: fit on a calibration period, predict a holdout period."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .bgnbd import bgnbd_expected_purchases
from .settings import EngineSettings
from .summary import DateLike, _epoch_days, as_timestamp, summarise_transactions
from .value import fit_valuation_models


def backtest(
    transactions: pd.DataFrame,
    calibration_end: DateLike,
    holdout_end: DateLike | None = None,
    settings: EngineSettings | None = None,
    *,
    first_seen_from: DateLike | None = None,
) -> dict[str, Any]:
    """Fit BG/NBD and Gamma-Gamma on transactions up to calibration_end and compare, per customer, the
    BG/NBD conditional expected purchases of the holdout (calibration_end, holdout_end] with
    the repeat purchase days actually made in it.

    The cohort is the customers first seen on or before calibration_end (and on or after
    first_seen_from if given); customers first seen in the holdout are not predicted.
    holdout_end defaults to calibration_end + settings.holdout_weeks. The naive baseline
    predicts each customer's calibration rate, frequency / age_weeks repeat purchases a week
    (0 for age 0), times the holdout length. Returns holdout_weeks, customers,
    expected_repeat_purchases and actual_repeat_purchases (totals), mae_per_customer,
    naive_mae_per_customer, and the fitted bgnbd and gamma_gamma parameters as dicts.
    """
    settings = settings or EngineSettings()
    calibration_end = as_timestamp(calibration_end)
    holdout_end = (
        as_timestamp(holdout_end) if holdout_end is not None
        else calibration_end + pd.Timedelta(weeks=settings.holdout_weeks)
    )
    if holdout_end <= calibration_end:
        raise ValueError("holdout_end must be after calibration_end")
    holdout_weeks = (holdout_end - calibration_end).days / 7.0

    summary = summarise_transactions(transactions, calibration_end, settings)
    if first_seen_from is not None:
        summary = summary[summary["first_purchase"] >= as_timestamp(first_seen_from)]

    day = pd.Series(_epoch_days(transactions["date"]))
    cal_day = int(np.datetime64(calibration_end.date(), "D").astype(np.int64))
    hold_day = int(np.datetime64(holdout_end.date(), "D").astype(np.int64))
    in_holdout = ((day > cal_day) & (day <= hold_day)).to_numpy()
    holdout_days = (
        pd.DataFrame(
            {"customer_id": transactions["customer_id"].to_numpy()[in_holdout], "day": day[in_holdout]}
        )
        .drop_duplicates()
        .groupby("customer_id")
        .size()
    )
    return backtest_summary(summary, holdout_days, holdout_weeks, settings)


def backtest_summary(
    summary: pd.DataFrame, holdout_days: pd.Series, holdout_weeks: float, settings: EngineSettings | None = None
) -> dict[str, Any]:
    """The backtest from a calibration summary (see summarise_transactions) and the distinct
    purchase days each customer made in the holdout (a Series by customer_id; missing = 0).

    The nightly run computes both inputs in SQL; :func:`backtest` computes them from rows.
    """
    settings = settings or EngineSettings()
    if summary.empty:
        raise ValueError("no customers in the calibration period")
    fit = fit_valuation_models(summary, settings, model="bgnbd")
    actual = holdout_days.reindex(summary.index, fill_value=0).to_numpy(dtype=float)

    x = summary["frequency"].to_numpy(dtype=float)
    T = summary["age_weeks"].to_numpy(dtype=float)
    expected = bgnbd_expected_purchases(fit.bgnbd, holdout_weeks, x, summary["recency_weeks"].to_numpy(), T)
    naive = np.where(T > 0, x / np.where(T > 0, T, 1.0), 0.0) * holdout_weeks
    return {
        "holdout_weeks": holdout_weeks,
        "customers": int(len(summary)),
        "expected_repeat_purchases": float(expected.sum()),
        "actual_repeat_purchases": float(actual.sum()),
        "mae_per_customer": float(np.mean(np.abs(expected - actual))),
        "naive_mae_per_customer": float(np.mean(np.abs(naive - actual))),
        "bgnbd": fit.bgnbd.to_dict() if fit.bgnbd else None,
        "gamma_gamma": fit.gamma_gamma.to_dict() if fit.gamma_gamma else None,
    }
