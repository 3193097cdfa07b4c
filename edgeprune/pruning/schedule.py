"""Pruning schedules: tfmot's own ``PruningSchedule`` objects, read as *global* targets.

Contract: a schedule is any ``tfmot.sparsity.keras.PruningSchedule`` (``ConstantSparsity``,
``PolynomialDecay`` or a subclass): ``schedule(step) -> (should_prune, sparsity)``. Here
``sparsity`` is the target over *all* prunable weights of the model, not per layer.
:func:`iht_schedule` builds EdgeML's dense -> IHT -> sparse-retraining timetable from
a ``ConstantSparsity``.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import tensorflow_model_optimization as tfmot

__all__ = [
    "deserialize_schedule",
    "final_sparsity",
    "iht_schedule",
    "last_pruning_step",
    "schedule_at",
    "serialize_schedule",
]

PruningSchedule = tfmot.sparsity.keras.PruningSchedule
_BUILTIN = {
    "ConstantSparsity": tfmot.sparsity.keras.ConstantSparsity,
    "PolynomialDecay": tfmot.sparsity.keras.PolynomialDecay,
}


def _check(schedule: object) -> PruningSchedule:
    if not isinstance(schedule, PruningSchedule):
        hint = ""
        if isinstance(schedule, int | float):
            hint = (f"; for a fixed sparsity from the first step pass "
                    f"tfmot.sparsity.keras.ConstantSparsity({schedule}, begin_step=0)")
        raise ValueError(
            "pruning_schedule must be a tfmot.sparsity.keras.PruningSchedule "
            f"(ConstantSparsity, PolynomialDecay, ...), got {type(schedule).__name__}{hint}"
        )
    return schedule


def schedule_at(schedule: PruningSchedule, step: int,
                frequency: int | None = None) -> tuple[bool, float]:
    """``(should_prune, global_target_sparsity)`` at ``step``.

    ``frequency`` overrides the schedule's own: prune every ``frequency`` steps from
    ``begin_step`` to ``end_step`` (``-1``: no end); the schedule must then expose
    ``begin_step`` and ``end_step`` as tfmot's do.
    """
    _check(schedule)
    should, sparsity = schedule(int(step))
    should = bool(should)
    sparsity = float(str(np.float32(sparsity)))  # tfmot returns float32: 0.9, not 0.8999999762
    if frequency is not None:
        if int(frequency) < 1:
            raise ValueError(f"frequency must be a positive number of steps, got {frequency}")
        begin = getattr(schedule, "begin_step", None)
        end = getattr(schedule, "end_step", None)
        if begin is None or end is None:
            raise ValueError(
                f"frequency= needs a schedule with begin_step/end_step; "
                f"{type(schedule).__name__} has none"
            )
        in_range = step >= begin and (end < 0 or step <= end)
        should = in_range and (step - begin) % int(frequency) == 0
    return should, sparsity


def last_pruning_step(schedule: PruningSchedule, before: int,
                      frequency: int | None = None) -> int | None | bool:
    """The last step ``< before`` at which ``schedule`` prunes, ``None`` if there is none,
    or ``False`` if the schedule does not expose ``begin_step``/``end_step``/``frequency``
    (then only calling it step by step tells)."""
    begin = getattr(schedule, "begin_step", None)
    end = getattr(schedule, "end_step", None)
    freq = frequency or getattr(schedule, "frequency", None)
    if begin is None or end is None or not freq:
        return False
    hi = int(before) - 1 if int(end) < 0 else min(int(before) - 1, int(end))
    if hi < int(begin):
        return None
    return int(begin) + (hi - int(begin)) // int(freq) * int(freq)


def final_sparsity(schedule: PruningSchedule) -> float | None:
    """The schedule's last target (``final_sparsity``/``target_sparsity``), if it says."""
    for attr in ("final_sparsity", "target_sparsity"):
        if hasattr(schedule, attr):
            return float(getattr(schedule, attr))
    return None


def serialize_schedule(schedule: PruningSchedule) -> dict:
    """``{"class_name": ..., "config": {...}}`` (tfmot's own ``get_config``)."""
    return dict(_check(schedule).get_config())


def deserialize_schedule(config: Mapping,
                         custom_objects: Mapping[str, type] | None = None) -> PruningSchedule:
    """Inverse of :func:`serialize_schedule`; custom schedule classes via ``custom_objects``."""
    classes = {**_BUILTIN, **dict(custom_objects or {})}
    name = config.get("class_name")
    if name not in classes:
        raise ValueError(f"unknown pruning schedule {name!r}: pass it in custom_objects")
    return classes[name].from_config(dict(config["config"]))


def iht_schedule(total_steps: int, sparsity: float, frequency: int = 15) -> PruningSchedule:
    """EdgeML's FastGRNN timetable as a tfmot schedule for ``method="iht"``.

    Steps ``[0, T/3)`` dense training; ``[T/3, 2T/3]`` iterative hard thresholding to
    ``sparsity`` every ``frequency`` steps (EdgeML's ``trimlevel``, default 15); after
    ``2T/3`` the support is frozen and the sparse model retrained.
    """
    if total_steps < 3:
        raise ValueError(f"iht_schedule needs at least 3 steps, got {total_steps}")
    return tfmot.sparsity.keras.ConstantSparsity(
        sparsity, begin_step=total_steps // 3, end_step=2 * total_steps // 3,
        frequency=frequency,
    )
