"""``model.json``'s record of a model, built from ``nnjax.save``'s arguments and checked
before anything is written: the model as data (its spec), the input shape, the label names,
the standardiser, the training configuration and each array file's entry.
"""

from __future__ import annotations

import json
import math
import numbers

from nnjax.saved_format import FORMAT, FORMAT_VERSION, LABEL_TYPES, _body_checksum, _sha256


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
    """The training configuration as JSON (private ``_`` keys dropped). A nan or inf float
    in it is a ValueError naming it: Python's ``json`` would write ``NaN``, which is no JSON
    and which other readers of model.json reject (:func:`nnjax.checkpoint.check_metadata`)."""
    from nnjax.checkpoint.record import check_metadata

    if config is None:
        return None
    config = {k: v for k, v in dict(config).items() if not str(k).startswith("_")}
    check_metadata(config, "nnjax.save: config")
    try:
        return json.loads(json.dumps(config))
    except (TypeError, ValueError) as e:
        raise ValueError(f"nnjax.save: config must be JSON data: {e}") from None


def _meta(spec, shape, out_shape, loss, names, feature_names, target, std, config, files):
    import nnjax

    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "nnjax_version": nnjax.__version__,
        "model": {"spec": spec, "input_shape": list(shape), "output_shape": list(out_shape)},
        "loss": loss,
        "label_names": names,
        "feature_names": feature_names,
        "target": target,
        "standardizer": std,
        "config": _json_config(config),
        "files": files,
    }
    meta["checksum"] = _body_checksum(meta)
    return meta


def _standardizer_dict(standardizer) -> dict | None:
    """The standardizer (a :class:`nnjax.data.Standardizer` or its dict, ``to_dict()``) as
    JSON data, read back as ``nnjax.load`` will read it (:meth:`Standardizer.from_dict`): one
    that load could not rebuild (a std of 0, a NaN mean, a string) is a ValueError naming it,
    here rather than on loading, where it would look like a damaged model."""
    from nnjax.standardizer import Standardizer

    if standardizer is None:
        return None
    try:
        d = standardizer if isinstance(standardizer, dict) else standardizer.to_dict()
        return Standardizer.from_dict(d).to_dict()
    except AttributeError:
        raise ValueError(
            "nnjax.save: standardizer must be a nnjax.data.Standardizer, its dict or None; got "
            f"{type(standardizer).__name__}"
        ) from None
    except ValueError as e:
        text = str(e).removeprefix("Standardizer.from_dict: ")
        raise ValueError(f"nnjax.save: the standardizer cannot be saved: {text}") from None


def _check_values(what: str, leaves: dict) -> None:
    """Every leaf of ``leaves`` (``what``: "params" or "state", {path: array}) finite, and a
    BatchNorm running variance (a leaf ``['var']``) >= 0: a model saved with a nan weight or
    a negative variance predicts nan, which ``predict`` would blame on the inputs. A
    ValueError names the leaf."""
    import numpy as np

    for path, a in leaves.items():
        try:
            bad = int(np.size(a) - np.count_nonzero(np.isfinite(a)))
        except TypeError:  # not numbers: the format's own checks name it
            continue
        if bad:
            raise ValueError(
                f"nnjax.save: {what} leaf {path} holds {bad} nan/inf value(s) of {np.size(a)}; "
                "a model with them predicts nan (retrain, or restore a checkpoint from before "
                "they appeared)"
            )
        if what == "state" and path.endswith("['var']") and np.size(a) and np.min(a) < 0:
            raise ValueError(
                f"nnjax.save: state leaf {path}, a running variance, holds values < 0 (min "
                f"{float(np.min(a)):g}); a variance is >= 0, and rsqrt of it would be nan"
            )


def _input_shape(input_shape, std, feature_names) -> tuple[int, ...]:
    """The model's input shape (-1, ...): ``input_shape``, else the standardizer's or the
    feature names' length; the three must agree (the standardizer acts on the last axis, the
    names are the columns of a table (n, F)), else no later prediction could run."""
    if input_shape is not None:
        shape = _batched(input_shape)
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


def _batched(input_shape) -> tuple[int, ...]:
    """``input_shape`` (batch axis first: -1, None or a size) as ``(-1, ...)``; anything
    else (no batch axis, a float or bool size, a size < 1) is a ValueError naming it."""
    dims = tuple(input_shape) if isinstance(input_shape, tuple | list) else ()
    sizes_ok = all(
        isinstance(d, numbers.Integral) and not isinstance(d, bool) and d >= 1 for d in dims[1:]
    )
    batch = dims[0] if dims else None
    batch_ok = len(dims) > 1 and (
        batch is None
        or isinstance(batch, numbers.Integral)
        and not isinstance(batch, bool)
        and (batch == -1 or batch >= 1)
    )
    if not (sizes_ok and batch_ok):
        raise ValueError(
            "nnjax.save: input_shape must be the model's input with the batch axis first, "
            f"e.g. (-1, 64) for 64 features or (-1, 8, 8, 1) for 8x8 images; got {input_shape!r}"
        )
    return (-1, *(int(d) for d in dims[1:]))


def _label_names(label_names, out_shape, loss: str) -> list:
    k = out_shape[-1] if len(out_shape) > 1 else 1
    if loss.startswith("binary_") and k != 1:  # predict_proba would softmax probabilities
        raise ValueError(
            f"nnjax.save: loss {loss} takes one output per example (class 1's "
            f"{'probability' if loss == 'binary_cross_entropy' else 'logit'}); the model "
            f"gives {k} (for {k} classes: softmax_cross_entropy)"
        )
    n = 2 if k == 1 else k
    if isinstance(label_names, str | bytes):  # list("ab") would name the classes a and b
        raise ValueError(
            f"nnjax.save: label_names must be a list of {n} names, one per class; got the "
            f"string {label_names!r}"
        )
    _refuse_unordered("label_names", label_names, f"a list of {n} names, one per class")
    names = list(range(n)) if label_names is None else list(label_names)
    if len(names) != n:
        raise ValueError(f"nnjax.save: {len(names)} label names for a model with {n} classes")
    names = [n.item() if hasattr(n, "item") else n for n in names]
    odd = [v for v in names if not isinstance(v, LABEL_TYPES)]
    if odd:
        raise ValueError(
            f"nnjax.save: label names must be strings or numbers; got {odd[0]!r} "
            f"({type(odd[0]).__name__})"
        )
    unstorable = [v for v in names if isinstance(v, float) and not math.isfinite(v)]
    if unstorable:  # json would write NaN, which is no JSON (model.json is strict JSON)
        raise ValueError(
            f"nnjax.save: label names must be strings or finite numbers; got {unstorable[0]!r} "
            f"at index {next(i for i, v in enumerate(names) if v is unstorable[0])}"
        )
    repeated = sorted({repr(v) for v in names if names.count(v) > 1})
    if repeated:  # predict could not tell those classes apart by their labels
        raise ValueError(f"nnjax.save: label names repeat: {', '.join(repeated)}")
    texts = [str(v) for v in names]  # predict's array of names, a data file's labels: text
    same = sorted({repr(v) for v, t in zip(names, texts) if texts.count(t) > 1})
    if same:
        raise ValueError(
            f"nnjax.save: label names {', '.join(same)} are the same as text (predict would "
            "name those classes alike, and a data file's labels could not tell them apart)"
        )
    return names


def _refuse_unordered(what: str, values, want: str) -> None:
    """A dict or set given for ``what``: a set has no order, and ``list`` of a dict would
    take its keys ({0: 'cat', 1: 'dog'} would name the classes 0 and 1)."""
    if isinstance(values, dict | set | frozenset):
        kind = "dict (its keys would be taken)" if isinstance(values, dict) else "set (no order)"
        raise ValueError(f"nnjax.save: {what} must be {want}; got a {kind}: {values!r}")


def _feature_names(feature_names) -> list[str] | None:
    """The feature names as ``model.json`` records them (each as text: a DataFrame's int
    columns are matched by ``str``), or a ValueError naming what ``nnjax.load`` would refuse
    or match wrongly: a string (its characters), a dict or set, names repeated as text."""
    if feature_names is None:
        return None
    want = "a list of column names, one per feature"
    if isinstance(feature_names, str | bytes):
        raise ValueError(
            f"nnjax.save: feature_names must be {want}; got the string {feature_names!r}"
        )
    _refuse_unordered("feature_names", feature_names, want)
    try:
        names = list(feature_names)
    except TypeError:
        raise ValueError(
            f"nnjax.save: feature_names must be {want}; got {type(feature_names).__name__}"
        ) from None
    odd = [v for v in names if not isinstance(v, str | numbers.Integral) or isinstance(v, bool)]
    if odd:
        raise ValueError(
            f"nnjax.save: feature names must be strings (or a table's int column labels); got "
            f"{odd[0]!r} ({type(odd[0]).__name__})"
        )
    texts = [str(v) for v in names]
    repeated = sorted({t for t in texts if texts.count(t) > 1})
    if repeated:
        raise ValueError(f"nnjax.save: feature names repeat: {', '.join(map(repr, repeated))}")
    return texts


def _target(target, feature_names) -> str | None:
    """The label column's name (a string, not among the feature names), or a ValueError."""
    if target is None:
        return None
    if not isinstance(target, str):
        raise ValueError(
            f"nnjax.save: target must be the label column's name (a string) or None; got "
            f"{target!r} ({type(target).__name__})"
        )
    if feature_names is not None and target in feature_names:
        raise ValueError(
            f"nnjax.save: target {target!r} is also one of feature_names: a table's column "
            "of that name would be left out as the labels, and the feature found missing"
        )
    return str(target)
