"""Freed memory handed back to the operating system (core.memory)."""

import sys

import pytest

from core.memory import _malloc_trim, release_freed_memory


def _resident_mib() -> float:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS")) / 1024


@pytest.mark.skipif(not sys.platform.startswith("linux") or _malloc_trim() is None,
                    reason="glibc's malloc_trim and /proc: Linux with glibc only")
def test_memory_freed_between_blocks_still_held_goes_back():
    """Blocks freed below one still in use stay resident until released (what a run's prepare
    leaves behind); released, the process's resident memory drops by about their size."""
    blocks = [bytes(2048) + bytes([k % 251]) for k in range(100_000)]  # ~200 MB from malloc, not pymalloc
    kept = blocks[-1]
    del blocks
    before = _resident_mib()
    assert release_freed_memory()
    after = _resident_mib()
    assert before - after > 100, (before, after)
    assert kept[-1] == 99_999 % 251
