"""TFLite Micro on the host (PyPI ``tflite-micro``): run int8 models, measure the arena.

Contracts
- ``tflm_arena_size(model)`` -> ``{"reported": int, "minimal": int | None}``: ``reported`` is
  ``print_allocations()``'s "Arena allocation total"; ``minimal`` the smallest
  ``arena_size`` (16-byte steps) with which the model allocates and invokes, found by
  bisection.  TFLM *segfaults* on a too-small arena, so every probe runs in a child process.
- ``predict_tflm(model, windows)``: same contract as ``predict_tflite`` but in TFLM (batch
  1; the FastGRNN step loop in Python).  Sparse-encoded (DENSIFY) or float-weight
  dynamic-range models are not supported by TFLM.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from typing import Any

import numpy as np

from export.tflite._convert import FastGRNNTFLite, check_windows
from export.tflite._predict import (
    _load,
    dequantize,
    io_index,
    make_interpreter,
    quantize,
    requantize,
)

#: Generous arena for host runs (the host has memory; only the embedded size matters).
HOST_ARENA = 1 << 20

_PROBE = r"""
import sys, numpy as np
from tflite_micro import runtime
model = open(sys.argv[1], "rb").read()
it = runtime.Interpreter.from_bytes(model, arena_size=int(sys.argv[2]))
for i in range(int(sys.argv[3])):
    d = it.get_input_details(i)
    it.set_input(np.zeros(d["shape"], d["dtype"]), i)
it.invoke()
if len(sys.argv) > 4:
    it.print_allocations()
sys.stdout.write("OK\n")
"""


def _details(it: Any, getter: str, count: int) -> list[dict[str, Any]]:
    return [getattr(it, getter)(i) for i in range(count)]


def _tflm_detail(d: dict[str, Any]) -> dict[str, Any]:
    qp = d.get("quantization_parameters", {})
    scales, zps = qp.get("scales", np.zeros(0)), qp.get("zero_points", np.zeros(0))
    q = (float(scales[0]), int(zps[0])) if len(scales) else (0.0, 0)
    return {"dtype": d["dtype"], "quantization": q, "shape": d["shape"], "name": ""}


def _probe(model_path: str, arena: int, n_inputs: int, report: bool = False) -> tuple[bool, str]:
    args = [sys.executable, "-c", _PROBE, model_path, str(arena), str(n_inputs)]
    args += ["report"] if report else []
    r = subprocess.run(args, capture_output=True, text=True, timeout=120)
    return r.returncode == 0 and "OK" in r.stdout, r.stdout + r.stderr


def tflm_arena_size(model: bytes, search: bool = True, align: int = 16) -> dict[str, int | None]:
    """Arena bytes TFLM needs for ``model``: ``reported`` (``print_allocations`` total with a
    1 MiB arena) and, if ``search``, ``minimal`` (bisection over child processes, in steps
    of ``align`` bytes).  ValueError if TFLM cannot run the model at all."""
    n_inputs = len(make_interpreter(model).get_input_details())
    with tempfile.TemporaryDirectory(prefix="edgeprune-tflm-") as tmp:
        path = os.path.join(tmp, "model.tflite")
        with open(path, "wb") as f:
            f.write(bytes(model))
        ok, log = _probe(path, HOST_ARENA, n_inputs, report=True)
        if not ok:
            last = [s for s in log.strip().splitlines() if s.strip()][-1:] or ["crashed"]
            raise ValueError(f"TFLM cannot run this model: {last[0]}")
        m = re.search(r"Arena allocation total (\d+) bytes", log)
        reported = int(m.group(1)) if m else None
        if reported is None:
            raise ValueError("TFLM did not report its arena allocation")
        minimal = None
        if search:
            # in units of align; start from a bracket around the reported total
            lo, hi = reported // 2 // align, -(-(reported + 1024) // align)
            if _probe(path, lo * align, n_inputs)[0]:
                lo = 0
            if not _probe(path, hi * align, n_inputs)[0]:
                hi = HOST_ARENA // align
            while hi - lo > 1:  # invariant: lo fails (or 0), hi works
                mid = (lo + hi) // 2
                if _probe(path, mid * align, n_inputs)[0]:
                    hi = mid
                else:
                    lo = mid
            minimal = hi * align
    return {"reported": reported, "minimal": minimal}


def _tflm(model: bytes, arena: int) -> Any:
    from tflite_micro import runtime

    return runtime.Interpreter.from_bytes(bytes(model), arena_size=int(arena))


def predict_tflm(
    model: FastGRNNTFLite | bytes | str | os.PathLike[str],
    windows: Any,
    *,
    classes: bool = False,
    arena_size: int = HOST_ARENA,
) -> np.ndarray:
    """Logits ``(N, C)`` float32 (or classes) of int8/float models run in TFLite Micro.

    Inputs of the step model are resolved by tensor name through litert (TFLM's Python
    API has no names; both keep the flatbuffer's input order).
    """
    m = _load(model)
    if isinstance(m, FastGRNNTFLite):
        x = check_windows(windows, (m.seq_len, m.input_dim), what="windows")
        names = make_interpreter(m.step).get_input_details()
        ix, ih = io_index(names, "x"), io_index(names, "h")
        step, head = _tflm(m.step, arena_size), _tflm(m.head, arena_size)
        ind = [_tflm_detail(d) for d in _details(step, "get_input_details", len(names))]
        x_d, h_d = ind[ix], ind[ih]
        out_d = _tflm_detail(step.get_output_details(0))
        hi_d = _tflm_detail(head.get_input_details(0))
        lo_d = _tflm_detail(head.get_output_details(0))
        logits = np.empty((len(x), m.num_classes), np.float32)
        xq = quantize(x, x_d)
        for n in range(len(x)):
            h = quantize(np.zeros((1, m.hidden), np.float32), h_d)
            for t in range(m.seq_len):
                step.set_input(np.ascontiguousarray(xq[n : n + 1, t]), ix)
                step.set_input(h, ih)
                step.invoke()
                h = requantize(step.get_output(0).copy(), out_d, h_d)
            head.set_input(requantize(h, h_d, hi_d), 0)
            head.invoke()
            logits[n] = dequantize(head.get_output(0), lo_d)[0]
    else:
        x = check_windows(windows, (None,) * (np.ndim(windows) - 1), what="windows")
        it = _tflm(m, arena_size)
        in_d = _tflm_detail(it.get_input_details(0))
        out_d = _tflm_detail(it.get_output_details(0))
        rows = []
        for n in range(len(x)):
            it.set_input(quantize(x[n : n + 1], in_d), 0)
            it.invoke()
            rows.append(dequantize(it.get_output(0), out_d).reshape(-1))
        logits = np.stack(rows).astype(np.float32)
    return logits.argmax(-1).astype(np.int64) if classes else logits


def compare_tflm_litert(
    model: FastGRNNTFLite | bytes, windows: Any, reference_kernels: bool = False
) -> dict[str, float]:
    """Run ``windows`` in TFLM and in litert (builtin kernels, or its reference kernels);
    max |logit difference| in float and in output LSBs, and the fraction of equal argmax
    labels."""
    from export.tflite._predict import predict_tflite

    m = _load(model)
    a = predict_tflm(m, windows)
    b = predict_tflite(m, windows, reference_kernels=reference_kernels)
    out = m.head if isinstance(m, FastGRNNTFLite) else m
    scale = make_interpreter(out).get_output_details()[0]["quantization"][0] or 1.0
    diff = float(np.abs(a - b).max())
    return {
        "max_abs_diff": diff,
        "max_lsb_diff": round(diff / scale, 3),
        "label_agreement": float((a.argmax(-1) == b.argmax(-1)).mean()),
    }
