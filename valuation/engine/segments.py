"""ABC classes and the four value segments (classic value x value to the customer).

Thresholds are computed once over all customers of a run and then applied to each chunk, so
a customer's class never depends on which chunk it was scored in.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .settings import EngineSettings

# code -> (label, strategy), after DOMAIN.md's segmentation table.
SEGMENTS: dict[str, tuple[str, str]] = {
    "uncritical": ("Uncritical", "Opportunistic selling; no king's treatment."),
    "problem": (
        "Problem group",
        "Spoiled with free services but not worth it: renegotiate, or it never pays.",
    ),
    "potential": (
        "Check potential",
        "Look for hidden win-win potential; don't over-offer, but ask whether enough is done for loyalty.",
    ),
    "investment": (
        "Investment customers",
        "The high service spend pays back in loyalty and follow-up business.",
    ),
}
ABC_CLASSES = ("A", "B", "C")
# A customer known to be lost has no future value to negotiate about: win back the ones whose
# history and service record make it worth it, let the others go.
LOST_STRATEGY = "Lost: win back if the history makes it worth it, otherwise let go."


@dataclass(frozen=True)
class Thresholds:
    """abc_a_min_margin / abc_b_min_margin: smallest window margin still in class A / B.
    classic_threshold / value_to_threshold: a customer is "high" on an axis when its value
    is strictly above the threshold."""

    abc_a_min_margin: float
    abc_b_min_margin: float
    classic_threshold: float
    value_to_threshold: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Thresholds:
        return cls(
            **{
                k: float(data[k])
                for k in ("abc_a_min_margin", "abc_b_min_margin", "classic_threshold", "value_to_threshold")
            }
        )


def classic_value(scored: pd.DataFrame, settings: EngineSettings) -> pd.Series:
    """The classic value axis: clv or margin_window, per settings.classic_value."""
    return pd.to_numeric(scored[settings.classic_value]).fillna(0.0)


def _abc_thresholds(margin: np.ndarray, settings: EngineSettings) -> tuple[float, float]:
    """Pareto cut-offs on window margin. Customers sorted by margin, largest first; class A
    holds the customers up to and including the one whose cumulative margin first reaches
    abc_a_share of the total positive margin, B likewise up to abc_b_share. Only positive
    margins count; customers with margin <= 0 are always C."""
    positive = np.sort(margin[margin > 0])[::-1]
    if len(positive) == 0:
        # Nobody made a positive margin: everyone is C whatever the cut-offs.
        return 0.0, 0.0
    share = np.cumsum(positive) / positive.sum()
    # A small tolerance keeps a share that lands exactly on 80 % from spilling into the next.
    a_last = int(np.searchsorted(share, settings.abc_a_share - 1e-12))
    b_last = int(np.searchsorted(share, settings.abc_b_share - 1e-12))
    a_last = min(a_last, len(positive) - 1)
    b_last = min(b_last, len(positive) - 1)
    return float(positive[a_last]), float(positive[b_last])


def compute_thresholds(scored: pd.DataFrame, settings: EngineSettings | None = None) -> Thresholds:
    """Global thresholds from all customers of a run.

    ``scored`` needs margin_window, the classic value column (clv or margin_window),
    value_to_customer and active (bool). ABC uses every customer's window margin. The segment
    thresholds use active customers only, per settings.segment_policy: "median" (the median
    of each axis), "quantile" (segment_quantile of each axis) or "fixed" (the fixed values).
    With no active customers the thresholds are 0.
    """
    settings = settings or EngineSettings()
    margin = pd.to_numeric(scored["margin_window"]).fillna(0.0).to_numpy(dtype=float)
    a_min, b_min = _abc_thresholds(margin, settings)

    if settings.segment_policy == "fixed":
        classic_t = float(settings.fixed_classic_threshold)  # type: ignore[arg-type]
        value_to_t = float(settings.fixed_value_to_threshold)  # type: ignore[arg-type]
    else:
        active = scored["active"].fillna(False).astype(bool).to_numpy()
        q = 0.5 if settings.segment_policy == "median" else settings.segment_quantile
        classic = classic_value(scored, settings).to_numpy(dtype=float)[active]
        value_to = pd.to_numeric(scored["value_to_customer"]).fillna(0.0).to_numpy(dtype=float)[active]
        classic_t = float(np.quantile(classic, q)) if len(classic) else 0.0
        value_to_t = float(np.quantile(value_to, q)) if len(value_to) else 0.0
    return Thresholds(a_min, b_min, classic_t, value_to_t)


def classify(scored: pd.DataFrame, thresholds: Thresholds, settings: EngineSettings | None = None) -> pd.DataFrame:
    """A copy of ``scored`` with abc_class, segment and strategy.

    abc_class: A if margin_window >= abc_a_min_margin, else B if >= abc_b_min_margin, else C;
    a window margin <= 0 is always C. Segment: high classic value means classic value >
    classic_threshold, high value to the customer means value_to_customer >
    value_to_threshold (strict, so a threshold of 0 leaves customers without services low):
    low/low uncritical, low/high problem, high/low potential, high/high investment.
    Customers with ``lost`` true (optional column) keep their segment but get LOST_STRATEGY.
    """
    settings = settings or EngineSettings()
    # A shallow copy: pandas copies on write, so ``scored`` stays as it is, and its columns are
    # not copied (at a million customers the deep copy took longer than the classification).
    result = scored.copy(deep=False)
    margin = pd.to_numeric(result["margin_window"]).fillna(0.0).to_numpy(dtype=float)
    # Codes 0, 1, 2 for C, A, B; labels are taken from small tables, not made per customer.
    abc = np.where(
        margin <= 0,
        0,
        np.where(margin >= thresholds.abc_a_min_margin, 1, np.where(margin >= thresholds.abc_b_min_margin, 2, 0)),
    )
    high_classic = classic_value(result, settings).to_numpy(dtype=float) > thresholds.classic_threshold
    value_to = pd.to_numeric(result["value_to_customer"]).fillna(0.0).to_numpy(dtype=float)
    high_value_to = value_to > thresholds.value_to_threshold
    codes = list(SEGMENTS)  # uncritical, problem, potential, investment
    segment = np.select(
        [high_classic & high_value_to, high_classic, high_value_to],
        [codes.index("investment"), codes.index("potential"), codes.index("problem")],
        default=codes.index("uncritical"),
    )
    strategy = segment.copy()
    if "lost" in result:
        strategy[result["lost"].fillna(False).astype(bool).to_numpy()] = len(codes)
    result["abc_class"] = _labels(["C", "A", "B"], abc, result.index)
    result["segment"] = _labels(codes, segment, result.index)
    result["strategy"] = _labels(
        [strategy for _, strategy in SEGMENTS.values()] + [LOST_STRATEGY], strategy, result.index
    )
    return result


def _labels(labels: list[str], codes: np.ndarray, index: pd.Index) -> pd.Series:
    """labels[codes] as a text column (pandas' str, built by pyarrow without a Python string
    per row)."""
    return pd.Series(pd.array(pc.take(pa.array(labels, pa.large_string()), pa.array(codes)), dtype="str"), index=index)
