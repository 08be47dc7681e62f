"""Reads about customers. `visible_customers` is the one place that decides who sees whom."""

from django.db.models import Count, QuerySet, Sum

from services.models import ServiceEvent

from .models import Customer, Transaction
from .roles import Role, role_of


def visible_customers(*, user) -> QuerySet[Customer]:
    """The customers this user may see: a sales rep their own, inside sales and managers all."""
    role = role_of(user)
    if role in (Role.MANAGER, Role.INSIDE_SALES):
        return Customer.objects.all()
    if role == Role.SALES_REP:
        return Customer.objects.filter(owner=user)
    return Customer.objects.none()


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
