"""Where the frozen layers' outputs live: in memory, in a file on disk, or nowhere (recomputed).

Layer-wise training caches the output of the frozen units 1..i-1 on the whole training
set (and on the test and validation sets) for stage i, and every layer's output for the
read-out and the MI report. :class:`FrozenCache` computes such an output chunk by chunk
(:func:`chunk_rows`: about 16 MiB of input per chunk, so a conv unit's intermediate maps
stay small) and stores it by ``TrainConfig.frozen_cache``:

* ``memory``: a tensor;
* ``disk``: a :class:`DiskRows`, a raw float32 file of the rows, written chunk by chunk
  (the whole array is never in RAM) and read per batch;
* ``auto`` (the default): in memory while the arrays this cache holds in memory stay
  within ``cache_budget_mb`` (MiB), else on disk. (A stage's training input is
  recomputed instead when augmenting: :mod:`layerib.ib.prefix`.)

Rows read back from the file are the bytes written, so a stage trains bit-identically on
either. The files lie in ``<run folder>/frozen-cache/`` (a temporary folder without a run
folder) and are deleted when the run ends, with or without an error; a killed run leaves
them, and its next attempt deletes them before starting.

Why reads and not a memory map: pages of a mapped file that a run touches count in its
resident set until the kernel needs them back, so a run reading a 3.3 GB mapped cache in
random order shows 3.3 GB more resident memory. :class:`DiskRows` reads each batch's rows
with ``os.preadv`` into a fresh tensor: the file's pages sit in the kernel's page cache
(reclaimable, not the process's), the process holds one batch.
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterable, Iterator

import torch
from torch import nn

from layerib.utils.memory import fill_outputs

#: about this many bytes of a layer's input per chunk when computing its output on a set
CHUNK_BYTES = 1 << 24
CACHE_FOLDER = "frozen-cache"


def chunk_rows(h, cap: int = 4096) -> int:
    """Rows per chunk for a forward pass over ``h`` (N, ...): ``CHUNK_BYTES`` of input, in [1, cap]."""
    row_bytes = max(1, math.prod(h.shape[1:]) * 4)
    return max(1, min(cap, CHUNK_BYTES // row_bytes))


class DiskRows:
    """Float32 rows ``(N, *row_shape)`` in a raw file, indexed like a tensor.

    ``rows[idx]`` (an int, a slice with step 1, or an index tensor / list) reads those
    rows into a new tensor on :attr:`device`; ``len``, ``shape``, ``device``, ``ndim``,
    ``flatten(1)`` (the same file, rows flattened) and ``to(device)`` behave as a
    tensor's. :meth:`write` creates one from chunks of rows.
    """

    dtype = torch.float32

    def __init__(self, path: str | os.PathLike, n: int, row_shape: tuple[int, ...],
                 device: torch.device | str = "cpu"):
        self.path, self.n, self.row_shape = Path(path), int(n), tuple(int(s) for s in row_shape)
        self.device = torch.device(device)
        self.row_bytes = math.prod(self.row_shape) * 4
        self._fd: int | None = None

    @classmethod
    def write(cls, path: str | os.PathLike, chunks: Iterable[torch.Tensor],
              device: torch.device | str = "cpu") -> "DiskRows":
        """Write ``chunks`` (each ``(n_k, *row_shape)``, float32) to ``path``, one after another."""
        n, shape = 0, None
        with open(path, "wb") as f:
            for c in chunks:
                c = c.detach().to("cpu", torch.float32).contiguous()
                if shape is None:
                    shape = tuple(c.shape[1:])
                elif tuple(c.shape[1:]) != shape:
                    raise ValueError(f"chunk rows {tuple(c.shape[1:])} differ from {shape}")
                f.write(memoryview(c.numpy()).cast("B"))
                n += len(c)
        if shape is None:
            raise ValueError("no rows to write")
        return cls(path, n, shape, device)

    # --- the tensor-like interface
    def __len__(self) -> int:
        return self.n

    @property
    def shape(self) -> torch.Size:
        return torch.Size((self.n, *self.row_shape))

    @property
    def ndim(self) -> int:
        return 1 + len(self.row_shape)

    def dim(self) -> int:
        return self.ndim

    def to(self, device) -> "DiskRows":
        return DiskRows(self.path, self.n, self.row_shape, device)

    def flatten(self, start_dim: int = 1) -> "DiskRows":
        if start_dim != 1:
            raise ValueError("DiskRows.flatten: only start_dim=1 (rows stay rows)")
        return DiskRows(self.path, self.n, (math.prod(self.row_shape),), self.device)

    def __getitem__(self, idx) -> torch.Tensor:
        if isinstance(idx, int):
            return self[torch.tensor([idx])][0]
        if isinstance(idx, slice):
            start, stop, step = idx.indices(self.n)
            if step != 1:
                raise ValueError("DiskRows: slices with a step are not supported")
            out = torch.empty((max(stop - start, 0), *self.row_shape), dtype=torch.float32)
            self._read(memoryview(out.numpy()).cast("B"), start * self.row_bytes)
            return out.to(self.device)
        rows = torch.as_tensor(idx).reshape(-1).cpu().tolist()
        out = torch.empty((len(rows), *self.row_shape), dtype=torch.float32)
        buf, rb = memoryview(out.numpy()).cast("B"), self.row_bytes
        for k, i in enumerate(rows):
            if not -self.n <= i < self.n:
                raise IndexError(f"row {i} out of range for {self.n} rows")
            self._read(buf[k * rb:(k + 1) * rb], (i % self.n) * rb)
        return out.to(self.device)

    # --- file access
    def _read(self, buf: memoryview, offset: int) -> None:
        if self._fd is None:
            self._fd = os.open(self.path, os.O_RDONLY)
        done = 0
        while done < len(buf):
            got = os.preadv(self._fd, [buf[done:]], offset + done)
            if got <= 0:
                raise OSError(f"{self.path}: short read at byte {offset + done}")
            done += got

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __del__(self):
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass

    def __getstate__(self):
        return {"path": self.path, "n": self.n, "row_shape": self.row_shape, "device": self.device}

    def __setstate__(self, s):
        self.__init__(s["path"], s["n"], s["row_shape"], s["device"])


def as_tensor(h) -> torch.Tensor:
    """``h`` itself when a tensor, else all its rows read into one."""
    return h if isinstance(h, torch.Tensor) else h[0:len(h)]


def fill_rows(chunks: Iterable[torch.Tensor], n: int) -> torch.Tensor:
    """The ``n`` rows of ``chunks`` in one tensor, copied into it as they come (``torch.cat`` of a
    list would hold every chunk and the result at once): :func:`~layerib.utils.memory.fill_outputs`
    of one output.

    Raises:
        ValueError: the chunks give other than ``n`` rows."""
    return fill_outputs(([c] for c in chunks), n)[0]


def row_chunks(fn, h, rows: int | None = None) -> Iterator[torch.Tensor]:
    """``fn(h[s:s + rows])`` for consecutive chunks of ``h`` (rows: :func:`chunk_rows`)."""
    rows = rows or chunk_rows(h)
    for s in range(0, len(h), rows):
        yield fn(h[s:s + rows])


class FrozenCache:
    """Stores frozen outputs in memory or on disk (see the module docstring).

    Args:
        mode: ``memory``, ``disk`` or ``auto`` (``recompute`` behaves as ``auto`` here: it
            only changes how a stage's training input is made).
        budget_mb: ``auto``: MiB of arrays held in memory, beyond which arrays go to disk.
        folder: where the files go (created on first use, deleted by :meth:`close`); None:
            a temporary folder.
    """

    def __init__(self, mode: str = "auto", budget_mb: float = 256.0,
                 folder: str | os.PathLike | None = None):
        self.mode, self.budget = mode, budget_mb * 2**20
        self.folder = Path(folder) if folder is not None else None
        self._made: Path | None = None
        self.memory_bytes, self.disk_bytes, self.n_files = 0, 0, 0
        if self.folder is not None and self.folder.exists():
            shutil.rmtree(self.folder)  # left by a killed attempt: never reused

    def _dir(self) -> Path:
        if self._made is None:
            if self.folder is None:
                self._made = Path(tempfile.mkdtemp(prefix="layerib-frozen-cache-"))
            else:
                self.folder.mkdir(parents=True, exist_ok=True)
                self._made = self.folder
        return self._made

    def store(self, chunks: Iterable[torch.Tensor], n: int, device: torch.device | str = "cpu"):
        """The rows of ``chunks`` (``n`` in all) as a tensor or a :class:`DiskRows`."""
        it = iter(chunks)
        first = next(it)
        size = n * first[0].numel() * 4
        on_disk = self.mode == "disk" or (self.mode != "memory"
                                          and self.memory_bytes + size > self.budget)
        if not on_disk:
            self.memory_bytes += size

            def all_rows():
                yield first
                yield from it
            return fill_rows(all_rows(), n)
        self.n_files += 1
        self.disk_bytes += size

        def all_chunks():
            yield first
            yield from it
        return DiskRows.write(self._dir() / f"rows-{self.n_files}.f32", all_chunks(), device)

    @torch.inference_mode()
    def forward(self, layer: nn.Module, h, rows: int | None = None):
        """The frozen ``layer``'s output (eval mode) on every row of ``h``, stored."""
        layer.eval()
        return self.store(row_chunks(layer, h, rows), len(h), h.device)

    def close(self) -> None:
        """Delete the files (the folder)."""
        if self._made is not None:
            shutil.rmtree(self._made, ignore_errors=True)
            self._made = None

    def __enter__(self) -> "FrozenCache":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
