"""The spiking-network workload: a 1000-neuron E/I AdEx network, nnjax against Brian2.

nnjax: :mod:`nnjax.brain.network` with the wake state of :mod:`nnjax.brain.sleep_states`
(the asynchronous irregular regime), dt = 0.1 ms, recording the population rate in 1 ms
bins; one jitted scan, compile time apart, the median of a few runs.

Brian2 (numpy runtime, if it is installed): the same equations written in Brian2's language
— AdEx with the network's refractory clamp (CORTEX's t_ref, 5 ms), conductance synapses with
the same weights, delay and time constants, the same fixed in-degree connectivity (the very
same pairs), the external Poisson input as ``PoissonInput`` (binomial per step, equal mean
rate) — with ``method="euler"`` at the same dt. Differences: Brian2 decays the conductances
by (1 - dt/tau) per Euler step where nnjax takes the exact e^{-dt/tau}, and draws its own
random numbers. Timed: ``run()`` after a short warm-up run has generated the code, so code
generation is excluded as compile time is on the JAX side. The mean rates of the two are
reported next to the times as a check that they simulate the same network.
"""

import time

import numpy as np

from benchmarks.harness import stats


def _nnjax_setup(n_steps: int, seed: int = 0):
    import jax

    from nnjax.brain import circuits, network, sleep_states

    cfg = circuits.CORTEX
    params = circuits.init_params(jax.random.key(seed), cfg)
    mod = sleep_states.modulation(sleep_states.STATES["wake"])
    monitor = network.Monitor(every=10, spikes=None, lfp=False)

    def go():
        run = network.simulate(
            jax.random.key(seed + 1), params, cfg.spec, n_steps, modulation=mod, monitor=monitor
        )
        return jax.block_until_ready(run.record["rate"])

    return cfg, params, go


def bench_nnjax(seconds: float, repeats: int) -> dict:
    """Wall time to simulate ``seconds`` of biological time, compile apart."""
    cfg, _, go = _nnjax_setup(int(round(seconds * 1000 / 0.1)))
    t0 = time.perf_counter()
    rate = go()
    first = time.perf_counter() - t0
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        rate = go()
        times.append(time.perf_counter() - t0)
    t = stats(times)
    r = np.asarray(rate)
    return {
        "time": t,
        "compile_s": max(first - t["median"], 0.0),
        "rate_exc_hz": float(r[:, 0].mean()),
        "rate_inh_hz": float(r[:, 1].mean()),
        "n": cfg.n_exc + cfg.n_inh,
    }


def brian2_network(seconds: float, seed: int = 0):
    """The nnjax CORTEX network (wake state) in Brian2's numpy runtime; returns (net, monitors)."""
    import brian2 as b2
    import jax

    from nnjax.brain import circuits, sleep_states

    b2.prefs.codegen.target = "numpy"
    b2.defaultclock.dt = 0.1 * b2.ms
    cfg = circuits.CORTEX
    params = circuits.init_params(jax.random.key(seed), cfg)
    mod = sleep_states.modulation(sleep_states.STATES["wake"])
    neurons = _brian2_group(b2, cfg, params, mod)
    synapses = _brian2_synapses(b2, cfg, params, mod, neurons)
    drive = b2.PoissonInput(
        neurons, "g_x", N=100, rate=float(params.rate_ext) * float(mod.ext_scale) / 100 * b2.Hz,
        weight=float(params.w_ext) * b2.nS,
    )  # fmt: skip
    spikes = b2.SpikeMonitor(neurons)
    net = b2.Network(neurons, *synapses, drive, spikes)
    return net, spikes, cfg


def _brian2_group(b2, cfg, params, mod):
    p = params.neuron
    eqs = """
    dv/dt = (-g_L*(v - E_L) + g_L*Delta_T*exp((clip(v, -inf*mV, V_peak) - V_T)/Delta_T) - w
             + phi*(g_e*(E_e - v) + g_i*(E_i - v) + g_K*(E_K - v)))/C : volt (unless refractory)
    dw/dt = (a*(v - E_L) - w)/tau_w : amp
    dg_e/dt = -g_e/tau_e : siemens
    dg_x/dt = -g_x/tau_e : siemens
    dg_i/dt = -g_i/tau_i : siemens
    x = (g_e + g_x + g_i + g_K)*dt/C : 1
    phi = (1 - exp(-x - 1e-12))/(x + 1e-12) : 1
    g_eff = g_e + g_x : siemens
    C : farad (constant)
    g_L : siemens (constant)
    E_L : volt (constant)
    V_T : volt (constant)
    Delta_T : volt (constant)
    a : siemens (constant)
    tau_w : second (constant)
    b : amp (constant)
    V_r : volt (constant)
    V_peak : volt (constant)
    g_K : siemens (constant)
    """
    eqs = eqs.replace("g_e*(E_e - v)", "(g_e + g_x)*(E_e - v)")
    ns = {
        "E_e": float(params.exc_syn.E_rev) * b2.mV,
        "E_i": float(params.inh_syn.E_rev) * b2.mV,
        "E_K": float(params.E_K) * b2.mV,
        "tau_e": float(params.exc_syn.tau) * b2.ms,
        "tau_i": float(params.inh_syn.tau) * b2.ms,
    }
    G = b2.NeuronGroup(
        cfg.n_exc + cfg.n_inh, eqs, threshold="v >= V_peak", reset="v = V_r; w += b",
        refractory=float(params.t_ref) * b2.ms, method="euler", namespace=ns,
    )  # fmt: skip
    exc = np.arange(cfg.n_exc + cfg.n_inh) < cfg.n_exc
    units = dict(C=b2.pF, g_L=b2.nS, E_L=b2.mV, V_T=b2.mV, Delta_T=b2.mV, a=b2.nS,
                 tau_w=b2.ms, b=b2.pA, V_r=b2.mV, V_peak=b2.mV)  # fmt: skip
    for name, unit in units.items():
        value = np.asarray(getattr(p, name), dtype=np.float64)
        if name == "b":
            value = value * np.where(exc, float(mod.b_scale), 1.0)
        setattr(G, name, value * unit)
    G.g_K = np.where(exc, float(mod.g_K), 0.0) * b2.nS
    G.v = np.asarray(p.E_L, dtype=np.float64) * b2.mV
    return G


def _brian2_synapses(b2, cfg, params, mod, G):
    nE = cfg.n_exc
    pops = {"e": G[:nE], "i": G[nE:]}
    out = []
    for name in ("ee", "ei", "ie", "ii"):
        W = np.asarray(getattr(params, "W_" + name), dtype=np.float64)
        post, pre = np.nonzero(W)
        target = "g_e" if name[1] == "e" else "g_i"
        S = b2.Synapses(pops[name[1]], pops[name[0]], "w_syn : siemens",
                        on_pre=f"{target}_post += w_syn",
                        delay=cfg.delay_ms * b2.ms)  # fmt: skip
        S.connect(i=pre, j=post)
        S.w_syn = W[post, pre] * float(getattr(mod, "gain_" + name)) * b2.nS
        out.append(S)
    return out


def brian2_unavailable() -> str | None:
    """Why Brian2 cannot run here (not installed, or failing to import: Brian2 2.9 calls
    ``np.ndarray.ptp``, which NumPy 2 removed), or None when it imports."""
    try:
        import brian2  # noqa: F401
    except Exception as e:  # ImportError, or AttributeError from an old Brian2 on NumPy 2
        return f"{type(e).__name__}: {e}"
    return None


def bench_brian2(seconds: float, repeats: int) -> dict | None:
    """Brian2's wall time for the same network, or None if Brian2 does not import."""
    if brian2_unavailable() is not None:
        return None
    import brian2 as b2

    times, rates = [], []
    for _ in range(repeats):
        net, spikes, cfg = brian2_network(seconds, seed=0)
        net.run(10 * b2.ms)  # generates and compiles the code
        n0 = spikes.num_spikes
        t0 = time.perf_counter()
        net.run(seconds * b2.second)
        times.append(time.perf_counter() - t0)
        i = np.asarray(spikes.i[n0:])
        n_e = np.sum(i < cfg.n_exc)
        rates.append([n_e / cfg.n_exc / seconds, (i.size - n_e) / cfg.n_inh / seconds])
    rates = np.mean(rates, axis=0)
    return {"time": stats(times), "rate_exc_hz": float(rates[0]), "rate_inh_hz": float(rates[1]),
            "version": b2.__version__}  # fmt: skip


def bench_network(quick: bool) -> dict:
    """The workload: quick simulates 1 s once (and Brian2 0.2 s); full 10 s, median of 3."""
    seconds, repeats = (1.0, 1) if quick else (10.0, 3)
    out = {"bio_seconds": seconds, "dt_ms": 0.1, "nnjax": bench_nnjax(seconds, repeats)}
    b_seconds = 0.2 if quick else seconds
    out["brian2"] = bench_brian2(b_seconds, 1)
    if out["brian2"] is None:
        out["brian2_unavailable"] = brian2_unavailable()
    out["brian2_bio_seconds"] = b_seconds
    nn = out["nnjax"]["time"]["median"] / seconds
    if out["brian2"] is not None:
        out["speedup_vs_brian2"] = (out["brian2"]["time"]["median"] / b_seconds) / nn
    out["wall_per_bio_second"] = nn
    return out
