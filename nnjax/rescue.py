"""A finished run's files kept when its output folder cannot take them.

A command that has trained for minutes or hours and then cannot write its ``--out`` folder
(the disk filled meanwhile, a quota, the folder made read-only or removed) would lose what
it computed. :func:`write_or_rescue` writes the same files to a new private folder
``<tmp>/nnjax-<command>-unsaved-XXXX`` (``tempfile.gettempdir()``, mode 0700) instead and
raises an ``OSError`` whose one line is the first error's and then where the files are.
Where that fails too, the new folder is removed and the first error is raised as it was;
a signal during that write (``KeyboardInterrupt``) removes it too, and goes on. Files of
the run's names that appeared in ``--out`` while it computed (the user's, another
program's) are kept the same way: :func:`out_appeared_error`. Standard library only.
"""

import os
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


def write_or_rescue(
    out: str,
    write: Callable[[str], T],
    command: str,
    what: str,
    use="",
    refuse: Callable[[], Exception | None] | None = None,
) -> T:
    """``write(out)``; where it raises an ``OSError``, ``write(folder)`` into a new temporary
    folder and a :class:`RescuedError`: ``<the first error>; <what> were written to
    <folder>/ instead (a temporary folder: move it where it belongs<use>)``. ``what``: e.g.
    "the results"; ``use``: how to use the folder as it is, ``{folder}`` standing for it.
    ``refuse()``, asked first, is None or the error that keeps ``out`` unwritten (files the
    user put there while the run computed): rescued the same way; where that fails too, it
    is raised saying that ``what`` were not written."""
    try:
        first = refuse() if refuse is not None else None
        if first is None:
            return write(out)
    except OSError as e:
        first = e
    from nnjax.errors import describe_os_error

    folder = _rescued(write, command)
    if folder is None and isinstance(first, OSError):
        raise first
    if folder is None:  # a refusal alone would read as if the files were somewhere
        raise type(first)(f"{first}; {what} were not written: no temporary folder took them")
    reason = describe_os_error(first) if isinstance(first, OSError) else str(first)
    raise RescuedError(
        f"{reason}; {what} were written to {folder}/ instead (a "
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


def out_files_state(out, names) -> dict:
    """Which of the files ``names`` the folder ``out`` holds now, and which file each is:
    ``{name: (device, inode, size, mtime in ns)}`` (a link as itself), for
    :func:`out_appeared_error`."""
    state = {}
    for name in names:
        try:
            st = os.lstat(os.path.join(out, name))
        except OSError:
            continue
        state[name] = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
    return state


def out_appeared_error(out, writes, removes=(), overwrite=False, where=None, before=None):
    """After the run computed, before it writes: None, or the ValueError naming the files of
    its names (``writes``, ``removes``, as in
    :func:`nnjax.commands.options.out_kept_error`) that appeared in the
    folder ``out``, or changed there, since ``before`` (:func:`out_files_state` then;
    default: none of them there, as the check before the run found): the user's or another
    program's, they are kept, and the run's files go to a temporary folder
    (:func:`write_or_rescue`'s ``refuse``). ``where`` names the folder (default ``--out
    OUT``)."""
    if overwrite or out is None:
        return None
    before = before or {}
    now = out_files_state(out, (*writes, *removes))
    found = [n for n in now if now[n] != before.get(n)]
    if not found:
        return None
    new = ", ".join(n for n in found if n not in before)
    # one it held as the run began (a resumed run's own) was not "come to hold": it changed
    changed = ", ".join(n for n in found if n in before)
    where = where or f"--out {out}"
    if new and changed:
        said = f"{where} came to hold {new}, and its {changed} changed,"
    else:
        said = f"{where} came to hold {new}" if new else f"{where}: {changed} changed"
    return ValueError(
        f"{said} while the run computed (kept as {'it is' if len(found) == 1 else 'they are'})"
    )
