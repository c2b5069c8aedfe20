"""nnjax.interop: nnjax MLP params <-> Flax NNX / linen, outputs and gradients in float64."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import nnjax
from nnjax import interop

TOL = 1e-12


def _setup(sizes=(7, 5, 3), activation="tanh", output_activation=None, use_bias=True):
    """An nnjax mlp on 4 inputs, params drawn with NumPy (nonzero biases, so a dropped or
    swapped bias shows), a batch x (6, 4) and integer labels y (6,)."""
    model = nnjax.mlp(list(sizes), activation, output_activation, use_bias=use_bias)
    rng = np.random.default_rng(0)
    params, n_in = [], 4
    for i, width in enumerate(sizes):
        if i:
            params.append({})
        layer = {"W": jnp.asarray(rng.normal(size=(n_in, width)) / np.sqrt(n_in))}
        if use_bias:
            layer["b"] = jnp.asarray(rng.normal(size=width))
        params.append(layer)
        n_in = width
    if output_activation is not None:
        params.append({})
    x = jnp.asarray(rng.normal(size=(6, 4)))
    y = jnp.asarray(rng.integers(0, sizes[-1], size=6))
    return model, params, x, y


def _nnjax_loss(model, params, x, y):
    return nnjax.losses.softmax_cross_entropy(model.apply(params, x), y)


def _assert_trees_close(a, b, tol=TOL):
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        assert u.shape == v.shape and u.dtype == v.dtype
        np.testing.assert_allclose(np.asarray(u), np.asarray(v), rtol=0, atol=tol)


@pytest.mark.parametrize(
    "activation, output_activation, use_bias",
    [("tanh", None, True), ("relu", "softmax", True), ("sigmoid", None, False)],
)
def test_nnx_outputs_gradients_and_round_trip(activation, output_activation, use_bias):
    with jax.enable_x64(True):
        model, params, x, y = _setup((7, 5, 3), activation, output_activation, use_bias)
        assert params[0]["W"].dtype == jnp.float64
        net = interop.to_nnx(params, activation, output_activation)
        np.testing.assert_allclose(net(x), model.apply(params, x), rtol=0, atol=TOL)

        def nnx_loss(net):
            return nnjax.losses.softmax_cross_entropy(net(x), y)

        grads = nnx.grad(nnx_loss)(net)  # an nnx.State: merge it into a model to convert
        g_nnx = interop.from_nnx(nnx.merge(nnx.graphdef(net), grads))
        g_ref = jax.grad(lambda p: _nnjax_loss(model, p, x, y))(params)
        assert float(jnp.abs(g_ref[0]["W"]).max()) > 1e-3  # the gradient is not trivially 0
        _assert_trees_close(g_nnx, g_ref)
        _assert_trees_close(interop.from_nnx(net), params, tol=0.0)


@pytest.mark.parametrize("output_activation, use_bias", [(None, True), ("log_softmax", False)])
def test_linen_outputs_gradients_and_round_trip(output_activation, use_bias):
    with jax.enable_x64(True):
        model, params, x, y = _setup((6, 6, 4), "relu", output_activation, use_bias)
        module, variables = interop.to_linen(params, "relu", output_activation)
        np.testing.assert_allclose(
            module.apply(variables, x), model.apply(params, x), rtol=0, atol=TOL
        )
        g_lin = jax.grad(lambda v: nnjax.losses.softmax_cross_entropy(module.apply(v, x), y))(
            variables
        )
        g_ref = jax.grad(lambda p: _nnjax_loss(model, p, x, y))(params)
        _assert_trees_close(interop.from_linen(module, g_lin), g_ref)
        _assert_trees_close(interop.from_linen(module, variables), params, tol=0.0)


def test_nnx_trains_like_nnjax():
    """One SGD step through nnx.Optimizer moves the params as nnjax's step does."""
    import optax

    with jax.enable_x64(True):
        model, params, x, y = _setup()
        net = interop.to_nnx(params, "tanh")
        opt = nnx.Optimizer(net, optax.sgd(0.1), wrt=nnx.Param)
        grads = nnx.grad(lambda n: nnjax.losses.softmax_cross_entropy(n(x), y))(net)
        opt.update(net, grads)
        step = nnjax.make_train_step(model, "softmax_cross_entropy", optax.sgd(0.1))
        new_params, _, _ = step(params, optax.sgd(0.1).init(params), (x, y))
        _assert_trees_close(interop.from_nnx(net), new_params)


def test_bad_params_name_the_culprit():
    _, params, _, _ = _setup()
    with pytest.raises(ValueError, match=r"params\[1\] should be an activation"):
        interop.to_nnx([params[0], params[0]])
    with pytest.raises(ValueError, match="Dense 1 W has 5 inputs but Dense 0 has 7"):
        interop.to_linen([params[0], {}, {"W": params[4]["W"], "b": params[4]["b"]}])
    with pytest.raises(ValueError, match="Dense 0 b has shape"):
        interop.to_nnx([{"W": params[0]["W"], "b": jnp.zeros(3)}])
    with pytest.raises(ValueError, match="output_activation must be given exactly"):
        interop.to_nnx(params, "tanh", "softmax")
    with pytest.raises(ValueError, match="every Dense layer has a bias"):
        interop.to_nnx([params[0], {}, {"W": params[2]["W"]}], "tanh")
    with pytest.raises(ValueError, match="unknown activation"):
        interop.to_linen(params, "no_such_activation")
    with pytest.raises(ValueError, match="from_nnx: expected"):
        interop.from_nnx(params)
