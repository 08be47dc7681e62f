"""Money, percentages and quantities formatted for the active language.

`{{ amount|money }}` gives `1.234,56 €` in German and `€1,234.56` in English; the currency
is settings.CVM_CURRENCY, the one currency every amount in the database is kept in.
"""

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from django import template
from django.conf import settings
from django.utils import formats
from django.utils.translation import get_language, npgettext

register = template.Library()

CURRENCY_SYMBOLS = {"EUR": "€", "USD": "$", "GBP": "£", "CHF": "CHF", "JPY": "¥"}
# Languages that write the currency after the amount, separated by a no-break space.
SYMBOL_AFTER = {"de", "fr", "es", "it", "nl", "pl", "cs", "sv", "fi", "da", "nb"}
NBSP = "\u00a0"


def _decimal(value) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError, TypeError):
        return None


def _rounded(amount: Decimal, decimal_pos: int) -> Decimal:
    # number_format cuts surplus decimals off; commercial rounding first.
    return amount.quantize(Decimal(1).scaleb(-decimal_pos), rounding=ROUND_HALF_UP)


def grouped_number(amount: Decimal, decimal_pos: int, language: str | None) -> str:
    """Django's number_format(amount, decimal_pos, use_l10n=True, force_grouping=True) for an
    amount already rounded to decimal_pos places. Where the language groups digits by threes,
    Python's own grouping with the language's separators: a list page formats hundreds of
    amounts, and Django's digit-by-digit loop took half of each amount's 20 microseconds."""
    grouping = formats.get_format("NUMBER_GROUPING", language, use_l10n=True)
    if grouping != 3 or amount.adjusted() > 100:
        return formats.number_format(amount, decimal_pos=decimal_pos, use_l10n=True, force_grouping=True)
    if not amount:
        amount = abs(amount)  # Django writes a negative zero as 0
    separators = {
        ord(","): formats.get_format("THOUSAND_SEPARATOR", language, use_l10n=True),
        ord("."): formats.get_format("DECIMAL_SEPARATOR", language, use_l10n=True),
    }
    return f"{amount:,.{decimal_pos}f}".translate(separators)


def format_money(value, decimal_pos: int = 2, currency: str | None = None) -> str:
    amount = _decimal(value)
    if amount is None:
        return "–"
    amount = _rounded(amount, decimal_pos)
    currency = currency or settings.CVM_CURRENCY
    symbol = CURRENCY_SYMBOLS.get(currency, currency)
    active = get_language()
    number = grouped_number(abs(amount), decimal_pos, active)
    sign = "-" if amount < 0 else ""
    language = (active or settings.LANGUAGE_CODE).split("-")[0]
    if language in SYMBOL_AFTER:
        return f"{sign}{number}{NBSP}{symbol}"
    separator = NBSP if len(symbol) > 1 else ""
    return f"{sign}{symbol}{separator}{number}"


@register.filter
def money(value, decimal_pos=2):
    """An amount in the company's currency: `{{ x|money }}`, whole units with `{{ x|money:0 }}`."""
    return format_money(value, int(decimal_pos))


@register.filter
def percent(value, decimal_pos=0):
    """A share (0..1) as a percentage: `0.8` -> `80 %` (de) / `80%` (en)."""
    share = _decimal(value)
    if share is None:
        return "–"
    active = get_language()
    number = grouped_number(_rounded(share * 100, int(decimal_pos)), int(decimal_pos), active)
    language = (active or settings.LANGUAGE_CODE).split("-")[0]
    return f"{number}{NBSP}%" if language in SYMBOL_AFTER else f"{number}%"


@register.filter
def quantity(value, decimal_pos=2):
    """A quantity without trailing zeros: `1.00` -> `1`, `1.50` -> `1.5` / `1,5`."""
    amount = _decimal(value)
    if amount is None:
        return "–"
    normalized = amount.quantize(Decimal(1).scaleb(-int(decimal_pos))).normalize()
    places = max(0, -normalized.as_tuple().exponent)
    return formats.number_format(normalized, decimal_pos=places, use_l10n=True, force_grouping=True)


@register.filter
def unit_label(unit: str, amount=None) -> str:
    """A service type's unit, singular or plural for the amount: `1 hour`, `1.5 hours`."""
    one = _decimal(amount) == 1
    count = 1 if one else 2
    # A context of their own: "hour" and "day" are also the unit choices, without plural.
    labels = {
        "hour": npgettext("after a quantity", "hour", "hours", count),
        "day": npgettext("after a quantity", "day", "days", count),
        "occurrence": npgettext("after a quantity", "time", "times", count),
    }
    return labels.get(unit, unit)
