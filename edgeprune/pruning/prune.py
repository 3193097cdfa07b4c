"""One-shot pruning of a Keras model, tfmot's uniform baseline, and ``strip``.

Contract: :func:`make_masks` computes masks for any method without touching the model;
:func:`prune_global` computes Global MP (+MT) masks and applies them (pruned weights
become exactly 0). :func:`strip` returns a plain Keras model with the same outputs.
"""

from __future__ import annotations

import numpy as np
import tensorflow_model_optimization as tfmot
import tf_keras as keras

from edgeprune.pruning.masks import Masks, apply_masks
from edgeprune.pruning.methods import keep_masks
from edgeprune.pruning.policy import collect_prunable
from edgeprune.pruning.ranking import DEFAULT_MIN_THRESHOLD, check_sparsity
from edgeprune.pruning.ranking import global_threshold as _global_threshold

__all__ = ["global_threshold", "make_masks", "prune_global", "strip", "uniform_masks_tfmot"]


def make_masks(
    model: keras.Model,
    method: str,
    sparsity: float,
    min_threshold: float | int | None = None,
    seed: int = 0,
) -> Masks:
    """Masks of ``method`` (``global, global_mt, uniform, erk, lamp, random, iht``) at
    global ``sparsity`` from the model's current weights. The model is not modified.

    ``min_threshold=None``: the method's default (0.05 % for ``global_mt``, none else).
    """
    prunable = collect_prunable(model)
    weights = [p.variable.numpy() for p in prunable]
    masks = keep_masks(method, weights, sparsity, min_threshold, seed)
    return {p.key: m for p, m in zip(prunable, masks, strict=True)}


def prune_global(
    model: keras.Model,
    sparsity: float,
    min_threshold: float | int = DEFAULT_MIN_THRESHOLD,
    *,
    apply: bool = True,
) -> Masks:
    """One-shot Global MP with a Minimum Threshold (``min_threshold=0``: none).

    Exactly ``round(s*N)`` of the ``N`` prunable weights are pruned; with ``apply`` they
    are set to 0 in ``model``. Returns the masks (``True`` = kept).
    """
    method = "global_mt" if min_threshold else "global"
    masks = make_masks(model, method, sparsity, min_threshold if min_threshold else None)
    if apply:
        apply_masks(model, masks)
    return masks


def global_threshold(model: keras.Model, sparsity: float) -> float:
    """The k-th smallest ``|w|`` over all prunable weights (k = round(s*N)), no floor."""
    return _global_threshold([p.variable.numpy() for p in collect_prunable(model)], sparsity)


def strip(model: keras.Model, masks: Masks | None = None) -> keras.Model:
    """A plain Keras model with the same outputs, ready for export.

    A model wrapped by tfmot's ``prune_low_magnitude`` is unwrapped with
    ``tfmot.sparsity.keras.strip_pruning`` (masks folded into the weights). A model pruned
    by edgeprune carries no wrapper: with ``masks`` they are applied (exact zeros) and
    the same model object is returned.
    """
    wrapped = any(type(layer).__name__ == "PruneLowMagnitude" for layer in model.layers)
    if wrapped:
        if masks is not None:
            raise ValueError("masks cannot be applied to a tfmot-wrapped model; strip first")
        for layer in model.layers:
            if type(layer).__name__ == "PruneLowMagnitude":
                for weight, mask, _ in layer.pruning_vars:
                    weight.assign(weight * mask)
        return tfmot.sparsity.keras.strip_pruning(model)
    if masks is not None:
        apply_masks(model, masks)
    return model


def _dummy_inputs(model: keras.Model):
    shapes = model.input_shape if isinstance(model.input_shape, list) else [model.input_shape]
    xs = []
    for shape in shapes:
        if any(d is None for d in shape[1:]):
            raise ValueError(f"model {model.name!r} needs a fully known input shape, got {shape}")
        xs.append(np.zeros((1, *shape[1:]), dtype=np.float32))
    return xs if len(xs) > 1 else xs[0]


def uniform_masks_tfmot(model: keras.Model, sparsity: float) -> Masks:
    """Uniform masks computed by tfmot itself (``prune_low_magnitude`` +
    ``ConstantSparsity``); ``model``'s weights are restored afterwards.

    tfmot does not prune depthwise kernels (``DepthwiseConv2D``, the depthwise half of
    ``SeparableConv``): those masks are all ``True`` here, unlike ``method="uniform"``.

    The documented tfmot path for the ``uniform`` baseline; :func:`make_masks` with
    ``method="uniform"`` gives the same masks when no magnitudes tie.
    """
    s = check_sparsity(sparsity)
    prunable = collect_prunable(model)
    saved = [p.variable.numpy() for p in prunable]
    schedule = tfmot.sparsity.keras.ConstantSparsity(s, begin_step=0, frequency=1)
    by_id = {id(p.variable): p.key for p in prunable}
    masks: Masks = {p.key: np.ones(p.shape, dtype=bool) for p in prunable}
    try:  # tfmot wraps the original layers (no cloning of custom cells), then we restore
        pruned = tfmot.sparsity.keras.prune_low_magnitude(model, pruning_schedule=schedule)
        wrappers = [la for la in pruned.layers if type(la).__name__ == "PruneLowMagnitude"]
        for w in wrappers:
            w.pruning_step.assign(0)
        pruned(_dummy_inputs(model), training=True)  # runs the mask update once
        for w in wrappers:
            for weight, mask, _ in w.pruning_vars:
                if id(weight) not in by_id:
                    raise ValueError(f"tfmot pruned {weight.name!r}, unknown to edgeprune")
                masks[by_id[id(weight)]] = mask.numpy() != 0
    finally:
        for p, value in zip(prunable, saved, strict=True):
            p.variable.assign(value)
    return masks
