"""Work on a thread of its own, with its own database connection.

Django opens one connection per thread and closes only those of request threads; a thread
started for work beside a run would leave its connection open until the server drops it.
"""

from collections.abc import Callable
from functools import wraps

from django.db import connections


def on_own_connection(call: Callable) -> Callable:
    """``call`` for a thread of its own: the thread's connections are closed when it returns
    or raises (nobody else would close them)."""

    @wraps(call)
    def run(*args, **kwargs):
        try:
            return call(*args, **kwargs)
        finally:
            connections.close_all()

    return run
