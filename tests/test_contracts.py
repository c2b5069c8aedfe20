"""Contracts every piece must keep, checked over all of them: each layer's ``init`` promises
the output shape its ``apply`` produces (stax's shape-agreement test), and fit's loop keeps
the carry's dtypes and shapes for every optimizer (float64 stays float64)."""

import chex
import jax
import jax.numpy as jnp
import pytest

from nnjax.layers import LAYERS, Activation, Dense, Dropout, Flatten, serial
from nnjax.optim import DEFAULT_LEARNING_RATE, FULL_BATCH, OPTIMIZERS, get_optimizer
from nnjax.train import Carry, apply_model, make_epochs_fn

# every layer of nnjax.layers.LAYERS, built with typical arguments, with the input shapes
# (batch axis -1) to try it on; a new layer needs its entry here (test_every_layer_has_a_case)
LAYER_CASES = {
    "Dense": [
        (lambda: Dense(4), [(-1, 3), (-1, 2, 5)]),
        (lambda: Dense(1, use_bias=False), [(-1, 1)]),
    ],
    "Activation": [
        (lambda: Activation("relu"), [(-1, 3), (-1, 2, 2)]),
        (lambda: Activation("softmax"), [(-1, 4)]),
    ],
    "Flatten": [(Flatten, [(-1, 3), (-1, 2, 3), (-1, 2, 3, 4)])],
    "Dropout": [(lambda: Dropout(0.5), [(-1, 3), (-1, 2, 3)])],
    "serial": [
        (
            lambda: serial(Flatten(), Dense(6), Activation("tanh"), Dropout(0.1), Dense(2)),
            [(-1, 2, 3)],
        ),
        (lambda: serial(Dense(3)), [(-1, 5)]),
    ],
}
CASES = [
    (name, i, shape)
    for name, cases in LAYER_CASES.items()
    for i, (_, shapes) in enumerate(cases)
    for shape in shapes
]


def test_every_layer_has_a_case():
    assert set(LAYER_CASES) == set(LAYERS)


def _init(layer, shape):
    """(output shape, params, state) under the layer protocol (stateless: state ())."""
    out = layer.init(jax.random.key(0), shape)
    return out if len(out) == 3 else (*out, ())


@pytest.mark.parametrize("name, i, shape", CASES, ids=[f"{n}{i}-{s}" for n, i, s in CASES])
@pytest.mark.parametrize("batch", [1, 3])
def test_init_output_shape_is_the_shape_apply_produces(name, i, shape, batch):
    layer = LAYER_CASES[name][i][0]()
    out_shape, params, state = _init(layer, shape)
    x = jax.ShapeDtypeStruct((batch, *shape[1:]), jnp.float32)
    for key, train in ((None, False), (jax.random.key(1), True)):  # evaluation and training
        y, _ = jax.eval_shape(
            lambda p, s, x, key=key, train=train: apply_model(layer, p, s, x, key=key, train=train),
            params,
            state,
            x,
        )
        assert y.shape == (batch, *out_shape[1:]), (layer.name, shape, key is not None)
        assert out_shape[0] == -1  # the batch axis stays free


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
