"""The three roles of the cockpit, as Django groups."""

from enum import StrEnum

from django.utils.translation import gettext_lazy as _


class Role(StrEnum):
    """The value is the group's name (stored, never translated); `label` is what pages show."""

    SALES_REP = "sales rep"
    INSIDE_SALES = "inside sales"
    MANAGER = "manager"

    @property
    def label(self) -> str:
        return ROLE_LABELS[self]


ROLE_LABELS = {
    Role.SALES_REP: _("sales rep"),
    Role.INSIDE_SALES: _("inside sales"),
    Role.MANAGER: _("manager"),
}


def role_of(user) -> Role | None:
    """The user's role; a superuser counts as manager. Cached on the user for the request."""
    if not getattr(user, "is_authenticated", False):
        return None
    if hasattr(user, "_cvm_role"):
        return user._cvm_role
    names = () if user.is_superuser else set(user.groups.values_list("name", flat=True))
    user._cvm_role = role_from_groups(names, is_superuser=user.is_superuser)
    return user._cvm_role


def role_from_groups(names, *, is_superuser: bool = False) -> Role | None:
    """The role given by these group names (a user in several: the widest one)."""
    if is_superuser:
        return Role.MANAGER
    names = set(names)
    return next((r for r in (Role.MANAGER, Role.SALES_REP, Role.INSIDE_SALES) if r.value in names), None)


def install_role_groups(group_model) -> None:
    """Create the role groups where missing (migrations pass their historical model)."""
    for role in Role:
        group_model.objects.get_or_create(name=role.value)
