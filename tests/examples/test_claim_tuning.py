"""examples/claim_tuning.py: tuning on the images outside each subset, then the chosen
settings at more seeds, on layerib's sweep runner (tiny MNIST, fast settings)."""

import importlib.util
import json
from pathlib import Path

import pytest

from layerib.sweep.spec import expand

ROOT = Path(__file__).resolve().parents[2]
FAST = dict(dataset="mnist", train_fraction=0.5, widths=[16, 10], batch_size=32,
            epochs_per_layer=1, min_steps_per_layer=20, ce_epochs=1, readout_epochs=1,
            critic_hidden=16, mi_restarts=1, mi_baseline=False, mi_max_steps=100,
            evals_per_layer=1, infoplane_evals=0, download=False)


def _claim():
    spec = importlib.util.spec_from_file_location("claim_tuning", ROOT / "examples" / "claim_tuning.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_tunes_on_validation_then_tests_the_chosen_setting(tiny_mnist, tmp_path):
    claim = _claim()
    grids = {"ib": [{"beta": 1e-3}, {"beta": 1e2}], "iy": [{"lr_layer": 1e-3}]}
    out = tmp_path / "claim"
    table = claim.run(out, grids=grids, base=FAST, tune_seeds=(0, 1), eval_seeds=(0, 1, 2),
                      jobs=2, data_root=str(tiny_mnist))
    scores = {k: sum(v) / len(v) for k, v in table["validation"].items()}
    ib = next(c for c in table["cells"] if c["method"] == "ib")
    # the chosen setting is the validation score's best, then run at every evaluation seed
    best = max(grids["ib"], key=lambda s: scores[f"ib/{claim.tag(s)}"])
    assert ib["chosen"] == best and ib["seeds"] == [0, 1, 2] and len(ib["accuracy_percent"]) == 3
    for k, acc in zip(ib["seeds"], ib["accuracy_percent"]):  # the cell's numbers are the runs'
        folder = next(out / "ib" / p.name for p in expand(claim.method_spec(
            "ib", grids["ib"], FAST, (0, 1), (0, 1, 2), best)) if p.overrides == {**best, "seed": k})
        assert acc == pytest.approx(100 * json.loads((folder / "result.json").read_text())["test_accuracy"])
    # the tuning points kept their folders: the losing setting ran at the tuning seeds only
    assert len(list((out / "ib").glob("*/result.json"))) == 2 + 3
    assert [r["contrast"] for r in table["paired"]] == ["ib - iy"]
    assert "| ib | beta" in (out / "claim.md").read_text()
    # run again: every point is found finished, nothing is trained, the same table comes back
    again = claim.run(out, grids=grids, base=FAST, tune_seeds=(0, 1), eval_seeds=(0, 1, 2),
                      jobs=2, data_root=str(tiny_mnist))
    assert again["cells"] == table["cells"]
