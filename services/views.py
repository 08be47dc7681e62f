from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import formats
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from core.templatetags.money import format_money
from customers.access import any_role, can_change_entry, visible_customers
from customers.selectors import search_customers

from . import services
from .forms import ServiceEventForm
from .models import ServiceEvent
from .selectors import recent_service_events, service_event_changes, service_event_value


def _next_url(request, default: str) -> str:
    """Where to go after saving: a same-site `next`, or the default."""
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return target
    return default


def _visible_event(request, pk: int) -> ServiceEvent:
    """An event of a customer the user may see; any other answers 404."""
    events = ServiceEvent.objects.select_related("customer", "service_type", "logged_by").filter(
        customer__in=visible_customers(user=request.user)
    )
    return get_object_or_404(events, pk=pk)


def _save_errors_to_form(form, error: ValidationError) -> None:
    for field, messages_ in error.message_dict.items() if hasattr(error, "error_dict") else [(None, error.messages)]:
        for message in messages_:
            form.add_error(field if field in form.fields else None, message)


@any_role
def log_service(request):
    """Log a free service; after saving, come back to an empty form (post/redirect/get)."""
    log_url = reverse("services:log")
    if request.method == "POST":
        form = ServiceEventForm(request.POST, user=request.user)
        if form.is_valid():
            try:
                event = services.log_service_event(
                    user=request.user,
                    customer=form.cleaned_data["customer"],
                    service_type=form.cleaned_data["service_type"],
                    date=form.cleaned_data["date"],
                    quantity=form.cleaned_data["quantity"],
                    note=form.cleaned_data["note"],
                )
            except ValidationError as error:
                _save_errors_to_form(form, error)
            else:
                messages.success(
                    request,
                    _("Logged %(service)s for %(customer)s, valued at %(cost)s.")
                    % {
                        "service": event.service_type.display_name,
                        "customer": event.customer,
                        "cost": format_money(service_event_value(event)),
                    },
                )
                return redirect(_next_url(request, log_url))
    else:
        form = ServiceEventForm(user=request.user)
    return render(
        request,
        "services/log.html",
        {
            "form": form,
            "recent": recent_service_events(user=request.user),
            "next": _next_url(request, ""),
        },
    )


@require_GET
@any_role
def customer_search(request):
    """Visible customers by number or name prefix, at most 10, for the logging form."""
    matches = search_customers(user=request.user, query=request.GET.get("q", "")[:100])
    return JsonResponse({"results": [{**m, "label": f"{m['number']} — {m['name']}"} for m in matches]})


@any_role
def edit_service_event(request, pk: int):
    event = _visible_event(request, pk)
    if not can_change_entry(request.user, logged_by_id=event.logged_by_id):
        raise PermissionDenied
    if request.method == "POST":
        form = ServiceEventForm(request.POST, user=request.user, event=event, multiline_note=True)
        if form.is_valid():
            try:
                services.update_service_event(user=request.user, event=event, **form.cleaned_data)
            except ValidationError as error:
                _save_errors_to_form(form, error)
            else:
                messages.success(
                    request,
                    _("Changed the entry: %(service)s for %(customer)s, now valued at %(cost)s.")
                    % {
                        "service": event.service_type.display_name,
                        "customer": event.customer,
                        "cost": format_money(service_event_value(event)),
                    },
                )
                return redirect(_next_url(request, reverse("services:log")))
    else:
        form = ServiceEventForm(user=request.user, event=event, multiline_note=True)
    return render(request, "services/event_form.html", {"form": form, "event": event, "next": _next_url(request, "")})


@any_role
def delete_service_event(request, pk: int):
    event = _visible_event(request, pk)
    if not can_change_entry(request.user, logged_by_id=event.logged_by_id):
        raise PermissionDenied
    if request.method == "POST":
        description = _("%(service)s for %(customer)s on %(date)s") % {
            "service": event.service_type.display_name,
            "customer": event.customer,
            "date": formats.date_format(event.date, "SHORT_DATE_FORMAT"),
        }
        services.delete_service_event(user=request.user, event=event)
        messages.success(request, _("Deleted the entry %(entry)s. Its history is kept.") % {"entry": description})
        return redirect(_next_url(request, reverse("services:log")))
    return render(
        request,
        "services/event_confirm_delete.html",
        {"event": event, "value": service_event_value(event), "next": _next_url(request, "")},
    )


@any_role
def service_event_history(request, pk: int):
    event = _visible_event(request, pk)
    entries = service_event_changes(event=event, customers=visible_customers(user=request.user))
    return render(
        request,
        "services/event_history.html",
        {"event": event, "entries": entries, "may_change": can_change_entry(request.user, logged_by_id=event.logged_by_id)},
    )
