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
import pandas as pd
from dateutil.relativedelta import relativedelta
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db import connection
from django.db.models import (
    BooleanField,
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
from django.db.models.expressions import RawSQL, RowRange, Window
from django.db.models.functions import Greatest, RowNumber, TruncMonth
from django.urls import NoReverseMatch, reverse
from django.utils import timezone, translation
from django.utils.translation import gettext_lazy

from customers.models import Customer
from customers.selectors import filter_choices as customer_filter_choices
from services.models import ServiceEvent, ServiceType, StandardCost
from services.selectors import CostHistory

from .models import CustomerValue, RunSummary, RunSummaryCell, RunSummaryView, Segment, ValuationRun, ValueBasis

SEGMENTS = [Segment.UNCRITICAL, Segment.PROBLEM, Segment.POTENTIAL, Segment.INVESTMENT]
SCATTER_BUDGET = 5000
FILTER_CHOICES_LIMIT = 500  # as many regions or industries as the customer list offers
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


def filter_choices(*, run: ValuationRun | None = None) -> dict[str, list]:
    """Owners, regions and industries the dashboard offers: those of the run's summary (its
    customers' when it completed, the filters it holds figures for: two small queries), else
    those among the customers (cached, see there; each a scan of the customers)."""
    if run is not None:
        single = (Q(owner_id__isnull=False, region="", industry="") | Q(owner_id__isnull=True, region__gt="", industry="")
                  | Q(owner_id__isnull=True, region="", industry__gt="") | Q(owner_id__isnull=True, region="", industry=""))
        views = list(RunSummaryView.objects.filter(single, run=run).values_list("owner_id", "region", "industry"))
        if views:  # the run has a summary: at least its every-customer view
            owner_ids = {owner_id for owner_id, _region, _industry in views if owner_id is not None}
            owners = [
                (user.pk, user.get_full_name() or user.get_username())
                for user in get_user_model().objects.filter(pk__in=owner_ids)
                .order_by("last_name", "first_name", "username").only("pk", "first_name", "last_name", "username")
            ] if owner_ids else []
            return {"owners": owners,
                    "regions": sorted({region for _o, region, _i in views if region})[:FILTER_CHOICES_LIMIT],
                    "industries": sorted({industry for _o, _r, industry in views if industry})[:FILTER_CHOICES_LIMIT]}
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
    # Sums of cents are cents (SQLite sums decimals as floats).
    return [(rank, Decimal(cumulative).quantize(CENT)) for rank, cumulative in
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
    return service_cost_rows([(type_id, month, cost, events) for (type_id, month), (cost, events) in totals.items()])


def service_cost_rows(totals: list[tuple[int, dt.date, Decimal, int]]) -> list[dict]:
    """The panel's rows from (type id, month, cost, events), in the types' order: one query."""
    types = {
        pk: (code, name, order, name_de)
        for pk, code, name, order, name_de in ServiceType.objects.filter(pk__in={row[0] for row in totals})
        .values_list("pk", "code", "name", "sort_order", "name_de")
    } if totals else {}
    # Both names: the figures are cached for every reader; the page picks the reader's language.
    result = [
        {"month": month, "code": types[type_id][0], "name": types[type_id][1], "name_de": types[type_id][3],
         "order": types[type_id][2],
         "cost": cost, "events": events}
        for type_id, month, cost, events in totals
    ]
    result.sort(key=lambda row: (row["order"], row["code"], row["month"]))
    return result


ACTION_COLUMNS = ["customer_id", "customer__name", "customer__number", "segment", "abc_class", "clv",
                  "margin_window", "margin_lifetime", "profit_after_services", "value_to_customer", "p_alive"]


def action_lists(values: QuerySet[CustomerValue], *, horizon_months: int,
                 limit: int = ACTION_LIST_LENGTH) -> dict[str, list[dict]]:
    """The four work lists of the dashboard, top `limit` each: four queries."""
    columns = ACTION_COLUMNS
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
    if board.run is not None:
        run = board.run
        board.classic_value = run.engine_settings.classic_value
        board.horizon_months = run.engine_settings.horizon_months
        board.comparison_runs = runs[1:]
        board.earlier = next((r for r in runs[1:] if r.pk == compare_run_id), None) or default_comparison(runs)
        # A completed run never changes: its figures are computed once per run, comparison and
        # filters, and served from the cache after that.
        key = (f"dashboard:{run.pk}:{board.earlier.pk if board.earlier else 0}:{filters.owner_id}:{filters.region}:"
               f"{filters.industry}:{translation.get_language()}")
        figures = cache.get(key)
        if figures is None:
            figures = run_figures(run=run, earlier=board.earlier, filters=filters,
                                  horizon_months=board.horizon_months, classic_value=board.classic_value)
            cache.set(key, figures, timeout=RUN_FIGURES_TTL)
        for name, value in figures.items():
            setattr(board, name, value)
        if "service_cost" in figures:  # the run's summary holds its months of services
            return board
    # Without a summary services are read as logged: cached briefly, not per run.
    cost_key = f"dashboard:service-cost:{months[-1]}:{filters.owner_id}:{filters.region}:{filters.industry}"
    board.service_cost = cache.get(cost_key)
    if board.service_cost is None:
        board.service_cost = service_cost_by_month(filters=filters, months=months)
        cache.set(cost_key, board.service_cost, timeout=SERVICE_COST_TTL)
    return board


def run_figures(*, run: ValuationRun, earlier: ValuationRun | None, filters: DashboardFilters,
                horizon_months: int, classic_value: str) -> dict:
    """The figures of one run: from its summary when it has one (see write_run_summary), else
    from its value rows. Both give the same figures; the summary's also hold the service cost
    by month, the value rows' leave it to the page (service_cost_by_month)."""
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
    view = summary_view(run=run, filters=filters)
    figures.update(unpack_view(view, run=run, classic_value=classic_value, horizon_months=horizon_months))
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
        "range_calibration_model": MODEL_LABELS.get(measured_on, measured_on) if (
            measured_on := (backtest.get("range_calibration") or {}).get("model")) else None,
        "holdout_weeks": backtest.get("holdout_weeks"),
        "notes": [BGNBD_ONE_PURCHASE] if chosen == "bgnbd" and not any(
            p.get("model") == "bgnbd" for p in quality.get("problems", [])) else [],
    }


# --- per-run summaries ------------------------------------------------------------------------------
# Written once when a run completes (valuation.services.finish_run_if_complete), so that the
# first view of any filter reads a few hundred summed cells and one stored view instead of
# scanning the run's value rows several times (at 1M customers the segment-migration join
# alone took 1.3-1.5 s, the whale-curve window 1.0-1.3 s).
#
# Cells (segment x earlier segment x owner x region x industry) hold everything that sums:
# the segment table, its totals and the migration counts. What does not sum, the whale
# curve, the scatter sample and the work lists, is computed here for every filter the
# dashboard offers: owner, region and industry each fixed or "every", 8 patterns, each
# filter a group of the run's rows. The run's rows are read once (one query) and grouped in
# memory (numpy), with the same orderings, ties and picks as the value-row figures above.
# A view stores no translated text: the whale points, the scatter's points (id, name, number,
# segment, amounts in cents), the work lists' customer ids, service cost per type and month.

FILTER_DIMENSIONS = ("owner_id", "region", "industry")
EVERY = {"owner_id": None, "region": "", "industry": ""}
# Money as integer cents in memory: sums and comparisons are exact, like the database's.
SUMMARY_ROW_COLUMNS = ["customer_id", "owner_id", "region", "industry", "name", "number", "segment", "basis",
                       "abc_class", "p_alive", "profit", "clv", "margin_window", "margin_lifetime", "value_to_customer"]
CENTS_COLUMNS = ["profit", "clv", "margin_window", "margin_lifetime", "value_to_customer"]


def write_run_summary(*, run_id: int) -> None:
    """The run's summary cells and filter views; replaces any earlier summary of the run."""
    from django.db import transaction

    run = ValuationRun.objects.get(pk=run_id)
    earlier = default_comparison([run, *(other for other in completed_runs() if other.pk != run.pk)])
    with transaction.atomic():
        RunSummaryCell.objects.filter(run=run).delete()
        RunSummaryView.objects.filter(run=run).delete()
        _write_cells(run=run, earlier=earlier)
        views = filter_views(rows=_summary_rows(run=run), horizon_months=run.engine_settings.horizon_months,
                             classic_value=run.engine_settings.classic_value)
        for key, costs in _service_cost_views(months=month_starts(today=run.as_of)).items():
            views.setdefault(key, empty_view())["service_cost"] = costs
        RunSummaryView.objects.bulk_create(
            (RunSummaryView(run=run, owner_id=owner_id, region=region, industry=industry, figures=figures)
             for (owner_id, region, industry), figures in views.items()),
            batch_size=500,
        )
        RunSummary.objects.update_or_create(run=run, defaults={"earlier": earlier})
        # The dashboard shows the latest run only: older runs' summaries (their views hold the
        # scatter points, up to ~100 MB at a million customers) go; such a run's figures, if it
        # were ever shown again, come from its value rows.
        latest = completed_runs(limit=1)
        if latest and latest[0].pk == run.pk:
            for model in (RunSummaryView, RunSummaryCell, RunSummary):
                model.objects.exclude(run=run).delete()


def _write_cells(*, run: ValuationRun, earlier: ValuationRun | None) -> None:
    values, customers = CustomerValue._meta.db_table, Customer._meta.db_table
    cells = RunSummaryCell._meta.db_table
    before, join, group, params = "''", "", "", [run.pk]
    if earlier is not None:
        before = "COALESCE(e.segment, '')"
        join = f"LEFT JOIN {values} e ON e.run_id = %s AND e.customer_id = v.customer_id"
        group, params = f", {before}", [earlier.pk, run.pk]
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


def _summary_rows(*, run: ValuationRun) -> dict[str, np.ndarray]:
    """The run's value rows with their customer's owner, region, industry, name and number: one
    query, money as integer cents. PostgreSQL sends them as CSV through COPY (a million rows in
    seconds; row by row through the driver took ~6 times longer)."""
    values, customers = CustomerValue._meta.db_table, Customer._meta.db_table
    cents = ", ".join(f"CAST(ROUND(v.{column} * 100) AS BIGINT)" for column in
                      ("profit_after_services", "clv", "margin_window", "margin_lifetime", "value_to_customer"))
    sql = f"""
        SELECT v.customer_id, COALESCE(c.owner_id, 0), c.region, c.industry, c.name, c.number, v.segment, v.basis,
               v.abc_class, v.p_alive, {cents}
        FROM {values} v JOIN {customers} c ON c.id = v.customer_id
        WHERE v.run_id = %s
    """
    if connection.vendor == "postgresql":
        import io

        buffer = io.BytesIO()
        with connection.cursor() as cursor, cursor.cursor.copy(
                f"COPY ({sql.replace('%s', str(int(run.pk)))}) TO STDOUT WITH (FORMAT csv)") as copy:
            for block in copy:
                buffer.write(block)
        buffer.seek(0)
        # Empty strings stay strings (a region may be ""); only P(alive) may be NULL.
        frame = pd.read_csv(buffer, names=SUMMARY_ROW_COLUMNS, keep_default_na=False, na_values={"p_alive": [""]},
                            dtype=dict.fromkeys(("region", "industry", "name", "number", "segment", "basis", "abc_class"), str))
        columns = [frame[name].to_numpy() for name in SUMMARY_ROW_COLUMNS]
    else:
        with connection.cursor() as cursor:
            cursor.execute(sql, [run.pk])
            records = cursor.fetchall()
        columns = list(zip(*records, strict=True)) if records else [()] * len(SUMMARY_ROW_COLUMNS)
    rows: dict[str, np.ndarray] = {}
    for name, column in zip(SUMMARY_ROW_COLUMNS, columns, strict=True):
        if name in CENTS_COLUMNS or name in ("customer_id", "owner_id"):
            rows[name] = np.asarray(column, dtype=np.int64)
        elif name == "p_alive":
            rows[name] = pd.to_numeric(pd.Series(column, dtype=object), errors="coerce").to_numpy(dtype=np.float64)
        else:
            rows[name] = np.asarray(column, dtype=object)
    return rows


def empty_view() -> dict:
    return {"whale": [], "scatter": [], "actions": {name: [] for name in ACTION_LISTS}, "service_cost": []}


ACTION_LISTS = ("unprofitable", "renegotiate", "win_back", "a_today_c_tomorrow")


def filter_patterns() -> list[tuple[str, ...]]:
    """Which dimensions a filter fixes: none, each one, each pair, all three."""
    return [tuple(d for k, d in enumerate(FILTER_DIMENSIONS) if mask >> k & 1) for mask in range(8)]


def _group(codes: dict[str, np.ndarray], rows: dict[str, np.ndarray],
           pattern: tuple[str, ...]) -> tuple[np.ndarray, list[tuple]]:
    """Each row's filter group under the pattern (-1: no filter reaches it, as a fixed dimension
    is empty: no owner, no region) and the groups' (owner_id, region, industry) keys."""
    n = len(rows["customer_id"])
    reachable = np.ones(n, dtype=bool)
    combined = np.zeros(n, dtype=np.int64)
    for dimension in pattern:
        code, distinct = codes[dimension]
        reachable &= code >= 0
        combined = combined * (distinct + 1) + code
    _codes, first, inverse = np.unique(combined[reachable], return_index=True, return_inverse=True)
    group = np.full(n, -1, dtype=np.int64)
    group[reachable] = inverse
    rows_of_first = np.flatnonzero(reachable)[first]
    keys = [tuple(_plain(rows[d][row]) if d in pattern else EVERY[d] for d in FILTER_DIMENSIONS)
            for row in rows_of_first]
    return group, keys


def _plain(value):
    return int(value) if isinstance(value, np.integer) else value


def _dimension_codes(rows: dict[str, np.ndarray]) -> dict[str, tuple[np.ndarray, int]]:
    """Per filter dimension: each row's value as a code (-1 for none or empty) and how many."""
    codes = {}
    for dimension in FILTER_DIMENSIONS:
        values = rows[dimension]
        code, distinct = pd.factorize(values)
        empty = [k for k, value in enumerate(distinct) if value is None or value == "" or value == 0]
        code = code.astype(np.int64)
        code[np.isin(code, empty)] = -1
        codes[dimension] = (code, len(distinct))
    return codes


def _top_per_group(order: np.ndarray, group_of_row: np.ndarray, groups: int, limit: int | None) -> list[np.ndarray]:
    """Rows (indices, in `order`'s order) per group, the first `limit` of each (all if None)."""
    by_group = order[np.argsort(group_of_row[order], kind="stable")]
    bounds = np.searchsorted(group_of_row[by_group], np.arange(groups + 1))
    return [by_group[bounds[g]:bounds[g + 1] if limit is None else min(bounds[g + 1], bounds[g] + limit)]
            for g in range(groups)]


def filter_views(*, rows: dict[str, np.ndarray], horizon_months: int, classic_value: str = "clv") -> dict[tuple, dict]:
    """{(owner_id, region, industry): figures} for every reachable filter of the run's rows.

    The same figures as whale_curve, scatter_sample and action_lists on the filter's value rows.
    """
    ids, profit = rows["customer_id"], rows["profit"]
    segment_codes = {s.value: k for k, s in enumerate(SEGMENTS)}
    segment = np.asarray([segment_codes.get(s, len(SEGMENTS)) for s in rows["segment"]], dtype=np.int64)
    sample_key = (ids.astype(np.uint64) * np.uint64(SAMPLE_MULTIPLIER)) % np.uint64(SAMPLE_MODULUS)
    at_stake = np.maximum(rows["clv"], rows["margin_lifetime"])
    share_above, share_below = A_TODAY_CLV_SHARE.as_integer_ratio()
    shortfall_twelfths = rows["margin_window"] * horizon_months - 12 * rows["clv"]  # (expected - clv) x 12
    orders = {
        "whale": np.lexsort((ids, -profit)),
        "unprofitable": _ordered(profit < 0, (ids, profit)),
        "renegotiate": _ordered((rows["segment"] == Segment.PROBLEM.value) & (rows["basis"] != ValueBasis.LOST.value),
                                (ids, -rows["value_to_customer"])),
        "win_back": _ordered((rows["p_alive"] < AT_RISK_P_ALIVE) & (at_stake > 0), (ids, -at_stake)),
        # clv < expected x share with expected = margin_window x horizon / 12, in whole cents.
        "a_today_c_tomorrow": _ordered(
            (rows["abc_class"] == "A") & (rows["clv"] * 12 * share_below < rows["margin_window"] * horizon_months * share_above),
            (ids, -shortfall_twelfths)),
    }
    by_id = np.argsort(ids, kind="stable")
    # A scatter point as the page draws it: id, name, number, segment, amounts in cents.
    point_columns = [ids.tolist(), rows["name"].tolist(), rows["number"].tolist(), rows["segment"].tolist(),
                     rows[classic_value if classic_value in CENTS_COLUMNS else "clv"].tolist(),
                     rows["value_to_customer"].tolist()]

    codes = _dimension_codes(rows)
    views: dict[tuple, dict] = {}
    for pattern in filter_patterns():
        group, keys = _group(codes, rows, pattern)
        n_groups = len(keys)
        if not n_groups:
            continue
        in_group = group >= 0
        sizes = np.bincount(group[in_group], minlength=n_groups)
        positive = np.bincount(group[in_group & (profit > 0)], minlength=n_groups)
        per_segment = np.bincount(group[in_group] * (len(SEGMENTS) + 1) + segment[in_group],
                                  minlength=n_groups * (len(SEGMENTS) + 1)).reshape(n_groups, -1)
        limits = np.zeros((n_groups, len(SEGMENTS) + 1), dtype=np.uint64)
        for g in range(n_groups):
            shares = scatter_quotas({s.value: int(per_segment[g, k]) for k, s in enumerate(SEGMENTS)})
            for s, share in shares.items():
                limits[g, segment_codes[s]] = SAMPLE_MODULUS if share >= 1 else int(share * SAMPLE_MODULUS)
        sampled = in_group.copy()
        sampled[in_group] = sample_key[in_group] < limits[group[in_group], segment[in_group]]
        scatter = _top_per_group(by_id[sampled[by_id]], group, n_groups, None)  # ids ascending
        whale = _top_per_group(orders["whale"][in_group[orders["whale"]]], group, n_groups, None)
        actions = {name: _top_per_group(orders[name][in_group[orders[name]]], group, n_groups, ACTION_LIST_LENGTH)
                   for name in ACTION_LISTS}
        for g, key in enumerate(keys):
            cumulative = np.cumsum(profit[whale[g]])
            ranks = whale_pick_ranks(int(sizes[g]), int(positive[g]))
            views[key] = {
                "whale": [[rank, str(Decimal(int(cumulative[rank - 1])).scaleb(-2))] for rank in ranks],
                "scatter": [[column[row] for column in point_columns] for row in scatter[g].tolist()],
                "actions": {name: ids[actions[name][g]].tolist() for name in ACTION_LISTS},
                "service_cost": [],
            }
    return views


def _ordered(mask: np.ndarray, keys: tuple[np.ndarray, ...]) -> np.ndarray:
    """Indices of the rows in `mask`, sorted by the last key, then the ones before (lexsort)."""
    chosen = np.flatnonzero(mask)
    return chosen[np.lexsort(tuple(key[chosen] for key in keys))]


def _service_cost_views(*, months: list[dt.date]) -> dict[tuple, list]:
    """Service cost per type and month for every reachable filter: {(owner, region, industry):
    [[type id, month, cost, events], ...]}, each event valued at the cost valid on its day.

    One grouped query: the cost history (a handful of rows) becomes a CASE on type and day, so
    the database sums quantity x cost per customer group, type and month.
    """
    history = CostHistory.load()
    unit_cost = Case(
        *[When(service_type_id=type_id, date__gte=start, then=Value(cost))
          for type_id, starts in history.starts.items()
          for start, cost in sorted(zip(starts, history.costs[type_id], strict=True), reverse=True)],
        default=Value(Decimal("0")),
        output_field=DecimalField(max_digits=12, decimal_places=2),
    )
    end = months[-1] + relativedelta(months=1)
    rows = (
        ServiceEvent.objects.filter(date__gte=months[0], date__lt=end)
        .order_by()
        .values(owner=F("customer__owner_id"), region=F("customer__region"), industry=F("customer__industry"),
                type_id=F("service_type_id"), month=TruncMonth("date"))
        .annotate(cost=Sum(ExpressionWrapper(F("quantity") * unit_cost, output_field=DecimalField(max_digits=20, decimal_places=4))),
                  events=Count("pk"))
        .values_list("owner", "region", "industry", "type_id", "month", "cost", "events")
    )
    sums: dict[tuple, dict[tuple, list]] = {}
    for owner, region, industry, type_id, month, cost, events in rows:
        month = month.date() if isinstance(month, dt.datetime) else month
        cost = Decimal(cost).quantize(Decimal("0.0001"))
        fields = {"owner_id": owner, "region": region, "industry": industry}
        for pattern in filter_patterns():
            if any(fields[d] in (None, "") for d in pattern):
                continue
            key = tuple(fields[d] if d in pattern else EVERY[d] for d in FILTER_DIMENSIONS)
            total = sums.setdefault(key, {}).setdefault((type_id, month), [Decimal("0.0000"), 0])
            total[0] += cost
            total[1] += events
    return {key: [[type_id, month.isoformat(), str(cost), events] for (type_id, month), (cost, events) in totals.items()]
            for key, totals in sums.items()}


def summary_view(*, run: ValuationRun, filters: DashboardFilters) -> dict:
    """The stored figures of the filter (empty for a filter without customers): one query."""
    owner = Q(owner_id__isnull=True) if filters.owner_id is None else Q(owner_id=filters.owner_id)
    view = (RunSummaryView.objects.filter(owner, run=run, region=filters.region, industry=filters.industry)
            .values_list("figures", flat=True).first())
    return view or empty_view()


def unpack_view(view: dict, *, run: ValuationRun, classic_value: str, horizon_months: int) -> dict:
    """Scatter, whale, work lists and service cost of a view: one query for the work lists'
    at most 4 x ACTION_LIST_LENGTH value rows (by id), one for the service types."""
    listed = sorted(set().union(*view["actions"].values()))
    records = {record["customer_id"]: record
               for record in shown_values(run=run, customer_ids=listed).values(*ACTION_COLUMNS)} if listed else {}
    horizon_factor = Decimal(horizon_months) / Decimal(12)
    template = cockpit_url_template()
    actions = {}
    for name, ids in view["actions"].items():
        rows = []
        for customer_id in ids:
            if customer_id not in records:  # deleted since the run: listed until the next run
                continue
            record = dict(records[customer_id])
            record["name"] = record.pop("customer__name")
            record["number"] = record.pop("customer__number")
            record["url"] = template.replace("{id}", str(customer_id))
            record["expected_margin"] = record["margin_window"] * horizon_factor
            rows.append(record)
        actions[name] = rows
    # The scatter's points are stored whole: reading 5,000 sampled rows by id from a million
    # took ~0.8 s of random reads at a million customers.
    scatter = [(*stored[:4], Decimal(stored[4]).scaleb(-2), Decimal(stored[5]).scaleb(-2)) for stored in view["scatter"]]
    return {
        "scatter": scatter,
        "whale": [(rank, Decimal(cumulative)) for rank, cumulative in view["whale"]],
        "actions": actions,
        "service_cost": service_cost_rows(
            [(type_id, dt.date.fromisoformat(month), Decimal(cost), events)
             for type_id, month, cost, events in view["service_cost"]]),
    }


def shown_values(*, run: ValuationRun, customer_ids: list[int]) -> QuerySet[CustomerValue]:
    """The run's value rows of these customers, through the (run, customer) index.

    PostgreSQL gets the ids as one array parameter: 5,000 ids as an IN list of parameters took
    3-5 times longer to send and plan than the index probes themselves.
    """
    values = CustomerValue.objects.filter(run=run).order_by()
    if connection.vendor == "postgresql":
        table = CustomerValue._meta.db_table
        return values.filter(RawSQL(f'"{table}"."customer_id" = ANY(%s)', [customer_ids], output_field=BooleanField()))
    return values.filter(customer_id__in=customer_ids)


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
