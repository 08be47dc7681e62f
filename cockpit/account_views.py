"""Accounts users run themselves (API tokens) and managers' user administration.

Password change and reset are Django's own views with the cockpit's templates (cvm/urls.py).
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from customers import accounts, tokens
from customers.access import manager_only, may_administer_user
from customers.roles import role_from_groups

from .account_forms import TokenForm, UserForm


@login_required
def api_tokens(request):
    """The user's own API tokens: make one (its key is shown once), see when each was last
    used and when it expires, revoke it."""
    new_key = None
    if request.method == "POST":
        form = TokenForm(request.POST)
        if form.is_valid():
            token, new_key = tokens.issue_token(
                user=request.user, name=form.cleaned_data["name"], lifetime_days=form.cleaned_data["lifetime"]
            )
            form = TokenForm()
    else:
        form = TokenForm()
    context = {"form": form, "tokens": tokens.tokens_of(request.user), "new_key": new_key, "now": timezone.now()}
    response = render(request, "cockpit/account/tokens.html", context)
    response["Cache-Control"] = "no-store"  # the page may carry a new key
    return response


@login_required
@require_POST
def revoke_api_token(request, pk: int):
    if tokens.revoke_token(user=request.user, token_id=pk):
        messages.success(request, _("The token was revoked; requests with it are refused from now on."))
    else:
        messages.error(request, _("No such token of yours."))
    return redirect("account:tokens")


@manager_only
def user_list(request):
    users = accounts.users_to_administer(actor=request.user)
    rows = [
        (person, role_from_groups([g.name for g in person.groups.all()], is_superuser=person.is_superuser))
        for person in users
    ]
    return render(request, "cockpit/users/list.html", {"rows": rows})


@manager_only
def user_form(request, pk: int | None = None):
    user = None
    if pk is not None:
        user = get_object_or_404(accounts.users_to_administer(actor=request.user), pk=pk)
        if not may_administer_user(request.user, user):
            raise PermissionDenied
    form = UserForm(request.POST or None, instance=user)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            saved = accounts.save_user(
                actor=request.user, user=user, username=data["username"], email=data["email"],
                first_name=data["first_name"], last_name=data["last_name"], role=form.chosen_role(),
                is_active=data["is_active"],
            )
        except PermissionDenied as exc:
            form.add_error(None, str(exc) or _("You may not change this user."))
        else:
            messages.success(request, _("Saved %(user)s.") % {"user": saved.username})
            return redirect("account:users")
    return render(request, "cockpit/users/form.html", {"form": form, "edited": user})
