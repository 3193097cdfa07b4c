"""Masks and the schedule's position travel with the model: save/reload (.keras, .h5,
SavedModel), BackupAndRestore, a fit without the callback; shortfall warnings."""

import warnings

import numpy as np
import pytest
import tensorflow_model_optimization as tfmot
import tf_keras as keras

import edgeprune  # noqa: F401  (selects tf_keras)
from edgeprune.pruning import (
    GlobalPruningCallback,
    PruningShortfallWarning,
    collect_prunable,
    prune_global,
    pruning_report,
)
from edgeprune.pruning.ranking import num_pruned

sched = tfmot.sparsity.keras
N = 8 * 6 + 6 * 3  # prunable weights of small_model: 66


def small_model(seed=0):
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([
        keras.layers.Input((8,)),
        keras.layers.Dense(6, activation="relu", name="d1"),
        keras.layers.Dense(3, name="out"),
    ])
    model.compile(keras.optimizers.Adam(0.05),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def data(n=32, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 8)).astype("float32"), rng.integers(0, 3, size=n)


def zeros(model):
    return sum(int(np.count_nonzero(p.variable.numpy() == 0)) for p in collect_prunable(model))


def zero_masks(model):
    return {p.key: p.variable.numpy() == 0 for p in collect_prunable(model)}


def still_zero(model, pruned):
    return all((p.variable.numpy()[pruned[p.key]] == 0).all() for p in collect_prunable(model))


class Spy(keras.callbacks.Callback):
    """Zeros of the prunable weights after every train batch."""

    def __init__(self):
        super().__init__()
        self.seen = []

    def on_train_batch_end(self, batch, logs=None):
        self.seen.append(zeros(self.model))


RAMP = dict(initial_sparsity=0.0, final_sparsity=0.8, begin_step=0, end_step=8, frequency=2)


@pytest.mark.parametrize("fmt", ["keras", "h5", "tf"])
def test_save_reload_keeps_zeros_and_schedule_position(tmp_path, fmt):
    x, y = data()
    model = small_model()
    model.fit(x, y, batch_size=8, epochs=1, verbose=0,  # steps 0..3: half pruned
              callbacks=[GlobalPruningCallback(sched.PolynomialDecay(**RAMP))])
    half = zeros(model)
    assert 0 < half < num_pruned(0.8, N)
    path = str(tmp_path / ("m.keras" if fmt == "keras" else "m.h5" if fmt == "h5" else "m"))
    model.save(path)
    pruned = zero_masks(model)

    back = keras.models.load_model(path)  # the documented resume: the same line again
    cb, spy = GlobalPruningCallback(sched.PolynomialDecay(**RAMP)), Spy()
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        back.fit(x, y, batch_size=8, epochs=2, verbose=0, callbacks=[cb, spy])
    said = [str(w.message) for w in got if "sparse" in str(w.message)]
    if fmt == "tf":  # SavedModel drops the optimizer's iterations: step derived from zeros
        assert cb.step == 11 and len(said) == 1 and "resumes at step 3" in said[0]
    else:  # continued from the optimizer's iterations, no disagreement, no shortfall
        assert cb.step == 12 and said == []
    assert min(spy.seen) >= half and still_zero(back, pruned)
    assert zeros(back) == num_pruned(0.8, N)

    back.save(path)  # after the schedule ended: a fresh callback keeps the sparsity
    again = keras.models.load_model(path)
    final = zero_masks(again)
    again.fit(x, y, batch_size=8, epochs=2, verbose=0,
              callbacks=[GlobalPruningCallback(sched.PolynomialDecay(**RAMP))])
    assert zeros(again) == num_pruned(0.8, N) and still_zero(again, final)


class Stop(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        if epoch == 1:
            raise RuntimeError("preempted")


def test_backup_and_restore_resumes_step_and_masks(tmp_path):
    x, y = data()
    s = sched.PolynomialDecay(0.0, 0.8, begin_step=0, end_step=15, frequency=2)
    backup = str(tmp_path / "backup")
    model = small_model()
    cb = GlobalPruningCallback(s)
    with pytest.raises(RuntimeError, match="preempted"):  # dies after 2 epochs (8 steps)
        model.fit(x, y, batch_size=8, epochs=5, verbose=0,
                  callbacks=[cb, keras.callbacks.BackupAndRestore(backup), Stop()])
    at_stop = zeros(model)
    pruned = zero_masks(model)
    # a new process: fresh model and callback, ours listed before BackupAndRestore
    fresh = small_model(seed=1)
    cb2, spy = GlobalPruningCallback(s), Spy()
    fresh.fit(x, y, batch_size=8, epochs=5, verbose=0,
              callbacks=[cb2, keras.callbacks.BackupAndRestore(backup), spy])
    assert cb2.step == 20 and len(spy.seen) == 12  # epochs 3..5 resumed at step 8
    assert min(spy.seen) >= at_stop and still_zero(fresh, pruned)
    assert zeros(fresh) == num_pruned(0.8, N)


def test_fit_without_callback_is_reported_then_repaired():
    x, y = data()
    model = small_model()
    s = sched.ConstantSparsity(0.8, begin_step=0, end_step=4, frequency=4)
    model.fit(x, y, batch_size=8, epochs=2, verbose=0, callbacks=[GlobalPruningCallback(s)])
    assert zeros(model) == num_pruned(0.8, N)
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)  # no callback: weights regrow
    assert zeros(model) < num_pruned(0.8, N)
    with pytest.warns(PruningShortfallWarning, match="without GlobalPruningCallback"):
        pruning_report(model, min_threshold=0, target=s)
    with pytest.warns(UserWarning, match="grew back"):  # schedule over: re-pruned at once
        model.fit(x, y, batch_size=8, epochs=1, verbose=0,
                  callbacks=[GlobalPruningCallback(s)])
    assert zeros(model) == num_pruned(0.8, N)


def test_one_shot_then_hold_the_models_zeros():
    x, y = data()
    model = small_model()
    masks = prune_global(model, 0.7)
    model.fit(x, y, batch_size=8, epochs=2, verbose=0, callbacks=[GlobalPruningCallback()])
    for p in collect_prunable(model):
        assert (p.variable.numpy() != 0).tolist() == masks[p.key].tolist()


def test_shortfall_schedule_longer_than_training():
    x, y = data()
    model = small_model()
    s = sched.PolynomialDecay(0.0, 0.9, begin_step=0, end_step=2000, frequency=100)
    with pytest.warns(PruningShortfallWarning, match="ends at step 2000 but training ended"):
        model.fit(x, y, batch_size=8, epochs=2, verbose=0,
                  callbacks=[GlobalPruningCallback(s)])


def test_shortfall_frequency_misses_end_step():
    x, y = data()
    model = small_model()
    s = sched.PolynomialDecay(0.0, 0.8, begin_step=0, end_step=6, frequency=4)
    with pytest.warns(PruningShortfallWarning, match="last pruning step 4 comes before"):
        model.fit(x, y, batch_size=8, epochs=2, verbose=0,
                  callbacks=[GlobalPruningCallback(s)])


def test_steps_per_execution_reaches_target():
    x, y = data(n=64)
    model = small_model()
    model.compile(keras.optimizers.Adam(0.05),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  steps_per_execution=4)
    s = sched.PolynomialDecay(0.0, 0.8, begin_step=0, end_step=10, frequency=5)
    cb = GlobalPruningCallback(s)
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        model.fit(x, y, batch_size=4, epochs=1, verbose=0, callbacks=[cb])  # 16 steps
    assert cb.step == 16
    assert zeros(model) == num_pruned(0.8, N)
    assert not [w for w in got if issubclass(w.category, PruningShortfallWarning)]
    assert any("steps_per_execution=4" in str(w.message) for w in got)
