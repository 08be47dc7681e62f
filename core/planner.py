"""Planner settings for one query, where PostgreSQL's estimates lead it astray."""

import re
from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection, transaction

_VALUE = re.compile(r"[A-Za-z0-9_']+")


@contextmanager
def planner_settings(**settings: str) -> Iterator[None]:
    """The queries made inside run with these settings (``SET LOCAL``; PostgreSQL only, a
    no-op elsewhere), in a transaction of their own or a savepoint of the caller's. They are
    put back to their defaults afterwards, since inside a caller's transaction a ``SET
    LOCAL`` would outlive the savepoint; an error rolls them back with it."""
    if connection.vendor != "postgresql":
        yield
        return
    with transaction.atomic(), connection.cursor() as cursor:
        for name, value in settings.items():
            if not (name.isidentifier() and _VALUE.fullmatch(value)):
                raise ValueError(f"unexpected planner setting {name}={value!r}")
            cursor.execute(f"SET LOCAL {name} = {value}")
        yield
        for name in settings:
            cursor.execute(f"SET LOCAL {name} TO DEFAULT")
