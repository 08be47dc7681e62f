"""Saved searches of the customer list: each user keeps their own, by name."""

from django.core.exceptions import ValidationError
from django.http import QueryDict
from django.utils.translation import gettext as _

from .models import SavedCustomerFilter

# What a saved filter keeps: the list's filters and sort, never the page number.
KEPT = ("q", "segment", "abc_class", "owner", "region", "industry", "sort")
MAX_PER_USER = 30


def saved_filters(*, user) -> list[SavedCustomerFilter]:
    return list(SavedCustomerFilter.objects.filter(user=user))


def filter_query(params: QueryDict) -> str:
    kept = QueryDict(mutable=True)
    for name in KEPT:
        value = (params.get(name) or "").strip()
        if value:
            kept[name] = value[:200]
    return kept.urlencode()


def save_filter(*, user, name: str, params: QueryDict) -> SavedCustomerFilter:
    """Save (or overwrite, by name) the current filters of the list under a name."""
    name = " ".join((name or "").split())[:60]
    if not name:
        raise ValidationError(_("Give the filter a name."))
    existing = SavedCustomerFilter.objects.filter(user=user, name=name).first()
    if existing is None and SavedCustomerFilter.objects.filter(user=user).count() >= MAX_PER_USER:
        raise ValidationError(_("You have %(n)d saved filters; delete one first.") % {"n": MAX_PER_USER})
    saved = existing or SavedCustomerFilter(user=user, name=name)
    saved.query = filter_query(params)
    saved.save()
    return saved


def delete_filter(*, user, pk: int) -> bool:
    deleted, _rows = SavedCustomerFilter.objects.filter(user=user, pk=pk).delete()
    return bool(deleted)
