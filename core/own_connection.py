"""Work on a thread of its own, with its own database connection.

Django opens one connection per thread and closes only those of request threads; a thread
started for work beside a run would leave its connection open until the server drops it.
"""

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import wraps

from django.db import OperationalError, connection, connections

logger = logging.getLogger(__name__)

# The threads in_background starts are named after this.
BACKGROUND_THREADS = "read-beside"


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


class _Inline:
    """A call made when its result is asked for (in_background's stand-in)."""

    def __init__(self, call: Callable):
        self.call = call

    def result(self):
        return self.call()


def in_background(call: Callable):
    """Start ``call`` on a thread with its own database connection; its result (or error)
    comes from ``.result()`` (see _Beside). Inside a transaction (tests) or on SQLite it runs when asked:
    another connection would not see this one's uncommitted rows."""
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        return _Inline(call)

    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=BACKGROUND_THREADS)
    try:
        return _Beside(pool.submit(on_own_connection(call)), call)
    finally:
        pool.shutdown(wait=False)  # the thread ends with its call


class _Beside:
    """A call running on a connection of its own. When the server refused that connection or
    dropped it (too many clients, a restart), the call is made again on the caller's: an
    extra connection only saves time, its lack must not cost a figure or fail the run."""

    def __init__(self, future, call: Callable):
        self.future, self.call = future, call

    def result(self):
        try:
            return self.future.result()
        except OperationalError:
            logger.warning("A read beside the run failed on its own connection; read again on the run's",
                           exc_info=True)
            return self.call()
