"""edgeprune.training: selection on validation, resume == uninterrupted, real-data smoke."""

import json

import numpy as np
import pytest
import tf_keras as keras

import edgeprune  # noqa: F401
from edgeprune import models, training


def _toy(n=192, t=16, d=4, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, t, d)).astype("float32")
    y = (x[:, :, 0].mean(1) + 0.3 * x[:, -1, 1] > 0).astype("int64")
    return x, y


def _model():
    return models.fastgrnn_classifier((16, 4), hidden=8, w_rank=2, u_rank=4, seed=3)


class _Interrupt(keras.callbacks.Callback):
    def __init__(self, at_epoch):
        super().__init__()
        self.at_epoch = at_epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.at_epoch:
            raise KeyboardInterrupt


def test_resume_equals_uninterrupted(tmp_path):
    x, y = _toy()
    xv, yv = _toy(96, seed=1)
    kw = dict(epochs=4, batch_size=32, lr=1e-2, seed=5, progress=False,
              augment=training.jitter(0.2, 0.1))
    straight_model = _model()
    straight = training.train(straight_model, (x, y), (xv, yv), **kw)

    ckpt = tmp_path / "ckpt"
    with pytest.raises(KeyboardInterrupt):  # 'interrupted' after 2 finished epochs
        training.train(_model(), (x, y), (xv, yv), checkpoint_dir=ckpt,
                       callbacks=[_Interrupt(2)], **kw)
    assert json.loads((ckpt / "state.json").read_text())["epoch"] == 2
    resumed_model = _model()  # a fresh process would rebuild the model
    resumed = training.train(resumed_model, (x, y), (xv, yv), checkpoint_dir=ckpt, **kw)
    assert resumed.resumed_from_epoch == 2
    assert resumed.selected_epoch == straight.selected_epoch
    for key in ("loss", "accuracy", "val_loss", "val_accuracy", "lr"):
        np.testing.assert_allclose(resumed.history[key], straight.history[key], rtol=1e-6,
                                   err_msg=key)
    for a, b in zip(resumed_model.get_weights(), straight_model.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    # finished run: calling again trains nothing more and returns the same selection
    again = training.train(_model(), (x, y), (xv, yv), checkpoint_dir=ckpt, **kw)
    assert again.epochs == 4 and again.selected_epoch == straight.selected_epoch


def test_selects_best_validation_epoch_and_restores_it(tmp_path):
    x, y = _toy()
    xv, yv = _toy(96, seed=1)
    model = _model()
    res = training.train(model, (x, y), (xv, yv), epochs=5, batch_size=32, lr=3e-2, seed=0,
                         progress=False)
    acc = res.history["val_accuracy"]
    assert res.selected_epoch == int(np.argmax(acc)) + 1  # ties: lower val loss, not used here
    assert res.best_val_accuracy == pytest.approx(max(acc))
    _, val_acc = model.evaluate(xv, yv, verbose=0)
    assert val_acc == pytest.approx(max(acc), abs=1e-6)
    assert len(res.epoch_seconds) == 5 and res.seconds_total > 0
    out = training.plot_history(res, tmp_path / "curves.png")
    assert out.stat().st_size > 1000


def test_schedule_epochs_follows_the_first_epochs_of_a_longer_run():
    x, y = _toy()
    xv, yv = _toy(96, seed=1)
    kw = dict(batch_size=32, lr=1e-2, seed=2, progress=False, warmup_epochs=1)
    long = training.train(_model(), (x, y), (xv, yv), epochs=5, **kw)
    short = training.train(_model(), (x, y), (xv, yv), epochs=3, schedule_epochs=5, **kw)
    plain = training.train(_model(), (x, y), (xv, yv), epochs=3, **kw)
    for key in ("lr", "loss", "val_loss"):
        np.testing.assert_allclose(short.history[key], long.history[key][:3], rtol=1e-6,
                                   err_msg=key)
    assert plain.history["lr"][2] < 0.9 * short.history["lr"][2]  # its own, shorter decay


class _LastWeights(keras.callbacks.Callback):
    def on_train_end(self, logs=None):
        self.weights = self.model.get_weights()


def test_without_validation_keeps_the_last_epoch():
    x, y = _toy()
    model, last = _model(), _LastWeights()
    res = training.train(model, (x, y), None, epochs=3, batch_size=32, lr=3e-2, seed=0,
                         progress=False, callbacks=[last])
    assert res.selected_epoch == 3 and res.epochs == 3
    assert np.isnan(res.history["val_accuracy"]).all()
    for a, b in zip(model.get_weights(), last.weights, strict=True):
        np.testing.assert_array_equal(a, b)


def test_same_seed_same_result():
    x, y = _toy(96)
    runs = [training.train(_model(), (x, y), (x, y), epochs=2, batch_size=32, seed=1,
                           progress=False).history["loss"] for _ in range(2)]
    assert runs[0] == runs[1]


def test_jitter_is_seeded_and_shape_preserving():
    x = np.ones((5, 7, 3), "float32")
    a = training.jitter(0.2, 0.1)(x, np.random.default_rng(0))
    b = training.jitter(0.2, 0.1)(x, np.random.default_rng(0))
    assert a.shape == x.shape and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    assert 0.1 < float(np.std(a)) < 0.4


def test_optimizer_clips_and_schedules():
    opt = training.make_optimizer(1e-2, schedule="cosine", total_steps=100)
    assert opt.global_clipnorm == 1.0
    assert float(opt._learning_rate(100)) == pytest.approx(0.0, abs=1e-9)
    step = training.make_optimizer(1e-2, schedule="step", total_steps=100)
    assert float(step._learning_rate(80)) == pytest.approx(1e-4)


@pytest.mark.bad_input
def test_bad_training_arguments(tmp_path):
    x, y = _toy(64)
    with pytest.raises(ValueError, match="epochs"):
        training.train(_model(), (x, y), (x, y), epochs=0, progress=False)
    with pytest.raises(ValueError, match="batch_size"):
        training.train(_model(), (x, y), (x, y), epochs=1, batch_size=0, progress=False)
    with pytest.raises(ValueError, match="schedule"):
        training.make_optimizer(1e-2, schedule="linear")
    with pytest.raises(ValueError, match="schedule_epochs"):
        training.train(_model(), (x, y), (x, y), epochs=3, schedule_epochs=2, progress=False)
    with pytest.raises(ValueError, match="train_data"):
        training.train(_model(), (x, y[:3]), (x, y), epochs=1, progress=False)
    training.train(_model(), (x, y), (x, y), epochs=1, seed=0, checkpoint_dir=tmp_path,
                   progress=False)
    with pytest.raises(ValueError, match="checkpoint_dir"):
        training.train(_model(), (x, y), (x, y), epochs=2, seed=1, checkpoint_dir=tmp_path,
                       progress=False)


CHANNELS = [f"{k}_{a}" for k in ("body_acc", "body_gyro", "total_acc") for a in "xyz"]


@pytest.mark.needs_uci
@pytest.mark.parametrize("builder", ["fastgrnn", "cnn"])
def test_short_training_on_real_data(uci_mirror, builder):
    x = np.stack([np.load(uci_mirror / f"{c}_train.npy") for c in CHANNELS], -1)
    act, subj = np.load(uci_mirror / "y_train.npy"), np.load(uci_mirror / "subject_train.npy")
    y = np.isin(act, [2, 4, 6]).astype("int64")
    tr, va = np.isin(subj, [1, 3, 5, 6]), np.isin(subj, [7, 8])  # a small subset
    mean, std = x[tr].reshape(-1, 9).mean(0), x[tr].reshape(-1, 9).std(0)
    x = ((x - mean) / std).astype("float32")
    model = models.fastgrnn_classifier() if builder == "fastgrnn" else models.har_cnn()
    res = training.train(model, (x[tr], y[tr]), (x[va], y[va]), epochs=3, batch_size=64,
                         lr=1e-2 if builder == "fastgrnn" else 3e-3, seed=0, progress=False)
    assert res.history["loss"][-1] < res.history["loss"][0]
    assert res.best_val_accuracy > 0.7  # chance is ~0.5


def test_warmup_rises_then_decays_to_zero():
    opt = training.make_optimizer(1e-2, schedule="cosine", total_steps=100, warmup_steps=10)
    lr = [float(opt._learning_rate(s)) for s in (0, 5, 10, 55, 100)]
    assert lr[0] == pytest.approx(1e-3) and lr[1] == pytest.approx(5.5e-3)
    assert lr[2] == pytest.approx(1e-2) and lr[2] > lr[3] > lr[4]
    assert lr[4] == pytest.approx(0.0, abs=1e-9)
    with pytest.raises(ValueError, match="warmup_steps"):
        training.make_optimizer(1e-2, schedule="step", total_steps=100, warmup_steps=10)
    with pytest.raises(ValueError, match="warmup_steps"):
        training.make_optimizer(1e-2, total_steps=100, warmup_steps=100)


def test_rotate_is_a_rigid_rotation_of_each_sensor_triplet():
    rng = np.random.default_rng(3)
    mean, std = rng.normal(size=9), rng.uniform(0.5, 2.0, size=9)
    raw = rng.normal(size=(4, 16, 9))
    x = ((raw - mean) / std).astype(np.float32)
    out = training.rotate(20.0, mean, std)(x, np.random.default_rng(0))
    again = training.rotate(20.0, mean, std)(x, np.random.default_rng(0))
    np.testing.assert_array_equal(out, again)
    assert out.shape == x.shape and out.dtype == np.float32
    back = out.astype(np.float64) * std + mean
    for c in (0, 3, 6):  # lengths kept per time step, one rotation per window for all triplets
        np.testing.assert_allclose(np.linalg.norm(back[..., c:c + 3], axis=-1),
                                   np.linalg.norm(raw[..., c:c + 3], axis=-1), rtol=1e-4)
    for n in range(4):
        r, *_ = np.linalg.lstsq(raw[n, :, 0:3], back[n, :, 0:3], rcond=None)
        r2, *_ = np.linalg.lstsq(raw[n, :, 6:9], back[n, :, 6:9], rcond=None)
        np.testing.assert_allclose(r, r2, atol=1e-4)
        np.testing.assert_allclose(r.T @ r, np.eye(3), atol=1e-4)
        angle = np.degrees(np.arccos(np.clip((np.trace(r) - 1) / 2, -1, 1)))
        assert 0 < angle <= 20.0 + 1e-3
    assert not np.allclose(out, x)


def test_augment_from_builds_rotation_then_jitter():
    mean, std = np.zeros(9), np.ones(9)
    assert training.augment_from({"augment": 0.0}) is None
    with pytest.raises(ValueError, match="mean and std"):
        training.augment_from({"rotate": 15})
    aug = training.augment_from({"rotate": 15, "augment": 0.2}, mean, std)
    x = np.ones((3, 8, 9), "float32")
    a, b = aug(x, np.random.default_rng(1)), aug(x, np.random.default_rng(1))
    np.testing.assert_array_equal(a, b)
    assert a.shape == x.shape and not np.allclose(a, x)
    with pytest.raises(ValueError, match="max_degrees"):
        training.rotate(0.0, mean, std)
    with pytest.raises(ValueError, match="9-channel"):
        training.rotate(10.0, np.zeros(3), np.ones(3))


def _inverted_teacher(t=16, d=4):
    """A fixed model whose logits favour the opposite of ``_toy``'s label."""
    inputs = keras.Input((t, d))
    score = keras.layers.Lambda(lambda x: keras.backend.mean(x[:, :, 0], axis=1, keepdims=True)
                                + 0.3 * x[:, -1, 1:2])(inputs)
    logits = keras.layers.Lambda(lambda s: 20.0 * keras.backend.concatenate([s, -s]))(score)
    return keras.Model(inputs, logits)


def test_distillation_alpha_one_is_plain_training():
    x, y = _toy(96)
    plain = training.train(_model(), (x, y), (x, y), epochs=2, batch_size=32, seed=1,
                           progress=False).history["loss"]
    distilled = training.train(_model(), (x, y), (x, y), epochs=2, batch_size=32, seed=1,
                               progress=False, teacher=_inverted_teacher(),
                               distill_alpha=1.0).history["loss"]
    np.testing.assert_allclose(distilled, plain, rtol=1e-6)


def test_distillation_follows_the_teacher_not_the_labels():
    x, y = _toy(384)
    student = _model()  # validation scored on the teacher's answers: selection follows it too
    training.train(student, (x, y), (x, 1 - y), epochs=12, batch_size=32, lr=1e-2, seed=0,
                   progress=False, teacher=_inverted_teacher(), distill_alpha=0.0)
    pred = np.argmax(student.predict(x, verbose=0), axis=1)
    assert np.mean(pred == 1 - y) > 0.75  # the teacher's (inverted) answers, not y
    plain = _model()  # a later call without a teacher trains on the labels again
    training.train(plain, (x, y), (x, y), epochs=12, batch_size=32, lr=1e-2, seed=0,
                   progress=False)
    assert np.mean(np.argmax(plain.predict(x, verbose=0), axis=1) == y) > 0.75


@pytest.mark.bad_input
def test_bad_distillation_arguments():
    x, y = _toy(64)
    for kwargs, name in (({"distill_alpha": 1.5}, "distill_alpha"),
                         ({"temperature": 0.0}, "temperature")):
        with pytest.raises(ValueError, match=name):
            training.train(_model(), (x, y), (x, y), epochs=1, progress=False,
                           teacher=_inverted_teacher(), **kwargs)
    three = keras.Sequential([keras.Input((16, 4)), keras.layers.Flatten(),
                              keras.layers.Dense(3)])
    with pytest.raises(ValueError, match="teacher output shape"):
        training.train(_model(), (x, y), (x, y), epochs=1, progress=False, teacher=three)


def test_loss_rise_flags_a_climbing_loss_and_nan_but_not_noise():
    assert training.loss_rise({"loss": [0.9, 0.5, 0.4, 0.42, 0.38, 0.3]}) is None
    assert training.loss_rise({"loss": [0.05, 0.02, 0.045, 0.03]}) is None  # < margin
    warning = training.loss_rise({"loss": [0.7, 0.4, 0.6, 0.96, 0.5, 0.2]})
    assert warning is not None and "0.400 (epoch 2)" in warning and "0.960 (epoch 4)" in warning
    assert "epoch 3" in training.loss_rise({"loss": [0.7, 0.4, float("nan")]})
    assert training.loss_rise({"loss": []}) is None
