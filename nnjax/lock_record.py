"""The record in a lock file (:mod:`nnjax.lock`) and the file operations that judge it.

A record is ``{pid, host, started, started_unix, identity, command}`` (:func:`record`);
:func:`read` returns it, or None when the file holds no valid one; :func:`flock` tries the
kernel's exclusive lock; :func:`same_file` tells whether a descriptor is still the file at
a path; :func:`describe` words a holder for the messages. Standard library only.
"""

import datetime
import errno
import json
import math
import numbers
import os
import sys
import time

from nnjax import _host

try:
    import fcntl
except ImportError:  # Windows: no flock; the record and the PID check remain
    fcntl = None


def record() -> dict:
    now = time.time()
    started = datetime.datetime.fromtimestamp(now, datetime.UTC)
    return {
        "pid": os.getpid(),
        "host": _host.hostname(),
        "started": started.isoformat(timespec="seconds"),
        "started_unix": now,
        "identity": _host.process_identity(os.getpid()),
        "command": " ".join(sys.argv)[:300],
    }


def read(fd: int) -> dict | None:
    try:
        rec = json.loads(os.pread(fd, 1 << 16, 0))
    except (OSError, ValueError):
        return None
    if not isinstance(rec, dict) or not isinstance(rec.get("host"), str):
        return None
    pid = rec.get("pid")  # a process id: not a bool, nor one os.kill cannot take (Overflow)
    ok = isinstance(pid, int) and not isinstance(pid, bool) and 0 < pid < 2**31
    return rec if ok else None


def flock(fd: int) -> bool | None:
    """True: locked; False: another open file holds it; None: flock is unsupported here."""
    if fcntl is None:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
    except OSError as e:
        if e.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EINVAL, errno.ENOSYS):
            return None
        raise


def same_file(fd: int, path: str) -> bool:
    try:
        a, b = os.fstat(fd), os.stat(path)
    except FileNotFoundError:
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def describe(holder: dict | None, mtime: float | None = None) -> str:
    """``process P on host H (started T; last heartbeat N s ago; command: C)``, the
    heartbeat only with ``mtime``, the command only when the record has one."""
    if holder is None:
        return "an unknown process (unreadable lock record)"
    parts = [f"started {holder.get('started', '?')}"]
    if mtime is not None:
        parts.append(f"last heartbeat {max(0.0, time.time() - mtime):.0f} s ago")
    if holder.get("command"):
        parts.append(f"command: {holder['command']}")
    return f"process {holder['pid']} on host {holder['host']} ({'; '.join(parts)})"


def seconds(name: str, value, none_means: str) -> float | None:
    """``value``: None or a finite number of seconds > 0 (a negative or nan ``heartbeat``
    would spin its thread, a negative ``stale_after`` take over a live holder's lock)."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if value is None or (ok and math.isfinite(value) and value > 0):
        return None if value is None else float(value)  # threading wants a Python float
    raise ValueError(
        f"DirectoryLock: {name} must be seconds > 0 or None ({none_means}), got {value!r}"
    )
