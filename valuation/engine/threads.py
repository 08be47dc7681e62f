"""Independent pieces of the engine's work on a few threads at once.

Most of a model fit or a range simulation is numpy's array work, which leaves the interpreter
lock, so on two cores two pieces run side by side. Each piece must depend on its inputs and
seeds only: then the threads change no number.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


def map_on_threads(call: Callable[[Item], Result], items: Iterable[Item], *, threads: int, name: str) -> list[Result]:
    """[call(item) for item in items] in the items' order, on up to ``threads`` threads (named
    ``name``-N) when there is more than one item. An error in any call is raised here."""
    items = list(items)
    if threads > 1 and len(items) > 1:
        with ThreadPoolExecutor(max_workers=threads, thread_name_prefix=name) as pool:
            return list(pool.map(call, items))
    return [call(item) for item in items]
