"""Activation functions: pure ``jnp`` maps, usable as functions or by name.

Every function maps an array of any shape to an array of the same shape
(``softmax``/``log_softmax`` normalise over the last axis). Each one has a
hand-derived NumPy twin in :mod:`nnjax.reference.activations`.
"""

from collections.abc import Callable

import jax
import jax.numpy as jnp

Array = jax.Array


def identity(z: Array) -> Array:
    """f(z) = z."""
    return jnp.asarray(z)


def sigmoid(z: Array) -> Array:
    """f(z) = 1 / (1 + exp(-z)), computed without overflow for large |z|."""
    return jax.nn.sigmoid(z)


def tanh(z: Array) -> Array:
    """f(z) = (e^z - e^-z) / (e^z + e^-z)."""
    return jnp.tanh(z)


def relu(z: Array) -> Array:
    """f(z) = max(0, z). Its derivative is the step 1[z > 0] (0 at z = 0), not max(0, z)."""
    return jax.nn.relu(z)


def leaky_relu(z: Array, negative_slope: float = 0.01) -> Array:
    """f(z) = z if z > 0 else negative_slope * z."""
    return jnp.where(z > 0, z, negative_slope * z)


def elu(z: Array, alpha: float = 1.0) -> Array:
    """f(z) = z if z > 0 else alpha * (exp(z) - 1)."""
    return jax.nn.elu(z, alpha)


def softplus(z: Array) -> Array:
    """f(z) = log(1 + exp(z)), stable: max(z, 0) + log1p(exp(-|z|))."""
    return jnp.logaddexp(z, 0.0)


def gelu(z: Array) -> Array:
    """Exact GELU: f(z) = z * Phi(z) = z/2 * (1 + erf(z / sqrt(2)))."""
    return jax.nn.gelu(z, approximate=False)


def silu(z: Array) -> Array:
    """SiLU (swish): f(z) = z * sigmoid(z)."""
    return jax.nn.silu(z)


def softmax(z: Array) -> Array:
    """f(z)_i = exp(z_i - max z) / sum_j exp(z_j - max z), over the last axis."""
    return jax.nn.softmax(z, axis=-1)


def log_softmax(z: Array) -> Array:
    """f(z)_i = z_i - logsumexp(z), over the last axis."""
    return jax.nn.log_softmax(z, axis=-1)


ACTIVATIONS: dict[str, Callable[[Array], Array]] = {
    "identity": identity,
    "sigmoid": sigmoid,
    "tanh": tanh,
    "relu": relu,
    "leaky_relu": leaky_relu,
    "elu": elu,
    "softplus": softplus,
    "gelu": gelu,
    "silu": silu,
    "softmax": softmax,
    "log_softmax": log_softmax,
}


def get_activation(activation: str | Callable | None) -> Callable[[Array], Array]:
    """Resolve an activation given by name, as a callable, or ``None`` (identity)."""
    if activation is None:
        return identity
    if callable(activation):
        return activation
    if isinstance(activation, str) and activation in ACTIVATIONS:
        return ACTIVATIONS[activation]
    raise ValueError(
        f"unknown activation {activation!r}; valid names: {', '.join(sorted(ACTIVATIONS))}"
    )
