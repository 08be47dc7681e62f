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
    put back to the values they had before afterwards (the caller's own, where it set some
    for its transaction), since inside a caller's transaction a ``SET LOCAL`` would outlive
    the savepoint; an error rolls them back with it."""
    if connection.vendor != "postgresql" or not settings:
        yield
        return
    for name, value in settings.items():
        if not (name.isidentifier() and _VALUE.fullmatch(value)):
            raise ValueError(f"unexpected planner setting {name}={value!r}")
    with transaction.atomic(), connection.cursor() as cursor:
        names = list(settings)
        cursor.execute("SELECT " + ", ".join(["current_setting(%s)"] * len(names)), names)
        previous = cursor.fetchone()
        for name, value in settings.items():
            cursor.execute(f"SET LOCAL {name} = {value}")
        yield
        cursor.execute("SELECT " + ", ".join(["set_config(%s, %s, true)"] * len(names)),
                       [part for pair in zip(names, previous, strict=True) for part in pair])
