"""Reads for the valuation: the engine's inputs, aggregated in SQL, and the stored results.

Each input is one grouped query (never millions of rows through the ORM); the engine gets
plain DataFrames back.
"""

import datetime as dt
import math
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import pandas as pd
from django.db import connection
from django.db.models import Case, Count, F, Min, Sum, Value, When

from core import copy_text
from core.planner import planner_settings
from customers.models import Customer, Transaction
from services.models import ServiceEvent
from services.selectors import VALUE_FIELD, CostHistory

from .customer_days import EPOCH, transaction_days
from .engine.settings import EngineSettings
from .engine.summary import (
    CAP_FENCE_IQRS,
    CAP_MIN_POPULATION_DAYS,
    CAP_OWN_MIN_DAYS,
    CAP_OWN_MULTIPLE,
    INPUT_RULE_COLUMNS,
    SUMMARY_COLUMNS,
    hour_factors,
    population_fence,
    summarise_transactions,
)
from .engine.summary import window_start as engine_window_start
from .engine.threads import map_on_threads
from .engine.value import backtest_calibration_end as engine_backtest_calibration_end
from .engine.value import holdout_outcome as engine_holdout_outcome
from .models import CustomerValue, ValuationPolicy, ValuationRun

IdRange = tuple[int, int] | None

# What the PostgreSQL summary query returns per customer; _summary_from_aggregates turns it
# into the engine's summary columns.
TRANSACTION_AGGREGATE_COLUMNS = [
    "customer_id", "first_purchase", "last_purchase", "purchase_days", "revenue_lifetime", "margin_lifetime",
    "revenue_window", "margin_window", "purchase_margin", "capped_total", "capped_sq", "first_capped",
    "capped_purchase_days", "returned_revenue",
]
# The engine's summary as the nightly run uses it (engine/summary.py defines every column).
SUMMARY_OUTPUT_COLUMNS = SUMMARY_COLUMNS + INPUT_RULE_COLUMNS


def valuation_policy() -> ValuationPolicy:
    policy, _ = ValuationPolicy.objects.get_or_create(pk=1)
    return policy


def engine_settings(policy: ValuationPolicy | None = None) -> EngineSettings:
    policy = policy or valuation_policy()

    def amount(value):
        return None if value is None else float(value)

    return EngineSettings(
        window_months=policy.window_months,
        horizon_months=policy.horizon_months,
        annual_discount_rate=float(policy.annual_discount_rate),
        abc_a_share=float(policy.abc_a_share),
        abc_b_share=float(policy.abc_b_share),
        classic_value=policy.classic_value,
        segment_policy=policy.segment_policy,
        segment_quantile=float(policy.segment_quantile),
        fixed_classic_threshold=amount(policy.fixed_classic_threshold),
        fixed_value_to_threshold=amount(policy.fixed_value_to_threshold),
        holdout_weeks=policy.holdout_weeks,
        hours_per_day=float(policy.hours_per_day),
    )


def window_start(as_of: dt.date, months: int) -> dt.date:
    """The window is (window_start, as_of]: the start day itself is outside."""
    return engine_window_start(as_of, EngineSettings(window_months=months)).date()


def _range_sql(column: str, id_range: IdRange) -> tuple[str, list]:
    if id_range is None:
        return "", []
    return f" AND {column} BETWEEN %s AND %s", [id_range[0], id_range[1]]


@contextmanager
def _sorted_aggregation():
    """PostgreSQL: aggregate along the (customer_id, date) index instead of hashing.

    The planner picks hash aggregation for the (customer, day) groups of numeric sums, which
    spills to disk and, with JIT compilation on top, took 3.7 s for 50,000 customers
    (1.2M transactions) against 1.0 s for the sorted plan; on all 20M transactions 22 s
    against 18 s. Set for this one query only, then restored.
    """
    with planner_settings(enable_hashagg="off", jit="off"):
        yield


def purchase_day_fence(*, as_of: dt.date) -> float:
    """The population fence of the input rules (engine.summary.population_fence): exp(Q3 + 3
    IQR) of ln(margin) over every positive purchase-day margin up to as_of, infinite with
    fewer than 20 such days. A purchase day's margin sums the day's rows with revenue > 0.

    PostgreSQL takes the quartiles with percentile_cont (linear, as numpy's default); SQLite
    has no percentile function, so the day margins come back and numpy takes them.
    """
    table = Transaction._meta.db_table
    days = f"""
        SELECT SUM(revenue - cost_of_goods) AS m FROM {table}
        WHERE date <= %s AND revenue > 0 GROUP BY customer_id, date
    """
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                f"""SELECT COUNT(*), percentile_cont(ARRAY[0.25, 0.75]) WITHIN GROUP (ORDER BY ln(m::float8))
                    FROM ({days}) AS d WHERE m > 0""",
                [as_of],
            )
            count, quartiles = cursor.fetchone()
            if count < CAP_MIN_POPULATION_DAYS:
                return math.inf
            q1, q3 = quartiles
            return float(math.exp(q3 + CAP_FENCE_IQRS * (q3 - q1)))
        cursor.execute(days, [as_of])
        margins = np.fromiter((float(row[0]) for row in cursor.fetchall()), dtype=float)
    return population_fence(margins)


def transaction_summary(
    *, as_of: dt.date, window_months: int, id_range: IdRange = None, fence: float | None = None
) -> pd.DataFrame:
    """The engine's summary (engine.summarise_transactions with input_rule_columns) for every
    customer with a transaction up to as_of, indexed by customer_id, computed in the database.

    The input rules (engine/summary.py): only rows with revenue > 0 make a purchase day (same-
    day rows merged); returns and zero rows count in the sums only; purchase-day margins are
    capped at max(population fence, 10 x own median) for the spend figures; the kept share
    scales them for returns. ``fence`` is the population fence (purchase_day_fence), measured
    once per run so that every customer-id range caps alike; None measures it here.

    PostgreSQL: one query. A (customer, day) pass splits each day into its purchase rows and
    the rest; the customer's own fence is a percentile_cont over its positive day margins;
    a second grouping sums the capped margins. SQLite has no percentile_cont: the same (customer,
    day, purchase or not) sums come back and the engine's own summary runs over them, which
    is the rule itself rather than a copy of it.
    """
    fence = purchase_day_fence(as_of=as_of) if fence is None else fence
    start = window_start(as_of, window_months)
    if connection.vendor != "postgresql":
        return _summary_in_pandas(as_of=as_of, window_months=window_months, id_range=id_range, fence=fence)
    table = Transaction._meta.db_table
    range_sql, range_params = _range_sql("customer_id", id_range)
    sql = f"""
        WITH daily AS (
            SELECT customer_id, date, SUM(revenue) AS revenue, SUM(revenue - cost_of_goods) AS margin,
                   SUM(CASE WHEN revenue > 0 THEN revenue - cost_of_goods END) AS day_margin,
                   SUM(CASE WHEN revenue < 0 THEN revenue ELSE 0 END) AS negative_revenue
            FROM {table}
            WHERE date <= %s{range_sql}
            GROUP BY customer_id, date
        ),
        -- The own fence can only matter for a customer with a day above the population fence
        -- (cap = max(both)); the per-customer medians are taken for those few customers only.
        caps AS (
            SELECT customer_id, GREATEST(%s::float8, CASE
                       WHEN COUNT(*) FILTER (WHERE day_margin > 0) >= {CAP_OWN_MIN_DAYS}
                       THEN {CAP_OWN_MULTIPLE} * percentile_cont(0.5) WITHIN GROUP (ORDER BY day_margin::float8)
                            FILTER (WHERE day_margin > 0)
                       ELSE 0 END) AS cap
            FROM daily
            WHERE customer_id IN (SELECT customer_id FROM daily WHERE day_margin::float8 > %s::float8)
            GROUP BY customer_id
        ),
        capped AS (
            -- LEAST ignores NULLs: a day without purchase rows must stay NULL, not become the cap.
            SELECT d.*, CASE WHEN d.day_margin IS NOT NULL
                             THEN LEAST(d.day_margin::float8, COALESCE(c.cap, %s::float8)) END AS capped_margin,
                   d.day_margin::float8 > COALESCE(c.cap, %s::float8) AS over_cap
            FROM daily d LEFT JOIN caps c USING (customer_id)
        )
        SELECT customer_id,
               MIN(date) FILTER (WHERE day_margin IS NOT NULL), MAX(date) FILTER (WHERE day_margin IS NOT NULL),
               COUNT(day_margin), SUM(revenue), SUM(margin),
               COALESCE(SUM(revenue) FILTER (WHERE date > %s), 0), COALESCE(SUM(margin) FILTER (WHERE date > %s), 0),
               COALESCE(SUM(day_margin), 0), COALESCE(SUM(capped_margin), 0), COALESCE(SUM(capped_margin ^ 2), 0),
               COALESCE((ARRAY_AGG(capped_margin ORDER BY date) FILTER (WHERE day_margin IS NOT NULL))[1], 0),
               COUNT(*) FILTER (WHERE over_cap), -SUM(negative_revenue)
        FROM capped
        GROUP BY customer_id
    """
    with _sorted_aggregation(), connection.cursor() as cursor:
        cursor.execute(sql, [as_of, *range_params, fence, fence, fence, fence, start, start])
        rows = cursor.fetchall()
    return _summary_from_aggregates(pd.DataFrame.from_records(rows, columns=TRANSACTION_AGGREGATE_COLUMNS), as_of=as_of)


def _summary_from_aggregates(frame: pd.DataFrame, *, as_of: dt.date) -> pd.DataFrame:
    """The engine's summary columns from the SQL sums, with the engine's formulas
    (engine.summary.summarise_transactions: kept share, mean repeat and purchase margin, cv2)."""
    frame = frame.set_index("customer_id")
    for column in ("first_purchase", "last_purchase"):
        frame[column] = pd.to_datetime(frame[column])
    money = ["revenue_lifetime", "margin_lifetime", "revenue_window", "margin_window", "purchase_margin",
             "capped_total", "capped_sq", "first_capped", "returned_revenue"]
    frame[money] = frame[money].astype("float64")
    days = frame["purchase_days"].astype("int64").to_numpy()
    has = days > 0
    frequency = np.maximum(days - 1, 0)
    purchase_margin = frame["purchase_margin"].to_numpy()
    capped_total = frame["capped_total"].to_numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        kept = np.where(purchase_margin > 0,
                        np.clip(frame["margin_lifetime"].to_numpy() / np.where(purchase_margin > 0, purchase_margin, 1.0), 0, 1),
                        1.0)
        mean_capped = capped_total / np.maximum(days, 1)
        variance = (frame["capped_sq"].to_numpy() - days * mean_capped**2) / np.maximum(days - 1, 1)
        cv2 = np.where((days >= 3) & (mean_capped > 0), np.maximum(variance, 0.0) / mean_capped**2, 0.0)
    first, last = frame["first_purchase"], frame["last_purchase"]
    as_of_ts = pd.Timestamp(as_of)
    summary = pd.DataFrame({
        "first_purchase": first,
        "last_purchase": last,
        "purchase_days": days,
        "frequency": frequency,
        "recency_weeks": np.where(has, (last - first).dt.days.fillna(0).to_numpy() / 7.0, 0.0),
        "age_weeks": np.where(has, (as_of_ts - first).dt.days.fillna(0).to_numpy() / 7.0, 0.0),
        "mean_repeat_margin": np.where(frequency > 0, kept * (capped_total - frame["first_capped"].to_numpy())
                                       / np.maximum(frequency, 1), 0.0),
        "revenue_lifetime": frame["revenue_lifetime"],
        "margin_lifetime": frame["margin_lifetime"],
        "revenue_window": frame["revenue_window"],
        "margin_window": frame["margin_window"],
        "mean_purchase_margin": np.where(has, kept * capped_total / np.maximum(days, 1), 0.0),
        "purchase_margin_cv2": cv2,
        "returned_revenue": frame["returned_revenue"],
        "capped_purchase_days": frame["capped_purchase_days"].astype("int64"),
    }, index=frame.index)
    return summary[SUMMARY_OUTPUT_COLUMNS]


def _summary_in_pandas(*, as_of: dt.date, window_months: int, id_range: IdRange, fence: float) -> pd.DataFrame:
    """SQLite: per (customer, day) the sums of the purchase rows and of the other rows, through
    the engine's summary (a day's purchase rows sum to revenue > 0, the rest to <= 0, so
    the engine sees the same purchase days and sums as on the single rows)."""
    rows = (
        Transaction.objects.filter(date__lte=as_of)
        .filter(**({"customer__id__range": id_range} if id_range else {}))
        .annotate(purchase=Case(When(revenue__gt=0, then=Value(True)), default=Value(False)))
        .values("customer_id", "date", "purchase")
        .annotate(revenue=Sum("revenue"), cost=Sum("cost_of_goods"))
        .values_list("customer_id", "date", "revenue", "cost")
        .order_by()
    )
    frame = _daily_frame(rows)
    summary = summarise_transactions(frame, as_of, EngineSettings(window_months=window_months),
                                     input_rule_columns=True, fence=fence)
    return summary[SUMMARY_OUTPUT_COLUMNS]


def _daily_frame(rows) -> pd.DataFrame:
    """(customer_id, date, revenue, cost) rows from the database as a typed frame."""
    frame = pd.DataFrame.from_records(rows.iterator(chunk_size=20000), columns=["customer_id", "date", "revenue", "cost"])
    frame["date"] = pd.to_datetime(frame["date"])
    frame[["revenue", "cost"]] = frame[["revenue", "cost"]].astype("float64")
    return frame


def transactions_frame(*, until: dt.date, id_range: IdRange = None) -> pd.DataFrame:
    """Daily revenue and cost per customer up to a date (same-day rows merged in SQL)."""
    rows = (
        Transaction.objects.filter(date__lte=until)
        .filter(**({"customer__id__range": id_range} if id_range else {}))
        .values("customer_id", "date")
        .annotate(revenue=Sum("revenue"), cost=Sum("cost_of_goods"))
        .values_list("customer_id", "date", "revenue", "cost")
        .order_by()
    )
    frame = _daily_frame(rows)
    return frame


def service_cost_by_type(*, as_of: dt.date, window_months: int, id_range: IdRange = None) -> pd.DataFrame:
    """Per customer and service type in the window: events, quantity and standard-cost value.

    Each event is valued at the standard cost valid on its own day (the same rule as
    services.selectors.service_event_value, here as one grouped query).
    """
    events = ServiceEvent.objects.filter(date__gt=window_start(as_of, window_months), date__lte=as_of)
    if id_range:
        events = events.filter(customer__id__range=id_range)
    rows = (
        events.order_by()
        .values("customer_id", code=F("service_type__code"), unit=F("service_type__unit"))
        .annotate(
            count=Count("pk"),
            total_quantity=Sum("quantity"),
            cost=Sum(F("quantity") * CostHistory.load().unit_cost_expression(), output_field=VALUE_FIELD),
        )
        .values_list("customer_id", "code", "unit", "count", "total_quantity", "cost")
    )
    columns = ["customer_id", "service_type", "unit", "count", "quantity", "cost"]
    if connection.vendor == "postgresql":
        # Through COPY as CSV: at a million customers (598k rows) 3.3 s of this process's CPU
        # row by row through the ORM, read beside the one pass's derivation, whose interpreter
        # lock it held. The sums come as PostgreSQL's exact text, read to the nearest floats.
        frame = pd.read_csv(
            copy_text.copy_out_csv(connection.ops.compose_sql(*rows.query.sql_with_params())),
            names=columns,
            keep_default_na=False,
            dtype={"customer_id": np.int64, "service_type": str, "unit": str, "count": np.int64,
                   "quantity": np.float64, "cost": np.float64},
        )
    else:
        frame = pd.DataFrame.from_records(rows.iterator(chunk_size=20000), columns=columns)
    frame[["quantity", "cost"]] = frame[["quantity", "cost"]].astype("float64")
    frame["count"] = frame["count"].astype("int64")
    return frame


def service_totals(by_type: pd.DataFrame, *, hours_per_day: float = 8.0) -> pd.DataFrame:
    """Value to the customer per customer: total cost, number of services, time given in hours
    (days count `hours_per_day` hours each; occurrences have no duration)."""
    if by_type.empty:
        return pd.DataFrame(columns=["value_to_customer", "service_count", "service_hours"], dtype="float64")
    hours = by_type["quantity"] * hour_factors(by_type["unit"], hours_per_day=hours_per_day)
    return (
        by_type.assign(hours=hours)
        .groupby("customer_id")
        .agg(value_to_customer=("cost", "sum"), service_count=("count", "sum"), service_hours=("hours", "sum"))
    )


def customer_frame(*, as_of: dt.date, id_range: IdRange = None) -> pd.DataFrame:
    """Customer attributes the engine needs: active flag (not lost by as_of), the day it was
    lost (NaT if it is not), referrer, wallet, acquisition date."""
    columns = ["customer_id", "status", "lost_on", "referred_by", "wallet", "acquisition_date"]
    if connection.vendor == "postgresql":
        frame = _customer_frame_by_copy(columns, id_range)
    else:
        customers = Customer.objects.filter(**({"id__range": id_range} if id_range else {}))
        rows = customers.values_list("id", "status", "lost_on", "referred_by_id", "yearly_wallet", "acquired_on").order_by("id")
        frame = pd.DataFrame.from_records(rows.iterator(chunk_size=20000), columns=columns)
        frame["wallet"] = pd.to_numeric(frame["wallet"], errors="coerce").astype("float64")
        frame["referred_by"] = frame["referred_by"].astype("Int64")
    lost = (frame["status"] == Customer.Status.LOST) & (pd.to_datetime(frame["lost_on"]) <= pd.Timestamp(as_of))
    frame["active"] = ~lost
    # Kept for the back-test, which asks who was lost by its calibration end.
    frame["lost_on"] = pd.to_datetime(frame["lost_on"]).where(frame["status"] == Customer.Status.LOST)
    return frame.drop(columns=["status"])


def _customer_frame_by_copy(columns: list[str], id_range: IdRange) -> pd.DataFrame:
    """customer_frame's rows through COPY as CSV: at a million customers 2.0-2.4 s of this
    process's CPU row by row through the driver, ~0.5 s so (read beside the run's one pass,
    where the driver's rows held the interpreter lock the pass's derivation needs)."""
    where = f" WHERE id BETWEEN {int(id_range[0])} AND {int(id_range[1])}" if id_range else ""
    # Days as days since 1970-01-01: no date text to parse, whatever the server's DateStyle.
    sql = (f"SELECT id, status, lost_on - DATE '{EPOCH.isoformat()}', referred_by_id, yearly_wallet, "
           f"acquired_on - DATE '{EPOCH.isoformat()}' FROM {Customer._meta.db_table}{where} ORDER BY id")
    frame = pd.read_csv(
        copy_text.copy_out_csv(sql),
        names=columns,
        keep_default_na=False,
        na_values=dict.fromkeys(("lost_on", "referred_by", "wallet", "acquisition_date"), [""]),
        dtype={"customer_id": np.int64, "status": str, "lost_on": np.float64, "referred_by": "Int64",
               "wallet": np.float64, "acquisition_date": np.float64},
    )
    for name in ("lost_on", "acquisition_date"):
        # Day precision, as the driver's dates give (datetime64[s]).
        frame[name] = pd.to_datetime(frame[name], unit="D").astype("datetime64[s]")
    return frame


# "Latest" is the completed run with the newest as-of date, never the one that finished last:
# a back-fill of an earlier date must not hide newer figures. Every page, the API and the
# exports order runs by this one rule.
RUN_RECENCY = ("-as_of", "-finished_at", "-pk")


def completed_runs_newest_first():
    return ValuationRun.objects.filter(status=ValuationRun.Status.COMPLETED).order_by(*RUN_RECENCY)


def latest_completed_run() -> ValuationRun | None:
    return completed_runs_newest_first().first()


def previous_completed_run(run: ValuationRun) -> ValuationRun | None:
    """The completed run with the newest as-of date before the given run's."""
    return completed_runs_newest_first().filter(as_of__lt=run.as_of).first()


def two_latest_runs() -> tuple[ValuationRun | None, ValuationRun | None]:
    """The latest completed run and the one before it (by as-of date), in one query."""
    runs = list(completed_runs_newest_first()[:2])
    return (runs + [None, None])[0], (runs + [None, None])[1]


def latest_values():
    """Value rows of the latest completed run (an empty queryset before the first run)."""
    run = latest_completed_run()
    if run is None:
        return CustomerValue.objects.none()
    return CustomerValue.objects.filter(run=run)


def engine_summary(summary: pd.DataFrame, *, customer_ids) -> pd.DataFrame:
    """transaction_summary completed to one row for every customer id: customers without
    a transaction get zero purchase days and sums (the engine flags them thin)."""
    summary = summary.reindex(pd.Index(customer_ids, name="customer_id"))
    counts = ["purchase_days", "frequency", "capped_purchase_days"]
    summary[counts] = summary[counts].fillna(0).astype("int64")
    numbers = [c for c in SUMMARY_OUTPUT_COLUMNS if c not in counts and c not in ("first_purchase", "last_purchase")]
    summary[numbers] = summary[numbers].fillna(0.0).astype("float64")
    return summary


def holdout_outcome(*, after: dt.date, until: dt.date) -> pd.DataFrame:
    """Per customer in (after, until]: holdout_purchases, the distinct days with a purchase row
    (revenue > 0), and holdout_margin, the margin of all rows (returns netted): what the
    back-test compares with (engine.holdout_outcome on rows)."""
    table = Transaction._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"""SELECT customer_id, COUNT(DISTINCT CASE WHEN revenue > 0 THEN date END), SUM(revenue - cost_of_goods)
                FROM {table} WHERE date > %s AND date <= %s GROUP BY customer_id""",
            [after, until],
        )
        rows = cursor.fetchall()
    frame = pd.DataFrame.from_records(rows, columns=["customer_id", "holdout_purchases", "holdout_margin"])
    frame["holdout_purchases"] = frame["holdout_purchases"].astype("int64")
    frame["holdout_margin"] = frame["holdout_margin"].astype("float64")
    return frame.set_index("customer_id")


def revenue_by_customer_period(*, period_ends: list[dt.date]) -> pd.DataFrame:
    """Revenue per customer and period (previous end, end], each row dated at its period end:
    the earned-growth input in one grouped query instead of every transaction."""
    table = Transaction._meta.db_table
    cases = " ".join(f"WHEN date <= %s THEN {k}" for k in range(1, len(period_ends)))
    sql = f"""
        SELECT customer_id, period, SUM(revenue) FROM (
            SELECT customer_id, revenue, CASE {cases} END AS period
            FROM {table} WHERE date > %s AND date <= %s
        ) AS periods
        GROUP BY customer_id, period
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, [*period_ends[1:], period_ends[0], period_ends[-1]])
        rows = cursor.fetchall()
    frame = pd.DataFrame.from_records(rows, columns=["customer_id", "period", "revenue"])
    frame["date"] = pd.to_datetime([period_ends[int(p)] for p in frame["period"]])
    frame["revenue"] = frame["revenue"].astype("float64")
    return frame[["customer_id", "date", "revenue"]]


def transaction_count(*, until: dt.date) -> int:
    """Transactions dated up to a day: what a run read (its purchase days merge same-day rows)."""
    return Transaction.objects.filter(date__lte=until).count()


# --- one pass over the transactions ----------------------------------------------------------

# The pass itself (transaction_days, DAY_COLUMNS) lives in customer_days.py.


def engine_rows(days: pd.DataFrame) -> pd.DataFrame:
    """The engine's transaction input (customer_id, date, revenue, cost) from transaction_days:
    per day one row for its purchase rows and one for its other rows, where it has any. The
    engine's input rules give the same purchase days and sums as on the single rows (a day's
    purchase rows sum to revenue > 0, the others to <= 0, and returned revenue sums the
    negative rows, which the other rows' sum is)."""
    purchase = days["purchase_revenue"].to_numpy() > 0
    other = days["other_rows"].to_numpy() > 0
    pick = np.r_[np.flatnonzero(purchase), np.flatnonzero(other)]
    kind = np.r_[np.ones(int(purchase.sum()), bool), np.zeros(int(other.sum()), bool)]
    order = np.argsort(pick, kind="stable")
    pick, kind = pick[order], kind[order]
    return pd.DataFrame({
        "customer_id": days["customer_id"].to_numpy()[pick],
        "date": days["day"].to_numpy()[pick].astype(np.int64).astype("datetime64[D]"),
        "revenue": np.where(kind, days["purchase_revenue"].to_numpy()[pick], days["other_revenue"].to_numpy()[pick]),
        "cost": np.where(kind, days["purchase_cost"].to_numpy()[pick], days["other_cost"].to_numpy()[pick]),
    })


def _epoch_day(day: dt.date) -> int:
    return (day - EPOCH).days


@dataclass
class TransactionInputs:
    """What the run reads from the transactions, all from one pass (run_transaction_inputs)."""

    summary: pd.DataFrame  # as-of summary (transaction_summary's columns)
    fence: float  # population fence at as_of
    calibration: pd.DataFrame  # summary at the back-test's calibration end, customers with a purchase day
    holdout: pd.DataFrame  # holdout_outcome's columns for (calibration end, as_of]
    revenue_by_period: pd.DataFrame  # revenue_by_customer_period's columns
    transaction_count: int  # transactions dated up to as_of
    calibration_end: dt.date | None  # the back-test's (engine.backtest_calibration_end); None: too little history


def first_transaction_day(*, until: dt.date) -> dt.date | None:
    """The day of the oldest transaction on or before ``until`` (one step down the date index)."""
    return Transaction.objects.filter(date__lte=until).aggregate(first=Min("date"))["first"]


def run_transaction_inputs(
    *, as_of: dt.date, window_months: int, holdout_weeks: float, period_ends: list[dt.date],
    scanned: Callable[[], None] | None = None,
) -> TransactionInputs:
    """Every transaction input of a run from one scan (transaction_days), with the engine's
    own rules (engine.summarise_transactions, population_fence, holdout_outcome): the same
    figures as transaction_summary, purchase_day_fence, holdout_outcome and
    revenue_by_customer_period, which each scan the table again. The back-test's calibration
    end follows from the oldest day read (engine.backtest_calibration_end). ``scanned`` is
    called once the server has sent the scan, before this process derives the figures from it."""
    days = transaction_days(until=as_of, received=scanned)
    first_day = EPOCH + dt.timedelta(days=int(days["day"].min())) if len(days) else None
    backtest_end = engine_backtest_calibration_end(first_day, as_of, holdout_weeks)
    calibration_end = backtest_end or as_of - dt.timedelta(weeks=holdout_weeks)  # unused when None
    count = int(days["rows"].to_numpy().sum(dtype=np.int64))
    revenue = days["purchase_revenue"].to_numpy() + days["other_revenue"].to_numpy()
    revenue_by_period = _revenue_by_period(days["customer_id"].to_numpy(), days["day"].to_numpy(), revenue,
                                           period_ends)
    del revenue
    purchase = days["purchase_revenue"].to_numpy() > 0
    day_margin = (days["purchase_revenue"].to_numpy() - days["purchase_cost"].to_numpy())[purchase]
    purchase_day = days["day"].to_numpy()[purchase]
    fence = population_fence(day_margin)
    calibration_fence = population_fence(day_margin[purchase_day <= _epoch_day(calibration_end)])
    del day_margin, purchase_day, purchase
    settings = EngineSettings(window_months=window_months)
    # Every figure but the fences is per customer: the engine takes the days a block of
    # customers at a time, which keeps its working arrays small (at 1M customers and 12M
    # days, all at once peaked at 2.6 GB).
    def derive(block: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
        rows = engine_rows(block)
        calibration = summarise_transactions(rows, calibration_end, settings, input_rule_columns=True,
                                             fence=calibration_fence)
        return (summarise_transactions(rows, as_of, settings, input_rule_columns=True, fence=fence),
                calibration[calibration["purchase_days"] > 0], engine_holdout_outcome(rows, calibration_end, as_of))

    blocks = [days.iloc[start:stop]
              for start, stop in _customer_blocks(days["customer_id"].to_numpy(), rows_per_block=DAYS_PER_BLOCK)]
    del days
    # The server idles meanwhile: two blocks at once keep both cores busy (numpy leaves the
    # interpreter lock), and each block's figures are its own.
    derived = map_on_threads(derive, blocks, threads=DERIVE_THREADS, name="derive-days")
    del blocks
    summaries, calibrations, holdouts = ([part[k] for part in derived] for k in range(3))
    del derived
    summary = pd.concat(summaries) if summaries else summarise_transactions(
        pd.DataFrame(columns=["customer_id", "date", "revenue", "cost"]), as_of, settings, input_rule_columns=True)
    calibration = pd.concat(calibrations) if calibrations else summary.iloc[:0]
    holdout = (pd.concat(holdouts) if holdouts
               else pd.DataFrame({"holdout_purchases": pd.Series(dtype="int64"), "holdout_margin": pd.Series(dtype=float)}))
    return TransactionInputs(
        summary=summary[SUMMARY_OUTPUT_COLUMNS], fence=fence, calibration=calibration[SUMMARY_OUTPUT_COLUMNS],
        holdout=holdout[["holdout_purchases", "holdout_margin"]], revenue_by_period=revenue_by_period,
        transaction_count=count, calibration_end=backtest_end,
    )


# At 1M customers (12M days), medians of 3: on one thread 3.7 s (blocks of 375k days) to
# 4.0 s (1.5M); on two threads in blocks of 250k days 2.8 s, the peak 70 MB higher (two blocks'
# arrays at once; in blocks of 1.5M, 400 MB). The figures are the same whatever the blocks.
DAYS_PER_BLOCK = 250_000
DERIVE_THREADS = 2


def _customer_blocks(customer: np.ndarray, *, rows_per_block: int) -> list[tuple[int, int]]:
    """(start, stop) row ranges of about rows_per_block rows each that never split a
    customer's rows (``customer`` sorted)."""
    n = len(customer)
    if n == 0:
        return []
    starts = np.flatnonzero(np.r_[True, customer[1:] != customer[:-1]])
    cuts = np.unique(np.r_[starts[np.minimum(np.searchsorted(starts, np.arange(0, n, rows_per_block)), len(starts) - 1)], n])
    return list(zip(cuts[:-1].tolist(), cuts[1:].tolist(), strict=True))


def _revenue_by_period(customer: np.ndarray, day: np.ndarray, revenue: np.ndarray, period_ends: list[dt.date]):
    """revenue_by_customer_period from the day sums, sorted by customer and day (as
    transaction_days gives them): period k is (end k-1, end k]. Sorted so, each (customer,
    period) is one run of rows, summed in place (a grouping of the 10M days took 3 s)."""
    ends = np.array([_epoch_day(end) for end in period_ends], dtype=np.int64)
    inside = (day > ends[0]) & (day <= ends[-1])
    customer, period, revenue = customer[inside], np.searchsorted(ends, day[inside], side="left"), revenue[inside]
    starts = np.flatnonzero(np.r_[len(customer) > 0, (customer[1:] != customer[:-1]) | (period[1:] != period[:-1])])
    frame = pd.DataFrame({"customer_id": customer[starts], "period": period[starts],
                          "revenue": np.add.reduceat(revenue, starts) if len(starts) else revenue})
    frame["date"] = pd.to_datetime(np.array(period_ends, dtype="datetime64[D]")[frame["period"].to_numpy()])
    return frame[["customer_id", "date", "revenue"]]
