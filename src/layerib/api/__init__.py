"""The public Python API: your own net and data through layer-wise IB and MI measurement.

* :func:`~layerib.api.training.train_layerwise` -> :class:`~layerib.api.training.TrainResult`
* :func:`~layerib.api.measure.measure_layers` -> ``list[`` :class:`~layerib.api.result.LayerMI` ``]``
* :class:`~layerib.ib.infoplane.InfoPlaneRecorder` (``.for_model(...)``, ``.record(step)``)
"""
