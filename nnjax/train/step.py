"""One optimisation step, the loss and the evaluation: the pieces every training loop shares.

With model f, loss l, params theta, model state s (``()`` for a stateless model) and a batch
(x, y):

    (J, s') = (l(f(theta, s, x; train)), s'(theta, s, x))      the objective (train mode)
    g = dJ/dtheta                                              jax.value_and_grad, has_aux
    theta, opt_state = optax update(g, opt_state, theta)
    s = s'                                                     the new model state

:func:`make_optimizer_step` is that update for any objective ``(params, state, *args) ->
(J, new_state)``; ``fit``'s loop, :func:`make_train_step` and the brain side's custom losses
all step through it.
"""

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from nnjax.layers.checks import ParamsError
from nnjax.losses import (
    binary_cross_entropy,
    binary_cross_entropy_with_logits,
    check_unit_interval,
    get_loss,
    mse,
    softmax_cross_entropy,
)
from nnjax.train.model import ShapeMismatch, as_apply, check_params, check_state, is_stateful

Array = jax.Array
Batch = tuple[Array, Array]


class Carry(NamedTuple):
    """What a training loop carries from step to step: ``params``, ``opt_state`` and the
    model ``state`` (``()`` for a stateless model)."""

    params: Any
    opt_state: Any
    state: Any = ()


def make_objective(model, loss: str | Callable = "softmax_cross_entropy") -> Callable:
    """``objective(params, state, batch, key=None) -> (J, new_state)``, in training mode:
    J = loss(apply(params, x), y) (dropout active when ``key`` is given)."""
    apply, loss_f = as_apply(model), get_loss(loss)

    def objective(params, state, batch: Batch, key=None):
        x, y = batch
        pred, state = apply(params, state, x, key, True)
        return loss_f(pred, y), state

    return objective


def check_optimizer(optimizer, where: str) -> optax.GradientTransformation:
    """``optimizer`` as given when it is an Optax transformation (``init`` and ``update``); a
    name or anything else is a ``ValueError`` naming ``where`` (build one with
    :func:`nnjax.optim.get_optimizer`: a name needs its learning rate)."""
    if callable(getattr(optimizer, "init", None)) and callable(getattr(optimizer, "update", None)):
        return optimizer
    from nnjax.losses import LOSSES
    from nnjax.optim import OPTIMIZERS

    if isinstance(optimizer, str) and optimizer in LOSSES and optimizer not in OPTIMIZERS:
        raise ValueError(
            f"{where}: optimizer must be an optax.GradientTransformation, got the loss name "
            f"{optimizer!r}: are the loss and the optimizer swapped? (the loss comes first)"
        )
    name = optimizer if isinstance(optimizer, str) and optimizer in OPTIMIZERS else "adam"
    hint = f"nnjax.get_optimizer({name!r}, learning_rate)"
    raise ValueError(
        f"{where}: optimizer must be an optax.GradientTransformation (e.g. {hint}), got "
        f"{optimizer!r}"
    )


def make_optimizer_step(objective: Callable, optimizer: optax.GradientTransformation):
    """``step(carry, *args) -> (carry, J)``: one update of ``carry = Carry(params, opt_state,
    state)`` on ``objective(params, state, *args) -> (J, new_state)`` (J taken before it)."""

    def step(carry: Carry, *args):
        params, opt_state, state = carry
        (value, state), grads = jax.value_and_grad(objective, has_aux=True)(params, state, *args)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return Carry(optax.apply_updates(params, updates), opt_state, state), value

    return step


def _given_state(model, stateful: bool, state, where: str):
    """The state a step was given, checked where the structure is known (also under jit): a
    stateful model's missing (None or ``()``) and a stateless model's non-empty one raise a
    ``ValueError`` naming ``where`` (:func:`~nnjax.train.model.check_state`)."""
    if stateful and (state is None or (isinstance(state, tuple) and not state)):
        state = None  # check_state raises: the state is missing
    return check_state(model, state, where)


def make_loss_fn(model, loss: str | Callable = "softmax_cross_entropy"):
    """Return ``loss_fn(params, batch, key=None, *, state=()) -> scalar`` = loss(apply(params,
    x), y) in training mode (a stateful model's new state is dropped; pass its ``state``:
    without it, a ``ValueError`` naming ``make_loss_fn``, as ``make_train_step`` does; a
    stateless model given a non-empty ``state`` raises as well)."""
    objective, stateful = make_objective(model, loss), is_stateful(model)

    def loss_fn(params, batch: Batch, key=None, *, state=()):
        state = _given_state(model, stateful, state, "make_loss_fn: loss_fn")
        return objective(params, state, batch, key)[0]

    return loss_fn


def classification_accuracy(pred: Array, y: Array, threshold: float = 0.0) -> Array:
    """Fraction of correct predictions.

    pred (B, K>1): argmax against integer labels (B,) or one-hot (B, K).
    pred (B, 1) or (B,): pred > threshold against binary labels (0.0 for logits,
    0.5 for probabilities).

    The fraction c / B is a scalar in pred's float dtype, at least float32 (float64
    predictions under x64 give a float64 accuracy, as their loss is; ``jnp.mean`` of a
    bool array alone is float32 even under x64, 1/3 as 0.3333333433).
    """
    dtype = jnp.promote_types(pred.dtype, jnp.float32)  # bf16 -> f32, f64 kept
    if pred.ndim >= 2 and pred.shape[-1] > 1:
        labels = jnp.argmax(y, axis=-1) if y.shape == pred.shape else y
        return jnp.mean(jnp.argmax(pred, axis=-1) == labels, dtype=dtype)
    p = pred.reshape(pred.shape[0], -1)[:, 0] if pred.ndim >= 2 else pred
    return jnp.mean((p > threshold) == (y.reshape(p.shape) > 0.5), dtype=dtype)


def _threshold(loss) -> float:
    """The accuracy's threshold on a one-output prediction: 0.5 for the losses that take
    probabilities or values in [0, 1] (``binary_cross_entropy``, ``mse``), by name or as the
    function itself; 0.0 (logits) otherwise."""
    loss_f = get_loss(loss)
    return 0.5 if loss_f is binary_cross_entropy or loss_f is mse else 0.0


def make_eval_fn(model, loss: str | Callable = "softmax_cross_entropy"):
    """Return ``eval_fn(params, x, y, state=()) -> (loss, accuracy)`` in evaluation mode (no
    dropout key; a stateful model uses its state, e.g. BatchNorm's running statistics)."""
    apply, loss_f, thr = as_apply(model), get_loss(loss), _threshold(loss)

    def eval_fn(params, x, y, state=()):
        pred, _ = apply(params, state, x, None, False)
        return loss_f(pred, y), classification_accuracy(pred, y, thr)

    return eval_fn


def make_train_step(model, loss: str | Callable, optimizer: optax.GradientTransformation):
    """A jitted ``step(params, opt_state, batch, key=None) -> (params, opt_state, loss)``.

    A stateful model's step takes its state and returns the new one as well:
    ``step(params, opt_state, batch, key=None, *, state) -> (params, opt_state, loss, state)``.

    Labels are not checked here: under ``jit`` they are traced, and an integer label outside
    [0, K) for the softmax cross-entropy gives a NaN loss instead of an error; its row gets
    no gradient, so the params stay finite and only the loss shows it. ``fit`` and
    ``evaluate`` check the labels where they are concrete, before compiling; check your own
    batches the same way (``0 <= y.min()`` and ``y.max() < K``) when you drive this step
    yourself.
    """
    optimizer = check_optimizer(optimizer, "make_train_step")
    update = make_optimizer_step(make_objective(model, loss), optimizer)
    stateful = is_stateful(model)

    @jax.jit
    def step(params, opt_state, batch, key=None, *, state=()):
        state = _given_state(model, stateful, state, "make_train_step: step")
        carry, value = update(Carry(params, opt_state, state), batch, key)
        if stateful:
            return carry.params, carry.opt_state, value, carry.state
        return carry.params, carry.opt_state, value

    return step


def evaluate(
    model, params, X, y, loss: str | Callable = "softmax_cross_entropy", *, state=None
) -> dict:
    """Loss and accuracy of ``params`` on (X, y), as Python floats (evaluation mode; a
    stateful model needs its ``state``). Checked here, where they are concrete: the params
    (and state) against the model's (:func:`~nnjax.train.model.check_params`), X against the
    model, and integer labels outside the model's K outputs (each a ``ValueError``)."""
    X, y = check_data(X, y, "evaluate")
    state = check_state(model, state, "evaluate")
    try:
        check_params(model, params, state, X.shape[1:], "evaluate")
    except ShapeMismatch:  # X may be the culprit (another width than the params'): say so first
        try:
            _output_shape(model, params, state, X, "evaluate")
        except ParamsError:  # a layer refused the params: the leaf-by-leaf message says more
            pass
        raise
    check_labels(loss, y, _output_shape(model, params, state, X, "evaluate"), "evaluate: y")
    loss_v, acc = jax.jit(make_eval_fn(model, loss))(params, X, y, state)
    return {"loss": float(loss_v), "accuracy": float(acc)}


def _output_shape(model, params, state, X, where: str) -> tuple:
    """The model's output shape on one example of X (traced, nothing computed)."""
    apply = as_apply(model)
    try:
        out = jax.eval_shape(lambda p, s, x: apply(p, s, x)[0], params, state, X[:1])
    except ParamsError as e:  # the params are the culprit, not X
        raise ParamsError(f"{where}: {e}") from None
    except ValueError as e:
        raise ValueError(f"{where}: model does not accept X of shape {X.shape}: {e}") from None
    return out.shape


def as_data_array(a, name: str, where: str) -> Array:
    """``a`` as a JAX array of numbers (bool, int or float), refused with a ``ValueError``
    naming ``where`` and ``name`` when it holds anything else (text, objects, complex
    numbers) or when JAX would change its values: without x64 an int64 array becomes int32
    and a float64 one float32, so an integer beyond int32's range would silently wrap
    around (2**31 -> -2**31) and a float beyond float32's range become inf. A JAX array of
    float64 made under ``jax.enable_x64(True)`` is converted the same way."""
    if isinstance(a, jax.Array) and jax.dtypes.canonicalize_dtype(a.dtype) == a.dtype:
        return a  # already JAX's, in a dtype it computes in (not float64 made under x64)
    try:
        host = np.asarray(a)
    except (TypeError, ValueError) as e:  # a ragged list
        raise ValueError(f"{where}: {name} must be an array of numbers: {e}") from None
    dtype = host.dtype
    if not (dtype == np.bool_ or jnp.issubdtype(dtype, jnp.integer)
            or jnp.issubdtype(dtype, jnp.floating)):  # fmt: skip
        raise ValueError(
            f"{where}: {name} must hold numbers (bool, int or float), got dtype {dtype}"
            + (
                " (text: convert it to numbers or class indices first)"
                if dtype.kind in "USO"
                else ""
            )
        )
    with np.errstate(over="ignore"):  # a float64 beyond float32's range: named below
        out = jnp.asarray(host)
    if jnp.issubdtype(dtype, jnp.integer) and out.dtype.itemsize < dtype.itemsize and host.size:
        info = np.iinfo(out.dtype)
        lo, hi = host.min(), host.max()
        if lo < info.min or hi > info.max:
            raise ValueError(
                f"{where}: {name} holds integers from {lo} to {hi}, beyond {out.dtype} "
                f"([{info.min}, {info.max}]), to which JAX converts {dtype} without x64: they "
                "would wrap around; convert them to float, or enable x64 (nnjax.enable_x64())"
            )
    narrowed = jnp.issubdtype(dtype, jnp.floating) and out.dtype.itemsize < dtype.itemsize
    if narrowed and not bool(jnp.isfinite(out).all()):  # inf in the data itself is not ours
        if not bool(jnp.isfinite(out)[np.isfinite(host)].all()):
            raise ValueError(
                f"{where}: {name} holds values beyond {out.dtype}'s range (largest "
                f"{float(jnp.finfo(out.dtype).max):.4g}), to which JAX converts {dtype} without "
                "x64: they would become inf; rescale them, or enable x64 (nnjax.enable_x64())"
            )
    return out


def check_data(X, y, where: str) -> tuple[Array, Array]:
    """(X, y) as arrays of numbers (:func:`as_data_array`): X (n, ...) with n >= 1 rows,
    y (n, ...), no nan/inf in either."""
    X, y = as_data_array(X, "X", where), as_data_array(y, "y", where)
    if X.ndim < 2:
        raise ValueError(f"{where}: X must have shape (n_examples, features...), got {X.shape}")
    if X.shape[0] == 0:
        raise ValueError(f"{where}: X has no examples (shape {X.shape}); the dataset is empty")
    if y.shape[:1] != X.shape[:1]:
        raise ValueError(f"{where}: X has {X.shape[0]} examples but y has shape {y.shape}")
    for name, a in (("X", X), ("y", y)):
        if jnp.issubdtype(a.dtype, jnp.inexact):
            bad = ~jnp.isfinite(a.reshape(a.shape[0], -1)).all(axis=1)
            if bool(bad.any()):
                rows = np.flatnonzero(np.asarray(bad))
                raise ValueError(
                    f"{where}: {name} has nan/inf in {rows.size} example(s), first rows "
                    f"{rows[:5].tolist()}"
                )
    return X, y


def check_labels(loss, y, out_shape, where: str) -> None:
    """The loss takes the model's outputs (len(y), *out_shape[1:]) with targets y and returns
    a float scalar J (traced, nothing computed: a gradient needs one number); integer labels
    for the softmax cross-entropy must index its K outputs, its float targets be >= 0."""
    loss_fn = get_loss(loss)
    name = getattr(loss_fn, "__name__", "the loss")
    pred = jax.ShapeDtypeStruct((len(y), *out_shape[1:]), jnp.float32)
    try:
        out = jax.eval_shape(loss_fn, pred, jax.ShapeDtypeStruct(y.shape, y.dtype))
    except (TypeError, ValueError) as e:
        raise ValueError(
            f"{where} {y.shape} does not fit loss {name!r} on the model's outputs {pred.shape}: {e}"
        ) from None
    shape, dtype = getattr(out, "shape", None), getattr(out, "dtype", None)
    if shape != () or not jnp.issubdtype(dtype, jnp.floating):
        got = f"shape {shape} and dtype {dtype}" if shape is not None else type(out).__name__
        raise ValueError(
            f"{where.split(':')[0]}: loss {name!r} must return a float scalar (the mean over the "
            f"batch: a gradient needs one number), got {got} for predictions {pred.shape}"
        )
    if loss_fn in (binary_cross_entropy, binary_cross_entropy_with_logits):
        check_unit_interval(y, where, f"targets of loss {loss_fn.__name__!r}", " (0/1 labels)")
    if loss_fn is softmax_cross_entropy and len(out_shape) >= 2 and out_shape[-1] == 1:
        raise ValueError(
            f"{where.split(':')[0]}: loss 'softmax_cross_entropy' on the model's 1 output is 0 "
            "for every input (a softmax over one class is 1): nothing would train; give the "
            "model one output per class (K >= 2), or use 'binary_cross_entropy_with_logits' "
            "for 0/1 labels"
        )
    if loss_fn is softmax_cross_entropy and jnp.issubdtype(y.dtype, jnp.floating):
        lo = float(np.min(y)) if np.size(y) else 0.0
        if not lo >= 0:  # nan too; a target above 1 is a weight
            raise ValueError(
                f"{where}: targets of loss 'softmax_cross_entropy' must be >= 0 (a negative one "
                f"makes the loss unbounded below); got values from {lo:g} to {float(np.max(y)):g}"
            )
    if loss_fn is not softmax_cross_entropy or not jnp.issubdtype(y.dtype, jnp.integer):
        return
    k = out_shape[-1]
    labels = np.asarray(y)  # concrete here: NumPy's min/max compile nothing (jnp's: 2 per shape)
    lo, hi = int(labels.min()), int(labels.max())
    if lo < 0 or hi >= k:
        raise ValueError(
            f"{where} holds labels from {lo} to {hi}, but the model has {k} outputs "
            f"(labels must be in [0, {k}))"
        )
