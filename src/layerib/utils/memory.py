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


#: rows per chunk of :func:`outputs_in_chunks`: on 32 x 32 images a 64-channel map of 256
#: rows is 67 MB, and the passes run as fast as at 1 365 or 4 096 rows (measured on the
#: CIFAR-10 VGG, one CPU thread)
OUTPUT_CHUNK_ROWS = 256


def fill_outputs(chunks, n: int) -> list:
    """The ``n`` rows of every output of ``chunks`` (an iterable of lists of k tensors
    ``(n_c, ...)``, one list per chunk of rows), each output copied as it comes into one tensor
    ``(n, ...)`` allocated on the first chunk (a ``torch.cat`` of a list would hold every chunk
    and the result at once).

    Raises:
        ValueError: a chunk gives a different number of outputs than the first, or the chunks
            give other than ``n`` rows.
    """
    out: list = []
    s = 0
    for fs in chunks:
        if not out:
            out = [f.new_empty((n, *f.shape[1:])) for f in fs]
        elif len(fs) != len(out):
            raise ValueError(f"fn returned {len(fs)} outputs for rows {s}.., {len(out)} for the first")
        for o, f in zip(out, fs):
            o[s:s + len(f)] = f
        s += len(fs[0]) if fs else 0
        del fs
    if not out or s != n:
        raise ValueError(f"chunks gave {s} rows, expected {n}")
    return out


def outputs_in_chunks(fn, x, rows: int | None = None) -> list:
    """Every output of ``fn`` on all of ``x``, ``rows`` rows at a time.

    Args:
        fn: ``x[s:s + rows]`` -> a list of k tensors ``(n, ...)`` (e.g. every layer's output);
            called under the caller's grad mode.
        x: ``(N, ...)`` rows: a tensor or anything sliceable with ``len``.
        rows: rows per call (default :data:`OUTPUT_CHUNK_ROWS`).

    Returns:
        k tensors ``(N, d_j)``, each output flattened to one row per input row, filled as the
        chunks come into one tensor allocated on the first chunk (:func:`fill_outputs`), so the
        peak is the outputs plus one chunk's intermediate values (a ``torch.cat`` of the chunks
        would hold every chunk's outputs and the result at once: one information-plane record
        on the CIFAR-10 VGG added 3.70 GB to the resident set that way, 1.45 GB this way).

    Raises:
        ValueError: ``x`` has no rows, or ``fn`` returns a different number of outputs for
            one chunk than for the first.
    """
    n = len(x)
    if n == 0:
        raise ValueError("outputs_in_chunks needs at least one row")
    step = rows or OUTPUT_CHUNK_ROWS
    return fill_outputs(([f.flatten(1) for f in fn(x[s:s + step])] for s in range(0, n, step)), n)
