"""Reading the outputs of named modules of any ``nn.Module`` with forward hooks."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from layerib.errors import ConfigError
from layerib.utils.memory import outputs_in_chunks


class LayerTaps:
    """Outputs of ``names`` (as in ``model.named_modules()``) for a batch, in that order.

    ``taps(x)`` runs ``model(x)`` once with forward hooks on the named modules and
    returns their outputs, each flattened to ``(batch, d_i)`` float32. Hooks live only
    for that call, so the model is left as it was. A module that runs several times in
    one forward keeps its last output.

    Raises:
        ConfigError: an unknown name (the message lists the model's module names), or a
            named module that did not run or returned no tensor.
    """

    def __init__(self, model: nn.Module, names: Sequence[str]):
        modules = dict(model.named_modules())
        missing = [n for n in names if n not in modules or n == ""]
        if missing or not names:
            known = ", ".join(n for n in modules if n) or "(none)"
            raise ConfigError(f"no module named {', '.join(map(repr, missing)) or '(none given)'} "
                              f"in {type(model).__name__}; choose from: {known}")
        self.model, self.names = model, list(names)
        self._modules = [modules[n] for n in names]

    def __call__(self, x: torch.Tensor) -> list[torch.Tensor]:
        out: dict[int, torch.Tensor] = {}
        hooks = [m.register_forward_hook(lambda _m, _i, o, k=k: out.__setitem__(k, o))
                 for k, m in enumerate(self._modules)]
        try:
            self.model(x)
        finally:
            for h in hooks:
                h.remove()
        feats = []
        for k, name in enumerate(self.names):
            o = out.get(k)
            if not isinstance(o, torch.Tensor):
                raise ConfigError(f"module {name!r} did not run in the forward pass or returned "
                                  f"{type(o).__name__}, not a tensor; choose another layer name")
            feats.append(o.detach().flatten(1).float())
        return feats

    @torch.no_grad()
    def on(self, x: torch.Tensor, chunk: int | None = None) -> list[torch.Tensor]:
        """Every named output on all of ``x`` ``(N, ...)`` in eval mode: ``[(N, d_i)]``, by
        :func:`~layerib.utils.memory.outputs_in_chunks` of ``chunk`` rows (default 256).

        The model's train/eval mode is restored afterwards.
        """
        was = self.model.training
        self.model.eval()
        try:
            return outputs_in_chunks(self, x, chunk)
        finally:
            self.model.train(was)
