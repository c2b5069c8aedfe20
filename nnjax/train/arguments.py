"""``fit``'s arguments checked one by one, for :mod:`nnjax.train.plan`: ints, the batch
size, the optimizer with its learning rate or schedule, ``dropout`` and ``eval_data``; a
``ValueError`` names the bad argument.
"""

import inspect
from collections.abc import Mapping

import jax
import jax.numpy as jnp
import numpy as np
import optax

from nnjax.losses import get_loss
from nnjax.optim import FULL_BATCH, OPTIMIZERS, check_learning_rate, get_optimizer
from nnjax.optim_checks import check_rate_nonzero
from nnjax.train.config import float_dtypes
from nnjax.train.model import has_dropout
from nnjax.train.order import check_batch_size


def _check_int(name: str, v, low: int, none_ok: bool = True) -> int | None:
    """``v`` as a Python int >= ``low`` (a NumPy int or a concrete 0-d integer array, NumPy's
    or JAX's, accepted), or None where ``none_ok``."""
    if v is None and none_ok:
        return None
    if _concrete_int_scalar(v):
        v = int(v)
    if isinstance(v, bool | np.bool_) or not isinstance(v, int | np.integer) or v < low:
        kind = "a positive int" if low == 1 else f"an int >= {low}"
        raise ValueError(f"fit: {name} must be {kind}{' or None' if none_ok else ''}, got {v!r}")
    return int(v)


def _concrete_int_scalar(v) -> bool:
    """Whether ``v`` is a 0-d integer array with a value (not a tracer), e.g. jnp.asarray(2)."""
    dtype = getattr(v, "dtype", None)
    return (
        isinstance(v, np.ndarray | jax.Array)
        and not isinstance(v, jax.core.Tracer)
        and np.ndim(v) == 0
        and np.dtype(dtype).kind in "iu"
    )


def _batch_size(batch_size, n: int, optimizer) -> int | None:
    """An int in [1, n] (a NumPy int accepted), or None (full batch); a full-batch optimizer
    takes only None (or n)."""
    batch_size = check_batch_size(batch_size, n, "fit")
    if isinstance(optimizer, str) and optimizer in FULL_BATCH and batch_size not in (None, n):
        raise ValueError(
            f"fit: optimizer {optimizer!r} is full-batch: batch_size must be None (or n = {n}), "
            f"got batch_size={batch_size}; use 'sgd' for mini-batches"
        )
    return batch_size


def _optimizer(optimizer, learning_rate, params, total_steps: int) -> optax.GradientTransformation:
    """A named optimizer with its rate, or an Optax transformation as is (it carries its own
    rate: a ``learning_rate`` beside it is refused). A float rate must be finite in every
    float dtype of the params (1e39 is inf in float32) and not 0 there (1e-50 is 0 in
    float32, also under x64); a schedule is checked at the first
    and the last of the run's ``total_steps`` steps (:func:`_check_schedule`)."""
    if isinstance(optimizer, optax.GradientTransformation) and learning_rate is not None:
        raise ValueError(
            f"fit: learning_rate={learning_rate!r} is for a named optimizer; an "
            "optax.GradientTransformation carries its own rate (leave learning_rate out, or "
            "pass a name such as optimizer='adam')"
        )
    if isinstance(optimizer, str) and optimizer in OPTIMIZERS:
        for dtype in float_dtypes(params).split(","):
            _check_eps(optimizer, dtype)
    if isinstance(optimizer, str) and learning_rate is not None:
        for dtype in float_dtypes(params).split(","):
            try:
                check_learning_rate(learning_rate, dtype)
                check_rate_nonzero(learning_rate, dtype)
            except ValueError as e:
                raise ValueError(f"fit: {e}") from None
        if callable(learning_rate):
            _check_schedule(learning_rate, total_steps)
    try:
        return get_optimizer(optimizer, learning_rate)
    except ValueError as e:
        raise ValueError(f"fit: optimizer: {e}") from None


def _check_eps(optimizer: str, dtype: str) -> None:
    """A ``ValueError`` when the named optimizer's default eps is 0 in the params' ``dtype``.

    Adam and AdamW divide by sqrt(v_hat) + eps, RMSprop by sqrt(s + eps), with eps = 1e-8:
    0 in float16 (smallest subnormal 6e-8). A gradient g = 0 then gives 0/0 = nan, and one
    with |g| < sqrt(6e-8) = 2.4e-4 (g^2 is 0 in float16) an infinite update, from the first
    steps; ``fit`` stopped with a nan loss and advice to lower the learning rate, which does
    not help. Adagrad's eps (1e-7) is not 0 in float16; bfloat16 keeps float32's range."""
    eps = inspect.signature(OPTIMIZERS[optimizer]).parameters.get("eps")
    if eps is None or dtype == "none" or np.asarray(eps.default, jnp.dtype(dtype)) != 0:
        return
    tiny = float(np.sqrt(float(jnp.finfo(dtype).smallest_subnormal)))
    raise ValueError(
        f"fit: optimizer {optimizer!r} divides by a root of the squared gradients plus eps = "
        f"{eps.default:g}, and eps is 0 in {dtype}, the dtype of the params: a gradient of 0, "
        f"or one below {tiny:.2g} (its square is 0 in {dtype}), makes updates nan or inf from "
        "the first steps; train float32 or bfloat16 params, or use 'sgd', 'momentum', "
        "'nesterov' or 'adagrad'"
    )


def _check_schedule(schedule, total_steps: int) -> None:
    """A learning-rate schedule eta_t = schedule(t) of the optimizer's step count t (an int32
    scalar, as Optax calls it), called here at t = 0 and t = T - 1 (T = ``total_steps``):
    each must be one finite number >= 0 (eta < 0 steps up the gradient: the loss grows)."""
    for t in sorted({0, total_steps - 1}):
        try:
            value = np.asarray(schedule(jnp.asarray(t, jnp.int32)))
        except Exception as e:  # any error of the user's schedule, named here
            raise ValueError(
                f"fit: learning_rate is a schedule, called as schedule(step) -> rate, but "
                f"schedule({t}) raised {type(e).__name__}: {e}"
            ) from None
        number = np.issubdtype(value.dtype, np.floating) or np.issubdtype(value.dtype, np.integer)
        if value.shape != () or not number or not (np.isfinite(value) and value >= 0):
            raise ValueError(
                f"fit: learning_rate schedule must give one finite rate >= 0 at every step, "
                f"got schedule({t}) = {value!r} (steps 0..{total_steps - 1})"
            )


def _check_loss(loss):
    """``loss`` a name from :data:`nnjax.losses.LOSSES` or a function ``loss(pred, y)``,
    checked before anything is traced; a ``ValueError`` says ``fit: loss`` and lists the
    valid names."""
    try:
        get_loss(loss)
    except ValueError as e:
        raise ValueError(f"fit: loss: {e} (or pass a function loss(pred, y) -> scalar)") from None
    return loss


def _check_dropout(model, dropout) -> bool:
    """``dropout`` a bool; True only for a model with a ``Dropout`` layer where its spec
    tells (:func:`~nnjax.train.model.has_dropout`; a plain function or a layer without a
    spec may use the key its own way, and is taken at its word)."""
    if not isinstance(dropout, bool | np.bool_):
        raise ValueError(
            "fit: dropout must be True or False (it switches the model's Dropout layers on "
            "while training; their rate is the layer's, e.g. Dropout(0.5) or "
            f"mlp(..., dropout=0.5)), got {dropout!r}"
        )
    if dropout and has_dropout(model) is False:
        raise ValueError(
            "fit: dropout=True, but the model has no Dropout layer: nothing to switch on "
            "(add one, e.g. mlp(..., dropout=0.5), or leave dropout out)"
        )
    return bool(dropout)


def check_eval_data(eval_data) -> dict:
    """``eval_data`` as a dict ``{name: (X, y)}``; anything else is a ``ValueError`` that says
    what to pass (a bare ``(X, y)`` pair is the usual slip)."""
    if eval_data is None:
        return {}
    how = "pass a dict of named (X, y) pairs, e.g. eval_data={'test': (X_test, y_test)}"
    if not isinstance(eval_data, Mapping):
        kind = type(eval_data).__name__
        pair = isinstance(eval_data, tuple | list) and len(eval_data) == 2
        what = f"a {kind} of 2 (an (X, y) pair?)" if pair else f"a {kind}"
        raise ValueError(f"fit: eval_data must be a dict, got {what}; {how}")
    for name, value in eval_data.items():
        if not isinstance(name, str):
            raise ValueError(f"fit: eval_data's names must be strings, got {name!r}; {how}")
        if not isinstance(value, tuple | list) or len(value) != 2:
            kind = type(value).__name__
            raise ValueError(f"fit: eval_data[{name!r}] must be an (X, y) pair, got a {kind}")
    return dict(eval_data)
