"""Per-customer figures from raw transactions and service events.

The Django side computes the same table with one aggregating SQL query; the definitions below
are the contract between the two and must stay crisp.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from .settings import EngineSettings

DateLike = dt.date | dt.datetime | pd.Timestamp | np.datetime64 | str

SUMMARY_COLUMNS = [
    "first_purchase",
    "last_purchase",
    "purchase_days",
    "frequency",
    "recency_weeks",
    "age_weeks",
    "mean_repeat_margin",
    "revenue_lifetime",
    "margin_lifetime",
    "revenue_window",
    "margin_window",
]
SERVICE_TOTAL_COLUMNS = ["value_to_customer", "service_count", "service_hours"]
SERVICE_BY_TYPE_COLUMNS = ["customer_id", "service_type", "cost", "count", "quantity"]


def as_timestamp(value: DateLike) -> pd.Timestamp:
    """A date-like value as a midnight Timestamp (the engine counts whole days)."""
    return pd.Timestamp(value).normalize()


def window_start(as_of: DateLike, settings: EngineSettings) -> pd.Timestamp:
    """Exclusive start of the trailing window: as_of minus window_months calendar months.

    Month arithmetic clips to the month's end (2024-02-29 minus 12 months is 2023-02-28), as
    PostgreSQL's ``date - interval 'n months'`` does. SQLite's date() rolls over instead, so the
    SQL side should take this value as a parameter rather than compute it.
    """
    return as_timestamp(as_of) - pd.DateOffset(months=settings.window_months)


def _epoch_days(dates: pd.Series | np.ndarray) -> np.ndarray:
    values = pd.to_datetime(pd.Series(dates)).to_numpy()
    return values.astype("datetime64[D]").astype(np.int64)


def _day(value: DateLike) -> int:
    return int(np.datetime64(as_timestamp(value).date(), "D").astype(np.int64))


def _money(frame: pd.DataFrame, column: str) -> np.ndarray:
    if column not in frame:
        return np.zeros(len(frame))
    return pd.to_numeric(frame[column], errors="coerce").fillna(0.0).to_numpy(dtype=float)


def summarise_transactions(
    transactions: pd.DataFrame, as_of: DateLike, settings: EngineSettings | None = None
) -> pd.DataFrame:
    """One row per customer with at least one transaction dated on or before ``as_of``.

    Input columns: customer_id, date, revenue, cost (optional; missing or NaN counts as 0).
    Definitions (margin = revenue - cost; a purchase day is a calendar day with at least one
    transaction row of the customer, whatever its amount; rows dated after as_of are ignored):

    - first_purchase, last_purchase: first and last purchase day.
    - purchase_days: number of distinct purchase days.
    - frequency: purchase_days - 1, the repeat purchases of the BG/NBD literature.
    - recency_weeks: (last_purchase - first_purchase) in days / 7 (t_x).
    - age_weeks: (as_of - first_purchase) in days / 7 (T).
    - mean_repeat_margin: (margin_lifetime - margin of the first purchase day) / frequency,
      the mean margin of the repeat purchase days; 0 when frequency is 0.
    - revenue_lifetime, margin_lifetime: sums over all rows up to as_of.
    - revenue_window, margin_window: sums over rows with window_start < date <= as_of, see
      :func:`window_start`.

    Same-day purchases are merged into one purchase day and time runs in weeks, following
    Fader, Hardie & Lee (2005).
    """
    settings = settings or EngineSettings()
    as_of_day = _day(as_of)
    start_day = _day(window_start(as_of, settings))

    day = _epoch_days(transactions["date"]) if len(transactions) else np.zeros(0, np.int64)
    keep = day <= as_of_day
    day = day[keep]
    revenue = _money(transactions, "revenue")[keep]
    margin = revenue - _money(transactions, "cost")[keep]
    codes, customer_ids = pd.factorize(transactions["customer_id"].to_numpy()[keep], sort=True)
    n = len(customer_ids)

    in_window = day > start_day
    revenue_window = np.bincount(codes, weights=revenue * in_window, minlength=n)
    margin_window = np.bincount(codes, weights=margin * in_window, minlength=n)
    revenue_lifetime = np.bincount(codes, weights=revenue, minlength=n)
    margin_lifetime = np.bincount(codes, weights=margin, minlength=n)

    # Sort by (customer, day) with one integer key; runs of equal keys are purchase days.
    span = int(day.max() - day.min() + 1) if len(day) else 1
    key = codes.astype(np.int64) * span + (day - (day.min() if len(day) else 0))
    order = np.argsort(key, kind="stable")
    key_sorted = key[order]
    new_day = np.ones(len(key_sorted), dtype=bool)
    new_day[1:] = key_sorted[1:] != key_sorted[:-1]
    day_start = np.flatnonzero(new_day)
    day_customer = codes[order][day_start]
    day_date = day[order][day_start]
    day_margin = np.add.reduceat(margin[order], day_start) if len(day_start) else np.zeros(0)

    purchase_days = np.bincount(day_customer, minlength=n)
    # Days are sorted by customer, so each customer's days form one run.
    first_idx = np.r_[0, np.cumsum(purchase_days)[:-1]].astype(np.int64) if n else np.zeros(0, np.int64)
    last_idx = first_idx + purchase_days - 1
    first_day = day_date[first_idx]
    last_day = day_date[last_idx]
    frequency = purchase_days - 1
    repeat_margin = margin_lifetime - day_margin[first_idx]
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_repeat_margin = np.where(frequency > 0, repeat_margin / np.maximum(frequency, 1), 0.0)

    summary = pd.DataFrame(
        {
            "first_purchase": pd.to_datetime(first_day, unit="D"),
            "last_purchase": pd.to_datetime(last_day, unit="D"),
            "purchase_days": purchase_days.astype(np.int64),
            "frequency": frequency.astype(np.int64),
            "recency_weeks": (last_day - first_day) / 7.0,
            "age_weeks": (as_of_day - first_day) / 7.0,
            "mean_repeat_margin": mean_repeat_margin,
            "revenue_lifetime": revenue_lifetime,
            "margin_lifetime": margin_lifetime,
            "revenue_window": revenue_window,
            "margin_window": margin_window,
        },
        index=pd.Index(customer_ids, name="customer_id"),
    )
    return summary


def summarise_services(
    services: pd.DataFrame, as_of: DateLike, settings: EngineSettings | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Value to the customer: free services in the trailing window (window_start < date <= as_of).

    Input columns: customer_id, date, service_type, quantity, unit, cost, where cost is already
    valued at the standard cost valid on the event's day.

    Returns ``(totals, by_type)``:

    - totals, indexed by customer_id: value_to_customer = sum of cost; service_count = number of
      events; service_hours = time given in hours: quantity of "hour" events plus quantity x
      settings.hours_per_day of "day" events ("occurrence" events have no duration, add none).
    - by_type: one row per (customer_id, service_type) with cost, count and quantity (quantity
      summed as logged; a service type has one unit).
    """
    settings = settings or EngineSettings()
    start = window_start(as_of, settings)
    end = as_timestamp(as_of)
    if len(services) == 0:
        totals = pd.DataFrame(
            {c: pd.Series(dtype=float) for c in SERVICE_TOTAL_COLUMNS},
            index=pd.Index([], name="customer_id"),
        )
        totals["service_count"] = totals["service_count"].astype(np.int64)
        return totals, pd.DataFrame({c: [] for c in SERVICE_BY_TYPE_COLUMNS})

    dates = pd.to_datetime(services["date"]).dt.normalize()
    frame = pd.DataFrame(
        {
            "customer_id": services["customer_id"].to_numpy(),
            "service_type": services["service_type"].to_numpy(),
            "cost": _money(services, "cost"),
            "quantity": _money(services, "quantity"),
            "unit": services["unit"].to_numpy() if "unit" in services else None,
        }
    )[((dates > start) & (dates <= end)).to_numpy()]
    frame["hours"] = frame["quantity"] * hour_factors(frame["unit"], hours_per_day=settings.hours_per_day)

    totals = frame.groupby("customer_id", sort=True).agg(
        value_to_customer=("cost", "sum"),
        service_count=("cost", "size"),
        service_hours=("hours", "sum"),
    )
    by_type = (
        frame.groupby(["customer_id", "service_type"], sort=True)
        .agg(cost=("cost", "sum"), count=("cost", "size"), quantity=("quantity", "sum"))
        .reset_index()
    )
    return totals, by_type


def hour_factors(units: pd.Series, *, hours_per_day: float) -> np.ndarray:
    """Hours per logged unit: 1 for "hour", hours_per_day for "day", 0 for "occurrence"."""
    unit = units.astype(str).str.lower().to_numpy()
    return np.select([unit == "hour", unit == "day"], [1.0, float(hours_per_day)], default=0.0)
