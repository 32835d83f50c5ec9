"""The final report's flags of an I(X; L + eps) estimate against its Monte-Carlo truth."""

import math

from layerib.ib.report import mi_flags

LN_B = math.log(500)  # 6.21


def test_an_estimate_far_from_its_truth_is_flagged_whatever_the_truth():
    assert mi_flags(0.50, 0.52, LN_B, "dv") == []  # within 10 %
    assert mi_flags(0.30, 0.52, LN_B, "dv") == ["off_truth"]
    # a truth beyond ln B - 1 (here 9.2 nats, an MLP layer on CIFAR-10 at RMS 10 >> sigma):
    # a DV estimate of -31 nats is not left with "negative" alone
    assert mi_flags(-31.4, 9.18, LN_B, "dv") == ["negative", "truth_beyond_ln_batch"]
    assert mi_flags(9.0, 9.18, LN_B, "dv") == ["exceeds_ln_batch"]  # close to it: only that
    assert mi_flags(float("nan"), 0.5, LN_B, "dv") == ["non_finite"]
    assert mi_flags(0.3, None, LN_B, "dv") == []  # no truth, nothing to compare


def test_off_truth_needs_the_interval_to_miss_the_truth():
    """Seen on a small run: 0.044 [0.015, 0.073] against a truth of 0.034 is 29 % off, but its
    interval holds the truth: not flagged. An interval that misses the truth by more than two
    of the truth's standard errors is; a truth beyond ln B - 1 is flagged whatever the interval."""
    assert mi_flags(0.044, 0.034, LN_B, "dv", (0.015, 0.073), 0.002) == []
    assert mi_flags(0.084, 0.047, LN_B, "dv", (0.070, 0.098), 0.002) == ["off_truth"]
    assert mi_flags(0.084, 0.047, LN_B, "dv", (0.070, 0.098), 0.012) == []  # 0.070 - 0.024 < 0.047
    assert mi_flags(0.30, 0.52, LN_B, "dv", (0.20, 0.40), 0.0) == ["off_truth"]
    # "negative" only when the interval lies below 0 (one holding 0 is consistent with an MI >= 0)
    assert mi_flags(-31.4, 9.18, LN_B, "dv", (-60.0, 20.0), 0.1) == ["truth_beyond_ln_batch"]
    assert mi_flags(-31.4, 9.18, LN_B, "dv", (-60.0, -2.0), 0.1) == ["negative", "truth_beyond_ln_batch"]
    assert mi_flags(-0.002, 0.0, LN_B, "dv", (-0.006, 0.002), 0.0) == []


def test_measure_layer_on_disk_rows_equals_tensors_and_leaves_the_callers_tensors(tmp_path,
                                                                                 monkeypatch):
    """Features read from disk may be mapped in place (estimate_mi overwrite=True); those
    passed as tensors are the caller's and stay untouched. Both give the same entry."""
    import torch

    from layerib.ib.cache import DiskRows
    import layerib.mi.estimate as est_mod
    from layerib.ib.report import measure_layer
    in_place = []
    real = est_mod._mapped_in_place
    monkeypatch.setattr(est_mod, "_mapped_in_place", lambda *a: in_place.append(1) or real(*a))
    g = torch.Generator().manual_seed(0)
    z = torch.randn(500, 3, generator=g)
    f = torch.relu(z @ torch.randn(3, 12, generator=g)).reshape(500, 3, 4)
    y = (z[:, 0] > 0).long()
    f, ft, y, yt = f[:400], f[400:], y[:400], y[400:]
    keep_f, keep_ft = f.clone(), ft.clone()
    kw = dict(restarts=1, baseline=False, max_steps=60, eval_every=20, eval_batch_size=50)
    want = measure_layer(f, y, ft, yt, 4.0, seed=3, max_rows=300, mc_samples=64, **kw)
    assert torch.equal(f, keep_f) and torch.equal(ft, keep_ft) and not in_place
    disk = [DiskRows.write(tmp_path / f"{k}.f32", [a]) for k, a in (("f", f), ("ft", ft))]
    got = measure_layer(disk[0], y, disk[1], yt, 4.0, seed=3, max_rows=300, mc_samples=64, **kw)
    assert got == want and in_place == [1]  # I(Y; L) mapped the rows read from disk in place
    # the Monte-Carlo value is the number to read; every flag has its reason
    assert want["i_x_first"] == "monte_carlo" and list(want["flag_reasons"]) == want["flags"]
    assert torch.equal(disk[1][0:100], ft)  # the files are read, never written


def test_truth_flags_name_their_remedy():
    from layerib.ib.report import truth_flag_reasons
    from layerib.mi.result import MIResult

    def r(v, low, high):
        return MIResult(value=v, stderr=0.1, shuffled=None, batch_size=500, ln_batch=LN_B, n_points=2000,
                        n_batches=4, noise_var=1.0, bound="dv", exceeds_ln_batch=False,
                        interval=(low, high))
    # the README's noise_var on a BN conv-net: -10.357 [-18.26, -2.45] against 5.118 (> ln B - 1)
    got = truth_flag_reasons(r(-10.357, -18.26, -2.45), 5.75, 0.02)
    assert list(got) == ["negative", "truth_beyond_ln_batch"]
    assert "raise --noise-var" in got["truth_beyond_ln_batch"] and "5.750" in got["truth_beyond_ln_batch"]
    got = truth_flag_reasons(r(1.744, 1.70, 1.79), 2.857, 0.01)  # a named critic 39 % low
    assert list(got) == ["off_truth"] and "the Monte-Carlo value 2.857" in got["off_truth"]
    assert truth_flag_reasons(r(2.80, 2.70, 2.90), 2.857, 0.01) == {}


def test_measure_layer_with_a_pooled_label_view_reads_the_channel_averages():
    """``y_view`` (TrainConfig.y_pool through layer_mi_report): I(Y; L)'s critic reads each
    channel's K x K averages; here the label lives in the channel means, so the pooled critic
    still finds it (within 0.1 nats of the flattened one), its note says what it read, and
    I(X; L + eps) does not depend on the view."""
    import torch

    from layerib.ib.report import measure_layer
    from layerib.mi.critics import label_view
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 2, (600,), generator=g)
    maps = torch.randn(600, 4, 6, 6, generator=g) + 2.0 * y.float().view(-1, 1, 1, 1)
    f = maps.flatten(1)
    kw = dict(restarts=1, baseline=False, max_steps=100, eval_every=25, eval_batch_size=50,
              max_rows=500, mc_samples=64)
    flat = measure_layer(f[:500], y[:500], f[500:], y[500:], 4.0, seed=1, **kw)
    view = label_view((4, 6, 6), 2)
    pooled = measure_layer(f[:500], y[:500], f[500:], y[500:], 4.0, seed=1, y_view=view, **kw)
    assert view.out_dim == 16
    assert pooled["i_x"] == flat["i_x"] and pooled["i_x_monte_carlo_nats"] == flat["i_x_monte_carlo_nats"]
    assert pooled["i_y_nats"] > math.log(2) - 0.1 and abs(pooled["i_y_nats"] - flat["i_y_nats"]) < 0.1
    assert "averaged over a 2 x 2 grid (16 inputs" in pooled["i_y"]["notes"][-1]
    assert not any("averaged" in n for n in flat["i_y"]["notes"])


def test_layer_shapes_are_each_layers_unflattened_output():
    import torch
    from torch import nn

    from layerib.ib.trainers import layer_shapes
    from layerib.models.layered import LayeredNet
    net = LayeredNet([nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.MaxPool2d(2)),
                      nn.Sequential(nn.Flatten(), nn.Linear(64, 10))], [64, 10])
    assert layer_shapes(net, torch.zeros(2, 3, 8, 8)) == [(4, 4, 4), (10,)]


def test_the_reports_label_mi_trains_one_candidate_where_infonce_cannot_saturate():
    """I(Y; L) in the report: heads-InfoNCE alone where ln B >= ln K + 1 (its ceiling is above
    any I(Y; L) <= H(Y) <= ln K), noted; both auto candidates where B is too small."""
    import torch

    from layerib.ib.report import estimate_y_report
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 4, (700,), generator=g)
    x = torch.nn.functional.one_hot(y, 4).float() + 0.5 * torch.randn(700, 4, generator=g)
    kw = dict(seed=0, test=(x[500:], y[500:]), restarts=1, baseline=False, max_steps=100,
              eval_every=25)
    one = estimate_y_report(x[:500], y[:500], eval_batch_size=50, **kw)  # ln 50 = 3.9 >= ln 4 + 1
    assert [c[0] for c in one.candidates] == ["heads-infonce"] and one.bound == "infonce"
    assert "one candidate, heads-InfoNCE" in one.notes[-1]
    both = estimate_y_report(x[:500], y[:500], eval_batch_size=8, **kw)  # ln 8 = 2.1 < 2.4
    assert [c[0] for c in both.candidates] == ["heads-infonce", "heads-dv"]
    assert not any("one candidate" in n for n in both.notes)
