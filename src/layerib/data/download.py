"""Checksummed, atomic downloads and the data-root lookup shared by all loaders."""

from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from layerib.errors import DataError

#: Environment variable that names the data root (the folder holding ``MNIST/`` etc.).
DATA_ROOT_ENV = "LAYERIB_DATA_ROOT"


def default_data_root() -> Path:
    """Return the data root: ``$LAYERIB_DATA_ROOT`` if set, else a per-user cache folder.

    The cache folder is ``$XDG_CACHE_HOME/layerib/data`` (``~/.cache/layerib/data``).
    """
    env = os.environ.get(DATA_ROOT_ENV)
    if env:
        return Path(env).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "layerib" / "data"


def resolve_data_root(data_root: str | os.PathLike | None) -> Path:
    """Return ``data_root`` as a Path, or :func:`default_data_root` when it is None."""
    return Path(data_root).expanduser() if data_root is not None else default_data_root()


def file_digest(path: Path, algorithm: str = "sha256") -> str:
    """Hex digest of a file's bytes (``algorithm`` is any :mod:`hashlib` name)."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def download_file(urls: list[str], dest: Path, *, md5: str | None = None,
                  sha256: str | None = None, timeout: float = 30.0) -> Path:
    """Download the first reachable URL of ``urls`` to ``dest``, verify, then rename.

    The file is written to a temporary name in ``dest``'s folder and renamed
    only after its checksum matches, so an interrupted or corrupt download
    never leaves a file at ``dest``.

    Raises:
        DataError: no URL could be fetched (e.g. offline), or the checksum of
            every fetched copy was wrong, or the folder is not writable.
    """
    dest = Path(dest)
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DataError(f"cannot create data folder {dest.parent}: {e.strerror}; "
                        "pass a writable --data-root") from None
    errors = []
    for url in urls:
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as r:
                while chunk := r.read(1 << 20):
                    out.write(chunk)
            for algo, want in (("md5", md5), ("sha256", sha256)):
                if want is not None and file_digest(Path(tmp), algo) != want:
                    raise DataError(f"{algo} mismatch for {url}")
            os.replace(tmp, dest)
            return dest
        except (urllib.error.URLError, OSError, DataError, TimeoutError) as e:
            errors.append(f"{url}: {e}")
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    raise DataError(f"could not download {dest.name} ({'; '.join(errors)})")
