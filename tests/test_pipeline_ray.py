"""The pipeline's stages on Ray: the same bytes in process, on local workers and on a real
two-node cluster; a worker SIGKILLed mid-stage is retried to the same bytes; bad executor
input fails fast with one line and leaves nothing in --out.

The cluster tests start real Ray nodes with ``ray start`` (one CPU each, their own temp
folders, their own auth token) and stop them at the end, also when a test fails.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import ROOT

QUICK = ["--quick", "--budget-kb", "1", "--no-firmware"]
SAME_BYTES = ["c_model/har2_model.h", "c_model/har2_model.c", "model_int8_step.tflite",
              "model_int8_head.tflite", "model_int16x8_step.tflite", "tflm/model_data.cc"]


def pipeline(*args: str, cwd: Path = ROOT, env: dict | None = None,
             timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edgeprune.pipeline", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout, env=env)


def model_bytes(out: Path) -> dict[str, bytes]:
    files = {name: (out / name).read_bytes() for name in SAME_BYTES}
    files.update({f"models/{p.name}": p.read_bytes() for p in (out / "models").glob("*.npz")})
    return files


@pytest.fixture(scope="module")
def in_process(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ray") / "workers1"
    result = pipeline(*QUICK, "--workers", "1", "--out", str(out))
    assert result.returncode == 0, result.stderr[-2000:]
    assert "in this process (--workers 1, no Ray)" in result.stderr
    return out


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Cluster:
    """Real Ray nodes on this machine, one CPU each, with a token of their own."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="ep-ray-", dir="/tmp"))  # short socket paths
        token = self.root / "token"
        token.write_text(secrets.token_hex(32))
        self.env = {**os.environ, "RAY_AUTH_MODE": "token",
                    "RAY_AUTH_TOKEN_PATH": str(token)}
        self.address = f"127.0.0.1:{_free_port()}"

    def start(self, *, head: bool, python: str = sys.executable) -> None:
        name = "head" if head else f"node{len(list(self.root.glob('node*')))}"
        where = ["--head", "--port", self.address.split(":")[1], "--include-dashboard=false"] \
            if head else ["--address", self.address]
        subprocess.run([python, "-m", "ray.scripts.scripts", "start", *where, "--num-cpus", "1",
                        "--temp-dir", str(self.root / name), "--disable-usage-stats"],
                       env=self.env, check=True, capture_output=True, timeout=120)

    def stop(self) -> None:
        """Kill this cluster's processes only (``ray stop`` would stop every Ray on the
        machine, a local one of another run included): those naming its temp folders."""
        subprocess.run(["pkill", "-KILL", "-f", str(self.root)], check=False, timeout=30)
        deadline = time.monotonic() + 30
        while subprocess.run(["pgrep", "-f", str(self.root)], capture_output=True,
                             timeout=30).returncode == 0 and time.monotonic() < deadline:
            time.sleep(0.2)
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    nodes = Cluster()
    try:
        yield nodes
    finally:
        nodes.stop()


@pytest.mark.slow
def test_local_workers_give_the_in_process_bytes(in_process: Path, tmp_path: Path):
    out = tmp_path / "workers2"
    result = pipeline(*QUICK, "--workers", "2", "--out", str(out))
    assert result.returncode == 0, result.stderr[-2000:]
    assert "as Ray tasks on a local Ray (2 workers" in result.stderr
    assert model_bytes(out) == model_bytes(in_process)
    report = json.loads((out / "report.json").read_text())
    assert report["executor"]["workers"] == 2 and report["executor"]["startup_seconds"] > 0
    assert set(report["stage_nodes"]) >= {"export", next(iter(report["seconds"].keys() - {
        "data", "export"}))}


@pytest.mark.slow
def test_a_two_node_cluster_runs_stages_on_both_nodes_to_the_same_bytes(
        in_process: Path, cluster: Cluster, tmp_path: Path):
    cluster.start(head=True)
    cluster.start(head=False)
    out = tmp_path / "cluster"
    result = pipeline(*QUICK, "--ray-address", cluster.address, "--out", str(out),
                      env=cluster.env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"on the Ray cluster at {cluster.address} (2 workers, 2 nodes" in result.stderr
    report = json.loads((out / "report.json").read_text())
    worker_stages = {k: v for k, v in report["stage_nodes"].items() if v != "local"}
    assert len(worker_stages) >= 4  # dense, probe, fine-tune, export
    assert len(set(worker_stages.values())) == 2, worker_stages  # both nodes ran stages
    assert model_bytes(out) == model_bytes(in_process)


@pytest.mark.slow
def test_a_worker_killed_mid_stage_is_retried_to_the_same_bytes(in_process: Path,
                                                                 tmp_path: Path):
    out, log = tmp_path / "killed", tmp_path / "killed.log"
    with log.open("w") as stream:
        proc = subprocess.Popen([sys.executable, "-m", "edgeprune.pipeline", *QUICK,
                                 "--workers", "2", "--out", str(out)], cwd=ROOT,
                                stdout=stream, stderr=stream, start_new_session=True)
    try:
        killed = None
        deadline = time.monotonic() + 300
        while killed is None and time.monotonic() < deadline:
            assert proc.poll() is None, log.read_text()[-2000:]
            busy = subprocess.run(["pgrep", "-f", "ray::run_as_task"], capture_output=True,
                                  text=True).stdout.split()
            if busy and "training dense" in log.read_text():
                killed = int(busy[0])
                os.kill(killed, signal.SIGKILL)  # the worker training the dense model
            time.sleep(0.1)
        assert killed is not None, "no stage was seen running in a Ray worker"
        assert proc.wait(timeout=900) == 0, log.read_text()[-2000:]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert (out / "report.json").exists()
    assert model_bytes(out) == model_bytes(in_process)


@pytest.mark.bad_input
@pytest.mark.parametrize("workers", ["0", "-1", "two", "1.5"])
def test_bad_worker_counts_exit_2_at_parse_time(workers: str, tmp_path: Path):
    out = tmp_path / "out"
    result = pipeline(*QUICK, "--workers", workers, "--out", str(out), timeout=60)
    assert result.returncode == 2
    assert result.stderr.startswith("error: argument --workers:")
    assert result.stderr.count("\n") == 1 and not out.exists()


@pytest.mark.bad_input
def test_an_unreachable_ray_address_exits_2_fast_leaving_nothing(tmp_path: Path):
    out = tmp_path / "out"
    start = time.monotonic()
    result = pipeline(*QUICK, "--ray-address", f"127.0.0.1:{_free_port()}", "--out", str(out),
                      timeout=60)
    assert time.monotonic() - start < 30
    assert result.returncode == 2, result.stderr[-2000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "no Ray cluster answers there" in errors[0]
    assert "Traceback" not in result.stderr and not out.exists()


@pytest.mark.slow
@pytest.mark.bad_input
def test_a_cluster_whose_nodes_lack_the_project_is_named(cluster: Cluster, tmp_path: Path):
    # A node whose Python sees TensorFlow and Ray but not edgeprune: a venv reading this
    # environment's site-packages through a .pth (which skips the editable install's own
    # .pth). The driver runs outside the checkout, so Ray cannot lend the node its path.
    bare = cluster.root / "bare"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(bare)], check=True)
    site = next(Path(sys.prefix).glob("lib/python3.*/site-packages"))
    (next(bare.glob("lib/python3.*/site-packages")) / "libs.pth").write_text(f"{site}\n")
    cluster.start(head=True, python=str(bare / "bin" / "python"))
    out = tmp_path / "out"
    result = pipeline(*QUICK, "--ray-address", cluster.address, "--out", str(out),
                      cwd=tmp_path, env=cluster.env, timeout=300)
    assert result.returncode == 2, result.stderr[-2000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "lacks edgeprune, export, har_data" in errors[0], errors
    assert "Traceback" not in result.stderr and not out.exists()
