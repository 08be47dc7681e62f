"""JSON round trip of fitted parameters, stored with each valuation run."""

from __future__ import annotations

import math
from dataclasses import asdict
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
