"""`layerib reproduce infoplane-study`: the verdict rule, the stored trajectories, resume.

One quick study (fake MNIST, CE and layer-wise IB, tanh and ReLU, one seed each) is run
once per module, stopped after its first run and then resumed; the slow tests read it. The
default run resumes a smaller one (the quick preset with one activation, CE at two seeds,
one snapshot after step 0, one noise variance, no figure).
"""

import dataclasses
import json
import math

import pytest
from conftest import make_tiny_mnist

from layerib.cli import main
from layerib.errors import ConfigError
from layerib.experiments import infoplane_study as ips


class _Stop(Exception):
    pass


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """``(study folder, partial JSON after the stop, final JSON, runs trained on resume)``."""
    tmp = tmp_path_factory.mktemp("ips")
    root = make_tiny_mnist(tmp / "data")
    out = tmp / "study"
    train, trained = ips._train, []
    mp = pytest.MonkeyPatch()

    def stop_second(cfg, folder, *a):  # the study is stopped as its second run starts
        if trained:
            raise _Stop
        trained.append(folder.name)
        return train(cfg, folder, *a)

    mp.setattr(ips, "_train", stop_second)
    with pytest.raises(_Stop):
        ips.run(out, preset="quick", data_root=str(root), download=False)
    partial = json.loads((out / "infoplane_study.json").read_text())
    mtimes = {p: p.stat().st_mtime_ns for p in (out / "runs").rglob("*.json")}
    resumed = []

    def count(cfg, folder, *a):
        resumed.append(folder.name)
        return train(cfg, folder, *a)

    mp.setattr(ips, "_train", count)
    assert main(["reproduce", "infoplane-study", "--preset", "quick", "--data-root", str(root),
                 "--offline", "--no-progress", "--out", str(out)]) == 0
    mp.undo()
    final = json.loads((out / "infoplane_study.json").read_text())
    kept = all(p.stat().st_mtime_ns == t for p, t in mtimes.items())
    return out, partial, final, resumed, kept


def test_verdict_rule_on_known_numbers():
    # max 2.0 (+-0.3), end 1.5 (+-0.4): drop 0.5 = combined error sqrt(0.09 + 0.16); not beyond it
    v = ips.compression_verdict([1.0, 2.0, 1.5], [0.1, 0.3, 0.4])
    assert v["verdict"] == "no compression detected" and v["max_index"] == 1
    assert v["drop_nats"] == pytest.approx(0.5) and v["error_nats"] == pytest.approx(0.5)
    v = ips.compression_verdict([1.0, 2.0, 1.49], [0.1, 0.3, 0.4])
    assert v["verdict"] == "compression" and v["drop_nats"] == pytest.approx(0.51)
    # a rising trajectory never compresses; the first of equal maxima is the maximum
    assert ips.compression_verdict([0.5, 1.0, 2.0], [0.0] * 3)["verdict"] == "no compression detected"
    assert ips.compression_verdict([2.0, 2.0, 1.0], [0.0] * 3)["max_index"] == 0
    # saturation: the maximum within 0.5 nat of the ceiling ln N
    assert ips.compression_verdict([6.8, 6.0], [0.01, 0.01], ceiling=math.log(1000))["saturated"]
    assert not ips.compression_verdict([6.0, 5.0], [0.01, 0.01], ceiling=math.log(1000))["saturated"]
    with pytest.raises(ConfigError, match="half-widths"):
        ips.compression_verdict([1.0, 2.0], [0.1])
    with pytest.raises(ConfigError, match="half-widths"):
        ips.compression_verdict([1.0], [-0.1])


def test_seed_counts():
    def run(verdict):
        return {"method": "ce", "activation": "relu",
                "verdicts": {"1": {"mc": {"3": {"verdict": verdict, "saturated": True}}, "aa": {}}}}
    got = ips.verdicts([run("compression"), run("no compression detected"), run("compression")])
    c = got["ce/relu"]["1"]["mc"]["3"]
    assert c == {"compression": 2, "seeds": 3, "saturated": 3, "unmeasured": 0,
                 "verdict": "compression in 2 of 3 seeds"}
    failed = ips.verdicts([run("unmeasured")] * 2)["ce/relu"]["1"]["mc"]["3"]
    assert failed["verdict"].startswith("unmeasured") and failed["compression"] == 0
    none = ips.verdicts([run("no compression detected")])["ce/relu"]["1"]["mc"]["3"]["verdict"]
    assert none == "no compression detected"


def test_failed_aa_mine_points_are_left_out_of_the_verdict():
    """An AA-MINE point whose interval lies below 0 (flag ``negative``) is a failed estimate,
    not a drop: seen on saturated tanh layers (-11 nats against a Monte-Carlo 2.8). The verdict
    reads the points that did not fail, and none where fewer than two are left."""
    def pt(mc, aa=None, flags=()):
        x = {"mc_nats": mc, "mc_stderr": 0.01}
        if aa is not None:
            x["aa"] = {"nats": aa, "interval": [aa - 0.1, aa + 0.1], "flags": dict.fromkeys(flags, "r")}
        return {"i_x": {"1": x}}
    rising = [pt(1.0, 1.0), pt(2.0), pt(3.0, 2.9), pt(3.0, -11.0, ["negative"])]
    got = ips.run_verdicts({"2": rising}, [1.0], ceiling=math.log(1000))["1"]
    assert got["mc"]["2"]["verdict"] == "no compression detected"
    assert got["aa"]["2"]["verdict"] == "no compression detected"  # not the -11 at the end
    assert got["aa"]["2"]["end_nats"] == 2.9
    lone = [pt(1.0, 1.0, ["negative"]), pt(2.0, 2.0), pt(1.0, -3.0, ["negative"])]
    aa = ips.run_verdicts({"1": lone}, [1.0], ceiling=None)["1"]["aa"]["1"]
    assert aa == {"verdict": "unmeasured", "saturated": False, "failed_points": 2}
    # a DV value on too few effective marginal pairs (-806 nats beside a Monte-Carlo 6.9 on a
    # ReLU layer; its interval held 0, so it was not `negative`) is a failed point too
    heavy = [pt(1.0, 1.0), pt(2.0, 2.0), pt(2.0, -806.0, ["heavy_tailed"])]
    got = ips.run_verdicts({"1": heavy}, [1.0], ceiling=None)["1"]["aa"]["1"]
    assert got["verdict"] == "no compression detected" and got["end_nats"] == 2.0


def test_the_table_marks_failed_points_and_unmeasured_layers():
    """The tables read a run whose AA-MINE points failed (a layer with none left is
    unmeasured; the rendering crashed on it) and show each failed point with its flag."""
    def pt(step, mc, aa, flags=()):
        return {"step": step, "i_x": {"1": {"mc_nats": mc, "mc_stderr": 0.01, "aa": {
            "nats": aa, "interval": [aa - 0.1, aa + 0.1], "flags": dict.fromkeys(flags, "r")}}}}
    layers = {"1": [pt(0, 1.0, -806.0, ["heavy_tailed"]), pt(5, 2.0, -900.0, ["heavy_tailed"])],
              "2": [pt(0, 1.0, 1.0), pt(5, 3.0, -5.0, ["negative"]), pt(9, 2.0, 2.5)]}
    run = {"method": "ce", "activation": "relu", "seed": 0, "test_accuracy": 0.9, "layers": layers,
           "verdicts": ips.run_verdicts(layers, [1.0], ceiling=None)}
    res = {"noise_vars": [1.0], "settings": {"n_test": 1000}, "ln_n_test": math.log(1000),
           "runs": [run], "verdicts": ips.verdicts([run])}
    md = ips.render_markdown(res)
    row1 = next(ln for ln in md.splitlines() if ln.startswith("| ce/relu seed 0 | 1 |"))
    assert "-806.00 [-806.10, -805.90] (heavy_tailed)" in row1
    assert row1.rstrip(" |").endswith("unmeasured (failed estimates)")
    row2 = next(ln for ln in md.splitlines() if ln.startswith("| ce/relu seed 0 | 2 |"))
    assert "2.50 [2.40, 2.60] (9)" in row2  # the maximum among the points that did not fail


def test_small_study_resumes_where_it_stopped(tmp_path, monkeypatch):
    root = make_tiny_mnist(tmp_path / "data")
    small = dataclasses.replace(ips.PRESETS["quick"], activations=("tanh",), ce_seeds=(0, 1),
                                ib_seeds=(), snapshots=1, noise_vars=(1.0,))
    monkeypatch.setitem(ips.PRESETS, "quick", small)
    monkeypatch.setattr(ips, "render", lambda out: None)
    train, calls = ips._train, []

    def stop_second(cfg, folder, *a):
        calls.append(folder.name)
        if len(calls) == 2:
            raise _Stop
        return train(cfg, folder, *a)

    monkeypatch.setattr(ips, "_train", stop_second)
    with pytest.raises(_Stop):
        ips.run(tmp_path / "s", preset="quick", data_root=str(root), download=False)
    partial = json.loads((tmp_path / "s" / "infoplane_study.json").read_text())
    first = tmp_path / "s" / "runs" / "ce-tanh-seed0"
    stamps = {p: p.stat().st_mtime_ns for p in first.rglob("*") if p.is_file()}
    res = ips.run(tmp_path / "s", preset="quick", data_root=str(root), download=False)
    assert not partial["complete"] and res["complete"] and len(res["runs"]) == 2
    assert res["runs"][0] == partial["runs"][0]  # read back, not trained or measured again
    assert all(p.stat().st_mtime_ns == t for p, t in stamps.items())
    assert "| ce/tanh seed 0 | 2 |" in (tmp_path / "s" / "infoplane_study.md").read_text()
    assert calls == ["ce-tanh-seed0", "ce-tanh-seed1", "ce-tanh-seed0", "ce-tanh-seed1"]
    assert [pt["step"] for pt in res["runs"][1]["layers"]["1"]] == ips.snapshot_steps(
        len(res["runs"][1]["layers"]["1"]) and res["runs"][1]["layers"]["1"][-1]["step"], 1)


@pytest.mark.slow  # heavier; run with -m slow
def test_study_resumes_where_it_stopped(study):
    out, partial, final, resumed, kept = study
    plan = [e["dir"] for e in ips.run_plan(ips.PRESETS["quick"])]
    assert len(plan) == 4 and not partial["complete"] and final["complete"]
    assert [r["dir"] for r in partial["runs"]] == plan[:1]
    # the finished first run is read back, not trained or measured again
    assert final["runs"][0] == partial["runs"][0]
    assert resumed == [p.split("/")[-1] for p in plan] and kept
    assert (out / "infoplane_study.png").read_bytes()[:4] == b"\x89PNG"
    assert "| ce/tanh seed 0 | 1 |" in (out / "infoplane_study.md").read_text()


@pytest.mark.slow  # heavier; run with -m slow
def test_study_json_holds_trajectories_in_nats_with_errors(study):
    _, _, res, _, _ = study
    p = ips.PRESETS["quick"]
    assert res["experiment"] == "infoplane_study" and res["noise_vars"] == [1.0, 10.0]
    assert res["ln_n_test"] == pytest.approx(math.log(p.n_test))
    assert {(r["method"], r["activation"]) for r in res["runs"]} == {
        (m, a) for m in ("ce", "ib") for a in ("tanh", "relu")}
    for r in res["runs"]:
        assert sorted(r["layers"]) == ["1", "2"]
        for k, traj in r["layers"].items():
            assert traj[0]["step"] == 0
            assert traj[0]["unit"] == ("ce" if r["method"] == "ce" else f"layer{k}")
            n_aa = 0
            for pt in traj:
                lo, hi = pt["i_y"]["interval"]
                assert lo <= pt["i_y"]["nats"] <= hi
                for nv in ("1", "10"):
                    x = pt["i_x"][nv]
                    assert 0 <= x["mc_nats"] <= res["ln_n_test"] + 1e-9 and x["mc_stderr"] >= 0
                    if "aa" in x:
                        n_aa += 1
                        lo, hi = x["aa"]["interval"]
                        assert lo <= x["aa"]["nats"] <= hi and x["aa"]["critic"] == "mixture"
            # AA-MINE at the first point, the Monte-Carlo peak and the last point only
            assert 2 * 2 <= n_aa <= 2 * 3
            for nv in ("1", "10"):
                assert r["verdicts"][nv]["mc"][k]["verdict"] in (
                    "compression", "no compression detected")
    assert set(res["verdicts"]) == {"ce/tanh", "ce/relu", "ib/tanh", "ib/relu"}
    assert len(res["summary"]) == 4 * 2 * 2 and "Monte Carlo" in res["summary"][0]


def test_unknown_preset_and_seed_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="unknown infoplane-study preset"):
        ips.run(tmp_path, preset="nope")
    with pytest.raises(ConfigError, match="drop --seed"):
        ips.run(tmp_path, preset="quick", seed=3)
