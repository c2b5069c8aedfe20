"""nnjax runs under ``jax.numpy_rank_promotion("raise")``, the setting that makes JAX refuse
an implicit broadcast between arrays of different ranks (a common source of silent shape
bugs in research code): every layer and model applies and differentiates, and ``fit`` trains,
with its biases and normalisation statistics broadcast explicitly. Before, Dense's
``x @ W + b`` ((B, n) + (n,)) raised, so no model with a bias ran there. The same holds with
``jax.numpy_dtype_promotion("strict")`` on top (no implicit dtype promotion), except for
Optax's adam and adamw, whose own update fails there (Optax 0.2.8)."""

import contextlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from test_layer_shapes import ALL, IDS, _input

import nnjax
from nnjax.layers import apply_model, init_model


def _sum_out(layer, params, state, x):
    out, _ = apply_model(layer, params, state, x, key=jax.random.key(1), train=True)
    return sum(jnp.sum(leaf) for leaf in jax.tree.leaves(out))


def _outputs(layer, params, state, x, grads):
    """Both modes' outputs (and the gradient by params and x), compiled as one program.

    The rank and dtype checks are made by ``jax.numpy`` as it traces, and both settings are
    part of jit's cache key, so a call inside ``_strict`` traces afresh under them: one
    compile per setting checks every op that the eager run would check one op at a time."""

    def run(params, x):
        outs = [apply_model(layer, params, state, x, train=t)[0] for t in (False, True)]
        if not grads:
            return outs, None
        return outs, jax.grad(_sum_out, argnums=(1, 3))(layer, params, state, x)

    return jax.jit(run)(params, x)


@pytest.mark.parametrize("name, layer, shape", ALL, ids=IDS)
def test_every_layer_and_model_runs_with_rank_promotion_raised(name, layer, shape):
    x = _input(shape, layer)
    _, params, state = init_model(layer, jax.random.key(0), shape)
    grads = not name.startswith("Embedding")  # integer ids: no gradient by x
    want, _ = _outputs(layer, params, state, x, grads=False)
    with _strict(dtypes=True):
        got, g = _outputs(layer, params, state, x, grads)
    assert all(np.all(np.isfinite(leaf)) for leaf in jax.tree.leaves(g))
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want)):  # the same numbers
        np.testing.assert_array_equal(a, b)


@contextlib.contextmanager
def _strict(dtypes: bool):
    with jax.numpy_rank_promotion("raise"):
        if not dtypes:
            yield
            return
        with jax.numpy_dtype_promotion("strict"):
            yield


@pytest.mark.parametrize(
    "model, optimizer, dtypes",
    [("mlp", "adam", False), ("cnn", "adam", False), ("mlp", "momentum", True)],
)
def test_fit_trains_with_rank_promotion_raised_to_the_same_numbers(model, optimizer, dtypes):
    ds = nnjax.data.load("digits")
    X, y = ds.X_train[:128], ds.y_train[:128]
    net = nnjax.mlp([16, 10]) if model == "mlp" else nnjax.models.cnn(input_shape=(8, 8, 1))
    _, params, _ = init_model(net, jax.random.key(0), (-1, 64))
    kw = dict(optimizer=optimizer, epochs=1, batch_size=32, eval_data={"test": (X[:32], y[:32])})
    want = nnjax.fit(net, params, X, y, **kw)
    with _strict(dtypes):
        got = nnjax.fit(net, params, X, y, **kw)
    np.testing.assert_array_equal(got.step_loss, want.step_loss)
    for a, b in zip(jax.tree.leaves(got.params), jax.tree.leaves(want.params)):
        np.testing.assert_array_equal(a, b)


def test_optax_adam_itself_fails_under_strict_dtype_promotion():
    """The exception the module docstring names (when Optax fixes it, say so there)."""
    params = {"w": jnp.ones(3)}
    with jax.numpy_dtype_promotion("strict"):
        for opt in (nnjax.get_optimizer("momentum", 0.1), nnjax.get_optimizer("rmsprop", 0.1)):
            opt.update(params, opt.init(params), params)
        for name in ("adam", "adamw"):
            opt = nnjax.get_optimizer(name, 0.1)
            with pytest.raises(Exception, match="no available implicit dtype promotion path"):
                opt.update(params, opt.init(params), params)
