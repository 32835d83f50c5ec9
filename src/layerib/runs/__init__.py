"""Runs on disk: the run folder (atomic files, metrics log), checkpoints, training and estimation runs.

* :mod:`~layerib.runs.folder`: atomic writes, ``metrics.jsonl``, run-folder checks.
* :mod:`~layerib.runs.checkpoint`: ``checkpoint.pt``, resume point, test kill points.
* :mod:`~layerib.runs.training`: one ``layerib train`` run, end to end.
* :mod:`~layerib.runs.estimation`: one ``layerib estimate`` run.
"""
