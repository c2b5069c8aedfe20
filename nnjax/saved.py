"""A saved model: a folder that describes itself, and can be loaded and called on raw inputs.

``nnjax.save(path, model, params, ...)`` writes the folder ``path`` (the format is in
``docs/saved-models.md``):

* ``model.json``: the format's name and version, the nnjax version that wrote it, the model
  as data (``model.spec``, rebuilt by :func:`nnjax.layers.from_spec`), the input and output
  shapes, the loss (which says how outputs become probabilities), the label names, the
  feature names and the label column (``target``), the standardisation statistics
  (:class:`nnjax.data.Standardizer`), the training configuration, and for each array file
  its size, SHA-256 and the shape and dtype of every leaf; ``checksum`` is the SHA-256 of
  the rest of the file (canonical JSON), so an edit shows;
* ``params.npz``: the params, one array per leaf, named by its pytree path (``[0]['W']``);
* ``state.npz``: a stateful model's state (BatchNorm's running statistics), likewise.

The files are written together (:func:`nnjax.io.atomic_write_files`): each in full to a
temporary file first, then renamed, the arrays before ``model.json``, so a failed save (a
full disk) leaves a model saved before in the folder as it was.
``nnjax.load(path)`` checks everything before it returns a
:class:`~nnjax.predictor.Predictor`; a file of another format version, or a damaged one, is
a :class:`SavedModelError` (a ``ValueError``) whose one line names the file and the problem.
A model that holds an arbitrary Python function (``spec`` None) cannot be saved.

The format, and reading its files back with every check, is :mod:`nnjax.saved_format`;
``model.json``'s fields, built from ``save``'s arguments, :mod:`nnjax.saved_record`.
"""

from __future__ import annotations

import contextlib
import json
import os

from nnjax.saved_format import FORMAT as FORMAT
from nnjax.saved_format import FORMAT_VERSION as FORMAT_VERSION
from nnjax.saved_format import LOSS_NAMES as LOSS_NAMES
from nnjax.saved_format import (
    MODEL_FILE,
    PARAMS_FILE,
    STATE_FILE,
    check_outputs,
    read_arrays,
    read_meta,
    unflatten,
)
from nnjax.saved_format import SavedModelError as SavedModelError
from nnjax.saved_format import _body_checksum as _body_checksum
from nnjax.saved_record import (
    _array_entry,
    _check_values,
    _feature_names,
    _input_shape,
    _label_names,
    _meta,
    _spec_or_refuse,
    _standardizer_dict,
    _target,
)


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
    the training configuration (JSON data: a nan or inf in it is refused, naming it, as
    model.json is JSON, which has none); ``loss``: a name of :data:`nnjax.losses.LOSSES`;
    ``input_shape``: the model's input with a batch axis, e.g. ``(-1, 64)`` (default: from the
    standardizer's or the feature names' length); ``feature_names`` (a CSV file's columns)
    and ``target`` (its label column) let ``nnjax predict`` match a data file's columns.
    Params and state are checked against the model first, and must be finite (a BatchNorm
    running variance >= 0); the standardizer must be one ``nnjax.load`` can read back (std
    finite > 0, mean finite); ``label_names`` a list, not a string, dict or set, its names
    distinct as text ([1, "1"] would predict alike); ``feature_names`` a list of distinct
    names (strings, or a table's int column labels); ``target`` a string not among them. A
    ``ValueError`` names the argument (and the leaf) before anything is written. ``path``
    and its missing parents are made; '' or a file at ``path`` is a ValueError, a file on
    the way there a :class:`~nnjax.errors.PathError` (an OSError) naming that file. The
    folder's lock (``nnjax.lock``) is held while the files are written: a folder another
    process writes is a :class:`~nnjax.lock.DirectoryLockedError` (an OSError) naming it.
    """
    from nnjax.io import atomic_write_files

    files = model_files(
        model,
        params,
        state=state,
        standardizer=standardizer,
        label_names=label_names,
        config=config,
        loss=loss,
        input_shape=input_shape,
        feature_names=feature_names,
        target=target,
    )
    path = _folder(os.fspath(path))
    with _writing(path):
        # every file on disk before any replaces its old self, model.json (the commit) last:
        # a full disk leaves a model saved before in this folder as it was
        atomic_write_files([(os.path.join(path, name), data) for name, data in files])
        _remove_stale(path, [name for name, _ in files])
    return path


def _writing(path: str):
    """The folder's lock (:func:`nnjax.lock.lock_folder`) for the time of one save: a second
    writer (another ``save``, a ``fit`` or ``nnjax train --out`` there) is refused at once
    with :class:`~nnjax.lock.DirectoryLockedError` naming it, instead of renaming its
    ``params.npz`` between this save's ``params.npz`` and ``model.json`` (a folder whose
    files are of two models); the temporary files of a save killed mid-write go. A folder
    this process already holds (``with checkpoint.lock(D): nnjax.save(D, ...)``) is written
    under that lock."""
    from nnjax import lock

    if lock.held_here(path):
        return contextlib.nullcontext()
    return lock.lock_folder(path, heartbeat=None)


def _folder(path: str) -> str:
    """``path`` made a folder (with its parents), or a one-line error naming it: '' is a
    ValueError; a file there or on the way a :class:`~nnjax.errors.PathError` (an OSError:
    ``os.makedirs`` said only "[Errno 20] Not a directory", or "No such file" for '')."""
    import errno

    from nnjax.errors import PathError, broken_link

    if not path.strip():
        raise ValueError(f"nnjax.save: path must name a folder, got {path!r}")
    if os.path.exists(path) and not os.path.isdir(path):
        raise ValueError(f"nnjax.save: {path} exists and is not a folder")
    if (link := broken_link(path)) is not None:  # os.makedirs would say "File exists"
        raise PathError(f"nnjax.save: cannot make the folder {path}: it {link[0]}", path, link[1])
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as e:
        on_way = next(
            (p for p in _ancestors(path) if os.path.exists(p) and not os.path.isdir(p)), None
        )
        why = f"{on_way} is a file" if on_way else (e.strerror or str(e))
        raise PathError(
            f"nnjax.save: cannot make the folder {path}: {why}", path, e.errno or errno.EIO
        ) from None
    return path


def _ancestors(path: str) -> list[str]:
    """The folders ``path`` lies in, outermost first (relative paths stay relative)."""
    parts, head = [], os.path.dirname(path)
    while head and head not in parts and head != os.path.dirname(head):
        parts.append(head)
        head = os.path.dirname(head)
    return parts[::-1]


def model_files(
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
) -> list[tuple[str, bytes]]:
    """The files :func:`save` writes, as ``(name, bytes)`` pairs in the order to write them
    (the arrays, then ``model.json``, which commits them); the arguments are :func:`save`'s
    and are checked as it checks them. Nothing is written: a caller can add the files to a
    larger group written at once (``nnjax train --out`` writes its history and plots with
    them), then remove a stale ``state.npz`` as :func:`save` does."""
    from nnjax.losses import LOSSES
    from nnjax.params_npz import flatten_params, npz_bytes

    spec = _spec_or_refuse(model)
    if not isinstance(loss, str) or loss not in LOSSES:
        raise ValueError(
            f"nnjax.save: loss must be a name, one of {', '.join(LOSSES)}; got {loss!r}"
        )
    std = _standardizer_dict(standardizer)
    feature_names = _feature_names(feature_names)
    target = _target(target, feature_names)
    shape = _input_shape(input_shape, std, feature_names)
    try:
        state, out_shape = _check(model, params, state, shape)
    except ValueError as e:
        raise ValueError(f"{e}{_batch_axis_hint(model, params, state, input_shape)}") from None
    names = _label_names(label_names, out_shape, loss)
    arrays = {PARAMS_FILE: flatten_params(params)}
    if getattr(model, "stateful", False):
        arrays[STATE_FILE] = flatten_params(state)
    for name, leaves in arrays.items():
        _check_values("params" if name == PARAMS_FILE else "state", leaves)
    blobs = {name: npz_bytes(leaves) for name, leaves in arrays.items()}
    entries = {name: _array_entry(arrays[name], data) for name, data in blobs.items()}
    meta = _meta(spec, shape, out_shape, loss, names, feature_names, target, std, config, entries)
    text = json.dumps(meta, indent=1) + "\n"
    return [*blobs.items(), (MODEL_FILE, text.encode())]


def _remove_stale(path: str, written) -> None:
    """A stateless model saved over a stateful one: remove the old ``state.npz`` (after the
    new ``model.json``, which no longer lists it), so the folder holds one model only."""
    for name in (STATE_FILE,):
        if name not in written:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(path, name))


def _batch_axis_hint(model, params, state, input_shape) -> str:
    """When the model takes ``(-1, *input_shape)``: a hint that ``input_shape`` lacks its
    batch axis (``nnjax.gru(..., input_shape=(T, F))`` names the shape without one)."""
    if input_shape is None:
        return ""
    try:
        _check(model, params, state, (-1, *input_shape))
    except (ValueError, TypeError):
        return ""
    return f" (input_shape {tuple(input_shape)} has no batch axis: give {(-1, *input_shape)})"


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


# --- loading -------------------------------------------------------------------------


def load(path):
    """The saved model at ``path`` as a :class:`~nnjax.predictor.Predictor` (every file
    checked first; a :class:`SavedModelError` names the file and the problem).

    Beyond the format's checks, the model rebuilt from ``model.spec`` must fit the rest of
    ``model.json``: its output shape (-1, ..., K) the recorded ``output_shape``, K label
    names (2 for K = 1), K = 1 for a binary loss, a standardizer of input_shape[-1]
    features; and every leaf must be of the kind the model's is (floating point, in any
    precision), finite, a running variance >= 0, as ``save`` requires. A save into the
    folder while it reads is waited out (the new model is read), not taken for damage."""
    folder = os.fspath(path)
    for attempt in range(3):
        meta = read_meta(folder)
        try:
            return _load(folder, meta)
        except SavedModelError:
            # a save into the folder while we read (model.json read before it, params.npz
            # after) is no damage: read the new model (no more than 3 times)
            if attempt == 2 or not _replaced(folder, meta):
                raise
    raise AssertionError("unreachable")


def _replaced(folder: str, meta: dict, wait: float = 5.0) -> bool:
    """Does ``folder``'s model.json now differ from ``meta`` (a save replaced it)?

    A save holds the folder's lock file while it renames its arrays into place and then
    model.json: a reader that met the new arrays under the old model.json is inside that
    window, so while the lock file exists this waits for model.json to change (at most
    ``wait`` s). Without a lock file no save is under way: the answer is immediate (a
    damaged model is reported at once)."""
    import time

    from nnjax.lock import LOCK_NAME

    lock, deadline = os.path.join(folder, LOCK_NAME), time.monotonic() + wait
    while True:
        saving = os.path.exists(lock)  # looked at first: a save ending now changed model.json
        try:
            if read_meta(folder) != meta:
                return True
        except (OSError, ValueError):
            return False
        if not saving or time.monotonic() > deadline:
            return False
        time.sleep(0.005)


def _load(folder: str, meta: dict):
    """:func:`load` of the model ``meta`` (``folder``'s model.json, checked) describes."""
    import jax

    from nnjax.data import Standardizer
    from nnjax.layers import from_spec, init_model
    from nnjax.predictor import Predictor

    where = os.path.join(folder, MODEL_FILE)
    out = []  # the output shape, a Python tuple that eval_shape would not return

    def init(key):
        out_shape, p, s = init_model(model, key, shape)
        out.append(tuple(out_shape))
        return p, s

    try:
        model = from_spec(meta["model"]["spec"])
        shape = tuple(meta["model"]["input_shape"])
        like_p, like_s = jax.eval_shape(init, jax.random.key(0))
        std = meta["standardizer"]
        standardizer = None if std is None else Standardizer.from_dict(std)
    except (KeyError, TypeError, ValueError) as e:
        raise SavedModelError(f"{where}: cannot rebuild the model: {e}") from None
    check_outputs(meta, out[0], standardizer, where)
    files = meta["files"]
    params = unflatten(
        read_arrays(folder, PARAMS_FILE, files[PARAMS_FILE]),
        like_p,
        os.path.join(folder, PARAMS_FILE),
        "params",
    )
    _warn_narrowed(params, os.path.join(folder, PARAMS_FILE))
    state = ()
    if model.stateful:
        if STATE_FILE not in files:
            raise SavedModelError(f"{where}: the model is stateful but no {STATE_FILE} is listed")
        arrays = read_arrays(folder, STATE_FILE, files[STATE_FILE])
        state = unflatten(arrays, like_s, os.path.join(folder, STATE_FILE), "state")
    return Predictor(model, params, state, standardizer, meta, folder)


def _warn_narrowed(params, where: str) -> None:
    """Params saved in float64, loaded with ``jax_enable_x64`` off: JAX computes them in
    float32, so the predictions are not the saved model's (relative error ~1e-7, and a
    weight above 3.4e38 becomes inf): a warning naming the file and the switch."""
    import jax
    import numpy as np

    wide = [a for a in jax.tree.leaves(params) if np.asarray(a).dtype == np.float64]
    if wide and not jax.config.jax_enable_x64:
        import warnings

        warnings.warn(
            f"{where}: the params were saved in float64, but jax_enable_x64 is off: they are "
            "used in float32 and the predictions match the saved model's only to float32 "
            "rounding; call jax.config.update('jax_enable_x64', True) before nnjax.load (or set "
            "JAX_ENABLE_X64=1) to predict in float64",
            stacklevel=4,
        )
