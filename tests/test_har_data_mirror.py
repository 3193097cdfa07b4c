"""The reader against the official UCI HAR values (mirror in ../shared, skipped when absent).

The archive layout is rebuilt from the mirror by ../shared/tools/make_uci_archive.py.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import MAKE_UCI_ARCHIVE

import har_data

pytestmark = pytest.mark.needs_uci
FAST_TRAIN, FAST_TEST = (1, 3, 5), (2,)


def _make_archive(out: Path, subjects: tuple[int, ...] | None) -> Path:
    args = [sys.executable, str(MAKE_UCI_ARCHIVE), str(out), "--zip"]
    if subjects:
        args += ["--subjects", *map(str, subjects)]
    subprocess.run(args, check=True, capture_output=True, timeout=300)
    return out


def _mirror(mirror: Path, split: str, subjects: tuple[int, ...] | None) -> dict:
    subject = np.load(mirror / f"subject_{split}.npy")
    keep = np.ones(len(subject), bool) if subjects is None else np.isin(subject, subjects)
    x = np.stack([np.load(mirror / f"{c}_{split}.npy") for c in har_data.CHANNELS], axis=-1)
    activity = np.load(mirror / f"y_{split}.npy")
    return {"x": x[keep], "activity": activity[keep], "subject": subject[keep]}


def _check(ds: har_data.HarDataset, mirror: Path, subjects: tuple[int, ...] | None) -> None:
    test = _mirror(mirror, "test", subjects)
    np.testing.assert_array_equal(ds.test.activity, test["activity"])
    np.testing.assert_array_equal(ds.test.subject, test["subject"])
    # the text holds 8 significant digits of the float32 mirror
    np.testing.assert_allclose(ds.test.x, test["x"], rtol=1e-6, atol=1e-9)
    train = _mirror(mirror, "train", subjects)
    for part in (ds.train, ds.val):
        keep = np.isin(train["subject"], np.unique(part.subject))
        np.testing.assert_allclose(part.x, train["x"][keep], rtol=1e-6, atol=1e-9)
        np.testing.assert_array_equal(part.activity, train["activity"][keep])


def test_subset_of_volunteers_matches_mirror(uci_mirror: Path, tmp_path: Path) -> None:
    out = _make_archive(tmp_path / "archive", FAST_TRAIN + FAST_TEST)
    for path in (out / "UCI HAR Dataset.zip", out / "UCI HAR Dataset", out):
        ds = har_data.load("uci", path=path, val_subjects=1, cache_dir=tmp_path / "cache")
        assert ds.name == "uci-har2"
        assert set(ds.test.subject.tolist()) == set(FAST_TEST)
        _check(ds, uci_mirror, FAST_TRAIN + FAST_TEST)


@pytest.mark.slow
def test_full_archive_har2_counts(uci_mirror: Path, tmp_path: Path) -> None:
    out = _make_archive(tmp_path / "archive", None)
    for path in (out / "UCI HAR Dataset.zip", out / "UCI HAR Dataset"):
        ds = har_data.load("uci", path=path, cache_dir=tmp_path / f"cache-{path.suffix}")
        _check(ds, uci_mirror, None)
        y_train = np.concatenate([ds.train.y, ds.val.y])
        assert (int((y_train == 1).sum()), int((y_train == 0).sum())) == (3766, 3586)
        assert (int((ds.test.y == 1).sum()), int((ds.test.y == 0).sum())) == (1499, 1448)
        assert set(ds.test.subject.tolist()) == {2, 4, 9, 10, 12, 13, 18, 20, 24}
        assert len(ds.val_subjects) == 6
