"""Reads about customers that need no other app: the list filters' choices and the search.

Who sees whom is decided in customers.access.
"""

from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db.models import Q, QuerySet

from .access import visible_customers
from .models import Customer
from .roles import Role, role_of

FILTER_CHOICES_CACHE_SECONDS = 600


def customer_filter_choices(*, user) -> dict:
    """Owners, regions and industries for the list filters.

    Distinct regions/industries are one scan over all customers (or over a sales rep's
    book, ~200k customers at 1M) each, so they are cached for a few minutes, per rep.
    """
    role = role_of(user)

    def distinct(customers: QuerySet, column: str) -> list[str]:
        return list(customers.exclude(**{column: ""}).order_by(column).values_list(column, flat=True).distinct()[:500])

    if role == Role.SALES_REP:
        key = f"customers:filter-choices:owner:{user.pk}"
        cached = cache.get(key)
        if cached is None:
            own = Customer.objects.filter(owner=user)
            cached = {"regions": distinct(own, "region"), "industries": distinct(own, "industry")}
            cache.set(key, cached, FILTER_CHOICES_CACHE_SECONDS)
        return {"owners": [], **cached}

    cached = cache.get("customers:filter-choices")
    if cached is None:
        everyone = Customer.objects.all()
        cached = {"regions": distinct(everyone, "region"), "industries": distinct(everyone, "industry")}
        cache.set("customers:filter-choices", cached, FILTER_CHOICES_CACHE_SECONDS)
    owners = list(
        get_user_model().objects.filter(groups__name=Role.SALES_REP.value).order_by("last_name", "first_name", "username")
    )
    return {"owners": owners, **cached}


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
