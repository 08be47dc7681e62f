"""Net Promoter Score (Reichheld 2003, "The One Number You Need to Grow"): of the answers to
"How likely are you to recommend us?" (0-10), the share of promoters (9-10) minus the share
of detractors (0-6), in points from -100 to +100. Passives (7-8) count in the total only."""

from __future__ import annotations

import datetime as dt

from dateutil.relativedelta import relativedelta
from django.db.models import Count, Q

PROMOTER_MIN = 9
DETRACTOR_MAX = 6
NPS_MONTHS = 12  # the answers that count: those of the last 12 months


def window_start(day: dt.date, months: int = NPS_MONTHS) -> dt.date:
    """The day before the window of ``months`` months that ends on ``day``: answers dated
    after it count (29 February back a year is 28 February)."""
    return day - relativedelta(months=months)


def nps(*, promoters: int, passives: int, detractors: int) -> float | None:
    """NPS in points, None without answers."""
    answers = promoters + passives + detractors
    if not answers:
        return None
    return 100.0 * (promoters - detractors) / answers


def nps_of_scores(scores) -> float | None:
    scores = list(scores)
    return nps(promoters=sum(s >= PROMOTER_MIN for s in scores), detractors=sum(s <= DETRACTOR_MAX for s in scores),
               passives=sum(DETRACTOR_MAX < s < PROMOTER_MIN for s in scores))


def nps_counts(prefix: str = "", **filters) -> dict:
    """Aggregates counting promoters, passives and detractors of answers reached by ``prefix``.

    The score is counted (never null on an answer, null where a join reached none), so the
    answers' (date, score, customer) index answers the dashboard's counts without the table."""
    score = f"{prefix}score"
    extra = Q(**{f"{prefix}{key}": value for key, value in filters.items()})
    return {
        "promoters": Count(score, filter=extra & Q(**{f"{score}__gte": PROMOTER_MIN})),
        "passives": Count(score, filter=extra & Q(**{f"{score}__gt": DETRACTOR_MAX, f"{score}__lt": PROMOTER_MIN})),
        "detractors": Count(score, filter=extra & Q(**{f"{score}__lte": DETRACTOR_MAX})),
    }


def with_nps(row: dict) -> dict:
    row["answers"] = row["promoters"] + row["passives"] + row["detractors"]
    row["nps"] = nps(promoters=row["promoters"], passives=row["passives"], detractors=row["detractors"])
    return row
