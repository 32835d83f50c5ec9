"""`layerib reproduce table1 --preset quick` end to end on tiny fake MNIST and CIFAR-10."""

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
from conftest import make_tiny_mnist

from layerib.cli import main
from layerib.config import TrainConfig
from layerib.data.cifar10 import CIFAR10_CLASSES
from layerib.errors import ConfigError
from layerib.experiments import EXPERIMENTS, table1


def write_tiny_cifar(root: Path, per_batch: int = 100, n_test: int = 100, seed: int = 0) -> Path:
    """Official python batches (protocol-2 pickles, bytes keys) of a learnable fake CIFAR:
    class c brightens channel c % 3 in a class-specific 8x8 square, plus noise."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)

    def batch(n):
        labels = rng.integers(0, 10, size=n)
        img = rng.integers(0, 80, size=(n, 3, 32, 32))
        for k, c in enumerate(labels):
            r, col = 8 * (c // 4), 8 * (c % 4)
            img[k, c % 3, r:r + 8, col:col + 8] = 250
        return {b"labels": [int(v) for v in labels], b"data": img.reshape(n, 3072).astype(np.uint8)}

    for name, n in [*((f"data_batch_{i}", per_batch) for i in range(1, 6)), ("test_batch", n_test)]:
        (folder / name).write_bytes(pickle.dumps(batch(n), protocol=2))
    meta = {b"label_names": [c.encode() for c in CIFAR10_CLASSES]}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))
    return root


@pytest.fixture
def tiny_root(tmp_path) -> Path:
    root = make_tiny_mnist(tmp_path / "data", n_train=1000, n_test=100)
    return write_tiny_cifar(root)


def test_registered_and_presets():
    assert "table1" in EXPERIMENTS
    for name in ("quick", "paper"):
        p = table1.resolve_preset(name)
        assert {s for s, _ in p.cells} == set(table1.SETTINGS)
        assert {m for _, m in p.cells} == {"ce", "iy", "ib", "ce_strong"}
        cifar = p.cells[("cifar10", "ib")]
        assert cifar.dataset == "cifar10" and cifar.arch == "conv" and cifar.method == "ib"
        assert p.cells[("cifar10", "ce_strong")].augment == "crop_flip"
        assert p.cells[("mnist1", "iy")].train_fraction == 0.01
    assert table1.resolve_preset("paper").seeds == 3
    assert table1.resolve_preset("paper").cells[("mnist100", "ib")].train_fraction == 1.0
    assert table1.resolve_preset("default") == table1.resolve_preset("paper")
    with pytest.raises(ConfigError, match="unknown table1 preset 'huge'"):
        table1.resolve_preset("huge")
    with pytest.raises(ConfigError, match="--seeds must be an integer >= 1"):
        table1.resolve_preset("quick", seeds=0)


def test_table1_quick_end_to_end_and_resume(tiny_root, tmp_path, capsys, monkeypatch):
    out = tmp_path / "t1"
    argv = ["reproduce", "table1", "--preset", "quick", "--data-root", str(tiny_root),
            "--offline", "--no-progress", "--out", str(out), "--seeds", "1"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "10 of 10 cell/seed runs finished" in printed and "results in" in printed
    res = json.loads((out / "table1.json").read_text())
    assert res["experiment"] == "table1" and res["preset"] == "quick"
    cells = {(c["setting"], c["method"]): c for c in res["cells"]}
    assert len(cells) == 10
    for (setting, method), c in cells.items():
        assert c["seeds"] == [0] and len(c["accuracy_percent"]) == 1
        assert 0 <= c["accuracy_percent"][0] <= 100
        assert c["mean_percent"] == c["accuracy_percent"][0] and c["std_percent"] is None
        assert c["paper_percent"] is None  # tiny stand-in data: no paper number beside it
        assert c["config_matches_preset"] and "seed" not in c["config"]
        assert len(c["wall_seconds"]) == 1 and c["config"]["method"] == (
            "ce" if method == "ce_strong" else method)
        run = json.loads((out / setting / method / "seed0" / "result.json").read_text())
        assert run["seed"] == 0 and run["dataset"] == c["config"]["dataset"]
    assert cells[("cifar10", "ib")]["data_source"] == ["python-batches"]
    assert cells[("cifar10", "ib")]["n_train"] == 10  # 2% of 500
    assert cells[("mnist1", "ib")]["n_train"] == 10 and cells[("mnist100", "ce")]["n_train"] == 50
    assert cells[("cifar10", "ce_strong")]["paper_percent_if_full_data"] is None
    assert cells[("mnist1", "ib")]["paper_percent_if_full_data"] == 86.57
    assert cells[("mnist1", "iy")]["beta"] == 0.0 and cells[("mnist1", "ib")]["beta"] > 0
    assert cells[("mnist1", "ce")]["beta"] is None  # CE trains no IB term: no beta shown
    md = (out / "table1.md").read_text()
    # 3 (4) cells, then 2 paired rows (IB - iy, IB - CE; one seed: no interval) per setting
    assert md.count("| MNIST 1% |") == 3 + 2 and md.count("| CIFAR-10 |") == 4 + 2
    assert md.count("fewer than 2 paired seeds") == 6 and "IB - iy and IB - CE" in md
    assert "Stronger CE baseline" in md and "augment=crop_flip" in md
    assert "Settings differ" not in md

    # resume: finished cell/seeds are not run again; one more seed runs only that seed
    ran = []
    import layerib.runs.training as train_mod  # table1.run imports run_training from here when called
    original = train_mod.run_training

    def counting(cfg, out_dir, **kw):
        ran.append(Path(out_dir).relative_to(out).as_posix())
        return original(cfg, out_dir, **kw)
    monkeypatch.setattr(train_mod, "run_training", counting)
    res2 = table1.run(out, preset="quick", seeds=1, data_root=str(tiny_root), download=False)
    assert ran == [] and res2["cells"][0]["accuracy_percent"] == res["cells"][0]["accuracy_percent"]
    res3 = table1.run(out, preset="quick", seeds=2, data_root=str(tiny_root), download=False,
                      cells=["mnist1/iy"])
    assert ran == ["mnist1/iy/seed1"]
    c = next(c for c in res3["cells"] if (c["setting"], c["method"]) == ("mnist1", "iy"))
    assert c["seeds"] == [0, 1]  # mean and sample std over the two seeds
    assert c["mean_percent"] == pytest.approx(np.mean(c["accuracy_percent"]), abs=1e-9)
    assert c["std_percent"] == pytest.approx(np.std(c["accuracy_percent"], ddof=1), abs=1e-9)
    assert "11 of 20 cell/seed runs finished" in res3["summary"][0]


def test_cells_filter_and_seeds_flag_errors(tiny_root, tmp_path, capsys):
    with pytest.raises(ConfigError, match="unknown table1 cell"):
        table1.run(tmp_path / "x", preset="quick", cells=["cifar10/mine"])
    argv = ["reproduce", "fig3", "--preset", "quick", "--out", str(tmp_path / "f"), "--seeds", "2"]
    assert main(argv) == 2 and "--seeds applies to table1 only" in capsys.readouterr().err


def test_train_cli_on_cifar10_conv(tiny_root, tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["train", "--dataset", "cifar10", "--arch", "conv", "--channels", "2,4", "--widths",
            "8,10", "--cifar-source", "batches", "--method", "ib", "--train-fraction", "0.1",
            "--batch-size", "16", "--epochs-per-layer", "1", "--min-steps-per-layer", "3",
            "--readout-epochs", "1", "--critic-hidden", "8", "--mi-eval-batch-size", "32",
            "--mi-restarts", "1", "--mi-baseline", "false", "--mi-max-steps", "200", "--data-root", str(tiny_root), "--offline", "--no-progress",
            "--val-fraction", "0", "--out", str(out)]
    assert main(argv) == 0
    res = json.loads((out / "result.json").read_text())
    assert res["dataset"] == "cifar10" and res["data_source"] == "python-batches"
    assert [layer["width"] for layer in res["layers"]] == [2 * 16 * 16, 4 * 8 * 8, 8, 10]
    assert res["n_train"] == 50 and res["n_test"] == 100
    capsys.readouterr()
    assert main(argv[:-2] + ["--cifar-source", "folder", "--out", str(tmp_path / "r2")]) == 2
    assert "no CIFAR-10 in" in capsys.readouterr().err  # no JPEG copy in the tiny root


@pytest.mark.parametrize("method", ["ib", "ce"])
def test_cifar10_with_the_default_early_stopping_and_refit(tiny_root, tmp_path, method):
    """CIFAR-10's uint8 images through the default val_refit path (the refit concatenates
    the fit and validation rows, still uint8)."""
    argv = ["train", "--dataset", "cifar10", "--arch", "conv", "--channels", "2,4", "--widths",
            "8,10", "--cifar-source", "batches", "--method", method, "--train-fraction", "0.2",
            "--batch-size", "16", "--epochs-per-layer", "1", "--min-steps-per-layer", "3",
            "--ce-epochs", "1", "--readout-epochs", "1", "--critic-hidden", "8",
            "--mi-eval-batch-size", "32", "--mi-restarts", "1", "--mi-baseline", "false",
            "--mi-max-steps", "200", "--data-root", str(tiny_root), "--offline", "--no-progress",
            "--out", str(tmp_path / "run")]
    assert main(argv) == 0
    res = json.loads((tmp_path / "run" / "result.json").read_text())
    assert res["n_train"] + res["n_val"] == 100 and res["n_val"] == 20 and "refit" in res
    assert all(r["rows"] == 100 for r in res["refit"].values())


def test_cat_rows_keeps_uint8_images_uint8():
    import torch
    from layerib.data.cifar10 import normalize_cifar10
    from layerib.data.dataset import Uint8Images, cat_rows
    a = Uint8Images(torch.randint(0, 255, (3, 3, 4, 4), dtype=torch.uint8), normalize_cifar10)
    b = Uint8Images(torch.randint(0, 255, (2, 3, 4, 4), dtype=torch.uint8), normalize_cifar10)
    c = cat_rows(a, b)
    assert isinstance(c, Uint8Images) and c.raw.dtype == torch.uint8 and len(c) == 5
    assert torch.equal(c[3:], b[:]) and torch.equal(c[:3], a[:])
    assert torch.equal(cat_rows(torch.ones(2, 1), torch.zeros(1, 1)), torch.tensor([[1.], [1.], [0.]]))
    with pytest.raises(TypeError, match="cannot concatenate"):
        cat_rows(a, torch.ones(2, 3, 4, 4))


def test_config_fields_for_cifar_and_conv():
    cfg = TrainConfig(dataset="cifar10", arch="conv", channels=(8, 16), method="ce",
                      augment="crop_flip")
    assert cfg.to_dict()["channels"] == [8, 16]
    assert TrainConfig(method="ib", augment="crop_flip").frozen_cache == "auto"  # recomputed
    with pytest.raises(ConfigError, match="would train on one fixed cache"):
        TrainConfig(method="ib", augment="crop_flip", frozen_cache="memory")
    with pytest.raises(ConfigError, match="unknown arch 'transformer'"):
        TrainConfig(arch="transformer")
    with pytest.raises(ConfigError, match="channels must be positive"):
        TrainConfig(channels=(0,))
    with pytest.raises(ConfigError, match="cifar_source must be one of"):
        TrainConfig(cifar_source="web")


def test_finished_runs_are_compared_with_the_preset_on_what_the_method_reads():
    p = table1.resolve_preset("paper")
    ib, ce = p.cells[("mnist1", "ib")], p.cells[("mnist1", "ce")]
    run = ib.to_dict() | {"beta": 1.0, "seed": 2}
    assert table1._matches_preset(run, ib)
    # checkpoint_every changes nothing; "joint" is what the preset's "auto" runs
    assert table1._matches_preset(run | {"checkpoint_every": 7, "critic_update": "joint"}, ib)
    # written before critic_update existed: such runs alternated, the preset's runs do not
    old = {k: v for k, v in run.items() if k != "critic_update"}
    assert not table1._matches_preset(old, ib)
    assert not table1._matches_preset(run | {"critic_update": "alternating"}, ib)
    assert not table1._matches_preset(run | {"min_steps_per_layer": 600}, ib)
    # an explicit --beta is not the preset's automatic beta, even at the same value
    assert not table1._matches_preset(run, ib, beta_auto=False)
    # CE never trains critics: their settings cannot change its accuracy
    ce_run = ce.to_dict() | {"y_critic": "heads", "critic_steps": 5, "beta": 1.0}
    assert table1._matches_preset({k: v for k, v in ce_run.items() if k != "critic_update"}, ce)
    assert not table1._matches_preset(ce_run | {"ce_epochs": 3}, ce)
    # the MNIST 1 % IB cell runs the validation-chosen schedule, the baselines the defaults
    assert ib.min_steps_per_layer == 100 and ce.min_steps_per_layer == TrainConfig().min_steps_per_layer


def _cell(setting, method, seeds, acc):
    return {"setting": setting, "method": method, "seeds": list(seeds), "accuracy_percent": list(acc)}


def test_paired_differences_t_interval_and_verdicts():
    from scipy.stats import t as student_t
    cells = [_cell("mnist1", "ib", [0, 1, 2, 3, 4], [88.0, 89.0, 87.5, 88.5, 88.2]),
             _cell("mnist1", "iy", [0, 1, 2, 3, 4], [89.0, 90.1, 88.9, 89.2, 89.4]),
             _cell("mnist1", "ce", [0, 1, 2, 4], [88.5, 88.0, 88.1, 87.0]),   # seed 3 missing
             _cell("mnist100", "ib", [0], [98.3]), _cell("mnist100", "iy", [0], [98.2])]
    rows = {(r["setting"], r["contrast"]): r for r in table1.paired_differences(cells, cells)}
    d = np.array([88.0, 89.0, 87.5, 88.5, 88.2]) - np.array([89.0, 90.1, 88.9, 89.2, 89.4])
    r = rows[("mnist1", "ib - iy")]
    half = student_t.ppf(0.975, 4) * d.std(ddof=1) / np.sqrt(5)
    assert r["n"] == 5 and r["mean_percent"] == pytest.approx(d.mean(), abs=1e-12)
    assert r["low_percent"] == pytest.approx(d.mean() - half, abs=1e-12)
    assert r["high_percent"] == pytest.approx(d.mean() + half, abs=1e-12)
    assert r["significant"] and r["verdict"] == "ib behind, significant"
    r = rows[("mnist1", "ib - ce")]  # paired on the 4 common seeds only
    assert r["seeds"] == [0, 1, 2, 4] and r["n"] == 4
    assert r["differences_percent"] == pytest.approx([-0.5, 1.0, -0.6, 1.2])
    assert not r["significant"] and "holds 0" in r["verdict"]
    r = rows[("mnist100", "ib - iy")]  # one seed: no interval, said so
    assert r["n"] == 1 and r["mean_percent"] is None and r["verdict"] == "fewer than 2 paired seeds"
    assert ("cifar10", "ib - iy") not in rows  # no such cells given
    # the same difference at every seed: no interval and no verdict of significance
    same = [_cell("mnist1", "ib", [0, 1, 2], [88.0, 89.0, 87.0]),
            _cell("mnist1", "iy", [0, 1, 2], [88.5, 89.5, 87.5])]
    r = table1.paired_differences(same, same, pairs=(("ib", "iy"),))[0]
    assert r["mean_percent"] == pytest.approx(-0.5) and r["low_percent"] is None
    assert r["significant"] is None and "no spread" in r["verdict"]
    md = table1.paired_markdown(list(rows.values()), "t")
    assert any(line.startswith("| MNIST 1% | ib - iy | 5 |") for line in md)


@pytest.mark.slow  # heavier; run with -m slow
def test_estimators_paper_writes_a_second_table(tiny_root, tmp_path, capsys):
    out = tmp_path / "t1"
    res = table1.run(out, preset="quick", seeds=2, data_root=str(tiny_root), download=False,
                     cells=["mnist1/ib", "mnist1/iy", "mnist1/ce"])
    paper = table1.run(out, preset="quick", seeds=2, data_root=str(tiny_root), download=False,
                       cells=["mnist1/ib", "mnist1/iy"], estimators="paper")
    for m in ("ib", "iy"):
        cfg = json.loads((out / "estimators-paper" / "mnist1" / m / "seed1" / "config.json").read_text())["config"]
        assert (cfg["y_bound"], cfg["x_bound"], cfg["x_critic"], cfg["critic_update"]) == (
            "dv", "dv", "concat", "alternating")
    assert not (out / "estimators-paper" / "mnist1" / "ce").exists()  # CE shared with ours
    assert (out / "table1-estimators-paper.md").exists() and (out / "table1.md").exists()
    assert paper["estimators"] == "paper" and res["estimators"] is None
    cells = {(c["setting"], c["method"]): c for c in paper["cells"]}
    assert cells[("mnist1", "ce")]["accuracy_percent"] == next(
        c for c in res["cells"] if (c["setting"], c["method"]) == ("mnist1", "ce"))["accuracy_percent"]
    assert all(c["config_matches_preset"] for c in paper["cells"])
    vs = {(r["setting"], r["contrast"]): r for r in paper["versus_ours"]}
    ours = {(c["setting"], c["method"]): c for c in res["cells"]}
    for m in ("ib", "iy"):
        r = vs[("mnist1", f"{m}: this - ours")]
        assert r["n"] == 2 and r["differences_percent"] == pytest.approx(
            [a - b for a, b in zip(cells[("mnist1", m)]["accuracy_percent"],
                                   ours[("mnist1", m)]["accuracy_percent"])])
    md = (out / "table1-estimators-paper.md").read_text()
    assert "with the `paper` estimators" in md and "`paper` estimators - ours" in md
    assert "IB - iy and IB - CE" in md


def test_estimators_flag_is_table1_only(tmp_path, capsys):
    argv = ["reproduce", "fig3", "--preset", "quick", "--out", str(tmp_path / "f"),
            "--estimators", "paper"]
    assert main(argv) == 2 and "--estimators applies to table1 only" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="unknown estimators preset 'mine'"):
        table1.resolve_preset("quick", estimators="mine")
