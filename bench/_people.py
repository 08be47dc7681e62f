"""The user a bench logs in as, shared by the page benches."""

import os
import sys

from django.contrib.auth import get_user_model
from django.db.models import Q

from customers.roles import Role


def manager_user(username: str | None, *, create: bool = False):
    """The named user, else the first superuser or manager; with ``create`` a throw-away
    superuser when there is none, else the bench stops and says what to do."""
    users = get_user_model().objects
    if username:
        return users.get(username=username)
    user = users.filter(Q(is_superuser=True) | Q(groups__name=Role.MANAGER.value)).order_by("pk").first()
    if user is None:
        if not create:
            sys.exit("No manager found: pass --username or run `manage.py seed_demo` first.")
        user = users.create(username=f"bench-manager-{os.getpid()}", is_superuser=True)
    return user
