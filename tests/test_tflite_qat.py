"""edgeprune.qat: int8 quantisation-aware fine-tuning (FastGRNN step graph, HAR CNN)."""

from __future__ import annotations

import numpy as np
import pytest

import export.tflite as T  # noqa: I001  (sets TF_USE_LEGACY_KERAS before TensorFlow)
from edgeprune import models, pruning, qat

SEQ, D = 24, 9


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(96, SEQ, D)).astype(np.float32)
    y = (x[:, :, 0].mean(1) + 0.3 * x[:, :, 4].mean(1) > 0).astype(np.int64)
    return x, y


def _fastgrnn(sparsity: float = 0.5):
    m = models.fastgrnn_classifier((SEQ, D), 2, hidden=12, w_rank=3, u_rank=6, seed=0)
    pruning.apply_masks(m, pruning.make_masks(m, "global", sparsity, None, 0))
    return m


def test_fastgrnn_qat_model_matches_int8_tflite(data) -> None:
    x, _ = data
    m = _fastgrnn()
    q = qat.fastgrnn_int8_reference(m, x)
    assert [w.name for w in q.trainable_weights] == [w.name for w in m.trainable_weights]
    p = models.fastgrnn_params(m)
    want = T.predict_tflite(T.fastgrnn_to_tflite(p, "int8", x, seq_len=SEQ), x)
    got = q.predict(x, verbose=0)
    spread = want.max() - want.min()
    assert np.abs(got - want).mean() < 0.03 * spread
    assert (got.argmax(1) == want.argmax(1)).mean() >= 0.9


def test_fastgrnn_int8_finetune_contract(data) -> None:
    x, y = data
    m = _fastgrnn()
    before = [w.copy() for w in m.get_weights()]
    plain, res = qat.fastgrnn_int8_finetune(m, (x, y), (x[:32], y[:32]), x, epochs=1)
    assert res.epochs == 1
    assert plain.get_config()["layers"][1]["config"]["cell"] == m.get_config()["layers"][1][
        "config"
    ]["cell"]
    for a, b in zip(before, m.get_weights(), strict=True):  # input model untouched
        np.testing.assert_array_equal(a, b)
    for a, b in zip(m.get_weights()[:4], plain.get_weights()[:4], strict=True):
        assert np.all(b[a == 0] == 0)  # pruned zeros stay zero
    again, _ = qat.fastgrnn_int8_finetune(m, (x, y), (x[:32], y[:32]), x, epochs=1)
    for a, b in zip(plain.get_weights(), again.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)  # seeded, deterministic


def _cnn():
    m = models.har_cnn((SEQ, D), 2, filters=(4, 8), dense_units=8, seed=0)
    pruning.apply_masks(m, pruning.make_masks(m, "global", 0.5, None, 0))
    return m


def test_cnn_qat_model_matches_int8_tflite(data) -> None:
    x, _ = data
    m = _cnn()
    q = qat.cnn_int8_reference(m, x)
    want = T.predict_tflite(T.keras_to_tflite(m, "int8", x), x)
    got = q.predict(x, verbose=0)
    spread = want.max() - want.min()
    assert np.abs(got - want).max() < 0.05 * spread
    assert (got.argmax(1) == want.argmax(1)).mean() >= 0.95


def test_cnn_int8_finetune_contract(data) -> None:
    x, y = data
    m = _cnn()
    plain, res = qat.cnn_int8_finetune(m, (x, y), (x[:32], y[:32]), x, epochs=1)
    assert res.epochs == 1 and type(plain) is type(m)
    assert [layer.__class__ for layer in plain.layers] == [layer.__class__ for layer in m.layers]
    for a, b in zip(m.get_weights(), plain.get_weights(), strict=True):
        assert a.shape == b.shape
        if a.ndim >= 2:  # kernels: pruned zeros stay zero (biases are not pruned)
            assert np.all(b[a == 0] == 0)
    T.keras_to_tflite(plain, "int8", x)  # exports as usual


def test_cnn_qat_rejects_unsupported_layer() -> None:
    import tf_keras as keras

    m = keras.Sequential([keras.Input((SEQ, D)), keras.layers.LSTM(4), keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="unsupported layer"):
        qat.cnn_qat_model(m)
