"""What every reproduction does with its presets and its stored result, in one place."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from layerib.errors import ConfigError, RunDirError


def choose(presets: dict[str, Any], name: str, experiment: str) -> Any:
    """``presets[name]``.

    Raises:
        ConfigError: an unknown name (the message lists the known ones).
    """
    if name not in presets:
        raise ConfigError(f"unknown {experiment} preset {name!r}; choose one of {', '.join(presets)}")
    return presets[name]


def set_fields(obj: Any, overrides: dict[str, Any]) -> Any:
    """The dataclass ``obj`` with the fields in ``overrides`` replaced; None values keep theirs."""
    return dataclasses.replace(obj, **{k: v for k, v in overrides.items() if v is not None})


def with_train(preset: Any, overrides: dict[str, Any]) -> Any:
    """``preset`` with the ``TrainConfig`` fields of its ``train`` replaced (None: keep)."""
    return dataclasses.replace(preset, train=set_fields(preset.train, overrides))


def read_stored(out: str | Path, experiment: str) -> dict:
    """``<out>/<experiment>.json`` of a finished reproduction.

    Raises:
        RunDirError: the file is missing (or not valid JSON).
    """
    from layerib.analysis.runs import read_json
    res = read_json(Path(out) / f"{experiment}.json")
    if res is None:
        raise RunDirError(f"{out} holds no finished {experiment} reproduction ({experiment}.json)")
    return res
