"""NPS figures for the pages: per customer (cockpit), per segment and company-wide with its
trend (dashboard). Answers of the last 12 months count; each figure is one grouped query."""

from __future__ import annotations

import datetime as dt

import pandas as pd
from django.db.models import F
from django.utils import timezone

from customers.models import Customer, SurveyAnswer
from customers.nps import nps_counts, with_nps
from valuation.dashboard import SEGMENTS
from valuation.models import ValuationRun, segment_label

NPS_MONTHS = 12
TREND_QUARTERS = 8


def _since(today: dt.date, months: int) -> dt.date:
    return (pd.Timestamp(today) - pd.DateOffset(months=months)).date()


def customer_nps(*, customer: Customer, today: dt.date | None = None, limit: int = 20) -> dict:
    today = today or timezone.localdate()
    answers = list(SurveyAnswer.objects.filter(customer=customer).select_related("logged_by")[:limit])
    recent = SurveyAnswer.objects.filter(customer=customer, answered_on__gt=_since(today, NPS_MONTHS))
    figure = with_nps(recent.aggregate(**nps_counts()))
    return {**figure, "entries": answers}


def company_nps(*, today: dt.date | None = None) -> dict:
    today = today or timezone.localdate()
    return with_nps(SurveyAnswer.objects.filter(answered_on__gt=_since(today, NPS_MONTHS)).aggregate(**nps_counts()))


def nps_trend(*, today: dt.date | None = None) -> list[dict]:
    """Company NPS per calendar quarter, the last TREND_QUARTERS quarters."""
    today = today or timezone.localdate()
    # Counted per day and summed per quarter here: truncating every answer's date to its quarter
    # in SQL went through a timestamp with time zone per row, the larger part of the query.
    days = (SurveyAnswer.objects.filter(answered_on__gt=_since(today, 3 * TREND_QUARTERS))
            .values("answered_on").annotate(**nps_counts()).order_by())
    quarters: dict[tuple[int, int], dict] = {}
    for day in days:
        counts = quarters.setdefault(_quarter(day["answered_on"]), {"promoters": 0, "passives": 0, "detractors": 0})
        for name in counts:
            counts[name] += day[name]
    return [with_nps(counts) | {"label": f"{year} Q{quarter}"} for (year, quarter), counts in sorted(quarters.items())]


def _quarter(day: dt.date) -> tuple[int, int]:
    return day.year, (day.month - 1) // 3 + 1


def segment_nps(*, run: ValuationRun | None, today: dt.date | None = None) -> list[dict]:
    """Per segment of the run: NPS of its customers' answers of the last 12 months."""
    if run is None:
        return []
    today = today or timezone.localdate()
    # From the answers to their customers' value rows (one index probe each), not from every
    # value row of the run to its answers: a year's answers are few, a run's rows are millions.
    answers = SurveyAnswer.objects.filter(answered_on__gt=_since(today, NPS_MONTHS), customer__values__run=run)
    rows = {row["segment"]: with_nps(dict(row)) for row in
            answers.values(segment=F("customer__values__segment")).annotate(**nps_counts()).order_by()}
    return [{"segment": s.value, "label": s.label,
             **rows.get(s.value, with_nps({"promoters": 0, "passives": 0, "detractors": 0}))} for s in SEGMENTS]



DASHBOARD_NPS_TTL = 5 * 60  # new answers show on the dashboard within five minutes


def dashboard_nps(*, run: ValuationRun | None) -> dict:
    """Company, segment and trend figures for the dashboard, cached briefly: three grouped
    queries over the last years' answers."""
    from django.core.cache import cache

    today = timezone.localdate()
    key = f"dashboard:nps:{run.pk if run else 0}:{today.isoformat()}"
    figures = cache.get(key)
    if figures is None:
        figures = {"company": company_nps(today=today), "segments": segment_nps(run=run, today=today),
                   "trend": nps_trend(today=today)}
        for row in figures["segments"]:
            del row["label"]  # labels follow the reader's language, so they are not cached
        cache.set(key, figures, timeout=DASHBOARD_NPS_TTL)
    for row in figures["segments"]:
        row["label"] = segment_label(row["segment"])
    return figures
