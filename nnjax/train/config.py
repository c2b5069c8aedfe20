"""The configuration of a ``fit`` run, as its checkpoints record it, and the check a resume makes.

:func:`run_config` describes a run as JSON-able data (dotted field names in messages):

=================  =========================================================================
field              value
=================  =========================================================================
``model``          ``{"kind": constructor, **kwargs}`` from the model's ``spec`` (e.g.
                   ``model.activation``), or ``{"name": ...}`` when it has none
``loss``           the loss's name, or ``"<function qualname>"`` for a callable
``optimizer``      ``{"name", "learning_rate", hyperparameters...}`` (the defaults of
                   :data:`nnjax.optim.OPTIMIZERS` included); a schedule is
                   ``{"schedule": qualname, "values": eta(t) at t = 0, 1, 10, ..., 10^5}``;
                   an ``optax.GradientTransformation`` passed directly cannot be described:
                   ``{"name": "optax", "describable": False}``
``dtype``          the float dtypes of the params, e.g. ``"float32"``
``devices``        the number of devices a batch is split over
``n_examples``,    the data: its size, a sha256 of X and y (:func:`fit_config`), and the
``data_sha256``,   batching that fixes the order
``batch_size``,
``dropout``
``eval_names``,    the ``eval_data`` sets, in order, and each one's fingerprint
``eval_data``      ``{name: "X float32[80, 2], y int32[80], sha256 <16 hex digits>"}``
                   (:func:`eval_config`; ``eval_data`` absent without sets): added by ``fit``
=================  =========================================================================

:func:`check_resume` refuses a resume whose configuration differs
(:class:`nnjax.runconfig.ConfigMismatchError` naming each field, old and new) unless the
field is overridden: ``fit(..., resume=..., override={"optimizer.learning_rate": 1e-4})`` (or
a list of field names). An override of ``optimizer.name`` covers the whole optimizer group
(another optimizer has other hyperparameters) and starts the optimizer state afresh. The
fields of :data:`FIXED` (and the fields under them, e.g. ``eval_data.test``) cannot be
overridden: the checkpoint would not fit the run.
"""

import hashlib
import inspect
import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import jax
import numpy as np

from nnjax import runconfig
from nnjax.optim import OPTIMIZERS

FIXED = {
    "n_examples": "the checkpoint's step losses and data order are for its own data",
    "data_sha256": "the checkpoint was written for other data",
    "batch_size": "the steps per epoch and the data order follow from it",
    "dtype": "the checkpoint's arrays have their own dtype",
    "eval_names": "the checkpoint's metrics history is of its own evaluation sets",
    "eval_data": "the checkpoint's metrics history was computed on its own evaluation data",
}
SCHEDULE_STEPS = (0, 1, 10, 100, 1000, 10000, 100000)


def fit_config(X, y, batch_size: int | None, dropout: bool) -> dict[str, Any]:
    """The data part of the configuration: the sizes, the data itself (a sha256 of X and y)
    and the batching that fixes the order."""
    h = hashlib.sha256()
    for a in (np.asarray(X), np.asarray(y)):
        h.update(f"{a.dtype}{a.shape}".encode())
        h.update(np.ascontiguousarray(a).tobytes())
    return {
        "n_examples": int(np.shape(X)[0]),
        "batch_size": batch_size,
        "dropout": bool(dropout),
        "data_sha256": h.hexdigest(),
    }


def fingerprint(X, y) -> str:
    """``"X float32[80, 2], y int32[80], sha256 1a2b..."``: the shapes, dtypes and a sha256
    (first 16 hex digits) of the dtypes, shapes and bytes of X and y."""
    h, parts = hashlib.sha256(), []
    for name, a in (("X", np.asarray(X)), ("y", np.asarray(y))):
        h.update(f"{a.dtype}{a.shape}".encode())
        h.update(np.ascontiguousarray(a).tobytes())
        parts.append(f"{name} {a.dtype}{list(a.shape)}")
    return f"{', '.join(parts)}, sha256 {h.hexdigest()[:16]}"


def eval_config(names, evals) -> dict[str, Any]:
    """The evaluation part of the configuration: ``eval_names`` (in order) and, when there
    are sets, ``eval_data`` ``{name: fingerprint(X, y)}`` (:func:`fingerprint`). A resume
    with other sets, or other data under a name, is refused: the checkpoint's metrics
    history is of its own sets (:data:`FIXED`)."""
    out: dict[str, Any] = {"eval_names": [str(n) for n in names]}
    if out["eval_names"]:
        out["eval_data"] = {str(n): fingerprint(X, y) for n, (X, y) in zip(names, evals)}
    return out


def _qualname(f) -> str:
    return f"<function {getattr(f, '__qualname__', None) or type(f).__name__}>"


def describe_model(model) -> dict[str, Any]:
    """``{"kind": name, **kwargs}`` from ``model.spec``; ``{"name": ...}`` without one."""
    spec = getattr(model, "spec", None)
    if spec is not None:
        kind, kwargs = spec
        body = _storable(json.loads(json.dumps(kwargs, default=repr)))  # as read from JSON
        return {"kind": kind, **body} if "kind" not in body else {"kind": kind, "kwargs": body}
    if hasattr(model, "init") and hasattr(model, "apply"):
        return {"name": str(getattr(model, "name", type(model).__name__))}
    return {"name": _qualname(model)}


def describe_learning_rate(learning_rate: float | Callable) -> float | dict:
    """A float as is; a schedule as its name and its values at :data:`SCHEDULE_STEPS` (a nan
    or inf among them as the string ``"nan"``/``"inf"``: JSON has no such float)."""
    if not callable(learning_rate):
        return float(learning_rate)
    try:
        values = [_storable(float(learning_rate(t))) for t in SCHEDULE_STEPS]
    except Exception:  # a schedule that takes something else: its name only
        values = None
    return {"schedule": _qualname(learning_rate), "values": values}


def _storable(value):
    """``value`` with each nan or inf float (nested in dicts and lists too) as the string
    ``"nan"``, ``"inf"`` or ``"-inf"``: JSON has no such float (checkpoint metadata is
    standard JSON, :func:`nnjax.checkpoint.check_metadata`)."""
    if isinstance(value, dict):
        return {k: _storable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_storable(v) for v in value]
    if isinstance(value, float) and not np.isfinite(value):
        return str(value)
    return value


def describe_optimizer(optimizer, learning_rate) -> dict[str, Any]:
    """``{"name", "learning_rate", hyperparameters}`` of a named optimizer, or of one built by
    :func:`nnjax.optim.with_weight_decay` (its ``recipe``: weight decay included); a marker
    for another optax transformation (its hyperparameters live in closures nnjax cannot
    read)."""
    recipe = getattr(optimizer, "recipe", None)
    if isinstance(recipe, dict):
        name, lr = recipe["name"], recipe["learning_rate"]
        extra = {k: v for k, v in recipe.items() if k not in ("name", "learning_rate")}
        return _storable({**describe_optimizer(name, lr), **extra})
    if not isinstance(optimizer, str):
        return {"name": "optax", "describable": False}
    params = inspect.signature(OPTIMIZERS[optimizer]).parameters.values()
    hyper = {p.name: p.default for p in params if p.default is not inspect.Parameter.empty}
    described = {"name": optimizer, "learning_rate": describe_learning_rate(learning_rate)}
    return _storable({**described, **hyper})


def float_dtypes(params) -> str:
    """The float dtypes of the leaves of ``params``, e.g. ``"float32"`` or
    ``"bfloat16,float32"`` (``"none"`` without float leaves)."""
    names = {
        np.dtype(leaf.dtype).name
        for leaf in jax.tree.leaves(params)
        if hasattr(leaf, "dtype") and jax.dtypes.issubdtype(leaf.dtype, np.inexact)
    }
    return ",".join(sorted(names)) or "none"


def run_config(
    *, model, loss, optimizer, learning_rate, params, devices, X, y, batch_size, dropout
) -> dict[str, Any]:
    """The whole configuration of a ``fit`` run (module docstring)."""
    return {
        "model": describe_model(model),
        "loss": loss if isinstance(loss, str) else _qualname(loss),
        "optimizer": describe_optimizer(optimizer, learning_rate),
        "dtype": float_dtypes(params),
        "devices": int(devices),
        **fit_config(X, y, batch_size, dropout),
    }


def _get(config: Mapping, dotted: str):
    node: Any = config
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return runconfig.MISSING
        node = node[part]
    return node


ANY = object()  # an override given by name only: this run's value, whatever it is


def as_override(override) -> dict[str, Any]:
    """``{field: value}`` from a mapping, or ``{field: ANY}`` from an iterable of names."""
    if override is None:
        return {}
    if isinstance(override, Mapping):
        return {str(k): v for k, v in override.items()}
    if isinstance(override, str) or not isinstance(override, Iterable):
        raise ValueError(
            f"fit: override must be a mapping {{field: value}} or a list of field names, "
            f"got {override!r}"
        )
    return {str(k): ANY for k in override}


def _is_schedule(recorded) -> bool:
    """Whether a recorded learning rate is a schedule's record (its rates, not one number)."""
    return isinstance(recorded, Mapping) and "schedule" in recorded


def _check_override(name: str, value, saved: Mapping, current: Mapping) -> None:
    known = {*runconfig.flatten_config(saved), *runconfig.flatten_config(current)}
    prefixes = {k.rsplit(".", i)[0] for k in known for i in range(1, k.count(".") + 1)}
    if fixed_reason(name) is not None:
        raise ValueError(
            f"fit: override {name}: it cannot be changed on resume ({fixed_reason(name)})"
        )
    if name not in known | prefixes:
        raise ValueError(
            f"fit: override {name}: no such field; valid fields: {', '.join(sorted(known))}"
        )
    now = _get(current, name)
    if _is_schedule(now) and not isinstance(value, Mapping):
        return  # a number for a schedule (--override lr=0.02 with --schedule): its peak,
        # which the record (the schedule's rates) cannot be compared with; it is recorded
    if value is not ANY and runconfig.config_diff({"v": value}, {"v": now}):
        raise ValueError(
            f"fit: override {name}={value!r}, but this run has {name}={now!r}: give the run "
            "that value (an override allows a change, it does not make one)"
        )


def check_resume(saved: Mapping, current: Mapping, override=None, source=None) -> list[dict]:
    """Refuse a resume whose configuration differs from the checkpoint's ``saved`` one
    (:class:`~nnjax.runconfig.ConfigMismatchError` naming each field, old and new), except
    the overridden fields. Returns ``[{"field", "old", "new"}, ...]``: the overridden fields
    that do differ (to record; another optimizer as one record ``"optimizer"``, its whole
    description old and new). Fields this run has and the checkpoint lacks at the top level
    (one written by an older nnjax) are not compared."""
    wanted = as_override(override)
    for name, value in wanted.items():
        _check_override(name, value, saved, current)
    allowed = list(wanted)
    if "optimizer.name" in wanted and optimizer_changed(saved, current):
        allowed.append("optimizer")  # another optimizer: other hyperparameters, fresh state
    older = [k for k in current if k not in saved]
    if _get(saved, "optimizer.describable") is False:  # nothing to compare it with
        older.append("optimizer")
    diffs = runconfig.config_diff(saved, current, ignore=[*allowed, *older])
    if diffs:
        raise _mismatch(diffs, source)
    changed = runconfig.config_diff(saved, current, ignore=older)
    records = [
        {"field": f, "old": _jsonable(old), "new": _jsonable(new)}
        for f, old, new in changed
        if any(f == a or f.startswith(a + ".") for a in allowed)
    ]
    if "optimizer" in allowed:  # another optimizer: recorded whole, old and new
        records = [r for r in records if not r["field"].startswith("optimizer.")]
        records.append(
            {"field": "optimizer", "old": saved["optimizer"], "new": current["optimizer"]}
        )
    return records


def _mismatch(diffs: list, source) -> runconfig.ConfigMismatchError:
    """The error naming each differing field; the fields of :data:`FIXED` are said to be
    unchangeable instead of offered as overrides. Another optimizer is named with its
    learning rate, not with every hyperparameter that comes with it."""
    if any(name == "optimizer.name" for name, _, _ in diffs):  # its hyperparameters follow
        keep = ("optimizer.name", "optimizer.learning_rate")
        diffs = [d for d in diffs if not d[0].startswith("optimizer.") or d[0] in keep]
    err = runconfig.ConfigMismatchError(diffs, source)
    fixed = [name for name, _, _ in diffs if fixed_reason(name) is not None]
    if fixed:
        fields = "; ".join(f"{name}: {old!r} -> {new!r}" for name, old, new in diffs)
        why = "; ".join(f"{n} cannot change on a resume ({fixed_reason(n)})" for n in fixed)
        where = f" from {source}" if source else ""
        err.args = (
            f"cannot resume{where}: the configuration differs (checkpoint -> this run): "
            f"{fields}. {why}: resume with the checkpoint's values, or start a new run"
            f"{_x64_hint(diffs)}",
        )
    return err


def _x64_hint(diffs: list) -> str:
    """How to get the checkpoint's 64-bit dtype back when this process computes in 32 bits
    only because JAX's x64 is off (it cannot be asked for any other way)."""
    wide = [old for name, old, _ in diffs if name == "dtype" and str(old).endswith("64")]
    if not wide or jax.config.jax_enable_x64:
        return ""
    return (
        f" (this process computes in 32 bits because JAX's x64 is off: to resume in {wide[0]}, "
        'run jax.config.update("jax_enable_x64", True) first, or set JAX_ENABLE_X64=1)'
    )


def fixed_reason(name: str) -> str | None:
    """Why the field ``name`` (or the group it is in) cannot be overridden; None if it can."""
    for field, why in FIXED.items():
        if name == field or name.startswith(field + "."):
            return why
    return None


def optimizer_changed(saved: Mapping, current: Mapping) -> bool:
    """Another optimizer (by name) than the checkpoint's: its state cannot be reused."""
    return _get(saved, "optimizer.name") != _get(current, "optimizer.name")


def _jsonable(value):
    return None if value is runconfig.MISSING else value
