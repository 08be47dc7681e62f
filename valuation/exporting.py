"""Export of the latest customer values (both value dimensions) as CSV or Excel rows.

The command writes machine headers (field names). People get headers in their language and,
reading German, a CSV German Excel opens as it is: semicolons, decimal commas, a BOM.
"""

import datetime as dt
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal

from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _

from customers.access import visible_customers

from .models import segment_label
from .selectors import latest_values

COLUMNS = [
    ("customer_number", "customer__number"), ("name", "customer__name"), ("owner", "customer__owner__username"),
    ("region", "customer__region"), ("industry", "customer__industry"), ("as_of", "run__as_of"),
    ("segment", "segment"), ("abc_class", "abc_class"), ("revenue_window", "revenue_window"),
    ("margin_window", "margin_window"), ("value_to_customer", "value_to_customer"),
    ("profit_after_services", "profit_after_services"), ("revenue_lifetime", "revenue_lifetime"),
    ("margin_lifetime", "margin_lifetime"), ("clv", "clv"), ("clv_low", "clv_low"), ("clv_high", "clv_high"),
    ("p_alive", "p_alive"), ("expected_purchases", "expected_purchases"), ("referral_value", "referral_value"),
    ("share_of_supply", "share_of_supply"), ("service_count", "service_count"), ("service_hours", "service_hours"),
    ("clv_to_infinity", "clv_to_infinity"), ("median_lifetime_weeks", "median_lifetime_weeks"), ("basis", "basis"),
]
HEADER = [name for name, _lookup in COLUMNS]
HUMAN_HEADER = {
    "customer_number": _("Customer no."), "name": _("Customer"), "owner": _("Owner"), "region": _("Region"),
    "industry": _("Industry"), "as_of": _("Valued as of"), "segment": _("Segment"), "abc_class": _("ABC class"),
    "revenue_window": _("Revenue, window"), "margin_window": _("Margin, window"),
    "value_to_customer": _("Value to the customer (free services)"), "profit_after_services": _("Profit after services"),
    "revenue_lifetime": _("Revenue, lifetime"), "margin_lifetime": _("Margin, lifetime"), "clv": _("CLV"),
    "clv_low": _("CLV, low end of range"), "clv_high": _("CLV, high end of range"), "p_alive": _("Probability still active"),
    "expected_purchases": _("Expected purchases"), "referral_value": _("Referral value"),
    "share_of_supply": _("Share of supply"), "service_count": _("Services given"), "service_hours": _("Time given (hours)"),
    "clv_to_infinity": _("Value to infinity (discounted)"), "median_lifetime_weeks": _("Median remaining lifetime (weeks)"),
    "basis": _("Basis of the value"),
}
SEGMENT_COLUMN = HEADER.index("segment")


def human_header() -> list[str]:
    """The column heads in the active language."""
    return [str(HUMAN_HEADER[name]) for name in HEADER]


@dataclass(frozen=True)
class CsvFormat:
    """How a spreadsheet of the reader's language expects a CSV file."""

    delimiter: str = ","
    decimal_comma: bool = False
    bom: str = ""

    @classmethod
    def for_language(cls, language: str | None = None) -> "CsvFormat":
        if (language or get_language() or "en").split("-")[0] == "de":
            # German Excel splits on semicolons and reads 2,5 as a number; the BOM makes it read UTF-8.
            return cls(delimiter=";", decimal_comma=True, bom="\ufeff")
        return cls()

    def cell(self, value) -> str:
        if value is None:
            return ""
        if isinstance(value, (Decimal, float)):
            text = format(value, "f") if isinstance(value, Decimal) else repr(value)
            return text.replace(".", ",") if self.decimal_comma else text
        if isinstance(value, dt.date):
            return value.strftime("%d.%m.%Y") if self.decimal_comma else value.isoformat()
        return str(value)


def human_rows(rows: Iterable[tuple]) -> Iterator[list]:
    """Rows for people: the segment by its name in the active language."""
    for row in rows:
        row = list(row)
        row[SEGMENT_COLUMN] = str(segment_label(row[SEGMENT_COLUMN])) if row[SEGMENT_COLUMN] else ""
        yield row

# A spreadsheet runs a cell that starts with one of these as a formula (=HYPERLINK(...), +cmd|...,
# @SUM(...)); tab and carriage return hide the start of such a cell from a quick look.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(cell):
    """A text cell a spreadsheet shows as text: a leading apostrophe keeps it from running as a
    formula (OWASP's advice for CSV injection). Numbers, dates and empty cells stay as they are."""
    if isinstance(cell, str) and cell.startswith(FORMULA_STARTS):
        return "'" + cell
    return cell


def value_rows(*, user=None) -> Iterator[tuple]:
    """The latest completed run's values, one tuple per customer, streamed from the database.

    ``user=None`` (the command) exports every customer; otherwise those the user may see.
    Every export (page CSV, page xlsx, the command) reads its rows here, so every text cell is
    made spreadsheet-safe in this one place.
    """
    values = latest_values()
    if user is not None:
        values = values.filter(customer__in=visible_customers(user=user))
    rows = values.order_by("customer__number").values_list(*(lookup for _, lookup in COLUMNS))
    for row in rows.iterator(chunk_size=5000):
        yield tuple(spreadsheet_safe(cell) for cell in row)


def write_xlsx(target, *, user=None, for_people: bool = False) -> int:
    """Write the values to an .xlsx file (openpyxl write-only mode: memory stays flat).

    `for_people`: headers and segment names in the active language (the web download).
    """
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    sheet = book.create_sheet(str(_("customer values")) if for_people else "customer values")
    sheet.append(human_header() if for_people else HEADER)
    count = 0
    rows = value_rows(user=user)
    for row in human_rows(rows) if for_people else rows:
        sheet.append(list(row))
        count += 1
    book.save(target)
    return count
