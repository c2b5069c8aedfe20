"""Params to and from ``.npz``: each leaf stored under its pytree path, e.g. ``[1]['W']``.

Every write is atomic (:func:`atomic_write_bytes`): a reader, or a run killed mid-write,
sees either the old file or the complete new one, never a torn one.
"""

import io
import os
import tempfile

import jax
import numpy as np


def flatten_params(params) -> dict[str, np.ndarray]:
    """{pytree path string: NumPy array} for every leaf of ``params``."""
    leaves = jax.tree_util.tree_flatten_with_path(params)[0]
    return {jax.tree_util.keystr(path): np.asarray(leaf) for path, leaf in leaves}


def fsync_dir(folder) -> None:
    """fsync a directory, so a rename inside it survives a power cut (a no-op where the OS
    cannot open directories, e.g. Windows)."""
    try:
        fd = os.open(os.fspath(folder), os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_bytes(path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically: a temporary file in the same directory, fsync,
    ``os.replace`` (atomic on POSIX), then fsync the directory so the rename is durable."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    fsync_dir(folder)


def npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    """The bytes of an (uncompressed) ``.npz`` holding ``arrays``."""
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def save_params(path, params) -> None:
    """Write ``params`` to ``path`` (.npz) atomically: a temporary file, fsync, then rename."""
    atomic_write_bytes(path, npz_bytes(flatten_params(params)))


def load_params(path, like):
    """Read params saved by :func:`save_params` into the structure of ``like``.

    Raises ``ValueError`` naming the first missing leaf or mismatched shape.
    """
    with np.load(os.fspath(path)) as f:
        stored = dict(f)
    leaves, treedef = jax.tree_util.tree_flatten_with_path(like)
    out = []
    for p, leaf in leaves:
        name = jax.tree_util.keystr(p)
        if name not in stored:
            raise ValueError(f"{path}: no array for params{name}")
        if stored[name].shape != np.shape(leaf):
            raise ValueError(
                f"{path}: params{name} has shape {stored[name].shape}, expected {np.shape(leaf)}"
            )
        out.append(stored[name])
    return jax.tree_util.tree_unflatten(treedef, [leaf for leaf in out])
