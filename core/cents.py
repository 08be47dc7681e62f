"""Float amounts rounded to whole cents, fast: the vectorised part of one rounding rule.

Django-free, so that the valuation engine rounds with it as the COPY writers do."""

from __future__ import annotations

import numpy as np


def rounded_cents(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each amount x 100 rounded to whole cents, and where that is in doubt: within a hair of
    half a cent (binary and decimal rounding may disagree), not finite, or too large for an
    int64. The doubtful ones are 0 here; the caller asks the reference rounding for them."""
    with np.errstate(invalid="ignore"):
        scaled = values * 100.0
        half = np.abs(scaled - np.floor(scaled) - 0.5)
        doubtful = ~np.isfinite(scaled) | (half < 1e-6 + np.abs(scaled) * 1e-15) | (np.abs(scaled) >= 2.0**62)
    return np.rint(np.where(doubtful, 0.0, scaled)).astype(np.int64), doubtful
