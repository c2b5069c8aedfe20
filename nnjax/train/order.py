"""The one definition of the order in which ``fit`` visits the data.

A run key ``key`` is split once, ``order_key, dropout_key = split(key)`` (:func:`run_keys`).
Epoch e shuffles the n examples with the permutation

    pi_e = permutation(fold_in(order_key, e), n)

and cuts its first T * b entries into T = n // b batches of b rows (the n % b rows left over
by that epoch's permutation are dropped, so every step has one shape):
batch t of epoch e is the rows pi_e[t b : (t + 1) b] (:func:`batch_indices`). Dropout, when
on, gets the key ``split(fold_in(dropout_key, e), T)[t]`` at step t of epoch e
(:func:`step_keys`). Full batch (``batch_size=None``) is one step per epoch on all n rows in
their stored order, and draws no permutation.

Since the order of epoch e depends only on (key, e), a run cut into chunks of epochs visits
the data exactly as the run in one piece, and a resumed run needs only the key and the epoch.
Everybody who needs fit's order calls these functions (the compiled loop, ``nnjax verify``,
the benchmarks and the tests); nobody re-derives it.
"""

import jax
import jax.numpy as jnp
import numpy as np

Array = jax.Array


def run_keys(key: Array) -> tuple[Array, Array]:
    """``(order_key, dropout_key) = jax.random.split(key)``: the shuffles and the dropout masks."""
    order_key, dropout_key = jax.random.split(key)
    return order_key, dropout_key


def batch_indices(
    order_key: Array, epoch, n_examples: int, batch_size: int, shuffle: bool = True
) -> Array:
    """The rows of every batch of epoch ``epoch``: int32 (n_examples // batch_size, batch_size).

    Row t is batch t: ``permutation(fold_in(order_key, epoch), n)[t b : (t + 1) b]``.
    ``epoch`` may be traced (jit/vmap); ``n_examples`` and ``batch_size`` are static ints.
    ``shuffle=False``: rows t b .. (t + 1) b - 1 in their stored order, every epoch (the
    MNIST-1D paper's training script draws its batches so; ``fit`` always shuffles).
    """
    steps = n_examples // batch_size
    if not shuffle:
        return jnp.arange(steps * batch_size, dtype=jnp.int32).reshape(steps, batch_size)
    perm = jax.random.permutation(jax.random.fold_in(order_key, epoch), n_examples)
    return perm[: steps * batch_size].reshape(steps, batch_size).astype(jnp.int32)


def step_keys(dropout_key: Array, epoch, n_steps: int) -> Array:
    """The dropout keys of the ``n_steps`` steps of epoch ``epoch``: (n_steps,) keys."""
    return jax.random.split(jax.random.fold_in(dropout_key, epoch), n_steps)


def run_batch_indices(key, epochs: int, n_examples: int, batch_size: int | None) -> np.ndarray:
    """Every batch of a ``fit`` run with run key ``key`` (a PRNG key or an int seed), step by
    step, on the host: int32 (epochs * (n // b), b), or ``None`` for full batch.

    The same numbers as :func:`batch_indices` (one compiled ``vmap`` over the epochs).
    """
    if batch_size is None:
        return None
    if isinstance(key, int | np.integer):
        key = jax.random.key(int(key))
    order_key, _ = run_keys(key)
    each = jax.jit(
        jax.vmap(lambda e: batch_indices(order_key, e, n_examples, batch_size)),
    )(jnp.arange(epochs))
    return np.asarray(each).reshape(-1, batch_size)
