"""``estimate_mi``: Gaussians with closed-form MI at stated tolerances, labels, known noise, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from layerib.errors import ConfigError
from layerib.mi.estimate import estimate_mi
from layerib.mi.ground_truth import linear_gaussian_mi
from layerib.mi.tasks import gaussian_task, mixture_task, transformed_task


@pytest.mark.parametrize("dim, mi", [(5, 2.0), (20, 0.5), (20, 4.0)])
def test_gaussians_within_10_percent_and_interval_holds_truth(dim, mi):
    # N = 5000 (1000 test rows); measured over 10 seeds in the benchmark: |error| <= 4 %, the
    # interval (+- 0.05 .. 0.15 nats) held the truth in >= 8 of 10. Here one seed: 10 %.
    x, y = gaussian_task(dim, mi).sample(5000, seed=3)
    r = estimate_mi(x, y, seed=3)
    assert abs(r.value - mi) < 0.1 * mi, r
    assert r.low < r.value < r.high and r.restarts == 3 and r.shuffled is not None
    assert abs(r.shuffled) < 0.1 and not r.flags, r


def test_monotone_transform_changes_nothing():
    # the copula map makes the estimate invariant to a strictly increasing map of each coordinate
    task = gaussian_task(5, 1.0)
    x, y = task.sample(3000, seed=0)
    kw = dict(restarts=1, baseline=False)
    a = estimate_mi(x, y, **kw).value
    b = estimate_mi(x ** 3, np.arcsinh(y), **kw).value
    assert abs(a - b) < 1e-3 and abs(a - 1.0) < 0.1


def test_labels_use_the_label_bounds():
    task = mixture_task(10, 10, 1.0)
    x, y = task.sample(4000, seed=0)
    r = estimate_mi(torch.as_tensor(x), torch.as_tensor(y), restarts=1, baseline=False)
    assert r.critic == "heads" and abs(r.value - task.mi) < 0.1 * task.mi, (r, task.mi)
    # the ceiling beside it: the held-out labels' plug-in entropy, ln 10 within 1 % for 10
    # balanced classes on ~800 test rows; the value is below it, so the flag stays down
    assert abs(r.entropy - math.log(10)) < 0.01 * math.log(10) and not r.exceeds_entropy, r


def test_known_noise_is_aa_mine_on_features():
    # I(L; L + eps) for a linear-Gaussian layer (Elad et al. Eq. 5); the mixture critic with
    # centres at training features: within 10 % (measured 2 %)
    g = torch.Generator().manual_seed(0)
    w = torch.randn(4, 4, generator=g) / 2
    l = torch.randn(3000, 4, generator=g) @ w.T
    truth = linear_gaussian_mi(w, torch.eye(4), 0.3)
    r = estimate_mi(l, l, noise_var=0.3, restarts=1, baseline=False, n_centers=512, max_steps=400)
    assert r.critic == "mixture" and r.noise_var == 0.3
    assert abs(r.value - truth) < 0.1 * truth, (r.value, truth)


def test_independent_data_is_near_zero_and_negative_values_are_flagged():
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((2000, 3)), rng.standard_normal((2000, 3))
    r = estimate_mi(x, y, restarts=2)
    assert abs(r.value) < 0.05 and r.low < 0 < r.high + 1e-9
    assert r.negative == (r.high < 0) and ("negative" in r.flags) == (r.high < 0)
    assert not r.negative and not r.below_baseline  # the interval holds 0 and the baseline


def test_reproducible():
    x, y = transformed_task(gaussian_task(3, 1.0), "cube").sample(1000, 1)
    a, b = (estimate_mi(x, y, seed=5, restarts=2, baseline=False) for _ in range(2))
    assert a.value == b.value and a.interval == b.interval


def test_errors():
    x = np.zeros((100, 2))
    with pytest.raises(ConfigError, match="same number of rows"):
        estimate_mi(x, x[:50])
    with pytest.raises(ConfigError, match="unknown option"):
        estimate_mi(x, x, epochs=3)
    with pytest.raises(ConfigError, match="too few"):
        estimate_mi(x[:40], x[:40])
    bad = np.ones((400, 2))
    bad[3, 1] = math.nan
    with pytest.raises(ConfigError, match="non-finite"):
        estimate_mi(bad, bad)
    with pytest.raises(ConfigError, match="noise_var"):
        estimate_mi(x, x, noise_var=-1.0)
    with pytest.raises(ConfigError, match="unknown candidate"):
        estimate_mi(x, x, candidates=("nope",))
    with pytest.raises(ConfigError, match="does not fit"):
        estimate_mi(np.random.default_rng(0).normal(size=(400, 2)), np.arange(400) % 2,
                    candidates=("gauss-dv",))


def test_constant_coordinates_are_dropped_and_constant_data_is_exactly_zero():
    """A dead unit (a coordinate constant on the fitting rows) carries no information: it is
    dropped, with a note, and the estimate is as without it; all-constant data gives I = 0
    exactly (no critic, interval [0, 0]) instead of a singular-matrix traceback."""
    x, y = gaussian_task(3, 1.0).sample(2000, seed=2)
    x0 = np.concatenate([x, np.zeros((2000, 2))], axis=1)
    a, b = estimate_mi(x, y, restarts=1, baseline=False), estimate_mi(x0, y, restarts=1, baseline=False)
    assert b.value == pytest.approx(a.value, abs=1e-6) and any("2 coordinate" in n for n in b.notes)
    for r in (estimate_mi(np.zeros((400, 2)), y[:400]), estimate_mi(x[:400], np.zeros(400, dtype=np.int64)),
              estimate_mi(np.zeros((400, 3)), np.zeros((400, 3)), noise_var=1.0)):
        assert r.value == 0.0 and r.interval == (0.0, 0.0) and r.critic == "none" and r.notes


@pytest.mark.slow
@pytest.mark.parametrize("task", [gaussian_task(5, 2.0), transformed_task(gaussian_task(5, 1.0), "cube")])
def test_interval_coverage_over_ten_seeds(task):
    # the criterion: where the bias is below the interval's half-width, the interval
    # holds the truth in >= 8 of 10 seeds (measured 9/10 on both at N = 5000; ~30 s each)
    hits, widths, values = 0, [], []
    for seed in range(10):
        x, y = task.sample(5000, seed)
        r = estimate_mi(x, y, seed=seed, baseline=False)
        hits += r.low <= task.mi <= r.high
        widths.append((r.high - r.low) / 2)
        values.append(r.value)
    assert abs(np.mean(values) - task.mi) < np.mean(widths)
    assert hits >= 8, (hits, values, widths)


def test_given_test_rows_are_the_reported_split():
    """``test=(x_test, y_test)``: the critics fit on x, y (train + validation) and the value
    is on the given rows, as the trainer's report and measure_layers use it."""
    truth = 1.0
    x, y = gaussian_task(2, truth).sample(3000, seed=4)
    r = estimate_mi(x[:2000], y[:2000], test=(x[2000:], y[2000:]), restarts=2, seed=1)
    assert r.n_points == 1000 and r.n_train + r.n_val == 2000
    assert abs(r.value - truth) <= 0.1 * truth and r.low <= truth <= r.high + 0.05
    with pytest.raises(ConfigError, match="do not match"):
        estimate_mi(x[:2000], y[:2000], test=(x[2000:, :1], y[2000:]))
    with pytest.raises(ConfigError, match="pair"):
        estimate_mi(x[:2000], y[:2000], test=x[2000:])


def _relu_features(n, d, seed):
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, 4, generator=g)
    f = torch.relu(z @ torch.randn(4, d, generator=g) + 0.3 * torch.randn(n, d, generator=g))
    f[:, 3], f[:, 8] = 0.0, 1.5  # constant coordinates (dropped)
    return f, (z[:, 0] > 0).long() + (z[:, 1] > 0).long()


@pytest.mark.parametrize("case", ["noise", "labels", "continuous", "noise_copy"])
def test_column_blocks_change_nothing(monkeypatch, case):
    """The inputs are converted and mapped a block of columns at a time: any block size gives
    the same result, bit for bit (one block is the whole array at once)."""
    import layerib.mi.estimate as est_mod
    f, y = _relu_features(300, 23, seed=7)
    ft, yt = _relu_features(120, 23, seed=8)
    kw = dict(restarts=2, baseline=True, max_steps=40, eval_every=20, eval_batch_size=40)

    def run():
        if case == "noise":
            return estimate_mi(f, f, noise_var=0.5, seed=1, test=(ft, ft), **kw)
        if case == "noise_copy":  # y equal to x but another tensor: mapped twice, same values
            return estimate_mi(f, f.clone(), noise_var=0.5, seed=1, test=(ft, ft.clone()), **kw)
        if case == "labels":
            return estimate_mi(f, y, seed=2, test=(ft, yt), **kw)
        return estimate_mi(f[:, :9], f[:, 9:15] + 0.2 * f[:, :6], seed=3, max_steps=40, eval_every=20)
    whole = run().to_dict()
    monkeypatch.setattr(est_mod, "_BLOCK_BYTES", 8 * 420 * 2)  # two columns a block
    assert run().to_dict() == whole
    monkeypatch.setattr(est_mod, "_BLOCK_BYTES", 8 * 420 * 5)  # five, and a last block of three
    assert run().to_dict() == whole
    if case == "noise":
        assert whole == estimate_mi(f, f.clone(), noise_var=0.5, seed=1, test=(ft, ft.clone()),
                                    **kw).to_dict()


@pytest.mark.parametrize("block_columns", [None, 2, 5])
def test_overwrite_maps_the_rows_in_place_with_the_same_result(monkeypatch, block_columns):
    """overwrite=True (labels): the copula map is written over the given float32 rows, block by
    block with the constant columns squeezed out, and the result is bit-identical."""
    import layerib.mi.estimate as est_mod
    if block_columns:
        monkeypatch.setattr(est_mod, "_BLOCK_BYTES", 8 * 420 * block_columns)
    f, y = _relu_features(300, 23, seed=7)
    ft, yt = _relu_features(120, 23, seed=8)
    kw = dict(restarts=2, baseline=True, max_steps=40, eval_every=20, eval_batch_size=40)
    want = estimate_mi(f, y, seed=2, test=(ft, yt), **kw).to_dict()
    f2, ft2 = f.clone(), ft.clone()
    assert estimate_mi(f2, y, seed=2, test=(ft2, yt), overwrite=True, **kw).to_dict() == want
    assert not torch.equal(f2, f)  # the rows now hold their normal scores
    assert torch.equal(f, _relu_features(300, 23, seed=7)[0])  # overwrite=False left them alone
    # not float32 (or not labels): overwrite is ignored and nothing is written
    f64 = f.double()
    estimate_mi(f64, y, seed=2, test=(ft.double(), yt), overwrite=True, **kw)
    assert torch.equal(f64, f.double())


def test_early_stopping_keeps_only_what_training_changes(monkeypatch):
    """The best critic is kept without copies of its fixed parameters (the mixture critic's
    centres); the estimate equals the one made keeping whole state_dict copies."""
    import copy

    import layerib.utils.early as es
    g = torch.Generator().manual_seed(0)
    f = torch.relu(torch.randn(600, 8, generator=g) @ torch.randn(8, 20, generator=g))
    kw = dict(noise_var=1.0, seed=2, restarts=1, baseline=False, max_steps=120, eval_every=20)
    kept = []
    real = es.EarlyStopping._copy
    monkeypatch.setattr(es.EarlyStopping, "_copy", lambda self: kept.append(real(self)) or kept[-1])
    r = estimate_mi(f, f, **kw)
    assert kept and all("centers" not in k for s in kept for k in s)
    assert any(k.endswith("logits") for k in kept[0])  # the learnt weights are kept
    monkeypatch.setattr(es.EarlyStopping, "_copy",
                        lambda self: copy.deepcopy(self.module.state_dict()))
    assert estimate_mi(f, f, **kw) == r


def test_float_labels_are_continuous_with_a_note():
    # class labels passed as floats are a continuous y (as documented), but the result says so
    g = torch.Generator().manual_seed(0)
    y = torch.arange(400) % 3
    x = torch.randn(400, 2, generator=g) + y[:, None].float()
    r = estimate_mi(x, y.float(), restarts=1, baseline=False, max_steps=50)
    assert any("3 distinct whole numbers" in n and "y.long()" in n for n in r.notes)
    assert not any("whole numbers" in n for n in estimate_mi(x, y, restarts=1, baseline=False,
                                                             max_steps=50).notes)
