"""Output to a terminal that has gone: standard library only, cheap to import from a signal
handler."""

import os
import stat
import sys
import threading


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


def flush_stdout(timeout_s: float = 0.5) -> None:
    """Flush ``sys.stdout`` from a thread and wait for it at most ``timeout_s`` seconds: before
    ``os._exit``, which drops what Python still buffers (the lines a command printed to a
    file or a pipe, block-buffered). A flush that blocks (a full pipe, or the main thread
    holding the stream's lock in a write) is left behind, so the caller still ends."""

    def flush() -> None:
        try:
            sys.stdout.flush()
        except Exception:  # closed, detached, a broken pipe: nothing more to save
            pass

    thread = threading.Thread(target=flush, name="nnjax-flush", daemon=True)
    thread.start()
    thread.join(timeout_s)


def _to_devnull(fd: int) -> None:
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, fd)
    finally:
        os.close(null)
