"""A quiet terminal: TensorFlow's start-up and runtime log noise kept off stderr.

TensorFlow writes from C++ straight to file descriptor 2, so a Python logging filter cannot
reach it. ``quiet_tensorflow`` therefore (1) sets ``TF_CPP_MIN_LOG_LEVEL=2`` unless the
user chose a level (INFO and WARNING lines off; it must happen before TensorFlow loads,
and Ray workers inherit it with the environment), and (2) routes fd 2 through a pipe whose
reader drops the lines of ``NOISE`` only - ERROR lines that are known noise (a machine
without a GPU, a TensorFlow/tf.data version mismatch) - and passes every other line, so
real errors still show. ``--verbose`` skips both.
"""

from __future__ import annotations

import os
import re
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

NOISE = re.compile("|".join([
    r"^WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR",
    r"^[IWE]\d{4} [\d:. ]+\d+ \w+\.cc:\d+\] (failed call to cuInit|Could not find cuda driver"
    r"|oneDNN custom operations are on|Unable to register cu(DNN|FFT|BLAS) factory"
    r"|TF-TRT Warning|This TensorFlow binary is optimized|To enable the following instructions"
    r"|computation placer already registered"
    r"|.*NodeDef mentions attribute use_unbounded_threadpool)",
    r"^\S*NodeDef mentions attribute use_unbounded_threadpool",
]))
_SENTINEL = b"\x00edgeprune-quiet-end\x00"


def is_noise(line: str) -> bool:
    """Whether ``line`` is one of TensorFlow's known noise lines (``NOISE``)."""
    return NOISE.search(line) is not None


@contextmanager
def quiet_tensorflow(verbose: bool = False) -> Iterator[None]:
    """Within the block TensorFlow's noise is hidden (see the module docstring); with
    ``verbose`` nothing is changed. Everything else written to stderr passes, in order."""
    if verbose:
        yield
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with _filtered_fd2():
        yield


@contextmanager
def _filtered_fd2() -> Iterator[None]:
    sys.stderr.flush()
    terminal = os.dup(2)
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    pump = threading.Thread(target=_pump, args=(read_end, terminal), daemon=True)
    pump.start()
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(terminal, 2)  # new writes go to the terminal; the pipe drains in order
        os.write(write_end, _SENTINEL + b"\n")
        os.close(write_end)
        pump.join(timeout=10)
        os.close(terminal)


def _pump(read_end: int, terminal: int) -> None:
    """Copy whole lines from the pipe to the terminal, dropping noise, up to the sentinel."""
    pending = b""
    try:
        while chunk := os.read(read_end, 65536):
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                if line.endswith(_SENTINEL):  # after a last line without a newline, maybe
                    pending = line[:-len(_SENTINEL)]
                    return
                if not is_noise(line.decode(errors="replace")):
                    _write(terminal, line + b"\n")
            if len(pending) > 65536:  # a very long line without a newline: pass it on
                _write(terminal, pending)
                pending = b""
    finally:
        if pending and pending != _SENTINEL:
            _write(terminal, pending)
        os.close(read_end)


def _write(fd: int, data: bytes) -> None:
    try:
        os.write(fd, data)
    except OSError:
        pass
