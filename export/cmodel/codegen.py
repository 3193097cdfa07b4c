"""Write ``<name>_model.h`` / ``<name>_model.c`` for an ``IntFastGRNN``.

Output is deterministic (same model, name and provenance -> same bytes) and written
atomically (``har_data.atomic``), so no half-written file is ever left behind.
"""

from __future__ import annotations

import os
import pathlib
import re
from collections.abc import Mapping

import numpy as np

from export.cmodel.cnn import IntCNN, cnn_scratch_layout
from export.cmodel.kernels import (
    C_DIR,
    CONFIG_NAME,
    check_kernels,
    config_header,
    kernel_files,
    model_formats,
)
from export.cmodel.manifest import Manifest, manifest_path
from export.cmodel.quant import GATE_NL, MATRICES, UPDATE_NL, IntFastGRNN, sigmoid_lut
from export.cmodel.sparse import FORMAT_TAGS, SparseMatrix, format_sizes
from har_data.atomic import atomic_write

_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,40}$")
_CTYPES = {np.dtype(np.int8): "int8_t", np.dtype(np.uint8): "uint8_t",
           np.dtype(np.int16): "int16_t", np.dtype(np.uint16): "uint16_t",
           np.dtype(np.int32): "int32_t"}
_NL_TAGS = {0: "EP_NL_SIGMOID", 1: "EP_NL_TANH", 2: "EP_NL_QUANT_SIGM", 3: "EP_NL_QUANT_TANH"}


def check_name(name: str) -> str:
    """A model name must be a C identifier (used in file, function and macro names)."""
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise ValueError(f"model name {name!r} is not a C identifier of at most 41 characters")
    return name


def c_array(ctype_name: str, values: np.ndarray, per_line: int = 16) -> str:
    """``static const <type> <name>[n] = {...};`` for a 1-D integer array (n >= 1)."""
    arr = np.asarray(values).reshape(-1)
    ctype = _CTYPES[arr.dtype]
    lines = []
    for i in range(0, arr.size, per_line):
        lines.append("    " + ", ".join(str(int(v)) for v in arr[i:i + per_line]) + ",")
    body = "\n".join(lines)
    return f"static const {ctype} {ctype_name}[{arr.size}] = {{\n{body}\n}};\n"


def matrix_view_definition(prefix: str, s: SparseMatrix) -> tuple[str, str]:
    """(array definitions, ``ep_matrix_t`` initializer) for a standalone matrix ``s``.

    Used by tests and by users who call ``ep_spmv`` directly; models use pools instead.
    """
    defs = []
    vals = idx = "NULL"
    if s.values.size:
        defs.append(c_array(f"{prefix}_val", s.values))
        vals = f"{prefix}_val"
    if s.index.size:
        defs.append(c_array(f"{prefix}_idx", s.index))
        idx = f"{prefix}_idx"
    init = f"{{ {vals}, {idx}, {s.rows}, {s.cols}, {s.nnz}, {FORMAT_TAGS[s.format]} }}"
    return "".join(defs), init


class _Pool:
    """One typed constant pool: arrays appended back to back, with their offsets."""

    def __init__(self, dtype: type) -> None:
        self.dtype = np.dtype(dtype)
        self.parts: list[tuple[str, np.ndarray]] = []
        self.size = 0

    def add(self, label: str, arr: np.ndarray) -> int:
        arr = np.asarray(arr).reshape(-1)
        if arr.size and arr.dtype != self.dtype:
            raise ValueError(f"pool {self.dtype}: {label} has dtype {arr.dtype}")
        off = self.size
        if off > 65535:
            raise ValueError(f"model too large: pool offset {off} exceeds 65535")
        if arr.size:
            self.parts.append((label, arr.astype(self.dtype)))
            self.size += arr.size
        return off

    def c_field(self) -> tuple[str, str]:
        """(member declaration, initializer) of this pool inside the model struct."""
        ctype = _CTYPES[self.dtype]
        n = max(self.size, 1)
        lines = []
        for label, arr in self.parts:
            lines.append(f"        /* {label} */")
            for i in range(0, arr.size, 16):
                lines.append("        " + ", ".join(str(int(v)) for v in arr[i:i + 16]) + ",")
        if not self.parts:
            lines.append("        0, /* (empty) */")
        return f"{ctype} {_POOL_NAMES[self.dtype]}[{n}];", "{\n" + "\n".join(lines) + "\n    }"


_POOL_NAMES = {np.dtype(np.int8): "i8", np.dtype(np.uint8): "u8", np.dtype(np.int16): "i16",
               np.dtype(np.uint16): "u16", np.dtype(np.int32): "i32"}


def _fmt_scale(v: float) -> str:
    e = np.log2(v)
    return f"2^{int(e)}" if float(e).is_integer() else f"{v:.6g}"


ROW_BLOCK = 16
"""EP_ROW_BLOCK of ep_kernels.h: rows per block of the step's matrix walks."""


def scratch_bytes(m: IntFastGRNN) -> int:
    """EP_FASTGRNN_SCRATCH_BYTES of the model (work area + int16 state)."""
    return (8 * ROW_BLOCK + 2 * (m.input_dim + m.w_rank + (m.u_rank or m.hidden))
            + 2 * m.hidden)


def _header_text(name: str, comment: str, steps: int, d: int, classes: int,
                 scratch: int) -> str:
    up = name.upper()
    guard = f"EP_{up}_MODEL_H"
    header = f"""{comment}
#ifndef {guard}
#define {guard}

#include <stdint.h>

#include "ep_kernels.h"

#define EP_{up}_STEPS {steps}
#define EP_{up}_CHANNELS {d}
#define EP_{up}_INPUT_LEN ({steps} * {d})
#define EP_{up}_CLASSES {classes}
#define EP_{up}_SCRATCH_BYTES {scratch}

#ifdef EP_MODEL_DEFAULT_ALIASES /* lets one generic driver use this model */
#define EP_MODEL_INPUT_LEN EP_{up}_INPUT_LEN
#define EP_MODEL_CLASSES EP_{up}_CLASSES
#define EP_MODEL_SCRATCH_BYTES EP_{up}_SCRATCH_BYTES
#define EP_MODEL_PREDICT ep_{name}_predict
#endif

#ifdef __cplusplus
extern "C" {{
#endif

/**
 * Classify one window. window: EP_{up}_INPUT_LEN int16 samples, time-major (see the
 * comment above); scratch: EP_{up}_SCRATCH_BYTES bytes, 4-byte aligned, caller-owned;
 * scores: EP_{up}_CLASSES int32 logits (written). Returns the class (first argmax).
 * No heap, no floating point, reentrant (all state lives in scratch).
 */
int ep_{name}_predict(const int16_t window[EP_{up}_INPUT_LEN], void *scratch,
                      int32_t scores[EP_{up}_CLASSES]);

#ifdef __cplusplus
}}
#endif

#endif /* {guard} */
"""
    return header


def check_ranges(m: IntFastGRNN) -> None:
    """Refuse constants outside the ranges ``ep_kernels.h`` documents: C generated from
    them would shift by a negative amount or overflow int32 (undefined behaviour)."""
    rules = [("in_shift", m.in_shift, 1, 30), ("pre_frac", m.pre_frac, 1, 14),
             ("lut_shift", m.lut_shift, 0, m.pre_frac - 1), ("h_frac", m.h_frac, 0, 15),
             ("h_max", m.h_max, 0, 32767), ("zeta_q15", m.zeta_q15, 0, 32768),
             ("nu_q15", m.nu_q15, 0, 32768), ("bias_gate_shift", m.bias_gate_shift, 0, 23),
             ("bias_update_shift", m.bias_update_shift, 0, 23),
             ("in_mult", int(np.min(m.in_mult, initial=0)), 0, 16383),
             ("in_mult", int(np.max(m.in_mult, initial=0)), 0, 16383)]
    for rq_name in ("rq_a", "rq_w", "rq_v", "rq_u"):
        rq = getattr(m, rq_name)
        rules += [(f"{rq_name}.shift", rq.shift, 1, 62), (f"{rq_name}.mult", rq.mult, 0, 2**31 - 1)]
    for what, value, lo, hi in rules:
        if not lo <= int(value) <= hi:
            raise ValueError(f"model constant {what} = {value} is outside {lo}..{hi} "
                             "(see export/c/ep_kernels.h)")
    if len(m.lut) and int(np.max(m.lut)) > 32767:
        raise ValueError("sigmoid table entries must be <= 32767 (Q15 below 1)")
    if len(m.lut) != 8 * 2**m.lut_shift + 1:
        raise ValueError(f"sigmoid table has {len(m.lut)} entries, expected "
                         f"{8 * 2**m.lut_shift + 1} for lut_shift {m.lut_shift}")
    for key, s in m.matrices.items():
        if s is not None:
            worst = int(np.abs(s.to_dense().astype(np.int64)).sum(axis=1).max(initial=0))
            if worst * 32768 >= 2**31:
                raise ValueError(f"matrix {key} could overflow the int32 accumulator")


def check_cnn_ranges(m: IntCNN) -> None:
    """``check_ranges`` for an ``IntCNN``: input stage, requantisers, accumulators."""
    rules = [("in_shift", m.in_shift, 1, 30),
             ("in_mult", int(np.min(m.in_mult, initial=0)), 0, 16383),
             ("in_mult", int(np.max(m.in_mult, initial=0)), 0, 16383)]
    for lay in m.layers:
        if lay.rq is not None:
            rules += [(f"layer {lay.name!r} shift", lay.rq.shift, 1, 62),
                      (f"layer {lay.name!r} multiplier", lay.rq.mult, 0, 2**31 - 1)]
    for what, value, lo, hi in rules:
        if not lo <= int(value) <= hi:
            raise ValueError(f"model constant {what} = {value} is outside {lo}..{hi} "
                             "(see export/c/ep_kernels.h)")
    for lay in m.layers:
        if lay.matrix is not None:
            worst = int(np.abs(lay.matrix.to_dense().astype(np.int64)).sum(axis=1).max(initial=0))
            if worst * 32768 >= 2**31:
                raise ValueError(f"layer {lay.name!r} could overflow the int32 accumulator")


def render(model: IntFastGRNN, name: str,
           provenance: Mapping[str, object] | None = None) -> tuple[str, str]:
    """The header and source text of the generated model (no I/O)."""
    name = check_name(name)
    check_ranges(model)
    up = name.upper()
    m = model
    steps = int((provenance or {}).get("steps", 128))
    scratch = scratch_bytes(m)
    paper = sum(s.nbytes for s in m.matrices.values() if s is not None)
    prov_lines = [f" *   {k}: {v}" for k, v in sorted((provenance or {}).items())]
    fmt_lines = []
    for key in MATRICES:
        s = m.matrices[key]
        if s is not None:
            sizes = ", ".join(f"{f} {b}" for f, b in format_sizes(s.to_dense()).items()
                              if b is not None)
            fmt_lines.append(f" *   {key:5s} {s.rows}x{s.cols} nnz {s.nnz} -> {s.format} "
                             f"({s.nbytes} B; {sizes})")
    scales = ", ".join(_fmt_scale(v) for v in m.in_scale)
    comment = "\n".join([
        "/*",
        f" * {name}_model -- generated by edgeprune (export.cmodel); do not edit.",
        " * Integer-only sparse FastGRNN "
        f"(d {m.input_dim}, hidden {m.hidden}, w_rank {m.w_rank}, u_rank {m.u_rank}, "
        f"classes {m.classes}; rank 0 = full).",
        f" *   weight sparsity (float params): {m.meta.get('sparsity', 0.0):.4f}; "
        f"int8 nonzeros: {m.meta.get('nnz_int8', '?')}",
        f" *   matrix bytes (values + index): {paper}; state: int16 Q{m.h_frac} "
        f"(-{m.h_max + 1} <= h <= {m.h_max}); sigmoid table {len(m.lut)} entries"
        + (" (the kernels' built-in one)" if m.lut_shift == 1
           and np.array_equal(m.lut, sigmoid_lut(1)) else ""),
        *prov_lines,
        " * Storage format per matrix (rows = outputs), bytes of every format:",
        *fmt_lines,
        " * Input: window[t * CHANNELS + c] = round(x[t][c] / in_scale[c]) saturated to int16,",
        " *   x = raw (not normalised) sample; normalisation runs in fixed point inside.",
        f" *   in_scale = {{{scales}}}",
        f" * Scores: int32 logits in units of {m.score_scale:.9g} (argmax = class).",
        " */",
    ])
    header = _header_text(name, comment, steps, m.input_dim, m.classes, scratch)
    p = f"ep_{name}"
    i8, u8, i16 = _Pool(np.int8), _Pool(np.uint8), _Pool(np.int16)
    u16, i32 = _Pool(np.uint16), _Pool(np.int32)
    desc = {}
    for key in MATRICES:
        s = m.matrices[key]
        if s is None:
            desc[key] = "{ 0, 0, 0, EP_FMT_NONE, 0 }"
            continue
        voff = i8.add(f"{key} values ({s.format})", s.values)
        ipool = u16 if s.format == "csr16" else u8
        ioff = ipool.add(f"{key} index ({s.format})", s.index)
        desc[key] = f"{{ {voff}, {ioff}, {s.nnz}, {FORMAT_TAGS[s.format]}, 0 }}"
    bg = i8.add("bias_gate", m.bias_gate)
    bu = i8.add("bias_update", m.bias_update)
    im = i16.add("in_mult", m.in_mult)
    imean = i16.add("in_mean", m.in_mean)
    builtin = m.lut_shift == 1 and np.array_equal(m.lut, sigmoid_lut(1))
    lut = "EP_LUT_BUILTIN" if builtin else u16.add("sigmoid table", m.lut)
    db = i32.add("dense_bias", m.dense_bias)
    rqs = (m.rq_a, m.rq_w, m.rq_v, m.rq_u)
    pool_offsets = ", ".join(f"offsetof({p}_data_t, {k})" for k in ("i8", "u8", "i16", "u16",
                                                                     "i32"))
    fields = [
        desc["w1"], desc["w2"], desc["u1"], desc["u2"], desc["dense"],
        "{ " + ", ".join(str(r.mult) for r in rqs) + " }",
        "{ " + pool_offsets + " }",
        str(m.zeta_q15), str(m.nu_q15), str(im), str(imean), str(bg), str(bu), str(db), str(lut),
        str(m.input_dim), str(m.hidden), str(m.w_rank), str(m.u_rank), str(m.classes),
        str(m.h_max),
        "{ " + ", ".join(str(r.shift) for r in rqs) + " }",
        str(m.in_shift), str(m.bias_gate_shift), str(m.bias_update_shift),
        str(m.pre_frac), str(m.h_frac), str(m.lut_shift),
        _NL_TAGS[GATE_NL[m.gate_nl]], _NL_TAGS[UPDATE_NL[m.update_nl]],
    ]
    if sum(q.size * q.dtype.itemsize for q in (i8, u8, i16, u16, i32)) + 256 > 65535:
        raise ValueError("model too large: its pools must fit 64 KB (uint16 byte offsets)")
    pools = [pool.c_field() for pool in (i32, i16, u16, i8, u8)]
    members = "\n".join(f"    {decl}" for decl, _ in pools)
    params = ",\n".join("        " + f for f in fields)
    inits = ",\n".join(f"    {init}" for _, init in pools)
    source = f"""{comment}

#include <stddef.h>

#include "{name}_model.h"

/*
 * All constant data of the model lives in one object (params + five typed pools, found
 * by their byte offsets in params.pool), so the compiler adds no padding between arrays
 * beyond natural alignment.
 */
typedef struct {{
    ep_fastgrnn_t params;
{members}
}} {p}_data_t;

static const {p}_data_t {p} = {{
    {{
{params}
    }},
{inits}
}};

int ep_{name}_predict(const int16_t window[EP_{up}_INPUT_LEN], void *scratch,
                      int32_t scores[EP_{up}_CLASSES])
{{
    return ep_fastgrnn_predict(&{p}.params, window, EP_{up}_STEPS, scratch, scores);
}}
"""
    return header, source


def _ptr(p: str, pool: str, off: int, n: int) -> str:
    return f"{p}.{pool} + {off}" if n else "NULL"


def render_cnn(model: IntCNN, name: str,
               provenance: Mapping[str, object] | None = None) -> tuple[str, str]:
    """Header and source text of a generated integer CNN (no I/O)."""
    name = check_name(name)
    check_cnn_ranges(model)
    up = name.upper()
    m = model
    p = f"ep_{name}"
    lay_out = cnn_scratch_layout(m)
    scratch = lay_out["total"]
    fmt_lines, members, inits, calls = [], [], [], []
    i8, u8, i16 = _Pool(np.int8), _Pool(np.uint8), _Pool(np.int16)
    u16, i32 = _Pool(np.uint16), _Pool(np.int32)
    im = i16.add("in_mult", m.in_mult)
    imean = i16.add("in_mean", m.in_mean)
    cur, other = "a", "b"
    calls.append(f"    ep_normalize_input(window, {m.steps}, {m.input_dim}, {p}.i16 + {im}, "
                 f"{p}.i16 + {imean}, {m.in_shift}, a);")
    for k, lay in enumerate(m.layers):
        shape = f"{lay.t_in}x{lay.c_in} -> {lay.t_out}x{lay.c_out}"
        if lay.matrix is not None:
            s = lay.matrix
            sizes = ", ".join(f"{f} {b}" for f, b in format_sizes(s.to_dense()).items()
                              if b is not None)
            fmt_lines.append(f" *   {lay.name} ({lay.kind}) {s.rows}x{s.cols} nnz {s.nnz} -> "
                             f"{s.format} ({s.nbytes} B; {sizes})")
            voff = i8.add(f"{lay.name} values ({s.format})", s.values)
            ipool = "u16" if s.format == "csr16" else "u8"
            ioff = (u16 if ipool == "u16" else u8).add(f"{lay.name} index ({s.format})", s.index)
            boff = i32.add(f"{lay.name} bias", lay.bias)
            mat = (f"{{ {_ptr(p, 'i8', voff, s.values.size)}, "
                   f"{_ptr(p, ipool, ioff, s.index.size)}, {s.rows}, {s.cols}, {s.nnz}, "
                   f"{FORMAT_TAGS[s.format]} }}")
        if lay.kind == "conv1d":
            members.append(f"    ep_conv1d_t l{k}; /* {lay.name}: {shape} */")
            inits.append(f"    {{ {mat}, {p}.i32 + {boff}, {lay.rq.mult}, {lay.t_in}, "
                         f"{lay.c_in}, {lay.kernel}, {lay.stride}, {lay.pad_left}, "
                         f"{lay.t_out}, {lay.rq.shift}, {int(lay.relu)} }}")
            calls.append(f"    ep_conv1d(&{p}.l{k}, {cur}, {other}, patch, acc); "
                         f"/* {lay.name}: {shape} */")
            cur, other = other, cur
        elif lay.kind == "maxpool1d":
            calls.append(f"    ep_maxpool1d({cur}, {lay.t_in}, {lay.c_in}, {lay.kernel}, "
                         f"{lay.stride}, {other}); /* {lay.name}: {shape} */")
            cur, other = other, cur
        elif lay.kind == "gap1d":
            calls.append(f"    ep_gap1d({cur}, {lay.t_in}, {lay.c_in}, {lay.rq.mult}, "
                         f"{lay.rq.shift}, {other}); /* {lay.name}: {shape} */")
            cur, other = other, cur
        else:
            members.append(f"    ep_matrix_t l{k}; /* {lay.name}: {shape} */")
            inits.append(f"    {mat}")
            if lay.logits:
                calls.append(f"    ep_dense(&{p}.l{k}, {p}.i32 + {boff}, 0, 0, 0, {cur}, NULL, "
                             f"scores); /* {lay.name}: logits */")
            else:
                calls.append(f"    ep_dense(&{p}.l{k}, {p}.i32 + {boff}, {lay.rq.mult}, "
                             f"{lay.rq.shift}, {int(lay.relu)}, {cur}, {other}, acc); "
                             f"/* {lay.name}: {shape} */")
                cur, other = other, cur
    paper = sum(lay.matrix.nbytes for lay in m.layers if lay.matrix is not None)
    prov_lines = [f" *   {k}: {v}" for k, v in sorted((provenance or {}).items())]
    scales = ", ".join(_fmt_scale(v) for v in m.in_scale)
    comment = "\n".join([
        "/*",
        f" * {name}_model -- generated by edgeprune (export.cmodel); do not edit.",
        f" * Integer-only sparse 1-D CNN ({len(m.layers)} layers, input {m.steps}x"
        f"{m.input_dim}, classes {m.classes}).",
        f" *   weight sparsity (float params): {m.meta.get('sparsity', 0.0):.4f}; "
        f"int8 nonzeros: {m.meta.get('nnz_int8', '?')}; matrix bytes (values + index): {paper}",
        *prov_lines,
        " * Storage format per layer (rows = output channels), bytes of every format:",
        *fmt_lines,
        " * Input: window[t * CHANNELS + c] = round(x[t][c] / in_scale[c]) saturated to int16,",
        " *   x = raw (not normalised) sample; normalisation runs in fixed point inside.",
        f" *   in_scale = {{{scales}}}",
        f" * Scores: int32 logits in units of {m.score_scale:.9g} (argmax = class).",
        " */",
    ])
    header = _header_text(name, comment, m.steps, m.input_dim, m.classes, scratch)
    pools = [pool.c_field() for pool in (i32, i16, u16, i8, u8)]
    pool_members = "\n".join(f"    {decl}" for decl, _ in pools)
    pool_inits = ",\n".join(f"    {init}" for _, init in pools)
    uses_conv = any(lay.kind == "conv1d" for lay in m.layers)
    uses_acc = any(lay.matrix is not None and not lay.logits for lay in m.layers)
    bufs = [f"    int16_t *a = (int16_t *)((uint8_t *)scratch + {lay_out['a']});",
            f"    int16_t *b = (int16_t *)((uint8_t *)scratch + {lay_out['b']});"]
    if uses_conv:
        bufs.append(f"    int16_t *patch = (int16_t *)((uint8_t *)scratch + {lay_out['patch']});")
    if uses_acc:
        bufs.append("    int32_t *acc = (int32_t *)scratch;")
    source = f"""{comment}

#include "{name}_model.h"

/*
 * All constant data of the model lives in one object (layer descriptors + five typed
 * pools), so the compiler adds no padding between arrays beyond natural alignment.
 */
typedef struct {{
{chr(10).join(members)}
{pool_members}
}} {p}_data_t;

static const {p}_data_t {p} = {{
{("," + chr(10)).join(inits)},
{pool_inits}
}};

int ep_{name}_predict(const int16_t window[EP_{up}_INPUT_LEN], void *scratch,
                      int32_t scores[EP_{up}_CLASSES])
{{
{chr(10).join(bufs)}
    int k, best = 0;
{chr(10).join(calls)}
    (void)b;
    for (k = 1; k < EP_{up}_CLASSES; k++) {{
        if (scores[k] > scores[best]) {{
            best = k;
        }}
    }}
    return best;
}}
"""
    return header, source


def generate_c(model: IntFastGRNN | IntCNN, out_dir: str | os.PathLike, name: str,
               provenance: Mapping[str, object] | None = None,
               copy_kernels: bool = False, kernels: str = "fast") -> dict[str, pathlib.Path]:
    """Write ``<name>_model.h`` and ``<name>_model.c`` (FastGRNN or CNN) into ``out_dir``.

    ``provenance``: extra lines for the comment block (e.g. model, accuracy, sparsity);
    ``steps`` sets the window length (default 128). ``kernels``: ``fast`` or ``small``
    (which also writes ``ep_kernels_config.h``: the portable kernels, only the model's
    storage formats; see ``export.cmodel.kernels``). ``copy_kernels`` also copies that
    build's kernel files and ``ep_cnn.c`` beside them (and removes the other build's).
    Also writes the manifest ``<name>_model.json`` (``export.cmodel.manifest``: what a
    firmware builder needs to know). Returns ``{"header", "source", "manifest"[,
    "config"]}``. Raises
    ``OSError`` (one line) when ``out_dir`` is not writable, ``ValueError`` for an unknown
    ``kernels``.
    """
    check_kernels(kernels)
    if isinstance(model, IntCNN):
        header, source = render_cnn(model, name, provenance)
    else:
        header, source = render(model, name, provenance)
    out = pathlib.Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
        if not os.access(out, os.W_OK):
            raise PermissionError(f"directory {out} is not writable")
        paths = {"header": out / f"{name}_model.h", "source": out / f"{name}_model.c"}
        atomic_write(paths["header"], header.encode("ascii"))
        atomic_write(paths["source"], source.encode("ascii"))
        paths["manifest"] = manifest_path(out, name)
        atomic_write(paths["manifest"], Manifest.for_model(
            name, kernels, model_formats(model)).to_json().encode("ascii"))
        config = out / CONFIG_NAME
        if kernels == "small":
            paths["config"] = config
            atomic_write(config, config_header(model_formats(model)).encode("ascii"))
        elif config.is_file():
            config.unlink()  # a fast build of a folder that held a small one
        if copy_kernels:
            lib = [*kernel_files(kernels), C_DIR / "ep_cnn.c"]
            for stale in set(kernel_files("fast") + kernel_files("small")) - set(lib):
                (out / stale.name).unlink(missing_ok=True)
            for src in lib:
                atomic_write(out / src.name, src.read_text(encoding="ascii").encode("ascii"))
    except OSError as e:
        raise OSError(f"cannot write the C model to {out}: {e.strerror or e}") from e
    return paths
