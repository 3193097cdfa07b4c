"""har_data.atomic: the one atomic-write helper (temporary beside the target, rename)."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import numpy as np
import pytest

from har_data.atomic import atomic_open, atomic_write, atomic_write_many


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_write_replaces_whole_with_ordinary_permissions(tmp_path: Path):
    target = tmp_path / "a.bin"
    target.write_bytes(b"old content that is longer")
    old = os.umask(0o027)
    try:
        atomic_write(target, b"new")
    finally:
        os.umask(old)
    assert target.read_bytes() == b"new" and _names(tmp_path) == ["a.bin"]
    # the umask read when the module was imported applies: mkstemp's 0600 is not kept
    assert target.stat().st_mode & 0o777 == 0o666 & ~old


def test_a_failing_writer_leaves_the_old_file_and_no_temporary(tmp_path: Path):
    target = tmp_path / "w.npz"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="half way"):
        with atomic_open(target) as handle:
            handle.write(b"partial")
            raise RuntimeError("half way")
    assert target.read_bytes() == b"old" and _names(tmp_path) == ["w.npz"]
    with atomic_open(target) as handle:
        np.savez(handle, x=np.arange(3))
    with np.load(target) as data:
        np.testing.assert_array_equal(data["x"], [0, 1, 2])


def test_a_missing_folder_names_the_target_unless_parents(tmp_path: Path):
    target = tmp_path / "sub" / "dir" / "f.txt"
    with pytest.raises(FileNotFoundError) as err:
        atomic_write(target, b"x")
    assert err.value.errno == errno.ENOENT and err.value.filename == str(target)
    assert _names(tmp_path) == []
    atomic_write(target, b"x", parents=True)
    assert target.read_bytes() == b"x"


def test_many_is_all_or_nothing_before_the_renames(tmp_path: Path):
    ok, bad = tmp_path / "m.h", tmp_path / "missing" / "m.cc"
    with pytest.raises(FileNotFoundError) as err:
        atomic_write_many({ok: b"header", bad: b"source"})
    assert err.value.filename == str(bad)
    assert _names(tmp_path) == []  # m.h not written, its temporary removed
    atomic_write_many({ok: b"header", tmp_path / "m.cc": b"source"})
    assert (ok.read_bytes(), (tmp_path / "m.cc").read_bytes()) == (b"header", b"source")
    assert _names(tmp_path) == ["m.cc", "m.h"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores folder permissions")
def test_an_unwritable_folder_keeps_errno_and_leaves_nothing(tmp_path: Path):
    ro = tmp_path / "ro"
    ro.mkdir()
    (ro / "f").write_bytes(b"old")
    ro.chmod(0o500)
    try:
        with pytest.raises(PermissionError) as err:
            atomic_write(ro / "f", b"new")
        assert err.value.filename == str(ro / "f") and "\n" not in str(err.value)
        assert _names(ro) == ["f"] and (ro / "f").read_bytes() == b"old"
    finally:
        ro.chmod(0o700)
