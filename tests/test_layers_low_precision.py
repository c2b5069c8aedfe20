"""Sums of branches and normalisation statistics in low-precision and integer inputs:
FanInSum and residual add in a float dtype (uint8 177 + 177 wrapped to 98), LayerNorm and
BatchNorm compute their statistics in at least float32 (in bfloat16, inputs of mean 100
and std 3 moved y by 0.06-0.16), against NumPy float64 on the same rounded inputs."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nnjax.layers import (
    BatchNorm,
    Dense,
    FanInSum,
    FanOut,
    Identity,
    LayerNorm,
    parallel,
    residual,
    serial,
)


def test_fan_in_sum_of_integer_branches_adds_in_the_default_float():
    x = jnp.asarray([[177, 3]], jnp.uint8)
    net = serial(FanOut(2), parallel(Identity(), Identity()), FanInSum())
    _, p = net.init(jax.random.key(0), (-1, 2))
    y = net.apply(p, x)
    assert y.dtype == jnp.float32 and np.asarray(y).tolist() == [[354.0, 6.0]]
    b = jnp.asarray([[True, False]])
    assert np.asarray(net.apply(p, b)).tolist() == [[2.0, 0.0]]


def test_residual_of_an_integer_input_adds_in_the_default_float():
    x = jnp.asarray([[200, 100]], jnp.uint8)
    net = residual(Identity())
    _, p = net.init(jax.random.key(0), (-1, 2))
    assert np.asarray(net.apply(p, x)).tolist() == [[400.0, 200.0]]


def test_fan_in_sum_takes_nested_lists_and_keeps_float_dtypes():
    s = FanInSum()
    assert np.asarray(s.apply({}, ([[1.5, 2.0]], [[0.5, 1.0]]))).tolist() == [[2.0, 3.0]]
    h = jnp.ones((2,), jnp.bfloat16)
    assert s.apply({}, (h, h)).dtype == jnp.bfloat16
    assert s.apply({}, (h, jnp.ones((2,), jnp.float32))).dtype == jnp.float32


def test_residual_of_a_float_branch_keeps_the_float32_sum():
    net = residual(Dense(3))
    _, p = net.init(jax.random.key(1), (-1, 3))
    x = np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32)
    want = x + (x @ np.asarray(p["W"]) + np.asarray(p["b"]))
    np.testing.assert_allclose(net.apply(p, x), want, rtol=1e-6, atol=1e-6)


def _oracle(x, axes):
    m = x.mean(axes, keepdims=True)
    return (x - m) / np.sqrt(((x - m) ** 2).mean(axes, keepdims=True) + 1e-5)


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16])
def test_norm_statistics_of_low_precision_inputs_are_computed_in_float32(dtype):
    x = jnp.asarray(100 + 3 * np.random.default_rng(0).standard_normal((16, 32)), dtype)
    xr = np.asarray(x, np.float64)  # the same rounded inputs, in float64
    ln, bn = LayerNorm(), BatchNorm()
    _, p = ln.init(jax.random.key(0), (-1, 32))
    _, pb, s = bn.init(jax.random.key(0), (-1, 32))
    y = ln.apply(p, x)
    yb, _ = bn.apply(pb, x, state=s, train=True)
    assert y.dtype == yb.dtype == jnp.float32  # float32 params: as before
    np.testing.assert_allclose(np.asarray(y, np.float64), _oracle(xr, -1), atol=2e-6)
    np.testing.assert_allclose(np.asarray(yb, np.float64), _oracle(xr, 0), atol=2e-6)


def test_norm_of_bfloat16_input_and_params_stays_bfloat16_rounded_once():
    x = jnp.asarray(100 + 3 * np.random.default_rng(2).standard_normal((8, 16)), jnp.bfloat16)
    ln = LayerNorm(dtype=jnp.bfloat16)
    _, p = ln.init(jax.random.key(0), (-1, 16))
    y = ln.apply(p, x)
    want = _oracle(np.asarray(x, np.float64), -1)
    assert y.dtype == jnp.bfloat16
    # only the final rounding to bfloat16 (8 bits): |y| < 4, so within 2^-8 * 4
    assert np.abs(np.asarray(y, np.float64) - want).max() <= 2**-8 * 4
