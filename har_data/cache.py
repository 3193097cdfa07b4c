"""Processed arrays cached as .npz, keyed by source, input fingerprint and format version."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import zipfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from .atomic import atomic_open
from .errors import HarDataError

FORMAT_VERSION = 1
"""Bump when the processing changes, so stale cache files are ignored."""
_KEYS = ("x", "activity", "subject")


def default_cache_dir() -> Path:
    """``$EDGEPRUNE_CACHE`` if set, else ``~/.cache/edgeprune``."""
    env = os.environ.get("EDGEPRUNE_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "edgeprune"


def cache_key(source: str, files: Iterable[Path], extra: object = None) -> str:
    """Hex key from the source name, each file's resolved path, size and mtime, ``extra``
    (processing parameters) and FORMAT_VERSION; a missing file is a HarDataError."""
    parts: list[object] = [source, FORMAT_VERSION, extra]
    for path in files:
        try:
            stat = path.stat()
        except FileNotFoundError:
            raise HarDataError(f"{path}: missing file") from None
        parts.append([str(path.resolve()), stat.st_size, stat.st_mtime_ns])
    return hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()[:24]


def cache_path(cache_dir: Path, source: str, key: str) -> Path:
    """The .npz file for ``source`` and ``key`` in ``cache_dir``."""
    return Path(cache_dir) / f"{source}-v{FORMAT_VERSION}-{key}.npz"


def save(path: Path, splits: dict[str, dict[str, np.ndarray]]) -> None:
    """Write ``{split: {x, activity, subject}}`` atomically (temp file + os.replace).

    A cache folder that cannot be written is a HarDataError naming it."""
    arrays = {f"{split}_{k}": v for split, part in splits.items() for k, v in part.items()}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if not os.access(path.parent, os.W_OK):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path.parent))
    except OSError as exc:
        raise HarDataError(
            f"{path.parent}: cache folder cannot be written ({exc.strerror or exc}); set "
            "EDGEPRUNE_CACHE to a writable folder or disable the cache"
        ) from None
    try:
        with atomic_open(path) as handle:
            np.savez(handle, **arrays)
    except OSError as exc:
        raise HarDataError(f"{path}: cache file cannot be written ({exc.strerror or exc})") \
            from None


def load(path: Path, splits: Iterable[str] = ("train", "test")) -> dict | None:
    """The cached splits, or None when the file is absent or unreadable (rebuilt then)."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            out = {s: {k: data[f"{s}_{k}"] for k in _KEYS} for s in splits}
    except (OSError, KeyError, ValueError, zipfile.BadZipFile, EOFError):
        return None
    for part in out.values():
        n = len(part["activity"])
        if part["x"].shape != (n, 128, 9) or len(part["subject"]) != n:
            return None
    return out
