"""Named optimizers, built from Optax.

With gradient g_t and learning rate eta (the update equations, Optax's conventions):

* ``gd`` / ``sgd``:  theta <- theta - eta g_t  (``gd`` is the name for full-batch use)
* ``momentum``:      v <- mu v + g_t;  theta <- theta - eta v
* ``nesterov``:      v <- mu v + g_t;  theta <- theta - eta (g_t + mu v)
* ``adam``:          m <- b1 m + (1-b1) g;  s <- b2 s + (1-b2) g^2;
                     theta <- theta - eta m_hat / (sqrt(s_hat) + eps), hats bias-corrected
* ``adamw``:         adam's step plus eta * weight_decay * theta
* ``rmsprop``:       s <- decay s + (1-decay) g^2 (s_0 = 0);  theta <- theta - eta g / sqrt(s + eps)
* ``adagrad``:       s <- s + g^2 (s_0 = initial_accumulator_value);
                     theta <- theta - eta g / sqrt(s + eps)
  (Optax puts eps inside the square root for these two, outside it for adam.)

The learning rate may be a float or an Optax schedule (``step -> eta``). Any
``optax.GradientTransformation`` passed to :func:`get_optimizer` is returned as is.

Two facts about the names live here and nowhere else: :data:`DEFAULT_LEARNING_RATE` (the
rate ``fit`` uses when none is given, and ``nnjax train`` too, except for adam on a built-in
dataset, whose preset names its own rate: :mod:`nnjax.presets`) and :data:`FULL_BATCH` (the
optimizers that take the whole training set at every step). This module imports Optax only
inside its functions, so the names and defaults can be listed (``nnjax train --help``)
without JAX.
"""

from __future__ import annotations

import functools
import inspect
import numbers
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import optax

from nnjax.optim_checks import (
    NONNEGATIVE,
    OPEN_UNIT,
    POSITIVE,
    RATE,
    SMALLEST_RATE,
    UNIT,
    Schedule,
    check_learning_rate,
    check_rate_nonzero,
    check_schedule_start,
    default_float,
    is_traced_rate,
    number,
    real,
)


def _sgd(learning_rate):
    import optax

    return optax.sgd(learning_rate)


def _momentum(learning_rate, momentum=0.9):
    import optax

    return optax.sgd(learning_rate, momentum=number("momentum", momentum, UNIT))


def _nesterov(learning_rate, momentum=0.9):
    import optax

    return optax.sgd(learning_rate, momentum=number("momentum", momentum, UNIT), nesterov=True)


def _eps(eps) -> float:
    """adam's, adamw's and rmsprop's ``eps``: a finite number > 0 that is not 0 in JAX's
    default float (below its smallest normal number, 1.2e-38 in float32, XLA flushes it to
    0): they divide by sqrt(s) + eps or sqrt(s + eps), so a gradient of exactly 0 (a dead
    unit) would give 0/0 = nan (eps 1e-40 made adam's update nan)."""
    eps = number("eps", eps, POSITIVE)
    dtype = default_float()
    smallest = SMALLEST_RATE.get(dtype)
    if smallest is not None and eps < smallest:
        raise ValueError(
            f"eps {eps:g} is 0 in {dtype}, JAX's default float dtype (the smallest eps that is "
            f"not: {smallest:.4g}): a gradient of 0 would make the update 0/0 = nan"
        )
    return eps


def _adam(learning_rate, b1=0.9, b2=0.999, eps=1e-8):
    import optax

    b1, b2, eps = number("b1", b1, UNIT), number("b2", b2, UNIT), _eps(eps)
    return optax.adam(learning_rate, b1=b1, b2=b2, eps=eps)


ADAMW_WEIGHT_DECAY = 1e-4
"""adamw's own weight decay (Optax's default), used when none is given."""


def _adamw(learning_rate, b1=0.9, b2=0.999, eps=1e-8, weight_decay=ADAMW_WEIGHT_DECAY):
    import optax

    b1, b2, eps = number("b1", b1, UNIT), number("b2", b2, UNIT), _eps(eps)
    weight_decay = number("weight_decay", weight_decay, NONNEGATIVE)
    return optax.adamw(learning_rate, b1=b1, b2=b2, eps=eps, weight_decay=weight_decay)


def _rmsprop(learning_rate, decay=0.9, eps=1e-8):
    import optax

    decay, eps = number("decay", decay, UNIT), _eps(eps)
    return optax.rmsprop(learning_rate, decay=decay, eps=eps)


def _adagrad(learning_rate, initial_accumulator_value=0.1, eps=1e-7):
    import optax

    acc = number("initial_accumulator_value", initial_accumulator_value, NONNEGATIVE)
    return optax.adagrad(
        learning_rate, initial_accumulator_value=acc, eps=number("eps", eps, POSITIVE)
    )


OPTIMIZERS: dict[str, Callable[..., optax.GradientTransformation]] = {
    "gd": _sgd,
    "sgd": _sgd,
    "momentum": _momentum,
    "nesterov": _nesterov,
    "adam": _adam,
    "adamw": _adamw,
    "rmsprop": _rmsprop,
    "adagrad": _adagrad,
}

DEFAULT_LEARNING_RATE: dict[str, float] = {
    "gd": 1e-2,
    "sgd": 1e-2,
    "momentum": 1e-2,
    "nesterov": 1e-2,
    "adam": 1e-3,
    "adamw": 1e-3,
    "rmsprop": 1e-2,
    "adagrad": 1e-2,
}
"""The learning rate each optimizer gets when none is given (``fit``; ``nnjax train`` too,
but adam on a built-in dataset gets its preset's rate, :data:`nnjax.presets.PRESETS`)."""

FULL_BATCH: frozenset[str] = frozenset({"gd"})
"""Optimizers that always step on the whole training set: ``batch_size`` must be None (or n,
the same full batch)."""


def get_optimizer(
    optimizer: str | optax.GradientTransformation,
    learning_rate: float | Schedule | None = None,
    **hyperparams,
) -> optax.GradientTransformation:
    """Build an optimizer by name (see the module docstring), or pass an Optax one through.

    A traced ``learning_rate`` (a scalar under ``jit``, ``vmap`` or ``grad``: a
    meta-gradient with respect to it) is taken as given, unchecked, as Optax takes it.
    A float ``learning_rate`` must be finite, and not 0, in JAX's default float (float32;
    float64 under x64; :func:`~nnjax.optim_checks.check_rate_nonzero`); a schedule must give
    one finite rate >= 0 at step 0, finite in that dtype too (called once). Hyperparameters
    are real numbers (not bools or strings): momentum, b1, b2, decay in [0, 1); eps > 0 (for
    adam, adamw and rmsprop not 0 in JAX's default float either: >= 1.2e-38 in float32);
    weight_decay, initial_accumulator_value >= 0; finite. A ``ValueError`` names a bad one.

    >>> opt = get_optimizer("adam", 1e-3)
    >>> opt = get_optimizer("momentum", optax.cosine_decay_schedule(0.1, 1000), momentum=0.95)
    """
    import optax

    if isinstance(optimizer, optax.GradientTransformation):
        if learning_rate is not None or hyperparams:
            raise ValueError("an optax.GradientTransformation takes no learning_rate/hyperparams")
        return optimizer
    if not isinstance(optimizer, str) or optimizer not in OPTIMIZERS:
        raise ValueError(
            f"unknown optimizer {optimizer!r}; valid names: {', '.join(OPTIMIZERS)}"
            " (or pass an optax.GradientTransformation)"
        )
    if learning_rate is None:
        raise ValueError(f"optimizer {optimizer!r} needs a learning_rate")
    if not is_traced_rate(learning_rate):  # a traced rate (jit, vmap, grad) goes as given
        check_learning_rate(learning_rate, default_float(), "JAX's default float dtype")
        check_rate_nonzero(learning_rate, default_float(), "JAX's default float dtype")
    factory = OPTIMIZERS[optimizer]
    takes = list(inspect.signature(factory).parameters)[1:]
    unknown = sorted(set(hyperparams) - set(takes))
    if unknown:
        raise ValueError(
            f"optimizer {optimizer!r}: bad hyperparameters: unknown {', '.join(unknown)}; it "
            f"takes {', '.join(takes) or 'none'}"
        )
    try:
        return factory(learning_rate, **hyperparams)
    except ValueError as e:
        raise ValueError(f"{optimizer}: {e}") from None


def injectable_optimizer(name: str, learning_rate, **hyperparams) -> optax.GradientTransformation:
    """Like :func:`get_optimizer`, but the learning rate lives in the optimizer state
    (``optax.inject_hyperparams``), so it can be a traced value: vmap over learning rates
    by vmapping ``init`` over an array of them. Read it back at
    ``state.hyperparams["learning_rate"]``. A rate given as one number (or a schedule) is
    checked as :func:`get_optimizer` checks it.
    """
    import optax

    get_optimizer(name, 1.0, **hyperparams)  # validate name and hyperparameters
    if isinstance(learning_rate, str | bytes | bool) or real(learning_rate) is not None:
        check_learning_rate(learning_rate, default_float(), "JAX's default float dtype")
        check_rate_nonzero(learning_rate, default_float(), "JAX's default float dtype")
    elif callable(learning_rate):
        check_schedule_start(learning_rate, default_float(), "JAX's default float dtype")
    # a traced rate or an array of rates: as given
    factory = OPTIMIZERS[name]
    return optax.inject_hyperparams(lambda learning_rate: factory(learning_rate, **hyperparams))(
        learning_rate=learning_rate
    )


# --- weight decay and learning-rate schedules ------------------------------------------

WEIGHT_DECAY: dict[str, str] = {
    "gd": "L2: lambda * theta added to the gradient (for plain gradient descent the same "
    "as decoupled decay: theta <- theta - eta (g + lambda theta))",
    "sgd": "L2, as gd",
    "momentum": "L2: lambda * theta added to the gradient before the momentum trace "
    "(coupled; PyTorch's SGD weight_decay)",
    "nesterov": "L2, as momentum",
    "adam": "decoupled: Optax's adamw, theta <- theta - eta (adam step + lambda theta)",
    "adamw": "decoupled: adamw's own weight_decay set to lambda",
    "rmsprop": "L2: lambda * theta added to the gradient before the scaling (coupled; "
    "PyTorch's RMSprop weight_decay)",
    "adagrad": "L2, as rmsprop (PyTorch's Adagrad weight_decay)",
}
"""How ``weight_decay`` (lambda) acts with each optimizer (:func:`with_weight_decay`). It
applies to every params leaf (biases and normalisation scales included), like Optax's
defaults; eta is the learning rate of the step (scheduled or not)."""


def _check_steps(name: str, value) -> int:
    """``value`` as a Python int >= 1 (a NumPy int too; not a bool), else a ``ValueError``
    naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"schedule: {name} must be an int >= 1, got {value!r}")
    return int(value)


SCHEDULES = ("constant", "cosine", "warmup-cosine", "exponential")
DEFAULT_WARMUP = 0.05
"""warmup-cosine's warmup, as a fraction of the run's steps."""
DEFAULT_DECAY_RATE = 0.95
"""exponential's factor per epoch."""


def with_weight_decay(name: str, learning_rate, weight_decay: float | None, **hyperparams):
    """The optimizer ``name`` with weight decay ``weight_decay`` (lambda >= 0), acting as
    :data:`WEIGHT_DECAY` says: adam becomes adamw, adamw takes it as its own, the others get
    ``optax.add_decayed_weights(lambda)`` chained in front (L2 on the gradient). 0 or None:
    :func:`get_optimizer`'s transformation, except that adamw given None keeps its own
    :data:`ADAMW_WEIGHT_DECAY` (and 0 turns it off). Either way it carries its ``recipe`` (name,
    learning rate or schedule, weight decay, hyperparameters), so that ``fit``'s checkpoints
    record it and a resume with other settings is refused (an Optax transformation alone
    cannot be described: its hyperparameters live in closures)."""
    import optax

    if weight_decay is not None:  # a bool or a string is refused: True would be lambda = 1
        number("weight_decay", weight_decay, NONNEGATIVE)
    # name, rate and hyperparameters checked as `name` (adam's errors named adamw)
    opt = get_optimizer(name, learning_rate, **hyperparams)
    if name == "adamw":  # None: its own; recorded as applied (0.0 was recorded for 1e-4)
        weight_decay = ADAMW_WEIGHT_DECAY if weight_decay is None else weight_decay
        opt = get_optimizer("adamw", learning_rate, weight_decay=weight_decay, **hyperparams)
    elif weight_decay and name == "adam":
        opt = get_optimizer("adamw", learning_rate, weight_decay=weight_decay, **hyperparams)
    elif weight_decay:
        opt = optax.chain(optax.add_decayed_weights(weight_decay), opt)
    recipe = {"name": name, "learning_rate": learning_rate, **hyperparams}
    return _with_recipe(opt, {**recipe, "weight_decay": float(weight_decay or 0.0)})


@functools.cache
def _described_type():
    import optax

    class Described(optax.GradientTransformationExtraArgs):
        """An Optax transformation with the ``recipe`` it was built from (a dict)."""

    return Described


def _with_recipe(opt, recipe: dict):
    import optax

    t = optax.with_extra_args_support(opt)
    out = _described_type()(t.init, t.update)
    out.recipe = recipe
    return out


def make_schedule(
    name: str,
    learning_rate: float,
    *,
    total_steps: int,
    steps_per_epoch: int = 1,
    warmup: float = DEFAULT_WARMUP,
    decay_rate: float = DEFAULT_DECAY_RATE,
):
    """The learning rate eta_t of step t (t = 0 .. T - 1, T = ``total_steps``) from the peak
    rate eta_0 = ``learning_rate``, as Optax schedules (a float for ``constant``):

    * ``constant``:      eta_t = eta_0
    * ``cosine``:        eta_t = eta_0 (1 + cos(pi t / T)) / 2           (optax.cosine_decay_schedule)
    * ``warmup-cosine``: eta_t = eta_0 t / W for t < W, then
                         eta_0 (1 + cos(pi (t - W) / (T - W))) / 2,
                         W = round(``warmup`` T), at least 1 and below T (optax.warmup_cosine_decay_schedule)
                         (so T >= 2: a one-step run has no room for a warmup and a decay)
    * ``exponential``:   eta_t = eta_0 r^(t / S), r = ``decay_rate`` per epoch of S =
                         ``steps_per_epoch`` steps (optax.exponential_decay, continuous)

    ``total_steps`` and ``steps_per_epoch``: ints >= 1 (NumPy ints too); ``warmup`` a number
    in (0, 1), ``decay_rate`` in (0, 1]; ``learning_rate`` one number (not a schedule), finite
    in JAX's default float, or a traced scalar (under ``vmap`` or ``grad``), taken as given
    as :func:`get_optimizer` takes it. A ``ValueError`` names a bad argument.
    """  # noqa: E501
    import optax

    if name not in SCHEDULES:
        raise ValueError(f"unknown schedule {name!r}; valid: {', '.join(SCHEDULES)}")
    if callable(learning_rate):  # optax would multiply the function at the first step
        raise ValueError(
            f"make_schedule: learning_rate must be one number, the peak rate eta_0, got the "
            f"schedule {learning_rate!r}; pass a schedule to get_optimizer as it is"
        )
    total_steps = _check_steps("total_steps", total_steps)
    steps_per_epoch = _check_steps("steps_per_epoch", steps_per_epoch)
    traced = is_traced_rate(learning_rate)
    if not traced:  # a traced peak (vmap, grad) goes as given
        check_learning_rate(learning_rate, default_float(), "JAX's default float dtype")
        check_rate_nonzero(learning_rate, default_float(), "JAX's default float dtype")
    # checked whatever the schedule (warmup=5 with cosine passed), named by the one using it
    warmup = number("warmup", warmup, OPEN_UNIT, "schedule warmup-cosine: ")
    decay_rate = number("decay_rate", decay_rate, RATE, "schedule exponential: ")
    if name == "constant":
        return learning_rate
    if name == "cosine":
        return optax.cosine_decay_schedule(learning_rate, decay_steps=total_steps, alpha=0.0)
    if name == "warmup-cosine":
        if total_steps < 2:
            raise ValueError(
                "schedule warmup-cosine: the run has 1 step, and a warmup then a decay need "
                "at least 2 (train for more steps: more epochs or a smaller batch size, or "
                "use another schedule)"
            )
        w = min(max(round(warmup * total_steps), 1), total_steps - 1)
        peak = 1.0 if traced else learning_rate  # Optax tests `peak == 0`: a tracer fails
        schedule = _float_count(
            optax.warmup_cosine_decay_schedule(
                0.0, peak, warmup_steps=w, decay_steps=total_steps, end_value=0.0
            )
        )
        return (lambda count: learning_rate * schedule(count)) if traced else schedule
    return _float_count(
        optax.exponential_decay(
            learning_rate, transition_steps=steps_per_epoch, decay_rate=decay_rate
        )
    )


def _float_count(schedule):
    """``schedule`` called with its step count as a float of the default float type. Optax
    passes an int32 count, and these two schedules then compute in float32 even under x64
    (the rate 1e-9 from its float64 value, the params of a float64 run 1e-8 from the NumPy
    twin's after 30 steps); in float32 the rates are bit for bit the same as before."""
    import jax.numpy as jnp

    @functools.wraps(schedule)
    def at(count):
        return schedule(jnp.asarray(count, jnp.result_type(float)))

    return at
