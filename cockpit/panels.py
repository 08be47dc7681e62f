"""The cockpit's rep's-day panels: why the value changed (with a waterfall), what-if on free
services, and the chosen period's figures against the period before. Each is a fixed number
of queries; the views add them to their context."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.utils.translation import gettext as _

from customers.models import Customer
from services.models import ServiceType
from valuation.cross_sell import cross_sell_hints
from valuation.engine import Thresholds
from valuation.engine.what_if import MODES, what_if
from valuation.models import CustomerValue, segment_label
from valuation.value_change import customer_value_change

from .charts import ChartLocale, value_change_waterfall_figure
from .selectors import PeriodRollup, period_rollup, previous_period  # noqa: F401  (previous_period: named from here too)

WHAT_IF_PREFIX = "wi_"


# --- why did the value change -----------------------------------------------------------------

def value_change_context(*, customer: Customer, locale: ChartLocale) -> dict:
    change = customer_value_change(customer=customer)
    chart = None
    if change.available:
        chart = value_change_waterfall_figure(
            start_label=_("CLV %(day)s") % {"day": change.previous_run.as_of.isoformat()},
            end_label=_("CLV %(day)s") % {"day": change.current_run.as_of.isoformat()},
            start=change.previous_clv, end=change.current_clv,
            drivers=[(str(d["short_label"]), d["amount"]) for d in change.drivers],
            locale=locale,
        )
    return {"value_change": change, "value_change_chart": chart}


# --- what if ------------------------------------------------------------------------------------

def what_if_choices(params, codes: list[str]) -> dict[str, tuple[str, float]]:
    """The what-if form's choices from the query string: wi_<code>=charge|reduce|cut and
    wi_pct_<code>=percent (for reduce). Unknown modes and unreadable percentages are ignored."""
    chosen = {}
    for code in codes:
        mode = params.get(f"{WHAT_IF_PREFIX}{code}", "")
        if mode not in MODES:
            continue
        try:
            percent = float(params.get(f"{WHAT_IF_PREFIX}pct_{code}", "") or 50)
        except ValueError:
            percent = 50.0
        chosen[code] = (mode, max(0.0, min(percent, 100.0)))
    return chosen


def what_if_context(*, value: CustomerValue | None, params, type_names: dict[str, str] | None = None) -> dict:
    if value is None or not value.value_to_by_type:
        return {"what_if": None}
    by_type = {code: float(cost) for code, cost in value.value_to_by_type.items()}
    names = type_names if type_names is not None else {
        t.code: t.display_name for t in ServiceType.objects.filter(code__in=list(by_type))
    }
    chosen = what_if_choices(params, list(by_type))
    rows = [
        {"code": code, "name": names.get(code, code), "cost": Decimal(repr(cost)).quantize(Decimal("0.01")),
         "mode": chosen.get(code, ("", 50.0))[0], "percent": int(chosen.get(code, ("", 50.0))[1])}
        for code, cost in sorted(by_type.items(), key=lambda item: -item[1])
    ]
    result = None
    if chosen and value.run.thresholds:
        outcome = what_if(
            revenue_window=float(value.revenue_window), margin_window=float(value.margin_window),
            clv=float(value.clv), value_to_customer=float(value.value_to_customer), value_to_by_type=by_type,
            changes=chosen, thresholds=Thresholds.from_dict(value.run.thresholds),
            classic_value=(value.run.settings or {}).get("classic_value", "clv"),
        )
        result = {
            "revenue_window": outcome.revenue_window, "profit_after_services": outcome.profit_after_services,
            "value_to_customer": outcome.value_to_customer, "saved": outcome.saved,
            "segment": outcome.segment, "segment_label": segment_label(outcome.segment),
            "profit_change": outcome.profit_after_services - float(value.profit_after_services),
        }
    return {"what_if": {"rows": rows, "result": result, "modes": MODES}}


# --- the period's figures -------------------------------------------------------------------

def period_figures(*, customer_id: int, start: dt.date, end: dt.date, rollup: PeriodRollup | None = None) -> dict:
    """Revenue, margin, free-service cost and count, profit after services and number of
    purchases in the period and the period before, summed from the customer's rollup (two
    grouped queries on the (customer, date) indexes; the cockpit passes the one it read)."""
    if rollup is None:
        rollup = period_rollup(customer_id=customer_id, start=start, end=end)
    zero = Decimal(0)
    figures = {}
    for when, (first, last) in (("now", (rollup.start, rollup.end)), ("before", (rollup.before_start, rollup.before_end))):
        days = rollup.purchases_between(first, last)
        services = rollup.services_between(first, last)
        figures[f"revenue_{when}"] = sum((row["day_revenue"] or zero for row in days), zero)
        figures[f"margin_{when}"] = sum((row["day_margin"] or zero for row in days), zero)
        figures[f"purchases_{when}"] = len(days)
        figures[f"cost_{when}"] = sum((row["value"] or zero for row in services), zero)
        figures[f"count_{when}"] = sum(row["count"] for row in services)
    rows = []
    for key, label, money in (
        ("revenue", _("Revenue"), True), ("margin", _("Margin"), True), ("cost", _("Free services (standard cost)"), False),
        ("profit", _("Profit after service costs"), True), ("count", _("Services given"), False),
        ("purchases", _("Purchase days"), True),
    ):
        if key == "profit":
            now = figures["margin_now"] - figures["cost_now"]
            before = figures["margin_before"] - figures["cost_before"]
        else:
            now, before = figures[f"{key}_now"] or zero, figures[f"{key}_before"] or zero
        rows.append({"key": key, "label": label, "now": now, "before": before, "change": now - before,
                     "is_money": key not in ("count", "purchases"), "is_value_from": money})
    return {"period_rows": rows, "previous_start": rollup.before_start, "previous_end": rollup.before_end}


def cockpit_panels(*, customer: Customer, value: CustomerValue | None, start: dt.date, end: dt.date, params,
                   show_money: bool, locale: ChartLocale, rollup: PeriodRollup | None = None,
                   type_names: dict[str, str] | None = None) -> dict:
    """Every panel of this module for the cockpit page; value-from panels only for money roles.
    The cockpit passes what it already read: the period rollup and its service types' names."""
    from .nps import customer_nps
    from .nps_views import SurveyAnswerForm

    context = period_figures(customer_id=customer.pk, start=start, end=end, rollup=rollup)
    context |= {"nps": customer_nps(customer=customer), "nps_form": SurveyAnswerForm()}
    if show_money:
        context |= value_change_context(customer=customer, locale=locale)
        context |= what_if_context(value=value, params=params, type_names=type_names)
        context |= {"cross_sell": cross_sell_hints(customer=customer, value=value)}
    return context
