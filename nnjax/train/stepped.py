"""The loop driven from the host: k optimizer steps per compiled call (``"chunked"``), or one
(``"per_step"``): the same run as the fused loop of :mod:`nnjax.train.loop`, another program.

Epoch e of a run with key ``key``: T = n // b steps in T / k calls of k steps (k is the
largest divisor of T up to the ``steps_per_call`` asked for, so one program compiles):

    idx, keys = batch_indices(order_key, e, n, b), step_keys(dropout_key, e, T)   one call
    for t in 0, k, 2k, ...:                                                      T/k calls
        carry, l[t:t+k] = k straight-line steps on rows idx[t:t+k] (gathered inside)
    metrics = step_loss_mean(l) and the evaluations after the epoch              one call

The order, the step and the evaluations are the fused loop's (:mod:`nnjax.train.order`,
:mod:`nnjax.train.step`), so the numbers are the same up to float rounding (XLA fuses the
two programs differently). Only where the loop over steps runs differs: a Python loop calls
a compiled program of k steps that holds no loop itself (``lax.scan`` fully unrolled; k = 1
calls the step as is).

Why it exists (see :mod:`nnjax.train.execution`): XLA:CPU runs a convolution fast (Eigen's
kernel) only in *canonical* form (input NWC, kernel WIO) and rewrites the others into it
only in the program's entry computation, not inside a while loop; the gradient of a
convolution is non-canonical, so the body of a scan over steps runs it in XLA's naive loop
emitter, 5-6x slower for the MNIST-1D CNN. Straight-line steps keep the fast kernel.
"""

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax

from nnjax.train.driver import HostProgram, ahead_of_time, through_jit
from nnjax.train.loop import (
    EpochOutputs,
    check_eval_names,
    check_flag,
    check_run_data,
    gather_rows,
)
from nnjax.train.order import (
    as_int,
    batch_indices,
    check_order,
    is_full_batch,
    run_keys,
    step_keys,
)
from nnjax.train.placement import Placement
from nnjax.train.step import (
    Carry,
    check_optimizer,
    make_eval_fn,
    make_objective,
    make_optimizer_step,
)


class SteppedLoop(HostProgram):
    """fit's loop, k steps per compiled call: a driver host program with the signature of
    :func:`~nnjax.train.loop.make_epochs_fn`'s ``run(carry, epochs, key, X, y, evals)``.

    ``steps_per_call`` >= 1: k is the largest divisor of T = steps per epoch up to it (a
    prime T runs per step, or in one call when ``steps_per_call`` >= T); the other
    arguments are ``make_epochs_fn``'s, checked as it checks them (a ``ValueError`` naming
    ``SteppedLoop``: ``batch_size`` in [1, n] or None, X and y of ``n_examples`` rows, one
    eval pair per name), and ``placement`` compiles every piece (one device, or the
    data-parallel mesh).
    """

    def __init__(
        self,
        model,
        loss: str | Callable,
        optimizer: optax.GradientTransformation,
        *,
        n_examples: int,
        batch_size: int | None,
        steps_per_call: int = 1,
        dropout: bool = False,
        eval_names: tuple[str, ...] = (),
        placement: Placement | None = None,
        shuffle: bool = True,
    ):
        where = "SteppedLoop"
        k = as_int(steps_per_call)
        if k is None or k < 1:
            raise ValueError(
                f"{where}: steps_per_call must be a positive int, got {steps_per_call!r}"
            )
        n_examples, batch_size = check_order(where, n_examples, batch_size, shuffle)
        self.full = is_full_batch(n_examples, batch_size)
        self.b = n_examples if self.full else batch_size
        self.n, self.T = n_examples, n_examples // self.b
        # the largest divisor of T up to k: every call has k steps, one program compiles
        self.k = max(d for d in range(1, min(k, self.T) + 1) if self.T % d == 0)
        self.dropout = check_flag(dropout, where, "dropout")
        self.eval_names = check_eval_names(eval_names, where)
        self.shuffle = shuffle
        self.placement = placement or Placement()
        optimizer = check_optimizer(optimizer, where)
        self.step = make_optimizer_step(make_objective(model, loss), optimizer)
        self.eval_fn = make_eval_fn(model, loss)
        self._run = None

    # ---- the pure pieces, each compiled once ----------------------------------------------

    def _order(self, key, e):
        """The rows (T, b) (None for full batch) and dropout keys (T,) (None) of epoch e."""
        order_key, dropout_key = run_keys(key)
        idx = None if self.full else batch_indices(order_key, e, self.n, self.b, self.shuffle)
        keys = step_keys(dropout_key, e, self.T) if self.dropout else None
        return idx, keys

    def _steps(self, length: int):
        """``steps(carry, idx, keys, t, X, y) -> (carry, losses (length,))``: steps t ..
        t + length - 1 of the epoch, straight-line."""
        sharding = self.placement.batch_sharding

        def one(carry, xs, X, y):
            rows, key = xs
            batch = (X, y) if rows is None else gather_rows(rows, X, y)
            if sharding is not None:  # split the batch; XLA all-reduces the gradient
                batch = jax.lax.with_sharding_constraint(batch, sharding)
            return self.step(carry, batch, key)

        def steps(carry, idx, keys, t, X, y):
            cut = lambda a: None if a is None else jax.lax.dynamic_slice_in_dim(a, t, length)  # noqa: E731
            rows, ks = cut(idx), cut(keys)
            if length == 1:  # a scan of length 1 keeps its while loop: call the step
                first = lambda a: None if a is None else a[0]  # noqa: E731
                carry, value = one(carry, (first(rows), first(ks)), X, y)
                return carry, value[None]
            return jax.lax.scan(
                lambda c, xs: one(c, xs, X, y), carry, (rows, ks), length=length, unroll=True
            )

        return steps

    def _epoch_end(self, carry, losses, evals):
        """The epoch's step losses (T,) and metrics, as the fused loop computes them."""
        step_loss = jnp.concatenate(losses)
        metrics = {"step_loss_mean": jnp.mean(step_loss)}
        for name, (xe, ye) in zip(self.eval_names, evals):
            metrics[f"{name}_loss"], metrics[f"{name}_accuracy"] = self.eval_fn(
                carry.params, xe, ye, carry.state
            )
        return step_loss, metrics

    # ---- the driver's protocol ------------------------------------------------------------

    def compile(self, carry, indices, args) -> Callable:
        """Compile the pieces for these argument shapes (once) and return the host loop."""
        if self._run is not None:
            return self._run
        key, X, y, evals = args
        check_run_data("SteppedLoop", self.n, self.eval_names, X, y, evals)
        put, jit = self.placement.put, self.placement.jit
        e0 = np.int32(np.asarray(indices)[0])
        order = ahead_of_time(jit(self._order), key, e0)
        idx, keys = order(key, e0)
        offsets = [put(jnp.int32(t)) for t in range(0, self.T, self.k)]
        steps, epoch_end = jit(self._steps(self.k)), jit(self._epoch_end)
        if not through_jit():  # else both run through jit (ahead_of_time)
            lowered = steps.lower(carry, idx, keys, offsets[0], X, y)
            steps = lowered.compile()
            losses = [lowered.out_info[1]] * len(offsets)
            epoch_end = epoch_end.lower(carry, losses, evals).compile()

        def run(carry, epochs, key, X, y, evals=()):
            check_run_data("SteppedLoop", self.n, self.eval_names, X, y, evals)
            per_epoch = []
            for e in np.asarray(epochs):
                idx, keys = order(key, np.int32(e))
                losses = []
                for off in offsets:
                    carry, value = steps(carry, idx, keys, off, X, y)
                    losses.append(value)
                per_epoch.append(epoch_end(carry, losses, evals))
            jax.block_until_ready(carry)
            return Carry(*carry), _stack(per_epoch)

        self._run = run
        return run


def _stack(per_epoch: list) -> EpochOutputs:
    """[(step_loss (T,), metrics)] per epoch -> EpochOutputs (E, T) and name -> (E,), NumPy."""
    host = jax.tree.map(np.asarray, per_epoch)
    step_loss = np.stack([s for s, _ in host])
    names = host[0][1] if host else {}
    return EpochOutputs(step_loss, {k: np.stack([m[k] for _, m in host]) for k in names})
