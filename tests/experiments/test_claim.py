"""`layerib reproduce claim`: tuning on images outside the test set, resume, paired differences.

One tiny study (the ``tiny`` setting on fake MNIST, 15 runs) is run once per module; the
resume and test-label tests work on copies of it.
"""

import importlib.util
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import make_tiny_mnist, write_idx

from layerib.cli import main
from layerib.errors import ConfigError
from layerib.experiments import EXPERIMENTS, claim
from layerib.experiments.table1 import paired_differences
from layerib.sweep.spec import expand

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """``(data root, study folder, claim.json, printed lines)`` of one finished tiny study."""
    tmp = tmp_path_factory.mktemp("claim")
    root = make_tiny_mnist(tmp / "data")
    out = tmp / "study"
    args = ["reproduce", "claim", "--setting", "tiny", "--data-root", str(root), "--offline",
            "--no-progress", "--workers", "2", "--out", str(out)]
    assert main(args) == 0
    return root, out, json.loads((out / "claim.json").read_text())


def _results(out: Path) -> dict[Path, tuple[int, str]]:
    return {p: (p.stat().st_mtime_ns, p.read_text()) for p in out.glob("*/*/*/result.json")}


def test_tunes_on_validation_then_tests_the_chosen_settings(study):
    root, out, table = study
    s = claim.SETTINGS["tiny"]
    assert table["experiment"] == "claim" and "claim" in EXPERIMENTS
    for m in claim.METHODS:
        scores = {claim.tag(g): table["validation"][f"{m}/{claim.tag(g)}"] for g in s.grids[m]}
        assert all(len(v) == len(s.tune_seeds) for v in scores.values())
        assert claim.tag(table["chosen"][m]) == claim.select(scores)  # the validation's best
        cell = next(c for c in table["cells"] if c["method"] == m)
        assert cell["seeds"] == [0, 1, 2] and cell["chosen"] == table["chosen"][m]
        for run, acc in zip(cell["runs"], cell["accuracy_percent"]):  # the cell's numbers are the runs'
            result = json.loads((out / run / "result.json").read_text())
            assert acc == pytest.approx(100 * result["test_accuracy"])
        # the tuning runs at the chosen setting are reused; only seed 2 is trained for the test
        assert cell["runs"][:2] == [str(Path("tune") / m / p.name) for p in expand(
            claim.tuning_spec(s, m, {})) if p.overrides == {**cell["chosen"], "seed": p.overrides["seed"]}]
        assert cell["runs"][2].startswith(str(Path("test") / m))
        assert len(list((out / "tune" / m).glob("*/result.json"))) == 4  # 2 settings x 2 seeds
        assert len(list((out / "test" / m).glob("*/result.json"))) == 1
    assert [r["contrast"] for r in table["paired"]] == ["ib - iy", "ib - ce"]
    assert all(r["n"] == 3 and r["label"] == "tiny" for r in table["paired"])
    md = (out / "claim.md").read_text()
    assert "| ib | beta0.001 |" in md and "| tiny | ib - ce | 3 |" in md


def test_a_stopped_study_resumes_without_retraining_and_gives_the_same_table(study, tmp_path):
    root, done, table = study
    out = tmp_path / "study"
    shutil.copytree(done, out)
    # stopped: the claim files not yet written, ib's test run never started, one tuning
    # point never started and one killed before it wrote its result
    for name in ("claim.json", "claim.md"):
        (out / name).unlink()
    shutil.rmtree(out / "test" / "ib")
    first_iy, *_ = sorted((out / "tune" / "iy").glob("*/result.json"))
    shutil.rmtree(first_iy.parent)
    first_ce, *_ = sorted((out / "tune" / "ce").glob("*/result.json"))
    first_ce.unlink()
    kept = _results(out)
    again = claim.run(out, setting="tiny", data_root=str(root), download=False, workers=2)
    after = _results(out)
    assert all(after[p] == kept[p] for p in kept)  # finished points were not retrained
    assert set(after) - set(kept) == {first_iy, first_ce, *(out / "test" / "ib").glob("*/result.json")}
    for key in ("validation", "chosen", "cells", "paired"):  # the uninterrupted study's table
        assert again[key] == table[key], key


def test_a_resumed_study_reads_the_kept_scores_and_rescores_a_retrained_run(study, tmp_path,
                                                                         monkeypatch):
    root, done, table = study
    out = tmp_path / "study"
    shutil.copytree(done, out)
    kept = sorted((out / "tune").glob("*/*/" + claim.SCORE_FILE))
    assert len(kept) == 12  # every tuning run scored once, its score kept beside its result
    scored = []

    def count(folder, data_root=None):
        scored.append(Path(folder))
        return real(folder, data_root)
    real = claim.outside_subset_accuracy
    monkeypatch.setattr(claim, "outside_subset_accuracy", count)
    again = claim.run(out, setting="tiny", data_root=str(root), download=False)
    assert scored == [] and again["validation"] == table["validation"]
    result = kept[0].parent / "result.json"  # as if trained again: its result changed
    result.write_text(result.read_text() + "\n")
    again = claim.run(out, setting="tiny", data_root=str(root), download=False)
    assert scored == [kept[0].parent] and again["validation"] == table["validation"]


def test_the_choice_never_reads_test_labels_or_test_accuracies(study, tmp_path):
    root, done, table = study
    out, poisoned = tmp_path / "study", tmp_path / "data"
    shutil.copytree(done, out)
    shutil.copytree(root, poisoned)
    # every test label wrong, and every tuning run's test accuracy reversed: 0 for the
    # chosen settings, 1 for the others (a choice by test accuracy would flip)
    labels = (np.arange(200) % 10 + 1) % 10
    write_idx(poisoned / "MNIST" / "raw" / "t10k-labels-idx1-ubyte", labels, 2049)
    for m in claim.METHODS:
        for f in (out / "tune" / m).glob("*/result.json"):
            point = json.loads((f.parent / "config.json").read_text())["config"]
            result = json.loads(f.read_text())
            is_chosen = all(point[k] == v for k, v in table["chosen"][m].items())
            result["test_accuracy"] = 0.0 if is_chosen else 1.0
            f.write_text(json.dumps(result))
    (out / "claim.json").unlink()
    again = claim.run(out, setting="tiny", data_root=str(poisoned), download=False)
    assert again["validation"] == table["validation"] and again["chosen"] == table["chosen"]


def test_force_deletes_the_runs_before_training_again(study, tmp_path, monkeypatch):
    root, done, table = study
    out = tmp_path / "study"
    shutil.copytree(done, out)

    class Stop(Exception):
        pass

    def first_sweep(spec, folder, workers, progress):  # the first sweep finds no earlier run
        assert not (out / "tune").exists() and not (out / "test").exists()
        raise Stop

    monkeypatch.setattr(claim, "_sweep", first_sweep)
    with pytest.raises(Stop):
        claim.run(out, setting="tiny", data_root=str(root), force=True)


def test_select_takes_the_best_mean_and_the_first_of_equals():
    assert claim.select({"a": [0.5, 0.9], "b": [0.8, 0.7], "c": [0.75, 0.75]}) == "b"
    assert claim.select({"x": [0.6], "y": [0.6]}) == "x"


def test_paired_differences_on_known_numbers():
    cells = [{"setting": "s", "method": "ib", "seeds": [0, 1, 2, 3, 4], "accuracy_percent": [90, 91, 92, 93, 94]},
             {"setting": "s", "method": "iy", "seeds": [0, 1, 2, 3, 4], "accuracy_percent": [89] * 5},
             {"setting": "s", "method": "ce", "seeds": [0, 1, 2, 3, 4], "accuracy_percent": [90, 92, 91, 95, 93]}]
    iy, ce = paired_differences(cells, cells, labels={"s": "S"})
    # ib - iy: d = 1..5, mean 3, s = sqrt(2.5); half width t_{0.975, 4} s / sqrt(5) with
    # t_{0.975, 4} = 2.776445: 2.776445 * 0.707107 = 1.963243
    assert (iy["contrast"], iy["label"], iy["n"]) == ("ib - iy", "S", 5)
    assert iy["mean_percent"] == pytest.approx(3.0)
    assert (iy["low_percent"], iy["high_percent"]) == pytest.approx((1.036757, 4.963243), abs=1e-5)
    assert iy["significant"] is True and iy["verdict"] == "ib ahead, significant"
    # ib - ce: d = 0, -1, 1, -2, 1; mean -0.2, s = sqrt(6.8 / 4) = 1.303840; s / sqrt(5) =
    # 0.583095, half 2.776445 * 0.583095 = 1.618932
    assert ce["mean_percent"] == pytest.approx(-0.2)
    assert (ce["low_percent"], ce["high_percent"]) == pytest.approx((-1.818932, 1.418932), abs=1e-5)
    assert ce["significant"] is False and "not significant" in ce["verdict"]


def test_every_setting_is_fair_and_its_runs_are_valid():
    assert {"mnist1", "mnist5", "mnist10", "mnist100", "digits", "cifar10-10", "tiny"} <= set(claim.SETTINGS)
    for name, s in claim.SETTINGS.items():
        s.check(name)
        assert len(s.test_seeds) >= (3 if name == "tiny" else 5)
        for m in claim.METHODS:
            points = expand(claim.tuning_spec(s, m, {}))
            assert len(points) == s.budget  # the same budget for every method
            assert all(p.config.train_fraction == s.tuning_fraction < 1 for p in points)
            test = expand(claim.testing_spec(s, m, s.grids[m][0], {}))
            assert [p.config.seed for p in test] == list(claim.seeds_to_test(s))
    mnist1 = claim.SETTINGS["mnist1"]  # the study of docs/results/claim_mnist1.md
    assert mnist1.tune_seeds == (0, 1, 2) and mnist1.test_seeds == (0, 1, 2, 3, 4)
    assert len(mnist1.grids["ib"]) == len(mnist1.grids["ce"]) == 6
    assert claim.seeds_to_test(claim.SETTINGS["mnist100"]) == (0, 1, 2, 3, 4)  # nothing reused


def test_unfair_or_unvalidatable_settings_are_refused():
    s = claim.SETTINGS["tiny"]
    unfair = claim.ClaimSetting("x", s.base, {**s.grids, "ce": s.grids["ce"][:1]})
    with pytest.raises(ConfigError, match="same, non-zero number of settings"):
        unfair.check("x")
    whole = claim.ClaimSetting("x", {**s.base, "train_fraction": 1.0}, s.grids)
    with pytest.raises(ConfigError, match="nothing left to validate on"):
        whole.check("x")


def test_cli_options_belong_to_their_reproduction(tmp_path, capsys):
    assert main(["reproduce", "claim", "--out", str(tmp_path / "c")]) == 2
    assert "needs --setting NAME" in capsys.readouterr().err
    assert main(["reproduce", "fig1", "--setting", "tiny", "--out", str(tmp_path / "f")]) == 2
    assert "--setting applies to claim only" in capsys.readouterr().err
    assert main(["reproduce", "claim", "--setting", "nope", "--out", str(tmp_path / "c")]) == 2
    assert "unknown claim setting 'nope'" in capsys.readouterr().err
    assert main(["reproduce", "claim", "--setting", "tiny", "--seed", "3", "--out", str(tmp_path / "c")]) == 2
    assert "drop --seed" in capsys.readouterr().err


def test_the_example_is_the_mnist1_setting(tmp_path, monkeypatch, capsys):
    spec = importlib.util.spec_from_file_location("claim_tuning", ROOT / "examples" / "claim_tuning.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    calls = []

    def fake_run(out, **kw):
        calls.append(kw)
        (out / "claim.md").write_text("table\n")

    monkeypatch.setattr(mod, "run", fake_run)
    mod.main([str(tmp_path), "--jobs", "2", "--data-root", "D"])
    assert calls == [{"setting": "mnist1", "workers": 2, "data_root": "D"}]
    assert capsys.readouterr().out == "table\n"
