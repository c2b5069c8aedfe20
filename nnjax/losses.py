"""Losses: each maps (prediction, target) to a scalar (or per-term array).

``reduction`` is ``"mean"`` (default: the mean over every term), ``"sum"``, or
``"none"`` (the unreduced terms). A "term" is one element for ``mse`` and the
binary cross-entropies, one example (a row of logits) for the softmax
cross-entropy. Every loss has a NumPy twin in :mod:`nnjax.reference.losses`
with its gradient written by hand.
"""

from collections.abc import Callable

import jax
import jax.numpy as jnp

Array = jax.Array
REDUCTIONS = ("mean", "sum", "none")


def _reduce(terms: Array, reduction: str) -> Array:
    if reduction == "mean":
        return jnp.mean(terms)
    if reduction == "sum":
        return jnp.sum(terms)
    if reduction == "none":
        return terms
    raise ValueError(f"unknown reduction {reduction!r}; valid: {', '.join(REDUCTIONS)}")


def _match_binary_targets(pred: Array, target: Array) -> Array:
    """Let targets of shape (B,) meet predictions of shape (B, 1)."""
    target = jnp.asarray(target, dtype=pred.dtype)
    if target.shape == pred.shape:
        return target
    if pred.ndim >= 1 and pred.shape[-1] == 1 and target.shape == pred.shape[:-1]:
        return target[..., None]
    raise ValueError(f"targets of shape {target.shape} do not fit predictions {pred.shape}")


def mse(pred: Array, target: Array, reduction: str = "mean") -> Array:
    """Mean squared error: J = mean_i (pred_i - target_i)^2 over every element.

    Targets of shape (B,) are accepted for predictions of shape (B, 1).
    """
    pred = jnp.asarray(pred)
    return _reduce(jnp.square(pred - _match_binary_targets(pred, target)), reduction)


def binary_cross_entropy(prob: Array, target: Array, reduction: str = "mean") -> Array:
    """J = -mean[t log p + (1 - t) log(1 - p)] from probabilities p.

    p is clipped to [eps, 1 - eps], eps = finfo(dtype).eps, so p in {0, 1} gives a
    large finite loss instead of inf. Prefer :func:`binary_cross_entropy_with_logits`.
    """
    prob = jnp.asarray(prob)
    t = _match_binary_targets(prob, target)
    eps = jnp.finfo(prob.dtype).eps
    p = jnp.clip(prob, eps, 1.0 - eps)
    return _reduce(-(t * jnp.log(p) + (1.0 - t) * jnp.log1p(-p)), reduction)


def binary_cross_entropy_with_logits(
    logits: Array, target: Array, reduction: str = "mean"
) -> Array:
    """J = mean[softplus(z) - t z], the cross-entropy of sigmoid(z) against t.

    softplus(z) = logaddexp(z, 0) is finite and exact for any |z| (1e4 included), and its
    derivative is sigmoid(z) everywhere, z = 0 included (the textbook form
    max(z, 0) + log1p(exp(-|z|)) has kinks whose autodiff value at 0 is wrong).
    dJ/dz = (sigmoid(z) - t) / n for the mean reduction.
    """
    z = jnp.asarray(logits)
    t = _match_binary_targets(z, target)
    terms = jnp.logaddexp(z, 0.0) - t * z
    return _reduce(terms, reduction)


def softmax_cross_entropy(logits: Array, target: Array, reduction: str = "mean") -> Array:
    """J = -mean_b sum_k t_bk log softmax(z_b)_k, from logits of shape (B, K).

    ``target`` is either integer labels of shape (B,) or one-hot / probability
    targets of shape (B, K). Uses log_softmax, so it is stable for any logits.
    dJ/dz_b = (softmax(z_b) - t_b) / B for the mean reduction.
    """
    z = jnp.asarray(logits)
    logp = jax.nn.log_softmax(z, axis=-1)
    target = jnp.asarray(target)
    if target.shape == z.shape:
        terms = -jnp.sum(target.astype(z.dtype) * logp, axis=-1)
    elif target.shape == z.shape[:-1] and jnp.issubdtype(target.dtype, jnp.integer):
        if not isinstance(target, jax.core.Tracer) and target.size:  # checkable: concrete
            lo, hi = int(target.min()), int(target.max())
            if lo < 0 or hi >= z.shape[-1]:
                raise ValueError(
                    f"softmax_cross_entropy: labels must be in [0, {z.shape[-1]}) for "
                    f"{z.shape[-1]} classes; got labels from {lo} to {hi}"
                )
        terms = -jnp.take_along_axis(logp, target[..., None].astype(jnp.int32), axis=-1)[..., 0]
    else:
        raise ValueError(
            f"softmax_cross_entropy: targets must be integer labels of shape {z.shape[:-1]} "
            f"or one-hot of shape {z.shape}; got {target.dtype} {target.shape}"
        )
    return _reduce(terms, reduction)


LOSSES: dict[str, Callable[..., Array]] = {
    "mse": mse,
    "binary_cross_entropy": binary_cross_entropy,
    "binary_cross_entropy_with_logits": binary_cross_entropy_with_logits,
    "softmax_cross_entropy": softmax_cross_entropy,
}


def get_loss(loss: str | Callable) -> Callable[..., Array]:
    """Resolve a loss given by name or as a callable ``loss(pred, target) -> scalar``."""
    if callable(loss):
        return loss
    if isinstance(loss, str) and loss in LOSSES:
        return LOSSES[loss]
    raise ValueError(f"unknown loss {loss!r}; valid names: {', '.join(sorted(LOSSES))}")
