"""Nets by name, and a user's own net: one registry line per built-in net.

* :data:`MODELS`: ``arch`` name -> :class:`ModelSpec` (its factory ``(input_shape, **params)
  -> LayeredNet``). Each net keeps its own parameters and their defaults: the factory's
  keyword arguments (:func:`arch_params`); a config names only the ones it changes
  (``widths``, ``channels`` and ``arch_params``; ``None`` or absent: the net's default).
* ``model="PACKAGE.MODULE:FACTORY"`` (``--model``): a user's function, imported by
  :func:`import_factory`, called as ``FACTORY(input_shape)`` (or with no argument when it
  takes none), returning an ``nn.Sequential`` or a list of ``nn.Module`` s, each one
  layer-wise unit; :func:`as_layered` turns that into a :class:`LayeredNet`, its output
  sizes inferred from one batch.

A new built-in net is one file plus one line in :data:`MODELS`.
"""

from __future__ import annotations

import importlib
import inspect
import logging
from dataclasses import dataclass
from typing import Callable, Sequence

import torch
from torch import nn

from layerib.errors import ConfigError
from layerib.models.conv import conv_net
from layerib.models.layered import LayeredNet
from layerib.models.airbench import airbench
from layerib.models.mlp import mlp
from layerib.models.resnet import resnet
from layerib.models.units import group_units
from layerib.models.vgg import vgg

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelSpec:
    """A built-in net: ``factory(input_shape, **params) -> LayeredNet`` and a one-line summary.

    Its parameters and their defaults are the factory's keyword arguments after
    ``input_shape`` (:func:`arch_params`), so a net's defaults live in one place: its file.
    """

    factory: Callable[..., LayeredNet]
    summary: str


#: arch name -> :class:`ModelSpec`; a new built-in net is one file plus one line here
MODELS: dict[str, ModelSpec] = {
    "mlp": ModelSpec(mlp, "the paper's MNIST MLP, 784-512-512-10 (models/mlp.py)"),
    "conv": ModelSpec(conv_net, "blocks of 3x3 conv, ReLU, 2x2 max-pool, then FC layers (models/conv.py)"),
    "vgg": ModelSpec(vgg, "six 3x3 convs 64-64-128-128-256-256 with batch norm in three "
                          "max-pooled units, then a linear layer (models/vgg.py)"),
    "resnet": ModelSpec(resnet, "a stem, then one residual stage per unit (models/resnet.py)"),
    "airbench": ModelSpec(airbench, "airbench-style: a 2x2 patch conv, three conv-pool-BN-GELU-conv "
                                    "blocks 64-256-256 (one unit each), max-pool, linear (models/airbench.py)"),
}


def arch_params(arch: str) -> dict[str, object]:
    """The parameters of built-in net ``arch`` with their defaults, e.g.
    ``{"widths": (512, 512, 10), "activation": "relu"}`` for ``"mlp"``.

    Raises:
        ConfigError: an unknown arch (the message lists the registered ones).

    Example:
        >>> arch_params("mlp")
        {'widths': (512, 512, 10), 'activation': 'relu'}
    """
    if arch not in MODELS:
        raise ConfigError(f"unknown arch {arch!r}; choose one of {', '.join(MODELS)}, "
                          "or pass --model PACKAGE.MODULE:FACTORY")
    sig = inspect.signature(MODELS[arch].factory)
    return {k: p.default for k, p in list(sig.parameters.items())[1:]
            if p.default is not inspect.Parameter.empty}


def check_arch_params(arch: str, params: dict[str, object]) -> None:
    """Raise :class:`ConfigError` naming a parameter that net ``arch`` does not take.

    Example:
        >>> check_arch_params("vgg", {"pool_after": (2, 4, 6)})
        >>> check_arch_params("mlp", {"channels": (8,)})
        Traceback (most recent call last):
        ...
        layerib.errors.ConfigError: arch mlp has no parameter 'channels'; its parameters: widths, activation
    """
    known = arch_params(arch)
    for key in params:
        if key not in known:
            raise ConfigError(f"arch {arch} has no parameter {key!r}; its parameters: "
                              f"{', '.join(known)}")


def import_factory(spec: str) -> Callable:
    """The function named by ``"PACKAGE.MODULE:FACTORY"``.

    Raises:
        ConfigError: the module cannot be imported or has no such callable.
    """
    module_name, _, attr = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except Exception as e:  # noqa: BLE001 - any import failure is the user's module's
        raise ConfigError(f"--model {spec}: cannot import {module_name} ({type(e).__name__}: "
                          f"{str(e).splitlines()[0] if str(e) else ''}); put it on PYTHONPATH "
                          "or install it") from None
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise ConfigError(f"--model {spec}: {module_name} has no function {attr!r}; "
                          "name a function returning the list of layers")
    return fn


def _call_factory(fn: Callable, input_shape: tuple[int, ...], spec: str):
    try:
        takes_shape = len(inspect.signature(fn).parameters) > 0
    except (TypeError, ValueError):
        takes_shape = True
    try:
        return fn(tuple(input_shape)) if takes_shape else fn()
    except Exception as e:  # noqa: BLE001
        raise ConfigError(f"--model {spec}: the factory raised {type(e).__name__}: {e}") from None


def _describe(m: nn.Module) -> str:
    """A unit as the user wrote it: its class, or for a grouped ``Sequential`` its children's."""
    if isinstance(m, nn.Sequential):
        return " + ".join(type(c).__name__ for c in m)
    return type(m).__name__


def as_layered(layers: nn.Module | Sequence[nn.Module], example: torch.Tensor) -> LayeredNet:
    """A :class:`LayeredNet` of ``layers`` (an ``nn.Sequential`` or a list of modules).

    A parametric layer (``Linear``, ``ConvNd``, a block with parameters) starts a unit;
    normalisation layers, activations, pooling, dropout, ``Flatten`` and other modules
    without parameters join the unit before it (a leading one joins the first unit); see
    :mod:`layerib.models.units`. So ``nn.Sequential(Linear(64, 32), ReLU(), Linear(32, 10))``
    is two units and ``Conv2d, BatchNorm2d, ReLU, MaxPool2d`` one. Where the units fell is
    logged (level INFO) and read back by :attr:`LayeredNet.unit_descriptions`. Output sizes
    (flattened, for the critics) come from one forward pass of ``example`` ``(batch, ...)``
    in eval mode without gradients (batch-norm statistics are not touched).

    Raises:
        ConfigError: not a module list, an empty one, or a forward pass that fails.
    """
    if isinstance(layers, LayeredNet):
        return layers
    if isinstance(layers, nn.Sequential):
        layers = list(layers)
    if not isinstance(layers, (list, tuple)) or not layers or not all(
            isinstance(m, nn.Module) for m in layers):
        raise ConfigError("layers must be an nn.Sequential or a non-empty list of nn.Module "
                          f"(one per layer-wise unit), got {type(layers).__name__}")
    try:
        layers = group_units(list(layers))
    except ValueError as e:
        raise ConfigError(str(e)) from None
    modes = [m.training for m in layers]
    dims, h = [], example[:2]
    with torch.no_grad():
        for k, m in enumerate(layers, start=1):
            m.eval()
            try:
                h = m(h)
            except Exception as e:  # noqa: BLE001 - a shape mismatch in the user's net
                what = ("the input" if k == 1 else f"the output of layer {k - 1}")
                first = str(e).splitlines()[0] if str(e) else type(e).__name__
                raise ConfigError(f"layer {k} ({_describe(m)}) fails on {what}, of shape "
                                  f"{tuple(h.shape)} (batch first): {first}; make its input size "
                                  f"match that shape") from None
            if not isinstance(h, torch.Tensor):
                raise ConfigError(f"layer {k} ({_describe(m)}) returns {type(h).__name__}, "
                                  "not a tensor; each unit must map a tensor to a tensor")
            dims.append(int(h[0].numel()))
    for m, mode in zip(layers, modes):
        m.train(mode)
    net = LayeredNet(list(layers), dims)
    log.info("%d layer-wise units:\n%s", len(net), net.describe())
    return net


def build_model(arch: str, input_shape: tuple[int, ...], *, channels: tuple[int, ...] | None = None,
                widths: tuple[int, ...] | None = None, params: dict[str, object] | None = None,
                model: str | None = None) -> LayeredNet:
    """The net a config names: ``model`` (a user's factory) if set, else ``MODELS[arch]``.

    Args:
        arch: a key of :data:`MODELS`.
        input_shape: shape of one input, e.g. ``(1, 28, 28)``.
        channels, widths: the built-in net's sizes; None: the net's own default.
        params: the net's other parameters (:func:`arch_params`), e.g. ``{"pool_after": (2, 4)}``
            for ``vgg``; absent ones take the net's default.
        model: ``"PACKAGE.MODULE:FACTORY"`` or None.

    Raises:
        ConfigError: an unknown arch (the message lists the registered ones), a parameter
            the net does not take, a factory that cannot be imported, fails, or returns no
            list of layers.

    Example:
        >>> build_model("mlp", (1, 28, 28)).feature_dims
        [512, 512, 10]
        >>> build_model("vgg", (3, 32, 32)).feature_dims
        [16384, 8192, 4096, 10]
    """
    if model is not None:
        layers = _call_factory(import_factory(model), input_shape, model)
        return as_layered(layers, torch.zeros((2, *input_shape)))
    kw = {k: tuple(v) if isinstance(v, list) else v for k, v in (params or {}).items()}
    for key, value in (("channels", channels), ("widths", widths)):
        if value is not None:
            kw[key] = tuple(value)
    check_arch_params(arch, kw)
    try:
        return MODELS[arch].factory(tuple(input_shape), **kw)
    except ValueError as e:
        raise ConfigError(f"arch {arch!r} on inputs of shape {tuple(input_shape)}: {e}") from None
