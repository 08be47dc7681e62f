"""Reads for the manager pages: the segment dashboard and the settings page.

Every figure is aggregated in the database: one grouped query per figure, never one query
per customer, so a page costs the same number of queries for 100 or 100,000 customers.
The scatter plot gets a deterministic stratified sample of at most SCATTER_BUDGET points.
A run with a summary (run_summary.py, written when the run completes) is shown from it; the
figures' definitions both ways share are in figure_rules.py.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

from dateutil.relativedelta import relativedelta
from django.contrib.auth import get_user_model
from django.core.cache import cache
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
from django.utils import timezone, translation
from django.utils.translation import gettext_lazy

from customers.selectors import filter_choices as customer_filter_choices
from services.models import ServiceEvent, ServiceType, StandardCost
from services.selectors import CostHistory

from .figure_rules import (
    A_TODAY_CLV_SHARE,
    ACTION_COLUMNS,
    ACTION_LIST_LENGTH,
    AT_RISK_P_ALIVE,
    CENT,
    SAMPLE_MODULUS,
    SAMPLE_MULTIPLIER,
    SCATTER_BUDGET,
    SEGMENTS,
    DashboardFilters,
    cockpit_url_template,
    completed_runs,
    default_comparison,
    month_starts,
    scatter_quotas,
    segment_table,
    service_cost_rows,
    whale_pick_ranks,
)
from .models import CustomerValue, RunSummary, RunSummaryView, Segment, ValuationRun, ValueBasis
from .run_summary import summary_cells, summary_view, unpack_view

FILTER_CHOICES_LIMIT = 500  # as many regions or industries as the customer list offers
RUN_FIGURES_TTL = 7 * 24 * 3600  # a completed run's figures never change
SERVICE_COST_TTL = 5 * 60  # new services show on the dashboard within five minutes
MONEY_SUM = DecimalField(max_digits=20, decimal_places=2)





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




def cockpit_url(customer_id: int) -> str:
    return cockpit_url_template().replace("{id}", str(customer_id))




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
        key = figures_cache_key(run_id=run.pk, earlier=board.earlier, filters=filters, language=translation.get_language())
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
    cost_key = f"dashboard:service-cost:{months[-1]}:{filters.cache_part}"
    board.service_cost = cache.get(cost_key)
    if board.service_cost is None:
        board.service_cost = service_cost_by_month(filters=filters, months=months)
        cache.set(cost_key, board.service_cost, timeout=SERVICE_COST_TTL)
    return board


def figures_cache_key(*, run_id: int, earlier: ValuationRun | None, filters: DashboardFilters, language: str) -> str:
    return f"dashboard:{run_id}:{earlier.pk if earlier else 0}:{filters.cache_part}:{language}"


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
