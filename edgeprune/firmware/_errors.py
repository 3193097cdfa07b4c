"""Errors of edgeprune.firmware: each carries a one-line message and the CLI's exit code."""

from __future__ import annotations


class FirmwareError(Exception):
    """Base class: ``str(err)`` is one line; ``exit_code`` is what the CLI returns."""

    exit_code = 1


class UnknownBoard(FirmwareError):
    """The board name is not one of ``BOARDS`` (the message lists the known ones)."""

    exit_code = 2


class MissingCModel(FirmwareError):
    """No generated C model (``<name>_model.h`` + ``.c``) where one was expected."""

    exit_code = 2


class BadWindows(FirmwareError):
    """Windows or expected classes of the wrong shape or range for the model."""

    exit_code = 2


class BadOutputDir(FirmwareError):
    """The output folder exists, is not empty and was not written by edgeprune.firmware."""

    exit_code = 2


class ToolchainMissing(FirmwareError):
    """``arm-none-eabi-gcc``/``-size``, ``make`` or ``qemu-system-arm`` is not on PATH."""

    exit_code = 3


class BuildFailed(FirmwareError):
    """The firmware did not compile or link (the message quotes the first error line)."""

    exit_code = 4


class FirmwareHung(FirmwareError):
    """The firmware did not exit within the timeout; QEMU was killed."""

    exit_code = 5


class FirmwareCrashed(FirmwareError):
    """The firmware faulted, exited non-zero, or printed an incomplete result."""

    exit_code = 5


class BadReport(FirmwareError):
    """The report a board run would merge into exists but cannot be read (never replaced)."""

    exit_code = 2
