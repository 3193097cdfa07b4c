"""A run's configuration: built once from the command line, read by every stage."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Full runs also fine-tune this sparsity when it fits: the paper's operating point, where
# Global MP + MT usually keeps accuracy while the C model gets several times faster.
HIGH_SPARSITY = 0.9


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
    def for_mode(cls, quick: bool) -> Settings:
        if quick:
            return cls(10, 1, 3, 0, None, 8, 600)
        return cls(None, 6, 14, 1, HIGH_SPARSITY, 64, None)


@dataclass(frozen=True)
class RunConfig:
    """Everything a run is asked to do. Below the CLI nothing reads argparse."""

    model: str
    budget_kb: float
    data: str
    data_path: str | None
    out: Path
    seed: int
    min_threshold: float | int
    max_instructions: int | None
    refit: bool
    quick: bool
    firmware: bool
    workers: int | None  # None: every core
    ray_address: str | None
    data_fingerprint: str | None = None  # har_data.fingerprint of the data read (run sets it)
    seeds: int = 1  # dense models per architecture (members), each its own training seed
    kernels: str = "fast"  # the C kernels shipped: fast (Cortex-M fast paths) or small

    @property
    def budget_bytes(self) -> int:
        return int(round(self.budget_kb * 1024))

    @property
    def settings(self) -> Settings:
        return Settings.for_mode(self.quick)

    @property
    def member_seeds(self) -> tuple[int, ...]:
        """The training seeds of the ``seeds`` dense members of each architecture
        (``training.member_seeds``: the first is the run's ``seed``)."""
        from edgeprune.training import member_seeds

        return member_seeds(self.seed, self.seeds)

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> RunConfig:
        return cls(model=args.model, budget_kb=args.budget_kb, data=args.data,
                   data_path=None if args.data_path is None else str(args.data_path),
                   out=Path(args.out), seed=args.seed, min_threshold=args.min_threshold,
                   max_instructions=args.max_instructions, refit=args.refit,
                   quick=args.quick, firmware=not args.no_firmware,
                   workers=args.workers, ray_address=args.ray_address, seeds=args.seeds,
                   kernels=args.kernels)

    def identity(self) -> dict[str, Any]:
        """What defines the run's results (``run.json``; a rerun resumes only when equal).
        The data is identified by ``data_fingerprint`` (what the files hold) when set, not
        by the path's text. Where and how it runs (``out``, ``firmware``, ``workers``,
        ``ray_address``) does not; options added later are left out when unset, so older
        runs resume."""
        keys = self.legacy_identity()
        if self.data_fingerprint is not None:
            del keys["data_path"]
            keys = {**keys, "data_fingerprint": self.data_fingerprint}
        return keys

    def legacy_identity(self) -> dict[str, Any]:
        """The identity run folders written before data fingerprints stored (the path's
        text stands for the data): such a folder is still resumed when this one matches."""
        keys = {"model": self.model, "budget_kb": self.budget_kb, "data": self.data,
                "data_path": self.data_path, "seed": self.seed,
                "min_threshold": self.min_threshold}
        if self.max_instructions is not None:
            keys["max_instructions"] = self.max_instructions
        if self.refit:
            keys["refit"] = True
        if self.seeds != 1:
            keys["seeds"] = self.seeds
        if self.kernels != "fast":
            keys["kernels"] = self.kernels
        return {**keys, "quick": self.quick}
