"""Settings of one valuation run, stored with its results as JSON."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

# A month is a twelfth of an average Gregorian year; the models measure time in weeks.
WEEKS_PER_MONTH = 365.2425 / 12 / 7

CLASSIC_VALUES = ("clv", "margin_window")
SEGMENT_POLICIES = ("median", "quantile", "fixed")


@dataclass(frozen=True)
class EngineSettings:
    """Knobs of the valuation. Defaults follow DOMAIN.md and the issue that defined the engine.

    window_months: trailing window for revenue, margin and services (start exclusive).
    horizon_months: CLV horizon; annual_discount_rate discounts it month by month.
    abc_a_share / abc_b_share: cumulative window-margin shares closing classes A and B.
    interval_low / interval_high: percentiles of the predictive distribution of future value.
    classic_value: which figure is the "classic value" axis of the segments ("clv" or
        "margin_window").
    segment_policy: how the low/high thresholds are set over active customers: "median",
        "quantile" (at segment_quantile) or "fixed" (fixed_classic_threshold,
        fixed_value_to_threshold).
    min_purchase_days_for_model / min_age_weeks: below either a customer is flagged thin
        (the model still scores them, but from little data).
    holdout_weeks: default holdout length of the backtest.
    hours_per_day: a service logged in days counts this many hours in the time given
        (services logged as occurrences have no duration and add none).
    simulation_draws / random_seed: Monte Carlo draws per model group for the CLV interval.
    """

    window_months: int = 12
    horizon_months: int = 36
    annual_discount_rate: float = 0.10
    abc_a_share: float = 0.80
    abc_b_share: float = 0.95
    interval_low: float = 0.10
    interval_high: float = 0.90
    classic_value: str = "clv"
    segment_policy: str = "median"
    segment_quantile: float = 0.5
    fixed_classic_threshold: float | None = None
    fixed_value_to_threshold: float | None = None
    min_purchase_days_for_model: int = 2
    min_age_weeks: float = 12.0
    holdout_weeks: int = 26
    hours_per_day: float = 8.0
    simulation_draws: int = 400
    random_seed: int = 0

    def __post_init__(self) -> None:
        if not 0 < self.hours_per_day <= 24:
            raise ValueError("hours_per_day must lie in (0, 24]")
        if self.window_months < 1 or self.horizon_months < 1:
            raise ValueError("window_months and horizon_months must be at least 1")
        if self.annual_discount_rate <= -1:
            raise ValueError("annual_discount_rate must be above -1")
        if not 0 < self.abc_a_share <= self.abc_b_share <= 1:
            raise ValueError("need 0 < abc_a_share <= abc_b_share <= 1")
        if not 0 <= self.interval_low < self.interval_high <= 1:
            raise ValueError("need 0 <= interval_low < interval_high <= 1")
        if self.classic_value not in CLASSIC_VALUES:
            raise ValueError(f"classic_value must be one of {CLASSIC_VALUES}")
        if self.segment_policy not in SEGMENT_POLICIES:
            raise ValueError(f"segment_policy must be one of {SEGMENT_POLICIES}")
        if not 0 <= self.segment_quantile <= 1:
            raise ValueError("segment_quantile must lie in [0, 1]")
        if self.segment_policy == "fixed" and (
            self.fixed_classic_threshold is None or self.fixed_value_to_threshold is None
        ):
            raise ValueError("the fixed policy needs both fixed thresholds")
        if self.simulation_draws < 10:
            raise ValueError("simulation_draws must be at least 10")

    @property
    def horizon_weeks(self) -> float:
        return self.horizon_months * WEEKS_PER_MONTH

    @property
    def monthly_discount_factor(self) -> float:
        """Factor applied per month: (1 + annual rate) ** (-1/12)."""
        return (1.0 + self.annual_discount_rate) ** (-1.0 / 12.0)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EngineSettings:
        """Build from stored JSON. Unknown keys are ignored so older runs stay readable."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})
