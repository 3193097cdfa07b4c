"""TFLite Micro C arrays: ``<name>.h`` / ``<name>.cc`` holding a .tflite as aligned bytes.

Contract: ``write_tflm_array(model, out_dir, name="model_data", arena_bytes=None)`` writes
``<name>.h`` and ``<name>.cc`` (both or neither; temp file + ``os.replace``) and returns
their paths.  The .cc holds ``alignas(16) const unsigned char <name>[]`` with exactly the
flatbuffer's bytes and ``const unsigned int <name>_len``; the header declares them and
defines ``kTensorArenaSize`` (the measured minimal TFLM arena unless given).  For a
:class:`FastGRNNTFLite` bundle the step model is ``<name>``, the head ``<name>_head``
(``kHeadTensorArenaSize``), and the header carries ``kSeqLen``, ``kInputDim``,
``kHiddenSize``, ``kNumClasses``, the step's input positions (``kStepInputX``/``H``) and the
int8 scales/zero points a TFLM main needs to run the loop (requantise ``h_next`` into ``h``).
Output bytes are a pure function of the arguments (no timestamps).
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping

from export.tflite._convert import FastGRNNTFLite
from har_data.atomic import atomic_write_many

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _c_bytes(data: bytes, per_line: int = 12) -> str:
    lines = []
    for i in range(0, len(data), per_line):
        lines.append("    " + ", ".join(f"0x{b:02x}" for b in data[i : i + per_line]) + ",")
    return "\n".join(lines)


def _f(x: float) -> str:
    s = f"{float(x):.9g}"
    if "e" not in s and "." not in s and "inf" not in s and "nan" not in s:
        s += ".0"
    return s + "f"


def _arena(model: bytes, given: int | None) -> int:
    if given is not None:
        if int(given) <= 0:
            raise ValueError(f"arena_bytes must be positive, got {given}")
        return int(given)
    from export.tflite._tflm import tflm_arena_size

    minimal = tflm_arena_size(model)["minimal"]
    assert minimal is not None
    return -(-minimal // 16) * 16


def _step_quant(bundle: FastGRNNTFLite) -> list[str]:
    from export.tflite._predict import io_index, make_interpreter

    step = make_interpreter(bundle.step)
    ind = step.get_input_details()
    ix, ih = io_index(ind, "x"), io_index(ind, "h")
    out = step.get_output_details()[0]
    head = make_interpreter(bundle.head)
    hin, hout = head.get_input_details()[0], head.get_output_details()[0]
    rows = [
        f"constexpr int kSeqLen = {bundle.seq_len};",
        f"constexpr int kInputDim = {bundle.input_dim};",
        f"constexpr int kHiddenSize = {bundle.hidden};",
        f"constexpr int kNumClasses = {bundle.num_classes};",
        "// Positions of the step model's inputs (TFLite orders them by name: resolve, never",
        "// assume): interpreter.input(kStepInputX) is x_t, interpreter.input(kStepInputH) is h.",
        f"constexpr int kStepInputX = {ix};",
        f"constexpr int kStepInputH = {ih};",
        f"// {bundle.quantization} model; I/O tensors are {ind[ix]['dtype'].__name__}.",
        "// Quantisation: real = scale * (q - zero_point); h_0 = 0 -> q = kHZeroPoint.",
        "// After each step requantise h_next into h's parameters when they differ.",
    ]
    for cname, d in (
        ("X", ind[ix]),
        ("H", ind[ih]),
        ("HNext", out),
        ("HeadIn", hin),
        ("Logits", hout),
    ):
        scale, zp = d["quantization"]
        rows.append(f"constexpr float k{cname}Scale = {_f(scale)};")
        rows.append(f"constexpr int k{cname}ZeroPoint = {int(zp)};")
    return rows


def write_tflm_array(
    model: bytes | FastGRNNTFLite,
    out_dir: str | os.PathLike[str],
    name: str = "model_data",
    arena_bytes: int | Mapping[str, int] | None = None,
    *,
    provenance: str = "",
) -> dict[str, str]:
    """Write ``<out_dir>/<name>.h`` and ``.cc`` for TFLite Micro; returns ``{"h":…, "cc":…}``.

    ``arena_bytes``: ``kTensorArenaSize``; None measures the minimal arena with the host
    TFLM runtime (rounded up to 16).  For a bundle, an int sets the step's arena, or pass
    ``{"step": n, "head": m}``.  ``provenance``: free text for the header comment (keep it
    free of timestamps for reproducible output).  ValueError for a bad ``name``/model,
    OSError (one line) if ``out_dir`` cannot be written; nothing half-written is left.
    """
    if not isinstance(name, str) or not _IDENT.match(name):
        raise ValueError(f"name must be a C identifier, got {name!r}")
    arrays: list[tuple[str, bytes]]
    if isinstance(model, FastGRNNTFLite):
        arrays = [(name, model.step), (f"{name}_head", model.head)]
        given = arena_bytes if isinstance(arena_bytes, Mapping) else {"step": arena_bytes}
        arenas = {
            "kTensorArenaSize": _arena(model.step, given.get("step")),
            "kHeadTensorArenaSize": _arena(model.head, given.get("head")),
        }
    elif isinstance(model, (bytes, bytearray, memoryview)):
        data = bytes(model)
        if len(data) < 8 or data[4:8] != b"TFL3":
            raise ValueError("model is not a TFLite flatbuffer (no 'TFL3' identifier)")
        if isinstance(arena_bytes, Mapping):
            raise ValueError("arena_bytes must be an int for a single model")
        arrays = [(name, data)]
        arenas = {"kTensorArenaSize": _arena(data, arena_bytes)}
    else:
        raise ValueError(f"expected .tflite bytes or a FastGRNNTFLite, got {type(model).__name__}")
    out_dir = os.fspath(out_dir)
    if not os.path.isdir(out_dir):
        raise OSError(f"cannot write to {out_dir}: not a directory")

    guard = f"EDGEPRUNE_{name.upper()}_H_"
    prov = [f"// {line}" for line in provenance.splitlines()] if provenance else []
    info = [f"// {n}: {len(b)} bytes, sha256 {hashlib.sha256(b).hexdigest()}" for n, b in arrays]
    head_lines = [
        f"// {name}.h: TFLite flatbuffer(s) as C arrays for TensorFlow Lite Micro.",
        "// Generated by edgeprune export.tflite.write_tflm_array; do not edit.",
        *info,
        *prov,
        "// kTensorArenaSize: measured with the host tflite-micro runtime (smallest arena that",
        "// allocates and invokes); give the arena alignas(16).",
        f"#ifndef {guard}",
        f"#define {guard}",
        "",
    ]
    for n, b in arrays:
        head_lines += [
            f"extern const unsigned char {n}[];",
            f"extern const unsigned int {n}_len;",
            f"constexpr unsigned int {n}_size = {len(b)};",
        ]
    head_lines.append("")
    head_lines += [f"constexpr int {k} = {v};" for k, v in arenas.items()]
    if isinstance(model, FastGRNNTFLite):
        head_lines += ["", "// FastGRNN step model: run the time loop in the firmware."]
        head_lines += _step_quant(model)
    head_lines += ["", f"#endif  // {guard}", ""]

    cc_lines = [
        f"// {name}.cc: generated by edgeprune export.tflite.write_tflm_array; do not edit.",
        *info,
        f'#include "{name}.h"',
        "",
    ]
    for n, b in arrays:
        cc_lines += [
            f"alignas(16) const unsigned char {n}[] = {{",
            _c_bytes(b),
            "};",
            f"const unsigned int {n}_len = {len(b)};",
            "",
        ]
    paths = {"h": os.path.join(out_dir, f"{name}.h"), "cc": os.path.join(out_dir, f"{name}.cc")}
    try:
        atomic_write_many({paths["h"]: "\n".join(head_lines).encode(),
                           paths["cc"]: "\n".join(cc_lines).encode()})
    except OSError as exc:
        raise OSError(f"cannot write {exc.filename}: {exc.strerror or exc}") from None
    return paths


def read_c_array(cc_text: str, name: str = "model_data") -> bytes:
    """The bytes of array ``name`` in a generated .cc (for tests and checks)."""
    m = re.search(rf"const unsigned char {re.escape(name)}\[\] = \{{(.*?)\}};", cc_text, re.S)
    if not m:
        raise ValueError(f"array {name!r} not found")
    return bytes(int(t, 16) for t in re.findall(r"0x([0-9a-fA-F]{2})", m.group(1)))
