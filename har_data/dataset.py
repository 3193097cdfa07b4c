"""HAR-2 labels, subject-wise validation split and normalisation: the Dataset the others use."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .errors import HarDataError

HAR2_POSITIVE: tuple[int, ...] = (2, 4, 6)
"""Activities with HAR-2 label 1: WALKING_UPSTAIRS, SITTING, LAYING (1, 3, 5 give 0)."""
ACTIVITY_NAMES: dict[int, str] = {
    1: "WALKING",
    2: "WALKING_UPSTAIRS",
    3: "WALKING_DOWNSTAIRS",
    4: "SITTING",
    5: "STANDING",
    6: "LAYING",
}
DEFAULT_VAL_SUBJECTS = 6
"""Training volunteers held out for validation by default (see ``split_validation``)."""


def har2(activity: np.ndarray) -> np.ndarray:
    """HAR-2 label of 6-class activities 1..6: 1 for {2, 4, 6}, 0 for {1, 3, 5}; int64."""
    activity = np.asarray(activity)
    if activity.size and (activity.min() < 1 or activity.max() > 6):
        raise HarDataError(
            f"activity labels must be in 1..6, got {activity.min()}..{activity.max()}"
        )
    return np.isin(activity, HAR2_POSITIVE).astype(np.int64)


@dataclass(frozen=True, eq=False)
class Split:
    """One part of a data set: raw windows ``x`` (N, 128, 9) float32, ``activity`` (N,)
    int64 in 1..6, ``subject`` (N,) int64; ``y`` is the HAR-2 label (N,) int64."""

    x: np.ndarray
    activity: np.ndarray
    subject: np.ndarray

    @property
    def y(self) -> np.ndarray:
        """HAR-2 label: 1 for activities {2, 4, 6}, else 0."""
        return har2(self.activity)

    def __len__(self) -> int:
        return len(self.activity)

    def take(self, mask: np.ndarray) -> Split:
        """The rows selected by a boolean mask (or index array)."""
        return Split(self.x[mask], self.activity[mask], self.subject[mask])

    def har2_counts(self) -> list[int]:
        """[windows with label 0, windows with label 1]."""
        return np.bincount(self.y, minlength=2)[:2].tolist()


@dataclass(frozen=True, eq=False)
class HarDataset:
    """``name`` ('uci-har2' | 'hapt-har2'), ``train``/``val``/``test`` Splits, and the
    per-channel ``mean``/``std`` (9,) float32 of ``train`` (validation volunteers excluded)."""

    name: str
    train: Split
    val: Split
    test: Split
    mean: np.ndarray
    std: np.ndarray
    val_subjects: tuple[int, ...]

    def normalize(self, x: np.ndarray) -> np.ndarray:
        """``(x - mean) / std`` over the last (channel) axis, as float32."""
        return ((np.asarray(x, np.float32) - self.mean) / self.std).astype(np.float32)


def choose_val_subjects(
    train_subjects: np.ndarray, val_subjects: int | Sequence[int], seed: int
) -> tuple[int, ...]:
    """Volunteers to hold out: ``val_subjects`` explicit ids, or that many drawn from the
    training volunteers with ``numpy.random.default_rng(seed)`` (sorted ids)."""
    available = np.unique(train_subjects)
    if isinstance(val_subjects, (int, np.integer)) and not isinstance(val_subjects, bool):
        count = int(val_subjects)
        if not 0 <= count < len(available):
            raise HarDataError(
                f"the training data has {len(available)} volunteers: holding out "
                f"val_subjects={count} for validation needs at least {count + 1} "
                f"(and 0..{max(len(available) - 1, 0)} can be held out)"
            )
        if not 0 <= int(seed) < 2**32:
            raise HarDataError(f"seed={seed}: must be in 0 .. 4294967295")
        chosen = np.random.default_rng(seed).choice(available, size=count, replace=False)
        return tuple(sorted(int(s) for s in chosen))
    chosen = sorted({int(s) for s in val_subjects})
    missing = sorted(set(chosen) - set(available.tolist()))
    if missing:
        raise HarDataError(f"val_subjects {missing} are not training volunteers")
    if len(chosen) == len(available):
        raise HarDataError("val_subjects may not hold out every training volunteer")
    return tuple(chosen)


def build_dataset(
    name: str,
    train: Split,
    test: Split,
    val_subjects: int | Sequence[int] = DEFAULT_VAL_SUBJECTS,
    seed: int = 0,
) -> HarDataset:
    """Split validation volunteers off ``train`` and compute normalisation statistics.

    Default: 6 of the 21 UCI training volunteers (~2,000 windows). The design notes
    measured 3 volunteers (~1,000 windows) as too noisy: validation ran 4-6 points above
    test and epochs tied on it differed by a point on test. Between-volunteer variation
    dominates that error, which shrinks roughly as 1/sqrt(volunteers): 6 narrows it by
    ~30% against 3, while 15 volunteers (~5,300 windows) still train a model that
    overfits HAR-2 anyway. More than 6 would starve training; fewer is the measured noise.
    ``mean``/``std`` are per channel over all samples of the remaining train part; a
    constant channel gets std 1.
    """
    held = choose_val_subjects(train.subject, val_subjects, seed)
    is_val = np.isin(train.subject, held)
    rest, val = train.take(~is_val), train.take(is_val)
    flat = rest.x.reshape(-1, rest.x.shape[-1]).astype(np.float64)
    mean = flat.mean(axis=0).astype(np.float32)
    std = flat.std(axis=0)
    std = np.where(std > 0, std, 1.0).astype(np.float32)
    return HarDataset(name, rest, val, test, mean, std, held)
