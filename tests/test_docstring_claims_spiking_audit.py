"""A second audit of the spiking-model docstrings (adaptive_lif, izhikevich, surrogate,
spiking, convert): each test checks one stated claim against an independent oracle (NumPy
arithmetic in float64, scipy's solve_ivp, or the formula the docstring states)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from ode_oracles import alif_spike_times

from nnjax.brain import adaptive_lif, convert, izhikevich, spiking, surrogate


def _as64(x):
    return np.asarray(jnp.asarray(x).astype(jnp.float32), np.float64)


@pytest.mark.parametrize("dtype, n_steps", [(jnp.float16, 3000), (jnp.bfloat16, 300)])
def test_rate_encode_regular_train_is_0_1_with_floor_counts_in_half_precision(dtype, n_steps):
    # the deterministic train counted in x's dtype: float16 past 2048 steps (bfloat16 past
    # 256) rounded the step index, and steps of 2 "spikes" appeared
    x = jnp.asarray([1.0, 0.5, 0.3, 0.77], dtype)
    s = spiking.rate_encode(None, x, n_steps)
    assert s.dtype == x.dtype and s.shape == (n_steps, 4)
    v = _as64(s)
    assert set(np.unique(v)) <= {0.0, 1.0}
    np.testing.assert_array_equal(v.sum(0), np.floor(n_steps * _as64(x)))


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16])
def test_latency_encode_fires_once_at_the_stated_step_in_half_precision(dtype):
    # round((1 - x)(T - 1)) computed in bfloat16 was off by up to 998 of 1000 steps, and
    # inputs whose rounded step fell past T - 1 never fired
    n = 1000
    x = jnp.linspace(0.001, 1.0, 2000).astype(dtype)
    s = _as64(spiking.latency_encode(x, n))
    np.testing.assert_array_equal(s.sum(0), np.ones(2000))
    np.testing.assert_array_equal(s.argmax(0), np.round((1.0 - _as64(x)) * (n - 1)))


@pytest.mark.parametrize("tau_w", [30.0, 10.0])  # 10.0 = tau_m: the psi limit
def test_adaptive_lif_spike_times_are_exact_at_a_coarse_dt(tau_w):
    p = adaptive_lif.DEFAULT._replace(tau_w=tau_w, b=0.3)
    ref = np.array(alif_spike_times(p, 2.5, 100.0))
    assert len(ref) >= 6
    dt = 2.0  # t_ref, the largest dt allowed: one step holds 2 ms of dynamics
    tr = adaptive_lif.simulate(jnp.full((int(round(100.0 / dt)),), 2.5), p, dt=dt)
    t, ok = adaptive_lif.spike_time_array(tr, dt, len(ref) + 1)
    assert int(np.sum(ok)) == len(ref)
    np.testing.assert_allclose(np.asarray(t)[: len(ref)], ref, atol=2e-4)


def test_izhikevich_rs_spike_counts_per_dt_as_stated():
    # the module docstring: over 1 s of RS at I = 10, 23 spikes at dt = 0.1-0.5, 22 at 1-2 ms
    for dt, want in ((0.5, 23), (1.0, 22), (2.0, 22)):
        n = int(round(1000.0 / dt))
        tr = izhikevich.simulate(jnp.full((n,), 10.0), izhikevich.IZHIKEVICH_2003["RS"], dt=dt)
        assert int(tr.spike.sum()) == want, dt


def test_surrogate_unit_areas_and_peaks_as_stated():
    # arctan and sigmoid integrate to 1 (derivatives of a 0 -> 1 step); triangular has unit
    # area on |x| < 1/k; fast_sigmoid's area is 2/k; every g peaks at 0
    x = np.linspace(-400.0, 400.0, 1_600_001)
    h = x[1] - x[0]
    for name, k, area in [("arctan", 2.0, 1.0), ("sigmoid", 4.0, 1.0), ("triangular", 3.0, 1.0)]:
        g = np.asarray(surrogate.SURROGATES[name](jnp.asarray(x), k), np.float64)
        tol = 2e-3 if name == "arctan" else 1e-4  # arctan's tails fall as 1/x^2
        assert abs(g.sum() * h - area) < tol, name
        assert np.argmax(g) == len(x) // 2, name
    tri = np.asarray(surrogate.triangular(jnp.asarray([1 / 3 - 1e-3, 1 / 3 + 1e-3]), 3.0))
    assert tri[0] > 0 and tri[1] == 0
    xs = np.linspace(-1.0, 1.0, 9)
    grads = jax.vmap(jax.grad(lambda v: surrogate.spike(v, "fast_sigmoid", 5.0)))(jnp.asarray(xs))
    np.testing.assert_allclose(grads, 1.0 / (1.0 + 5.0 * np.abs(xs)) ** 2, rtol=1e-6)


def test_convert_output_times_lambda_recovers_the_ann_logits():
    # percentile 100: no activation above its lambda, so the decoded output converges to the
    # ANN's logits as the rates do (to within C/T)
    rng = np.random.default_rng(3)
    params = [
        {"W": jnp.asarray(rng.normal(size=(5, 6)), jnp.float32), "b": jnp.zeros(6)},
        {},
        {"W": jnp.asarray(rng.normal(size=(6, 3)), jnp.float32), "b": jnp.ones(3)},
    ]
    X = jnp.asarray(rng.uniform(size=(40, 5)), jnp.float32)
    conv = convert.normalize(params, X, percentile=100.0)
    logits, hidden = convert.ann_forward(convert.dense_params(params), X, return_hidden=True)
    np.testing.assert_allclose(conv.scales[1], np.max(np.asarray(hidden[0])), rtol=1e-6)
    res = convert.simulate(conv, X, 2000)
    assert np.max(np.abs(np.asarray(res.rates[0]) - np.asarray(hidden[0]) / conv.scales[1])) <= (
        1.0 / 2000 + 1e-6
    )
    np.testing.assert_allclose(res.output, logits, atol=5e-3 * float(conv.scales[-1]))
