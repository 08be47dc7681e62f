"""What if chosen free services were charged, reduced or cut? (DOMAIN.md: the rep asks what
cutting free services would mean.)

Pure arithmetic on a customer's window figures: a service type charged at standard cost is
paid by the customer (revenue +cost, no longer free, margin on it 0); reduced by p % costs
p % less; cut costs nothing. Either way the value to the customer falls by what is no longer
given free and the profit after service costs rises by the same amount. The segment is then
classified with the run's thresholds, as engine.segments.classify does.
"""

from __future__ import annotations

from dataclasses import dataclass

from .segments import Thresholds

MODES = ("charge", "reduce", "cut")


@dataclass(frozen=True)
class WhatIf:
    revenue_window: float
    profit_after_services: float
    value_to_customer: float
    segment: str
    saved: float  # the free-service cost no longer borne


def segment_of(*, classic: float, value_to_customer: float, thresholds: Thresholds) -> str:
    high_classic = classic > thresholds.classic_threshold
    high_value_to = value_to_customer > thresholds.value_to_threshold
    if high_classic:
        return "investment" if high_value_to else "potential"
    return "problem" if high_value_to else "uncritical"


def what_if(
    *, revenue_window: float, margin_window: float, clv: float, value_to_customer: float,
    value_to_by_type: dict[str, float],
    changes: dict[str, tuple[str, float]], thresholds: Thresholds, classic_value: str = "clv",
) -> WhatIf:
    """``changes``: service type code -> (mode, percent); percent counts for "reduce" only."""
    saved = 0.0
    charged = 0.0
    for code, (mode, percent) in changes.items():
        cost = float(value_to_by_type.get(code, 0.0))
        if mode == "charge":
            saved += cost
            charged += cost
        elif mode == "reduce":
            saved += cost * min(max(percent, 0.0), 100.0) / 100.0
        elif mode == "cut":
            saved += cost
        else:
            raise ValueError(f"unknown mode {mode!r}; expected one of {MODES}")
    value_to = max(value_to_customer - saved, 0.0)
    classic = clv if classic_value == "clv" else margin_window
    return WhatIf(
        revenue_window=revenue_window + charged,
        profit_after_services=margin_window - value_to,
        value_to_customer=value_to,
        segment=segment_of(classic=classic, value_to_customer=value_to, thresholds=thresholds),
        saved=saved,
    )
