"""The integer C model under attack: ASan/UBSan builds fed extreme inputs and weights.

Each case generates a FastGRNN C model (``export.cmodel``) in one sparse format, then
pushes its constants to the edges of what ``export/c/ep_kernels.h`` allows: all +-127
(or sign-alternating, or sparse +-127) matrices, +-127 biases at the largest bias shift,
requantisers that saturate int32, int32-extreme classifier biases, sigma(zeta)/sigma(nu)
at 0 or 1, every ``pre_frac``/``h_frac``/``lut_shift`` corner and both state widths. The
model is compiled with ``-fsanitize=address,undefined -fno-sanitize-recover=all`` and run
on int16 windows made of extremes (all -32768, all 32767, alternating, zeros, spikes,
random). Every window must run without a sanitizer report, and the C classes and scores
must equal the numpy bit-exact reference (``export.cmodel.reference_predict``).

The HAR CNN (``ep_cnn.c``) gets the same treatment: +-127 kernels, int32-extreme biases
and saturating requantisers in every layer.

The fast tests run 10 000 FastGRNN and 2 000 CNN windows; the slow ones 100 000 and 10 000.
"""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from test_cmodel import SYN_MEAN, SYN_STD, WARN, random_params, synthetic_windows
from test_cmodel_cnn import har_cnn_layers

from export import cmodel
from export.cmodel import reference as ref
from export.cmodel.cnn import IntCNN
from export.cmodel.codegen import C_DIR
from export.cmodel.kernels import kernel_sources
from export.cmodel.quant import MATRICES, IntFastGRNN, Requant, sigmoid_lut

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None, reason="host gcc not installed")

SANITIZE = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-g"]
I16_MIN, I16_MAX = -32768, 32767
I32_MIN, I32_MAX = -(2**31), 2**31 - 1
STEPS, D = 128, 9


# ------------------------------------------------------------------ attacking inputs
def attack_windows(n: int, seed: int) -> np.ndarray:
    """``n`` int16 windows (n, 128, 9): fixed extreme patterns first, then random mixes."""
    r = np.random.default_rng(seed)
    t = np.arange(STEPS)[:, None]
    c = np.arange(D)[None, :]
    sign = np.where((t + c) % 2 == 0, I16_MAX, I16_MIN)
    fixed = [
        np.full((STEPS, D), I16_MIN), np.full((STEPS, D), I16_MAX), np.zeros((STEPS, D)),
        sign, -sign - 1,                                            # checkerboard extremes
        np.where(t % 2 == 0, I16_MAX, I16_MIN) + 0 * c,             # alternating per step
        np.where(c % 2 == 0, I16_MAX, I16_MIN) + 0 * t,             # alternating per channel
        np.where(t < STEPS // 2, I16_MAX, I16_MIN) + 0 * c,         # one switch
        np.full((STEPS, D), -1), np.full((STEPS, D), 1),
    ]
    out = np.empty((n, STEPS, D), dtype=np.int16)
    for i in range(n):
        if i < len(fixed):
            out[i] = fixed[i]
            continue
        kind = i % 6
        if kind == 0:    # uniform over the whole int16 range
            w = r.integers(I16_MIN, I16_MAX + 1, (STEPS, D))
        elif kind == 1:  # only extremes and small values
            w = r.choice([I16_MIN, I16_MAX, I16_MIN + 1, I16_MAX - 1, 0, 1, -1], (STEPS, D))
        elif kind == 2:  # zeros with extreme spikes
            w = np.zeros((STEPS, D), dtype=np.int64)
            k = r.integers(1, 12)
            w[r.integers(0, STEPS, k), r.integers(0, D, k)] = r.choice([I16_MIN, I16_MAX], k)
        elif kind == 3:  # a constant extreme per channel
            w = np.broadcast_to(r.choice([I16_MIN, I16_MAX, 0], D), (STEPS, D))
        elif kind == 4:  # square waves of random period between the extremes
            period = r.integers(1, 40)
            w = np.where((t // period) % 2 == 0, I16_MAX, I16_MIN) * r.choice([-1, 1], D)
            w = np.clip(w, I16_MIN, I16_MAX)
        else:            # large-amplitude random walk, saturated
            w = np.clip(np.cumsum(r.integers(-9000, 9001, (STEPS, D)), axis=0), I16_MIN,
                        I16_MAX)
        out[i] = w
    return out


# ------------------------------------------------------------------ attacking models
def _extreme_matrix(shape: tuple[int, int], r: np.random.Generator, current: np.ndarray,
                    pattern: str) -> np.ndarray:
    rows, cols = shape
    if pattern == "plus":
        m = np.full(shape, 127)
    elif pattern == "minus":
        m = np.full(shape, -127)
    elif pattern == "checker":
        m = np.where((np.arange(rows)[:, None] + np.arange(cols)[None, :]) % 2 == 0, 127, -127)
    elif pattern == "sparse":
        m = r.choice([-127, 127], shape) * (r.random(shape) < r.uniform(0.05, 0.5))
    elif pattern == "rowsign":  # every row one sign: the largest possible |sum|
        m = np.broadcast_to(r.choice([-127, 127], (rows, 1)), shape)
    else:
        m = current
    return np.asarray(m, dtype=np.int8)


PATTERNS = ("plus", "minus", "checker", "sparse", "rowsign", "keep")


def _fmt(fmt: str, cols: int) -> str:
    """``fmt``, or ``bitmask`` for a matrix that ``rowmask`` cannot store (cols > 8; the
    input matrix W1/W always has 9)."""
    return "bitmask" if fmt == "rowmask" and cols > 8 else fmt


def attack_model(case: int, fmt: str, fast: bool = False) -> tuple[IntFastGRNN, dict]:
    """A quantised FastGRNN in format ``fmt`` with constants pushed to their limits.

    ``fast``: keep the conditions of the kernels' fast state update (pre_frac 12,
    lut_shift 1, sigmoid/tanh, 16-bit state with h_max 32767, W/U requantiser shifts
    >= 33), everything else still at the limits. ``csr8n`` models get hidden <= 15 (its
    row counts must fit a nibble).
    """
    r = np.random.default_rng(1000 + case)
    hidden = int(r.choice([6, 16, 32, 48]))
    small = {"csr8n": 15, "rowmask": 8}  # row counts <= 15 / rows of <= 8 columns
    if fmt in small:
        hidden = min(hidden, small[fmt])
    full_w, full_u = bool(r.random() < 0.35), bool(r.random() < 0.35)
    gate = str(r.choice(["sigmoid", "quantSigm"]))
    update = str(r.choice(["tanh", "quantTanh"]))
    if fast:  # long U2 rows, so that pre still saturates at the fast path's gains (< 1/4)
        gate, update, full_u = "sigmoid", "tanh", False
        hidden = hidden if fmt in small else 48
    params = random_params(case, hidden=hidden, w_rank=None if full_w else int(r.integers(1, 9)),
                           u_rank=None if full_u else (
                               hidden if fast else int(r.integers(1, hidden + 1))),
                           sparsity=float(r.uniform(0.3, 0.9)), gate=gate, update=update)
    pre_frac = int(r.choice([1, 2, 8, 12, 14]))
    lut_shift = int(r.integers(0, min(pre_frac, 5)))
    state_bits = int(r.choice([8, 16]))
    if fast:
        pre_frac, lut_shift, state_bits = 12, 1, 16
    cal = synthetic_windows(8, seed=case)
    im = cmodel.quantize_fastgrnn(params, SYN_MEAN, SYN_STD, cal, pre_frac=pre_frac,
                                  lut_shift=lut_shift, state_bits=state_bits,
                                  formats=None if fmt == "rowmask" else dict.fromkeys(MATRICES,
                                                                                      fmt))
    H, C = im.hidden, im.classes
    mats = {}
    chosen = {}
    for name, s in im.matrices.items():
        if s is None:
            mats[name] = None
            continue
        pattern = str(r.choice(PATTERNS))
        chosen[name] = pattern
        mats[name] = cmodel.encode(_extreme_matrix((s.rows, s.cols), r, s.to_dense(), pattern),
                                   _fmt(fmt, s.cols))
    if fast:  # v = U1 h saturates, one sign (rq_v below); every U2 row sums u_rank of them
        for name, pattern in (("u1", "plus"), ("u2", "rowsign")):
            s = im.matrices[name]
            chosen[name] = pattern
            mats[name] = cmodel.encode(_extreme_matrix((s.rows, s.cols), r, s.to_dense(),
                                                       pattern), _fmt(fmt, s.cols))

    def rq(current: Requant) -> Requant:
        roll = r.random()
        if roll < 0.4:   # a huge gain: every nonzero sum saturates int32
            return Requant(int(r.integers(2**30, 2**31)), int(r.integers(1, 4)))
        if roll < 0.5:   # the smallest gain: everything rounds to 0 or +-1
            return Requant(int(r.integers(2**30, 2**31)), 62)
        if roll < 0.7:
            return Requant(int(r.integers(2**30, 2**31)), int(r.integers(1, 63)))
        return current

    def bias() -> tuple[np.ndarray, int]:
        values = r.choice([-127, 127, 0], H) if r.random() < 0.5 else np.full(H, r.choice([-127,
                                                                                          127]))
        return values.astype(np.int8), int(r.choice([0, 1, 12, 22, 23]))

    bg, bg_shift = bias()
    bu, bu_shift = bias()
    dense_bias = r.choice([I32_MIN, I32_MAX, 0, -1, 1], C).astype(np.int64)
    if r.random() < 0.3:
        dense_bias[:] = r.choice([I32_MIN, I32_MAX])
    in_mult = r.choice([0, 1, 16383], D) if r.random() < 0.5 else r.integers(0, 16384, D)
    in_mean = r.choice([I16_MIN, I16_MAX, 0], D) if r.random() < 0.5 else im.in_mean
    h_max = im.h_max if r.random() < 0.5 else int(r.choice([1, 127, 32767]))
    rq_w, rq_u = rq(im.rq_w), rq(im.rq_u)
    if fast:  # the largest gains the fast path takes (shift 33 .. 35): pre saturates
        h_max = 32767
        rq_w, rq_u = (Requant(int(r.integers(2**30, 2**31)), int(r.choice([33, 33, 35])))
                      for _ in range(2))
    extreme = dict(
        matrices=mats, rq_a=rq(im.rq_a), rq_w=rq_w,
        rq_v=Requant(2**31 - 1, 1) if fast else rq(im.rq_v), rq_u=rq_u,
        bias_gate=bg, bias_gate_shift=bg_shift, bias_update=bu, bias_update_shift=bu_shift,
        dense_bias=dense_bias.astype(np.int32),
        zeta_q15=int(r.choice([0, 32768, im.zeta_q15])), nu_q15=int(r.choice([0, 32768])),
        in_mult=np.asarray(in_mult, dtype=np.int16), in_mean=np.asarray(in_mean, np.int16),
        in_shift=int(r.choice([1, 2, 15, 30, im.in_shift])),
        h_frac=int(r.choice([0, 7, 15, im.h_frac])), h_max=h_max,
        lut=sigmoid_lut(lut_shift),
    )
    info = {"case": case, "format": fmt, "hidden": H, "w_rank": im.w_rank, "u_rank": im.u_rank,
            "gate": gate, "update": update, "pre_frac": pre_frac, "patterns": chosen,
            "fast": fast}
    return dataclasses.replace(im, **extreme), info


def attack_cnn(case: int, fmt: str) -> IntCNN:
    """The HAR CNN in format ``fmt`` with extreme kernels, biases and requantisers."""
    r = np.random.default_rng(5000 + case)
    cal = synthetic_windows(8, seed=case)
    layers = har_cnn_layers(seed=case, padding=str(r.choice(["same", "valid"])))
    names = [lay["name"] for lay in layers if "kernel" in lay]
    im = cmodel.quantize_cnn(layers, SYN_MEAN, SYN_STD, cal, formats=dict.fromkeys(names, fmt))
    big = I32_MAX - 1  # the quantiser's bias limit
    for lay in im.layers:
        if lay.matrix is not None:
            pattern = str(r.choice(PATTERNS))
            lay.matrix = cmodel.encode(_extreme_matrix((lay.matrix.rows, lay.matrix.cols), r,
                                                       lay.matrix.to_dense(), pattern), fmt)
            lay.bias = r.choice([-big, big, 0, -1, 1], lay.c_out).astype(np.int32)
        if lay.rq is not None and not lay.logits and r.random() < 0.6:
            lay.rq = Requant(int(r.integers(2**30, 2**31)), int(r.choice([1, 2, 62])))
    im.in_mult = (r.choice([0, 1, 16383], D) if r.random() < 0.5
                  else r.integers(0, 16384, D)).astype(np.int16)
    im.in_shift = int(r.choice([1, 2, 15, 30, im.in_shift]))
    return im


# ------------------------------------------------------------------ build, run, compare
def build_sanitized(im: IntFastGRNN | IntCNN, out: Path, name: str) -> Path:
    paths = cmodel.generate_c(im, out, name)
    exe = out / f"fuzz_{name}"
    cmd = ["gcc", *WARN, "-O1", *SANITIZE, "-DEP_MODEL_DEFAULT_ALIASES",
           "-include", paths["header"].name, "-I", str(out), "-I", str(C_DIR),
           str(C_DIR / "ep_host_driver.c"), str(paths["source"]), *map(str, kernel_sources()),
           str(C_DIR / "ep_cnn.c"), "-o", str(exe)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0 and "sanitize" in done.stderr and "cannot find" in done.stderr:
        pytest.skip(f"sanitizer runtime unavailable: {done.stderr.strip()[:120]}")
    assert done.returncode == 0, done.stderr[-2000:]
    return exe


def run_c(exe: Path, x16: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    done = subprocess.run([str(exe)], input=x16.astype("<i2").tobytes(), capture_output=True,
                          env={"ASAN_OPTIONS": "detect_leaks=1:abort_on_error=0",
                               "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1"})
    report = done.stderr.decode(errors="replace")
    assert done.returncode == 0 and not report.strip(), f"sanitizer report:\n{report[-3000:]}"
    rows = np.array([[int(v) for v in line.split()] for line in done.stdout.decode().splitlines()],
                    dtype=np.int64)
    assert rows.shape[0] == len(x16), "the driver did not answer every window"
    return rows[:, 0], rows[:, 1:]


def saturation_stats(im: IntFastGRNN, x16: np.ndarray) -> dict[str, int]:
    """How often the reference hits each clamp (pre-activation, state, scores)."""
    w = x16.astype(np.int64)
    mt = {k: s.to_dense() for k, s in im.matrices.items() if s is not None}
    h = np.zeros((w.shape[0], im.hidden), dtype=np.int64)
    pre_hits = 0
    for t in range(w.shape[1]):
        raw = w[:, t, :]
        x = np.clip(((raw - im.in_mean.astype(np.int64)) * im.in_mult.astype(np.int64)
                     + (1 << (im.in_shift - 1))) >> im.in_shift, I16_MIN, I16_MAX)
        if im.w_rank:
            acc = ref.spmv(mt["w2"], np.clip(ref.requant(ref.spmv(mt["w1"], x), im.rq_a),
                                             I16_MIN, I16_MAX))
        else:
            acc = ref.spmv(mt["w1"], x)
        if im.u_rank:
            acc_u = ref.spmv(mt["u2"], np.clip(ref.requant(ref.spmv(mt["u1"], h), im.rq_v),
                                               I16_MIN, I16_MAX))
        else:
            acc_u = ref.spmv(mt["u1"], h)
        pre = ref.requant(acc, im.rq_w) + ref.requant(acc_u, im.rq_u)
        pre_hits += int(np.count_nonzero((pre >= ref.PRE_LIMIT) | (pre < -ref.PRE_LIMIT)))
        h = ref.reference_step(im, raw, h, mt)
    _, scores = ref.reference_predict(im, x16)
    return {"pre_clamped": pre_hits,
            "state_at_limit": int(np.count_nonzero((h == im.h_max) | (h == -im.h_max - 1))),
            "scores_saturated": int(np.count_nonzero((scores == I32_MAX) | (scores == I32_MIN)))}


def fuzz(tmp_path: Path, cases: int, windows_per_case: int, fast: bool = False,
         first_case: int = 0) -> dict[str, int]:
    totals = {"windows": 0, "pre_clamped": 0, "state_at_limit": 0, "scores_saturated": 0}
    formats = cmodel.FORMATS
    for case in range(first_case, first_case + cases):
        fmt = formats[case % len(formats)]
        im, info = attack_model(case, fmt, fast)
        used = {s.format for s in im.matrices.values() if s is not None}
        assert used == {fmt} or (fmt == "rowmask" and used == {fmt, "bitmask"}), used
        exe = build_sanitized(im, tmp_path / f"case{case}", f"fz{case}")
        x16 = attack_windows(windows_per_case, seed=case)
        c_cls, c_scores = run_c(exe, x16)
        r_cls, r_scores = cmodel.reference_predict(im, x16)
        bad = np.flatnonzero((c_cls != r_cls) | np.any(c_scores != r_scores, axis=1))
        assert bad.size == 0, (f"{info}: C and reference differ on {bad.size} windows, first "
                               f"{bad[0]}: C {c_cls[bad[0]]} {c_scores[bad[0]]}, reference "
                               f"{r_cls[bad[0]]} {r_scores[bad[0]]}")
        stats = saturation_stats(im, x16[:64])
        for key, value in stats.items():
            totals[key] += value
        totals["windows"] += len(x16)
    print(f"fuzzed {totals['windows']} windows over {cases} models: {totals}")
    # The attack really reached the clamps (otherwise it tested nothing).
    assert totals["pre_clamped"] > 0 and totals["state_at_limit"] > 0
    assert totals["scores_saturated"] > 0
    return totals


def fuzz_cnn(tmp_path: Path, cases: int, windows_per_case: int) -> int:
    saturated = total = 0
    # csr8n needs row counts <= 15 and rowmask rows of <= 8 columns, which the CNN's
    # kernels exceed; their kernels (ep_spmv, as in ep_conv1d/ep_dense) are fuzzed through
    # the FastGRNN cases
    formats = [f for f in cmodel.FORMATS if f not in ("csr8n", "rowmask")]
    for case in range(cases):
        fmt = formats[case % len(formats)]
        im = attack_cnn(case, fmt)
        exe = build_sanitized(im, tmp_path / f"cnn{case}", f"cnn{case}")
        x16 = attack_windows(windows_per_case, seed=100 + case)
        c_cls, c_scores = run_c(exe, x16)
        r_cls, r_scores = cmodel.reference_predict(im, x16)
        bad = np.flatnonzero((c_cls != r_cls) | np.any(c_scores != r_scores, axis=1))
        assert bad.size == 0, (f"CNN case {case} ({fmt}): C and reference differ on "
                               f"{bad.size} windows, first {bad[0]}")
        saturated += int(np.count_nonzero((r_scores == I32_MAX) | (r_scores == I32_MIN)))
        total += len(x16)
    print(f"fuzzed {total} CNN windows over {cases} models; {saturated} saturated scores")
    assert saturated > 0
    return total


def test_attack_inputs_cover_the_extremes():
    x = attack_windows(64, seed=0)
    assert x.dtype == np.int16 and x.shape == (64, STEPS, D)
    assert (x[0] == I16_MIN).all() and (x[1] == I16_MAX).all() and (x[2] == 0).all()
    assert (x == I16_MIN).any(axis=(1, 2)).sum() > 30


def test_fuzz_c_kernels_10k_windows_sanitized_and_bit_exact(tmp_path: Path):
    totals = fuzz(tmp_path, cases=10, windows_per_case=1000)
    assert totals["windows"] == 10_000


@pytest.mark.slow
def test_fuzz_c_kernels_100k_windows_sanitized_and_bit_exact(tmp_path: Path):
    totals = fuzz(tmp_path, cases=40, windows_per_case=2500)
    assert totals["windows"] == 100_000


def test_fuzz_fast_state_update_3k_windows_sanitized_and_bit_exact(tmp_path: Path):
    """The fast path (default fixed point) under the same attack, every format."""
    totals = fuzz(tmp_path, cases=6, windows_per_case=500, fast=True, first_case=100)
    assert totals["windows"] == 3_000


def test_fuzz_cnn_kernels_2k_windows_sanitized_and_bit_exact(tmp_path: Path):
    assert fuzz_cnn(tmp_path, cases=5, windows_per_case=400) == 2_000


@pytest.mark.slow
def test_fuzz_cnn_kernels_10k_windows_sanitized_and_bit_exact(tmp_path: Path):
    assert fuzz_cnn(tmp_path, cases=10, windows_per_case=1000) == 10_000
