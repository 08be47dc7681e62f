"""Plausibility limits for typed-in and imported data: pages, API and imports refuse the same."""

import datetime as dt

from django.utils import timezone

EARLIEST_DATE = dt.date(1990, 1, 1)
EARLIEST_ACQUISITION = dt.date(1900, 1, 1)
# Periods shown in pages end no later than this: month arithmetic past year 9999 overflows, and
# nothing the cockpit holds is dated after it.
LATEST_PERIOD_DATE = dt.date(2100, 12, 31)
MAX_AMOUNT = 100_000_000_000  # 1e11 in the company's currency
MAX_QUANTITY = 999_999.99


def latest_plausible_date() -> dt.date:
    """Tomorrow: time zones and late-evening exports may legitimately carry tomorrow's date."""
    return timezone.localdate() + dt.timedelta(days=1)
