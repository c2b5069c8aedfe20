"""Docstring claims of the core modules held against their behaviour (audit).

Each test reads one claim of a public docstring (activations, losses, layers, models) and
checks it with a small program: values against NumPy in float64, errors by their message.
"""

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nnjax import activations, layers, losses, models

KEY = jax.random.key(0)


# --- "Every function maps an array of any shape ...; softmax/log_softmax normalise over the
# last axis": a 0-d array has none. It was JAX's "axis -1 is out of bounds for array of
# dimension 0", naming no function; the Activation layer's init took shape () and its apply
# then failed the same way.


@pytest.mark.parametrize("fn", ["softmax", "log_softmax"])
def test_softmax_of_a_0d_array_is_an_error_naming_the_function(fn):
    with pytest.raises(ValueError, match=rf"^{fn}: needs an array of at least 1 dim"):
        getattr(activations, fn)(jnp.float32(2.0))


@pytest.mark.parametrize("fn", ["softmax", "log_softmax"])
def test_activation_layer_softmax_refuses_a_0d_input_shape_at_init(fn):
    with pytest.raises(ValueError, match=rf"^Activation\({fn}\): needs an input of at least 1"):
        layers.Activation(fn).init(KEY, ())
    assert layers.Activation("relu").init(KEY, ()) == ((), {})  # elementwise: any shape


def test_softmax_cross_entropy_of_0d_logits_names_the_loss():
    with pytest.raises(ValueError, match=r"^softmax_cross_entropy: logits must have a class"):
        losses.softmax_cross_entropy(2.0, 0)


def test_softmax_of_1d_rows_still_matches_numpy():
    with jax.enable_x64(True):
        z = np.random.default_rng(0).normal(size=(3, 5)) * 4
        want = np.exp(z - z.max(-1, keepdims=True))
        want /= want.sum(-1, keepdims=True)
        np.testing.assert_allclose(activations.softmax(z), want, rtol=0, atol=1e-15)
        np.testing.assert_allclose(activations.log_softmax(z[0]), np.log(want[0]), atol=1e-14)


# --- Activation(activation: str | Callable): a functools.partial or a callable object has
# no __name__, and building the layer raised AttributeError: "'functools.partial' object
# has no attribute '__name__'".


@dataclasses.dataclass
class _Scaled:
    """A callable object, unhashable (a dataclass with eq=True): a*tanh(z)."""

    a: float = 2.0

    def __call__(self, z):
        return self.a * jnp.tanh(z)


def test_activation_layer_takes_a_partial_and_a_callable_object():
    z = np.linspace(-3, 3, 7).reshape(1, 7)
    leaky = layers.Activation(functools.partial(activations.leaky_relu, negative_slope=0.2))
    assert leaky.name == "Activation(leaky_relu)" and leaky.spec is None
    np.testing.assert_allclose(leaky.apply({}, z), np.where(z > 0, z, 0.2 * z), rtol=1e-6)
    scaled = layers.Activation(_Scaled())
    assert scaled.name == "Activation(_Scaled)" and scaled.spec is None
    np.testing.assert_allclose(scaled.apply({}, z), 2.0 * np.tanh(z), rtol=1e-6)


def test_activation_layer_unknown_name_names_the_layer():
    with pytest.raises(ValueError, match=r"^Activation: unknown activation 'ReLU'; valid names"):
        layers.Activation("ReLU")


# --- mlp: "W_init defaults to ... glorot_normal otherwise, a callable activation included".
# An unhashable callable (a dataclass instance) crashed with "unhashable type: '_Scaled'"
# (the ReLU-like test was a set lookup).


def test_mlp_takes_an_unhashable_callable_activation_with_glorot_init():
    model = models.mlp([400, 3], activation=_Scaled())
    _, params = model.init(KEY, (-1, 600))
    var = float(np.var(np.asarray(params[0]["W"])))
    assert abs(var / (2.0 / (600 + 400)) - 1) < 0.05  # glorot: 2 / (fan_in + fan_out)
    x = np.random.default_rng(1).normal(size=(2, 600)).astype(np.float32)
    w1, b1, w2, b2 = (np.asarray(params[i][k], np.float64) for i in (0, 2) for k in ("W", "b"))
    want = 2.0 * np.tanh(x @ w1 + b1) @ w2 + b2
    np.testing.assert_allclose(model.apply(params, x), want, rtol=1e-4, atol=1e-5)


# --- claims that hold (not pinned elsewhere): the docstrings' worked numbers.


def test_mlp_docstring_parameter_count_85002():
    _, params = models.mlp([256, 256, 10]).init(KEY, (-1, 64))
    assert sum(np.size(p) for p in jax.tree.leaves(params)) == 85002
    _, params = models.mlp([256, 256, 10], use_bias=False).init(KEY, (-1, 64))
    assert sum(np.size(p) for p in jax.tree.leaves(params)) == 64 * 256 + 256 * 256 + 256 * 10


def test_binary_cross_entropy_docstring_sigmoid_logits_at_one_minus_eps():
    """'p = 1 - eps is what a sigmoid returns for logits from 15.5 to 16.6 in float32'."""
    z = np.arange(14.0, 18.0, 0.001, dtype=np.float32)
    top = np.float32(1) - np.finfo(np.float32).eps
    hit = z[np.asarray(activations.sigmoid(z)) == top]
    assert 15.5 <= hit.min() < 15.6 and 16.6 <= hit.max() < 16.7
    # and the clipped value there: -log(eps) = 15.9 in float32
    value = losses.binary_cross_entropy(jnp.array([1.0], jnp.float32), jnp.array([0.0]))
    assert abs(float(value) - 15.942385) < 1e-5


# --- models.layer_spec: "None when the model is not describable". mlp(activation=None)
# (get_activation's identity) is describable (its spec is set), but Activation(None) had
# spec None, so layer_spec gave None and nnjax.verify's twin_of crashed on it.


def test_mlp_with_activation_none_has_a_layer_spec_and_rebuilds():
    model = models.mlp([3, 2], activation=None)
    spec = models.layer_spec(model.spec)
    assert spec is not None and spec[1]["layers"][1] == ("Activation", {"activation": "identity"})
    _, params = model.init(KEY, (-1, 4))
    x = np.random.default_rng(2).normal(size=(5, 4)).astype(np.float32)
    first, last = params[0], params[2]
    want = (x @ first["W"] + first["b"]) @ last["W"] + last["b"]  # identity between them
    np.testing.assert_allclose(layers.from_spec(spec).apply(params, x), want, rtol=1e-5)
    assert layers.Activation(None).spec == ("Activation", {"activation": "identity"})


def test_residual_state_is_its_childs_own_not_a_list():
    """nnjax.layers: serial/parallel state is a list per child; residual(f)'s is f's own."""
    _, params, state = layers.residual(layers.BatchNorm()).init(KEY, (-1, 3))
    assert set(params) == {"scale", "offset"} and set(state) == {"mean", "var"}
    _, _, state = layers.serial(layers.Dense(3), layers.BatchNorm()).init(KEY, (-1, 3))
    assert isinstance(state, list) and state[0] == () and set(state[1]) == {"mean", "var"}


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_the_numpy_twin_refuses_a_0d_softmax_as_the_layer_does(name):
    """The twin returned 1.0 (softmax) and 0.0 (log_softmax) for a 0-d array, where the JAX
    function raises: the two must agree."""
    from nnjax.reference import activations as R

    with pytest.raises(ValueError, match=rf"^{name}: needs an array of at least 1 dim"):
        getattr(R, name)(np.float64(2.0))
    np.testing.assert_allclose(R.softmax(np.array([2.0])), [1.0])
