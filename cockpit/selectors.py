"""Reads for the pages that combine customers, services and values: the start page, the
customer list with value columns, and the cockpit of one customer."""

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

from dateutil.relativedelta import relativedelta
from dateutil.rrule import MONTHLY, rrule
from django.db.models import Count, DecimalField, F, FilteredRelation, Q, QuerySet, Sum
from django.utils import timezone

from customers.access import sees_money, visible_customers
from customers.models import Customer, Transaction
from services.models import ServiceEvent, ServiceType, localized_name
from services.selectors import VALUE_FIELD, service_event_value, standard_cost_expression
from valuation.engine.settings import EngineSettings
from valuation.models import CustomerValue, ValuationRun, segment_label, segment_strategy
from valuation.selectors import latest_completed_run

MONEY_FIELD = DecimalField(max_digits=16, decimal_places=2)


def company_overview(*, user) -> dict:
    """Head counts for the start page, each one aggregate query."""
    customers = visible_customers(user=user)
    transactions = Transaction.objects.filter(customer__in=customers)
    events = ServiceEvent.objects.filter(customer__in=customers)
    return {
        "customers": customers.count(),
        "lost_customers": customers.filter(status=Customer.Status.LOST).count(),
        **transactions.aggregate(transactions=Count("id"), revenue=Sum("revenue")),
        "service_events": events.count(),
    }


# --- Cockpit reads: customer list, cockpit, search -------------------------------------------

# Value columns of the latest run, by the name the list uses for them. `money` columns are
# figures of the value FROM the customer: inside sales never sees them, nor sorts by them
# (a sort order would leak the ranking).
VALUE_COLUMNS = {
    "segment": ("segment", False),
    "abc_class": ("abc_class", False),
    "revenue_window": ("revenue_window", True),
    "margin_window": ("margin_window", True),
    "profit_after_services": ("profit_after_services", True),
    "clv": ("clv", True),
    "p_alive": ("p_alive", True),
    "value_to_customer": ("value_to_customer", False),
    "service_count": ("service_count", False),
}
CUSTOMER_SORTS = {"name": "name", "number": "number"} | {key: f"latest__{field}" for key, (field, _m) in VALUE_COLUMNS.items()}
MONEY_SORTS = {key for key, (_f, is_money) in VALUE_COLUMNS.items() if is_money}
LIST_PAGE_SIZE = 25


def allowed_sorts(*, user) -> list[str]:
    return [key for key in CUSTOMER_SORTS if sees_money(user) or key not in MONEY_SORTS]


class PageNumbers:
    """Numbering of a page of rows without a COUNT(*): needs rows, number and page_size."""

    @property
    def has_previous(self) -> bool:
        return self.number > 1

    @property
    def first_index(self) -> int:
        return (self.number - 1) * self.page_size + 1

    @property
    def last_index(self) -> int:
        return self.first_index + len(self.rows) - 1


@dataclass
class CustomerPage(PageNumbers):
    """One page of the customer list, without a COUNT(*) over all customers."""

    rows: list
    number: int
    page_size: int
    has_next: bool
    run: ValuationRun | None



def filtered_customers(*, user, search: str = "", segment: str = "", abc_class: str = "", owner_id: int | None = None,
                       region: str = "", industry: str = "", run: ValuationRun | None = None,
                       valued: bool | None = None) -> QuerySet[Customer]:
    """Visible customers matching the list filters, with the given run's value columns.

    `valued`: True keeps only the customers the run valued, False only those it did not.

    Every condition on the run's row goes into one filter() call made before the value
    columns are annotated, so the query joins that row once: a reverse relation filtered in
    a later call is joined a second time, and ordering by the first (outer) join's column
    then forced a sort of all customers instead of a walk down the (run, column) index.
    """
    customers = visible_customers(user=user).select_related("owner")
    search = search.strip()
    if search:
        customers = customers.filter(Q(number__istartswith=search) | Q(name__icontains=search))
    if owner_id:
        customers = customers.filter(owner_id=owner_id)
    if region:
        customers = customers.filter(region=region)
    if industry:
        customers = customers.filter(industry=industry)
    customers = customers.alias(latest=FilteredRelation("values", condition=Q(values__run_id=run.pk if run else 0)))
    row = Q()
    if segment:
        row &= Q(latest__segment=segment)
    if abc_class:
        row &= Q(latest__abc_class=abc_class)
    if valued is not None:
        row &= Q(latest__id__isnull=not valued)
    if row:
        customers = customers.filter(row)
    return customers.annotate(
        **{f"v_{key}": F(f"latest__{field}") for key, (field, _m) in VALUE_COLUMNS.items()},
        # The CLV range is shown, not sorted by (no index walks it).
        v_clv_low=F("latest__clv_low"), v_clv_high=F("latest__clv_high"),
    )


def customer_list_page(*, user, filters: dict, sort: str = "name", page: int = 1,
                       page_size: int = LIST_PAGE_SIZE) -> CustomerPage:
    """A page of the customer list, sorted by a name or any value column.

    Sorting by a value column walks the valued customers first, down the run's
    (run, column, customer) index, and appends the customers the latest run has not valued
    yet, so they are still listed, last, in name order. Ties are broken by the customer id
    in the sort's own direction, so one index serves both directions.
    """
    run = latest_completed_run()
    descending = sort.startswith("-")
    key = sort.lstrip("-")
    if key not in allowed_sorts(user=user):
        key, descending = "name", False
    field = CUSTOMER_SORTS[key]
    offset = (page - 1) * page_size
    wanted = page_size + 1  # one more row tells whether a next page exists
    if not field.startswith("latest__"):
        ordering = [f"-{field}" if descending else field, "-pk" if descending else "pk"]
        customers = filtered_customers(user=user, run=run, **filters)
        rows = list(customers.order_by(*ordering)[offset : offset + wanted])
    else:
        ordering = [F(field).desc(), "-pk"] if descending else [F(field).asc(), "pk"]
        valued = filtered_customers(user=user, run=run, valued=True, **filters) if run else None
        rows = list(valued.order_by(*ordering)[offset : offset + wanted]) if run else []
        if len(rows) < wanted:
            # Past the valued customers: continue with the not-yet-valued ones.
            valued_total = offset + len(rows) if rows or offset == 0 or not run else valued.count()
            unvalued = filtered_customers(user=user, run=run, valued=False, **filters).order_by("name", "pk")
            start = max(0, offset - valued_total)
            rows += list(unvalued[start : start + wanted - len(rows)])
    for row in rows:
        row.v_segment_label = segment_label(row.v_segment)
    return CustomerPage(rows=rows[:page_size], number=page, page_size=page_size, has_next=len(rows) > page_size, run=run)


# --- The cockpit of one customer ------------------------------------------------------------


def default_period(*, today: dt.date | None = None, months: int = 12) -> tuple[dt.date, dt.date]:
    """The last `months` months up to today, both days included (the valuation's window)."""
    today = today or timezone.localdate()
    start = today - relativedelta(months=months) + dt.timedelta(days=1)
    return start, today


def _months(start: dt.date, end: dt.date) -> list[dt.date]:
    """The first day of every month from start's to end's."""
    return [day.date() for day in rrule(MONTHLY, dtstart=start.replace(day=1), until=end.replace(day=1))]


def previous_period(start: dt.date, end: dt.date) -> tuple[dt.date, dt.date]:
    """The period of the same length just before."""
    length = (end - start).days + 1
    return start - dt.timedelta(days=length), start - dt.timedelta(days=1)


@dataclass
class PeriodRollup:
    """A customer's purchases per day and free services per type and day, over the chosen
    period and the one of the same length before it: the cockpit's monthly chart, services by
    type and period figures are summed from these rows instead of five grouped queries of
    their own (each compiled and sent separately: ~7 ms of a cockpit view)."""

    start: dt.date
    end: dt.date
    before_start: dt.date
    before_end: dt.date
    purchase_days: list[dict]  # date, day_revenue, day_margin
    service_days: list[dict]  # service_type_id, date, count, units, value, type names, unit, sort_order

    def purchases_between(self, first: dt.date, last: dt.date) -> list[dict]:
        return [row for row in self.purchase_days if first <= row["date"] <= last]

    def services_between(self, first: dt.date, last: dt.date) -> list[dict]:
        return [row for row in self.service_days if first <= row["date"] <= last]


def _services_by_type(events, *by: str):
    """Services per type (and per ``by`` columns): number, units (quantity) and standard-cost
    value, with the type's names, unit and sort order."""
    return events.values(
        "service_type_id",
        *by,
        type_name=F("service_type__name"),
        type_name_de=F("service_type__name_de"),
        unit=F("service_type__unit"),
        sort_order=F("service_type__sort_order"),
    ).annotate(
        count=Count("id"),
        value=Sum(F("quantity") * standard_cost_expression(), output_field=VALUE_FIELD),
        units=Sum("quantity"),
    )


def period_rollup(*, customer_id: int, start: dt.date, end: dt.date) -> PeriodRollup:
    """Two grouped queries on the customer's (customer, date) indexes, whatever the period."""
    before_start, before_end = previous_period(start, end)
    purchase_days = (
        Transaction.objects.filter(customer_id=customer_id, date__range=(before_start, end))
        .values("date")
        .annotate(day_revenue=Sum("revenue", output_field=MONEY_FIELD),
                  day_margin=Sum(F("revenue") - F("cost_of_goods"), output_field=MONEY_FIELD))
        .order_by()
    )
    service_days = _services_by_type(
        ServiceEvent.objects.filter(customer_id=customer_id, date__range=(before_start, end)), "date"
    ).order_by()
    return PeriodRollup(start=start, end=end, before_start=before_start, before_end=before_end,
                        purchase_days=list(purchase_days), service_days=list(service_days))


def monthly_margin_and_service_cost(rollup: PeriodRollup) -> list[dict]:
    """Per month of the period: margin from transactions and standard cost of free services."""
    margin_by_month, cost_by_month = {}, {}
    for row in rollup.purchases_between(rollup.start, rollup.end):
        month = row["date"].replace(day=1)
        margin_by_month[month] = margin_by_month.get(month, Decimal(0)) + (row["day_margin"] or Decimal(0))
    for row in rollup.services_between(rollup.start, rollup.end):
        month = row["date"].replace(day=1)
        cost_by_month[month] = cost_by_month.get(month, Decimal(0)) + (row["value"] or Decimal(0))
    return [
        {"month": month, "margin": margin_by_month.get(month, Decimal(0)), "service_cost": cost_by_month.get(month, Decimal(0)),
         "bought": month in margin_by_month}
        for month in _months(rollup.start, rollup.end)
    ]


def service_totals_from(rollup: PeriodRollup) -> list[dict]:
    """service_totals_by_type's rows, summed from the rollup's days in the period."""
    totals: dict[int, dict] = {}
    for row in rollup.services_between(rollup.start, rollup.end):
        total = totals.setdefault(row["service_type_id"], {
            "service_type_id": row["service_type_id"], "type_name": row["type_name"], "type_name_de": row["type_name_de"],
            "unit": row["unit"], "sort_order": row["sort_order"], "count": 0, "value": Decimal(0), "units": Decimal(0),
        })
        total["count"] += row["count"]
        total["value"] += row["value"] or Decimal(0)
        total["units"] += row["units"] or Decimal(0)
    rows = sorted(totals.values(), key=lambda row: (row["sort_order"], row["type_name"]))
    for row in rows:
        row["type_name"] = localized_name(row["type_name"], row.pop("type_name_de"))
    return rows


TRANSACTION_PAGE_SIZE = 25


@dataclass
class TransactionPage(PageNumbers):
    """One page of a customer's purchases in a period, newest first (no COUNT(*) over them)."""

    rows: list
    number: int
    page_size: int
    has_next: bool
    search: str



def transaction_page(*, customer_id: int, start: dt.date, end: dt.date, search: str = "", page: int = 1,
                     page_size: int = TRANSACTION_PAGE_SIZE) -> TransactionPage:
    """The customer's transactions in the period, filtered by product, channel or document
    number, one page at a time: one query, whatever the customer's history (the (customer,
    date) index serves the order)."""
    page = max(1, min(int(page or 1), 100000))
    search = (search or "").strip()[:100]
    rows = Transaction.objects.filter(customer_id=customer_id, date__range=(start, end))
    if search:
        rows = rows.filter(Q(product__icontains=search) | Q(channel__icontains=search) | Q(external_id__icontains=search))
    rows = rows.order_by("-date", "-id")  # Transaction.margin is a property: revenue less cost of goods
    offset = (page - 1) * page_size
    found = list(rows[offset : offset + page_size + 1])
    return TransactionPage(rows=found[:page_size], number=page, page_size=page_size,
                           has_next=len(found) > page_size, search=search)


def service_history(*, customer_id: int, start: dt.date, end: dt.date, limit: int = 500) -> tuple[list, bool]:
    """The customer's services in the period, newest first, each valued; and whether it was cut."""
    events = service_event_value(
        ServiceEvent.objects.filter(customer_id=customer_id, date__range=(start, end))
        .select_related("service_type", "logged_by")
        .order_by("-date", "-id")
    )
    rows = list(events[: limit + 1])
    return rows[:limit], len(rows) > limit


def service_totals_by_type(*, customer_id: int, start: dt.date, end: dt.date) -> list[dict]:
    """Per service type in the period: number of services, units (quantity) and standard-cost value."""
    rows = list(_services_by_type(
        ServiceEvent.objects.filter(customer_id=customer_id, date__range=(start, end))
    ).order_by("sort_order", "type_name"))
    for row in rows:
        row["type_name"] = localized_name(row["type_name"], row.pop("type_name_de"))
    return rows


def value_history(*, customer_id: int, limit: int = 800) -> list[dict]:
    """The customer's figures in every completed run, oldest first (runs are kept ~2 years)."""
    rows = (
        CustomerValue.objects.filter(customer_id=customer_id, run__status=ValuationRun.Status.COMPLETED)
        .order_by("-run__as_of", "-run_id")
        .values("run__as_of", "clv", "clv_low", "clv_high", "margin_window", "value_to_customer", "segment", "abc_class")
    )[:limit]
    return list(reversed(rows))


def segment_changes(history: list[dict]) -> list[dict]:
    """The runs in which the customer moved to another segment."""
    changes, previous = [], None
    for row in history:
        if previous is not None and row["segment"] != previous:
            changes.append({
                "as_of": row["run__as_of"],
                "from": previous,
                "to": row["segment"],
                "from_label": segment_label(previous),
                "to_label": segment_label(row["segment"]),
            })
        previous = row["segment"]
    return changes


def latest_customer_value(*, customer_id: int) -> CustomerValue | None:
    """The customer's row of the most recent completed run that valued it."""
    return (
        CustomerValue.objects.filter(customer_id=customer_id, run__status=ValuationRun.Status.COMPLETED)
        .select_related("run")
        .order_by("-run__as_of", "-run__finished_at", "-run_id")
        .first()
    )


@dataclass
class Cockpit:
    customer: Customer
    value: CustomerValue | None
    start: dt.date
    end: dt.date
    months: list[dict]
    history: list[dict]
    segment_changes: list[dict]
    services: list
    services_truncated: bool
    totals_by_type: list[dict]
    services_total: Decimal
    window_by_type: list[dict] = field(default_factory=list)
    rollup: PeriodRollup | None = None

    @property
    def bought_in_period(self) -> bool:
        return any(row.get("bought") for row in self.months)

    @property
    def chart_is_empty(self) -> bool:
        """Nothing bought and no free service in the period: a chart would be a flat line."""
        return not self.bought_in_period and not any(row["service_cost"] for row in self.months)

    @property
    def never_bought(self) -> bool:
        """Valued, but without a single purchase so far: the model's figures are no forecast."""
        return bool(self.value) and not self.value.revenue_lifetime and not self.value.margin_lifetime

    @property
    def interval_share(self) -> float:
        """How many outcomes the CLV range covers (0.8 for the 10th to 90th percentile)."""
        settings = self.value.run.engine_settings if self.value else EngineSettings()
        return settings.interval_high - settings.interval_low

    @property
    def strategy(self) -> str:
        return segment_strategy(self.value.segment) if self.value else ""


def customer_cockpit(*, customer: Customer, start: dt.date, end: dt.date) -> Cockpit:
    """Everything the cockpit page shows, in a fixed number of queries."""
    value = latest_customer_value(customer_id=customer.pk)
    history = value_history(customer_id=customer.pk) if value else []
    services, truncated = service_history(customer_id=customer.pk, start=start, end=end)
    rollup = period_rollup(customer_id=customer.pk, start=start, end=end)
    totals = service_totals_from(rollup)
    window_by_type = []
    if value and value.value_to_by_type:
        names = {t.code: t for t in ServiceType.objects.filter(code__in=list(value.value_to_by_type))}
        window_by_type = sorted(
            (
                {"code": code, "name": names[code].display_name if code in names else code, "value": Decimal(str(cost)),
                 "sort_order": names[code].sort_order if code in names else 999}
                for code, cost in value.value_to_by_type.items()
            ),
            key=lambda row: (-row["value"], row["sort_order"]),
        )
    return Cockpit(
        customer=customer,
        value=value,
        start=start,
        end=end,
        months=monthly_margin_and_service_cost(rollup),
        history=history,
        segment_changes=segment_changes(history),
        services=services,
        services_truncated=truncated,
        totals_by_type=totals,
        services_total=sum((row["value"] or Decimal(0) for row in totals), Decimal(0)),
        window_by_type=window_by_type,
        rollup=rollup,
    )
