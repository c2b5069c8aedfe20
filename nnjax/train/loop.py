"""The training loop as one pure function: ``lax.scan`` over epochs of ``lax.scan`` over steps.

``run = make_epochs_fn(...)`` is pure and traceable, so anyone can ``jit`` it, ``vmap`` it over
runs (``compare`` trains every learning rate and seed of an optimizer in one program) or
shard it over devices (:mod:`nnjax.train.placement`). ``fit`` runs it through the driver.

Epoch e of a run with key ``key`` (the order is :mod:`nnjax.train.order`'s):

    idx   = batch_indices(order_key, e, n, b)           (T, b) rows, T = n // b (drawn for
                                                        every epoch of the call at once
                                                        when they fit HOIST_MAX_INDICES)
    Xe    = X[idx], ye = y[idx]                         one gather per epoch: (T, b, ...)
    carry = scan(step, carry, (Xe, ye))                 T updates on contiguous slices
    metrics: step_loss_mean = mean of the T step losses; for each evaluation set ``name``,
             ``name_loss`` and ``name_accuracy`` of the params after the epoch

Gathering the epoch's batches at once and slicing them in the step visits exactly the rows of
a gather per step (the same numbers, bit for bit), in one large gather instead of T small ones.
"""

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from nnjax.train.order import batch_indices, is_full_batch, run_keys, step_keys
from nnjax.train.step import Carry, make_eval_fn, make_objective, make_optimizer_step

Array = jax.Array

# A call draws the rows of all its epochs before its first step (one batched permutation
# instead of one per epoch: at batch 32 on the 2-core CPU the loop ran 2-7% faster, measured)
# when they number at most this many (4 MiB of int32 per run); otherwise epoch by epoch.
HOIST_MAX_INDICES = 1 << 20


class EpochOutputs(NamedTuple):
    """What the loop returns per epoch: ``step_loss`` (E, T) the loss of every step (before
    its update) and ``metrics`` name -> (E,) (``step_loss_mean`` and the evaluations)."""

    step_loss: Array
    metrics: dict[str, Array]


def check_eval_names(eval_names) -> tuple[str, ...]:
    """Evaluation set names become metric names ``{name}_loss`` and ``{name}_accuracy``."""
    names = tuple(eval_names)
    if "step" in names:
        raise ValueError(
            "eval_data: the name 'step' is taken (step_loss is the per-step training loss); "
            "rename it"
        )
    return names


def make_epochs_fn(
    model,
    loss: str | Callable,
    optimizer: optax.GradientTransformation,
    *,
    n_examples: int,
    batch_size: int | None,
    dropout: bool = False,
    eval_names: tuple[str, ...] = (),
    batch_sharding: Any = None,
    unroll: int = 2,
    shuffle: bool = True,
):
    """The pure training loop, for ``jit``/``vmap``; returns ``(run, steps_per_epoch)``:

    ``run(carry, epochs, key, X, y, evals=()) -> (carry, EpochOutputs)``

    ``carry``: :class:`~nnjax.train.step.Carry` (params, opt_state, model state; ``()`` for a
    stateless model). ``epochs``: int array (E,) of epoch indices (each seeds that epoch's
    shuffle, so a run split into chunks equals the run in one piece). ``evals``: a tuple of
    (x, y) pairs matching ``eval_names``. ``batch_size=None`` or ``n_examples``: full batch
    (one step per epoch on X in order). ``batch_sharding`` (e.g.
    :func:`nnjax.parallel.batch_sharding`): lay each batch out with it (data parallelism).
    ``unroll``: steps per iteration of the step scan; 2 by default (on the 2-core CPU it ran
    the MLP benchmark's batch-32 and batch-128 loops 5-13% faster than 1, and the default
    ``nnjax train`` compiled in 0.97 s instead of 0.85 s). ``shuffle=False``: every epoch
    takes the batches in the stored order (:func:`~nnjax.train.order.batch_indices`).
    """
    eval_names = check_eval_names(eval_names)
    step = make_optimizer_step(make_objective(model, loss), optimizer)
    eval_fn = make_eval_fn(model, loss)
    full = is_full_batch(n_examples, batch_size)
    b = n_examples if full else batch_size
    n_steps = n_examples // b

    def epoch(carry, e, idx, dropout_key, X, y, evals):
        batches = None if full else gather_rows(idx, X, y)
        keys = step_keys(dropout_key, e, n_steps) if dropout else None

        def one_step(carry, xs):
            batch, k = xs
            batch = (X, y) if full else batch
            if batch_sharding is not None:  # split the batch; XLA all-reduces the gradient
                batch = jax.lax.with_sharding_constraint(batch, batch_sharding)
            return step(carry, batch, k)

        carry, losses = jax.lax.scan(
            one_step, carry, (batches, keys), length=n_steps, unroll=unroll
        )
        metrics = {"step_loss_mean": jnp.mean(losses)}
        for name, (xe, ye) in zip(eval_names, evals):
            metrics[f"{name}_loss"], metrics[f"{name}_accuracy"] = eval_fn(
                carry.params, xe, ye, carry.state
            )
        return carry, EpochOutputs(losses, metrics)

    def run(carry, epochs, key, X, y, evals=()):
        order_key, dropout_key = run_keys(key)

        def rows(e):
            return None if full else batch_indices(order_key, e, n_examples, b, shuffle)

        hoist = not full and epochs.shape[0] * n_examples <= HOIST_MAX_INDICES
        idx = jax.vmap(rows)(epochs) if hoist else None  # every epoch's rows in one go

        def body(c, xs):
            e, rows_e = xs
            return epoch(c, e, rows_e if hoist else rows(e), dropout_key, X, y, evals)

        return jax.lax.scan(body, Carry(*carry), (epochs, idx))

    return run, n_steps


def gather_rows(idx: Array, X: Array, y: Array) -> tuple[Array, Array]:
    """Rows ``idx`` of X and y: shape ``idx.shape + X.shape[1:]`` and ``idx.shape +
    y.shape[1:]``. The indices come from :mod:`~nnjax.train.order`, always in range, so the
    gather clamps instead of checking (``mode="clip"``: the same rows as ``X[idx]``, 41 us
    instead of 68 us for 1024 rows of 784 floats on the CPU, measured)."""
    take = lambda a: jnp.take(a, idx, axis=0, mode="clip")  # noqa: E731
    return take(X), take(y)
