"""Surrogate-gradient spikes: Heaviside forward, closed-form surrogate derivatives backward."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nnjax.brain import neurons, surrogate
from nnjax.brain.surrogate import spike


def _closed_form(name, x, k):
    x = np.asarray(x, np.float64)
    if name == "fast_sigmoid":
        return 1.0 / (1.0 + k * np.abs(x)) ** 2
    if name == "arctan":
        return (k / 2.0) / (1.0 + (np.pi * k * x / 2.0) ** 2)
    if name == "sigmoid":
        s = 1.0 / (1.0 + np.exp(-k * x))
        return k * s * (1.0 - s)
    if name == "triangular":
        return k * np.maximum(0.0, 1.0 - k * np.abs(x))
    return np.ones_like(x)


@pytest.mark.parametrize("name", list(surrogate.SURROGATES))
@pytest.mark.parametrize("slope", [0.5, 2.0, 25.0])
def test_surrogate_grad_equals_closed_form(name, slope):
    with jax.enable_x64(True):
        x = jnp.linspace(-3.0, 3.0, 241)
        g = jax.vmap(jax.grad(lambda v: spike(v, name, slope)))(x)
        np.testing.assert_allclose(g, _closed_form(name, x, slope), rtol=0, atol=1e-6)
        # forward is the exact step H(x) = 1[x >= 0]
        np.testing.assert_array_equal(spike(x, name, slope), (np.asarray(x) >= 0).astype(float))


def test_spike_under_jit_keeps_dtype_and_default_slope():
    x = jnp.array([-0.1, 0.0, 0.2], jnp.float32)
    s = jax.jit(lambda v: spike(v))(x)
    assert s.dtype == jnp.float32
    np.testing.assert_array_equal(s, [0.0, 1.0, 1.0])
    g = jax.grad(lambda v: spike(v).sum())(x)
    np.testing.assert_allclose(g, 1.0 / (1.0 + 25.0 * jnp.abs(x)) ** 2, rtol=1e-6)


def test_reset_gradient_detached_by_default():
    # one step from v = 0: u = I, s = H(I - 1), v' = u - s; dv'/dI = 1 detached,
    # 1 - g(I - 1) when the reset keeps its gradient
    def v_after(current, detach):
        _, v = neurons.lif(current[None], beta=0.9, detach_reset=detach, surrogate="sigmoid")
        return v[0]

    with jax.enable_x64(True):
        current = jnp.float64(1.1)
        assert float(jax.grad(v_after)(current, True)) == pytest.approx(1.0, abs=1e-12)
        expected = 1.0 - surrogate.sigmoid(current - 1.0, 4.0)
        assert float(jax.grad(v_after)(current, False)) == pytest.approx(float(expected))


def test_surrogate_errors():
    with pytest.raises(ValueError, match="unknown surrogate 'relu'"):
        spike(jnp.zeros(2), "relu")
    with pytest.raises(ValueError, match="slope"):
        spike(jnp.zeros(2), "arctan", -1.0)
    with pytest.raises(ValueError, match="slope"):
        spike(jnp.zeros(2), "arctan", float("inf"))
