"""Contracts every optimizer must keep: fit's loop keeps the carry's dtypes and shapes for
every optimizer (float64 stays float64). The layers' shape agreement (stax's test: the shape
``init`` promises is the one ``apply`` produces) is tests/test_layer_shapes.py, over every
layer and model."""

import chex
import jax
import jax.numpy as jnp
import pytest

from nnjax.optim import DEFAULT_LEARNING_RATE, FULL_BATCH, OPTIMIZERS, get_optimizer
from nnjax.train import Carry, make_epochs_fn


def _loop_carry(name: str, dtype, x64: bool):
    """The carry fit's loop starts from and the one it returns (traced, not run)."""
    from nnjax.models import mlp

    model = mlp([5, 3])
    with jax.enable_x64(x64):
        params = model.init(jax.random.key(0), (-1, 4))[1]
        params = jax.tree.map(lambda a: a.astype(dtype), params)
        opt = get_optimizer(name, DEFAULT_LEARNING_RATE[name])
        run, _ = make_epochs_fn(
            model,
            "softmax_cross_entropy",
            opt,
            n_examples=12,
            batch_size=None if name in FULL_BATCH else 4,
            eval_names=("test",),
        )
        X, y = jnp.ones((12, 4), dtype), jnp.zeros(12, jnp.int32)
        carry = Carry(params, opt.init(params))
        out, outputs = jax.eval_shape(run, carry, jnp.arange(2), jax.random.key(0), X, y, ((X, y),))
    return carry, out, outputs


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
@pytest.mark.parametrize(
    "dtype, x64",
    [("float32", False), ("float64", True), ("float32", True)],
    ids=["f32", "f64", "f32-under-x64"],
)
def test_every_optimizer_keeps_the_carry_dtypes_and_shapes(name, dtype, x64):
    carry, out, outputs = _loop_carry(name, jnp.dtype(dtype), x64)
    chex.assert_trees_all_equal_shapes_and_dtypes(out, carry)
    assert jax.tree.structure(out) == jax.tree.structure(carry)
    assert all(leaf.dtype == jnp.dtype(dtype) for leaf in jax.tree.leaves(out.params))
    assert outputs.step_loss.dtype == jnp.dtype(dtype)
    assert outputs.metrics["test_loss"].dtype == jnp.dtype(dtype)
