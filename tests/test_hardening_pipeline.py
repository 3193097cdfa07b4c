"""Interruption and determinism of ``python -m edgeprune.pipeline`` (quick mode, hapt-har2).

Three quick runs (about a minute each on 2 cores), so everything here is slow:

* A: an uninterrupted run, seed 0 (the reference bytes).
* B: the same command, SIGKILLed (whole process group) in the middle of the export stage,
  then rerun: it must resume, and its artifacts must equal A's byte for byte. B trained
  from scratch before the kill and exported from scratch after it, so this is also the
  same-seed, two-fresh-runs determinism check. Right after the kill every artifact that
  exists must be whole (equal to A's), never half-written.
* C: seed 1, interrupted with Ctrl-C (SIGINT) once its first stage finished (exit 130),
  rerun to the end: it resumes, and its model bytes must differ from A's. (A Ctrl-C
  before the first stage finished leaves --out as it was found:
  ``tests/test_hardening_round3.py``.)

``tests/test_pipeline.py`` already covers a SIGKILL during training; not repeated here.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
from conftest import ROOT

from edgeprune.pipeline.rundir import TEMP_PATTERNS

pytestmark = pytest.mark.slow

QUICK = ["--quick", "--budget-kb", "1"]
MODEL_BYTES = ["c_model/har2_model.h", "c_model/har2_model.c", "model_int8_step.tflite",
               "model_int8_head.tflite", "model_sparse_step.tflite",
               "model_sparse_head.tflite", "tflm/model_data.h", "tflm/model_data.cc"]
WHOLE_FILES = [*MODEL_BYTES, "c_model/ep_kernels.h", "c_model/ep_kernels_fast.c",
               "c_model/ep_cnn.c"]


def pipeline(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edgeprune.pipeline", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=900)


def _sigint_as_at_a_terminal() -> None:
    # a test runner started in the background inherits SIGINT ignored (POSIX sh), and the
    # child would then ignore our Ctrl-C: give it the disposition an interactive shell gives
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start(out: Path, *extra: str) -> tuple[subprocess.Popen, Path]:
    log = out.parent / f"{out.name}.log"
    with log.open("w") as stream:
        proc = subprocess.Popen([sys.executable, "-m", "edgeprune.pipeline", *QUICK, *extra,
                                 "--out", str(out)], cwd=ROOT, stdout=stream, stderr=stream,
                                start_new_session=True, preexec_fn=_sigint_as_at_a_terminal)
    return proc, log


def wait_for(proc: subprocess.Popen, ready, what: str, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        assert proc.poll() is None, f"the run ended before {what}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def folder_bytes(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("hardening") / "A"
    result = pipeline(*QUICK, "--out", str(out))
    assert result.returncode == 0, result.stderr[-2000:]
    return out


def test_kill_during_export_resumes_to_the_same_bytes(reference: Path, tmp_path: Path):
    out = tmp_path / "B"
    proc, log = start(out)
    # The export stage has begun (in a worker, which returns its files to the driver).
    wait_for(proc, lambda: "exporting the shipped model" in log.read_text(), "the export stage")
    time.sleep(1.0)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (out / "stages" / "export.json").exists(), "killed too late: export finished"
    assert not (out / "report.json").exists()
    # Whatever exists right after the kill is whole: no half-written artifact.
    for name in WHOLE_FILES:
        if (out / name).exists():
            assert (out / name).read_bytes() == (reference / name).read_bytes(), name
    if (out / "model.keras").exists():
        with zipfile.ZipFile(out / "model.keras") as archive:
            assert archive.testzip() is None

    resumed = pipeline(*QUICK, "--out", str(out))
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resuming the run" in resumed.stderr
    assert "reused from an earlier run" in resumed.stderr
    assert "export: done" in resumed.stderr  # the export itself ran again, from scratch
    for name in MODEL_BYTES:
        assert (out / name).read_bytes() == (reference / name).read_bytes(), name
    for sub in ("firmware/arduino", "firmware/tflm"):
        assert folder_bytes(out / sub) == folder_bytes(reference / sub), sub
    with zipfile.ZipFile(out / "model.keras") as archive:
        assert archive.testzip() is None
    leftovers = [str(p.relative_to(out)) for pattern in TEMP_PATTERNS
                 for p in out.rglob(pattern)]
    assert leftovers == [], f"temporaries left after the resumed run: {leftovers}"


def test_ctrl_c_exits_130_and_another_seed_gives_other_bytes(reference: Path, tmp_path: Path):
    out = tmp_path / "C"
    proc, log = start(out, "--seed", "1")
    wait_for(proc, lambda: list((out / "stages").glob("dense-*.json")), "the dense stage")
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=120) == 130
    text = log.read_text()
    assert "interrupted: run the same command again" in text and "Traceback" not in text
    assert not (out / "report.json").exists()

    resumed = pipeline(*QUICK, "--seed", "1", "--out", str(out))
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resuming the run" in resumed.stderr
    for name in ("c_model/har2_model.c", "model_int8_step.tflite", "tflm/model_data.cc"):
        assert (out / name).read_bytes() != (reference / name).read_bytes(), name
