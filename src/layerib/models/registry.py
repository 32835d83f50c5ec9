"""Nets by name, and a user's own net: one registry line per built-in net.

* :data:`MODELS`: ``arch`` name -> factory ``(input_shape, channels, widths) -> LayeredNet``.
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
from typing import Callable, Sequence

import torch
from torch import nn

from layerib.errors import ConfigError
from layerib.models.conv import conv_net
from layerib.models.layered import LayeredNet
from layerib.models.mlp import mlp
from layerib.models.resnet import resnet
from layerib.models.units import group_units
from layerib.models.vgg import vgg

log = logging.getLogger(__name__)


def _mlp(input_shape, channels, widths) -> LayeredNet:
    return mlp(input_shape, widths)


#: arch name -> factory ``(input_shape, channels, widths) -> LayeredNet``
MODELS: dict[str, Callable[..., LayeredNet]] = {
    "mlp": _mlp,        # the paper's MNIST MLP (784-512-512-10 by default); models/mlp.py
    "conv": conv_net,   # conv blocks (3x3 conv, ReLU, 2x2 max-pool), then FC layers; models/conv.py
    "vgg": vgg,         # VGG-style: blocks of 3x3 conv + BN + ReLU ending in a max-pool; models/vgg.py
    "resnet": resnet,   # ResNet-style: a stem, then one residual stage per unit; models/resnet.py
}


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


def build_model(arch: str, input_shape: tuple[int, ...], *, channels: tuple[int, ...] = (32, 64),
                widths: tuple[int, ...] = (512, 512, 10), model: str | None = None) -> LayeredNet:
    """The net a config names: ``model`` (a user's factory) if set, else ``MODELS[arch]``.

    Args:
        arch: a key of :data:`MODELS`.
        input_shape: shape of one input, e.g. ``(1, 28, 28)``.
        channels, widths: the built-in nets' sizes.
        model: ``"PACKAGE.MODULE:FACTORY"`` or None.

    Raises:
        ConfigError: an unknown arch (the message lists the registered ones), a factory
            that cannot be imported, fails, or returns no list of layers.
    """
    if model is not None:
        layers = _call_factory(import_factory(model), input_shape, model)
        return as_layered(layers, torch.zeros((2, *input_shape)))
    if arch not in MODELS:
        raise ConfigError(f"unknown arch {arch!r}; choose one of {', '.join(MODELS)}, "
                          "or pass --model PACKAGE.MODULE:FACTORY")
    try:
        return MODELS[arch](tuple(input_shape), tuple(channels), tuple(widths))
    except ValueError as e:
        raise ConfigError(f"arch {arch!r} on inputs of shape {tuple(input_shape)}: {e}") from None
