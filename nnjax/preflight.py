"""Checks to run before compiling, so a run fails in its first second rather than at its end.

* :func:`check_writable`: can files be created in this directory (``--out``,
  ``--checkpoint-dir``)? Creates it if needed and writes, fsyncs and removes a probe file.
* :func:`check_free_space`: a warning when the file system has less free space than needed.
* :func:`removing_new_folders`: a run (or a probe) that fails leaves no empty folder it made;
  :func:`remove_new_empty_folders` does the same for a process that ends at once.
* :func:`estimate_checkpoint_bytes`: the size of one checkpoint of a pytree, from shapes and
  dtypes only (arrays or ``jax.ShapeDtypeStruct`` from ``jax.eval_shape``).

A run keeping ``keep`` checkpoints needs about ``(keep + 1) * estimate`` bytes at its peak:
the new checkpoint is written before the oldest is pruned. Standard library only at import
(JAX is imported by :func:`estimate_checkpoint_bytes` when it is called).
"""

import contextlib
import errno
import os
import shutil

from nnjax.errors import broken_link
from nnjax.io import temp_path

# the folders made by the removing_new_folders blocks open now, one list per block (the
# deepest first): what remove_new_empty_folders removes for a process that ends at once
_OPEN_BLOCKS: list[list[str]] = []

_REASONS = {
    errno.EROFS: "read-only file system",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.ENOTDIR: "a component of the path is a file, not a directory",
    errno.ENOSPC: "no space left on device",
    errno.EDQUOT: "disk quota exceeded",
}
_PROBE_BYTES = 4096  # one block: on a full disk, allocating it fails (at write or at fsync)


class NotWritableError(OSError):
    """A directory cannot be written. ``path``: the directory; ``errno``: the cause (EROFS,
    EACCES, ENOTDIR, ENOSPC, ...). ``str(err)`` is one line naming what and where."""

    def __init__(self, message: str, path: str, err: int | None):
        super().__init__(message)
        self.errno = err
        self.path = path


def _reason(e: OSError) -> str:
    if e.errno in _REASONS:
        return _REASONS[e.errno]
    return e.strerror or str(e)


def check_writable(directory, what: str = "directory") -> str:
    """Make sure files can be created in ``directory``: create it (and its parents) if
    needed, then create, write one block to, fsync and remove a probe file.

    ``what`` names the option in messages, e.g. ``"--checkpoint-dir"``. Returns the absolute
    path. Raises :class:`NotWritableError` (an ``OSError``) naming ``what``, the path and the
    reason: a file where the directory should be, read-only file system, permission denied,
    no space left.
    """
    path = os.fspath(directory)
    if os.path.exists(path) and not os.path.isdir(path):
        raise NotWritableError(f"{what} {path} is a file, not a directory", path, errno.ENOTDIR)
    if (link := broken_link(path)) is not None:  # makedirs: "File exists"
        raise NotWritableError(f"{what} {path} {link[0]}", path, link[1])
    probe = None
    try:
        os.makedirs(path, exist_ok=True)
        probe = temp_path(os.path.join(path, "nnjax-probe"))
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        try:
            os.write(fd, b"\0" * _PROBE_BYTES)
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as e:
        raise NotWritableError(f"{what} {path} is not writable: {_reason(e)}", path, e.errno) from e
    finally:
        if probe is not None and os.path.exists(probe):
            os.unlink(probe)
    return os.path.abspath(path)


@contextlib.contextmanager
def removing_new_folders(path, *, keep: bool = True):
    """A block that creates ``path`` (e.g. a run's output folder): if it raises (an
    interrupting signal's ``KeyboardInterrupt`` included), ``path`` and the parents that did
    not exist before it are removed again, the deepest first, while still empty; one holding
    anything (a checkpoint) stays, and so do its parents. A block that ends normally keeps
    them, unless ``keep`` is False (a probe that only tries the folder: it leaves none it
    made)."""
    made, p = [], os.path.abspath(os.fspath(path))
    while not os.path.lexists(p) and os.path.dirname(p) != p:
        made.append(p)
        p = os.path.dirname(p)
    _OPEN_BLOCKS.append(made)
    try:
        yield
    except BaseException:
        _remove_empty(made)
        raise
    finally:
        _OPEN_BLOCKS.remove(made)
    if not keep:
        _remove_empty(made)


def remove_new_empty_folders() -> None:
    """For a process about to end at once (``os._exit``: no ``finally`` runs, e.g. the signal
    watchdog of :mod:`nnjax.cli_watchdog`): remove the folders that the open
    :func:`removing_new_folders` blocks made and that are still empty, as those blocks would
    on an exception. Safe from any thread; call it after removing the lock files."""
    for made in list(_OPEN_BLOCKS)[::-1]:  # the innermost block's first
        _remove_empty(made)


@contextlib.contextmanager
def probing(*paths):
    """A block that only tries the folders ``paths`` (None skipped): each folder made for them
    is removed again at its end while still empty (:func:`removing_new_folders`, not kept)."""
    with contextlib.ExitStack() as stack:
        for path in sorted({os.fspath(p) for p in paths if p is not None}):
            stack.enter_context(removing_new_folders(path, keep=False))
        yield


def _remove_empty(folders) -> None:
    """``os.rmdir`` each of ``folders`` (deepest first) until one is not empty or gone."""
    for p in folders:
        try:
            os.rmdir(p)
        except OSError:
            break


def _existing(path: str) -> str:
    path = os.path.abspath(path)
    while not os.path.exists(path) and os.path.dirname(path) != path:
        path = os.path.dirname(path)
    return path


def human_bytes(n: float) -> str:
    """``1536`` -> ``"1.5 KiB"``: binary units, the largest whose figure, as rounded, is
    below 1024 (1023.6 read ``1024 B`` and 1048575 ``1024.0 KiB``)."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        text = f"{n:.0f}" if unit == "B" else f"{n:.1f}"
        if abs(float(text)) < 1024 or unit == "TiB":
            return f"{text} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def check_free_space(directory, needed_bytes: int, what: str = "directory") -> str | None:
    """A one-line warning when the file system of ``directory`` (or of its nearest existing
    parent) has fewer than ``needed_bytes`` free for this user; None when there is enough."""
    if needed_bytes < 0:
        raise ValueError(f"check_free_space: needed_bytes must be >= 0, got {needed_bytes}")
    free = shutil.disk_usage(_existing(os.fspath(directory))).free
    if free >= needed_bytes:
        return None
    return (
        f"{what} {os.fspath(directory)}: only {human_bytes(free)} free on its file system, "
        f"about {human_bytes(needed_bytes)} needed"
    )


def _leaf_bytes(leaf) -> int:
    """Bytes of one leaf as stored: PRNG keys as their raw key data, Python scalars as
    8-byte NumPy scalars."""
    import numpy as np

    dtype = getattr(leaf, "dtype", None)
    if dtype is None:
        return int(np.asarray(leaf).nbytes)
    try:
        itemsize = np.dtype(dtype).itemsize
    except TypeError:  # a PRNG key dtype: stored as key_data (e.g. 2 x uint32 per key)
        import jax

        data = jax.eval_shape(jax.random.key_data, leaf)
        return int(np.prod(data.shape, dtype=np.int64)) * np.dtype(data.dtype).itemsize
    return int(np.prod(getattr(leaf, "shape", ()), dtype=np.int64)) * itemsize


def estimate_checkpoint_bytes(tree, metadata_bytes: int = 4096) -> int:
    """An upper estimate of the bytes one :func:`nnjax.checkpoint.save` of ``tree`` writes.

    ``sum(leaf bytes) + sum(300 + 2 * len(name) per leaf) + metadata_bytes``: the ``.npz``
    stores each leaf raw with a ~128-byte ``.npy`` header and a zip entry that carries its
    name (the pytree path, e.g. ``['params'][0]['W'].npy``, in UTF-8 bytes) twice; the
    ``.json`` record takes about 1 KiB plus the metadata, and names once more each leaf that
    is a PRNG key or of a dtype the ``.npy`` header cannot name (bfloat16, float8: listed
    with their dtype), ``len(json.dumps(path)) + 24`` bytes each. Leaves may be arrays of
    any kind or ``jax.ShapeDtypeStruct`` (e.g. ``jax.eval_shape(model.init, ...)``): no data
    is needed.
    """
    import json

    import jax

    total = metadata_bytes
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        key = jax.tree_util.keystr(path)
        total += _leaf_bytes(leaf) + 300 + 2 * len((key + ".npy").encode())
        if _listed_in_record(leaf):
            total += len(json.dumps(key)) + 24
    return total


def _listed_in_record(leaf) -> bool:
    """Whether the checkpoint's JSON names the leaf: a PRNG key, or a dtype the ``.npy``
    header cannot name (:func:`nnjax.tree_arrays.storable`)."""
    import numpy as np

    dtype = getattr(leaf, "dtype", None)
    if dtype is None:
        return False
    try:
        return np.dtype(np.dtype(dtype).str) != np.dtype(dtype)
    except TypeError:  # a PRNG key dtype
        return True
