"""Mixed precision for training passes (``TrainConfig.precision``).

``"bfloat16"`` runs the forward passes of the layer being trained, of the frozen prefix
recomputed per batch and of end-to-end CE under ``torch.autocast`` with bfloat16 (on CPUs
with AMX or AVX-512 BF16, and on GPUs, convolutions and matrix products then take bfloat16
kernels), and stores conv weights channels-last. Everything that is measured stays float32:
the critics and their bounds (a layer's output is cast back to float32 before they read it),
the losses, every held-out MI estimate, validation score, accuracy and the final MI report.
bfloat16 keeps float32's exponent range, so no loss scaling is needed (unlike float16).
"""

from __future__ import annotations

import contextlib

import torch
from torch import nn


def training_autocast(device: torch.device | str, precision: str):
    """The context for one training forward pass: ``torch.autocast(device type, bfloat16)``
    for ``precision="bfloat16"``, else a no-op (``"float32"``).

    Raises:
        ValueError: an unknown ``precision`` (choose float32 or bfloat16).
    """
    if precision == "float32":
        return contextlib.nullcontext()
    if precision != "bfloat16":
        raise ValueError(f"precision must be float32 or bfloat16, got {precision!r}")
    kind = torch.device(device).type
    return torch.autocast(kind, dtype=torch.bfloat16)


def prepare_net(net: nn.Module, precision: str) -> nn.Module:
    """``net`` in the memory format its ``precision`` trains fastest with: conv (4-D) weights
    channels-last for ``"bfloat16"`` (oneDNN's bfloat16 convolutions on CPU are about 1.6x
    faster channels-last, measured on the six-conv VGG), unchanged for ``"float32"``; values
    are not changed, and inputs need no conversion (a conv with a channels-last weight
    returns a channels-last output)."""
    if precision == "bfloat16":
        net.to(memory_format=torch.channels_last)
    return net
