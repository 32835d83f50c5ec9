"""Running a sweep: each point one ``layerib train`` subprocess, here or on a Ray cluster.

A point runs as ``python -m layerib train --config point.yaml --out <point folder>``
in its own process with ``OMP_NUM_THREADS`` threads, so a crash, a bad
setting or a thread pool never reaches the other points. The sweep folder
holds ``sweep.yaml`` (the spec), one folder per point (``point.yaml`` with
the point's full settings, the run folder of :mod:`layerib.runs.training`,
``train.log``, and ``error.json`` while the point has failed) and
``sweep.csv`` (:mod:`layerib.sweep.table`). A point whose folder holds
``result.json`` is finished and skipped on re-run; one holding a stopped run
continues it from its checkpoint (:mod:`layerib.runs.checkpoint`; with Ray it
starts again); a point folder whose ``point.yaml`` holds other settings is an
error, never silently reused.

With Ray, each point runs as the same subprocess inside a Ray task on any
node, in a temporary folder there; the task returns the folder's files and
the driver writes them into the sweep folder, so the nodes need no shared
file system (only layerib installed, and the data or permission to
download it).
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from layerib.errors import ConfigError, RunDirError
from layerib.runs.folder import atomic_write_json, atomic_write_text
from layerib.sweep.spec import SweepPoint, SweepSpec, config_differences, expand
from layerib.sweep.table import ERROR_FILE, write_table
from layerib.utils.progress import progress_bar

log = logging.getLogger(__name__)

POINT_FILE = "point.yaml"
LOG_FILE = "train.log"


@dataclass
class SweepOutcome:
    """What :func:`run_sweep` did: point names run, skipped (finished before) and failed."""

    out: Path
    points: list[SweepPoint]
    ran: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # name -> one-line error
    table: Path | None = None


def default_workers() -> int:
    """Local parallel points by default: the number of cores, at most 8."""
    return max(1, min(os.cpu_count() or 1, 8))


def _point_yaml(point: SweepPoint) -> str:
    return yaml.safe_dump(point.config.to_dict(), sort_keys=False)


def check_point_folder(folder: Path, point: SweepPoint) -> bool:
    """True when ``folder`` holds this point finished; False when it must (re)run.

    Raises:
        RunDirError: the folder is a file, holds files of something other than
            a sweep point, or holds this point's name with other settings.
    """
    if not folder.exists():
        return False
    if not folder.is_dir():
        raise RunDirError(f"sweep point folder {folder} is a file; remove it or choose another --out")
    stored_file = folder / POINT_FILE
    if not stored_file.exists():
        if any(folder.iterdir()):
            raise RunDirError(f"{folder} holds files but no {POINT_FILE}: not a sweep point; "
                              "remove it or choose another --out")
        return False
    try:
        stored = yaml.safe_load(stored_file.read_text()) or {}
    except (OSError, yaml.YAMLError) as e:
        raise RunDirError(f"cannot read {stored_file}: {e}") from None
    diff = config_differences(stored, point.config)
    if diff:
        raise RunDirError(f"{folder} holds point {point.name} with other settings ({diff[0]}"
                          f"{f' and {len(diff) - 1} more' if len(diff) > 1 else ''}); "
                          "remove that folder or choose another --out")
    return (folder / "result.json").exists()


def run_point(folder: str | Path, threads: int = 1) -> dict[str, Any]:
    """Train the point whose settings are in ``folder/point.yaml`` into ``folder``.

    Runs ``python -m layerib train`` in a subprocess with ``threads`` threads
    and writes its output to ``folder/train.log``. A folder holding a stopped
    run of the point (``config.json``) continues it from its checkpoint.

    Returns:
        ``{"returncode": int, "error": one-line message or None, "seconds": float}``.
    """
    folder = Path(folder)
    import layerib  # the subprocess runs the same layerib as this process
    src = str(Path(layerib.__file__).resolve().parent.parent)
    path = os.pathsep.join([src] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads),
               PYTHONPATH=path)
    cmd = [sys.executable, "-m", "layerib", "train", "--config", str(folder / POINT_FILE),
           "--out", str(folder), "--no-progress"]
    if not (folder / "config.json").exists():  # nothing trained yet: point.yaml, logs only
        cmd.append("--force")  # else `layerib train` resumes the run from its checkpoint
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True)
    (folder / LOG_FILE).write_text(proc.stdout)
    error = None
    if proc.returncode < 0:  # killed: its last output line is no error message
        error = f"killed by {signal.Signals(-proc.returncode).name}"
    elif proc.returncode != 0:
        lines = [ln for ln in proc.stdout.splitlines() if ln.strip()]
        error = lines[-1].strip() if lines else f"exit status {proc.returncode}"
    return {"returncode": proc.returncode, "error": error, "seconds": time.perf_counter() - t0}


def _ray_point(name: str, point_yaml: str, threads: int) -> tuple[dict, dict[str, bytes]]:
    """Ray task body: run the point in a temporary folder; return its outcome and files."""
    with tempfile.TemporaryDirectory(prefix="layerib-sweep-") as tmp:
        folder = Path(tmp) / name
        folder.mkdir()
        (folder / POINT_FILE).write_text(point_yaml)
        outcome = run_point(folder, threads)
        files = {p.relative_to(folder).as_posix(): p.read_bytes()
                 for p in sorted(folder.rglob("*")) if p.is_file() and p.name != POINT_FILE}
    return outcome, files


def _store_files(folder: Path, files: dict[str, bytes]) -> None:
    """Write a point's returned files into ``folder``, ``result.json`` last (each atomically)."""
    for rel in sorted(files, key=lambda r: r == "result.json"):
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_bytes(files[rel])
        tmp.replace(path)


def _record(outcome_: SweepOutcome, folder: Path, name: str, result: dict) -> None:
    if result["returncode"] == 0:
        (folder / ERROR_FILE).unlink(missing_ok=True)
        outcome_.ran.append(name)
    else:
        atomic_write_json(folder / ERROR_FILE, result)
        outcome_.failed[name] = result["error"]
        log.warning("sweep point %s failed: %s", name, result["error"])


def _run_local(pending, out, outcome_, workers, threads, bar) -> None:
    pool = ThreadPoolExecutor(max_workers=workers)
    try:
        futures = {pool.submit(run_point, out / p.name, threads): p for p in pending}
        for fut in as_completed(futures):
            name = futures[fut].name
            _record(outcome_, out / name, name, fut.result())
            bar.update(1)
    finally:  # on Ctrl-C the running points get it too; start no more
        pool.shutdown(wait=True, cancel_futures=True)


def _run_ray(pending, out, outcome_, address, threads, bar) -> None:
    try:
        import ray
    except ImportError:
        raise ConfigError("--ray-address needs Ray: pip install 'layerib[ray]'") from None
    started = not ray.is_initialized()
    if started:
        extra = {"include_dashboard": False} if address == "local" else {}  # a new instance here
        try:
            ray.init(address=address, log_to_driver=False, **extra)
        except (ConnectionError, RuntimeError, ValueError) as e:
            reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise ConfigError(f"cannot start or reach Ray at --ray-address {address}: {reason}; "
                              "check `ray status` (and RAY_AUTH_MODE / the auth token if the "
                              "cluster uses token authentication)") from None
    refs: dict = {}
    try:
        task = ray.remote(num_cpus=threads, max_retries=0)(_ray_point)
        refs = {task.remote(p.name, _point_yaml(p), threads): p for p in pending}
        while refs:
            done, _ = ray.wait(list(refs), num_returns=1)
            name = refs.pop(done[0]).name
            try:
                result, files = ray.get(done[0])
            except Exception as e:  # the task itself died (node lost, out of memory)
                lines = str(e).strip().splitlines()
                result, files = {"returncode": -1, "seconds": None, "error": "ray task failed: "
                                 + (lines[-1] if lines else type(e).__name__)}, {}
            if result["returncode"] == 0:  # a local attempt's checkpoint is stale now
                (out / name / "checkpoint.pt").unlink(missing_ok=True)
            _store_files(out / name, files)
            _record(outcome_, out / name, name, result)
            bar.update(1)
    except BaseException:  # Ctrl-C or a driver error: the cluster starts no more points
        for ref in refs:
            ray.cancel(ref, force=True)
        raise
    finally:
        if started:
            ray.shutdown()


def run_sweep(spec: SweepSpec, out: str | Path, *, workers: int | None = None,
              threads: int | None = None, ray_address: str | None = None,
              progress: bool = False) -> SweepOutcome:
    """Run every unfinished point of ``spec`` into ``out/<point name>``; write ``sweep.csv``.

    Args:
        spec: the sweep (:func:`layerib.sweep.spec.read_spec`).
        out: the sweep folder (created; may hold an earlier, partial run of it).
        workers: local points run at once (default :func:`default_workers`);
            unused with Ray, which places tasks by their CPUs.
        threads: threads of each point's process (``OMP_NUM_THREADS``); default
            ``max(1, cores // workers)`` here, 1 with Ray (the task's CPUs).
        ray_address: None runs here; else a Ray address (``auto``, ``local``,
            ``host:port``, ``ray://host:port``); an already initialised Ray is used as is.
        progress: show a progress bar over points (only when stderr is a terminal).

    Returns:
        A :class:`SweepOutcome`. A failed point does not stop the others: its
        one-line error is in ``outcome.failed``, its ``error.json`` and ``sweep.csv``.

    Raises:
        ConfigError: a point with bad settings (before anything runs), bad
            workers/threads, or Ray asked for but not installed.
        RunDirError: ``out`` or a point folder cannot be used.
    """
    points = expand(spec)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise RunDirError(f"--out {out} is a file, not a folder; choose another path")
    workers = default_workers() if workers is None else workers
    if not (isinstance(workers, int) and workers >= 1):
        raise ConfigError(f"--workers must be an integer >= 1, got {workers!r}")
    if threads is None:
        threads = 1 if ray_address else max(1, (os.cpu_count() or 1) // workers)
    if not (isinstance(threads, int) and threads >= 1):
        raise ConfigError(f"--threads must be an integer >= 1, got {threads!r}")
    outcome_ = SweepOutcome(out=out, points=points)
    pending = []
    for p in points:  # every folder is checked before anything runs
        if check_point_folder(out / p.name, p):
            outcome_.skipped.append(p.name)
        else:
            pending.append(p)
    try:
        out.mkdir(parents=True, exist_ok=True)
        for p in pending:
            (out / p.name).mkdir(exist_ok=True)
    except OSError as e:
        raise RunDirError(f"cannot create folders under {out}: {e.strerror}") from None
    atomic_write_text(out / "sweep.yaml", yaml.safe_dump(spec.to_dict(), sort_keys=False))
    for p in pending:
        atomic_write_text(out / p.name / POINT_FILE, _point_yaml(p))
    try:
        with progress_bar(total=len(points), initial=len(outcome_.skipped), desc="sweep",
                          unit="point", leave=True, enabled=progress) as bar:
            if pending and ray_address:
                _run_ray(pending, out, outcome_, ray_address, threads, bar)
            elif pending:
                _run_local(pending, out, outcome_, workers, threads, bar)
    finally:  # an interrupted sweep still leaves a table of what finished
        outcome_.table = write_table(out, points)
    return outcome_
