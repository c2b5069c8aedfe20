"""Small faults in the neuron, synapse, plasticity and rhythm models that the suite let pass
(a mutation audit, round 2): each test compares against an independent oracle (a closed
form written here, SciPy, a NumPy loop of the documented equations) and fails on the fault
named in its docstring."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.signal

from nnjax.brain import filters, synapses, synchrony
from nnjax.brain import hodgkin_huxley as hh
from nnjax.brain import izhikevich as iz
from nnjax.brain import plasticity as pl


def test_scaling_step_uses_the_rate_estimate_that_includes_this_steps_spike():
    """r_i = (1000 / tau_rate) sum_k e^{-(t - t_k)/tau_rate} counts a spike of this step
    (t_k = t), and W <- W e^{(dt / tau_scaling)(1 - r_i / target_rate)} uses that r_i. Fault
    caught: the growth computed from the rate before this step's update."""
    p = pl.ScalingParams(target_rate=5.0, tau_rate=100.0, tau_scaling=50.0)
    dt, r0 = 1.0, 3.0
    with jax.enable_x64(True):
        rate = jnp.array([r0, r0])
        W = jnp.array([[1.0, 2.0], [4.0, 0.5]])
        post = jnp.array([1.0, 0.0])
        rate1, W1 = pl.scaling_step(rate, W, post, p, dt)
    r = r0 * np.exp(-dt / 100.0) + np.array([1.0, 0.0]) * 1000.0 / 100.0  # 12.97, 2.97 Hz
    np.testing.assert_allclose(np.asarray(rate1), r, rtol=1e-12)
    factor = np.exp((dt / 50.0) * (1.0 - r / 5.0))
    np.testing.assert_allclose(np.asarray(W1), np.asarray(W) * factor[:, None], rtol=1e-12)


def test_bandpass_default_is_the_fourth_order_butterworth_of_scipy():
    """bandpass's and butter_bandpass's default ``order`` is 4: scipy.signal.sosfiltfilt of
    butter(4, band, 'bandpass', fs, output='sos'). Fault caught: another default order in
    either (butter_bandpass is public, re-exported by rhythms)."""
    fs, band = 200.0, (11.0, 16.0)
    rng = np.random.default_rng(0)
    x = rng.standard_normal(2000)
    with jax.enable_x64(True):
        got = np.asarray(filters.bandpass(jnp.asarray(x), fs, band))
    sos = scipy.signal.butter(4, band, btype="bandpass", fs=fs, output="sos")
    want = scipy.signal.sosfiltfilt(sos, x)
    np.testing.assert_allclose(filters.butter_bandpass(fs, band), sos, rtol=1e-12)
    np.testing.assert_allclose(got, want, rtol=1e-7, atol=1e-9)
    other = scipy.signal.sosfiltfilt(
        scipy.signal.butter(3, band, btype="bandpass", fs=fs, output="sos"), x
    )
    assert np.max(np.abs(other - want)) > 1e-3  # the oracle tells the orders apart


def _hh_peaks(current, duration, dt, prominence=2.0):
    """fi_curve's documented spike times as a NumPy loop over simulate's trace: a local
    maximum (v1 > v0, v1 >= v2) rising ``prominence`` mV above the lowest V since the previous
    spike, timed at the vertex of the parabola through the three samples."""
    n = int(round(duration / dt))
    V = np.asarray(hh.simulate(jnp.full((n,), current), dt=dt).V)
    V = np.concatenate([[float(hh.init_state().V)], V])  # V at 0, dt, ..., n dt
    trough, peaks = V[0], []
    for k in range(n):
        v0, v1, v2 = V[max(k - 1, 0)], V[k], V[k + 1]
        if v1 > v0 and v1 >= v2 and v1 - trough >= prominence:
            curv = v0 - 2.0 * v1 + v2
            peaks.append((k + (0.5 * (v0 - v2) / curv if curv < 0 else 0.0)) * dt)
            trough = v1
        else:
            trough = min(trough, v2)
    return np.array(peaks)


def test_hh_fi_rate_is_one_over_the_mean_interval_of_the_parabolic_peak_times():
    """rate = 1000 (n - 1) / (t_last - t_first), the peak times at the parabola's vertex.
    Fault caught: the vertex offset 0.5 (v0 - v2) / curv with the wrong sign (a 3e-4
    relative error in the rate)."""
    with jax.enable_x64(True):
        peaks = _hh_peaks(10.0, 100.0, 0.025)
        got = hh.fi_curve(jnp.array([10.0]), duration=100.0, discard=0.0, dt=0.025)
    assert len(peaks) == 7 and bool(got.sustained[0]) and int(got.n_spikes[0]) == 7
    want = 1000.0 * (len(peaks) - 1) / (peaks[-1] - peaks[0])  # 68.08 Hz
    np.testing.assert_allclose(float(got.rate[0]), want, rtol=1e-9)


def test_hh_fi_firing_is_sustained_only_within_two_intervals_of_the_end():
    """At 5 uA/cm^2 the neuron fires 3 spikes (t ~ 3.2, 20.1, 31.8 ms) and stops. With the
    end 1.5 mean intervals after the last spike firing counts as sustained; 2.5 intervals
    after, it does not (the docstring's "no more than two"). Fault caught: 3 intervals."""
    with jax.enable_x64(True):
        peaks = _hh_peaks(5.0, 100.0, 0.025)
        assert len(peaks) == 3
        isi = (peaks[-1] - peaks[0]) / 2
        for k, sustained in ((1.5, True), (2.5, False)):
            end = round((peaks[-1] + k * isi) / 0.025) * 0.025
            got = hh.fi_curve(jnp.array([5.0]), duration=end, discard=0.0, dt=0.025)
            assert int(got.n_spikes[0]) == 3 and bool(got.sustained[0]) is sustained, k
            assert float(got.rate[0]) == (pytest.approx(1000.0 / isi) if sustained else 0.0)


def test_coincidence_response_default_leak_is_0_8():
    """u_t = beta v_{t-1} + I_t, s_t = [u_t >= theta], v_t = u_t (1 - s_t), beta = 0.8 by
    default: three inputs of weight 0.4 on consecutive steps reach 0.4 (1 + 0.8 + 0.64) =
    0.976 < 1 (no spike); with beta 0.9, 1.084 (one). Fault caught: another default beta."""

    def oracle(raster, weight, beta, theta=1.0):
        v, count = 0.0, 0
        for I in weight * raster.sum(axis=1):
            u = beta * v + I
            s = u >= theta
            v, count = u * (1 - s), count + int(s)
        return count

    raster = np.zeros((6, 3))
    raster[[0, 1, 2], [0, 1, 2]] = 1.0
    got = float(synchrony.coincidence_response(jnp.asarray(raster), 0.4))
    assert got == oracle(raster, 0.4, 0.8) == 0 and oracle(raster, 0.4, 0.9) == 1
    assert float(synchrony.coincidence_response(jnp.asarray(raster), 0.4, beta=0.9)) == 1


def test_izhikevich_step_evaluates_the_quadratic_at_min_v_v_peak():
    """One Euler step against the module docstring as NumPy: vc = min(v, 30), v1 = v + dt
    (0.04 vc^2 + 5 vc + 140 - u + I), u1 = u + dt a (b vc - u); v1 >= 30: v -> c, u1 += d.
    A state past the peak (v = 200 mV, or 1e20 mV) steps finitely to the reset. Fault
    caught: the quadratic (and u) evaluated at v itself (1e20 gave nan)."""
    p = iz.IZHIKEVICH_2003["RS"]
    v = np.array([200.0, -70.0, 1e20])
    u = np.array([-10.0, -14.0, -13.0])
    dt, current = 0.5, 5.0
    state = iz.IzhikevichState(jnp.asarray(v, jnp.float32), jnp.asarray(u, jnp.float32),
                               jnp.zeros(3))  # fmt: skip
    got = iz.step(state, current, p, dt)
    vc = np.minimum(v, 30.0)
    v1 = v + dt * (0.04 * vc**2 + 5.0 * vc + 140.0 - u + current)
    u1 = u + dt * 0.02 * (0.2 * vc - u)
    s = v1 >= 30.0
    np.testing.assert_array_equal(np.asarray(got.spike), s.astype(float))
    np.testing.assert_allclose(np.asarray(got.v), np.where(s, -65.0, v1), rtol=1e-6)
    np.testing.assert_allclose(np.asarray(got.u), u1 + 8.0 * s, rtol=1e-6)


def test_delay_steps_rounds_to_the_nearest_step_under_jit_too():
    """delay_steps is round(delay / dt) whole steps for a traced delay as for a concrete one:
    0.96, 1.04, 2.27 ms at dt 0.1 are 10, 10, 23 steps. Fault caught: the traced branch
    truncating (9, 10, 22)."""
    ms = np.array([0.0, 0.96, 1.04, 2.27])
    want = np.round(ms / 0.1).astype(np.int32)
    np.testing.assert_array_equal(want, [0, 10, 10, 23])
    np.testing.assert_array_equal(np.asarray(synapses.delay_steps(ms, 0.1)), want)
    traced = jax.jit(lambda d: synapses.delay_steps(d, 0.1))(jnp.asarray(ms, jnp.float32))
    np.testing.assert_array_equal(np.asarray(traced), want)


def test_hh_derivatives_divide_the_membrane_current_by_c():
    """C dV/dt = I - gNa m^3 h (V - ENa) - gK n^4 (V - EK) - gL (V - EL), written here for
    C = 2 uF/cm^2 (the default C = 1 hides a product for a quotient); the gates' right-hand
    sides scale by phi = 3 at 16.3 C. Fault caught: (I - i_ion) * C."""
    p = hh.HHParams(C=2.0, celsius=16.3)
    V, m, h, n, current = -60.0, 0.1, 0.55, 0.35, 7.0
    with jax.enable_x64(True):
        d = hh.derivatives(hh.HHState(*(jnp.float64(x) for x in (V, m, h, n))), current, p)
    i_ion = 120 * m**3 * h * (V - 50) + 36 * n**4 * (V + 77) + 0.3 * (V + 54.387)
    assert float(d.V) == pytest.approx((current - i_ion) / 2.0, rel=1e-12)
    am = 0.1 * (V + 40) / (1 - np.exp(-(V + 40) / 10))
    bm = 4 * np.exp(-(V + 65) / 18)
    assert float(d.m) == pytest.approx(3.0 * (am * (1 - m) - bm * m), rel=1e-12)


def test_izhikevich_reset_is_detached_by_default():
    """The reset v -> c, u += d s uses stop_gradient(spike) by default (module docstring): in
    a step that spikes, d v'/d I = 0 and d u'/d I = 0 (u1 does not see this step's I), while
    d u'/d d = s = 1; in one that does not, d v'/d I = dt. Fault caught: detach_reset
    defaulting to False (the surrogate's slope then reaches both)."""
    p = iz.IZHIKEVICH_2003["RS"]
    state = iz.IzhikevichState(jnp.array([29.0, -70.0]), jnp.array([-10.0, -14.0]), jnp.zeros(2))
    dt = 0.5
    du = jax.grad(lambda i: iz.step(state, i, p, dt).u.sum())
    assert np.asarray(iz.step(state, 5.0, p, dt).spike).tolist() == [1.0, 0.0]
    dv_per = jax.vmap(lambda k: jax.grad(lambda i: iz.step(state, i, p, dt).v[k])(5.0))
    np.testing.assert_allclose(np.asarray(dv_per(jnp.arange(2))), [0.0, dt], atol=1e-7)
    assert float(du(5.0)) == 0.0
    dd = jax.grad(lambda q: iz.step(state, 5.0, q, dt).u[0])(p)
    assert float(dd.d) == 1.0


def test_triplet_ltd_reads_the_pre_trace_of_tau_x():
    """Pfister & Gerstner's full model, one synapse, dt = 1 ms: pre at 0, post at 10, pre at
    50 ms gives a2+ e^{-10/16.8} (the post) minus e^{-40/33.7} (a2- + a3- e^{-50/101}) (the
    second pre), with r2 decaying by tau_x = 101 ms. Fault caught: r2 decaying with tau_y."""
    p = pl.PFISTER_GERSTNER_2006["visual_cortex_all_to_all_full"]
    with jax.enable_x64(True):
        traces, W = pl.triplet_init(1, 1), jnp.zeros((1, 1))
        for t in range(51):
            pre, post = jnp.array([float(t in (0, 50))]), jnp.array([float(t == 10)])
            traces, W = pl.triplet_stdp_step(traces, W, pre, post, p, 1.0)
        got = float(W[0, 0])
    ltp = 5e-10 * np.exp(-10 / 16.8)
    ltd = np.exp(-40 / 33.7) * (7e-3 + 2.3e-4 * np.exp(-50 / 101.0))
    assert got == pytest.approx(ltp - ltd, rel=1e-9)
