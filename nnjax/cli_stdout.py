"""Standard output for the ``nnjax`` command: a failed write names it (``cannot write standard
output: No space left on device``, exit 3) instead of a bare errno, and a reader that left
(``nnjax verify | head``) ends the command quietly. Standard library only (start-up)."""

import contextlib
import sys

STDOUT = "standard output"  # how a failed write to stdout names it


class _NamedStdout:
    """``sys.stdout`` whose failed writes name it (``cannot write standard output: No space
    left on device``, for ``nnjax train > log`` on a full disk) instead of a bare errno.
    Everything but ``write``, ``writelines`` and ``flush`` is the stream's own. ``failed``:
    a write failed (said once: the output it kept is not flushed again)."""

    def __init__(self, stream):
        self._stream = stream
        self.failed = False

    def write(self, text):
        return self._naming(self._stream.write, text)

    def writelines(self, lines):
        return self._naming(self._stream.writelines, lines)

    def flush(self):
        return self._naming(self._stream.flush)

    def _naming(self, call, *args):
        try:
            return call(*args)
        except BrokenPipeError:  # the reader left: quiet (_checked_run), nothing to name
            raise
        except OSError as e:
            self.failed = True
            if e.filename is None and e.errno is not None:
                e.filename, e.nnjax_action = STDOUT, "write"
            raise

    def __getattr__(self, name):
        return getattr(self._stream, name)


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


def stdout_gone() -> int:
    """The exit status when the reader of stdout has left (SIGPIPE's); stdout detached so
    that nothing buffered fails again at exit."""
    from nnjax.terminal import detach_stdout

    detach_stdout()
    return 128 + 13  # as if killed by SIGPIPE, like other Unix tools
