"""How the engine calls a model: stateless or stateful, a ``Layer`` or a plain function.

The layer protocol (see :mod:`nnjax.layers`): a stateless model's ``apply(params, x, *,
key=None) -> y``; a stateful one (``model.stateful`` true, e.g. BatchNorm's running
statistics) has ``apply(params, x, *, key=None, state, train=False) -> (y, new_state)``.
The engine always threads a model state; a stateless model's state is ``()``, an empty
pytree that costs nothing in the compiled loop. A plain callable counts as a stateless model.

The call itself is :func:`nnjax.layers.apply_model`; this module adds the checks the engine
makes at its boundary.
"""

from collections.abc import Callable

import jax
import numpy as np

from nnjax.layers import apply_model, init_model


def is_stateful(model) -> bool:
    """True for a model whose ``apply`` takes and returns a state (``model.stateful``)."""
    return bool(getattr(model, "stateful", False))


def check_model(model, where: str | None = None) -> None:
    """``model`` an nnjax ``Layer`` (``init`` and ``apply``) or a callable ``apply(params, x,
    *, key=None)``; anything else is a ``ValueError`` naming ``where`` and what was given
    (a model's name as a string is the usual slip: ``nnjax.mlp([...])`` builds one)."""
    if (hasattr(model, "init") and hasattr(model, "apply")) or callable(model):
        return
    shown = repr(model)
    shown = shown if len(shown) <= 60 else shown[:57] + "..."
    hint = " (build one, e.g. nnjax.mlp([64, 10]))" if isinstance(model, str) else ""
    raise ValueError(
        f"{where + ': ' if where else ''}model must be an nnjax Layer (init, apply) or a "
        f"function apply(params, x, *, key=None), got {type(model).__name__} {shown}{hint}"
    )


def as_apply(model) -> Callable:
    """``apply(params, state, x, key=None, train=False) -> (y, new_state)`` for any model."""
    check_model(model)

    def apply(params, state, x, key=None, train=False):
        return apply_model(model, params, state, x, key=key, train=train)

    return apply


def canonical_arrays(tree):
    """``tree`` with every array leaf in the dtype JAX computes in: without x64, a float64
    (int64, ...) leaf becomes float32 (int32, ...), as JAX itself converts a NumPy array;
    leaves already in their canonical dtype (and PRNG keys) are kept as they are.

    A JAX array of float64 made under ``jax.enable_x64(True)`` keeps its dtype once x64 is
    off, and a compiled loop whose carry goes in float64 and comes out float32 fails deep in
    ``lax.scan``; converted here, it trains as its NumPy twin does (float32, rounded to
    nearest). ``None`` (no tree) stays ``None``."""

    def canonical(leaf):
        dtype = getattr(leaf, "dtype", None)
        if dtype is None or jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key):
            return leaf
        want = jax.dtypes.canonicalize_dtype(dtype)
        if want == dtype:
            return leaf
        return jax.numpy.asarray(np.asarray(leaf).astype(want))

    return None if tree is None else jax.tree.map(canonical, tree)


def check_state(model, state, where: str):
    """The state to thread: ``()`` for a stateless model, ``state`` for a stateful one, where
    it is required (a ``ValueError`` says where to get it)."""
    if is_stateful(model):
        if state is None:
            name = getattr(model, "name", "the model")
            raise ValueError(
                f"{where}: {name} is stateful; pass state= (the third value of "
                "model.init(key, input_shape), or a FitResult's state)"
            )
        return state
    if state is None or not jax.tree.leaves(state):
        return ()
    raise ValueError(f"{where}: state= was given but the model is stateless (its state is ())")


def check_params(model, params, state, example_shape, where: str = "fit") -> None:
    """``params`` (and a stateful model's ``state``) have the structure and the leaf shapes
    of ``model.init`` for inputs of shape ``(batch, *example_shape)``: abstractly evaluated
    (``jax.eval_shape``, nothing computed). A ``ValueError`` names the first leaf that
    differs, by its pytree path, with both shapes. A plain apply function has no ``init``:
    nothing to compare."""
    if not (hasattr(model, "init") and hasattr(model, "apply")):
        return
    shape = (-1, *map(int, example_shape))
    try:
        _, want_params, want_state = jax.eval_shape(
            lambda k: init_model(model, k, shape), jax.random.key(0)
        )
    except ValueError as e:
        raise ValueError(f"{where}: model does not accept inputs of shape {shape}: {e}") from None
    compare_tree("params", params, want_params, f"{where}: params do not match the model")
    if getattr(model, "stateful", False):
        try:
            compare_tree("state", state, want_state, f"{where}: state does not match the model")
        except ShapeMismatch as e:  # the params fit X: the state is the culprit
            raise ValueError(str(e)) from None


class ShapeMismatch(ValueError):
    """Params with the model's leaves, one of another shape (:func:`check_params`)."""


def compare_tree(
    what: str, given, expected, where: str, owner: str = "the model's", dtypes: bool = False
) -> None:
    """The first leaf path where ``given`` and ``expected`` (abstract arrays) differ: a
    missing or an extra leaf first, then the first leaf of another shape
    (:class:`ShapeMismatch`), then (``dtypes``) of another dtype, as JAX would hold it (a
    NumPy int64 is int32 without x64), then another tree structure."""
    got = {jax.tree_util.keystr(p): a for p, a in _leaves(given)}
    want = {jax.tree_util.keystr(p): a for p, a in _leaves(expected)}
    for path, a in want.items():
        if path not in got:
            raise ValueError(f"{where}: {what}{path} is missing ({owner} has shape {a.shape})")
    extra = [p for p in got if p not in want]
    if extra:
        raise ValueError(f"{where}: {what}{extra[0]} is not in {owner} {what}")
    for path, a in want.items():
        if np.shape(got[path]) != tuple(a.shape):
            raise ShapeMismatch(
                f"{where}: {what}{path} has shape {np.shape(got[path])}, {owner} has shape "
                f"{tuple(a.shape)}"
            )
    for path, a in want.items() if dtypes else ():
        have, need = _canonical(got[path]), _canonical(a)
        if have != need:
            raise ValueError(f"{where}: {what}{path} has dtype {have}, {owner} has dtype {need}")
    if jax.tree.structure(given) != jax.tree.structure(expected):
        raise ValueError(
            f"{where}: {what} has {owner} leaves but another structure: "
            f"{jax.tree.structure(given)} vs {jax.tree.structure(expected)}"
        )


def _canonical(a) -> np.dtype:
    """The dtype JAX holds ``a`` in (Python and NumPy 64-bit values are 32-bit without x64)."""
    return jax.dtypes.canonicalize_dtype(getattr(a, "dtype", None) or np.result_type(a))


def _leaves(tree):
    return jax.tree_util.tree_flatten_with_path(tree)[0]


def has_dropout(model) -> bool | None:
    """Whether ``model`` holds a ``Dropout`` layer, read from its spec (``Layer.spec``): a
    ``("Dropout", ...)`` spec anywhere in it, or a model of :data:`nnjax.models.MODELS` built
    with ``dropout`` > 0 (mlp, resmlp: the only ones that put Dropout layers in). None when
    it cannot be told: a plain function, a layer without a spec (it holds a Python callable)
    or a constructor outside the registry."""
    spec = getattr(model, "spec", None)
    if not (hasattr(model, "init") and hasattr(model, "apply")) or spec is None:
        return None
    from nnjax.layers.registry import constructors

    return _spec_has_dropout(spec, constructors())


def _spec_has_dropout(spec, known) -> bool | None:
    if not (isinstance(spec, tuple | list) and len(spec) == 2 and isinstance(spec[1], dict)):
        return None
    name, kwargs = spec
    if name == "Dropout" or kwargs.get("dropout"):
        return True
    if name not in known:
        return None
    for value in kwargs.values():
        for child in value if isinstance(value, list) else [value]:
            if isinstance(child, tuple | list) and len(child) == 2 and isinstance(child[1], dict):
                sub = _spec_has_dropout(child, known)
                if sub is None or sub:
                    return sub
    return False
