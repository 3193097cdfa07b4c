"""Data and model set-up for ``python -m edgeprune.bench sparsity``.

Three models, each with its data set and its fixed training budget (:data:`SPECS`):

``fastgrnn``      FastGRNN (hidden 80, w_rank 5, u_rank 40) on official UCI HAR-2.
``har_cnn``       the microcontroller HAR CNN (``edgeprune.models.har_cnn``) on UCI HAR-2.
``mobilenet_v1``  MobileNet-V1 at width ``alpha=0.25`` on scikit-learn's digits (8x8
                  grey images upsampled 4x by pixel repetition to 32x32, the smallest
                  input Keras' MobileNet accepts), 10 classes. A plain chain of 28
                  prunable tensors (no residual path), where layer collapse can show.
                  BatchNorm momentum 0.9 instead of Keras' 0.99: with ~17 steps per
                  epoch the moving statistics otherwise lag the weights (validation
                  stayed at chance for ~20 dense epochs, and 3 fine-tuning epochs
                  could not re-estimate them after pruning).

Digits is split 60/20/20 (train/val/test), stratified, with the split seed; HAR-2 uses
``har_data``'s subject-wise validation split. Models return logits (MobileNet's final
softmax is cut off; see :func:`build_model`).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

MODELS = ("fastgrnn", "har_cnn", "mobilenet_v1")
BN_MOMENTUM = 0.9  # MobileNet's BatchNorm moving-average momentum (Keras default 0.99)


@dataclass(frozen=True)
class ModelSpec:
    """Training budget of one model (full run and ``--quick``)."""

    name: str
    dataset: str  # "har2" | "digits"
    dense_epochs: int
    batch_size: int
    lr: float  # dense: Adam, cosine decay to 0, global_clipnorm 1.0
    ft_epochs: int
    ft_lr: float  # fine-tuning: Adam, cosine decay to 0 over the fine-tune budget
    min_threshold: float  # MT fraction used by global_mt
    quick_dense_epochs: int = 2
    quick_ft_epochs: int = 1

    def protocol(self, quick: bool) -> dict[str, Any]:
        """The settings that make results comparable (stored in ``config.json``)."""
        d = asdict(self)
        d.pop("quick_dense_epochs")
        d.pop("quick_ft_epochs")
        if quick:
            d["dense_epochs"], d["ft_epochs"] = self.quick_dense_epochs, self.quick_ft_epochs
        return d


# FastGRNN dense lr 5e-3 (training.FASTGRNN_DEFAULTS' lr since the fold study): with 1e-2
# (+ clipnorm 1.0, cosine over 40 epochs) seed 0 went NaN at epoch 7 on the full UCI HAR-2
# train split.
# Budgets chosen so the full grid (3 models x 7 methods x 6 sparsities x 2 seeds) fits in
# about 30-40 min on 2 free cores (see docs/benchmarks/sparsity/summary.md).
# MT: the paper's 0.05 % where it is feasible at 99 % sparsity; MobileNet-0.25 has 28
# prunable tensors, so 28 floors of ceil(0.0005 N) = 106 weights exceed the 1 % kept at
# s = 0.99 (infeasible): it uses 0.02 % (43 weights per tensor).
SPECS: dict[str, ModelSpec] = {
    "fastgrnn": ModelSpec("fastgrnn", "har2", dense_epochs=40, batch_size=128, lr=5e-3,
                          ft_epochs=3, ft_lr=3e-3, min_threshold=0.0005),
    "har_cnn": ModelSpec("har_cnn", "har2", dense_epochs=30, batch_size=64, lr=3e-3,
                         ft_epochs=4, ft_lr=1e-3, min_threshold=0.0005),
    "mobilenet_v1": ModelSpec("mobilenet_v1", "digits", dense_epochs=30, batch_size=64,
                              lr=5e-3, ft_epochs=5, ft_lr=5e-3, min_threshold=0.0002),
}


@dataclass
class Data:
    """Train/val/test arrays (inputs ready for the model) and the data set's name."""

    name: str
    xtr: np.ndarray
    ytr: np.ndarray
    xv: np.ndarray
    yv: np.ndarray
    xte: np.ndarray
    yte: np.ndarray

    @property
    def classes(self) -> int:
        """Number of classes (labels are 0..C-1)."""
        return int(max(self.ytr.max(), self.yv.max(), self.yte.max())) + 1

    @property
    def chance(self) -> float:
        """Majority-class rate on the test split (the accuracy of a constant output)."""
        return float(np.bincount(self.yte).max() / len(self.yte))

    def sizes(self) -> dict[str, int]:
        """Window/image counts per split."""
        return {"train": len(self.ytr), "val": len(self.yv), "test": len(self.yte)}


def _subset(x: np.ndarray, y: np.ndarray, n: int | None, seed: int) -> tuple:
    if n is None or n >= len(y):
        return x, y
    idx = np.sort(np.random.default_rng(seed).choice(len(y), size=n, replace=False))
    return x[idx], y[idx]


def load_har2(source: str, path: str | None, *, split_seed: int = 0,
              cache_dir: str | None = None, limit: dict[str, int] | None = None,
              seed: int = 0, val_subjects: int | None = None) -> Data:
    """Normalised HAR-2 windows from ``har_data``; ``limit`` keeps a seeded subset.

    ``val_subjects``: training volunteers held out for validation (``None``: har_data's
    default).
    """
    import har_data

    extra = {} if val_subjects is None else {"val_subjects": int(val_subjects)}
    ds = har_data.load(source, path=path, seed=split_seed, cache_dir=cache_dir, **extra)
    limit = limit or {}
    parts = []
    for i, (name, split) in enumerate((("train", ds.train), ("val", ds.val), ("test", ds.test))):
        x, y = _subset(ds.normalize(split.x), np.asarray(split.y, np.int64),
                       limit.get(name), seed + i)
        parts += [np.ascontiguousarray(x, np.float32), y]
    return Data(ds.name, *parts)


def load_digits32(*, split_seed: int = 0, limit: dict[str, int] | None = None,
                  images: np.ndarray | None = None, labels: np.ndarray | None = None) -> Data:
    """scikit-learn digits, 32x32x1 in [0, 1], stratified 60/20/20 split with ``split_seed``.

    ``images`` (N, 8, 8) / ``labels`` replace the real digits (tests, synthetic data).
    """
    if images is None:
        from sklearn.datasets import load_digits

        d = load_digits()
        images, labels = d.images, d.target
    x = (np.asarray(images, np.float32) / 16.0)[..., None]
    x = np.repeat(np.repeat(x, 4, axis=1), 4, axis=2)  # 8x8 -> 32x32, nearest
    y = np.asarray(labels, np.int64)
    rng = np.random.default_rng(split_seed)
    tr, va, te = [], [], []
    for c in np.unique(y):  # stratified
        idx = rng.permutation(np.flatnonzero(y == c))
        n_te = int(round(0.2 * len(idx)))
        n_va = int(round(0.2 * len(idx)))
        te += list(idx[:n_te])
        va += list(idx[n_te:n_te + n_va])
        tr += list(idx[n_te + n_va:])
    limit = limit or {}
    parts = []
    for i, (name, idx) in enumerate((("train", tr), ("val", va), ("test", te))):
        idx = np.sort(np.asarray(idx, np.int64))
        xs, ys = _subset(x[idx], y[idx], limit.get(name), split_seed + 10 + i)
        parts += [np.ascontiguousarray(xs), ys]
    return Data("sklearn-digits-32x32", *parts)


def build_model(name: str, data: Data, seed: int):
    """A fresh, seeded Keras model returning logits (Keras name counters reset first)."""
    import tf_keras as keras

    from edgeprune import models, training

    keras.backend.clear_session()
    training.set_seed(seed)
    if name == "fastgrnn":
        return models.fastgrnn_classifier(data.xtr.shape[1:], classes=data.classes,
                                          hidden=80, w_rank=5, u_rank=40, seed=seed)
    if name == "har_cnn":
        return models.har_cnn(data.xtr.shape[1:], classes=data.classes, seed=seed)
    if name == "mobilenet_v1":
        full = models.mobilenet_v1(0.25, input_shape=data.xtr.shape[1:], classes=data.classes)
        for layer in full.layers:  # ~17 steps per epoch on digits: Keras' BN momentum
            if isinstance(layer, keras.layers.BatchNormalization):  # 0.99 left the moving
                layer.momentum = BN_MOMENTUM  # statistics at chance for ~20 epochs
        # keras.applications' MobileNet ends in a softmax ("predictions"); the harness
        # (edgeprune.training) trains on logits, so cut the model before it.
        return keras.Model(full.input, full.get_layer("reshape_2").output, name=full.name)
    raise ValueError(f"unknown model {name!r}; expected one of {MODELS}")


def steps_per_epoch(n: int, batch_size: int) -> int:
    """Optimizer steps of one epoch."""
    return max(math.ceil(n / batch_size), 1)
