"""Numerics of the neuron, synapse and plasticity integrators: the time step, long runs,
float32 against float64, and dt given in every form (Python int, NumPy, JAX, traced).

Oracles: closed forms (the LIF membrane and rate, exponential decay, e^{t / tau_scaling})
and scipy's solve_ivp at rtol = atol = 1e-12 (DOP853) for AdEx, Izhikevich, HH and the
adaptive LIF."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from ode_oracles import alif_spike_times
from scipy.integrate import solve_ivp

from nnjax.brain import adaptive_lif as alif
from nnjax.brain import adex, dynamics, neurons, plasticity
from nnjax.brain import hodgkin_huxley as hh
from nnjax.brain import izhikevich as izh


def _ivp(f, y0, t_end):
    return solve_ivp(f, (0.0, t_end), y0, method="DOP853", rtol=1e-12, atol=1e-12).y[:, -1]


def test_lif_continuous_spike_count_is_exact_at_any_dt_in_float32_and_float64():
    """1 s at constant currents: the count equals the closed form's, floor((T - t1) / P) + 1
    (first spike t1 = P - t_ref from rest), at dt from 0.1 to 3 ms (> t_ref: several spikes
    a step) and t_ref = 2.05 ms (not a multiple of dt); the rate from spike times is exact to
    rounding (measured 1.2e-6 in float32, 6e-15 in float64)."""
    I = np.array([1.6, 2.0, 3.0, 20.0])
    for x64, rtol in ((False, 1e-5), (True, 1e-12)):
        with jax.enable_x64(x64):
            P = 1000.0 / np.asarray(neurons.lif_rate_theory(I, t_ref=2.05), np.float64)
            for dt in (0.1, 1.0, 2.5):
                n = int(round(1000.0 / dt))
                tr = neurons.lif_continuous(
                    jnp.broadcast_to(jnp.asarray(I), (n, 4)), dt=dt, t_ref=2.05
                )
                exact = np.floor((n * dt - (P - 2.05)) / P) + 1
                np.testing.assert_array_equal(np.asarray(tr.n_spikes.sum(0)), exact)
                rate = neurons.rate_from_spike_times(
                    tr.spikes, tr.spike_times, tr.last_spike_times, tr.n_spikes
                )
                np.testing.assert_allclose(np.asarray(rate), 1000.0 / P, rtol=rtol)


def test_adaptive_lif_spike_times_match_solve_ivp_at_every_dt():
    """The adaptive LIF is exact between steps: its spike times over 300 ms at 3 nA equal an
    event-located solve_ivp run (V held at V_r for t_ref = 2.05 ms, w += b) to 1e-8 ms at
    dt = 0.1 and 2 ms (measured 2.1e-10)."""
    p = alif.ALIFParams(t_ref=2.05)
    I = 3.0
    times = alif_spike_times(p, I, 300.0)
    k = len(times) + 1
    with jax.enable_x64(True):
        for dt in (0.1, 2.0):
            x = jnp.full((int(round(300.0 / dt)),), I)
            # compiled (op by op, the run took twice as long); x, p and dt stay concrete
            run = lambda x=x, dt=dt: alif.spike_time_array(alif.simulate(x, p, dt=dt), dt, k)
            got, valid = jax.jit(run)()
            got = np.asarray(got)[np.asarray(valid)]
            assert len(got) == len(times) == 20
            np.testing.assert_allclose(got, times, atol=1e-8)


def test_euler_models_converge_at_order_one_and_hh_at_order_four():
    """Halving dt halves the error of forward Euler (AdEx, Izhikevich: ratios 1.99-2.01
    measured) and divides RK4's by about 16 (HH: 13.3, 14.7, 15.4 from dt = 0.04 ms)."""
    with jax.enable_x64(True):
        p, I = adex.BRETTE_GERSTNER_2005, 400.0  # subthreshold for 50 ms

        def f_adex(t, y):
            e = p.g_L * p.Delta_T * np.exp((y[0] - p.V_T) / p.Delta_T)
            dV = (-p.g_L * (y[0] - p.E_L) + e - y[1] + I) / p.C
            return [dV, (p.a * (y[0] - p.E_L) - y[1]) / p.tau_w]

        ref = _ivp(f_adex, [p.E_L, 0.0], 50.0)[0]
        err = [abs(float(adex.simulate(jnp.full((int(50 / dt),), I), dt=dt).V[-1]) - ref)
               for dt in (0.1, 0.05, 0.025)]  # fmt: skip
        np.testing.assert_allclose(np.array(err[:-1]) / err[1:], 2.0, rtol=0.02)

        q = izh.IZHIKEVICH_2003["RS"]

        def f_izh(t, y):
            return [0.04 * y[0] ** 2 + 5 * y[0] + 140 - y[1] + 2.0, q.a * (q.b * y[0] - y[1])]

        ref = _ivp(f_izh, [-70.0, q.b * -70.0], 50.0)[0]
        s0 = izh.init_state((), q, v0=-70.0)
        err = [abs(float(izh.simulate(jnp.full((int(50 / dt),), 2.0), dt=dt, state=s0).v[-1]) - ref)
               for dt in (0.1, 0.05, 0.025)]  # fmt: skip
        np.testing.assert_allclose(np.array(err[:-1]) / err[1:], 2.0, rtol=0.02)

        def f_hh(t, y):  # the module docstring's equations, in NumPy
            V, m, h, n = y
            am, bm = 0.1 * (V + 40) / -np.expm1(-(V + 40) / 10), 4 * np.exp(-(V + 65) / 18)
            ah, bh = 0.07 * np.exp(-(V + 65) / 20), 1 / (1 + np.exp(-(V + 35) / 10))
            an, bn = 0.01 * (V + 55) / -np.expm1(-(V + 55) / 10), 0.125 * np.exp(-(V + 65) / 80)
            i = 120 * m**3 * h * (V - 50) + 36 * n**4 * (V + 77) + 0.3 * (V + 54.387)
            return [10.0 - i, am * (1 - m) - bm * m, ah * (1 - h) - bh * h, an * (1 - n) - bn * n]

        s0 = hh.init_state(())
        ref = _ivp(f_hh, [float(v) for v in s0], 10.0)[0]  # through the first spike
        err = [abs(float(hh.simulate(jnp.full((int(round(10 / dt)),), 10.0), dt=dt).V[-1]) - ref)
               for dt in (0.04, 0.02, 0.01)]  # fmt: skip
        ratios = np.array(err[:-1]) / err[1:]
        assert np.all((ratios > 11) & (ratios < 17)), ratios


def test_float32_spike_counts_match_float64_over_two_seconds():
    """Long runs in float32 (the default) count the float64 run's spikes (10 s agreed exactly
    for every model at dt 0.01, 0.1 and 1 ms; 2 s here)."""
    cases = [
        (lambda x: alif.simulate(x, dt=0.1).spike, [1.6, 3.0, 10.0]),
        (lambda x: adex.simulate(x, adex.NAUD_2008["tonic"][0], dt=0.1).spike, [500.0, 300.0]),
        (lambda x: izh.simulate(x, dt=0.1).spike, [4.0, 10.0, 20.0]),
    ]
    for run, currents in cases:
        counts = []
        for x64 in (False, True):
            with jax.enable_x64(x64):
                x = jnp.broadcast_to(jnp.asarray(currents), (20000, len(currents)))
                # compiled (op by op, twice the time); x stays concrete
                counts.append(np.asarray(jax.jit(lambda run=run, x=x: run(x).sum(0))()))
        assert counts[1].min() > 5
        np.testing.assert_array_equal(counts[0], counts[1])


@pytest.mark.parametrize(
    "name, call",
    [
        ("adex.step", lambda d: adex.step(adex.init_state(()), 500.0, adex.AdExParams(), d)),
        (
            "izhikevich.step",
            lambda d: izh.step(izh.init_state(()), 10.0, izh.IzhikevichParams(), d),
        ),
        ("hodgkin_huxley.step", lambda d: hh.step(hh.init_state(()), 10.0, hh.STANDARD, d)),
        ("adaptive_lif.step", lambda d: alif.step(alif.init_state(()), 3.0, alif.DEFAULT, d)),
    ],
)
def test_a_step_refuses_an_array_dt_instead_of_widening_the_state(name, call):
    """dt (2,) turned a population () into (2,) with no error (adex, izhikevich, HH; the
    adaptive LIF too when dt is traced)."""
    dts = jnp.array([0.01, 0.02])
    with pytest.raises(ValueError, match=f"{name}: dt has shape \\(2,\\); dt must be a scalar"):
        call(dts)
    with pytest.raises(ValueError, match=f"{name}: dt has shape"):
        jax.jit(call)(dts)
    one = call(0.01)[0]
    assert jnp.shape(one) == ()  # a scalar dt still steps
    # and a dt sweep by vmap is one per lane (compiled: vmap op by op took seconds)
    sweep = jax.jit(jax.vmap(lambda d: call(d)[0]))(dts)
    np.testing.assert_allclose(sweep, [one, call(0.02)[0]], rtol=1e-6)


def test_adex_step_refuses_a_dt_at_or_above_its_fastest_time_constant():
    """simulate refused dt >= min(C / g_L, tau_w) (9.37 ms for Brette & Gerstner's cell) but
    step ran it: at dt = 15 ms, 800 pA, V moved from -70.6 to -27.9 mV in one step."""
    s = adex.init_state(())
    with pytest.raises(ValueError, match=r"adex.step: dt must be below .* = 9.36667 ms"):
        adex.step(s, 800.0, adex.BRETTE_GERSTNER_2005, 15.0)
    assert np.isfinite(float(adex.step(s, 800.0, adex.BRETTE_GERSTNER_2005, 9.0).V))


def test_izhikevich_refuses_a_dt_past_u_time_constant_instead_of_a_silent_nan():
    """The FS cell (a = 0.1) at dt = 20 ms: u's Euler factor 1 - a dt = -1 and v, u ran to
    1e20, then inf and nan, with no error. dt >= 1 / a is now refused, in simulate and step."""
    fs = izh.IZHIKEVICH_2003["FS"]
    with pytest.raises(ValueError, match=r"izhikevich.simulate: dt must be below 1 / a = 10 ms"):
        izh.simulate(jnp.full((100,), 0.0), fs, dt=20.0)
    with pytest.raises(ValueError, match=r"izhikevich.step: dt must be below 1 / a = 10 ms"):
        izh.step(izh.init_state((), fs), 0.0, fs, 10.0)
    # below the bound the run stays finite; the documented RS counts at a large dt still run
    assert bool(jnp.isfinite(izh.simulate(jnp.full((200,), 0.0), fs, dt=9.0).v).all())
    assert float(izh.simulate(jnp.full((int(1000 / 9.0),), 10.0), dt=9.0).spike.sum()) == 55.0


def test_dt_given_as_int_numpy_or_jax_array_runs_the_same_model():
    """dt = 1, np.float64(1.0), jnp.float32(1.0) and 1.0 give one trace; dynamics.run with a
    JAX array dt failed in jit's hashing ("Non-hashable static arguments")."""
    I = jnp.full((300,), 3.0)
    ref = alif.simulate(I, dt=1.0).V
    for dt in (1, np.float64(1.0), jnp.float32(1.0), jnp.array(1.0)):
        np.testing.assert_array_equal(alif.simulate(I, dt=dt).V, ref)
        out = dynamics.run(alif.step, alif.init_state(()), I, alif.DEFAULT, dt).V
        np.testing.assert_array_equal(out, ref)
        np.testing.assert_array_equal(
            neurons.lif_continuous(I, dt=dt).v, neurons.lif_continuous(I, dt=1.0).v
        )
    for bad in (0, -0.1, float("nan"), np.array([0.1])):
        with pytest.raises(ValueError, match="run: dt must be"):
            dynamics.run(alif.step, alif.init_state(()), I, alif.DEFAULT, bad)


def test_a_traced_dt_in_a_simulator_says_it_is_traced():
    """vmap over dt of a simulator read 'dt must be a positive float (ms), got VmapTracer'
    (each lane's dt was a positive float); the error now says why and what to do."""
    dts = jnp.array([0.1, 0.2])
    calls = [
        ("lif_continuous", lambda d: neurons.lif_continuous(jnp.full((50,), 3.0), dt=d).v),
        ("adex.simulate", lambda d: adex.simulate(jnp.full((50,), 500.0), dt=d).V),
        ("hodgkin_huxley.simulate", lambda d: hh.simulate(jnp.full((50,), 10.0), dt=d).V),
    ]
    for name, call in calls:
        with pytest.raises(ValueError, match=f"{name}: dt must be a concrete number .* traced"):
            jax.vmap(call)(dts)
        with pytest.raises(ValueError, match=f"{name}: dt must be a concrete number .* traced"):
            jax.jit(call)(0.1)


def test_synaptic_scaling_in_float32_grows_as_the_exact_exponential():
    """A silent neuron's weights grow as e^{t / tau_scaling}. W e^z with z = dt / tau = 1e-6
    rounds e^z to 1 + 8 x 1.19e-7 every step: after t = 0.1 tau the growth was 0.5% short in
    float32 (4.7% after t = tau). W + W expm1(z): 4e-4. The rate estimate decays as
    e^{-t / tau_rate}."""
    p = plasticity.ScalingParams(tau_rate=1000.0, tau_scaling=1e4)
    W0 = jnp.array([[1.0, 0.37, 3.3]], jnp.float32)
    silent = jnp.zeros((1,), jnp.float32)

    def body(c, _):
        return plasticity.scaling_step(*c, silent, p, 0.01), None

    n = 100_000  # 1 s at dt = 0.01 ms
    (_, W), _ = jax.lax.scan(body, (silent, W0), None, length=n)
    np.testing.assert_allclose(np.asarray(W), np.asarray(W0) * np.exp(0.1), rtol=1e-3)
    high = jnp.full((1,), 1e-3, jnp.float32)  # far below the target: W barely moves
    (rate, _), _ = jax.lax.scan(body, (high, W0), None, length=n)
    np.testing.assert_allclose(float(rate[0]), 1e-3 * np.exp(-1.0), rtol=3e-4)


def test_synaptic_scaling_refuses_a_step_below_the_weights_resolution():
    """In float32, dt / tau_scaling = 1e-8 (dt = 0.01 ms, tau_scaling = 1e6 ms) left W exactly
    unchanged step after step: no scaling at all, no error. float64 resolves it."""
    p = plasticity.ScalingParams(tau_scaling=1e6)
    args = (jnp.zeros(1), jnp.ones((1, 1), jnp.float32), jnp.zeros(1))
    with pytest.raises(ValueError, match=r"scaling_step: dt / tau_scaling = 1e-08 is below 8 x"):
        plasticity.scaling_step(*args, p, 0.01)
    with pytest.raises(ValueError, match=r"scaling_step: dt / tau_rate = 1e-08"):
        plasticity.scaling_step(*args, plasticity.ScalingParams(tau_rate=1e6), 0.01)
    plasticity.scaling_step(*args, p, 0.0)  # dt = 0 (events at one time) changes nothing
    with jax.enable_x64(True):
        _, W = plasticity.scaling_step(jnp.zeros(1), jnp.ones((1, 1)), jnp.zeros(1), p, 0.01)
        assert float(W[0, 0]) == pytest.approx(np.exp(1e-8), rel=1e-15)


def test_traces_and_synapses_decay_to_zero_in_float32_over_ten_seconds():
    """x e^{-dt / tau} per step: exact decay to 1.4e-4 after 50 ms at dt = 0.01 ms (float32),
    and exactly 0 after 10 s (no drift, no denormal floor)."""
    from nnjax.brain import synapses

    dt, n = 0.1, 100_000
    tr = plasticity.PairTraces(jnp.ones((1,), jnp.float32), jnp.ones((1,), jnp.float32))
    z = jnp.zeros((1,), jnp.float32)

    def body(c, _):
        tr, W, s = c
        tr, W = plasticity.pair_stdp_step(tr, W, z, z, plasticity.PairSTDPParams(), dt)
        s = synapses.step(s, 0.0, synapses.AMPA, dt)
        return (tr, W, s), (tr.x[0], s.x[0])

    s0 = synapses.SynapseState(jnp.ones((1,), jnp.float32))
    (tr, _, s), (xs, gs) = jax.lax.scan(body, (tr, jnp.ones((1, 1)), s0), None, length=n)
    np.testing.assert_allclose(float(xs[499]), np.exp(-50.0 / 16.8), rtol=1e-5)
    np.testing.assert_allclose(float(gs[199]), np.exp(-20.0 / 5.0), rtol=1e-5)
    assert float(tr.x[0]) == float(tr.y[0]) == float(s.x[0]) == 0.0
