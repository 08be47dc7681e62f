"""Saving and deleting the customer list's named filters (the list itself is in views.py)."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from customers.access import any_role

from . import saved_filters


@any_role
@require_POST
def save_filter(request):
    try:
        saved = saved_filters.save_filter(user=request.user, name=request.POST.get("name", ""), params=request.POST)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
        query = saved_filters.filter_query(request.POST)
        return redirect(reverse("customers:list") + (f"?{query}" if query else ""))
    messages.success(request, _("Filter “%(name)s” saved.") % {"name": saved.name})
    return redirect(reverse("customers:list") + (f"?{saved.query}" if saved.query else ""))


@any_role
@require_POST
def delete_filter(request, pk: int):
    if saved_filters.delete_filter(user=request.user, pk=pk):
        messages.success(request, _("Saved filter deleted."))
    return redirect("customers:list")
