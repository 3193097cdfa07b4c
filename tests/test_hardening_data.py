"""har_data under bad input: nothing is cached or extracted from a bad archive, and a
damaged cache file is rebuilt rather than trusted. (The per-file catalogue of archive
errors is ``tests/test_har_data_bad_input.py``.)"""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import numpy as np
import pytest
from test_har_data_helpers import TOP, make_arrays, write_folder, zip_folder

import har_data
from har_data import HarDataError

pytestmark = pytest.mark.bad_input
BODY_X = "train/Inertial Signals/body_acc_x_train.txt"


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_folder(tmp_path_factory.mktemp("pristine"), make_arrays(per_subject=2))


@pytest.fixture
def folder(pristine: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(pristine, tmp_path / "src" / TOP))


def _files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []


def _poison_value(folder: Path) -> Path:
    path = folder / BODY_X
    lines = path.read_text().splitlines()
    lines[2] = "inf " + lines[2].split(maxsplit=1)[1]
    path.write_text("\n".join(lines) + "\n")
    return folder


def _traversal_zip(folder: Path) -> Path:
    return zip_folder(folder, folder.parent / "UCI HAR Dataset.zip",
                      extra={"../../escaped.txt": b"x"})


@pytest.mark.parametrize("make", [_poison_value, _traversal_zip], ids=["inf", "../ member"])
def test_a_rejected_archive_leaves_no_cache_and_nothing_extracted(folder: Path, tmp_path: Path,
                                                                   make):
    source = make(folder)
    cache = tmp_path / "cache"
    with pytest.raises(HarDataError) as err:
        har_data.load("uci", path=source, val_subjects=1, cache_dir=cache)
    assert "\n" not in str(err.value)
    assert _files(cache) == []
    assert not list(tmp_path.rglob("escaped.txt"))


@pytest.mark.parametrize("damage", [b"", b"PK\x03\x04garbage", None], ids=["empty", "garbage",
                                                                           "truncated"])
def test_a_damaged_cache_file_is_rebuilt(folder: Path, tmp_path: Path, damage: bytes | None):
    cache = tmp_path / "cache"
    first = har_data.load("uci", path=folder, val_subjects=1, cache_dir=cache)
    (stored,) = [p for p in _files(cache) if p.suffix == ".npz"]
    data = stored.read_bytes()
    stored.write_bytes(data[: len(data) // 2] if damage is None else damage)
    again = har_data.load("uci", path=folder, val_subjects=1, cache_dir=cache)
    np.testing.assert_array_equal(again.train.x, first.train.x)
    np.testing.assert_array_equal(again.test.y, first.test.y)
    with np.load(stored) as rebuilt:  # rewritten whole
        np.testing.assert_array_equal(rebuilt["train_x"], np.load(io.BytesIO(data))["train_x"])


def test_an_unwritable_cache_folder_is_named(folder: Path, tmp_path: Path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(HarDataError) as err:
        har_data.load("uci", path=folder, val_subjects=1, cache_dir=blocker / "cache")
    message = str(err.value)
    assert "\n" not in message and "cache folder cannot be written" in message
    assert str(blocker / "cache") in message and blocker.read_text() == "x"
