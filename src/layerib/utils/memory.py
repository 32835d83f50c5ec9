"""Handing freed memory back to the operating system between large steps of a run."""

from __future__ import annotations

import contextlib
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


_M_MMAP_THRESHOLD = -3     # glibc's mallopt parameter (malloc.h)
_DYNAMIC_MMAP_MAX = 32 << 20  # the ceiling of glibc's dynamic mmap threshold on 64-bit systems


@contextlib.contextmanager
def prompt_heap_release(mmap_threshold: int = 1 << 20):
    """Within the block, allocations of ``mmap_threshold`` bytes or more (1 MiB) are mapped
    on their own by glibc, so each is returned to the system when freed instead of staying
    resident in the heap (nothing is done where the C library is not glibc).

    Why: glibc raises its mmap threshold (up to 32 MiB) as large blocks are freed; the
    blocks of 1-32 MiB a pass over wide features allocates and frees (a batch of held-out
    rows, a block of columns, a critic's per-step temporaries) then come from the heap, and
    freed heap memory between live blocks is not returned. On the CIFAR-10 VGG benchmark's
    MI report (``benchmarks/rss_cifar10_vgg.sh``) that was about 0.3 GB of the peak resident
    memory (3.02 GB without, 2.95 GB at 8 MiB, 2.71 GB at 1 MiB). The cost is a fresh
    mapping (and its page faults) per such allocation: small for the VGG report (13:48 vs
    13:38 min), but an MNIST-sized layer's report (10 000 + 10 000 rows of 512) took 53 s
    instead of 42 s, which is why the report uses it for large layers only
    (:func:`~layerib.ib.report.measure_layer`) and training loops never. On leaving, the
    threshold is set to 32 MiB (what glibc's dynamic rule reaches after large frees; the
    dynamic rule itself cannot be restored) and free memory is released. Values and
    results are not touched.
    """
    lib = _libc()
    if lib is None or not hasattr(lib, "mallopt"):
        yield
        return
    lib.mallopt(_M_MMAP_THRESHOLD, int(mmap_threshold))
    try:
        yield
    finally:
        lib.mallopt(_M_MMAP_THRESHOLD, _DYNAMIC_MMAP_MAX)
        release_free_memory()
