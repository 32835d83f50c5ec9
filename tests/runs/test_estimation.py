"""``layerib estimate`` end to end on a tiny fake MNIST, and its one-line errors."""

import json
import math

import pytest
import torch

from layerib.cli import main

SMALL = ["--n-train", "300", "--n-test", "200", "--batch-size", "50", "--steps", "4", "--passes", "1",
         "--mc-samples", "256", "--hidden", "16", "--n-centers", "100", "--offline", "--no-progress"]


@pytest.mark.slow  # heavier; run with -m slow
def test_fresh_net_every_layer_every_bound(tiny_mnist, tmp_path, capsys):
    out = tmp_path / "est.json"
    rc = main(["estimate", "--widths", "16,8,10", "--noise-var", "0,0.5", "--critics", "mixture,mine",
               "--bounds", "dv,infonce", "--data-root", str(tiny_mnist), "--out", str(out), *SMALL])
    assert rc == 0
    res = json.loads(out.read_text())
    assert res["source"] == "random" and res["widths"] == [16, 8, 10]
    assert (res["n_train"], res["n_test"], res["batch_size"]) == (300, 200, 50)
    assert [layer["index"] for layer in res["layers"]] == [1, 2, 3]
    for layer in res["layers"]:
        assert [row["noise_var"] for row in layer["i_x"]] == [0.0, 0.5]
        zero, noisy = layer["i_x"]
        assert zero["truth"]["value"] <= res["ln_n_test"] + 1e-9  # entropy of distinct features
        assert 0 < noisy["truth"]["value"] < zero["truth"]["value"]
        for row in layer["i_x"]:
            assert set(row["estimates"]) == {"mixture/dv", "mixture/infonce", "mine/dv", "mine/infonce"}
            for r in row["estimates"].values():
                assert r["n_batches"] == 4 and r["batch_size"] == 50 and r["n_points"] == 200
                assert r["shuffled"] is not None and r["noise_var"] in (None, 0.5)
                assert r["exceeds_ln_batch"] == (r["value"] > r["ln_batch"])
            # InfoNCE with the Gaussian-family critic never exceeds ln B
            assert row["estimates"]["mixture/infonce"]["value"] <= res["ln_batch"] + 1e-5
            # estimate_mi's protocol where it applies (noise > 0, a registered candidate)
            protocols = {k: r["protocol"] for k, r in row["estimates"].items()}
            if row["noise_var"] > 0:
                assert protocols == {"mixture/dv": "estimate_mi", "mixture/infonce": "estimate_mi",
                                     "mine/dv": "heldout-batches", "mine/infonce": "heldout-batches"}
                assert row["estimates"]["mixture/dv"]["restarts"] == 3
            else:
                assert set(protocols.values()) == {"heldout-batches"}
        assert {r["protocol"] for r in layer["i_y"].values()} == {"estimate_mi"}
        assert set(layer["i_y"]) == {"dv", "infonce"}
        assert layer["i_y"]["infonce"]["value"] <= 2.31  # H(Y) <= ln 10
        for r in layer["i_y"].values():  # the test labels' entropy beside each I(Y; L)
            assert 0 < r["entropy"] <= math.log(10) + 1e-9
            assert r["exceeds_entropy"] == (r["value"] > r["entropy"])
    table = capsys.readouterr().out
    assert "layer 3 (width 10)" in table and "mixture/dv" in table and "I(Y; L)" in table
    assert "of the test labels, <= ln 10 = 2.303" in table


def test_default_is_estimate_mi_auto(tiny_mnist, tmp_path, capsys):
    out = tmp_path / "est.json"
    assert main(["estimate", "--widths", "16,10", "--noise-var", "0.5", "--layers", "1",
                 "--data-root", str(tiny_mnist), "--out", str(out), *SMALL]) == 0
    (layer,) = json.loads(out.read_text())["layers"]
    r = layer["i_x"][0]["estimates"]["auto"]
    assert r["protocol"] == "estimate_mi" and r["critic"] == "mixture" and r["bound"] == "dv"
    assert r["low"] < r["value"] < r["high"]
    # the cross-check of the Monte-Carlo value: one training, no baseline (the truth is its reference)
    assert r["shuffled"] is None and r["restarts"] == 1
    assert any("cross-check of the Monte-Carlo value" in n for n in r["notes"])
    assert layer["i_y"]["auto"]["critic"] == "heads" and layer["i_y"]["auto"]["protocol"] == "estimate_mi"
    table = capsys.readouterr().out
    assert "auto" in table and "95 % interval" in table


def test_from_a_run_folder(tiny_mnist, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--method", "ce", "--data-root", str(tiny_mnist), "--out", str(run),
                 "--widths", "16,10", "--ce-epochs", "1", "--min-steps-per-layer", "4",
                 "--readout-epochs", "1", "--batch-size", "64", "--critic-hidden", "8",
                 "--mi-eval-batch-size", "50", "--noise-var", "0.25", "--infoplane-evals", "0",
                 "--no-progress", "--offline"]) == 0
    capsys.readouterr()
    assert main(["estimate", "--run", str(run), "--layers", "2", "--critics", "gaussian",
                 "--no-baseline", *SMALL]) == 0
    res = json.loads((run / "estimate.json").read_text())
    assert res["source"] == "run" and res["widths"] == [16, 10] and res["noise_vars"] == [0.25]
    (layer,) = res["layers"]
    assert layer["index"] == 2 and layer["width"] == 10
    assert layer["i_x"][0]["estimates"]["gaussian/dv"]["shuffled"] is None
    # the net estimated is the run's: its layer-2 weights are the saved ones
    state = torch.load(run / "model.pt", weights_only=True)
    assert res["run_config"]["widths"] == state["config"]["widths"]


def _corrupt_run(tmp_path):
    run = tmp_path / "bad"
    run.mkdir()
    (run / "model.pt").write_bytes(b"not a checkpoint")
    return run


@pytest.mark.parametrize("argv,message", [
    (["--out", "{tmp}/o.json", "--noise-var", "-1"], "noise variance -1.0 must be"),
    (["--out", "{tmp}/o.json", "--critics", "mlp"], "unknown critic 'mlp'"),
    (["--out", "{tmp}/o.json", "--bounds", "js"], "unknown bound 'js'"),
    (["--out", "{tmp}/o.json", "--batch-size", "150"], "fewer than 2 batches of 150"),
    (["--out", "{tmp}/o.json", "--layers", "4"], "layer 4 does not exist"),
    (["--out", "{tmp}/o.json", "--steps", "-1"], "steps must be an integer >= 0"),
    ([], "--out FILE.json is required for a fresh net"),
    (["--out", "{tmp}/missing/o.json"], "does not exist"),
    (["--run", "{tmp}/nowhere"], "run folder"),
    (["--run", "{bad}"], "cannot load"),
])
def test_bad_input_one_line_error_exit_2(tiny_mnist, tmp_path, capsys, argv, message):
    bad = _corrupt_run(tmp_path)
    argv = [a.replace("{tmp}", str(tmp_path)).replace("{bad}", str(bad)) for a in argv]
    rc = main(["estimate", "--widths", "8,4,10", "--data-root", str(tiny_mnist), *SMALL, *argv])
    assert rc == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("layerib: error:") and message in err and "\n" not in err
    assert not (tmp_path / "o.json").exists()  # nothing written


def test_a_relative_data_path_falls_back_to_the_recorded_one(tmp_path, monkeypatch):
    # a run trained with --dataset npz:d.npz from tmp_path, estimated from elsewhere
    import json as _json

    import pytest as _pytest

    from layerib.errors import DataError
    from layerib.runs.estimation import _recorded_path
    data = tmp_path / "d.npz"
    data.write_bytes(b"x")
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(_json.dumps({"config": {}, "data_source": f"npz:{data}"}))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert _recorded_path(run, "npz:d.npz") == f"npz:{data}"
    assert _recorded_path(run, "mnist") == "mnist"
    assert _recorded_path(run, f"npz:{data}") == f"npz:{data}"  # absolute: as it is
    (elsewhere / "d.npz").write_bytes(b"y")
    assert _recorded_path(run, "npz:d.npz") == "npz:d.npz"  # resolves from here: as it is
    (elsewhere / "d.npz").unlink()
    data.unlink()
    with _pytest.raises(DataError, match=r"npz:d.npz \(recorded as .*d.npz\) is not found from here"):
        _recorded_path(run, "npz:d.npz")


def test_named_critics_run_through_the_same_truth_checks(tiny_mnist, tmp_path, monkeypatch):
    """A named critic far below its layer's Monte-Carlo truth (seen: gaussian/dv 1.744 against
    2.857, no flag) is flagged ``off_truth`` with its reason and remedy, as ``auto`` is."""
    from dataclasses import replace

    import layerib.runs.estimation as est
    real = est._estimate_x

    def low(*a):  # the real estimate, moved to 40 % of the truth with a tight interval
        r, protocol = real(*a)
        truth = est.ground_truth(a[5], a[6], 256, a[7].seed + a[8])["value"]
        v = 0.4 * truth
        return replace(r, value=v, stderr=0.01, interval=(v - 0.02, v + 0.02)), protocol
    monkeypatch.setattr(est, "_estimate_x", low)
    out = tmp_path / "est.json"
    assert main(["estimate", "--widths", "16,10", "--noise-var", "0.5", "--layers", "1", "--no-y",
                 "--critics", "auto,gaussian", "--bounds", "dv,nwj", "--data-root", str(tiny_mnist),
                 "--out", str(out), *SMALL]) == 0
    (layer,) = json.loads(out.read_text())["layers"]
    row = layer["i_x"][0]
    assert set(row["estimates"]) == {"auto", "gaussian/dv", "gaussian/nwj"}
    for name, r in row["estimates"].items():
        assert "off_truth" in r["flags"], name
        assert "read the Monte-Carlo value" in r["flags"]["off_truth"]
