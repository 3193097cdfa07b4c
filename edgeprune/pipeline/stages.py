"""The pipeline's independent stages, as functions of values that run anywhere.

Each stage gets the ``StageContext`` (configuration and data) and its inputs as values
(weights as arrays) and returns its record and weights; it writes nothing the driver
reads. Training checkpoints each epoch to a node-local folder under the user cache
(``checkpoint_dir``), so a stage whose worker was killed, or whose run was interrupted,
resumes its training on the same node; the folder is removed when the stage finishes.
"""

from __future__ import annotations

import json
import shutil
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow_model_optimization as tfmot

import har_data
from edgeprune import pruning, training
from edgeprune.pipeline import measure, search
from edgeprune.pipeline.config import RunConfig
from edgeprune.pipeline.families import FAMILIES
from edgeprune.pipeline.records import (
    Arch,
    Candidate,
    CandidateSpeed,
    DenseRefit,
    DenseResult,
    RefitResult,
    SizeProbes,
    SpeedProbe,
    SpeedProbes,
    Weights,
)

# Pruning and fine-tuning distil from the dense parent (training.distillation_step).
# Measured on UCI HAR-2 validation (C int8, FastGRNN 80/5/40, seed 0): 73% sparsity
# 95.80% without -> 96.10% with alpha 0.5, T 2 (alpha 0, T 2: 95.35%); 90%: 93.60 -> 94.60%.
DISTILL_ALPHA = 0.5
DISTILL_TEMPERATURE = 2.0


@dataclass(frozen=True)
class StageContext:
    """What every stage reads: the run's configuration and its data."""

    config: RunConfig
    ds: har_data.HarDataset

    @property
    def family(self) -> Any:
        return FAMILIES[self.config.model]

    def xy(self, *splits: str) -> tuple[np.ndarray, np.ndarray]:
        """Normalised windows and labels of ``splits`` (in order, concatenated)."""
        parts = [getattr(self.ds, s) for s in splits]
        return (np.concatenate([self.ds.normalize(p.x) for p in parts]),
                np.concatenate([p.y for p in parts]))

    def model(self, arch: Arch, weights: Weights | None = None,
              seed: int | None = None) -> Any:
        """A model of ``arch`` built with ``seed`` (default: the run's), holding
        ``weights`` if given."""
        model = self.family.build(arch, self.config.seed if seed is None else seed)
        if weights is not None:
            model.set_weights(weights)
        return model

    def teacher(self, arch: Arch, members: Sequence[Weights]) -> training.Teacher:
        """The distillation teacher: the dense model, or the mean logits of several."""
        models = [self.model(arch, w) for w in members]
        return models[0] if len(models) == 1 else training.MeanLogits(models)

    def highest_sparsity(self, arch: Arch) -> float:
        """The highest global sparsity the Minimum Threshold allows for ``arch``."""
        sizes = [p.size for p in pruning.collect_prunable(self.family.build(arch, 0))]
        kept = int(pruning.floors(sizes, self.config.min_threshold).sum())
        return (sum(sizes) - kept) / sum(sizes)

    def prune(self, model: Any, sparsity: float) -> Any:
        """Global MP + MT of ``model`` to ``sparsity``, in place; returns the masks."""
        masks = pruning.make_masks(model, "global_mt", sparsity, self.config.min_threshold,
                                   self.config.seed)
        pruning.apply_masks(model, masks)
        return masks


def checkpoint_dir(config: RunConfig, tag: str) -> Path:
    """The node-local training checkpoints of stage ``tag`` of this run (and this --out)."""
    return training.scratch_checkpoint_dir(json.dumps(
        {**config.identity(), "out": str(config.out.resolve()), "stage": tag}, sort_keys=True))


def _train_dense(ctx: StageContext, model: Any, train_xy: Any, val_xy: Any,
                 epochs: int | None, tag: str, seed: int) -> training.TrainResult:
    """The family's dense recipe over ``dense_epochs`` with training seed ``seed``;
    ``epochs`` stops it earlier on the same lr schedule (a refit)."""
    defaults = ctx.family.train_defaults
    total = ctx.config.settings.dense_epochs or defaults["epochs"]
    return training.train(
        model, train_xy, val_xy, epochs=epochs or total, schedule_epochs=total,
        batch_size=defaults["batch_size"], lr=defaults["lr"], schedule=defaults["schedule"],
        seed=seed, warmup_epochs=defaults.get("warmup_epochs", 0), progress=False,
        augment=training.augment_from(defaults, ctx.ds.mean, ctx.ds.std),
        checkpoint_dir=checkpoint_dir(ctx.config, tag))


def _done(ctx: StageContext, *tags: str) -> None:
    for tag in tags:
        shutil.rmtree(checkpoint_dir(ctx.config, tag), ignore_errors=True)


def dense_tag(arch: Arch, member: int) -> str:
    """The stage (and weights) name of dense member ``member`` of ``arch``."""
    return f"dense-{arch.label}" + (f"-m{member}" if member else "")


def train_dense(ctx: StageContext, arch: Arch, member: int = 0) -> tuple[DenseResult, Weights]:
    """Dense member ``member`` of ``arch`` (``RunConfig.member_seeds``), its epoch
    selected on validation."""
    tag, seed = dense_tag(arch, member), ctx.config.member_seeds[member]
    model = ctx.model(arch, seed=seed)
    result = _train_dense(ctx, model, ctx.xy("train"), ctx.xy("val"), None, tag, seed)
    _done(ctx, tag)
    return DenseResult(arch.label, result.best_val_accuracy, result.selected_epoch,
                       result.epochs, int(model.count_params()),
                       training.loss_rise(result), seed), model.get_weights()


def _row(ctx: StageContext, arch: Arch, sparsity: float, model: Any, **extra: Any) -> Candidate:
    m = measure.measure(ctx.family, ctx.ds, model, ctx.config.kernels)
    return Candidate(arch=arch.label, hidden=arch.hidden, w_rank=arch.w_rank,
                     u_rank=arch.u_rank, filters=arch.filters, sparsity=sparsity,
                     fits=m.model_bytes <= ctx.config.budget_bytes,
                     model_bytes=m.model_bytes, code_bytes=m.code_bytes, ram_bytes=m.ram_bytes,
                     toolchain=m.toolchain, val_accuracy=m.val_accuracy, **extra)


def _one_shot(ctx: StageContext, arch: Arch, dense: Weights, sparsity: float) -> Any:
    model = ctx.model(arch, dense)
    if sparsity > 0:
        ctx.prune(model, sparsity)
    return model


def probe_sizes(ctx: StageContext, arch: Arch, dense: Weights) -> SizeProbes:
    """One-shot Global MP + MT at a grid of sparsities, then bisection to the smallest
    sparsity (to ``REFINE_STEP``) whose measured C model fits the budget."""
    def probe(sparsity: float) -> Candidate:
        return _row(ctx, arch, sparsity, _one_shot(ctx, arch, dense, sparsity), finetuned=False)

    rows = [probe(s) for s in search.probe_grid(ctx.highest_sparsity(arch))]
    fitting = [r.sparsity for r in rows if r.fits]
    if fitting and fitting[0] > 0:
        def fits(sparsity: float) -> bool:
            rows.append(probe(sparsity))
            return rows[-1].fits

        lo = max(r.sparsity for r in rows if r.sparsity < fitting[0])
        search.bisect_sparsity(lo, fitting[0], fits)
    return SizeProbes(tuple(sorted(rows, key=lambda r: r.sparsity)))


def probe_speed(ctx: StageContext, arch: Arch, dense: Weights,
                fitting: list[float]) -> SpeedProbes:
    """With ``--max-instructions``: the one-shot models' instructions per window at the
    fitting probe sparsities, lowest first, up to the first within the speed budget
    (pruning removes multiply-accumulates, so higher sparsities run faster), then
    bisection to the lowest sparsity within it."""
    limit = ctx.config.max_instructions
    rows: list[SpeedProbe] = []

    def fast(sparsity: float) -> bool:
        count = measure.instructions(ctx.family, ctx.ds, _one_shot(ctx, arch, dense, sparsity),
                                     ctx.config.budget_bytes, ctx.config.kernels)
        rows.append(SpeedProbe(arch.label, sparsity, count))
        return count <= limit

    slow = None
    for s in fitting:
        if fast(s):
            if slow is not None:
                search.bisect_sparsity(slow, s, fast)
            break
        slow = s
    return SpeedProbes(tuple(sorted(rows, key=lambda r: r.sparsity)))


def _prune_and_finetune(ctx: StageContext, model: Any, teacher: Any, sparsity: float,
                        train_xy: Any, val_xy: Any, *, epochs: int, tag: str) -> int:
    """Gradual Global MP + MT of ``model`` (polynomial ramp to ``sparsity``), then
    ``epochs`` of fine-tuning with the masks held (the cosine schedule of a
    ``finetune_epochs`` run), both distilling from ``teacher``. With ``val_xy`` the
    fine-tuning epoch is selected on validation, without it the last is kept; returns
    that epoch (1-based)."""
    st, defaults, seed = ctx.config.settings, ctx.family.train_defaults, ctx.config.seed
    batch = defaults["batch_size"]
    steps = int(np.ceil(len(train_xy[0]) / batch))
    mt, lr = ctx.config.min_threshold, ctx.family.finetune_lr
    augment = training.augment_from(defaults, ctx.ds.mean, ctx.ds.std)
    distill = {"teacher": teacher, "distill_alpha": DISTILL_ALPHA,
               "temperature": DISTILL_TEMPERATURE}
    ramp = tfmot.sparsity.keras.PolynomialDecay(
        0.0, sparsity, begin_step=0, end_step=max(steps * st.ramp_epochs - 1, 1),
        frequency=max(steps // 4, 1))
    with warnings.catch_warnings():  # the ramp's last step may fall short of its target:
        warnings.simplefilter("ignore", pruning.PruningShortfallWarning)  # pruned next line
        training.train(model, train_xy, val_xy, epochs=st.ramp_epochs, batch_size=batch,
                       lr=lr, schedule="constant", seed=seed, progress=False, augment=augment,
                       callbacks=[pruning.GlobalPruningCallback(ramp, min_threshold=mt)],
                       **distill)
    masks = ctx.prune(model, sparsity)
    result = training.train(
        model, train_xy, val_xy, epochs=epochs, schedule_epochs=st.finetune_epochs,
        batch_size=batch, lr=lr, schedule="cosine", seed=seed, augment=augment,
        progress=False, checkpoint_dir=checkpoint_dir(ctx.config, tag),
        callbacks=[pruning.GlobalPruningCallback(None, min_threshold=mt, masks=masks)], **distill)
    _done(ctx, tag)
    return result.selected_epoch


def _prune_on_to_fit(ctx: StageContext, model: Any, arch: Arch,
                     sparsity: float) -> tuple[float, int]:
    """Prune ``model`` (pruned to ``sparsity``) on by ``REFINE_STEP``s until its measured
    C model fits the budget (``search.prune_until_fits``); returns the sparsity and C
    model bytes reached (the last tried when nothing within reach fits)."""
    def size_at(s: float) -> int:
        if s > sparsity:
            ctx.prune(model, s)
        return measure.c_bytes(ctx.family, ctx.ds, model)

    return search.prune_until_fits(sparsity, size_at, ctx.config.budget_bytes,
                                   ctx.highest_sparsity(arch))


def finetune_tag(arch: Arch, sparsity: float) -> str:
    return f"pruned-{arch.label}-s{sparsity:.3f}"


def finetune(ctx: StageContext, arch: Arch, dense: Weights, sparsity: float,
             teachers: Sequence[Weights] | None = None) -> tuple[Candidate, Weights]:
    """Gradual Global MP + MT (polynomial ramp from the dense model to ``sparsity``),
    then fine-tuning with the masks held, selecting the epoch on validation; both distil
    (``DISTILL_ALPHA``, ``DISTILL_TEMPERATURE``) from the mean logits of ``teachers``
    (default: the dense model). A model whose fine-tuned weights encode a few bytes over
    the budget is pruned on a little."""
    tag = finetune_tag(arch, sparsity)
    model = ctx.model(arch, dense)
    epoch = None
    if sparsity > 0:
        teacher = ctx.teacher(arch, teachers or [dense])
        epoch = _prune_and_finetune(ctx, model, teacher, sparsity,
                                    ctx.xy("train"), ctx.xy("val"),
                                    epochs=ctx.config.settings.finetune_epochs, tag=tag)
    about = {"finetuned": True, "weights": tag, "finetune_epoch": epoch,
             "finetuned_sparsity": sparsity}
    row = _row(ctx, arch, sparsity, model, **about)
    if sparsity > 0 and not row.fits:
        reached, _ = _prune_on_to_fit(ctx, model, arch, sparsity)
        if reached != sparsity:
            row = _row(ctx, arch, reached, model, **about)
    return row, model.get_weights()


def candidate_speed(ctx: StageContext, candidate: Candidate,
                    weights: Weights) -> CandidateSpeed:
    """With ``--max-instructions``: a fine-tuned candidate's instructions per window."""
    return CandidateSpeed(candidate.weights, measure.instructions(
        ctx.family, ctx.ds, ctx.model(candidate.spec, weights), ctx.config.budget_bytes,
        ctx.config.kernels))


def refit_dense(ctx: StageContext, arch: Arch, member: int,
                dense: DenseResult) -> tuple[DenseRefit, Weights]:
    """Dense member ``member`` of ``arch`` trained again, with its seed, on the training
    and validation volunteers together for the number of epochs chosen on validation
    (``dense``), on the schedule of the run that chose them: a refit's parent or teacher."""
    tag, seed = "refit-" + dense_tag(arch, member), ctx.config.member_seeds[member]
    everything = ctx.xy("train", "val")
    model = ctx.model(arch, seed=seed)
    _train_dense(ctx, model, everything, None, dense.selected_epoch, tag, seed)
    _done(ctx, tag)
    return DenseRefit(arch.label, seed, dense.selected_epoch, len(everything[0])), \
        model.get_weights()


def refit(ctx: StageContext, best: Candidate, dense: DenseResult, parent: Weights,
          teachers: Sequence[Weights]) -> tuple[RefitResult, Weights]:
    """The selected configuration trained again on the training and validation
    volunteers together: from ``parent`` (the selected dense member's ``refit_dense``),
    the same ramp and fine-tuning for the candidate's selected epochs on the schedule of
    the run that chose them, distilling from the mean logits of ``teachers`` (the
    members' ``refit_dense``). Every choice stays the validation's; the refit only adds
    data, so it has no validation accuracy. Its C model is measured again; if it no
    longer fits, it is pruned further (``prune_until_fits``). ``fits`` says whether it
    fits the budget(s) in the end."""
    arch, tag = best.spec, f"refit-{best.weights}"
    everything = ctx.xy("train", "val")
    model = ctx.model(arch, parent)
    finetune_epochs = None
    if best.sparsity > 0:
        finetune_epochs = best.finetune_epoch or ctx.config.settings.finetune_epochs
        _prune_and_finetune(ctx, model, ctx.teacher(arch, teachers), best.sparsity,
                            everything, None, epochs=finetune_epochs, tag=tag)
    sparsity, model_bytes = _prune_on_to_fit(ctx, model, arch, best.sparsity)
    fits = model_bytes <= ctx.config.budget_bytes
    count = None
    if ctx.config.max_instructions is not None and fits:
        count = measure.instructions(ctx.family, ctx.ds, model, ctx.config.budget_bytes,
                                     ctx.config.kernels)
        fits = count <= ctx.config.max_instructions
    return RefitResult(tag, len(everything[0]), dense.selected_epoch, finetune_epochs,
                       best.sparsity, sparsity, model_bytes, fits, count), model.get_weights()
