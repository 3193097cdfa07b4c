"""har_data: official-layout reader, HAR-2 labels, validation split, cache and CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from test_har_data_helpers import (
    TEST_SUBJECTS,
    TRAIN_SUBJECTS,
    make_arrays,
    outer_zip,
    write_folder,
    zip_folder,
)

import har_data
from har_data import HarDataError

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The synthetic archive as folder, zip and UCI-style outer zip, plus its arrays."""
    base = tmp_path_factory.mktemp("uci")
    arrays = make_arrays()
    folder = write_folder(base, arrays)
    zipped = zip_folder(folder, base / "UCI HAR Dataset.zip")
    outer = outer_zip(zipped, base / "human+activity+recognition+using+smartphones.zip")
    return {"arrays": arrays, "folder": folder, "zip": zipped, "outer": outer, "parent": base}


def _assert_matches(ds: har_data.HarDataset, arrays: dict) -> None:
    train = np.concatenate([ds.train.x, ds.val.x])
    order = np.argsort(np.concatenate([ds.train.subject, ds.val.subject]), kind="stable")
    expected = arrays["train"]
    np.testing.assert_allclose(train[order], expected["x"], rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(ds.test.activity, arrays["test"]["activity"])
    np.testing.assert_array_equal(ds.test.subject, arrays["test"]["subject"])
    np.testing.assert_allclose(ds.test.x, arrays["test"]["x"], rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("kind", ["folder", "zip", "outer", "parent"])
def test_reads_every_archive_form(archive: dict, kind: str, tmp_path: Path) -> None:
    ds = har_data.load("uci", path=archive[kind], val_subjects=2, cache_dir=tmp_path)
    assert ds.name == "uci-har2"
    for split in (ds.train, ds.val, ds.test):
        assert split.x.dtype == np.float32 and split.x.shape[1:] == (128, 9)
        assert split.activity.dtype == np.int64 and split.subject.dtype == np.int64
        assert split.y.dtype == np.int64 and split.y.shape == split.activity.shape
    _assert_matches(ds, archive["arrays"])
    # channel order: the fixture centres channel c on 10*c
    assert np.allclose(ds.test.x.mean(axis=(0, 1)), 10.0 * np.arange(9), atol=0.2)


def test_zip_is_read_in_memory(archive: dict, tmp_path: Path) -> None:
    before = sorted(p.name for p in archive["parent"].iterdir())
    har_data.load("uci", path=archive["zip"], val_subjects=2, cache_dir=tmp_path, use_cache=False)
    assert sorted(p.name for p in archive["parent"].iterdir()) == before
    assert list(tmp_path.iterdir()) == []  # use_cache=False writes nothing


def test_har2_labels() -> None:
    assert har_data.har2(np.arange(1, 7)).tolist() == [0, 1, 0, 1, 0, 1]
    split = har_data.Split(
        np.zeros((6, 128, 9), np.float32), np.arange(1, 7, dtype=np.int64), np.ones(6, np.int64)
    )
    assert split.y.tolist() == [0, 1, 0, 1, 0, 1]
    assert split.activity.tolist() == [1, 2, 3, 4, 5, 6]  # 6-class labels stay available
    assert split.har2_counts() == [3, 3]


def test_validation_split_by_subject(archive: dict, tmp_path: Path) -> None:
    ds = har_data.load("uci", path=archive["folder"], val_subjects=3, seed=1, cache_dir=tmp_path)
    val = set(ds.val.subject.tolist())
    assert val == set(ds.val_subjects) and len(val) == 3 and val <= set(TRAIN_SUBJECTS)
    assert not val & set(ds.train.subject.tolist())
    assert set(ds.test.subject.tolist()) == set(TEST_SUBJECTS)
    again = har_data.load("uci", path=archive["folder"], val_subjects=3, seed=1, cache_dir=tmp_path)
    assert again.val_subjects == ds.val_subjects
    seeds = {
        har_data.load("uci", path=archive["folder"], val_subjects=3, seed=s, cache_dir=tmp_path)
        .val_subjects
        for s in range(5)
    }
    assert len(seeds) > 1
    explicit = har_data.load("uci", path=archive["folder"], val_subjects=[3, 7], cache_dir=tmp_path)
    assert explicit.val_subjects == (3, 7)
    default = har_data.load("uci", path=archive["folder"], cache_dir=tmp_path)
    assert len(default.val_subjects) == har_data.DEFAULT_VAL_SUBJECTS == 6


def test_normalisation_from_train_only(archive: dict, tmp_path: Path) -> None:
    ds = har_data.load("uci", path=archive["folder"], val_subjects=2, cache_dir=tmp_path)
    flat = ds.train.x.reshape(-1, 9).astype(np.float64)
    np.testing.assert_allclose(ds.mean, flat.mean(0), rtol=1e-6)
    np.testing.assert_allclose(ds.std, flat.std(0), rtol=1e-5)
    assert ds.mean.dtype == np.float32 and ds.std.dtype == np.float32 and ds.mean.shape == (9,)
    z = ds.normalize(ds.train.x)
    assert z.dtype == np.float32
    np.testing.assert_allclose(z.reshape(-1, 9).mean(0), 0, atol=1e-4)
    np.testing.assert_allclose(z.reshape(-1, 9).std(0), 1, atol=1e-4)
    other = har_data.load("uci", path=archive["folder"], val_subjects=[1, 3], cache_dir=tmp_path)
    assert not np.allclose(other.mean, ds.mean)  # the held-out volunteers are excluded


def test_cache_hit(tmp_path: Path) -> None:
    arrays = make_arrays(seed=5)
    folder = write_folder(tmp_path / "data", arrays)
    cache = tmp_path / "cache"
    first = har_data.load("uci", path=folder, val_subjects=2, cache_dir=cache)
    files = list(cache.iterdir())
    assert len(files) == 1 and files[0].suffix == ".npz" and files[0].name.startswith("uci-v")
    # Same size and mtime but garbage content: served from the cache, source not parsed.
    target = folder / "train" / "y_train.txt"
    stat = target.stat()
    target.write_bytes(b"x" * stat.st_size)
    os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    start = time.perf_counter()
    second = har_data.load("uci", path=folder, val_subjects=2, cache_dir=cache)
    assert time.perf_counter() - start < 2.0
    np.testing.assert_array_equal(second.train.x, first.train.x)
    np.testing.assert_array_equal(second.test.activity, first.test.activity)
    # A new mtime changes the key: the source is parsed again (and is now bad).
    os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    with pytest.raises(HarDataError, match="y_train.txt"):
        har_data.load("uci", path=folder, val_subjects=2, cache_dir=cache)
    assert not [p for p in cache.iterdir() if p.suffix != ".npz"]  # no temp files left


def test_corrupt_cache_is_rebuilt(archive: dict, tmp_path: Path) -> None:
    har_data.load("uci", path=archive["zip"], val_subjects=2, cache_dir=tmp_path)
    (entry,) = tmp_path.iterdir()
    entry.write_bytes(b"not an npz")
    ds = har_data.load("uci", path=archive["zip"], val_subjects=2, cache_dir=tmp_path)
    _assert_matches(ds, archive["arrays"])


def test_default_cache_dir_from_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("EDGEPRUNE_CACHE", str(tmp_path / "c"))
    from har_data.cache import default_cache_dir

    assert default_cache_dir() == tmp_path / "c"
    with pytest.raises(HarDataError, match="download"):
        har_data.load("uci")  # nothing downloaded there yet; never fetched implicitly


def _cli(*args: str, env_cache: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "EDGEPRUNE_CACHE": str(env_cache)}
    return subprocess.run(
        [sys.executable, "-m", "har_data", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=120,
    )


def test_cli_info_json(archive: dict, tmp_path: Path) -> None:
    result = _cli(
        "info", "--source", "uci", "--path", str(archive["zip"]), "--val-subjects", "2", "--json",
        env_cache=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    ds = har_data.load("uci", path=archive["zip"], val_subjects=2, cache_dir=tmp_path)
    for name, split in (("train", ds.train), ("val", ds.val), ("test", ds.test)):
        assert report[name]["windows"] == len(split)
        assert report[name]["har2"] == [int((split.y == 0).sum()), int((split.y == 1).sum())]
    assert report["name"] == "uci-har2"
    text = _cli("info", "--source", "uci", "--path", str(archive["folder"]), env_cache=tmp_path)
    assert text.returncode == 0 and "uci-har2" in text.stdout and "test" in text.stdout


@pytest.mark.parametrize(
    "args",
    [
        ("info", "--source", "uci", "--path", "/nonexistent/UCI HAR Dataset.zip"),
        ("info", "--source", "nope"),
        ("frobnicate",),
        ("download", "--url", "file:///nonexistent/archive.zip"),
    ],
)
def test_cli_errors_are_one_line(args: tuple, tmp_path: Path) -> None:
    result = _cli(*args, env_cache=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""
