"""The three roles of the cockpit, as Django groups."""

from enum import StrEnum


class Role(StrEnum):
    SALES_REP = "sales rep"
    INSIDE_SALES = "inside sales"
    MANAGER = "manager"


def role_of(user) -> Role | None:
    """The user's role; a superuser counts as manager. Cached on the user for the request."""
    if not getattr(user, "is_authenticated", False):
        return None
    if hasattr(user, "_cvm_role"):
        return user._cvm_role
    if user.is_superuser:
        role = Role.MANAGER
    else:
        names = set(user.groups.values_list("name", flat=True))
        role = next((r for r in (Role.MANAGER, Role.SALES_REP, Role.INSIDE_SALES) if r.value in names), None)
    user._cvm_role = role
    return role


def install_role_groups(group_model) -> None:
    """Create the role groups where missing (migrations pass their historical model)."""
    for role in Role:
        group_model.objects.get_or_create(name=role.value)
