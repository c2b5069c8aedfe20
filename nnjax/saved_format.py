"""The saved-model format (``docs/saved-models.md``): its name, version and file names, the
checksums, and reading the files back with every check (``model.json``'s format, checksum
and fields; each array file's size and SHA-256; every leaf's place, shape, dtype kind and
finiteness; the recorded outputs against the rebuilt model's). A damaged or foreign file is
a :class:`SavedModelError` whose one line names it.

Light: ``nnjax predict`` reads a ``model.json`` here before JAX starts, so JAX and NumPy are
imported inside the functions that need them.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

FORMAT = "nnjax-saved-model"
FORMAT_VERSION = 1
MODEL_FILE, PARAMS_FILE, STATE_FILE = "model.json", "params.npz", "state.npz"


class SavedModelError(ValueError):
    """A saved model that cannot be read: the message names the file and the problem."""


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _body_checksum(meta: dict) -> str:
    """The SHA-256 of ``meta`` without its ``checksum``, as canonical JSON."""
    body = {k: v for k, v in meta.items() if k != "checksum"}
    return _sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode())


def _check_reachable(folder: str, where: str) -> None:
    """A ``PathError`` (EACCES) when this user may not reach ``folder`` or its model.json
    (another user's private folder on the way, or a folder it may list but not enter): both
    were "no such folder" and "no model.json", which sent the user looking elsewhere."""
    import errno

    for path in (folder, where):
        try:
            os.stat(path)
        except PermissionError:
            from nnjax.errors import PathError

            raise PathError(
                f"{folder}: no saved model there that this user may read ({path}: permission "
                "denied)",
                folder,
                errno.EACCES,
            ) from None
        except OSError:
            return  # missing, or not a folder: the checks below say which


def read_meta(path) -> dict:
    """``model.json`` of the saved model at ``path``, its format, version and checksum checked."""
    folder = os.fspath(path)
    where = os.path.join(folder, MODEL_FILE)
    _check_reachable(folder, where)
    if not os.path.isdir(folder):  # a path problem, as a missing data file is (exit 3)
        import errno

        from nnjax.errors import PathError, broken_link

        what = "is a file, not a folder" if os.path.exists(folder) else "no such folder"
        code = errno.ENOTDIR if os.path.exists(folder) else errno.ENOENT
        if (link := broken_link(folder)) is not None:
            what, code = f"it {link[0]}", link[1]
        raise PathError(f"{folder}: no saved model there ({what})", folder, code)
    if not os.path.isfile(where):
        from nnjax.lock import LOCK_NAME  # standard library only: light

        hint, names = "", os.listdir(folder)
        if any(n.startswith("ckpt_") and n.endswith(".npz") for n in names):
            hint = (
                "; it holds training checkpoints: nnjax train --resume with --out DIR writes "
                "the saved model from them"
            )
        elif LOCK_NAME in names:
            hint = (
                f"; it holds {LOCK_NAME}: a training run into it has not saved its model yet, "
                "or was killed before it did"
            )
        raise SavedModelError(f"{folder}: not a saved nnjax model (no {MODEL_FILE}){hint}")
    try:
        with open(where, encoding="utf-8") as f:
            meta = json.load(f)
    except json.JSONDecodeError as e:
        raise SavedModelError(
            f"{where}: not valid JSON ({e.msg}, line {e.lineno}): damaged or edited"
        ) from None
    except UnicodeDecodeError:
        raise SavedModelError(f"{where}: not a text file: damaged") from None
    except RecursionError:  # '[[[[...': json's decoder recurses once per level
        raise SavedModelError(f"{where}: not valid JSON (nested too deeply): damaged") from None
    _check_format(meta, where)
    if meta.get("checksum") != _body_checksum(meta):
        raise SavedModelError(
            f"{where}: checksum mismatch: the file was edited or damaged after it was written"
        )
    _check_fields(meta, where)
    return meta


LOSS_NAMES = (
    "mse",
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "softmax_cross_entropy",
)
"""The names of :data:`nnjax.losses.LOSSES`, here without importing JAX (``nnjax predict``
reads a model.json before JAX starts)."""


def _check_fields(meta: dict, where: str) -> None:
    """Every field a reader uses is there with its type (a checksum only says the file is
    as written, and another program may have written it)."""
    model, files = meta.get("model"), meta.get("files")
    shape = model.get("input_shape") if isinstance(model, dict) else None
    shape_ok = _ints(shape) and len(shape) >= 2
    model_bad = _model_problem(model)
    features = meta.get("feature_names")
    problems = {
        "model": bool(model_bad),
        "files": not (
            isinstance(files, dict)
            and PARAMS_FILE in files
            and all(_file_entry_ok(e) for e in files.values())
        ),
        "label_names": not _names(meta.get("label_names"), LABEL_TYPES, _n_classes(model)),
        "loss": meta.get("loss") not in LOSS_NAMES,
        "standardizer": not isinstance(meta.get("standardizer", ()), dict | None),
        "feature_names": features is not None
        and not _names(features, (str,), shape[1] if shape_ok and len(shape) == 2 else None),
        "target": not isinstance(meta.get("target"), str | None),
    }
    bad = [name for name, wrong in problems.items() if wrong]
    if bad:
        valid = f" (loss: one of {', '.join(LOSS_NAMES)})" if "loss" in bad else ""
        valid += f" ({model_bad})" if model_bad else ""
        valid += _count_detail(meta.get("label_names"), model) if "label_names" in bad else ""
        raise SavedModelError(
            f"{where}: field(s) {', '.join(bad)} missing or invalid{valid}: written by another "
            "program or edited"
        )


LABEL_TYPES = (str, int, float, bool)  # what a label name may be: a JSON scalar


def _model_problem(model) -> str:
    """What is wrong with model.json's ``model`` (its spec, input and output shapes), or ''."""
    if not isinstance(model, dict):
        return f"model: a dict, got {type(model).__name__}"
    if "spec" not in model:
        return "model.spec: missing"
    for key in ("input_shape", "output_shape"):
        shape = model.get(key)
        if (key == "input_shape" or shape is not None) and not (_ints(shape) and len(shape) > 1):
            return f"model.{key}: a list of ints [-1, ...], got {shape!r}"
    return ""


def _file_entry_ok(entry) -> bool:
    """``files``' entry of one array file: its ``bytes`` and ``sha256``, and when present
    ``leaves``, {path: {"shape": [ints], "dtype": str}} (a string there was an AttributeError
    when a bfloat16 leaf was read)."""
    if not (isinstance(entry, dict) and _ints([entry.get("bytes")])):
        return False
    leaves = entry.get("leaves", {})
    return (
        isinstance(entry.get("sha256"), str)
        and isinstance(leaves, dict)
        and all(
            isinstance(v, dict) and _ints(v.get("shape")) and isinstance(v.get("dtype"), str)
            for v in leaves.values()
        )
    )


def _ints(values) -> bool:
    return isinstance(values, list) and all(
        isinstance(v, int) and not isinstance(v, bool) for v in values
    )


def _n_classes(model) -> int | None:
    """The number of classes the recorded output shape gives (one output: 2), or None."""
    out = model.get("output_shape") if isinstance(model, dict) else None
    if not (_ints(out) and len(out) >= 2):
        return None
    return 2 if out[-1] == 1 else out[-1]


def _count_detail(names, model) -> str:
    """Where the label names are fine but their number is not the recorded output shape's,
    both fields named: either may be the edited one (it read 'label_names' alone)."""
    n = _n_classes(model)
    if n is None or not _names(names, LABEL_TYPES, None):
        return ""
    return (
        f" ({len(names)} label_names, model.output_shape {model['output_shape']} gives {n} classes)"
    )


def _names(names, types, n: int | None) -> bool:
    """``names`` is a list of ``n`` (when known) distinct values of ``types`` (names that
    repeat, or one class too few, would name predictions wrongly or fail on them)."""
    if not isinstance(names, list) or (n is not None and len(names) != n):
        return False
    if not all(isinstance(v, types) and (bool in types or not isinstance(v, bool)) for v in names):
        return False
    return len(set(names)) == len(names)


def _check_format(meta, where: str) -> None:
    import nnjax

    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        got = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
        raise SavedModelError(f"{where}: not an nnjax saved model (format {got!r})")
    version = meta.get("format_version")
    if type(version) is not int or version != FORMAT_VERSION:  # true == 1.0 == 1 in Python
        raise SavedModelError(
            f"{where}: format version {version!r} (written by nnjax "
            f"{meta.get('nnjax_version', '?')}); nnjax {nnjax.__version__} reads version "
            f"{FORMAT_VERSION} only"
        )


def read_arrays(folder: str, name: str, entry: dict) -> dict[str, Any]:
    """The arrays of ``name`` (an .npz file of the saved model), its size and SHA-256 checked
    against ``entry`` (model.json's record; its ``leaves`` give the dtype of raw bytes)."""
    import zipfile

    import numpy as np

    where = os.path.join(folder, name)
    if not os.path.isfile(where):
        raise SavedModelError(f"{where}: missing (model.json lists it)")
    with open(where, "rb") as f:
        data = f.read()
    if len(data) != entry["bytes"]:
        what = "truncated" if len(data) < entry["bytes"] else "longer than written"
        raise SavedModelError(f"{where}: {what} ({len(data)} bytes, {entry['bytes']} written)")
    if _sha256(data) != entry["sha256"]:
        raise SavedModelError(f"{where}: checksum mismatch: damaged or replaced after saving")
    import io

    try:
        archive = np.load(io.BytesIO(data), allow_pickle=False)
        if not hasattr(archive, "files"):  # a lone .npy array, not an archive of them
            raise SavedModelError(
                f"{where}: not an .npz archive (a single .npy array of shape {archive.shape})"
            )
        with archive:
            arrays = {k: archive[k] for k in archive.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as e:
        if isinstance(e, SavedModelError):
            raise
        raise SavedModelError(f"{where}: not a readable .npz archive ({e})") from None
    what = name.removesuffix(".npz")
    leaves = entry.get("leaves") or {}
    return {
        k: _typed(a, leaves.get(k, {}).get("dtype"), f"{what}{k}", where) for k, a in arrays.items()
    }


def _typed(a, want, name: str, where: str):
    """``a`` (the leaf ``name``, e.g. ``params[0]['W']``) in the dtype ``want`` model.json
    records for it: ``.npz`` stores bfloat16 (and the other ml_dtypes types) as raw bytes
    (``V2``), which JAX cannot take."""
    if a.dtype.kind != "V":
        return a
    import numpy as np

    dtype = None
    if isinstance(want, str):
        try:
            import ml_dtypes

            dtype = np.dtype(getattr(ml_dtypes, want, want))
        except (ImportError, TypeError):
            pass
    if dtype is None or dtype.itemsize != a.dtype.itemsize:
        why = "unknown" if dtype is None else f"of {dtype.itemsize} bytes"
        raise SavedModelError(
            f"{where}: {name} holds raw {a.dtype.itemsize}-byte values, and model.json records "
            f"its dtype as {want!r} ({why})"
        )
    return a.view(dtype)


def unflatten(arrays: dict, like, where: str, what: str):
    """``arrays`` (path -> array) in the structure of ``like`` (abstract leaves), every leaf
    present with its shape; an array ``like`` has no place for is an error too."""
    import jax

    leaves, treedef = jax.tree_util.tree_flatten_with_path(like)
    want = {jax.tree_util.keystr(p): tuple(leaf.shape) for p, leaf in leaves}
    for key, shape in want.items():
        if key not in arrays:
            raise SavedModelError(
                f"{where}: no array for {what}{key} (the model needs shape {shape})"
            )
    extra = sorted(set(arrays) - set(want))
    if extra:
        raise SavedModelError(f"{where}: {what}{extra[0]} is not part of the model")
    for key, shape in want.items():
        if arrays[key].shape != shape:
            raise SavedModelError(
                f"{where}: {what}{key} has shape {arrays[key].shape}, the model needs {shape}"
            )
    kinds = {jax.tree_util.keystr(p): leaf.dtype for p, leaf in leaves}
    for key in want:
        _check_leaf(arrays[key], kinds[key], f"{where}: {what}{key}", what == "state")
    return jax.tree_util.tree_unflatten(treedef, [arrays[k] for k in want])


def _check_leaf(a, like, name: str, state: bool) -> None:
    """``a`` of the kind of ``like`` (the model's own leaf: floating point for a weight, in
    any precision) and finite, a running variance (``state``'s ``['var']``) >= 0; else a
    SavedModelError naming it (an integer weight would truncate, a string one fail deep in
    JAX, a nan one predict nan that would be blamed on the inputs)."""
    import jax.numpy as jnp
    import numpy as np

    floating = jnp.issubdtype(like, jnp.floating)
    if floating != jnp.issubdtype(a.dtype, jnp.floating) or (
        not floating and not jnp.issubdtype(a.dtype, jnp.integer)
    ):
        want = "a floating-point array" if floating else f"an array of {like}"
        raise SavedModelError(f"{name} has dtype {a.dtype}, the model needs {want}")
    if not floating:
        return
    bad = int(a.size - np.count_nonzero(np.isfinite(a)))
    if bad:
        raise SavedModelError(
            f"{name} holds {bad} nan/inf value(s) of {a.size}: the model would predict nan"
        )
    if state and name.endswith("['var']") and a.size and float(np.min(a)) < 0:
        raise SavedModelError(
            f"{name}, a running variance, holds values < 0 (min {float(np.min(a)):g})"
        )


def check_outputs(meta: dict, out_shape, std, where: str) -> None:
    """The rebuilt model's output shape ``out_shape`` (-1, ..., K) fits what ``meta``
    records: its ``model.output_shape``, one label name per class (K, or 2 for K = 1), one
    output for a binary loss; and the standardiser ``std`` has one statistic per input
    feature. A SavedModelError (at ``where``, model.json) names the mismatch: predictions
    would be named wrongly, fail, or give probability columns without names."""
    out = list(out_shape)
    recorded = meta["model"].get("output_shape")
    if recorded is not None and list(recorded) != out:
        raise SavedModelError(
            f"{where}: model.output_shape {recorded} but the model rebuilt from model.spec "
            f"gives {out}"
        )
    k = out[-1] if len(out) > 1 else 1
    n = 2 if k == 1 else k
    names = meta["label_names"]
    if len(names) != n:
        raise SavedModelError(
            f"{where}: {len(names)} label_names for a model with {n} classes ({k} output(s))"
        )
    if meta["loss"].startswith("binary_") and k != 1:
        raise SavedModelError(
            f"{where}: loss {meta['loss']} takes one output per example, the model gives {k}"
        )
    features = meta["model"]["input_shape"][-1]
    if std is not None and len(std.mean) != features:
        raise SavedModelError(
            f"{where}: the standardizer has {len(std.mean)} features, the model's input "
            f"shape {tuple(meta['model']['input_shape'])} has {features}"
        )
