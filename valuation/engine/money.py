"""Money rounded to cents: the one rounding the run writes with and the attribution re-scores with."""

from __future__ import annotations

from decimal import Decimal

import numpy as np

from core.cents import rounded_cents

CENT = Decimal("0.01")


def to_money(value: float) -> Decimal:
    """A float amount as Decimal cents: the shortest decimal text of the float (repr), rounded
    half to even. Going through repr keeps 0.125 at 0.12 and 1.015 at 1.02, as written."""
    return Decimal(repr(float(value))).quantize(CENT)


def to_cents(values) -> np.ndarray:
    """to_money of each value as whole cents (int64); NaN counts as 0. Vectorised where the
    float rounds to the same cent (core.cents); to_money decides the values in doubt (a
    million values: 0.03-0.11 s instead of 1.8 s one by one)."""
    flat = np.nan_to_num(np.asarray(values, dtype=float).ravel(), nan=0.0)
    cents, doubtful = rounded_cents(flat)
    for k in np.flatnonzero(doubtful):
        cents[k] = int(to_money(flat[k]).scaleb(2))
    return cents
