"""Sweep specifications: a base config plus a grid, expanded into named, validated points.

A sweep file is YAML with two keys::

    base: {train_fraction: 0.01, widths: [512, 512, 10]}   # any TrainConfig keys
    grid: {beta: [0.01, 1.0, 100.0], seed: [0, 1, 2]}       # cartesian product

``grid`` may also be a list of such mappings; the sweep is then the union of
their products (e.g. IB at several betas plus the CE baseline). Every point's
:class:`~layerib.config.TrainConfig` is built and validated by
:func:`expand` before anything runs. A point's folder name comes from the
grid keys that take more than one value over the whole sweep, so it is
stable and readable (``beta=0.01__seed=2``).
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from layerib.config import RESULT_NEUTRAL_KEYS, TrainConfig, config_from_dict, effective_settings
from layerib.errors import ConfigError

#: Keys that say where the data is, not what is computed: a point folder made
#: with other values of these is still the same point.
@dataclass(frozen=True)
class SweepPoint:
    """One training run of a sweep.

    Attributes:
        name: folder name under the sweep folder (unique within the sweep).
        overrides: the grid values of this point, ``{key: value}``, in grid order.
        config: the point's full, validated settings.
    """

    name: str
    overrides: dict[str, Any]
    config: TrainConfig


@dataclass(frozen=True)
class SweepSpec:
    """A parsed sweep file: ``base`` settings and a list of grids (each ``{key: [values]}``)."""

    base: dict[str, Any]
    grids: tuple[dict[str, list], ...]

    def to_dict(self) -> dict[str, Any]:
        """The spec as YAML-ready values (``grid`` a mapping when there is one grid; tuples
        become lists and dict subclasses such as ``arch_params`` plain dicts).

        Example:
            >>> from layerib.config import ArchParams
            >>> SweepSpec({"channels": (8, 16)}, ({"arch_params": [ArchParams()]},)).to_dict()
            {'base': {'channels': [8, 16]}, 'grid': {'arch_params': [{}]}}
        """
        grid: Any = dict(self.grids[0]) if len(self.grids) == 1 else [dict(g) for g in self.grids]
        return {"base": plain(self.base), "grid": plain(grid)}


def plain(v: Any) -> Any:
    """``v`` as plain YAML/JSON data: tuples and lists as lists, mappings (dict subclasses
    too) as dicts, recursively; anything else unchanged.

    Example:
        >>> plain({"channels": (64, 128), "grid": [{"k": (1,)}]})
        {'channels': [64, 128], 'grid': [{'k': [1]}]}
    """
    if isinstance(v, (tuple, list)):
        return [plain(x) for x in v]
    if isinstance(v, dict):
        return {k: plain(x) for k, x in v.items()}
    return v


def _check(cond: bool, msg: str) -> None:
    if not cond:
        raise ConfigError(msg)


def spec_from_dict(data: Any, where: str = "sweep") -> SweepSpec:
    """Check the shape of a sweep mapping (``base``, ``grid``) and return the spec.

    Raises:
        ConfigError: not a mapping, an unknown top-level key, or a grid that
            is not a non-empty mapping (or list of mappings) of non-empty lists.
    """
    _check(isinstance(data, dict), f"{where} must be a mapping with keys base and grid")
    unknown = sorted(set(data) - {"base", "grid"})
    _check(not unknown, f"{where}: unknown key(s) {', '.join(map(str, unknown))}; use base and grid")
    base = data.get("base") or {}
    _check(isinstance(base, dict), f"{where}: base must be a mapping of config keys to values")
    grid = data.get("grid")
    grids = grid if isinstance(grid, list) else [grid]
    _check(grid is not None and len(grids) > 0, f"{where}: grid is missing or empty")
    for g in grids:
        _check(isinstance(g, dict) and len(g) > 0,
               f"{where}: grid must be a mapping (or list of mappings) of config keys to lists")
        for k, v in g.items():
            _check(isinstance(v, list) and len(v) > 0,
                   f"{where}: grid value of {k} must be a non-empty list, got {v!r}")
    return SweepSpec(base=dict(base), grids=tuple(dict(g) for g in grids))


def read_spec(path: str | Path) -> SweepSpec:
    """Read a sweep YAML file (see the module doc).

    Raises:
        ConfigError: unreadable file, invalid YAML, or a bad shape (:func:`spec_from_dict`).
    """
    import yaml
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as e:
        raise ConfigError(f"cannot read sweep file {path}: {e.strerror}") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"sweep file {path} is not valid YAML: {str(e).splitlines()[0]}") from None
    return spec_from_dict(data, where=f"sweep file {path}")


def format_value(v: Any) -> str:
    """A value as it appears in a folder name: exact floats, ``a-b-c`` lists, safe characters."""
    if isinstance(v, (list, tuple)):
        return "-".join(format_value(x) for x in v)
    if isinstance(v, dict):  # arch_params: key-value pairs
        return "_".join(f"{format_value(k)}-{format_value(x)}" for k, x in v.items())
    text = "none" if v is None else repr(v) if isinstance(v, float) else str(v)
    return re.sub(r"[^A-Za-z0-9.+-]", "_", text)


def _hashable(v: Any) -> Any:
    if isinstance(v, dict):
        return tuple((k, _hashable(x)) for k, x in sorted(v.items()))
    return tuple(_hashable(x) for x in v) if isinstance(v, (list, tuple)) else v


def expand(spec: SweepSpec) -> list[SweepPoint]:
    """All points of ``spec``, in grid order, each with its validated config.

    Raises:
        ConfigError: a bad base or grid value (the message names the point),
            or two points with the same settings or the same folder name.
    """
    try:
        base = config_from_dict(spec.base)
    except ConfigError as e:
        raise ConfigError(f"sweep base: {e}") from None
    combos = [dict(zip(g, values)) for g in spec.grids for values in itertools.product(*g.values())]
    seen: dict[str, set] = {}
    for c in combos:
        for k, v in c.items():
            seen.setdefault(k, set()).add(_hashable(v))
    varying = [k for k in seen if len(seen[k]) > 1]
    points, names, configs = [], {}, {}
    for c in combos:
        name = "__".join(f"{k}={format_value(c[k])}" for k in varying if k in c) or "point"
        try:
            cfg = config_from_dict(c, base=base)
        except ConfigError as e:
            raise ConfigError(f"sweep point {name}: {e}") from None
        _check(cfg not in configs, f"sweep point {name} has the same settings as {configs.get(cfg)}; "
                                   "remove the duplicate from the grid")
        _check(name not in names, f"sweep points {c} and {names.get(name)} share the folder name "
                                  f"{name}; make their grid values differ")
        names[name], configs[cfg] = c, name
        points.append(SweepPoint(name=name, overrides=c, config=cfg))
    return points


def config_differences(stored: dict[str, Any], cfg: TrainConfig) -> list[str]:
    """``["key: stored -> new", ...]`` for settings (not :data:`~layerib.config.RESULT_NEUTRAL_KEYS`) that differ.

    A key missing from ``stored`` (a setting added to TrainConfig after the
    point was written) counts as what it meant then (:func:`layerib.config.effective_settings`).
    """
    new = effective_settings(cfg.to_dict())
    stored = effective_settings(stored)
    return [f"{k}: {stored.get(k)!r} -> {new[k]!r}" for k in new
            if k not in RESULT_NEUTRAL_KEYS and stored.get(k) != new[k]]
