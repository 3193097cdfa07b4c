"""Reader of the official UCI HAR archive (repository #240): zip as downloaded, or extracted.

Reads ``{train,test}/Inertial Signals/<channel>_<split>.txt``, ``y_<split>.txt`` and
``subject_<split>.txt`` of "UCI HAR Dataset" into windows ``(N, 128, 9)`` float32 in the
conventional channel order. Zip members are read in memory (never extracted); the UCI
static download, a zip wrapping "UCI HAR Dataset.zip", is unwrapped in memory too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import files
from .errors import HarDataError
from .files import kind, open_regular, read_regular
from .safezip import SafeZip, top_dirs
from .textarrays import parse_int_column, parse_matrix

CHANNELS: tuple[str, ...] = tuple(
    f"{kind}_{axis}" for kind in ("body_acc", "body_gyro", "total_acc") for axis in "xyz"
)
"""Channel order of the windows' last axis."""
WINDOW = 128
TOP = "UCI HAR Dataset"
INNER_ZIP = "UCI HAR Dataset.zip"
_ALLOWED_TOPS = {TOP, "__MACOSX"}


def member_paths(split: str) -> list[str]:
    """Relative paths (inside "UCI HAR Dataset") of the files one split needs."""
    signals = [f"{split}/Inertial Signals/{channel}_{split}.txt" for channel in CHANNELS]
    return [*signals, f"{split}/y_{split}.txt", f"{split}/subject_{split}.txt"]


@dataclass(frozen=True)
class UciSource:
    """Where the archive is: ``kind`` 'zip' or 'folder', and the files it depends on."""

    kind: str
    path: Path

    def fingerprint_files(self) -> list[Path]:
        """Files whose size+mtime identify this source's content for the cache key."""
        if self.kind == "zip":
            return [self.path]
        return [self.path / rel for split in ("train", "test") for rel in member_paths(split)]


def resolve(path: str | Path) -> UciSource:
    """Find the archive at ``path``: the zip, the extracted folder, or its parent."""
    path = Path(path).expanduser()
    if path.is_file():
        return UciSource("zip", path.resolve())
    if path.is_dir():
        if (path / "train").is_dir() and (path / "test").is_dir():
            return UciSource("folder", path.resolve())
        if (path / TOP).is_dir():
            return UciSource("folder", (path / TOP).resolve())
        if (path / INNER_ZIP).is_file():
            return UciSource("zip", (path / INNER_ZIP).resolve())
        raise HarDataError(
            f"{path}: no UCI HAR archive here (expected train/ and test/, "
            f"'{TOP}/' or '{INNER_ZIP}')"
        )
    if path.exists():
        raise HarDataError(f"{path}: not a regular file or folder ({kind(path.stat().st_mode)})")
    raise HarDataError(f"{path}: no such file or directory")


def _open_data_zip(path: Path) -> SafeZip:
    """Open the data zip, unwrapping UCI's outer download zip in memory when needed."""
    archive = SafeZip(open_regular(path, files.MAX_ARCHIVE_BYTES), str(path))
    names = archive.names()
    if INNER_ZIP in names and not any(name.startswith(TOP + "/") for name in names):
        for name in names:
            if "/" in name and not name.startswith("__MACOSX/"):
                archive.close()
                raise HarDataError(f"{path}: unexpected member {name!r} in the outer archive")
        inner = archive.read(INNER_ZIP)
        archive.close()
        archive = SafeZip(inner, f"{path}!{INNER_ZIP}")
        names = archive.names()
    for name in names:
        if top_dirs([name]) - _ALLOWED_TOPS:
            archive.close()
            raise HarDataError(f"{archive.label}: unexpected member {name!r} (not under '{TOP}/')")
    return archive


def _read_split(read: Callable[[str], bytes], label: str, split: str) -> dict[str, np.ndarray]:
    paths = member_paths(split)
    columns = []
    for rel in paths[: len(CHANNELS)]:
        columns.append(parse_matrix(read(rel), f"{label}/{rel}", ncols=WINDOW))
        # each channel is parsed (float64) before the next is read: one text at a time
    activity = parse_int_column(read(paths[-2]), f"{label}/{paths[-2]}", 1, 6)
    subject = parse_int_column(read(paths[-1]), f"{label}/{paths[-1]}", 1, 10_000)
    rows = {rel: len(col) for rel, col in zip(paths, [*columns, activity, subject], strict=True)}
    if len(set(rows.values())) != 1:
        first = paths[0]
        odd = next(rel for rel in paths if rows[rel] != rows[first])
        raise HarDataError(
            f"{label}/{odd}: {rows[odd]} rows, but {first} has {rows[first]} "
            "(row counts must match)"
        )
    x = np.stack(columns, axis=-1).astype(np.float32)
    return {"x": x, "activity": activity, "subject": subject}


def read_archive(source: UciSource) -> dict[str, dict[str, np.ndarray]]:
    """Parse both official splits: ``{"train"|"test": {"x", "activity", "subject"}}``.

    Raises HarDataError (naming the file) for missing files, malformed rows, labels
    outside 1..6, mismatched row counts, volunteers in both splits, unsafe zips.
    """
    if source.kind == "zip":
        with _open_data_zip(source.path) as archive:
            label = f"{archive.label}!{TOP}"
            splits = {
                split: _read_split(lambda rel: archive.read(f"{TOP}/{rel}", files.MAX_TEXT_BYTES),
                                   label, split)
                for split in ("train", "test")
            }
    else:

        def read_file(rel: str) -> bytes:  # the zip members' limit, and regular files only
            return read_regular(source.path / rel, files.MAX_TEXT_BYTES)

        splits = {
            split: _read_split(read_file, str(source.path), split) for split in ("train", "test")
        }
    shared = set(splits["train"]["subject"].tolist()) & set(splits["test"]["subject"].tolist())
    if shared:
        raise HarDataError(
            f"{source.path}: volunteers {sorted(shared)} appear in both train and test"
        )
    return splits
