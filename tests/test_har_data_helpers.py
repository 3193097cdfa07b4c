"""Fixture builders for the har_data tests (no tests here): small archives in the exact
official UCI HAR layout, written by the tests themselves."""

from __future__ import annotations

import io
import struct
import zipfile
from pathlib import Path

import numpy as np

from har_data import CHANNELS

TOP = "UCI HAR Dataset"
TRAIN_SUBJECTS = (1, 3, 5, 6, 7, 8, 11, 14)
TEST_SUBJECTS = (2, 4)


def make_arrays(seed: int = 0, per_subject: int = 3) -> dict[str, dict[str, np.ndarray]]:
    """Synthetic splits; channel c is centred on 10*c so the channel order is checkable."""
    rng = np.random.default_rng(seed)
    out = {}
    for split, subjects in (("train", TRAIN_SUBJECTS), ("test", TEST_SUBJECTS)):
        subject = np.repeat(np.array(subjects, np.int64), per_subject)
        n = len(subject)
        activity = rng.integers(1, 7, n).astype(np.int64)
        x = rng.normal(size=(n, 128, 9)) + 10.0 * np.arange(9)
        out[split] = {"x": x.astype(np.float32), "activity": activity, "subject": subject}
    return out


def write_folder(parent: Path, arrays: dict) -> Path:
    """Write ``parent/"UCI HAR Dataset"`` as in the official archive; returns that folder."""
    root = parent / TOP
    for split, part in arrays.items():
        signals = root / split / "Inertial Signals"
        signals.mkdir(parents=True, exist_ok=True)
        for c, channel in enumerate(CHANNELS):
            np.savetxt(signals / f"{channel}_{split}.txt", part["x"][:, :, c], fmt="%15.7e")
        np.savetxt(root / split / f"y_{split}.txt", part["activity"], fmt="%d")
        np.savetxt(root / split / f"subject_{split}.txt", part["subject"], fmt="%d")
    (root / "activity_labels.txt").write_text("1 WALKING\n2 WALKING_UPSTAIRS\n")
    return root


def zip_folder(root: Path, target: Path, extra: dict[str, bytes] | None = None) -> Path:
    """Zip the folder with members "UCI HAR Dataset/..." (plus ``extra`` raw members)."""
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(root.rglob("*")):
            archive.write(path, path.relative_to(root.parent).as_posix())
        for name, data in (extra or {}).items():
            archive.writestr(name, data)
    return target


def outer_zip(inner: Path, target: Path) -> Path:
    """A zip shaped like UCI's static download: the inner archive plus a .names file."""
    with zipfile.ZipFile(target, "w", zipfile.ZIP_STORED) as archive:
        archive.write(inner, "UCI HAR Dataset.zip")
        archive.writestr("UCI HAR Dataset.names", "names\n")
    return target


def patch_declared_size(data: bytes, member: str, size: int) -> bytes:
    """Set the uncompressed size that the zip's headers declare for ``member``."""
    out = bytearray(data)
    name = member.encode()
    for signature, name_at, size_at in ((b"PK\x01\x02", 46, 24), (b"PK\x03\x04", 30, 22)):
        start = 0
        while (i := out.find(signature, start)) >= 0:
            if out[i + name_at : i + name_at + len(name)] == name:
                struct.pack_into("<I", out, i + size_at, size)
            start = i + 4
    return bytes(out)


def zip_bytes(members: dict[str, bytes]) -> bytes:
    """An in-memory zip with these raw members."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buf.getvalue()
