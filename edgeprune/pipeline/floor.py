"""The smallest C model a search could produce, so an impossible budget is refused before
any training.

Every C model the search measures is one of the family's architectures (for this mode)
with some of its prunable weights kept. Each pruned matrix is stored in the format with
the fewest bytes, and every format's bytes grow with the matrix's nonzeros (``dense`` is
constant; the index formats add values and indices; ``rle4`` adds codes), while the rest
of the model - biases, scales, normalisation, tables, the params struct - does not depend
on the weights' values. So the same architecture with *every* prunable weight zero,
quantised and compiled the same way, is a lower bound on all of its candidates; the
smallest of those bounds over the architectures bounds the whole search. It costs one
C compile per architecture (about a second each), no training.
"""

from __future__ import annotations

from typing import Any

import numpy as np

import har_data
from edgeprune import pruning
from edgeprune.pipeline import measure
from edgeprune.pipeline.config import RunConfig
from edgeprune.pipeline.families import FAMILIES


class BudgetTooSmall(ValueError):
    """The budget is below the smallest C model the search could produce (message: it)."""


def smallest_c_model(family: Any, archs: tuple, ds: har_data.HarDataset) -> tuple[int, str]:
    """``(bytes, architecture)``: the lower bound described in the module docstring."""
    bounds = []
    for arch in archs:
        model = family.build(arch, 0)
        for weight in pruning.collect_prunable(model):
            weight.variable.assign(np.zeros(weight.variable.shape,
                                            weight.variable.dtype.as_numpy_dtype))
        bounds.append((measure.c_bytes(family, ds, model), arch.label))
    return min(bounds)


def check_budget(config: RunConfig, ds: har_data.HarDataset) -> None:
    """Raise ``BudgetTooSmall`` when ``config``'s budget is below every C model the
    search could produce (``smallest_c_model``)."""
    family = FAMILIES[config.model]
    archs = family.archs_quick if config.quick else family.archs_full
    floor, arch = smallest_c_model(family, archs, ds)
    if config.budget_bytes < floor:
        raise BudgetTooSmall(
            f"--budget-kb {config.budget_kb:g} ({config.budget_bytes} B) is below the "
            f"smallest C model this search can produce: {floor} B ({family.name} {arch} "
            f"with every prunable weight removed); give at least --budget-kb "
            f"{np.ceil(floor / 1024 * 1000) / 1000:g}")
