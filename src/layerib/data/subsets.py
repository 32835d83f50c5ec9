"""Seeded, stratified subsets of a training set (e.g. the paper's "MNIST 1%")."""

from __future__ import annotations

import torch

from layerib.errors import ConfigError


def stratified_subset(labels: torch.Tensor, fraction: float, seed: int) -> torch.Tensor:
    """Indices of a class-stratified random subset with ``round(fraction * N)`` items.

    Each class contributes in proportion to its frequency (largest remainders
    get the leftover items), so ``fraction = 0.01`` of MNIST's 60000 images
    gives the paper's 600-image set with about 60 per class.

    Args:
        labels: int64 tensor ``(N,)``.
        fraction: in ``(0, 1]``; 1 returns all indices in order.
        seed: seed of the draw; the same seed always gives the same subset.

    Returns:
        int64 tensor of sorted indices, shape ``(round(fraction * N),)``.

    Raises:
        ConfigError: ``fraction`` outside ``(0, 1]`` or too small to give one item.
    """
    if not 0.0 < fraction <= 1.0:
        raise ConfigError(f"train fraction {fraction} is outside (0, 1]; "
                          "use e.g. 0.01 for 1% or 1 for the whole set")
    n = len(labels)
    if fraction == 1.0:
        return torch.arange(n)
    total = round(fraction * n)
    if total < 1:
        raise ConfigError(f"train fraction {fraction} of {n} items selects none; use a larger one")
    g = torch.Generator().manual_seed(seed)
    classes, counts = torch.unique(labels, return_counts=True)
    exact = counts.double() * total / n
    take = exact.floor().long()
    leftover = total - int(take.sum())
    take[torch.argsort(exact - take, descending=True)[:leftover]] += 1
    chosen = []
    for c, k in zip(classes.tolist(), take.tolist()):
        idx = torch.nonzero(labels == c).flatten()
        chosen.append(idx[torch.randperm(len(idx), generator=g)[:k]])
    return torch.sort(torch.cat(chosen)).values
