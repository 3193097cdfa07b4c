"""What each stage of a run produces: typed records, stored as JSON in the run folder and
assembled into ``report.json``. ``to_json``/``from_json`` round-trip exactly."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Self

import numpy as np

Weights = list[np.ndarray]  # a Keras model's ``get_weights()``


class Record:
    """JSON round trip for a flat dataclass (lists stored for tuples are turned back)."""

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        values = {}
        for f in dataclasses.fields(cls):  # type: ignore[arg-type]
            if f.name in data:
                value = data[f.name]
                if "tuple" in str(f.type) and isinstance(value, list):
                    value = tuple(value)
                values[f.name] = value
        return cls(**values)


@dataclass(frozen=True)
class Arch(Record):
    """One architecture of the search: FastGRNN sizes, or the CNN's filters."""

    hidden: int | None = None
    w_rank: int | None = None
    u_rank: int | None = None
    filters: tuple[int, ...] | None = None

    @property
    def label(self) -> str:
        if self.filters is not None:
            return "cnn-" + "-".join(str(f) for f in self.filters)
        return f"h{self.hidden}-w{self.w_rank}-u{self.u_rank}"


@dataclass(frozen=True)
class DenseResult(Record):
    """The dense model of one architecture, trained with its epoch chosen on validation."""

    arch: str
    val_accuracy_float: float
    selected_epoch: int
    epochs: int
    params: int
    training_warning: str | None
    seed: int | None = None  # its training seed (a member of ``--seeds``); None: the run's


@dataclass(frozen=True)
class DenseRefit(Record):
    """A dense member trained again on training + validation volunteers for its
    validation-selected number of epochs (a refit's parent or teacher)."""

    arch: str
    seed: int
    epochs: int
    n_train: int


@dataclass(frozen=True)
class Candidate(Record):
    """One measured configuration: a one-shot size probe (``finetuned`` False) or a
    pruned and fine-tuned model (``weights`` names its file under ``models/``)."""

    arch: str
    hidden: int | None
    w_rank: int | None
    u_rank: int | None
    filters: tuple[int, ...] | None
    sparsity: float
    finetuned: bool
    fits: bool
    model_bytes: int
    code_bytes: int
    ram_bytes: int
    toolchain: str
    val_accuracy: float
    weights: str | None = None
    finetune_epoch: int | None = None
    finetuned_sparsity: float | None = None
    instructions_per_window: int | None = None
    selected: bool = False

    @property
    def spec(self) -> Arch:
        return Arch(self.hidden, self.w_rank, self.u_rank, self.filters)


@dataclass(frozen=True)
class SizeProbes(Record):
    """One-shot probes of an architecture over sparsities (grid, then bisection)."""

    rows: tuple[Candidate, ...]

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SizeProbes:
        return cls(tuple(Candidate.from_json(r) for r in data["rows"]))


@dataclass(frozen=True)
class SpeedProbe(Record):
    """Instructions per window of a one-shot model on the emulated board."""

    arch: str
    sparsity: float
    instructions_per_window: int


@dataclass(frozen=True)
class SpeedProbes(Record):
    rows: tuple[SpeedProbe, ...]

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SpeedProbes:
        return cls(tuple(SpeedProbe.from_json(r) for r in data["rows"]))


@dataclass(frozen=True)
class CandidateSpeed(Record):
    """Instructions per window of a fine-tuned candidate's shipped C model."""

    weights: str
    instructions_per_window: int


@dataclass(frozen=True)
class RefitResult(Record):
    """The selected configuration trained again on training + validation volunteers."""

    weights: str
    n_train: int
    dense_epochs: int
    finetune_epochs: int | None
    selected_sparsity: float
    sparsity: float
    model_bytes: int
    fits: bool
    instructions_per_window: int | None = None


@dataclass(frozen=True)
class ExportResult(Record):
    """The shipped model's one test evaluation, sizes and per-layer sparsity (the report
    sections of the same names)."""

    accuracy: dict[str, float]
    bytes: dict[str, Any]
    tflm_quantization: str
    per_layer: list[dict[str, Any]]
    confusion_test_c_int8: list[list[int]]
    tflm_files: list[str]


@dataclass(frozen=True)
class BoardRun(Record):
    """The shipped firmware run on the emulated board (``firmware.build_and_run``)."""

    mcu: dict[str, Any]


@dataclass(frozen=True)
class StageInfo(Record):
    """Where and how long a stage ran (``node``: a Ray node id, or ``local``)."""

    seconds: float
    node: str


@dataclass
class StageLog:
    """Every stage's ``StageInfo`` of a run, by stage name (the report's ``stages``)."""

    stages: dict[str, StageInfo] = field(default_factory=dict)

    def seconds(self) -> dict[str, float]:
        return {k: round(v.seconds, 2) for k, v in self.stages.items()}

    def nodes(self) -> dict[str, str]:
        return {k: v.node for k, v in self.stages.items()}
