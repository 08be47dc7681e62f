"""After the seed: monthly valuation runs back in time and survey answers (NPS)."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import date, timedelta

import numpy as np
from django.utils import timezone

from customers.models import Customer, SurveyAnswer

# --- value history -----------------------------------------------------------------------------

def history_dates(*, as_of: date, months: int) -> list[date]:
    """Monthly as-of dates over the last ``months`` months, oldest first, ending at as_of.

    Month ends are kept where as_of is one (31 Mar -> 28/29 Feb), like pandas' month offsets.
    """
    import pandas as pd

    return [(pd.Timestamp(as_of) - pd.DateOffset(months=k)).date() for k in range(months - 1, -1, -1)]


def seed_value_history(*, as_of: date | None = None, months: int = 12,
                       progress: Callable[[str], None] | None = None) -> list[int]:
    """Value the company at each monthly as-of date (history_dates), oldest first, so value
    history, segment movement, worklists and value-change explanations show on first start.

    Dates that already have a completed run are skipped (running it twice adds nothing). The
    dashboard cache is warmed once, after the last run. Returns the ids of the runs made.
    """
    from valuation import services as valuation

    as_of = as_of or timezone.localdate()
    say = progress or (lambda message: None)
    dates = [day for day in history_dates(as_of=as_of, months=months) if not valuation.has_completed_run(as_of=day)]
    made = []
    for number, day in enumerate(dates, start=1):
        started = time.perf_counter()
        run = valuation.run_valuation(as_of=day, trigger="command", warm=number == len(dates))
        if run.status != run.Status.COMPLETED:
            raise RuntimeError(f"Valuation as of {day} ended {run.status}: {run.error}")
        made.append(run.pk)
        say(f"  valued as of {day} ({number}/{len(dates)}) in {time.perf_counter() - started:.1f} s")
    return made


# --- survey answers (NPS) ------------------------------------------------------------------------

SURVEY_SHARE = 0.45  # of customers who answered at least once in the last two years
SURVEY_CONTACTS = ["Einkauf", "Technik", "Geschäftsführung", "Instandhaltung", "Qualität"]
SURVEY_COMMENTS = {
    "low": ["Lieferzeiten zu lang", "Preise gestiegen", "Ansprechpartner schwer erreichbar", "Reklamation zäh"],
    "mid": ["Im Großen und Ganzen zufrieden", "Solide, aber nichts Besonderes", ""],
    "high": ["Schnelle Hilfe an der Hotline", "Sehr gute Schulung", "Verlässlicher Partner", ""],
}


def _seed_survey_answers(*, seed: int, as_of: date) -> int:
    """NPS answers for about SURVEY_SHARE of the demo customers, one to three each over the last
    two years; lost customers answer lower. Deterministic for a seed."""
    rng = np.random.default_rng([seed, 7001])
    rows = np.array(list(Customer.objects.filter(is_demo=True).order_by("pk").values_list("pk", "status")),
                    dtype=object)
    if not len(rows):
        return 0
    ids, lost = rows[:, 0].astype(np.int64), rows[:, 1] == Customer.Status.LOST
    answering = rng.random(len(ids)) < SURVEY_SHARE
    base = rng.normal(7.4, 1.9, len(ids)) - 2.8 * lost
    counts = rng.integers(1, 4, len(ids)) * answering
    who = np.repeat(np.arange(len(ids)), counts)
    scores = np.clip(np.rint(base[who] + rng.normal(0.0, 1.0, len(who))), 0, 10).astype(int)
    days = rng.integers(0, 730, len(who))
    contacts = rng.integers(0, len(SURVEY_CONTACTS), len(who))
    picks = rng.integers(0, 1000, len(who))
    answers = []
    for k in range(len(who)):
        mood = "low" if scores[k] <= 6 else ("high" if scores[k] >= 9 else "mid")
        comments = SURVEY_COMMENTS[mood]
        answers.append(SurveyAnswer(
            customer_id=int(ids[who[k]]), answered_on=as_of - timedelta(days=int(days[k])), score=int(scores[k]),
            contact=SURVEY_CONTACTS[contacts[k]], comment=comments[picks[k] % len(comments)],
            external_id=f"demo-nps-{k}",
        ))
    SurveyAnswer.objects.bulk_create(answers, batch_size=5000)
    return len(answers)
