"""A plain NumPy training loop: the twin of ``nnjax.fit``.

Each step, on the batch (x_b, y_b) = (X[idx], y[idx]):

    out, cache = forward(theta, x_b)           J = loss(out, y_b)
    _, g = backward(dJ/dout, cache)            (the loss gradient, by hand)
    theta, state = update(g, state, theta)     (the optimizer, by hand)

Fed the batches ``nnjax.fit`` draws, in the same order, it reproduces ``fit`` step by step:
the loss history and the final params. ``nnjax.fit`` shuffles inside its jit, so the caller
supplies the index arrays (``nnjax.verify.fit_batch_indices`` rebuilds fit's).
"""

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from nnjax.reference.losses import get as get_loss
from nnjax.reference.optim import get as get_optimizer
from nnjax.reference.optim import tree_map


def train(
    forward: Callable,
    backward: Callable,
    params: Any,
    X,
    y,
    *,
    loss: str,
    optimizer: str,
    learning_rate: float | Callable,
    batch_indices: Iterable,
    **hyperparams,
) -> tuple[Any, np.ndarray]:
    """Run one optimizer step per entry of ``batch_indices`` and return ``(params, losses)``.

    ``batch_indices``: index arrays into the rows of X and y, one per step, in order
    (``None`` for a full-batch step on all rows in order). ``losses[k]`` is the loss at
    step k before its update (as ``fit``'s ``step_loss``).
    """
    X, y = np.asarray(X), np.asarray(y)
    if X.shape[:1] != y.shape[:1]:
        raise ValueError(f"train: X has {X.shape[0]} examples but y has shape {y.shape}")
    loss_value, loss_grad = get_loss(loss)
    init, update = get_optimizer(optimizer, learning_rate, **hyperparams)
    params = tree_map(lambda p: np.array(p), params)
    state = init(params)
    losses = []
    for step, idx in enumerate(batch_indices):
        xb, yb = (X, y) if idx is None else (X[np.asarray(idx)], y[np.asarray(idx)])
        out, cache = forward(params, xb)
        losses.append(loss_value(out, yb))
        _, grads = backward(loss_grad(out, yb), cache)
        params, state = update(grads, state, params)
        if not np.isfinite(losses[-1]):
            raise FloatingPointError(f"train: the loss became {losses[-1]} at step {step}")
    return params, np.asarray(losses)
