"""The pipeline's stages: data, dense training, size probes, pruning, export, firmware, report.

Every stage stores its result in the run folder (``RunDir.stage``) and model weights in
``models/``; a rerun of the same command skips what is finished, and training resumes from
its per-epoch checkpoints. Selection uses validation accuracy of the C int8 model only;
the test split is evaluated once, for the selected model, in the export stage.
"""

from __future__ import annotations

import argparse
import dataclasses
import platform
import shutil
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow_model_optimization as tfmot

import har_data
from edgeprune import machine, pruning, training
from edgeprune.pipeline import report as rpt
from edgeprune.pipeline.families import FAMILIES, Arch, write_c_model
from edgeprune.pipeline.rundir import RunDir, atomic_write_bytes, atomic_write_json
from export import cmodel
from export import tflite as tfl

PROBE_SPARSITIES = (0.0, 0.5, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99)
REFINE_STEP = 0.01
# Architectures are tried largest first; the next, smaller one is trained only when the
# larger needs more than this sparsity to fit the budget. With --max-instructions every
# architecture is tried: a speed budget favours smaller networks (UCI HAR-2, 8 KiB, 1 M
# instructions: FastGRNN 48/5/16 at 50% 95.55% validation, 80/5/40 at 92% 94.55%).
TRY_SMALLER_ABOVE = 0.9
# Full runs also fine-tune this sparsity when it fits: the paper's operating point, where
# Global MP + MT usually keeps accuracy while the C model gets several times faster.
HIGH_SPARSITY = 0.9
# --max-instructions: candidates are built for this board and run under QEMU on this many
# validation windows (SysTick count; the firmware stage counts the selected one exactly).
BOARD = "mps2-an386"
SPEED_WINDOWS = 4
# Pruning and fine-tuning distil from the dense parent (training.distillation_step).
# Measured on UCI HAR-2 validation (C int8, FastGRNN 80/5/40, seed 0): 73% sparsity
# 95.80% without -> 96.10% with alpha 0.5, T 2 (alpha 0, T 2: 95.35%); 90%: 93.60 -> 94.60%.
DISTILL_ALPHA = 0.5
DISTILL_TEMPERATURE = 2.0
# --refit: a refit model's C encoding can come out a few bytes larger than the selected
# one's at the same sparsity (UCI HAR-2, 3 KiB, 73%: 3080 B against 3072 B); it is then
# pruned further, one REFINE_STEP at a time, at most this many steps. The same holds for a
# fine-tuned candidate whose one-shot probe fitted (3 KiB, 73%: 3076 B against 3064 B).
REFIT_EXTRA_STEPS = 3


def select(tuned: list[dict[str, Any]], n_val: int) -> tuple[dict[str, Any], float]:
    """The selection rule: the smallest model (C bytes) among the fine-tuned candidates
    whose validation accuracy is within one standard error of the best one's
    (``sqrt(p (1 - p) / n_val)``, p = the best accuracy): differences below it are
    validation noise, while fewer bytes also mean fewer multiply-accumulates on the board.
    Returns ``(candidate, tolerance)``."""
    best_acc = max(c["val_accuracy"] for c in tuned)
    tolerance = float(np.sqrt(best_acc * (1 - best_acc) / max(n_val, 1)))
    tied = [c for c in tuned if c["val_accuracy"] >= best_acc - tolerance - 1e-12]
    return min(tied, key=lambda c: (c["model_bytes"], -c["val_accuracy"])), tolerance


def bisect_sparsity(lo: float, hi: float, passes: Callable[[float], bool]) -> float:
    """The lowest sparsity on the ``REFINE_STEP`` grid in ``(lo, hi]`` that ``passes``,
    given that ``lo`` fails and ``hi`` passes (a monotone test: fits the budget, runs fast
    enough); ``passes`` is called once per midpoint tried."""
    while hi - lo > REFINE_STEP + 1e-9:
        mid = round(round((lo + hi) / 2 / REFINE_STEP) * REFINE_STEP, 4)
        if mid in (lo, hi):
            break
        lo, hi = (lo, mid) if passes(mid) else (mid, hi)
    return hi


def prune_until_fits(sparsity: float, size_at: Callable[[float], int], budget: int,
                     highest: float, steps: int = REFIT_EXTRA_STEPS) -> tuple[float, int]:
    """``(s, size_at(s))`` for the first of ``sparsity``, then up to ``steps`` further
    ``REFINE_STEP``s (not beyond ``highest``), whose size fits ``budget``, or the last
    one tried. ``size_at`` is called in increasing order (pruning a model in place)."""
    size = size_at(sparsity)
    for _ in range(steps):
        if size <= budget or sparsity + REFINE_STEP > highest + 1e-9:
            break
        sparsity = round(sparsity + REFINE_STEP, 4)
        size = size_at(sparsity)
    return sparsity, size


class NoFitError(RuntimeError):
    """No configuration's measured C model fits the budget (message: the smallest reached)."""


@dataclass(frozen=True)
class Settings:
    """How much work a run does; ``quick`` is the smoke-test mode."""

    dense_epochs: int | None  # None: the family's measured default
    ramp_epochs: int
    finetune_epochs: int
    extra_candidates: int  # fine-tuned sparsities beyond the smallest that fits, per arch
    high_sparsity: float | None  # also fine-tuned when it fits (HIGH_SPARSITY; None: not)
    firmware_windows: int
    subset: int | None  # windows per split (quick mode)

    @classmethod
    def for_args(cls, args: argparse.Namespace) -> Settings:
        if args.quick:
            return cls(10, 1, 3, 0, None, 8, 600)
        return cls(None, 6, 14, 1, HIGH_SPARSITY, 64, None)


def log(message: str) -> None:
    """One stage-log line on stderr (progress bars also go to stderr)."""
    print(f"[edgeprune] {message}", file=sys.stderr, flush=True)


def _subset(ds: har_data.HarDataset, n: int | None, seed: int) -> har_data.HarDataset:
    if n is None:
        return ds
    rng = np.random.default_rng(seed)

    def pick(split: har_data.Split) -> har_data.Split:
        idx = np.sort(rng.choice(len(split), size=min(n, len(split)), replace=False))
        return split.take(idx)

    return dataclasses.replace(ds, train=pick(ds.train), val=pick(ds.val), test=pick(ds.test))


def _versions() -> dict[str, str]:
    names = ("tensorflow", "tf-keras", "tensorflow-model-optimization", "numpy",
             "ai-edge-litert", "tflite-micro")
    out = {"python": platform.python_version(), "edgeprune": metadata.version("edgeprune"),
           "machine": machine.describe()}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "absent"
    for tool in ("gcc", "arm-none-eabi-gcc", "qemu-system-arm"):
        out[tool] = "present" if shutil.which(tool) else "absent"
    return out


def _toolchain() -> str:
    """Bytes are measured with the Cortex-M4 compiler when present, else the host gcc."""
    return "arm-cortex-m4" if shutil.which("arm-none-eabi-gcc") else "host-gcc"


def _replace_dir(target: Path, write) -> None:
    """``write(folder)`` into a temporary sibling, then swap it in: a kill never leaves a
    half-written ``target`` (at worst none, and the rerun writes it)."""
    tmp = target.with_name(f".{target.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    write(tmp)
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)


class Pipeline:
    """One run: ``Pipeline(args).run()`` returns the report dict (also written to --out)."""

    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.family = FAMILIES[args.model]
        self.settings = Settings.for_args(args)
        self.budget = int(round(args.budget_kb * 1024))
        self.max_instructions: int | None = getattr(args, "max_instructions", None)
        # options added later are left out when unset, so runs from before them resume
        run_args = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()
                    if k not in ("out", "no_firmware")
                    and not (k in ("max_instructions", "refit") and v in (None, False))}
        self.rd = RunDir(args.out, run_args).open()
        self.seconds: dict[str, float] = {}
        self.ds: har_data.HarDataset | None = None
        self._speed_probes: list[dict[str, Any]] = []  # one-shot instruction counts
        self.warnings: list[str] = []  # e.g. an unstable dense training (in the report)

    # ----------------------------------------------------------------- helpers
    def _timed(self, name: str, compute):
        start = time.perf_counter()
        result, reused = self.rd.stage(name, compute)
        self.seconds[name] = result.get("_seconds", time.perf_counter() - start)
        log(f"{name}: {'reused from an earlier run' if reused else 'done'} "
            f"({self.seconds[name]:.1f} s)")
        return result

    def _weights_path(self, tag: str) -> Path:
        return self.rd.path("models", f"{tag}.weights.h5")

    def _save_weights(self, model, tag: str) -> None:
        target = self._weights_path(tag)
        tmp = target.with_name(f".tmp-{target.name}")
        model.save_weights(str(tmp))
        tmp.replace(target)

    def _load(self, arch: Arch, tag: str):
        model = self.family.build(arch, self.args.seed)
        model.load_weights(str(self._weights_path(tag)))
        return model

    @staticmethod
    def _c_size(int_model, c_dir: Path, provenance: dict[str, Any]):
        """Generate the C model into ``c_dir`` and measure its compiled bytes."""
        return cmodel.measure_bytes(write_c_model(int_model, c_dir, provenance), _toolchain())

    def _c_bytes(self, model, workdir: Path) -> int:
        """Exact bytes of the model's C build (smallest encoding)."""
        return self._c_size(self.family.quantize(model, self.ds), workdir,
                            {"model": self.family.name}).model_bytes

    def _measure(self, model, workdir: Path) -> dict[str, Any]:
        """Exact bytes of the model's C build, and its C int8 validation accuracy."""
        int_model = self.family.quantize(model, self.ds)
        size = self._c_size(int_model, workdir, {"model": self.family.name})
        val_pred = self.family.c_predict(int_model, self.ds.val.x)
        return {"model_bytes": size.model_bytes, "code_bytes": size.code_bytes,
                "ram_bytes": size.ram_bytes, "toolchain": size.toolchain,
                "val_accuracy": float(np.mean(val_pred == self.ds.val.y))}

    def _fastest_fitting(self, model, c_dir: Path, provenance: dict[str, Any]):
        """The C model to ship: the budget the smallest encoding leaves unused is spent on
        faster storage formats (same integer arithmetic, so the same predictions), kept
        only when its measured bytes still fit. Both are measured in a scratch folder and
        only the chosen one is written to ``c_dir``. Returns ``(int_model, size,
        smallest_bytes)``."""
        with tempfile.TemporaryDirectory(prefix="edgeprune-ship-") as tmp:
            int_model = self.family.quantize(model, self.ds)
            size = self._c_size(int_model, Path(tmp) / "smallest", provenance)
            smallest_bytes = size.model_bytes
            spare = self.budget - size.model_bytes
            matrices = getattr(int_model, "matrices", None)
            if spare > 0 and matrices:
                matrix_bytes = sum(m.nbytes for m in matrices.values() if m is not None)
                faster = self.family.quantize(model, self.ds,
                                              matrix_budget=matrix_bytes + spare)
                fast_size = self._c_size(faster, Path(tmp) / "faster", provenance)
                if fast_size.model_bytes <= self.budget:
                    int_model, size = faster, fast_size
        write_c_model(int_model, c_dir, provenance)
        return int_model, size, smallest_bytes

    def _instructions(self, model) -> int:
        """Instructions per window of the C model this run would ship for ``model``
        (``_fastest_fitting``), built for ``BOARD`` and run under QEMU on
        ``SPEED_WINDOWS`` validation windows (SysTick count); the board must agree with
        the Python integer reference on every one of them."""
        from edgeprune import firmware as fw

        n = SPEED_WINDOWS
        with tempfile.TemporaryDirectory(prefix="edgeprune-speed-") as tmp:
            c_dir = Path(tmp) / "c_model"
            int_model, _, _ = self._fastest_fitting(model, c_dir, {"model": self.family.name})
            x16 = cmodel.quantize_input(int_model, self.ds.val.x[:n])
            expected = self.family.c_predict(int_model, self.ds.val.x[:n])
            mcu = fw.build_and_run(c_dir, x16, expected, board=BOARD,
                                   out_dir=Path(tmp) / "firmware", exact=False)
        if mcu["agreement"] != 1.0:
            raise RuntimeError(f"the {BOARD} build disagrees with the integer reference "
                               f"({mcu['agreement']:.0%} of {n} validation windows)")
        return int(mcu["instructions_per_window"])

    def _one_shot(self, arch: Arch, sparsity: float):
        model = self._load(arch, f"dense-{arch.label}")
        if sparsity > 0:
            masks = pruning.make_masks(model, "global_mt", sparsity, self.args.min_threshold,
                                       self.args.seed)
            pruning.apply_masks(model, masks)
        return model

    def _highest_sparsity(self, arch: Arch) -> float:
        """The highest global sparsity the Minimum Threshold allows for ``arch``."""
        sizes = [p.size for p in pruning.collect_prunable(self.family.build(arch, 0))]
        kept = int(pruning.floors(sizes, self.args.min_threshold).sum())
        return (sum(sizes) - kept) / sum(sizes)

    def _probe(self, arch: Arch, sparsity: float) -> dict[str, Any]:
        with tempfile.TemporaryDirectory(prefix="edgeprune-probe-") as tmp:
            row = self._measure(self._one_shot(arch, sparsity), Path(tmp))
        return {"arch": arch.label, **arch.as_dict(), "sparsity": sparsity, "finetuned": False,
                "fits": row["model_bytes"] <= self.budget, **row}

    def _prune_on_to_fit(self, model, arch: Arch, sparsity: float,
                         workdir: Path) -> tuple[float, int]:
        """Prune ``model`` (pruned to ``sparsity``) on by ``REFINE_STEP``s until its
        measured C model fits the budget (``prune_until_fits``); returns the sparsity
        and C model bytes reached (the last tried when nothing within reach fits)."""
        def size_at(s: float) -> int:
            if s > sparsity:
                pruning.apply_masks(model, pruning.make_masks(
                    model, "global_mt", s, self.args.min_threshold, self.args.seed))
            return self._c_bytes(model, workdir)

        return prune_until_fits(sparsity, size_at, self.budget, self._highest_sparsity(arch))

    # ------------------------------------------------------------------ stages
    def load_data(self) -> None:
        a = self.args
        ds = har_data.load(a.data, path=a.data_path, seed=a.seed)
        self.ds = _subset(ds, self.settings.subset, a.seed)
        sizes = {s: len(getattr(self.ds, s)) for s in ("train", "val", "test")}
        log(f"data: {self.ds.name} {sizes} (validation volunteers {list(self.ds.val_subjects)})")

    def _xy(self, *splits: str) -> tuple[np.ndarray, np.ndarray]:
        """Normalised windows and labels of ``splits`` (in order, concatenated)."""
        parts = [getattr(self.ds, s) for s in splits]
        return (np.concatenate([self.ds.normalize(p.x) for p in parts]),
                np.concatenate([p.y for p in parts]))

    def _train_dense(self, model, train_xy, val_xy, epochs: int | None, tag: str):
        """The family's dense recipe over ``dense_epochs``; ``epochs`` stops it earlier
        on the same lr schedule (a refit). Checkpoints under ``checkpoints/<tag>``."""
        defaults = self.family.train_defaults
        total = self.settings.dense_epochs or defaults["epochs"]
        return training.train(
            model, train_xy, val_xy, epochs=epochs or total, schedule_epochs=total,
            batch_size=defaults["batch_size"], lr=defaults["lr"],
            schedule=defaults["schedule"], seed=self.args.seed,
            warmup_epochs=defaults.get("warmup_epochs", 0),
            augment=training.augment_from(defaults, self.ds.mean, self.ds.std),
            checkpoint_dir=self.rd.path("checkpoints", tag, "x").parent)

    def train_dense(self, arch: Arch) -> dict[str, Any]:
        def compute() -> dict[str, Any]:
            start = time.perf_counter()
            model = self.family.build(arch, self.args.seed)
            result = self._train_dense(model, self._xy("train"), self._xy("val"), None,
                                       f"dense-{arch.label}")
            self._save_weights(model, f"dense-{arch.label}")
            return {"val_accuracy_float": result.best_val_accuracy,
                    "selected_epoch": result.selected_epoch, "epochs": result.epochs,
                    "params": int(model.count_params()),
                    "training_warning": training.loss_rise(result),
                    "_seconds": time.perf_counter() - start}

        log(f"training dense {self.family.name} {arch.label}")
        result = self._timed(f"dense-{arch.label}", compute)
        if warning := result.get("training_warning"):
            self._warn(f"dense {arch.label}: {warning}")
        return result

    def _warn(self, message: str) -> None:
        """Log a warning once and keep it for the report (stages may be asked twice)."""
        if message not in self.warnings:
            log(f"WARNING {message}")
            self.warnings.append(message)

    def probe_sizes(self, arch: Arch) -> dict[str, Any]:
        """One-shot Global MP + MT at a grid of sparsities, then bisection to the smallest
        sparsity (to ``REFINE_STEP``) whose measured C model fits the budget."""

        def compute() -> dict[str, Any]:
            start = time.perf_counter()
            grid = [s for s in PROBE_SPARSITIES if s <= self._highest_sparsity(arch)]
            rows = [self._probe(arch, s) for s in grid]
            fitting = [r["sparsity"] for r in rows if r["fits"]]
            if fitting and fitting[0] > 0:
                lo = max(r["sparsity"] for r in rows if r["sparsity"] < fitting[0])

                def fits(sparsity: float) -> bool:
                    rows.append(self._probe(arch, sparsity))
                    return rows[-1]["fits"]

                bisect_sparsity(lo, fitting[0], fits)
            rows.sort(key=lambda r: r["sparsity"])
            return {"rows": rows, "_seconds": time.perf_counter() - start}

        log(f"measuring C model sizes of {arch.label} over sparsities")
        return self._timed(f"probe-{arch.label}", compute)

    def probe_speed(self, arch: Arch, fitting: list[float]) -> dict[str, Any]:
        """With ``--max-instructions``: the one-shot models' instructions per window at the
        fitting probe sparsities, lowest first, up to the first within the speed budget
        (pruning removes multiply-accumulates, so higher sparsities run faster), then
        bisection to the lowest sparsity within it."""

        def compute() -> dict[str, Any]:
            start = time.perf_counter()
            rows: list[dict[str, Any]] = []

            def fast(sparsity: float) -> bool:
                count = self._instructions(self._one_shot(arch, sparsity))
                rows.append({"sparsity": sparsity, "instructions_per_window": count})
                return count <= self.max_instructions

            slow = None
            for s in fitting:
                if fast(s):
                    if slow is not None:
                        bisect_sparsity(slow, s, fast)
                    break
                slow = s
            return {"rows": sorted(rows, key=lambda r: r["sparsity"]),
                    "_seconds": time.perf_counter() - start}

        log(f"measuring instructions per window of {arch.label} on {BOARD} (QEMU)")
        return self._timed(f"speed-{arch.label}", compute)

    def candidate_speed(self, candidate: dict[str, Any]) -> int:
        """With ``--max-instructions``: a fine-tuned candidate's instructions per window."""
        tag = candidate["weights"]

        def compute() -> dict[str, Any]:
            start = time.perf_counter()
            count = self._instructions(self._load(Arch.from_record(candidate), tag))
            return {"instructions_per_window": count, "_seconds": time.perf_counter() - start}

        return self._timed(f"speed-{tag}", compute)["instructions_per_window"]

    def _prune_and_finetune(self, model, teacher, sparsity: float, train_xy, val_xy, *,
                            epochs: int, tag: str) -> int:
        """Gradual Global MP + MT of ``model`` (polynomial ramp to ``sparsity``), then
        ``epochs`` of fine-tuning with the masks held (the cosine schedule of a
        ``finetune_epochs`` run), both distilling from ``teacher``. With ``val_xy`` the
        fine-tuning epoch is selected on validation, without it the last is kept; returns
        that epoch (1-based)."""
        st, defaults = self.settings, self.family.train_defaults
        batch = defaults["batch_size"]
        steps = int(np.ceil(len(train_xy[0]) / batch))
        mt, lr = self.args.min_threshold, self.family.finetune_lr
        augment = training.augment_from(defaults, self.ds.mean, self.ds.std)
        distill = {"teacher": teacher, "distill_alpha": DISTILL_ALPHA,
                   "temperature": DISTILL_TEMPERATURE}
        ramp = tfmot.sparsity.keras.PolynomialDecay(
            0.0, sparsity, begin_step=0, end_step=max(steps * st.ramp_epochs - 1, 1),
            frequency=max(steps // 4, 1))
        training.train(model, train_xy, val_xy, epochs=st.ramp_epochs, batch_size=batch, lr=lr,
                       schedule="constant", seed=self.args.seed, progress=False,
                       augment=augment, callbacks=[pruning.GlobalPruningCallback(ramp, mt)],
                       **distill)
        masks = pruning.make_masks(model, "global_mt", sparsity, mt, self.args.seed)
        pruning.apply_masks(model, masks)
        result = training.train(
            model, train_xy, val_xy, epochs=epochs, schedule_epochs=st.finetune_epochs,
            batch_size=batch, lr=lr, schedule="cosine", seed=self.args.seed, augment=augment,
            checkpoint_dir=self.rd.path("checkpoints", tag, "x").parent,
            callbacks=[pruning.GlobalPruningCallback(None, mt, masks=masks)], **distill)
        return result.selected_epoch

    def finetune(self, arch: Arch, sparsity: float) -> dict[str, Any]:
        """Gradual Global MP + MT (polynomial ramp from the dense model to ``sparsity``),
        then fine-tuning with the masks held, selecting the epoch on validation; both
        distil from the dense model (``DISTILL_ALPHA``, ``DISTILL_TEMPERATURE``)."""
        tag = f"pruned-{arch.label}-s{sparsity:.3f}"

        def compute() -> dict[str, Any]:
            start = time.perf_counter()
            model = self._load(arch, f"dense-{arch.label}")
            epoch = None
            if sparsity > 0:
                epoch = self._prune_and_finetune(
                    model, self._load(arch, f"dense-{arch.label}"), sparsity,
                    self._xy("train"), self._xy("val"), epochs=self.settings.finetune_epochs,
                    tag=tag)
            reached = sparsity
            with tempfile.TemporaryDirectory(prefix="edgeprune-cand-") as tmp:
                row = self._measure(model, Path(tmp))
                if sparsity > 0 and row["model_bytes"] > self.budget:
                    # fine-tuned weights can encode a few bytes larger than the one-shot
                    # probe that fitted: prune on a little (no further fine-tuning)
                    reached, _ = self._prune_on_to_fit(model, arch, sparsity, Path(tmp))
                    if reached != sparsity:
                        row = self._measure(model, Path(tmp))
                        log(f"{tag}: {row['model_bytes']} B after pruning on to "
                            f"{100 * reached:.1f}% to fit")
            self._save_weights(model, tag)
            return {"arch": arch.label, **arch.as_dict(), "sparsity": reached, "finetuned": True,
                    "fits": row["model_bytes"] <= self.budget, "weights": tag,
                    "finetune_epoch": epoch, "finetuned_sparsity": sparsity, **row,
                    "_seconds": time.perf_counter() - start}

        log(f"pruning {arch.label} to {100 * sparsity:.1f}% and fine-tuning")
        return self._timed(tag, compute)

    def search(self) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        archs = self.family.archs_quick if self.args.quick else self.family.archs_full
        candidates: list[dict[str, Any]] = []
        for arch in archs:
            self.train_dense(arch)
            probes = self.probe_sizes(arch)["rows"]
            candidates += probes
            fitting = sorted({r["sparsity"] for r in probes if r["fits"]})
            if not fitting:
                log(f"{arch.label}: no sparsity up to {PROBE_SPARSITIES[-1]:.0%} fits")
                continue
            coarse_above = [s for s in PROBE_SPARSITIES if s > fitting[0]]
            chosen = [fitting[0], *coarse_above[: self.settings.extra_candidates]]
            high = self.settings.high_sparsity
            if high is not None and high not in chosen and high in fitting:
                chosen.append(high)
            if self.max_instructions is not None:
                speed = self.probe_speed(arch, fitting)["rows"]
                self._speed_probes += [{"arch": arch.label, **r} for r in speed]
                fast = [r["sparsity"] for r in speed
                        if r["instructions_per_window"] <= self.max_instructions]
                chosen = sorted({*chosen, *fast[:1]})  # the lowest sparsity fast enough
            for s in chosen:
                candidates.append(self.finetune(arch, s))
            if fitting[0] <= TRY_SMALLER_ABOVE and self.max_instructions is None:
                break  # fits at moderate sparsity: a smaller network would not do better
        tuned = [c for c in candidates if c["finetuned"] and c["fits"]]
        if tuned and self.max_instructions is not None:
            for c in tuned:
                c["instructions_per_window"] = self.candidate_speed(c)
            fast = [c for c in tuned if c["instructions_per_window"] <= self.max_instructions]
            if not fast:
                quickest = min(tuned, key=lambda c: c["instructions_per_window"])
                raise NoFitError(
                    f"no fine-tuned configuration that fits {self.budget} B runs within "
                    f"{self.max_instructions} instructions per window on {BOARD}; the fastest "
                    f"is {quickest['arch']} at {quickest['sparsity']:.0%} sparsity: "
                    f"{quickest['instructions_per_window']} instructions, validation accuracy "
                    f"{100 * quickest['val_accuracy']:.2f}%")
            tuned = fast
        if not tuned:
            smallest = min(candidates, key=lambda c: c["model_bytes"])
            raise NoFitError(
                f"no configuration fits {self.budget} B; the smallest C model reached is "
                f"{smallest['model_bytes']} B ({smallest['arch']} at "
                f"{smallest['sparsity']:.0%} sparsity, validation accuracy "
                f"{100 * smallest['val_accuracy']:.2f}% one-shot, not fine-tuned)")
        best, self._tolerance = select(tuned, len(self.ds.val))
        within = "" if self.max_instructions is None else " (within the speed budget)"
        log(f"selected {best['arch']} at {best['sparsity']:.0%}: the smallest fine-tuned "
            f"candidate{within} within {100 * self._tolerance:.2f} pp (one standard error) of "
            "the best validation accuracy")
        for c in candidates:
            c["selected"] = c is best
        return candidates, best

    def refit(self, best: dict[str, Any]) -> dict[str, Any]:
        """With ``--refit``: the selected configuration trained again on the training and
        validation volunteers together - the dense model for its selected number of
        epochs, then the same ramp and fine-tuning for the candidate's selected epochs,
        each on the schedule of the run that chose them. Every choice stays the
        validation's; the refit only adds data, so it has no validation accuracy. Its C
        model is measured again; if it no longer fits, it is pruned further
        (``prune_until_fits``). ``fits`` says whether it fits the budget in the end."""
        arch = Arch.from_record(best)
        tag = f"refit-{best['weights']}"

        def compute() -> dict[str, Any]:
            start = time.perf_counter()
            everything = self._xy("train", "val")
            dense_epochs = self.train_dense(arch)["selected_epoch"]
            dense = self.family.build(arch, self.args.seed)
            self._train_dense(dense, everything, None, dense_epochs, f"refit-dense-{arch.label}")
            model = self.family.build(arch, self.args.seed)
            model.set_weights(dense.get_weights())
            finetune_epochs = None
            if best["sparsity"] > 0:
                finetune_epochs = best.get("finetune_epoch") or self.settings.finetune_epochs
                self._prune_and_finetune(model, dense, best["sparsity"], everything, None,
                                         epochs=finetune_epochs, tag=tag)
            with tempfile.TemporaryDirectory(prefix="edgeprune-refit-") as tmp:
                sparsity, model_bytes = self._prune_on_to_fit(model, arch, best["sparsity"],
                                                              Path(tmp))
            self._save_weights(model, tag)
            row = {"weights": tag, "n_train": len(everything[0]), "dense_epochs": dense_epochs,
                   "finetune_epochs": finetune_epochs, "selected_sparsity": best["sparsity"],
                   "sparsity": sparsity,
                   "model_bytes": model_bytes, "fits": model_bytes <= self.budget}
            if self.max_instructions is not None and row["fits"]:
                row["instructions_per_window"] = self._instructions(model)
                row["fits"] = row["instructions_per_window"] <= self.max_instructions
            return {**row, "_seconds": time.perf_counter() - start}

        log(f"refitting {best['arch']} at {best['sparsity']:.0%} on the training and "
            "validation volunteers together")
        return self._timed(tag, compute)

    def export(self, best: dict[str, Any]) -> dict[str, Any]:
        """Every artifact of the selected model, and its one test evaluation."""

        def compute() -> dict[str, Any]:
            start = time.perf_counter()
            arch = Arch.from_record(best)
            model = self._load(arch, best["weights"])
            ds, fam, out = self.ds, self.family, self.rd.root
            x_test = ds.normalize(ds.test.x)
            float_pred = np.argmax(model.predict(x_test, batch_size=256, verbose=0), axis=1)
            keras_path = self.rd.path("model.keras")
            keras_tmp = keras_path.with_name(".tmp-model.keras")  # a kill never leaves half
            model.save(str(keras_tmp))
            keras_tmp.replace(keras_path)

            provenance = {"model": fam.name, **arch.as_dict(), "sparsity": best["sparsity"],
                          "dataset": ds.name, "val_accuracy": round(best["val_accuracy"], 4)}
            int_model, c_size, smallest_bytes = self._fastest_fitting(
                model, out / "c_model", provenance)
            c_pred = fam.c_predict(int_model, ds.test.x)

            int8 = fam.tflite(model, ds, "int8")
            tfl_sizes, tfl_acc = {}, {}
            shipped = {"int8": int8}
            if fam.tflm_quantization != "int8":
                shipped[fam.tflm_quantization] = fam.tflite(model, ds, fam.tflm_quantization)
            for quant, converted in shipped.items():
                files = fam.tflite_files(converted)
                for part, blob in files.items():
                    atomic_write_bytes(self.rd.path(f"model_{quant}_{part}.tflite"), blob)
                tfl_sizes[f"tflite_{quant}"] = sum(len(b) for b in files.values())
                pred = tfl.predict_tflite(converted, x_test, classes=True)
                tfl_acc[f"test_tflite_{quant}"] = float(np.mean(pred == ds.test.y))
            with warnings.catch_warnings():  # litert runs sparse int8 FastGRNN wrongly:
                warnings.simplefilter("ignore", RuntimeWarning)  # its size is what we report
                sparse_files = fam.tflite_files(fam.tflite(model, ds, "int8", sparse=True))
            for part, blob in sparse_files.items():
                atomic_write_bytes(self.rd.path(f"model_sparse_{part}.tflite"), blob)
            tfl_sizes["tflite_sparse"] = sum(len(b) for b in sparse_files.values())
            (out / "tflm").mkdir(exist_ok=True)
            tflm = tfl.write_tflm_array(shipped[fam.tflm_quantization], out / "tflm",
                                        provenance=str(provenance))

            layers = pruning.pruning_report(model, self.args.min_threshold, warn=False)
            per_layer = [{k: r[k] for k in ("name", "weights", "nonzeros", "sparsity", "floor",
                                            "dead_units")} for r in layers]
            y = ds.test.y
            confusion = np.zeros((2, 2), dtype=int)
            np.add.at(confusion, (y, c_pred), 1)
            return {
                "accuracy": {"val": best["val_accuracy"],
                             "test_float": float(np.mean(float_pred == y)),
                             **tfl_acc,
                             "test_c_int8": float(np.mean(c_pred == y)),
                             "c_vs_float_agreement": float(np.mean(c_pred == float_pred))},
                "bytes": {"model": c_size.model_bytes, "model_smallest": smallest_bytes,
                          "code": c_size.code_bytes,
                          "ram": c_size.ram_bytes, "toolchain": c_size.toolchain,
                          **tfl_sizes},
                "tflm_quantization": fam.tflm_quantization,
                "per_layer": per_layer,
                "confusion_test_c_int8": confusion.tolist(),
                "tflm_files": sorted(str(Path(p).relative_to(out)) for p in tflm.values()),
                "_seconds": time.perf_counter() - start,
            }

        log("exporting the selected model (Keras, TFLite int8/sparse, TFLM array, C model)")
        result = self._timed("export", compute)
        if collapsed := pruning.collapsed_layers(result["per_layer"]):
            self._warn("layer collapse: " + "; ".join(collapsed))
        return result

    def firmware(self) -> dict[str, Any] | None:
        """Firmware folders (Cortex-M, Arduino, TFLM) and, with the toolchain, a QEMU run."""
        from edgeprune import firmware as fw

        out = self.rd.root
        _replace_dir(out / "firmware" / "arduino",
                     lambda d: fw.generate_arduino(out / "c_model", d))
        _replace_dir(out / "firmware" / "tflm", lambda d: fw.generate_tflm(out / "tflm", d))
        if self.args.no_firmware:
            return None
        if not (shutil.which("arm-none-eabi-gcc") and shutil.which("qemu-system-arm")):
            log("firmware: arm-none-eabi-gcc / qemu-system-arm not found; skipping the "
                "emulated board run")
            return None

        def compute() -> dict[str, Any]:
            start = time.perf_counter()
            int_model = self.family.quantize(self._load_selected(), self.ds)
            n = self.settings.firmware_windows
            x16 = cmodel.quantize_input(int_model, self.ds.test.x[:n])
            expected = self.family.c_predict(int_model, self.ds.test.x[:n])
            mcu = fw.build_and_run(out / "c_model", x16, expected, board=BOARD,
                                   out_dir=out / "firmware" / BOARD)
            return {**mcu, "_seconds": time.perf_counter() - start}

        log(f"building the firmware and running it on an emulated Cortex-M4 (QEMU {BOARD})")
        result = self._timed("firmware", compute)
        return {k: v for k, v in result.items() if not k.startswith("_")}

    def _load_selected(self):
        best = self._best
        return self._load(Arch.from_record(best), best["weights"])

    # --------------------------------------------------------------------- run
    def run(self) -> dict[str, Any]:
        if self.rd.resumed:
            log(f"resuming the run in {self.rd.root}")
        start = time.perf_counter()
        self.load_data()
        self.seconds["data"] = time.perf_counter() - start
        candidates, selected = self.search()
        self._best, refit = selected, None
        if getattr(self.args, "refit", False):
            refit = {k: v for k, v in self.refit(selected).items() if not k.startswith("_")}
            if refit["fits"]:
                self._best = {**selected, **{k: refit[k] for k in refit if k in selected}}
                if refit["sparsity"] != selected["sparsity"]:
                    log(f"the refit model was pruned on to {refit['sparsity']:.0%} to fit")
            else:
                log("the refit model does not fit the budget(s): shipping the "
                    "validation-selected model")
        exported = self.export(self._best)
        mcu = self.firmware()
        sel = self._best
        report = {
            "model": self.family.name,
            "dataset": {"name": self.ds.name,
                        "sizes": {s: len(getattr(self.ds, s)) for s in ("train", "val", "test")},
                        "val_subjects": list(self.ds.val_subjects)},
            "budget_bytes": self.budget,
            "fits_budget": exported["bytes"]["model"] <= self.budget,
            "selected": {**{k: sel[k] for k in ("hidden", "w_rank", "u_rank", "filters")
                            if k in sel},
                         "sparsity": sel["sparsity"], "min_threshold": self.args.min_threshold,
                         "quantisation": self.family.c_quantisation,
                         "tflm_quantisation": exported["tflm_quantization"]},
            "selection": {"rule": "smallest fine-tuned candidate within one standard error "
                                  "of the best validation accuracy (C int8)"
                                  + ("" if self.max_instructions is None else
                                     ", among those within the instruction budget"),
                          "tolerance": round(self._tolerance, 5)},
            "budget_instructions": self.max_instructions,
            "speed_probes": self._speed_probes,
            "accuracy": exported["accuracy"],
            "bytes": exported["bytes"],
            "per_layer": exported["per_layer"],
            "candidates": [{k: v for k, v in c.items() if not k.startswith("_")}
                           for c in candidates],
            "seconds": {k: round(v, 2) for k, v in self.seconds.items()},
            "versions": _versions(),
            "seed": self.args.seed,
            "warnings": self.warnings,
        }
        if mcu is not None:
            report["mcu"] = mcu
        if refit is not None:
            report["refit"] = {**refit, "shipped": refit["fits"],
                               "note": "trained on the training and validation volunteers "
                                       "with the epochs chosen on validation; accuracy.val is "
                                       "the validation-selected model's"}
        if self.max_instructions is not None:
            counted = mcu["instructions_per_window"] if mcu else sel["instructions_per_window"]
            report["fits_instruction_budget"] = counted <= self.max_instructions
        out = self.rd.root
        rpt.plot_frontier(report["candidates"], self.budget, out / "frontier.png")
        if self.max_instructions is not None:
            rpt.plot_speed_frontier(report["candidates"], self.max_instructions,
                                    out / "speed_frontier.png")
        rpt.plot_per_layer(report["per_layer"], out / "per_layer_sparsity.png")
        rpt.plot_confusion(np.array(exported["confusion_test_c_int8"]), ["0", "1"],
                           "HAR-2 test, C int8 model", out / "confusion_matrix.png")
        atomic_write_json(out / "report.json", report)
        rpt.write_report_md(report, out / "report.md")
        print(rpt.summary_table(report))
        print(f"everything is in {out}")
        return report


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Run the pipeline for parsed CLI arguments (see ``edgeprune.pipeline.cli``)."""
    return Pipeline(args).run()
