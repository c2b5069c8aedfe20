"""Output to a terminal that has gone: standard library only, cheap to import from a signal
handler."""

import os
import stat
import sys


def detach_terminal() -> None:
    """Point file descriptors 1 and 2 at /dev/null where they are a terminal (a character
    device: a hung-up terminal no longer passes ``isatty``), so that nothing more written
    there fails (EIO after SIGHUP); files and pipes are left as they are."""
    for fd in (1, 2):
        try:
            if stat.S_ISCHR(os.fstat(fd).st_mode):
                _to_devnull(fd)
        except OSError:
            pass


def detach_stdout() -> None:
    """Point stdout at /dev/null, whatever it is (its reader has left: a broken pipe), so the
    interpreter's final flush raises nothing more."""
    try:
        _to_devnull(sys.stdout.fileno())
    except (OSError, ValueError):  # no real file descriptor (captured in tests)
        pass


def _to_devnull(fd: int) -> None:
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, fd)
    finally:
        os.close(null)
