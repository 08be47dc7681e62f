"""Who may do what: the one module that pages, the API, templates and exports ask.

Each ability is one function of the user (and the object where it matters). The view
decorators, the class-based-view mixin, the DRF permissions and the template context are all
built from these functions, so a rule is changed in one place (pretix's `permissions.py`).

| ability            | sales rep              | inside sales | manager |
|--------------------|------------------------|--------------|---------|
| use_cockpit        | yes                    | yes          | yes     |
| see customers      | own                    | all          | all     |
| sees_money         | yes                    | no           | yes     |
| can_log_for        | own customers          | all          | all     |
| can_change_entry   | own entries            | own entries  | all     |
| manages            | no                     | no           | yes     |
| may_administer_user| no                     | no           | yes, not superusers |
| may_grant_superuser| superusers only (the installation's administrators)         |
"""

from functools import wraps

from django.contrib.auth.decorators import login_required
from django.contrib.auth.mixins import AccessMixin
from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet
from django.shortcuts import get_object_or_404
from rest_framework import permissions
from rest_framework.filters import OrderingFilter

from .models import Customer
from .roles import Role, role_of

# --- the abilities ------------------------------------------------------------------------------

ALL_ROLES = frozenset(Role)
MANAGERS = frozenset({Role.MANAGER})
MONEY_ROLES = frozenset({Role.SALES_REP, Role.MANAGER})


def use_cockpit(user) -> bool:
    """Any of the three roles; a login without a role reaches nothing."""
    return role_of(user) is not None


def sees_money(user) -> bool:
    """Inside sales sees services, segment and strategy, but no margins, CLV or profit."""
    return role_of(user) in MONEY_ROLES


def sees_all_customers(user) -> bool:
    """Inside sales and managers see every customer; a sales rep only the own book."""
    return role_of(user) in (Role.INSIDE_SALES, Role.MANAGER)


def manages(user) -> bool:
    """Managers run the company's data: dashboard, settings, imports, exports, the admin."""
    return role_of(user) in MANAGERS


def can_log_for(user, customer: Customer) -> bool:
    role = role_of(user)
    return role in (Role.INSIDE_SALES, Role.MANAGER) or (role == Role.SALES_REP and customer.owner_id == user.pk)


def can_change_entry(user, *, logged_by_id: int | None) -> bool:
    """Own entries may be changed by whoever logged them; managers may change any."""
    return manages(user) or (logged_by_id is not None and logged_by_id == user.pk)


def may_administer_user(user, other) -> bool:
    """Managers run the company's data, not the installation: they manage users and roles but
    neither grant superuser status nor change a superuser (only a superuser does both)."""
    if user.is_superuser:
        return True
    return manages(user) and not other.is_superuser


def may_grant_superuser(user) -> bool:
    return bool(user.is_superuser)


ABILITIES = {
    "use_cockpit": use_cockpit, "sees_money": sees_money, "sees_all_customers": sees_all_customers, "manages": manages,
}


# --- who sees whom ------------------------------------------------------------------------------


def customer_visibility(*, user, prefix: str = "") -> Q | None:
    """The condition on the customers this user may see: a sales rep their own, inside sales
    and managers all (an empty Q); None for a user without a role, who sees none.

    `prefix` is the path from another model to its customer, e.g. "customer__".
    """
    if sees_all_customers(user):
        return Q()
    if role_of(user) == Role.SALES_REP:
        return Q(**{f"{prefix}owner": user})
    return None


def visible_customers(*, user) -> QuerySet[Customer]:
    """The customers this user may see (see customer_visibility)."""
    condition = customer_visibility(user=user)
    return Customer.objects.none() if condition is None else Customer.objects.filter(condition)


def visible_rows(rows: QuerySet, *, user, prefix: str = "customer__") -> QuerySet:
    """The rows about customers this user may see (value rows, events, transactions).

    Filters through the customer's own columns instead of `customer__in=visible_customers()`,
    which for a manager made PostgreSQL semi-join a million value rows against a million
    customers only to keep them all (0.5 s for the API's page count).
    """
    condition = customer_visibility(user=user, prefix=prefix)
    return rows.none() if condition is None else rows.filter(condition)


def customer_or_404(*, user, pk: int, queryset=None) -> Customer:
    """A customer this user may see; another rep's customer answers 404, not 403."""
    return get_object_or_404(queryset if queryset is not None else visible_customers(user=user), pk=pk)


# --- pages --------------------------------------------------------------------------------------


def ability_required(ability):
    """Login required; then only users with the ability pass (others get 403)."""

    def decorator(view):
        @login_required
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            if not ability(request.user):
                raise PermissionDenied
            return view(request, *args, **kwargs)

        return wrapped

    return decorator


any_role = ability_required(use_cockpit)
manager_only = ability_required(manages)


class AbilityRequiredMixin(AccessMixin):
    """The class-based views' form of ability_required: set `ability` on the view."""

    ability = staticmethod(use_cockpit)

    def dispatch(self, request, *args, **kwargs):
        if not request.user.is_authenticated:
            return self.handle_no_permission()
        if not self.ability(request.user):
            raise PermissionDenied
        return super().dispatch(request, *args, **kwargs)


def template_abilities(user) -> dict:
    """What templates may ask: `{% if can.sees_money %}`."""
    return {name: ability(user) for name, ability in ABILITIES.items()}


# --- the API ------------------------------------------------------------------------------------

class HasRole(permissions.BasePermission):
    """Deny by default: a login without a role (sales rep, inside sales, manager) reaches nothing."""

    def has_permission(self, request, view):
        return use_cockpit(request.user)


class RolePermission(permissions.BasePermission):
    """Each view names the roles that may read (``read_roles``) and write (``write_roles``);
    ``action_roles`` overrides both for single actions."""

    message = "Your role may not do this."

    def has_permission(self, request, view):
        role = role_of(request.user)
        if role is None:
            return False
        action_roles = getattr(view, "action_roles", {})
        if getattr(view, "action", None) in action_roles:
            return role in action_roles[view.action]
        roles = view.read_roles if request.method in permissions.SAFE_METHODS else view.write_roles
        return role in roles


class OwnEntriesPermission(permissions.BasePermission):
    """Entries are changed or deleted only by whoever logged them, or by a manager."""

    message = "You may change only the service events you logged."

    def has_object_permission(self, request, view, obj):
        if request.method in permissions.SAFE_METHODS or getattr(view, "action", None) == "history":
            return True
        return can_change_entry(request.user, logged_by_id=obj.logged_by_id)


class MoneyOrderingFilter(OrderingFilter):
    """Ordering by value-from figures only for those who may see them (an order leaks the ranking)."""

    def get_valid_fields(self, queryset, view, context=None):
        fields = super().get_valid_fields(queryset, view, context or {})
        money = set(getattr(view, "money_ordering_fields", ()))
        request = getattr(view, "request", None)
        if money and request is not None and not sees_money(request.user):
            fields = [(name, label) for name, label in fields if name not in money]
        return fields
