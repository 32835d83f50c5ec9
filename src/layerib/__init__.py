"""layerib: layer-by-layer information-bottleneck training and neural MI estimation.

Implements Elad, Haviv, Blau, Michaeli, "Direct Validation of the Information
Bottleneck Principle for Deep Nets" (ICCV-W 2019). MI is in nats everywhere.

The public API (imported on first use, so ``import layerib`` stays cheap):

* :func:`train_layerwise` (-> :class:`TrainResult`): layer-wise IB, I(Y;L)-only or
  cross-entropy training of your own layers on your own data.
* :func:`measure_layers` (-> list of :class:`LayerMI`): I(X; L + eps) by AA-MINE beside
  its Monte-Carlo truth, and I(Y; L), for named layers of any ``nn.Module``.
* :class:`InfoPlaneRecorder`: the information plane from your own training loop.
* :class:`TrainConfig`: every setting, with its default and meaning.
* :func:`estimate_mi` (-> :class:`MIResult`): I(X; Y) from paired samples (continuous or
  integer labels; ``noise_var=`` for I(X; X + eps)), with a validated critic, an interval
  and flags.
* :class:`MIResult`: an MI estimate with its interval, batch size, ln B and flags.
* :class:`LayerwiseTrainer`, :class:`EndToEndCE`: the trainers behind ``train_layerwise``
  and ``layerib train``, as objects (``.fit(train, test, callbacks=...)``).
* :class:`Callback`: the trainers' callback protocol (``on_step``, ``on_eval``,
  ``on_stage_end``, state for resume); :class:`TensorBoardCallback` is one (optional
  ``tensorboard`` dependency).
"""

__version__ = "0.2.0"

_EXPORTS = {
    "train_layerwise": "layerib.api.training", "TrainResult": "layerib.api.training",
    "measure_layers": "layerib.api.measure", "LayerMI": "layerib.api.result",
    "InfoPlaneRecorder": "layerib.ib.infoplane", "TrainConfig": "layerib.config",
    "MIResult": "layerib.mi.protocol", "estimate_mi": "layerib.mi.estimate",
    "LayerwiseTrainer": "layerib.ib.trainers", "EndToEndCE": "layerib.ib.trainers",
    "Callback": "layerib.ib.callbacks", "TensorBoardCallback": "layerib.ib.callbacks",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        import importlib
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'layerib' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + __all__)
