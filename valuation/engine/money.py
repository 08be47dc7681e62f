"""Money rounded to cents: the one rounding the run writes with and the attribution re-scores with."""

from __future__ import annotations

from decimal import Decimal

import numpy as np

CENT = Decimal("0.01")


def to_money(value: float) -> Decimal:
    """A float amount as Decimal cents: the shortest decimal text of the float (repr), rounded
    half to even. Going through repr keeps 0.125 at 0.12 and 1.015 at 1.02, as written."""
    return Decimal(repr(float(value))).quantize(CENT)


def to_cents(values) -> np.ndarray:
    """to_money of each value as whole cents (int64); NaN counts as 0."""
    flat = np.nan_to_num(np.asarray(values, dtype=float).ravel(), nan=0.0)
    return np.array([int(to_money(v).scaleb(2)) for v in flat], dtype=np.int64)
