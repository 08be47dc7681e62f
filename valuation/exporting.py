"""Export of the latest customer values (both value dimensions) as CSV or Excel rows."""

from collections.abc import Iterator

from customers.access import visible_customers

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
HEADER = [name for name, _ in COLUMNS]


def value_rows(*, user=None) -> Iterator[tuple]:
    """The latest completed run's values, one tuple per customer, streamed from the database.

    ``user=None`` (the command) exports every customer; otherwise those the user may see.
    """
    values = latest_values()
    if user is not None:
        values = values.filter(customer__in=visible_customers(user=user))
    rows = values.order_by("customer__number").values_list(*(lookup for _, lookup in COLUMNS))
    yield from rows.iterator(chunk_size=5000)


def write_xlsx(target, *, user=None) -> int:
    """Write the values to an .xlsx file (openpyxl write-only mode: memory stays flat)."""
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    sheet = book.create_sheet("customer values")
    sheet.append(HEADER)
    count = 0
    for row in value_rows(user=user):
        sheet.append(list(row))
        count += 1
    book.save(target)
    return count
