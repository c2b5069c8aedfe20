"""Surrogate-gradient spikes: a Heaviside step forward, a smooth pseudo-derivative backward.

A spiking neuron emits s = H(x), x = v - theta (membrane potential minus threshold), with
H(x) = 1[x >= 0]. Its true derivative is zero almost everywhere, so gradient descent cannot
see through it. :func:`spike` keeps the exact step in the forward pass and, through
``jax.custom_vjp``, substitutes a surrogate derivative g(x) in the backward pass
(Neftci, Mostafa & Zenke 2019). With slope k > 0 (``slope``):

* ``fast_sigmoid`` (SuperSpike, Zenke & Ganguli 2018):  g(x) = 1 / (1 + k|x|)^2
* ``arctan``:          g(x) = (k/2) / (1 + (pi k x / 2)^2)
  (the derivative of 1/2 + arctan(pi k x / 2) / pi)
* ``sigmoid``:         g(x) = k sigma(kx) (1 - sigma(kx)),  sigma(z) = 1 / (1 + e^-z)
* ``triangular``:      g(x) = k max(0, 1 - k|x|)  (unit area, support |x| < 1/k)
* ``straight_through``: g(x) = 1  (the step is treated as the identity; k is unused)

Each ``g`` is available by name in :data:`SURROGATES` for plotting and testing. A nan x
(a diverged membrane) gives s = nan, not a silent "no spike". The surrogate is defined for
reverse mode only (``jax.grad``, ``jax.vjp``, and grad of grad, which differentiates g);
forward mode (``jax.jvp``, ``jax.hessian``) is refused by JAX for a custom_vjp.
"""

import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

Array = jax.Array


def fast_sigmoid(x: Array, slope: float) -> Array:
    """g(x) = 1 / (1 + k|x|)^2 (SuperSpike)."""
    return 1.0 / (1.0 + slope * jnp.abs(x)) ** 2


def arctan(x: Array, slope: float) -> Array:
    """g(x) = (k/2) / (1 + (pi k x / 2)^2)."""
    return (slope / 2.0) / (1.0 + (jnp.pi * slope * x / 2.0) ** 2)


def sigmoid(x: Array, slope: float) -> Array:
    """g(x) = k sigma(kx) (1 - sigma(kx)), computed as k sigma(kx) sigma(-kx): 1 - sigma(kx)
    rounds to 0 for kx > 37 in float64 (17 in float32), so g(x) was 0 where g(-x) is not."""
    z = slope * x
    return slope * (jax.nn.sigmoid(z) * jax.nn.sigmoid(-z))  # exactly even: g(x) = g(-x)


def triangular(x: Array, slope: float) -> Array:
    """g(x) = k max(0, 1 - k|x|)."""
    return slope * jnp.maximum(0.0, 1.0 - slope * jnp.abs(x))


def straight_through(x: Array, slope: float) -> Array:
    """g(x) = 1 (slope unused)."""
    return jnp.ones_like(x)


SURROGATES: dict[str, Callable[[Array, float], Array]] = {
    "fast_sigmoid": fast_sigmoid,
    "arctan": arctan,
    "sigmoid": sigmoid,
    "triangular": triangular,
    "straight_through": straight_through,
}

# each default slope puts the pseudo-derivative at the threshold at g(0) = 1, the
# straight-through estimator's value (tests/test_mutation_learning_audit.py pins it)
DEFAULT_SLOPES: dict[str, float] = {
    "fast_sigmoid": 25.0,
    "arctan": 2.0,
    "sigmoid": 4.0,
    "triangular": 1.0,
    "straight_through": 1.0,
}


def check_surrogate(surrogate: str, slope: float | None) -> float:
    """Validate a surrogate name and slope; return the slope (its default when ``None``)."""
    if not isinstance(surrogate, str) or surrogate not in SURROGATES:  # a list: TypeError
        raise ValueError(f"unknown surrogate {surrogate!r}; valid names: {', '.join(SURROGATES)}")
    if slope is None:
        return DEFAULT_SLOPES[surrogate]
    if isinstance(slope, bool | np.bool_ | str | bytes):  # "1" and True ran as numbers
        raise ValueError(f"surrogate slope must be a positive float, got {slope!r}")
    try:
        k = float(slope)
    except (TypeError, ValueError):
        raise ValueError(f"surrogate slope must be a positive float, got {slope!r}") from None
    if not (k > 0 and k < float("inf")):
        raise ValueError(f"surrogate slope must be > 0 and finite, got {slope!r}")
    return k


@functools.partial(jax.custom_vjp, nondiff_argnums=(1, 2))
def _spike(x, surrogate, slope):
    # nan >= 0 is False: without the inner where a nan potential read as "no spike"
    return jnp.where(x >= 0, 1.0, jnp.where(x < 0, 0.0, jnp.nan)).astype(x.dtype)


def _spike_fwd(x, surrogate, slope):
    return _spike(x, surrogate, slope), x


def _spike_bwd(surrogate, slope, x, g):
    return (g * SURROGATES[surrogate](x, slope).astype(g.dtype),)


_spike.defvjp(_spike_fwd, _spike_bwd)


def spike(x: Array, surrogate: str = "fast_sigmoid", slope: float | None = None) -> Array:
    """s = H(x) = 1[x >= 0] forward; ds/dx := g(x) backward (see the module docstring).

    Shapes: any; the output has x's shape and (floating) dtype (integers become the default
    float); s = nan where x is nan. ``slope`` defaults to :data:`DEFAULT_SLOPES`
    ``[surrogate]``. A bool, complex or non-numeric x is a ValueError (False >= 0 spiked; a
    complex x lost its imaginary part).
    """
    k = check_surrogate(surrogate, slope)
    dtype = _dtype_of(x)
    real = dtype is not None and any(jnp.issubdtype(dtype, t) for t in (jnp.integer, jnp.floating))
    if not real:  # bfloat16 has NumPy kind "V", so kinds are not asked
        raise ValueError(
            f"spike: x must hold real numbers (the potential minus threshold), got "
            f"{type(x).__name__} of dtype {dtype}"
        )
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        x = x.astype(jnp.result_type(float))
    return _spike(x, surrogate, k)


def _dtype_of(x):
    """The dtype ``x`` would have as an array (a tracer's own), or None when it is not
    numeric at all (a string, a ragged or mixed list)."""
    if isinstance(x, jax.Array | jax.core.Tracer):
        return x.dtype
    try:
        dtype = np.asarray(x).dtype
    except (TypeError, ValueError):
        return None
    return dtype if any(jnp.issubdtype(dtype, t) for t in (jnp.number, jnp.bool_)) else None
