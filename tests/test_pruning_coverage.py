"""tfmot-native API and messages, output-axis dead units, per-epoch sparsity logs, and
layer coverage (MultiHeadAttention, LocallyConnected, ConvLSTM, composites, subclassed
models, keras.applications)."""

import csv

import numpy as np
import pytest
import tensorflow_model_optimization as tfmot
import tf_keras as keras

import edgeprune  # noqa: F401  (selects tf_keras)
from edgeprune.pruning import (
    GlobalPruningCallback,
    collect_prunable,
    make_masks,
    prune_global,
    pruning_report,
)
from edgeprune.pruning.ranking import num_pruned

L = keras.layers
sched = tfmot.sparsity.keras


def fit(model, callbacks, epochs=2, n=16, batch=8):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, *model.input_shape[1:])).astype("float32")
    y = rng.integers(0, model.output_shape[-1], size=n)
    model.compile(keras.optimizers.Adam(0.01),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model.fit(x, y, batch_size=batch, epochs=epochs, verbose=0, callbacks=callbacks)


def zeros_and_total(model):
    ps = collect_prunable(model)
    return sum(int((p.variable.numpy() == 0).sum()) for p in ps), sum(p.size for p in ps)


def dense_model():
    keras.utils.set_random_seed(0)
    return keras.Sequential([L.Input((8,)), L.Dense(6, name="d1"), L.Dense(3, name="out")])


# ----------------------------------------------------------------------------- API
def test_tfmot_names_and_keyword_only_arguments():
    s = sched.ConstantSparsity(0.5, begin_step=0, frequency=100)
    cb = GlobalPruningCallback(pruning_schedule=s, min_threshold=0)
    assert cb.schedule is s and GlobalPruningCallback(schedule=s).pruning_schedule is s
    model = dense_model()
    fit(model, [cb])
    zeros, n = zeros_and_total(model)
    assert zeros == num_pruned(0.5, n)
    cfg = cb.get_config()
    assert "pruning_schedule" in cfg
    old = {("schedule" if k == "pruning_schedule" else k): v for k, v in cfg.items()}
    assert GlobalPruningCallback.from_config(old).get_config() == cfg  # older configs load
    with pytest.raises(TypeError):
        GlobalPruningCallback(s, 0.0005)  # tfmot style: keyword-only after the schedule
    with pytest.raises(TypeError, match="not both"):
        GlobalPruningCallback(s, schedule=s)
    with pytest.raises(ValueError, match=r"ConstantSparsity\(0.9, begin_step=0\)"):
        GlobalPruningCallback(0.9)


@pytest.mark.bad_input
def test_messages_say_what_to_do():
    keras3 = pytest.importorskip("keras")
    if not keras3.__version__.startswith("3"):
        pytest.skip("Keras 3 not installed")
    with pytest.raises(ValueError, match="Keras 3 .*import edgeprune first"):
        make_masks(keras3.Sequential([keras3.layers.Dense(2)]), "global", 0.5)
    empty = keras.Sequential([L.Input((3, 2)), L.Flatten()])
    with pytest.raises(ValueError, match="has no weights at all"):
        prune_global(empty, 0.5)
    with pytest.raises(ValueError, match="not built.*first batch"):
        prune_global(keras.Sequential([L.Dense(2)]), 0.5)


def test_unbuilt_sequential_is_pruned_once_fit_builds_it():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([L.Dense(6), L.Dense(3)])  # no Input: built by the first batch
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(16, 8)).astype("float32"), rng.integers(0, 3, size=16)
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    cb = GlobalPruningCallback(sched.ConstantSparsity(0.6, begin_step=0, frequency=100))
    model.fit(x, y, batch_size=4, epochs=1, verbose=0, callbacks=[cb])
    zeros, n = zeros_and_total(model)
    assert cb.step == 4 and zeros == num_pruned(0.6, n)


# ----------------------------------------------------------------------------- reports
def _dead(model, key):
    return {r["name"]: r["dead_units"] for r in pruning_report(model, 0, warn=False)}[key]


def test_dead_units_are_read_on_the_output_axis():
    keras.utils.set_random_seed(0)
    x = keras.Input((4, 4, 2))
    h = L.Conv2DTranspose(5, 3, name="ct")(x)  # kernel (3, 3, out=5, in=2)
    h = L.DepthwiseConv2D(3, depth_multiplier=2, name="dw")(h)  # (3, 3, 5, 2)
    h = L.Reshape((-1, 10))(h)
    h = L.LSTM(3, name="lstm")(h)  # kernel (10, 12)
    model = keras.Model(x, L.Dense(2, name="fc")(h))
    assert all(r["dead_units"] == 0 for r in pruning_report(model, 0, warn=False))
    ct = model.get_layer("ct").kernel
    ct.assign(np.where(np.arange(5)[None, None, :, None] == 1, 0.0, ct.numpy()))
    assert _dead(model, "ct/kernel") == 1  # one output filter; the last axis would say 0
    dw = model.get_layer("dw").depthwise_kernel
    k = dw.numpy()
    k[:, :, 0, 1] = 0.0
    dw.assign(k)
    assert _dead(model, "dw/depthwise_kernel") == 1  # channel 0 x multiplier 1
    lstm = model.get_layer("lstm").cell.kernel
    lstm.assign(np.where(np.arange(12)[None, :] == 4, 0.0, lstm.numpy()))
    assert _dead(model, "lstm/kernel") == 1

    x = keras.Input((6, 4))
    mha = L.MultiHeadAttention(2, 3, name="mha")
    model = keras.Model(x, mha(x, x))
    q = mha._query_dense.kernel  # (dim 4, heads 2, key_dim 3): units = heads x key_dim
    k = q.numpy()
    k[:, 1, 2] = 0.0
    q.assign(k)
    assert _dead(model, "mha/query/kernel") == 1
    o = mha._output_dense.kernel  # (heads, key_dim, dim): units = dim
    o.assign(np.where(np.arange(4)[None, None, :] == 0, 0.0, o.numpy()))
    assert _dead(model, "mha/attention_output/kernel") == 1


def test_per_layer_sparsity_in_logs_each_epoch(tmp_path):
    model = dense_model()
    s = sched.PolynomialDecay(0.0, 0.5, begin_step=0, end_step=2, frequency=2)
    path = tmp_path / "log.csv"
    hist = fit(model, [GlobalPruningCallback(s, min_threshold=0),
                       keras.callbacks.CSVLogger(str(path))])
    h = hist.history
    assert len(h["sparsity"]) == 2 and h["sparsity"][0] < h["sparsity"][1]
    assert h["sparsity"][1] == pytest.approx(num_pruned(0.5, 66) / 66)
    d1 = [r["sparsity"] for r in pruning_report(model, 0, warn=False)][0]
    assert h["sparsity/d1/kernel"][1] == pytest.approx(d1)
    with open(path) as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 2 and float(rows[1]["sparsity/out/kernel"]) >= 0


# ----------------------------------------------------------------------------- coverage
class Block(L.Layer):
    """A composite layer: two Dense sublayers and its own bias vector."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.a = L.Dense(5, name="a")
        self.b = L.Dense(4, name="b")

    def build(self, input_shape):
        self.shift = self.add_weight(name="shift", shape=(4,), initializer="zeros")

    def call(self, x):
        return self.b(self.a(x)) + self.shift


class OwnMatrix(keras.Model):
    """A subclassed model owning a matrix itself."""

    def __init__(self):
        super().__init__(name="own")
        self.d = L.Dense(4, name="d")

    def build(self, input_shape):
        self.w = self.add_weight(name="w", shape=(4, 3))
        super().build(input_shape)

    def call(self, x):
        return self.d(x) @ self.w


def test_composite_layers_mha_locally_connected_convlstm():
    keras.utils.set_random_seed(0)
    x = keras.Input((6, 4))
    h = L.MultiHeadAttention(2, 3, name="mha")(x, x)
    h = L.LocallyConnected1D(3, 2, name="lc1")(h)
    h = Block(name="block")(L.Flatten()(h))
    model = keras.Model(x, L.Dense(2, name="fc")(h))
    keys = [p.key for p in collect_prunable(model)]
    assert keys == ["mha/query/kernel", "mha/key/kernel", "mha/value/kernel",
                    "mha/attention_output/kernel", "lc1/kernel", "block/a/kernel",
                    "block/b/kernel", "fc/kernel"]
    cb = GlobalPruningCallback(sched.ConstantSparsity(0.7, begin_step=0, frequency=100))
    fit(model, [cb])
    zeros, n = zeros_and_total(model)
    assert zeros == num_pruned(0.7, n)

    x = keras.Input((3, 5, 5, 2))
    h = L.ConvLSTM2D(2, 3, return_sequences=True, name="cl2")(x)
    h = L.Reshape((3, 9, 2))(h)
    h = L.ConvLSTM1D(2, 2, name="cl1")(h)
    h = L.LocallyConnected2D(2, 2, name="lc2")(L.Reshape((4, 4, 1))(L.Flatten()(h)))
    model = keras.Model(x, L.Dense(2, name="fc")(L.Flatten()(h)))
    assert [p.key for p in collect_prunable(model)] == [
        "cl2/kernel", "cl2/recurrent_kernel", "cl1/kernel", "cl1/recurrent_kernel",
        "lc2/kernel", "fc/kernel"]
    masks = prune_global(model, 0.6, 0)
    zeros, n = zeros_and_total(model)
    assert zeros == num_pruned(0.6, n) and set(masks) == {p.key for p in collect_prunable(model)}
    cl3 = keras.Sequential([keras.Input((2, 3, 3, 3, 1)), L.ConvLSTM3D(2, 2, name="cl3")])
    assert [p.key for p in collect_prunable(cl3)] == ["cl3/kernel", "cl3/recurrent_kernel"]


@pytest.mark.bad_input
def test_weights_outside_known_layers_are_refused_by_name():
    own = OwnMatrix()
    own(np.zeros((1, 5), np.float32))
    with pytest.raises(ValueError, match="model 'own' .*owns the weight 'w' \\(4, 3\\)"):
        collect_prunable(own)
    lc = keras.Sequential([keras.Input((6, 4)), L.LocallyConnected1D(3, 2, implementation=2,
                                                                    name="lc")])
    with pytest.raises(ValueError, match="'lc' .*implementation=2"):
        collect_prunable(lc)


def test_keras_applications_mobilenet_prune_save_reload_fit(tmp_path):
    keras.utils.set_random_seed(0)
    model = keras.applications.MobileNet(input_shape=(32, 32, 3), alpha=0.25, weights=None,
                                         classes=4)
    prune_global(model, 0.9)
    zeros, n = zeros_and_total(model)
    assert zeros == num_pruned(0.9, n)
    fit(model, [GlobalPruningCallback()], epochs=1, n=4, batch=2)
    model.save(tmp_path / "m.keras")
    back = keras.models.load_model(tmp_path / "m.keras")
    pruned = {p.key: p.variable.numpy() == 0 for p in collect_prunable(back)}
    s = sched.ConstantSparsity(0.9, begin_step=0, frequency=100)
    fit(back, [GlobalPruningCallback(s)], epochs=1, n=4, batch=2)
    assert zeros_and_total(back)[0] == num_pruned(0.9, n)
    for p in collect_prunable(back):
        assert (p.variable.numpy()[pruned[p.key]] == 0).all()
