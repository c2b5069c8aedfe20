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
            x = jnp.full((int(round(120.0 / dt)),), current)  # compiled: x, p, dt concrete
            run = lambda x=x, dt=dt: alif.spike_time_array(alif.simulate(x, p, dt=dt), dt, 8)
            times, valid = jax.jit(run)()
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


# --- Hodgkin–Huxley below repetitive firing: single spikes, the rest state, the overshoot ----


def test_hh_single_spikes_below_the_onset_rest_and_overshoot():
    """Class II (Hodgkin 1948; Rinzel & Miller 1980): below the onset of repetitive firing
    (I ~= 6.26 uA/cm^2) a step from rest fires a finite number of action potentials, then
    settles at its fixed point I_ion(V) = I: one at 3 and 5, two at 6.0, three at 6.2
    (measured; the single-spike threshold of a step from rest lies between 2.23 and 2.24),
    and none at 2.0. The rest state is the fixed point of the full model with the gates at
    x_inf(V): I_ion(V) = 0 at V = -64.9964 mV, which resting_potential reaches (measured
    |error| 3e-14 mV). The first spike at 10 uA/cm^2 overshoots to +40.3 mV, the textbook
    ~+40 mV."""
    with jax.enable_x64(True):
        I = jnp.array([2.0, 3.0, 5.0, 6.0, 6.2, 10.0])
        V = np.asarray(hh.simulate(jnp.broadcast_to(I, (20_000, 6)), dt=0.01).V)  # 200 ms
        i_ion = lambda v: float(-hh.derivatives(hh.steady_state(jnp.array(v)), 0.0).V)
        rest = brentq(i_ion, -80.0, -50.0, xtol=1e-13)
        held = [brentq(lambda v, i=i: i_ion(v) - i, -80.0, -50.0, xtol=1e-13) for i in I[:5]]
        got = float(hh.resting_potential(duration=200.0, dt=0.01))
    spikes = ((V[1:] >= 0.0) & (V[:-1] < 0.0)).sum(axis=0)  # upward crossings of 0 mV
    np.testing.assert_array_equal(spikes[:5], [0, 1, 1, 2, 3])
    assert spikes[5] >= 10  # 10 uA/cm^2: sustained (14 in 200 ms)
    # back at the (stable) fixed point I_ion(V) = I over the last 20 ms (measured <= 8e-4 mV)
    np.testing.assert_allclose(V[-2_000:, :5], np.broadcast_to(held, (2_000, 5)), atol=0.01)
    assert rest == pytest.approx(-64.9964, abs=1e-4) and got == pytest.approx(rest, abs=1e-9)
    assert 39.5 < V[:2_000, 5].max() < 41.0  # measured 40.27 mV


# --- AdEx: the rheobase of the saddle-node (Brette & Gerstner 2005; Touboul & Brette 2008) ---


def _adex_rheobase(p):
    """The minimum of the steady-state I-V curve (g_L + a)(V - E_L) - g_L Delta_T e^{(V -
    V_T)/Delta_T}, at V_T + Delta_T ln(1 + a / g_L): (g_L + a)(V_T - E_L - Delta_T + Delta_T
    ln(1 + a / g_L)), g_L (V_T - E_L - Delta_T) at a = 0; a saddle-node if a/g_L < tau_m/tau_w."""
    return (p.g_L + p.a) * (p.V_T - p.E_L - p.Delta_T + p.Delta_T * math.log(1 + p.a / p.g_L))


def test_adex_rheobase_is_the_analytic_saddle_node():
    """Forward Euler keeps the ODE's fixed points, so the rheobase of the simulated cell is
    the analytic one: Brette & Gerstner's cell with a = b = 0 (I_rh = 546 pA) and Naud et
    al.'s tonic cell (a / g_L = 0.2 < tau_m / tau_w = 0.67; I_rh = 220.38 pA). At 0.999 I_rh
    no sustained firing over 3 s (the tonic cell fires one transient spike at 125 ms, w
    lagging behind V), at 1.001 I_rh periodic firing (periods ~490 ms near the bifurcation)."""
    cells = [adex.BRETTE_GERSTNER_2005._replace(a=0.0, b=0.0), adex.NAUD_2008["tonic"][0]]
    assert _adex_rheobase(cells[0]) == pytest.approx(30.0 * (-50.4 + 70.6 - 2.0))
    with jax.enable_x64(True):
        for p in cells:
            drive = _adex_rheobase(p) * jnp.array([0.999, 1.001])
            tr = adex.simulate(jnp.broadcast_to(drive, (30_000, 2)), p, dt=0.1)  # 3 s
            late = np.asarray(tr.spike[5_000:]).sum(axis=0)  # after 500 ms
            assert late[0] == 0 and late[1] >= 4


# --- STDP under independent Poisson firing ---------------------------------------------------


def _trace_means(prob, dt, tau, T):
    """E[trace] at steps 0..T-1 (read before the step's spike) for Bernoulli(prob) spikes
    each step from a zero trace: prob q (1 - q^t) / (1 - q), q = e^{-dt/tau}; prob (m, 1)."""
    q = math.exp(-dt / tau)
    return prob * q * (1 - q ** np.arange(T)) / (1 - q)


def test_stdp_drift_under_independent_poisson_firing():
    """Pair rule: independent trains at rates nu_pre, nu_post drift at nu_pre nu_post (A+ tau+
    - A- tau-) (Kempter, Gerstner & van Hemmen 1999; Song et al. 2000). On the grid a pair k
    >= 1 steps apart counts a+ q+^k or -a- q-^k (q = e^{-dt/tau}), and given the counts
    N_i, N_j over T steps each spike is uniform over the steps, so E[dW_ij | N] = N_i N_j c,
    c = (a+ S+ - a- S-) / T - (a+ S+ / (1 - q+) - a- S- / (1 - q-)) / T^2, S = q / (1 - q).
    Triplet rule (Pfister & Gerstner 2006, minimal all-to-all): the drift is nu_pre nu_post
    (A3+ tau+ tau_y nu_post - A2- tau-), BCM-like, with its threshold at nu_post = A2- tau- /
    (A3+ tau+ tau_y) = 19.2 Hz; on the grid, E[dW] = sum_t p_post E[r1_t] A3+ E[o2_t] -
    p_pre E[o1_t] A2- exactly (the traces are independent). 100 pre at 20 Hz, 50 post at 10
    and 50 at 30 Hz, 5 s at dt = 0.1 ms. Measured over 5 seeds: pair, sum dW / (N N c) = 1 +-
    0.004 (tolerance 1.5 %), mean against the law: SD 2.3 % (tolerance 8 %); triplet at the
    realised rates: 1.02 +- 0.006 and 0.98 +- 0.013 (tolerance 6 %)."""
    n, dt, T = 100, 0.1, 50_000
    rates = np.concatenate([np.full(n, 20.0), np.repeat([10.0, 30.0], n // 2)])  # pre, post
    pair = pl.PairSTDPParams(w_min=-np.inf)
    trip = pl.PFISTER_GERSTNER_2006["visual_cortex_all_to_all_minimal"]
    with jax.enable_x64(True):

        def body(c, k):
            (tp, Wp), (tt, Wt), count = c
            s = jax.random.bernoulli(k, jnp.asarray(rates) * dt / 1000.0).astype(jnp.float64)
            pre, post = s[:n], s[n:]
            new_p = pl.pair_stdp_step(tp, Wp, pre, post, pair, dt)
            return (new_p, pl.triplet_stdp_step(tt, Wt, pre, post, trip, dt), count + s), None

        z = jnp.zeros((n, n))
        init = ((pl.pair_init(n, n), z), (pl.triplet_init(n, n), z), jnp.zeros(2 * n))
        keys = jax.random.split(jax.random.key(0), T)
        scan = lambda: jax.lax.scan(body, init, keys)  # at XLA's level 2, not 0 (conftest.py):
        run = jax.jit(scan, compiler_options={"xla_backend_optimization_level": 2})  # 3 s, not 13
        ((_, Wp), (_, Wt), count), _ = run()  # the same weights as at level 0 to 1e-15
    Wp, Wt, count = np.asarray(Wp), np.asarray(Wt), np.asarray(count)
    qp, qm = math.exp(-dt / pair.tau_plus), math.exp(-dt / pair.tau_minus)
    sp, sm = qp / (1 - qp), qm / (1 - qm)
    window = (pair.a_plus * sp - pair.a_minus * sm) / T
    c = window - (pair.a_plus * sp / (1 - qp) - pair.a_minus * sm / (1 - qm)) / T**2
    assert Wp.sum() / (count[n:].sum() * count[:n].sum() * c) == pytest.approx(1.0, abs=0.015)
    area = pair.a_plus * pair.tau_plus - pair.a_minus * pair.tau_minus  # ms; < 0: LTD wins
    assert window * T * dt == pytest.approx(area, rel=1e-3)  # S = tau / dt - 1/2 + O(dt / tau)
    assert Wp.mean() == pytest.approx(20e-3 * 20e-3 * area * T * dt, rel=0.08)  # -0.186
    # triplet: the exact grid expectation at the realised rates, and the BCM sign change
    p_pre, p_post = count[:n].mean() / T, count[n:, None] / T
    ltp = p_post * _trace_means(p_pre, dt, trip.tau_plus, T) * trip.a3_plus
    ltp = ltp * _trace_means(p_post, dt, trip.tau_y, T)
    ltd = p_pre * _trace_means(p_post, dt, trip.tau_minus, T) * trip.a2_minus
    expected = (ltp - ltd).sum(axis=1)  # (n_post,); a2_plus = a3_minus = 0 here
    low, high = Wt[: n // 2].mean(), Wt[n // 2 :].mean()
    assert low < 0 < high  # below and above the 19.2 Hz threshold
    assert low == pytest.approx(expected[: n // 2].mean(), rel=0.06)
    assert high == pytest.approx(expected[n // 2 :].mean(), rel=0.06)
    theta = trip.a2_minus * trip.tau_minus / (trip.a3_plus * trip.tau_plus * trip.tau_y)
    assert 1000 * theta == pytest.approx(19.22, abs=0.01)


# --- Izhikevich: the spike cut-off -----------------------------------------------------------


def test_izhikevich_trace_never_reaches_the_peak_and_resets_to_c():
    """Izhikevich 2003: when v >= 30 mV, v <- c and u <- u + d. The trace holds the reset
    value c at every spike step and stays below v_peak (measured maxima 27.6-29.9 mV), for
    each Fig. 2 class at I = 10 over 1 s."""
    names = list(iz.IZHIKEVICH_2003)
    params = jax.tree.map(lambda *x: jnp.array(x), *(iz.IZHIKEVICH_2003[k] for k in names))
    tr = iz.simulate(jnp.full((10_000, len(names)), 10.0), params, dt=0.1)
    v, s = np.asarray(tr.v), np.asarray(tr.spike) > 0
    assert v.max() < 30.0
    for j, k in enumerate(names):
        assert s[:, j].sum() >= 20
        np.testing.assert_array_equal(v[s[:, j], j], iz.IZHIKEVICH_2003[k].c)


# --- threshold at the start: a neuron at or above theta fires at once ------------------------


@pytest.mark.parametrize("dt", [0.1, 1.0, 5.0])
def test_lif_starting_above_threshold_fires_at_once_at_any_dt(dt):
    """Finding: V0 = -45 mV above theta = -50 with a drive that keeps V_inf below theta
    fired at the end of the first step (t = 0.1 or 1.0 at dt = 0.1 or 1 ms: the downward
    crossing, clipped to the step) and never at dt = 5 ms (V fell below theta in it). It now
    fires at t = 0 at every dt, as it does when V_inf is above theta; at 3 nA (V_inf = -35
    mV) the later spikes follow every P = t_ref + tau ln(30 / 15) = 8.93 ms."""
    n = int(round(20.0 / dt))
    with jax.enable_x64(True):
        for current, count in ((0.0, 1), (1.0, 1), (3.0, 3)):  # V_inf -65, -55, -35 mV
            tr = neurons.lif_continuous(jnp.full((n,), current), dt=dt, V0=-45.0)
            assert float(tr.spike_times[0]) == 0.0 and int(np.asarray(tr.n_spikes).sum()) == count
        last = np.nanmax(np.asarray(tr.last_spike_times))
    assert last == pytest.approx(2 * (2.0 + 10.0 * math.log(2.0)), abs=1e-9)


@pytest.mark.parametrize("dt", [0.5, 5.0])
def test_adaptive_lif_state_above_threshold_fires_at_once_at_any_dt(dt):
    """Finding: a state V = -45 mV above theta = -50 (t_ref = 5 ms, no input) fired at t = 0
    at dt = 0.5 ms and not at all at dt = 5 ms."""
    p = alif.ALIFParams(t_ref=5.0)
    state = alif.init_state((), p)._replace(V=jnp.array(-45.0))
    tr = alif.simulate(jnp.zeros(int(round(20.0 / dt))), p, dt=dt, state=state)
    times, valid = alif.spike_time_array(tr, dt, 1)
    assert bool(valid[0]) and float(times[0]) == 0.0 and float(tr.spike.sum()) == 1.0
