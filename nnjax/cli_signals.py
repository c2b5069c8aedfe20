"""How a command of the ``nnjax`` executable ends on a signal: at once, in one line.

:func:`signals_unwind` turns SIGTERM and SIGHUP into :class:`nnjax.errors.Interrupted`
(exit 143, 129) and Ctrl-C (SIGINT) into KeyboardInterrupt (exit 130), raised in the main
thread, so that a stopped command unwinds: it releases its locks and leaves no temporary
files. ``nnjax train`` handles its stop signals itself during training
(:func:`nnjax.train.stop_on_signals`: the epoch ends, a checkpoint is written).

Python runs a signal handler only between bytecodes of the main thread. While the main
thread is inside one long compiled computation (a ``compare`` study is one XLA call) the
handler waits for it to return, and an exception raised in a garbage-collection callback
(JAX installs one) is dropped ("Exception ignored in ..."). So a watchdog thread learns of
every signal at once, through :func:`signal.set_wakeup_fd` (written by Python's C-level
handler; JAX releases the GIL while XLA runs): when the command has not unwound
:data:`GRACE_S` seconds after a signal its handler here serves, the watchdog writes the
command's one line, removes the lock files the process holds and ends it with status
128 + N (the kernel drops the flocks; a later writer removes any temporary file left).

After SIGHUP the terminal is gone: output that went to it goes to /dev/null
(:func:`nnjax.terminal.detach_terminal`). A signal the process ignores (SIG_IGN: ``nohup``,
a background job's SIGINT) stays ignored.
"""

import contextlib
import os
import signal
import sys
import threading

from nnjax.errors import Interrupted
from nnjax.terminal import detach_terminal

GRACE_S = 2.0


@contextlib.contextmanager
def signals_unwind(command: str, grace_s: float = GRACE_S):
    """Within the block, SIGINT, SIGTERM and SIGHUP unwind the command (module docstring);
    the previous handlers and wakeup fd are restored on leaving. Only in the main thread
    (elsewhere Python allows no handlers): in other threads, a no-op."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    hangup = getattr(signal, "SIGHUP", None)

    def unwind(signum, frame):
        if signum == hangup:
            detach_terminal()
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        raise Interrupted(signum)

    previous = {}
    for signum in (signal.SIGINT, signal.SIGTERM, hangup):
        if signum is not None and signal.getsignal(signum) is not signal.SIG_IGN:
            previous[signum] = signal.signal(signum, unwind)
    done = threading.Event()
    watchdog = _Watchdog(command, unwind, done, grace_s)
    try:
        yield
    finally:
        done.set()
        watchdog.stop()
        for signum, handler in previous.items():
            signal.signal(signum, signal.SIG_DFL if handler is None else handler)


class _Watchdog:
    """The thread that ends the process when a served signal has not unwound the command
    within ``grace_s`` seconds. Not started where the wakeup fd is taken (asyncio)."""

    def __init__(self, command: str, handler, done: threading.Event, grace_s: float):
        self.command, self.handler, self.done, self.grace_s = command, handler, done, grace_s
        self.read_fd, self.write_fd = os.pipe()
        os.set_blocking(self.write_fd, False)
        self.previous_fd = signal.set_wakeup_fd(self.write_fd, warn_on_full_buffer=False)
        if self.previous_fd != -1:  # someone else listens: leave it theirs, no watchdog
            signal.set_wakeup_fd(self.previous_fd)
            self._close(self.read_fd, self.write_fd)
            self.thread = None
            return
        self.thread = threading.Thread(target=self._watch, name="nnjax-signals", daemon=True)
        self.thread.start()

    def _watch(self) -> None:
        while True:
            data = os.read(self.read_fd, 64)
            if not data or self.done.is_set():  # the command has ended
                break
            for signum in data:
                if signal.getsignal(signum) is self.handler and not self.done.wait(self.grace_s):
                    self._end(signum)
        os.close(self.read_fd)

    def _end(self, signum: int) -> None:
        if signum == getattr(signal, "SIGHUP", None):
            detach_terminal()
        name = signal.Signals(signum).name
        line = (
            f"nnjax {self.command}: error: interrupted by {name} (the running computation "
            f"did not return within {self.grace_s:g} s: ended at once)\n"
        )
        try:
            os.write(2, line.encode())
        except OSError:
            pass
        lock = sys.modules.get("nnjax.lock")  # only a process that imported it holds locks
        if lock is not None:
            lock.remove_held_lock_files()
        os._exit(128 + signum)

    def stop(self) -> None:
        if self.thread is None:
            return
        signal.set_wakeup_fd(self.previous_fd)
        os.close(self.write_fd)  # the thread's read returns b"": it ends and closes its end

    @staticmethod
    def _close(*fds) -> None:
        for fd in fds:
            os.close(fd)
