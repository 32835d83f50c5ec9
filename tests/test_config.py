import pytest

from layerib.config import TrainConfig, auto_beta, config_from_dict, resolve_beta
from layerib.errors import ConfigError


def test_defaults_are_valid_and_serialisable():
    cfg = TrainConfig()
    assert cfg.to_dict()["widths"] is None  # the arch's own default (mlp: 512, 512, 10)
    assert config_from_dict(cfg.to_dict()) == cfg
    vgg = config_from_dict({"arch": "vgg", "arch_params": {"pool_after": [2, 4, 6]}})
    assert config_from_dict(vgg.to_dict()) == vgg and vgg.arch_params == {"pool_after": (2, 4, 6)}


def test_auto_beta_scales_as_one_over_n():
    assert auto_beta(600) == pytest.approx(1.0) and auto_beta(60000) == pytest.approx(0.01)
    cfg = resolve_beta(TrainConfig(), 6000)
    assert cfg.beta == pytest.approx(0.1) and cfg.effective_beta == pytest.approx(0.1)
    assert resolve_beta(TrainConfig(beta=0.5), 6000).beta == 0.5
    assert resolve_beta(TrainConfig(method="iy"), 600).effective_beta == 0.0


@pytest.mark.parametrize("values,message", [
    ({"betta": 1}, "unknown config key"),
    ({"noise_var": float("nan")}, "noise-var"),
    ({"widths": [10, 0]}, "widths"),
    ({"lr_layer": -1.0}, "lr_layer"),
    ({"ema_rate": 2.0}, "ema_rate"),
    ({"x_bound": "js"}, "x_bound"),
    ({"seed": 1.5}, "seed"),
    ({"grad_clip": 0.0}, "grad_clip"),
    ({"critic_update": "both"}, "critic_update must be one of auto, joint, alternating"),
    ({"critic_update": "joint", "y_bound": "dv"}, "needs y_bound='infonce'.*use critic_update='alternating'"),
    ({"critic_update": "joint", "x_critic": "concat"}, "x_critic='gaussian'"),
    ({"critic_update": "joint", "critic_steps": 3}, "set it to 1"),
    ({"val_refit": "yes"}, "val_refit must be true or false"),
    ({"val_refit": 1}, "val_refit must be true or false"),
    ({"workers": -1}, "workers must be an integer >= 0"),
    ({"workers": True}, "workers must be an integer >= 0"),
    ({"workers": 2}, "workers 2 streams the data, which val_refit does not do yet"),
])
def test_bad_values(values, message):
    with pytest.raises(ConfigError, match=message):
        config_from_dict(values)


def test_auto_critic_update_is_joint_only_where_exact():
    from layerib.config import resolve_critic_update
    assert resolve_critic_update(TrainConfig()) == "joint"
    for change in ({"y_bound": "dv"}, {"x_bound": "dv"}, {"x_critic": "concat"}, {"critic_steps": 3}):
        assert resolve_critic_update(TrainConfig(**change)) == "alternating", change
    assert resolve_critic_update(TrainConfig(critic_update="alternating")) == "alternating"


def test_runs_from_before_val_refit_read_as_without_it():
    from layerib.config import effective_settings
    old = {k: v for k, v in TrainConfig().to_dict().items() if k != "val_refit"}
    assert effective_settings(old)["val_refit"] is False
