"""export.fastgrnn_params: the one FastGRNN parameter type and numpy forward pass, against
EdgeML's equations written out here and against the Keras cell."""

import itertools

import numpy as np
import pytest

import edgeprune  # noqa: F401  (Keras 2 for tfmot)
from edgeprune.models import fastgrnn_classifier, fastgrnn_params
from export.fastgrnn_params import ACTIVATIONS, FastGRNNParams, sigmoid

COMBOS = list(itertools.product(("sigmoid", "quantSigm"), ("tanh", "quantTanh")))
NL = {"sigmoid": lambda v: 1 / (1 + np.exp(-v)), "tanh": np.tanh,
      "quantSigm": lambda v: np.clip((v + 1) / 2, 0, 1), "quantTanh": lambda v: np.clip(v, -1, 1)}


def edgeml(p: dict, x: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """EdgeML's FastGRNN equations with full W and U, float64: logits and every h_t."""
    p = {k: v if isinstance(v, str) else np.asarray(v, np.float64) for k, v in p.items()}
    W = p["W"] if "W" in p else p["W1"] @ p["W2"]
    U = p["U"] if "U" in p else p["U1"] @ p["U2"]
    sz, sn = 1 / (1 + np.exp(-float(p["zeta"]))), 1 / (1 + np.exp(-float(p["nu"])))
    h, hs = np.zeros((x.shape[0], U.shape[0])), []
    for t in range(x.shape[1]):
        pre = x[:, t] @ W + h @ U
        z = NL[p["gate_nonlinearity"]](pre + p["bias_gate"])
        c = NL[p["update_nonlinearity"]](pre + p["bias_update"])
        h = z * h + (sz * (1 - z) + sn) * c
        hs.append(h)
    return h @ p["dense_kernel"] + p["dense_bias"], hs


def random_dict(seed: int, low_rank: bool, gate: str = "sigmoid", update: str = "tanh",
                hidden: int = 16, d: int = 9) -> dict:
    r = np.random.default_rng(seed)
    m = {"W1": (d, 4), "W2": (4, hidden), "U1": (hidden, 6), "U2": (6, hidden)} if low_rank \
        else {"W": (d, hidden), "U": (hidden, hidden)}
    p = {k: r.normal(0, 0.4, s).astype(np.float32) for k, s in m.items()}
    p.update(bias_gate=r.normal(1, 0.3, hidden).astype(np.float32),
             bias_update=r.normal(0, 0.3, hidden).astype(np.float32),
             zeta=np.float32(1.3), nu=np.float32(-3.0),
             dense_kernel=r.normal(0, 1, (hidden, 3)).astype(np.float32),
             dense_bias=r.normal(0, 1, 3).astype(np.float32),
             gate_nonlinearity=gate, update_nonlinearity=update)
    return p


@pytest.mark.parametrize("low_rank", [True, False])
@pytest.mark.parametrize("gate,update", COMBOS)
def test_forward_is_edgeml_equations(low_rank, gate, update):
    p = random_dict(1, low_rank, gate, update)
    x = np.random.default_rng(2).normal(size=(7, 20, 9))
    want, hs = edgeml(p, x)
    run = FastGRNNParams.of(p).forward(x, states=True)
    # float64 both; only the factor order (x W1) W2 vs x (W1 W2) rounds differently
    np.testing.assert_allclose(run.logits, want, rtol=1e-11, atol=1e-11)
    np.testing.assert_allclose(run.state, hs[-1], rtol=1e-11, atol=1e-11)
    assert run.logits.dtype == np.float64 and run.states.shape == (7, 20, 16)
    np.testing.assert_array_equal(run.states[:, 0], 0.0)
    np.testing.assert_allclose(run.states[:, 1:], np.stack(hs[:-1], axis=1), atol=1e-11)


@pytest.mark.parametrize("w_rank,u_rank", [(5, 40), (None, None)])
@pytest.mark.parametrize("gate,update", COMBOS)
def test_forward_matches_the_keras_cell(w_rank, u_rank, gate, update):
    model = fastgrnn_classifier((128, 9), classes=2, hidden=80, w_rank=w_rank, u_rank=u_rank,
                                gate=gate, update=update, seed=3)
    p = FastGRNNParams.from_keras(model)
    x = np.random.default_rng(8).normal(size=(6, 128, 9)).astype("float32")
    keras_logits = model.predict(x, verbose=0)
    f32 = p.forward(x, dtype=np.float32).logits
    assert f32.dtype == np.float32
    np.testing.assert_allclose(f32, keras_logits, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(p.forward(x).logits, keras_logits, rtol=1e-4, atol=1e-4)


def test_from_keras_round_trips_the_contract_dict():
    model = fastgrnn_classifier((16, 9), hidden=12, w_rank=3, u_rank=5, seed=4)
    p = FastGRNNParams.from_keras(model)
    d = fastgrnn_params(model)
    assert (p.input_dim, p.hidden, p.classes, p.w_rank, p.u_rank) == (9, 12, 2, 3, 5)
    again = FastGRNNParams.of(d).to_dict()
    assert set(again) == set(d)
    for k, v in d.items():
        if isinstance(v, str):
            assert again[k] == v
        else:
            assert isinstance(again[k], np.ndarray) and again[k].dtype == np.float32
            assert again[k].shape == v.shape
            np.testing.assert_array_equal(again[k], v)
    np.testing.assert_array_equal(d["W1"], model.get_layer("fastgrnn").cell.W1.numpy())


def test_record_gives_the_ranges_of_the_steps():
    p = FastGRNNParams.of(random_dict(5, True))
    x = np.random.default_rng(6).normal(size=(5, 30, 9))
    run = p.forward(x, record=True, states=True)
    r = run.ranges
    assert set(r.lo) == set(ACTIVATIONS)
    assert r["x"] == (x.min(), x.max())
    hs = np.concatenate([run.states[:, 1:], run.state[:, None]], axis=1)
    assert r["h"] == (hs.min(), hs.max())
    pre = x @ p.w1 @ p.w2 + run.states @ p.u1 @ p.u2
    np.testing.assert_allclose(r["pre"], (pre.min(), pre.max()), rtol=1e-12)
    np.testing.assert_allclose(r["hu1"], ((run.states @ p.u1).min(), (run.states @ p.u1).max()))
    assert r["logits"] == (run.logits.min(), run.logits.max())
    assert r.absmax("h") == np.abs(hs).max()
    empty = p.forward(np.zeros((2, 0, 9)), record=True).ranges
    assert empty["h"] == (0.0, 0.0) and empty.absmax("pre") == 0.0


def test_full_rank_records_the_product_as_both_names():
    p = FastGRNNParams.of(random_dict(7, False))
    r = p.forward(np.random.default_rng(1).normal(size=(3, 9, 9)), record=True).ranges
    assert r["xw1"] == r["xw"] and r["hu1"] == r["hu"]
    assert p.w_rank is None and p.u_rank is None and set(p.matrices()) == {
        "W", "U", "dense_kernel"}


def test_sigmoid_keeps_float32_and_matches_the_formula():
    x = np.linspace(-20, 20, 101)
    np.testing.assert_array_equal(sigmoid(x), 1.0 / (1.0 + np.exp(-x)))
    assert sigmoid(x.astype(np.float32)).dtype == np.float32
    assert sigmoid(3).dtype == np.float64 and float(sigmoid(0)) == 0.5


def test_arrays_are_read_only_copies():
    d = random_dict(8, True)
    p = FastGRNNParams.of(d)
    d["W1"][0, 0] = 99.0
    assert p.w1[0, 0] != 99.0
    with pytest.raises(ValueError):
        p.w1[0, 0] = 1.0


@pytest.mark.bad_input
@pytest.mark.parametrize("mutate, match", [
    (lambda p: p.pop("nu"), "lack 'nu'"),
    (lambda p: p.pop("W2"), "lack 'W2'"),
    (lambda p: [p.pop("U1"), p.pop("U2")], "need 'U' or 'U1' and 'U2'"),
    (lambda p: p.__setitem__("W2", np.zeros((3, 16))), r"'W2' has shape \(3, 16\), "
     r"expected \(4, 16\)"),
    (lambda p: p.__setitem__("bias_gate", np.zeros(15)), "'bias_gate' has shape"),
    (lambda p: p.__setitem__("dense_bias", np.zeros((1, 3))), "'dense_bias' has shape"),
    (lambda p: p.__setitem__("U1", np.full((16, 6), np.nan)), "'U1' holds NaN or inf"),
    (lambda p: p.__setitem__("zeta", np.inf), "'zeta' holds NaN or inf"),
    (lambda p: p.__setitem__("W1", "abc"), "'W1' is not numeric"),
    (lambda p: p.__setitem__("gate_nonlinearity", "tanh"), "unsupported gate nonlinearity"),
    (lambda p: p.__setitem__("update_nonlinearity", "relu"), "unsupported update"),
])
def test_bad_parameters_raise_one_line(mutate, match):
    p = random_dict(0, True)
    mutate(p)
    with pytest.raises(ValueError, match=match) as err:
        FastGRNNParams.of(p)
    assert "\n" not in str(err.value)


@pytest.mark.bad_input
def test_bad_forward_input_and_non_fastgrnn_models():
    p = FastGRNNParams.of(random_dict(0, True))
    with pytest.raises(ValueError, match=r"windows must have shape \(N, T, 9\)"):
        p.forward(np.zeros((2, 5, 8)))
    with pytest.raises(ValueError, match="dtype must be float32 or float64"):
        p.forward(np.zeros((2, 5, 9)), dtype=np.float16)
    with pytest.raises(ValueError, match="must be a dict"):
        FastGRNNParams.of([1, 2])
    from edgeprune.models import har_cnn
    with pytest.raises(ValueError, match="not a FastGRNN classifier"):
        FastGRNNParams.from_keras(har_cnn())
