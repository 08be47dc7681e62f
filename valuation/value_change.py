"""Why did this customer's value change? Reads two stored value rows and explains the
difference with engine.attribution: a fixed number of queries, no transactions scanned."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

import pandas as pd
from django.db.models import Case, F, Sum, Value, When
from django.utils.translation import gettext_lazy as _

from customers.models import Customer
from services.models import ServiceEvent
from services.selectors import VALUE_FIELD, standard_cost_expression

from .engine.attribution import RunModel, clv_change_drivers, value_to_customer_drivers
from .models import CustomerValue, ValuationRun, ValueBasis, segment_label
from .selectors import completed_runs_newest_first, window_start

DRIVER_LABELS = {
    "time_without_purchase": _("Time without a purchase (P(alive) and expected purchases)"),
    "new_purchases": _("New purchases and spend since the previous run"),
    "model_refit": _("Model refit (population parameters and settings)"),
    "status_change": _("Status change"),
    "new_services": _("New free services"),
    "expired_services": _("Services that left the window"),
    "standard_cost_changes": _("Standard-cost changes"),
}
# The waterfall's bars: short names under the chart.
SHORT_LABELS = {
    "time_without_purchase": _("Time without purchase"),
    "new_purchases": _("New purchases"),
    "model_refit": _("Model refit"),
    "status_change": _("Status"),
}
CENT = Decimal("0.01")
INPUT_FIELDS = ["purchase_days", "recency_weeks", "age_weeks", "mean_repeat_margin", "mean_purchase_margin",
                "margin_window", "basis", "clv", "value_to_customer", "segment", "run_id"]


@dataclass
class ValueChange:
    previous_run: ValuationRun | None
    current_run: ValuationRun | None
    previous_clv: Decimal | None = None
    current_clv: Decimal | None = None
    previous_segment: str = ""
    current_segment: str = ""
    drivers: list[dict] = field(default_factory=list)
    previous_value_to_customer: Decimal | None = None
    current_value_to_customer: Decimal | None = None
    value_to_drivers: list[dict] = field(default_factory=list)

    @property
    def available(self) -> bool:
        return self.previous_clv is not None and self.current_clv is not None

    @property
    def clv_change(self) -> Decimal:
        return (self.current_clv or 0) - (self.previous_clv or 0)

    @property
    def value_to_change(self) -> Decimal:
        return (self.current_value_to_customer or 0) - (self.previous_value_to_customer or 0)

    @property
    def previous_segment_label(self) -> str:
        return segment_label(self.previous_segment)

    @property
    def current_segment_label(self) -> str:
        return segment_label(self.current_segment)

    @property
    def segment_changed(self) -> bool:
        return bool(self.previous_segment) and self.previous_segment != self.current_segment


def run_model(run: ValuationRun) -> RunModel:
    """The models and settings the run scored with, as it stored them."""
    return RunModel.from_stored(run.parameters or {}, run.settings or {})


def _frame(row: dict | None, customer: Customer) -> pd.DataFrame:
    """The engine's inputs of one stored value row (engine.attribution.INPUT_COLUMNS); the
    status is the one the run scored with (basis "lost")."""
    data = dict(row or {})
    return pd.DataFrame([{
        "purchase_days": data.get("purchase_days", 0) or 0,
        "recency_weeks": data.get("recency_weeks"),
        "age_weeks": data.get("age_weeks"),
        "mean_repeat_margin": data.get("mean_repeat_margin"),
        "mean_purchase_margin": data.get("mean_purchase_margin"),
        "margin_window": float(data["margin_window"]) if row else None,
        "lost": data.get("basis") == ValueBasis.LOST,
        "clv": float(data["clv"]) if row else float("nan"),
    }], index=pd.Index([customer.pk], name="customer_id"))


def services_between(*, customer_id: int, previous: ValuationRun, current: ValuationRun) -> tuple[Decimal, Decimal]:
    """Standard cost of the services given since the previous run, and of those in the previous
    run's window that the current window no longer holds: one grouped query on the customer's
    (customer, date) index."""
    months = int((current.settings or {}).get("window_months", 12))
    previous_months = int((previous.settings or {}).get("window_months", months))
    start_previous = window_start(previous.as_of, previous_months)
    start_current = window_start(current.as_of, months)
    value = F("quantity") * standard_cost_expression()
    totals = ServiceEvent.objects.filter(
        customer_id=customer_id, date__gt=min(start_previous, start_current), date__lte=current.as_of
    ).aggregate(
        new=Sum(Case(When(date__gt=max(previous.as_of, start_current), then=value), default=Value(0),
                     output_field=VALUE_FIELD)),
        expired=Sum(Case(When(date__gt=start_previous, date__lte=min(start_current, previous.as_of), then=value),
                         default=Value(0), output_field=VALUE_FIELD)),
    )
    return totals["new"] or Decimal(0), totals["expired"] or Decimal(0)


def customer_value_change(*, customer: Customer) -> ValueChange:
    """The change between the two latest completed runs (by as-of date) for one customer."""
    runs = list(completed_runs_newest_first().only("pk", "as_of", "parameters", "settings")[:2])
    if len(runs) < 2:
        return ValueChange(previous_run=None, current_run=runs[0] if runs else None)
    current_run, previous_run = runs
    rows = {row["run_id"]: row for row in CustomerValue.objects.filter(
        customer=customer, run_id__in=[current_run.pk, previous_run.pk]).values(*INPUT_FIELDS)}
    current, previous = rows.get(current_run.pk), rows.get(previous_run.pk)
    change = ValueChange(previous_run=previous_run, current_run=current_run)
    if current is None:
        return change
    weeks = (current_run.as_of - previous_run.as_of).days / 7.0
    drivers = clv_change_drivers(
        _frame(previous, customer), _frame(current, customer),
        previous_model=run_model(previous_run), current_model=run_model(current_run), weeks_between=weeks,
    ).iloc[0]
    change.previous_clv = Decimal(int(drivers["previous_clv"])) * CENT
    change.current_clv = Decimal(int(drivers["current_clv"])) * CENT
    change.previous_segment = previous["segment"] if previous else ""
    change.current_segment = current["segment"]
    change.drivers = [
        {"name": name, "label": DRIVER_LABELS[name], "short_label": SHORT_LABELS[name],
         "amount": Decimal(int(drivers[name])) * CENT}
        for name in ("time_without_purchase", "new_purchases", "model_refit", "status_change")
    ]
    previous_to = float(previous["value_to_customer"]) if previous else 0.0
    new, expired = services_between(customer_id=customer.pk, previous=previous_run, current=current_run)
    cents = value_to_customer_drivers(previous=previous_to, current=float(current["value_to_customer"]),
                                      new_services=float(new), expired_services=float(expired))
    change.previous_value_to_customer = Decimal(repr(previous_to)).quantize(CENT)
    change.current_value_to_customer = Decimal(current["value_to_customer"]).quantize(CENT)
    change.value_to_drivers = [
        {"name": name, "label": DRIVER_LABELS[name], "amount": Decimal(amount) * CENT} for name, amount in cents.items()
    ]
    return change
