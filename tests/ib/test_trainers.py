"""The trainers as library objects: callbacks, the records' phases, TensorBoard, the layering rule."""

from __future__ import annotations

import ast
import json
import sys
from pathlib import Path

import pytest
import torch

import layerib
from layerib.config import TrainConfig
from layerib.data.mnist import ImageDataset
from layerib.errors import ConfigError
from layerib.ib.callbacks import Callback, TensorBoardCallback
from layerib.ib.stage import PHASES, StageSpec
from layerib.ib.trainers import (EndToEndCE, LayerwiseTrainer, make_trainer, resolve_settings)
from layerib.models.mlp import mlp
from layerib.runs.training import run_training

SRC = Path(__file__).resolve().parents[2] / "src" / "layerib"
#: the stage records (every record written during a stage; "final" is the run's)
STAGE_RECORDS = {"layer", "validation", "readout", "ce", "refit", "infoplane"}
TINY = dict(widths=(16, 10), batch_size=64, epochs_per_layer=1, min_steps_per_layer=8,
            readout_epochs=1, ce_epochs=1, critic_hidden=8, mi_restarts=1, mi_baseline=False,
            mi_max_steps=100, mi_eval_batch_size=50, evals_per_layer=2, infoplane_evals=2,
            infoplane_critic_steps=3, val_checks=4, patience=2, download=False)


def _toy(n=200, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 4
    x = torch.randn(n, 8, generator=g) * 0.3
    x[torch.arange(n), y] += 2.0
    return x, y


class _Log(Callback):
    """Remembers every call in order, with its stage and phase."""

    def __init__(self):
        self.calls, self.records = [], []

    def on_stage_start(self, spec, step):
        self.calls.append(("start", spec.name, spec.phase, step))

    def on_step(self, spec, step, state):
        self.calls.append(("step", spec.name, spec.phase, step))

    def on_eval(self, record):
        self.records.append(record)

    def on_stage_end(self, name, steps, state):
        self.calls.append(("end", name, state()["done"]))


@pytest.mark.parametrize("method,units", [("ib", ["layer1", "layer2", "readout"]),
                                          ("ce", ["ce"])])
@pytest.mark.parametrize("refit", [False, True])
def test_records_say_their_phase_and_each_phase_runs_forward_in_steps(tiny_mnist, tmp_path,
                                                                      method, units, refit):
    """The report's defect: a refit's records and its search's must be told apart."""
    cfg = TrainConfig(data_root=str(tiny_mnist), method=method, val_fraction=0.2,
                      val_refit=refit, **TINY)
    run_training(cfg, tmp_path / "run")
    recs = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text()
            .splitlines()]
    stage_recs = [r for r in recs if r["stage"] in STAGE_RECORDS]
    assert stage_recs and all(r["phase"] in PHASES for r in stage_recs)
    assert [r["stage"] for r in recs if r["stage"] not in STAGE_RECORDS] == ["final"]
    phases = {r["phase"] for r in stage_recs}
    assert phases == ({"search", "refit"} if refit else {"fit"})
    if refit:  # a search writes only its checks and epoch losses; the refit its MI records
        assert all(r["phase"] == "refit" for r in stage_recs if r["stage"] in
                   ("layer", "refit", "infoplane"))
        assert all(r["phase"] == "search" for r in stage_recs if r["stage"] == "validation")
        assert {r["unit"] for r in stage_recs if r["stage"] == "refit"} == set(units)
    for stage in ("readout", "ce", "layer"):  # within one unit and phase, steps only grow
        keys = {(r.get("layer"), r["phase"]) for r in stage_recs if r["stage"] == stage}
        for key in keys:
            steps = [r["step"] for r in stage_recs
                     if r["stage"] == stage and (r.get("layer"), r["phase"]) == key]
            assert steps == sorted(steps) and len(set(steps)) == len(steps), (stage, key, steps)


def test_a_users_callback_sees_every_stage_step_and_record_in_order():
    x, y = _toy()
    log = _Log()
    res = layerib.train_layerwise(mlp((8,), (12, 4)), (x[:150], y[:150]),
                                  (x[150:], y[150:]), callbacks=[log], val_fraction=0.2,
                                  val_refit=True, **{k: v for k, v in TINY.items()
                                                     if k not in ("widths", "download")})
    starts = [c[1:3] for c in log.calls if c[0] == "start"]
    assert starts == [("layer1", "search"), ("layer1.refit", "refit"), ("layer2", "search"),
                      ("layer2.refit", "refit"), ("readout", "search"),
                      ("readout.refit", "refit"), ("report", "fit")]
    assert [c[1:] for c in log.calls if c[0] == "end"] == [("layer1", 1), ("layer2", 2),
                                                           ("readout", 3)]
    steps = [c for c in log.calls if c[0] == "step"]
    refit1 = [c[3] for c in steps if c[1] == "layer1.refit"]
    assert refit1 == list(range(1, res.result["refit"]["layer1"]["refit_steps"] + 1))
    assert log.records == res.records  # the user's callback sees what the run records
    assert log.records[-1]["stage"] == "final"


def test_callbacks_must_be_callbacks():
    x, y = _toy()
    with pytest.raises(ConfigError, match="callbacks must be layerib.ib.callbacks.Callback"):
        layerib.train_layerwise(mlp((8,), (12, 4)), (x, y), callbacks=[print])


def test_trainers_take_their_methods_only():
    net = mlp((8,), (12, 4))
    with pytest.raises(ConfigError, match="use EndToEndCE for ce"):
        LayerwiseTrainer(net, resolve_settings(TrainConfig(method="ce"), 100))
    with pytest.raises(ConfigError, match="use LayerwiseTrainer for ib and iy"):
        EndToEndCE(net, resolve_settings(TrainConfig(method="iy"), 100))
    assert isinstance(make_trainer(net, resolve_settings(TrainConfig(method="iy"), 100)),
                      LayerwiseTrainer)


def test_settings_are_resolved_once_at_the_top():
    s = resolve_settings(TrainConfig(beta=None, x_bound="dv"), 300)
    assert s.cfg.beta == 2.0 and s.beta_auto and s.critic_update == "alternating"
    assert s.device == torch.device("cpu")
    assert resolve_settings(TrainConfig(method="ce"), 300).critic_update is None


def test_stage_spec_names_and_bad_phase():
    assert StageSpec("readout", 10).name == "readout" and StageSpec("readout", 10).limit == 10
    assert StageSpec("ce", 4, 8, phase="refit").name == "ce.refit"
    with pytest.raises(ValueError, match="stage phase must be one of search, refit, fit"):
        StageSpec("ce", 4, phase="final")


def test_trainer_fit_without_a_run_folder_and_resume_from_its_state():
    """A trainer resumes from the state a callback was given (a checkpoint without a file)."""
    x, y = _toy()
    data, test = ImageDataset(x[:150], y[:150], 4, "toy"), ImageDataset(x[150:], y[150:], 4, "toy")
    cfg = TrainConfig(method="ib", val_fraction=0.0, beta=0.01, **TINY)

    class Stop(Exception):
        pass

    class SaveAndStop(Callback):
        def __init__(self):
            self.saved = None

        def on_step(self, spec, step, state):
            if spec.name == "layer2" and step == 4:
                self.saved = state()
                raise Stop

    def fresh():
        torch.manual_seed(0)
        return mlp((8,), (16, 10))
    ref = make_trainer(fresh(), resolve_settings(cfg, 150)).fit(data, test)
    stopper = SaveAndStop()
    with pytest.raises(Stop):
        make_trainer(fresh(), resolve_settings(cfg, 150)).fit(data, test, callbacks=[stopper])
    assert stopper.saved["done"] == 1 and stopper.saved["local"]["loop"]["step"] == 4
    resumed = make_trainer(fresh(), resolve_settings(cfg, 150)).fit(data, test,
                                                                    resume=stopper.saved)
    strip = lambda r: {k: v for k, v in r.items() if k not in ("wall_seconds", "report_seconds",
                                                              "report_cpu_seconds")}  # noqa: E731
    assert strip(resumed.result) == strip(ref.result)


def test_tensorboard_callback_writes_the_records(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    x, y = _toy()
    tb = TensorBoardCallback(tmp_path / "tb")
    layerib.train_layerwise(mlp((8,), (12, 4)), (x[:150], y[:150]), (x[150:], y[150:]),
                            callbacks=[tb], val_fraction=0.0,
                            **{k: v for k, v in TINY.items() if k not in ("widths", "download")})
    tb.close()
    acc = EventAccumulator(str(tmp_path / "tb"))
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    assert {"layer/1/test_i_y_nats", "layer/2/train_i_x_nats", "readout/train_ce",
            "final/test_accuracy"} <= tags
    assert [e.step for e in acc.Scalars("layer/1/test_i_y_nats")] == [4, 8]


def test_tensorboard_missing_is_a_one_line_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import fails
    with pytest.raises(ImportError, match="^TensorBoardCallback needs the tensorboard package: "
                                          "pip install tensorboard$"):
        TensorBoardCallback("unused")


def _imports(path: Path):
    """``(module, line, at top level)`` of every import; ``if TYPE_CHECKING:`` counts as top."""
    tree = ast.parse(path.read_text())
    top = set()
    for node in tree.body:
        top.add(id(node))
        if isinstance(node, ast.If) and getattr(node.test, "id", "") == "TYPE_CHECKING":
            top.update(id(n) for n in node.body)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            yield node.module or "", node.lineno, id(node) in top
        elif isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno, id(node) in top


def test_ib_never_imports_the_app_layer_nor_inside_functions():
    app = ("runs", "cli", "experiments", "sweep", "report", "plotting", "analysis")
    optional = {"torch.utils.tensorboard"}  # optional dependencies load where they are used
    bad = []
    for path in sorted((SRC / "ib").glob("*.py")):
        for module, line, at_top in _imports(path):
            parts = module.split(".")
            if parts[0] == "layerib" and len(parts) > 1 and parts[1] in app:
                bad.append(f"{path.name}:{line} imports {module}")
            if not at_top and module not in optional:
                bad.append(f"{path.name}:{line} imports {module} inside a function")
    assert bad == []


def test_the_api_trains_through_the_core_and_uses_runs_only_for_a_run_folder():
    tree = ast.parse((SRC / "api" / "training.py").read_text())
    names = {m: {a.name for a in n.names} for n in tree.body if isinstance(n, ast.ImportFrom)
             for m in [n.module]}
    assert {"make_trainer", "resolve_settings"} <= names["layerib.ib.trainers"]
    from_runs = set().union(*(v for m, v in names.items() if m.startswith("layerib.runs")))
    # the run folder's glue (train_net: out given), its writers and the progress bars
    assert from_runs <= {"train_net", "ProgressBars", "atomic_torch_save", "atomic_write_json",
                         "check_run_dir", "versions"}
