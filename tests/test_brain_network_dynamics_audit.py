"""The network's dynamics against analytic or independent values: the external drive is
Poisson shot noise, an uncoupled network is N independent neurons, synaptic signs and
delays to the step, exact fixed in-degrees, the LFP proxy as documented, modulation acting
only where documented, determinism."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.stats import poisson

from nnjax.brain import adaptive_lif, adex, circuits, network_step
from nnjax.brain import network as nw

ZERO_W = dict(w_ee=0.0, w_ei=0.0, w_ie=0.0, w_ii=0.0)


def _ext_series(key, n, T, rate, w, tau, dt):
    """The external synapse's x at each step's start, rebuilt from the network's uniforms
    (fold_in(key, t)) with SciPy's Poisson quantile (an independent inverse transform)."""
    u = jax.vmap(lambda t: jax.random.uniform(jax.random.fold_in(key, t), (n,), jnp.float64))(
        jnp.arange(T)
    )
    counts = poisson.ppf(np.asarray(u), rate * dt / 1000.0)
    x, out = np.zeros(n), []
    for c in counts:
        out.append(x)
        x = x * np.exp(-dt / tau) + w * c
    return np.array(out)


def test_external_drive_is_poisson_shot_noise():
    """g_ext of an exponential synapse fed by Poisson spikes (Campbell's theorem): mean
    r w tau, variance r w^2 tau / 2 (on the grid: w lam / (1 - a), w^2 lam / (1 - a^2),
    a = e^{-dt/tau}, 1 % and 2 % above). 50 cells x 2 s: about 10^4 independent samples,
    so the mean is known to 0.2 % and the variance to about 1.5 %: tolerances 1.5 % and 8 %.
    Counts per step are Poisson (variance = mean = rate dt), not Bernoulli (0.8 of it)."""
    cfg = circuits.NetworkConfig(n_exc=40, n_inh=10, rate_ext=2000.0, w_ext=1.5, **ZERO_W)
    params, spec = circuits.init_params(jax.random.key(0), cfg), cfg.spec
    mod = jax.tree.map(jnp.asarray, nw.Modulation())

    def one(s, _):
        s = network_step._adex_step(s, params, spec, mod, jnp.zeros((0,)), jax.random.key(3))[0]
        return s, s.ext.x

    T, w, tau, dt, lam = 20_000, 1.5, 5.0, 0.1, 0.2
    _, g = jax.jit(lambda s: jax.lax.scan(one, s, None, length=T))(nw.init_state(params, spec))
    g = np.asarray(g, np.float64)
    a = np.exp(-dt / tau)
    counts = (g[1:] - a * g[:-1]) / w
    assert np.abs(counts - np.round(counts)).max() < 1e-3  # whole spikes
    assert counts.mean() == pytest.approx(lam, rel=0.015)  # 2000 Hz: 0.2 per 0.1 ms step
    assert counts.var() / counts.mean() == pytest.approx(1.0, abs=0.02)
    g = g[1000:]  # from rest: 100 ms = 20 tau
    assert 2000e-3 * w * tau == pytest.approx(15.0)
    assert g.mean() == pytest.approx(w * lam / (1 - a), rel=0.015)
    assert g.var() == pytest.approx(w * w * lam / (1 - a * a), rel=0.08)


def test_uncoupled_network_is_independent_single_neurons():
    """Recurrent weights 0: each cell is the standalone model under the same drive, to
    float64 rounding (1e-9 mV): AdEx with a bias current (t_ref = 0, no clamp), AdEx with
    the external conductance phi g (E_exc - V), adaptive LIF with the external current's
    mean over each step."""
    T, n, key = 2000, 12, jax.random.key(5)
    with jax.enable_x64(True):
        mon = nw.Monitor(every=1, neurons=tuple(range(n)), variables=("V",))
        cfg = circuits.NetworkConfig(n_exc=8, n_inh=4, t_ref=0.0, rate_ext=0.0, **ZERO_W)
        bias = jnp.linspace(100.0, 400.0, n)
        params = circuits.init_params(jax.random.key(0), cfg)._replace(I_bias=bias)
        rec = nw.simulate(key, params, cfg.spec, T, monitor=mon).record
        tr = adex.simulate(jnp.broadcast_to(bias, (T, n)), params.neuron, dt=0.1)
        assert int(tr.spike.sum()) > 50
        np.testing.assert_array_equal(rec["spikes"], tr.spike)
        np.testing.assert_allclose(rec["V"], tr.V, rtol=0, atol=1e-9)

        cfg = cfg._replace(rate_ext=3000.0, w_ext=2.0)
        params = circuits.init_params(jax.random.key(0), cfg)._replace(I_bias=50.0)
        rec = nw.simulate(key, params, cfg.spec, T, monitor=mon).record
        g = jnp.asarray(_ext_series(key, n, T, 3000.0, 2.0, 5.0, 0.1))
        p = params.neuron

        def cell(st, g_t):
            x = g_t * 0.1 / p.C
            phi = jnp.where(x > 0, -jnp.expm1(-x) / jnp.where(x > 0, x, 1.0), 1.0)
            st = adex.step(st, phi * g_t * (0.0 - st.V) + 50.0, p, 0.1)
            return st, st

        _, tr = jax.lax.scan(cell, adex.init_state((n,), p), g)
        assert int(tr.spike.sum()) > 100
        np.testing.assert_array_equal(rec["spikes"], tr.spike)
        np.testing.assert_allclose(rec["V"], tr.V, rtol=0, atol=1e-9)

        cfg = circuits.NetworkConfig(
            n_exc=8, n_inh=4, model="alif", delay_ms=1.0, rate_ext=3000.0, w_ext=0.3, **ZERO_W
        )
        params = circuits.init_params(jax.random.key(0), cfg)._replace(I_bias=1.0)
        rec = nw.simulate(key, params, cfg.spec, T, monitor=mon).record
        x = _ext_series(key, n, T, 3000.0, 0.3, 5.0, 0.1)
        I = x * 5.0 * (1 - np.exp(-0.1 / 5.0)) / 0.1 + 1.0  # x's mean over the step
        tr = adaptive_lif.simulate(jnp.asarray(I), params.neuron, dt=0.1)
        assert int(tr.spike.sum()) > 100
        np.testing.assert_array_equal(rec["spikes"], tr.spike)
        np.testing.assert_allclose(rec["V"], tr.V, rtol=0, atol=1e-9)


def _pair(model, delay_ms, W, bias=None, stim_at=()):
    """A 2 E + 2 I network wired by W = (W_ee, W_ei, W_ie, W_ii); E0 and I3 are kicked by a
    stimulus at the given steps (AdEx) or driven by ``bias``; every step recorded."""
    cfg = circuits.NetworkConfig(
        n_exc=2, n_inh=2, model=model, p=0.0, rate_ext=0.0, delay_ms=delay_ms, **ZERO_W
    )  # no synapse drawn (p = 0): W below is the wiring
    params = circuits.init_params(jax.random.key(0), cfg)
    params = params._replace(**{f"W_{b}": jnp.asarray(w) for b, w in zip(nw.BLOCKS, W)})
    T, stim = 300, np.zeros((300, 2))
    for i, t in enumerate(stim_at):
        stim[t : t + 3, i] = 1e5
    params = params._replace(stim_pattern=jnp.array([[1.0, 0], [0, 0], [0, 0], [0, 1.0]]))
    if bias is not None:
        params = params._replace(I_bias=jnp.asarray(bias))
    mon = nw.Monitor(every=1, neurons=(0, 1, 2, 3), variables=("V", "syn_exc", "syn_inh"))
    if model == "alif":
        mon = mon._replace(variables=mon.variables + ("t_spike",))
    rec = nw.simulate(jax.random.key(0), params, cfg.spec, T, stimulus=stim, monitor=mon).record
    return cfg.spec.delay_steps, {k: np.asarray(v, np.float64) for k, v in rec.items()}


@pytest.mark.parametrize("delay_ms, d", [(0.0, 0), (0.1, 1), (0.25, 2), (1.5, 15)])
def test_adex_synapses_have_the_documented_sign_and_delay(delay_ms, d):
    """E0 -> E1 (3 nS), E0 -> I2 (2 nS); in a second run I3 -> E1 (5 nS): a spike of step t
    enters the conductance at the end of step t + d (d = round(delay_ms / dt)), so it is
    first seen at the start of step t + d + 1 with its full weight; near rest (-60 mV) the
    E conductance depolarises by phi g (0 - V) dt / C and the I one hyperpolarises by
    phi g (-80 - V) dt / C (mV, 0.1 %: float32 rounding)."""
    zero = [[0, 0], [0, 0]]
    W_exc = ([[0, 0], [3.0, 0]], zero, [[2.0, 0], [0, 0]], zero)
    got_d, r = _pair("adex", delay_ms, W_exc, stim_at=(50,))
    _, q = _pair(
        "adex", delay_ms, ([[0, 0], [0, 0]], [[0, 0], [0, 5.0]], zero, zero), stim_at=(0, 50)
    )
    assert got_d == d
    t0, t3 = np.flatnonzero(r["spikes"][:, 0])[0], np.flatnonzero(q["spikes"][:, 3])[0]
    k_e, k_i = np.flatnonzero(r["syn_exc"][:, 1])[0], np.flatnonzero(q["syn_inh"][:, 1])[0]
    assert (k_e - t0, np.flatnonzero(r["syn_exc"][:, 2])[0] - t0, k_i - t3) == (d + 1,) * 3
    assert r["syn_exc"][k_e, 1] == pytest.approx(3.0) and q["syn_inh"][k_i, 1] == 5.0
    for rec, k, g, E in ((r, k_e, 3.0, 0.0), (q, k_i, 5.0, -80.0)):
        V0 = rec["V"][k - 1, 1]
        assert V0 == pytest.approx(-60.0, abs=0.01)  # near rest until the first input
        phi = -np.expm1(-g * 0.1 / 200.0) / (g * 0.1 / 200.0)
        dV = rec["V"][k, 1] - V0 - (V0 - rec["V"][k - 2, 1])  # less the drift (5e-5 mV)
        assert dV == pytest.approx(phi * g * (E - V0) * 0.1 / 200.0, rel=1e-3)
        assert np.sign(dV) == (1 if E == 0.0 else -1)


@pytest.mark.parametrize("delay_ms, d", [(0.1, 1), (0.25, 2), (1.0, 10)])
def test_alif_timed_synapses_arrive_exactly_d_dt_after_the_spike(delay_ms, d):
    """Adaptive LIF: a spike at t0 dt + t_s arrives at (t0 + d) dt + t_s, so the postsynaptic
    current's mean over step t0 + d is w tau (1 - e^{-(dt - t_s)/tau}) / dt (nA) and over
    the next w tau e^{-(dt - t_s)/tau} (1 - e^{-dt/tau}) / dt; inhibition (w < 0) likewise
    (1e-5: float32 rounding)."""
    W = ([[0, 0], [0.3, 0]], [[0, 0], [0, -0.5]], [[0.2, 0], [0, 0]], [[0, 0], [0, 0]])
    got_d, r = _pair("alif", delay_ms, W, bias=[1.8, 0.0, 0.0, 1.7])
    assert got_d == d
    dt = 0.1
    for pre, post, var, w, tau in (  # AMPA 5 ms, GABA_A 10 ms
        (0, 1, "syn_exc", 0.3, 5.0),
        (0, 2, "syn_exc", 0.2, 5.0),
        (3, 1, "syn_inh", -0.5, 10.0),
    ):
        t0 = np.flatnonzero(r["spikes"][:, pre])[0]
        ts = r["t_spike"][t0, pre]
        assert 0 < ts < dt
        k = np.flatnonzero(r[var][:, post])[0]
        assert k - t0 == d
        e = np.exp(-(dt - ts) / tau)
        assert r[var][k, post] == pytest.approx(w * tau * (1 - e) / dt, rel=1e-5)
        assert r[var][k + 1, post] == pytest.approx(
            w * tau * e * (1 - np.exp(-dt / tau)) / dt, rel=1e-5
        )


def test_fixed_in_degree_is_exact_when_float32_draws_tie():
    """This key's (200, 800) uniform draw has a tie at row 70's 80th smallest value: the
    old u <= (k-th smallest) gave that neuron 81 inputs. And init_params' blocks: exactly
    round(p n_pre) inputs from each population, no self-connections, the given weights."""
    key = jax.random.split(jax.random.key(0), 100)[58]
    row = np.sort(np.asarray(jax.random.uniform(key, (200, 800))[70]))
    assert row[79] == row[80]  # the tie
    m = np.asarray(circuits.random_mask(key, 200, 800, 0.1))
    np.testing.assert_array_equal(m.sum(1), 80)
    cfg = circuits.NetworkConfig(n_exc=40, n_inh=10, p=0.2)
    P = circuits.init_params(jax.random.key(1), cfg)
    for b, w, k in (("ee", 4.0, 8), ("ei", 50.0, 2), ("ie", 4.0, 8), ("ii", 50.0, 2)):
        W = np.asarray(getattr(P, "W_" + b))
        np.testing.assert_array_equal((W != 0).sum(1), k)
        assert set(np.unique(W)) == {0.0, w}
        if b in ("ee", "ii"):
            assert np.trace(W) == 0
    np.testing.assert_array_equal(np.asarray(P.mask_ee) > 0, np.asarray(P.W_ee) > 0)


def test_lfp_proxy_is_the_documented_sum_of_synaptic_currents():
    """AdEx: mean over E cells of |phi g_exc (0 - V)| + |phi g_inh (-80 - V)| at each step's
    start, rebuilt from the recorded V and conductances (float64: 1e-9 pA). Adaptive LIF:
    the external excitatory current counts too, as in AdEx (it was left out: an uncoupled
    network driven from outside had an LFP of 0)."""
    with jax.enable_x64(True):
        cfg = circuits.NetworkConfig(n_exc=8, n_inh=2, p=0.5, delay_ms=0.3, rate_ext=0.0)
        params = circuits.init_params(jax.random.key(0), cfg)
        params = params._replace(I_bias=jnp.linspace(0, 300.0, 10), t_ref=1.0)
        mon = nw.Monitor(every=1, neurons=tuple(range(10)), variables=("V", "syn_exc", "syn_inh"))
        rec = nw.simulate(jax.random.key(1), params, cfg.spec, 1500, monitor=mon).record
        V, ge, gi = (np.asarray(rec[k]) for k in ("V", "syn_exc", "syn_inh"))
        V = np.concatenate([np.full((1, 10), -60.0), V[:-1]])  # at each step's start
        x = (ge + gi) * 0.1 / 200.0
        phi = np.where(x < 1e-4, 1 - x / 2, -np.expm1(-x) / np.maximum(x, 1e-12))
        lfp = np.abs(phi * ge * (0.0 - V)) + np.abs(phi * gi * (-80.0 - V))
        assert (ge > 0).any() and (gi > 0).any()
        np.testing.assert_allclose(rec["lfp"], lfp[:, :8].mean(1), rtol=0, atol=1e-9)

        T, key = 1000, jax.random.key(5)
        cfg = circuits.NetworkConfig(
            n_exc=8, n_inh=2, model="alif", delay_ms=1.0, rate_ext=3000.0, w_ext=0.3, **ZERO_W
        )
        params = circuits.init_params(jax.random.key(0), cfg)
        rec = nw.simulate(key, params, cfg.spec, T, monitor=nw.Monitor(every=10)).record
        x = _ext_series(key, 10, T, 3000.0, 0.3, 5.0, 0.1)
        I_ext = x * 5.0 * (1 - np.exp(-0.1 / 5.0)) / 0.1
        want = I_ext[:, :8].mean(1).reshape(100, 10).mean(1)
        np.testing.assert_allclose(rec["lfp"], want, rtol=1e-9, atol=1e-12)
        assert want[10:].mean() == pytest.approx(4.5, rel=0.1)  # r w tau = 3 / ms 0.3 nA 5 ms


def test_modulation_changes_only_what_it_documents_and_runs_are_deterministic():
    """ext_scale 0.5 is the rate halved; gain_x is W_x scaled (0 and 2, exact in floats);
    g_K and b_scale act on E cells only (uncoupled network: the I cells bit for bit); the
    same key gives the same run bit for bit."""
    cfg = circuits.NetworkConfig(n_exc=8, n_inh=4, p=0.5, rate_ext=3000.0)
    params = circuits.init_params(jax.random.key(2), cfg)
    mon = nw.Monitor(every=1, neurons=tuple(range(12)), variables=("V", "w"))

    def run(p, mod=None):
        return nw.simulate(jax.random.key(4), p, cfg.spec, 500, modulation=mod, monitor=mon).record

    base = run(params)
    assert np.asarray(base["spikes"]).sum() > 20
    np.testing.assert_array_equal(run(params)["V"], base["V"])
    half = run(params, nw.Modulation(ext_scale=0.5))["V"]
    np.testing.assert_array_equal(half, run(params._replace(rate_ext=1500.0))["V"])
    for b in nw.BLOCKS:
        W = getattr(params, "W_" + b)
        for gain in (0.0, 2.0):
            got = run(params, nw.Modulation(**{"gain_" + b: gain}))["V"]
            np.testing.assert_array_equal(got, run(params._replace(**{"W_" + b: gain * W}))["V"])
    cfg = cfg._replace(**ZERO_W)
    params = circuits.init_params(jax.random.key(2), cfg)
    params = params._replace(neuron=params.neuron._replace(b=jnp.full(12, 40.0)))
    base = run(params)
    for mod in (nw.Modulation(g_K=2.0), nw.Modulation(b_scale=0.3)):
        got = run(params, mod)
        np.testing.assert_array_equal(got["V"][:, 8:], base["V"][:, 8:])
        assert np.abs(got["V"][:, :8] - base["V"][:, :8]).max() > 1.0
