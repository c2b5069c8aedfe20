"""What a checkpoint is on disk: its file names, its record, its verification and errors."""

import hashlib
import io
import json
import os
import re
import zipfile
from typing import Any, NamedTuple

import numpy as np

from nnjax import tree_arrays
from nnjax.errors import DivergenceError

# only the names _paths writes: 8 ASCII digits, or more without a leading zero (a user's
# `ckpt_000000001.json` or other digits than 0-9 would name a step whose files are not there)
_NAME = re.compile(r"^ckpt_(\d{8}|[1-9]\d{8,})\.(npz|json)$", re.ASCII)
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
    as raw key data); ``metadata`` is the dict given to :func:`save`, as JSON gives it back
    (tuples as lists)."""

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


def _digest(obj: dict) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()


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


def check_metadata(value, where: str = "metadata") -> None:
    """Refuse a float that JSON cannot hold (nan, inf) anywhere in ``value`` (dicts, lists,
    tuples): a ``ValueError`` naming it as ``where['key'][0]``. Python's ``json`` would write
    the non-standard ``NaN``, which other readers reject; store such a value as a string
    (``"nan"``) or None instead. A dict key that is not a string is refused too, naming it:
    JSON's keys are strings, so ``{2: x}`` came back as ``{"2": x}`` (checked here, so that
    ``fit`` refuses it before the run, not at its first checkpoint)."""
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                raise ValueError(
                    f"{where} has the key {k!r} ({type(k).__name__}): JSON's keys are "
                    f"strings, and it would come back as {_json_key(k)}; use a string key"
                )
            check_metadata(v, f"{where}[{k!r}]")
    elif isinstance(value, list | tuple):
        for i, v in enumerate(value):
            check_metadata(v, f"{where}[{i}]")
    elif isinstance(value, float | np.floating) and not np.isfinite(value):
        raise ValueError(
            f"{where} is {float(value)!r}: JSON has no nan or inf; store it as a string "
            f"({str(float(value))!r}) or None"
        )


def _json_key(key) -> str:
    """How JSON gives ``key`` back (``2`` as ``'2'``, ``True`` as ``'true'``), or "a string"."""
    try:
        return repr(next(iter(json.loads(json.dumps({key: 0})))))
    except (TypeError, ValueError):  # a key JSON refuses (a tuple)
        return "a string"


def _listing(folder: str) -> str:
    done = steps(folder)
    if not done:
        return f"; there is no committed checkpoint in {folder}"
    return f"; the checkpoints in {folder} are of steps {', '.join(map(str, done))}"


def check_step(step, where: str) -> int:
    """``step`` as an int: a ``ValueError`` unless it is an int >= 0 (NumPy ints too; not a
    bool, which would be step 0 or 1, nor a float)."""
    if isinstance(step, bool) or not isinstance(step, int | np.integer) or step < 0:
        raise ValueError(f"{where}: step must be an int >= 0, got {step!r}")
    return int(step)


def _resolve(path_or_directory, step: int | None) -> tuple[str, str]:
    """The (.npz, .json) paths of a committed checkpoint; FileNotFoundError names the path
    the caller gave."""
    p = os.fspath(path_or_directory)
    if step is not None:
        step = check_step(step, "checkpoint")
    if not p:
        raise ValueError("checkpoint: the path is empty (give a directory or a ckpt_<step>.npz)")
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


# the fields of a record and their types: a record without them (another tool's, a newer
# format) is refused as corrupt, never a KeyError
_FIELDS = {"step": int, "size": int, "sha256": str, "prng_keys": dict, "metadata": dict}


class _NewerFormat(ValueError):
    """A record of a format newer than :data:`FORMAT`: not corrupt, but unreadable here."""


def _check_record(meta) -> None:
    version = meta.get("format") if isinstance(meta, dict) else None
    if type(version) is int and version > FORMAT:  # first: a newer format may seal otherwise
        raise _NewerFormat(f"format {version}, written by a newer nnjax (this one reads {FORMAT})")
    if not isinstance(meta, dict) or "meta_sha256" not in meta:
        raise ValueError("not a checkpoint record")
    claimed = meta.pop("meta_sha256")
    if _digest(meta) != claimed:
        raise ValueError("its content does not match its meta_sha256")
    if type(version) is not int or version < 1:  # every nnjax wrote format 1, an int
        raise ValueError(
            f"not a checkpoint record: format {version!r} (nnjax writes format {FORMAT})"
        )
    for field, kind in _FIELDS.items():
        if not isinstance(meta.get(field), kind) or isinstance(meta.get(field), bool):
            raise ValueError(f"not a checkpoint record: no {kind.__name__} {field!r}")
    dtypes = meta.get("dtypes", {})  # a string here was an AttributeError on reading
    if not (isinstance(dtypes, dict) and all(isinstance(v, str) for v in dtypes.values())):
        raise ValueError(f"not a checkpoint record: 'dtypes' {dtypes!r} is no dict of names")


def _verify(npz: str, js: str) -> tuple[dict, bytes]:
    """(metadata record, .npz bytes) of a checkpoint whose digests match; else raise _Bad."""
    try:
        with open(js, "rb") as f:
            meta = json.loads(f.read())
        _check_record(meta)
    except _NewerFormat as e:
        raise _Bad(js, f"checkpoint metadata {js}: {e}") from None
    except ValueError as e:  # json.JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise _Bad(js, f"checkpoint metadata {js} is corrupt ({e})") from None
    except OSError as e:  # a directory under its name, an I/O error (not FileNotFoundError)
        if isinstance(e, FileNotFoundError):
            raise
        raise _Bad(js, f"checkpoint metadata {js} is unreadable ({e.strerror or e})") from None
    try:
        with open(npz, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise _Bad(npz, f"checkpoint {npz} is missing (its metadata {js} exists)") from None
    except OSError as e:
        raise _Bad(npz, f"checkpoint {npz} is unreadable ({e.strerror or e})") from None
    named = int(_NAME.match(os.path.basename(npz)).group(1))
    if meta["step"] != named:  # a renamed file: listed as one step, loaded as another
        raise _Bad(js, f"checkpoint metadata {js} is of step {meta['step']}, not {named}")
    if len(data) != meta["size"]:
        raise _Bad(npz, f"checkpoint {npz} is truncated: {len(data)} bytes, not {meta['size']}")
    if hashlib.sha256(data).hexdigest() != meta["sha256"]:
        raise _Bad(npz, f"checkpoint {npz} is corrupt: its sha256 does not match {js}")
    return meta, data


def _read(npz: str, js: str) -> Checkpoint:
    meta, data = _verify(npz, js)
    try:  # its digests match, yet NumPy may refuse it: an object array (pickled) of old nnjax
        with np.load(io.BytesIO(data)) as f:
            arrays = tree_arrays.unstored(dict(f), meta.get("dtypes", {}))
    except (ValueError, TypeError, OSError, zipfile.BadZipFile) as e:
        raise _Bad(npz, f"checkpoint {npz} cannot be read ({str(e).splitlines()[0]})") from None
    return Checkpoint(npz, meta["step"], arrays, meta["metadata"], meta["prng_keys"])
