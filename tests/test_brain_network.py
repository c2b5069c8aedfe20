"""Recurrent E/I networks: connectivity, one scan against a NumPy loop, monitors, vmap over
seeds, one compile, STDP inside the scan, gradients against finite differences."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nnjax.brain import adaptive_lif, adex, circuits, plasticity
from nnjax.brain import network as nw
from nnjax.brain import synapses as syn

SMALL = circuits.NetworkConfig(n_exc=8, n_inh=2, p=0.5, delay_ms=0.3, rate_ext=0.0)


def test_fixed_in_degree_and_bernoulli_connectivity():
    key = jax.random.key(3)
    m = np.asarray(circuits.random_mask(key, 200, 200, 0.1, no_self=True))
    assert set(np.unique(m)) == {0.0, 1.0}
    np.testing.assert_array_equal(m.sum(1), 20)  # exactly K = 0.1 * 200 inputs per neuron
    assert np.trace(m) == 0
    again = np.asarray(circuits.random_mask(key, 200, 200, 0.1, no_self=True))
    np.testing.assert_array_equal(m, again)  # seeded
    other = np.asarray(circuits.random_mask(jax.random.key(4), 200, 200, 0.1, no_self=True))
    assert (m != other).any()
    b = np.asarray(circuits.random_mask(key, 400, 300, 0.1, "bernoulli"))
    assert b.mean() == pytest.approx(0.1, abs=0.005)  # 120000 draws: sd 0.0009
    assert b.sum(1).std() > 2  # in-degrees vary (Binomial(300, 0.1): sd 5.2)
    with pytest.raises(ValueError, match="inputs from 5"):
        circuits.random_mask(key, 5, 5, 1.0, no_self=True)
    with pytest.raises(ValueError, match="connectivity must be one of"):
        circuits.random_mask(key, 5, 5, 0.1, "ring")


def test_poisson_counts_by_inverse_transform_have_the_poisson_law():
    u = jax.random.uniform(jax.random.key(0), (200_000,))
    for lam in (0.05, 1.5):
        counts = np.asarray(nw._poisson_inverse(u, jnp.full(u.shape, lam)))
        pmf = np.exp(-lam) * lam ** np.arange(6) / np.cumprod([1, 1, 2, 3, 4, 5])
        freq = np.bincount(counts.astype(int), minlength=6)[:6] / u.size
        assert np.all(np.abs(freq - pmf) <= 4 * np.sqrt(pmf / u.size) + 1e-5), (freq, pmf)
        assert counts.mean() == pytest.approx(lam, rel=0.01)


def _numpy_network(params, spec, mod, n_steps):
    """A plain NumPy loop of the AdEx network's step (network module docstring)."""
    p = jax.tree.map(np.asarray, params.neuron)
    nE, N, dt, d = spec.n_exc, spec.n, spec.dt, spec.delay_steps
    V, w, ref = p.E_L.copy(), np.zeros(N), np.zeros(N)
    x = {k: np.zeros(N if k == "ext" else (nE if k[0] == "e" else N - nE)) for k in nw.BLOCKS}
    history, Vs, S = [], [], []
    exc = np.arange(N) < nE
    for _ in range(n_steps):
        g_e = np.concatenate([x["ee"], x["ie"]])
        g_i = np.concatenate([x["ei"], x["ii"]])
        gK = np.where(exc, mod.g_K, 0.0)
        xx = (g_e + g_i + gK) * dt / p.C
        phi = np.where(xx < 1e-4, 1.0 - xx / 2, -np.expm1(-xx) / np.maximum(xx, 1e-4))
        I = phi * (g_e * (0.0 - V) + g_i * (-80.0 - V) + gK * (params.E_K - V)) + params.I_bias
        ex = np.exp((np.minimum(V, p.V_peak) - p.V_T) / p.Delta_T)
        I = np.where(ref > dt / 2, p.g_L * (V - p.E_L) - p.g_L * p.Delta_T * ex + w, I)
        V1 = V + dt * (-p.g_L * (V - p.E_L) + p.g_L * p.Delta_T * ex - w + I) / p.C
        w1 = w + dt * (p.a * (V - p.E_L) - w) / p.tau_w
        s = (V1 >= p.V_peak).astype(float)
        b = p.b * np.where(exc, mod.b_scale, 1.0)
        V, w = np.where(s > 0, p.V_r, V1), w1 + b * s
        ref = np.where(s > 0, params.t_ref, np.maximum(ref - dt, 0.0))
        history.append(s)
        old = history[-1 - d] if len(history) > d else np.zeros(N)
        for k in nw.BLOCKS:
            pre = old[:nE] if k[1] == "e" else old[nE:]
            tau = 5.0 if k[1] == "e" else 10.0
            W = np.asarray(getattr(params, "W_" + k))
            x[k] = x[k] * np.exp(-dt / tau) + W @ (pre * getattr(mod, "gain_" + k))
        Vs.append(V)
        S.append(s)
    return np.array(Vs), np.array(S)


def test_adex_network_equals_a_numpy_loop():
    with jax.enable_x64(True):
        params = circuits.init_params(jax.random.key(0), SMALL)
        bias = jnp.linspace(0.0, 300.0, SMALL.n_exc + SMALL.n_inh)  # from rest to 3x rheobase
        params = params._replace(I_bias=bias, t_ref=1.0)
        mod = nw.Modulation(g_K=1.5, b_scale=0.5, gain_ee=1.3, gain_ei=0.8, gain_ii=1.2)
        mon = nw.Monitor(every=1, neurons=tuple(range(10)), variables=("V",))
        run = nw.simulate(jax.random.key(1), params, SMALL.spec, 3000, modulation=mod, monitor=mon)
        V, S = _numpy_network(jax.tree.map(np.asarray, params), SMALL.spec, mod, 3000)
    spikes = np.asarray(run.record["spikes"])
    counts = spikes.sum(0)
    assert counts.sum() > 20 and counts.min() < counts.max() / 2  # many spikes, unequally
    np.testing.assert_array_equal(spikes, S)
    np.testing.assert_allclose(run.record["V"], V, rtol=0, atol=1e-9)


def test_monitors_agree_with_each_other_and_the_rates():
    cfg = circuits.NetworkConfig(n_exc=40, n_inh=10, p=0.2, rate_ext=3000.0, w_ext=2.0)
    params = circuits.init_params(jax.random.key(0), cfg)
    key = jax.random.key(7)
    fine = nw.simulate(key, params, cfg.spec, 400, monitor=nw.Monitor(every=1))
    coarse = nw.simulate(
        key,
        params,
        cfg.spec,
        400,
        monitor=nw.Monitor(every=10, neurons=(0, 45), variables=("V", "w", "syn_exc")),
    )
    ids = nw.simulate(
        key, params, cfg.spec, 400, monitor=nw.Monitor(spikes="indices", max_spikes=8)
    )
    raster = np.asarray(fine.record["spikes"])
    assert raster.sum() > 50
    np.testing.assert_array_equal(coarse.record["spikes"], raster.reshape(40, 10, 50).sum(1))
    rate = raster.reshape(40, 10, 50).sum(1)[:, :40].sum(1) / 40 / 1e-3  # Hz in 1 ms bins
    np.testing.assert_allclose(coarse.record["rate"][:, 0], rate, rtol=1e-5)
    np.testing.assert_allclose(
        coarse.record["lfp"], np.asarray(fine.record["lfp"]).reshape(40, 10).mean(1), rtol=1e-5
    )
    got = np.asarray(ids.record["spike_ids"])
    for t in range(400):
        fired = np.flatnonzero(raster[t])
        np.testing.assert_array_equal(got[t, : min(8, fired.size)], fired[:8])
        assert int(ids.record["spike_overflow"][t]) == max(fired.size - 8, 0)
    assert coarse.record["V"].shape == (40, 2) and coarse.record["syn_exc"].shape == (40, 2)


def test_vmaps_over_seeds_in_one_compile():
    cfg = circuits.NetworkConfig(n_exc=40, n_inh=10, p=0.2, rate_ext=3000.0)
    mon = nw.Monitor(every=10, spikes=None)

    def one(key):
        params = circuits.init_params(key, cfg)
        return nw.simulate(key, params, cfg.spec, 200, monitor=mon).record["rate"]

    keys = jax.random.split(jax.random.key(0), 3)
    batched = jax.jit(jax.vmap(one))(keys)
    for i in range(3):
        np.testing.assert_allclose(batched[i], one(keys[i]), rtol=1e-5, atol=1e-4)
    assert not np.allclose(batched[0], batched[1])
    # new parameter values reuse the compiled scan
    params = circuits.init_params(keys[0], cfg)
    before = nw._simulate._cache_size()
    for scale in (1.0, 1.5, 2.0):
        nw.simulate(keys[0], params._replace(W_ee=params.W_ee * scale), cfg.spec, 200, monitor=mon)
    assert nw._simulate._cache_size() <= before + 1


def test_stdp_inside_the_scan_learns_a_driven_order_and_keeps_absent_synapses():
    """Two E groups driven 10 ms apart, again and again: pair STDP strengthens A -> B and
    weakens B -> A; synapses that do not exist stay 0."""
    cfg = circuits.NetworkConfig(n_exc=40, n_inh=10, p=0.5, rate_ext=0.0, w_ee=1.0)
    params = circuits.init_params(jax.random.key(1), cfg)
    A, B = np.arange(0, 10), np.arange(10, 20)
    P = np.zeros((50, 2), np.float32)
    P[A, 0] = P[B, 1] = 1.0
    period, T = 500, 10_000  # 50 ms apart, 1 s
    t = np.arange(T) % period
    stim = np.stack([(t < 50), (t >= 100) & (t < 150)], 1).astype(np.float32) * 20000.0
    params = params._replace(stim_pattern=jnp.asarray(P), w_ext=3.0)
    stdp = plasticity.PairSTDPParams(a_plus=0.02, a_minus=0.021, w_max=3.0)
    run = nw.simulate(jax.random.key(2), params, cfg.spec, T, stimulus=stim, stdp=stdp)
    W0, W1 = np.asarray(params.W_ee), np.asarray(run.W_ee)
    mask = np.asarray(params.mask_ee) > 0
    assert (W1[~mask] == 0).all()
    fwd = (W1 - W0)[np.ix_(B, A)][mask[np.ix_(B, A)]].mean()
    bwd = (W1 - W0)[np.ix_(A, B)][mask[np.ix_(A, B)]].mean()
    assert fwd > 0.05 and bwd < 0  # A fires 10 ms before B: A -> B potentiates


def _alif_net(scale, R_e, tau_syn, T=1500):
    cfg = circuits.NetworkConfig(
        n_exc=4, n_inh=2, model="alif", p=0.5, delay_ms=1.0, w_ee=0.6, w_ie=0.6, w_ei=-0.8,
        w_ii=-0.5, rate_ext=0.0,
    )  # fmt: skip
    params = circuits.init_params(jax.random.key(5), cfg)
    neuron = params.neuron._replace(R=params.neuron.R.at[:4].set(R_e))
    q = syn.SynapseParams(tau=tau_syn)
    params = params._replace(
        neuron=neuron, W_ee=params.W_ee * scale, exc_syn=q, inh_syn=q,
        I_bias=jnp.array([2.2, 2.0, 1.9, 1.95, 2.1, 2.0]),
    )  # fmt: skip
    mon = nw.Monitor(every=1, spikes=None, rate=False, lfp=False, neurons=tuple(range(6)),
                     variables=("spike", "t_spike"))  # fmt: skip
    rec = nw.simulate(jax.random.key(0), params, cfg.spec, T, monitor=mon).record
    trace = adaptive_lif.ALIFState(None, None, None, rec["spike"], rec["t_spike"])
    return adaptive_lif.spike_time_array(trace, cfg.dt, 3)


def test_gradients_through_an_alif_network_match_finite_differences():
    """Adaptive LIF cells with timed synapses: spike times are piecewise smooth in the
    parameters, so jax.grad through the whole network scan equals finite differences."""
    with jax.enable_x64(True):
        net = jax.jit(_alif_net)  # one compile for the values, one for the gradient
        times, valid = net(1.0, 10.0, 5.0)
        assert bool(valid.all())  # every neuron fires 3 times within 150 ms
        f = lambda s, R, tau: jnp.sum(net(s, R, tau)[0])
        g = jax.grad(f, argnums=(0, 1, 2))(1.0, 10.0, 5.0)
        # narrow central differences (no spike crosses a step boundary): to 1e-4; wide ones
        # (R +-0.05 moves spikes by ~0.1 ms, across step boundaries, where the slope has
        # kinks): within 5 %
        for h, rel in ((1e-5, 1e-4), (0.05, 0.05)):
            for i in range(3):
                x = [1.0, 10.0, 5.0]
                x[i] += h
                up = f(*x)
                x[i] -= 2 * h
                fd = (up - f(*x)) / (2 * h)
                assert float(g[i]) == pytest.approx(float(fd), rel=rel), (h, i, g, fd)
        assert float(g[1]) < 0  # a larger input resistance: earlier spikes


def test_network_errors():
    cfg = SMALL
    params = circuits.init_params(jax.random.key(0), cfg)
    spec = cfg.spec
    with pytest.raises(ValueError, match="model must be one of"):
        nw.simulate(jax.random.key(0), params, spec._replace(model="hh"), 10)
    with pytest.raises(ValueError, match="n_exc must be an int >= 1"):
        nw.check_spec(spec._replace(n_exc=0))
    with pytest.raises(ValueError, match="delay_ms"):
        nw.check_spec(spec._replace(model="alif", delay_ms=0.0))
    with pytest.raises(ValueError, match="W_ei: W must be"):
        nw.simulate(jax.random.key(0), params._replace(W_ei=jnp.ones((3, 3))), spec, 10)
    with pytest.raises(ValueError, match="every must be a positive int dividing"):
        nw.simulate(jax.random.key(0), params, spec, 10, monitor=nw.Monitor(every=3))
    with pytest.raises(ValueError, match="unknown Monitor.variables"):
        nw.simulate(jax.random.key(0), params, spec, 10, monitor=nw.Monitor(variables=("u",)))
    with pytest.raises(ValueError, match="Monitor.neurons"):
        nw.simulate(jax.random.key(0), params, spec, 10, monitor=nw.Monitor(neurons=(10,)))
    with pytest.raises(ValueError, match="modulation.gain_ee"):
        nw.simulate(
            jax.random.key(0), params, spec, 10, modulation=nw.Modulation(gain_ee=jnp.ones(3))
        )
    with pytest.raises(ValueError, match="stimulus must be"):
        nw.simulate(jax.random.key(0), params, spec, 10, stimulus=np.ones((10, 2)))
    with pytest.raises(ValueError, match="mask_ee"):
        nw.simulate(
            jax.random.key(0),
            params._replace(mask_ee=None),
            spec,
            10,
            stdp=plasticity.PairSTDPParams(),
        )
    with pytest.raises(ValueError, match="n_steps"):
        nw.simulate(jax.random.key(0), params, spec, 0)
    assert isinstance(params.neuron, adex.AdExParams) and params.neuron.C.shape == (10,)
