"""Tests of the held-out evaluation helpers: the row-seeded fixed noise (``RowNoise``)."""

from __future__ import annotations

import math

import pytest
import torch

from layerib.mi.channel import RowNoise


@pytest.mark.parametrize("keep", [True, False])  # drawn once and kept, or drawn per batch
def test_row_noise_is_fixed_per_row_whatever_the_batch(keep, monkeypatch):
    """A row's noise is the same whichever batch reads it, and the kept and per-batch draws
    are the same numbers (so a small problem and a large one use one definition)."""
    noise = RowNoise(50, (3, 4), 2.0, seed=7)
    if not keep:
        monkeypatch.setattr(RowNoise, "KEEP_NUMBERS", 0)
    whole = noise[torch.arange(50)]
    assert whole.shape == (50, 3, 4) and noise.shape == (50, 3, 4) and len(noise) == 50
    perm = torch.randperm(50, generator=torch.Generator().manual_seed(0))
    for idx in torch.tensor_split(perm, 4):
        assert torch.equal(noise[idx], whole[idx])
    monkeypatch.setattr(RowNoise, "KEEP_NUMBERS", 1 << 22 if not keep else 0)
    assert torch.equal(RowNoise(50, (3, 4), 2.0, seed=7)[torch.arange(50)], whole)


def test_row_noise_statistics_and_seeds():
    """N(0, sd^2) numbers (20 000 of them: mean within 4 SE of 0, sd within 3 %), rows of one
    seed distinct, and another seed another draw."""
    noise = RowNoise(2000, (10,), 3.0, seed=1)
    x = noise[torch.arange(2000)]
    assert abs(float(x.mean())) < 4 * 3.0 / math.sqrt(x.numel())
    assert abs(float(x.std()) / 3.0 - 1) < 0.03
    assert not torch.equal(x[0], x[1])
    assert not torch.equal(RowNoise(2000, (10,), 3.0, seed=2)[torch.arange(5)], x[:5])
