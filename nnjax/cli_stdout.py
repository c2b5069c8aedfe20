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
        except OSError as e:
            self.failed = True
            if e.filename is None and e.errno is not None:
                e.filename, e.nnjax_action = STDOUT, "write"
            raise

    def __getattr__(self, name):
        return getattr(self._stream, name)


def _unbuffered(stream):
    """The raw file under ``stream`` when it is a text stream with no buffer of bytes between
    (``python -u``) and writes text as its bytes (no newline translation), else None."""
    raw = getattr(stream, "buffer", None)
    plain = isinstance(stream, io.TextIOWrapper) and os.linesep == "\n"
    return raw if plain and isinstance(raw, io.RawIOBase) else None


@contextlib.contextmanager
def stdout_named():
    """``sys.stdout`` as a :class:`_NamedStdout` for the command's lifetime (``python -m
    benchmarks`` uses it too)."""
    stream = sys.stdout
    if stream is None or isinstance(stream, _NamedStdout):
        yield
        return
    sys.stdout = named = _NamedStdout(stream)
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
