"""Early stopping: the best weights are kept, patience counts checks, the validation split."""

from __future__ import annotations

import json

import torch
from torch import nn

from layerib.config import TrainConfig
from layerib.runs.training import run_training, split_validation
from layerib.utils.early import EarlyStopping
from layerib.utils.loop import BatchLoop


def test_keeps_the_best_weights_and_stops_after_patience_checks():
    m = nn.Linear(2, 1)
    es = EarlyStopping(m, patience=2)
    stops = []
    for step, score in enumerate([1.0, 2.0, 1.5, 1.9, 3.0], start=1):
        with torch.no_grad():
            m.weight.fill_(step)
        stops.append(es.update(score, step))
    assert stops == [False, False, False, True, False] and es.best_step == 5
    es2 = EarlyStopping(m, patience=2)
    for step, score in enumerate([1.0, 2.0, 1.5], start=1):
        with torch.no_grad():
            m.weight.fill_(step)
        es2.update(score, step)
    es2.restore()
    assert torch.all(m.weight == 2.0) and es2.best_step == 2


def test_patience_zero_never_stops_and_loop_stop_ends_the_stage():
    es = EarlyStopping(nn.Linear(1, 1), patience=0)
    assert not any(es.update(-k, k) for k in range(10))
    loop = BatchLoop(100, 10, 50, torch.Generator().manual_seed(0))
    seen = 0
    for _ in loop:
        seen += 1
        if seen == 7:
            loop.stop()
    assert seen == 7 and loop.step == 7


def test_split_is_stratified_seeded_and_disjoint():
    from layerib.data.dataset import ImageDataset
    y = torch.arange(200) % 4
    d = ImageDataset(torch.arange(200.0)[:, None], y, 4, "t")
    fit, val = split_validation(d, 0.2, seed=3)
    assert len(val.labels) == 40 and len(fit.labels) == 160
    assert torch.bincount(val.labels).tolist() == [10, 10, 10, 10]
    assert not set(fit.images[:, 0].tolist()) & set(val.images[:, 0].tolist())
    assert torch.equal(split_validation(d, 0.2, seed=3)[1].images, val.images)
    assert split_validation(d, 0.0, seed=3) == (d, None)


def _stopping_cfg(root, **kw) -> TrainConfig:
    """A tiny MNIST run early-stopped on a 20 % split with patience 1."""
    return TrainConfig(data_root=str(root), download=False, widths=(32, 16, 10), batch_size=32,
                       min_steps_per_layer=60, epochs_per_layer=1, readout_epochs=1,
                       critic_hidden=16, mi_restarts=1, mi_baseline=False, mi_max_steps=200,
                       mi_eval_batch_size=50, evals_per_layer=2, val_fraction=0.2, patience=1,
                       val_checks=10, **kw)


def test_every_stage_early_stops_on_the_validation_split(tiny_mnist, tmp_path):
    cfg = _stopping_cfg(tiny_mnist, val_refit=False)
    res = run_training(cfg, tmp_path / "run")
    assert res["n_val"] == 60 and res["n_train"] == 240
    recs = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    val = [r for r in recs if r["stage"] == "validation"]
    assert {r.get("layer", r.get("unit")) for r in val} == {1, 2, 3, "read-out"}
    last = {}
    for r in val:
        last[r.get("layer", r.get("unit"))] = r
    assert any(r["step"] < 60 for r in last.values())  # patience 1: some stage stopped early
    assert all(r["best_step"] <= r["step"] for r in last.values())


def test_refit_trains_each_stage_for_its_scaled_best_step_on_all_rows(tiny_mnist, tmp_path,
                                                                     monkeypatch):
    """val_refit: each stage searches on the 240 fit rows with early stopping, then is
    reset to its initial weights and trained on all 300 rows for s* * 300 / 240 steps."""
    import layerib.ib.trainers as t
    calls = []  # (unit, rows, steps, with validation, first weight row at the start)
    layer_fn, readout_fn = t.layer_stage, t.ce_stage

    def layer_stage(layer, index, h, y, prior, cfg, g, spec, cbs, **kw):
        calls.append((index, len(h), spec.steps if spec.phase == "refit" else None,
                      kw.get("val") is not None, next(layer.parameters()).detach().clone()))
        return layer_fn(layer, index, h, y, prior, cfg, g, spec, cbs, **kw)

    def ce_stage(head, f, y, g, opts, spec, cbs, **kw):
        calls.append(("readout", len(f), spec.steps, kw.get("val") is not None,
                      head.weight.detach().clone()))
        return readout_fn(head, f, y, g, opts, spec, cbs, **kw)
    monkeypatch.setattr(t, "layer_stage", layer_stage)
    monkeypatch.setattr(t, "ce_stage", ce_stage)
    cfg = _stopping_cfg(tiny_mnist, val_refit=True)
    res = run_training(cfg, tmp_path / "run")
    assert [c[:2] + (c[3],) for c in calls] == [
        (u, n, v) for u in (1, 2, 3, "readout") for n, v in ((240, True), (300, False))]
    recs = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    refits = {r["unit"]: r for r in recs if r["stage"] == "refit"}
    assert set(refits) == {"layer1", "layer2", "layer3", "readout"} == set(res["refit"])
    for (search, refit), name in zip(zip(calls[::2], calls[1::2]), refits):
        best = refits[name]["best_step"]
        assert 1 <= best <= 60 * cfg.budget_extend and refit[2] == round(best * 300 / 240) == refits[name]["refit_steps"]
        assert torch.equal(search[4], refit[4])  # the refit starts from the search's initial weights
        assert res["refit"][name] == {"best_step": best, "refit_steps": refit[2], "rows": 300}
    assert any(r["best_step"] < 60 for r in refits.values())  # patience 1: some stage stopped
    layer1 = [r["step"] for r in recs if r["stage"] == "layer" and r["layer"] == 1]
    assert layer1[-1] == refits["layer1"]["refit_steps"]  # the stage's records are the refit's
    assert res["n_train"] == 240 and res["n_val"] == 60
    # the automatic beta is 600 / every training image given (300), not / the 240 fit rows
    assert res["beta_auto"] and res["beta"] == 600 / 300


def test_refit_off_or_without_validation_is_the_plain_run(tiny_mnist, tmp_path):
    """val_refit without a validation split changes nothing: result and weights identical."""
    kw = dict(data_root=str(tiny_mnist), download=False, widths=(16, 10), batch_size=64,
              min_steps_per_layer=8, epochs_per_layer=1, readout_epochs=1, critic_hidden=8,
              mi_restarts=1, mi_baseline=False, mi_max_steps=200, mi_eval_batch_size=50, evals_per_layer=2, val_fraction=0.0)
    a = run_training(TrainConfig(**kw, val_refit=False), tmp_path / "a")
    b = run_training(TrainConfig(**kw, val_refit=True), tmp_path / "b")
    assert a["test_accuracy"] == b["test_accuracy"] and a["layers"] == b["layers"]
    assert "refit" not in a and "refit" not in b
    ma, mb = (torch.load(tmp_path / d / "model.pt") for d in "ab")
    assert all(torch.equal(ma["net"][k], mb["net"][k]) for k in ma["net"])


def test_refit_with_the_prefix_recomputed_per_batch_equals_the_cached_prefix(tiny_mnist, tmp_path):
    kw = dict(data_root=str(tiny_mnist), download=False, widths=(16, 12, 10), batch_size=64,
              min_steps_per_layer=12, epochs_per_layer=1, readout_epochs=1, critic_hidden=8,
              mi_restarts=1, mi_baseline=False, mi_max_steps=200, mi_eval_batch_size=50, evals_per_layer=2, val_fraction=0.2,
              val_refit=True, patience=2, val_checks=6)
    a = run_training(TrainConfig(**kw, frozen_cache="memory"), tmp_path / "a")
    b = run_training(TrainConfig(**kw, frozen_cache="recompute"), tmp_path / "b")
    assert a["refit"] == b["refit"] and a["test_accuracy"] == b["test_accuracy"]
    ma, mb = (torch.load(tmp_path / d / "model.pt") for d in "ab")
    assert all(torch.equal(ma["net"][k], mb["net"][k]) for k in ma["net"])


def test_refit_progress_bar_counts_each_phase_against_its_own_total(monkeypatch):
    """The layer bar counts the search against its budget, then restarts for the refit."""
    import layerib.runs.training as t
    from layerib.ib.stage import StageSpec

    class Bar:
        def __init__(self, total, desc):
            self.desc, self.n, self.total, self.log = desc, 0, total, [("desc", desc)]

        def set_description(self, d):
            self.desc = d
            self.log.append(("desc", d))

        def reset(self, total):
            self.n, self.total = 0, total
            self.log.append(("reset", total))

        def update(self, k=1):
            self.n += k
            assert self.n <= self.total, (self.n, self.total)

        def close(self):
            pass

    bars = []
    monkeypatch.setattr(t, "_bar", lambda progress, total, desc: bars.append(Bar(total, desc))
                        or bars[-1])
    pb = t.ProgressBars(2, "ib")
    for spec in (StageSpec("layer1", 10, phase="search"), StageSpec("layer1", 8, phase="refit")):
        pb.on_stage_start(spec, 0)
        for step in range(1, spec.steps + 1):
            pb.on_step(spec, step, dict)
    (bar,) = bars
    assert bar.log == [("desc", "layer 1/2 (ib) search"), ("reset", 8),
                       ("desc", "layer 1/2 (ib) refit")] and bar.n == 8


def _readout_run(extend: int, lr: float, patience: int = 3):
    """A read-out on separable data, 10-step budget checked every step; returns its best
    step, the steps it ran and its weights."""
    from layerib.ib.endtoend import fit_readout
    g = torch.Generator().manual_seed(0)
    x = torch.randn(400, 5, generator=g)
    y = (x[:, 0] > 0).long()
    seen, best = [], []
    torch.manual_seed(0)  # the head's initial weights
    head = fit_readout(x[:300], y[:300], 2, nn.Linear(5, 2), steps=10, batch_size=32, lr=lr,
                       g=torch.Generator().manual_seed(1), val=(x[300:], y[300:]), val_checks=10,
                       patience=patience, on_val=seen.append, on_best=best.append,
                       budget_extend=extend)
    return best[0], seen[-1]["step"], head.weight.detach().clone()


def test_a_stage_still_improving_at_its_budget_goes_on_up_to_budget_extend_times_it():
    """budget_extend: checks at the budget's interval continue past it while the score
    improves; a stage that stops before its budget is the same run whatever the extension."""
    best1, ran1, _ = _readout_run(1, lr=1e-2)
    best3, ran3, _ = _readout_run(3, lr=1e-2)
    assert ran1 == 10 and best1 <= 10  # stopped by the budget
    assert best3 > 10 and 10 < ran3 <= 30  # went on while it improved, at most 3 x 10 steps
    _, ran, w1 = _readout_run(1, lr=1.0, patience=1)
    _, ran_ext, w3 = _readout_run(3, lr=1.0, patience=1)
    assert ran < 10 and ran_ext == ran and torch.equal(w1, w3)  # stopped early: identical


def test_budget_extend_is_off_by_default_as_in_old_runs():
    """Runs written before budget_extend existed stopped at their budget, as the default does."""
    from layerib.config import effective_settings
    assert TrainConfig().budget_extend == 1
    old = {k: v for k, v in TrainConfig().to_dict().items() if k != "budget_extend"}
    assert effective_settings(old)["budget_extend"] == 1
