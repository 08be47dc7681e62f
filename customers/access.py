"""Role rules for entry points: one place that pages and the API share."""

from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404

from .models import Customer
from .roles import Role, role_of
from .selectors import visible_customers


def role_required(*roles: Role):
    """Login required; then only the given roles pass (others get 403)."""

    def decorator(view):
        @login_required
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            if role_of(request.user) not in roles:
                raise PermissionDenied
            return view(request, *args, **kwargs)

        return wrapped

    return decorator


any_role = role_required(Role.SALES_REP, Role.INSIDE_SALES, Role.MANAGER)
manager_only = role_required(Role.MANAGER)


def customer_or_404(*, user, pk: int, queryset=None) -> Customer:
    """A customer this user may see; another rep's customer answers 404, not 403."""
    return get_object_or_404(queryset if queryset is not None else visible_customers(user=user), pk=pk)


def sees_money(user) -> bool:
    """Inside sales sees services, segment and strategy, but no margins, CLV or profit."""
    return role_of(user) in (Role.SALES_REP, Role.MANAGER)


def can_log_for(user, customer: Customer) -> bool:
    role = role_of(user)
    return role in (Role.INSIDE_SALES, Role.MANAGER) or (role == Role.SALES_REP and customer.owner_id == user.pk)
