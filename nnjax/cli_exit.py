"""How the ``nnjax`` executable (and ``python -m benchmarks``) ends: with the command's
status, whatever signal comes during the interpreter's teardown. Standard library only."""

import os
import sys


def exit_with(code: int) -> None:
    """End the process with status ``code`` (``nnjax`` and ``python -m benchmarks``). A run
    stopped by a signal (status 128 + N) has released its locks and finished its files while
    the exception unwound; it then leaves with ``os._exit``, skipping the interpreter's
    teardown, which crashed (SIGSEGV, status 139) when the signal had cut into JAX's
    tracing. A signal that comes after the command has returned ends the process at once
    with the command's status (:func:`_leave_on_signals`); from the teardown on, signals are
    ignored (:func:`nnjax.cli_signals.ignore_signals`)."""
    from nnjax.cli_signals import ignore_signals

    _leave_on_signals(code)
    if code >= 128:
        _flush_output()
        os._exit(code)
    _flush_output()  # written while a signal still ends it with `code`
    ignore_signals()
    sys.exit(code)


def _leave_on_signals(code: int) -> None:
    """From now on SIGINT, SIGTERM, SIGHUP and SIGUSR1 flush the output and end the process
    at once with status ``code``. The command's work is done; without this, Ctrl-C during the
    interpreter's teardown raised KeyboardInterrupt inside JAX's atexit callback (a
    traceback) and the others killed the process with no status of its own. Signals the
    process ignores stay ignored (:func:`nnjax.cli_signals.served_signals`)."""
    import signal
    import threading

    from nnjax.cli_signals import served_signals

    if threading.current_thread() is not threading.main_thread():
        return  # Python allows handlers only in the main thread

    def leave(signum, frame):
        _flush_output()
        os._exit(code)

    for signum in served_signals():
        signal.signal(signum, leave)


def _flush_output() -> None:
    """Flush stdout and stderr before ``os._exit``, which skips Python's own flushing; a
    stream that is closed, gone (EIO after SIGHUP) or being written at that moment is left."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (AttributeError, OSError, ValueError, RuntimeError):  # None: a closed stream
            pass
