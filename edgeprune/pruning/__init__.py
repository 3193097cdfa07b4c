"""edgeprune.pruning: Global Magnitude Pruning with a Minimum Threshold, and baselines.

Public door. Modules, one concern each (as tfmot's ``sparsity/keras``):
``policy`` (which weights are prunable), ``ranking`` (global ranking + MT, pure numpy),
``methods`` (global, global_mt, uniform, erk, lamp, random, iht), ``masks`` (apply,
save/load), ``prune`` (one-shot, tfmot uniform path, strip), ``schedule`` (tfmot
schedules as global targets), ``callback`` (gradual pruning in ``fit``), ``report``.

One-shot::

    masks = prune_global(model, 0.9)                 # Global MP + MT (0.05 %)
    masks = make_masks(model, "lamp", 0.9, None, 0)  # any method, model untouched
    apply_masks(model, masks)

Gradual (a tfmot user changes one call)::

    sched = tfmot.sparsity.keras.PolynomialDecay(0.0, 0.9, begin_step=0, end_step=1000)
    model.fit(x, y, callbacks=[GlobalPruningCallback(pruning_schedule=sched)])
    plain = strip(model)

Resume (masks = the model's zeros, step = its optimizer's iterations): reload the model
and run the same ``fit`` line again. User guide: ``edgeprune/pruning/README.md``.
"""

# The parent package edgeprune is imported first: TF_USE_LEGACY_KERAS is set before TF loads.
from edgeprune.pruning.callback import GlobalPruningCallback
from edgeprune.pruning.masks import (
    Masks,
    apply_masks,
    load_masks,
    masks_from_weights,
    masks_sparsity,
    save_masks,
)
from edgeprune.pruning.methods import (
    METHODS,
    allocate_erk,
    allocate_uniform,
    keep_masks,
    lamp_scores,
)
from edgeprune.pruning.policy import PrunableWeight, collect_prunable
from edgeprune.pruning.prune import (
    global_threshold,
    make_masks,
    prune_global,
    strip,
    uniform_masks_tfmot,
)
from edgeprune.pruning.ranking import (
    DEFAULT_MIN_THRESHOLD,
    allocate,
    check_feasible,
    floors,
    global_keep_masks,
    select_smallest,
)
from edgeprune.pruning.report import (
    LayerCollapseWarning,
    PruningShortfallWarning,
    collapsed_layers,
    format_report,
    pruning_report,
)
from edgeprune.pruning.schedule import (
    deserialize_schedule,
    iht_schedule,
    schedule_at,
    serialize_schedule,
)

__all__ = [
    "DEFAULT_MIN_THRESHOLD",
    "METHODS",
    "GlobalPruningCallback",
    "LayerCollapseWarning",
    "PruningShortfallWarning",
    "collapsed_layers",
    "Masks",
    "PrunableWeight",
    "allocate",
    "allocate_erk",
    "allocate_uniform",
    "apply_masks",
    "check_feasible",
    "collect_prunable",
    "deserialize_schedule",
    "floors",
    "format_report",
    "global_keep_masks",
    "global_threshold",
    "iht_schedule",
    "keep_masks",
    "lamp_scores",
    "load_masks",
    "make_masks",
    "masks_from_weights",
    "masks_sparsity",
    "prune_global",
    "pruning_report",
    "save_masks",
    "schedule_at",
    "select_smallest",
    "serialize_schedule",
    "strip",
    "uniform_masks_tfmot",
]
