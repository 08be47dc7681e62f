"""Manager pages: the segment dashboard and the settings (standard costs, policy, recompute)."""

from __future__ import annotations

import datetime as dt

from django.conf import settings as django_settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import Http404, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import formats, timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, gettext_noop
from django.views.decorators.http import require_GET, require_POST

from customers.access import manager_only
from services import services as service_writes
from services.models import ServiceType
from valuation import dashboard, policy
from valuation.models import ValuationPolicy, ValuationRun
from valuation.selectors import valuation_policy

from . import dashboard_charts, nps
from .dashboard_forms import (
    DashboardFilterForm,
    NewServiceTypeForm,
    SegmentPolicyForm,
    ServiceTypeForm,
    StandardCostForm,
    ValuationSettingsForm,
)

STAGE_LABELS = {
    "queued": gettext_lazy("queued, waiting for a worker"),
    "fitting": gettext_lazy("fitting the models on all customers"),
    "back-testing": gettext_lazy("back-testing the forecasts"),
    "scoring": gettext_lazy("scoring the customers"),
    "finishing": gettext_lazy("finishing"),
    "done": gettext_lazy("done"),
}
# Where the progress bar stands when a stage begins, and the share the stage spans.
STAGE_PROGRESS = {"queued": (0.02, 0.0), "fitting": (0.08, 0.0), "back-testing": (0.3, 0.0),
                  "scoring": (0.45, 0.5), "finishing": (0.96, 0.0), "done": (1.0, 0.0)}
QUEUE_UNAVAILABLE = gettext_lazy(
    "The task queue is not reachable, so the valuation could not be started. "
    "The nightly run will catch up; try again later."
)
# Notes a run stores in English (its JSON outlives any language); the pages translate them
# when shown, so they are listed here for the message catalogue.
STORED_RUN_NOTES = (gettext_noop("Too little history before the holdout period for a back-test."),)
ALREADY_RUNNING = gettext_lazy(
    "A valuation is already running. Its progress is shown below; start a new one when it has finished."
)


def _separators() -> str:
    """Decimal and thousands separators of the active language, for plotly's number format."""
    return f"{formats.get_format('DECIMAL_SEPARATOR')}{formats.get_format('THOUSAND_SEPARATOR')}"


# --- dashboard ----------------------------------------------------------------------------------


@manager_only
@require_GET
def segment_dashboard(request):
    runs = dashboard.completed_runs()
    form = DashboardFilterForm(request.GET, choices=dashboard.filter_choices(run=runs[0] if runs else None),
                               runs=runs[1:])
    form.is_valid()  # invalid filters are shown with their error and otherwise ignored
    data = form.cleaned_data
    filters = dashboard.DashboardFilters(
        owner_id=data.get("owner"), region=data.get("region") or "", industry=data.get("industry") or ""
    )
    board = dashboard.segment_dashboard(filters=filters, compare_run_id=data.get("compare"), runs=runs)
    context = {
        "board": board,
        "form": form,
        "figures": _dashboard_figures(board),
        "cockpit_url_template": dashboard.cockpit_url_template(),
        "classic_label": ValuationPolicy.ClassicValue(board.classic_value).label
        if board.classic_value in ValuationPolicy.ClassicValue.values else board.classic_value,
        "at_risk_p_alive": dashboard.AT_RISK_P_ALIVE,
        "a_today_share": dashboard.A_TODAY_CLV_SHARE,
        "scatter_budget": dashboard.SCATTER_BUDGET,
        "earned_growth": _periods(board.run),
        "nps": nps.dashboard_nps(run=board.run),
        "health": dashboard.model_health(board.run),
    }
    return render(request, "cockpit/dashboard.html", context)


def _periods(run: ValuationRun | None) -> list[dict]:
    """Earned-growth periods of the run with their ISO dates read back as dates."""
    periods = (run.company or {}).get("earned_growth") or [] if run else []
    result = []
    for period in periods:
        row = dict(period)
        for key in ("period_start", "period_end"):
            try:
                row[key] = dt.date.fromisoformat(str(row.get(key))[:10])
            except ValueError:
                row[key] = None
        result.append(row)
    return result


def _dashboard_figures(board: dashboard.Dashboard) -> dict[str, dict]:
    currency = django_settings.CVM_CURRENCY
    separators = _separators()
    figures = {
        "service_cost": dashboard_charts.service_cost_by_month(
            board.service_cost, months=board.service_months, currency=currency, separators=separators
        )
    }
    run = board.run
    if run is None:
        return figures
    classic_label = str(ValuationPolicy.ClassicValue(board.classic_value).label) \
        if board.classic_value in ValuationPolicy.ClassicValue.values else board.classic_value
    figures["scatter"] = dashboard_charts.segment_scatter(
        board.scatter,
        segment_labels={s.value: str(s.label) for s in dashboard.SEGMENTS},
        thresholds=run.thresholds or {},
        classic_label=classic_label,
        currency=currency,
        separators=separators,
    )
    figures["whale"] = dashboard_charts.whale_curve(
        board.whale, customers=board.totals["customers"], currency=currency, separators=separators
    )
    periods = _periods(run)
    if periods:
        labels = [formats.date_format(p["period_end"], "SHORT_DATE_FORMAT") if p["period_end"] else "" for p in periods]
        figures["earned_growth"] = dashboard_charts.earned_growth(
            periods, currency=currency, separators=separators, labels=labels
        )
    backtest = run.backtest or {}
    if backtest.get("expected_repeat_purchases") is not None:
        figures["model_health"] = dashboard_charts.model_health(backtest, separators=separators)
    return figures


# --- settings -----------------------------------------------------------------------------------


def _render_settings(request, *, cost_form=None, segment_form=None, settings_form=None,
                     recompute_problem: str = "", watch_run_id: int | None = None, status: int = 200):
    current = valuation_policy()
    runs = dashboard.recent_runs()
    for run in runs:
        run.duration_display = format_duration(_duration(run))
        run.stage_display = STAGE_LABELS.get(run.stage, run.stage)
    watched = dashboard.run_to_watch(runs, run_id=watch_run_id)
    context = {
        "cost_form": cost_form or StandardCostForm(initial={"valid_from": timezone.localdate()}),
        "segment_form": segment_form or SegmentPolicyForm(instance=current, prefix="segment"),
        "settings_form": settings_form or ValuationSettingsForm(instance=current, prefix="valuation"),
        "standard_costs": dashboard.standard_cost_overview(),
        "runs": runs,
        "watched": watched,
        "watched_status": run_status_payload(watched) if watched else None,
        "recompute_problem": recompute_problem,
        "policy": current,
    }
    return render(request, "cockpit/settings.html", context, status=status)


@manager_only
@require_GET
def settings_page(request):
    run_id = request.GET.get("run")
    return _render_settings(request, watch_run_id=int(run_id) if run_id and run_id.isdigit() else None)


@manager_only
@require_POST
def add_standard_cost(request):
    form = StandardCostForm(request.POST)
    if form.is_valid():
        try:
            cost = service_writes.add_standard_cost(**form.cleaned_data, user=request.user)
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            messages.success(request, _("New standard cost for %(type)s saved: valid from %(date)s.") % {
                "type": cost.service_type.display_name, "date": formats.date_format(cost.valid_from, "SHORT_DATE_FORMAT")})
            return redirect(reverse("valuation:settings") + "#standard-costs")
    return _render_settings(request, cost_form=form)


TYPE_FIELDS = ("name", "name_de", "unit", "description", "active", "sort_order")


@manager_only
def service_type_edit(request, pk: int):
    """Names in both languages, unit, description, order and whether the type is offered."""
    service_type = get_object_or_404(ServiceType, pk=pk)
    form = ServiceTypeForm(request.POST or None, instance=ServiceType.objects.get(pk=pk))
    if request.method == "POST" and form.is_valid():
        try:
            saved = service_writes.save_service_type(
                service_type=service_type, **{name: form.cleaned_data[name] for name in TYPE_FIELDS}
            )
        except ValidationError as exc:
            _add_errors(form, exc)
        else:
            messages.success(request, _("Service type “%(type)s” saved.") % {"type": saved.display_name})
            return redirect(reverse("valuation:settings") + "#standard-costs")
    return render(request, "cockpit/service_type_form.html", {"form": form, "service_type": service_type},
                  status=400 if form.errors else 200)


@manager_only
def service_type_new(request):
    """A new service type with its first standard cost."""
    form = NewServiceTypeForm(request.POST or None, initial={"valid_from": timezone.localdate(), "active": True})
    if request.method == "POST" and form.is_valid():
        try:
            with transaction.atomic():
                created = service_writes.save_service_type(**{name: form.cleaned_data[name] for name in TYPE_FIELDS})
                service_writes.add_standard_cost(service_type=created, valid_from=form.cleaned_data["valid_from"],
                                         cost_per_unit=form.cleaned_data["cost_per_unit"], user=request.user)
        except ValidationError as exc:
            _add_errors(form, exc)
        else:
            messages.success(request, _("Service type “%(type)s” added.") % {"type": created.display_name})
            return redirect(reverse("valuation:settings") + "#standard-costs")
    return render(request, "cockpit/service_type_form.html", {"form": form, "service_type": None},
                  status=400 if form.errors else 200)


def _add_errors(form, exc: ValidationError) -> None:
    if not hasattr(exc, "error_dict"):
        form.add_error(None, exc)
        return
    for field, errors in exc.error_dict.items():
        form.add_error(field if field in form.fields else None, errors)


@manager_only
@require_POST
def update_segment_policy(request):
    form = SegmentPolicyForm(request.POST, instance=valuation_policy(), prefix="segment")
    return _save_policy_form(
        request, form, policy.update_segment_policy, "segment_form", "#segment-policy",
        _("Segment policy saved. It applies from the next valuation run."),
    )


@manager_only
@require_POST
def update_valuation_settings(request):
    form = ValuationSettingsForm(request.POST, instance=valuation_policy(), prefix="valuation")
    return _save_policy_form(
        request, form, policy.update_valuation_settings, "settings_form", "#valuation-settings",
        _("Valuation settings saved. They apply from the next valuation run."),
    )


def _save_policy_form(request, form, update, context_name: str, anchor: str, success: str):
    """Validate a policy form, hand its fields to the service, and come back to its section."""
    if form.is_valid():
        try:
            update(**{name: form.cleaned_data[name] for name in form.Meta.fields})
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            messages.success(request, success)
            return redirect(reverse("valuation:settings") + anchor)
    return _render_settings(request, **{context_name: form})


@manager_only
@require_POST
def recompute_now(request):
    from valuation import services, tasks  # the run's entry point (imports the engine)

    try:
        run = tasks.request_recompute(user=request.user, in_background=True)
    except services.RunAlreadyRunning:
        return _render_settings(request, recompute_problem=str(ALREADY_RUNNING))
    except services.QueueUnavailable:
        return _render_settings(request, recompute_problem=str(QUEUE_UNAVAILABLE))
    messages.success(request, _("Valuation as of %(date)s started.") % {
        "date": formats.date_format(run.as_of, "SHORT_DATE_FORMAT")})
    return redirect(f"{reverse('valuation:settings')}?run={run.pk}#recompute")


@manager_only
@require_GET
def run_status(request, pk: int):
    run = dashboard.run_with_progress(run_id=pk)
    if run is None:
        raise Http404
    return JsonResponse(run_status_payload(run))


def _duration(run: ValuationRun) -> dt.timedelta | None:
    if run.started_at is None:
        return None
    return (run.finished_at or timezone.now()) - run.started_at


def format_duration(delta: dt.timedelta | None) -> str:
    if delta is None:
        return "–"
    seconds = max(0, int(delta.total_seconds()))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return _("%(h)d h %(m)d min") % {"h": hours, "m": minutes}
    if minutes:
        return _("%(m)d min %(s)d s") % {"m": minutes, "s": seconds}
    return _("%(s)d s") % {"s": seconds}


def run_status_payload(run: ValuationRun) -> dict:
    """What the status panel shows, for the page and the JSON endpoint alike."""
    total = getattr(run, "chunks_total", None)
    done = getattr(run, "chunks_done", None)
    if total is None:
        total = run.chunks.count()
        done = run.chunks.filter(status="done").count()
    finished = run.status != ValuationRun.Status.RUNNING
    if run.status == ValuationRun.Status.COMPLETED:
        progress = 1.0
    else:
        # Each stage moves the bar: fitting and back-testing take a real share of a run, and a
        # small company is scored in a single chunk (so chunks alone would jump from 0 to 1).
        start_at, share = STAGE_PROGRESS.get(run.stage, (0.0, 0.0))
        progress = start_at + (share * done / total if total and run.stage == "scoring" else 0.0)
    return {
        "id": run.pk,
        "status": run.status,
        "status_display": str(run.get_status_display()),
        "stage": run.stage,
        "stage_display": str(STAGE_LABELS.get(run.stage, run.stage or "–")),
        "chunks_done": done,
        "chunks_total": total,
        "progress": round(progress, 4),
        "progress_display": _("%(done)s of %(total)s parts scored") % {
            "done": formats.number_format(done, force_grouping=True),
            "total": formats.number_format(total, force_grouping=True)} if total else "",
        "as_of": run.as_of.isoformat(),
        "as_of_display": formats.date_format(run.as_of, "SHORT_DATE_FORMAT"),
        "started_display": formats.date_format(timezone.localtime(run.started_at), "SHORT_DATETIME_FORMAT")
        if run.started_at else "",
        "duration_display": format_duration(_duration(run)),
        "rows_written": run.rows_written,
        "rows_display": formats.number_format(run.rows_written, force_grouping=True),
        "customers_display": formats.number_format(run.customer_count, force_grouping=True),
        "error": run.error,
        "finished": finished,
        "dashboard_url": reverse("valuation:dashboard") if run.status == ValuationRun.Status.COMPLETED else "",
    }
