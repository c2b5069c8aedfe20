"""The watchdog of :func:`nnjax.cli_signals.signals_unwind`: a thread that learns of a signal
at once, through :func:`signal.set_wakeup_fd`, and ends the process when the command has not
unwound within its grace period (the main thread inside one long XLA call runs no handler).
Before it ends the process (``os._exit``: no ``finally`` runs) it writes the command's one
line and removes what the run leaves behind that nothing else would: the lock files the
process holds and the folders it made that are still empty (:data:`CLEAN_UP`)."""

import os
import signal
import sys
import threading

from nnjax.terminal import detach_terminal, flush_stdout

# module, function: called when the module is loaded (a process that did not import it holds
# no lock and made no folder through it)
CLEAN_UP = (
    ("nnjax.lock", "remove_held_lock_files"),
    ("nnjax.preflight", "remove_new_empty_folders"),
)


class Watchdog:
    """The thread that ends the process when a served signal has not unwound the command
    within ``grace_s`` seconds. Not started where the wakeup fd is taken (asyncio)."""

    def __init__(self, prog: str, handler, done: threading.Event, grace_s: float):
        self.prog, self.handler, self.done, self.grace_s = prog, handler, done, grace_s
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
        flush_stdout()  # the lines printed before, still buffered (a file, a pipe)
        name = signal.Signals(signum).name
        line = (
            f"{self.prog}: error: interrupted by {name} (the running computation "
            f"did not return within {self.grace_s:g} s: ended at once)\n"
        )
        try:
            os.write(2, line.encode())
        except OSError:
            pass
        for module, clean in CLEAN_UP:
            if module in sys.modules:
                getattr(sys.modules[module], clean)()
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
