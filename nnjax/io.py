"""Files written atomically (params to and from ``.npz``: :mod:`nnjax.params_npz`).

Every write goes through :func:`atomic_write_bytes`: a reader, or a run killed mid-write, sees
either the old file or the complete new one, never a torn one. The new file gets the mode
``0o666 & ~umask`` (like ``open(path, "w")``), and an ``OSError`` names the target path.

A write in progress is a temporary file next to its target, named
``.{target}.{host}.{pid}.{token}.tmp``, so a writer killed mid-write leaves a file that says
whose it was; :func:`clean_temp_files` removes those whose writer is gone.
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import re
import secrets

from nnjax import _host

# exactly temp_path's names (a token of 8 hex digits): a user's `.draft.laptop.42.beef.tmp`
# in an output folder is not nnjax's to remove
_TMP = re.compile(r"^\.(?P<target>.+)\.(?P<host>[A-Za-z0-9_-]+)\.(?P<pid>\d+)\.[0-9a-f]{8}\.tmp$")
_O_NEW = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)


def temp_path(path) -> str:
    """A fresh temporary name for a write of ``path``, in its directory:
    ``.{name}.{host}.{pid}.{8 hex}.tmp`` (the name cut to 100 bytes: a file system takes
    names of 255 bytes, and 100 characters of CJK text are 300)."""
    path = os.fspath(path)
    folder, name = os.path.split(os.path.abspath(path))
    name = os.fsdecode(os.fsencode(name)[:100])  # a character cut in two: surrogate escapes
    token = secrets.token_hex(4)
    return os.path.join(folder, f".{name}.{_host.host_tag()}.{os.getpid()}.{token}.tmp")


def fsync_dir(folder) -> None:
    """fsync a directory, so a rename inside it survives a power cut (a no-op where the OS
    cannot open directories, e.g. Windows, or cannot fsync them, e.g. some network FS)."""
    try:
        fd = os.open(os.fspath(folder), os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError as e:
        if e.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF):
            raise
    finally:
        os.close(fd)


def _named(e: OSError, path: str) -> OSError:
    """``e`` as an OSError of the same errno (and so the same subclass) naming ``path``."""
    if e.errno is None:
        return OSError(f"{path}: {e}")
    return OSError(e.errno, e.strerror or os.strerror(e.errno), path)


def _create_temp(path: str) -> tuple[int, str]:
    for _ in range(100):
        tmp = temp_path(path)
        try:  # mode 0o666: the kernel applies the umask (mkstemp would force 0o600)
            return os.open(tmp, _O_NEW, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no free temporary name", path)


def _check_bytes(data, name: str, where: str) -> None:
    """A TypeError naming ``name`` and its type unless ``data`` is bytes-like (a str was
    memoryview's "a bytes-like object is required", after the temporary file was made)."""
    try:
        memoryview(data).cast("B")
    except TypeError:
        hint = " (encode it, or use io.atomic_write_text)" if isinstance(data, str) else ""
        raise TypeError(
            f"{where}: {name} must be bytes (bytes, bytearray or a C-contiguous buffer), got "
            f"{type(data).__name__}{hint}"
        ) from None


def _write_all(fd: int, data) -> None:
    view = memoryview(data).cast("B")
    while view:
        view = view[os.write(fd, view) :]


def atomic_write_bytes(path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically: a temporary file in the same directory
    (:func:`temp_path`), fsync, ``os.replace`` (atomic on POSIX), fsync of the directory.

    On any failure (a full disk, a read-only directory, an interrupt) the temporary file is
    removed and an existing ``path`` is left as it was; an ``OSError`` is re-raised with the
    same errno (so ``PermissionError`` stays one) and ``filename=path``. ``data`` that is not
    bytes-like (a str) is a ``TypeError`` naming it, before the disk is touched.
    """
    path = os.fspath(path)
    _check_bytes(data, "data", "io.atomic_write_bytes")
    tmp = None
    try:
        fd, tmp = _create_temp(path)
        try:
            _write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        tmp = None
        fsync_dir(os.path.dirname(os.path.abspath(path)))
    except OSError as e:
        if e.filename == path:
            raise
        raise _named(e, path) from e
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass


def atomic_write_files(files, *, before_replace=None, sync_each: bool = False) -> None:
    """Write several files so that a failure while writing leaves every one as it was:
    ``files`` is a sequence of ``(path, bytes)``. Each is first written in full to a
    temporary file next to its target and fsync-ed; only when all are on disk are they
    renamed over their targets, in the order given (put the file that commits the others
    last), and their folders fsync-ed. A full disk, a read-only folder or an interrupt during
    the writing removes the temporary files and replaces nothing. A stop signal during the
    renames is served after the last (:func:`signals_deferred`); only a crash or SIGKILL
    between two renames (no disk space is needed there) can leave some replaced and some
    not. An ``OSError`` names the file it concerns.

    ``before_replace``: called once every file is staged, before the first rename (e.g. to
    set aside what the new files replace); if it raises, nothing is replaced.
    ``sync_each``: fsync the folder after each rename, so that after a power cut a later
    rename is never on disk without the earlier ones (a checkpoint's JSON after its data).
    """
    files = [(os.fspath(path), data) for path, data in files]
    for i, (path, data) in enumerate(files):  # a str among them: refused before any is staged
        _check_bytes(data, f"the data of files[{i}] ({path})", "io.atomic_write_files")
    staged = []  # (temporary, target)
    try:
        for path, data in files:
            try:
                fd, tmp = _create_temp(path)
                staged.append((tmp, path))
                try:
                    _write_all(fd, data)
                    os.fsync(fd)
                finally:
                    os.close(fd)
            except OSError as e:
                if e.filename == path:
                    raise
                raise _named(e, path) from e
        if before_replace is not None:
            before_replace()
        with signals_deferred():  # a Ctrl-C or a kill cannot split the group between renames
            while staged:
                tmp, path = staged[0]
                try:
                    os.replace(tmp, path)
                    if sync_each:
                        fsync_dir(os.path.dirname(os.path.abspath(path)))
                except OSError as e:
                    raise _named(e, path) from e
                staged.pop(0)
        for folder in dict.fromkeys(os.path.dirname(os.path.abspath(p)) for p, _ in files):
            fsync_dir(folder)
    finally:
        for tmp, _ in staged:
            try:
                os.unlink(tmp)
            except OSError:
                pass


DEFERRED_SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP", "SIGUSR1")  # those nnjax stops on


@contextlib.contextmanager
def signals_deferred():
    """Within the block, SIGINT, SIGTERM, SIGHUP and SIGUSR1 are only recorded; on leaving,
    the previous handlers are put back and each signal received is raised again
    (:func:`signal.raise_signal`), so its handler runs then, or the default action ends the
    process then. For a few quick steps that belong together, e.g. renames.

    Why handlers and not ``signal.pthread_sigmask``: Python runs its handlers in the main
    thread whichever thread the kernel delivers a signal to, and a process with other
    threads (JAX starts several) gets a signal the main thread blocks delivered to one of
    them. Only in the main thread (elsewhere Python sets no handlers): in other threads a
    no-op. A signal ignored (SIG_IGN) or whose handler was not set from Python is left alone.
    """
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []

    def record(signum, frame) -> None:
        if signum not in received:  # like a blocked signal: several deliveries, one pending
            received.append(signum)

    previous = {}
    try:
        for signum in _deferrable(signal):
            previous[signum] = signal.signal(signum, record)
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        for signum in received:
            signal.raise_signal(signum)


def _deferrable(signal) -> list[int]:
    """The :data:`DEFERRED_SIGNALS` this platform has whose handler Python set, not SIG_IGN
    (``signal.getsignal`` gives None for one set from C: it could not be put back)."""
    numbers = (getattr(signal, name, None) for name in DEFERRED_SIGNALS)
    return [
        s for s in numbers if s is not None and signal.getsignal(s) not in (None, signal.SIG_IGN)
    ]


def atomic_write_text(path, text: str, encoding: str = "utf-8") -> None:
    """Write ``text`` (a str, else a ``TypeError`` naming its type: an int was an
    AttributeError) to ``path`` atomically (see :func:`atomic_write_bytes`)."""
    if not isinstance(text, str):
        hint = " (use io.atomic_write_bytes)" if isinstance(text, bytes | bytearray) else ""
        raise TypeError(
            f"io.atomic_write_text: text must be a str, got {type(text).__name__}{hint}"
        )
    atomic_write_bytes(path, text.encode(encoding))


def atomic_write_json(path, obj, *, indent: int | None = 1, **dumps_kwargs) -> None:
    """Write ``obj`` as JSON to ``path`` atomically. ``json.dumps`` runs first, so an object
    that is not JSON-serialisable raises ``TypeError`` before the disk is touched."""
    atomic_write_text(path, json.dumps(obj, indent=indent, **dumps_kwargs) + "\n")


def atomic_save_figure(fig, path, *, format: str | None = None, **savefig_kwargs) -> None:
    """Save a matplotlib figure to ``path`` atomically: rendered to bytes in memory
    (``fig.savefig(BytesIO, format=...)``), then :func:`atomic_write_bytes`. ``format``
    defaults to the extension of ``path`` (``png`` without one)."""
    if not callable(getattr(fig, "savefig", None)):
        raise TypeError(f"io.atomic_save_figure: fig must be a Figure, got {type(fig).__name__}")
    path = os.fspath(path)
    fmt = format or os.path.splitext(path)[1][1:].lower() or "png"
    buf = io.BytesIO()
    fig.savefig(buf, format=fmt, **savefig_kwargs)
    atomic_write_bytes(path, buf.getvalue())


def clean_temp_files(directory, *, exclusive: bool = False) -> list[str]:
    """Remove the temporary files that killed writers left in ``directory``; return their
    paths. Only files named like :func:`temp_path` are candidates, and one is removed when

    * its writer ran on this host and that process is dead (and is not this process), or
    * ``exclusive`` (the caller holds the directory's lock, so no live writer of another
      host can be using it): also the files of other hosts.

    Nothing else is removed: not the ``.xxxxxxxx.tmp`` files of nnjax <= 0.1
    (``tempfile.mkstemp`` names, which carry no owner: ``.sessions.tmp``, a user's file in an
    output folder, matched them and was deleted when a run took the folder's lock).

    A live writer's file is never removed; nor is a file this process cannot remove.
    """
    try:
        names = os.listdir(directory)
    except (FileNotFoundError, NotADirectoryError):
        return []
    me, removed = _host.host_tag(), []
    for name in names:
        m = _TMP.match(name)
        if m is not None and m["host"] == me:
            pid = int(m["pid"])
            stale = pid != os.getpid() and not _host.pid_alive(pid)
        elif m is not None:
            stale = exclusive
        else:
            continue
        path = os.path.join(os.fspath(directory), name)
        if stale and os.path.isfile(path):
            try:
                os.unlink(path)
            except OSError:
                continue
            removed.append(path)
    return removed


def write_numbers_then_figures(folder: str, figures, write_numbers, write_figures, *, numbers=()):
    """``write_numbers()`` (one atomic group: if it fails, nothing is replaced), then
    ``write_figures()``, whose result is returned. The figures are written one by one, after
    the numbers, so a disk that fills up at them keeps the new numbers; if they fail there
    (a full disk, a signal), every file of ``figures`` (names in ``folder``) that is still an
    earlier run's is removed, so that no figure of another run sits beside these numbers
    (it did: results.json of one study beside accuracy.png of the one before). A file is an
    earlier run's when its device and inode are those it had before the numbers were written
    (an atomic replacement is a new file); what this run wrote stays. Only the names
    ``figures``, only after --overwrite (without it the run finds none of them there).
    ``numbers``: the names ``write_numbers`` replaces; when it fails after replacing one (a
    stop signal during the renames is raised after the last, :func:`atomic_write_files`) the
    earlier figures are removed as well (they stayed beside the new numbers)."""
    before, numbers_before = _identities(folder, figures), _identities(folder, numbers)
    written = False
    try:
        write_numbers()
        written = True
        return write_figures()
    except BaseException:
        if written or _identities(folder, numbers) != numbers_before:
            with signals_deferred():  # a second signal cannot stop the clean-up half-way
                for path, identity in before.items():
                    try:
                        st = os.lstat(path)
                        if (st.st_dev, st.st_ino) == identity and not os.path.isdir(path):
                            os.remove(path)
                    except OSError:  # gone already, or not removable: the first error counts
                        pass
        raise


def _identities(folder: str, names) -> dict:
    """``{path: (st_dev, st_ino)}`` of the files ``names`` in ``folder`` that exist."""
    found = {}
    for name in names:
        try:
            st = os.lstat(os.path.join(folder, name))
        except OSError:  # none there
            continue
        found[os.path.join(folder, name)] = (st.st_dev, st.st_ino)
    return found


_MOVED = ("flatten_params", "npz_bytes", "holds_numbers", "save_params", "load_params")


def __getattr__(name: str):
    """The params functions, moved to :mod:`nnjax.params_npz`, under their old names here."""
    if name in _MOVED:
        from nnjax import params_npz

        return getattr(params_npz, name)
    raise AttributeError(f"module 'nnjax.io' has no attribute {name!r}")
