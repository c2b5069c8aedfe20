"""Brain models against published tables and analytic results not covered elsewhere: the
parameter tables as printed in the papers, the Hodgkin–Huxley removable singularities and
Q10 scaling, exact spike times against an independent ODE solver, Naud et al.'s remaining
AdEx patterns, the Gaussian Kuramoto transition, and STDP masks with weight bounds."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from ode_oracles import alif_spike_times
from scipy.integrate import quad
from scipy.optimize import brentq

from nnjax.brain import adaptive_lif as alif
from nnjax.brain import adex, dynamics, neurons
from nnjax.brain import hodgkin_huxley as hh
from nnjax.brain import izhikevich as iz
from nnjax.brain import kuramoto as ku
from nnjax.brain import plasticity as pl
from nnjax.brain import synapses as syn

# --- parameter tables, as printed in the cited papers -------------------------------------


def test_parameter_tables_match_the_papers():
    # Izhikevich 2003, Fig. 2: (a, b, c, d)
    izh = {
        "RS": (0.02, 0.2, -65.0, 8.0),
        "IB": (0.02, 0.2, -55.0, 4.0),
        "CH": (0.02, 0.2, -50.0, 2.0),
        "FS": (0.1, 0.2, -65.0, 2.0),
        "LTS": (0.02, 0.25, -65.0, 2.0),
    }
    assert {k: tuple(v[:4]) for k, v in iz.IZHIKEVICH_2003.items()} == izh
    assert all(v.v_peak == 30.0 for v in iz.IZHIKEVICH_2003.values())
    # Naud et al. 2008, Table 1: C, g_L, E_L, a, tau_w, b, V_r, I (V_T = -50, Delta_T = 2)
    naud = {
        "tonic": (200, 10, -70, 2, 30, 0, -58, 500),
        "adapting": (200, 12, -70, 2, 300, 60, -58, 500),
        "initial_burst": (130, 18, -58, 4, 150, 120, -50, 400),
        "regular_bursting": (200, 10, -58, 2, 120, 100, -46, 210),
        "delayed_accelerating": (200, 12, -70, -10, 300, 0, -58, 300),
        "delayed_regular_bursting": (100, 10, -65, -10, 90, 30, -47, 110),
        "transient": (100, 10, -65, 10, 90, 100, -47, 180),
        "irregular": (100, 12, -60, -11, 130, 30, -48, 160),
    }
    got = {
        k: (p.C, p.g_L, p.E_L, p.a, p.tau_w, p.b, p.V_r, I) for k, (p, I) in adex.NAUD_2008.items()
    }
    assert got == naud
    assert all((p.V_T, p.Delta_T) == (-50.0, 2.0) for p, _ in adex.NAUD_2008.values())
    # Brette & Gerstner 2005: 281 pF, 30 nS, -70.6, -50.4, 2 mV, 4 nS, 144 ms, 0.0805 nA
    bg = adex.BRETTE_GERSTNER_2005
    assert bg[:9] == (281.0, 30.0, -70.6, -50.4, 2.0, 4.0, 144.0, 80.5, -70.6)
    # Hodgkin & Huxley 1952 in the modern convention (rest -65 mV), 6.3 C
    assert tuple(hh.STANDARD) == (1.0, 120.0, 36.0, 0.3, 50.0, -77.0, -54.387, 6.3)
    # Pfister & Gerstner 2006, Table 3 (visual cortex): tau_y, A2+, A3+, A2-, A3-
    pg = pl.PFISTER_GERSTNER_2006
    table = {
        "visual_cortex_all_to_all_minimal": (114.0, 0.0, 6.5e-3, 7.1e-3, 0.0),
        "visual_cortex_nearest_minimal": (40.0, 0.0, 5e-2, 8e-3, 0.0),
        "visual_cortex_all_to_all_full": (125.0, 5e-10, 6.2e-3, 7e-3, 2.3e-4),
    }
    assert {k: (v.tau_y, v.a2_plus, v.a3_plus, v.a2_minus, v.a3_minus) for k, v in pg.items()} == (
        table
    )
    assert all((v.tau_plus, v.tau_minus) == (16.8, 33.7) for v in pg.values())
    assert pg["visual_cortex_all_to_all_full"].tau_x == 101.0
    # Vogels & Abbott 2005 / Brette et al. 2007 COBA: 5 ms at 0 mV, 10 ms at -80 mV
    assert tuple(syn.AMPA) == (5.0, 0.0) and tuple(syn.GABA_A) == (10.0, -80.0)


# --- Hodgkin–Huxley: removable singularities and Q10 ---------------------------------------


def test_hh_rates_take_their_limits_at_the_removable_singularities():
    """alpha_m = 0.1 x / (1 - e^{-x/10}), x = V + 40, is 0/0 at V = -40 mV; its limit is 1
    and its slope 0.1 / 2 = 0.05 per mV (x / (1 - e^{-x/10}) = 10 + x / 2 + O(x^2)).
    alpha_n at V = -55 mV likewise: 0.1 and 0.005 per mV. Tolerance 1e-12 (x64): the
    series used below |x| < 1e-3 mV is exact to O(x^3)."""
    with jax.enable_x64(True):
        am = lambda V: hh.rates(V)[0]
        an = lambda V: hh.rates(V)[4]
        assert float(am(jnp.array(-40.0))) == pytest.approx(1.0, rel=1e-12)
        assert float(an(jnp.array(-55.0))) == pytest.approx(0.1, rel=1e-12)
        assert float(jax.grad(am)(jnp.array(-40.0))) == pytest.approx(0.05, rel=1e-9)
        assert float(jax.grad(an)(jnp.array(-55.0))) == pytest.approx(0.005, rel=1e-9)
        V = np.array([-40.0 - 1e-3, -40.0 + 2e-5, -55.0 + 1e-2])  # either side: the formula
        x = V + np.array([40.0, 40.0, 55.0])
        k = np.array([0.1, 0.1, 0.01])
        direct = k * x / (1.0 - np.exp(-x / 10.0))
        got = np.array([am(V[0]), am(V[1]), an(V[2])])
        np.testing.assert_allclose(got, direct, rtol=1e-9)
    with jax.enable_x64(False):  # float32: finite, no nan (to float32 rounding, 1e-6)
        assert float(am(jnp.float32(-40.0))) == pytest.approx(1.0, rel=1e-6)
        assert float(an(jnp.float32(-55.0))) == pytest.approx(0.1, rel=1e-6)


def test_hh_q10_is_three_per_ten_degrees():
    """phi = 3^((T - 6.3)/10): every gate's rate is 3x at 16.3 C and 9x at 26.3 C; the
    membrane equation is unchanged. Tolerance 1e-12 (x64)."""
    with jax.enable_x64(True):
        s = hh.HHState(jnp.array(-60.0), jnp.array(0.1), jnp.array(0.5), jnp.array(0.4))
        d0 = hh.derivatives(s, 3.0)
        for celsius, factor in ((16.3, 3.0), (26.3, 9.0), (-3.7, 1 / 3)):
            d = hh.derivatives(s, 3.0, hh.HHParams(celsius=celsius))
            assert float(d.V) == float(d0.V)
            for g, g0 in zip(d[1:], d0[1:]):
                assert float(g) == pytest.approx(factor * float(g0), rel=1e-12)


# --- exact integrate-and-fire models against an independent event-driven solution -----------


def _lif_events(I, dt, t_ref, tau=10.0, R=10.0, E_L=-65.0, theta=-50.0, V_r=-65.0):
    """Spike times of the LIF under a piecewise-constant current, event by event (Python)."""
    V, ref, out = E_L, 0.0, []
    for k, i in enumerate(I):
        t, end, V_inf = k * dt, (k + 1) * dt, E_L + R * i
        while t < end:
            if ref > 0:
                used = min(ref, end - t)
                t, ref, V = t + used, ref - used, V_r
                continue
            V_end = V_inf + (V - V_inf) * math.exp(-(end - t) / tau)
            if V_inf > theta and V_end >= theta:
                t += tau * math.log((V - V_inf) / (theta - V_inf))
                out.append(t)
                V, ref = V_r, t_ref
            else:
                V, t = V_end, end
    return np.array(out)


@pytest.mark.parametrize("dt, t_ref", [(0.1, 2.03), (1.0, 0.37), (0.5, 0.0)])
def test_lif_continuous_spike_times_under_a_varying_current_are_exact(dt, t_ref):
    """Spike times (first of each step) to 1e-9 ms and the spike count exactly, with a new
    current every step and a refractory period that ends inside a step; at dt = 1 ms a step
    often holds two spikes. (Constant currents are tested against the f–I formula elsewhere.)"""
    with jax.enable_x64(True):
        I = np.random.default_rng(0).uniform(0.0, 30.0, int(round(40.0 / dt)))
        ref = _lif_events(I, dt, t_ref)
        tr = neurons.lif_continuous(jnp.asarray(I), dt=dt, t_ref=t_ref)
    n = np.asarray(tr.n_spikes)
    assert n.sum() == ref.size > 10
    steps = np.floor(ref / dt + 1e-9).astype(int)
    first = ref[np.r_[True, np.diff(steps) > 0]]
    np.testing.assert_allclose(np.asarray(tr.spike_times)[n > 0], first, rtol=0, atol=1e-9)


def test_adaptive_lif_spike_times_match_an_ode_solver():
    """Adaptation on (b = 0.5 nA, tau_w = 30 ms): the first 8 spike times against SciPy's
    DOP853 with event location (rtol 1e-12), to 1e-8 ms at dt = 0.1 and 1 ms."""
    p = alif.ALIFParams(tau_w=30.0, b=0.5)
    current = 3.0
    ref = alif_spike_times(p, current, 120.0)[:8]
    assert len(ref) == 8
    with jax.enable_x64(True):
        for dt in (0.1, 1.0):
            tr = alif.simulate(jnp.full((int(round(120.0 / dt)),), current), p, dt=dt)
            times, valid = alif.spike_time_array(tr, dt, 8)
            assert bool(valid.all())
            np.testing.assert_allclose(np.asarray(times), ref, rtol=0, atol=1e-8)


# --- AdEx: Naud et al. 2008's other four patterns (Fig. 4e-h) -------------------------------


def test_adex_naud_delayed_transient_and_irregular_patterns():
    names = ["delayed_accelerating", "delayed_regular_bursting", "transient", "irregular"]
    params = jax.tree.map(lambda *x: jnp.array(x), *(adex.NAUD_2008[n][0] for n in names))
    current = jnp.array([adex.NAUD_2008[n][1] for n in names])
    tr = adex.simulate(jnp.broadcast_to(current, (10_000, 4)), params, dt=0.1)  # 1 s
    t = {n: dynamics.spike_times(tr.spike[:, j], 0.1) for j, n in enumerate(names)}
    # delayed accelerating (a < 0, b = 0): a latency longer than the first interval, then
    # intervals that shrink (measured: 33.9 ms, then 20.9 -> 9.8 ms; on the 0.1 ms grid)
    isi = np.diff(t["delayed_accelerating"])
    assert t["delayed_accelerating"][0] > 1.5 * isi[0] and np.all(np.diff(isi[:15]) < 0)
    assert np.all(np.diff(isi) < 0.1 + 1e-9) and isi[-1] < 0.6 * isi[0]  # grid: 0.1 ms
    # delayed regular bursting: a latency of ~58 ms, then bursts (intervals < 10 ms)
    # separated by > 40 ms pauses, several of them
    tb = t["delayed_regular_bursting"]
    isi = np.diff(tb)
    assert tb[0] > 40.0 and np.all((isi < 10.0) | (isi > 40.0)) and np.sum(isi > 40.0) >= 5
    # transient: a spike (or two) at the onset, then silence for the rest of the second
    assert 1 <= t["transient"].size <= 2 and t["transient"].max() < 100.0
    # irregular: intervals that never settle (measured CV 0.53), spread over 5-35 ms
    isi = np.diff(t["irregular"])
    assert isi.std() / isi.mean() > 0.3 and np.ptp(isi[-20:]) > 10.0


# --- Kuramoto with Gaussian frequencies ----------------------------------------------------


def test_kuramoto_gaussian_transition_matches_self_consistency():
    """K_c = 2 / (pi g(0)) = sigma sqrt(8 / pi) = 1.596 sigma; above it r solves
    1 = K int_{-pi/2}^{pi/2} cos^2(t) g(K r sin t) dt (Kuramoto 1975; Strogatz 2000):
    r(2 sigma) = 0.7152. N = 1000 quantile-spaced frequencies, tolerance 0.01 (finite N
    and time: measured |error| < 1e-3)."""
    g = lambda w: math.exp(-(w**2) / 2) / math.sqrt(2 * math.pi)
    assert 2 / (math.pi * g(0.0)) == pytest.approx(math.sqrt(8 / math.pi), rel=1e-14)

    def r_theory(K):
        f = lambda th, r: math.cos(th) ** 2 * g(K * r * math.sin(th))
        return brentq(lambda r: K * quad(f, -math.pi / 2, math.pi / 2, args=(r,))[0] - 1, 1e-9, 1)

    with jax.enable_x64(True):
        n = 1000
        omega = ku.gaussian_frequencies(n)
        Ks = jnp.array([1.2, 2.0, 3.0])[:, None]
        res = ku.simulate(jnp.zeros((3, n)), omega, Ks, dt=0.1, n_steps=600, record_every=10)
        r = np.asarray(res.r[30:]).mean(axis=0)
    assert r[0] < 0.05  # below K_c: incoherent
    np.testing.assert_allclose(r[1:], [r_theory(2.0), r_theory(3.0)], atol=0.01)


# --- STDP: a mask keeps absent synapses, bounds included ------------------------------------


@pytest.mark.parametrize("rule", ["pair", "triplet"])
def test_stdp_mask_keeps_absent_synapses_outside_the_bounds(rule):
    """An absent synapse (mask 0, weight 0) with w_min = 0.1 was clipped to 0.1 at the first
    step, with no spike at all: the mask 'keeps absent synapses at their value' (and a
    network's mask_ee would grow every absent E->E synapse). Present ones are still clipped."""
    W = jnp.array([[0.0, 0.5, 2.0]])
    mask = jnp.array([[0.0, 1.0, 1.0]])
    silent = jnp.zeros(3), jnp.zeros(1)
    if rule == "pair":
        p = pl.PairSTDPParams(w_min=0.1, w_max=1.0)
        _, W1 = pl.pair_stdp_step(pl.pair_init(3, 1), W, *silent, p, 0.1, mask=mask)
    else:
        p = pl.TripletParams(w_min=0.1, w_max=1.0)
        _, W1 = pl.triplet_stdp_step(pl.triplet_init(3, 1), W, *silent, p, 0.1, mask=mask)
    np.testing.assert_array_equal(W1, [[0.0, 0.5, 1.0]])
    g = jax.grad(
        lambda w: pl.pair_stdp_step(
            pl.pair_init(3, 1), w, *silent, pl.PairSTDPParams(w_min=0.1, w_max=1.0), 0.1, mask=mask
        )[1].sum()
    )(W)
    np.testing.assert_array_equal(g, [[1.0, 1.0, 0.0]])  # absent: identity; clipped: 0
