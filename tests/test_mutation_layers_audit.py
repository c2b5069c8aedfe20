"""Properties of the layers and their NumPy twins that the rest of the suite left unpinned,
found by injecting small faults (mutants) into nnjax/layers, nnjax/reference and
nnjax.initializers: each test here fails on a plausible fault that every other layer test
passed. Each checks the layer against an independent oracle (a formula or a NumPy loop
written here, the documented message), not against its twin (a fault put into both alike
survives that comparison)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nnjax.layers import (
    BatchNorm,
    Bidirectional,
    Conv,
    SimpleRNNCell,
    init_model,
    parallel,
)

KEY = jax.random.key(0)


@pytest.mark.parametrize("momentum", [0.0, 1.0])
def test_batch_norm_momentum_takes_both_ends_of_its_range(momentum):
    """momentum in [0, 1] as documented, both ends included: 0 keeps the running statistics,
    1 replaces them with the batch's mean and UNBIASED variance (n = 6 values per channel)."""
    x = np.arange(12.0).reshape(3, 2, 2) ** 1.5  # (B, L, C): n = 6 per channel
    bn = BatchNorm(momentum=momentum)
    _, params, state = bn.init(KEY, x.shape)
    _, new = bn.apply(params, jnp.asarray(x, jnp.float32), state=state, train=True)
    flat = x.reshape(-1, 2)
    want_mean = flat.mean(0) if momentum else np.zeros(2)
    want_var = flat.var(0, ddof=1) if momentum else np.ones(2)
    np.testing.assert_allclose(np.asarray(new["mean"]), want_mean, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(new["var"]), want_var, rtol=1e-6)


def test_parallel_returns_each_branchs_own_new_running_statistics():
    """parallel(BN, BN) in training: branch i's new state is the update from ITS input
    (mean <- (1 - m) 0 + m mean(x_i), var <- (1 - m) 1 + m var_unbiased(x_i)), not the state
    it was given."""
    rng = np.random.default_rng(1)
    xs = (rng.normal(2.0, 3.0, (8, 3)), rng.normal(-1.0, 0.5, (8, 3)))
    two = parallel(BatchNorm(momentum=0.5), BatchNorm(momentum=0.5))
    _, params, state = init_model(two, KEY, ((8, 3), (8, 3)))
    _, new = two.apply(params, tuple(jnp.asarray(x, jnp.float32) for x in xs), state=state,
                       train=True)  # fmt: skip
    for x, s in zip(xs, new):
        np.testing.assert_allclose(np.asarray(s["mean"]), 0.5 * x.mean(0), rtol=1e-5)
        np.testing.assert_allclose(np.asarray(s["var"]), 0.5 + 0.5 * x.var(0, ddof=1), rtol=1e-5)


def test_complex_truncated_normal_variance_is_the_one_the_docstring_states():
    """JAX's complex *_normal: |w|^2 / s^2 is an Exp(1) cut at 4, s = sqrt(var) / 0.9531, so
    E|w|^2 = var (1 - 4 e^-4 / (1 - e^-4)) / 0.9531^2 = 1.0187 var; 10^6 draws give it to
    +-0.001 (the old docstring said var, 18 standard errors off)."""
    from nnjax import initializers

    shape, var = (1000, 1000), 2 / 1000  # he: 2 / fan_in
    w = np.asarray(initializers.he_normal(KEY, shape, jnp.complex64), np.complex128)
    ratio = 1 - 4 * np.exp(-4) / (1 - np.exp(-4))
    want = ratio / 0.95311164380491208**2
    assert abs(want - 1.0187) < 1e-4
    assert abs(np.mean(np.abs(w) ** 2) / var - want) < 0.005
    assert "E|w|^2 is 1.019 var" in " ".join(initializers.__doc__.split())


def _elman(p, x, reverse=False):
    """h_t = tanh(x_t W_i + h_{t-1} W_h + b) from h = 0, in plain NumPy; the last step run."""
    h = np.zeros((x.shape[0], p["W_h"].shape[0]))
    for t in range(x.shape[1])[:: -1 if reverse else 1]:
        h = np.tanh(x[:, t] @ p["W_i"] + h @ p["W_h"] + p["b"])
    return h


def test_bidirectional_sum_is_the_sum_of_both_directions():
    """merge="sum": y = h_fwd(t = T - 1) + h_bwd(t = 0), each an Elman loop written here."""
    rng = np.random.default_rng(2)
    x = rng.normal(size=(2, 4, 3))
    net = Bidirectional(SimpleRNNCell(5), merge="sum")
    _, params = net.init(KEY, x.shape)
    params = jax.tree.map(lambda a: rng.normal(0, 0.5, a.shape), params)
    with jax.enable_x64(True):
        y = np.asarray(net.apply(jax.tree.map(jnp.asarray, params), jnp.asarray(x)))
    want = _elman(params["forward"], x) + _elman(params["backward"], x, reverse=True)
    np.testing.assert_allclose(y, want, rtol=1e-12, atol=1e-12)


def test_grouped_conv_kernel_error_gives_the_per_group_channels():
    """W is (*k, C / G, F): for C = 6 input channels in G = 2 groups the expected W is
    (3, 3, 4), not (3, 6, 4), and the message says so, naming the layer and the groups."""
    conv = Conv(4, 3, groups=2)
    params = {"W": jnp.ones((3, 1, 6)), "b": jnp.zeros(4)}
    want = (
        "Conv(4, 3): params['W'] has shape (3, 1, 6), expected (3, 3, 4) "
        "(kernel (3,), 6 input channels -> 4 features in 2 groups)"
    )
    with pytest.raises(ValueError) as caught:
        conv.apply(params, jnp.ones((1, 8, 6)))
    assert str(caught.value) == want


def test_batch_norm_running_statistics_carry_no_gradient():
    """The docstring's lax.stop_gradient: d(new running mean and var)/dx is 0, where
    differentiating the update would give momentum / n = 0.5 / 4 per entry for the mean."""
    bn = BatchNorm(momentum=0.5)
    x = jnp.asarray(np.random.default_rng(3).normal(size=(4, 3)), jnp.float32)
    _, params, state = bn.init(KEY, x.shape)

    def stats(x, params):
        new = bn.apply(params, x, state=state, train=True)[1]
        return jnp.sum(new["mean"]) + jnp.sum(new["var"])

    gx, gp = jax.grad(stats, argnums=(0, 1))(x, params)
    np.testing.assert_array_equal(np.asarray(gx), np.zeros((4, 3)))
    assert all(not np.any(np.asarray(g)) for g in jax.tree.leaves(gp))
