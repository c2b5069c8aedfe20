"""Mutation audit of the spiking E/I network core (network_step, network, monitors,
circuits, activity): each test names the deliberate fault it catches, which the rest of the
suite let pass. Oracles: the standalone neuron models under the documented currents, exact
in-degrees and weights, the bytes of a real recording, hand-computed bin sums."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nnjax.brain import activity, adaptive_lif, adex, circuits
from nnjax.brain import network as nw

ZERO_W = dict(w_ee=0.0, w_ei=0.0, w_ie=0.0, w_ii=0.0)


def test_alif_g_k_is_an_nA_leak_onto_e_cells_only():
    """Adaptive LIF, uncoupled: I_i = I_bias,i + [i in E] g_K (E_K - V_i) / 1000 (nS mV = pA,
    the network's currents in nA), each cell the standalone model under that current (float64,
    1e-9 mV). Faults caught: g_K without the / 1000 (a 10 nS leak read as 10 uS), and g_K on
    the I cells too."""
    T, n = 1000, 4
    with jax.enable_x64(True):
        cfg = circuits.NetworkConfig(n_exc=2, n_inh=2, model="alif", rate_ext=0.0, **ZERO_W)
        bias = jnp.array([1.8, 2.2, 1.8, 2.2])
        params = circuits.init_params(jax.random.key(0), cfg)._replace(I_bias=bias)
        mon = nw.Monitor(every=1, neurons=tuple(range(n)), variables=("V",))
        mod = nw.Modulation(g_K=10.0)
        rec = nw.simulate(jax.random.key(1), params, cfg.spec, T, modulation=mod, monitor=mon)
        p, exc = params.neuron, jnp.array([1.0, 1.0, 0.0, 0.0])

        def cell(st, _):
            st = adaptive_lif.step(st, bias + exc * 10.0 * (-90.0 - st.V) / 1000.0, p, 0.1)
            return st, st

        _, tr = jax.lax.scan(cell, adaptive_lif.init_state((n,), p), None, length=T)
    spikes = np.asarray(rec.record["spikes"])
    assert spikes[:, 2:].sum() > 5 and 0 < spikes[:, :2].sum() < spikes[:, 2:].sum()
    np.testing.assert_array_equal(spikes, tr.spike)
    np.testing.assert_allclose(rec.record["V"], tr.V, rtol=0, atol=1e-9)


def test_alif_gains_scale_the_released_spikes_like_the_weights():
    """Adaptive LIF: a gain multiplies the presynaptic spike at release, so gain_x = 0 or 2 is
    W_x times 0 or 2 (exact in floats), and a gain of 0 changes the run. Fault caught: the
    adaptive-LIF step ignored the gains (AdEx's were tested, not these)."""
    cfg = circuits.NetworkConfig(
        n_exc=6, n_inh=2, model="alif", p=0.5, delay_ms=0.5, rate_ext=0.0, I_bias=1.55,
        w_ee=0.6, w_ei=-0.8, w_ie=0.6, w_ii=-0.8,
    )  # fmt: skip
    params = circuits.init_params(jax.random.key(2), cfg)
    params = params._replace(I_bias=jnp.linspace(1.45, 1.7, 8))
    mon = nw.Monitor(every=1, neurons=tuple(range(8)), variables=("V",))

    def run(p, mod=None):
        return nw.simulate(jax.random.key(4), p, cfg.spec, 400, modulation=mod, monitor=mon).record

    base = run(params)["V"]
    for b in nw.BLOCKS:
        W = getattr(params, "W_" + b)
        off = run(params, nw.Modulation(**{"gain_" + b: 0.0}))["V"]
        assert np.abs(off - base).max() > 0.1, b
        np.testing.assert_array_equal(off, run(params._replace(**{"W_" + b: 0.0 * W}))["V"])
        got = run(params, nw.Modulation(**{"gain_" + b: 2.0}))["V"]
        np.testing.assert_array_equal(got, run(params._replace(**{"W_" + b: 2.0 * W}))["V"])


def test_stimulus_is_the_pattern_times_this_steps_units():
    """AdEx, uncoupled, t_ref = 0: I_i = I_bias,i + (P u_t)_i with u_t the stimulus row of
    step t, each cell the standalone adex.simulate under that current (float64, 1e-9 mV).
    Faults caught: the stimulus current with its sign flipped, and the stimulus of step t - 1
    applied at step t (rows off by one)."""
    T = 800
    with jax.enable_x64(True):
        cfg = circuits.NetworkConfig(n_exc=2, n_inh=1, t_ref=0.0, rate_ext=0.0, **ZERO_W)
        P = jnp.array([[600.0, 0.0], [200.0, 300.0], [0.0, 700.0]])  # pA per unit
        params = circuits.init_params(jax.random.key(0), cfg)._replace(
            stim_pattern=P, I_bias=jnp.array([0.0, 50.0, 20.0])
        )
        u = np.random.default_rng(0).uniform(0.0, 1.6, (T, 2)) * (np.arange(T) % 50 < 30)[:, None]
        mon = nw.Monitor(every=1, neurons=(0, 1, 2), variables=("V",))
        rec = nw.simulate(jax.random.key(1), params, cfg.spec, T, stimulus=u, monitor=mon).record
        tr = adex.simulate(jnp.asarray(u) @ P.T + params.I_bias, params.neuron, dt=0.1)
    assert np.asarray(tr.spike).sum(0).min() >= 2
    np.testing.assert_array_equal(rec["spikes"], tr.spike)
    np.testing.assert_allclose(rec["V"], tr.V, rtol=0, atol=1e-9)


def test_i_rate_is_the_i_cells_counts_over_n_inh_and_the_bin():
    """rate[:, 1] = (spikes of the I cells in the bin) / n_inh / (every dt / 1000) Hz, summed
    by hand from the per-step raster (3 E + 2 I cells, uncoupled, bins of 10 steps). Fault
    caught: the I count divided by n_exc (only the E rate was checked)."""
    cfg = circuits.NetworkConfig(n_exc=3, n_inh=2, t_ref=0.0, rate_ext=0.0, **ZERO_W)
    params = circuits.init_params(jax.random.key(0), cfg)._replace(
        I_bias=jnp.array([250.0, 300.0, 0.0, 400.0, 600.0])
    )
    fine = nw.simulate(jax.random.key(1), params, cfg.spec, 600, monitor=nw.Monitor(lfp=False))
    coarse = nw.simulate(jax.random.key(1), params, cfg.spec, 600, monitor=nw.Monitor(every=10))
    counts = np.asarray(fine.record["spikes"], np.int64).reshape(60, 10, 5).sum(1)
    assert counts[:, 3:].sum() > 10 and counts[:, :3].sum() > 0
    want = np.stack([counts[:, :3].sum(1) / 3, counts[:, 3:].sum(1) / 2], 1) / 1e-3  # 1 ms bins
    np.testing.assert_allclose(coarse.record["rate"], want, rtol=1e-6)


@pytest.mark.parametrize("spikes", ["indices", "raster"])
def test_record_bytes_are_the_bytes_of_the_recording(spikes):
    """record_bytes (what MAX_RECORD_BYTES caps) equals the bytes simulate returns, for spike
    ids with their overflow count and 2 variables of 3 neurons. Faults caught: the overflow
    count's bytes left out, and one variable counted per neuron whatever their number."""
    cfg = circuits.NetworkConfig(n_exc=4, n_inh=2, p=0.5, rate_ext=0.0, I_bias=300.0)
    params = circuits.init_params(jax.random.key(0), cfg)
    mon = nw.Monitor(every=5, spikes=spikes, max_spikes=3, neurons=(0, 2, 5), variables=("V", "w"))
    rec = nw.simulate(jax.random.key(1), params, cfg.spec, 50, monitor=mon).record
    got = sum(np.asarray(v).nbytes for v in rec.values())
    assert got == nw.record_bytes(mon, cfg.spec, 50) > 0


def test_init_params_blocks_have_exact_in_degrees_weights_and_no_self_loops():
    """K = round(p n_pre) inputs per cell in every block (p = 0.29: 2.9 -> 3 from 10 cells,
    not the 2 of a truncation); each block's synapses carry exactly its own weight; W_ee and
    W_ii have no self-connection; mask_ee is W_ee's support; the four blocks are drawn from
    four keys (at n_exc = n_inh no two masks coincide). Faults caught: K truncated, W_ii
    drawn with self-connections, W_ei given w_ie, W_ie drawn from W_ei's key."""
    assert circuits.in_degree(0.29, 10) == 3 and circuits.in_degree(0.29, 10, True) == 3
    cfg = circuits.NetworkConfig(
        n_exc=10, n_inh=10, p=0.29, w_ee=1.0, w_ei=7.0, w_ie=3.0, w_ii=5.0, rate_ext=0.0
    )
    params = circuits.init_params(jax.random.key(11), cfg)
    masks = []
    for b, w in zip(nw.BLOCKS, (1.0, 7.0, 3.0, 5.0)):
        W = np.asarray(getattr(params, "W_" + b))
        assert set(np.unique(W)) == {0.0, w}, b
        np.testing.assert_array_equal((W != 0).sum(1), 3)
        masks.append(W != 0)
    assert np.trace(masks[0]) == 0 and np.trace(masks[3]) == 0
    np.testing.assert_array_equal(np.asarray(params.mask_ee), masks[0])
    for i in range(4):
        for j in range(i + 1, 4):
            assert (masks[i] != masks[j]).any(), (nw.BLOCKS[i], nw.BLOCKS[j])


def test_a_modulation_series_acts_at_its_own_step_and_runs_continue_from_their_state():
    """A g_K series of level a for 300 steps then b for 300 is the run at g_K = a continued,
    from its Run.state, at g_K = b (coupled network with external drive: the key's draws
    follow the state's step count). Faults caught: the series applied one step late (step t
    read level t - 1), Run.state returned as the run's initial state, and the refractory time
    left counting down below 0."""
    cfg = circuits.NetworkConfig(n_exc=8, n_inh=2, p=0.5, delay_ms=0.3, rate_ext=3000.0)
    mon = nw.Monitor(every=1, neurons=tuple(range(10)), variables=("V", "w"))
    key = jax.random.key(3)
    with jax.enable_x64(True):
        params = circuits.init_params(jax.random.key(0), cfg)._replace(I_bias=150.0)
        g_K = jnp.concatenate([jnp.zeros(300), jnp.full(300, 20.0)])
        whole = nw.simulate(key, params, cfg.spec, 600, modulation=nw.Modulation(g_K=g_K),
                            monitor=mon)  # fmt: skip
        first = nw.simulate(key, params, cfg.spec, 300, monitor=mon)
        second = nw.simulate(key, params, cfg.spec, 300, state=first.state,
                             modulation=nw.Modulation(g_K=20.0), monitor=mon)  # fmt: skip
    assert int(np.asarray(second.state.t)) == 600
    ref = np.asarray(second.state.ref)  # refractory time left (ms): in [0, t_ref]
    assert ref.min() >= 0.0 and ref.max() <= 5.0 and (ref > 0).any()
    for name in ("spikes", "V", "w"):
        got = np.concatenate([first.record[name], second.record[name]])
        np.testing.assert_allclose(got, whole.record[name], rtol=0, atol=1e-9, err_msg=name)
    assert np.asarray(whole.record["spikes"])[300:].sum() > 5


def test_spike_train_readouts_against_hand_computed_values():
    """isi_cv: spikes at bin centres 0.5, 2.5, 2.5, 5.5, 9.5 ms (two in bin 2: an interval of
    0 ms) give ISIs 2, 0, 3, 4, CV = std / mean (ddof 0); two spikes give nan even with
    min_spikes = 0. raster_points: t0 + (b + 1/2) bin_ms. pairwise_correlation of two
    anti-correlated neurons (and a silent one, left out) is -1 exactly. Faults caught: the
    0 ms intervals left out of the std, the 3-spike floor dropped, spike times at the bins'
    starts, self-pairs kept (each a correlation of 1), the sd with ddof = 1, windows counted
    from the raster's end."""
    r = np.zeros((12, 3), np.uint8)
    r[[0, 2, 5, 9], 0] = [1, 2, 1, 1]
    r[[1, 7], 1] = 1
    isi = np.array([2.0, 0.0, 3.0, 4.0])
    cv = activity.isi_cv(r, 1.0, min_spikes=0)
    assert cv[0] == pytest.approx(isi.std() / isi.mean(), rel=1e-12)
    assert np.isnan(cv[1]) and np.isnan(cv[2])
    t, i = activity.raster_points(r, 0.5, t0_ms=10.0)
    np.testing.assert_allclose(t, 10.0 + 0.5 * (np.array([0, 1, 2, 2, 5, 7, 9]) + 0.5))
    np.testing.assert_array_equal(i, [0, 1, 0, 0, 0, 1, 0])
    c = np.random.default_rng(1).integers(0, 4, 400).astype(np.uint8)
    anti = np.stack([c, 3 - c, np.zeros_like(c)], 1)
    rho = activity.pairwise_correlation(anti, 1.0, window_ms=1.0, n_pairs=200)
    assert rho == pytest.approx(-1.0, abs=1e-12)
    # windows of 2 bins from the raster's start, the last odd bin left out: counts (1, 0, 2)
    # and (1, 2, 0), rho = -1 (from bin 1 on they would be (0, 2, 0) and (2, 1, 3): -0.87)
    odd = np.array([[1, 0], [0, 1], [0, 1], [0, 1], [2, 0], [0, 0], [0, 3]])
    assert activity.pairwise_correlation(odd, 1.0, window_ms=2.0) == pytest.approx(-1.0)


def test_cortex_is_the_network_its_docstring_describes():
    """CORTEX (circuits docstring): 800 E + 200 I cells, each with exactly 80 E and 20 I
    inputs, 4 nS excitatory and 50 nS inhibitory weights, AMPA 5 ms / 0 mV and GABA_A
    10 ms / -80 mV, a 5 ms refractory period, 1 kHz of 1.5 nS external input; cells with
    C = 200 pF, g_L = 10 nS, V_T = -50 mV, tau_w = 500 ms, Delta_T 2 mV (E) and 0.5 mV (I),
    b = 60 pA on E cells only. Faults caught: t_ref 2 ms, w_ext 1 nS, the I cells' Delta_T 2."""
    cfg = circuits.CORTEX
    params = circuits.init_params(jax.random.key(0), cfg)
    assert (cfg.spec.n_exc, cfg.spec.n_inh) == (800, 200)
    for b, w in zip(nw.BLOCKS, (4.0, 50.0, 4.0, 50.0)):
        W = np.asarray(getattr(params, "W_" + b))
        assert set(np.unique(W)) == {0.0, w}, b
        np.testing.assert_array_equal((W != 0).sum(1), 80 if b[1] == "e" else 20)
    assert (params.exc_syn.tau, params.exc_syn.E_rev) == (5.0, 0.0)
    assert (params.inh_syn.tau, params.inh_syn.E_rev) == (10.0, -80.0)
    assert (params.t_ref, params.rate_ext, params.w_ext) == (5.0, 1000.0, 1.5)
    p = jax.tree.map(np.asarray, params.neuron)
    for name, e, i in (("C", 200, 200), ("g_L", 10, 10), ("V_T", -50, -50),
                       ("tau_w", 500, 500), ("Delta_T", 2.0, 0.5), ("b", 60, 0)):  # fmt: skip
        np.testing.assert_array_equal(getattr(p, name), [e] * 800 + [i] * 200, err_msg=name)


def test_alif_synaptic_currents_decay_with_their_own_tau_and_make_the_lfp():
    """Adaptive LIF, 3 E + 2 I driven by bias, no external input: between arrivals the
    recorded step means of the E and I synaptic currents fall by e^{-dt/tau} a step, tau
    5 ms (AMPA) and 10 ms (GABA_A); the LFP proxy is the mean over the E cells of
    |I_exc| + |I_inh|. Faults caught: the inhibitory blocks given the excitatory kinetics,
    the LFP averaged over the I cells too."""
    cfg = circuits.NetworkConfig(
        n_exc=3, n_inh=2, model="alif", p=0.5, delay_ms=0.5, rate_ext=0.0,
        w_ee=0.2, w_ei=-0.3, w_ie=0.2, w_ii=-0.3,
    )  # fmt: skip
    mon = nw.Monitor(every=1, neurons=tuple(range(5)), variables=("syn_exc", "syn_inh"))
    params = circuits.init_params(jax.random.key(0), cfg)
    params = params._replace(I_bias=jnp.array([1.7, 1.9, 1.6, 1.8, 1.6]))
    rec = nw.simulate(jax.random.key(1), params, cfg.spec, 600, monitor=mon).record
    ge, gi = np.asarray(rec["syn_exc"]), np.asarray(rec["syn_inh"])
    for x, tau in ((ge, 5.0), (-gi, 10.0)):
        r = x[1:] / np.where(x[:-1] > 0, x[:-1], np.nan)
        decay = r[(x[:-1] > 1e-6) & (r <= 1.0)]
        assert decay.size > 500
        np.testing.assert_allclose(decay, np.exp(-0.1 / tau), rtol=1e-5)
    lfp = (np.abs(ge) + np.abs(gi))[:, :3].mean(1)
    assert (gi[:, :3] < 0).any() and (ge[:, 3:] > 0).any()
    np.testing.assert_allclose(rec["lfp"], lfp, rtol=1e-6, atol=1e-9)
