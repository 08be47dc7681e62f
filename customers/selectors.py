"""Reads about customers that need no other app: the list filters' choices and the search.

Who sees whom is decided in customers.access.
"""

from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db.models import Exists, OuterRef, Q

from .access import sees_all_customers, visible_customers
from .models import Customer

# Distinct regions and industries are a scan over all customers (or a rep's book) each:
# ~0.1-0.2 s at 1M, so they are cached for a few minutes; a new region may show late.
FILTER_CHOICES_CACHE_SECONDS = 600


def filter_choices(*, owner_id: int | None = None) -> dict[str, list]:
    """Owners (pk, name), regions and industries among all customers, or one rep's book.

    The one source of the list's and the dashboard's filter choices, under one cache key each.
    """
    key = f"customers:filter-choices:{owner_id or 'all'}"
    choices = cache.get(key)
    if choices is not None:
        return choices
    customers = Customer.objects.filter(owner_id=owner_id) if owner_id else Customer.objects.all()

    def distinct(column: str) -> list[str]:
        return list(customers.exclude(**{column: ""}).order_by(column).values_list(column, flat=True).distinct()[:500])

    owners = []
    if owner_id is None:
        owners = [
            (user.pk, user.get_full_name() or user.get_username())
            # EXISTS probes the owner index once per user instead of joining every customer.
            for user in get_user_model().objects.filter(Exists(Customer.objects.filter(owner=OuterRef("pk"))))
            .order_by("last_name", "first_name", "username")
            .only("pk", "first_name", "last_name", "username")
        ]
    choices = {"owners": owners, "regions": distinct("region"), "industries": distinct("industry")}
    cache.set(key, choices, FILTER_CHOICES_CACHE_SECONDS)
    return choices


def customer_filter_choices(*, user) -> dict[str, list]:
    """The list filters' choices for this user: a sales rep gets the own book and no owners."""
    if sees_all_customers(user):
        return filter_choices()
    return filter_choices(owner_id=user.pk)


def search_customers(*, user, query: str, limit: int = 10) -> list[dict]:
    """Visible customers whose number or name starts with the query (the logging form's search)."""
    query = query.strip()
    if not query:
        return []
    matches = (
        visible_customers(user=user)
        .filter(Q(number__istartswith=query) | Q(name__istartswith=query))
        .order_by("name", "pk")
        .values("id", "number", "name")[:limit]
    )
    return list(matches)
