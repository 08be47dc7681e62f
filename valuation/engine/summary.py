"""Per-customer figures from raw transactions and service events.

The Django side computes the same table with one aggregating SQL query; the definitions below
are the contract between the two and must stay crisp.
"""

from __future__ import annotations

import datetime as dt
import math

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
# Added by the input rules (see summarise_transactions); the SQL summary may leave them out,
# the engine then reads them as 0.
INPUT_RULE_COLUMNS = ["mean_purchase_margin", "purchase_margin_cv2", "returned_revenue", "capped_purchase_days"]
SERVICE_TOTAL_COLUMNS = ["value_to_customer", "service_count", "service_hours"]
SERVICE_BY_TYPE_COLUMNS = ["customer_id", "service_type", "cost", "count", "quantity"]

# Capping rule for the spend model's input (see cap_purchase_margins).
CAP_FENCE_IQRS = 3.0
CAP_MIN_POPULATION_DAYS = 20
CAP_OWN_MULTIPLE = 10.0
CAP_OWN_MIN_DAYS = 3


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
    # Dates may carry a time of day (timestamps from ERP exports): the day is what counts.
    series = pd.Series(dates)
    try:
        values = pd.to_datetime(series).to_numpy()
    except ValueError:
        # Strings mixing "2025-01-01" and "2025-01-01 10:30": parse each on its own.
        values = pd.to_datetime(series, format="mixed").to_numpy()
    return values.astype("datetime64[D]").astype(np.int64)


def _day(value: DateLike) -> int:
    return int(np.datetime64(as_timestamp(value).date(), "D").astype(np.int64))


def _money(frame: pd.DataFrame, column: str) -> np.ndarray:
    if column not in frame:
        return np.zeros(len(frame))
    return pd.to_numeric(frame[column], errors="coerce").fillna(0.0).to_numpy(dtype=float)


def population_fence(day_margin: np.ndarray) -> float:
    """Upper fence of the population's purchase-day margins: exp(Q3 + 3 IQR) of their logs.

    Tukey's "far out" fence (Tukey 1977, Exploratory Data Analysis) on the log scale, where
    spend is roughly symmetric; quartiles are numpy's default (linear, = SQL percentile_cont).
    Only positive margins count; with fewer than CAP_MIN_POPULATION_DAYS of them there is no
    population range to speak of and the fence is infinite.
    """
    positive = day_margin[day_margin > 0]
    if len(positive) < CAP_MIN_POPULATION_DAYS:
        return math.inf
    q1, q3 = np.quantile(np.log(positive), [0.25, 0.75])
    return float(np.exp(q3 + CAP_FENCE_IQRS * (q3 - q1)))


def cap_purchase_margins(
    day_customer: np.ndarray, day_margin: np.ndarray, n_customers: int, *, fence: float | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Purchase-day margins capped for model fitting, and the number capped per customer.

    A day's margin m is capped at cap = max(population fence, own fence) when m > cap:
    population fence = :func:`population_fence`; own fence = CAP_OWN_MULTIPLE x the median of
    the customer's positive purchase-day margins if the customer has at least CAP_OWN_MIN_DAYS
    of them, else 0 (one or two days give no own range). So only amounts far outside both
    the population's and the customer's own range are capped: a large customer whose every
    order is large keeps its figures. Days are never dropped; historical sums stay uncapped.
    ``fence``: the population fence when it was measured on more customers than these (the
    nightly run scores customer-id ranges against the fence of the whole company).
    """
    fence = population_fence(day_margin) if fence is None else fence
    if not math.isfinite(fence) or len(day_margin) == 0:
        return day_margin.copy(), np.zeros(n_customers, np.int64)
    # Only a day above the population fence can be capped (cap >= fence): the own fences of
    # the few customers with such a day are all that is needed.
    above = day_margin > fence
    if not above.any():
        return day_margin.copy(), np.zeros(n_customers, np.int64)
    candidate = np.zeros(n_customers, dtype=bool)
    candidate[day_customer[above]] = True
    positive = (day_margin > 0) & candidate[day_customer]
    frame = pd.DataFrame({"c": day_customer[positive], "m": day_margin[positive]})
    grouped = frame.groupby("c")["m"]
    own = (grouped.median() * CAP_OWN_MULTIPLE).where(grouped.size() >= CAP_OWN_MIN_DAYS, 0.0)
    own_fence = np.zeros(n_customers)
    own_fence[own.index.to_numpy()] = own.to_numpy()
    cap = np.maximum(fence, own_fence)[day_customer]
    capped = day_margin > cap
    return np.where(capped, cap, day_margin), np.bincount(day_customer[capped], minlength=n_customers)


def _sorted_factorize(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """pd.factorize(ids, sort=True); for non-negative integer ids up to a few times their
    number (the offline reader's customer codes) by counting instead of hashing and sorting."""
    countable = ids.dtype.kind == "i" or (ids.dtype.kind == "u" and ids.dtype.itemsize < 8)
    if countable and len(ids) and ids.min() >= 0 and ids.max() < 4 * len(ids) + 1024:
        present = np.bincount(ids) > 0
        uniques = np.flatnonzero(present).astype(ids.dtype)
        rank = np.cumsum(present) - 1
        return rank[ids].astype(np.intp), uniques
    return pd.factorize(ids, sort=True)


def summarise_transactions(
    transactions: pd.DataFrame,
    as_of: DateLike,
    settings: EngineSettings | None = None,
    *,
    input_rule_columns: bool = False,
    fence: float | None = None,
) -> pd.DataFrame:
    """One row per customer with at least one transaction dated on or before ``as_of``.

    Input columns: customer_id, date (a time of day is ignored), revenue, cost (optional;
    missing or NaN counts as 0). margin = revenue - cost; rows dated after as_of are ignored.

    Input rules (the SQL summary must reproduce them):

    - A purchase row has revenue > 0. Rows with revenue <= 0 (returns, credit notes,
      zero-value rows) are never purchases: they do not make a purchase day, but their
      revenue and margin are netted into the sums below.
    - A purchase day is a calendar day with at least one purchase row of the customer; its
      margin is the sum of the margins of that day's purchase rows.
    - kept share f = (margin of all rows) / (margin of purchase rows), clipped to [0, 1],
      when the margin of purchase rows is > 0, else 1: returns reduce the customer's spend
      pro rata over its purchases (invoices are not matched to credit notes).
    - Purchase-day margins are capped for the spend model by :func:`cap_purchase_margins`
      (``fence``: the population fence measured elsewhere; None measures it on these rows).

    Columns:

    - first_purchase, last_purchase: first and last purchase day (NaT without a purchase day).
    - purchase_days: number of distinct purchase days.
    - frequency: max(purchase_days - 1, 0), the repeat purchases of the BG/NBD literature.
    - recency_weeks: (last_purchase - first_purchase) in days / 7 (t_x); 0 without purchases.
    - age_weeks: (as_of - first_purchase) in days / 7 (T); 0 without purchases.
    - mean_repeat_margin: f x (sum of capped margins of the purchase days after the first) /
      frequency; 0 when frequency is 0.
    - revenue_lifetime, margin_lifetime: sums over all rows up to as_of (returns netted).
    - revenue_window, margin_window: sums over rows with window_start < date <= as_of, see
      :func:`window_start`.

    With ``input_rule_columns`` (INPUT_RULE_COLUMNS; the SQL summary may not have them yet,
    the engine then derives what it needs, see clv._model_inputs):

    - mean_purchase_margin: f x (sum of capped margins of all purchase days) / purchase_days;
      0 without purchase days (the spend estimate when no spend model can be trusted).
    - purchase_margin_cv2: squared coefficient of variation of the customer's capped
      purchase-day margins, s^2 / mean^2 with the sample variance s^2 (n - 1), for customers
      with at least 3 purchase days and a positive mean; else 0. The spread of one customer's
      purchases around its own mean, which the ranges use (value._fit_spend).
    - returned_revenue: minus the sum of negative revenue up to as_of (>= 0).
    - capped_purchase_days: purchase days whose margin was capped.

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
    codes, customer_ids = _sorted_factorize(transactions["customer_id"].to_numpy()[keep])
    n = len(customer_ids)

    in_window = day > start_day
    revenue_window = np.bincount(codes, weights=revenue * in_window, minlength=n)
    margin_window = np.bincount(codes, weights=margin * in_window, minlength=n)
    revenue_lifetime = np.bincount(codes, weights=revenue, minlength=n)
    margin_lifetime = np.bincount(codes, weights=margin, minlength=n)
    returned_revenue = -np.bincount(codes, weights=np.minimum(revenue, 0.0), minlength=n)

    purchase = revenue > 0
    p_codes, p_day, p_margin = codes[purchase], day[purchase], margin[purchase]
    purchase_margin = np.bincount(p_codes, weights=p_margin, minlength=n)
    with np.errstate(invalid="ignore", divide="ignore"):
        kept_share = np.where(
            purchase_margin > 0, np.clip(margin_lifetime / np.where(purchase_margin > 0, purchase_margin, 1.0), 0, 1), 1.0
        )

    # Sort purchase rows by (customer, day) with one integer key; runs of equal keys are days.
    low = p_day.min() if len(p_day) else 0
    span = int(p_day.max() - low + 1) if len(p_day) else 1
    key = p_codes.astype(np.int64) * span + (p_day - low)
    order = np.argsort(key, kind="stable")
    key_sorted = key[order]
    new_day = np.ones(len(key_sorted), dtype=bool)
    new_day[1:] = key_sorted[1:] != key_sorted[:-1]
    day_start = np.flatnonzero(new_day)
    day_customer = p_codes[order][day_start]
    day_date = p_day[order][day_start]
    day_margin = np.add.reduceat(p_margin[order], day_start) if len(day_start) else np.zeros(0)
    capped_margin, capped_days = cap_purchase_margins(day_customer, day_margin, n, fence=fence)

    purchase_days = np.bincount(day_customer, minlength=n)
    has_purchase = purchase_days > 0
    # Days are sorted by customer, so each customer's days form one run.
    first_idx = np.r_[0, np.cumsum(purchase_days)[:-1]].astype(np.int64) if n else np.zeros(0, np.int64)
    safe_first = np.minimum(first_idx, max(len(day_date) - 1, 0))
    safe_last = np.minimum(first_idx + purchase_days - 1, max(len(day_date) - 1, 0))
    first_day = np.where(has_purchase, day_date[safe_first] if len(day_date) else 0, 0)
    last_day = np.where(has_purchase, day_date[safe_last] if len(day_date) else 0, 0)
    frequency = np.maximum(purchase_days - 1, 0)
    capped_total = np.bincount(day_customer, weights=capped_margin, minlength=n)
    capped_sq = np.bincount(day_customer, weights=capped_margin**2, minlength=n)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_capped = capped_total / np.maximum(purchase_days, 1)
        variance = (capped_sq - purchase_days * mean_capped**2) / np.maximum(purchase_days - 1, 1)
        cv2 = np.where((purchase_days >= 3) & (mean_capped > 0), np.maximum(variance, 0.0) / mean_capped**2, 0.0)
    first_capped = np.where(has_purchase, capped_margin[safe_first] if len(day_date) else 0.0, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_repeat_margin = np.where(
            frequency > 0, kept_share * (capped_total - first_capped) / np.maximum(frequency, 1), 0.0
        )
        mean_purchase_margin = np.where(has_purchase, kept_share * capped_total / np.maximum(purchase_days, 1), 0.0)

    first = pd.to_datetime(first_day, unit="D").where(has_purchase)
    last = pd.to_datetime(last_day, unit="D").where(has_purchase)
    summary = pd.DataFrame(
        {
            "first_purchase": first,
            "last_purchase": last,
            "purchase_days": purchase_days.astype(np.int64),
            "frequency": frequency.astype(np.int64),
            "recency_weeks": np.where(has_purchase, (last_day - first_day) / 7.0, 0.0),
            "age_weeks": np.where(has_purchase, (as_of_day - first_day) / 7.0, 0.0),
            "mean_repeat_margin": mean_repeat_margin,
            "revenue_lifetime": revenue_lifetime,
            "margin_lifetime": margin_lifetime,
            "revenue_window": revenue_window,
            "margin_window": margin_window,
            "mean_purchase_margin": mean_purchase_margin,
            "purchase_margin_cv2": cv2,
            "returned_revenue": returned_revenue,
            "capped_purchase_days": capped_days.astype(np.int64),
        },
        index=pd.Index(customer_ids, name="customer_id"),
        copy=False,  # the arrays are this function's own: no second copy of a million rows
    )
    return summary if input_rule_columns else summary[SUMMARY_COLUMNS]


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
