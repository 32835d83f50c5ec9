"""Sweep specs: grid expansion, folder names, validation before anything runs."""

import pytest

from layerib.config import TrainConfig
from layerib.errors import ConfigError
from layerib.sweep.spec import config_differences, expand, read_spec, spec_from_dict


def test_cartesian_product_names_and_configs():
    spec = spec_from_dict({"base": {"train_fraction": 0.01, "method": "ib"},
                           "grid": {"beta": [1e-4, 1.0], "seed": [0, 1, 2], "noise_var": [100]}})
    points = expand(spec)
    assert len(points) == 6
    # only the keys that vary name the folder; floats are written exactly
    assert [p.name for p in points[:3]] == ["beta=0.0001__seed=0", "beta=0.0001__seed=1",
                                             "beta=0.0001__seed=2"]
    assert points[3].config == TrainConfig(train_fraction=0.01, beta=1.0, seed=0, noise_var=100.0)
    assert points[3].overrides == {"beta": 1.0, "seed": 0, "noise_var": 100}


def test_union_of_grids_and_list_values():
    spec = spec_from_dict({"grid": [{"method": ["ib"], "beta": [0.5, 2.0]},
                                    {"method": ["ce"], "widths": [[8, 10], [16, 10]]}]})
    names = [p.name for p in expand(spec)]
    assert names == ["method=ib__beta=0.5", "method=ib__beta=2.0", "method=ce__widths=8-10",
                     "method=ce__widths=16-10"]
    assert expand(spec)[3].config.widths == (16, 10)
    assert spec.to_dict()["grid"][1] == {"method": ["ce"], "widths": [[8, 10], [16, 10]]}


def test_single_point_sweep_is_named_point():
    assert [p.name for p in expand(spec_from_dict({"grid": {"seed": [3]}}))] == ["point"]


@pytest.mark.parametrize("data, match", [
    ([1, 2], "must be a mapping"),
    ({"grid": {"seed": [0]}, "runs": 3}, "unknown key.*runs"),
    ({"base": {"seed": 0}}, "grid is missing"),
    ({"grid": {"seed": 0}}, "grid value of seed must be a non-empty list"),
    ({"grid": {"seed": []}}, "non-empty list"),
    ({"grid": [{}]}, "mapping"),
])
def test_bad_shapes_are_one_line_errors(data, match):
    with pytest.raises(ConfigError, match=match):
        spec_from_dict(data)


def test_every_point_is_validated_before_running():
    with pytest.raises(ConfigError, match=r"^sweep point beta=-1.0__seed=0: --beta must be"):
        expand(spec_from_dict({"grid": {"beta": [1.0, -1.0], "seed": [0, 1]}}))
    with pytest.raises(ConfigError, match="^sweep base: unknown config key.*betta"):
        expand(spec_from_dict({"base": {"betta": 1}, "grid": {"seed": [0]}}))
    with pytest.raises(ConfigError, match="unknown config key.*sed"):
        expand(spec_from_dict({"grid": {"sed": [0, 1]}}))


def test_duplicates_are_errors():
    with pytest.raises(ConfigError, match="same settings"):
        expand(spec_from_dict({"grid": [{"seed": [0, 1]}, {"seed": [1]}]}))
    with pytest.raises(ConfigError, match="share the folder name"):  # beta differs, name does not
        expand(spec_from_dict({"grid": [{"seed": [0, 1], "beta": [2.0]}, {"seed": [1]}]}))


def test_config_differences_ignore_data_location():
    cfg = TrainConfig(beta=1.0)
    stored = dict(cfg.to_dict(), data_root="/elsewhere", download=False)
    assert config_differences(stored, cfg) == []
    # nor the keys that do not change the result: checkpoint frequency, DataLoader workers
    assert config_differences(dict(stored, workers=2, checkpoint_every=7), cfg) == []
    assert config_differences(dict(stored, beta=2.0), cfg) == ["beta: 2.0 -> 1.0"]
    older = {k: v for k, v in stored.items() if k != "ema_rate"}  # written before ema_rate existed
    assert config_differences(older, cfg) == []
    assert config_differences(older, TrainConfig(beta=1.0, ema_rate=0.5)) == ["ema_rate: 0.01 -> 0.5"]


def test_read_spec_errors(tmp_path):
    with pytest.raises(ConfigError, match="cannot read sweep file"):
        read_spec(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("grid: {seed: [0\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        read_spec(bad)
    good = tmp_path / "good.yaml"
    good.write_text("base: {method: ce}\ngrid: {seed: [0, 1]}\n")
    assert [p.config.method for p in expand(read_spec(good))] == ["ce", "ce"]
