"""SIGINT and SIGTERM as one clean exception: the run unwinds (its ``finally`` blocks and
context managers run, a local Ray is shut down, an unstarted ``--out`` is put back) and
the command line exits ``128 + signal number`` (130 for Ctrl-C, 143 for SIGTERM)."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(KeyboardInterrupt):
    """Raised in the main thread when SIGINT or SIGTERM arrives (``signum`` says which)."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        """The shell's convention for a process ended by this signal: ``128 + signum``."""
        return 128 + self.signum


_state: dict = {"raised": False, "handled": (), "signum": None}


def _handler(signum: int, frame: FrameType | None) -> None:
    if _state["raised"]:  # already unwinding: a second Ctrl-C must not cut the clean-up short
        return
    _state["raised"], _state["signum"] = True, signum
    raise Interrupted(signum)


def received() -> int | None:
    """The signal that raised ``Interrupted`` in the current ``stop_on_signals`` block (a
    library may re-raise it as a plain ``KeyboardInterrupt``: Ray's ``wait`` does), or None."""
    return _state["signum"]


def install() -> None:
    """(Re)install the handlers in the main thread, e.g. after a library replaced them
    (``ray.init`` installs its own SIGTERM handler); a no-op in other threads."""
    if threading.current_thread() is threading.main_thread():
        for signum in _state["handled"]:
            signal.signal(signum, _handler)


@contextmanager
def stop_on_signals() -> Iterator[None]:
    """Within the block SIGINT and SIGTERM raise ``Interrupted`` once; further signals are
    ignored while the block unwinds. A signal ignored when the block starts (a background
    job's SIGINT) stays ignored. The previous handlers are restored on exit."""
    previous = {s: signal.getsignal(s) for s in SIGNALS}
    _state["raised"], _state["signum"] = False, None
    _state["handled"] = tuple(s for s, h in previous.items() if h is not signal.SIG_IGN)
    install()
    try:
        yield
    finally:
        _state["handled"] = ()
        for signum, handler in previous.items():
            if handler is not None:
                signal.signal(signum, handler)
