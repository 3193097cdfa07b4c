"""export/c/ep_cnn.c: integer CNN layers, bit-exact with export.cmodel.reference."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest

from export import cmodel
from export.cmodel import reference as ref
from export.cmodel.codegen import C_DIR, c_array, matrix_view_definition
from export.cmodel.kernels import kernel_sources

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None, reason="host gcc not installed")
WARN = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic"]


def _sparse_int8(r, shape, density):
    return (r.integers(-127, 128, shape) * (r.random(shape) < density)).astype(np.int8)


def _list(a) -> str:
    return ", ".join(str(int(v)) for v in np.asarray(a).reshape(-1))


def test_cnn_layers_match_reference(tmp_path):
    """conv(same, relu) -> maxpool -> conv(valid, stride 2) -> GAP -> dense relu -> logits."""
    r = np.random.default_rng(0)
    t_in, c_in, k, c1, c2, units, classes = 32, 9, 5, 16, 24, 12, 3
    x = r.integers(-3000, 3000, (t_in, c_in)).astype(np.int16)
    w1 = _sparse_int8(r, (c1, k * c_in), 0.2)
    w1[3] = 0  # an empty output channel
    w2 = _sparse_int8(r, (c2, k * c1), 0.1)
    w3 = _sparse_int8(r, (units, c2), 0.5)
    w4 = _sparse_int8(r, (classes, units), 1.0)
    b1, b2 = r.integers(-5000, 5000, c1), r.integers(-5000, 5000, c2)
    b3, b4 = r.integers(-5000, 5000, units), r.integers(-5000, 5000, classes)
    rq = [cmodel.Requant.from_real(m, "t") for m in (2e-3, 1e-2, 1 / 12, 3e-2)]
    t1 = t_in                                  # 'same', stride 1
    tp = (t1 - 2) // 2 + 1                     # maxpool 2, stride 2
    t2 = (tp - k) // 2 + 1                     # 'valid', stride 2

    y1 = ref.conv1d(x[None], w1, b1, rq[0].mult, rq[0].shift, True, k, 1, (k - 1) // 2, t1)
    yp = ref.maxpool1d(y1, 2, 2)
    y2 = ref.conv1d(yp, w2, b2, rq[1].mult, rq[1].shift, True, k, 2, 0, t2)
    g = ref.gap1d(y2, rq[2].mult, rq[2].shift)
    y3 = ref.dense(g, w3, b3, rq[3].mult, rq[3].shift, True)
    logits = ref.dense(y3, w4, b4, 0, 0, False, logits=True)
    assert y1.max() > 0 and (y1 == 0).any() and g.any() and y3.any()

    defs, inits = [], {}
    for name, w, fmt in (("w1", w1, "rle4"), ("w2", w2, "csr8"), ("w3", w3, "bitmask"),
                         ("w4", w4, "dense")):
        d, inits[name] = matrix_view_definition(name, cmodel.encode(w, fmt))
        defs.append(d)
    for name, b in (("b1", b1), ("b2", b2), ("b3", b3), ("b4", b4)):
        defs.append(c_array(name, np.asarray(b, dtype=np.int32)))
    defs.append(c_array("x", x))
    src = f"""#include <stdio.h>
#include "ep_kernels.h"
{"".join(defs)}
static const ep_conv1d_t conv1 = {{ {inits["w1"]}, b1, {rq[0].mult}, {t_in}, {c_in}, {k}, 1,
                                   {(k - 1) // 2}, {t1}, {rq[0].shift}, 1 }};
static const ep_conv1d_t conv2 = {{ {inits["w2"]}, b2, {rq[1].mult}, {tp}, {c1}, {k}, 2, 0,
                                   {t2}, {rq[1].shift}, 1 }};
static const ep_matrix_t w3m = {inits["w3"]};
static const ep_matrix_t w4m = {inits["w4"]};
static int16_t a[{t1 * c1}], b[{tp * c1}], c[{t2 * c2}], g[{c2}], d[{units}], patch[{k * c1}];
static int32_t acc[{max(c1, c2, units)}];
static void dump(const int16_t *v, unsigned n) {{
    unsigned i;
    for (i = 0; i < n; i++) {{ printf("%d ", v[i]); }}
    printf("\\n");
}}
int main(void) {{
    unsigned i;
    ep_conv1d(&conv1, x, a, patch, acc);
    dump(a, sizeof a / sizeof a[0]);
    ep_maxpool1d(a, {t1}, {c1}, 2, 2, b);
    ep_conv1d(&conv2, b, c, patch, acc);
    dump(c, sizeof c / sizeof c[0]);
    ep_gap1d(c, {t2}, {c2}, {rq[2].mult}, {rq[2].shift}, g);
    dump(g, {c2});
    ep_dense(&w3m, b3, {rq[3].mult}, {rq[3].shift}, 1, g, d, acc);
    dump(d, {units});
    ep_dense(&w4m, b4, 0, 0, 0, d, NULL, acc);
    for (i = 0; i < {classes}; i++) {{ printf("%ld ", (long)acc[i]); }}
    printf("\\n");
    return 0;
}}
"""
    (tmp_path / "cnn.c").write_text(src)
    exe = tmp_path / "cnn"
    subprocess.run(["gcc", *WARN, "-fsanitize=address,undefined", "-fno-sanitize-recover=all",
                    "-I", str(C_DIR), str(tmp_path / "cnn.c"), str(C_DIR / "ep_cnn.c"),
                    *map(str, kernel_sources()), "-o", str(exe)],
                   check=True, capture_output=True, text=True)
    out = subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout
    got = [np.array([int(v) for v in line.split()]) for line in out.splitlines()]
    for want, have in zip((y1, y2, g, y3, logits), got, strict=True):
        np.testing.assert_array_equal(have, np.asarray(want).reshape(-1))


def test_maxpool_and_gap_reference_edge_cases():
    x = np.arange(2 * 5 * 3).reshape(2, 5, 3)
    assert ref.maxpool1d(x, 2, 2).shape == (2, 2, 3)
    assert ref.maxpool1d(x, 6, 1).shape == (2, 0, 3)
    one = cmodel.Requant.from_real(1 / 5, "gap")
    np.testing.assert_array_equal(ref.gap1d(x, one.mult, one.shift), np.rint(x.mean(axis=1)))


# ---------------------------------------------------------------- whole generated CNN
def har_cnn_layers(seed: int = 0, sparsity: float = 0.9, padding: str = "same") -> list[dict]:
    """Random layers of edgeprune.models.har_cnn's shape, globally magnitude-pruned."""
    r = np.random.default_rng(seed)
    convs = [(9, 16), (16, 32), (32, 64)]
    layers: list[dict] = []
    for i, (cin, cout) in enumerate(convs):
        layers.append({"type": "conv1d", "name": f"conv{i}", "padding": padding, "stride": 1,
                       "relu": True, "kernel": r.normal(0, (2 / (5 * cin)) ** 0.5, (5, cin, cout)),
                       "bias": r.normal(0, 0.05, cout)})
        if i < 2:
            layers.append({"type": "maxpool1d", "name": f"pool{i}", "pool": 2, "stride": 2})
    layers += [{"type": "gap1d", "name": "gap"},
               {"type": "dense", "name": "dense", "relu": True,
                "kernel": r.normal(0, 0.25, (64, 32)), "bias": r.normal(0, 0.05, 32)},
               {"type": "dense", "name": "logits", "relu": False,
                "kernel": r.normal(0, 0.25, (32, 2)), "bias": np.zeros(2)}]
    flat = np.concatenate([np.abs(lay["kernel"]).ravel() for lay in layers if "kernel" in lay])
    thr = np.sort(flat)[int(sparsity * flat.size)]
    for lay in layers:
        if "kernel" in lay:
            lay["kernel"] = np.where(np.abs(lay["kernel"]) >= thr, lay["kernel"], 0.0)
    return layers


def _windows(n, seed):
    from test_cmodel import SYN_MEAN, SYN_STD, synthetic_windows

    return synthetic_windows(n, seed), SYN_MEAN, SYN_STD


@pytest.mark.parametrize("kernels", ["fast", "small"])
@pytest.mark.parametrize("padding, formats", [("same", None), ("valid", {"conv1": "csr16"})])
def test_generated_cnn_matches_reference(tmp_path, padding, formats, kernels):
    from test_cmodel import build, run

    cal, mean, std = _windows(48, 1)
    layers = har_cnn_layers(padding=padding)
    im = cmodel.quantize_cnn(layers, mean, std, cal, formats=formats)
    x = cmodel.quantize_input(im, _windows(12, 2)[0])
    exe = build(tmp_path, im, "cnn", kernels=kernels)
    c_cls, c_scores = run(exe, x)
    r_cls, r_scores = cmodel.reference_predict(im, x)
    np.testing.assert_array_equal(c_scores, r_scores)
    np.testing.assert_array_equal(c_cls, r_cls)
    f_logits = cmodel.cnn_float_forward(layers, (_windows(12, 2)[0] - mean) / std)
    err = np.abs(r_scores * im.score_scale - f_logits).max() / np.abs(f_logits).max()
    assert err < 0.05, err
    rep = cmodel.measure_bytes(tmp_path / "cnn_model.c")
    print(f"HAR CNN 90% ({padding}): {rep.model_bytes} B model, {rep.code_bytes} B code, "
          f"{rep.ram_bytes} B RAM; formats "
          f"{[(lay.name, lay.matrix.format) for lay in im.layers if lay.matrix is not None]}")
    assert rep.model_bytes < 4096 and rep.ram_bytes == rep.scratch_bytes


def test_cnn_layer_errors_name_the_layer():
    cal, mean, std = _windows(4, 1)
    layers = har_cnn_layers()
    with pytest.raises(ValueError, match="layer 'bn'.*not supported"):
        cmodel.quantize_cnn(layers[:2] + [{"type": "batchnorm", "name": "bn"}] + layers[2:],
                            mean, std, cal)
    bad = [dict(lay) for lay in layers]
    bad[0]["kernel"] = np.full_like(bad[0]["kernel"], np.nan)
    with pytest.raises(ValueError, match="layer 'conv0': kernel holds NaN"):
        cmodel.quantize_cnn(bad, mean, std, cal)
    with pytest.raises(ValueError, match="last layer .* must be a Dense"):
        cmodel.quantize_cnn(layers[:-3], mean, std, cal)
    with pytest.raises(ValueError, match="does not take 9 channels"):
        cmodel.quantize_cnn(layers[2:], mean, std, cal)


def test_cnn_layers_from_keras_har_cnn_and_unsupported_layer():
    keras = pytest.importorskip("tf_keras")
    from edgeprune.models import har_cnn

    layers = cmodel.cnn_layers_from_keras(har_cnn(seed=0))
    assert [lay["type"] for lay in layers] == ["conv1d", "maxpool1d", "conv1d", "maxpool1d",
                                               "conv1d", "gap1d", "dense", "dense"]
    x = np.random.default_rng(0).normal(size=(4, 128, 9)).astype(np.float32)
    model = har_cnn(seed=0)
    np.testing.assert_allclose(cmodel.cnn_float_forward(cmodel.cnn_layers_from_keras(model), x),
                               model(x).numpy(), rtol=1e-4, atol=1e-4)
    inp = keras.Input((128, 9))
    bn = keras.layers.BatchNormalization(name="bn0")(keras.layers.Conv1D(4, 3)(inp))
    with pytest.raises(ValueError, match="layer 'bn0' \\(BatchNormalization\\) is not supported"):
        cmodel.cnn_layers_from_keras(keras.Model(inp, bn))
