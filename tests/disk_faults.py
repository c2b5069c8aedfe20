"""A full disk for the tests: shared by the test modules that need one (imported by name:
pytest puts tests/ on the path)."""

import contextlib
import errno
import io
import os

from nnjax import io as nio


def enospc_when_writing(monkeypatch, name: str) -> None:
    """Every atomic write (:mod:`nnjax.io`) of a file whose name starts with ``name`` writes
    half its bytes, then fails with ENOSPC, as a disk that fills up does."""
    real_create, real_write, current = nio._create_temp, nio._write_all, {}

    def create(path):
        current["path"] = path
        return real_create(path)

    def write(fd, data):
        if os.path.basename(current["path"]).startswith(name):
            os.write(fd, bytes(data)[: len(data) // 2])
            raise OSError(errno.ENOSPC, "No space left on device")
        real_write(fd, data)

    monkeypatch.setattr(nio, "_create_temp", create)
    monkeypatch.setattr(nio, "_write_all", write)


class _FullDisk(io.RawIOBase):
    """A file on a full disk: every write fails with ENOSPC while ``full``."""

    full = True

    def writable(self):
        return True

    def write(self, data):
        if self.full:
            raise OSError(errno.ENOSPC, "No space left on device")
        return len(data)


@contextlib.contextmanager
def full_text_stream():
    """A text stream, buffered as a file's is, on a full disk (to put in place of stdout);
    the disk has room again when the block ends, and the stream is closed."""
    raw = _FullDisk()
    stream = io.TextIOWrapper(io.BufferedWriter(raw), encoding="utf-8")
    try:
        yield stream
    finally:
        raw.full = False
        stream.close()
