"""Atomic file writes: a temporary file in the target folder, then ``os.replace``."""

from __future__ import annotations

import os
import tempfile


def atomic_write(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the whole new one.

    Raises OSError (one line, naming the path) when the folder cannot be written; no
    temporary file is left behind.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    try:
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=folder)
    except OSError as exc:
        raise OSError(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except OSError as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise OSError(f"cannot write {path}: {exc.strerror or exc}") from None


def atomic_write_many(files: dict[str, bytes]) -> None:
    """Write several files all-or-nothing as far as the OS allows: every temporary file is
    written first, then each is moved into place; on any error all temporaries are removed
    and OSError (one line) is raised before any target is touched."""
    tmps: list[tuple[str, str]] = []
    try:
        for path, data in files.items():
            folder = os.path.dirname(os.path.abspath(path))
            try:
                fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=folder)
            except OSError as exc:
                raise OSError(f"cannot write {path}: {exc.strerror or exc}") from None
            tmps.append((tmp, path))
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.chmod(tmp, 0o644)
        for tmp, path in tmps:
            os.replace(tmp, path)
    except OSError as exc:
        for tmp, _ in tmps:
            try:
                os.unlink(tmp)
            except OSError:
                pass
        if str(exc).startswith("cannot write"):
            raise
        raise OSError(f"cannot write {exc.filename or 'output'}: {exc.strerror or exc}") from None
