"""How a command of the ``nnjax`` executable ends on a signal: at once, in one line.

:func:`signals_unwind` turns SIGTERM, SIGHUP and SIGUSR1 into :class:`nnjax.errors.Interrupted`
(exit 143, 129, 138) and Ctrl-C (SIGINT) into KeyboardInterrupt (exit 130), raised in the
main thread, so that a stopped command unwinds: it releases its locks and leaves no temporary
files. ``nnjax train`` handles these signals itself during training
(:func:`nnjax.train.stop_on_signals`: the epoch ends, a checkpoint is written).

Python runs a signal handler only between bytecodes of the main thread. While the main
thread is inside one long compiled computation (a ``compare`` study is one XLA call) the
handler waits for it to return. So a watchdog thread (:mod:`nnjax.cli_watchdog`) learns of
every signal at once, through :func:`signal.set_wakeup_fd` (written by Python's C-level
handler; JAX releases the GIL while XLA runs): when the command has not unwound
:data:`GRACE_S` seconds after a signal its handler here serves, the watchdog writes the
command's one line, removes the lock files the process holds and the folders it made that
are still empty, and ends it with status 128 + N (the kernel drops the flocks; a later
writer removes any temporary file left).

Python drops an exception raised inside a garbage-collection callback (JAX installs one) or
a finalizer ("Exception ignored in ..."), and the command would go on. So inside a gc
callback the handler raises nothing; an exception dropped elsewhere (a finalizer, a weakref
callback) reaches :func:`sys.unraisablehook`, where a hook set for the block recognises the
handler's own exception and prints nothing. Either way the signal is sent again to the main
thread a few milliseconds later (:data:`REDELIVER_S`, :func:`signal.pthread_kill`), at a
moment it is outside every gc callback and every ``with`` block's cleanup, and the handler
raises in the command's own code (a handler set inside the block, ``nnjax train``'s during
``fit``, gets it once instead). A block that ends normally while such a signal waits raises
its exception on leaving. Other unraisable exceptions go to the previous hook.

After SIGHUP the terminal is gone: output that went to it goes to /dev/null
(:func:`nnjax.terminal.detach_terminal`). A signal the process ignores (SIG_IGN: ``nohup``,
a background job's SIGINT) stays ignored.
"""

import _thread
import contextlib
import gc
import os
import random
import signal
import sys
import threading

from nnjax.cli_watchdog import Watchdog
from nnjax.errors import Interrupted
from nnjax.terminal import detach_terminal

GRACE_S = 2.0
# the delay before a deferred or dropped signal is sent again, drawn in this range: a fixed
# one can match the period of a loop, and land in the same finalizer each time
REDELIVER_S = (0.005, 0.05)
RESEND_S = 0.02  # a delivery the handler has not run for is sent again: after this, then 2x
SERVED = ("SIGINT", "SIGTERM", "SIGHUP", "SIGUSR1")  # those this platform lacks are skipped


@contextlib.contextmanager
def signals_unwind(command: str, grace_s: float = GRACE_S, *, prog: str | None = None):
    """Within the block, SIGINT, SIGTERM, SIGHUP and SIGUSR1 unwind the command (module
    docstring); the previous handlers, wakeup fd and unraisable hook are restored on leaving.
    Only in the main thread (elsewhere Python allows no handlers): in other threads, a no-op.
    ``prog``: what the watchdog's line starts with (default ``nnjax <command>``; ``python -m
    benchmarks`` gives its own)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    served = _Served()
    previous = {s: signal.signal(s, served.handler) for s in served_signals()}
    hook = served.unraisable_hook(sys.unraisablehook)
    sys.unraisablehook = hook
    done = threading.Event()
    watchdog = Watchdog(prog or f"nnjax {command}", served.handler, done, grace_s)
    try:
        yield
    except Exception as exc:  # a signal's exception turned into another one: raise the signal
        interrupt = _interrupt_behind(exc)
        if interrupt is None:
            raise
        raise signal_exception(getattr(interrupt, "signum", signal.SIGINT)) from exc
    finally:
        try:
            served.close(previous)
        finally:
            served.stop()
            done.set()
            watchdog.stop()
            _restore(previous)
            if sys.unraisablehook is hook:  # replaced inside the block: the new one stays
                sys.unraisablehook = hook.previous
    served.raise_pending()  # only on a normal exit: a dropped signal still ends the command


def _interrupt_behind(exc: BaseException) -> KeyboardInterrupt | None:
    """The signal's exception (a KeyboardInterrupt; raised again as a new one of its signal) that
    an unexpected exception (one :func:`nnjax.errors.exit_code` does not know) was raised while
    handling, through its ``__cause__`` or ``__context__``, else None. A signal that lands as a
    native extension loads (matplotlib's Agg backend, at the first figure saved) became
    ``ImportError: initialization failed``: a traceback and exit 1, not the signal's one line and
    128 + N. An expected failure (a full disk while unwinding) stays itself: its line names it."""
    from nnjax.errors import exit_code

    if exit_code(exc) is not None:
        return None
    seen, cause = set(), exc
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, KeyboardInterrupt):
            return cause
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    return None


def leave_at_once(prog: str) -> None:
    """Until a command's :func:`signals_unwind` block (and after it, until
    :func:`nnjax.cli_exit.exit_with`): the :data:`SERVED` signals end the process at once
    with one line, ``<prog>: error: interrupted by SIGINT``, and status 128 + N. Nothing is
    held yet (no lock, no file being written), so there is nothing to unwind. Python's
    default SIGINT handler raised its exception during start-up in JAX's gc callback
    (dropped: the run went on to the end, status 0), inside an import (a traceback), or
    inside a native extension as it loaded (SIGABRT, SIGSEGV). Main thread only; ignored
    signals stay ignored."""
    if threading.current_thread() is not threading.main_thread():
        return

    def leave(signum, frame):
        if signum == getattr(signal, "SIGHUP", None):
            detach_terminal()
        line = f"{prog}: error: interrupted by {signal.Signals(signum).name}\n"
        with contextlib.suppress(OSError):
            os.write(2, line.encode())
        os._exit(128 + signum)

    for signum in served_signals():
        signal.signal(signum, leave)


def ignore_signals() -> None:
    """Ignore the :data:`SERVED` signals for the rest of the process: called as a command
    that has finished leaves. Python resets the handlers it set to the default early in the
    interpreter's teardown, while JAX's is still running, so a SIGTERM there killed a run that
    had written everything (status 143, not its own); an ignored signal stays ignored (and a
    mask would hold it in one thread only: JAX's threads would take it)."""
    for signum in served_signals():
        signal.signal(signum, signal.SIG_IGN)


def served_signals() -> list[int]:
    """The numbers of the :data:`SERVED` signals this platform has and the process does not
    ignore (SIG_IGN stays: ``nohup``, a background job's SIGINT)."""
    numbers = (getattr(signal, name, None) for name in SERVED)
    return [s for s in numbers if s is not None and signal.getsignal(s) is not signal.SIG_IGN]


def signal_exception(signum: int) -> KeyboardInterrupt:
    """The exception that signal ``signum`` raises: KeyboardInterrupt for SIGINT (exit 130),
    :class:`Interrupted` for the others (exit 128 + N)."""
    return KeyboardInterrupt() if signum == signal.SIGINT else Interrupted(signum)


def _restore(previous: dict) -> None:
    """Put back the handlers ``signal.signal`` returned (None: one not set from Python)."""
    for signum, handler in previous.items():
        signal.signal(signum, signal.SIG_DFL if handler is None else handler)


class _Served:
    """The signals of one :func:`signals_unwind` block: the handler, the unraisable hook, and
    the thread that delivers again a signal whose exception was not raised (deferred in a gc
    callback, or dropped by Python).

    ``raised``: the exception the handler raised last and its signal, until Python drops it;
    ``pending``: the signal that came last and whose exception has not been raised since;
    ``wanted``: set when the pending signal is to be delivered again; ``delivering``: the
    signal the thread has sent and the handler has not yet run for; ``ended``: set as the
    block ends."""

    def __init__(self):
        self.raised: tuple[BaseException, int] | None = None
        self.pending: int | None = None
        self.wanted = threading.Event()
        self.delivering: int | None = None
        self.thread: threading.Thread | None = None
        self.ended = threading.Event()
        self.handler, self.record = self._raise, self._record  # one object each: compared by `is`

    def _raise(self, signum, frame) -> None:
        """The signal handler within the block: raise the signal's exception. Inside a gc
        callback, where Python would drop it, raise nothing and have the signal delivered
        again once the main thread has left the callback (:meth:`deliver_later`)."""
        if self._stale(signum):
            return
        self._note(signum)
        if in_gc_callback(frame):
            self.deliver_later()
            return
        exc = signal_exception(signum)
        self.raised, self.pending = (exc, signum), None
        raise exc

    def _record(self, signum, frame) -> None:
        """The handler while the block ends: note the signal, raise nothing, so that the
        handlers and the hook are restored whole; a normal exit then raises the signal."""
        if not self._stale(signum):
            self._note(signum)

    def _note(self, signum: int) -> None:
        """Note the signal as pending; SIGHUP detaches the terminal when it first comes."""
        if signum == getattr(signal, "SIGHUP", None) and self.pending != signum:
            detach_terminal()
        self.pending = signum

    def _stale(self, signum: int) -> bool:
        """Whether this is a second delivery whose signal has been raised since it was sent
        (the same signal came meanwhile in ordinary code): the unwinding that exception began
        goes on undisturbed."""
        if self.delivering != signum:
            return False
        self.delivering = None  # the handler has run for the delivery
        return self.pending is None

    def unraisable_hook(self, previous):
        """A :func:`sys.unraisablehook` that takes the handler's own dropped exception (raised
        in a finalizer or a weakref callback), to deliver its signal again, and passes every
        other one to ``previous`` (kept as the hook's ``previous``)."""

        def hook(unraisable) -> None:
            raised = self.raised
            if raised is None or unraisable.exc_value is not raised[0]:
                previous(unraisable)
                return
            self.raised = None  # the exception and its frames are not kept
            self.pending = raised[1]
            self.deliver_later()

        hook.previous = previous
        return hook

    def deliver_later(self) -> None:
        """Have the pending signal delivered again by the block's delivery thread (started
        the first time), after :data:`REDELIVER_S` seconds."""
        if self.ended.is_set():
            return
        self.wanted.set()
        if self.thread is None:
            self.thread = threading.Thread(target=self._deliveries, name="nnjax-redeliver")
            self.thread.daemon = True
            self.thread.start()

    def _deliveries(self) -> None:
        """The delivery thread: each time a delivery is wanted, wait :data:`REDELIVER_S`
        seconds, then deliver (:meth:`_deliver`); end when the block ends."""
        while True:
            self.wanted.wait()
            self.wanted.clear()
            if self.ended.wait(random.uniform(*REDELIVER_S)):
                return
            self._deliver()

    def _deliver(self) -> None:
        """Send the pending signal to the main thread at a moment it is outside every gc
        callback and every context manager's exit, until the handler has run for it.

        This thread gets the GIL when the main thread lets it go: often inside JAX's gc
        callback, or in a blocking call of a cleanup (joining a lock's heartbeat thread as
        the lock is released), so it waits for the main thread to leave those: a signal
        raised in a cleanup would cut it short (a lock file left behind), and a block that
        ends raises the signal itself.

        A real signal wakes a blocking call there (``time.sleep``, a read), which then runs
        the handler; one that comes just before the call blocks wakes nothing, so it is sent
        again after :data:`RESEND_S` seconds, then twice as long each time (signals not yet
        handled merge into one). Nothing is sent once the block ends, or when the signal has
        been raised since. A handler set inside the block (``nnjax train``'s during ``fit``)
        gets the signal once and it is theirs: sent again, it would be a second signal."""
        main = threading.main_thread().ident
        wait = RESEND_S
        while not self.ended.is_set():
            frame = sys._current_frames().get(main)
            if in_gc_callback(frame) or in_context_exit(frame):
                self.ended.wait(0.001)
                continue
            signum = self.pending
            handler = None if signum is None else signal.getsignal(signum)
            if not callable(handler):  # raised since, or SIG_DFL: sending it would kill
                return
            self.delivering = signum
            _send(main, signum)
            if handler is not self.handler:
                self.pending = self.delivering = None
                return
            if self.ended.wait(wait) or self.delivering != signum:  # the handler has run
                return
            wait *= 2

    def close(self, previous: dict) -> None:
        """As the block ends: the served signals are only recorded from now on, so that a
        delivery sent meanwhile raises nothing while the handlers are restored."""
        for signum in previous:
            if signal.getsignal(signum) is self.handler:
                signal.signal(signum, self.record)

    def stop(self) -> None:
        """End the delivery thread; the handler of a delivery it sent has run (recorded)
        before this returns."""
        self.ended.set()
        if self.thread is not None:
            self.wanted.set()
            self.thread.join()
        self.raised = None  # the exception and its frames are not kept

    def raise_pending(self) -> None:
        """Raise the exception of a signal that has come and has not been raised since: one
        deferred or dropped and not yet delivered again, or one that came as the block
        ended."""
        if self.pending is not None:
            raise signal_exception(self.pending)


def _send(thread_id: int, signum: int) -> None:
    """Send ``signum`` to the thread (a real signal: it wakes a blocking call there)."""
    if hasattr(signal, "pthread_kill"):
        signal.pthread_kill(thread_id, signum)
    else:  # Windows: the handler runs at the main thread's next bytecode check
        _thread.interrupt_main(signum)


def in_context_exit(frame) -> bool:
    """Whether ``frame`` runs inside a context manager's ``__exit__`` (a ``with`` block's
    cleanup, a generator-based one's included)."""
    while frame is not None:
        if frame.f_code.co_name in ("__exit__", "__aexit__"):
            return True
        frame = frame.f_back
    return False


def in_gc_callback(frame) -> bool:
    """Whether ``frame`` runs inside one of :data:`gc.callbacks` (JAX installs one): an
    exception raised there is dropped by the collector, not raised in the main code."""
    codes = {getattr(getattr(cb, "__func__", cb), "__code__", None) for cb in gc.callbacks}
    codes.discard(None)
    while frame is not None and codes:
        if frame.f_code in codes:
            return True
        frame = frame.f_back
    return False
