"""Test-window files (``.npz`` with ``windows`` and ``expected``): what the pipeline writes
as ``OUT/test_windows.npz`` and what ``firmware run`` reads."""

from __future__ import annotations

import io
import os
import stat
from pathlib import Path
from typing import Any

import numpy as np

from edgeprune.firmware._errors import BadWindows
from har_data.atomic import atomic_write

WINDOWS_FILE = "test_windows.npz"
MAX_WINDOWS = 4096  # far more than any board's flash holds (each window is embedded)
MAX_WINDOWS_FILE_BYTES = 256 * 1024 * 1024


def save_windows(path: Path, windows: np.ndarray, expected: np.ndarray | None) -> None:
    """Write ``windows`` (and ``expected`` classes, when known) to ``path`` atomically."""

    buffer = io.BytesIO()
    arrays: dict[str, Any] = {"windows": np.asarray(windows)}
    if expected is not None:
        arrays["expected"] = np.asarray(expected)
    np.savez(buffer, **arrays)
    atomic_write(path, buffer.getvalue(), parents=True)


def load_windows(path: Path, n: int | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """The first ``n`` (default: all) windows of ``path`` and their expected classes (None
    when the file has none). Raises BadWindows, before reading, for anything but a regular
    file of at most ``MAX_WINDOWS_FILE_BYTES``; then for a file without windows, with
    fewer than ``n``, or with expected classes of another count."""
    path = Path(path)
    try:
        info = os.stat(path)
    except OSError as err:
        raise BadWindows(f"cannot read windows from {path}: {err.strerror}") from None
    if not stat.S_ISREG(info.st_mode):
        raise BadWindows(f"cannot read windows from {path}: not a regular file")
    if info.st_size > MAX_WINDOWS_FILE_BYTES:
        raise BadWindows(f"{path}: {info.st_size} bytes exceeds the "
                         f"{MAX_WINDOWS_FILE_BYTES}-byte limit of a windows file")
    try:
        with np.load(path, allow_pickle=False) as data:
            if "windows" not in data.files:
                raise BadWindows(f"{path}: no array 'windows' (found {sorted(data.files)})")
            windows = np.asarray(data["windows"])
            expected = np.asarray(data["expected"]) if "expected" in data.files else None
    except BadWindows:
        raise
    except Exception as err:  # noqa: BLE001  (numpy/zipfile raise many kinds for bad files)
        raise BadWindows(f"cannot read windows from {path}: {type(err).__name__}: "
                         f"{str(err).splitlines()[0] if str(err) else 'unreadable'}") from None
    if windows.ndim == 0 or len(windows) == 0:
        raise BadWindows(f"{path} holds no windows (shape {windows.shape})")
    if expected is not None and expected.reshape(-1).shape[0] != len(windows):
        raise BadWindows(f"{path}: {len(windows)} windows but "
                         f"{expected.reshape(-1).shape[0]} expected classes")
    if n is not None and n > len(windows):
        raise BadWindows(f"--windows {n}: {path} holds only {len(windows)} windows")
    n = len(windows) if n is None else n
    return windows[:n], None if expected is None else expected.reshape(-1)[:n]
