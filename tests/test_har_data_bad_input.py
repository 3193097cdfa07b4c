"""The bad-input catalogue of har_data: each case is one HarDataError naming file and problem."""

from __future__ import annotations

import gzip
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
from test_har_data_helpers import (
    TOP,
    make_arrays,
    patch_declared_size,
    write_folder,
    zip_bytes,
    zip_folder,
)

import har_data
from har_data import HarDataError

pytestmark = pytest.mark.bad_input
Y_TRAIN = "train/y_train.txt"
BODY_X = "train/Inertial Signals/body_acc_x_train.txt"


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_folder(tmp_path_factory.mktemp("pristine"), make_arrays(per_subject=2))


@pytest.fixture
def folder(pristine: Path, tmp_path: Path) -> Path:
    """A fresh writable copy of the fixture archive folder."""
    return Path(shutil.copytree(pristine, tmp_path / TOP))


def _load(path: Path, tmp_path: Path) -> har_data.HarDataset:
    return har_data.load("uci", path=path, val_subjects=1, cache_dir=tmp_path / "cache")


def _edit_line(path: Path, line: int, edit) -> None:
    lines = path.read_text().splitlines()
    lines[line] = edit(lines[line])
    path.write_text("\n".join(lines) + "\n")


def _one_line(exc: pytest.ExceptionInfo) -> str:
    message = str(exc.value)
    assert "\n" not in message and isinstance(exc.value, ValueError)
    return message


def test_missing_file(folder: Path, tmp_path: Path) -> None:
    (folder / "train" / "subject_train.txt").unlink()
    with pytest.raises(HarDataError) as exc:
        _load(folder, tmp_path)
    assert "subject_train.txt: missing file" in _one_line(exc)


def test_missing_zip_member(folder: Path, tmp_path: Path) -> None:
    (folder / "test" / "y_test.txt").unlink()
    zipped = zip_folder(folder, tmp_path / "UCI HAR Dataset.zip")
    with pytest.raises(HarDataError) as exc:
        _load(zipped, tmp_path)
    assert "y_test.txt: missing from the archive" in _one_line(exc)


def test_no_archive_at_path(tmp_path: Path) -> None:
    with pytest.raises(HarDataError, match="no such file"):
        _load(tmp_path / "absent.zip", tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(HarDataError, match="no UCI HAR archive here"):
        _load(tmp_path / "empty", tmp_path)


def test_not_a_zip(tmp_path: Path) -> None:
    bogus = tmp_path / "UCI HAR Dataset.zip"
    bogus.write_bytes(b"this is not a zip file")
    with pytest.raises(HarDataError, match="not a readable zip archive"):
        _load(bogus, tmp_path)


def test_row_too_short(folder: Path, tmp_path: Path) -> None:
    _edit_line(folder / BODY_X, 3, lambda s: s.rsplit(" ", 1)[0])
    with pytest.raises(HarDataError) as exc:
        _load(folder, tmp_path)
    message = _one_line(exc)
    assert "body_acc_x_train.txt" in message and "line 4 has 127 values, expected 128" in message


def test_every_row_wrong_length(folder: Path, tmp_path: Path) -> None:
    path = folder / BODY_X
    values = np.loadtxt(path)[:, :100]
    np.savetxt(path, values, fmt="%15.7e")
    with pytest.raises(HarDataError, match="rows have 100 values, expected 128"):
        _load(folder, tmp_path)


def test_non_numeric_value(folder: Path, tmp_path: Path) -> None:
    _edit_line(folder / BODY_X, 1, lambda s: s.replace("e", "q", 1))
    with pytest.raises(HarDataError) as exc:
        _load(folder, tmp_path)
    assert "body_acc_x_train.txt: line 2 has a non-numeric value" in _one_line(exc)


def test_non_finite_value(folder: Path, tmp_path: Path) -> None:
    _edit_line(folder / BODY_X, 2, lambda s: "nan " + s.split(maxsplit=1)[1])
    with pytest.raises(HarDataError) as exc:
        _load(folder, tmp_path)
    assert "body_acc_x_train.txt: non-finite value nan at line 3, column 1" in _one_line(exc)


@pytest.mark.parametrize("label", ["7", "0", "2.5"])
def test_label_outside_range(folder: Path, tmp_path: Path, label: str) -> None:
    _edit_line(folder / Y_TRAIN, 0, lambda s: label)
    with pytest.raises(HarDataError) as exc:
        _load(folder, tmp_path)
    assert "y_train.txt: value" in _one_line(exc) and "not an integer in 1..6" in str(exc.value)


def test_mismatched_row_counts(folder: Path, tmp_path: Path) -> None:
    path = folder / "train" / "subject_train.txt"
    path.write_text("\n".join(path.read_text().splitlines()[:-1]) + "\n")
    with pytest.raises(HarDataError) as exc:
        _load(folder, tmp_path)
    assert "subject_train.txt" in _one_line(exc) and "row counts must match" in str(exc.value)


def test_subject_in_both_splits(folder: Path, tmp_path: Path) -> None:
    _edit_line(folder / "test" / "subject_test.txt", 0, lambda s: "1")
    with pytest.raises(HarDataError, match=r"volunteers \[1\] appear in both"):
        _load(folder, tmp_path)


@pytest.mark.parametrize(
    ("member", "problem"),
    [
        ("../evil.txt", "climbs out of the archive"),
        (f"{TOP}/../../evil.txt", "climbs out of the archive"),
        ("/etc/evil.txt", "is an absolute path"),
        ("C:\\evil.txt", "is an absolute path"),
    ],
)
def test_path_traversing_member(folder: Path, tmp_path: Path, member: str, problem: str) -> None:
    zipped = zip_folder(folder, tmp_path / "UCI HAR Dataset.zip", extra={member: b"x"})
    with pytest.raises(HarDataError) as exc:
        _load(zipped, tmp_path)
    assert "UCI HAR Dataset.zip: member" in _one_line(exc) and problem in str(exc.value)
    assert not (tmp_path.parent / "evil.txt").exists()


def test_unexpected_member(folder: Path, tmp_path: Path) -> None:
    zipped = zip_folder(folder, tmp_path / "UCI HAR Dataset.zip", extra={"payload/run.sh": b"x"})
    with pytest.raises(HarDataError, match="unexpected member 'payload/run.sh'"):
        _load(zipped, tmp_path)


def test_unexpected_member_in_outer_zip(tmp_path: Path) -> None:
    outer = tmp_path / "outer.zip"
    inner = zip_bytes({f"{TOP}/train/y_train.txt": b"1\n"})
    outer.write_bytes(zip_bytes({"UCI HAR Dataset.zip": inner, "other/x.txt": b"x"}))
    with pytest.raises(HarDataError, match="unexpected member 'other/x.txt' in the outer"):
        _load(outer, tmp_path)


def test_oversized_declared_member(folder: Path, tmp_path: Path) -> None:
    member = f"{TOP}/{BODY_X}"
    data = zip_folder(folder, tmp_path / "ok.zip").read_bytes()
    bomb = tmp_path / "UCI HAR Dataset.zip"
    bomb.write_bytes(patch_declared_size(data, member, 3_000_000_000))
    with pytest.raises(HarDataError) as exc:
        _load(bomb, tmp_path)
    message = _one_line(exc)
    assert "body_acc_x_train.txt: declared size 3000000000 bytes exceeds" in message


def test_member_larger_than_declared(folder: Path, tmp_path: Path) -> None:
    member = f"{TOP}/{BODY_X}"
    data = zip_folder(folder, tmp_path / "ok.zip").read_bytes()
    liar = tmp_path / "UCI HAR Dataset.zip"
    liar.write_bytes(patch_declared_size(data, member, 100))
    with pytest.raises(HarDataError) as exc:
        _load(liar, tmp_path)
    assert "body_acc_x_train.txt: corrupt member" in _one_line(exc)


def test_member_over_the_actual_size_limit(
    folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from har_data import files

    zipped = zip_folder(folder, tmp_path / "UCI HAR Dataset.zip")
    monkeypatch.setattr(files, "MAX_TEXT_BYTES", 10_000)
    with pytest.raises(HarDataError, match="exceeds the 10000-byte limit"):
        _load(zipped, tmp_path)
    with pytest.raises(HarDataError) as exc:  # the same limit on the extracted folder
        _load(folder, tmp_path)
    assert "body_acc_x_train.txt: " in _one_line(exc) and "10000-byte limit" in str(exc.value)


class _Boom:
    def __reduce__(self):
        import os

        return (os.system, ("touch SHOULD_NOT_EXIST",))


def test_pickle_with_disallowed_global(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    bad = tmp_path / "HAPT.pkl.gz"
    with gzip.open(bad, "wb") as stream:
        pickle.dump({1: [_Boom()]}, stream, protocol=2)
    with pytest.raises(HarDataError) as exc:
        har_data.load("hapt", path=bad, cache_dir=tmp_path / "cache")
    message = _one_line(exc)
    assert "HAPT.pkl.gz: pickle asks for disallowed global" in message
    assert "system" in message
    assert not (tmp_path / "SHOULD_NOT_EXIST").exists()


def test_pickle_of_wrong_shape(tmp_path: Path) -> None:
    bad = tmp_path / "HAPT.pkl.gz"
    with gzip.open(bad, "wb") as stream:
        pickle.dump([1, 2, 3], stream, protocol=2)
    with pytest.raises(HarDataError, match="expected a dict of users"):
        har_data.load("hapt", path=bad, cache_dir=tmp_path / "cache")


def test_bad_arguments(folder: Path, tmp_path: Path) -> None:
    with pytest.raises(HarDataError, match="unknown source 'mnist'"):
        har_data.load("mnist")
    with pytest.raises(HarDataError, match=r"val_subjects \[2\] are not training volunteers"):
        har_data.load("uci", path=folder, val_subjects=[2], cache_dir=tmp_path)
    with pytest.raises(HarDataError, match="val_subjects=99"):
        har_data.load("uci", path=folder, val_subjects=99, cache_dir=tmp_path)
