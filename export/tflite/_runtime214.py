"""Compatibility of int8 models with ``tflite-runtime`` 2.14 (its last release).

tflite-runtime 2.14 needs numpy < 2 and so lives in its own small virtualenv, created once
under a cache folder (``$EDGEPRUNE_CACHE`` or ``~/.cache/edgeprune``) with
``python3.11 -m venv`` + ``pip install tflite-runtime==2.14.0 'numpy<2'``.  Each model runs
in its own child process there (a crash in one cannot take the others down) on seeded
random inputs; the outputs are compared with ai-edge-litert's on the same inputs.

Contract: ``check_runtime214(models)`` -> one dict per model:
``{"model": name, "ok": bool, "error": str, "max_abs_diff": float | None}``.
``runtime214_python()`` raises RuntimeError (one line) when the venv cannot be made.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

VERSION = "2.14.0"

_CHILD = r"""
import json, sys, numpy as np
from tflite_runtime.interpreter import Interpreter
model, inputs, out = sys.argv[1], sys.argv[2], sys.argv[3]
res = {"ok": False, "error": ""}
try:
    it = Interpreter(model_path=model)
    it.allocate_tensors()
    data = np.load(inputs)
    for i, d in enumerate(it.get_input_details()):
        it.set_tensor(d["index"], data[f"in{i}"])
    it.invoke()
    np.save(out, it.get_tensor(it.get_output_details()[0]["index"]))
    res["ok"] = True
except Exception as exc:
    res["error"] = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
print("RESULT " + json.dumps(res))
"""


def cache_dir() -> Path:
    """Where the tflite-runtime 2.14 venv lives."""
    root = os.environ.get("EDGEPRUNE_CACHE") or os.path.join(Path.home(), ".cache", "edgeprune")
    return Path(root) / f"tflite-runtime-{VERSION}"


def runtime214_python(cache: str | os.PathLike[str] | None = None) -> Path:
    """The venv's python, creating the venv if needed; RuntimeError (one line) if it fails."""
    venv = Path(cache) if cache else cache_dir()
    py = venv / "bin" / "python"
    ok = (
        py.exists()
        and subprocess.run(
            [str(py), "-c", "import tflite_runtime.interpreter, numpy"], capture_output=True
        ).returncode
        == 0
    )
    if ok:
        return py
    base = shutil.which("python3.11") or sys.executable
    try:
        if venv.exists():
            shutil.rmtree(venv)
        venv.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [base, "-m", "venv", str(venv)], check=True, capture_output=True, timeout=300
        )
        r = subprocess.run(
            [str(py), "-m", "pip", "install", "-q", f"tflite-runtime=={VERSION}", "numpy<2"],
            capture_output=True,
            text=True,
            timeout=600,
        )
        if r.returncode != 0:
            last = [s for s in (r.stderr or r.stdout).splitlines() if s.strip()][-1:] or ["?"]
            raise RuntimeError(f"pip install tflite-runtime=={VERSION} failed: {last[0]}")
    except (OSError, subprocess.SubprocessError) as exc:
        raise RuntimeError(f"cannot create the tflite-runtime {VERSION} venv: {exc}") from None
    return py


def _inputs(model: bytes, seed: int) -> dict[str, np.ndarray]:
    from export.tflite._predict import make_interpreter

    rng = np.random.default_rng(seed)
    out = {}
    for i, d in enumerate(make_interpreter(model).get_input_details()):
        shape = [int(s) for s in d["shape"]]
        if d["dtype"] == np.float32:
            out[f"in{i}"] = rng.normal(size=shape).astype(np.float32)
        else:
            info = np.iinfo(d["dtype"])
            out[f"in{i}"] = rng.integers(info.min, info.max + 1, size=shape).astype(d["dtype"])
    return out


def _litert(model: bytes, data: dict[str, np.ndarray]) -> np.ndarray:
    from export.tflite._predict import allocate, make_interpreter

    it = make_interpreter(model, reference_kernels=True)
    allocate(it)
    for i, d in enumerate(it.get_input_details()):
        it.set_tensor(d["index"], data[f"in{i}"])
    it.invoke()
    return it.get_tensor(it.get_output_details()[0]["index"]).copy()


def check_runtime214(
    models: Sequence[str | os.PathLike[str] | bytes | tuple[str, bytes]],
    cache: str | os.PathLike[str] | None = None,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Run each model in tflite-runtime 2.14 and compare with ai-edge-litert.

    ``models``: paths, raw bytes, or ``(name, bytes)`` pairs.  ``max_abs_diff`` is in the
    output's own units (int8 LSBs for int8 outputs).  RuntimeError if the venv cannot be
    created.
    """
    py = runtime214_python(cache)
    results = []
    with tempfile.TemporaryDirectory(prefix="edgeprune-rt214-") as tmp:
        for k, m in enumerate(models):
            if isinstance(m, tuple):
                name, data = m
            elif isinstance(m, (bytes, bytearray)):
                name, data = f"model{k}", bytes(m)
            else:
                name, data = os.fspath(m), Path(m).read_bytes()
            mpath = os.path.join(tmp, f"m{k}.tflite")
            Path(mpath).write_bytes(data)
            ins = _inputs(data, seed)
            ipath, opath = os.path.join(tmp, f"in{k}.npz"), os.path.join(tmp, f"out{k}.npy")
            np.savez(ipath, **ins)
            r = subprocess.run(
                [str(py), "-c", _CHILD, mpath, ipath, opath],
                capture_output=True,
                text=True,
                timeout=300,
            )
            line = [s for s in r.stdout.splitlines() if s.startswith("RESULT ")]
            res: dict[str, Any] = {"model": name, "ok": False, "error": "", "max_abs_diff": None}
            if line:
                res.update(json.loads(line[-1][7:]))
            else:
                res["error"] = f"tflite-runtime crashed (exit {r.returncode})"
            if res["ok"]:
                ref = _litert(data, ins).astype(np.float64)
                res["max_abs_diff"] = float(np.abs(np.load(opath).astype(np.float64) - ref).max())
            results.append(res)
    return results
