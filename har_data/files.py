"""Opening input files so that no read can hang or exhaust memory: regular files only (a
FIFO, device or socket is refused by its type before anything is read) and at most a
given size, checked on the open file itself."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import BinaryIO

from .errors import HarDataError

MAX_TEXT_BYTES = 64 * 1024 * 1024
"""Largest text table read, from a folder or a zip member (the official ones are ~15 MB)."""
MAX_ARCHIVE_BYTES = 1024 * 1024 * 1024
"""Largest archive or pickle file opened (the official zip is ~60 MB, HAPT.pkl.gz ~20 MB)."""

_KINDS = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
          (stat.S_ISSOCK, "a socket"))


def kind(mode: int) -> str:
    """What a file of ``st_mode`` ``mode`` is, in words ("a FIFO", "a regular file")."""
    return next((name for test, name in _KINDS if test(mode)),
                "a regular file" if stat.S_ISREG(mode) else "not a file")


def open_regular(path: Path, limit: int) -> BinaryIO:
    """``path`` opened for binary reading: HarDataError, before any read, when it is
    missing, not a regular file, or larger than ``limit`` bytes."""
    try:
        mode = os.stat(path).st_mode
        if not stat.S_ISREG(mode):
            raise HarDataError(f"{path}: not a regular file ({kind(mode)})")
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise HarDataError(f"{path}: missing file") from None
    except OSError as exc:
        raise HarDataError(f"{path}: unreadable ({exc.strerror})") from None
    info = os.fstat(fd)  # the file opened, not the name stat'ed: no swap in between
    problem = (f"not a regular file ({kind(info.st_mode)})" if not stat.S_ISREG(info.st_mode)
               else f"{info.st_size} bytes exceeds the {limit}-byte limit"
               if info.st_size > limit else None)
    if problem:
        os.close(fd)
        raise HarDataError(f"{path}: {problem}")
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


def read_regular(path: Path, limit: int) -> bytes:
    """The bytes of ``path`` (see ``open_regular``); a file that grows past ``limit``
    while read is refused too."""
    with open_regular(path, limit) as handle:
        try:
            data = handle.read(limit + 1)
        except OSError as exc:
            raise HarDataError(f"{path}: unreadable ({exc.strerror})") from None
    if len(data) > limit:
        raise HarDataError(f"{path}: exceeds the {limit}-byte limit")
    return data


def describe_format(head: bytes) -> str:
    """What the first bytes of a file look like, in words (for 'expected X, found Y')."""
    signatures = ((b"PK\x03\x04", "a zip archive"), (b"\x1f\x8b", "gzip data"),
                  (b"\xef\xbb\xbf", "UTF-8 text with a byte-order mark"),
                  (b"\xff\xfe", "UTF-16 text"), (b"\xfe\xff", "UTF-16 text"),
                  (b"\x80", "an uncompressed pickle"))
    for magic, name in signatures:
        if head.startswith(magic):
            return name
    if not head:
        return "an empty file"
    try:
        head.decode("ascii")
    except UnicodeDecodeError:
        return "binary data"
    return "plain text"
