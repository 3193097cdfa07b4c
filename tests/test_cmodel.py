"""export.cmodel: integer-only sparse FastGRNN in C, bit-exact with its numpy reference."""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess

import numpy as np
import pytest

from export import cmodel
from export.cmodel import reference
from export.cmodel.codegen import C_DIR, matrix_view_definition
from export.cmodel.kernels import KERNELS, kernel_sources

CHANNELS = ["body_acc_x", "body_acc_y", "body_acc_z", "body_gyro_x", "body_gyro_y",
            "body_gyro_z", "total_acc_x", "total_acc_y", "total_acc_z"]
WARN = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic"]
SYN_MEAN = np.array([0, 0, 0, 0, 0, 0, 0.8, 0.0, 0.1])
SYN_STD = np.array([0.2, 0.2, 0.2, 0.4, 0.4, 0.3, 0.4, 0.3, 0.3])
needs_gcc = pytest.mark.skipif(shutil.which("gcc") is None, reason="host gcc not installed")


def random_params(seed: int = 0, *, hidden: int = 80, w_rank: int | None = 5,
                  u_rank: int | None = 40, classes: int = 2, sparsity: float = 0.9,
                  gate: str = "sigmoid", update: str = "tanh") -> dict:
    """FastGRNN params of the HAR-2 shape, N(0, 0.1^2), globally magnitude-pruned."""
    r = np.random.default_rng(seed)
    d = 9
    p: dict = {}
    if w_rank:
        p["W1"], p["W2"] = r.normal(0, 0.3, (d, w_rank)), r.normal(0, 0.3, (w_rank, hidden))
    else:
        p["W"] = r.normal(0, 0.3, (d, hidden))
    if u_rank:
        p["U1"], p["U2"] = r.normal(0, 0.1, (hidden, u_rank)), r.normal(0, 0.1, (u_rank, hidden))
    else:
        p["U"] = r.normal(0, 0.1, (hidden, hidden))
    p["dense_kernel"] = r.normal(0, 1.0, (hidden, classes))
    flat = np.concatenate([np.abs(v).ravel() for v in p.values()])
    thr = np.sort(flat)[int(sparsity * flat.size)]
    p = {k: np.where(np.abs(v) >= thr, v, 0.0).astype(np.float32) for k, v in p.items()}
    p.update(bias_gate=(1 + r.normal(0, 0.5, hidden)).astype(np.float32),
             bias_update=r.normal(0, 0.5, hidden).astype(np.float32),
             zeta=np.float32(1.0), nu=np.float32(-4.0),
             dense_bias=np.zeros(classes, np.float32),
             gate_nonlinearity=gate, update_nonlinearity=update)
    return p


def synthetic_windows(n: int, seed: int) -> np.ndarray:
    """Raw windows (n, 128, 9): smooth AR(1) noise around SYN_MEAN with SYN_STD spread."""
    r = np.random.default_rng(seed)
    e = r.normal(0, 1, (n, 128, 9))
    x = np.zeros_like(e)
    for t in range(128):
        x[:, t] = 0.8 * (x[:, t - 1] if t else 0) + 0.6 * e[:, t]
    amp = r.uniform(0.3, 2.0, (n, 1, 9))
    return (SYN_MEAN + SYN_STD * x * amp).astype(np.float32)


def centre(params: dict, mean, std, windows) -> dict:
    """Set dense_bias so the float model splits ``windows`` about evenly between classes."""
    _, logits = cmodel.float_predict(params, (windows - mean) / std)
    params = dict(params)
    params["dense_bias"] = -np.median(logits, axis=0).astype(np.float32)
    return params


def build(out: pathlib.Path, im, name: str, flags: list[str] | None = None,
          cc: str = "gcc", kernels: str = "fast") -> pathlib.Path:
    """Generate the model (its ``kernels`` build) and build the host driver; returns the
    executable."""
    paths = cmodel.generate_c(im, out, name, provenance={"test": name}, kernels=kernels)
    exe = out / f"drv_{name}"
    cmd = [cc, *WARN, "-O1", *(flags or []), "-DEP_MODEL_DEFAULT_ALIASES",
           "-include", paths["header"].name, "-I", str(out), "-I", str(C_DIR),
           str(C_DIR / "ep_host_driver.c"), str(paths["source"]),
           *map(str, kernel_sources(kernels)), str(C_DIR / "ep_cnn.c"), "-o", str(exe)]
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    return exe


def run(exe: pathlib.Path, x16: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    out = subprocess.run([str(exe)], input=x16.astype("<i2").tobytes(), capture_output=True,
                         check=True).stdout.decode()
    rows = np.array([[int(v) for v in line.split()] for line in out.splitlines()])
    return rows[:, 0], rows[:, 1:]


def assert_bit_exact(exe, im, x16) -> None:
    c_cls, c_scores = run(exe, x16)
    r_cls, r_scores = cmodel.reference_predict(im, x16)
    assert c_cls.shape == (len(x16),)
    np.testing.assert_array_equal(c_scores, r_scores)
    np.testing.assert_array_equal(c_cls, r_cls)


@pytest.fixture(scope="module")
def syn():
    cal = synthetic_windows(96, seed=1)
    params = centre(random_params(0), SYN_MEAN, SYN_STD, cal)
    im = cmodel.quantize_fastgrnn(params, SYN_MEAN, SYN_STD, cal)
    return params, im, synthetic_windows(24, seed=2)


@pytest.fixture(scope="module")
def uci(uci_mirror):
    xtr = np.stack([np.load(uci_mirror / f"{c}_train.npy", mmap_mode="r")[::16] for c in CHANNELS],
                   -1).astype(np.float32)
    xte = np.stack([np.load(uci_mirror / f"{c}_test.npy", mmap_mode="r")[::30] for c in CHANNELS],
                   -1).astype(np.float32)
    yte = np.isin(np.load(uci_mirror / "y_test.npy")[::30], [2, 4, 6]).astype(np.int64)
    mean, std = xtr.reshape(-1, 9).mean(0), xtr.reshape(-1, 9).std(0)
    return xtr, xte, yte, mean, std


# ---------------------------------------------------------------- bit-exact C vs numpy
@needs_gcc
def test_c_matches_reference_synthetic(syn, tmp_path):
    _, im, x = syn
    assert_bit_exact(build(tmp_path, im, "syn"), im, cmodel.quantize_input(im, x))


@needs_gcc
@pytest.mark.parametrize("kernels", KERNELS)
def test_c_matches_reference_under_sanitizers(syn, tmp_path, kernels):
    _, im, x = syn
    try:
        exe = build(tmp_path, im, "asan", ["-fsanitize=address,undefined",
                                           "-fno-sanitize-recover=all", "-g"], kernels=kernels)
    except subprocess.CalledProcessError as e:
        pytest.skip(f"sanitizer runtime unavailable: {e.stderr.strip()[:120]}")
    assert_bit_exact(exe, im, cmodel.quantize_input(im, x[:8]))


@needs_gcc
@pytest.mark.needs_uci
def test_c_matches_reference_on_uci_windows(uci, tmp_path):
    xtr, xte, _, mean, std = uci
    params = centre(random_params(3), mean, std, xtr)
    im = cmodel.quantize_fastgrnn(params, mean, std, xtr)
    assert_bit_exact(build(tmp_path, im, "uci"), im, cmodel.quantize_input(im, xte[:48]))


CONFIGS = {
    "dense": dict(),
    "csr8": dict(full_rank=True, gate="quantSigm", update="quantTanh"),
    "csr16": dict(state_bits=8),
    "bitmask": dict(lut_shift=0, full_rank=True),
    "rle4": dict(lut_shift=3, gate="quantSigm"),
    "csr8n": dict(hidden=12, u_rank=8),  # row counts <= 15; the default fixed point
    "rowmask": dict(u_rank=8, only=("w2", "u2")),  # rows of <= 8 columns (<= 5: W2)
}


@needs_gcc
@pytest.mark.parametrize("kernels", KERNELS)
@pytest.mark.parametrize("fmt", list(CONFIGS))
def test_every_format_in_a_whole_model(fmt, tmp_path, kernels):
    """Each format in a whole model, through both kernel builds (fast: its Cortex-M paths'
    portable twins on the host; small: the reference), bit-exact with numpy."""
    cfg = dict(CONFIGS[fmt])
    full = cfg.pop("full_rank", False)
    nl = {k: cfg.pop(k) for k in ("gate", "update") if k in cfg}
    shape = {"hidden": cfg.pop("hidden", 80), "u_rank": cfg.pop("u_rank", 40)}
    only = cfg.pop("only", cmodel.quant.MATRICES)
    params = random_params(5, hidden=shape["hidden"], w_rank=None if full else 5,
                           u_rank=None if full else shape["u_rank"], sparsity=0.7, **nl)
    cal = synthetic_windows(32, seed=6)
    im = cmodel.quantize_fastgrnn(centre(params, SYN_MEAN, SYN_STD, cal), SYN_MEAN, SYN_STD,
                                  cal, formats=dict.fromkeys(only, fmt), **cfg)
    assert {s.format for k, s in im.matrices.items() if k in only and s is not None} == {fmt}
    x16 = cmodel.quantize_input(im, synthetic_windows(6, seed=7))
    assert_bit_exact(build(tmp_path, im, f"m_{fmt}", kernels=kernels), im, x16)


# ---------------------------------------------------------------- sparse formats
def edge_matrices() -> dict[str, np.ndarray]:
    r = np.random.default_rng(11)
    rand = r.integers(-127, 128, (13, 40)) * (r.random((13, 40)) < 0.15)
    rand[[0, 4, 12]] = 0  # empty rows, first and last included
    wide = np.zeros((3, 600), dtype=np.int64)  # > 256 columns, gaps far beyond 15
    wide[0, [0, 299, 599]] = [5, -7, 127]
    wide[2, 450] = -127
    return {
        "rand": rand,
        "zero": np.zeros((7, 9)),
        "full": r.integers(1, 128, (5, 9)) * r.choice([-1, 1], (5, 9)),
        "wide": wide,
        "onebyone": np.array([[-3]]),
        "narrow5": r.integers(-127, 128, (11, 5)) * (r.random((11, 5)) < 0.5),  # 31 patterns
        "narrow8": r.integers(-127, 128, (7, 8)) * (r.random((7, 8)) < 0.4),
        "narrow3": r.integers(-127, 128, (9, 3)) * (r.random((9, 3)) < 0.6),
    }


@needs_gcc
@pytest.mark.parametrize("kernels", KERNELS)
def test_spmv_kernel_every_format_and_edge_case(tmp_path, kernels):
    """ep_spmv of both builds on every format: empty rows (first and last), an all-zero
    matrix, a fully dense one, > 256 columns, one element, rows of 3/5/8 columns."""
    mats = {k: v.astype(np.int8) for k, v in edge_matrices().items()}
    r = np.random.default_rng(12)
    defs, calls, expect = [], [], []
    for name, m in mats.items():
        x = r.integers(-32768, 32768, m.shape[1]).astype(np.int16)
        defs.append(f"static const int16_t x_{name}[{m.shape[1]}] = {{"
                    + ", ".join(map(str, x)) + "};\n")
        want = (m.astype(np.int64) @ x.astype(np.int64)).tolist()
        for fmt, size in cmodel.format_sizes(m).items():
            if size is None:
                continue
            s = cmodel.encode(m, fmt)
            assert s.nbytes == size
            np.testing.assert_array_equal(s.to_dense(), m)
            d, init = matrix_view_definition(f"{name}_{fmt}", s)
            defs.append(d + f"static const ep_matrix_t {name}_{fmt} = {init};\n")
            calls.append(f"    run(&{name}_{fmt}, x_{name});")
            expect.append(want)
    src = (f'#include <stdio.h>\n#include "ep_kernels.h"\n{"".join(defs)}'
           "static int32_t y[64];\n"
           "static void run(const ep_matrix_t *m, const int16_t *x) {\n"
           "    unsigned r;\n    for (r = 0; r < 64; r++) { y[r] = 12345; }\n"
           "    ep_spmv(m, x, y);\n"
           '    for (r = 0; r < m->rows; r++) { printf("%ld ", (long)y[r]); }\n'
           '    printf("\\n");\n}\n'
           "int main(void) {\n" + "\n".join(calls) + "\n    return 0;\n}\n")
    (tmp_path / "t.c").write_text(src)
    exe = tmp_path / "t"
    small = ["-DEP_KERNELS_SMALL"] if kernels == "small" else []
    subprocess.run(["gcc", *WARN, *small, "-fsanitize=address,undefined",
                    "-fno-sanitize-recover=all", "-I", str(C_DIR), str(tmp_path / "t.c"),
                    *map(str, kernel_sources(kernels)), "-o", str(exe)], check=True,
                   capture_output=True, text=True)
    lines = subprocess.run([str(exe)], check=True, capture_output=True,
                           text=True).stdout.splitlines()
    assert [[int(v) for v in line.split()] for line in lines] == expect


def test_picker_chooses_each_format_by_exact_bytes():
    r = np.random.default_rng(4)
    cases = {
        "dense": r.integers(1, 100, (8, 8)),
        "csr8": np.eye(10, 200, dtype=np.int64) * 3 + (np.arange(200) % 10 == 0) * (
            np.arange(10)[:, None] == 0) * 3,                        # a row of 20 > 15
        "csr8n": np.eye(10, 200, dtype=np.int64) * 3,               # 1 per row, long gaps
        "csr16": np.eye(4, 1000, k=500, dtype=np.int64) * 3,          # cols > 256
        "bitmask": r.integers(1, 100, (16, 16)) * (np.arange(256).reshape(16, 16) % 2),
        "rle4": r.integers(1, 100, (40, 80)) * (r.random((40, 80)) < 0.1),
    }
    for want, m in cases.items():
        sizes = cmodel.format_sizes(m.astype(np.int8))
        assert cmodel.pick_format(m.astype(np.int8)) == want, sizes
        assert sizes[want] == min(s for s in sizes.values() if s is not None)
    assert cmodel.format_sizes(np.zeros((300, 300), np.int8))["csr8"] is None  # cols > 256


@needs_gcc
@pytest.mark.parametrize("kernels", KERNELS)
@pytest.mark.parametrize("pre_frac, lut_shift", [(12, 1), (12, 0), (8, 3), (2, 1), (14, 4)])
def test_nonlinearities_c_match_reference(pre_frac, lut_shift, tmp_path, kernels):
    """ep_nonlinearity (the generic path; the built-in table for lut_shift 1) against
    reference.nonlinearity at the clamps, the table knots and their neighbours, random."""
    cal = synthetic_windows(8, seed=3)
    im = cmodel.quantize_fastgrnn(random_params(2, hidden=8, u_rank=4), SYN_MEAN, SYN_STD, cal,
                                  pre_frac=pre_frac, lut_shift=lut_shift)
    src = cmodel.generate_c(im, tmp_path, "nl", kernels=kernels)["source"].read_text()
    assert ("EP_LUT_BUILTIN" in src) == (lut_shift == 1)
    one, lim, step = 1 << pre_frac, 8 << pre_frac, 1 << (pre_frac - lut_shift)
    knots = np.arange(-lim - 2 * step, lim + 3 * step, step)
    x = np.concatenate([knots, knots + 1, knots - 1, knots + step // 2,
                        [0, 1, -1, 4 * one, -4 * one, 4 * one - 1, 1 - 4 * one, 2**30, -2**30],
                        np.random.default_rng(1).integers(-(2**26), 2**26, 2000)])
    (tmp_path / "t.c").write_text(
        '#include <stdio.h>\n#include "nl_model.c"\n'
        "int main(void) {\n    long v;\n    int k;\n"
        '    while (scanf("%ld", &v) == 1) {\n'
        "        for (k = 0; k < 4; k++) {\n"
        '            printf("%ld ", (long)ep_nonlinearity(k, (int32_t)v, &ep_nl.params));\n'
        '        }\n        printf("\\n");\n    }\n    return 0;\n}\n')
    exe = tmp_path / "t"
    subprocess.run(["gcc", *WARN, "-fsanitize=address,undefined", "-fno-sanitize-recover=all",
                    "-I", str(tmp_path), "-I", str(C_DIR), str(tmp_path / "t.c"),
                    *map(str, kernel_sources(kernels)), "-o", str(exe)], check=True,
                   capture_output=True, text=True)
    out = subprocess.run([str(exe)], input="\n".join(map(str, x)), check=True, capture_output=True,
                         text=True).stdout
    got = np.array([[int(v) for v in line.split()] for line in out.splitlines()])
    for k, kind in enumerate(("sigmoid", "tanh", "quantSigm", "quantTanh")):
        np.testing.assert_array_equal(got[:, k], reference.nonlinearity(kind, x, im), kind)
    sig = reference.nonlinearity("sigmoid", x, im)
    assert sig.min() >= 0 and sig.max() <= 32768
    np.testing.assert_array_equal(sig[x == 0], 16384)


def test_matrix_budget_picks_the_fastest_formats_that_fit():
    params = random_params(4, sparsity=0.9)
    cal = synthetic_windows(16, seed=2)
    small = cmodel.quantize_fastgrnn(params, SYN_MEAN, SYN_STD, cal, speed_slack=0.0)
    least = sum(s.nbytes for s in small.matrices.values() if s is not None)

    def est(im) -> float:
        return sum(cmodel.sparse.estimate_instructions(s.to_dense(), s.format)
                   * (1 / 128 if k == "dense" else 1) for k, s in im.matrices.items()
                   if s is not None)

    last = None
    for budget in (least - 1, least, least + 200, least + 600, 10**6):
        im = cmodel.quantize_fastgrnn(params, SYN_MEAN, SYN_STD, cal, matrix_budget=budget)
        total = sum(s.nbytes for s in im.matrices.values() if s is not None)
        assert total <= max(budget, least)
        if budget < least:  # nothing fits: the smallest formats
            assert {k: s.format for k, s in im.matrices.items()} == {
                k: s.format for k, s in small.matrices.items()}
        if last is not None:
            assert est(im) <= last  # a larger budget is never slower (by the model)
        last = est(im)
    forced = cmodel.quantize_fastgrnn(params, SYN_MEAN, SYN_STD, cal, matrix_budget=10**6,
                                      formats={"u2": "rle4"})
    assert forced.matrices["u2"].format == "rle4"
    assert cmodel.sparse.estimate_instructions(np.ones((3, 300), np.int8), "csr8") is None


# ---------------------------------------------------------------- C/C++, ARM, bytes
@needs_gcc
@pytest.mark.skipif(shutil.which("g++") is None, reason="g++ not installed")
def test_generated_code_compiles_as_cpp(syn, tmp_path):
    _, im, _ = syn
    paths = cmodel.generate_c(im, tmp_path, "cpp")
    (tmp_path / "use.cpp").write_text(
        '#include "cpp_model.h"\nint main() {\n'
        "    static int16_t w[EP_CPP_INPUT_LEN];\n"
        "    static int32_t scratch[(EP_CPP_SCRATCH_BYTES + 3) / 4];\n"
        "    int32_t s[EP_CPP_CLASSES];\n    return ep_cpp_predict(w, scratch, s) < 0;\n}\n")
    flags = ["-Wall", "-Wextra", "-Werror", "-I", str(tmp_path), "-I", str(C_DIR)]
    sources = [paths["source"], *kernel_sources()]
    for src in sources:
        subprocess.run(["g++", "-x", "c++", *flags, "-c", str(src), "-o",
                        str(tmp_path / (src.stem + ".o"))], check=True, capture_output=True)
    subprocess.run(["g++", *flags, str(tmp_path / "use.cpp"),
                    *(str(tmp_path / (src.stem + ".o")) for src in sources), "-o",
                    str(tmp_path / "use")],
                   check=True, capture_output=True)
    assert subprocess.run([str(tmp_path / "use")]).returncode == 0


@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None,
                    reason="ARM toolchain (arm-none-eabi-gcc) not installed")
def test_cortex_m0plus_soft_float_build_uses_no_float(syn, tmp_path):
    _, im, _ = syn
    paths = cmodel.generate_c(im, tmp_path, "m0")
    for src in (paths["source"], *kernel_sources(), C_DIR / "ep_cnn.c"):
        obj = tmp_path / (src.stem + ".o")
        subprocess.run(["arm-none-eabi-gcc", *WARN, "-Os", "-mcpu=cortex-m0plus", "-mthumb",
                        "-mfloat-abi=soft", "-I", str(tmp_path), "-I", str(C_DIR), "-c",
                        str(src), "-o", str(obj)], check=True, capture_output=True)
        syms = subprocess.run(["arm-none-eabi-nm", str(obj)], check=True, capture_output=True,
                              text=True).stdout
        bad = [s for s in syms.split() if s.startswith(("__aeabi_f", "__aeabi_d"))]
        assert not bad, f"{src.name} needs float routines {bad}"
    rep = cmodel.measure_bytes(paths["source"], "arm-cortex-m4")
    assert 0 < rep.model_bytes and rep.ram_bytes == rep.scratch_bytes


@needs_gcc
def test_model_bytes_of_90pct_fastgrnn_fit_1_5_kb(syn, tmp_path):
    params, im, _ = syn
    assert im.meta["sparsity"] == pytest.approx(0.9, abs=0.002)
    paths = cmodel.generate_c(im, tmp_path, "har2")
    rep = cmodel.measure_bytes(paths["source"])
    matrix_bytes = sum(s.nbytes for s in im.matrices.values() if s is not None)
    assert matrix_bytes < rep.model_bytes <= 1536, rep
    assert rep.ram_bytes == rep.scratch_bytes == cmodel.codegen.scratch_bytes(im)
    assert rep.code_bytes > 0 and rep.toolchain == "host-gcc"
    assert set(rep.as_dict()) >= {"model_bytes", "code_bytes", "ram_bytes", "toolchain"}


def test_generated_files_are_deterministic(syn, tmp_path):
    params, im, _ = syn
    a = cmodel.generate_c(im, tmp_path / "a", "det", provenance={"sparsity": 0.9})
    im2 = cmodel.quantize_fastgrnn(params, SYN_MEAN, SYN_STD, synthetic_windows(96, seed=1))
    b = cmodel.generate_c(im2, tmp_path / "b", "det", provenance={"sparsity": 0.9})
    for key in ("header", "source", "manifest"):
        assert a[key].read_bytes() == b[key].read_bytes()
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == [
        "det_model.c", "det_model.h", "det_model.json"]


# ---------------------------------------------------------------- accuracy
def test_integer_model_agrees_with_float_forward(syn):
    params, im, _ = syn
    x = synthetic_windows(64, seed=9)
    f_cls, f_logits = cmodel.float_predict(params, (x - SYN_MEAN) / SYN_STD)
    i_cls, i_scores = cmodel.reference_predict(im, cmodel.quantize_input(im, x))
    assert 0.2 < f_cls.mean() < 0.8  # both classes occur
    agree = float((f_cls == i_cls).mean())
    err = np.abs(i_scores * im.score_scale - f_logits).max() / np.abs(f_logits).max()
    print(f"integer vs float label agreement {agree:.3f}, max logit error {err:.3%}")
    assert agree >= 0.9 and err < 0.1


@pytest.mark.needs_uci
def test_integer_model_agrees_with_float_on_uci(uci):
    xtr, xte, _, mean, std = uci
    params = centre(random_params(3), mean, std, xtr)
    im = cmodel.quantize_fastgrnn(params, mean, std, xtr)
    f_cls, _ = cmodel.float_predict(params, (xte - mean) / std)
    i_cls, _ = cmodel.reference_predict(im, cmodel.quantize_input(im, xte))
    agree = float((f_cls == i_cls).mean())
    print(f"UCI test windows: integer vs float label agreement {agree:.3f}")
    assert agree >= 0.9


# ---------------------------------------------------------------- errors
@pytest.mark.parametrize("mutate, match", [
    (lambda p: p.__setitem__("U1", np.full_like(p["U1"], np.nan)), "'U1' holds NaN or inf"),
    (lambda p: p.__setitem__("W2", np.zeros((5, 79))), "'W2' has shape"),
    (lambda p: p.__setitem__("update_nonlinearity", "relu"), "unsupported update nonlinearity"),
    (lambda p: p.pop("nu"), "lack 'nu'"),
    (lambda p: p.__setitem__("dense_bias", np.array([np.inf, 0.0])), "'dense_bias' holds NaN"),
])
def test_bad_params_raise_one_line_value_error(mutate, match):
    p = random_params(0)
    mutate(p)
    with pytest.raises(ValueError, match=match) as e:
        cmodel.quantize_fastgrnn(p, SYN_MEAN, SYN_STD, synthetic_windows(4, 0))
    assert "\n" not in str(e.value)


def test_bad_calibration_and_inputs_raise(syn):
    _, im, _ = syn
    p = random_params(0)
    with pytest.raises(ValueError, match="calibration windows"):
        cmodel.quantize_fastgrnn(p, SYN_MEAN, SYN_STD, np.zeros((4, 128, 8)))
    with pytest.raises(ValueError, match="mean and std"):
        cmodel.quantize_fastgrnn(p, SYN_MEAN[:3], SYN_STD, synthetic_windows(4, 0))
    with pytest.raises(ValueError, match="formats names unknown"):
        cmodel.quantize_fastgrnn(p, SYN_MEAN, SYN_STD, synthetic_windows(4, 0), formats={"q": "x"})
    with pytest.raises(ValueError, match="int16"):
        cmodel.reference_predict(im, np.zeros((1, 128, 9), np.float32))
    with pytest.raises(ValueError, match="NaN"):
        cmodel.quantize_input(im, np.full((1, 128, 9), np.nan))
    with pytest.raises(ValueError, match="cannot store"):
        cmodel.encode(np.ones((2, 300), np.int8), "csr8")


def test_bad_name_and_unwritable_path(syn, tmp_path):
    _, im, _ = syn
    with pytest.raises(ValueError, match="not a C identifier"):
        cmodel.generate_c(im, tmp_path, "har-2")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OSError, match="cannot write the C model"):
        cmodel.generate_c(im, blocker / "sub", "ok")
    if os.geteuid() != 0:
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o500)
        with pytest.raises(OSError, match="cannot write the C model"):
            cmodel.generate_c(im, ro, "ok")
        assert list(ro.iterdir()) == []
