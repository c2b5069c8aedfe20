"""Mutation audit of AdEx, the adaptive LIF, homeostasis, diversity, planted, tuning and
dynamics: each test names the deliberate faults that the suite let through and it catches."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nnjax.brain import adex

NAUD = ("adapting", "initial_burst", "irregular", "transient")


def _adex_numpy(I, p, dt, n):
    """The module docstring's Euler scheme in NumPy (float64), spikes at the steps' ends."""
    V, w = p["E_L"].copy(), np.zeros_like(p["E_L"])
    Vs, ws, ss = [], [], []
    for _ in range(n):
        x = np.minimum((np.minimum(V, p["V_peak"]) - p["V_T"]) / p["Delta_T"], 40.0)
        dV = (-p["g_L"] * (V - p["E_L"]) + p["g_L"] * p["Delta_T"] * np.exp(x) - w + I) / p["C"]
        dw = (p["a"] * (V - p["E_L"]) - w) / p["tau_w"]
        V, w = V + dt * dV, w + dt * dw
        s = V >= p["V_peak"]
        V, w = np.where(s, p["V_r"], V), w + p["b"] * s
        Vs.append(V), ws.append(w), ss.append(s)
    return np.array(Vs), np.array(ws), np.array(ss, float)


def test_adex_trace_is_the_documented_euler_scheme_for_naud_cells():
    """Four of Naud et al.'s cells (V_r != E_L, a < 0 and a > 0, b > 0) at their step currents,
    300 ms at dt = 0.1 ms in float64, against a NumPy loop of the docstring's equations:
    the same spikes, V and w to 1e-9 relative (spike counts 8, 7, 17, 1 measured). The
    suite caught these faults only indirectly (through the spike count of a surrogate-gradient
    test or the Naud et al. pattern statistics); here each is caught by value: w updated from
    V + dt dV/dt instead of V, the adaptation driven by V - V_r instead of V - E_L, the reset
    to E_L instead of V_r, w reset to b instead of w + b, the spike read off V before the step.
    """
    with jax.enable_x64(True):
        ps = [adex.NAUD_2008[n][0] for n in NAUD]
        p = {k: np.array([getattr(q, k) for q in ps], float) for k in adex.AdExParams._fields}
        I = np.array([adex.NAUD_2008[n][1] for n in NAUD])
        params = adex.AdExParams(**{k: jnp.asarray(v) for k, v in p.items()})
        tr = adex.simulate(jnp.broadcast_to(jnp.asarray(I), (3000, 4)), params, dt=0.1)
        V, w, s = _adex_numpy(I, p, 0.1, 3000)
    np.testing.assert_array_equal(np.asarray(tr.spike), s)
    assert s.sum(0).tolist() == [8, 7, 17, 1]  # measured: every cell fires
    np.testing.assert_allclose(np.asarray(tr.V), V, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(np.asarray(tr.w), w, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("tau_w, dt", [(1.0, 1.0), (5.0, 5.0), (20.0, 281.0 / 30.0)])
def test_adex_refuses_dt_at_the_fastest_time_constant(tau_w, dt):
    """dt must be below min(C / g_L, tau_w): equal to tau_w = 1 or 5 ms (below tau_m = 281 /
    30 = 9.37 ms) or to tau_m is refused, naming the minimum. Faults caught: the check
    reading C / g_L alone (a fast adaptation current ran with Euler's factor 1 - dt / tau_w
    at or below 0), and a dt equal to the time constant let through (dt > tau)."""
    p = adex.AdExParams(tau_w=tau_w)
    tau = min(281.0 / 30.0, tau_w)
    msg = rf"min\(C / g_L, tau_w\) = {tau:g} ms .*got dt={dt:g}"
    with pytest.raises(ValueError, match="adex.simulate: dt must be below the fastest .*" + msg):
        adex.simulate(jnp.zeros((3,)), p, dt=dt)
    assert adex.simulate(jnp.zeros((3,)), p, dt=0.99 * tau).V.shape == (3,)


@pytest.mark.parametrize("name", ["adex.E_L", "adex.V_T", "adex.a", "adex.b", "al.E_L", "al.b"])
def test_a_nan_parameter_is_refused_by_name(name):
    """A nan E_L, V_T, a or b (AdEx) or E_L, b (adaptive LIF) makes V or w nan, a silent
    neuron: refused by simulate and step, named. Faults caught: AdEx's ``a`` and the
    adaptive LIF's ``b`` left out of the check (with AdEx's nan a, V and the spike trace
    were nan from the second step on, no error: measured at 800 pA)."""
    from nnjax.brain import adaptive_lif as al

    model, field = name.split(".")
    m, I = (adex, 500.0) if model == "adex" else (al, 2.0)
    p = (adex.AdExParams() if m is adex else al.DEFAULT)._replace(**{field: float("nan")})
    where = "adex" if m is adex else "adaptive_lif"
    with pytest.raises(ValueError, match=f"{where}.simulate: {field} must be a finite number"):
        m.simulate(jnp.full((3,), I), p)
    with pytest.raises(ValueError, match=f"{where}.step: {field} must be a finite number"):
        m.step(m.init_state(), I, p, 0.1)


def _alif_free(s, V0, w0, I, p):
    """The module docstring's closed form, its first (K) form: V after s ms of free drive."""
    tm, tw = p.tau_m, p.tau_w
    K = -p.R * w0 * tw / (tw - tm)
    return p.E_L + p.R * I + (V0 - p.E_L - p.R * I - K) * np.exp(-s / tm) + K * np.exp(-s / tw)


@pytest.mark.parametrize("tau_w, V_r", [(30.0, -60.0), (4.0, -50.5)])  # tau_w vs tau_m = 10 ms
def test_adaptive_lif_steps_follow_the_closed_form_and_the_reset_rules(tau_w, V_r):
    """Every step of a run (dt = 1 ms, t_ref = 2.5 ms: the free time starts inside a step;
    V_r = -60 or -50.5 mV, not E_L; from -50.5 the cell fires again inside a partly free
    step), checked in NumPy from the previous state: free = max(dt - ref, 0), w at its start
    w e^{-(dt - free)/tau_w}; no spike: V the K-form closed form after free ms, w
    e^{-dt/tau_w}, ref max(ref - dt, 0); a spike t_c into the free time: V(t_c) = theta
    (below it before), then V = V_r, w = (w_free e^{-t_c/tau_w} + b) e^{-(free - t_c)/tau_w},
    ref = t_ref - (free - t_c), t_spike = dt - free + t_c. Fault caught only here: t_spike
    counted from the free time's start. Caught here by value, and before only by stored
    values of one run: the reset to E_L, w not decaying while refractory, or up to the spike,
    or decaying with tau_m, ref set to t_ref, the closed form's slow exponential at
    min(tau_m, tau_w), a refractory time left below 0."""
    from nnjax.brain import adaptive_lif as al

    with jax.enable_x64(True):
        p = al.ALIFParams(10.0, 10.0, -65.0, -50.0, V_r, 2.5, tau_w, 0.5)
        I = np.where(np.arange(120) < 90, 3.0, 1.0)  # then a sub-threshold tail
        tr = al.simulate(jnp.asarray(I), p, dt=1.0)
        V, w, ref, s, ts = (np.asarray(f) for f in tr)
    dt, n_spikes, n_partial = 1.0, 0, 0
    V0, w0, r0 = p.E_L, 0.0, 0.0
    for k in range(len(I)):
        free = max(dt - r0, 0.0)
        wf = w0 * np.exp(-(dt - free) / tau_w)
        if s[k]:
            n_spikes, n_partial = n_spikes + 1, n_partial + (free < dt)
            tc = ts[k] - (dt - free)
            assert 0.0 <= tc <= free
            np.testing.assert_allclose(_alif_free(tc, V0, wf, I[k], p), p.theta, atol=1e-8)
            assert np.all(_alif_free(np.linspace(0, tc, 50)[:-1], V0, wf, I[k], p) < p.theta)
            want = (
                p.V_r,
                (wf * np.exp(-tc / tau_w) + p.b) * np.exp(-(free - tc) / tau_w),
                p.t_ref - (free - tc),
            )
        else:
            assert np.isnan(ts[k])
            Vend = _alif_free(free, V0, wf, I[k], p) if free > 0 else V0
            assert Vend < p.theta
            want = (Vend, w0 * np.exp(-dt / tau_w), max(r0 - dt, 0.0))
        np.testing.assert_allclose((V[k], w[k], ref[k]), want, rtol=1e-10, atol=1e-10)
        V0, w0, r0 = V[k], w[k], ref[k]
    assert n_spikes == (7 if V_r < -51 else 28) and not s[100:].any()  # measured
    assert n_partial == (0 if V_r < -51 else 13)  # spikes inside a partly free step


def test_write_tuned_counts_only_the_searches_it_keeps(tmp_path):
    """SEARCH[dataset]["seconds"] sums the searches whose winners stay in the file: a search
    of every method of ``digits`` replaces them all, so its seconds stand alone (1234, not
    1234 + the committed 1757), and n_candidates is its one number; a search of one method
    with the committed n (8) keeps one number too, and adds its seconds. Fault caught: the
    previous search's seconds added although none of its winners was kept."""
    from nnjax.brain import tuned, tuning

    old = tuned.CHOSEN["digits"]
    new = {"final": {"x": 1.0}, "plastic": {"x": 2.0}}
    res = {"n_candidates": 3, "seconds": 1234.4, "methods": {m: {"chosen": new} for m in old}}
    path = tmp_path / "tuned.py"
    tuning.write_tuned("digits", res, str(path))
    chosen, search = tuning._written(str(path))
    assert chosen["digits"] == dict.fromkeys(old, new)
    assert chosen["mnist1d"] == tuned.CHOSEN["mnist1d"]
    assert search["digits"] == {"n_candidates": 3, "validation_runs": 10, "seconds": 1234}
    one = {"n_candidates": 3, "seconds": 6.0, "methods": {"ewc": {"chosen": new}}}
    tuning.write_tuned("digits", one, str(path))  # the kept methods were searched with n = 3
    assert tuning._written(str(path))[1]["digits"] == {
        "n_candidates": 3,
        "validation_runs": 10,
        "seconds": 1240,
    }


def test_diversity_counts_a_class_of_one_sample_and_no_pair_twice():
    """classes covered = #{k : h_k > 0}: a class given to a single sample counts (h = 3, 1,
    0, 1: 3 classes; H from p = (3, 1, 1) / 5). D over i < j only: 11 random rows against
    the loop over the 55 pairs, to 1e-13. Faults caught: h_k > 1 (a one-sample class not
    covered), i <= j (each row paired with itself too: the square roots of the rounding
    left on the Gram matrix's diagonal added to the sum, D 6.5e-10 too large here)."""
    from nnjax.brain import diversity

    X = np.random.default_rng(3).normal(size=(5, 4))
    out = diversity.diversity(X, lambda Z: np.eye(4)[[0, 0, 0, 3, 1]], 4)
    assert out.histogram.tolist() == [3, 1, 0, 1] and out.classes_covered == 3
    p = np.array([3, 1, 1]) / 5
    assert out.entropy_bits == pytest.approx(-(p * np.log2(p)).sum(), rel=1e-12)
    Y = np.random.default_rng(4).normal(size=(11, 5)) * np.arange(1, 12)[:, None] + 3.0
    want = np.mean([np.linalg.norm(Y[i] - Y[j]) for i in range(11) for j in range(i + 1, 11)])
    assert diversity.mean_pairwise_distance(Y) == pytest.approx(want, rel=1e-13)


def test_planted_spindles_have_the_documented_taper_and_fit_in_the_signal():
    """With the frequency and duration pinned (12 Hz, 1.2 s), each spindle is A w(u / d)
    sin(2 pi f u + phi) on its interval, w(v) = (1 - cos(4 pi v)) / 2 on the first and last
    quarter and 1 between (Tukey, alpha 0.5; A cos phi and A sin phi by least squares on the
    middle half). Faults caught: ramps (1 - cos(2 pi v)) / 2 (no test read the taper), and
    an event kept whose end lies past the last sample (below)."""
    from nnjax.brain import planted as pl

    fs, n = 200.0, 6000
    t = np.arange(n) / fs
    f, d = 12.0, 1.2
    x, iv = pl.plant_spindles(jax.random.key(2), n, fs, freq_hz=(f, f), duration_s=(d, d))
    assert len(iv) >= 3
    for s, _ in iv:
        u = t - s
        inside = (u >= 0) & (u < d)
        v, th = u[inside] / d, 2 * np.pi * f * u[inside]
        mid = np.abs(v - 0.5) <= 0.25
        basis = np.stack([np.sin(th), np.cos(th)], 1)
        c = np.linalg.lstsq(basis[mid], x[inside][mid], rcond=None)[0]  # A cos phi, A sin phi
        w = np.where(mid, 1.0, (1 - np.cos(4 * np.pi * v)) / 2)
        np.testing.assert_allclose(x[inside], w * (basis @ c), atol=1e-9)
        assert 8.0 <= np.hypot(*c) <= 20.0
    # 1 s events after 1 s gaps end at 2, 4, ... s: at fs = 100 Hz, n = 400 samples end at
    # 3.99 s, so the event on [3, 4] does not fit (the fault kept it: end <= n / fs)
    x, iv = pl.plant_spindles(jax.random.key(0), 400, 100.0, duration_s=(1, 1), gap_s=(1, 1))
    assert iv.tolist() == [[1.0, 2.0]] and not x[300:].any()


def test_adaptive_lif_state_exactly_at_theta_fires_when_its_free_time_starts():
    """The docstring: a neuron at or above theta when its free time starts fires at that
    instant. V = theta exactly, no input (V would decay below theta), at the step's start
    (t_spike 0) or 0.4 ms into it after the refractory time left (t_spike 0.4): one spike,
    V -> V_r, w -> b decayed over the rest of the step. Fault caught: the test V > theta
    (only a state above theta fired: this one decayed silently)."""
    from nnjax.brain import adaptive_lif as al

    p = al.DEFAULT
    for ref in (0.0, 0.4):
        st = al.ALIFState(*(jnp.float32(v) for v in (p.theta, 0.0, ref, 0.0, np.nan)))
        out = al.step(st, jnp.float32(0.0), p, 1.0)
        assert (float(out.spike), float(out.V)) == (1.0, p.V_r)
        np.testing.assert_allclose(float(out.t_spike), ref, atol=1e-6)
        np.testing.assert_allclose(float(out.w), p.b * np.exp(-(1.0 - ref) / p.tau_w), rtol=1e-6)
        np.testing.assert_allclose(float(out.ref), p.t_ref - (1.0 - ref), rtol=1e-6)


def test_fi_curves_mark_only_the_intervals_that_were_completed():
    """rates[:, k] = 1000 / ISI_{k+1} where spike k + 2 fell within the duration, else 0 and
    valid False; the spike times read off the simulated trace (k dt + t_spike), a current
    below the rheobase 1.5 nA giving no spike. Fault caught: valid taken from the first
    n_isi spikes (valid[..., :-1]): the interval after the last spike read valid with a nan
    rate."""
    from nnjax.brain import adaptive_lif as al

    currents, dt, T = np.array([1.4, 2.0, 3.0]), 0.1, 60.0
    rates, valid = al.fi_curves(jnp.asarray(currents), n_isi=4, duration=T, dt=dt)
    tr = al.simulate(jnp.broadcast_to(jnp.asarray(currents), (600, 3)), dt=dt)
    for i in range(3):
        k = np.flatnonzero(np.asarray(tr.spike[:, i]))
        isi = np.diff(k * dt + np.asarray(tr.t_spike[k, i]))[:4]
        n = isi.size
        assert valid[i].tolist() == [True] * n + [False] * (4 - n)
        np.testing.assert_allclose(
            np.asarray(rates[i]), np.r_[1000 / isi, [0.0] * (4 - n)], rtol=1e-4
        )
    assert valid.sum(1).tolist()[0] == 0 and 0 < valid.sum(1).tolist()[1] < 4


def test_firing_refuses_a_label_equal_to_the_number_of_outputs():
    """Labels run 0..n_out - 1: y = 2 of 2 outputs matches no class. Fault caught: the test
    labels > n_out (y = n_out passed and counted as a wrong prediction)."""
    from nnjax.brain import convert
    from nnjax.brain import homeostasis as H

    conv = convert.Converted([{"W": jnp.eye(2), "b": jnp.zeros(2)}] * 2, jnp.ones(3))
    X = jnp.array([[1.0, 0.0], [0.0, 1.0]])
    assert H.firing(conv, X, np.array([0, 1]), 10).accuracy == 1.0
    with pytest.raises(
        ValueError, match=r"^firing: y must hold integer labels in 0\.\.1, got y\[1\] = 2"
    ):
        H.firing(conv, X, np.array([0, 2]), 10)


def test_sweep_refuses_a_factor_of_zero_before_running():
    """c = 0 silences the network (W_l <- 0): refused by sweep, named, before any run (no
    network is needed to see it). Fault caught: the test 0 <= c (0 passed sweep's check)."""
    from nnjax.brain import homeostasis as H

    with pytest.raises(ValueError, match=r"^sweep: factors\[1\] must be > 0 and finite, got 0.0"):
        H.sweep(None, np.zeros((1, 2)), np.zeros(1), 5, factors=[1.0, 0.0])


def test_planted_generators_refuse_their_boundary_values():
    """Boundaries named by the docstrings: a spindle frequency at the Nyquist frequency fs / 2
    (sampled at fs it reads as zeros or a slower wave) and an Up rate equal to the Down rate
    (no two states). Faults caught: f > fs / 2 and down <= up accepted the boundary."""
    from nnjax.brain import planted as pl

    key = jax.random.key(0)
    with pytest.raises(ValueError, match=r"plant_spindles: freq_hz high = 50 Hz, at or above"):
        pl.plant_spindles(key, 1000, 100.0, freq_hz=(10.0, 50.0))
    with pytest.raises(ValueError, match=r"two_state_rate: need .*up_rate_hz < inf, got 5.0, 5.0"):
        pl.two_state_rate(key, 1000, 100.0, up_rate_hz=5.0, down_rate_hz=5.0)


def test_spike_times_are_step_ends_and_a_reset_at_the_cut_off_is_refused():
    """dynamics.spike_times: a spike in step k is registered at the step's end, (k + 1) dt.
    V_r equal to AdEx's V_peak or to the adaptive LIF's theta is refused (reset onto the
    cut-off: the LIF fires again as soon as it is free, whatever its input). Faults caught:
    times k dt (the steps' starts), and check_below accepting low == high."""
    from nnjax.brain import adaptive_lif as al
    from nnjax.brain import dynamics

    np.testing.assert_allclose(dynamics.spike_times(np.array([0, 1, 0, 0, 1]), 0.5), [1.0, 2.5])
    with pytest.raises(ValueError, match="adex.simulate: V_r must be finite and below V_peak"):
        adex.simulate(jnp.zeros((3,)), adex.AdExParams(V_r=0.0, V_peak=0.0))
    with pytest.raises(ValueError, match="adaptive_lif.simulate: V_r must be finite and below"):
        al.simulate(jnp.zeros((3,)), al.DEFAULT._replace(V_r=-50.0, theta=-50.0))
