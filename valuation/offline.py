"""Offline analysis of any transactions export: the engine the nightly run uses, on a CSV."""

import datetime as dt
import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from core import csvfile

from . import engine

REQUIRED_COLUMNS = ("customer_id", "date", "revenue")
MAX_ERRORS_SHOWN = 20


class ExportError(ValueError):
    """The file cannot be analysed; the message names the rows and columns at fault."""


@dataclass
class OfflineResult:
    report: dict
    values: pd.DataFrame | None  # None when analyse was asked for the report alone


# import_csv's transaction file names these columns differently; both are read.
COLUMN_ALIASES = {"customer_number": "customer_id", "cost_of_goods": "cost"}


TIMESTAMP_FIRST_DAY, TIMESTAMP_LAST_DAY = pd.Timestamp("1678-01-01"), pd.Timestamp("2261-12-31")


def read_transactions(path: Path) -> pd.DataFrame:
    """customer_id, date, revenue and optional cost, read as import_csv reads its files
    (core.csvfile: encoding, separator, decimal comma, YYYY-MM-DD or DD.MM.YYYY) and with a
    time of day allowed after the date (dropped: the valuation counts days). Every bad cell
    is reported with its line and column.

    customer_id holds integer codes numbered in the sorted order of the ids (so every
    grouping and ordering by customer is the one the ids would give); ``attrs["customer_ids"]``
    maps a code back to the id, which :func:`analyse` puts on its results (codes of two files
    are not comparable: value each file as read, never a concatenation). The cells stay
    pyarrow strings until converted: no Python string is made per row."""
    try:
        columns, line, _, delimiter = csvfile.read_columns(path)
    except FileNotFoundError as exc:
        raise ExportError(f"{path}: no such file") from exc
    except (ValueError, UnicodeDecodeError) as exc:
        raise ExportError(f"{path}: not a readable CSV file ({exc})") from exc
    renamed = {k: v for k, v in COLUMN_ALIASES.items() if v not in columns}
    columns = {renamed.get(name, name): cells for name, cells in columns.items()}
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        found = ", ".join(c for c in columns if c != "line")
        raise ExportError(
            f"{path}: missing column(s) {', '.join(missing)}; the header must contain "
            f"customer_id,date,revenue (cost optional), found: {found}"
        )
    errors: list[str] = []

    def cells(column: str, rows: np.ndarray) -> list[str]:
        return columns[column].take(pa.array(rows)).to_pylist()

    customer = columns["customer_id"]
    for i in np.flatnonzero(_mask(pc.equal(customer, ""))):
        errors.append(f"line {line[i]}, column customer_id: empty")
    date = csvfile.parse_dates(columns["date"]).to_numpy()
    bad = np.flatnonzero(np.isnat(date))
    for i, text in zip(bad, cells("date", bad), strict=True):
        errors.append(f"line {line[i]}, column date: {text!r} is not a date (YYYY-MM-DD or DD.MM.YYYY)")
    # The valuation counts days in pandas' nanosecond timestamps, which end in 1677 and 2262.
    outside = np.flatnonzero(~np.isnat(date) & ((date < TIMESTAMP_FIRST_DAY.to_datetime64()) | (date > TIMESTAMP_LAST_DAY.to_datetime64())))
    for i, text in zip(outside, cells("date", outside), strict=True):
        errors.append(f"line {line[i]}, column date: {text!r} lies outside the years {TIMESTAMP_FIRST_DAY.year}–{TIMESTAMP_LAST_DAY.year}")
    amounts = [column for column in ("revenue", "cost") if column in columns]
    empty = {column: _mask(pc.equal(columns[column], "")) for column in amounts}
    # Every pattern the detection counts needs a mark in the cell, so empty cells count for
    # nothing and need not be filtered out first (a copy of every amount).
    amount_cells = pa.chunked_array([chunk for c in amounts for chunk in columns[c].chunks], type=pa.string())
    decimal_comma = csvfile.detect_decimal_comma(amount_cells, delimiter=delimiter)
    numbers = {}
    for column in amounts:
        value = csvfile.parse_amounts(columns[column], decimal_comma=decimal_comma).to_numpy()
        missing_value = np.isnan(value)
        bad = missing_value & ~((column == "cost") & empty[column])
        bad |= np.isinf(value)
        rows = np.flatnonzero(bad)
        for i, text in zip(rows, cells(column, rows), strict=True):
            errors.append(f"line {line[i]}, column {column}: {text!r} is not a number")
        numbers[column] = np.where(missing_value, 0.0, value)
    if errors:
        shown = "\n  ".join(errors[:MAX_ERRORS_SHOWN])
        more = f"\n  … and {len(errors) - MAX_ERRORS_SHOWN} more" if len(errors) > MAX_ERRORS_SHOWN else ""
        raise ExportError(f"{path}: {len(errors)} bad value(s):\n  {shown}{more}")
    if len(line) == 0:
        raise ExportError(f"{path}: no transactions in the file")
    codes, ids = _sorted_codes(customer)
    frame = pd.DataFrame(
        {
            "customer_id": codes,
            "date": date.astype("datetime64[ns]"),
            "revenue": numbers["revenue"],
            "cost": numbers.get("cost", 0.0),
        },
        copy=False,  # the arrays are made here: no second copy
    )
    frame.attrs["has_cost"] = "cost" in numbers
    frame.attrs["customer_ids"] = CustomerIds(ids)
    return frame


class CustomerIds:
    """The ids by code, kept in DataFrame.attrs: pandas deep-copies attrs into every frame
    derived from one, which for a million ids would cost more than the work itself; this
    copies as itself (the ids are never changed). Held as pyarrow strings and made Python
    strings (``ids``) only when asked: a report without per-customer values needs none."""

    def __init__(self, ids: np.ndarray | pa.Array):
        self._ids = ids

    def __len__(self) -> int:
        return len(self._ids)

    @functools.cached_property
    def ids(self) -> np.ndarray:
        if isinstance(self._ids, np.ndarray):
            return self._ids
        return np.asarray(self._ids.to_pylist(), dtype=object)

    def __deepcopy__(self, memo):
        return self


def _mask(values: pa.ChunkedArray) -> np.ndarray:
    return np.asarray(values.to_numpy(zero_copy_only=False), dtype=bool)


def _sorted_codes(ids: pa.ChunkedArray) -> tuple[np.ndarray, pa.Array]:
    """Integer codes of the ids, 0, 1, ... in the ids' sorted order (code points, as Python
    sorts strings; UTF-8 bytes sort alike), and the ids by code."""
    encoded = pc.dictionary_encode(ids.combine_chunks() if isinstance(ids, pa.ChunkedArray) else ids)
    order = pc.array_sort_indices(encoded.dictionary).to_numpy()
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order), dtype=np.int64)
    codes = rank[encoded.indices.to_numpy(zero_copy_only=False)]
    return codes, encoded.dictionary.take(pa.array(order))


def _coded(transactions: pd.DataFrame) -> tuple[pd.DataFrame, CustomerIds | None]:
    """The transactions with integer customer codes (read_transactions' or made here) and the
    ids by code; None when the ids cannot be sorted (mixed types) or one is missing: then they
    are used as they are.
    Integer codes make every match and grouping by customer a numpy operation."""
    known = transactions.attrs.get("customer_ids")
    if known is not None:
        codes = transactions["customer_id"]
        # The mapping holds only for the codes it was made with (not for a changed column).
        if pd.api.types.is_integer_dtype(codes) and (len(codes) == 0 or 0 <= codes.min() <= codes.max() < len(known)):
            return transactions, known
        raise ValueError("customer_id no longer holds the codes of attrs['customer_ids']: read the file again")
    try:
        codes, uniques = pd.factorize(transactions["customer_id"].to_numpy(dtype=object), sort=True)
    except TypeError:
        return transactions, None
    if (codes < 0).any():  # a missing id: left to the engine as it is
        return transactions, None
    coded = transactions.assign(customer_id=codes.astype(np.int64))
    coded.attrs = dict(transactions.attrs)
    return coded, CustomerIds(np.asarray(uniques, dtype=object))


def analyse(
    transactions: pd.DataFrame,
    *,
    calibration_end: dt.date,
    holdout_end: dt.date | None = None,
    settings: engine.EngineSettings | None = None,
    model: str | None = None,
    values: bool = True,
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
    calibration history chooses it (model_choice then says so). ``values=False`` leaves the
    per-customer values out (``result.values`` is None): the report is the same, and scoring
    every customer is most of the work after the fit.
    """
    settings = settings or engine.EngineSettings()
    transactions, customer_ids = _coded(transactions)
    end = pd.Timestamp(calibration_end)
    calibration = transactions[transactions["date"] <= end]
    if calibration.empty:
        raise ExportError(f"no transactions on or before the calibration end {calibration_end}")
    ids = pd.Index(calibration["customer_id"].unique())
    customers = pd.DataFrame({"customer_id": ids, "active": True, "referred_by": None, "wallet": np.nan})
    no_services = pd.DataFrame(columns=["customer_id", "date", "service_type", "quantity", "unit", "cost"])
    result = engine.valuate_with_backtest(
        calibration, no_services, customers, calibration_end, settings, model=model, score=values
    )
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
    per_customer = result.customers
    last_day = transactions["date"].max()
    until = pd.Timestamp(holdout_end) if holdout_end else last_day
    if holdout_end and until <= end:
        raise ExportError(f"the holdout end {holdout_end} must lie after the calibration end {calibration_end}")
    if until > end:
        report["holdout_end"] = until.date().isoformat()
        holdout = _holdout(
            transactions[transactions["date"] <= until], calibration_end, until, models, settings, per_customer.index
        )
        report.update(holdout)
        per_customer = per_customer.join(report.pop("_per_customer"))
    if not values:
        return OfflineResult(report=_finite(report), values=None)
    if customer_ids is not None:
        codes = per_customer.index.to_numpy()
        per_customer.index = pd.Index(customer_ids.ids[codes], name=per_customer.index.name, dtype=object)
    return OfflineResult(report=_finite(report), values=per_customer)


def _holdout(transactions, calibration_end, holdout_end, models, settings, customers: pd.Index) -> dict:
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
    per_customer = predicted.reindex(customers)
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
    keys = (
        "model",
        "reason",
        "rule",
        "tied",
        "tie_break_log_likelihood",
        "holdout_weeks",
        "customers",
        "range_calibration",
    )
    choice = {k: comparison.get(k) for k in keys}
    choice["versus_best"] = {
        name: entry.get("versus_best") for name, entry in (comparison.get("models_compared") or {}).items()
    }
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
