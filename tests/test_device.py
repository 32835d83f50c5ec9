"""Device selection, and training on a GPU (the GPU tests run only where torch sees one)."""

from __future__ import annotations

import json

import pytest
import torch

from layerib.cli import main
from layerib.errors import ConfigError
from layerib.runs.training import resolve_device
from fake_data import FAST_TRAIN_ARGS as FAST

needs_gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU on this machine")


def test_auto_picks_what_exists():
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device("cpu").type == "cpu"


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU error")
def test_cuda_without_a_gpu_is_a_one_line_config_error(tiny_mnist, tmp_path, capsys):
    with pytest.raises(ConfigError, match="no GPU"):
        resolve_device("cuda")
    rc = main(["train", "--data-root", str(tiny_mnist), "--out", str(tmp_path / "r"),
               "--device", "cuda", *FAST])
    err = capsys.readouterr().err
    assert rc == 2 and "Traceback" not in err and "no GPU" in err
    assert not (tmp_path / "r" / "result.json").exists()


@needs_gpu
@pytest.mark.parametrize("method", ["ib", "ce"])
def test_train_on_cuda_matches_cpu_closely(tiny_mnist, tmp_path, method):
    """The same run on the GPU and the CPU: both finish; accuracies within 10 points (different kernels)."""
    acc = {}
    for dev in ("cuda", "cpu"):
        out = tmp_path / f"{method}-{dev}"
        rc = main(["train", "--method", method, "--data-root", str(tiny_mnist), "--out", str(out),
                   "--device", dev, *FAST])
        assert rc == 0
        res = json.loads((out / "result.json").read_text())
        assert res["device"].startswith(dev)
        acc[dev] = res["test_accuracy"]
    assert abs(acc["cuda"] - acc["cpu"]) <= 0.10


@needs_gpu
def test_estimators_run_on_cuda():
    from layerib.mi.ground_truth import rho_for_mi, sample_correlated_gaussians
    from layerib.mi.recipes import estimate_x, recipe_settings
    g = torch.Generator().manual_seed(0)
    x, y = sample_correlated_gaussians(4096, 5, rho_for_mi(1.0, 5), g)
    xt, yt = sample_correlated_gaussians(2048, 5, rho_for_mi(1.0, 5), g)
    s = recipe_settings(steps=200, batch_size=256, hidden=64, passes=1, baseline=False)
    r = estimate_x("separable", "infonce", x.cuda(), y.cuda(), xt.cuda(), yt.cuda(), 0.0, s)
    assert 0.6 < r.value < 1.2
