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
import numpy as np
from jax.custom_derivatives import SymbolicZero

from nnjax.activations import log_softmax

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


def _float(x) -> Array:
    """``x`` as a float array: its own dtype if floating, else the default float (an integer
    prediction or target is never truncated by the other's dtype)."""
    x = jnp.asarray(x)
    return x if jnp.issubdtype(x.dtype, jnp.inexact) else x.astype(jnp.result_type(float))


def _check_real(x, who: str, what: str) -> None:
    """A ValueError naming the loss ``who`` and its argument ``what`` unless ``x`` holds real
    numbers (bool, int or float: float16 and bfloat16 too): complex predictions gave a
    complex "loss" silently (mse, the binary cross-entropies), and object arrays or ragged
    lists ended in a JAX error naming no argument. Reads the dtype only: free under jit."""
    dtype = getattr(x, "dtype", None)
    if dtype is None:
        try:
            dtype = np.asarray(x).dtype
        except (TypeError, ValueError):  # a ragged list
            dtype = np.dtype(object)
    if dtype == np.bool_ or any(jnp.issubdtype(dtype, k) for k in (jnp.integer, jnp.floating)):
        return
    raise ValueError(
        f"{who}: {what} must hold real numbers (bool, int or float), got dtype {dtype}"
    )


def _match_binary_targets(pred: Array, target: Array, who: str) -> Array:
    """Let targets of shape (B,) meet predictions of shape (B, 1); the targets in the
    predictions' float dtype. A ValueError naming the loss ``who`` when they do not fit."""
    target = jnp.asarray(target)
    target = target.astype(pred.dtype) if jnp.issubdtype(pred.dtype, jnp.inexact) else target
    if target.shape == pred.shape:
        return _float(target)
    if pred.ndim >= 1 and pred.shape[-1] == 1 and target.shape == pred.shape[:-1]:
        return _float(target[..., None])
    raise ValueError(f"{who}: targets of shape {target.shape} do not fit predictions {pred.shape}")


def _concrete_range(x) -> tuple[float, float] | None:
    """(min, max) of a concrete, non-empty array (NaN counts as out of any range), else None."""
    if isinstance(x, jax.core.Tracer) or not np.size(x):
        return None
    v = np.asarray(x, dtype=np.float64)
    if np.isnan(v).any():
        return float("nan"), float("nan")
    return float(v.min()), float(v.max())


TARGET_SLACK = 1e-3
"""How far float targets may stray outside [0, 1] (rounding, or a finite-difference probe
t +- h of a target at 0 or 1: the formulas are linear in t, so such a target is no label)."""


def check_binary_targets(target, who: str) -> None:
    """Concrete ``target`` must be numbers (bool, int or float) in [0, 1] (floats within
    :data:`TARGET_SLACK`): labels {1, 2} or {-1, 1} would train to a negative
    "cross-entropy", and strings would end in a JAX staging error naming no argument. A
    ValueError names ``who`` and the range found; traced targets pass."""
    if any(isinstance(v, jax.core.Tracer) for v in jax.tree.leaves(target)):
        return
    try:
        dtype = target.dtype if hasattr(target, "dtype") else np.asarray(target).dtype
    except (TypeError, ValueError):  # ragged lists
        dtype = np.dtype(object)
    real = dtype == np.bool_ or (jnp.issubdtype(dtype, jnp.number) and dtype.kind != "c")
    if not real:
        raise ValueError(
            f"{who}: target must hold numbers in [0, 1], got a {type(target).__name__} of "
            f"dtype {dtype}"
        )
    r = _concrete_range(target)
    slack = TARGET_SLACK if jnp.issubdtype(dtype, jnp.inexact) else 0.0
    if r is not None and not (-slack <= r[0] and r[1] <= 1.0 + slack):
        raise ValueError(
            f"{who}: target must be in [0, 1] (labels 0/1 or probabilities); got values from "
            f"{r[0]:g} to {r[1]:g}"
        )


def check_unit_interval(x, who: str, what: str, advice: str = "") -> None:
    """A ValueError when concrete ``x`` holds a value outside [0, 1] (or NaN), naming
    ``who`` and the range found; a traced ``x`` passes (the loss makes such terms NaN)."""
    r = _concrete_range(x)
    if r is not None and not (0.0 <= r[0] and r[1] <= 1.0):
        raise ValueError(
            f"{who}: {what} must be in [0, 1]; got values from {r[0]:g} to {r[1]:g}{advice}"
        )


def mse(pred: Array, target: Array, reduction: str = "mean") -> Array:
    """Mean squared error: J = mean_i (pred_i - target_i)^2 over every element.

    Targets of shape (B,) are accepted for predictions of shape (B, 1). Both must hold real
    numbers (bool, int or float; a ``ValueError`` otherwise).
    """
    _check_real(pred, "mse", "predictions")
    _check_real(target, "mse", "targets")
    pred = _float(pred)
    return _reduce(jnp.square(pred - _match_binary_targets(pred, target, "mse")), reduction)


def binary_cross_entropy(prob: Array, target: Array, reduction: str = "mean") -> Array:
    """J = -mean[t log p + (1 - t) log(1 - p)] from probabilities p (any shape; targets of
    shape (B,) meet p of shape (B, 1)). Prefer :func:`binary_cross_entropy_with_logits`.

    The value is taken at p_c = clip(p, eps, 1 - eps), eps = finfo(dtype).eps, so p in
    {0, 1} gives a large finite loss, -log(eps) (15.9 in float32, 36.0 in float64), not inf.
    The gradient (a ``custom_jvp``) is the exact one at p_c, passed straight through the
    clip: dJ/dp = (-t / p_c + (1 - t) / (1 - p_c)) / n (n terms for the mean), and
    dJ/dt = (log(1 - p_c) - log p_c) / n. So:

    * for eps <= p <= 1 - eps it is the exact gradient of the unclipped loss, the bounds
      included (autodiff of ``jnp.clip`` would halve it there: p = 1 - eps is what a sigmoid
      returns for logits from 15.5 to 16.6 in float32, from 35.6 to 36.7 in float64);
    * beyond the clip it is the gradient at the bound (about 1/eps against the wrong target),
      not 0, so a confidently wrong output keeps learning. The exact one there, 1 / (1 - p),
      is inf at p = 1. A sigmoid saturated to exactly 1.0 still passes 0 back (its own
      derivative p (1 - p) is 0): only the logits form is exact for any logit.

    PyTorch's ``torch.nn.functional.binary_cross_entropy`` agrees inside the clip in float32.
    At the ends it differs: its value is min(-log p, 100) (100 for p = 0 against t = 1, here
    -log(eps)), its gradient (p - t) / max(p (1 - p), 1e-12) (1e12 for p in {0, 1} against
    the wrong target, here 1/eps; and in float64 capped wherever p (1 - p) < 1e-12, where this
    one stays exact down to eps). The NumPy twin :mod:`nnjax.reference.losses` writes the
    same gradient out by hand.

    p must lie in [0, 1]: concrete p outside (logits passed by mistake) raise a
    ``ValueError``; traced ones make their term NaN, so the loss is NaN and ``fit``'s
    finite-loss check stops the run (the clip would hide them). Targets must be numbers in
    [0, 1] too (the formula itself is linear in t): concrete ones are checked
    (:func:`check_binary_targets`; floats within :data:`TARGET_SLACK`), traced ones are not.
    """
    _check_real(prob, "binary_cross_entropy", "probabilities p")
    check_unit_interval(
        prob, "binary_cross_entropy", "probabilities p",
        " (for logits use binary_cross_entropy_with_logits)",
    )  # fmt: skip
    check_binary_targets(target, "binary_cross_entropy")
    prob = _float(prob)
    t = _match_binary_targets(prob, target, "binary_cross_entropy")
    inside = (prob >= 0) & (prob <= 1)
    return _reduce(jnp.where(inside, _bce_terms(prob, t), jnp.nan), reduction)


def _clip_probability(p: Array) -> Array:
    eps = jnp.finfo(p.dtype).eps
    return jnp.clip(p, eps, 1.0 - eps)


@jax.custom_jvp
def _bce_terms(p: Array, t: Array) -> Array:
    """-(t log p_c + (1 - t) log(1 - p_c)), elementwise, p_c = clip(p, eps, 1 - eps)."""
    pc = _clip_probability(p)
    return -(t * jnp.log(pc) + (1.0 - t) * jnp.log1p(-pc))


def _bce_terms_jvp(primals, tangents):
    p, t = primals
    dp, dt = tangents
    pc = _clip_probability(p)
    log_p, log_1mp = jnp.log(pc), jnp.log1p(-pc)
    out = jnp.zeros_like(pc)  # a zero tangent (fixed targets) costs no work
    if not isinstance(dp, SymbolicZero):
        out = (-t / pc + (1.0 - t) / (1.0 - pc)) * dp
    if not isinstance(dt, SymbolicZero):
        out = out + (log_1mp - log_p) * dt
    return -(t * log_p + (1.0 - t) * log_1mp), out


_bce_terms.defjvp(_bce_terms_jvp, symbolic_zeros=True)


def binary_cross_entropy_with_logits(
    logits: Array, target: Array, reduction: str = "mean"
) -> Array:
    """J = mean[softplus(z) - t z], the cross-entropy of sigmoid(z) against t.

    softplus(z) = logaddexp(z, 0) is finite and exact for any |z| (1e4 included). The
    derivative is given in closed form (a ``custom_jvp``): d/dz = sigmoid(z) - t,
    d/dt = -z, so ``jax.grad`` computes the textbook gradient, dJ/dz = (sigmoid(z) - t) / n
    for the mean reduction, in three elementwise ops, exact at z = 0 too (autodiff of the
    form max(z, 0) + log1p(exp(-|z|)) gets z = 0 wrong). At z = +-inf the value is the
    limit: 0 against the right target, inf against the wrong one.

    Targets must be numbers in [0, 1] (labels {1, 2} or {-1, 1} would train to a negative
    "cross-entropy": the formula is linear in t); concrete ones (outside ``jit``/``vmap``/
    ``grad``) are checked here, a ``ValueError`` giving the range found
    (:func:`check_binary_targets`).
    """
    _check_real(logits, "binary_cross_entropy_with_logits", "logits")
    check_binary_targets(target, "binary_cross_entropy_with_logits")
    z = _float(logits)
    t = _match_binary_targets(z, target, "binary_cross_entropy_with_logits")
    return _reduce(_softplus_minus_tz(z, t), reduction)


def _softplus_parts(z: Array) -> tuple[Array, Array]:
    """softplus(z) = max(z, 0) + log1p(e) and sigmoid(z) = (1 if z >= 0 else e) / (1 + e),
    with e = exp(-|z|) in (0, 1]: one exp for both, no overflow for any z (+-inf included)."""
    e = jnp.exp(-jnp.abs(z))
    softplus = jnp.maximum(z, 0.0) + jnp.log1p(e)
    sigmoid = jnp.where(z >= 0, 1.0, e) / (1.0 + e)
    return softplus, sigmoid


def _times(a: Array, z: Array) -> Array:
    """a z, with 0 where a is 0 (also for z = +-inf, the limit the loss needs)."""
    return jnp.where(a == 0, 0.0, a * z)


@jax.custom_jvp
def _softplus_minus_tz(z: Array, t: Array) -> Array:
    """softplus(z) - t z = (1 - t) z + log1p(e^{-z}) for z >= 0, -t z + log1p(e^{z}) below,
    elementwise: finite terms never subtract infinities, so z = +-inf gives the limit."""
    tail = jnp.log1p(jnp.exp(-jnp.abs(z)))
    return jnp.where(z >= 0, _times(1.0 - t, z), _times(-t, z)) + tail


def _softplus_minus_tz_jvp(primals, tangents):
    z, t = primals
    dz, dt = tangents
    _, sigmoid = _softplus_parts(z)
    out = jnp.zeros_like(z)  # a zero tangent (fixed targets) costs no work
    if not isinstance(dz, SymbolicZero):
        out = (sigmoid - t) * dz
    if not isinstance(dt, SymbolicZero):
        out = out - z * dt
    return _softplus_minus_tz(z, t), out


_softplus_minus_tz.defjvp(_softplus_minus_tz_jvp, symbolic_zeros=True)


def softmax_cross_entropy(logits: Array, target: Array, reduction: str = "mean") -> Array:
    """J = -mean_b sum_k t_bk log softmax(z_b)_k, from logits of shape (B, K).

    ``target`` is either integer labels of shape (B,) or one-hot / probability
    targets of shape (B, K). Uses log_softmax, so it is stable for any finite logits; a
    class masked by a logit of -inf adds 0 where its target is 0 (the limit of t log p, in
    both target forms; dJ/dt there is taken as 0, not the exact +inf) and makes the loss inf
    where its target is > 0. dJ/dz_b = (softmax(z_b) sum_k t_bk - t_b) / B for the mean
    reduction, (softmax(z_b) - t_b) / B for one-hot targets.

    A row with m >= 1 logits of +inf is taken at its limit with those logits tied (all
    going to infinity together): softmax is 1/m on them and 0 elsewhere, so the term is
    sum_{k: z_k = +inf} t_bk log m (log m for a label or one-hot target on a +inf class, 0
    when m = 1) plus +inf if any class with a finite logit has t_bk > 0; the gradient keeps
    the formula above, finite (0 for a one-hot target on the one +inf class). A NaN logit,
    or a row whose logits are all -inf (no class is possible), gives NaN.

    Integer labels must lie in [0, K). Where they are concrete (NumPy arrays, or JAX arrays
    outside ``jit``/``vmap``/``grad``) they are checked here: a ``ValueError`` gives the
    range found. Inside a trace they cannot be checked without a host round trip: an
    out-of-range label (negative ones included, which indexing would otherwise wrap to the
    last classes) makes its term NaN, so the loss is NaN (``fit``'s finite-loss check then
    stops the run) and its row gets no gradient. ``nnjax.fit`` checks its concrete labels
    before it compiles; check your own before calling a jitted loss or train step.
    """
    _check_real(logits, "softmax_cross_entropy", "logits")
    _check_real(target, "softmax_cross_entropy", "targets")
    z = _float(logits)
    if z.ndim == 0:
        raise ValueError(
            "softmax_cross_entropy: logits must have a class axis, shape (..., K); got a 0-d array"
        )
    logp = log_softmax(z)  # +inf logits: their tied limit, not NaN
    _check_concrete_targets(target, z.shape)  # before jnp.asarray, which wraps 2**32 to 0
    target = jnp.asarray(target)
    if target.shape == z.shape:
        t = target.astype(z.dtype)
        # t log p -> 0 as t -> 0: a masked class (logit -inf) with target 0 adds 0, not NaN
        logp = jnp.where((t == 0) & jnp.isneginf(logp), 0.0, logp)
        terms = -jnp.sum(t * logp, axis=-1)
    elif target.shape == z.shape[:-1] and jnp.issubdtype(target.dtype, jnp.integer):
        picked = jnp.take_along_axis(logp, target[..., None].astype(jnp.int32), axis=-1)[..., 0]
        in_range = (target >= 0) & (target < z.shape[-1])  # traced labels: NaN, not a wrap
        terms = jnp.where(in_range, -picked, jnp.nan)
    else:
        raise ValueError(
            f"softmax_cross_entropy: targets must be integer labels of shape {z.shape[:-1]} "
            f"or one-hot of shape {z.shape}; got {target.dtype} {target.shape}"
        )
    return _reduce(terms, reduction)


def _check_concrete_targets(target, z_shape) -> None:
    """Concrete integer targets: labels (shape z_shape[:-1]) in [0, K), or one-hot (the
    logits' shape) of 0s and 1s; concrete float targets of the logits' shape >= 0 (within
    :data:`TARGET_SLACK`; one above 1 is a weight); a ValueError naming the range found
    otherwise."""
    if isinstance(target, jax.core.Tracer) or not np.size(target):
        return
    t = np.asarray(target)
    if t.dtype.kind not in "iub":
        r = _concrete_range(target) if t.shape == tuple(z_shape) else None
        if r is not None and not -TARGET_SLACK <= r[0]:  # nan too
            raise ValueError(
                f"softmax_cross_entropy: targets of the logits' shape {tuple(z_shape)} must be "
                f">= 0 (a negative one makes the loss unbounded below); got values from "
                f"{r[0]:g} to {r[1]:g}"
            )
        return
    lo, hi, k = int(t.min()), int(t.max()), z_shape[-1]
    if t.shape == tuple(z_shape) and (lo < 0 or hi > 1):
        raise ValueError(
            f"softmax_cross_entropy: integer targets of the logits' shape {tuple(z_shape)} "
            f"are one-hot and must be 0 or 1; got values from {lo} to {hi} (labels have "
            f"shape {tuple(z_shape[:-1])})"
        )
    if t.shape == tuple(z_shape[:-1]) and (lo < 0 or hi >= k):
        raise ValueError(
            f"softmax_cross_entropy: labels must be in [0, {k}) for {k} classes; got "
            f"labels from {lo} to {hi}"
        )


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
