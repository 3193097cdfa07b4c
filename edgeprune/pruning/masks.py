"""Masks: a ``dict`` from weight key (see :func:`collect_prunable`) to a boolean array
(``True`` = kept), and the operations on them.

Contract: :func:`apply_masks` sets every pruned weight to exactly ``0.0`` and, given an
optimizer, also zeroes that weight's optimizer slots (Adam's moments, momentum...), so
a later step starts from no memory of it. :func:`save_masks` / :func:`load_masks` round
trip through one ``.npz`` (keys preserved; extra ``meta`` stored as JSON).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping

import numpy as np
import tensorflow as tf
import tf_keras as keras

from edgeprune.pruning.policy import PrunableWeight, collect_prunable

__all__ = [
    "Masks",
    "apply_masks",
    "check_masks",
    "load_masks",
    "masks_from_weights",
    "masks_sparsity",
    "optimizer_slots",
    "save_masks",
]

Masks = dict[str, np.ndarray]
_META_KEY = "__edgeprune_meta__"


def check_masks(prunable: list[PrunableWeight], masks: Mapping[str, np.ndarray]) -> None:
    """``ValueError`` unless ``masks`` has exactly the keys and shapes of ``prunable``."""
    want = {p.key: p.shape for p in prunable}
    missing = sorted(set(want) - set(masks))
    extra = sorted(set(masks) - set(want))
    if missing or extra:
        raise ValueError(f"masks do not fit the model: missing {missing}, unexpected {extra}")
    for key, shape in want.items():
        if tuple(np.shape(masks[key])) != shape:
            raise ValueError(
                f"mask {key!r} has shape {tuple(np.shape(masks[key]))}, weight has {shape}"
            )


def masks_from_weights(model: keras.Model) -> Masks:
    """Masks of an already pruned model: ``True`` where the weight is non-zero."""
    return {p.key: p.variable.numpy() != 0 for p in collect_prunable(model)}


def masks_sparsity(masks: Mapping[str, np.ndarray]) -> float:
    """Fraction of masked-out entries over all masks."""
    total = sum(int(np.size(m)) for m in masks.values())
    kept = sum(int(np.count_nonzero(m)) for m in masks.values())
    return 1.0 - kept / total if total else 0.0


def optimizer_slots(optimizer: object, variable: tf.Variable) -> list[tf.Variable]:
    """The optimizer's per-weight state for ``variable`` (same shape), possibly empty.

    Handles tf_keras optimizers (new: slot lists aligned with ``_index_dict``; legacy:
    ``get_slot``). Slots not created yet (before the first step) give ``[]``.
    """
    if optimizer is None:
        return []
    shape = tuple(variable.shape)
    inner = getattr(optimizer, "inner_optimizer", None)  # LossScaleOptimizer
    if inner is not None:
        return optimizer_slots(inner, variable)
    if hasattr(optimizer, "get_slot_names") and hasattr(optimizer, "get_slot"):
        out = []
        for name in optimizer.get_slot_names():
            try:
                slot = optimizer.get_slot(variable, name)
            except (KeyError, ValueError):
                continue
            if slot is not None and tuple(slot.shape) == shape:
                out.append(slot)
        return out
    index = getattr(optimizer, "_index_dict", None)
    var_key = getattr(optimizer, "_var_key", None)
    if not index or var_key is None:
        return []
    i = index.get(var_key(variable))
    if i is None:
        return []
    out = []
    for name, value in vars(optimizer).items():
        if name == "_variables" or not isinstance(value, list) or len(value) != len(index):
            continue
        slot = value[i]
        if isinstance(slot, tf.Variable) and tuple(slot.shape) == shape:
            out.append(slot)
    return out


def apply_masks(
    model: keras.Model,
    masks: Mapping[str, np.ndarray],
    optimizer: object | None = None,
) -> None:
    """Zero the pruned weights of ``model`` (and their ``optimizer`` slots) in place."""
    prunable = collect_prunable(model)
    check_masks(prunable, masks)
    for p in prunable:
        m = np.asarray(masks[p.key], dtype=bool)
        value = np.where(m, p.variable.numpy(), 0)
        p.variable.assign(value.astype(p.variable.dtype.as_numpy_dtype))
        for slot in optimizer_slots(optimizer, p.variable):
            slot.assign(np.where(m, slot.numpy(), 0).astype(slot.dtype.as_numpy_dtype))


def save_masks(masks: Mapping[str, np.ndarray], path: str | os.PathLike,
               meta: Mapping | None = None) -> None:
    """Write ``masks`` (and JSON-able ``meta``) to one ``.npz`` file."""
    if _META_KEY in masks:
        raise ValueError(f"mask key {_META_KEY!r} is reserved")
    arrays = {k: np.asarray(v, dtype=bool) for k, v in masks.items()}
    arrays[_META_KEY] = np.array(json.dumps(dict(meta or {})))
    with open(path, "wb") as fh:
        np.savez_compressed(fh, **arrays)


def load_masks(path: str | os.PathLike, with_meta: bool = False):
    """Read masks written by :func:`save_masks`; ``with_meta=True`` returns ``(masks, meta)``."""
    with np.load(path, allow_pickle=False) as data:
        masks = {k: data[k].astype(bool) for k in data.files if k != _META_KEY}
        meta = json.loads(str(data[_META_KEY])) if _META_KEY in data.files else {}
    return (masks, meta) if with_meta else masks
