"""Saving, loading and restoring checkpoints (see :mod:`nnjax.checkpoint`)."""

import errno
import hashlib
import json
import os
import time
import warnings
from collections.abc import Mapping

import jax
import numpy as np

from nnjax import tree_arrays
from nnjax.checkpoint.folders import _make_room, _prune, _retire
from nnjax.checkpoint.record import (
    _NAME,
    FORMAT,
    Checkpoint,
    CorruptCheckpointError,
    NonFiniteCheckpointError,
    _Bad,
    _digest,
    _paths,
    _read,
    _resolve,
    check_metadata,
    check_step,
    steps,
)
from nnjax.errors import PathError, broken_link
from nnjax.io import atomic_write_files
from nnjax.lock import DirectoryLock, lock_folder
from nnjax.params_npz import holds_numbers, npz_bytes

_FULL = (errno.ENOSPC, errno.EDQUOT)  # the disk errors that deleting old checkpoints can cure


def lock(directory, *, stale_after: float | None = None, heartbeat=60.0) -> DirectoryLock:
    """Take the exclusive lock of checkpoint ``directory`` for a run's lifetime and remove
    the temporary files killed writers left there; return the held :class:`DirectoryLock`
    (a context manager: ``with checkpoint.lock(D): ...``; ``.cleaned`` lists what went).

    Raises :class:`DirectoryLockedError` (an ``OSError``) at once when another run holds it
    (a :class:`nnjax.errors.PathError` when ``directory`` is empty or a file);
    a dead run's lock is taken over with a :class:`StaleLockWarning`. See :mod:`nnjax.lock`
    for ``stale_after`` and ``heartbeat`` and for what is guaranteed across hosts.
    """
    directory = _folder(directory, "checkpoint.lock")  # a file, not "File exists"
    return lock_folder(directory, stale_after=stale_after, heartbeat=heartbeat)


def _check_finite(arrays: dict[str, np.ndarray], step: int) -> None:
    for name, a in arrays.items():
        if not jax.dtypes.issubdtype(a.dtype, np.inexact) or np.isfinite(a).all():
            continue
        n_nan = int(np.isnan(a).sum())
        raise NonFiniteCheckpointError(
            f"checkpoint.save: refusing to write step {step}: {name} holds {n_nan} nan and "
            f"{int((~np.isfinite(a)).sum()) - n_nan} inf of its {a.size} values (a checkpoint "
            "is never written from non-finite state; pass allow_nonfinite=True to force it)",
            name,
            step,
        )


def _folder(directory, where: str = "checkpoint.save") -> str:
    """``directory`` as a str; a :class:`nnjax.errors.PathError` naming it (and ``where``,
    the caller) when no folder can be made there (empty, a file, a dangling or looping
    symbolic link)."""
    d = os.fspath(directory)
    if not d:
        raise PathError(f"{where}: the directory is an empty path", d, errno.ENOENT)
    if os.path.exists(d) and not os.path.isdir(d):
        raise PathError(f"{where}: {d} is a file, not a directory", d, errno.ENOTDIR)
    if (link := broken_link(d)) is not None:  # os.makedirs would say "File exists"
        raise PathError(f"{where}: {d} {link[0]}", d, link[1])
    return d


def _check_numbers(arrays: dict[str, np.ndarray], step: int) -> None:
    """Refuse a leaf NumPy cannot store as numbers: an object array (a Python object, a
    ragged list) would be pickled and never load (``allow_pickle=False``); text would not
    come back as text; a structured (record) array would be written but never load."""
    for name, a in arrays.items():
        if not holds_numbers(a):
            raise ValueError(
                f"checkpoint.save: refusing to write step {step}: {name} is not an array of "
                f"numbers ({a.dtype}, holding {type(a.item(0) if a.size else a).__name__} "
                "values); put such values in metadata"
            )


def save(
    directory,
    step: int,
    tree,
    *,
    metadata: dict | None = None,
    keep: int | None = None,
    allow_nonfinite: bool = False,
):
    """Write ``tree`` (a pytree of arrays, PRNG keys allowed) as checkpoint ``step``.

    ``step``: an int >= 0 (NumPy ints too). A leaf that is no array of numbers (a Python
    object, a string, a structured record array) is a ``ValueError`` naming it; ``directory`` a
    :class:`nnjax.errors.PathError` when it is empty, a file or a broken symbolic link.

    ``metadata``: a JSON-serialisable dict stored alongside (it comes back as JSON gives it:
    tuples as lists); a nan or inf float in it, or a dict key that is not a string (JSON
    would make ``2`` ``"2"``), is a ``ValueError`` naming it (:func:`check_metadata`: JSON
    has no nan; store such a value as a string or None). ``keep``: an int (NumPy ints too);
    afterwards, keep the ``keep`` newest checkpoints that verify (None keeps all; see
    :func:`_prune`); where the disk is full (ENOSPC, EDQUOT) and ``keep >= 2``, those beyond
    ``keep`` are deleted first, with a warning, and the write is tried once more (the same
    checkpoints remain). A float leaf holding nan or inf raises
    :class:`NonFiniteCheckpointError` before anything is written, unless
    ``allow_nonfinite``. Committed checkpoints of step >= ``step`` are moved into a fresh
    ``abandoned/NNNN/`` first (a resumed run's abandoned future; :func:`_set_aside`). The
    caller should hold :func:`lock`. Returns the ``.npz`` path.
    """
    step = check_step(step, "checkpoint.save")
    if keep is not None and (
        isinstance(keep, bool) or not isinstance(keep, int | np.integer) or keep < 1
    ):
        raise ValueError(f"checkpoint.save: keep must be an int >= 1 or None, got {keep!r}")
    keep = None if keep is None else int(keep)
    if metadata is not None and not isinstance(metadata, Mapping):
        raise ValueError(
            f"checkpoint.save: metadata must be a dict or None, got {type(metadata).__name__}"
        )
    check_metadata(metadata, "checkpoint.save: metadata")
    directory = _folder(directory)
    arrays, keys = tree_arrays.flatten(tree)
    _check_numbers(arrays, step)
    if not allow_nonfinite:
        _check_finite(arrays, step)
    stored, dtypes = tree_arrays.storable(arrays)
    data = npz_bytes(stored)
    npz, js = _paths(directory, step)
    meta = {
        "format": FORMAT,
        "step": step,
        "file": os.path.basename(npz),
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "prng_keys": keys,
        "metadata": dict(metadata or {}),
    }
    if dtypes:
        meta["dtypes"] = dtypes
    try:
        meta["meta_sha256"] = _digest(meta)
        text = json.dumps(meta, indent=1, sort_keys=True, allow_nan=False).encode()
    except TypeError as e:
        raise ValueError(f"checkpoint.save: metadata must be JSON-serialisable: {e}") from None
    os.makedirs(directory, exist_ok=True)
    _write_making_room(directory, step, keep, [(npz, data), (js, text)])
    _prune(directory, step, keep)
    return npz


def _write_making_room(directory: str, step: int, keep: int | None, files) -> None:
    """Write checkpoint ``step``'s ``files`` (the .npz, then the JSON, which commits it):
    both in full first (a full disk fails here, before anything is moved or replaced), then
    the checkpoints of step >= ``step`` set aside, then the renames. On a full disk (ENOSPC,
    EDQUOT) with ``keep >= 2``, the checkpoints ``keep`` deletes after the save are deleted
    first (:func:`_make_room`, with a warning) and the write is tried once more."""

    def write() -> None:
        atomic_write_files(files, before_replace=lambda: _retire(directory, step), sync_each=True)

    try:
        write()
    except OSError as e:
        if e.errno not in _FULL or not _make_room(directory, step, keep):
            raise
        warnings.warn(
            f"checkpoint: {directory}: {os.strerror(e.errno)}: the checkpoints beyond "
            f"keep={keep} are deleted before a new one is written instead of after",
            stacklevel=3,
        )
        write()


def load(path_or_directory, step: int | None = None) -> Checkpoint:
    """Read and verify a checkpoint: a directory (its newest, or ``step``) or a file path.

    Raises :class:`CorruptCheckpointError` naming the file when the JSON is unreadable or a
    digest or size does not match (``err.latest_valid`` offers the newest good checkpoint,
    also named in the message), ``FileNotFoundError`` naming the path given when there is
    none (with the steps that do exist). A save into the folder while it reads (another
    process's run pruning with ``keep=1``, or saving the step read again) is no damage: the
    checkpoint is looked up and read again (at most twice more) where its files changed
    or went away since it was found.
    """
    for attempt in range(3):
        npz, js = _resolve(path_or_directory, step)
        seen = _stamps(npz, js)
        try:
            return _read(npz, js)
        except (_Bad, FileNotFoundError) as e:
            if attempt < 2 and _stamps(npz, js) != seen:
                time.sleep(0.01 * (attempt + 1))
                continue
            if isinstance(e, FileNotFoundError):
                raise
            bad = e
        m = _NAME.match(os.path.basename(npz))
        good = latest_valid(os.path.dirname(npz), before=int(m.group(1)))
        hint = (
            f"; the newest valid checkpoint is {good.path} (step {good.step})"
            if good
            else "; there is no older valid checkpoint"
        )
        raise CorruptCheckpointError(str(bad) + hint, bad.path, good) from None
    raise AssertionError("unreachable")


def _stamps(*paths: str) -> tuple:
    """(inode, mtime, size) of each path, None where it is missing: what a writer changes."""
    out = []
    for p in paths:
        try:
            st = os.stat(p)
        except OSError:
            out.append(None)
        else:
            out.append((st.st_ino, st.st_mtime_ns, st.st_size))
    return tuple(out)


def latest_valid(directory, before: int | None = None) -> Checkpoint | None:
    """The newest checkpoint in ``directory`` that verifies (with step < ``before`` if
    given), skipping corrupt ones; None if there is none."""
    for s in reversed(steps(directory)):
        if before is not None and s >= before:
            continue
        try:
            return _read(*_paths(directory, s))
        except (_Bad, FileNotFoundError):
            continue
    return None


def unflatten(ckpt: Checkpoint, like, prefix: str = "", *, partial: bool = False):
    """The arrays of ``ckpt`` under ``prefix`` in the structure of the pytree ``like``.

    Each leaf must exist with ``like``'s shape and dtype (a ``ValueError`` names the first
    that does not); PRNG key leaves of ``like`` are re-wrapped with their implementation (a
    stored array that is no such key's data is named). An array of the checkpoint under
    ``prefix`` that ``like`` has no place for is a ``ValueError`` naming it (a 3-layer
    checkpoint does not restore into a 2-layer ``like``), unless ``partial=True``: then
    only the arrays ``like`` names are read. See :func:`nnjax.tree_arrays.unflatten`.
    """
    return tree_arrays.unflatten(
        ckpt.arrays,
        like,
        prng_keys=ckpt.prng_keys,
        where=ckpt.path,
        prefix=prefix,
        partial=partial,
    )


def restore(path_or_directory, like, step: int | None = None, *, partial: bool = False):
    """``(tree, metadata)`` of a checkpoint (a directory's newest, or ``step``), in the
    structure of ``like``; every array of the checkpoint must have its place in ``like``
    unless ``partial``. See :func:`load` and :func:`unflatten`."""
    ckpt = load(path_or_directory, step)
    return unflatten(ckpt, like, partial=partial), ckpt.metadata
