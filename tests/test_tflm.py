"""export.tflite on TFLite Micro: host runtime, arena size, C arrays, tflite-runtime 2.14."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess

import numpy as np
import pytest
from test_tflite import random_params as _params

import export.tflite as T  # noqa: I001  (sets TF_USE_LEGACY_KERAS before TensorFlow)

D, H, C, RW, RU, SEQ = 9, 80, 2, 5, 40, 128


@pytest.fixture(scope="module")
def windows() -> np.ndarray:
    return np.random.default_rng(3).normal(size=(16, SEQ, D)).astype(np.float32)


@pytest.fixture(scope="module")
def bundle(windows: np.ndarray) -> T.FastGRNNTFLite:
    return T.fastgrnn_to_tflite(_params(), "int8", windows[:8])


@pytest.fixture(scope="module")
def cnn_int8(windows: np.ndarray) -> bytes:
    import tf_keras as keras

    keras.utils.set_random_seed(0)
    m = keras.Sequential(
        [
            keras.Input((SEQ, D)),
            keras.layers.Conv1D(8, 5, activation="relu"),
            keras.layers.MaxPooling1D(4),
            keras.layers.Flatten(),
            keras.layers.Dense(C),
        ]
    )
    return T.keras_to_tflite(m, "int8", windows[:8])


def test_tflm_matches_litert(bundle: T.FastGRNNTFLite, cnn_int8: bytes, windows) -> None:
    r = T.compare_tflm_litert(bundle, windows)
    assert r["label_agreement"] == 1.0
    assert r["max_lsb_diff"] <= 4.0  # one step: ~0.2% of int8 h elements differ by <= 2 LSB
    r = T.compare_tflm_litert(cnn_int8, windows)
    assert r["label_agreement"] == 1.0 and r["max_lsb_diff"] <= 1.0


def test_tflm_runs_int16x8(windows) -> None:
    b = T.fastgrnn_to_tflite(_params(), "int16x8", windows[:4])
    r = T.compare_tflm_litert(b, windows[:6])
    assert r["label_agreement"] == 1.0 and r["max_abs_diff"] < 0.05


def test_arena_size(bundle: T.FastGRNNTFLite) -> None:
    a = T.tflm_arena_size(bundle.head)
    assert 0 < a["reported"] <= a["minimal"] < 4096 and a["minimal"] % 16 == 0
    out = T.predict_tflm(bundle, np.zeros((1, SEQ, D), np.float32), arena_size=64 * 1024)
    assert out.shape == (1, C)


def test_sparse_model_rejected_by_tflm(windows) -> None:
    p = _params()
    for k in ("U1", "U2"):
        p[k][np.abs(p[k]) < np.quantile(np.abs(p[k]), 0.9)] = 0
    sparse = T.fastgrnn_to_tflite(p, "float", sparse=True)
    with pytest.raises(ValueError, match="TFLM cannot run"):
        T.tflm_arena_size(sparse.step, search=False)


def test_c_array_compiles_and_matches(tmp_path, bundle: T.FastGRNNTFLite) -> None:
    gxx = shutil.which("g++")
    paths = T.write_tflm_array(
        bundle, tmp_path, "model_data", {"step": 6000, "head": 1300}, provenance="test bundle"
    )
    hdr = open(paths["h"]).read()
    for want in (
        "kTensorArenaSize = 6000;",
        "kHeadTensorArenaSize = 1300;",
        f"kSeqLen = {SEQ};",
        f"kHiddenSize = {H};",
        "kStepInputX",
        "kHScale",
        "// test bundle",
    ):
        assert want in hdr
    cc = open(paths["cc"]).read()
    assert "alignas(16) const unsigned char model_data[]" in cc
    assert T.read_c_array(cc, "model_data") == bundle.step
    assert T.read_c_array(cc, "model_data_head") == bundle.head
    # deterministic bytes
    first = open(paths["cc"], "rb").read(), open(paths["h"], "rb").read()
    T.write_tflm_array(
        bundle, tmp_path, "model_data", {"step": 6000, "head": 1300}, provenance="test bundle"
    )
    assert (open(paths["cc"], "rb").read(), open(paths["h"], "rb").read()) == first
    if gxx is None:
        pytest.skip("g++ not installed")
    main = tmp_path / "main.cc"
    main.write_text(
        '#include <cstdint>\n#include <cstdio>\n#include "model_data.h"\n'
        "int main() {\n"
        "  if (reinterpret_cast<std::uintptr_t>(model_data) % 16) return 3;\n"
        "  if (model_data_len != model_data_size) return 4;\n"
        "  std::fwrite(model_data, 1, model_data_len, stdout);\n  return 0;\n}\n"
    )
    subprocess.run(
        [gxx, "-std=c++17", "-Wall", "-Werror", "-c", paths["cc"], "-o", str(tmp_path / "m.o")],
        check=True,
    )
    subprocess.run(
        [gxx, "-std=c++17", str(main), str(tmp_path / "m.o"), "-o", str(tmp_path / "dump")],
        check=True,
        cwd=tmp_path,
    )
    out = subprocess.run([str(tmp_path / "dump")], capture_output=True, check=True).stdout
    assert out == bundle.step


def test_c_array_measures_arena(tmp_path, cnn_int8: bytes) -> None:
    paths = T.write_tflm_array(cnn_int8, tmp_path, "cnn_model")
    minimal = T.tflm_arena_size(cnn_int8)["minimal"]
    assert f"kTensorArenaSize = {-(-minimal // 16) * 16};" in open(paths["h"]).read()
    assert sorted(os.listdir(tmp_path)) == ["cnn_model.cc", "cnn_model.h"]


@pytest.mark.bad_input
def test_c_array_unwritable(tmp_path, cnn_int8: bytes) -> None:
    with pytest.raises(OSError, match="cannot write"):
        T.write_tflm_array(cnn_int8, tmp_path / "nope", arena_bytes=1024)
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        if not os.access(ro, os.W_OK):  # root ignores permissions: nothing to check then
            with pytest.raises(OSError, match="cannot write"):
                T.write_tflm_array(cnn_int8, ro, arena_bytes=1024)
            assert os.listdir(ro) == []
        # a "folder" that is a file
        (tmp_path / "afile").write_bytes(b"x")
        with pytest.raises(OSError, match="cannot write"):
            T.write_tflm_array(cnn_int8, tmp_path / "afile", arena_bytes=1024)
    finally:
        ro.chmod(stat.S_IRWXU)


@pytest.mark.bad_input
def test_c_array_bad_name_or_model(tmp_path, cnn_int8: bytes) -> None:
    with pytest.raises(ValueError, match="C identifier"):
        T.write_tflm_array(cnn_int8, tmp_path, "model-data", arena_bytes=1024)
    with pytest.raises(ValueError, match="not a TFLite flatbuffer"):
        T.write_tflm_array(b"not a model at all", tmp_path, arena_bytes=1024)
    assert os.listdir(tmp_path) == []


@pytest.mark.slow
def test_runtime214(tmp_path, bundle: T.FastGRNNTFLite, cnn_int8: bytes) -> None:
    cache = os.environ.get("EDGEPRUNE_CACHE")
    venv = os.path.join(cache, "tflite-runtime-2.14.0") if cache else tmp_path / "venv"
    try:
        T.runtime214_python(venv)
    except RuntimeError as exc:
        pytest.skip(str(exc))
    res = T.check_runtime214(
        [("step", bundle.step), ("head", bundle.head), ("cnn", cnn_int8)], cache=venv
    )
    for r in res:
        assert r["ok"], r
        assert r["max_abs_diff"] <= 1.0, r
