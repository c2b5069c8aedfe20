"""A saved model: a folder that describes itself, and can be loaded and called on raw inputs.

``nnjax.save(path, model, params, ...)`` writes the folder ``path`` (the format is in
``docs/saved-models.md``):

* ``model.json``: the format's name and version, the nnjax version that wrote it, the model
  as data (``model.spec``, rebuilt by :func:`nnjax.layers.from_spec`), the input shape, the
  loss (which says how outputs become probabilities), the label names, the feature names,
  the standardisation statistics (:class:`nnjax.data.Standardizer`), the training
  configuration, and for each array file its size, SHA-256 and the shape and dtype of every
  leaf; ``checksum`` is the SHA-256 of the rest of the file (canonical JSON), so an edit
  shows;
* ``params.npz``: the params, one array per leaf, named by its pytree path (``[0]['W']``);
* ``state.npz``: a stateful model's state (BatchNorm's running statistics), likewise.

Every file is written atomically (:mod:`nnjax.io`), the arrays before ``model.json``.
``nnjax.load(path)`` checks everything before it returns a
:class:`~nnjax.predictor.Predictor`; a file of another format version, or a damaged one, is
a :class:`SavedModelError` (a ``ValueError``) whose one line names the file and the problem.
A model that holds an arbitrary Python function (``spec`` None) cannot be saved.
"""

from __future__ import annotations

import contextlib
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


def _spec_or_refuse(model) -> list:
    """``model.spec`` as JSON data; a model without one is refused, naming it."""
    if not (hasattr(model, "init") and hasattr(model, "apply")):
        raise ValueError(
            f"nnjax.save: {getattr(model, '__name__', type(model).__name__)} is a plain "
            "function, not an nnjax Layer: it cannot be saved (build the model from layers)"
        )
    if getattr(model, "spec", None) is None:
        culprit = _without_spec(model)
        inside = f" (in {model.name})" if culprit is not model else ""
        raise ValueError(
            f"nnjax.save: {culprit.name}{inside} cannot be saved: it is built from a Python "
            "function (an activation or initializer given as a callable), which has no "
            "description as data; build it from names (e.g. Activation('relu'), "
            "W_init='he_normal')"
        )
    return json.loads(json.dumps(model.spec))


def _without_spec(layer, depth: int = 0):
    """The innermost layer without a spec inside ``layer``: the children a combinator holds
    in its ``init`` closure are searched (the layer itself when none is found)."""
    from nnjax.layers import Layer

    if depth > 20:
        return layer
    for cell in getattr(layer.init, "__closure__", None) or ():
        try:
            value = cell.cell_contents
        except ValueError:  # an empty cell
            continue
        is_group = isinstance(value, tuple | list) and not isinstance(value, Layer)
        children = value if is_group else (value,)
        for child in children:
            if isinstance(child, Layer) and child.spec is None:
                return _without_spec(child, depth + 1)
    return layer


def _array_entry(arrays: dict, data: bytes) -> dict:
    return {
        "bytes": len(data),
        "sha256": _sha256(data),
        "leaves": {k: {"shape": list(a.shape), "dtype": str(a.dtype)} for k, a in arrays.items()},
    }


def _json_config(config) -> dict | None:
    """The training configuration as JSON (private ``_`` keys dropped)."""
    if config is None:
        return None
    config = {k: v for k, v in dict(config).items() if not str(k).startswith("_")}
    try:
        return json.loads(json.dumps(config))
    except (TypeError, ValueError) as e:
        raise ValueError(f"nnjax.save: config must be JSON data: {e}") from None


def save(
    path,
    model,
    params,
    *,
    state=None,
    standardizer=None,
    label_names=None,
    config: dict | None = None,
    loss: str = "softmax_cross_entropy",
    input_shape=None,
    feature_names=None,
    target: str | None = None,
) -> str:
    """Write ``model`` with ``params`` (and a stateful model's ``state``) to the folder
    ``path``; returns ``path``.

    ``standardizer``: the :class:`nnjax.data.Standardizer` (or its dict) applied to raw
    inputs before the model; ``label_names``: class k's name (default 0 .. K-1); ``config``:
    the training configuration (JSON data); ``loss``: a name of :data:`nnjax.losses.LOSSES`;
    ``input_shape``: the model's input with a batch axis, e.g. ``(-1, 64)`` (default: from the
    standardizer's or the feature names' length); ``feature_names`` (a CSV file's columns)
    and ``target`` (its label column) let ``nnjax predict`` match a data file's columns.
    Params and state are checked against the model first.
    """
    from nnjax.io import atomic_write_bytes, atomic_write_json, flatten_params, npz_bytes
    from nnjax.losses import LOSSES

    spec = _spec_or_refuse(model)
    if not isinstance(loss, str) or loss not in LOSSES:
        raise ValueError(
            f"nnjax.save: loss must be a name, one of {', '.join(LOSSES)}; got {loss!r}"
        )
    std = _standardizer_dict(standardizer)
    shape = _input_shape(input_shape, std, feature_names)
    state, out_shape = _check(model, params, state, shape)
    names = _label_names(label_names, out_shape)
    files = {PARAMS_FILE: flatten_params(params)}
    if getattr(model, "stateful", False):
        files[STATE_FILE] = flatten_params(state)
    path = os.fspath(path)
    if os.path.exists(path) and not os.path.isdir(path):
        raise ValueError(f"nnjax.save: {path} exists and is not a folder")
    os.makedirs(path, exist_ok=True)
    entries = {}
    for name, arrays in files.items():
        data = npz_bytes(arrays)
        atomic_write_bytes(os.path.join(path, name), data)
        entries[name] = _array_entry(arrays, data)
    meta = _meta(spec, shape, out_shape, loss, names, feature_names, target, std, config, entries)
    atomic_write_json(os.path.join(path, MODEL_FILE), meta)
    _remove_stale(path, files)
    return path


def _remove_stale(path: str, written) -> None:
    """A stateless model saved over a stateful one: remove the old ``state.npz`` (after the
    new ``model.json``, which no longer lists it), so the folder holds one model only."""
    for name in (STATE_FILE,):
        if name not in written:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(path, name))


def _meta(spec, shape, out_shape, loss, names, feature_names, target, std, config, files):
    import nnjax

    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "nnjax_version": nnjax.__version__,
        "model": {"spec": spec, "input_shape": list(shape), "output_shape": list(out_shape)},
        "loss": loss,
        "label_names": names,
        "feature_names": None if feature_names is None else [str(f) for f in feature_names],
        "target": target,
        "standardizer": std,
        "config": _json_config(config),
        "files": files,
    }
    meta["checksum"] = _body_checksum(meta)
    return meta


def _standardizer_dict(standardizer) -> dict | None:
    if standardizer is None or isinstance(standardizer, dict):
        return standardizer
    return standardizer.to_dict()


def _input_shape(input_shape, std, feature_names) -> tuple[int, ...]:
    """The model's input shape (-1, ...): ``input_shape``, else the standardizer's or the
    feature names' length; the three must agree (the standardizer acts on the last axis, the
    names are the columns of a table (n, F)), else no later prediction could run."""
    if input_shape is not None:
        shape = (-1, *tuple(int(d) for d in input_shape)[1:])
    elif std is not None:
        shape = (-1, len(std["mean"]))
    elif feature_names is not None:
        shape = (-1, len(feature_names))
    else:
        raise ValueError(
            "nnjax.save: give input_shape (e.g. (-1, 64)), or a standardizer or feature_names "
            "from which the number of features is read"
        )
    if std is not None and (len(shape) < 2 or len(std["mean"]) != shape[-1]):
        raise ValueError(
            f"nnjax.save: the standardizer has {len(std['mean'])} features, but the model's "
            f"input shape {shape} has {shape[-1]} on its last axis"
        )
    if feature_names is not None and (len(shape) != 2 or len(feature_names) != shape[1]):
        raise ValueError(
            f"nnjax.save: {len(feature_names)} feature names for the model's input shape "
            f"{shape}; they name the columns of a table of shape (n, {len(feature_names)})"
        )
    return shape


def _check(model, params, state, shape):
    """The state to save and the output shape; params and state checked against the model."""
    import jax

    from nnjax.train.model import as_apply, check_state
    from nnjax.train.plan import check_params

    state = check_state(model, state, "nnjax.save")
    check_params(model, params, state, shape[1:], "nnjax.save")
    x = jax.ShapeDtypeStruct((1, *shape[1:]), "float32")
    apply = as_apply(model)
    out = jax.eval_shape(lambda p, s, x: apply(p, s, x)[0], params, state, x)
    return state, (-1, *out.shape[1:])


def _label_names(label_names, out_shape) -> list:
    k = out_shape[-1] if len(out_shape) > 1 else 1
    n = 2 if k == 1 else k
    names = list(range(n)) if label_names is None else list(label_names)
    if len(names) != n:
        raise ValueError(f"nnjax.save: {len(names)} label names for a model with {n} classes")
    return [n.item() if hasattr(n, "item") else n for n in names]


# --- loading -------------------------------------------------------------------------


def read_meta(path) -> dict:
    """``model.json`` of the saved model at ``path``, its format, version and checksum checked."""
    folder = os.fspath(path)
    where = os.path.join(folder, MODEL_FILE)
    if not os.path.isdir(folder):
        raise SavedModelError(f"{folder}: no such saved model (not a folder)")
    if not os.path.isfile(where):
        raise SavedModelError(f"{folder}: not a saved nnjax model (no {MODEL_FILE})")
    try:
        with open(where, encoding="utf-8") as f:
            meta = json.load(f)
    except json.JSONDecodeError as e:
        raise SavedModelError(
            f"{where}: not valid JSON ({e.msg}, line {e.lineno}): damaged or edited"
        ) from None
    except UnicodeDecodeError:
        raise SavedModelError(f"{where}: not a text file: damaged") from None
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
    problems = {
        "model": not (isinstance(model, dict) and "spec" in model and "input_shape" in model),
        "files": not (
            isinstance(files, dict)
            and PARAMS_FILE in files
            and all(isinstance(e, dict) and {"bytes", "sha256"} <= set(e) for e in files.values())
        ),
        "label_names": not isinstance(meta.get("label_names"), list),
        "loss": meta.get("loss") not in LOSS_NAMES,
        "standardizer": not isinstance(meta.get("standardizer", {}), dict | None),
        "feature_names": not isinstance(meta.get("feature_names"), list | None),
    }
    bad = [name for name, wrong in problems.items() if wrong]
    if bad:
        valid = f" (loss: one of {', '.join(LOSS_NAMES)})" if "loss" in bad else ""
        raise SavedModelError(
            f"{where}: field(s) {', '.join(bad)} missing or invalid{valid}: written by another "
            "program or edited"
        )


def _check_format(meta, where: str) -> None:
    import nnjax

    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        got = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
        raise SavedModelError(f"{where}: not an nnjax saved model (format {got!r})")
    version = meta.get("format_version")
    if version != FORMAT_VERSION:
        raise SavedModelError(
            f"{where}: format version {version!r} (written by nnjax "
            f"{meta.get('nnjax_version', '?')}); nnjax {nnjax.__version__} reads version "
            f"{FORMAT_VERSION} only"
        )


def read_arrays(folder: str, name: str, entry: dict) -> dict[str, Any]:
    """The arrays of ``name`` (an .npz file of the saved model), its size and SHA-256 checked
    against ``entry`` (model.json's record)."""
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
        with np.load(io.BytesIO(data), allow_pickle=False) as archive:
            return {k: archive[k] for k in archive.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as e:
        raise SavedModelError(f"{where}: not a readable .npz archive ({e})") from None


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
    return jax.tree_util.tree_unflatten(treedef, [arrays[k] for k in want])


def load(path):
    """The saved model at ``path`` as a :class:`~nnjax.predictor.Predictor` (every file
    checked first; a :class:`SavedModelError` names the file and the problem)."""
    import jax

    from nnjax.data import Standardizer
    from nnjax.layers import from_spec, init_model
    from nnjax.predictor import Predictor

    folder = os.fspath(path)
    meta = read_meta(folder)
    where = os.path.join(folder, MODEL_FILE)
    try:
        model = from_spec(meta["model"]["spec"])
        shape = tuple(meta["model"]["input_shape"])
        _, like_p, like_s = jax.eval_shape(lambda k: init_model(model, k, shape), jax.random.key(0))
        std = meta["standardizer"]
        standardizer = None if std is None else Standardizer.from_dict(std)
    except (KeyError, TypeError, ValueError) as e:
        raise SavedModelError(f"{where}: cannot rebuild the model: {e}") from None
    files = meta["files"]
    params = unflatten(
        read_arrays(folder, PARAMS_FILE, files[PARAMS_FILE]),
        like_p,
        os.path.join(folder, PARAMS_FILE),
        "params",
    )
    state = ()
    if model.stateful:
        if STATE_FILE not in files:
            raise SavedModelError(f"{where}: the model is stateful but no {STATE_FILE} is listed")
        arrays = read_arrays(folder, STATE_FILE, files[STATE_FILE])
        state = unflatten(arrays, like_s, os.path.join(folder, STATE_FILE), "state")
    return Predictor(model, params, state, standardizer, meta, folder)
