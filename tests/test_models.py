"""edgeprune.models: FastGRNN cell maths, serialisation, pruning hook, parameter export."""

import itertools

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_model_optimization as tfmot
import tf_keras as keras

import edgeprune  # noqa: F401
from edgeprune import models
from edgeprune.models import FastGRNNCell, fastgrnn_classifier, fastgrnn_params

COMBOS = list(itertools.product(("sigmoid", "quantSigm"), ("tanh", "quantTanh")))


def _np_nl(name, x):
    return {
        "sigmoid": lambda v: 1 / (1 + np.exp(-v)),
        "tanh": np.tanh,
        "quantSigm": lambda v: np.clip((v + 1) / 2, 0, 1),
        "quantTanh": lambda v: np.clip(v, -1, 1),
    }[name](x)


def _randomise(model, seed=1, scale=0.5):
    rng = np.random.default_rng(seed)
    model.set_weights(
        [rng.normal(0, scale, w.shape).astype("float32") for w in model.get_weights()]
    )


@pytest.mark.parametrize("gate,update", COMBOS)
def test_cell_matches_numpy_equations(gate, update):
    model = fastgrnn_classifier((12, 9), classes=3, hidden=16, w_rank=4, u_rank=8,
                                gate=gate, update=update)
    _randomise(model)
    cell = model.get_layer("fastgrnn").cell
    W = cell.W1.numpy() @ cell.W2.numpy()
    U = cell.U1.numpy() @ cell.U2.numpy()
    bg, bu = cell.bias_gate.numpy(), cell.bias_update.numpy()
    sz, sn = 1 / (1 + np.exp(-cell.zeta.numpy())), 1 / (1 + np.exp(-cell.nu.numpy()))
    x = np.random.default_rng(2).normal(size=(5, 12, 9)).astype("float32")
    h = np.zeros((5, 16))
    for t in range(12):
        pre = x[:, t] @ W + h @ U
        z, c = _np_nl(gate, pre + bg), _np_nl(update, pre + bu)
        h = z * h + (sz * (1 - z) + sn) * c
    dense = model.get_layer("logits")
    expect = h @ dense.kernel.numpy() + dense.bias.numpy()
    np.testing.assert_allclose(model(x).numpy(), expect, rtol=1e-4, atol=1e-4)


def test_initialisation_follows_design():
    model = fastgrnn_classifier(hidden=80, w_rank=5, u_rank=40)
    cell = model.get_layer("fastgrnn").cell
    assert model.count_params() == 7169  # DESIGN.md: hidden 80, ranks 5/40
    np.testing.assert_array_equal(cell.bias_gate.numpy(), 1.0)
    np.testing.assert_array_equal(cell.bias_update.numpy(), 1.0)
    assert float(cell.zeta.numpy()) == 1.0 and float(cell.nu.numpy()) == -4.0
    w = np.concatenate([v.numpy().ravel() for v in cell.get_prunable_weights()])
    assert abs(w.std() - 0.1) < 0.01 and abs(w.mean()) < 0.01
    # seeded: same seed, same weights
    again = fastgrnn_classifier(hidden=80, w_rank=5, u_rank=40)
    for a, b in zip(model.get_weights(), again.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_low_rank_reduces_to_full_rank():
    low = fastgrnn_classifier((10, 6), hidden=12, w_rank=3, u_rank=5)
    _randomise(low, seed=3)
    full = fastgrnn_classifier((10, 6), hidden=12, w_rank=None, u_rank=None)
    lc, fc = low.get_layer("fastgrnn").cell, full.get_layer("fastgrnn").cell
    fc.W.assign(lc.W1.numpy() @ lc.W2.numpy())
    fc.U.assign(lc.U1.numpy() @ lc.U2.numpy())
    for name in ("bias_gate", "bias_update", "zeta", "nu"):
        getattr(fc, name).assign(getattr(lc, name).numpy())
    full.get_layer("logits").set_weights(low.get_layer("logits").get_weights())
    x = np.random.default_rng(4).normal(size=(3, 10, 6)).astype("float32")
    np.testing.assert_allclose(low(x).numpy(), full(x).numpy(), rtol=1e-5, atol=1e-5)


def test_prunable_weights_are_exactly_the_factors():
    low = fastgrnn_classifier((8, 9), hidden=10, w_rank=2, u_rank=4).get_layer("fastgrnn").cell
    assert [v.name.split("/")[-1].split(":")[0] for v in low.get_prunable_weights()] == [
        "W1", "W2", "U1", "U2"]
    full = fastgrnn_classifier((8, 9), hidden=10, w_rank=None, u_rank=None)
    cell = full.get_layer("fastgrnn").cell
    assert [v.name.split("/")[-1].split(":")[0] for v in cell.get_prunable_weights()] == [
        "W", "U"]
    assert isinstance(cell, tfmot.sparsity.keras.PrunableLayer)


def test_save_load_round_trip(tmp_path):
    model = fastgrnn_classifier((16, 9), hidden=8, w_rank=3, u_rank=4, gate="quantSigm",
                                update="quantTanh")
    _randomise(model, scale=0.3)
    x = np.random.default_rng(5).normal(size=(4, 16, 9)).astype("float32")
    path = tmp_path / "m.keras"
    model.save(path)
    for loaded in (models.load_model(str(path)), keras.models.load_model(str(path))):
        np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
        cell = loaded.get_layer("fastgrnn").cell
        assert (cell.hidden, cell.w_rank, cell.u_rank, cell.gate, cell.update) == (
            8, 3, 4, "quantSigm", "quantTanh")
    cfg = FastGRNNCell(8, 3, 4, "quantSigm", "quantTanh").get_config()
    assert FastGRNNCell.from_config(cfg).get_config() == cfg


def test_prune_low_magnitude_accepts_fastgrnn():
    model = fastgrnn_classifier((8, 9), hidden=16, w_rank=4, u_rank=8)
    sched = tfmot.sparsity.keras.ConstantSparsity(0.5, begin_step=0, frequency=1)
    pruned = tfmot.sparsity.keras.prune_low_magnitude(model, pruning_schedule=sched)
    pruned.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x = np.random.default_rng(6).normal(size=(32, 8, 9)).astype("float32")
    y = np.arange(32) % 2
    pruned.fit(x, y, epochs=1, verbose=0,
               callbacks=[tfmot.sparsity.keras.UpdatePruningStep()])
    stripped = tfmot.sparsity.keras.strip_pruning(pruned)
    params = fastgrnn_params(stripped)
    for key in ("W1", "W2", "U1", "U2"):
        assert abs((params[key] == 0).mean() - 0.5) < 0.1, key
    assert (params["bias_gate"] != 0).all()
    np.testing.assert_allclose(models.FastGRNNParams.of(params).forward(x).logits,
                               stripped.predict(x, verbose=0), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("w_rank,u_rank", [(5, 40), (None, None)])
@pytest.mark.parametrize("gate,update", COMBOS)
def test_fastgrnn_params_contract(w_rank, u_rank, gate, update):
    model = fastgrnn_classifier((128, 9), classes=2, hidden=80, w_rank=w_rank, u_rank=u_rank,
                                gate=gate, update=update)
    # realistic (initial) weights: random weights at scale make 128 steps chaotic, so that
    # float32 (model) and float64 (reference) drift apart for reasons unrelated to the maths
    p = fastgrnn_params(model)
    mats = {"W1": (9, 5), "W2": (5, 80), "U1": (80, 40), "U2": (40, 80)} if w_rank else {
        "W": (9, 80), "U": (80, 80)}
    expected = {**mats, "bias_gate": (80,), "bias_update": (80,), "zeta": (), "nu": (),
                "dense_kernel": (80, 2), "dense_bias": (2,)}
    assert set(p) == set(expected) | {"gate_nonlinearity", "update_nonlinearity"}
    for key, shape in expected.items():
        assert isinstance(p[key], np.ndarray) and p[key].dtype == np.float32, key
        assert p[key].shape == shape, key
    assert (p["gate_nonlinearity"], p["update_nonlinearity"]) == (gate, update)
    x = np.random.default_rng(8).normal(size=(6, 128, 9)).astype("float32")
    np.testing.assert_allclose(models.FastGRNNParams.of(p).forward(x).logits,
                               model.predict(x, verbose=0), rtol=1e-4, atol=1e-4)


def test_fastgrnn_params_rejects_other_models():
    with pytest.raises(ValueError, match="FastGRNN"):
        fastgrnn_params(models.har_cnn())


def test_quant_nonlinearities_match_edgeml():
    x = tf.constant([-3.0, -1.0, 0.0, 0.5, 1.0, 3.0])
    np.testing.assert_allclose(models.quant_tanh(x).numpy(), [-1, -1, 0, 0.5, 1, 1])
    np.testing.assert_allclose(models.quant_sigm(x).numpy(), [0, 0, 0.5, 0.75, 1, 1])


# ---- bad input ------------------------------------------------------------------------

@pytest.mark.bad_input
@pytest.mark.parametrize("shape", [(128,), (128, 9, 1), (0, 9), (128, 0), (128, -9), "x",
                                   (128.0, 9)])
def test_bad_input_shape(shape):
    with pytest.raises(ValueError, match="input_shape"):
        fastgrnn_classifier(shape)


@pytest.mark.bad_input
@pytest.mark.parametrize("kwargs,arg", [
    ({"hidden": 0}, "hidden"), ({"hidden": -3}, "hidden"), ({"hidden": 2.5}, "hidden"),
    ({"w_rank": 0}, "w_rank"), ({"u_rank": -1}, "u_rank"),
    ({"w_rank": 10}, "w_rank"),           # > min(9 features, 80 hidden)
    ({"u_rank": 81}, "u_rank"),           # > hidden
    ({"classes": 0}, "classes"),
])
def test_bad_sizes_and_ranks(kwargs, arg):
    with pytest.raises(ValueError, match=arg):
        fastgrnn_classifier((128, 9), **kwargs)


@pytest.mark.bad_input
@pytest.mark.parametrize("arg", ["gate", "update"])
def test_bad_nonlinearity_names_allowed_values(arg):
    with pytest.raises(ValueError, match=arg) as err:
        fastgrnn_classifier(**{arg: "relu"})
    for name in models.NONLINEARITIES:
        assert name in str(err.value)


@pytest.mark.bad_input
def test_cell_rank_larger_than_input_dim_at_build():
    cell = FastGRNNCell(16, w_rank=7)
    with pytest.raises(ValueError, match="w_rank"):
        keras.layers.RNN(cell)(keras.Input((4, 3)))
