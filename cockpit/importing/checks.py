"""The vectorised checks of a batch of rows, and the problem texts shared with the SQL checks."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from core.csvfile import (
    detect_decimal_comma,
)
from core.plausibility import EARLIEST_DATE, MAX_AMOUNT, latest_plausible_date

from .results import ImportResult

# --- problem texts --------------------------------------------------------------------------------
# Shared by the pandas checks and the SQL checks, so both paths name a problem the same way.
# Built while a request (or a command) runs, so they come in its language.

UNKNOWN_TEXTS = {
    "customer number": gettext_lazy("Unknown customer number “%(value)s”."),
    "service type": gettext_lazy("Unknown service type “%(value)s”."),
    "user": gettext_lazy("Unknown user “%(value)s”."),
}


def too_long(max_length: int) -> str:
    return _("Longer than %(n)s characters.") % {"n": max_length}


def date_problems(earliest: dt.date) -> dict[str, str]:
    latest = latest_plausible_date()
    return {
        "required": _("A date is required."),
        "format": _("Not a date: use YYYY-MM-DD or DD.MM.YYYY."),
        "calendar": _("No such day in the calendar."),
        "early": _("Implausible date: before %(date)s.") % {"date": earliest.isoformat()},
        "late": _("Implausible date: after %(date)s (in the future).") % {"date": latest.isoformat()},
    }


def amount_problems(*, minimum: float, maximum: float, positive: bool = False) -> dict[str, str]:
    if positive:
        below = _("Must be positive.")
    else:
        below = _("Must not be below %(n)s.") % {"n": f"{minimum:,.0f}"} if minimum else _("Must not be negative.")
    return {
        "required": _("An amount is required."),
        "number": _("Not a number."),
        "decimals": _("More than 2 decimal places."),
        "below": below,
        "above": _("Implausibly large: above %(n)s.") % {"n": f"{maximum:,.2f}"},
    }


# --- vectorised checks ---------------------------------------------------------------------------


class Checker:
    """Checks and converts the str columns of one chunk; every problem goes to the result.

    Each column is factorised first and checked once per distinct value: dates, customer
    numbers and codes repeat a lot, so most checks touch a few thousand values per chunk.
    """

    def __init__(self, frame: pd.DataFrame, result: ImportResult, context: dict):
        self.frame = frame
        self.result = result
        self.context = context
        self.bad = np.zeros(len(frame), dtype=bool)
        self.lines = frame["line"]

    def distinct(self, column: str) -> tuple[np.ndarray, pd.Series]:
        codes, uniques = pd.factorize(self.frame[column], use_na_sentinel=False)
        return codes, pd.Series(uniques, dtype=object)

    def fail(self, codes: np.ndarray | None, mask: pd.Series, column: str, message) -> None:
        """``mask`` over the distinct values (expanded through ``codes``) or, without codes, over the rows."""
        mask = mask.fillna(False).astype(bool).to_numpy()
        if not mask.any():
            return
        rows = mask[codes] if codes is not None else mask
        if isinstance(message, pd.Series):
            message = pd.Series(message.to_numpy()[codes] if codes is not None else message.to_numpy())[rows]
            message.index = self.lines[rows].index
        self.result.add_errors(self.lines[rows], column, message)
        self.bad |= rows

    def text(self, column: str, *, max_length: int, required: bool = False) -> np.ndarray:
        codes, values = self.distinct(column)
        if required:
            self.fail(codes, values == "", column, _("A value is required."))
        self.fail(codes, values.str.len() > max_length, column, too_long(max_length))
        return values.to_numpy()[codes]

    def date(self, column: str, *, required: bool, earliest: dt.date = EARLIEST_DATE) -> np.ndarray:
        codes, values = self.distinct(column)
        problems = date_problems(earliest)
        empty = values == ""
        if required:
            self.fail(codes, empty, column, problems["required"])
        # [0-9], not \d: Python's \d takes the digits of every script, PostgreSQL's check only these.
        iso = values.str.fullmatch(r"[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}")
        german = values.str.fullmatch(r"[0-9]{1,2}\.[0-9]{1,2}\.[0-9]{4}")
        self.fail(codes, ~empty & ~iso & ~german, column, problems["format"])
        # Seconds, not nanoseconds: any year from 1 to 9999 parses (and is then judged implausible);
        # there is no year 0.
        parsed = pd.Series(pd.NaT, index=values.index, dtype="datetime64[s]")
        iso_parsable, german_parsable = iso & ~values.str.startswith("0000"), german & ~values.str.endswith("0000")
        if iso_parsable.any():
            parsed[iso_parsable] = pd.to_datetime(values[iso_parsable], format="%Y-%m-%d", errors="coerce").astype("datetime64[s]")
        if german_parsable.any():
            parsed[german_parsable] = pd.to_datetime(values[german_parsable], format="%d.%m.%Y", errors="coerce").astype("datetime64[s]")
        self.fail(codes, (iso | german) & parsed.isna(), column, problems["calendar"])
        self.fail(codes, parsed < pd.Timestamp(earliest), column, problems["early"])
        self.fail(codes, parsed > pd.Timestamp(latest_plausible_date()), column, problems["late"])
        return parsed.dt.strftime("%Y-%m-%d").where(parsed.notna(), None).to_numpy()[codes]

    def amount(
        self, column: str, *, required: bool, minimum: float, maximum: float = MAX_AMOUNT, default: str | None = None,
        positive: bool = False,
    ) -> np.ndarray:
        codes, values = self.distinct(column)
        problems = amount_problems(minimum=minimum, maximum=maximum, positive=positive)
        empty = values == ""
        if required:
            self.fail(codes, empty, column, problems["required"])
        if "decimal_comma" not in self.context:
            self.context["decimal_comma"] = detect_decimal_comma(values[~empty], delimiter=self.result.delimiter)
            self.result.decimal_comma = self.context["decimal_comma"]
        # One translate pass: drop thousands separators, make the decimal separator a point.
        table = str.maketrans(",", ".", ".") if self.context["decimal_comma"] else str.maketrans("", "", ",")
        cleaned = values.str.translate(table)
        # [0-9], not \d: other scripts' digits are no number here (nor in PostgreSQL's check), and
        # would be written as they stand, text in a number column.
        valid = cleaned.str.fullmatch(r"[-+]?[0-9]+(\.[0-9]{1,2})?")
        if not valid[~empty].all():
            # Rare: currency signs or spaces inside the number; look closer only at these values.
            odd = ~valid & ~empty
            cleaned[odd] = cleaned[odd].str.replace(r"[\s\u00a0\u202f\u2009€$']|EUR", "", regex=True)
            valid = cleaned.str.fullmatch(r"[-+]?[0-9]+(\.[0-9]{1,2})?")
            number = cleaned.str.fullmatch(r"[-+]?[0-9]+(\.[0-9]+)?")
            self.fail(codes, ~empty & ~number, column, problems["number"])
            self.fail(codes, number & ~valid, column, problems["decimals"])
        numeric = pd.to_numeric(cleaned.where(valid), errors="coerce")
        self.fail(codes, numeric <= 0 if positive else numeric < minimum, column, problems["below"])
        self.fail(codes, numeric > maximum, column, problems["above"])
        if default is not None:
            cleaned = cleaned.where(~empty, default)
        return cleaned.where(valid | (empty & (default is not None)), None).to_numpy()[codes]

    def choice(self, column: str, choices, *, default: str) -> np.ndarray:
        """A TextChoices value given as its code or its label, in any case."""
        lookup = {}
        for value, label in choices:
            lookup[value.lower()] = value
            lookup[str(label).lower()] = value
            lookup[value.replace("_", " ")] = value
        codes, values = self.distinct(column)
        values = values.str.lower()
        mapped = values.map(lookup)
        empty = values == ""
        allowed = ", ".join(value for value, _ in choices)
        self.fail(codes, ~empty & mapped.isna(), column, _("Unknown value; allowed: %(allowed)s.") % {"allowed": allowed})
        return mapped.where(~empty, default).to_numpy()[codes]

    def lookup(self, column: str, mapping: dict, *, what: str, required: bool) -> np.ndarray:
        codes, values = self.distinct(column)
        empty = values == ""
        if required:
            self.fail(codes, empty, column, _("A value is required."))
        ids = values.map(mapping)
        unknown = ~empty & ids.isna()
        if unknown.any():
            unknown_text = str(UNKNOWN_TEXTS.get(what) or _("Unknown value “%(value)s”."))
            messages = pd.Series("", index=values.index, dtype=object)
            messages[unknown] = values[unknown].map(lambda value: unknown_text % {"value": value})
            self.fail(codes, unknown, column, messages)
        return ids.to_numpy(dtype=object)[codes]

    def rows_failed(self, mask, column: str, message: str) -> None:
        self.fail(None, pd.Series(mask), column, message)

    def good(self) -> np.ndarray:
        return ~self.bad
