"""Shared test fixtures: where the UCI HAR mirror lives, and a seeded TensorFlow."""

import os
import pathlib

os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
UCI_MIRROR = SHARED / "data" / "uci_har"
MAKE_UCI_ARCHIVE = SHARED / "tools" / "make_uci_archive.py"


@pytest.fixture(scope="session")
def uci_mirror() -> pathlib.Path:
    """The official UCI HAR arrays in ../shared; the test skips when they are absent."""
    if not (UCI_MIRROR / "y_train.npy").exists():
        pytest.skip(f"UCI HAR mirror not found at {UCI_MIRROR} (only in the team's checkout)")
    return UCI_MIRROR
