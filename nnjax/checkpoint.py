"""Checkpoints that survive crashes: a pytree of arrays plus JSON metadata, written atomically.

A checkpoint of step ``s`` in ``directory`` is two files:

* ``ckpt_{s:08d}.npz``: every leaf of the saved pytree under its path string
  (``jax.tree_util.keystr``, e.g. ``['params'][0]['W']``); PRNG key leaves are stored as
  their raw ``key_data`` (uint32) and re-wrapped on restore;
* ``ckpt_{s:08d}.json``: ``{"step", "sha256", "size", "prng_keys", "metadata", "meta_sha256"}``
  where ``sha256`` is the digest of the ``.npz`` bytes and ``meta_sha256`` the digest of the
  JSON's own content (without that field), so a flipped bit in either file is detected.

Both are written with :func:`nnjax.io.atomic_write_bytes` (temporary file, fsync, rename,
fsync of the directory), the ``.npz`` first and the ``.json`` last: the JSON is the commit
mark. A process killed at any instant leaves either a complete checkpoint or an ``.npz``
without its JSON, which is ignored (and removed by the next :func:`save`). A checkpoint whose
bytes do not match its digests raises :class:`CorruptCheckpointError` naming the file; the
older checkpoints stay usable and :func:`latest_valid` finds the newest good one.

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

from nnjax.io import atomic_write_bytes, npz_bytes

_NAME = re.compile(r"^ckpt_(\d{8,})\.(npz|json)$")
FORMAT = 1


class CorruptCheckpointError(ValueError):
    """A checkpoint file is unreadable or does not match its checksum.

    ``path``: the offending file; ``latest_valid``: the newest checkpoint in the same
    directory that verifies (a :class:`Checkpoint`), or None.
    """

    def __init__(self, message: str, path: str, latest_valid: "Checkpoint | None" = None):
        super().__init__(message)
        self.path = path
        self.latest_valid = latest_valid


class Checkpoint(NamedTuple):
    """A verified checkpoint: ``arrays`` maps leaf path strings to NumPy arrays (PRNG keys
    as raw key data); ``metadata`` is the dict given to :func:`save`."""

    path: str
    step: int
    arrays: dict[str, np.ndarray]
    metadata: dict[str, Any]
    prng_keys: dict[str, str]


def _paths(directory, step: int) -> tuple[str, str]:
    base = os.path.join(os.fspath(directory), f"ckpt_{step:08d}")
    return base + ".npz", base + ".json"


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


def save(directory, step: int, tree, *, metadata: dict | None = None, keep: int | None = None):
    """Write ``tree`` (a pytree of arrays, PRNG keys allowed) as checkpoint ``step``.

    ``metadata``: a JSON-serialisable dict stored alongside. ``keep``: afterwards, delete all
    but the ``keep`` newest checkpoints (None keeps all). Returns the ``.npz`` path.
    """
    if isinstance(step, bool) or not isinstance(step, int | np.integer) or step < 0:
        raise ValueError(f"checkpoint.save: step must be an int >= 0, got {step!r}")
    if keep is not None and (isinstance(keep, bool) or not isinstance(keep, int) or keep < 1):
        raise ValueError(f"checkpoint.save: keep must be an int >= 1 or None, got {keep!r}")
    directory = os.fspath(directory)
    os.makedirs(directory, exist_ok=True)
    arrays, keys = _flatten(tree)
    data = npz_bytes(arrays)
    npz, js = _paths(directory, int(step))
    meta = {
        "format": FORMAT,
        "step": int(step),
        "file": os.path.basename(npz),
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "prng_keys": keys,
        "metadata": dict(metadata or {}),
    }
    try:
        meta["meta_sha256"] = _digest(meta)
        text = json.dumps(meta, indent=1, sort_keys=True).encode()
    except TypeError as e:
        raise ValueError(f"checkpoint.save: metadata must be JSON-serialisable: {e}") from None
    atomic_write_bytes(npz, data)
    atomic_write_bytes(js, text)  # last: the JSON commits the checkpoint
    _prune(directory, keep)
    return npz


def _prune(directory: str, keep: int | None) -> None:
    done = steps(directory)
    doomed = set(done[:-keep]) if keep is not None else set()
    for name in os.listdir(directory):
        m = _NAME.match(name)
        if m is None:
            continue
        s = int(m.group(1))
        # an .npz with no JSON is a write that a crash interrupted, unless it is the newest
        orphan = m.group(2) == "npz" and s not in done and (not done or s < done[-1])
        if s in doomed or orphan:
            try:
                os.unlink(os.path.join(directory, name))
            except FileNotFoundError:
                pass


def _resolve(path_or_directory, step: int | None) -> tuple[str, str]:
    p = os.fspath(path_or_directory)
    if os.path.isdir(p):
        if step is None:
            done = steps(p)
            if not done:
                raise FileNotFoundError(f"no checkpoint in {p}")
            step = done[-1]
        return _paths(p, step)
    if step is not None:
        raise ValueError("checkpoint: pass step only with a directory")
    m = _NAME.match(os.path.basename(p))
    if m is None and not os.path.exists(p):
        raise FileNotFoundError(f"no checkpoint at {p}")
    if m is None:
        raise ValueError(f"checkpoint: {p} is neither a directory nor a ckpt_<step>.npz/.json")
    return _paths(os.path.dirname(p) or ".", int(m.group(1)))


class _Bad(Exception):
    def __init__(self, path: str, message: str):
        super().__init__(message)
        self.path = path


def _read(npz: str, js: str) -> Checkpoint:
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
    with np.load(io.BytesIO(data)) as f:
        arrays = dict(f)
    return Checkpoint(npz, meta["step"], arrays, meta["metadata"], meta["prng_keys"])


def load(path_or_directory, step: int | None = None) -> Checkpoint:
    """Read and verify a checkpoint: a directory (its newest, or ``step``) or a file path.

    Raises :class:`CorruptCheckpointError` naming the file when the JSON is unreadable or a
    digest or size does not match (``err.latest_valid`` offers the newest good checkpoint,
    also named in the message), ``FileNotFoundError`` when there is none.
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


def unflatten(ckpt: Checkpoint, like, prefix: str = ""):
    """The arrays of ``ckpt`` under ``prefix`` in the structure of the pytree ``like``.

    Each leaf must exist with ``like``'s shape and dtype (a ``ValueError`` names the first
    that does not); PRNG key leaves of ``like`` are re-wrapped with their implementation.
    """
    leaves, treedef = jax.tree_util.tree_flatten_with_path(like)
    out = []
    for path, leaf in leaves:
        name = prefix + jax.tree_util.keystr(path)
        if name not in ckpt.arrays:
            raise ValueError(f"{ckpt.path}: no array for {name}")
        a = ckpt.arrays[name]
        if _is_key(leaf):
            impl = ckpt.prng_keys.get(name, str(jax.random.key_impl(leaf)))
            a = jax.random.wrap_key_data(a, impl=impl)
        else:
            dtype = np.dtype(leaf.dtype if hasattr(leaf, "dtype") else np.result_type(leaf))
            if a.shape != np.shape(leaf) or a.dtype != dtype:
                raise ValueError(
                    f"{ckpt.path}: {name} is {a.dtype}{list(a.shape)}, expected "
                    f"{dtype}{list(np.shape(leaf))}"
                )
        out.append(a)
    return jax.tree_util.tree_unflatten(treedef, out)


def restore(path_or_directory, like, step: int | None = None):
    """``(tree, metadata)`` of a checkpoint (a directory's newest, or ``step``), in the
    structure of ``like``; see :func:`load` and :func:`unflatten`."""
    ckpt = load(path_or_directory, step)
    return unflatten(ckpt, like), ckpt.metadata
