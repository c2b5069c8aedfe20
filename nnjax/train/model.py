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

from nnjax.layers import apply_model


def is_stateful(model) -> bool:
    """True for a model whose ``apply`` takes and returns a state (``model.stateful``)."""
    return bool(getattr(model, "stateful", False))


def _check_model(model) -> None:
    if hasattr(model, "init") and hasattr(model, "apply"):
        return
    if not callable(model):
        raise ValueError(f"model must be an nnjax Layer or an apply function, got {type(model)}")


def as_apply(model) -> Callable:
    """``apply(params, state, x, key=None, train=False) -> (y, new_state)`` for any model."""
    _check_model(model)

    def apply(params, state, x, key=None, train=False):
        return apply_model(model, params, state, x, key=key, train=train)

    return apply


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
