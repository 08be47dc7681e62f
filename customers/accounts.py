"""Users and their roles, as managers run them in the cockpit (and superusers in the admin).

The rules are customers.access.may_administer_user: a manager creates and changes users and
their roles, but never a superuser and never superuser status.
"""

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import QuerySet

from .access import may_administer_user
from .roles import Role

User = get_user_model()


def users_to_administer(*, actor) -> QuerySet:
    """Every user with their groups; superusers only for a superuser."""
    users = User.objects.order_by("username").prefetch_related("groups")
    return users if actor.is_superuser else users.filter(is_superuser=False)


@transaction.atomic
def save_user(*, actor, user=None, username: str, email: str, first_name: str, last_name: str,
              role: Role | None, is_active: bool):
    """Create (``user=None``) or change a user and set their one role. Never touches superuser
    status or single permissions; a user without a role can log in but reaches nothing."""
    if user is None:
        user = User(username=username)
        user.set_unusable_password()  # the user sets one through the password-reset mail
    elif not may_administer_user(actor, user):
        raise PermissionDenied
    if user.pk == actor.pk and not is_active:
        raise PermissionDenied("You cannot deactivate yourself.")
    user.username, user.email, user.first_name, user.last_name, user.is_active = (
        username, email, first_name, last_name, is_active,
    )
    user.save()
    role_groups = Group.objects.filter(name__in=[r.value for r in Role])
    user.groups.remove(*role_groups)
    if role is not None:
        user.groups.add(Group.objects.get(name=role.value))
    return user
