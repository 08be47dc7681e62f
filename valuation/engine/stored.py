"""JSON round trip of fitted parameters, stored with each valuation run."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any


class StoredParams:
    """to_dict/from_dict for the parameter dataclasses: NaN and inf travel as null."""

    def to_dict(self) -> dict[str, Any]:
        return {k: (v if not isinstance(v, float) or math.isfinite(v) else None) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]):
        values = dict(data)
        if values.get("log_likelihood") is None:
            values["log_likelihood"] = math.nan
        return cls(**values)


@dataclass(frozen=True, kw_only=True)
class FittedParams(StoredParams):
    """What every maximum-likelihood fit reports next to its parameters; the fit-quality
    gate reads it. Keyword-only, so each model's own parameters stay positional."""

    log_likelihood: float = math.nan
    n_customers: int = 0
    converged: bool = True
    iterations: int = 0
    # Parameters at a bound of the search, and the covariance of the log-parameters from the
    # observed information (None where it could not be computed).
    at_bound: tuple[str, ...] = ()
    covariance: tuple[tuple[float, ...], ...] | None = None
    sampled: bool = False  # fitted on a random sample of the customers
