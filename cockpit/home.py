"""The start page per role: a rep's worklist, a manager's changes since the previous run
and worklist, inside sales' quick logging form with their recent entries."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from customers.access import any_role
from customers.roles import Role, role_of
from services.forms import ServiceEventForm
from services.selectors import recent_service_events
from valuation.selectors import latest_completed_run

from . import selectors, worklist


@login_required
def home(request):
    role = role_of(request.user)
    context = {"role": role}
    if role == Role.SALES_REP:
        context["worklist"] = worklist.worklist(user=request.user)
    if role == Role.MANAGER:
        run = latest_completed_run()  # read once for both panels
        context["worklist"] = worklist.worklist(user=request.user, run=run)
        context["run"], context["changes"] = worklist.manager_changes(run=run)
    if role == Role.INSIDE_SALES:
        context["log_form"] = ServiceEventForm(user=request.user)
        recent = recent_service_events(user=request.user)
        context["recent"] = sorted(recent, key=lambda event: (event.date, event.pk), reverse=True)
        context["worklist"] = worklist.worklist(user=request.user)
    if role is None:
        context["overview"] = selectors.company_overview(user=request.user)
    return render(request, "home.html", context)


@any_role
@require_POST
def dismiss_item(request, pk: int):
    """Done (hidden until the situation changes) or snoozed for two weeks."""
    item = worklist.visible_item(user=request.user, pk=pk)
    if item is None:
        raise Http404
    snooze = request.POST.get("action") == "snooze"
    worklist.dismiss(user=request.user, item=item, snooze_days=worklist.SNOOZE_DAYS if snooze else None)
    messages.success(request, _("Snoozed for two weeks.") if snooze else _("Marked done."))
    return redirect("home")
