"""Measuring leaves the global RNG states (torch CPU / CUDA, numpy, python) as they were."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from torch import nn

import layerib
from layerib.config import TrainConfig
from layerib.ib.infoplane import InfoPlaneRecorder
from layerib.mi.rng import global_rng_kept
from layerib.models.mlp import mlp


def _states():
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() and torch.cuda.is_initialized() else []
    return torch.get_rng_state(), cuda, np.random.get_state(), random.getstate()


def _assert_same(a, b):
    assert torch.equal(a[0], b[0]), "torch's global CPU generator changed"
    assert len(a[1]) == len(b[1]) and all(torch.equal(p, q) for p, q in zip(a[1], b[1])), "CUDA RNG changed"
    assert a[2][0] == b[2][0] and np.array_equal(a[2][1], b[2][1]) and a[2][2:] == b[2][2:], "numpy RNG changed"
    assert a[3] == b[3], "python's random changed"


def _pairs(n=300, d=2, seed=0):
    g = np.random.default_rng(seed)
    x = g.standard_normal((n, d)).astype(np.float32)
    return x, x + g.standard_normal((n, d)).astype(np.float32)


def test_estimate_mi_keeps_the_global_rng_and_ignores_it():
    x, y = _pairs()
    torch.manual_seed(5), np.random.seed(5), random.seed(5)
    before = _states()
    r1 = layerib.estimate_mi(x, y, seed=3, restarts=2, max_steps=100)
    _assert_same(before, _states())
    torch.manual_seed(999)  # a different global state: the same result (all draws are seeded locally)
    r2 = layerib.estimate_mi(x, y, seed=3, restarts=2, max_steps=100)
    assert (r1.value, r1.stderr, r1.shuffled) == (r2.value, r2.stderr, r2.shuffled)


def test_estimate_mi_keeps_the_global_rng_with_noise_labels_and_named_critics():
    x, _ = _pairs()
    before = _states()
    layerib.estimate_mi(x, x, noise_var=0.5, seed=1, restarts=1, max_steps=50)
    layerib.estimate_mi(x, (x[:, 0] > 0).astype(np.int64), seed=1, restarts=1, max_steps=50)
    layerib.estimate_mi(x, x[:, :1], seed=1, restarts=1, max_steps=50, candidates=("concat-dv",))
    _assert_same(before, _states())


def test_global_rng_kept_restores_after_an_error():
    before = _states()
    try:
        with global_rng_kept():
            torch.rand(3), np.random.rand(3), random.random()
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    _assert_same(before, _states())


def test_measure_layers_keeps_the_global_rng():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 6), nn.Dropout(0.5), nn.ReLU(), nn.Linear(6, 3))
    x = torch.randn(240, 4)
    y = torch.randint(0, 3, (240,))
    before = _states()
    layerib.measure_layers(model, (x, y), ["2", "3"], noise_var=1.0, restarts=1, baseline=False,
                           max_steps=50)
    _assert_same(before, _states())


def test_infoplane_record_keeps_the_global_rng():
    g = torch.Generator().manual_seed(0)
    y = torch.arange(120) % 3
    x = torch.randn(120, 6, generator=g)
    net = mlp((6,), (8, 3)).train()
    s = TrainConfig(noise_var=0.1, batch_size=40, mi_eval_batch_size=40, infoplane_critic_steps=5,
                    critic_hidden=16)
    rec = InfoPlaneRecorder.for_net(net, (x, y), (x, y), None, lambda r: None, s, steps=[1])
    before = _states()
    rec.record(1)
    _assert_same(before, _states())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_generators_are_kept_too():
    torch.zeros(1, device="cuda")  # CUDA initialised: its generators are forked and restored
    x, y = _pairs()
    before = _states()
    assert before[1]  # the CUDA states are compared
    layerib.estimate_mi(x, y, seed=3, restarts=1, max_steps=50)
    _assert_same(before, _states())
