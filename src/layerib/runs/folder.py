"""Run folders: atomic JSON results, one JSON line per evaluation, the run's record.

A run folder holds ``config.json`` (resolved settings, command line, versions),
``metrics.jsonl`` (one JSON object per evaluation) and, once the run has
finished, ``result.json``. Files are written to a temporary name in the same
folder and renamed, so a killed run or a full disk never leaves a partial file.
"""

from __future__ import annotations

import json
import math
import os
import platform
import sys
import tempfile
from pathlib import Path
from typing import IO, Any, Callable

from layerib.errors import RunDirError
from layerib.ib.callbacks import Callback


def _clean(obj: Any) -> Any:
    """Make ``obj`` strict-JSON: non-finite floats become None (flagged, never written as NaN)."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    return obj


def atomic_write(path: Path, write: Callable[[IO], None], *, binary: bool = False,
                 kept: str = "") -> None:
    """Call ``write(f)`` on a temporary file beside ``path``, fsync it, then ``os.replace``.

    The one write primitive of run folders (JSON, text, checkpoints, models).

    Args:
        kept: appended to the error message (e.g. that the previous file is kept).

    Raises:
        RunDirError: the folder is not writable or the disk is full; no partial
            file is left behind and ``path`` keeps its old content.
    """
    path = Path(path)
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "wb" if binary else "w") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # as readable as any file the user writes (mkstemp: 0600)
        os.replace(tmp, path)
        tmp = None
    except OSError as e:
        raise RunDirError(f"cannot write {path}: {e.strerror or e}; free disk space or choose "
                          f"another --out{kept}") from None
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (:func:`atomic_write`).

    Raises:
        RunDirError: the folder is not writable or the disk is full; no partial
            file is left behind.
    """
    atomic_write(path, lambda f: f.write(text))


def atomic_write_json(path: Path, obj: Any) -> None:
    """Write ``obj`` as indented strict JSON, atomically (see :func:`atomic_write_text`)."""
    atomic_write_text(path, json.dumps(_clean(obj), indent=2, sort_keys=False) + "\n")


def versions() -> dict[str, str]:
    """Versions of Python, torch, numpy and layerib, for the run's record."""
    import numpy
    import torch

    import layerib
    return {"python": sys.version.split()[0], "torch": str(torch.__version__),
            "numpy": str(numpy.__version__), "layerib": str(layerib.__version__),
            "platform": platform.platform()}


class MetricsLog(Callback):
    """Appends one JSON object per line to ``metrics.jsonl`` (flushed each line).

    As a trainer's :class:`~layerib.ib.callbacks.Callback` it writes every record
    (``on_eval``) and keeps its length in checkpoints (``metrics_bytes``): a resumed run
    cuts the records written after its checkpoint.
    """

    def __init__(self, path: Path):
        self.path = Path(path)

    def on_eval(self, record: dict[str, Any]) -> None:
        self.write(record)

    def state_dict(self) -> dict:
        return {"metrics_bytes": self.size()}

    def load_state_dict(self, state: dict) -> None:
        self.truncate(state["metrics_bytes"])  # drop records written after it

    def write(self, record: dict[str, Any]) -> None:
        """Append ``record`` as one line; on a write error (full disk) the file is cut back
        to its previous length, so no partial line is left.

        Raises:
            RunDirError: the line could not be written.
        """
        size = self.size()
        try:
            with open(self.path, "a") as f:
                f.write(json.dumps(_clean(record)) + "\n")
        except OSError as e:
            self._cut(size)
            raise RunDirError(f"cannot append to {self.path}: {e.strerror or e}; free disk "
                              "space or choose another --out") from None

    def size(self) -> int:
        """Length of the file in bytes (0 when it does not exist yet)."""
        try:
            return self.path.stat().st_size
        except FileNotFoundError:
            return 0

    def truncate(self, size: int) -> None:
        """Cut the file back to ``size`` bytes (records written after a checkpoint)."""
        if self.size() > size:
            self._cut(size)

    def _cut(self, size: int) -> None:
        try:
            if self.path.exists():
                os.truncate(self.path, size)
        except OSError:
            pass


def check_run_dir(out: Path, force: bool = False) -> None:
    """Check, without creating anything, that ``out`` can hold a new run.

    Raises:
        RunDirError: ``out`` is a file, holds a finished run and not ``force``,
            or cannot be created (a file on its path, a folder that is not writable).
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise RunDirError(f"--out {out} is a file, not a folder; choose another path")
    if (out / "result.json").exists() and not force:
        raise RunDirError(f"{out} already holds a finished run (result.json); "
                          "choose another --out or pass --force to overwrite")
    base = out.absolute()
    while not base.exists() and base != base.parent:
        base = base.parent
    if not base.is_dir():
        raise RunDirError(f"cannot create --out {out}: {base} is a file, not a folder; "
                          "choose another path")
    if not _writable(base):
        raise RunDirError(f"{base} is not writable; choose a writable --out")


def _writable(folder: Path) -> bool:
    """True when a file can be created in ``folder`` (tried, not guessed: root ignores modes)."""
    if not os.access(folder, os.W_OK):
        return False
    try:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".layerib-probe.")
    except OSError:
        return False
    os.close(fd)
    os.unlink(tmp)
    return True


def prepare_run_dir(out: Path, force: bool = False) -> Path:
    """Create ``out`` (and parents) and check it can hold a new run.

    Raises:
        RunDirError: ``out`` is a file, is not writable, or already holds a
            finished run's ``result.json`` (pass ``force=True`` to overwrite).
    """
    out = Path(out)
    check_run_dir(out, force)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise RunDirError(f"cannot create {out}: {e.strerror}; choose a writable --out") from None
    if not _writable(out):
        raise RunDirError(f"{out} is not writable; choose a writable --out")
    if force:
        for name in ("result.json", "metrics.jsonl", "checkpoint.pt", "model.pt"):
            (out / name).unlink(missing_ok=True)
    return out
