"""The dashboard's figures defined once, for both ways of computing them: the pages' reads
(dashboard.py, from a run's value rows) and the run's summary written when it completes
(run_summary.py). The segments' order, the scatter sample's key and quotas, the whale
curve's picks, the work lists' rules, the service-cost months, the filters, which runs are
shown and compared.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from decimal import Decimal

import numpy as np
from django.db.models import Q
from django.urls import NoReverseMatch, reverse

from services.models import ServiceType

from .models import Segment, ValuationRun

SEGMENTS = [Segment.UNCRITICAL, Segment.PROBLEM, Segment.POTENTIAL, Segment.INVESTMENT]
SCATTER_BUDGET = 5000
WHALE_POINTS = 500
ACTION_LIST_LENGTH = 20
SERVICE_COST_MONTHS = 24
# A customer whose P(alive) is below this is "at risk" on the win-back list.
AT_RISK_P_ALIVE = 0.5
# "A today, C tomorrow": CLV below this share of the window margin continued over the horizon.
A_TODAY_CLV_SHARE = Decimal("0.5")
# How far back the default comparison run of the migration matrix lies.
DEFAULT_COMPARISON_DAYS = 90

# Deterministic sampling without a window function: a Weyl sequence over the customer id
# (id x an odd constant, mod 2^32) spreads consecutive ids evenly over [0, 2^32), so
# "key < share x 2^32" keeps about that share of a segment, the same customers every time.
SAMPLE_MULTIPLIER = 2654435761
SAMPLE_MODULUS = 2**32


@dataclass(frozen=True)
class DashboardFilters:
    """Owner, region and industry: applied to every figure of the dashboard."""

    owner_id: int | None = None
    region: str = ""
    industry: str = ""

    def customer_q(self, prefix: str = "customer__") -> Q:
        q = Q()
        if self.owner_id is not None:
            q &= Q(**{f"{prefix}owner_id": self.owner_id})
        if self.region:
            q &= Q(**{f"{prefix}region": self.region})
        if self.industry:
            q &= Q(**{f"{prefix}industry": self.industry})
        return q

    @property
    def active(self) -> bool:
        return self.owner_id is not None or bool(self.region or self.industry)

    @property
    def cache_part(self) -> str:
        """The filters in a cache key: hashed, so a region or industry holding the key's
        separator (or spaces, or any length) cannot make two filters share a key."""
        text = json.dumps([self.owner_id, self.region, self.industry])
        return hashlib.sha256(text.encode()).hexdigest()[:32]


def completed_runs(*, limit: int = 60) -> list[ValuationRun]:
    """Completed runs, newest as-of date first (the first one is the latest); one query."""
    return list(
        ValuationRun.objects.filter(status=ValuationRun.Status.COMPLETED)
        .order_by("-as_of", "-finished_at", "-pk")
        .only(
            "pk",
            "as_of",
            "finished_at",
            "settings",
            "thresholds",
            "backtest",
            "parameters",
            "company",
            "customer_count",
            "rows_written",
        )[:limit]
    )


def default_comparison(runs: list[ValuationRun]) -> ValuationRun | None:
    """The newest run at least DEFAULT_COMPARISON_DAYS before the latest, else the oldest other run."""
    if len(runs) < 2:
        return None
    latest, earlier = runs[0], runs[1:]
    cutoff = latest.as_of - dt.timedelta(days=DEFAULT_COMPARISON_DAYS)
    return next((run for run in earlier if run.as_of <= cutoff), earlier[-1])


def cockpit_url_template() -> str:
    """The cockpit URL with an `{id}` placeholder (for the chart's click handler)."""
    for name in ("customers:cockpit", "customers:detail"):
        try:
            return reverse(name, args=[0]).replace("/0/", "/{id}/")
        except NoReverseMatch:
            continue
    return "/customers/{id}/"


CENT = Decimal("0.01")
SEGMENT_KEYS = ["customers", "revenue", "margin", "service_cost", "clv", "profit", "profitable", "unprofitable"]


def segment_table(rows: dict[str, dict]) -> tuple[list[dict], dict]:
    """The segment table and its totals row from {segment: sums}, in the segments' order."""
    keys = SEGMENT_KEYS
    zero = {"customers": 0, "profitable": 0, "unprofitable": 0}

    def cell(key: str, value):
        if value is None:
            return zero.get(key, Decimal("0.00"))
        # Sums of cents are cents; SQLite sums decimals as floats, which differ in the last
        # digits with the order of summation, so both ways to the table round the same way.
        return value if key in zero else Decimal(value).quantize(CENT)

    table = []
    for segment in SEGMENTS:
        row = rows.get(segment.value, {})
        table.append(
            {
                "segment": segment.value,
                "label": segment.label,
                "strategy": segment.strategy,
                **{k: cell(k, row.get(k)) for k in keys},
            }
        )
    totals = {k: sum((row[k] for row in table), zero.get(k, Decimal("0.00"))) for k in keys}
    return table, totals


def scatter_quotas(counts: dict[str, int], budget: int = SCATTER_BUDGET) -> dict[str, float]:
    """Share of each segment to draw: small segments whole, the rest share what is left evenly.

    Pure: {segment: customers} -> {segment: share in [0, 1]}.
    """
    shares: dict[str, float] = {}
    remaining = budget
    ordered = sorted((n, s) for s, n in counts.items() if n > 0)
    for position, (n, segment) in enumerate(ordered):
        quota = remaining / (len(ordered) - position)
        take = min(n, quota)
        shares[segment] = min(1.0, take / n)
        remaining -= take
    return shares


def whale_pick_ranks(n: int, n_positive: int, points: int = WHALE_POINTS) -> list[int]:
    """Ranks (1-based) to draw: evenly spaced, plus the peak and the ends. Pure."""
    if n <= 0:
        return []
    ranks = set(np.unique(np.linspace(1, n, num=min(n, points)).round().astype(int)).tolist())
    ranks |= {1, n}
    ranks |= {r for r in (n_positive, n_positive + 1) if 1 <= r <= n}
    return sorted(ranks)


def month_starts(*, today: dt.date, months: int = SERVICE_COST_MONTHS) -> list[dt.date]:
    """First days of the last `months` months, the current month last. Pure."""
    year, month = today.year, today.month
    starts = []
    for _ in range(months):
        starts.append(dt.date(year, month, 1))
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return starts[::-1]


def service_cost_rows(totals: list[tuple[int, dt.date, Decimal, int]]) -> list[dict]:
    """The panel's rows from (type id, month, cost, events), in the types' order: one query."""
    types = (
        {
            pk: (code, name, order, name_de)
            for pk, code, name, order, name_de in ServiceType.objects.filter(
                pk__in={row[0] for row in totals}
            ).values_list("pk", "code", "name", "sort_order", "name_de")
        }
        if totals
        else {}
    )
    # Both names: the figures are cached for every reader; the page picks the reader's language.
    result = [
        {
            "month": month,
            "code": types[type_id][0],
            "name": types[type_id][1],
            "name_de": types[type_id][3],
            "order": types[type_id][2],
            "cost": cost,
            "events": events,
        }
        for type_id, month, cost, events in totals
    ]
    result.sort(key=lambda row: (row["order"], row["code"], row["month"]))
    return result


ACTION_COLUMNS = [
    "customer_id",
    "customer__name",
    "customer__number",
    "segment",
    "abc_class",
    "clv",
    "margin_window",
    "margin_lifetime",
    "profit_after_services",
    "value_to_customer",
    "p_alive",
]
