"""Recurrent networks of excitatory and inhibitory spiking neurons, simulated in one scan.

Units: ms, mV, pF, nS, pA, Hz for AdEx networks (:mod:`~nnjax.brain.adex`, conductance-based
synapses); an adaptive-LIF network (:mod:`~nnjax.brain.adaptive_lif`, current-based timed
synapses) takes its currents and current weights in nA instead.

Neurons 0..n_exc-1 are excitatory (E), n_exc..N-1 inhibitory (I). The weights are four
blocks W_xy (n_post, n_pre) onto population x from population y: W_ee (nE, nE), W_ei
(nE, nI), W_ie (nI, nE), W_ii (nI, nI), dense arrays with zeros where there is no synapse
(at N = 1000 and p = 0.1 a dense matrix-vector product per step is cheaper on a CPU than a
gather; ``benchmarks/network.py`` measures it). Each block is a
:class:`~nnjax.brain.synapses.Projection` (AdEx) or
:class:`~nnjax.brain.synapses.TimedProjection` (adaptive LIF) with one axonal delay.

One step of an AdEx network, with g_x the conductances at the step's start:

    I_i = g_exc,i (E_exc - V_i) + g_inh,i (E_inh - V_i) + g_ext,i (E_exc - V_i)
          + g_K [i in E] (E_K - V_i) + I_bias,i + (P u_t)_i
    neurons step (adex.step) with b_i scaled by b_scale on E cells;
    spikes s (x gain of their block) enter the delay lines, the delayed ones the synapses;
    g_ext += w_ext Poisson(rate_ext,i ext_scale dt / 1000)

with g_exc = [x_ee, x_ie], g_inh = [x_ei, x_ii] and the stimulus u_t (k,) injected as a
current through the pattern P (N, k) (pA per unit). The conductance currents are multiplied by
phi = (1 - e^{-x}) / x,
x = (g_exc + g_inh + g_ext + g_K) dt / C: the exact relaxation towards their reversal
potentials within a step (1 - x/2 + ... for small x), where forward Euler would overshoot in
a high-conductance volley and go unstable for x > 2. A cell that spiked is clamped at V_r
for t_ref ms (its w keeps evolving). External Poisson counts are drawn by inverse transform
from one uniform per neuron and step (fold_in(key, t)), truncated at POISSON_MAX = 8 per step:
P(X > 8) is 1e-6 at a mean of 1 per step and 2.4e-4 at 2 (a 20 kHz drive at dt = 0.1 ms).
``Modulation`` holds the per-step levels (g_K, b_scale, the four
gains, ext_scale) that :mod:`~nnjax.brain.sleep_states` turns into wake, NREM and REM;
neutral values leave the network as built. A gain multiplies the presynaptic spike when it
is released (a change of release probability, the way acetylcholine acts on intracortical
terminals). The LFP proxy is the mean over E cells of |I_exc| + |I_inh| (pA; Mazzoni et al.
2008 sum the absolute synaptic currents onto pyramidal cells).

Parameters (:class:`NetworkParams`) are a pytree: jax.grad reaches weights, synapse and
neuron parameters; the network's shape (:class:`NetworkSpec`) and what is recorded
(:class:`Monitor`) are static. :func:`simulate` is jitted once per shape and vmaps over keys
and parameters (e.g. seeds: ``jax.vmap(lambda k: simulate(k, init_params(k, cfg), ...))``).
"""

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from nnjax.brain import adaptive_lif, adex, dynamics, plasticity
from nnjax.brain import synapses as syn
from nnjax.brain.monitors import (  # noqa: F401 (Monitor and its checks are part of this API)
    SPIKE_MONITORS,
    Monitor,
    _bin_record,
    _sample,
    bin_times,
    check_monitor,
)

Array = jax.Array

MODELS = ("adex", "alif")
BLOCKS = ("ee", "ei", "ie", "ii")


class NetworkSpec(NamedTuple):
    """The static shape of a network: population sizes, neuron model, dt and delay (ms)."""

    n_exc: int = 800
    n_inh: int = 200
    model: str = "adex"
    dt: float = 0.1
    delay_ms: float = 1.5

    @property
    def n(self) -> int:
        return self.n_exc + self.n_inh

    @property
    def delay_steps(self) -> int:
        return int(round(self.delay_ms / self.dt))


class NetworkParams(NamedTuple):
    """Traced parameters. neuron: AdExParams/ALIFParams with (N,) fields (E then I);
    W_ee, W_ei, W_ie, W_ii: weight blocks (n_post, n_pre), nS (AdEx) or nA (ALIF, inhibitory
    blocks negative); exc_syn, inh_syn: SynapseParams; w_ext: weight of one external spike;
    rate_ext: external Poisson rate per neuron (Hz, scalar or (N,)); I_bias: constant current
    (N,) or scalar; E_K (mV) of the modulated K+ leak; stim_pattern: (N, k) current per
    stimulus unit (pA, or nA), or None; mask_ee: 1 where an E->E synapse exists (plasticity
    keeps the others 0);
    t_ref: refractory period (ms) of AdEx cells (adaptive LIF has its own, neuron.t_ref)."""

    neuron: Any
    W_ee: Array
    W_ei: Array
    W_ie: Array
    W_ii: Array
    exc_syn: syn.SynapseParams = syn.AMPA
    inh_syn: syn.SynapseParams = syn.GABA_A
    w_ext: Any = 0.0
    rate_ext: Any = 0.0
    I_bias: Any = 0.0
    E_K: Any = -90.0
    stim_pattern: Any = None
    mask_ee: Any = None
    t_ref: Any = 0.0


class Modulation(NamedTuple):
    """Per-step levels (each a scalar or a (T,) series): g_K, an extra K+ leak onto E cells
    (nS); b_scale, a factor on the E cells' adaptation increment b; gain_ee, gain_ei,
    gain_ie, gain_ii, factors on the release of each block; ext_scale on the external rate.
    The defaults are neutral."""

    g_K: Any = 0.0
    b_scale: Any = 1.0
    gain_ee: Any = 1.0
    gain_ei: Any = 1.0
    gain_ie: Any = 1.0
    gain_ii: Any = 1.0
    ext_scale: Any = 1.0


class NetworkState(NamedTuple):
    """neurons: the model's state (N,); blocks: one (Timed)Projection per block, in the
    order of :data:`BLOCKS`; ext: the external synapse (N,); ref: refractory time left (ms,
    AdEx); t: the step count (int32)."""

    neurons: Any
    blocks: tuple
    ext: syn.SynapseState
    ref: Array
    t: Array


def _model(spec: NetworkSpec):
    if spec.model not in MODELS:
        raise ValueError(f"network: model must be one of {MODELS}, got {spec.model!r}")
    return adex if spec.model == "adex" else adaptive_lif


def _block_shapes(spec: NetworkSpec):
    nE, nI = spec.n_exc, spec.n_inh
    return {"ee": (nE, nE), "ei": (nE, nI), "ie": (nI, nE), "ii": (nI, nI)}


def init_state(params: NetworkParams, spec: NetworkSpec, *, dtype=None) -> NetworkState:
    """Every neuron at rest (V = E_L), no spike in flight, all conductances 0."""
    spec = check_spec(spec)
    dtype = jnp.result_type(float) if dtype is None else dtype
    neurons = _model(spec).init_state((spec.n,), params.neuron, dtype=dtype)
    blocks = []
    for name, (n_post, n_pre) in _block_shapes(spec).items():
        p = params.exc_syn if name[1] == "e" else params.inh_syn
        if spec.model == "adex":
            blocks.append(syn.projection_init(n_pre, n_post, spec.delay_steps, p, dtype))
        else:
            blocks.append(syn.timed_projection_init(n_pre, n_post, spec.delay_steps, p, dtype))
    ext = syn.init_state((spec.n,), params.exc_syn, dtype=dtype)
    ref = jnp.zeros((spec.n,), dtype)
    return NetworkState(neurons, tuple(blocks), ext, ref, jnp.zeros((), jnp.int32))


def check_spec(spec: NetworkSpec) -> NetworkSpec:
    """ValueError for a network shape that cannot be simulated (a model not in MODELS, fewer
    than 1 E or 1 I cell, a bad dt or delay); returns the spec with Python ints for the
    sizes (NumPy ints are accepted)."""
    _model(spec)
    n_exc = dynamics.check_count(spec.n_exc, "n_exc", "network")
    n_inh = dynamics.check_count(spec.n_inh, "n_inh", "network")
    dynamics.check_dt(spec.dt, "network")
    low = 1 if spec.model == "alif" else 0
    if not spec.delay_ms >= 0 or spec.delay_steps < low:
        raise ValueError(
            f"network: delay_ms must give >= {low} step(s) of dt={spec.dt} for {spec.model!r}, "
            f"got {spec.delay_ms}"
        )
    return spec._replace(n_exc=n_exc, n_inh=n_inh)


def _check_per_neuron(value, name: str, n: int) -> None:
    """A ValueError unless ``value`` is a scalar (or (1,)) or (n,): one value per neuron."""
    shape = jnp.shape(value)
    if shape not in ((), (1,), (n,)):
        raise ValueError(f"network: {name} must be a scalar or (N={n},), got shape {shape}")


def _check_neuron_params(params: NetworkParams, spec: NetworkSpec) -> None:
    """The neuron parameters are the model's NamedTuple; they and the other per-neuron
    parameters are scalars or (N,); the synapse parameters are scalars."""
    kind = adex.AdExParams if spec.model == "adex" else adaptive_lif.ALIFParams
    if not isinstance(params.neuron, kind):
        raise ValueError(
            f"network: params.neuron must be {kind.__name__} for model {spec.model!r}, got "
            f"{type(params.neuron).__name__}"
        )
    for field, v in zip(kind._fields, params.neuron):
        _check_per_neuron(v, f"neuron.{field}", spec.n)
    for name in ("w_ext", "rate_ext", "I_bias", "E_K", "t_ref"):
        _check_per_neuron(getattr(params, name), name, spec.n)
    for name in ("exc_syn", "inh_syn"):
        for field, v in zip(syn.SynapseParams._fields, getattr(params, name)):
            if jnp.size(v) != 1:
                raise ValueError(
                    f"network: {name}.{field} must be a scalar (one synapse type per block), "
                    f"got shape {jnp.shape(v)}"
                )


def check_params(params: NetworkParams, spec: NetworkSpec):
    """ValueError naming the first weight block, pattern, mask or per-neuron parameter of the
    wrong shape, or neuron parameters of another model. Shapes are static: runs under vmap."""
    for name, shape in _block_shapes(spec).items():
        syn.check_weights(getattr(params, "W_" + name), shape[1], shape[0], f"network W_{name}")
    P = params.stim_pattern
    if P is not None and (jnp.ndim(P) != 2 or jnp.shape(P)[0] != spec.n):
        raise ValueError(f"network: stim_pattern must be (N={spec.n}, k), got {jnp.shape(P)}")
    M = params.mask_ee
    if M is not None and jnp.shape(M) != (spec.n_exc, spec.n_exc):
        raise ValueError(
            f"network: mask_ee must be W_ee's shape ({spec.n_exc}, {spec.n_exc}), got "
            f"{jnp.shape(M)}"
        )
    _check_neuron_params(params, spec)


def check_state(state: NetworkState, params: NetworkParams, spec: NetworkSpec):
    """ValueError unless ``state`` has the structure and shapes of init_state(params, spec):
    a state from a network of other sizes, model or delay is named, not broadcast."""
    want = jax.eval_shape(lambda p: init_state(p, spec), params)
    fields, tree = jax.tree_util.tree_flatten_with_path(want)
    leaves = jax.tree.leaves(state)
    bad = "its structure differs" if jax.tree.structure(state) != tree else None
    for (path, w), a in zip(fields, leaves if bad is None else []):
        if jnp.shape(a) != w.shape:
            bad = f"its {jax.tree_util.keystr(path)} has shape {jnp.shape(a)}, not {w.shape}"
            break
    if bad is not None:
        raise ValueError(
            f"network: state must come from this network ({spec.n_exc} E + {spec.n_inh} I "
            f"{spec.model!r} cells, delay {spec.delay_steps} steps: init_state(params, spec) or "
            f"a run of it); {bad}"
        )


def _exc_mask(spec: NetworkSpec, dtype) -> Array:
    return (jnp.arange(spec.n) < spec.n_exc).astype(dtype)


def _stimulus(params: NetworkParams, stim: Array) -> Array:
    """The stimulus current of this step, P u_t (N,) (pA, or nA for adaptive LIF)."""
    if params.stim_pattern is None:
        return jnp.zeros((), stim.dtype)
    return params.stim_pattern @ stim


def _poisson_drive(key, state, params, mod, spec):
    """External Poisson spikes of this step, as the jump of g_ext (N,)."""
    rate = params.rate_ext * mod.ext_scale
    lam = jnp.broadcast_to(rate * (spec.dt / 1000.0), (spec.n,))
    u = jax.random.uniform(jax.random.fold_in(key, state.t), lam.shape, lam.dtype)
    return params.w_ext * _poisson_inverse(u, lam)


POISSON_MAX = 8
"""External spikes per neuron and step are drawn up to this count (module docstring)."""


def _poisson_inverse(u: Array, lam: Array) -> Array:
    """Poisson(lam) counts from uniforms u by inverse transform, truncated at POISSON_MAX:
    the number of k < POISSON_MAX with u > F(k), F the Poisson CDF."""
    p = jnp.exp(-lam)
    cdf, count = p, jnp.zeros_like(lam)
    for k in range(1, POISSON_MAX + 1):
        count = count + (u > cdf)
        p = p * lam / k
        cdf = cdf + p
    return count


def _split(spike: Array, spec: NetworkSpec):
    return spike[: spec.n_exc], spike[spec.n_exc :]


def _block_parts(name: str, params: NetworkParams, mod: Modulation):
    """(W, synapse params, gain) of one block."""
    p = params.exc_syn if name[1] == "e" else params.inh_syn
    return getattr(params, "W_" + name), p, getattr(mod, "gain_" + name)


def _neuron_params(params: NetworkParams, mod: Modulation, exc: Array):
    """The neuron parameters of this step: b of E cells scaled by b_scale."""
    scale = 1.0 + exc * (mod.b_scale - 1.0)
    return params.neuron._replace(b=params.neuron.b * scale)


def _adex_step(state: NetworkState, params, spec, mod, stim, key):
    """One step of an AdEx network (module docstring); returns (state, lfp, g_exc, g_inh)."""
    exc = _exc_mask(spec, state.ext.x.dtype)
    ee, ei, ie, ii = state.blocks
    V = state.neurons.V
    g_exc = jnp.concatenate([ee.syn.x, ie.syn.x])
    g_inh = jnp.concatenate([ei.syn.x, ii.syn.x])
    g_K = exc * mod.g_K
    phi = _stable_factor(g_exc + state.ext.x + g_inh + g_K, params.neuron.C, spec.dt)
    I_exc = phi * (g_exc + state.ext.x) * (params.exc_syn.E_rev - V)
    I_inh = phi * g_inh * (params.inh_syn.E_rev - V)
    I = I_exc + I_inh + phi * g_K * (params.E_K - V) + params.I_bias + _stimulus(params, stim)
    p = _neuron_params(params, mod, exc)
    refractory = state.ref > 0.5 * spec.dt
    neurons = adex.step(
        state.neurons, jnp.where(refractory, _clamp(state.neurons, p), I), p, spec.dt
    )
    ref = jnp.where(neurons.spike > 0, params.t_ref, jnp.maximum(state.ref - spec.dt, 0.0))
    s_e, s_i = _split(neurons.spike, spec)
    blocks = []
    for name, block in zip(BLOCKS, state.blocks):
        W, p, gain = _block_parts(name, params, mod)
        pre = s_e if name[1] == "e" else s_i
        blocks.append(syn.projection_step(block, pre * gain, W, spec.delay_steps, p, spec.dt))
    jump = _poisson_drive(key, state, params, mod, spec)
    ext = syn.step(state.ext, jump, params.exc_syn, spec.dt)
    lfp = jnp.mean((jnp.abs(I_exc) + jnp.abs(I_inh))[: spec.n_exc])
    return NetworkState(neurons, tuple(blocks), ext, ref, state.t + 1), lfp, g_exc, g_inh


def _stable_factor(g, C, dt):
    """phi(x) = (1 - e^{-x}) / x at x = g dt / C: the conductance currents times phi move V
    by the exact exponential relaxation towards their reversal potentials within the step,
    where plain Euler would overshoot (and go unstable for g dt / C > 2)."""
    x = g * dt / C
    small = x < 1e-4
    xs = jnp.where(small, 1.0, x)
    return jnp.where(small, 1.0 - 0.5 * x, -jnp.expm1(-xs) / xs)


def _clamp(neurons, p):
    """The current that holds V where it is (dV/dt = 0): a refractory cell stays at V_r."""
    x = jnp.minimum((jnp.minimum(neurons.V, p.V_peak) - p.V_T) / p.Delta_T, adex.EXP_CAP)
    return p.g_L * (neurons.V - p.E_L) - p.g_L * p.Delta_T * jnp.exp(x) + neurons.w


def _alif_step(state: NetworkState, params, spec, mod, stim, key):
    """One step of an adaptive-LIF network with timed current synapses (nA)."""
    exc = _exc_mask(spec, state.ext.x.dtype)
    dt, d = spec.dt, spec.delay_steps
    arrivals = []
    for name, block in zip(BLOCKS, state.blocks):
        W, p, _ = _block_parts(name, params, mod)
        arrivals.append(syn.timed_projection_input(block, W, d, p, dt))
    (m_ee, j_ee), (m_ei, j_ei), (m_ie, j_ie), (m_ii, j_ii) = arrivals
    I_exc, I_inh = jnp.concatenate([m_ee, m_ie]), jnp.concatenate([m_ei, m_ii])
    tau = params.exc_syn.tau
    I_ext = state.ext.x * tau * (1.0 - jnp.exp(-dt / tau)) / dt  # x's mean over the step
    V = state.neurons.V
    I = I_exc + I_inh + I_ext + exc * mod.g_K * (params.E_K - V) / 1000.0 + params.I_bias
    I = I + _stimulus(params, stim)
    neurons = adaptive_lif.step(state.neurons, I, _neuron_params(params, mod, exc), dt)
    s_e, s_i = _split(neurons.spike, spec)
    t_e, t_i = _split(neurons.t_spike, spec)
    blocks = []
    for name, block, (_, jump) in zip(BLOCKS, state.blocks, arrivals):
        _, p, gain = _block_parts(name, params, mod)
        pre, t_pre = (s_e, t_e) if name[1] == "e" else (s_i, t_i)
        blocks.append(syn.timed_projection_update(block, jump, pre * gain, t_pre, p, dt))
    ext = syn.step(state.ext, _poisson_drive(key, state, params, mod, spec), params.exc_syn, dt)
    lfp = jnp.mean((jnp.abs(I_exc) + jnp.abs(I_inh))[: spec.n_exc])
    state = NetworkState(neurons, tuple(blocks), ext, state.ref, state.t + 1)
    return state, lfp, I_exc, I_inh


class Run(NamedTuple):
    """What :func:`simulate` returns: the final state (to continue from), the recording (a
    dict of arrays, one row per bin; see :class:`Monitor`) and the plastic E->E weights
    (None without plasticity)."""

    state: NetworkState
    record: dict
    W_ee: Array | None


@functools.partial(jax.jit, static_argnames=("spec", "monitor", "plastic"))
def _simulate(key, params, state, mods, stims, stdp, spec, monitor, plastic):
    step = _adex_step if spec.model == "adex" else _alif_step

    def one(carry, x):
        (st, traces, W_ee), counts, lfp_sum, _ = carry
        mod, stim = x
        p = params._replace(W_ee=W_ee) if plastic else params
        st, lfp, g_exc, g_inh = step(st, p, spec, mod, stim, key)
        if plastic:
            s_e = st.neurons.spike[: spec.n_exc]
            traces, W_ee = plasticity.pair_stdp_step(
                traces, W_ee, s_e, s_e, stdp, spec.dt, mask=params.mask_ee
            )
        counts = counts + st.neurons.spike.astype(jnp.int32)
        return ((st, traces, W_ee), counts, lfp_sum + lfp, (g_exc, g_inh)), None

    def bin_(sim, xs):
        dtype = sim[0].ext.x.dtype
        zeros = jnp.zeros((spec.n,), dtype)
        carry = (sim, jnp.zeros((spec.n,), jnp.int32), jnp.zeros((), dtype), (zeros, zeros))
        (sim, counts, lfp_sum, (g_e, g_i)), _ = jax.lax.scan(one, carry, xs)
        sample = _sample(monitor, sim[0], g_e, g_i)
        return sim, _bin_record(monitor, spec, counts, lfp_sum, sample)

    traces, W_ee = None, None  # carried only when plastic
    if plastic:
        traces = plasticity.pair_init(spec.n_exc, spec.n_exc, dtype=state.ext.x.dtype)
        W_ee = params.W_ee
    (state, _, W_ee), record = jax.lax.scan(bin_, (state, traces, W_ee), (mods, stims))
    return Run(state, record, W_ee)


def _series(value, n_steps: int, name: str, dtype) -> Array:
    v = jnp.asarray(value, dtype)
    if v.ndim == 0:
        return jnp.broadcast_to(v, (n_steps,))
    if v.shape != (n_steps,):
        raise ValueError(
            f"network: modulation.{name} must be a scalar or a series (n_steps={n_steps},), "
            f"got shape {v.shape}"
        )
    return v


def simulate(
    key,
    params: NetworkParams,
    spec: NetworkSpec,
    n_steps: int,
    *,
    state: NetworkState | None = None,
    modulation: Modulation | None = None,
    stimulus=None,
    monitor: Monitor | None = None,
    stdp: plasticity.PairSTDPParams | None = None,
) -> Run:
    """Simulate ``n_steps`` steps of dt ms from ``state`` (rest by default).

    key: the external Poisson input's key (step t draws with fold_in(key, t)).
    modulation: per-step levels (:class:`Modulation`; fields scalars or (n_steps,) series).
    stimulus: (n_steps, k) units per step through ``params.stim_pattern`` (N, k).
    stdp: pair STDP on W_ee (masked by ``params.mask_ee``) during the run; the new W_ee is
    returned in ``Run.W_ee``. One compile per (spec, monitor, n_steps, plasticity on/off).
    """
    spec = check_spec(spec)
    check_params(params, spec)
    monitor = Monitor() if monitor is None else monitor
    n_steps = dynamics.check_count(n_steps, "n_steps", "network")
    monitor = check_monitor(monitor, spec, n_steps)
    dtype = jnp.result_type(float)
    if state is None:
        state = init_state(params, spec, dtype=dtype)
    check_state(state, params, spec)
    dtype = state.ext.x.dtype
    mod = Modulation() if modulation is None else modulation
    mods = Modulation(*(_series(v, n_steps, n, dtype) for n, v in zip(Modulation._fields, mod)))
    k = 0 if params.stim_pattern is None else jnp.shape(params.stim_pattern)[1]
    stims = jnp.zeros((n_steps, k), dtype) if stimulus is None else jnp.asarray(stimulus, dtype)
    if stims.shape != (n_steps, k):
        raise ValueError(f"network: stimulus must be (n_steps={n_steps}, k={k}), got {stims.shape}")
    if stdp is not None and params.mask_ee is None:
        raise ValueError("network: stdp needs params.mask_ee (the E->E synapses that exist)")
    n_bins = n_steps // monitor.every
    split = lambda a: a.reshape((n_bins, monitor.every) + a.shape[1:])
    xs = jax.tree.map(split, (mods, stims))
    return _simulate(key, params, state, *xs, stdp, spec, monitor, stdp is not None)
