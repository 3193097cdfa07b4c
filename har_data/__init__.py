"""HAR-2 data layer: official UCI HAR archive reader and offline "hapt-har2" windows.

ds = har_data.load("uci", path="UCI HAR Dataset.zip")   # or the folder, or its parent
ds = har_data.load("hapt")                              # offline default, "hapt-har2"
ds.train.x (N, 128, 9) float32 raw; .activity 1..6; .subject; .y HAR-2 (2, 4, 6 -> 1)
ds.mean, ds.std (9,) from ds.train; ds.normalize(x)
har_data.download()                                     # explicit, checksummed
"""

from .dataset import (
    ACTIVITY_NAMES,
    DEFAULT_VAL_SUBJECTS,
    HAR2_POSITIVE,
    HarDataset,
    Split,
    har2,
)
from .download import download
from .errors import HarDataError
from .loader import SOURCES, fingerprint, load
from .uci import CHANNELS

__all__ = [
    "ACTIVITY_NAMES",
    "CHANNELS",
    "DEFAULT_VAL_SUBJECTS",
    "HAR2_POSITIVE",
    "SOURCES",
    "HarDataError",
    "HarDataset",
    "Split",
    "download",
    "fingerprint",
    "har2",
    "load",
]
