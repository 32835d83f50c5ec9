"""Random numbers without side effects: :func:`global_rng_kept` and :func:`seed_init`.

Every random draw of an MI estimate comes from a local, seeded ``torch.Generator`` or
``np.random.default_rng`` except one: ``nn.Linear`` and friends initialise their weights
from torch's global CPU generator. :func:`seed_init` seeds that generator (CPU only, so no
CUDA seed is queued), and the public entry points (:func:`layerib.estimate_mi`,
:func:`layerib.measure_layers`, :meth:`layerib.InfoPlaneRecorder.record`) run inside
:func:`global_rng_kept`, so a user's next dropout mask or shuffle does not depend on having
measured.
"""

from __future__ import annotations

import contextlib
import functools
import random
from typing import Callable, Iterator, TypeVar

import numpy as np
import torch

F = TypeVar("F", bound=Callable)


@contextlib.contextmanager
def global_rng_kept() -> Iterator[None]:
    """Restore on exit the global RNG states of torch (CPU, and every CUDA device once CUDA
    is initialised), numpy (``np.random``) and python (``random``).

    Example:
        >>> before = torch.get_rng_state()
        >>> with global_rng_kept():
        ...     _ = torch.manual_seed(123), torch.rand(3)
        >>> bool((torch.get_rng_state() == before).all())
        True
    """
    py, npy = random.getstate(), np.random.get_state()
    cuda = torch.cuda.is_available() and torch.cuda.is_initialized()
    devices = list(range(torch.cuda.device_count())) if cuda else []
    try:
        with torch.random.fork_rng(devices=devices):
            yield
    finally:
        random.setstate(py)
        np.random.set_state(npy)


def keeps_global_rng(fn: F) -> F:
    """Decorator: ``fn`` runs inside :func:`global_rng_kept` (the global RNG states it changes
    are restored when it returns or raises)."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with global_rng_kept():
            return fn(*args, **kwargs)
    return wrapper  # type: ignore[return-value]


def seed_init(seed: int) -> None:
    """Seed torch's global generators, which initialise new modules' weights: what
    ``torch.manual_seed(seed)`` does, except that no seed is queued for a CUDA that is not
    initialised yet (it would reach the user's first CUDA draws). Call it inside
    :func:`global_rng_kept`.

    Example:
        >>> with global_rng_kept():
        ...     seed_init(0)
        ...     a = torch.nn.Linear(2, 1).weight
        ...     _ = torch.manual_seed(0)
        ...     b = torch.nn.Linear(2, 1).weight
        >>> bool((a == b).all())
        True
    """
    torch.default_generator.manual_seed(seed)
    if torch.cuda.is_available() and torch.cuda.is_initialized():  # as torch.manual_seed does
        torch.cuda.manual_seed_all(seed)
