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
TARGET_SLACK = 1e-3
"""How far float binary targets may stray outside [0, 1], as ``nnjax.losses.TARGET_SLACK``."""


def _pred(pred) -> np.ndarray:
    pred = np.asarray(pred)
    return pred if np.issubdtype(pred.dtype, np.inexact) else pred.astype(np.float64)


def _reduce(terms, reduction):
    """The mean, sum or the terms; the mean of no term is NaN, as JAX's (without NumPy's
    empty-slice warning)."""
    if reduction == "mean":
        return np.mean(terms) if np.size(terms) else np.asarray(terms).dtype.type(np.nan)
    if reduction == "sum":
        return np.sum(terms)
    if reduction == "none":
        return terms
    raise ValueError(f"unknown reduction {reduction!r}; valid: {', '.join(REDUCTIONS)}")


def _grad_scale(n_terms: int, reduction: str) -> float:
    """d reduce / d term: 1/n for the mean, 1 for the sum and for the unreduced terms. With no
    term (n = 0) the gradient is empty, as JAX's: the scale is then 1, never a 1/0."""
    if reduction not in REDUCTIONS:
        raise ValueError(f"unknown reduction {reduction!r}; valid: {', '.join(REDUCTIONS)}")
    return 1.0 / max(n_terms, 1) if reduction == "mean" else 1.0


def _binary_target(pred, target, who):
    """Targets (B,) meet predictions (B, 1); cast to pred's dtype. A ValueError naming the
    loss ``who`` when they do not fit, as nnjax's."""
    target = np.asarray(target).astype(pred.dtype)
    if target.shape == pred.shape:
        return target
    if pred.ndim >= 1 and pred.shape[-1] == 1 and target.shape == pred.shape[:-1]:
        return target[..., None]
    raise ValueError(f"{who}: targets of shape {target.shape} do not fit predictions {pred.shape}")


def _check_binary_targets(target, who):
    """As ``nnjax.losses.check_binary_targets`` on concrete targets: numbers (bool, int or
    real float) in [0, 1], floats within :data:`TARGET_SLACK`; a ValueError naming ``who``
    and the range found (NaN counts as outside) otherwise, with nnjax's text."""
    try:
        dtype = target.dtype if hasattr(target, "dtype") else np.asarray(target).dtype
    except (TypeError, ValueError):  # ragged lists
        dtype = np.dtype(object)
    if not (dtype == np.bool_ or (np.issubdtype(dtype, np.number) and dtype.kind != "c")):
        raise ValueError(
            f"{who}: target must hold numbers in [0, 1], got a {type(target).__name__} of "
            f"dtype {dtype}"
        )
    t = np.asarray(target, dtype=np.float64)
    if not t.size:
        return
    lo, hi = (np.nan, np.nan) if np.isnan(t).any() else (t.min(), t.max())
    slack = TARGET_SLACK if np.issubdtype(dtype, np.inexact) else 0.0
    if not (-slack <= lo and hi <= 1.0 + slack):
        raise ValueError(
            f"{who}: target must be in [0, 1] (labels 0/1 or probabilities); got values from "
            f"{lo:g} to {hi:g}"
        )


def mse(pred, target, reduction="mean"):
    """J = mean_i (p_i - t_i)^2 over every element."""
    p = _pred(pred)
    return _reduce(np.square(p - _binary_target(p, target, "mse")), reduction)


def mse_grad(pred, target, reduction="mean"):
    """dJ/dp_i = 2 (p_i - t_i) / n (mean over n elements)."""
    p = _pred(pred)
    return 2.0 * (p - _binary_target(p, target, "mse")) * _grad_scale(p.size, reduction)


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
    _check_binary_targets(target, "binary_cross_entropy")
    t = _binary_target(p, target, "binary_cross_entropy")
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
    _check_binary_targets(target, "binary_cross_entropy")
    t = _binary_target(p, target, "binary_cross_entropy")
    pc = _clip(p)
    dterm = -t / pc + (1.0 - t) / (1.0 - pc)
    return dterm * _grad_scale(p.size, reduction)


def binary_cross_entropy_with_logits(logits, target, reduction="mean"):
    """J = mean[softplus(z) - t z] = cross-entropy of sigma(z) against t, finite for any
    finite z. Each term is computed as (1 - t) z + log1p(e^-z) for z >= 0 and
    -t z + log1p(e^z) below, a coefficient of 0 times z taken as 0: no inf - inf, so
    z = +-inf gives the limit (0 against the right target, inf against the wrong one)."""
    z = _pred(logits)
    _check_binary_targets(target, "binary_cross_entropy_with_logits")
    t = _binary_target(z, target, "binary_cross_entropy_with_logits")
    coef = np.where(z >= 0, 1.0 - t, -t)
    with np.errstate(invalid="ignore"):  # 0 * inf, replaced by 0 below
        linear = np.where(coef == 0, 0.0, coef * z)
    return _reduce((linear + np.log1p(np.exp(-np.abs(z)))).astype(z.dtype), reduction)


def binary_cross_entropy_with_logits_grad(logits, target, reduction="mean"):
    """dJ/dz = (sigma(z) - t) / n."""
    z = _pred(logits)
    _check_binary_targets(target, "binary_cross_entropy_with_logits")
    t = _binary_target(z, target, "binary_cross_entropy_with_logits")
    return (sigmoid(z) - t) * _grad_scale(z.size, reduction)


def _class_target(z, target, where):
    """Integer labels (B,) become one-hot (B, K); one-hot/probabilities (B, K) pass. As
    nnjax's, a ValueError naming ``where`` for labels outside [0, K) and for integer (or
    bool) targets of the logits' shape, one-hot, holding a value other than 0 or 1."""
    target = np.asarray(target)
    k = z.shape[-1]
    is_int = target.dtype.kind in "iub"
    lo, hi = (int(target.min()), int(target.max())) if is_int and target.size else (0, 0)
    if target.shape == z.shape:
        if lo < 0 or hi > 1:
            raise ValueError(
                f"{where}: integer targets of the logits' shape {z.shape} are one-hot and "
                f"must be 0 or 1; got values from {lo} to {hi} (labels have shape "
                f"{z.shape[:-1]})"
            )
        return target.astype(z.dtype)
    if target.shape == z.shape[:-1] and np.issubdtype(target.dtype, np.integer):
        if lo < 0 or hi >= k:
            raise ValueError(
                f"{where}: labels must be in [0, {k}) for {k} classes; got labels from {lo} to {hi}"
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
    return d * _grad_scale(n_rows, reduction)


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
