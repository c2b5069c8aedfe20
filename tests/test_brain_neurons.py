"""Neuron models against their closed forms and published Hodgkin–Huxley values."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads
from scipy.optimize import brentq

from nnjax.brain import hodgkin_huxley as hh
from nnjax.brain import neurons


@pytest.mark.parametrize("beta", [1.0, 0.95, 0.9, 0.7])
def test_discrete_lif_isi_equals_closed_form(beta):
    with jax.enable_x64(True):
        for current in [0.05, 0.13, 0.31, 0.47, 0.77, 1.3]:
            expected = neurons.lif_isi_discrete(current, beta)
            spikes, _ = neurons.lif(jnp.full((300,), current), beta=beta, reset="zero")
            idx = np.flatnonzero(np.asarray(spikes))
            if math.isinf(expected):
                assert idx.size == 0
                continue
            isis = np.diff(np.concatenate([[-1], idx]))  # the first spike counts from t = 0
            assert idx.size >= 2
            assert np.all(isis == expected), (current, beta, isis[:5], expected)


def test_if_rate_within_one_over_T_of_relu():
    with jax.enable_x64(True):
        x = jnp.linspace(-1.0, 2.5, 71)[:, None]
        theta = jnp.array([1.0, 0.5, 0.3])  # broadcast: one neuron per (x, theta)
        for T in (37, 200):
            rate = neurons.if_rate(x, T, theta=theta)
            target = jnp.clip(jax.nn.relu(x) / theta, 0.0, 1.0)
            assert rate.shape == (71, 3)
            assert float(jnp.max(jnp.abs(rate - target))) <= 1.0 / T + 1e-12


def test_lif_subtract_reset_and_jit_vmap():
    x = jax.random.uniform(jax.random.key(0), (50, 3, 4))
    f = jax.jit(lambda x: neurons.lif(x, beta=0.8))
    s, v = f(x)
    s2, v2 = jax.vmap(lambda xi: neurons.lif(xi, beta=0.8), in_axes=1, out_axes=1)(x)
    np.testing.assert_allclose(s, s2)
    np.testing.assert_allclose(v, v2, rtol=1e-6)
    # after the reset the membrane never sits at or above threshold
    assert float(v.max()) < 1.0
    # per-neuron beta broadcasts over the trailing axis
    s3, _ = neurons.lif(x, beta=jnp.array([0.5, 0.6, 0.7, 0.8]))
    assert s3.shape == x.shape


def test_continuous_lif_fi_curve_matches_formula():
    with jax.enable_x64(True):
        # rheobase R I = theta - E_L = 15 mV, I = 1.5 nA; one neuron per (current, t_ref)
        currents = jnp.concatenate([jnp.array([0.5, 1.49]), jnp.linspace(1.55, 6.0, 12)])
        t_ref = jnp.array([2.0, 0.0])
        f = neurons.lif_fi_curve(currents[:, None], duration=200.0, dt=0.1, t_ref=t_ref)
        theory = neurons.lif_rate_theory(currents[:, None], t_ref=t_ref)
        np.testing.assert_array_equal(f[:2], 0.0)
        np.testing.assert_array_equal(theory[:2], 0.0)
        assert float(jnp.max(jnp.abs(f[2:] / theory[2:] - 1.0))) < 0.005


def test_continuous_lif_refractory_and_reset():
    tr = neurons.lif_continuous(jnp.full((2000,), 3.0), dt=0.1, t_ref=5.0)
    t = np.asarray(tr.spike_times)[np.asarray(tr.spikes)]
    assert np.all(np.diff(t) > 5.0)
    assert float(tr.v.max()) < -50.0


def test_continuous_lif_several_spikes_per_step_stay_exact():
    """Issue 17: with dt > t_ref the rate used to saturate at 1/dt. Now a step holds as many
    spikes as the exact solution has, so the f–I curve matches the closed form at any dt."""
    with jax.enable_x64(True):
        currents = jnp.array([2.0, 6.0, 20.0, 50.0, 200.0])  # nA
        for dt, t_ref in [(1.0, 0.5), (1.0, 0.0), (2.5, 2.0)]:
            f = neurons.lif_fi_curve(currents, duration=300.0, dt=dt, t_ref=t_ref)
            theory = neurons.lif_rate_theory(currents, t_ref=t_ref)
            np.testing.assert_allclose(f, theory, rtol=1e-12)
        # 50 nA, t_ref = 0.5 ms: 1243 Hz, above the old ceiling 1/dt = 1000 Hz
        f50 = neurons.lif_fi_curve(jnp.array([50.0]), duration=300.0, dt=1.0, t_ref=0.5)
        assert float(f50[0]) == pytest.approx(1242.866, abs=1e-3)
        tr = neurons.lif_continuous(jnp.full((100,), 50.0), dt=1.0, t_ref=0.5)
        counts = np.asarray(tr.n_spikes)
        assert counts.max() == 2 and set(np.unique(counts)) <= {1, 2}
        assert counts.sum() > 100  # more spikes than steps
        both = counts == 2
        assert np.all(np.asarray(tr.last_spike_times)[both] > np.asarray(tr.spike_times)[both])
        with pytest.raises(ValueError, match="V_r"):
            neurons.lif_continuous(jnp.ones((3,)), theta=-50.0, V_r=-40.0)


def test_neuron_input_errors():
    with pytest.raises(ValueError, match="reset"):
        neurons.lif(jnp.ones((3,)), reset="soft")
    with pytest.raises(ValueError, match="beta"):
        neurons.lif(jnp.ones((3,)), beta=1.5)
    with pytest.raises(ValueError, match="time axis"):
        neurons.lif(jnp.float32(1.0))
    with pytest.raises(ValueError, match="surrogate"):
        neurons.lif(jnp.ones((3,)), surrogate="relu")
    with pytest.raises(ValueError, match="n_steps"):
        neurons.if_rate(jnp.ones(3), 0)
    with pytest.raises(ValueError, match="dt"):
        neurons.lif_continuous(jnp.ones((3,)), dt=0.0)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: neurons.lif_fi_curve([1.0], dt=0.0), "lif_fi_curve: dt must be .* > 0"),
        (lambda: neurons.lif_fi_curve([1.0], dt=-0.1), "lif_fi_curve: dt must be .* > 0"),
        (lambda: neurons.lif_fi_curve([1.0], duration=float("nan")), "duration must be"),
        (lambda: neurons.lif_rate_theory(2.0, tau=0.0), "lif_rate_theory: tau must be"),
        (lambda: neurons.lif_rate_theory(2.0, t_ref=-1.0), "lif_rate_theory: t_ref"),
        (lambda: neurons.lif_rate_theory(2.0, V_r=-40.0), "lif_rate_theory: V_r"),
        (lambda: neurons.lif_isi_discrete(0.5, 1.5), r"beta must be in \(0, 1\]"),
        (lambda: neurons.lif_isi_discrete(2.0, 0.0), r"beta must be in \(0, 1\]"),
        (lambda: neurons.lif_isi_discrete(2.0, 0.5, theta=0.0), "theta must be > 0"),
    ],
)
def test_lif_oracles_refuse_parameters_out_of_range(call, message):
    """dt = 0 was a ZeroDivisionError, tau = 0 a rate of 1/t_ref, beta = 1.5 an interval."""
    with pytest.raises(ValueError, match=message):
        call()


def test_lif_rate_theory_of_a_nan_current_is_nan_not_zero():
    rate = np.asarray(neurons.lif_rate_theory(jnp.array([np.nan, 0.5, 2.0])))
    assert np.isnan(rate[0]) and rate[1] == 0.0 and rate[2] > 0


# Hodgkin–Huxley, standard squid-axon parameters at 6.3 C.
# Published values: Rinzel (1978) Fed. Proc. 37:2793 and Rinzel & Miller (1980) Math. Biosci.
# 49:27 find stable periodic firing for I_nu < I < I_2 with I_nu ~= 6.26 uA/cm^2 (saddle-node of
# periodic orbits) and the rest state losing stability at the subcritical Hopf point
# I_1 ~= 9.78 uA/cm^2; Balti, Lanza & Aziz-Alaoui (2018) Math. Biosci. Eng. 15:807 place the
# saddle-node of cycles between I = 6.2649 and 6.2716. The f–I curve is class II (Hodgkin
# 1948): firing starts abruptly at about 50 Hz and reaches the 60-70 Hz range at 10 uA/cm^2
# (the textbook standard-model curve, e.g. Dayan & Abbott 2001, ch. 5).


def test_hh_rests_near_minus_65():
    with jax.enable_x64(True):
        v = float(hh.resting_potential(duration=100.0, dt=0.025))
    assert abs(v + 65.0) < 0.1  # tolerance 0.1 mV (measured -64.996)


def test_hh_repetitive_firing_onset_and_fi_curve():
    with jax.enable_x64(True):
        res = hh.fi_curve(jnp.array([6.2, 6.3, 10.0]), duration=500.0, discard=100.0, dt=0.025)
    sustained = np.asarray(res.sustained)
    rate = np.asarray(res.rate)
    # onset between 6.2 and 6.3 uA/cm^2: the published I_nu = 6.26, tolerance +-0.06
    assert not sustained[0] and sustained[1] and sustained[2]
    # class II: the rate jumps from 0 to ~50 Hz (tolerance 45-60 Hz; measured 52.4)
    assert 45.0 < rate[1] < 60.0
    # 60-70 Hz at 10 uA/cm^2 (measured 68.3)
    assert 60.0 < rate[2] < 70.0


@jax.jit
def _steady_current(V):
    """The current that holds the model at rest at V: I_ion(V, gates at steady state)."""
    return -hh.derivatives(hh.steady_state(V), 0.0).V


@jax.jit
def _jacobian(V, current):
    s = jnp.stack(hh.steady_state(V))
    return jax.jacfwd(lambda x: jnp.stack(hh.derivatives(hh.HHState(*x), current)))(s)


def _max_real_eigenvalue(current):
    V = brentq(lambda V: float(_steady_current(V)) - current, -80.0, 0.0, xtol=1e-12)
    return np.linalg.eigvals(np.asarray(_jacobian(V, current))).real.max()


def test_hh_hopf_point_matches_published_I1():
    with jax.enable_x64(True):
        # I_1 = 9.78 (Rinzel & Miller 1980); ours 9.775; tolerance +-0.05 uA/cm^2
        assert _max_real_eigenvalue(9.73) < 0.0 < _max_real_eigenvalue(9.83)
        assert _max_real_eigenvalue(0.0) < 0.0


def test_hh_trace_shape_and_spike():
    I = jnp.concatenate([jnp.zeros(100), jnp.full((1900,), 10.0)])
    tr = hh.simulate(I, dt=0.025)
    assert tr.V.shape == (2000,)
    assert float(tr.V.max()) > 20.0  # an action potential overshoots 0 mV
    with pytest.raises(ValueError, match="discard"):
        hh.fi_curve(jnp.array([1.0]), duration=10.0, discard=20.0)


def test_hh_divergence_at_a_large_dt_is_an_error_not_a_silent_zero_rate():
    """RK4 diverges on HH at dt = 0.1 ms once the neuron spikes: fi_curve read 0 Hz at
    10 uA/cm^2 (68 Hz at dt = 0.025) and simulate returned V of 1e6 mV, then nan."""
    with pytest.raises(ValueError, match=r"fi_curve: V became inf/nan after .* current 10 "):
        hh.fi_curve(jnp.array([0.0, 10.0]), duration=200.0, discard=50.0, dt=0.1)
    with pytest.raises(ValueError, match=r"simulate: V became inf/nan .* at dt = 0.1 ms"):
        hh.simulate(jnp.full((2000,), 10.0), dt=0.1)
    traced = jax.jit(lambda c: hh.fi_curve(c, duration=200.0, discard=50.0, dt=0.1).rate)
    rate = np.asarray(traced(jnp.array([0.0, 10.0])))  # under jit it cannot raise: nan
    assert rate[0] == 0.0 and np.isnan(rate[1])
    fine = hh.fi_curve(jnp.array([10.0]), duration=200.0, discard=50.0, dt=0.05).rate
    assert 60.0 < float(fine[0]) < 75.0


def test_hh_upper_hopf_point_matches_published_I2():
    with jax.enable_x64(True):
        # Rinzel & Miller 1980: rest regains stability at the (supercritical) Hopf point
        # I_2 ~= 154.5 uA/cm^2; ours 154.52; tolerance +-0.1
        assert _max_real_eigenvalue(154.4) > 0.0 > _max_real_eigenvalue(154.6)


def test_hh_fi_curve_peak_detection_and_depolarisation_block():
    """Issue 17: a 0 mV threshold read 0 Hz from ~65 uA/cm^2 (at 100 the spikes peak near
    -20 mV). Peak detection with a 2 mV prominence follows the small spikes up to the Hopf
    point and reads depolarisation block above it."""
    with jax.enable_x64(True):
        I = jnp.array([65.0, 100.0, 140.0, 153.0, 156.0, 200.0, 300.0])
        res = hh.fi_curve(I, duration=500.0, discard=100.0, dt=0.025)
        top = hh.simulate(jnp.full((8000,), 100.0), dt=0.025).V[4000:].max()
    assert float(top) < -15.0  # the spikes at 100 never reach 0 mV
    sustained, rate = np.asarray(res.sustained), np.asarray(res.rate)
    np.testing.assert_array_equal(sustained, [True, True, True, True, False, False, False])
    # measured 127.9, 147.3, 164.4, 168.8 Hz: the rate keeps rising up to the block
    np.testing.assert_allclose(rate[:4], [127.9, 147.3, 164.4, 168.8], atol=0.5)
    np.testing.assert_array_equal(rate[4:], 0.0)
    # 200 and 300: not a single peak of 2 mV after 100 ms (156 decays: a few early ones)
    np.testing.assert_array_equal(np.asarray(res.n_spikes)[5:], 0)
    with pytest.raises(ValueError, match="prominence"):
        hh.fi_curve(jnp.array([1.0]), prominence=0.0)


def test_hh_params_are_a_traced_pytree():
    """Issue 18: HHParams was a static argument; now a heterogeneous population runs in one
    call, new values reuse the compiled program, and jax.grad reaches the conductances."""
    with jax.enable_x64(True):
        I = jnp.full((800,), 10.0)  # 20 ms at dt = 0.025: one action potential
        gna = jnp.array([100.0, 120.0, 140.0])
        pop = hh.simulate(I, dt=0.025, params=hh.HHParams(gNa=gna))
        assert pop.V.shape == (800, 3)
        assert float(pop.V[:400].min(axis=0).max()) < -60 < 20 < float(pop.V[:400].max())
        for j, g in enumerate([100.0, 120.0, 140.0]):
            one = hh.simulate(I, dt=0.025, params=hh.HHParams(gNa=g))
            np.testing.assert_allclose(pop.V[:, j], one.V, rtol=1e-12, atol=1e-12)
        size = hh._simulate._cache_size()
        hh.simulate(I, dt=0.025, params=hh.HHParams(gNa=110.0, gK=30.0))
        assert hh._simulate._cache_size() == size

        def mean_v(p):
            return hh.simulate(I[:400], dt=0.025, params=p).V.mean()  # 10 ms, the upstroke

        # every field at once (check_grads probes a random direction of the whole pytree)
        check_grads(mean_v, (hh.STANDARD,), order=1, modes=("rev",))


def test_hodgkin_huxley_names_a_bad_input_or_parameter_not_dt():
    """Review: a nan in the current was reported as 'RK4 diverges ... use a smaller dt', and
    a negative capacitance ran."""
    I = jnp.full((100,), 10.0)
    with pytest.raises(ValueError, match=r"simulate: the input holds nan or inf \(first at step 5"):
        hh.simulate(I.at[5].set(jnp.nan), dt=0.01)
    # the currents' index, not a time step (it read "first at step 1")
    with pytest.raises(
        ValueError, match=r"^hodgkin_huxley.fi_curve: currents must be finite, got nan at index 1$"
    ):
        hh.fi_curve(jnp.array([5.0, jnp.nan]), duration=20.0, discard=5.0)
    for params, name in [(hh.HHParams(C=-1.0), "C"), (hh.HHParams(gK=np.float32(-1)), "gK")]:
        with pytest.raises(ValueError, match=rf"hodgkin_huxley.simulate: {name} \(.*\) must be a "):
            hh.simulate(I, dt=0.01, params=params)
    blocked = hh.simulate(I, dt=0.01, params=hh.HHParams(gNa=0.0))  # TTX: no spike, no error
    assert float(blocked.V.max()) < -40.0


def test_lif_parameter_checks_cover_numpy_scalars():
    """Review: beta=np.float32(1.5) and tau=np.float32(-1) ran (only Python numbers were
    checked)."""
    x = jnp.ones((3, 2))
    with pytest.raises(ValueError, match=r"lif: beta must be in \(0, 1\], got 1.5"):
        neurons.lif(x, beta=np.float32(1.5))
    with pytest.raises(ValueError, match=r"lif: theta must be a finite number > 0"):
        neurons.lif(x, theta=np.array([1.0, -1.0]))
    with pytest.raises(ValueError, match=r"lif_continuous: tau must be a finite number > 0"):
        neurons.lif_continuous(x, tau=np.float32(-1))
    with pytest.raises(ValueError, match=r"lif_continuous: V_r must be finite and below theta"):
        neurons.lif_continuous(x, V_r=np.float64(-40.0))
