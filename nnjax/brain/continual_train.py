"""The network of a continual-learning run (:mod:`~nnjax.brain.continual`) and its training.

:class:`TrainConfig` and :func:`make_model` (the bias-free ReLU MLP), its weight matrices
(:func:`weights_of`, :func:`with_weights`), the soft cross-entropy, optimizer steps under scan
through fit's update (:func:`sgd_carry`, :func:`sgd_steps`) and per-group / per-class test
accuracy. Shared by the run (:mod:`~nnjax.brain.continual_run`) and the methods' hooks.
"""

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from nnjax.brain.dynamics import check_count, concrete
from nnjax.models import mlp
from nnjax.train import Carry, make_optimizer_step

Array = jax.Array


class TrainConfig(NamedTuple):
    """Wake training of each task: ``steps`` SGD-with-momentum steps on mini-batches of
    ``batch_size``, a fresh optimizer state per task; ``hidden`` the widths of the bias-free
    ReLU MLP d -> hidden... -> K."""

    hidden: tuple = (128, 128)
    steps: int = 300
    batch_size: int = 32
    learning_rate: float = 0.05
    momentum: float = 0.5


def check_train_config(cfg, where: str) -> "TrainConfig":
    """``cfg`` when it is a valid :class:`TrainConfig`, else a ValueError naming ``where`` and
    the field: ``hidden`` a sequence of ints >= 1, ``steps`` and ``batch_size`` ints >= 1,
    ``learning_rate`` finite > 0, ``momentum`` finite in [0, 1). (``steps=0`` trained nothing
    and was scored; 2.0 and True ran as 2 and 1 steps; a negative or nan rate trained
    silently; a float batch failed deep in ``jax.random.randint``.)"""
    import math
    import numbers

    if not isinstance(cfg, TrainConfig):
        raise ValueError(f"{where}: cfg must be a TrainConfig or None, got {cfg!r}")
    h = cfg.hidden
    if (isinstance(h, str) or not hasattr(h, "__iter__") or not tuple(h)
            or any(isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1
                   for n in h)):  # fmt: skip
        raise ValueError(f"{where}: TrainConfig.hidden must be a non-empty sequence of ints "
                         f">= 1 (the hidden widths), got {h!r}")  # fmt: skip
    check_count(cfg.steps, "TrainConfig.steps", where)
    check_count(cfg.batch_size, "TrainConfig.batch_size", where)
    for name, ok, bound in (("learning_rate", lambda v: v > 0, "> 0"),
                            ("momentum", lambda v: 0 <= v < 1, "in [0, 1)")):  # fmt: skip
        v = getattr(cfg, name)
        if (
            isinstance(v, bool)
            or not isinstance(v, numbers.Real)
            or not (math.isfinite(v) and ok(v))
        ):
            raise ValueError(f"{where}: TrainConfig.{name} must be a finite number {bound}, "
                             f"got {v!r}")  # fmt: skip
    return cfg


def make_model(cfg: TrainConfig, n_classes: int = 10):
    """The bias-free ReLU MLP (SRC needs no biases: a spike threshold replaces them)."""
    return mlp([*cfg.hidden, n_classes], "relu", use_bias=False)


def weights_of(params) -> list:
    """The weight matrices (in, out) of an :func:`nnjax.mlp` params list, in order."""
    return [p["W"] for p in params if "W" in p]


def with_weights(params, weights) -> list:
    """``params`` with its weight matrices replaced by ``weights`` (same order)."""
    it = iter(weights)
    return [{**p, "W": next(it)} if "W" in p else p for p in params]


def soft_cross_entropy(logits: Array, target: Array) -> Array:
    """mean_b -sum_k target_bk log softmax(logits_b)_k; ``target`` (B, K) probabilities."""
    return -jnp.mean(jnp.sum(target * jax.nn.log_softmax(logits, axis=-1), axis=-1))


def sgd_carry(loss_fn: Callable, params, key: Array, steps: int, opt) -> tuple[Carry, Array]:
    """``steps`` optimizer steps on ``loss_fn(params, key)`` (a fresh key each) from a fresh
    optimizer state, under scan: fit's update (:func:`nnjax.train.make_optimizer_step`).
    Returns (the final :class:`~nnjax.train.Carry`, losses (steps,)), each loss taken before
    its update."""
    step = make_optimizer_step(lambda p, state, k: (loss_fn(p, k), state), opt)
    keys = jax.random.split(key, steps)
    return jax.lax.scan(step, Carry(params, opt.init(params)), keys)


def sgd_steps(loss_fn: Callable, params, key: Array, steps: int, opt) -> tuple[Any, Array]:
    """:func:`sgd_carry`, returning (params, losses (steps,))."""
    carry, losses = sgd_carry(loss_fn, params, key, steps, opt)
    return carry.params, losses


def per_group_accuracy(apply: Callable, params, X: Array, y: Array, g: Array, G: int) -> Array:
    """(G,) accuracy on the test examples of each group: mean_{i: g_i = j} [argmax f(x_i) = y_i].
    (A group is a class in class-incremental splits, a task in permuted ones.) A group with no
    test example is a mean over an empty set: nan. Group ids ``g`` must lie in 0..G-1
    (checked when ``g`` is concrete; a traced id outside would be dropped)."""
    _check_groups(g, G, "per_group_accuracy")
    correct = (jnp.argmax(apply(params, X), axis=-1) == y).astype(jnp.float32)
    onehot = jax.nn.one_hot(g, G)
    return (correct @ onehot) / onehot.sum(0)


def _check_groups(g, G, where: str) -> None:
    """A ValueError naming ``where`` unless G is an int >= 1 and concrete ids ``g`` lie in
    0..G-1 (one_hot would drop the others silently)."""
    check_count(G, "G", where)
    ids = concrete(g)
    if ids is not None and ids.size and (ids.min() < 0 or ids.max() >= G):
        bad = ids[(ids < 0) | (ids >= G)].ravel()[0]
        raise ValueError(f"{where}: group ids must lie in 0..{G - 1}, got {bad}")


def per_class_accuracy(apply: Callable, params, X: Array, y: Array, n_classes: int) -> Array:
    """(K,) accuracy on the test examples of each class: mean_{i: y_i = k} [argmax f(x_i) = k]."""
    return per_group_accuracy(apply, params, X, y, y, n_classes)
