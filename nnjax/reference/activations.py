"""Activations and their derivatives, by hand, in NumPy.

``ACTIVATIONS[name] = (f, df)``: ``f(z)`` is the value and ``df(z)`` the derivative
f'(z), elementwise, with the same shape as ``z``. ``softmax`` and ``log_softmax`` are not
elementwise (each output depends on the whole last axis), so their ``df(z)`` is the full
Jacobian over the last axis, shape ``z.shape + (K,)`` with ``J[..., i, j] = d f_i / d z_j``;
use :func:`vjp` to backpropagate through them without building it. :func:`vjp` works for
every name: ``vjp(name, z, dout) = dout * f'(z)`` for the elementwise ones.

The ReLU derivative
-------------------
ReLU is f(z) = max(0, z). Its derivative is the step function

    f'(z) = 1[z > 0]  (1 for z > 0, 0 for z < 0),

and at the kink z = 0, where f has no derivative, we take 0 (the subgradient end at 0):
the same value ``jax.grad(jax.nn.relu)(0.0)`` returns, so the twin and ``jax.grad`` agree
everywhere, z = 0 included. The formula max(0, z), sometimes written for the derivative
(the seed article writes it so), is ReLU itself, not its derivative: it is wrong for every
z > 0 except z = 1. :data:`relu_derivative_wrong` keeps that formula, clearly named, so a
test can show that it fails the finite-difference check while :func:`relu_derivative` passes.

Conventions at the other kinks follow the JAX functions the twin mirrors: leaky_relu'(0) =
negative_slope and elu'(0) = alpha (their ``where(z > 0, ...)`` picks the left branch at 0).
"""

import math
from collections.abc import Callable

import numpy as np

LEAKY_SLOPE = 0.01
ELU_ALPHA = 1.0
_SQRT_HALF = math.sqrt(0.5)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_erfc = np.frompyfunc(math.erfc, 1, 1)


def _arr(z) -> np.ndarray:
    z = np.asarray(z)
    return z if np.issubdtype(z.dtype, np.inexact) else z.astype(np.float64)


def identity(z):
    """f(z) = z."""
    return _arr(z).copy()


def identity_derivative(z):
    """f'(z) = 1."""
    return np.ones_like(_arr(z))


def sigmoid(z):
    """f(z) = 1 / (1 + e^-z), as e^z / (1 + e^z) for z < 0 so that e^-z never overflows."""
    z = _arr(z)
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(z.dtype)


def sigmoid_derivative(z):
    """f'(z) = sigma(z) (1 - sigma(z))."""
    s = sigmoid(z)
    return s * (1.0 - s)


def tanh(z):
    """f(z) = tanh z."""
    return np.tanh(_arr(z))


def tanh_derivative(z):
    """f'(z) = 1 - tanh(z)^2, computed as (1 - t)(1 + t): no cancellation in t^2 near |t| = 1
    (JAX's rule uses the same factored form)."""
    t = np.tanh(_arr(z))
    return (1.0 - t) * (1.0 + t)


def relu(z):
    """f(z) = max(0, z)."""
    z = _arr(z)
    return np.maximum(z, np.zeros_like(z))


def relu_derivative(z):
    """f'(z) = 1[z > 0]: 1 for z > 0, 0 for z <= 0 (0 at the kink, as jax.grad gives)."""
    z = _arr(z)
    return (z > 0).astype(z.dtype)


relu_derivative_wrong = lambda z: np.maximum(0, _arr(z))  # noqa: E731
"""WRONG on purpose: max(0, z) is ReLU itself, not its derivative (kept for the test)."""


def leaky_relu(z, negative_slope: float = LEAKY_SLOPE):
    """f(z) = z for z > 0, negative_slope * z otherwise."""
    z = _arr(z)
    return np.where(z > 0, z, negative_slope * z)


def leaky_relu_derivative(z, negative_slope: float = LEAKY_SLOPE):
    """f'(z) = 1 for z > 0, negative_slope for z <= 0."""
    z = _arr(z)
    return np.where(z > 0, 1.0, negative_slope).astype(z.dtype)


def elu(z, alpha: float = ELU_ALPHA):
    """f(z) = z for z > 0, alpha (e^z - 1) otherwise."""
    z = _arr(z)
    return np.where(z > 0, z, alpha * np.expm1(np.minimum(z, 0.0)))


def elu_derivative(z, alpha: float = ELU_ALPHA):
    """f'(z) = 1 for z > 0, alpha e^z for z <= 0."""
    z = _arr(z)
    return np.where(z > 0, 1.0, alpha * np.exp(np.minimum(z, 0.0))).astype(z.dtype)


def softplus(z):
    """f(z) = log(1 + e^z) = max(z, 0) + log1p(e^-|z|) (finite for any z)."""
    z = _arr(z)
    return np.maximum(z, 0.0) + np.log1p(np.exp(-np.abs(z)))


def softplus_derivative(z):
    """f'(z) = sigma(z) (so f'(0) = 1/2)."""
    return sigmoid(z)


def _phi_cdf(z):
    """Phi(z) = erfc(-z / sqrt 2) / 2 (erfc keeps the left tail accurate)."""
    z = _arr(z)
    # asarray: on a 0-d z the ufunc returns a bare Python float, which has no astype
    return 0.5 * np.asarray(_erfc(-z * _SQRT_HALF), dtype=z.dtype)


def _at_infinities(z, finite, value_at_inf):
    """``finite`` (computed at 0 in place of +-inf, so inf * 0 never runs) where z is finite,
    ``value_at_inf`` at z = +-inf."""
    inf = np.isinf(z)
    return np.where(inf, value_at_inf, finite(np.where(inf, 0.0, z))).astype(z.dtype)


def gelu(z):
    """Exact GELU: f(z) = z Phi(z), Phi the standard normal CDF; the limits max(z, 0) at
    z = +-inf (inf and 0), where z Phi(z) would be inf * 0."""
    z = _arr(z)
    return _at_infinities(z, lambda v: v * _phi_cdf(v), np.maximum(z, 0.0))


def gelu_derivative(z):
    """f'(z) = Phi(z) + z phi(z), phi(z) = e^{-z^2/2} / sqrt(2 pi); the limits 1 and 0 at
    z = +inf and -inf. For |z| > 1.3e154, z^2 overflows to inf and phi(z) is exactly 0, as it
    is in floats long before: no overflow warning."""
    z = _arr(z)

    def finite(v):
        with np.errstate(over="ignore"):  # v * v = inf: e^-inf = 0, the right phi(v)
            return _phi_cdf(v) + v * _INV_SQRT_2PI * np.exp(-0.5 * v * v)

    return _at_infinities(z, finite, z > 0)


def silu(z):
    """f(z) = z sigma(z); the limits max(z, 0) at z = +-inf (inf and 0)."""
    z = _arr(z)
    return _at_infinities(z, lambda v: v * sigmoid(v), np.maximum(z, 0.0))


def silu_derivative(z):
    """f'(z) = sigma(z) + z sigma(z)(1 - sigma(z)) = sigma(z) (1 + z (1 - sigma(z))); the
    limits 1 and 0 at z = +inf and -inf."""
    z = _arr(z)

    def finite(v):
        s = sigmoid(v)
        return s * (1.0 + v * (1.0 - s))

    return _at_infinities(z, finite, z > 0)


def _shifted(z):
    """s = z - m, m = max_j z_j over the last axis. A row whose max is +inf is taken at its
    limit with its m logits of +inf tied (going to infinity together): s = 0 on them and
    -inf elsewhere, where z - m would give NaN (inf - inf). NaN stays NaN."""
    m = np.max(z, axis=-1, keepdims=True, initial=-np.inf)
    with np.errstate(invalid="ignore"):  # inf - inf in the rows replaced below
        s = z - m
    tied = np.where(z == m, 0.0, -np.inf).astype(z.dtype)
    return np.where(np.isposinf(m), tied, s)


def _last_axis(who: str, z) -> np.ndarray:
    """``z`` as an array with a last axis (a 0-d one is a ValueError naming ``who``, as
    :func:`nnjax.activations.softmax` raises)."""
    z = _arr(z)
    if z.ndim == 0:
        raise ValueError(
            f"{who}: needs an array of at least 1 dim (it normalises over the last axis), got "
            "a 0-d array (shape ())"
        )
    return z


def softmax(z):
    """f(z)_i = e^{s_i} / sum_j e^{s_j}, s = z - max_j z_j, over the last axis. A row with m
    logits of +inf: 1/m on them, 0 elsewhere (the limit, :func:`_shifted`)."""
    e = np.exp(_shifted(_last_axis("softmax", z)))
    return e / np.sum(e, axis=-1, keepdims=True)


def softmax_jacobian(z):
    """J_ij = d f_i / d z_j = f_i (delta_ij - f_j), f = softmax(z); shape z.shape + (K,)."""
    s = softmax(z)
    return s[..., :, None] * (np.eye(s.shape[-1], dtype=s.dtype) - s[..., None, :])


def log_softmax(z):
    """f(z)_i = s_i - log sum_j e^{s_j}, s = z - max_j z_j, over the last axis. A row with m
    logits of +inf: -log m on them, -inf elsewhere (the limit, :func:`_shifted`)."""
    s = _shifted(_last_axis("log_softmax", z))
    return s - np.log(np.sum(np.exp(s), axis=-1, keepdims=True))


def log_softmax_jacobian(z):
    """J_ij = d f_i / d z_j = delta_ij - p_j, p = softmax(z); shape z.shape + (K,)."""
    s = softmax(z)
    return np.eye(s.shape[-1], dtype=s.dtype) - s[..., None, :]


ACTIVATIONS: dict[str, tuple[Callable, Callable]] = {
    "identity": (identity, identity_derivative),
    "sigmoid": (sigmoid, sigmoid_derivative),
    "tanh": (tanh, tanh_derivative),
    "relu": (relu, relu_derivative),
    "leaky_relu": (leaky_relu, leaky_relu_derivative),
    "elu": (elu, elu_derivative),
    "softplus": (softplus, softplus_derivative),
    "gelu": (gelu, gelu_derivative),
    "silu": (silu, silu_derivative),
    "softmax": (softmax, softmax_jacobian),
    "log_softmax": (log_softmax, log_softmax_jacobian),
}

NOT_ELEMENTWISE = frozenset({"softmax", "log_softmax"})


def _check_name(name: str) -> None:
    if name not in ACTIVATIONS:
        raise ValueError(
            f"unknown activation {name!r}; valid names: {', '.join(sorted(ACTIVATIONS))}"
        )


def vjp(name: str, z, dout):
    """Backpropagate ``dout = dJ/df(z)`` to ``dJ/dz`` (same shape as z).

    elementwise f:  dz = dout * f'(z)
    softmax:        dz = s * (dout - sum_j dout_j s_j),  s = softmax(z)
    log_softmax:    dz = dout - s * sum_j dout_j
    """
    _check_name(name)
    z, dout = _arr(z), np.asarray(dout)
    if dout.shape != z.shape:
        raise ValueError(f"vjp({name!r}): dout shape {dout.shape} != z shape {z.shape}")
    if name == "softmax":
        s = softmax(z)
        return s * (dout - np.sum(dout * s, axis=-1, keepdims=True))
    if name == "log_softmax":
        return dout - softmax(z) * np.sum(dout, axis=-1, keepdims=True)
    return dout * ACTIVATIONS[name][1](z)


def value(name: str, z):
    """f(z) for the activation called ``name``."""
    _check_name(name)
    return ACTIVATIONS[name][0](z)
