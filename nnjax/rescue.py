"""A finished run's files kept when its output folder cannot take them.

A command that has trained for minutes or hours and then cannot write its ``--out`` folder
(the disk filled meanwhile, a quota, the folder made read-only or removed) would lose what
it computed. :func:`write_or_rescue` writes the same files to a new private folder
``<tmp>/nnjax-<command>-unsaved-XXXX`` (``tempfile.gettempdir()``, mode 0700) instead and
raises an ``OSError`` whose one line is the first error's and then where the files are.
Where that fails too, the new folder is removed and the first error is raised as it was;
a signal during that write (``KeyboardInterrupt``) removes it too, and goes on.
Standard library only.
"""

import shutil
import tempfile
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class RescuedError(OSError):
    """Writing ``--out`` failed; the files are in :attr:`rescued` instead (exit 3)."""

    def __init__(self, message: str, rescued: str):
        super().__init__(message)
        self.rescued = rescued


def write_or_rescue(out: str, write: Callable[[str], T], command: str, what: str, use="") -> T:
    """``write(out)``; where it raises an ``OSError``, ``write(folder)`` into a new temporary
    folder and a :class:`RescuedError`: ``<the first error>; <what> were written to
    <folder>/ instead (a temporary folder: move it where it belongs<use>)``. ``what``: e.g.
    "the results"; ``use``: how to use the folder as it is, ``{folder}`` standing for it."""
    try:
        return write(out)
    except OSError as first:
        from nnjax.errors import describe_os_error

        folder = _rescued(write, command)
        if folder is None:
            raise
        raise RescuedError(
            f"{describe_os_error(first)}; {what} were written to {folder}/ instead (a "
            f"temporary folder: move it where it belongs{use.format(folder=folder)})",
            folder,
        ) from None


def _rescued(write: Callable[[str], object], command: str) -> str | None:
    """The new temporary folder ``write`` filled, or None (nothing left behind)."""
    try:
        folder = tempfile.mkdtemp(prefix=f"nnjax-{command}-unsaved-")
    except OSError:
        return None
    try:
        write(folder)
    except BaseException as e:  # a signal (KeyboardInterrupt) too: no half-written folder
        shutil.rmtree(folder, ignore_errors=True)
        if isinstance(e, OSError | ValueError):
            return None
        raise
    return folder  # mode 0700, as mkdtemp makes it: private in a shared temporary folder
