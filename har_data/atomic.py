"""Atomic file writes: a temporary file beside the target, fsync, then ``os.replace``.

A reader (or a rerun after ``kill -9``) sees the old file or the whole new one, never a
half-written one; at worst a temporary ``.<name>.<random>.tmp`` is left in the folder.
The one implementation for every package: it lives in ``har_data``, the lowest layer
(``export`` and ``edgeprune`` may import ``har_data``; ``har_data`` imports neither).
On failure the temporary is removed and the ``OSError`` keeps its ``errno`` and
``strerror`` with the *target* as ``filename``.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import BinaryIO

_UMASK = os.umask(0)
os.umask(_UMASK)

PathLike = str | os.PathLike[str]


def _retarget(exc: OSError, path: PathLike) -> OSError:
    """``exc`` naming ``path`` instead of the temporary (same errno and message)."""
    if exc.errno is None:
        return exc
    return OSError(exc.errno, exc.strerror, os.fspath(path))


def _temporary(path: Path) -> tuple[int, str]:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; these are ordinary files
    return fd, tmp


@contextlib.contextmanager
def atomic_open(path: PathLike, *, parents: bool = False) -> Iterator[BinaryIO]:
    """A binary file to write ``path``'s new content into (``np.savez``, ``savefig``,
    ``csv`` through ``io.TextIOWrapper``); on a clean exit it is synced and renamed onto
    ``path``, on any exception removed and ``path`` left as it was. ``parents``: create
    missing folders first (otherwise a missing folder is an error)."""
    target = Path(path)
    try:
        if parents:
            target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = _temporary(target)
    except OSError as exc:
        raise _retarget(exc, target) from None
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise _retarget(exc, target) from None
        raise


def atomic_write(path: PathLike, data: bytes, *, parents: bool = False) -> None:
    """Write ``data`` to ``path`` atomically (``parents``: as :func:`atomic_open`)."""
    with atomic_open(path, parents=parents) as handle:
        handle.write(data)


def atomic_write_many(files: Mapping[PathLike, bytes]) -> None:
    """Write several files all-or-nothing as far as the OS allows: every temporary is
    written first, then each is renamed into place; on any error before the renames all
    temporaries are removed and no target is touched."""
    temps: list[tuple[str, Path]] = []
    target: Path | None = None
    try:
        for path, data in files.items():
            target = Path(path)
            fd, tmp = _temporary(target)
            temps.append((tmp, target))
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
        for tmp, target in temps:
            os.replace(tmp, target)
    except BaseException as exc:
        for tmp, _ in temps:
            Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError) and target is not None:
            raise _retarget(exc, target) from None
        raise
