"""Standard output for the ``nnjax`` command: a failed write names it (``cannot write standard
output: No space left on device``, exit 3) instead of a bare errno, and a reader that left
(``nnjax verify | head``) ends the command quietly; unbuffered (``python -u``,
``PYTHONUNBUFFERED``), a short write does not lose the rest of the output. Standard library
only (start-up)."""

import contextlib
import errno
import io
import os
import sys

STDOUT = "standard output"  # how a failed write to stdout names it


class _NamedStdout:
    """``sys.stdout`` whose failed writes name it (``cannot write standard output: No space
    left on device``, for ``nnjax train > log`` on a full disk) instead of a bare errno.
    Everything but ``write``, ``writelines`` and ``flush`` is the stream's own. ``failed``:
    a write failed (said once: the output it kept is not flushed again); ``gone``: a write
    found the reader gone (a broken pipe), even one a library caught (:func:`reader_left`)."""

    def __init__(self, stream):
        self._stream = stream
        self.failed = False
        self.gone = False
        self._raw = _unbuffered(stream)

    def write(self, text):
        if self._raw is not None:
            return self._naming(self._write_whole, text)
        return self._naming(self._stream.write, text)

    def writelines(self, lines):
        if self._raw is not None:
            for line in lines:
                self.write(line)
            return None
        return self._naming(self._stream.writelines, lines)

    def _write_whole(self, text: str) -> int:
        """Write ``text`` to the unbuffered stream's file until all of it is written or a
        write fails. A TextIOWrapper over a raw file keeps no buffer and ignores a short
        write: on a nearly full disk, ``PYTHONUNBUFFERED=1 nnjax predict > out.csv`` wrote
        the first 64 KiB and ended with status 0, the rest lost without a word."""
        stream = self._stream
        stream.flush()  # nothing is pending in a write-through stream; kept in order if any
        data = memoryview(text.encode(stream.encoding, stream.errors or "strict"))
        while data:
            n = self._raw.write(data)
            if n is None:  # a non-blocking stdout that is full
                raise BlockingIOError(errno.EAGAIN, os.strerror(errno.EAGAIN))
            data = data[n:]
        return len(text)

    def flush(self):
        return self._naming(self._stream.flush)

    def _naming(self, call, *args):
        try:
            return call(*args)
        except BrokenPipeError:  # the reader left: quiet (_checked_run), nothing to name
            self.gone = True
            raise
        except UnicodeEncodeError as e:  # a ValueError: it ended the run as a usage error
            self.failed = True
            raise _unencodable(e, self._stream) from None
        except OSError as e:
            self.failed = True
            if e.filename is None and e.errno is not None:
                e.filename, e.nnjax_action = STDOUT, "write"
            raise

    def __getattr__(self, name):
        return getattr(self._stream, name)


def _unencodable(exc: UnicodeEncodeError, stream) -> OSError:
    """The failed write of text that standard output's encoding cannot represent, named
    (exit 3, :data:`STDOUT`): ``nnjax train --out dir-\u00e9`` with ``PYTHONIOENCODING=ascii``
    (or in the C locale with ``PYTHONCOERCECLOCALE=0``) trained, saved, then ended with
    "'ascii' codec can't encode character" as a usage error (exit 2). Nothing is replaced by
    an escape: stdout may carry data (``nnjax predict``'s CSV)."""
    bad = exc.object[exc.start : exc.end]
    encoding = getattr(stream, "encoding", None) or exc.encoding
    e = OSError(
        errno.EILSEQ,
        f"its encoding {encoding} cannot represent '{ascii(bad)[1:-1]}' (set "
        "PYTHONIOENCODING=utf-8, or a UTF-8 locale such as LANG=C.UTF-8)",
    )
    e.filename, e.nnjax_action = STDOUT, "write"
    return e


def _unbuffered(stream):
    """The raw file under ``stream`` when it is a text stream with no buffer of bytes between
    (``python -u``) and writes text as its bytes (no newline translation), else None."""
    raw = getattr(stream, "buffer", None)
    plain = isinstance(stream, io.TextIOWrapper) and os.linesep == "\n"
    return raw if plain and isinstance(raw, io.RawIOBase) else None


class _ClosedStdout:
    """What stands for a standard output that was closed when the process started (``nnjax
    train >&-``: Python's ``sys.stdout`` is None): a write fails as on a closed descriptor
    (EBADF), so the command ends in one line naming standard output, as ``ls >&-`` does;
    a command that prints nothing is not disturbed (flushing it is a no-op)."""

    encoding, errors = "utf-8", "strict"

    def write(self, text):
        raise OSError(errno.EBADF, os.strerror(errno.EBADF))

    def writelines(self, lines):
        for line in lines:
            self.write(line)

    def flush(self):
        pass

    def isatty(self):
        return False

    def fileno(self):
        raise io.UnsupportedOperation("standard output is closed")


@contextlib.contextmanager
def stdout_named():
    """``sys.stdout`` as a :class:`_NamedStdout` for the command's lifetime (``python -m
    benchmarks`` uses it too); a closed one (None) as a :class:`_ClosedStdout`."""
    stream = sys.stdout
    if isinstance(stream, _NamedStdout):
        yield
        return
    sys.stdout = named = _NamedStdout(_ClosedStdout() if stream is None else stream)
    try:
        yield
    finally:
        if sys.stdout is named:
            sys.stdout = stream


def is_stdout_error(exc: BaseException) -> bool:
    """Whether ``exc`` is a failed write to standard output (named by :class:`_NamedStdout`)."""
    return isinstance(exc, OSError) and getattr(exc, "filename", None) == STDOUT


def reader_left(exc: BaseException) -> bool:
    """Whether ``exc`` ends the command because the reader of stdout left (``nnjax verify |
    head``): a ``BrokenPipeError``, or the ``SystemExit`` a library raises once it has caught
    one (rich's ``Console.on_broken_pipe`` exits with status 1, which is not SIGPIPE's)."""
    if isinstance(exc, BrokenPipeError):
        return True
    return isinstance(exc, SystemExit) and getattr(sys.stdout, "gone", False)


def stdout_gone() -> int:
    """The exit status when the reader of stdout has left (SIGPIPE's); stdout detached so
    that nothing buffered fails again at exit."""
    from nnjax.terminal import detach_stdout

    detach_stdout()
    return 128 + 13  # as if killed by SIGPIPE, like other Unix tools


class _BestEffortStderr:
    """``sys.stderr`` whose failed writes are dropped: a diagnostic that cannot be written (a
    closed or full stderr, ``2>/dev/full``) must not end the run, nor turn its success into a
    failure (the progress line raised ENOSPC before training began; predict, having written
    every prediction, failed on its summary line). Everything else is the stream's own."""

    def __init__(self, stream):
        self._stream = stream

    def write(self, text):
        try:
            return self._stream.write(text)
        except (OSError, ValueError):  # ValueError: the stream was closed
            return len(text)

    def writelines(self, lines):
        for line in lines:
            self.write(line)

    def flush(self):
        try:
            self._stream.flush()
        except (OSError, ValueError):
            pass

    def __getattr__(self, name):
        return getattr(self._stream, name)


@contextlib.contextmanager
def stderr_best_effort():
    """``sys.stderr`` as a :class:`_BestEffortStderr` for the command's lifetime; a closed one
    (None) as /dev/null."""
    stream = sys.stderr
    if isinstance(stream, _BestEffortStderr):
        yield
        return
    null = open(os.devnull, "w") if stream is None else None  # noqa: SIM115
    sys.stderr = wrapped = _BestEffortStderr(stream if null is None else null)
    try:
        yield
    finally:
        if sys.stderr is wrapped:
            sys.stderr = stream
        if null is not None:
            null.close()


def reserve_standard_fds() -> None:
    """Open /dev/null on descriptors 0, 1 and 2 where they are closed (``nnjax train >&-``),
    so that no file opened later takes their numbers: output written to descriptor 1 by a
    library would then go into that file (a lock file, a checkpoint). Python's own
    ``sys.stdout`` stays None and is reported as closed (:class:`_ClosedStdout`)."""
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            null = os.open(os.devnull, os.O_RDWR)
            if null != fd:
                os.dup2(null, fd)
                os.close(null)
