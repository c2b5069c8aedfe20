"""The layer protocol, its helpers, and the basic layers (Dense, Activation, Flatten, Reshape,
Identity, Dropout) with :func:`serial`.

See :mod:`nnjax.layers` for the protocol (stateless and stateful layers, specs); the checks
and dtype rules every layer shares are in :mod:`nnjax.layers.checks`.
"""

import math
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from nnjax.activations import ACTIVATIONS, get_activation
from nnjax.layers.checks import (
    ParamsError,
    as_array,
    as_real,
    bias_initializer,
    check_dtype,
    check_features,
    check_key,
    check_known_sizes,
    check_param_keys,
    check_param_shape,
    check_shape,
    dtype_name,
    flag,
    float_result_type,
    init_bias,
    located,
    param_dtype,
    positive_int,
    split_key,
    weight_initializer,
)

Array = jax.Array
Shape = tuple[int, ...]


class Layer(NamedTuple):
    """A layer as pure functions (the full protocol is in :mod:`nnjax.layers`).

    Stateless (``stateful=False``): ``init(key, input_shape) -> (output_shape, params)`` and
    ``apply(params, x, *, key=None) -> y``.
    Stateful (``stateful=True``): ``init(key, input_shape) -> (output_shape, params, state)``
    and ``apply(params, x, *, key=None, state, train=False) -> (y, new_state)``.
    ``name`` is used in error messages; ``spec`` is ``(constructor_name, kwargs)`` with
    JSON-able kwargs, or None when the layer holds an arbitrary Python callable.
    """

    init: Callable
    apply: Callable
    name: str = "layer"
    stateful: bool = False
    spec: Any = None


def make_spec(constructor: str, /, **kwargs) -> tuple[str, dict] | None:
    """``(constructor, kwargs)``, or None when a kwarg is a callable or a None spec is nested
    (the caller passes nested specs as values; ``_NO_SPEC`` marks a missing one)."""
    for value in kwargs.values():
        if value is _NO_SPEC or callable(value):
            return None
        if isinstance(value, list) and any(v is _NO_SPEC for v in value):
            return None
    return (constructor, kwargs)


_NO_SPEC = object()


def spec_of(layer: Layer):
    """A child's spec for :func:`make_spec`: its spec, or a marker that makes the parent's None."""
    return _NO_SPEC if layer.spec is None else layer.spec


def init_model(model: Layer, key, input_shape) -> tuple[Shape, Any, Any]:
    """``(output_shape, params, state)`` for any layer; ``state`` is ``()`` when stateless."""
    if model.stateful:
        return model.init(key, input_shape)
    out_shape, params = model.init(key, input_shape)
    return out_shape, params, ()


def apply_model(model, params, state, x, *, key=None, train: bool = False):
    """``(y, new_state)`` for any layer (anything with ``init`` and ``apply``; stateful when
    its ``stateful`` is true), or for a plain callable ``apply(params, x, *, key)`` (taken as
    stateless). Stateless: ``(model.apply(params, x, key=key), state)``."""
    if not (hasattr(model, "init") and hasattr(model, "apply")):
        return model(params, x, key=key), state
    if getattr(model, "stateful", False):
        return model.apply(params, x, key=key, state=state, train=train)
    return model.apply(params, x, key=key), state


def split_keys(key, n: int, name: str = "layer") -> list:
    """``n`` keys from ``key``, or ``n`` Nones when ``key`` is None (a key that is neither
    is a TypeError naming the layer ``name``: :func:`~nnjax.layers.checks.check_key`)."""
    if check_key(name, key, optional=True) is None:
        return [None] * n
    return list(jax.random.split(key, n))


def Dense(
    features: int,
    *,
    use_bias: bool = True,
    W_init: str | Callable = "glorot_normal",
    b_init: str | Callable = "zeros",
    dtype: Any = None,
) -> Layer:
    """Affine map y = x W + b (``torch.nn.Linear`` with weight W^T, bias b; its init draws
    W and b from U(-1/sqrt(in), 1/sqrt(in)), here glorot_normal W and zero b by default).

    Shapes: x (..., in) -> y (..., features); params ``{"W": (in, features), "b": (features,)}``
    (no ``"b"`` when ``use_bias=False``). ``dtype``: a floating dtype, default
    :func:`default_float`; ``b_init`` must not be fan-based (glorot/he/lecun).

    ``apply`` takes an array-like x (a nested list) and checks the params against the layer:
    exactly these keys, W of shape (in, features), b of shape (features,): a
    :class:`~nnjax.layers.checks.ParamsError` (a ValueError) naming the layer and the param
    otherwise; then x's last axis must have W's size in: a plain ValueError naming the layer
    and the input (x, not the params, is the culprit). Shapes are static: nothing is
    computed, under jit, grad and vmap too.
    """
    features = positive_int("Dense", "features", features)
    name = f"Dense({features})"
    use_bias = flag(name, "use_bias", use_bias)
    check_dtype(name, dtype)
    w_init = weight_initializer(name, "W_init", W_init)
    bias_init = bias_initializer(name, b_init)

    def init(key, input_shape):
        shape = check_shape(name, input_shape)
        check_features(name, shape)
        dt = param_dtype(dtype, name)
        k_w, k_b = split_key(name, key)
        params = {"W": located(f"{name}: W", w_init, k_w, (shape[-1], features), dt)}
        if use_bias:
            params["b"] = init_bias(name, bias_init, k_b, features, dt)
        return shape[:-1] + (features,), params

    keys = ("W", "b") if use_bias else ("W",)

    def apply(params, x, *, key=None):
        x = as_array(name, x)
        check_param_keys(name, params, keys)
        w = tuple(jnp.shape(params["W"]))
        if len(w) != 2 or w[1] != features:  # W is another layer's: say what it should be
            n = x.shape[-1] if x.ndim else "in"
            why = f"input features {n} -> {features} units"
            check_param_shape(name, params, "W", (n, features), why)
        if x.ndim < 1 or x.shape[-1] != w[0]:
            raise ValueError(f"{name}: expected input of shape (..., {w[0]}), got {tuple(x.shape)}")
        if use_bias:
            check_param_shape(name, params, "b", (features,), "one per unit")
        y = x @ params["W"]
        return y + jax.lax.broadcast_to_rank(params["b"], y.ndim) if use_bias else y

    spec = make_spec(
        "Dense",
        features=features,
        use_bias=bool(use_bias),
        W_init=W_init,
        b_init=b_init,
        dtype=dtype_name(dtype),
    )
    return Layer(init, apply, name, False, spec)


def Activation(activation: str | Callable) -> Layer:
    """Elementwise y = f(x) (softmax/log_softmax act on the last axis: at least 1 dim); no
    params. ``activation``: a name of :data:`nnjax.activations.ACTIVATIONS` (an unknown one is
    a ValueError naming the layer), None (the identity, spec ``("Activation", {"activation":
    "identity"})``) or any callable (a function, ``functools.partial``, an object with
    ``__call__``; its ``spec`` is None)."""
    try:
        fn = get_activation(activation)
    except ValueError as e:
        raise ValueError(f"Activation: {e}") from None
    label = activation if isinstance(activation, str) else _callable_name(fn)
    name = f"Activation({label})"
    min_ndim = 1 if isinstance(activation, str) and activation in ("softmax", "log_softmax") else 0

    def init(key, input_shape):
        return check_shape(name, input_shape, min_ndim), {}

    def apply(params, x, *, key=None):
        return fn(as_array(name, x))

    if activation is None:  # get_activation's identity: describable, so a spec too
        activation = "identity"
    named = isinstance(activation, str) and activation in ACTIVATIONS
    spec = make_spec("Activation", activation=activation) if named else None
    return Layer(init, apply, name, False, spec)


def _callable_name(fn) -> str:
    """A callable's ``__name__``, that of a ``functools.partial``'s function, else its type's
    name: a partial or a callable object has no ``__name__``."""
    name = getattr(fn, "__name__", None) or getattr(getattr(fn, "func", None), "__name__", None)
    return name if isinstance(name, str) else type(fn).__name__


def Flatten() -> Layer:
    """Keep the leading (batch) axis, flatten the rest: (B, d1, d2, ...) -> (B, d1*d2*...).
    The sizes after the batch axis must be known at init (no -1 there).

    Row-major, so a channels-last (B, H, W, C) gives feature (h W + w) C + c, where
    ``torch.nn.Flatten`` on (B, C, H, W) gives (c H + h) W + w: the ``Dense`` after it takes
    torch's ``Linear`` weight (F, C H W) as ``w.reshape(F, C, H, W).permute(2, 3, 1, 0)
    .reshape(H W C, F)``, not ``w.T``."""
    name = "Flatten"

    def init(key, input_shape):
        shape = check_shape(name, input_shape, 2)
        check_known_sizes(name, shape)
        return (shape[0], math.prod(shape[1:])), {}

    def apply(params, x, *, key=None):
        x = as_array(name, x)
        if x.ndim < 2:
            raise ValueError(f"{name}: expected a batch of at least 2 dims, got {tuple(x.shape)}")
        return x.reshape(x.shape[0], math.prod(x.shape[1:]))  # -1 fails on a batch of 0

    return Layer(init, apply, name, False, make_spec("Flatten"))


def Reshape(shape: Sequence[int]) -> Layer:
    """Keep the leading (batch) axis, reshape the rest: (B, ...) -> (B, *shape).

    ``shape`` holds at least one positive int (``()`` would drop the feature axis every
    layer after it needs); the per-example sizes must agree (checked at init, where they
    must be known, and at apply). E.g. ``Reshape((40, 1))`` turns MNIST-1D's (B, 40) into
    a (B, 40, 1) sequence.
    """
    try:
        target = tuple(positive_int("Reshape", "each size in shape", d) for d in shape)
    except TypeError:
        raise ValueError(f"Reshape: shape must be a sequence of ints, got {shape!r}") from None
    if not target:
        raise ValueError(
            "Reshape: shape must hold at least one size, got () (a (B,) output has no "
            "feature axis; Flatten makes (B, n))"
        )
    name = f"Reshape({target})"
    size = math.prod(target)

    def check(in_shape):
        if len(in_shape) < 2 or math.prod(in_shape[1:]) != size:
            raise ValueError(
                f"{name}: input shape {in_shape} has per-example shape {in_shape[1:]} "
                f"of size {math.prod(in_shape[1:])}, but {target} needs size {size}"
            )

    def init(key, input_shape):
        in_shape = check_shape(name, input_shape, 2)
        check_known_sizes(name, in_shape)
        check(in_shape)
        return (in_shape[0], *target), {}

    def apply(params, x, *, key=None):
        x = as_array(name, x)
        check(tuple(x.shape))
        return x.reshape(x.shape[0], *target)

    return Layer(init, apply, name, False, make_spec("Reshape", shape=list(target)))


def Identity() -> Layer:
    """y = x, for any input (an array or a tuple of arrays); no params. The skip branch of
    ``serial(FanOut(2), parallel(f, Identity()), FanInSum())``."""

    def init(key, input_shape):
        return input_shape, {}

    def apply(params, x, *, key=None):
        return x

    return Layer(init, apply, "Identity", False, make_spec("Identity"))


def Dropout(rate: float) -> Layer:
    """Inverted dropout: y = x * m / (1 - rate), m ~ Bernoulli(1 - rate) per element.

    Active only when a ``key`` is passed to ``apply``; without one it is the identity
    (evaluation mode). The same map as ``torch.nn.functional.dropout(x, rate, training)``,
    with the key in the role of torch's ``training`` flag (and its global generator).
    No params. ``rate``: a real number (Python or NumPy) in [0, 1).
    An integer or bool input is computed in the default float (:func:`float_result_type`,
    as the activations and AvgPool), with or without a key: never rounded back to ints.
    """
    value = as_real(rate)
    if value is None or not 0.0 <= value < 1.0:
        raise ValueError(f"Dropout: rate must be in [0, 1), got {rate!r}")
    rate = value
    name = f"Dropout({rate})"

    def init(key, input_shape):
        return check_shape(name, input_shape, 0), {}

    def apply(params, x, *, key=None):
        x = as_array(name, x)
        if not jnp.issubdtype(jnp.result_type(x), jnp.inexact):
            x = jnp.asarray(x, float_result_type(x))
        if check_key(name, key, optional=True) is None or rate == 0.0:
            return x
        keep = jax.random.bernoulli(key, 1.0 - rate, x.shape)
        return jnp.where(keep, x / (1.0 - rate), jnp.zeros_like(x))

    return Layer(init, apply, name, False, make_spec("Dropout", rate=float(rate)))


def check_layers(who: str, layers: Sequence) -> None:
    """A ValueError unless ``layers`` is a non-empty sequence of :class:`Layer`."""
    if not layers:
        raise ValueError(f"{who}: needs at least one layer")
    for i, layer in enumerate(layers):
        if not isinstance(layer, Layer):
            raise ValueError(f"{who}: argument {i} is not a Layer but {type(layer).__name__}")


def check_children(who: str, params, n: int, what: str) -> None:
    """A ValueError naming the params unless they are a list/tuple with one entry per child
    (``what``: "layer" or "branch"), as ``init`` makes them."""
    if not isinstance(params, list | tuple) or len(params) != n:
        kind = type(params).__name__
        got = f"a {kind} of {len(params)}" if isinstance(params, list | tuple) else f"a {kind}"
        raise ParamsError(
            f"{who}: params must be a list with one entry per {what} ({n}, from init), got {got}"
        )


def check_state(who: str, state, n: int) -> None:
    """A ValueError unless ``state`` is a list/tuple with one entry per child."""
    if not isinstance(state, list | tuple) or len(state) != n:
        got = f"{len(state)} entries" if isinstance(state, list | tuple) else repr(state)
        raise ValueError(f"{who}: state must be a list with {n} entries (from init), got {got}")


def serial(*layers: Layer) -> Layer:
    """Compose layers in order: apply(params, x) = f_n(... f_2(f_1(x))).

    Params are a list with one entry per layer; so is the state when a child is stateful
    (``()`` for each stateless child), and then ``serial`` is stateful too. A key passed to
    ``apply`` is split into one key per layer. Errors from a sublayer are re-raised naming
    its position: ``layer i (name): ...``.
    """
    check_layers("serial", layers)
    name = "serial(" + ", ".join(layer.name for layer in layers) + ")"
    stateful = any(layer.stateful for layer in layers)
    where = [f"layer {i} ({layer.name})" for i, layer in enumerate(layers)]

    def init(key, input_shape):
        params, states, shape = [], [], input_shape
        for i, (layer, k) in enumerate(zip(layers, split_key(name, key, len(layers)))):
            shape, p, s = located(where[i], init_model, layer, k, shape)
            params.append(p)
            states.append(s)
        return (shape, params, states) if stateful else (shape, params)

    def run(params, x, key, state, train):
        check_children(name, params, len(layers), "layer")
        new_state = []
        for i, (layer, p, s, k) in enumerate(
            zip(layers, params, state, split_keys(key, len(layers), name))
        ):
            x, s = located(where[i], apply_model, layer, p, s, x, key=k, train=train)
            new_state.append(s)
        return x, new_state

    if stateful:

        def apply(params, x, *, key=None, state=None, train=False):
            check_state(name, state, len(layers))
            return run(params, x, key, state, train)
    else:

        def apply(params, x, *, key=None):
            return run(params, x, key, [()] * len(layers), False)[0]

    spec = make_spec("serial", layers=[spec_of(layer) for layer in layers])
    return Layer(init, apply, name, stateful, spec)
