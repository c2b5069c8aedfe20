"""nnjax's error classes and how the ``nnjax`` command reports each kind of failure.

This module imports nothing heavy (no JAX), so the CLI's error boundary can use it at any
time. Every expected failure of a command becomes one line ``nnjax <cmd>: error: ...`` on
stderr and an exit status that says its kind:

======  ===============================================================================
status  failure
======  ===============================================================================
0       success
1       an unexpected error (a bug: the traceback is shown), or ``nnjax verify`` failing
        or a warning made an error (``-W error``, ``PYTHONWARNINGS=error``): one line
2       usage: a bad argument or option value (argparse, or a ``ValueError`` from checks)
3       I/O: an ``OSError`` (disk full, read-only, permission, a path missing or of the
        wrong kind: :class:`PathError`), path named;
        or out of memory (``MemoryError``, XLA's ``RESOURCE_EXHAUSTED``)
4       divergence: :class:`DivergenceError` and its subclasses (non-finite loss, guard)
        or a ``FloatingPointError`` (a nan or inf under ``JAX_DEBUG_NANS``/``_INFS``)
130     interrupted (Ctrl-C); 128 + N for a stop on signal N (:class:`Interrupted`)
======  ===============================================================================

Classes are matched by name through :data:`EXIT_CODES`, first match wins, and only among
modules already imported: an exception cannot be an instance of a class whose module was
never loaded, so reporting a failure never imports JAX.
"""

import contextlib
import errno as _errno
import os
import signal
import sys

EXIT_UNEXPECTED, EXIT_USAGE, EXIT_IO, EXIT_DIVERGENCE = 1, 2, 3, 4


class DivergenceError(ArithmeticError):
    """Training left the finite numbers or blew up (non-finite loss or params, a loss far
    above its start). The CLI exits with status 4.

    ``detail``: what happened, without advice (e.g. ``the training loss became nan at
    step_loss[7] (batch 8 of 10 in epoch 1)``), so that a front end can give its own;
    ``last_checkpoint``: the path of the newest checkpoint written or resumed from before it
    happened (the state to go back to), or None.
    """

    def __init__(self, message: str = "", *, detail: str | None = None, last_checkpoint=None):
        super().__init__(message)
        self.detail = detail if detail is not None else message
        self.last_checkpoint = last_checkpoint


class NonFiniteLossError(DivergenceError, FloatingPointError):
    """The training loss, the params or an evaluation metric became nan or inf
    (``nnjax.NonFiniteLossError``; a ``FloatingPointError`` too)."""


class ResumeError(ValueError):
    """A checkpoint that this run cannot resume from, because one of fit's arguments differs
    from the run that wrote it. ``path``: the checkpoint; ``argument``: fit's argument that
    differs (``"key"``, ``"epochs"``, ``"X, y"``); ``saved``: the checkpoint's value where
    one is known (its epoch for ``"epochs"``), else None. A front end rewords it for its
    own options (the CLI names ``--seed``, ``--epochs``)."""

    def __init__(self, message: str, *, path, argument: str, saved=None):
        super().__init__(message)
        self.path, self.argument, self.saved = path, argument, saved


class BatchSplitError(ValueError):
    """A batch that does not split evenly over the devices of a mesh: ``batch_size`` rows
    (the whole training set when ``full_batch``) over ``devices`` devices; ``divisors``:
    the device counts a run could use that would split it (up to ``2 * devices`` unless
    given)."""

    def __init__(
        self, message: str, *, batch_size: int, devices: int, full_batch: bool, divisors=None
    ):
        super().__init__(message)
        self.batch_size, self.devices, self.full_batch = batch_size, devices, full_batch
        if divisors is None:
            divisors = [k for k in range(2, 2 * devices + 1) if batch_size % k == 0]
        self.divisors = list(divisors)


class PathError(OSError):
    """A path the user named that is missing or of the wrong kind: a file where a folder is
    wanted, or a folder or a device where a file is. An ``OSError``, so the CLI exits 3 as
    for any failure of a path. ``str(err)`` is the one line naming it; ``errno`` the kind
    (ENOENT, ENOTDIR, EISDIR) or None; ``path`` the path."""

    def __init__(self, message: str, path, err: int | None = None):
        super().__init__(message)
        self.errno, self.path = err, os.fspath(path)


def broken_link(path) -> tuple[str, int] | None:
    """For a symbolic link that leads nowhere, what it is and its errno: ``("is a symbolic
    link to T, which does not exist", ENOENT)`` or, when the links go round in a loop, ``("is
    a symbolic link in a loop (-> T)", ELOOP)``; None for any other path."""
    if not os.path.islink(path) or os.path.exists(path):
        return None
    target = os.readlink(path)
    try:
        os.stat(path)
    except OSError as e:
        if e.errno == _errno.ELOOP:
            return f"is a symbolic link in a loop (-> {target})", _errno.ELOOP
    return f"is a symbolic link to {target}, which does not exist", _errno.ENOENT


def not_a_file(path) -> PathError | None:
    """None when ``path`` is a regular file, else the :class:`PathError` saying what it is:
    a directory, a device or a pipe, or missing."""
    if os.path.isfile(path):
        return None
    where = os.fspath(path)
    if os.path.isdir(path):
        return PathError(f"{where}: a directory, not a file", path, _errno.EISDIR)
    if os.path.exists(path):
        return PathError(f"{where}: not a regular file (a device or a pipe)", path)
    if (link := broken_link(path)) is not None:
        return PathError(f"{where} {link[0]}", path, link[1])
    return PathError(f"{where}: no such file", path, _errno.ENOENT)


def not_a_folder(path, option: str) -> PathError | None:
    """None unless ``path`` exists and is not a folder, or is a symbolic link to a path that
    does not exist (making the folder would fail with "File exists"): then the
    :class:`PathError` naming ``option`` (e.g. ``--out``)."""
    if (link := broken_link(path)) is not None:
        return PathError(f"{option} {os.fspath(path)} {link[0]}", path, link[1])
    if not os.path.exists(path) or os.path.isdir(path):
        return None
    return PathError(f"{option} {os.fspath(path)} is a file, not a folder", path, _errno.ENOTDIR)


class Interrupted(KeyboardInterrupt):
    """A run stopped on signal ``signum`` (SIGINT, SIGTERM, SIGUSR1, ...): exit 128 + signum."""

    def __init__(self, signum: int, message: str = ""):
        super().__init__(message)
        self.signum = int(signum)


# (module, class name, exit status): the first class the exception is an instance of wins,
# so subclasses come before their bases. Add a row to give a new error class its status.
# NonFiniteLossError (nnjax.train re-exports it) and nnjax.checkpoint's
# NonFiniteCheckpointError are DivergenceErrors.
EXIT_CODES: list[tuple[str, str, int]] = [
    ("nnjax.errors", "DivergenceError", EXIT_DIVERGENCE),
    ("builtins", "FloatingPointError", EXIT_DIVERGENCE),  # JAX_DEBUG_NANS, JAX_DEBUG_INFS
    ("builtins", "OSError", EXIT_IO),
    ("builtins", "ValueError", EXIT_USAGE),
    ("builtins", "Warning", EXIT_UNEXPECTED),  # a warning made an error: -W error
]


def exit_code(exc: BaseException) -> int | None:
    """The exit status of an expected failure, or None for an unexpected one (a bug).

    ``KeyboardInterrupt`` gives 128 + its ``signum`` (SIGINT = 2 when it has none)."""
    if isinstance(exc, KeyboardInterrupt):
        return 128 + getattr(exc, "signum", signal.SIGINT)
    if _out_of_memory(exc):
        return EXIT_IO
    for module_name, class_name, status in EXIT_CODES:
        cls = getattr(sys.modules.get(module_name), class_name, None)
        if isinstance(cls, type) and isinstance(exc, cls):
            return status
    return None


def _out_of_memory(exc: BaseException) -> bool:
    """A ``MemoryError`` (NumPy, Python) or XLA's RESOURCE_EXHAUSTED (a JAX runtime error)."""
    if isinstance(exc, MemoryError):
        return True
    xla = type(exc).__name__ in ("JaxRuntimeError", "XlaRuntimeError")
    return xla and str(exc).startswith("RESOURCE_EXHAUSTED")


def describe(exc: BaseException) -> str:
    """One line for an expected failure: the path and the reason for an ``OSError``."""
    if isinstance(exc, KeyboardInterrupt):
        signum = getattr(exc, "signum", signal.SIGINT)
        detail = str(exc)
        return f"interrupted by {_signal_name(signum)}" + (f": {detail}" if detail else "")
    if isinstance(exc, OSError):
        return describe_os_error(exc)
    if _out_of_memory(exc):
        text = " ".join(str(exc).split()).removeprefix("RESOURCE_EXHAUSTED: ")
        return "out of memory" + (f": {text}" if text else "")
    if isinstance(exc, Warning):  # raised by -W error or PYTHONWARNINGS=error
        return f"{type(exc).__name__} made an error by -W error: {' '.join(str(exc).split())}"
    return " ".join(str(exc).split()) or type(exc).__name__


def _signal_name(signum: int) -> str:
    """``SIGTERM`` for 15; ``signal 35`` for a number ``signal.Signals`` does not name (the
    real-time signals between SIGRTMIN and SIGRTMAX: a ValueError there stopped describe)."""
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def describe_os_error(exc: OSError) -> str:
    """``cannot write /x/y: No space left on device (errno 28, ENOSPC)``.

    The path is the exception's ``filename`` and the verb comes from :func:`naming_path`;
    without a verb it reads ``/x/y: No such file or directory (errno 2, ENOENT)``. An error
    without a number (``OSError("text")``) is its text; one built from a message whose
    ``errno`` was set afterwards (``DirectoryLockedError``, ``NotWritableError``) is its
    text and the code."""
    if exc.errno is None:
        return " ".join(str(exc).split()) or type(exc).__name__
    code = f"errno {exc.errno}" + (
        f", {_errno.errorcode[exc.errno]}" if exc.errno in _errno.errorcode else ""
    )
    if exc.strerror is None and exc.filename is None and str(exc):  # a message of its own
        return f"{' '.join(str(exc).split())} ({code})"
    reason = exc.strerror or os.strerror(exc.errno)
    if exc.filename is None:
        return f"{reason} ({code})"
    paths = _path(exc.filename) + (
        f" -> {_path(exc.filename2)}" if exc.filename2 is not None else ""
    )
    action = getattr(exc, "nnjax_action", None)
    return f"{f'cannot {action} ' if action else ''}{paths}: {reason} ({code})"


def _path(name) -> str:
    """The path as text; quoted (``repr``) where it holds a newline or another character
    that does not print, so the error stays one line."""
    text = os.fsdecode(name) if isinstance(name, str | bytes | os.PathLike) else str(name)
    return text if text.isprintable() else repr(text)


@contextlib.contextmanager
def naming_path(path, action: str = "write"):
    """Make an ``OSError`` raised inside name ``path`` and what was done to it.

    A failed ``f.write`` or ``os.fsync`` reports ``[Errno 28] No space left on device`` with
    no file name; inside ``with naming_path(p, "write"):`` it reads ``cannot write p: ...``."""
    try:
        yield
    except OSError as e:
        if e.filename is None and e.errno is not None:
            e.filename = os.fspath(path)
        if not hasattr(e, "nnjax_action"):
            e.nnjax_action = action
        raise
