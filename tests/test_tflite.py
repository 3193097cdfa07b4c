"""export.tflite: float / int8 / sparse TFLite for FastGRNN (parameter dict) and a small CNN."""

from __future__ import annotations

import os

import numpy as np
import pytest

import export.tflite as T  # noqa: I001  (sets TF_USE_LEGACY_KERAS before TensorFlow)
from export.fastgrnn_params import FastGRNNParams
from export.tflite._predict import io_index, make_interpreter

D, H, C, RW, RU, SEQ = 9, 80, 2, 5, 40, 128


def random_params(seed: int = 0, sparsity: float = 0.0) -> dict[str, np.ndarray | float | str]:
    """FastGRNN (80, 5/40) parameters per CONTRACTS.md with random weights."""
    rng = np.random.default_rng(seed)
    p: dict = {
        "W1": rng.normal(0, 0.3, (D, RW)),
        "W2": rng.normal(0, 0.3, (RW, H)),
        "U1": rng.normal(0, 0.1, (H, RU)),
        "U2": rng.normal(0, 0.1, (RU, H)),
        "bias_gate": np.ones(H),
        "bias_update": np.zeros(H),
        "zeta": 1.0,
        "nu": -4.0,
        "dense_kernel": rng.normal(0, 1.0, (H, C)),
        "dense_bias": np.zeros(C),
        "gate_nonlinearity": "sigmoid",
        "update_nonlinearity": "tanh",
    }
    if sparsity:
        for k in ("W1", "W2", "U1", "U2", "dense_kernel"):
            v = p[k]
            v[np.abs(v) < np.quantile(np.abs(v), sparsity)] = 0.0
    return {k: (np.float32(v) if isinstance(v, float) else v) for k, v in p.items()}


def reference(params: dict, windows: np.ndarray) -> np.ndarray:
    """The float64 logits of the one numpy FastGRNN."""
    return FastGRNNParams.of(params).forward(windows).logits


@pytest.fixture(scope="module")
def windows() -> np.ndarray:
    return np.random.default_rng(1).normal(size=(48, SEQ, D)).astype(np.float32)


@pytest.fixture(scope="module")
def params() -> dict:
    return random_params()


@pytest.fixture(scope="module")
def bundle_int8(params: dict, windows: np.ndarray) -> T.FastGRNNTFLite:
    return T.fastgrnn_to_tflite(params, "int8", windows[:24])


def small_cnn(seed: int = 0):
    import tf_keras as keras

    keras.utils.set_random_seed(seed)
    return keras.Sequential(
        [
            keras.Input((SEQ, D)),
            keras.layers.Conv1D(8, 5, activation="relu"),
            keras.layers.MaxPooling1D(2),
            keras.layers.Conv1D(16, 3, activation="relu"),
            keras.layers.GlobalAveragePooling1D(),
            keras.layers.Dense(32, activation="relu"),
            keras.layers.Dense(C),
        ],
        name="tiny_cnn",
    )


@pytest.fixture(scope="module")
def cnn():
    return small_cnn()


# ------------------------------------------------------------------ FastGRNN


def test_step_float_matches_reference(params: dict, windows: np.ndarray) -> None:
    b = T.fastgrnn_to_tflite(params, "float")
    ref = reference(params, windows)
    out = T.predict_tflite(b, windows)
    assert out.shape == (len(windows), C)
    np.testing.assert_allclose(out, ref, atol=1e-4)


def test_step_int8_is_full_integer_and_close(
    bundle_int8: T.FastGRNNTFLite, params: dict, windows: np.ndarray
) -> None:
    for model in (bundle_int8.step, bundle_int8.head):
        it = make_interpreter(model)
        for d in it.get_input_details() + it.get_output_details():
            assert d["dtype"] == np.int8
    ref = reference(params, windows)
    out = T.predict_tflite(bundle_int8, windows)
    cls = T.predict_tflite(bundle_int8, windows, classes=True)
    assert cls.dtype == np.int64 and np.array_equal(cls, out.argmax(1))
    assert (cls == ref.argmax(1)).mean() >= 0.9
    spread = ref.max() - ref.min()
    assert np.abs(out - ref).max() < 0.1 * spread


def test_step_inputs_resolved_by_name(bundle_int8: T.FastGRNNTFLite) -> None:
    ind = make_interpreter(bundle_int8.step).get_input_details()
    ix, ih = io_index(ind, "x"), io_index(ind, "h")
    assert {ix, ih} == {0, 1}
    assert int(ind[ix]["shape"][-1]) == D and int(ind[ih]["shape"][-1]) == H


@pytest.mark.parametrize("quantization", ["int8", "int16x8"])
def test_state_has_one_quantisation(
    quantization: str, bundle_int8: T.FastGRNNTFLite, params: dict, windows: np.ndarray
) -> None:
    """h, h_next and the head's input share h_next's grid: no requantisation between steps,
    and the patched step still computes one step as the float reference does."""
    from export.tflite._predict import dequantize, quantize

    b = bundle_int8 if quantization == "int8" else T.fastgrnn_to_tflite(
        params, quantization, windows[:24]
    )
    step = make_interpreter(b.step)
    ind, out = step.get_input_details(), step.get_output_details()[0]
    hd, xd = ind[io_index(ind, "h")], ind[io_index(ind, "x")]
    head_in = make_interpreter(b.head).get_input_details()[0]
    assert hd["quantization"] == out["quantization"] == head_in["quantization"]
    assert hd["quantization"][0] > 0
    _, hs, _ = T.step_calibration_pairs(params, windows[:1])
    x, h = windows[0, 60:61], hs[0, 60:61]
    step.allocate_tensors()
    step.set_tensor(xd["index"], quantize(x, xd))
    step.set_tensor(hd["index"], quantize(h, hd))
    step.invoke()
    got = dequantize(step.get_tensor(out["index"]), out)
    ref = hs[0, 61:62]  # the float state after that step
    tol = 3 * hd["quantization"][0] + 0.01 * np.abs(hs).max()  # grid + int8 weights
    assert np.abs(got - ref).max() < tol


def test_int8_conversion_is_deterministic(
    bundle_int8: T.FastGRNNTFLite, params: dict, windows: np.ndarray, cnn
) -> None:
    again = T.fastgrnn_to_tflite(params, "int8", windows[:24])
    assert again.step == bundle_int8.step and again.head == bundle_int8.head
    assert T.keras_to_tflite(cnn, "int8", windows[:16]) == T.keras_to_tflite(
        cnn, "int8", windows[:16]
    )


def test_calibration_pairs_are_visited_states(params: dict, windows: np.ndarray) -> None:
    xs, hs, h_last = T.step_calibration_pairs(params, windows[:4])
    assert hs.shape == (4, SEQ, H) and np.all(hs[:, 0] == 0)
    p = FastGRNNParams.of(params)
    # h_1 from h_0 = 0 is one step of the model
    pre = xs[:, 0] @ p.w1 @ p.w2
    z = 1 / (1 + np.exp(-(pre + p.bias_gate)))
    c = np.tanh(pre + p.bias_update)
    sz, sn = 1 / (1 + np.exp(-1.0)), 1 / (1 + np.exp(4.0))
    np.testing.assert_allclose(hs[:, 1], (sz * (1 - z) + sn) * c, atol=1e-5)
    assert h_last.shape == (4, H)


def test_while_loop_int8_converts(params: dict, windows: np.ndarray) -> None:
    m = T.fastgrnn_to_tflite(params, "int8", windows[:8], method="while")
    assert isinstance(m, bytes)
    ref = reference(params, windows[:16])
    out = T.predict_tflite(m, windows[:16])
    assert (out.argmax(1) == ref.argmax(1)).mean() >= 0.85


def test_pruned_fastgrnn_sparse_runs(windows: np.ndarray) -> None:
    p = random_params(2, sparsity=0.9)
    dense = T.fastgrnn_to_tflite(p, "float")
    sparse = T.fastgrnn_to_tflite(p, "float", sparse=True)
    assert sparse.size_bytes < dense.size_bytes
    np.testing.assert_allclose(
        T.predict_tflite(sparse, windows[:8]), reference(p, windows[:8]), atol=1e-4
    )


def test_bundle_save(tmp_path, bundle_int8: T.FastGRNNTFLite) -> None:
    paths = bundle_int8.save(tmp_path, "fg")
    assert open(paths["step"], "rb").read() == bundle_int8.step
    assert sorted(os.listdir(tmp_path)) == ["fg.json", "fg_head.tflite", "fg_step.tflite"]


# ------------------------------------------------------------------ CNN


def test_cnn_float_int8_sparse(cnn, windows: np.ndarray) -> None:
    ref = cnn.predict(windows, verbose=0)
    f = T.keras_to_tflite(cnn, "float")
    np.testing.assert_allclose(T.predict_tflite(f, windows), ref, atol=1e-4)
    q = T.keras_to_tflite(cnn, "int8", windows[:16])
    out = T.predict_tflite(q, windows)
    assert (out.argmax(1) == ref.argmax(1)).mean() >= 0.9
    assert len(q) < len(f)
    s = T.keras_to_tflite(cnn, "float", sparse=True)  # dense weights: still runs
    np.testing.assert_allclose(T.predict_tflite(s, windows[:4]), ref[:4], atol=1e-4)


# ------------------------------------------------------------------ bad input


@pytest.mark.bad_input
def test_unbuilt_model() -> None:
    import tf_keras as keras

    m = keras.Sequential([keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="not built"):
        T.keras_to_tflite(m, "float")


@pytest.mark.bad_input
def test_unsupported_layer_is_named() -> None:
    import tf_keras as keras

    m = keras.Sequential(
        [keras.Input((SEQ, D)), keras.layers.LSTM(4, name="my_lstm"), keras.layers.Dense(C)]
    )
    with pytest.raises(ValueError, match="unsupported layer 'my_lstm' of type LSTM"):
        T.keras_to_tflite(m, "int8", np.zeros((2, SEQ, D), np.float32))


@pytest.mark.bad_input
@pytest.mark.parametrize("shape", [(4, SEQ), (4, SEQ, 3), (0, SEQ, D), (4, 64, D)])
def test_representative_wrong_shape(cnn, params: dict, shape: tuple) -> None:
    bad = np.zeros(shape, np.float32)
    with pytest.raises(ValueError, match="representative set"):
        T.keras_to_tflite(cnn, "int8", bad)
    with pytest.raises(ValueError, match="representative set"):
        T.fastgrnn_to_tflite(params, "int8", bad)


@pytest.mark.bad_input
def test_representative_missing_or_nan(params: dict) -> None:
    with pytest.raises(ValueError, match="required"):
        T.fastgrnn_to_tflite(params, "int8", None)
    bad = np.zeros((2, SEQ, D), np.float32)
    bad[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        T.fastgrnn_to_tflite(params, "int8", bad)


@pytest.mark.bad_input
def test_nan_weights(params: dict) -> None:
    p = dict(params)
    p["U1"] = params["U1"].copy()
    p["U1"][0, 0] = np.nan
    with pytest.raises(ValueError, match="'U1' holds NaN"):
        T.fastgrnn_to_tflite(p, "float")
    m = small_cnn()
    w = m.layers[0].kernel.numpy()
    w[0, 0, 0] = np.nan
    m.layers[0].kernel.assign(w)
    with pytest.raises(ValueError, match="NaN"):
        T.keras_to_tflite(m, "float")


@pytest.mark.bad_input
def test_bad_params() -> None:
    p = random_params()
    del p["nu"]
    with pytest.raises(ValueError, match="lack 'nu'"):
        T.fastgrnn_to_tflite(p, "float")
    p = random_params()
    p["W2"] = p["W2"][:3]
    with pytest.raises(ValueError, match=r"'W2' has shape \(3, 80\), expected \(5, 80\)"):
        T.fastgrnn_to_tflite(p, "float")
    with pytest.raises(ValueError, match="quantization"):
        T.fastgrnn_to_tflite(random_params(), "int4")


@pytest.mark.bad_input
def test_unwritable_bundle_path(tmp_path, bundle_int8: T.FastGRNNTFLite) -> None:
    with pytest.raises(OSError, match="cannot write"):
        bundle_int8.save(tmp_path / "missing" / "dir")
    assert os.listdir(tmp_path) == []


@pytest.mark.bad_input
def test_predict_wrong_windows(bundle_int8: T.FastGRNNTFLite) -> None:
    with pytest.raises(ValueError, match="windows has shape"):
        T.predict_tflite(bundle_int8, np.zeros((2, SEQ, 3), np.float32))
    with pytest.raises(ValueError, match="not a loadable TFLite model"):
        T.predict_tflite(b"garbage bytes", np.zeros((2, SEQ, D), np.float32))


def test_bundle_roundtrip(tmp_path, bundle_int8: T.FastGRNNTFLite) -> None:
    paths = bundle_int8.save(tmp_path, "fg")
    back = T.FastGRNNTFLite.load(paths["meta"])
    assert back.step == bundle_int8.step and back.head == bundle_int8.head
    assert (back.seq_len, back.hidden, back.quantization) == (SEQ, H, "int8")


@pytest.mark.slow
def test_conversion_deterministic_across_processes() -> None:
    """Same params and representative set in two fresh processes -> identical bytes."""
    import hashlib
    import subprocess
    import sys

    code = (
        f"import numpy as np, hashlib, sys; sys.path.insert(0, {os.path.dirname(__file__)!r})\n"
        "import export.tflite as T\n"
        "from test_tflite import random_params\n"
        "w = np.random.default_rng(1).normal(size=(4, 128, 9)).astype(np.float32)\n"
        "b = T.fastgrnn_to_tflite(random_params(), 'int8', w)\n"
        "print(hashlib.sha256(b.step + b.head).hexdigest())\n"
    )
    outs = [
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        ).stdout.split()[-1]
        for _ in range(2)
    ]
    assert outs[0] == outs[1] and len(outs[0]) == len(hashlib.sha256().hexdigest())


def test_step_int16x8(params: dict, windows: np.ndarray, bundle_int8: T.FastGRNNTFLite) -> None:
    """16x8 mode: int8 weights, int16 state; closer to float than int8."""
    b = T.fastgrnn_to_tflite(params, "int16x8", windows[:24])
    ind = make_interpreter(b.step).get_input_details()
    assert {d["dtype"] for d in ind} == {np.int16}
    ref = reference(params, windows)
    out = T.predict_tflite(b, windows)
    assert (out.argmax(1) == ref.argmax(1)).mean() >= 0.95
    err8 = np.abs(T.predict_tflite(bundle_int8, windows) - ref).mean()
    assert np.abs(out - ref).mean() < 0.5 * err8


@pytest.mark.bad_input
def test_sparse_int8_fastgrnn_is_verified(windows: np.ndarray) -> None:
    """litert's sparse int8 FULLY_CONNECTED computes the step wrongly: warn, or raise."""
    p = random_params(2, sparsity=0.9)
    with pytest.raises(ValueError, match="sparse-encoded model disagrees"):
        T.fastgrnn_to_tflite(p, "int8", windows[:4], sparse=True, verify="raise")
    with pytest.warns(RuntimeWarning, match="sparse-encoded model disagrees"):
        b = T.fastgrnn_to_tflite(p, "int8", windows[:4], sparse=True)
    assert b.size_bytes > 0


def test_representative_subsample_is_seeded(params: dict, windows: np.ndarray) -> None:
    a = T.fastgrnn_to_tflite(params, "int8", windows, max_windows=6, seed=3)
    b = T.fastgrnn_to_tflite(params, "int8", windows, max_windows=6, seed=3)
    assert a.step == b.step


def test_cli_carray(tmp_path, bundle_int8: T.FastGRNNTFLite) -> None:
    from export.tflite.__main__ import main

    meta = bundle_int8.save(tmp_path, "fg")["meta"]
    out = tmp_path / "c"
    out.mkdir()
    assert main(["carray", meta, str(out), "--name", "fg_model", "--arena", "8192"]) == 0
    hdr = (out / "fg_model.h").read_text()
    assert "kTensorArenaSize = 8192;" in hdr and "kSeqLen = 128;" in hdr
    with pytest.raises(SystemExit) as refused:  # a missing model is refused at parse time
        main(["carray", str(tmp_path / "missing.tflite"), str(out)])
    assert refused.value.code == 2
