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
import numpy as np
import optax

from nnjax.train.order import (
    SEEDS,
    as_key,
    batch_indices,
    check_order,
    epochs_batch_indices,
    is_full_batch,
    run_keys,
    step_keys,
)
from nnjax.train.step import (
    Carry,
    check_optimizer,
    make_eval_fn,
    make_objective,
    make_optimizer_step,
)

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


def check_eval_names(eval_names, where: str = "make_epochs_fn", arg: str = "eval_names"):
    """Evaluation set names become metric names ``{name}_loss`` and ``{name}_accuracy``: a
    tuple (or list, or a dict's keys) of non-empty strings, not one string (``"val"`` would
    be the names ``v``, ``a``, ``l``), and not ``"step"``. Returns them as a tuple."""
    if isinstance(eval_names, str | bytes):
        raise ValueError(
            f"{where}: {arg} must be a tuple of names, got the string {eval_names!r} (for one "
            f"set write ({eval_names!r},))"
        )
    names = tuple(eval_names)
    bad = [v for v in names if not isinstance(v, str)]
    if bad:
        raise ValueError(f"{where}: {arg}'s names must be strings, got {bad[0]!r}")
    if "" in names:  # made the metrics "_loss" and "_accuracy"
        raise ValueError(f"{where}: {arg}: a set's name must not be empty (e.g. 'val')")
    if "step" in names:
        raise ValueError(
            f"{where}: {arg}: the name 'step' is taken (step_loss is the per-step training "
            "loss); rename it"
        )
    return names


def check_run_data(where: str, n_examples: int, eval_names, X, y, evals) -> None:
    """The data a built loop is called with, on static shapes (at trace time, nothing added
    to the program): X and y hold the ``n_examples`` rows the batch indices were drawn for
    (a gather clamps an index past the end to the last row, and rows past n would never be
    visited), and ``evals`` is one (x, y) pair per evaluation name, in order."""
    for name, a in (("X", X), ("y", y)):
        rows = np.shape(a)[0] if np.ndim(a) else None
        if rows != n_examples:
            raise ValueError(
                f"{where}: run got {name} with {rows} rows, but the loop was built for "
                f"n_examples={n_examples} (build it with n_examples={rows})"
            )
    count = len(evals) if isinstance(evals, tuple | list) else None
    if count != len(eval_names):
        raise ValueError(
            f"{where}: run got {count if count is not None else type(evals).__name__} "
            f"evaluation sets, but eval_names={eval_names} names {len(eval_names)}: pass "
            "evals as a tuple of one (x, y) pair per name, in order"
        )


def check_epochs(epochs, where: str):
    """``epochs`` as an int array (E,) of epoch indices (a list, a range or a NumPy array
    accepted, traced arrays too); a scalar, a 2-D array or floats are a ``ValueError`` naming
    ``where`` (a float index would be truncated into another epoch's shuffle), and so is a
    concrete index outside [0, 2**32), as :func:`~nnjax.train.order.batch_indices` refuses
    it (fold_in would take -1 as epoch 2**32 - 1, and 2**32 + 1 as epoch 1)."""
    if not hasattr(epochs, "shape") or not hasattr(epochs, "dtype"):
        try:
            epochs = jnp.asarray(epochs)  # a list of tracers too (a list under jit)
        except (TypeError, ValueError):
            epochs = None
    shape, dtype = getattr(epochs, "shape", None), getattr(epochs, "dtype", None)
    if shape is None or len(shape) != 1 or not jnp.issubdtype(dtype, jnp.integer):
        got = f"{dtype}{list(shape)}" if shape is not None else type(epochs).__name__
        raise ValueError(
            f"{where}: epochs must be an int array (E,) of epoch indices, e.g. jnp.arange(E), "
            f"got {got}"
        )
    if not isinstance(epochs, jax.core.Tracer) and shape[0]:
        values = np.asarray(epochs)
        bad = values[(values < 0) | (values >= SEEDS)]
        if bad.size:
            raise ValueError(
                f"{where}: epochs must be epoch indices in [0, 2**32), got {int(bad[0])} (it "
                f"would train on the order of epoch {int(bad[0]) % SEEDS})"
            )
    return epochs


def check_flag(value, where: str, name: str) -> bool:
    """``value`` a bool (NumPy's too), as a Python bool: 0.5 or 'no' is refused, not truthy."""
    if not isinstance(value, bool | np.bool_):
        raise ValueError(f"{where}: {name} must be True or False, got {value!r}")
    return bool(value)


def check_unroll(unroll, where: str) -> int | bool:
    """``unroll`` as ``lax.scan`` takes it: an int >= 1 (NumPy's too) or a bool, else a
    ``ValueError`` naming ``where`` (lax.scan would refuse "2", 2.5 or None only when run)."""
    if isinstance(unroll, bool | np.bool_):
        return bool(unroll)
    if not isinstance(unroll, int | np.integer) or unroll < 1:
        raise ValueError(
            f"{where}: unroll must be an int >= 1 (steps per iteration of the step scan) or a "
            f"bool (True: the whole epoch), got {unroll!r}"
        )
    return int(unroll)


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
    shuffle, so a run split into chunks equals the run in one piece). ``key``: a PRNG key (or
    an int seed). X and y must have ``n_examples`` rows; ``evals``: a tuple of (x, y) pairs
    matching ``eval_names`` (both checked when ``run`` is traced). ``optimizer``: an Optax
    transformation (:func:`nnjax.optim.get_optimizer`). ``batch_size``: an int in [1, n];
    None or n: full batch (one step per epoch on X in order). ``batch_sharding`` (e.g.
    :func:`nnjax.parallel.batch_sharding`): lay each batch out with it (data parallelism).
    ``unroll``: steps per iteration of the step scan; 2 by default (on the 2-core CPU it ran
    the MLP benchmark's batch-32 and batch-128 loops 5-13% faster than 1, and the default
    ``nnjax train`` compiled in 0.97 s instead of 0.85 s); an int >= 1 or a bool (True: the
    whole epoch, as ``lax.scan`` takes it), checked here. ``shuffle=False``: every epoch
    takes the batches in the stored order (:func:`~nnjax.train.order.batch_indices`), and
    ``batch_size`` must divide ``n_examples`` (else the last n % b rows would never be used).
    ``vmap`` over keys gives each run the order of that run alone, for every PRNG
    (:func:`~nnjax.train.order.per_key`); but a ``Dropout`` layer's masks from keys of
    ``"rbg"``/``"unsafe_rbg"`` differ under ``vmap`` (JAX's batching of XLA's RngBitGenerator):
    with dropout, vmap runs with threefry keys (the default) to equal the runs alone.
    """
    where = "make_epochs_fn"
    n_examples, batch_size = check_order(where, n_examples, batch_size, shuffle)
    eval_names = check_eval_names(eval_names, where)
    unroll = check_unroll(unroll, where)
    step = make_optimizer_step(make_objective(model, loss), check_optimizer(optimizer, where))
    full = is_full_batch(n_examples, batch_size)
    b = n_examples if full else batch_size
    n_steps = n_examples // b
    epoch = _epoch_fn(
        step, make_eval_fn(model, loss), full, n_steps, check_flag(dropout, where, "dropout"),
        eval_names, batch_sharding, unroll,
    )  # fmt: skip

    def run(carry, epochs, key, X, y, evals=()):
        check_run_data(where, n_examples, eval_names, X, y, evals)
        epochs = check_epochs(epochs, f"{where}: run")
        order_key, dropout_key = run_keys(as_key(key, f"{where}: run"))

        def rows(e):
            return None if full else batch_indices(order_key, e, n_examples, b, shuffle)

        hoist = not full and epochs.shape[0] * n_examples <= HOIST_MAX_INDICES
        idx = epochs_batch_indices(order_key, epochs, n_examples, b, shuffle) if hoist else None

        def body(c, xs):
            e, rows_e = xs
            return epoch(c, e, rows_e if hoist else rows(e), dropout_key, X, y, evals)

        return jax.lax.scan(body, Carry(*carry), (epochs, idx))

    return run, n_steps


def _epoch_fn(step, eval_fn, full, n_steps, dropout, eval_names, batch_sharding, unroll):
    """``epoch(carry, e, idx, dropout_key, X, y, evals) -> (carry, EpochOutputs)``: the T
    steps of epoch e on rows ``idx`` (T, b) (X and y whole for full batch), then its metrics."""

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

    return epoch


def gather_rows(idx: Array, X: Array, y: Array) -> tuple[Array, Array]:
    """Rows ``idx`` of X and y: shape ``idx.shape + X.shape[1:]`` and ``idx.shape +
    y.shape[1:]``. The indices come from :mod:`~nnjax.train.order`, always in range, so the
    gather clamps instead of checking (``mode="clip"``: the same rows as ``X[idx]``, 41 us
    instead of 68 us for 1024 rows of 784 floats on the CPU, measured)."""
    take = lambda a: jnp.take(a, idx, axis=0, mode="clip")  # noqa: E731
    return take(X), take(y)
