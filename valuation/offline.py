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
        {"customer_id": customer, "date": date.astype("datetime64[ns]"), "revenue": numbers["revenue"],
         "cost": numbers.get("cost", 0.0)}
    )
    frame.attrs["has_cost"] = "cost" in numbers
    return frame


def analyse(transactions: pd.DataFrame, *, calibration_end: dt.date, settings: engine.EngineSettings | None = None) -> OfflineResult:
    """Fit on transactions up to and including calibration_end; back-test on the rest."""
    settings = settings or engine.EngineSettings()
    calibration = transactions[transactions["date"] <= pd.Timestamp(calibration_end)]
    if calibration.empty:
        raise ExportError(f"no transactions on or before the calibration end {calibration_end}")
    ids = pd.Index(calibration["customer_id"].unique())
    customers = pd.DataFrame({"customer_id": ids, "active": True, "referred_by": None, "wallet": np.nan})
    no_services = pd.DataFrame(columns=["customer_id", "date", "service_type", "quantity", "unit", "cost"])
    result = engine.valuate(calibration, no_services, customers, calibration_end, settings)
    report = {
        "customers": int(len(ids)),
        "transactions": int(len(calibration)),
        "calibration_end": calibration_end.isoformat(),
        "bgnbd": _params(result.fit.bgnbd, ("r", "alpha", "a", "b", "log_likelihood")),
        "gamma_gamma": _params(result.fit.gamma_gamma, ("p", "q", "v", "log_likelihood")),
        "time_unit": "weeks",
    }
    last_day = transactions["date"].max()
    if last_day > pd.Timestamp(calibration_end):
        backtest = engine.backtest(transactions, calibration_end, last_day, settings)
        report["backtest"] = {
            k: backtest[k]
            for k in ("holdout_weeks", "customers", "expected_repeat_purchases", "actual_repeat_purchases",
                      "mae_per_customer", "naive_mae_per_customer")
        }
    return OfflineResult(report=report, values=result.customers)


def _params(params, names) -> dict | None:
    if params is None:
        return None
    return {name: float(getattr(params, name)) for name in names}
