"""Activations against their closed forms (extreme inputs included) and finite differences."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads
from scipy.special import erfc

from nnjax import activations as A


def _np_sigmoid(z):
    return np.where(
        z >= 0, 1 / (1 + np.exp(-np.abs(z))), np.exp(-np.abs(z)) / (1 + np.exp(-np.abs(z)))
    )


CLOSED_FORMS = {
    "identity": lambda z: z,
    "sigmoid": _np_sigmoid,
    "tanh": np.tanh,
    "relu": lambda z: np.maximum(z, 0),
    "leaky_relu": lambda z: np.where(z > 0, z, 0.01 * z),
    "elu": lambda z: np.where(z > 0, z, np.expm1(np.minimum(z, 0))),
    "softplus": lambda z: np.maximum(z, 0) + np.log1p(np.exp(-np.abs(z))),
    "gelu": lambda z: 0.5 * z * erfc(-z / np.sqrt(2)),  # erfc: accurate in the far tail
    "silu": lambda z: z * _np_sigmoid(z),
    "softmax": lambda z: (
        np.exp(z - z.max(-1, keepdims=True))
        / np.exp(z - z.max(-1, keepdims=True)).sum(-1, keepdims=True)
    ),
    "log_softmax": lambda z: (
        z
        - z.max(-1, keepdims=True)
        - np.log(np.exp(z - z.max(-1, keepdims=True)).sum(-1, keepdims=True))
    ),
}

Z = np.array([[-1e4, -30.0, -2.5, -1e-3, 0.0], [1e-3, 0.7, 3.0, 30.0, 1e4]])


def test_every_activation_has_a_closed_form_here():
    assert set(CLOSED_FORMS) == set(A.ACTIVATIONS)


@pytest.mark.parametrize("name", sorted(A.ACTIVATIONS))
def test_values_match_closed_form_in_float64_with_extremes(name):
    with jax.enable_x64(True):
        got = np.asarray(A.get_activation(name)(jnp.asarray(Z)))
    want = CLOSED_FORMS[name](Z)
    assert np.all(np.isfinite(got)), name
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-300)


@pytest.mark.parametrize("name", sorted(A.ACTIVATIONS))
def test_float32_extremes_stay_finite(name):
    got = A.get_activation(name)(jnp.asarray(Z, jnp.float32))
    assert got.dtype == jnp.float32
    assert bool(jnp.all(jnp.isfinite(got)))


@pytest.mark.parametrize("name", sorted(A.ACTIVATIONS))
def test_gradients_match_finite_differences(name):
    z = np.random.default_rng(0).normal(size=(3, 4)) * 2
    z = np.where(np.abs(z) < 0.05, 0.3, z)  # keep away from ReLU-family kinks
    with jax.enable_x64(True):
        check_grads(
            A.get_activation(name),
            (jnp.asarray(z),),
            order=1,
            modes=["rev"],
            eps=1e-5,
            atol=1e-7,
            rtol=1e-7,
        )


def test_relu_derivative_is_the_step_not_relu():
    z = jnp.array([-2.0, -0.5, 0.5, 2.0])
    d = jax.vmap(jax.grad(A.relu))(z)
    np.testing.assert_array_equal(d, [0.0, 0.0, 1.0, 1.0])
    assert not np.allclose(d, A.relu(z))  # max(0, z) is ReLU itself, not its derivative


def test_lookup_by_name_and_callable():
    assert A.get_activation("tanh") is A.tanh
    assert A.get_activation(jnp.sin) is jnp.sin
    assert A.get_activation(None) is A.identity


def test_unknown_name_lists_valid_names():
    with pytest.raises(ValueError, match="unknown activation 'rellu'.*relu.*sigmoid"):
        A.get_activation("rellu")
