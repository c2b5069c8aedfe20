"""Exponential synapses and delay lines: exact PSCs, delays in steps, conductance effects,
gradients, and composition with a neuron inside one scan."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from nnjax.brain import adex
from nnjax.brain import synapses as syn


def _run_projection(pre, W, delays, params, dt, max_delay):
    """Scan a projection over presynaptic spikes (T, n_pre); returns x (T, n_post)."""
    state = syn.projection_init(pre.shape[1], W.shape[0], max_delay, params, dtype=pre.dtype)

    def body(s, spikes):
        s = syn.projection_step(s, spikes, W, delays, params, dt)
        return s, s.syn.x

    return jax.lax.scan(body, state, pre)[1]


def test_single_spike_gives_the_exact_exponential_psc():
    with jax.enable_x64(True):
        T, dt, tau, w, d = 200, 0.1, 5.0, 3.0, 7
        pre = jnp.zeros((T, 1)).at[10, 0].set(1.0)
        x = _run_projection(pre, jnp.array([[w]]), jnp.array([d]), syn.SynapseParams(tau), dt, 10)
        k = np.arange(T) - (10 + d)  # the spike arrives at the end of step 17
        expected = np.where(k >= 0, w * np.exp(-np.maximum(k, 0) * dt / tau), 0.0)
        np.testing.assert_allclose(x[:, 0], expected, rtol=1e-12, atol=0)


def test_delays_per_neuron_and_per_synapse_against_numpy():
    rng = np.random.default_rng(0)
    T, n_pre, n_post, D = 300, 5, 3, 12  # T spans the ring 25 times
    pre = (rng.random((T, n_pre)) < 0.1).astype(np.float32)
    W = rng.normal(size=(n_post, n_pre)).astype(np.float32)
    p = syn.SynapseParams(tau=jnp.array([2.0, 5.0, 20.0]))  # heterogeneous per post neuron
    axonal = np.array([0, 3, 12, 7, 1])
    per_syn = rng.integers(0, D + 1, size=(n_post, n_pre))

    def reference(delays):
        x, out = np.zeros(n_post), []
        for t in range(T):
            d = np.broadcast_to(delays, (n_post, n_pre))
            src = t - d
            s = np.where(src >= 0, pre[np.clip(src, 0, None), np.arange(n_pre)], 0.0)
            x = x * np.exp(-0.1 / np.array([2.0, 5.0, 20.0])) + (W * s).sum(1)
            out.append(x)
        return np.array(out)

    got = _run_projection(jnp.asarray(pre), jnp.asarray(W), jnp.asarray(axonal), p, 0.1, D)
    np.testing.assert_allclose(got, reference(axonal), rtol=1e-5, atol=1e-5)
    got = _run_projection(jnp.asarray(pre), jnp.asarray(W), jnp.asarray(per_syn), p, 0.1, D)
    np.testing.assert_allclose(got, reference(per_syn), rtol=1e-5, atol=1e-5)


def test_conductance_synapse_reverses_and_shunts():
    # the current g (E_rev - V) changes sign at E_rev; current-based ignores V
    state = syn.SynapseState(jnp.array([2.0, 2.0, 2.0]))
    V = jnp.array([-70.0, 0.0, 10.0])
    np.testing.assert_allclose(syn.current(state, V, syn.AMPA, "conductance"), [140.0, 0.0, -20.0])
    np.testing.assert_allclose(syn.current(state, V, syn.AMPA, "current"), [2.0, 2.0, 2.0])
    # shunting inhibition (E_rev = E_L): alone it leaves the resting neuron at rest, yet it
    # shrinks the EPSP of a simultaneous excitatory input: what only conductances can do
    p = adex.AdExParams(a=0.0, b=0.0, V_T=0.0, V_peak=50.0)  # a passive membrane here
    shunt = syn.SynapseParams(tau=10.0, E_rev=p.E_L)

    def peak(g_exc, g_inh):
        def body(c, t):
            v, e, i = c
            I = syn.current(e, v.V, syn.AMPA, "conductance")
            I = I + syn.current(i, v.V, shunt, "conductance")
            v = adex.step(v, I, p, 0.1)
            kick = jnp.where(t == 10, 1.0, 0.0)
            e = syn.step(e, g_exc * kick, syn.AMPA, 0.1)
            i = syn.step(i, g_inh * kick, shunt, 0.1)
            return (v, e, i), v.V

        init = (adex.init_state((), p), syn.init_state(()), syn.init_state((), shunt))
        return jax.lax.scan(body, init, jnp.arange(500))[1].max() - p.E_L

    assert float(peak(0.0, 50.0)) == pytest.approx(0.0, abs=1e-4)
    alone, shunted = float(peak(5.0, 0.0)), float(peak(5.0, 50.0))
    assert alone > 2.5 and shunted < 0.8 * alone  # measured 3.01 mV against 2.10 mV


def test_gradients_reach_tau_e_rev_and_weights():
    with jax.enable_x64(True):
        pre = jnp.zeros((120, 2)).at[[5, 30], [0, 1]].set(1.0)

        def total(tau, W):
            x = _run_projection(pre, W, jnp.array([2, 4]), syn.SynapseParams(tau), 0.1, 4)
            return jnp.sum(x**2)

        check_grads(total, (jnp.array([3.0, 8.0]), jnp.ones((2, 2))), order=1, modes=("rev",))
        g = jax.grad(
            lambda e: syn.current(
                syn.SynapseState(2.0), -60.0, syn.SynapseParams(5.0, e), "conductance"
            )
        )(0.0)
        assert float(g) == 2.0
        # vmapped over a batch of time constants
        xs = jax.vmap(lambda t: total(t, jnp.ones((2, 2))))(jnp.array([[2.0, 2.0], [4.0, 4.0]]))
        assert float(xs[1]) > float(xs[0])


def test_a_delayed_projection_drives_a_neuron_inside_one_scan():
    """Neuron A (AdEx) fires under a step current; B only through a 2 ms projection. B's
    first spike follows A's by at least the delay plus one step."""
    dt, d = 0.1, int(syn.delay_steps(2.0, 0.1))
    p = adex.NAUD_2008["tonic"][0]
    W = jnp.array([[0.0, 0.0], [2000.0, 0.0]])  # pA onto B from A
    ext = jnp.array([500.0, 0.0])
    delays = jnp.array([d, d])
    ps = syn.SynapseParams(tau=5.0)

    def body(c, _):
        n, pr = c
        n = adex.step(n, ext + syn.current(pr.syn, n.V, ps, "current"), p, dt)
        pr = syn.projection_step(pr, n.spike, W, delays, ps, dt)
        return (n, pr), n.spike

    init = (adex.init_state((2,), p), syn.projection_init(2, 2, d, ps))
    spikes = np.asarray(jax.lax.scan(body, init, None, length=1000)[1])
    a, b = np.flatnonzero(spikes[:, 0]), np.flatnonzero(spikes[:, 1])
    assert a.size > 5 and b.size > 0
    assert b[0] - a[0] >= d + 1


def test_synapse_errors():
    with pytest.raises(ValueError, match="kind"):
        syn.current(syn.SynapseState(1.0), 0.0, syn.AMPA, "voltage")
    with pytest.raises(ValueError, match=">= 0"):
        syn.delay_steps(jnp.array([1.0, -0.5]), 0.1)
    with pytest.raises(ValueError, match="max_delay"):
        syn.delay_init(3, -1)
    with pytest.raises(ValueError, match="n_post, n_pre"):
        syn.check_weights(jnp.ones((3, 2)), n_pre=3, n_post=2)
    # 2.55 ms: 25 steps, as NetworkSpec.delay_steps (float32 division made it 25.5: 26)
    np.testing.assert_array_equal(syn.delay_steps(jnp.array([0.0, 1.0, 2.55]), 0.1), [0, 10, 25])


def test_timed_projection_delivers_exact_sub_step_arrivals():
    with jax.enable_x64(True):
        dt, tau, w, t_s, d = 0.5, 5.0, 2.0, 0.3, 3
        q = syn.SynapseParams(tau=tau)
        pr = syn.timed_projection_init(1, 1, d, q)
        xs, means = [], []
        for k in range(12):
            mean, jump = syn.timed_projection_input(pr, jnp.array([[w]]), jnp.array([d]), q, dt)
            spike = jnp.array([1.0 if k == 2 else 0.0])
            pr = syn.timed_projection_update(pr, jump, spike, jnp.array([t_s]), q, dt)
            xs.append(float(pr.syn.x[0]))
            means.append(float(mean[0]))
        # the spike at 2 dt + 0.3 ms arrives d dt later, at t_a = 5 dt + 0.3 ms
        t_a = (2 + d) * dt + t_s
        ends = (np.arange(12) + 1) * dt
        exact = np.where(ends >= t_a, w * np.exp(-(ends - t_a) / tau), 0.0)
        np.testing.assert_allclose(xs, exact, rtol=1e-12, atol=1e-15)
        # the mean over the arrival step is the integral of the kernel from t_a to its end
        arrival_step = int(t_a // dt)
        integral = w * tau * (1 - np.exp(-(ends[arrival_step] - t_a) / tau)) / dt
        assert means[arrival_step] == pytest.approx(integral, rel=1e-12)
        assert means[arrival_step - 1] == 0.0


def _chain(R_a, w, tau_syn, dt=0.1, T=2000, n_spikes=3):
    """A -> B (delay 1 ms), exact adaptive LIF neurons and a timed current synapse (nA); A
    is driven at 3 nA, B sits at 1.2 nA, below its 1.5 nA rheobase: B fires through A."""
    from nnjax.brain import adaptive_lif as alif

    p = alif.ALIFParams(R=jnp.array([R_a, 10.0]))
    q = syn.SynapseParams(tau=tau_syn)
    W = jnp.array([[0.0, 0.0], [w, 0.0]])
    d = int(round(1.0 / dt))
    delays = jnp.array([d, d])  # 1 ms
    ext = jnp.array([3.0, 1.2])

    def body(c, _):
        n, pr = c
        mean, jump = syn.timed_projection_input(pr, W, delays, q, dt)
        n = alif.step(n, ext + mean, p, dt)
        pr = syn.timed_projection_update(pr, jump, n.spike, n.t_spike, q, dt)
        return (n, pr), n

    init = (alif.init_state((2,), p), syn.timed_projection_init(2, 2, d, q))
    tr = jax.lax.scan(body, init, None, length=T)[1]
    times, valid = alif.spike_time_array(tr, dt, n_spikes)
    return times[1], valid[1]


def test_gradients_through_a_two_neuron_network_match_finite_differences():
    """With sub-step spike times carried by the synapse, B's spike times are continuous,
    piecewise-smooth functions of A's parameters and of the synapse: jax.grad through the
    whole scan equals finite differences, also over steps wide enough for A's spikes to
    cross step boundaries (with 0/1 spikes on the grid they would jump instead)."""
    with jax.enable_x64(True):
        chain = jax.jit(_chain)  # one compile for the values, one for the gradient
        times, valid = chain(10.0, 1.5, 5.0)
        assert bool(valid.all())
        f = lambda R_a, w, tau_syn: jnp.sum(chain(R_a, w, tau_syn)[0])
        check_grads(f, (10.0, 1.5, 5.0), order=1, modes=("rev",), eps=1e-6)
        grads = jax.grad(f, argnums=(0, 1, 2))(10.0, 1.5, 5.0)
        # wide central differences (R_a +-0.05 moves A's spikes by ~0.1-0.3 ms, across step
        # boundaries): within 5 % of the gradient. The function is continuous but has kinks
        # where a spike crosses a step boundary: its slope ripples by ~2 % at dt = 0.1 ms
        # (~10 % at dt = 0.5 ms; measured)
        for i, h in enumerate([0.05, 0.01, 0.05]):
            x = [10.0, 1.5, 5.0]
            x[i] += h
            up = f(*x)
            x[i] -= 2 * h
            fd = (up - f(*x)) / (2 * h)
            assert float(grads[i]) == pytest.approx(float(fd), rel=0.05), (i, grads, fd)
        # a larger R_a or weight makes B fire earlier
        assert float(grads[0]) < 0 and float(grads[1]) < 0


def test_delay_steps_refuses_non_finite_and_overflowing_delays():
    """nan ms became 0 steps, inf and 1e10 ms INT32_MAX: all refused, naming the delay."""
    with pytest.raises(ValueError, match="delay_steps: delays must be finite .* got nan"):
        syn.delay_steps(jnp.array([1.0, jnp.nan]), 0.1)
    with pytest.raises(ValueError, match="delay_steps: delays must be finite .* got inf"):
        syn.delay_steps(np.float32(np.inf), 0.1)
    with pytest.raises(ValueError, match=r"delay_steps: delays must be at most 2147483647 steps"):
        syn.delay_steps(jnp.array([1.0, 1e10]), 0.1)
    with pytest.raises(ValueError, match="delay_steps: dt must be > 0"):
        syn.delay_steps(1.0, 0.0)
    np.testing.assert_array_equal(syn.delay_steps(np.array([0.3, 2e8]), 0.1), [3, 2_000_000_000])
    # traced delays are converted, not checked
    traced = jax.jit(lambda d: syn.delay_steps(d, 0.1))(jnp.array([1.0, 2.0]))
    np.testing.assert_array_equal(traced, [10, 20])


def test_concrete_delays_outside_the_ring_are_refused():
    """A delay of 0.7 steps read as 0, 4 on a ring of max_delay 3 wrapped to 0, and a timed
    projection's delay 0 arrived max_delay steps late: concrete delays are checked."""
    line = syn.delay_init(2, 3)
    for k in range(3):
        line = syn.delay_push(line, jnp.array([float(k), 10.0 + k]))  # latest: [2, 12]
    np.testing.assert_array_equal(syn.delay_read(line, jnp.array([0, 2])), [2.0, 10.0])
    np.testing.assert_array_equal(syn.delay_read(line, np.array([1.0, 0.0])), [1.0, 12.0])
    for bad, shown in ((jnp.array([0.7, 1.0]), "0.7"), (4, "4"), (np.array([[0, -1]]), "-1")):
        with pytest.raises(ValueError, match=rf"delay_read: .* \[0, max_delay=3\], got {shown}"):
            syn.delay_read(line, bad)
    # traced delays are not checked: they wrap around the ring (documented)
    wrapped = jax.jit(syn.delay_read)(line, jnp.array([4, 4]))
    np.testing.assert_array_equal(wrapped, syn.delay_read(line, jnp.array([0, 0])))
    q = syn.SynapseParams(tau=5.0)
    tp = syn.timed_projection_init(1, 1, 3, q)
    W = jnp.array([[1.0]])
    for bad in (jnp.array([0]), jnp.array([4]), jnp.array([1.5])):
        with pytest.raises(ValueError, match=r"timed_projection_input: .* \[1, max_delay=3\]"):
            syn.timed_projection_input(tp, W, bad, q, 0.1)
    with pytest.raises(ValueError, match=r"timed_projection_input: tau \(ms\) must be .* got 0.0"):
        syn.timed_projection_input(tp, W, jnp.array([3]), syn.SynapseParams(tau=0.0), 0.1)


def test_synapse_step_checks_tau_and_dt():
    """tau = 0 was a ZeroDivisionError and tau < 0 or dt < 0 grew x (x = 1 -> 1.02)."""
    x1 = syn.SynapseState(jnp.ones(2))
    for params, dt, msg in (
        (syn.SynapseParams(tau=-5.0), 0.1, r"tau \(ms\) must be a finite number > 0, got -5.0"),
        (syn.SynapseParams(tau=0.0), 0.1, r"tau \(ms\) must be a finite number > 0, got 0.0"),
        (syn.SynapseParams(tau=np.array([5.0, np.nan])), 0.1, r"tau \(ms\) .* got nan"),
        (syn.AMPA, -0.1, r"dt \(ms\) must be a finite number > 0, got -0.1"),
    ):
        with pytest.raises(ValueError, match="synapses.step: " + msg):
            syn.step(x1, 0.0, params, dt)
    # traced tau (inside jit, as every network passes it) runs unchecked and exactly
    x = jax.jit(lambda tau: syn.step(x1, 0.5, syn.SynapseParams(tau), 0.1).x)(5.0)
    np.testing.assert_allclose(x, np.exp(-0.1 / 5.0) + 0.5, rtol=1e-6)


def test_delay_lines_accept_numpy_integer_sizes():
    line = syn.delay_init(np.int64(10), np.int32(3))
    assert line.buffer.shape == (4, 10)
    assert syn.timed_projection_init(np.int64(2), 2, np.int64(3)).line.buffer.shape == (3, 2, 2)
    assert syn.delay_init(2, 0, channels=np.int64(2)).buffer.shape == (1, 2, 2)
    with pytest.raises(ValueError, match="delay_init: n_pre must be an int >= 1, got True"):
        syn.delay_init(True, 3)
    with pytest.raises(ValueError, match=r"delay_init: max_delay \(steps\) must be an int >= 0"):
        syn.delay_init(2, 1.0)
    with pytest.raises(ValueError, match=r"timed_projection_init: max_delay \(steps\) .* >= 1"):
        syn.timed_projection_init(2, 2, np.int64(0))


def test_synaptic_drive_names_mismatched_shapes():
    W = jnp.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    s = jnp.array([1.0, 0.0, 1.0])
    np.testing.assert_array_equal(syn.synaptic_drive(W, s), [4.0, 10.0])
    np.testing.assert_array_equal(syn.synaptic_drive(W, jnp.stack([s, 1 - s])), [4.0, 5.0])
    with pytest.raises(ValueError, match=r"synaptic_drive: .* got W \(2, 3\) and spikes \(4,\)"):
        syn.synaptic_drive(W, jnp.ones(4))
    with pytest.raises(ValueError, match=r"synaptic_drive: .* \(n_post, n_pre, \.\.\.\), got W"):
        syn.synaptic_drive(W, jnp.ones((3, 2)))
    with pytest.raises(ValueError, match=r"synaptic_drive: .* got W \(3,\)"):
        syn.synaptic_drive(jnp.ones(3), s)
