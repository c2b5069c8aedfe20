"""Checkpoints that survive crashes: a pytree of arrays plus JSON metadata, written atomically.

A checkpoint of step ``s`` in ``directory`` is two files:

* ``ckpt_{s:08d}.npz``: every leaf of the saved pytree under its path string
  (``jax.tree_util.keystr``, e.g. ``['params'][0]['W']``); PRNG key leaves are stored as
  their raw ``key_data`` (uint32) and re-wrapped on restore;
* ``ckpt_{s:08d}.json``: ``{"step", "sha256", "size", "prng_keys", "metadata", "meta_sha256"}``
  (and ``"dtypes"`` for leaves such as bfloat16, stored as unsigned integers of their width)
  where ``sha256`` is the digest of the ``.npz`` bytes and ``meta_sha256`` the digest of the
  JSON's own content (without that field), so a flipped bit in either file is detected.

Both are written with :func:`nnjax.io.atomic_write_bytes` (temporary file, fsync, rename,
fsync of the directory), the ``.npz`` first and the ``.json`` last: the JSON is the commit
mark. A process killed at any instant leaves either a complete checkpoint or an ``.npz``
without its JSON, which is ignored (and removed by the next :func:`save`). A checkpoint whose
bytes do not match its digests raises :class:`CorruptCheckpointError` naming the file; the
older checkpoints stay usable and :func:`latest_valid` finds the newest good one.

One writer per directory: :func:`lock` takes its exclusive lock (:mod:`nnjax.lock`) and
removes the temporary files of killed writers. :func:`save` refuses non-finite float leaves
(:class:`NonFiniteCheckpointError`) and non-finite floats in the metadata (JSON has no nan).
Saving step ``s`` first moves committed checkpoints of step >= s (the abandoned future of a
run resumed from an older one) into a fresh folder ``abandoned/NNNN/``; pruning to ``keep``
counts only checkpoints that verify, moves corrupt ones into a fresh ``corrupt/NNNN/``, and
so never deletes the newest valid checkpoint. Each set-aside event gets its own numbered
folder (0001, 0002, ...): nothing set aside is ever overwritten, and one folder holds one
timeline.

Restoring is exact: arrays come back bit for bit with their dtypes, so a run resumed from a
checkpoint continues exactly where it stopped (see ``fit(..., checkpoint_dir=...)``; what a
``fit`` run saves and how it resumes is :mod:`nnjax.train.checkpoints`).
"""

import hashlib
import io
import json
import os
import re
from typing import Any, NamedTuple

import jax
import numpy as np

from nnjax.errors import DivergenceError
from nnjax.io import atomic_write_bytes, npz_bytes
from nnjax.lock import DirectoryLock, lock_folder
from nnjax.lock import DirectoryLockedError as DirectoryLockedError
from nnjax.lock import StaleLockWarning as StaleLockWarning

_NAME = re.compile(r"^ckpt_(\d{8,})\.(npz|json)$")
FORMAT = 1
ABANDONED, CORRUPT = "abandoned", "corrupt"  # sub-folders for checkpoints set aside


class CorruptCheckpointError(ValueError):
    """A checkpoint file is unreadable or does not match its checksum.

    ``path``: the offending file; ``latest_valid``: the newest checkpoint in the same
    directory that verifies (a :class:`Checkpoint`), or None.
    """

    def __init__(self, message: str, path: str, latest_valid: "Checkpoint | None" = None):
        super().__init__(message)
        self.path = path
        self.latest_valid = latest_valid


class NonFiniteCheckpointError(DivergenceError, FloatingPointError):
    """:func:`save` refused a tree with a nan or inf in a float leaf. ``leaf``: the first such
    leaf's path string (e.g. ``['params'][0]['W']``); ``step``: the step it was to be. A
    ``FloatingPointError`` and a :class:`nnjax.errors.DivergenceError` (CLI exit status 4)."""

    def __init__(self, message: str, leaf: str, step: int):
        super().__init__(message)
        self.leaf = leaf
        self.step = step


class Checkpoint(NamedTuple):
    """A verified checkpoint: ``arrays`` maps leaf path strings to NumPy arrays (PRNG keys
    as raw key data); ``metadata`` is the dict given to :func:`save`."""

    path: str
    step: int
    arrays: dict[str, np.ndarray]
    metadata: dict[str, Any]
    prng_keys: dict[str, str]

    def __repr__(self) -> str:  # one line: the arrays' values would fill a screen
        values = sum(int(np.size(a)) for a in self.arrays.values())
        keys = ", ".join(map(str, self.metadata)) or "none"
        return (
            f"Checkpoint({self.path!r}, step {self.step}, {len(self.arrays)} arrays / "
            f"{values:,} values, metadata keys: {keys})"
        )


def _paths(directory, step: int) -> tuple[str, str]:
    base = os.path.join(os.fspath(directory), f"ckpt_{step:08d}")
    return base + ".npz", base + ".json"


def npz_path(directory, step: int) -> str:
    """The path of checkpoint ``step``'s ``.npz`` in ``directory`` (what :func:`save`
    returns and :func:`load` takes)."""
    return _paths(directory, step)[0]


def _is_key(x) -> bool:
    return isinstance(x, jax.Array) and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)


def _digest(obj: dict) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()


def _flatten(tree) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    arrays, keys = {}, {}
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        name = jax.tree_util.keystr(path)
        if _is_key(leaf):
            keys[name] = str(jax.random.key_impl(leaf))
            leaf = jax.random.key_data(leaf)
        arrays[name] = np.asarray(leaf)
    return arrays, keys


def _storable(arrays: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Arrays whose dtype the ``.npy`` header cannot name (bfloat16, float8: ml_dtypes) are
    stored as unsigned integers of their width, with their dtype names kept aside."""
    stored, dtypes = dict(arrays), {}
    for name, a in arrays.items():
        if np.dtype(a.dtype.str) != a.dtype:
            stored[name], dtypes[name] = a.view(f"u{a.dtype.itemsize}"), a.dtype.name
    return stored, dtypes


def steps(directory) -> list[int]:
    """Steps of the committed checkpoints in ``directory`` (those with a JSON), ascending."""
    if not os.path.isdir(directory):
        return []
    found = set()
    for name in os.listdir(directory):
        m = _NAME.match(name)
        if m and m.group(2) == "json":
            found.add(int(m.group(1)))
    return sorted(found)


def lock(directory, *, stale_after: float | None = None, heartbeat=60.0) -> DirectoryLock:
    """Take the exclusive lock of checkpoint ``directory`` for a run's lifetime and remove
    the temporary files killed writers left there; return the held :class:`DirectoryLock`
    (a context manager: ``with checkpoint.lock(D): ...``; ``.cleaned`` lists what went).

    Raises :class:`DirectoryLockedError` (an ``OSError``) at once when another run holds it;
    a dead run's lock is taken over with a :class:`StaleLockWarning`. See :mod:`nnjax.lock`
    for ``stale_after`` and ``heartbeat`` and for what is guaranteed across hosts.
    """
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

    ``metadata``: a JSON-serialisable dict stored alongside; a nan or inf float in it is a
    ``ValueError`` naming it (:func:`check_metadata`: JSON has no nan; store such a value as
    a string or None). ``keep``: an int (NumPy ints too); afterwards, keep the ``keep``
    newest checkpoints that verify (None keeps all; see :func:`_prune`). A float leaf
    holding nan or inf raises :class:`NonFiniteCheckpointError` before anything is written,
    unless ``allow_nonfinite``. Committed checkpoints of step >= ``step`` are moved into a
    fresh ``abandoned/NNNN/`` first (a resumed run's abandoned future; :func:`_set_aside`).
    The caller should hold :func:`lock`. Returns the ``.npz`` path.
    """
    if isinstance(step, bool) or not isinstance(step, int | np.integer) or step < 0:
        raise ValueError(f"checkpoint.save: step must be an int >= 0, got {step!r}")
    if keep is not None and (
        isinstance(keep, bool) or not isinstance(keep, int | np.integer) or keep < 1
    ):
        raise ValueError(f"checkpoint.save: keep must be an int >= 1 or None, got {keep!r}")
    step, keep = int(step), None if keep is None else int(keep)
    check_metadata(metadata, "checkpoint.save: metadata")
    arrays, keys = _flatten(tree)
    if not allow_nonfinite:
        _check_finite(arrays, step)
    stored, dtypes = _storable(arrays)
    data = npz_bytes(stored)
    directory = os.fspath(directory)
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
    _retire(directory, step)
    atomic_write_bytes(npz, data)
    atomic_write_bytes(js, text)  # last: the JSON commits the checkpoint
    _prune(directory, step, keep)
    return npz


def check_metadata(value, where: str = "metadata") -> None:
    """Refuse a float that JSON cannot hold (nan, inf) anywhere in ``value`` (dicts, lists,
    tuples): a ``ValueError`` naming it as ``where['key'][0]``. Python's ``json`` would write
    the non-standard ``NaN``, which other readers reject; store such a value as a string
    (``"nan"``) or None instead."""
    if isinstance(value, dict):
        for k, v in value.items():
            check_metadata(v, f"{where}[{k!r}]")
    elif isinstance(value, list | tuple):
        for i, v in enumerate(value):
            check_metadata(v, f"{where}[{i}]")
    elif isinstance(value, float | np.floating) and not np.isfinite(value):
        raise ValueError(
            f"{where} is {float(value)!r}: JSON has no nan or inf; store it as a string "
            f"({str(float(value))!r}) or None"
        )


def _fresh_folder(parent: str) -> str:
    """A new, empty, numbered folder ``parent/NNNN`` (one more than the highest there)."""
    os.makedirs(parent, exist_ok=True)
    taken = [int(n) for n in os.listdir(parent) if n.isdigit()]
    n = max(taken, default=0) + 1
    while True:
        folder = os.path.join(parent, f"{n:04d}")
        try:
            os.mkdir(folder)
            return folder
        except FileExistsError:  # made meanwhile: the next number
            n += 1


def _set_aside(directory: str, set_steps: list[int], sub: str) -> str | None:
    """Move checkpoints ``set_steps`` into a fresh folder ``directory/sub/NNNN/`` (one per
    event: nothing set aside before is overwritten, and one folder is one timeline), each
    JSON first (which uncommits it). Returns the folder (None when there is nothing)."""
    if not set_steps:
        return None
    folder = _fresh_folder(os.path.join(directory, sub))
    for step in set_steps:
        for path in reversed(_paths(directory, step)):
            if os.path.exists(path):
                os.replace(path, os.path.join(folder, os.path.basename(path)))
    return folder


def _remove(directory: str, step: int) -> None:
    for path in reversed(_paths(directory, step)):  # the JSON first: uncommitted at once
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass


def _retire(directory: str, step: int) -> None:
    """Before writing ``step``: set aside the committed checkpoints of step >= ``step`` and
    delete every uncommitted ``.npz`` (a write cut short)."""
    _set_aside(directory, [s for s in steps(directory) if s >= step], ABANDONED)
    for name in os.listdir(directory):
        m = _NAME.match(name)
        if m and m.group(2) == "npz" and not os.path.exists(_paths(directory, int(m[1]))[1]):
            _remove(directory, int(m[1]))


def _prune(directory: str, step: int, keep: int | None) -> None:
    """After committing ``step``: walk the older checkpoints newest first; the first
    ``keep - 1`` that verify are kept, the corrupt ones met on the way are moved into a
    fresh ``corrupt/NNNN/`` (never counted), and all older ones are deleted. ``step`` itself
    counts as valid: its digests were computed from the bytes just written and fsync-ed."""
    if keep is None:
        return
    kept, bad = 1, []
    for s in reversed([s for s in steps(directory) if s < step]):
        if kept >= keep:
            _remove(directory, s)
            continue
        try:
            _verify(*_paths(directory, s))
            kept += 1
        except (_Bad, FileNotFoundError):
            bad.append(s)
    _set_aside(directory, bad, CORRUPT)


def _listing(folder: str) -> str:
    done = steps(folder)
    if not done:
        return f"; there is no committed checkpoint in {folder}"
    return f"; the checkpoints in {folder} are of steps {', '.join(map(str, done))}"


def _resolve(path_or_directory, step: int | None) -> tuple[str, str]:
    """The (.npz, .json) paths of a committed checkpoint; FileNotFoundError names the path
    the caller gave."""
    p = os.fspath(path_or_directory)
    if os.path.isdir(p):
        done = steps(p)
        if step is None and not done:
            raise FileNotFoundError(f"no checkpoint in {p}")
        if step is not None and step not in done:
            raise FileNotFoundError(f"no checkpoint of step {step} in {p}{_listing(p)}")
        return _paths(p, done[-1] if step is None else step)
    if step is not None:
        raise ValueError("checkpoint: pass step only with a directory")
    m = _NAME.match(os.path.basename(p))
    if m is None and not os.path.exists(p):
        raise FileNotFoundError(f"no checkpoint at {p}: no such file or directory")
    if m is None:
        raise ValueError(f"checkpoint: {p} is neither a directory nor a ckpt_<step>.npz/.json")
    folder = os.path.dirname(p) or "."
    npz, js = _paths(folder, int(m.group(1)))
    if not os.path.exists(js):
        why = (
            f"its metadata {js} is missing (a write cut short)"
            if os.path.exists(npz)
            else "no such file"
        )
        raise FileNotFoundError(f"no checkpoint at {p}: {why}{_listing(folder)}")
    return npz, js


class _Bad(Exception):
    def __init__(self, path: str, message: str):
        super().__init__(message)
        self.path = path


def _verify(npz: str, js: str) -> tuple[dict, bytes]:
    """(metadata record, .npz bytes) of a checkpoint whose digests match; else raise _Bad."""
    try:
        with open(js, "rb") as f:
            meta = json.loads(f.read())
        if not isinstance(meta, dict) or "meta_sha256" not in meta:
            raise ValueError("not a checkpoint record")
        claimed = meta.pop("meta_sha256")
        if _digest(meta) != claimed:
            raise ValueError("its content does not match its meta_sha256")
    except ValueError as e:  # json.JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise _Bad(js, f"checkpoint metadata {js} is corrupt ({e})") from None
    try:
        with open(npz, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise _Bad(npz, f"checkpoint {npz} is missing (its metadata {js} exists)") from None
    if len(data) != meta["size"]:
        raise _Bad(npz, f"checkpoint {npz} is truncated: {len(data)} bytes, not {meta['size']}")
    if hashlib.sha256(data).hexdigest() != meta["sha256"]:
        raise _Bad(npz, f"checkpoint {npz} is corrupt: its sha256 does not match {js}")
    return meta, data


def _read(npz: str, js: str) -> Checkpoint:
    meta, data = _verify(npz, js)
    with np.load(io.BytesIO(data)) as f:
        arrays = dict(f)
    for name, dtype in meta.get("dtypes", {}).items():
        arrays[name] = arrays[name].view(jax.numpy.dtype(dtype))
    return Checkpoint(npz, meta["step"], arrays, meta["metadata"], meta["prng_keys"])


def load(path_or_directory, step: int | None = None) -> Checkpoint:
    """Read and verify a checkpoint: a directory (its newest, or ``step``) or a file path.

    Raises :class:`CorruptCheckpointError` naming the file when the JSON is unreadable or a
    digest or size does not match (``err.latest_valid`` offers the newest good checkpoint,
    also named in the message), ``FileNotFoundError`` naming the path given when there is
    none (with the steps that do exist).
    """
    npz, js = _resolve(path_or_directory, step)
    try:
        return _read(npz, js)
    except _Bad as bad:
        m = _NAME.match(os.path.basename(npz))
        good = latest_valid(os.path.dirname(npz), before=int(m.group(1)))
        hint = (
            f"; the newest valid checkpoint is {good.path} (step {good.step})"
            if good
            else "; there is no older valid checkpoint"
        )
        raise CorruptCheckpointError(str(bad) + hint, bad.path, good) from None


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


def _under(name: str, prefix: str) -> bool:
    """Is the leaf path ``name`` inside the subtree ``prefix`` (``''`` is the whole tree)?"""
    return name.startswith(prefix) and (len(name) == len(prefix) or name[len(prefix)] == "[")


def _as_key(ckpt: Checkpoint, name: str, a: np.ndarray, leaf):
    """The raw key data ``a`` re-wrapped as a PRNG key like ``leaf``; a ``ValueError`` names
    the leaf when the stored array is not such a key's data."""
    impl = ckpt.prng_keys.get(name, str(jax.random.key_impl(leaf)))
    try:
        key = jax.random.wrap_key_data(a, impl=impl)
    except (TypeError, ValueError) as e:
        key, why = None, str(e).splitlines()[0]
    else:
        why = f"a key of shape {list(key.shape)}"
    if key is None or key.shape != leaf.shape:
        raise ValueError(
            f"{ckpt.path}: {name} is {a.dtype}{list(a.shape)}, not the data of a {impl} PRNG "
            f"key of shape {list(leaf.shape)} as in like ({why})"
        )
    return key


def unflatten(ckpt: Checkpoint, like, prefix: str = "", *, partial: bool = False):
    """The arrays of ``ckpt`` under ``prefix`` in the structure of the pytree ``like``.

    Each leaf must exist with ``like``'s shape and dtype (a ``ValueError`` names the first
    that does not); PRNG key leaves of ``like`` are re-wrapped with their implementation (a
    stored array that is no such key's data is named). An array of the checkpoint under
    ``prefix`` that ``like`` has no place for is a ``ValueError`` naming it (a 3-layer
    checkpoint does not restore into a 2-layer ``like``), unless ``partial=True``: then
    only the arrays ``like`` names are read.
    """
    leaves, treedef = jax.tree_util.tree_flatten_with_path(like)
    out, names = [], set()
    for path, leaf in leaves:
        name = prefix + jax.tree_util.keystr(path)
        names.add(name)
        if name not in ckpt.arrays:
            raise ValueError(f"{ckpt.path}: no array for {name}")
        a = ckpt.arrays[name]
        if _is_key(leaf):
            a = _as_key(ckpt, name, a, leaf)
        else:
            dtype = np.dtype(leaf.dtype if hasattr(leaf, "dtype") else np.result_type(leaf))
            if a.shape != np.shape(leaf) or a.dtype != dtype:
                raise ValueError(
                    f"{ckpt.path}: {name} is {a.dtype}{list(a.shape)}, expected "
                    f"{dtype}{list(np.shape(leaf))}"
                )
        out.append(a)
    extra = sorted(n for n in ckpt.arrays if _under(n, prefix) and n not in names)
    if extra and not partial:
        raise ValueError(
            f"{ckpt.path}: {extra[0]} is not in like ({len(extra)} of the checkpoint's arrays "
            "are not: another model or structure?); pass partial=True to read only the "
            "arrays like names"
        )
    return jax.tree_util.tree_unflatten(treedef, out)


def restore(path_or_directory, like, step: int | None = None, *, partial: bool = False):
    """``(tree, metadata)`` of a checkpoint (a directory's newest, or ``step``), in the
    structure of ``like``; every array of the checkpoint must have its place in ``like``
    unless ``partial``. See :func:`load` and :func:`unflatten`."""
    ckpt = load(path_or_directory, step)
    return unflatten(ckpt, like, partial=partial), ckpt.metadata
