"""Sanity checks on a data set before training (issue 15, item 5).

A training set whose images are all the same (all zeros, say: a broken conversion) trains
without an error to chance-level accuracy (11.35 % on MNIST: the share of its most frequent
test class); :func:`warn_if_constant` says so in one line before any step is spent.
"""

from __future__ import annotations

import warnings

import torch


def is_constant(images: torch.Tensor) -> bool:
    """True when every item of ``images`` ``(N, ...)`` equals the first (or N < 2 is false)."""
    if len(images) < 2:
        return False
    flat = images.reshape(len(images), -1)
    return bool((flat == flat[:1]).all())


def warn_if_constant(images: torch.Tensor, name: str = "training set") -> bool:
    """Warn (``warnings.warn``, one line) when all ``images`` ``(N, ...)`` are identical.

    Returns:
        True when it warned. A set of fewer than two items is never constant.
    """
    if not is_constant(images):
        return False
    flat = images.reshape(len(images), -1)
    value = "all zero" if not bool(flat[0].any()) else "all identical"
    warnings.warn(f"{name}: the {len(images)} images are {value}; nothing can be learnt from "
                  "them (expect chance-level accuracy)", RuntimeWarning, stacklevel=2)
    return True
