"""Layers: shapes at init, values against NumPy, gradients, keys, and shape errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import nnjax
from nnjax.layers import LAYERS, Activation, Dense, Dropout, Flatten, serial

KEY = jax.random.key(0)


def test_dense_shapes_names_and_value():
    layer = Dense(3)
    out_shape, p = layer.init(KEY, (-1, 4))
    assert out_shape == (-1, 3)
    assert set(p) == {"W", "b"} and p["W"].shape == (4, 3) and p["b"].shape == (3,)
    assert p["W"].dtype == jnp.float32
    x = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)
    np.testing.assert_allclose(
        layer.apply(p, x), x @ np.asarray(p["W"]) + np.asarray(p["b"]), rtol=1e-6
    )


def test_dense_without_bias_and_dtype_follows_x64():
    _, p = Dense(2, use_bias=False).init(KEY, (7, 3))
    assert set(p) == {"W"}
    with jax.enable_x64(True):
        _, p64 = Dense(2).init(KEY, (7, 3))
    assert p64["W"].dtype == jnp.float64


def test_serial_is_function_composition():
    net = serial(Dense(8), Activation("tanh"), Dense(2))
    out_shape, params = net.init(KEY, (-1, 3))
    assert out_shape == (-1, 2) and len(params) == 3 and params[1] == {}
    x = jnp.ones((4, 3))
    manual = jnp.tanh(x @ params[0]["W"] + params[0]["b"]) @ params[2]["W"] + params[2]["b"]
    np.testing.assert_allclose(net.apply(params, x), manual, rtol=1e-6)


def test_flatten_keeps_batch_axis():
    out_shape, _ = Flatten().init(KEY, (-1, 2, 3, 4))
    assert out_shape == (-1, 24)
    assert Flatten().apply({}, jnp.ones((5, 2, 3, 4))).shape == (5, 24)


def test_dropout_identity_without_key_and_inverted_scaling_with_key():
    layer = Dropout(0.5)
    x = jnp.ones((1000, 50))
    assert layer.apply({}, x) is x
    y = layer.apply({}, x, key=KEY)
    kept = y != 0
    np.testing.assert_allclose(y[kept], 2.0)
    assert abs(float(kept.mean()) - 0.5) < 0.01
    assert not np.array_equal(y, layer.apply({}, x, key=jax.random.key(1)))


@pytest.mark.parametrize(
    "make", [lambda: Dense(3), lambda: serial(Dense(4), Activation("gelu"), Dense(2))]
)
def test_layer_gradients_match_finite_differences(make):
    with jax.enable_x64(True):
        layer = make()
        _, p = layer.init(KEY, (-1, 5))
        x = jax.random.normal(jax.random.key(3), (6, 5))
        check_grads(lambda p, x: layer.apply(p, x), (p, x), order=1, modes=["rev"])


def test_apply_jit_and_no_jit_agree():
    net = nnjax.mlp([16, 16, 3])
    _, p = net.init(KEY, (-1, 8))
    x = jax.random.normal(KEY, (10, 8))
    np.testing.assert_allclose(jax.jit(net.apply)(p, x), net.apply(p, x), rtol=1e-6, atol=1e-6)


def test_wrong_input_shape_names_layer_position_kind_and_shapes():
    net = serial(Dense(8), Activation("relu"), Dense(2))
    _, params = net.init(KEY, (-1, 3))
    with pytest.raises(ValueError, match=r"layer 0 \(Dense\(8\)\): .*\(\.\.\., 3\), got \(4, 5\)"):
        net.apply(params, jnp.ones((4, 5)))
    with pytest.raises(ValueError, match=r"layer 0 \(Flatten\).*at least 2 dims"):
        serial(Flatten(), Dense(2)).init(KEY, (5,))


def test_bad_layer_arguments_raise():
    with pytest.raises(ValueError, match="features must be a positive int"):
        Dense(0)
    with pytest.raises(ValueError, match="rate must be in \\[0, 1\\)"):
        Dropout(1.0)
    with pytest.raises(ValueError, match="unknown activation"):
        Activation("swish2")
    with pytest.raises(ValueError, match="unknown initializer 'xavier'"):
        Dense(3, W_init="xavier")
    with pytest.raises(ValueError, match="argument 1 is not a Layer"):
        serial(Dense(2), "relu")


def test_layers_registry_lists_the_public_layers():
    assert set(LAYERS) == {
        *("Dense", "Activation", "Flatten", "Reshape", "Identity", "Dropout", "serial"),
        *("Conv", "ConvTranspose", "MaxPool", "AvgPool", "GlobalAvgPool"),
        *("LayerNorm", "BatchNorm", "Embedding"),
        *("parallel", "FanOut", "FanInSum", "FanInConcat", "residual"),
        *("SimpleRNNCell", "GRUCell", "LSTMCell", "RNN", "Bidirectional"),
    }
    assert all(getattr(nnjax.layers, name) is make for name, make in LAYERS.items())


@pytest.mark.parametrize(
    "name",
    ["glorot_normal", "glorot_uniform", "he_normal", "he_uniform", "lecun_normal", "lecun_uniform"],
)
def test_initializer_variances(name):
    fan_in, fan_out = 400, 300
    w = nnjax.initializers.get_initializer(name)(KEY, (fan_in, fan_out), jnp.float32)
    target = {"glorot": 2 / (fan_in + fan_out), "he": 2 / fan_in, "lecun": 1 / fan_in}[
        name.split("_")[0]
    ]
    assert abs(float(jnp.var(w)) / target - 1) < 0.05
    assert abs(float(jnp.mean(w))) < 0.01


def test_zeros_and_normal_initializers():
    assert not nnjax.initializers.zeros(KEY, (3, 2), jnp.float32).any()
    w = nnjax.initializers.normal(0.5)(KEY, (200, 200), jnp.float32)
    assert abs(float(jnp.std(w)) - 0.5) < 0.01
    with pytest.raises(ValueError, match="std must be > 0"):
        nnjax.initializers.normal(0.0)
