"""Gradual (or one-shot-then-fine-tune) pruning during ``fit``: :class:`GlobalPruningCallback`.

Contract, for a tfmot user: replace ``prune_low_magnitude(model, pruning_schedule=s)`` +
``UpdatePruningStep()`` by ``callbacks=[GlobalPruningCallback(pruning_schedule=s)]`` on the
unwrapped model. Arguments after the schedule are keyword-only.

* The pruning state travels with the model: the schedule's position is
  ``model.optimizer.iterations`` (saved with the model by ``.keras`` and ``.h5``,
  restored by ``BackupAndRestore``; for a SavedModel derived from the sparsity, below;
  a callback's own ``step`` is used only while the optimizer is fresh, at 0) and the
  masks are the model's zeros. So resuming is
  the same line as starting: ``fit(..., callbacks=[GlobalPruningCallback(s)])`` on the
  reloaded model. State is read at the first train batch, after every ``on_train_begin``
  (``BackupAndRestore`` restores there; an un-built model is built by that batch).
* At start, with no ``masks`` given, the weights that are exactly 0 are the masks: if
  fewer than the schedule's target in force (its value at the last pruning step before
  ``step``), the weights grew back (a ``fit`` without this callback): a warning, and the
  model is pruned to that target at once; if clearly more (``> 1 %`` of the weights)
  than the target after this step, a warning and the zeros are held, and if the step
  is unknown (a new optimizer, or a SavedModel, which does not restore its iterations)
  the step is derived from the sparsity: the one after the last pruning step whose
  target is at or below it. Pruned weights never come back: a pruning step whose
  target is below the held sparsity keeps the masks.
* Step counter: advances by the optimizer's iterations per train batch (``+1`` without
  an optimizer). At the start of a batch (an execution of ``steps_per_execution``
  steps) that holds a step where the schedule prunes, new masks are computed from the
  current weights by ``method`` at the schedule's *global* sparsity and applied.
* Masks hold: after every train batch (every optimizer step) pruned weights are set to
  exactly 0 and their optimizer slots (Adam moments) zeroed, so nothing is resurrected.
  With ``steps_per_execution > 1`` this happens once per execution (a warning).
* Reports: at each epoch end ``logs["sparsity"]`` (global) and ``logs["sparsity/<key>"]``
  per prunable tensor (callbacks listed after this one, CSVLogger/TensorBoard, see
  them); at train end a :class:`PruningShortfallWarning` when the global sparsity is
  short of the schedule's final target, with the reason.
* ``method="iht"`` (EdgeML): before ``begin_step`` dense; during ``[begin, end]`` each
  pruning step hard-thresholds every matrix to its own top-k (weights only: optimizer
  state kept, as EdgeML's assign op) but the support is *not* held between
  thresholdings (weights may re-enter); at the first step after ``end_step`` the
  weights are thresholded once more at the schedule's sparsity and that support is
  frozen (sparse retraining: weights and slots masked after every step). If training
  ends inside the IHT phase the weights are hard-thresholded once more so the model
  is sparse.
* Explicit state (when the model's optimizer is not kept): ``get_config()``/
  ``from_config()`` carry the schedule, options and ``step``; :meth:`save_state`/
  :meth:`load_state` add the masks in one ``.npz``.
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
from edgeprune.pruning.ranking import check_feasible, check_sparsity, num_pruned
from edgeprune.pruning.report import warn_shortfall
from edgeprune.pruning.schedule import (
    PruningSchedule,
    deserialize_schedule,
    final_sparsity,
    last_pruning_step,
    schedule_at,
    serialize_schedule,
)

__all__ = ["GlobalPruningCallback"]


class GlobalPruningCallback(keras.callbacks.Callback):
    """Prune ``self.model`` during ``fit`` to a tfmot schedule's global sparsity.

    Args:
      pruning_schedule: a ``tfmot.sparsity.keras.PruningSchedule`` (global target per
        step), or ``None`` to only hold masks: the given ``masks``, else the model's zeros
        (fine-tuning after one-shot pruning: ``prune_global(model, 0.9)`` then
        ``GlobalPruningCallback()``). ``schedule=`` is an alias.
      min_threshold: Minimum Threshold (fraction of all prunable weights, or an int
        count); ``None`` = the method's default (0.05 % for ``global_mt``).
      frequency: prune every ``frequency`` steps within the schedule's
        ``[begin_step, end_step]``; ``None`` = the schedule's own frequency.
      method: one of ``global, global_mt, uniform, erk, lamp, random, iht``.
      seed: for ``random``.
      masks, step, held: explicit resumed state (see :meth:`load_state`); not needed
        when the model kept its optimizer (see the module docstring).
    """

    def __init__(
        self,
        pruning_schedule: PruningSchedule | None = None,
        *,
        min_threshold: float | int | None = None,
        frequency: int | None = None,
        method: str = "global_mt",
        seed: int = 0,
        masks: Masks | None = None,
        step: int | None = None,
        held: bool | None = None,
        schedule: PruningSchedule | None = None,
    ) -> None:
        super().__init__()
        if schedule is not None:
            if pruning_schedule is not None:
                raise TypeError("pass pruning_schedule= (or its alias schedule=), not both")
            pruning_schedule = schedule
        self.min_threshold = resolve_min_threshold(method, min_threshold)
        self._min_threshold_arg = min_threshold
        self.method = method
        self.pruning_schedule = pruning_schedule
        self.frequency = frequency
        if pruning_schedule is not None:
            schedule_at(pruning_schedule, 0, frequency)  # validates schedule and frequency
        self.seed = int(seed)
        self.masks: Masks | None = (
            {k: np.asarray(v, dtype=bool) for k, v in masks.items()} if masks else None
        )
        self.step = None if step is None else int(step)
        self.held = bool(self.masks) if held is None else bool(held)
        self._prunable = None
        self._apply_fn = None
        self._slots_ready = False
        self._ready = False

    @property
    def schedule(self) -> PruningSchedule | None:
        """Alias of ``pruning_schedule``."""
        return self.pruning_schedule

    # ----- state -----------------------------------------------------------------
    def get_config(self) -> dict:
        """JSON-able constructor arguments, including the current ``step`` (not masks)."""
        s = self.pruning_schedule
        return {
            "pruning_schedule": None if s is None else serialize_schedule(s),
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
        sched = cfg.pop("pruning_schedule", cfg.pop("schedule", None))  # older key: schedule
        if sched is not None:
            sched = deserialize_schedule(sched, custom_objects)
        return cls(sched, **cfg, masks=masks)

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

    def _iterations(self) -> int | None:
        opt = getattr(self.model, "optimizer", None)
        return None if opt is None else int(opt.iterations.numpy())

    def _zeros(self) -> list[int]:
        """Exact zeros per prunable tensor."""
        return [p.size - int(np.count_nonzero(p.variable.numpy())) for p in self._prunable]

    def _target_at(self, t: int | None) -> float:
        return 0.0 if t is None else schedule_at(self.pruning_schedule, t, self.frequency)[1]

    def _due(self, n: int) -> float | None:
        """The target of the last pruning step in ``[step, step + n)``, or ``None``."""
        t = last_pruning_step(self.pruning_schedule, self.step + n, self.frequency)
        if t is False:  # a schedule without begin/end/frequency: ask it step by step
            hits = [s for s in range(self.step, self.step + n)
                    if schedule_at(self.pruning_schedule, s, self.frequency)[0]]
            t = hits[-1] if hits else None
        return None if t is None or t < self.step else self._target_at(t)

    def _derive_step(self, zeros: int) -> int | None:
        """The step after the last pruning step whose target prunes at most ``zeros``
        (binary search: tfmot targets do not decrease), ``None`` if not derivable."""
        s = self.pruning_schedule
        if s is None or last_pruning_step(s, 1, self.frequency) is False:
            return None
        begin, end = int(s.begin_step), int(s.end_step)
        freq = int(self.frequency or s.frequency)
        lo, hi = 0, max((end - begin) // freq, 0) if end >= 0 else 0
        if num_pruned(self._target_at(begin), self._total) > zeros:
            return None
        while lo < hi:  # largest j with k(begin + j * freq) <= zeros
            mid = (lo + hi + 1) // 2
            if num_pruned(self._target_at(begin + mid * freq), self._total) <= zeros:
                lo = mid
            else:
                hi = mid - 1
        return begin + lo * freq + 1

    def _recover(self, fresh: bool) -> None:
        """Masks from the model's zeros, checked against the schedule (module docstring);
        ``fresh``: the step comes from no optimizer (0) nor caller, so may be derived."""
        weights = [p.variable.numpy() for p in self._prunable]
        zeros = sum(int(np.count_nonzero(w == 0)) for w in weights)
        n = self._total
        if self.pruning_schedule is None:
            if zeros == 0:
                warnings.warn("GlobalPruningCallback without a schedule holds the model's "
                              "zeros, but it has none: pass pruning_schedule= or prune it "
                              "first (prune_global)", stacklevel=3)
                return
            force = force_now = 0.0
        else:
            t = last_pruning_step(self.pruning_schedule, self.step, self.frequency)
            force = 0.0 if t is False else self._target_at(t)
            due = self._due(self._spe)  # a pruning step now is no disagreement
            force_now = force if due is None else max(force, due)
        k = num_pruned(force, n)
        where = f"the schedule's target at step {self.step} (the optimizer's iterations)"
        if zeros < k:
            warnings.warn(
                f"the model is {zeros / n:.4f} sparse but {where} is {force:.4f}: pruned "
                "weights grew back (a fit without GlobalPruningCallback?) or it was never "
                f"pruned; pruning it to {force:.4f} now", stacklevel=3)
            masks = self._compute(force)
        elif zeros == 0:
            return
        else:
            over = (zeros - num_pruned(force_now, n)) / n > 0.01
            if over and self.pruning_schedule is not None:
                derived = self._derive_step(zeros) if fresh else None
                if derived is not None:
                    msg = (f"the model's optimizer has no step count (a new optimizer, or a "
                           f"SavedModel, which does not restore it) but the model is "
                           f"{zeros / n:.4f} sparse: the schedule resumes at step {derived}, "
                           "after its last pruning step at or below that sparsity")
                    self.step = derived
                else:
                    msg = (f"the model is {zeros / n:.4f} sparse, more than {where}, "
                           f"{force:.4f}: its zeros are held (pruned weights stay zero)")
                warnings.warn(msg, stacklevel=3)
            masks = {p.key: w != 0 for p, w in zip(self._prunable, weights, strict=True)}
        self.masks, self.held = masks, True

    def _start(self, iterations: int | None) -> None:
        """Read the model's state: prunable weights, step, masks; build the mask ops."""
        self._prunable = collect_prunable(self.model)
        self._total = sum(p.size for p in self._prunable)
        if self.masks:
            check_masks(self._prunable, self.masks)
        s = self.pruning_schedule
        target = None if s is None else final_sparsity(s)
        if target is not None:
            check_sparsity(target, "scheduled sparsity")
        check_feasible([p.size for p in self._prunable], target or 0.0, self.min_threshold)
        spe = getattr(self.model, "_steps_per_execution", None)
        self._spe = 1 if spe is None else max(int(spe.numpy()), 1)
        if self._spe > 1:
            warnings.warn(f"steps_per_execution={self._spe}: masks are re-applied once per "
                          "execution, not after every optimizer step", stacklevel=3)
        fresh = not iterations and self.step is None
        if self.step is None or (iterations and iterations != self.step):
            self.step = iterations or 0  # the model's own step, unless its optimizer is new
        self._last_iter = iterations
        if self.masks is None and self.method != "iht":
            self._recover(fresh)
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
        self._ready = True

    def _prune_if_due(self) -> None:
        if self.pruning_schedule is None:  # hold only
            return
        sparsity = self._due(self._spe)
        if self.method == "iht":
            end = getattr(self.pruning_schedule, "end_step", -1)
            if 0 <= end < self.step and not self.held:  # IHT over: freeze the support
                self._set_masks(self._compute(self._target_at(end)))
                self.held = True
            elif sparsity is not None and not self.held:  # hard threshold (as EdgeML:
                self._set_masks(self._compute(sparsity), slots=False)  # state kept)
            return
        if sparsity is None:
            return
        if self.held and num_pruned(sparsity, self._total) < sum(
                int(np.count_nonzero(~m)) for m in self.masks.values()):
            return  # never un-prune: the held masks are sparser than this target
        self._set_masks(self._compute(sparsity))
        self.held = True

    def on_train_begin(self, logs=None) -> None:
        self._ready = False
        self._iter0 = self._iterations()  # before any step (for an un-built model)

    def on_train_batch_begin(self, batch, logs=None) -> None:
        if not self._ready:
            if not self.model.built:
                return  # fit builds it in this batch: start after it
            self._start(self._iterations())
        self._prune_if_due()

    def on_train_batch_end(self, batch, logs=None) -> None:
        if not self._ready:  # the model was built by this (dense) first batch
            self._start(self._iter0)
            self._prune_if_due()
        if not self._slots_ready:  # legacy optimizers create slots at the first step
            self._slots_ready = True
            pairs = self._slot_pairs()
            if len(pairs) != self._n_pairs:
                self._build_apply(pairs)
        if self.held:
            self._apply_fn()
        now = self._iterations()
        ran = 1 if now is None or self._last_iter is None else max(now - self._last_iter, 1)
        self.step += ran
        self._last_iter = now

    def on_epoch_end(self, epoch, logs=None) -> None:
        if not self._ready or logs is None:
            return
        zeros = self._zeros()
        for p, z in zip(self._prunable, zeros, strict=True):
            logs[f"sparsity/{p.key}"] = z / p.size
        logs["sparsity"] = sum(zeros) / self._total

    def on_train_end(self, logs=None) -> None:
        if not self._ready:
            return
        s = self.pruning_schedule
        if self.method == "iht":
            if not self.held and self.masks and s is not None:
                self._set_masks(self._compute(schedule_at(s, self.step)[1]), slots=False)
            return  # per-matrix rounding: no global target to check against
        target = final_sparsity(s) if s is not None else (
            1.0 - sum(int(m.sum()) for m in self.masks.values()) / self._total
            if self.masks else None)
        if target is not None:
            warn_shortfall(sum(self._zeros()), self._total, target, self._shortfall_reason())

    def _shortfall_reason(self) -> str:
        s, last = self.pruning_schedule, self.step - 1
        if s is None:
            return "held masks were not kept (another callback changed the weights?)"
        begin = getattr(s, "begin_step", None)
        end = getattr(s, "end_step", None)
        t = last_pruning_step(s, self.step, self.frequency)
        if begin is not None and last < begin:
            return (f"the schedule begins at step {begin} but training ended at step {last}: "
                    "it never pruned")
        if end is not None and 0 <= last < end:
            there = self._target_at(None if t is False else t)
            return (f"the schedule ends at step {end} but training ended at step {last} "
                    f"(target there {there:.4f}): train at least {end + 1} steps in all, "
                    f"or set end_step <= {last}")
        if t not in (False, None) and end is not None and t < end:
            return (f"the last pruning step {t} comes before end_step {end} (frequency "
                    f"{self.frequency or s.frequency}): its target is "
                    f"{self._target_at(t):.4f}; make end_step - begin_step a multiple of "
                    "the frequency")
        return "pruned weights changed after the last pruning step (another callback?)"
