"""Layers as pairs of pure functions.

A :class:`Layer` is ``(init, apply, name)``:

* ``init(key, input_shape) -> (output_shape, params)`` infers shapes without tracing;
  ``input_shape`` includes the batch axes, e.g. ``(-1, 64)``.
* ``apply(params, x, *, key=None) -> y`` maps a batch ``(..., features)``.

Params are plain pytrees (``{"W": (in, out), "b": (out,)}`` for ``Dense``); hyperparameters
live in the closure. :func:`serial` composes layers, so a network is literally
a^l = f^l(W^l a^{l-1} + b^l) applied in order.
"""

import math
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from nnjax.activations import get_activation
from nnjax.initializers import get_initializer

Array = jax.Array
Shape = tuple[int, ...]


class Layer(NamedTuple):
    """A layer: ``init(key, input_shape) -> (output_shape, params)`` and
    ``apply(params, x, *, key=None) -> y``; ``name`` is used in error messages."""

    init: Callable[[Array, Shape], tuple[Shape, Any]]
    apply: Callable[..., Array]
    name: str = "layer"


def default_float() -> jnp.dtype:
    """float32, or float64 when ``jax_enable_x64`` is on."""
    return jnp.dtype(jax.dtypes.canonicalize_dtype(jnp.float64))


def _check_shape(name: str, input_shape: Sequence[int], min_ndim: int = 1) -> Shape:
    try:
        shape = tuple(int(d) for d in input_shape)
    except TypeError:
        raise ValueError(f"{name}: input_shape must be ints, got {input_shape!r}") from None
    if len(shape) < min_ndim:
        raise ValueError(f"{name}: needs an input of at least {min_ndim} dims, got {shape}")
    return shape


def Dense(
    features: int,
    *,
    use_bias: bool = True,
    W_init: str | Callable = "glorot_normal",
    b_init: str | Callable = "zeros",
    dtype: Any = None,
) -> Layer:
    """Affine map y = x W + b.

    Shapes: x (..., in) -> y (..., features); params ``{"W": (in, features), "b": (features,)}``
    (no ``"b"`` when ``use_bias=False``). ``dtype`` defaults to :func:`default_float`.
    """
    if not isinstance(features, int) or isinstance(features, bool) or features < 1:
        raise ValueError(f"Dense: features must be a positive int, got {features!r}")
    w_init, bias_init = get_initializer(W_init), get_initializer(b_init)
    name = f"Dense({features})"

    def init(key, input_shape):
        shape = _check_shape(name, input_shape)
        if shape[-1] < 1:
            raise ValueError(f"{name}: input features must be >= 1, got shape {shape}")
        dt = jnp.dtype(dtype) if dtype is not None else default_float()
        k_w, k_b = jax.random.split(key)
        params = {"W": w_init(k_w, (shape[-1], features), dt)}
        if use_bias:
            params["b"] = bias_init(k_b, (features,), dt)
        return shape[:-1] + (features,), params

    def apply(params, x, *, key=None):
        n_in = params["W"].shape[0]
        if x.ndim < 1 or x.shape[-1] != n_in:
            raise ValueError(f"{name}: expected input of shape (..., {n_in}), got {tuple(x.shape)}")
        y = x @ params["W"]
        return y + params["b"] if use_bias else y

    return Layer(init, apply, name)


def Activation(activation: str | Callable) -> Layer:
    """Elementwise y = f(x) (softmax/log_softmax act on the last axis); no params."""
    fn = get_activation(activation)
    name = f"Activation({activation if isinstance(activation, str) else fn.__name__})"

    def init(key, input_shape):
        return _check_shape(name, input_shape, 0), {}

    def apply(params, x, *, key=None):
        return fn(x)

    return Layer(init, apply, name)


def Flatten() -> Layer:
    """Keep the leading (batch) axis, flatten the rest: (B, d1, d2, ...) -> (B, d1*d2*...)."""
    name = "Flatten"

    def init(key, input_shape):
        shape = _check_shape(name, input_shape, 2)
        return (shape[0], math.prod(shape[1:])), {}

    def apply(params, x, *, key=None):
        if x.ndim < 2:
            raise ValueError(f"{name}: expected a batch of at least 2 dims, got {tuple(x.shape)}")
        return x.reshape(x.shape[0], -1)

    return Layer(init, apply, name)


def Dropout(rate: float) -> Layer:
    """Inverted dropout: y = x * m / (1 - rate), m ~ Bernoulli(1 - rate) per element.

    Active only when a ``key`` is passed to ``apply``; without one it is the identity
    (evaluation mode). No params.
    """
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"Dropout: rate must be in [0, 1), got {rate}")
    name = f"Dropout({rate})"

    def init(key, input_shape):
        return _check_shape(name, input_shape, 0), {}

    def apply(params, x, *, key=None):
        if key is None or rate == 0.0:
            return x
        keep = jax.random.bernoulli(key, 1.0 - rate, x.shape)
        return jnp.where(keep, x / (1.0 - rate), jnp.zeros_like(x))

    return Layer(init, apply, name)


def serial(*layers: Layer) -> Layer:
    """Compose layers in order: apply(params, x) = f_n(... f_2(f_1(x))).

    Params are a list with one entry per layer. A key passed to ``apply`` is split
    into one key per layer. Errors from a sublayer are re-raised naming its position.
    """
    if not layers:
        raise ValueError("serial: needs at least one layer")
    for i, layer in enumerate(layers):
        if not isinstance(layer, Layer):
            raise ValueError(f"serial: argument {i} is not a Layer but {type(layer).__name__}")
    name = "serial(" + ", ".join(layer.name for layer in layers) + ")"

    def _where(i):
        return f"layer {i} ({layers[i].name})"

    def init(key, input_shape):
        params = []
        shape = input_shape
        for i, (layer, k) in enumerate(zip(layers, jax.random.split(key, len(layers)))):
            try:
                shape, p = layer.init(k, shape)
            except ValueError as e:
                raise ValueError(f"{_where(i)}: {e}") from None
            params.append(p)
        return shape, params

    def apply(params, x, *, key=None):
        if len(params) != len(layers):
            raise ValueError(f"serial: {len(layers)} layers but params for {len(params)}")
        keys = jax.random.split(key, len(layers)) if key is not None else [None] * len(layers)
        for i, (layer, p, k) in enumerate(zip(layers, params, keys)):
            try:
                x = layer.apply(p, x, key=k)
            except ValueError as e:
                raise ValueError(f"{_where(i)}: {e}") from None
        return x

    return Layer(init, apply, name)


LAYERS: dict[str, Callable[..., Layer]] = {
    "Dense": Dense,
    "Activation": Activation,
    "Flatten": Flatten,
    "Dropout": Dropout,
    "serial": serial,
}
