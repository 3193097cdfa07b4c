"""Explicit download of the official UCI HAR archive into the cache (never implicit)."""

from __future__ import annotations

import hashlib
import urllib.parse
import urllib.request
from pathlib import Path

from .atomic import atomic_write
from .cache import default_cache_dir
from .errors import HarDataError
from .safezip import SafeZip

URL = (
    "https://archive.ics.uci.edu/static/public/240/human+activity+recognition+using+smartphones.zip"
)
SHA256 = "c00b803081a5c797cd5e4b83700a9810b38d53d9d84e01917e090e1fdbc81031"
"""SHA-256 of the file at URL. Not fetched here (no network): taken from two independent
public projects that pin it (their inner 'UCI HAR Dataset.zip' hash: INNER_SHA256).
Confirm it on the first real download and update it if UCI re-packs the archive."""
INNER_SHA256 = "2045e435c955214b38145fb5fa00776c72814f01b203fec405152dac7d5bfeb0"
ARCHIVE_NAME = "UCI HAR Dataset.zip"
"""What is stored in the cache: the inner archive, unwrapped from UCI's outer zip."""
MAX_DOWNLOAD_BYTES = 512 * 1024 * 1024
_CHUNK = 1 << 20


def _fetch(url: str, sha256: str, timeout: float) -> bytes:
    """The bytes at ``url``, checked against ``sha256`` (streamed, size-capped)."""
    digest, chunks, total = hashlib.sha256(), [], 0
    if urllib.parse.urlsplit(url).scheme.lower() not in ("http", "https", "ftp", "file"):
        raise HarDataError(f"{url}: not a URL (expected http://, https://, ftp:// or file://)")
    if len(sha256) != 64 or any(c not in "0123456789abcdefABCDEF" for c in sha256):
        raise HarDataError(f"{sha256!r}: not a SHA-256 (64 hexadecimal digits)")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310
            while chunk := response.read(_CHUNK):
                total += len(chunk)
                if total > MAX_DOWNLOAD_BYTES:
                    raise HarDataError(f"{url}: larger than {MAX_DOWNLOAD_BYTES} bytes")
                digest.update(chunk)
                chunks.append(chunk)
    except (OSError, ValueError) as exc:  # URLError, HTTPError, timeouts, malformed URLs
        if isinstance(exc, HarDataError):
            raise
        raise HarDataError(f"{url}: download failed ({exc})") from None
    actual = digest.hexdigest()
    if actual != sha256.lower():
        raise HarDataError(
            f"{url}: SHA-256 mismatch (expected {sha256.lower()}, got {actual}); nothing written"
        )
    return b"".join(chunks)


def download(
    cache_dir: str | Path | None = None,
    url: str = URL,
    sha256: str = SHA256,
    force: bool = False,
    timeout: float = 60.0,
) -> Path:
    """Fetch the UCI HAR archive (#240) and store it as ``<cache_dir>/UCI HAR Dataset.zip``.

    The download must match ``sha256`` (a mismatch is a HarDataError and writes nothing).
    UCI's outer zip is unwrapped in memory and its inner "UCI HAR Dataset.zip" stored;
    a download that already is the plain archive is stored as is. The write is atomic
    (temp file in the same directory + os.replace). An existing file is kept unless
    ``force``. ``cache_dir`` defaults to ``$EDGEPRUNE_CACHE`` or ``~/.cache/edgeprune``.
    Returns the stored path, which ``har_data.load("uci", path=...)`` accepts.
    """
    directory = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    target = directory / ARCHIVE_NAME
    if target.is_file() and not force:
        return target
    data = _fetch(url, sha256, timeout)
    with SafeZip(data, url) as archive:
        names = archive.names()
        if ARCHIVE_NAME in names:
            stored = archive.read(ARCHIVE_NAME)
        elif any(name.startswith("UCI HAR Dataset/") for name in names):
            stored = data
        else:
            raise HarDataError(f"{url}: neither '{ARCHIVE_NAME}' nor 'UCI HAR Dataset/' inside")
    if sha256.lower() == SHA256 and hashlib.sha256(stored).hexdigest() != INNER_SHA256:
        raise HarDataError(f"{url}!{ARCHIVE_NAME}: SHA-256 mismatch of the inner archive")
    directory.mkdir(parents=True, exist_ok=True)
    atomic_write(target, stored)
    return target
