"""edgeprune.pruning on Keras models: policy, one-shot, callback, strip, report, tfmot."""

import json
import warnings

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_model_optimization as tfmot
import tf_keras as keras

import edgeprune  # noqa: F401  (conftest sets TF_USE_LEGACY_KERAS)
from edgeprune.pruning import (
    METHODS,
    GlobalPruningCallback,
    LayerCollapseWarning,
    apply_masks,
    collapsed_layers,
    collect_prunable,
    format_report,
    global_threshold,
    iht_schedule,
    load_masks,
    make_masks,
    masks_sparsity,
    prune_global,
    pruning_report,
    save_masks,
    strip,
    uniform_masks_tfmot,
)
from edgeprune.pruning.masks import optimizer_slots
from edgeprune.pruning.ranking import num_pruned

sched = tfmot.sparsity.keras


class TinyCell(keras.layers.Layer, tfmot.sparsity.keras.PrunableLayer):
    """A minimal PrunableLayer RNN cell: W, U prunable; bias and zeta not."""

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.state_size = units

    def build(self, input_shape):
        init = keras.initializers.RandomNormal(0.0, 0.3, seed=1)
        self.W = self.add_weight(name="W", shape=(input_shape[-1], self.units), initializer=init)
        self.U = self.add_weight(name="U", shape=(self.units, self.units), initializer=init)
        self.b = self.add_weight(name="b", shape=(self.units,), initializer="ones")
        self.zeta = self.add_weight(name="zeta", shape=(1,), initializer="ones")
        self.built = True

    def call(self, x, states):
        h = states[0]
        h2 = tf.tanh(x @ self.W + h @ self.U + self.b) * tf.sigmoid(self.zeta)
        return h2, [h2]

    def get_prunable_weights(self):
        return [self.W, self.U]

    def get_config(self):
        return {**super().get_config(), "units": self.units}


class Opaque(keras.layers.Layer):
    def build(self, input_shape):
        self.k = self.add_weight(name="k", shape=(input_shape[-1],))

    def call(self, x):
        return x * self.k


def rnn_model(seed=0):
    keras.utils.set_random_seed(seed)
    x = keras.Input((6, 3))
    h = keras.layers.RNN(TinyCell(8), name="rnn")(x)
    out = keras.layers.Dense(2, name="head")(h)
    return keras.Model(x, out)


def cnn_model(seed=0):
    keras.utils.set_random_seed(seed)
    return keras.Sequential([
        keras.layers.Input((8, 8, 2)),
        keras.layers.Conv2D(4, 3, name="c2d"),
        keras.layers.BatchNormalization(),
        keras.layers.DepthwiseConv2D(3, name="dw"),
        keras.layers.Reshape((16, 4)),
        keras.layers.Conv1D(3, 2, name="c1d"),
        keras.layers.Flatten(),
        keras.layers.Dense(5, name="fc"),
    ])


def all_abs(model):
    return np.concatenate([np.abs(p.variable.numpy()).ravel() for p in collect_prunable(model)])


def test_policy_finds_kernels_and_cell_matrices_only():
    keys = [p.key for p in collect_prunable(cnn_model())]
    assert keys == ["c2d/kernel", "dw/depthwise_kernel", "c1d/kernel", "fc/kernel"]
    rnn = collect_prunable(rnn_model())
    assert [p.variable.shape for p in rnn] == [(3, 8), (8, 8), (8, 2)]
    assert [p.key for p in rnn] == ["rnn/W", "rnn/U", "head/kernel"]  # stable across builds
    assert [p.key for p in collect_prunable(rnn_model())] == ["rnn/W", "rnn/U", "head/kernel"]


def test_policy_other_layer_types():
    x = keras.Input((5,), dtype="int32")
    e = keras.layers.Embedding(20, 4, name="emb")(x)
    h = keras.layers.SeparableConv1D(6, 2, name="sep")(e)
    h = keras.layers.Bidirectional(keras.layers.LSTM(3), name="bi")(h)
    inner = keras.Sequential([keras.layers.Dense(4, name="d1"),
                              keras.layers.LayerNormalization()], name="inner")
    out = keras.layers.Dense(2, name="out")(inner(h))
    model = keras.Model(x, out)
    keys = [p.key for p in collect_prunable(model)]
    assert keys == ["emb/embeddings", "sep/depthwise_kernel", "sep/pointwise_kernel",
                    "bi/kernel", "bi/recurrent_kernel", "bi/kernel_1", "bi/recurrent_kernel_1",
                    "inner/d1/kernel", "out/kernel"]
    masks = make_masks(model, "global_mt", 0.5)
    assert set(masks) == set(keys)


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("make", [cnn_model, rnn_model])
def test_one_shot_threshold_is_kth_smallest_over_all_layers(make, seed):
    model = make(seed)
    flat = all_abs(model)
    s = 0.7
    k = num_pruned(s, flat.size)
    assert global_threshold(model, s) == np.sort(flat)[k - 1]
    masks = prune_global(model, s, min_threshold=0)
    after = all_abs(model)
    assert int((after == 0).sum()) == k  # exact k (random init: no zeros before)
    assert abs(masks_sparsity(masks) - s) <= 1 / flat.size
    assert after[flat > np.sort(flat)[k - 1]].min() > 0


def test_prune_global_min_threshold_keeps_floor():
    model = rnn_model()
    head = model.get_layer("head")
    head.kernel.assign(head.kernel * 1e-4)  # globally the smallest layer
    n = all_abs(model).size  # 24 + 64 + 16 = 104
    plain = make_masks(model, "global", 0.8)
    assert int(plain["head/kernel"].sum()) == 0  # plain Global MP collapses the head
    masks = prune_global(model, 0.8, min_threshold=5)
    assert int(masks["head/kernel"].sum()) == 5
    assert sum(int((~m).sum()) for m in masks.values()) == num_pruned(0.8, n)


def test_make_masks_every_method_does_not_touch_model():
    model = cnn_model()
    before = [w.copy() for w in model.get_weights()]
    for method in METHODS:
        masks = make_masks(model, method, 0.6, None, seed=0)
        assert set(masks) == {p.key for p in collect_prunable(model)}
    for a, b in zip(before, model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_uniform_matches_tfmot_prune_low_magnitude():
    model = rnn_model()
    x, y = _data(model, n=8)
    before = model.predict(x, verbose=0)
    ours = make_masks(model, "uniform", 0.6)
    theirs = uniform_masks_tfmot(model, 0.6)
    for key in ours:
        np.testing.assert_array_equal(ours[key], theirs[key])
    np.testing.assert_array_equal(model.predict(x, verbose=0), before)  # model untouched
    _compile(model)
    model.fit(x, y, epochs=1, verbose=0)  # and still trains
    cnn = cnn_model()
    ours, theirs = make_masks(cnn, "uniform", 0.5), uniform_masks_tfmot(cnn, 0.5)
    for key in ["c2d/kernel", "c1d/kernel", "fc/kernel"]:
        np.testing.assert_array_equal(ours[key], theirs[key])
    assert theirs["dw/depthwise_kernel"].all()  # tfmot leaves depthwise kernels dense


def _data(model, n=64, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, *model.input_shape[1:])).astype("float32")
    y = rng.integers(0, model.output_shape[-1], size=n)
    return x, y


def _compile(model, optimizer=None):
    model.compile(optimizer or keras.optimizers.Adam(0.05),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True))


@pytest.mark.parametrize("legacy", [False, True])
def test_masks_hold_through_fit_with_adam(legacy):
    model = rnn_model()
    x, y = _data(model)
    _compile(model, (keras.optimizers.legacy.Adam if legacy else keras.optimizers.Adam)(0.05))
    cb = GlobalPruningCallback(sched.ConstantSparsity(0.75, begin_step=0, frequency=1000))
    model.fit(x, y, batch_size=16, epochs=4, callbacks=[cb], verbose=0)
    assert cb.step == 16
    for p in collect_prunable(model):
        m = cb.masks[p.key]
        assert (p.variable.numpy()[~m] == 0).all()  # exact zeros
        assert (p.variable.numpy()[m] != 0).all()
        slots = optimizer_slots(model.optimizer, p.variable)
        assert len(slots) == 2  # Adam m and v
        for slot in slots:
            assert (slot.numpy()[~m] == 0).all()
    assert abs(masks_sparsity(cb.masks) - 0.75) <= 1 / 104
    # a plain fit afterwards would move them: the callback is what holds them
    model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    assert np.count_nonzero(all_abs(model)) > 104 - num_pruned(0.75, 104)


def test_one_shot_then_fine_tune_holding_masks():
    model = rnn_model()
    x, y = _data(model)
    _compile(model)
    masks = prune_global(model, 0.9)
    cb = GlobalPruningCallback(None, masks=masks)
    model.fit(x, y, batch_size=16, epochs=3, callbacks=[cb], verbose=0)
    for p in collect_prunable(model):
        w = p.variable.numpy()
        assert (w[~masks[p.key]] == 0).all() and (w[masks[p.key]] != 0).all()
    assert GlobalPruningCallback.from_config(cb.get_config(), masks=masks).schedule is None


@pytest.mark.parametrize("kind", ["poly", "const"])
def test_tfmot_schedules_drive_global_sparsity(kind):
    model = rnn_model()
    x, y = _data(model)
    _compile(model)
    if kind == "poly":
        s = sched.PolynomialDecay(0.0, 0.8, begin_step=0, end_step=8, frequency=2)
    else:
        s = sched.ConstantSparsity(0.6, begin_step=2, frequency=3)
    seen = []

    class Spy(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            seen.append(1 - np.count_nonzero(all_abs(model)) / 104)

    cb = GlobalPruningCallback(s, min_threshold=0)
    model.fit(x, y, batch_size=8, epochs=2, callbacks=[cb, Spy()], verbose=0)
    for step, got in enumerate(seen):
        # sparsity in force after batch `step` = schedule at the last pruning step <= step
        prune_steps = [t for t in range(step + 1) if bool(s(t)[0])]
        want = float(s(prune_steps[-1])[1]) if prune_steps else 0.0
        assert abs(got - num_pruned(want, 104) / 104) < 1e-9, (step, got, want)
    final = 0.8 if kind == "poly" else 0.6
    assert abs(seen[-1] - final) <= 1 / 104


def test_frequency_overrides_schedule_frequency():
    model = rnn_model()
    x, y = _data(model, n=32)
    _compile(model)
    calls = []
    cb = GlobalPruningCallback(sched.ConstantSparsity(0.5, 0, frequency=100), frequency=2)
    _spy_compute(cb, calls)
    model.fit(x, y, batch_size=4, epochs=1, callbacks=[cb], verbose=0)
    assert [t for t, _ in calls] == [0, 2, 4, 6]


def _spy_compute(cb, log):
    orig = cb._compute
    cb._compute = lambda sp: (log.append((cb.step, sp)), orig(sp))[1]


def test_callback_resumes_from_saved_state(tmp_path):
    model = rnn_model()
    x, y = _data(model)
    _compile(model)
    s = sched.PolynomialDecay(0.0, 0.8, begin_step=0, end_step=8, frequency=2)
    cb = GlobalPruningCallback(s, min_threshold=2, method="global_mt")
    first = []
    _spy_compute(cb, first)
    model.fit(x, y, batch_size=16, epochs=1, callbacks=[cb], verbose=0)  # steps 0..3
    path = tmp_path / "state.npz"
    cb.save_state(path)
    weights = model.get_weights()
    saved_masks = {k: v.copy() for k, v in cb.masks.items()}
    json.dumps(cb.get_config())  # JSON-able
    assert [t for t, _ in first] == [0, 2] and masks_sparsity(saved_masks) > 0

    # reference: the same callback continues in the same process
    rest = []
    _spy_compute(cb, rest)
    model.fit(x, y, batch_size=16, epochs=2, callbacks=[cb], verbose=0)

    # resumed: a fresh model and callback rebuilt from the file
    model2 = rnn_model()
    model2.set_weights(weights)
    _compile(model2)
    resumed = GlobalPruningCallback.load_state(path)
    assert resumed.step == 4 and resumed.get_config() == {**cb.get_config(), "step": 4}
    for key, m in load_masks(path).items():
        np.testing.assert_array_equal(resumed.masks[key], m)
    log = []
    _spy_compute(resumed, log)
    model2.fit(x, y, batch_size=16, epochs=2, callbacks=[resumed], verbose=0)
    assert resumed.step == cb.step == 12
    assert log == rest == [(4, log[0][1]), (6, log[1][1]), (8, 0.8)]  # schedule continues
    for p in collect_prunable(model2):
        w = p.variable.numpy()
        assert (w[~saved_masks[p.key]] == 0).all()  # what was pruned stays pruned
        assert (w[~resumed.masks[p.key]] == 0).all()
    assert abs(masks_sparsity(resumed.masks) - 0.8) <= 1 / 104
    again = GlobalPruningCallback.from_config(resumed.get_config(), masks=resumed.masks)
    assert again.get_config() == resumed.get_config()


def test_iht_dense_then_threshold_then_frozen_support():
    model = rnn_model()
    x, y = _data(model)
    _compile(model)
    s = iht_schedule(total_steps=24, sparsity=0.5, frequency=2)  # IHT on steps 8..16
    nnz = []

    class Spy(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            nnz.append(int(np.count_nonzero(all_abs(model))))

    cb = GlobalPruningCallback(s, method="iht")
    model.fit(x, y, batch_size=8, epochs=3, callbacks=[cb, Spy()], verbose=0)
    assert all(n == 104 for n in nnz[:8])  # dense phase
    assert any(n > 52 for n in nnz[8:17])  # IHT: support not held, weights re-enter
    assert all(n == 52 for n in nnz[17:])  # sparse retraining: frozen, per-matrix 50 %
    for p in collect_prunable(model):
        assert np.count_nonzero(p.variable.numpy()) == p.size - num_pruned(0.5, p.size)


def test_strip_gives_plain_model_with_same_outputs():
    model = rnn_model()
    x, _ = _data(model, n=8)
    masks = prune_global(model, 0.5, 0)
    out = model.predict(x, verbose=0)
    plain = strip(model, masks)
    np.testing.assert_array_equal(plain.predict(x, verbose=0), out)
    # a tfmot-wrapped model is unwrapped by tfmot's strip_pruning
    wrapped = tfmot.sparsity.keras.prune_low_magnitude(
        rnn_model(), pruning_schedule=sched.ConstantSparsity(0.5, 0, frequency=1))
    for layer in wrapped.layers:
        if hasattr(layer, "pruning_step"):
            layer.pruning_step.assign(0)
    wrapped(x, training=True)
    out = wrapped.predict(x, verbose=0)
    plain = strip(wrapped)
    assert not any(type(la).__name__ == "PruneLowMagnitude" for la in plain.layers)
    np.testing.assert_allclose(plain.predict(x, verbose=0), out, rtol=1e-6, atol=1e-6)
    assert masks_sparsity({p.key: p.variable.numpy() != 0 for p in collect_prunable(plain)}) > 0.4


def test_masks_npz_roundtrip(tmp_path):
    model = cnn_model()
    masks = make_masks(model, "erk", 0.5)
    save_masks(masks, tmp_path / "m.npz", meta={"method": "erk"})
    back, meta = load_masks(tmp_path / "m.npz", with_meta=True)
    assert meta == {"method": "erk"} and set(back) == set(masks)
    for k in masks:
        np.testing.assert_array_equal(back[k], masks[k])
    apply_masks(model, back)
    assert abs(masks_sparsity(masks) - 0.5) <= 1 / all_abs(model).size


def test_report_numbers_and_collapse_warning():
    model = rnn_model()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rows = pruning_report(model, min_threshold=4)  # dense: no warning
    assert [r["weights"] for r in rows] == [24, 64, 16]
    assert all(r["nonzeros"] == r["weights"] and r["sparsity"] == 0 for r in rows)
    head = model.get_layer("head")
    k = head.kernel.numpy()
    k[:, 1] = 0.0  # output unit 1 lost every weight
    head.kernel.assign(k)
    cell = model.get_layer("rnn").cell
    w = np.zeros((3, 8), np.float32)
    w[0, :] = 1.0  # 8 of 24 kept: above floor 4, no dead unit
    cell.W.assign(w)
    with pytest.warns(LayerCollapseWarning, match=r"head/kernel \(1 dead units\)"):
        rows = pruning_report(model, min_threshold=4)
    assert rows[2]["nonzeros"] == 8 and rows[2]["dead_units"] == 1
    assert rows[0]["sparsity"] == pytest.approx(16 / 24)
    u = np.zeros((8, 8), np.float32)
    u[np.arange(8), np.arange(8)] = 1.0  # 8 kept, floor 10
    cell.U.assign(u)
    with pytest.warns(LayerCollapseWarning, match=r"keeps 8 < floor 10"):
        pruning_report(model, min_threshold=10)
    quiet = pruning_report(model, min_threshold=10, warn=False)  # the same, as messages
    assert collapsed_layers(quiet) == [f"{r['name']} (keeps 8 < floor 10)" for r in quiet]
    assert collapsed_layers(rows) == ["head/kernel (1 dead units)"]  # floor 4
    text = format_report(rows)
    assert "head/kernel" in text and "TOTAL" in text


@pytest.mark.bad_input
def test_bad_inputs_name_the_problem():
    x = keras.Input((4,))
    opaque = keras.Model(x, Opaque(name="mystery")(keras.layers.Dense(3)(x)))
    with pytest.raises(ValueError, match="'mystery' of type Opaque"):
        make_masks(opaque, "global", 0.5)
    x = keras.Input((4,))
    nothing = keras.Model(x, keras.layers.BatchNormalization()(x))
    with pytest.raises(ValueError, match="nothing prunable"):
        prune_global(nothing, 0.5)
    with pytest.raises(ValueError, match="not built"):
        make_masks(keras.Sequential([keras.layers.Dense(2)]), "global", 0.5)
    model = rnn_model()
    for s in (-0.5, 1.0):
        with pytest.raises(ValueError, match="sparsity"):
            prune_global(model, s)
    with pytest.raises(ValueError, match="highest feasible sparsity is 0.538461"):
        prune_global(model, 0.9, min_threshold=16)  # floors 16+16+16=48 of 104 kept
    with pytest.raises(ValueError, match="PruningSchedule"):
        GlobalPruningCallback(0.5)
    with pytest.raises(ValueError, match="masks do not fit"):
        apply_masks(model, {"nope": np.ones(3, bool)})


@pytest.mark.bad_input
def test_callback_rejects_infeasible_schedule_before_training():
    model = rnn_model()
    x, y = _data(model, n=8)
    _compile(model)
    cb = GlobalPruningCallback(sched.ConstantSparsity(0.95, 0), min_threshold=16)
    with pytest.raises(ValueError, match="highest feasible sparsity"):
        model.fit(x, y, epochs=1, callbacks=[cb], verbose=0)


def test_fastgrnn_classifier_if_available():
    models = pytest.importorskip("edgeprune.models")
    if not hasattr(models, "fastgrnn_classifier"):
        pytest.skip("edgeprune.models.fastgrnn_classifier not there yet")
    model = models.fastgrnn_classifier(input_shape=(8, 9), hidden=16, w_rank=3, u_rank=4)
    model(np.zeros((1, 8, 9), np.float32))
    prunable = collect_prunable(model)
    cell_weights = {id(w) for w in model.get_layer("fastgrnn").cell.get_prunable_weights()}
    assert cell_weights <= {id(p.variable) for p in prunable}
    assert len(prunable) == len(cell_weights) + 1  # + the classifier kernel
    n = sum(p.size for p in prunable)
    masks = prune_global(model, 0.9)
    assert sum(int((~m).sum()) for m in masks.values()) == num_pruned(0.9, n)
    x, y = _data(model, n=32)
    _compile(model)
    cb = GlobalPruningCallback(sched.ConstantSparsity(0.9, 0, frequency=100))
    model.fit(x, y, batch_size=16, epochs=2, callbacks=[cb], verbose=0)
    for p in collect_prunable(model):
        assert (p.variable.numpy()[~cb.masks[p.key]] == 0).all()
    rows = pruning_report(model, min_threshold=0, warn=False)  # tiny: units do die
    assert sum(r["nonzeros"] for r in rows) == n - num_pruned(0.9, n)
    fresh = models.fastgrnn_classifier(input_shape=(8, 9), hidden=16, w_rank=3, u_rank=4)
    fresh(np.zeros((1, 8, 9), np.float32))
    ours, theirs = make_masks(fresh, "uniform", 0.5), uniform_masks_tfmot(fresh, 0.5)
    for key in ours:
        np.testing.assert_array_equal(ours[key], theirs[key])
