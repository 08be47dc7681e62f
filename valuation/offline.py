"""Offline analysis of any transactions export: the engine the nightly run uses, on a CSV."""

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from core import csvfile

from . import engine

REQUIRED_COLUMNS = ("customer_id", "date", "revenue")
MAX_ERRORS_SHOWN = 20


class ExportError(ValueError):
    """The file cannot be analysed; the message names the rows and columns at fault."""


@dataclass
class OfflineResult:
    report: dict
    values: pd.DataFrame


# import_csv's transaction file names these columns differently; both are read.
COLUMN_ALIASES = {"customer_number": "customer_id", "cost_of_goods": "cost"}


FIRST_DAY, LAST_DAY = pd.Timestamp("1678-01-01"), pd.Timestamp("2261-12-31")


def read_transactions(path: Path) -> pd.DataFrame:
    """customer_id, date, revenue and optional cost, read as import_csv reads its files
    (core.csvfile: encoding, separator, decimal comma, YYYY-MM-DD or DD.MM.YYYY) and with a
    time of day allowed after the date (dropped: the valuation counts days). Every bad cell
    is reported with its line and column."""
    try:
        raw, _, delimiter = csvfile.read_table(path)
    except FileNotFoundError as exc:
        raise ExportError(f"{path}: no such file") from exc
    except (ValueError, UnicodeDecodeError) as exc:
        raise ExportError(f"{path}: not a readable CSV file ({exc})") from exc
    raw = raw.rename(columns={k: v for k, v in COLUMN_ALIASES.items() if v not in raw.columns})
    missing = [c for c in REQUIRED_COLUMNS if c not in raw.columns]
    if missing:
        found = ", ".join(c for c in raw.columns if c != "line")
        raise ExportError(
            f"{path}: missing column(s) {', '.join(missing)}; the header must contain "
            f"customer_id,date,revenue (cost optional), found: {found}"
        )
    line = raw["line"]
    errors: list[str] = []

    customer = raw["customer_id"]
    for i in raw.index[customer == ""]:
        errors.append(f"line {line[i]}, column customer_id: empty")
    date = csvfile.parse_dates(raw["date"])
    for i in raw.index[date.isna()]:
        errors.append(f"line {line[i]}, column date: {raw.at[i, 'date']!r} is not a date (YYYY-MM-DD or DD.MM.YYYY)")
    # The valuation counts days in pandas' nanosecond timestamps, which end in 1677 and 2262.
    for i in raw.index[date.notna() & ((date < FIRST_DAY) | (date > LAST_DAY))]:
        errors.append(f"line {line[i]}, column date: {raw.at[i, 'date']!r} lies outside the years "
                      f"{FIRST_DAY.year}–{LAST_DAY.year}")
    amounts = [column for column in ("revenue", "cost") if column in raw.columns]
    filled = pd.concat([raw[c][raw[c] != ""] for c in amounts])
    decimal_comma = csvfile.detect_decimal_comma(filled, delimiter=delimiter)
    numbers = {}
    for column in amounts:
        text = raw[column]
        value = csvfile.parse_amounts(text, decimal_comma=decimal_comma)
        bad = value.isna() & ~((column == "cost") & (text == ""))
        bad |= ~np.isfinite(value.fillna(0.0))
        for i in raw.index[bad]:
            errors.append(f"line {line[i]}, column {column}: {raw.at[i, column]!r} is not a number")
        numbers[column] = value.fillna(0.0)
    if errors:
        shown = "\n  ".join(errors[:MAX_ERRORS_SHOWN])
        more = f"\n  … and {len(errors) - MAX_ERRORS_SHOWN} more" if len(errors) > MAX_ERRORS_SHOWN else ""
        raise ExportError(f"{path}: {len(errors)} bad value(s):\n  {shown}{more}")
    if raw.empty:
        raise ExportError(f"{path}: no transactions in the file")
    frame = pd.DataFrame(
        # Python strings: the engine matches and groups ids with pandas' hash tables, which
        # pyarrow-backed strings would send through a Python loop (isin).
        {
            "customer_id": customer.astype(object),
            "date": date.astype("datetime64[ns]"),
            "revenue": numbers["revenue"],
            "cost": numbers.get("cost", 0.0),
        }
    )
    frame.attrs["has_cost"] = "cost" in numbers
    return frame


def analyse(
    transactions: pd.DataFrame,
    *,
    calibration_end: dt.date,
    holdout_end: dt.date | None = None,
    settings: engine.EngineSettings | None = None,
    model: str | None = None,
) -> OfflineResult:
    """Value every customer on the transactions up to and including calibration_end, as the
    nightly run does (engine.valuate_with_backtest: input rules, model choice by a back-test
    inside that history, fit-quality gate, fallback), then judge the valuation on what came
    after: the rows up to holdout_end (default: the file's last day).

    The report keeps the earlier keys (customers, transactions, calibration_end, bgnbd: the
    BG/NBD fit whichever model is chosen, gamma_gamma, time_unit, backtest) and adds model,
    model_choice (the back-test inside the calibration history that chose it), fit_quality
    ({ok, problems}), models_compared (every model judged on the holdout after the calibration
    end) and, in backtest, the margin figures and the range calibration of the chosen model.
    With a holdout the values get holdout_expected, holdout_low, holdout_high (undiscounted
    margin after the calibration end; revenue alone when the file has no cost column),
    holdout_purchases and holdout_margin.

    ``model`` (one of engine.PURCHASE_MODELS) fixes the purchase model: no back-test inside the
    calibration history chooses it (model_choice then says so).
    """
    settings = settings or engine.EngineSettings()
    end = pd.Timestamp(calibration_end)
    calibration = transactions[transactions["date"] <= end]
    if calibration.empty:
        raise ExportError(f"no transactions on or before the calibration end {calibration_end}")
    ids = pd.Index(calibration["customer_id"].unique())
    customers = pd.DataFrame({"customer_id": ids, "active": True, "referred_by": None, "wallet": np.nan})
    no_services = pd.DataFrame(columns=["customer_id", "date", "service_type", "quantity", "unit", "cost"])
    result = engine.valuate_with_backtest(calibration, no_services, customers, calibration_end, settings, model=model)
    models = result.fit
    report = {
        "customers": int(len(ids)),
        "transactions": int(len(calibration)),
        "calibration_end": calibration_end.isoformat(),
        "bgnbd": _params(models.bgnbd, ("r", "alpha", "a", "b", "log_likelihood")),
        "gamma_gamma": _params(models.gamma_gamma, ("p", "q", "v", "log_likelihood")),
        "time_unit": "weeks",
        "model": models.model,
        "model_choice": _choice(models.models_compared),
        "fit_quality": {
            "ok": bool(models.fit_quality["ok"]),
            "problems": models.fit_quality["problems"],
            "fallback": models.fallback,
        },
        "cost_column": bool(transactions.attrs.get("has_cost", True)),
    }
    values = result.customers
    last_day = transactions["date"].max()
    until = pd.Timestamp(holdout_end) if holdout_end else last_day
    if holdout_end and until <= end:
        raise ExportError(f"the holdout end {holdout_end} must lie after the calibration end {calibration_end}")
    if until > end:
        report["holdout_end"] = until.date().isoformat()
        report.update(
            _holdout(transactions[transactions["date"] <= until], calibration_end, until, models, settings, values)
        )
        values = values.join(report.pop("_per_customer"))
    return OfflineResult(report=_finite(report), values=values)


def _holdout(transactions, calibration_end, holdout_end, models, settings, values) -> dict:
    """The valuation's forecast of the holdout against what happened, and every model's."""
    weeks = (pd.Timestamp(holdout_end) - pd.Timestamp(calibration_end)).days / 7.0
    summary = engine.summarise_transactions(transactions, calibration_end, settings, input_rule_columns=True)
    summary = summary[summary["purchase_days"] > 0]
    outcome = engine.holdout_outcome(transactions, calibration_end, holdout_end)
    comparison = engine.compare_models(summary, outcome, weeks, settings)
    predicted = engine.predict_holdout(summary, models, weeks, settings)
    actual = outcome.reindex(summary.index)
    predicted["holdout_purchases"] = actual["holdout_purchases"].fillna(0).astype(np.int64)
    predicted["holdout_margin"] = actual["holdout_margin"].fillna(0.0)
    expected_margin, actual_margin = predicted["holdout_expected"], predicted["holdout_margin"]
    x, T = summary["frequency"].to_numpy(dtype=float), summary["age_weeks"].to_numpy(dtype=float)
    naive = np.where(T > 0, x / np.where(T > 0, T, 1.0), 0.0) * weeks
    chosen = comparison["models_compared"].get(models.model, {})
    purchases = chosen.get("purchases") if models.fallback != engine.FALLBACK_TRAILING else None
    has_range = predicted["holdout_low"].notna().all() and len(predicted)
    backtest = {
        "holdout_weeks": weeks,
        "customers": int(len(summary)),
        "expected_repeat_purchases": purchases["predicted_total"] if purchases else None,
        "actual_repeat_purchases": float(predicted["holdout_purchases"].sum()),
        "mae_per_customer": purchases["mae"] if purchases else None,
        "naive_mae_per_customer": float(np.mean(np.abs(naive - predicted["holdout_purchases"].to_numpy()))),
        "predicted_margin": float(expected_margin.sum()),
        "actual_margin": float(actual_margin.sum()),
        "margin_total_error": (float(expected_margin.sum() / actual_margin.sum() - 1) if actual_margin.sum() else None),
        "margin_mae_per_customer": float(np.mean(np.abs(expected_margin - actual_margin))),
        "margin_rmse_per_customer": float(np.sqrt(np.mean((expected_margin - actual_margin) ** 2))),
        "range_calibration": {
            "share_above_high": float(np.mean(actual_margin > predicted["holdout_high"])),
            "share_below_low": float(np.mean(actual_margin < predicted["holdout_low"])),
            "interval": [settings.interval_low, settings.interval_high],
        }
        if has_range
        else None,
    }
    per_customer = predicted.reindex(values.index)
    for column in ("holdout_expected", "holdout_purchases", "holdout_margin"):
        per_customer[column] = per_customer[column].fillna(0)
    return {
        "backtest": backtest,
        "models_compared": comparison["models_compared"],
        "best_on_holdout": comparison["model"],
        "_per_customer": per_customer,
    }


def _choice(comparison: dict | None) -> dict | None:
    if not comparison:
        return None
    keys = ("model", "reason", "rule", "tied", "tie_break_log_likelihood", "holdout_weeks", "customers",
            "range_calibration")
    choice = {k: comparison.get(k) for k in keys}
    choice["versus_best"] = {name: entry.get("versus_best") for name, entry in (comparison.get("models_compared") or {}).items()}
    return choice


def _finite(value):
    """JSON without NaN or infinity: such numbers become null."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    if isinstance(value, float | np.floating):
        return float(value) if np.isfinite(value) else None
    if isinstance(value, np.integer | np.bool_):
        return value.item()
    return value


def _params(params, names) -> dict | None:
    if params is None:
        return None
    return {name: float(getattr(params, name)) for name in names}
