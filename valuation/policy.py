"""Writes of the manager's settings: standard costs, segment policy, valuation settings.

Each function validates what the database cannot and raises ValidationError keyed by field,
so a form can show the message next to the field it concerns. The settings take effect at
the next valuation run; a run keeps the settings it started with.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils.formats import date_format
from django.utils.translation import gettext as _

from services.models import ServiceType, StandardCost

from .models import ValuationPolicy
from .selectors import valuation_policy


def add_standard_cost(*, service_type: ServiceType, valid_from: dt.date, cost_per_unit: Decimal, user) -> StandardCost:
    """A new cost for a service type, valid from a date: the history only ever grows.

    Old rows are never edited and a new cost cannot be dated before the latest one, so
    services given before the new date keep the value they had.
    """
    if cost_per_unit is None or cost_per_unit < 0:
        raise ValidationError({"cost_per_unit": _("A standard cost cannot be negative.")}, code="negative")
    with transaction.atomic():
        # Lock the type's row: two managers adding a cost at once are checked one after the other.
        ServiceType.objects.select_for_update().filter(pk=service_type.pk).first()
        existing = set(StandardCost.objects.filter(service_type=service_type).values_list("valid_from", flat=True))
        if valid_from in existing:
            raise ValidationError(
                {"valid_from": _("%(type)s already has a cost valid from %(date)s. Costs are never edited: "
                                 "choose a later date for the new cost.")
                 % {"type": service_type.display_name, "date": date_format(valid_from, "SHORT_DATE_FORMAT")}},
                code="duplicate",
            )
        latest = max(existing, default=None)
        if latest is not None and valid_from < latest:
            raise ValidationError(
                {"valid_from": _("The latest cost of %(type)s is valid from %(date)s. A new cost must start "
                                 "after it, so the value of services already given never changes.")
                 % {"type": service_type.display_name, "date": date_format(latest, "SHORT_DATE_FORMAT")}},
                code="before_latest",
            )
        try:
            with transaction.atomic():
                return StandardCost.objects.create(
                    service_type=service_type, valid_from=valid_from, cost_per_unit=cost_per_unit, created_by=user
                )
        except IntegrityError as exc:  # a concurrent insert on the same day
            raise ValidationError(
                {"valid_from": _("This service type already has a standard cost valid from that date.")},
                code="duplicate",
            ) from exc


def _save_policy(changes: dict) -> ValuationPolicy:
    with transaction.atomic():
        policy = valuation_policy()
        policy = ValuationPolicy.objects.select_for_update().get(pk=policy.pk)
        for name, value in changes.items():
            setattr(policy, name, value)
        policy.full_clean()
        policy.save()
    return policy


def update_segment_policy(
    *,
    classic_value: str,
    segment_policy: str,
    segment_quantile: Decimal,
    fixed_classic_threshold: Decimal | None,
    fixed_value_to_threshold: Decimal | None,
) -> ValuationPolicy:
    """How the four segments are cut: which classic value, and median, quantile or fixed amounts."""
    errors = {}
    if segment_policy == ValuationPolicy.SegmentPolicy.FIXED:
        if fixed_classic_threshold is None:
            errors["fixed_classic_threshold"] = _("Fixed amounts need a classic value threshold.")
        if fixed_value_to_threshold is None:
            errors["fixed_value_to_threshold"] = _("Fixed amounts need a value-to-customer threshold.")
    if fixed_value_to_threshold is not None and fixed_value_to_threshold < 0:
        errors["fixed_value_to_threshold"] = _("The value to the customer is never negative; use 0 or more.")
    if segment_quantile is None or not Decimal(0) < segment_quantile < Decimal(1):
        errors["segment_quantile"] = _("The quantile must lie between 0 and 1, e.g. 0.5 for the median.")
    if errors:
        raise ValidationError(errors)
    return _save_policy({
        "classic_value": classic_value,
        "segment_policy": segment_policy,
        "segment_quantile": segment_quantile,
        "fixed_classic_threshold": fixed_classic_threshold,
        "fixed_value_to_threshold": fixed_value_to_threshold,
    })


def update_valuation_settings(
    *,
    window_months: int,
    horizon_months: int,
    annual_discount_rate: Decimal,
    abc_a_share: Decimal,
    abc_b_share: Decimal,
    holdout_weeks: int,
    hours_per_day: Decimal | None = None,
) -> ValuationPolicy:
    """Window, CLV horizon, discount rate, ABC shares, back-test holdout and hours in a day."""
    errors = {}
    if window_months < 1:
        errors["window_months"] = _("The window must be at least one month.")
    if horizon_months < 1:
        errors["horizon_months"] = _("The horizon must be at least one month.")
    if not Decimal(0) <= annual_discount_rate < Decimal(1):
        errors["annual_discount_rate"] = _("Give the rate as a fraction between 0 and 1, e.g. 0.10 for 10 %.")
    if not Decimal(0) < abc_a_share <= Decimal(1):
        errors["abc_a_share"] = _("The A share must lie above 0 and at most 1, e.g. 0.80.")
    if not Decimal(0) < abc_b_share <= Decimal(1):
        errors["abc_b_share"] = _("The A+B share must lie above 0 and at most 1, e.g. 0.95.")
    elif "abc_a_share" not in errors and abc_b_share < abc_a_share:
        errors["abc_b_share"] = _("The A+B share cannot be smaller than the A share.")
    if holdout_weeks < 1:
        errors["holdout_weeks"] = _("The holdout must be at least one week.")
    if hours_per_day is not None and not Decimal(0) < hours_per_day <= Decimal(24):
        errors["hours_per_day"] = _("A day has between 0 and 24 hours, e.g. 8.")
    if errors:
        raise ValidationError(errors)
    return _save_policy({
        "window_months": window_months,
        "horizon_months": horizon_months,
        "annual_discount_rate": annual_discount_rate,
        "abc_a_share": abc_a_share,
        "abc_b_share": abc_b_share,
        "holdout_weeks": holdout_weeks,
        **({"hours_per_day": hours_per_day} if hours_per_day is not None else {}),
    })
