"""Gradual (or one-shot-then-fine-tune) pruning during ``fit``: :class:`GlobalPruningCallback`.

Contract, for a tfmot user: replace ``prune_low_magnitude(model, pruning_schedule=s)`` +
``UpdatePruningStep()`` by ``callbacks=[GlobalPruningCallback(s)]`` on the unwrapped model.

* Step counter: starts at ``model.optimizer.iterations`` (as tfmot's
  ``UpdatePruningStep``) or at the resumed ``step``; +1 per train batch.
* At the start of a batch where ``schedule(step)`` says prune, new masks are computed
  from the current weights by ``method`` at the schedule's *global* sparsity and applied.
* Masks hold: after every train batch (every optimizer step) pruned weights are set to
  exactly 0 and their optimizer slots (Adam moments) zeroed, so nothing is resurrected.
  Needs ``steps_per_execution=1`` (a warning otherwise: masks are then re-applied per
  execution only).
* ``method="iht"`` (EdgeML): before ``begin_step`` dense; during ``[begin, end]`` each
  pruning step hard-thresholds every matrix to its own top-k (weights only: optimizer
  state kept, as EdgeML's assign op) but the support is *not* held between
  thresholdings (weights may re-enter); at the first step after ``end_step`` the
  weights are thresholded once more at the schedule's sparsity and that support is
  frozen (sparse retraining: weights and slots masked after every step). If training
  ends inside the IHT phase the weights are hard-thresholded once more so the model
  is sparse.
* Resume: ``get_config()``/``from_config()`` carry the schedule, options and ``step``;
  :meth:`save_state`/:meth:`load_state` add the masks in one ``.npz``.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping

import numpy as np
import tensorflow as tf
import tf_keras as keras

from edgeprune.pruning.masks import Masks, check_masks, load_masks, optimizer_slots, save_masks
from edgeprune.pruning.methods import keep_masks, resolve_min_threshold
from edgeprune.pruning.policy import collect_prunable
from edgeprune.pruning.ranking import check_feasible, check_sparsity
from edgeprune.pruning.schedule import (
    PruningSchedule,
    deserialize_schedule,
    final_sparsity,
    schedule_at,
    serialize_schedule,
)

__all__ = ["GlobalPruningCallback"]


class GlobalPruningCallback(keras.callbacks.Callback):
    """Prune ``self.model`` during ``fit`` to a tfmot schedule's global sparsity.

    Args:
      schedule: a ``tfmot.sparsity.keras.PruningSchedule`` (global target per step), or
        ``None`` to only hold the given ``masks`` (fine-tuning after one-shot pruning:
        ``GlobalPruningCallback(None, masks=prune_global(model, 0.9))``).
      min_threshold: Minimum Threshold (fraction of all prunable weights, or an int
        count); ``None`` = the method's default (0.05 % for ``global_mt``).
      frequency: prune every ``frequency`` steps within the schedule's
        ``[begin_step, end_step]``; ``None`` = the schedule's own frequency.
      method: one of ``global, global_mt, uniform, erk, lamp, random, iht``.
      seed: for ``random``.
      masks, step, held: resumed state (see :meth:`load_state`).
    """

    def __init__(
        self,
        schedule: PruningSchedule | None,
        min_threshold: float | int | None = None,
        frequency: int | None = None,
        method: str = "global_mt",
        seed: int = 0,
        masks: Masks | None = None,
        step: int | None = None,
        held: bool | None = None,
    ) -> None:
        super().__init__()
        self.min_threshold = resolve_min_threshold(method, min_threshold)
        self._min_threshold_arg = min_threshold
        self.method = method
        self.schedule = schedule
        self.frequency = frequency
        if schedule is None:
            if not masks:
                raise ValueError("schedule=None holds given masks: pass masks=")
        else:
            schedule_at(schedule, 0, frequency)  # validates schedule and frequency early
        self.seed = int(seed)
        self.masks: Masks | None = (
            {k: np.asarray(v, dtype=bool) for k, v in masks.items()} if masks else None
        )
        self.step = None if step is None else int(step)
        self.held = bool(self.masks) if held is None else bool(held)
        self._prunable = None
        self._apply_fn = None
        self._slots_ready = False

    # ----- state -----------------------------------------------------------------
    def get_config(self) -> dict:
        """JSON-able constructor arguments, including the current ``step`` (not masks)."""
        return {
            "schedule": None if self.schedule is None else serialize_schedule(self.schedule),
            "min_threshold": self._min_threshold_arg,
            "frequency": self.frequency,
            "method": self.method,
            "seed": self.seed,
            "step": self.step,
            "held": self.held,
        }

    @classmethod
    def from_config(cls, config: Mapping, custom_objects: Mapping | None = None,
                    masks: Masks | None = None) -> GlobalPruningCallback:
        """Rebuild from :meth:`get_config` (masks passed separately)."""
        cfg = dict(config)
        if cfg["schedule"] is not None:
            cfg["schedule"] = deserialize_schedule(cfg["schedule"], custom_objects)
        return cls(**cfg, masks=masks)

    def save_state(self, path: str | os.PathLike) -> None:
        """Config + step + masks in one ``.npz`` (see :func:`save_masks`)."""
        save_masks(self.masks or {}, path, meta={"callback": self.get_config()})

    @classmethod
    def load_state(cls, path: str | os.PathLike,
                   custom_objects: Mapping | None = None) -> GlobalPruningCallback:
        """A callback that resumes the run saved by :meth:`save_state`."""
        masks, meta = load_masks(path, with_meta=True)
        if "callback" not in meta:
            raise ValueError(f"{os.fspath(path)!r} holds masks but no callback state")
        return cls.from_config(meta["callback"], custom_objects, masks=masks or None)

    # ----- mechanics -------------------------------------------------------------
    def _slot_pairs(self) -> list:
        opt = getattr(self.model, "optimizer", None)
        pairs = []
        for p, mv in zip(self._prunable, self._mask_vars, strict=True):
            pairs.append((p.variable, mv))
            pairs.extend((slot, mv) for slot in optimizer_slots(opt, p.variable))
        return pairs

    def _build_apply(self, pairs: list | None = None) -> None:
        pairs = self._slot_pairs() if pairs is None else pairs
        self._n_pairs = len(pairs)
        weights_only = [(p.variable, mv) for p, mv in zip(self._prunable, self._mask_vars,
                                                             strict=True)]

        def make(targets):
            @tf.function(autograph=False)
            def apply():
                for var, mask in targets:
                    var.assign(tf.where(mask, var, tf.zeros_like(var)))

            return apply

        self._apply_fn = make(pairs)  # weights and optimizer slots
        self._threshold_fn = make(weights_only)  # IHT's hard threshold: weights only

    def _set_masks(self, masks: Masks, slots: bool = True) -> None:
        self.masks = masks
        for p, mv in zip(self._prunable, self._mask_vars, strict=True):
            mv.assign(masks[p.key])
        (self._apply_fn if slots else self._threshold_fn)()

    def _compute(self, sparsity: float) -> Masks:
        weights = [p.variable.numpy() for p in self._prunable]
        masks = keep_masks(self.method, weights, sparsity, self.min_threshold, self.seed)
        return {p.key: m for p, m in zip(self._prunable, masks, strict=True)}

    def on_train_begin(self, logs=None) -> None:
        self._prunable = collect_prunable(self.model)
        if self.masks:
            check_masks(self._prunable, self.masks)
        target = None if self.schedule is None else final_sparsity(self.schedule)
        if target is not None:
            check_sparsity(target, "scheduled sparsity")
        check_feasible([p.size for p in self._prunable], target or 0.0, self.min_threshold)
        spe = getattr(self.model, "_steps_per_execution", None)
        if spe is not None and int(spe.numpy()) > 1:
            warnings.warn("steps_per_execution > 1: masks are re-applied once per execution, "
                          "not after every optimizer step", stacklevel=2)
        if self.step is None:
            opt = getattr(self.model, "optimizer", None)
            self.step = int(opt.iterations.numpy()) if opt is not None else 0
        self._mask_vars = [
            tf.Variable(np.ones(p.shape, bool) if not self.masks else self.masks[p.key],
                        trainable=False, dtype=tf.bool)
            for p in self._prunable
        ]
        opt = getattr(self.model, "optimizer", None)
        if opt is not None and hasattr(opt, "_index_dict") and not getattr(opt, "_built", True):
            opt.build(self.model.trainable_variables)  # create Adam's slots now, as fit would
        self._slots_ready = False
        self._build_apply()
        if self.masks and self.held:
            self._apply_fn()

    def on_train_batch_begin(self, batch, logs=None) -> None:
        step = self.step
        if self.schedule is None:  # hold only
            return
        should, sparsity = schedule_at(self.schedule, step, self.frequency)
        if self.method == "iht":
            end = getattr(self.schedule, "end_step", -1)
            if 0 <= end < step and not self.held:  # IHT over: freeze the support
                self._set_masks(self._compute(schedule_at(self.schedule, end)[1]))
                self.held = True
            elif should and not self.held:  # hard threshold (as EdgeML: optimizer state
                self._set_masks(self._compute(sparsity), slots=False)  # kept), not held
            return
        if should:
            self._set_masks(self._compute(sparsity))
            self.held = True

    def on_train_batch_end(self, batch, logs=None) -> None:
        if not self._slots_ready:  # legacy optimizers create slots at the first step
            self._slots_ready = True
            pairs = self._slot_pairs()
            if len(pairs) != self._n_pairs:
                self._build_apply(pairs)
        if self.held:
            self._apply_fn()
        self.step += 1

    def on_train_end(self, logs=None) -> None:
        if self.method == "iht" and not self.held and self.masks and self.schedule is not None:
            sparsity = schedule_at(self.schedule, self.step)[1]
            self._set_masks(self._compute(sparsity), slots=False)
