"""NPS figures for the pages: per customer (cockpit), per segment and company-wide with its
trend (dashboard). Answers of the last 12 months count; each figure is one grouped query."""

from __future__ import annotations

import datetime as dt

from django.db.models import F
from django.utils import timezone

from customers.models import Customer, SurveyAnswer
from customers.nps import nps_counts, window_start, with_nps
from valuation.dashboard import SEGMENTS
from valuation.models import RunSummary, ValuationRun, segment_label

TREND_QUARTERS = 8


def customer_nps(*, customer: Customer, today: dt.date | None = None, limit: int = 20) -> dict:
    today = today or timezone.localdate()
    answers = list(SurveyAnswer.objects.filter(customer=customer).select_related("logged_by")[:limit])
    recent = SurveyAnswer.objects.filter(customer=customer, answered_on__gt=window_start(today))
    figure = with_nps(recent.aggregate(**nps_counts()))
    return {**figure, "entries": answers}


def company_nps(*, today: dt.date | None = None) -> dict:
    today = today or timezone.localdate()
    return with_nps(SurveyAnswer.objects.filter(answered_on__gt=window_start(today)).aggregate(**nps_counts()))


def nps_trend(*, today: dt.date | None = None) -> list[dict]:
    """Company NPS per calendar quarter, the last TREND_QUARTERS quarters."""
    today = today or timezone.localdate()
    # Counted per day and summed per quarter here: truncating every answer's date to its quarter
    # in SQL went through a timestamp with time zone per row, the larger part of the query.
    days = (SurveyAnswer.objects.filter(answered_on__gt=window_start(today, 3 * TREND_QUARTERS))
            .values("answered_on").annotate(**nps_counts()).order_by())
    quarters: dict[tuple[int, int], dict] = {}
    for day in days:
        counts = quarters.setdefault(_quarter(day["answered_on"]), {"promoters": 0, "passives": 0, "detractors": 0})
        for name in counts:
            counts[name] += day[name]
    return [with_nps(counts) | {"label": f"{year} Q{quarter}"} for (year, quarter), counts in sorted(quarters.items())]


def _quarter(day: dt.date) -> tuple[int, int]:
    return day.year, (day.month - 1) // 3 + 1


def stored_segment_counts(run: ValuationRun | None) -> dict | None:
    """Promoters, passives and detractors per segment as the run counted them (answers of the
    12 months up to its date), or None where its summary has none."""
    if run is None:
        return None
    return RunSummary.objects.filter(run=run).values_list("nps_by_segment", flat=True).first()


def segment_nps(*, run: ValuationRun | None, today: dt.date | None = None, counted: dict | None = None) -> list[dict]:
    """Per segment of the run: NPS of its customers' answers of the last 12 months; from the
    run's own ``counted`` figures where given (stored_segment_counts), else read up to ``today``."""
    if run is None:
        return []
    if counted is not None:
        rows = {segment: with_nps(dict(counts)) for segment, counts in counted.items()}
    else:
        today = today or timezone.localdate()
        # From the answers to their customers' value rows (one index probe each), not from every
        # value row of the run to its answers.
        answers = SurveyAnswer.objects.filter(answered_on__gt=window_start(today), customer__values__run=run)
        rows = {row["segment"]: with_nps(dict(row)) for row in
                answers.values(segment=F("customer__values__segment")).annotate(**nps_counts()).order_by()}
    return [{"segment": s.value, "label": s.label,
             **rows.get(s.value, with_nps({"promoters": 0, "passives": 0, "detractors": 0}))} for s in SEGMENTS]


# New answers show in the company NPS and the trend within five minutes; the segments' figures
# are the run's (as of its date) where it counted them.
DASHBOARD_NPS_TTL = 5 * 60


def dashboard_nps(*, run: ValuationRun | None) -> dict:
    """Company, segment and trend figures for the dashboard, cached briefly: grouped queries
    over the last years' answers. The segments' figures are the run's own where its summary
    counted them: joining a year's answers to a million value rows took a second."""
    from django.core.cache import cache

    today = timezone.localdate()
    key = f"dashboard:nps:{run.pk if run else 0}:{today.isoformat()}"
    figures = cache.get(key)
    if figures is None:
        counted = stored_segment_counts(run)
        figures = {"company": company_nps(today=today), "segments": segment_nps(run=run, today=today, counted=counted),
                   "segments_as_of": run.as_of if counted is not None else None, "trend": nps_trend(today=today)}
        for row in figures["segments"]:
            del row["label"]  # labels follow the reader's language, so they are not cached
        cache.set(key, figures, timeout=DASHBOARD_NPS_TTL)
    for row in figures["segments"]:
        row["label"] = segment_label(row["segment"])
    return figures
