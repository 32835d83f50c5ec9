"""Handing freed memory back to the operating system between large steps of a run."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools


@functools.lru_cache(maxsize=1)
def _libc():
    try:
        lib = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return lib if hasattr(lib, "malloc_trim") else None
    except OSError:  # not glibc: nothing to do
        return None


def release_free_memory() -> None:
    """``malloc_trim(0)`` where the C library is glibc (else nothing): freed heap memory is
    returned to the system instead of staying in the process's resident set. glibc serves
    allocations below its (adaptive, up to 32 MiB) mmap threshold from the heap, and the
    chunk-by-chunk passes over frozen outputs leave much of it free but resident; values
    and results are not touched."""
    lib = _libc()
    if lib is not None:
        lib.malloc_trim(0)
