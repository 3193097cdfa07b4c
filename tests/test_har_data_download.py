"""har_data.download: real fetch (local http.server / file://), checksum, atomic write."""

from __future__ import annotations

import functools
import hashlib
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from test_har_data_helpers import make_arrays, outer_zip, write_folder, zip_folder

import har_data
from har_data import HarDataError


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """A UCI-shaped outer zip (and the plain archive) served on 127.0.0.1."""
    root = tmp_path_factory.mktemp("www")
    arrays = make_arrays(seed=3, per_subject=2)
    inner = zip_folder(write_folder(root / "src", arrays), root / "UCI HAR Dataset.zip")
    outer = outer_zip(inner, root / "human+activity+recognition+using+smartphones.zip")
    handler = functools.partial(
        type("Quiet", (http.server.SimpleHTTPRequestHandler,), {"log_message": lambda *a: None}),
        directory=str(root),
    )
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    yield {
        "url": f"{base}/human+activity+recognition+using+smartphones.zip",
        "sha256": hashlib.sha256(outer.read_bytes()).hexdigest(),
        "inner": inner,
        "arrays": arrays,
        "base": base,
    }
    server.shutdown()
    thread.join()


def test_download_over_http_unwraps_and_loads(served: dict, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    stored = har_data.download(cache, url=served["url"], sha256=served["sha256"])
    assert stored == cache / "UCI HAR Dataset.zip"
    assert stored.read_bytes() == served["inner"].read_bytes()  # inner archive stored
    assert sorted(p.name for p in cache.iterdir()) == ["UCI HAR Dataset.zip"]  # no temp files
    ds = har_data.load("uci", val_subjects=2, cache_dir=cache)  # default path: the download
    np.testing.assert_array_equal(ds.test.activity, served["arrays"]["test"]["activity"])


def test_existing_download_is_kept_unless_forced(served: dict, tmp_path: Path) -> None:
    stored = har_data.download(tmp_path, url=served["url"], sha256=served["sha256"])
    stored.write_bytes(b"placeholder")
    assert har_data.download(tmp_path, url="http://127.0.0.1:9/never", sha256="0") == stored
    assert stored.read_bytes() == b"placeholder"
    har_data.download(tmp_path, url=served["url"], sha256=served["sha256"], force=True)
    assert stored.read_bytes() == served["inner"].read_bytes()


def test_download_file_url_of_plain_archive(served: dict, tmp_path: Path) -> None:
    inner = served["inner"]
    digest = hashlib.sha256(inner.read_bytes()).hexdigest()
    stored = har_data.download(tmp_path, url=inner.as_uri(), sha256=digest)
    assert stored.read_bytes() == inner.read_bytes()


@pytest.mark.bad_input
def test_checksum_mismatch_leaves_no_file(served: dict, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    with pytest.raises(HarDataError) as exc:
        har_data.download(cache, url=served["url"], sha256="0" * 64)
    message = str(exc.value)
    assert "\n" not in message and served["url"] in message
    assert f"SHA-256 mismatch (expected {'0' * 64}, got {served['sha256']})" in message
    assert not cache.exists() or list(cache.iterdir()) == []


@pytest.mark.bad_input
def test_download_http_error(served: dict, tmp_path: Path) -> None:
    with pytest.raises(HarDataError, match="download failed"):
        har_data.download(tmp_path, url=served["base"] + "/missing.zip", sha256="0" * 64)
    assert list(tmp_path.iterdir()) == []


def test_defaults_point_at_uci_240() -> None:
    import importlib

    module = importlib.import_module("har_data.download")

    assert module.URL.startswith("https://archive.ics.uci.edu/static/public/240/")
    assert len(module.SHA256) == 64 and int(module.SHA256, 16) >= 0


def test_cli_download(served: dict, tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    def run(*extra: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "har_data", "download", "--url", served["url"], *extra],
            capture_output=True,
            text=True,
            cwd=Path(__file__).resolve().parent.parent,
            env={**os.environ, "EDGEPRUNE_CACHE": str(tmp_path / "env")},
            timeout=120,
        )

    bad = run("--sha256", "f" * 64, "--cache-dir", str(tmp_path / "c"))
    assert bad.returncode == 2 and bad.stderr.startswith("error: ") and "mismatch" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1 and not (tmp_path / "c").exists()
    good = run("--sha256", served["sha256"])
    assert good.returncode == 0, good.stderr
    assert Path(good.stdout.strip()) == tmp_path / "env" / "UCI HAR Dataset.zip"
