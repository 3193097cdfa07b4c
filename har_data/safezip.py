"""Read zip members in memory, refusing path traversal and zip bombs (nothing is extracted)."""

from __future__ import annotations

import io
import posixpath
import zipfile
import zlib
from pathlib import Path
from typing import BinaryIO

from .errors import HarDataError

MAX_MEMBER_BYTES = 256 * 1024 * 1024
"""Largest decompressed member read (the biggest file we read, a nested archive, is ~60 MB)."""
MAX_MEMBERS = 10_000
_CHUNK = 1 << 20


def member_problem(name: str) -> str | None:
    """Why ``name`` is not a safe relative member path, or None when it is."""
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        return "is an absolute path"
    parts = name.replace("\\", "/").split("/")
    if ".." in parts:
        return "climbs out of the archive ('..')"
    if "\x00" in name:
        return "has a NUL byte in its name"
    return None


class SafeZip:
    """A zip archive opened from a path or bytes, whose members are read with size guards.

    Every member name is checked on open: absolute or '..' paths are a HarDataError.
    ``label`` names the archive in error messages (e.g. 'outer.zip!inner.zip').
    """

    def __init__(self, source: Path | bytes | BinaryIO, label: str):
        self.label = label
        self._handle = None if isinstance(source, (bytes, Path)) else source  # closed with us
        try:
            self._zip = zipfile.ZipFile(io.BytesIO(source) if isinstance(source, bytes) else source)
        except (zipfile.BadZipFile, OSError) as exc:
            self._close_handle()
            raise HarDataError(f"{label}: not a readable zip archive ({exc})") from None
        infos = self._zip.infolist()
        if len(infos) > MAX_MEMBERS:
            self.close()
            raise HarDataError(f"{label}: {len(infos)} members, more than {MAX_MEMBERS}")
        for info in infos:
            problem = member_problem(info.filename)
            if problem:
                self.close()
                raise HarDataError(f"{label}: member {info.filename!r} {problem}")
        self.infos = {info.filename: info for info in infos if not info.is_dir()}

    def names(self) -> list[str]:
        """File (not directory) member names, in archive order."""
        return list(self.infos)

    def read(self, name: str, limit: int | None = None) -> bytes:
        """Decompressed bytes of member ``name``; the declared and the actual size must stay
        within ``limit`` (default MAX_MEMBER_BYTES), else HarDataError."""
        limit = MAX_MEMBER_BYTES if limit is None else limit
        where = f"{self.label}!{name}"
        info = self.infos.get(name)
        if info is None:
            raise HarDataError(f"{where}: missing from the archive")
        if info.file_size > limit:
            raise HarDataError(
                f"{where}: declared size {info.file_size} bytes exceeds the {limit}-byte limit"
            )
        chunks, total = [], 0
        try:
            with self._zip.open(info) as stream:
                while chunk := stream.read(_CHUNK):
                    total += len(chunk)
                    if total > limit or total > info.file_size:
                        raise HarDataError(
                            f"{where}: decompresses past its declared size or the "
                            f"{limit}-byte limit"
                        )
                    chunks.append(chunk)
        except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError) as exc:
            raise HarDataError(f"{where}: corrupt member ({exc})") from None
        return b"".join(chunks)

    def _close_handle(self) -> None:
        if self._handle is not None:
            self._handle.close()

    def close(self) -> None:
        self._zip.close()
        self._close_handle()

    def __enter__(self) -> SafeZip:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def top_dirs(names: list[str]) -> set[str]:
    """First path components of ``names`` (files at the top level give their own name)."""
    return {posixpath.normpath(name).split("/")[0] for name in names}
