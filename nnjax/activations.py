"""Activation functions: pure ``jnp`` maps, usable as functions or by name.

Every function maps an array of any shape to an array of the same shape
(``softmax``/``log_softmax`` normalise over the last axis, so they need at least 1 dim: a
ValueError naming the function for a 0-d input). Each one has a
hand-derived NumPy twin in :mod:`nnjax.reference.activations`. Integer and bool inputs are
computed in the default float (float32, float64 under x64; the twin computes them in
float64); ``identity`` returns its input as it is.
"""

from collections.abc import Callable

import jax
import jax.numpy as jnp
from jax import lax

Array = jax.Array


def _float(z) -> Array:
    """``z`` as an array of its own floating dtype, or of the default float when it is an
    integer or bool array (``jax.nn.sigmoid`` refuses those, ``jax.nn.relu`` keeps ints).
    A list or tuple of numbers is an array; one of arrays is refused, not stacked: it is most
    likely several branches' outputs."""
    if isinstance(z, list | tuple) and any(hasattr(e, "shape") for e in z):
        raise TypeError(f"an activation takes one array, got a {type(z).__name__} of arrays")
    z = jnp.asarray(z)
    return z if jnp.issubdtype(z.dtype, jnp.inexact) else z.astype(jnp.result_type(float))


def identity(z: Array) -> Array:
    """f(z) = z."""
    return jnp.asarray(z)


def sigmoid(z: Array) -> Array:
    """f(z) = 1 / (1 + exp(-z)), computed without overflow for large |z|."""
    return jax.nn.sigmoid(_float(z))


def tanh(z: Array) -> Array:
    """f(z) = (e^z - e^-z) / (e^z + e^-z)."""
    return jnp.tanh(_float(z))


def relu(z: Array) -> Array:
    """f(z) = max(0, z). Its derivative is the step 1[z > 0] (0 at z = 0), not max(0, z)."""
    return jax.nn.relu(_float(z))


def leaky_relu(z: Array, negative_slope: float = 0.01) -> Array:
    """f(z) = z if z > 0 else negative_slope * z."""
    z = _float(z)
    return jnp.where(z > 0, z, negative_slope * z)


def elu(z: Array, alpha: float = 1.0) -> Array:
    """f(z) = z if z > 0 else alpha * (exp(z) - 1)."""
    return jax.nn.elu(_float(z), alpha)


def softplus(z: Array) -> Array:
    """f(z) = log(1 + exp(z)), stable: max(z, 0) + log1p(exp(-|z|))."""
    return jnp.logaddexp(_float(z), 0.0)


def _limit_at_infinities(f: Callable[[Array], Array], z: Array) -> Array:
    """f(z) for finite z, and max(z, 0) (slope 1 at +inf, 0 at -inf) at z = +-inf, where
    the product z * g(z) of GELU and SiLU is inf * 0 = NaN. f only sees finite values, so
    no NaN reaches the gradient through the branch ``where`` drops."""
    inf = jnp.isinf(z)
    return jnp.where(inf, jnp.maximum(z, 0.0), f(jnp.where(inf, 0.0, z)))


def gelu(z: Array) -> Array:
    """Exact GELU: f(z) = z * Phi(z) = z/2 * (1 + erf(z / sqrt(2))); its limits at +-inf
    (inf and 0, slopes 1 and 0), not NaN."""
    return _limit_at_infinities(lambda v: jax.nn.gelu(v, approximate=False), _float(z))


def silu(z: Array) -> Array:
    """SiLU (swish): f(z) = z * sigmoid(z); its limits at +-inf (inf and 0, slopes 1 and 0),
    not NaN."""
    return _limit_at_infinities(jax.nn.silu, _float(z))


@jax.custom_jvp
def _tie(z: Array, m: Array) -> Array:
    """s = z - m, m the row's max; where m = +inf, the limit with the row's +inf logits
    tied (all going to infinity together): s = 0 on them, not the NaN of inf - inf, and
    -inf elsewhere (NaN stays NaN). ds = dz.

    Computed as s = (min(z, F) - min(m, F)) * k, F the dtype's largest finite number and k
    one per row (1, or F in a row with m = +inf): no select over the whole array. In a +inf
    row, (z - F) * F overflows to -inf for every finite z below F; a logit of exactly F
    beside +inf counts as tied with it."""
    big = jnp.finfo(z.dtype).max
    k = jnp.where(jnp.isposinf(m), big, jnp.ones((), z.dtype))  # (..., 1): one per row
    return (jnp.minimum(z, big) - jnp.minimum(m, big)) * k


# ds = dz, not the product's: a row with a +inf keeps the derivative's formula (finite),
# and the backward pass needs no select over the whole array.
_tie.defjvp(lambda primals, tangents: (_tie(*primals), tangents[0]))


def _last_axis(who: str, z) -> Array:
    """``z`` as a float array (:func:`_float`) with a last axis to normalise over; a 0-d one
    is a ValueError naming ``who`` (JAX's "axis -1 is out of bounds" named no function)."""
    z = _float(z)
    if z.ndim == 0:
        raise ValueError(
            f"{who}: needs an array of at least 1 dim (it normalises over the last axis), got "
            "a 0-d array (shape ())"
        )
    return z


def _shifted(z: Array) -> Array:
    """s_i = z_i - max_j z_j over the last axis (the max not differentiated, as in
    ``jax.nn``), the +inf logits of a row tied (:func:`_tie`)."""
    m = lax.stop_gradient(jnp.max(z, axis=-1, keepdims=True, initial=-jnp.inf))  # K = 0
    return _tie(z, m)


def softmax(z: Array) -> Array:
    """f(z)_i = exp(s_i) / sum_j exp(s_j), s = z - max z, over the last axis;
    df_i/dz_j = f_i (delta_ij - f_j).

    A row with m logits of +inf is its limit with them tied: 1/m on them, 0 elsewhere (not
    NaN). A row of -inf only, or with a NaN, gives NaN."""
    e = jnp.exp(_shifted(_last_axis("softmax", z)))
    return e / jnp.sum(e, axis=-1, keepdims=True)


def log_softmax(z: Array) -> Array:
    """f(z)_i = s_i - log sum_j exp(s_j) = z_i - logsumexp(z), s = z - max z, over the last
    axis; df_i/dz_j = delta_ij - softmax(z)_j.

    A row with m logits of +inf is its limit with them tied: -log m on them, -inf
    elsewhere (not NaN); the derivative keeps its formula there. A row of -inf only (no
    class possible), or with a NaN, gives NaN."""
    s = _shifted(_last_axis("log_softmax", z))
    return s - jnp.log(jnp.sum(jnp.exp(s), axis=-1, keepdims=True))


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
