"""Handing freed memory back to the operating system."""

import ctypes
import functools


@functools.cache
def _malloc_trim():
    """glibc's malloc_trim, or None (another C library). Looked up among the symbols the
    process has loaded: ctypes.util.find_library would start a subprocess to find libc."""
    try:
        return getattr(ctypes.CDLL(None), "malloc_trim", None)
    except (OSError, TypeError):  # Windows takes no None here
        return None


def release_freed_memory() -> bool:
    """Return the heap that glibc keeps after large work is freed (it hands back its top and
    large blocks by itself, not the many small ones between): the process's resident memory
    then drops to what is still in use. True when it was asked to."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True
