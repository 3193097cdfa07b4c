"""The run folder after a kill: temporaries are swept on resume, real artifacts kept, and an
interrupted atomic write leaves the previous file (or none), never half of a new one."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from edgeprune.pipeline import rundir
from edgeprune.pipeline.rundir import RunDir
from har_data.atomic import atomic_write

ARGS = {"model": "fastgrnn", "budget_kb": 1.0, "seed": 0}


def test_resume_sweeps_the_temporaries_of_a_killed_run(tmp_path: Path):
    out = tmp_path / "run"
    RunDir(out, ARGS).open().close()
    keep = [out / "model.keras", out / "c_model" / "har2_model.c", out / "stages" / "x.json",
            out / "firmware" / "arduino" / ".edgeprune-firmware"]
    junk = [out / ".report.json.k2j3.tmp", out / ".tmp-model.keras",
            out / "models" / ".tmp-dense.weights.h5", out / ".frontier.png.tmp.png",
            out / "c_model" / ".har2_model.c.a8d.tmp", out / "tflm" / ".tmp-x9q"]
    for path in keep + junk:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
    (out / "firmware" / ".arduino.tmp").mkdir()
    (out / "firmware" / ".arduino.tmp" / "half.ino").write_text("x")

    with RunDir(out, ARGS).open() as reopened:
        assert reopened.resumed
    assert all(p.exists() for p in keep)
    assert not any(p.exists() for p in junk)
    assert not (out / "firmware" / ".arduino.tmp").exists()


def test_a_write_interrupted_before_the_rename_keeps_the_old_file(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch):
    target = tmp_path / "report.json"
    target.write_bytes(b"old")

    def killed(*_args, **_kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, b"new and longer")
    monkeypatch.undo()
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json"]


def test_a_folder_written_before_data_fingerprints_resumes_on_its_path(tmp_path: Path):
    legacy = {**ARGS, "data_path": "data.zip"}
    new = {**ARGS, "data_fingerprint": "ab" * 32}
    with RunDir(tmp_path / "run", legacy).open():
        pass
    with RunDir(tmp_path / "run", new, legacy).open() as reopened:
        assert reopened.resumed
    with RunDir(tmp_path / "run2", new, legacy).open():
        pass
    with pytest.raises(rundir.OutDirError, match=r"other arguments \(data_fingerprint\)"):
        RunDir(tmp_path / "run2", {**new, "data_fingerprint": "cd" * 32}, legacy).open()
    assert not (tmp_path / "run2" / rundir.LOCK_FILE).exists()  # released on refusal
