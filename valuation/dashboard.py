"""Reads for the manager pages: the segment dashboard and the settings page.

Every figure is aggregated in the database: one grouped query per figure, never one query
per customer, so a page costs the same number of queries for 100 or 100,000 customers.
The scatter plot gets a deterministic stratified sample of at most SCATTER_BUDGET points.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

import numpy as np
from dateutil.relativedelta import relativedelta
from django.core.cache import cache
from django.db import connection
from django.db.models import (
    Case,
    Count,
    DecimalField,
    ExpressionWrapper,
    F,
    IntegerField,
    Prefetch,
    Q,
    QuerySet,
    Sum,
    Value,
    When,
)
from django.db.models.expressions import RowRange, Window
from django.db.models.functions import Greatest, RowNumber
from django.urls import NoReverseMatch, reverse
from django.utils import timezone, translation
from django.utils.translation import gettext_lazy

from customers.models import Customer
from customers.selectors import filter_choices as customer_filter_choices
from services.models import ServiceEvent, ServiceType, StandardCost
from services.selectors import CostHistory

from .models import CustomerValue, RunSummary, RunSummaryCell, Segment, ValuationRun, ValueBasis

SEGMENTS = [Segment.UNCRITICAL, Segment.PROBLEM, Segment.POTENTIAL, Segment.INVESTMENT]
SCATTER_BUDGET = 5000
WHALE_POINTS = 500
ACTION_LIST_LENGTH = 20
SERVICE_COST_MONTHS = 24
# A customer whose P(alive) is below this is "at risk" on the win-back list.
AT_RISK_P_ALIVE = 0.5
# "A today, C tomorrow": CLV below this share of the window margin continued over the horizon.
A_TODAY_CLV_SHARE = Decimal("0.5")
# How far back the default comparison run of the migration matrix lies.
DEFAULT_COMPARISON_DAYS = 90
RUN_FIGURES_TTL = 7 * 24 * 3600  # a completed run's figures never change
SERVICE_COST_TTL = 5 * 60  # new services show on the dashboard within five minutes
MONEY_SUM = DecimalField(max_digits=20, decimal_places=2)

# Deterministic sampling without a window function: a Weyl sequence over the customer id
# (id x an odd constant, mod 2^32) spreads consecutive ids evenly over [0, 2^32), so
# "key < share x 2^32" keeps about that share of a segment, the same customers every time.
SAMPLE_MULTIPLIER = 2654435761
SAMPLE_MODULUS = 2**32


@dataclass(frozen=True)
class DashboardFilters:
    """Owner, region and industry: applied to every figure of the dashboard."""

    owner_id: int | None = None
    region: str = ""
    industry: str = ""

    def customer_q(self, prefix: str = "customer__") -> Q:
        q = Q()
        if self.owner_id is not None:
            q &= Q(**{f"{prefix}owner_id": self.owner_id})
        if self.region:
            q &= Q(**{f"{prefix}region": self.region})
        if self.industry:
            q &= Q(**{f"{prefix}industry": self.industry})
        return q

    @property
    def active(self) -> bool:
        return self.owner_id is not None or bool(self.region or self.industry)


@dataclass
class Dashboard:
    run: ValuationRun | None
    filters: DashboardFilters
    comparison_runs: list[ValuationRun] = field(default_factory=list)
    earlier: ValuationRun | None = None
    segments: list[dict] = field(default_factory=list)
    totals: dict = field(default_factory=dict)
    scatter: list[tuple] = field(default_factory=list)
    migration: dict = field(default_factory=dict)
    whale: list[tuple[int, Decimal]] = field(default_factory=list)
    service_cost: list[dict] = field(default_factory=list)
    service_months: list[dt.date] = field(default_factory=list)
    actions: dict[str, list[dict]] = field(default_factory=dict)
    classic_value: str = "clv"
    horizon_months: int = 36


# --- filters and runs ---------------------------------------------------------------------------


def filter_choices() -> dict[str, list]:
    """Owners, regions and industries that occur among the customers (cached, see there)."""
    return customer_filter_choices()


def completed_runs(*, limit: int = 60) -> list[ValuationRun]:
    """Completed runs, newest as-of date first (the first one is the latest); one query."""
    return list(
        ValuationRun.objects.filter(status=ValuationRun.Status.COMPLETED)
        .order_by("-as_of", "-finished_at", "-pk")
        .only("pk", "as_of", "finished_at", "settings", "thresholds", "backtest", "parameters", "company",
              "customer_count", "rows_written")[:limit]
    )


def default_comparison(runs: list[ValuationRun]) -> ValuationRun | None:
    """The newest run at least DEFAULT_COMPARISON_DAYS before the latest, else the oldest other run."""
    if len(runs) < 2:
        return None
    latest, earlier = runs[0], runs[1:]
    cutoff = latest.as_of - dt.timedelta(days=DEFAULT_COMPARISON_DAYS)
    return next((run for run in earlier if run.as_of <= cutoff), earlier[-1])


def cockpit_url(customer_id: int) -> str:
    return cockpit_url_template().replace("{id}", str(customer_id))


def cockpit_url_template() -> str:
    """The cockpit URL with an `{id}` placeholder (for the chart's click handler)."""
    for name in ("customers:cockpit", "customers:detail"):
        try:
            return reverse(name, args=[0]).replace("/0/", "/{id}/")
        except NoReverseMatch:
            continue
    return "/customers/{id}/"


def run_values(*, run: ValuationRun, filters: DashboardFilters) -> QuerySet[CustomerValue]:
    return CustomerValue.objects.filter(filters.customer_q(), run=run)


# --- figures ----------------------------------------------------------------------------------


def segment_summary(values: QuerySet[CustomerValue]) -> tuple[list[dict], dict]:
    """Per segment: customers, revenue, margin, service cost, CLV, profit after services.

    One grouped query; the totals row and the number of customers with a positive profit
    (the whale curve's peak) come from the same rows.
    """
    rows = {
        row["segment"]: row
        for row in values.order_by()
        .values("segment")
        .annotate(
            customers=Count("pk"),
            revenue=Sum("revenue_window"),
            margin=Sum("margin_window"),
            service_cost=Sum("value_to_customer"),
            clv=Sum("clv"),
            profit=Sum("profit_after_services"),
            profitable=Count("pk", filter=Q(profit_after_services__gt=0)),
            unprofitable=Count("pk", filter=Q(profit_after_services__lt=0)),
        )
    }
    return segment_table(rows)


CENT = Decimal("0.01")
SEGMENT_KEYS = ["customers", "revenue", "margin", "service_cost", "clv", "profit", "profitable", "unprofitable"]


def segment_table(rows: dict[str, dict]) -> tuple[list[dict], dict]:
    """The segment table and its totals row from {segment: sums}, in the segments' order."""
    keys = SEGMENT_KEYS
    zero = {"customers": 0, "profitable": 0, "unprofitable": 0}

    def cell(key: str, value):
        if value is None:
            return zero.get(key, Decimal("0.00"))
        # Sums of cents are cents; SQLite sums decimals as floats, which differ in the last
        # digits with the order of summation, so both ways to the table round the same way.
        return value if key in zero else Decimal(value).quantize(CENT)

    table = []
    for segment in SEGMENTS:
        row = rows.get(segment.value, {})
        table.append(
            {"segment": segment.value, "label": segment.label, "strategy": segment.strategy,
             **{k: cell(k, row.get(k)) for k in keys}}
        )
    totals = {k: sum((row[k] for row in table), zero.get(k, Decimal("0.00"))) for k in keys}
    return table, totals


def scatter_quotas(counts: dict[str, int], budget: int = SCATTER_BUDGET) -> dict[str, float]:
    """Share of each segment to draw: small segments whole, the rest share what is left evenly.

    Pure: {segment: customers} -> {segment: share in [0, 1]}.
    """
    shares: dict[str, float] = {}
    remaining = budget
    ordered = sorted((n, s) for s, n in counts.items() if n > 0)
    for position, (n, segment) in enumerate(ordered):
        quota = remaining / (len(ordered) - position)
        take = min(n, quota)
        shares[segment] = min(1.0, take / n)
        remaining -= take
    return shares


def scatter_sample(values: QuerySet[CustomerValue], *, classic_field: str, counts: dict[str, int],
                   budget: int = SCATTER_BUDGET) -> list[tuple]:
    """(customer id, name, number, segment, classic value, value to the customer), at most ~budget rows.

    Stratified by segment with a deterministic key, so the same customers are drawn each time
    and a small segment (the one a manager looks for) is never thinned away.
    """
    shares = scatter_quotas(counts, budget)
    sampled = values
    if any(share < 1 for share in shares.values()):
        key = ExpressionWrapper(
            (F("customer_id") * Value(SAMPLE_MULTIPLIER)) % Value(SAMPLE_MODULUS), output_field=IntegerField()
        )
        limit = Case(
            *[When(segment=s, then=Value(int(share * SAMPLE_MODULUS))) for s, share in shares.items()],
            default=Value(0),
            output_field=IntegerField(),
        )
        sampled = values.alias(sample_key=key).filter(sample_key__lt=limit)
    return list(
        sampled.order_by("customer_id").values_list(
            "customer_id", "customer__name", "customer__number", "segment", classic_field, "value_to_customer"
        )
    )


def segment_migration(*, run: ValuationRun, earlier: ValuationRun, filters: DashboardFilters) -> dict:
    """Customers per (segment in the earlier run, segment now): one join of the two runs' rows."""
    pairs = (
        CustomerValue.objects.filter(filters.customer_q(), run=run, customer__values__run=earlier)
        .order_by()
        .values("segment", before=F("customer__values__segment"))
        .annotate(customers=Count("pk"))
    )
    counts = {(row["before"], row["segment"]): row["customers"] for row in pairs}
    return {"counts": counts}


def migration_matrix(counts: dict[tuple[str, str], int], now_by_segment: dict[str, int]) -> dict:
    """Rows = segment before, columns = segment now; plus customers new since the earlier run."""
    rows = []
    for before in SEGMENTS:
        cells = [counts.get((before.value, now.value), 0) for now in SEGMENTS]
        rows.append({"segment": before.value, "label": before.label, "cells": cells,
                     "stayed": counts.get((before.value, before.value), 0), "total": sum(cells)})
    matched_now = [sum(counts.get((b.value, now.value), 0) for b in SEGMENTS) for now in SEGMENTS]
    new = [max(0, now_by_segment.get(now.value, 0) - matched) for now, matched in zip(SEGMENTS, matched_now, strict=False)]
    moved = sum(n for (b, a), n in counts.items() if a != b)
    return {"rows": rows, "columns": [s.label for s in SEGMENTS], "column_keys": [s.value for s in SEGMENTS],
            "new": new, "new_total": sum(new), "moved": moved, "compared": sum(counts.values())}


def whale_pick_ranks(n: int, n_positive: int, points: int = WHALE_POINTS) -> list[int]:
    """Ranks (1-based) to draw: evenly spaced, plus the peak and the ends. Pure."""
    if n <= 0:
        return []
    ranks = set(np.unique(np.linspace(1, n, num=min(n, points)).round().astype(int)).tolist())
    ranks |= {1, n}
    ranks |= {r for r in (n_positive, n_positive + 1) if 1 <= r <= n}
    return sorted(ranks)


def whale_curve(values: QuerySet[CustomerValue], *, ranks: list[int]) -> list[tuple[int, Decimal]]:
    """Cumulative profit after services, customers sorted by profit descending (SQL window).

    Only the picked ranks leave the database, so the curve costs one query of ~500 rows.
    """
    if not ranks:
        return []
    order = [F("profit_after_services").desc(), F("customer_id").asc()]
    ranked = values.order_by().annotate(
        rank=Window(RowNumber(), order_by=order),
        cumulative=Window(Sum("profit_after_services"), order_by=order, frame=RowRange(start=None, end=0)),
    )
    return [(rank, Decimal(cumulative)) for rank, cumulative in
            ranked.filter(rank__in=ranks).order_by("rank").values_list("rank", "cumulative")]


def month_starts(*, today: dt.date, months: int = SERVICE_COST_MONTHS) -> list[dt.date]:
    """First days of the last `months` months, the current month last. Pure."""
    year, month = today.year, today.month
    starts = []
    for _ in range(months):
        starts.append(dt.date(year, month, 1))
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return starts[::-1]


def service_cost_by_month(*, filters: DashboardFilters, months: list[dt.date]) -> list[dict]:
    """Standard cost of the free services per month and type, each event valued at the cost
    valid on its own day.

    The database sums the quantities per (type, day), a few thousand rows for two years
    whatever the number of events, and they are valued here against the cost history.
    Valuing every event in SQL with the correlated cost subquery took ~4.5 s at 1.3M events
    in the 24 months. Three queries: the sums, the cost history, the service types.
    """
    if not months:
        return []
    last = months[-1]
    end = last + relativedelta(months=1)
    days = (
        ServiceEvent.objects.filter(filters.customer_q(), date__gte=months[0], date__lt=end)
        .order_by()
        .values("service_type_id", "date")
        .annotate(quantity=Sum("quantity"), events=Count("pk"))
        .values_list("service_type_id", "date", "quantity", "events")
    )
    history = CostHistory.load()
    totals: dict[tuple[int, dt.date], list] = {}
    for type_id, day, quantity, events in days:
        total = totals.setdefault((type_id, day.replace(day=1)), [Decimal("0.0000"), 0])
        total[0] += quantity * history.unit_cost(type_id, day)
        total[1] += events
    types = {
        pk: (code, name, order, name_de)
        for pk, code, name, order, name_de in ServiceType.objects.filter(pk__in={type_id for type_id, _m in totals})
        .values_list("pk", "code", "name", "sort_order", "name_de")
    }
    # Both names: the figures are cached for every reader; the page picks the reader's language.
    result = [
        {"month": month, "code": types[type_id][0], "name": types[type_id][1], "name_de": types[type_id][3],
         "order": types[type_id][2],
         "cost": cost, "events": events}
        for (type_id, month), (cost, events) in totals.items()
    ]
    result.sort(key=lambda row: (row["order"], row["code"], row["month"]))
    return result


def action_lists(values: QuerySet[CustomerValue], *, horizon_months: int,
                 limit: int = ACTION_LIST_LENGTH) -> dict[str, list[dict]]:
    """The four work lists of the dashboard, top `limit` each: four queries."""
    columns = ["customer_id", "customer__name", "customer__number", "segment", "abc_class", "clv",
               "margin_window", "margin_lifetime", "profit_after_services", "value_to_customer", "p_alive"]
    horizon_factor = Decimal(horizon_months) / Decimal(12)
    expected = ExpressionWrapper(F("margin_window") * Value(horizon_factor), output_field=MONEY_SUM)
    lists = {
        "unprofitable": values.filter(profit_after_services__lt=0).order_by("profit_after_services", "customer_id"),
        # A lost customer is won back or let go, never renegotiated (it keeps its segment).
        "renegotiate": values.filter(segment=Segment.PROBLEM).exclude(basis=ValueBasis.LOST)
        .order_by("-value_to_customer", "customer_id"),
        "win_back": values.alias(at_stake=Greatest("clv", "margin_lifetime"))
        .filter(p_alive__lt=AT_RISK_P_ALIVE, at_stake__gt=0)
        .order_by("-at_stake", "customer_id"),
        "a_today_c_tomorrow": values.alias(expected=expected)
        .filter(abc_class="A", clv__lt=F("expected") * Value(A_TODAY_CLV_SHARE))
        .annotate(shortfall=ExpressionWrapper(F("expected") - F("clv"), output_field=MONEY_SUM))
        .order_by("-shortfall", "customer_id"),
    }
    template = cockpit_url_template()
    result = {}
    for name, queryset in lists.items():
        rows = []
        for record in queryset.values(*columns)[:limit]:
            record["name"] = record.pop("customer__name")
            record["number"] = record.pop("customer__number")
            record["url"] = template.replace("{id}", str(record["customer_id"]))
            record["expected_margin"] = record["margin_window"] * horizon_factor
            rows.append(record)
        result[name] = rows
    return result


def warm_dashboard() -> None:
    """Compute the unfiltered dashboard of the latest run into the shared cache, in every
    language, so the first manager of the morning does not wait for it."""
    from django.conf import settings

    for language, _ in settings.LANGUAGES:
        with translation.override(language):
            segment_dashboard(filters=DashboardFilters())


def segment_dashboard(*, filters: DashboardFilters, compare_run_id: int | None = None,
                      runs: list[ValuationRun] | None = None, today: dt.date | None = None) -> Dashboard:
    """Everything the dashboard shows, each figure one query. `runs`: completed_runs(), if at hand."""
    today = today or timezone.localdate()
    runs = completed_runs() if runs is None else runs
    # The panel ends with the month of the run's as-of date, like every other figure of the
    # page (services logged after it are not in the run); without a run, this month.
    months = month_starts(today=runs[0].as_of if runs else today)
    board = Dashboard(run=runs[0] if runs else None, filters=filters, service_months=months)
    # Services are logged all day: this figure is cached briefly, not per run.
    cost_key = f"dashboard:service-cost:{months[-1]}:{filters.owner_id}:{filters.region}:{filters.industry}"
    board.service_cost = cache.get(cost_key)
    if board.service_cost is None:
        board.service_cost = service_cost_by_month(filters=filters, months=months)
        cache.set(cost_key, board.service_cost, timeout=SERVICE_COST_TTL)
    if board.run is None:
        return board
    run = board.run
    board.classic_value = run.engine_settings.classic_value
    board.horizon_months = run.engine_settings.horizon_months
    board.comparison_runs = runs[1:]
    board.earlier = next((r for r in runs[1:] if r.pk == compare_run_id), None) or default_comparison(runs)

    # A completed run never changes: its figures are computed once per run, comparison and
    # filters, and served from the cache after that (at 1M customers they take seconds).
    key = f"dashboard:{run.pk}:{board.earlier.pk if board.earlier else 0}:{filters.owner_id}:{filters.region}:{filters.industry}:{translation.get_language()}"
    figures = cache.get(key)
    if figures is None:
        figures = run_figures(run=run, earlier=board.earlier, filters=filters, horizon_months=board.horizon_months,
                              classic_value=board.classic_value)
        cache.set(key, figures, timeout=RUN_FIGURES_TTL)
    for name, value in figures.items():
        setattr(board, name, value)
    return board


def run_figures(*, run: ValuationRun, earlier: ValuationRun | None, filters: DashboardFilters,
                horizon_months: int, classic_value: str) -> dict:
    """The figures of one run: from its summary when it has one (see write_run_summary), else
    from its value rows. Both give the same figures."""
    summary = RunSummary.objects.filter(run=run).first()
    if summary is None:
        return figures_from_values(run=run, earlier=earlier, filters=filters, horizon_months=horizon_months,
                                   classic_value=classic_value)
    segments, totals, pairs = summary_cells(run=run, filters=filters)
    counts = {row["segment"]: row["customers"] for row in segments}
    figures = {"segments": segments, "totals": totals, "migration": {}}
    if earlier is not None:
        if summary.earlier_id != earlier.pk:  # another comparison than the default: one join
            pairs = segment_migration(run=run, earlier=earlier, filters=filters)["counts"]
        figures["migration"] = migration_matrix(pairs, counts)
    book = summary.whole_book
    if not filters.active and (book.get("classic_value"), book.get("horizon_months")) == (classic_value, horizon_months):
        figures.update(unpack_whole_book(book))
        return figures
    # A filtered view reads only its own customers' value rows for these.
    values = run_values(run=run, filters=filters)
    figures["scatter"] = scatter_sample(values, classic_field=classic_value, counts=counts)
    figures["whale"] = whale_curve(values, ranks=whale_pick_ranks(totals["customers"], totals["profitable"]))
    figures["actions"] = action_lists(values, horizon_months=horizon_months)
    return figures


def figures_from_values(*, run: ValuationRun, earlier: ValuationRun | None, filters: DashboardFilters,
                        horizon_months: int, classic_value: str) -> dict:
    """The figures read from one run's value rows: segments, scatter, migration, whale, actions."""
    values = run_values(run=run, filters=filters)
    segments, totals = segment_summary(values)
    counts = {row["segment"]: row["customers"] for row in segments}
    figures = {
        "segments": segments,
        "totals": totals,
        "scatter": scatter_sample(values, classic_field=classic_value, counts=counts),
        "migration": {},
    }
    if earlier is not None:
        pairs = segment_migration(run=run, earlier=earlier, filters=filters)["counts"]
        figures["migration"] = migration_matrix(pairs, counts)
    ranks = whale_pick_ranks(totals["customers"], totals["profitable"])
    figures["whale"] = whale_curve(values, ranks=ranks)
    figures["actions"] = action_lists(values, horizon_months=horizon_months)
    return figures


# --- model health ---------------------------------------------------------------------------------

MODEL_LABELS = {"bgnbd": "BG/NBD", "mbgnbd": "MBG/NBD", "pareto_nbd": "Pareto/NBD", "gamma_gamma": "Gamma-Gamma"}
# The engine's problem codes (engine/fit_quality.py) in words; the engine's own sentence,
# with the counts, is kept next to it.
FIT_PROBLEMS = {
    "no_purchases": gettext_lazy("No customer has a purchase: there is nothing to fit."),
    "too_few_customers": gettext_lazy("Too few customers with purchases to fit the model."),
    "too_few_repeat_buyers": gettext_lazy("Too few customers bought more than once to tell buying rate from drop-out."),
    "too_few_spenders": gettext_lazy("Too few repeat buyers with a positive margin to fit the spend model."),
    "parameter_at_bound": gettext_lazy("Parameters ran to the edge of the search range."),
    "not_identified": gettext_lazy("The data do not determine the parameters."),
    "not_converged": gettext_lazy("The fit did not converge."),
    "not_fitted": gettext_lazy("The model could not be fitted."),
    "spend_q_at_most_1": gettext_lazy("The spend data imply an infinite mean margin per purchase (q ≤ 1)."),
}
BGNBD_ONE_PURCHASE = gettext_lazy(
    "BG/NBD lets customers drop out only after a repeat purchase, so every customer without one has "
    "P(alive) = 1 in this model.")
FALLBACKS = {
    "trailing_margin_rate": gettext_lazy(
        "The purchase model did not pass its checks: each customer's CLV is its trailing margin rate "
        "carried forward; no probability still active, no range and no value to infinity are claimed."),
    "own_margin_per_purchase": gettext_lazy(
        "The spend model did not pass its checks: the purchase model stands, each customer's own mean "
        "margin per purchase replaces the spend model."),
}


CHOICE_REASONS = (
    ("lowest RMSE", gettext_lazy("Chosen: the lowest error of holdout margin per customer (RMSE) among the "
                                 "models whose total is within 25 percent of the actual.")),
    ("RMSE of holdout margin within one standard error", gettext_lazy(
        "Chosen: the models marked ≈ forecast the holdout margin per customer (RMSE) within one standard "
        "error of the best, too close for the back-test to tell apart; of these, this one describes the "
        "whole history best (highest likelihood).")),
    ("no model within", gettext_lazy("Chosen: no model came within 25 percent of the actual total; this one came closest.")),
    ("no model passed", gettext_lazy("No model passed its checks.")),
)


def _choice_reason(reason: str) -> str:
    for start, text in CHOICE_REASONS:
        if reason.startswith(start):
            return str(text)
    return reason


def model_health(run: ValuationRun | None) -> dict | None:
    """The model-health panel's figures from the run's stored back-test (services.run_backtest)
    and fit: the chosen model and why, the fit-quality problems in words, every model's
    back-test errors, the chosen model's conditional expectations by calibration frequency,
    and the calibration of its 80 % range. None for runs stored before the model choice."""
    backtest = (run.backtest or {}) if run else {}
    if "models_compared" not in backtest:
        return None
    quality = backtest.get("fit_quality") or (run.parameters or {}).get("fit_quality") or {}
    chosen = backtest.get("model")
    rows = []
    for name, entry in backtest["models_compared"].items():
        margin, purchases = entry.get("margin") or {}, entry.get("purchases") or {}
        rows.append({
            "model": MODEL_LABELS.get(name, name),
            "chosen": name == chosen,
            "tied": name in (backtest.get("tied") or []) and len(backtest.get("tied") or []) > 1,
            "passed": bool((entry.get("fit_quality") or {}).get("ok")),
            "purchases_mae": purchases.get("mae"),
            "purchases_rmse": purchases.get("rmse"),
            "predicted_purchases": purchases.get("predicted_total"),
            "actual_purchases": purchases.get("actual_total"),
            "margin_mae": margin.get("mae"),
            "margin_rmse": margin.get("rmse"),
            "predicted_margin": margin.get("predicted_total"),
            "actual_margin": margin.get("actual_total"),
            "total_error": margin.get("total_error"),
        })
    problems = [
        {"model": MODEL_LABELS.get(p.get("model"), p.get("model")), "text": FIT_PROBLEMS.get(p.get("code"), p.get("code")),
         "detail": p.get("message", "")}
        for p in quality.get("problems", [])
    ]
    return {
        "model": MODEL_LABELS.get(chosen, chosen),
        "reason": _choice_reason(backtest.get("reason", "")),
        "ok": bool(quality.get("ok", True)),
        "problems": problems,
        "fallback": FALLBACKS.get(quality.get("fallback")) if quality.get("fallback") else None,
        "comparison": rows,
        "conditional": (backtest["models_compared"].get(chosen) or {}).get("conditional_expectations") or [],
        "range_calibration": backtest.get("range_calibration"),
        "holdout_weeks": backtest.get("holdout_weeks"),
        "notes": [BGNBD_ONE_PURCHASE] if chosen == "bgnbd" and not any(
            p.get("model") == "bgnbd" for p in quality.get("problems", [])) else [],
    }


# --- per-run summaries ------------------------------------------------------------------------------
# Written once when a run completes (valuation.services.finish_run_if_complete), so that the
# first view of any filter reads a few hundred summed rows instead of scanning the run's value
# rows several times (at 1M customers the segment-migration join alone took 1.3-1.5 s).

ACTION_MONEY = ["clv", "margin_window", "margin_lifetime", "profit_after_services", "value_to_customer",
                "expected_margin"]


def write_run_summary(*, run_id: int) -> None:
    """The run's summary cells and whole-book figures; replaces any earlier summary of the run."""
    run = ValuationRun.objects.get(pk=run_id)
    earlier = default_comparison([run, *(other for other in completed_runs() if other.pk != run.pk)])
    values, customers = CustomerValue._meta.db_table, Customer._meta.db_table
    cells = RunSummaryCell._meta.db_table
    before, join, group, params = "''", "", "", [run.pk]
    if earlier is not None:
        before = "COALESCE(e.segment, '')"
        join = f"LEFT JOIN {values} e ON e.run_id = %s AND e.customer_id = v.customer_id"
        group, params = f", {before}", [earlier.pk, run.pk]
    RunSummaryCell.objects.filter(run=run).delete()
    with connection.cursor() as cursor:
        cursor.execute(f"""
            INSERT INTO {cells} (run_id, segment, before_segment, owner_id, region, industry, customers, revenue,
                                 margin, service_cost, clv, profit, profitable, unprofitable)
            SELECT v.run_id, v.segment, {before}, c.owner_id, c.region, c.industry, COUNT(*), SUM(v.revenue_window),
                   SUM(v.margin_window), SUM(v.value_to_customer), SUM(v.clv), SUM(v.profit_after_services),
                   SUM(CASE WHEN v.profit_after_services > 0 THEN 1 ELSE 0 END),
                   SUM(CASE WHEN v.profit_after_services < 0 THEN 1 ELSE 0 END)
            FROM {values} v JOIN {customers} c ON c.id = v.customer_id {join}
            WHERE v.run_id = %s
            GROUP BY v.run_id, v.segment{group}, c.owner_id, c.region, c.industry
        """, params)
    everyone = DashboardFilters()
    segments, totals, _pairs = summary_cells(run=run, filters=everyone)
    counts = {row["segment"]: row["customers"] for row in segments}
    engine_settings = run.engine_settings
    classic_value, horizon_months = engine_settings.classic_value, engine_settings.horizon_months
    book = run_values(run=run, filters=everyone)
    whole_book = pack_whole_book(
        scatter=scatter_sample(book, classic_field=classic_value, counts=counts),
        whale=whale_curve(book, ranks=whale_pick_ranks(totals["customers"], totals["profitable"])),
        actions=action_lists(book, horizon_months=horizon_months),
    )
    RunSummary.objects.update_or_create(
        run=run, defaults={"earlier": earlier,
                           "whole_book": {**whole_book, "classic_value": classic_value, "horizon_months": horizon_months}},
    )


def summary_cells(*, run: ValuationRun, filters: DashboardFilters) -> tuple[list[dict], dict, dict]:
    """Segment table, totals and migration counts {(before, now): customers} of the filter's
    cells: one grouped query over the run's summary cells."""
    rows = (
        RunSummaryCell.objects.filter(filters.customer_q(prefix=""), run=run)
        .order_by()
        .values("segment", "before_segment")
        .annotate(**{key: Sum(key) for key in SEGMENT_KEYS})
    )
    by_segment: dict[str, dict] = {}
    pairs: dict[tuple[str, str], int] = {}
    for row in rows:
        sums = by_segment.setdefault(row["segment"], dict.fromkeys(SEGMENT_KEYS, 0))
        for key in SEGMENT_KEYS:
            sums[key] += row[key]
        if row["before_segment"]:
            pairs[(row["before_segment"], row["segment"])] = row["customers"]
    segments, totals = segment_table(by_segment)
    return segments, totals, pairs


def pack_whole_book(*, scatter: list[tuple], whale: list[tuple[int, Decimal]], actions: dict[str, list[dict]]) -> dict:
    """The figures as JSON: money as decimal strings, no translated text, no URLs."""
    return {
        "scatter": [[*point[:4], str(point[4]), str(point[5])] for point in scatter],
        "whale": [[rank, str(cumulative)] for rank, cumulative in whale],
        "actions": {
            name: [{key: (str(value) if key in ACTION_MONEY else value) for key, value in record.items() if key != "url"}
                   for record in records]
            for name, records in actions.items()
        },
    }


def unpack_whole_book(book: dict) -> dict:
    template = cockpit_url_template()
    return {
        "scatter": [(*point[:4], Decimal(point[4]), Decimal(point[5])) for point in book["scatter"]],
        "whale": [(rank, Decimal(cumulative)) for rank, cumulative in book["whale"]],
        "actions": {
            name: [{**{key: (Decimal(value) if key in ACTION_MONEY else value) for key, value in record.items()},
                    "url": template.replace("{id}", str(record["customer_id"]))}
                   for record in records]
            for name, records in book["actions"].items()
        },
    }


# --- settings page --------------------------------------------------------------------------------


def standard_cost_overview(*, today: dt.date | None = None) -> list[dict]:
    """Each service type with its current cost, any future cost, and the full history: two queries."""
    today = today or timezone.localdate()
    history = StandardCost.objects.select_related("created_by").order_by("-valid_from")
    types = ServiceType.objects.prefetch_related(Prefetch("standard_costs", queryset=history, to_attr="cost_history"))
    overview = []
    for service_type in types:
        costs = service_type.cost_history
        current = next((c for c in costs if c.valid_from <= today), None)
        upcoming = [c for c in costs if c.valid_from > today]
        overview.append({"type": service_type, "current": current, "upcoming": upcoming[::-1], "history": costs})
    return overview


RUN_STAGES = ["queued", "fitting", "back-testing", "scoring", "finishing", "done"]


def runs_with_progress() -> QuerySet[ValuationRun]:
    return ValuationRun.objects.annotate(
        chunks_total=Count("chunks"),
        chunks_done=Count("chunks", filter=Q(chunks__status="done")),
    ).defer("parameters", "thresholds", "backtest", "company", "settings")


def recent_runs(*, limit: int = 15) -> list[ValuationRun]:
    return list(runs_with_progress().order_by("-started_at", "-pk")[:limit])


def run_with_progress(*, run_id: int) -> ValuationRun | None:
    return runs_with_progress().filter(pk=run_id).first()


def run_to_watch(runs: list[ValuationRun], *, run_id: int | None = None) -> ValuationRun | None:
    """The run the status panel follows: the asked-for one, else a running one, else the newest."""
    if run_id is not None:
        chosen = next((run for run in runs if run.pk == run_id), None)
        if chosen is not None:
            return chosen
        return run_with_progress(run_id=run_id)
    return next((run for run in runs if run.status == ValuationRun.Status.RUNNING), runs[0] if runs else None)
