"""Each built-in net keeps its own parameters and defaults; the CLI reads them from the registry."""

from __future__ import annotations

import pytest
from torch import nn

from layerib.cli import build_train_config, main, make_parser
from layerib.config import TrainConfig, config_from_dict, effective_settings
from layerib.errors import ConfigError
from layerib.models import registry
from layerib.models.mlp import mlp
from layerib.models.registry import MODELS, ModelSpec, arch_params, build_model
from layerib.runs.training import build_net


def _cfg(*flags: str) -> TrainConfig:
    return build_train_config(make_parser().parse_args(["train", "--out", "x", *flags]))


def test_arch_vgg_alone_is_the_documented_six_conv_net():
    net = build_net(_cfg("--arch", "vgg", "--dataset", "cifar10"), (3, 32, 32))
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [64, 64, 128, 128, 256, 256]
    assert sum(isinstance(m, nn.BatchNorm2d) for m in net.modules()) == 6
    assert net.feature_dims == [16384, 8192, 4096, 10]


def test_arch_params_reach_the_net():
    cfg = _cfg("--arch", "vgg", "--dataset", "cifar10", "--arch-params", "pool_after=2,4",
               "batch_norm=false", "--channels", "8,8,16,16")
    assert cfg.arch_params == {"pool_after": (2, 4), "batch_norm": False}
    net = build_net(cfg, (3, 32, 32))
    assert not any(isinstance(m, nn.BatchNorm2d) for m in net.modules())
    assert net.feature_dims == [8 * 16 * 16, 16 * 8 * 8, 10]
    res = build_net(_cfg("--arch", "resnet", "--dataset", "cifar10", "--channels", "4,8",
                         "--arch-params", "blocks_per_stage=2", "unit=block"), (3, 32, 32))
    assert len(res.feature_dims) == 2 * 2 + 1


def test_mlp_default_unchanged_and_conv_keeps_its_own():
    assert build_net(TrainConfig(), (1, 28, 28)).feature_dims == mlp((1, 28, 28)).feature_dims == [512, 512, 10]
    assert build_net(TrainConfig(arch="conv", dataset="cifar10"), (3, 32, 32)).feature_dims[-2:] == [256, 10]


@pytest.mark.parametrize("flags, needle", [
    (["--arch", "mlp", "--channels", "8,16"], "arch mlp has no parameter 'channels'; its parameters: widths, activation"),
    (["--arch", "vgg", "--arch-params", "blocks_per_stage=2"], "arch vgg has no parameter 'blocks_per_stage'"),
    (["--arch", "vgg", "--arch-params", "pool_after"], "must be KEY=VALUE"),
])
def test_a_parameter_the_net_does_not_take_is_one_line_exit_2(flags, needle, tmp_path, capsys):
    try:
        rc = main(["train", "--out", str(tmp_path / "run"), "--dataset", "cifar10", *flags])
    except SystemExit as e:  # argparse's own errors
        rc = e.code
    assert rc == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert needle in err[-1] and "Traceback" not in "".join(err)
    assert not (tmp_path / "run").exists()


def test_stored_configs_of_earlier_versions_migrate_on_read():
    # earlier versions wrote the MLP-shaped defaults into every config
    old_mlp = {**TrainConfig().to_dict(), "channels": [32, 64], "widths": [512, 512, 10]}
    del old_mlp["arch_params"]
    assert effective_settings(old_mlp)["channels"] is None
    assert config_from_dict(old_mlp).channels is None
    assert effective_settings(old_mlp)["arch_params"] == {}
    # an old vgg run was built with what it stored, and is rebuilt so
    old_vgg = {**old_mlp, "arch": "vgg", "dataset": "cifar10"}
    s = effective_settings(old_vgg)
    net = build_model(s["arch"], (3, 32, 32), channels=s["channels"], widths=s["widths"],
                      params=s["arch_params"])
    assert net.feature_dims[-3:] == [512, 512, 10]


def test_cli_choices_and_help_come_from_the_registry(monkeypatch, capsys):
    monkeypatch.setitem(MODELS, "tiny", ModelSpec(mlp, "a test net"))
    action = next(a for a in make_parser()._subparsers._group_actions[0].choices["train"]._actions
                  if a.dest == "arch")
    assert "tiny" in action.choices
    assert arch_params("tiny") == {"widths": (512, 512, 10), "activation": "relu"}
    assert build_model("tiny", (1, 4, 4), widths=(3,)).feature_dims == [3]
    assert registry.MODELS is MODELS
    with pytest.raises(ConfigError, match="choose one of mlp, conv, vgg, resnet, airbench, tiny"):
        arch_params("nope")
