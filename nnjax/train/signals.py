"""Stop a run cleanly on SIGTERM, SIGINT, SIGHUP or SIGUSR1: finish the chunk, checkpoint,
return.

A library should not take a process's signals behind its caller's back, so ``fit`` never
installs handlers by itself: the caller asks for them, for the duration of a ``with``::

    with nnjax.train.stop_on_signals() as stop:      # handlers installed
        try:
            res = nnjax.fit(..., checkpoint_dir="runs/a", stop=stop)
        except nnjax.train.TrainingStopped as e:     # a signal came: checkpoint written
            sys.exit(128 + stop.signum)
    # the previous handlers are back

The first signal requests a stop on the :class:`SignalStop` flag (a
:class:`~nnjax.train.driver.StopFlag`): the running compiled chunk finishes, the hooks run
with ``report.stopping`` set (a checkpoint is written when ``checkpoint_dir`` is set) and
``fit`` raises ``TrainingStopped``. A second signal while stopping raises
:class:`nnjax.errors.Interrupted` at once (no final checkpoint: the committed ones stay).
Python runs a handler between bytecodes of the main thread, so a stop is served at the end
of the running chunk (``BoundedChunks`` bounds its length) and a second signal as soon as
the compiled chunk returns. Handlers are only installed from the main thread, and a signal
the process ignores (SIG_IGN: ``nohup`` for SIGHUP, a background job's SIGINT) stays ignored.

SIGHUP means the terminal has gone (a closed window, a dropped ssh session): writing to it
would fail (EIO), so the handler first points stdout and stderr, where they are a terminal,
at /dev/null (:func:`nnjax.terminal.detach_terminal`); output redirected to a file or a
pipe is kept.
"""

import contextlib
import signal
import threading
from collections.abc import Iterator, Sequence

from nnjax.errors import Interrupted
from nnjax.terminal import detach_terminal
from nnjax.train.driver import StopFlag

STOP_SIGNALS = ("SIGTERM", "SIGINT", "SIGHUP", "SIGUSR1")


class SignalStop(StopFlag):
    """A :class:`~nnjax.train.driver.StopFlag` that remembers the signal: ``signum`` (None
    until one arrives) and ``reason`` its name, e.g. ``"SIGTERM"``."""

    # the message of a second signal's Interrupted (a subclass may say what it loses)
    second_signal = "a second signal while stopping: stopped at once, without a checkpoint"

    def __init__(self):
        super().__init__()
        self.signum: int | None = None

    def handler(self, signum, frame) -> None:
        """The signal handler: the first signal requests a stop, a second raises."""
        if self.requested:
            raise Interrupted(signum, self.second_signal)
        if signum == getattr(signal, "SIGHUP", None):
            detach_terminal()
        self.signum = int(signum)
        self.request(signal.Signals(signum).name)


@contextlib.contextmanager
def stop_on_signals(
    signals: Sequence[str | int] = STOP_SIGNALS, flag: SignalStop | None = None
) -> Iterator[SignalStop]:
    """Within the block, ``signals`` (names or numbers; those this platform lacks are skipped)
    request a stop on the yielded :class:`SignalStop` (pass it as ``fit(..., stop=...)``);
    the previous handlers are restored on leaving. Outside the main thread nothing is
    installed (Python allows handlers there only) and the flag is yielded all the same."""
    flag = flag if flag is not None else SignalStop()
    previous = {}
    if threading.current_thread() is threading.main_thread():
        for s in signals:
            num = getattr(signal, s, None) if isinstance(s, str) else s
            if num is not None and signal.getsignal(num) is not signal.SIG_IGN:
                previous[num] = signal.signal(num, flag.handler)
    try:
        yield flag
    finally:
        for num, handler in previous.items():  # None: a handler not set from Python
            signal.signal(num, signal.SIG_DFL if handler is None else handler)


def stopped_text(reason: str, unfinished, started: bool = True, noun: str = "optimizer") -> str:
    """What a study stopped by ``reason`` lacks: ``stopped by SIGTERM before sgd and adam
    finished their runs`` (``started`` False: before any ``noun`` finished its runs); a
    reason that is no signal's name is given apart: ``stopped (stop requested) before ...``."""
    stopped = f"stopped by {reason}" if reason.startswith("SIG") else f"stopped ({reason})"
    if not started:
        return f"{stopped} before any {noun} finished its runs"
    have = "its" if len(unfinished) == 1 else "their"
    return f"{stopped} before {listed(unfinished)} finished {have} runs"


def listed(names) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    names = list(names)
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"
