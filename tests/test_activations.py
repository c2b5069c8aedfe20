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


@pytest.mark.parametrize("name", sorted(set(A.ACTIVATIONS) - {"identity"}))
@pytest.mark.parametrize("x64", [False, True])
def test_integer_and_bool_inputs_compute_in_the_default_float(name, x64):
    # sigmoid/silu raised a TypeError from deep in jax.nn on ints, softmax on bools, and
    # relu kept ints: all now compute in float32 (float64 under x64), as the NumPy twin does
    from nnjax.reference.activations import value

    z = np.array([[-3, -1, 0, 2, 5]])
    with jax.enable_x64(x64):
        want = "float64" if x64 else "float32"
        for x in (z, z.astype(np.int8), z > 0):
            y = A.ACTIVATIONS[name](jnp.asarray(x))
            assert y.dtype.name == want
            np.testing.assert_allclose(y, value(name, x), rtol=1e-6 if not x64 else 1e-12)
        np.testing.assert_array_equal(A.ACTIVATIONS["identity"](jnp.asarray(z)), z)
        with pytest.raises(TypeError, match="takes one array, got a tuple"):  # not stacked
            A.ACTIVATIONS[name]((jnp.asarray(z), jnp.asarray(z)))
        # a list of numbers is an array, as in NumPy
        np.testing.assert_allclose(A.ACTIVATIONS[name]([[-3.0, 2.0]]), value(name, [[-3.0, 2.0]]),
                                   rtol=1e-6 if not x64 else 1e-12)  # fmt: skip


LIMITS = {  # f(-inf), f(+inf), f'(-inf), f'(+inf)
    "identity": (-np.inf, np.inf, 1.0, 1.0),
    "sigmoid": (0.0, 1.0, 0.0, 0.0),
    "tanh": (-1.0, 1.0, 0.0, 0.0),
    "relu": (0.0, np.inf, 0.0, 1.0),
    "leaky_relu": (-np.inf, np.inf, 0.01, 1.0),
    "elu": (-1.0, np.inf, 0.0, 1.0),
    "softplus": (0.0, np.inf, 0.0, 1.0),
    "gelu": (0.0, np.inf, 0.0, 1.0),
    "silu": (0.0, np.inf, 0.0, 1.0),
}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", sorted(LIMITS))
def test_elementwise_activations_at_infinities_are_their_limits(name, dtype):
    # gelu and silu gave NaN at -inf (z * g(z) = -inf * 0) and NaN slopes at both ends,
    # in JAX and in the twin alike
    from nnjax.reference.activations import ACTIVATIONS as TWIN

    z = np.array([-np.inf, np.inf], dtype)
    lo, hi, d_lo, d_hi = LIMITS[name]
    with jax.enable_x64(dtype == "float64"):
        f = A.ACTIVATIONS[name]
        np.testing.assert_array_equal(f(jnp.asarray(z)), [lo, hi])
        np.testing.assert_allclose(jax.vmap(jax.grad(f))(jnp.asarray(z)), [d_lo, d_hi], rtol=1e-7)
        x = jnp.asarray(np.array([-np.inf, -3.0, 0.5, np.inf], dtype))
        np.testing.assert_array_equal(jax.jit(f)(x)[1:3], f(x[1:3]))  # finite z untouched
    np.testing.assert_array_equal(TWIN[name][0](z), [lo, hi])
    np.testing.assert_allclose(TWIN[name][1](z), [d_lo, d_hi], rtol=1e-7)
