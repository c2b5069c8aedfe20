"""Losses and their gradients with respect to the prediction, by hand, in NumPy.

``LOSSES[name] = (value, grad)``: ``value(pred, target, reduction="mean")`` is J and
``grad(pred, target, reduction="mean")`` is dJ/dpred, with pred's shape. Conventions are
those of :mod:`nnjax.losses`:

* a "term" is one element for ``mse`` and the binary cross-entropies, one row of logits
  for ``softmax_cross_entropy``; ``mean`` divides the sum of terms by their number n;
* binary targets of shape (B,) meet predictions of shape (B, 1);
* ``reduction="none"`` returns the terms, and ``grad`` then returns d(sum of terms)/dpred
  (each term depends on its own elements only, so that is each term's own gradient).
"""

from collections.abc import Callable

import numpy as np

from nnjax.reference.activations import log_softmax, sigmoid, softmax

REDUCTIONS = ("mean", "sum", "none")


def _pred(pred) -> np.ndarray:
    pred = np.asarray(pred)
    return pred if np.issubdtype(pred.dtype, np.inexact) else pred.astype(np.float64)


def _reduce(terms, reduction):
    if reduction == "mean":
        return np.mean(terms)
    if reduction == "sum":
        return np.sum(terms)
    if reduction == "none":
        return terms
    raise ValueError(f"unknown reduction {reduction!r}; valid: {', '.join(REDUCTIONS)}")


def _grad_scale(n_terms: int, reduction: str) -> float:
    """d reduce / d term: 1/n for the mean, 1 for the sum and for the unreduced terms."""
    if reduction not in REDUCTIONS:
        raise ValueError(f"unknown reduction {reduction!r}; valid: {', '.join(REDUCTIONS)}")
    return 1.0 / n_terms if reduction == "mean" else 1.0


def _binary_target(pred, target):
    """Targets (B,) meet predictions (B, 1); cast to pred's dtype."""
    target = np.asarray(target).astype(pred.dtype)
    if target.shape == pred.shape:
        return target
    if pred.ndim >= 1 and pred.shape[-1] == 1 and target.shape == pred.shape[:-1]:
        return target[..., None]
    raise ValueError(f"targets of shape {target.shape} do not fit predictions {pred.shape}")


def mse(pred, target, reduction="mean"):
    """J = mean_i (p_i - t_i)^2 over every element."""
    p = _pred(pred)
    return _reduce(np.square(p - _binary_target(p, target)), reduction)


def mse_grad(pred, target, reduction="mean"):
    """dJ/dp_i = 2 (p_i - t_i) / n (mean over n elements)."""
    p = _pred(pred)
    return 2.0 * (p - _binary_target(p, target)) * _grad_scale(p.size, reduction)


def _check_probabilities(p):
    """A ValueError, as nnjax's for concrete p, when p holds a value outside [0, 1] or NaN
    (logits passed by mistake): the clip would turn them into a finite, wrong loss."""
    if p.size and not (np.all(p >= 0) and np.all(p <= 1)):
        lo, hi = (np.nan, np.nan) if np.isnan(p).any() else (p.min(), p.max())
        raise ValueError(
            f"binary_cross_entropy: probabilities p must be in [0, 1]; got values from "
            f"{lo:g} to {hi:g} (for logits use binary_cross_entropy_with_logits)"
        )


def _clip(p):
    """p clipped to [eps, 1 - eps], eps = finfo(dtype).eps."""
    eps = np.finfo(p.dtype).eps
    return np.clip(p, p.dtype.type(eps), p.dtype.type(1.0 - eps))


def binary_cross_entropy(prob, target, reduction="mean"):
    """J = -mean[t log p_c + (1 - t) log(1 - p_c)], p_c = clip(p, eps, 1 - eps); p outside
    [0, 1] (or NaN) is a ValueError, as in nnjax.losses."""
    p = _pred(prob)
    _check_probabilities(p)
    t = _binary_target(p, target)
    pc = _clip(p)
    return _reduce(-(t * np.log(pc) + (1.0 - t) * np.log1p(-pc)), reduction)


def binary_cross_entropy_grad(prob, target, reduction="mean"):
    """dJ/dp = (-t / p_c + (1 - t) / (1 - p_c)) / n, p_c = clip(p, eps, 1 - eps).

    The exact gradient at p_c, passed straight through the clip (as nnjax's ``custom_jvp``):
    for eps <= p <= 1 - eps, the bounds included, it is the exact gradient
    (p - t) / (p (1 - p)) / n; beyond the clip it is the gradient at the bound, not 0.
    """
    p = _pred(prob)
    _check_probabilities(p)
    t = _binary_target(p, target)
    pc = _clip(p)
    dterm = -t / pc + (1.0 - t) / (1.0 - pc)
    return dterm * _grad_scale(p.size, reduction)


def binary_cross_entropy_with_logits(logits, target, reduction="mean"):
    """J = mean[softplus(z) - t z] = cross-entropy of sigma(z) against t, finite for any
    finite z. Each term is computed as (1 - t) z + log1p(e^-z) for z >= 0 and
    -t z + log1p(e^z) below, a coefficient of 0 times z taken as 0: no inf - inf, so
    z = +-inf gives the limit (0 against the right target, inf against the wrong one)."""
    z = _pred(logits)
    t = _binary_target(z, target)
    coef = np.where(z >= 0, 1.0 - t, -t)
    with np.errstate(invalid="ignore"):  # 0 * inf, replaced by 0 below
        linear = np.where(coef == 0, 0.0, coef * z)
    return _reduce((linear + np.log1p(np.exp(-np.abs(z)))).astype(z.dtype), reduction)


def binary_cross_entropy_with_logits_grad(logits, target, reduction="mean"):
    """dJ/dz = (sigma(z) - t) / n."""
    z = _pred(logits)
    return (sigmoid(z) - _binary_target(z, target)) * _grad_scale(z.size, reduction)


def _class_target(z, target, where):
    """Integer labels (B,) become one-hot (B, K); one-hot/probabilities (B, K) pass."""
    target = np.asarray(target)
    if target.shape == z.shape:
        return target.astype(z.dtype)
    if target.shape == z.shape[:-1] and np.issubdtype(target.dtype, np.integer):
        k = z.shape[-1]
        if target.size and (target.min() < 0 or target.max() >= k):
            raise ValueError(
                f"{where}: labels must be in [0, {k}), got values from {target.min()} "
                f"to {target.max()}"
            )
        return np.eye(k, dtype=z.dtype)[target]
    raise ValueError(
        f"{where}: targets must be integer labels of shape {z.shape[:-1]} "
        f"or one-hot of shape {z.shape}; got {target.dtype} {target.shape}"
    )


def softmax_cross_entropy(logits, target, reduction="mean"):
    """J = -mean_b sum_k t_bk log softmax(z_b)_k, over the rows b of z (B, K).

    A class with t_bk = 0 adds 0 (the limit of t log p), also where its logit is -inf
    (log p = -inf: a masked class), as JAX's label form picks only the labelled class.
    A row with m logits of +inf is taken at its limit, those logits tied (as
    :func:`~nnjax.reference.activations.log_softmax`): log softmax is -log m on them and
    -inf elsewhere, so the term is log m times the target's weight on them, plus +inf if a
    finite class has t_bk > 0."""
    z = _pred(logits)
    t = _class_target(z, target, "softmax_cross_entropy")
    logp = log_softmax(z)
    logp = np.where((t == 0) & np.isneginf(logp), 0.0, logp)
    return _reduce(-np.sum(t * logp, axis=-1), reduction)


def softmax_cross_entropy_grad(logits, target, reduction="mean"):
    """dJ/dz_b = (softmax(z_b) sum_k t_bk - t_b) / B; = (softmax(z_b) - t_b) / B for one-hot.

    A row with +inf logits keeps this formula at its limit (softmax 1/m on its m infinite
    logits, 0 elsewhere): finite, 0 for a one-hot target on the one +inf class."""
    z = _pred(logits)
    t = _class_target(z, target, "softmax_cross_entropy")
    n_rows = z.size // z.shape[-1] if z.shape[-1] else 0
    d = softmax(z) * np.sum(t, axis=-1, keepdims=True) - t
    return d * _grad_scale(max(n_rows, 1), reduction)


LOSSES: dict[str, tuple[Callable, Callable]] = {
    "mse": (mse, mse_grad),
    "binary_cross_entropy": (binary_cross_entropy, binary_cross_entropy_grad),
    "binary_cross_entropy_with_logits": (
        binary_cross_entropy_with_logits,
        binary_cross_entropy_with_logits_grad,
    ),
    "softmax_cross_entropy": (softmax_cross_entropy, softmax_cross_entropy_grad),
}


def get(name: str) -> tuple[Callable, Callable]:
    """``(value, grad)`` for the loss called ``name``."""
    if name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; valid names: {', '.join(sorted(LOSSES))}")
    return LOSSES[name]
