"""The pipeline's output folder: guarded against overwrite, written atomically, resumable.

A run folder holds ``run.json`` (the arguments that define the run). Running again with
the same arguments resumes: every finished stage left its result in ``stages/<name>.json``
and is not repeated. A folder that holds anything else, or a run with other arguments,
is refused rather than overwritten.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import pathlib
import shutil
from typing import Any

from har_data.atomic import atomic_write

RUN_FILE = "run.json"
LOCK_FILE = ".run.lock"  # held (flock) while a run uses the folder; holds its pid
_UMASK = os.umask(0)
os.umask(_UMASK)
TEMP_PATTERNS = (".*.tmp", ".tmp-*", ".*.tmp.png")  # har_data.atomic's, and older versions'


class OutDirError(RuntimeError):
    """The output folder cannot be used for this run (message says why)."""


def atomic_write_json(path: pathlib.Path, obj: Any) -> None:
    """Write ``obj`` as indented JSON, atomically (missing folders created)."""
    atomic_write(path, (json.dumps(obj, indent=2, sort_keys=False) + "\n").encode(), parents=True)


class RunDir:
    """An output folder bound to one set of run arguments, locked while it is open.

    The lock is an ``flock`` on ``LOCK_FILE``: the kernel releases it when the process
    ends in any way (a ``kill -9`` too), so a lock file left by a killed run is stale by
    construction and the next run takes it over."""

    def __init__(self, root: pathlib.Path, run_args: dict[str, Any],
                 legacy_args: dict[str, Any] | None = None):
        self.root = pathlib.Path(root)
        self.run_args = run_args
        self.legacy_args = legacy_args  # also resumed: a run.json written by older versions
        self.resumed = False
        self._lock: int | None = None
        self._created: list[pathlib.Path] = []  # folders this run made, deepest first
        self._fresh = False  # the folder was absent or empty: everything in it is ours
        self._stored = False  # a stage finished (its record is stored)

    def open(self) -> RunDir:
        """Create the folder, or resume it when it holds the same run; refuse anything else
        (and a folder another run is using). Locked until ``close``."""
        run_file = self.root / RUN_FILE
        if self.root.exists() and not self.root.is_dir():
            raise OutDirError(f"--out {self.root} exists and is not a folder")
        if self.root.is_dir() and any(p.name != LOCK_FILE for p in self.root.iterdir()):
            if not run_file.is_file():
                raise OutDirError(
                    f"--out {self.root} is not empty and holds no edgeprune run: "
                    "choose a new folder (nothing was overwritten)"
                )
            self._acquire()
            try:
                self._check_same_run(run_file)
            except BaseException:
                self.close()
                raise
            self.resumed = True
            self._sweep_temporaries()
            return self
        self._fresh = True
        self._created = [p for p in (self.root, *self.root.parents) if not p.exists()]
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            self._acquire()
            atomic_write_json(run_file, self.run_args)
        except OSError as err:
            self.discard_unstarted()
            raise OutDirError(f"--out {self.root} cannot be written: {err.strerror}") from None
        return self

    def discard_unstarted(self) -> bool:
        """Put a fresh folder back as it was found when no stage has finished (a failure,
        Ctrl-C or SIGTERM before any result was stored): its content removed, the folders
        this run created removed, the lock released. A resumed folder, or one with a
        stored stage, is kept (the rerun resumes it). Returns whether it was put back."""
        if not self._fresh or self._stored:
            self.close()
            return False
        try:
            for child in self.root.iterdir():
                if child.name == LOCK_FILE:
                    continue
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child, ignore_errors=True)
                else:
                    child.unlink(missing_ok=True)
        except OSError:
            pass
        self.close()
        for folder in self._created:  # deepest first; one another process filled stays
            try:
                folder.rmdir()
            except OSError:
                break
        return True

    def _check_same_run(self, run_file: pathlib.Path) -> None:
        try:
            previous = json.loads(run_file.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            previous = None
        if not isinstance(previous, dict):
            raise OutDirError(
                f"--out {self.root} holds an unreadable {RUN_FILE}: choose a new folder "
                "(nothing was overwritten)"
            )
        if previous == self.run_args or (self.legacy_args is not None
                                         and previous == self.legacy_args):
            return
        wanted = self.run_args
        if self.legacy_args is not None and not set(self.run_args) - set(self.legacy_args) \
                <= set(previous):
            wanted = self.legacy_args  # an older folder: say what differs in its terms
        changed = sorted(k for k in set(previous) | set(wanted)
                         if previous.get(k) != wanted.get(k))
        raise OutDirError(
            f"--out {self.root} holds a run with other arguments ({', '.join(changed)}): "
            "choose a new folder, or repeat the same arguments to resume"
        )

    def _acquire(self) -> None:
        """Take the folder's lock, or raise OutDirError naming the run that holds it."""
        lock_path = self.root / LOCK_FILE
        while True:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666 & ~_UMASK)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as err:
                holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
                os.close(fd)
                if err.errno in (errno.EWOULDBLOCK, errno.EACCES):
                    raise OutDirError(
                        f"--out {self.root} is in use by another run (process {holder}): "
                        "wait for it to end, or choose a new folder") from None
                raise
            try:
                same = os.fstat(fd).st_ino == os.stat(lock_path).st_ino
            except FileNotFoundError:
                same = False
            if same:  # not a lock file its holder removed while we waited for it
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._lock = fd

    def close(self) -> None:
        """Release the lock (its file removed first, so no waiter holds a dead one)."""
        if self._lock is not None:
            (self.root / LOCK_FILE).unlink(missing_ok=True)
            os.close(self._lock)
            self._lock = None

    def __enter__(self) -> RunDir:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _sweep_temporaries(self) -> None:
        """Remove what a killed run left under a temporary name (artifacts are written to a
        hidden temporary and renamed; a kill in between leaves only the temporary)."""
        for pattern in TEMP_PATTERNS:
            for leftover in self.root.rglob(pattern):
                if leftover.is_dir():
                    shutil.rmtree(leftover, ignore_errors=True)
                else:
                    leftover.unlink(missing_ok=True)

    def path(self, *parts: str) -> pathlib.Path:
        """A path inside the run folder (parents created)."""
        target = self.root.joinpath(*parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        return target

    def stored(self, name: str) -> dict[str, Any] | None:
        """The stored result of stage ``name``, or None when it has not finished."""
        record = self.root / "stages" / f"{name}.json"
        return json.loads(record.read_text()) if record.is_file() else None

    def store(self, name: str, result: dict[str, Any]) -> None:
        """Store the result of stage ``name`` (its file's presence marks it finished)."""
        self._stored = True
        atomic_write_json(self.path("stages", f"{name}.json"), result)
