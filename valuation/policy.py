"""Writes of the manager's valuation settings: segment policy and valuation settings.

Each function validates what the database cannot and raises ValidationError keyed by field,
so a form can show the message next to the field it concerns. The settings take effect at
the next valuation run; a run keeps the settings it started with.
"""

from __future__ import annotations

from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from .models import ValuationPolicy
from .selectors import valuation_policy


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
