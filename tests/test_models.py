"""Models: mlp and logistic_regression structure and errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import nnjax


def test_mlp_structure():
    net = nnjax.mlp([32, 16, 10], activation="tanh", output_activation="softmax")
    out_shape, params = net.init(jax.random.key(0), (-1, 64))
    assert out_shape == (-1, 10)
    assert [p["W"].shape for p in params if p] == [(64, 32), (32, 16), (16, 10)]
    y = net.apply(params, jnp.ones((3, 64)))
    np.testing.assert_allclose(y.sum(-1), 1.0, rtol=1e-6)


def test_logistic_regression_is_x_theta_plus_b():
    model = nnjax.logistic_regression(2)
    _, p = model.init(jax.random.key(0), (-1, 2))
    assert p["W"].shape == (2, 1) and not p["W"].any() and p["b"].shape == (1,)
    p = {"W": jnp.array([[1.0], [2.0]]), "b": jnp.array([0.5])}
    np.testing.assert_allclose(model.apply(p, jnp.array([[1.0, 1.0]])), [[3.5]])


def test_model_errors():
    with pytest.raises(ValueError, match="sizes must be a non-empty list"):
        nnjax.mlp([])
    with pytest.raises(ValueError, match="unknown activation 'sigmod'"):
        nnjax.mlp([3], activation="sigmod")
    with pytest.raises(ValueError, match="built for 3 features"):
        nnjax.logistic_regression(3).init(jax.random.key(0), (-1, 2))
