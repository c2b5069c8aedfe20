"""Recurrent networks of excitatory and inhibitory spiking neurons, simulated in one scan.

Units: ms, mV, pF, nS, pA, Hz for AdEx networks (:mod:`~nnjax.brain.adex`, conductance-based
synapses); an adaptive-LIF network (:mod:`~nnjax.brain.adaptive_lif`, current-based timed
synapses) takes its currents and current weights in nA instead.

Neurons 0..n_exc-1 are excitatory (E), n_exc..N-1 inhibitory (I). The weights are four
blocks W_xy (n_post, n_pre) onto population x from population y: W_ee (nE, nE), W_ei
(nE, nI), W_ie (nI, nE), W_ii (nI, nI), dense arrays with zeros where there is no synapse
(at N = 1000 and p = 0.1 a dense matrix-vector product per step is 3 to 4 times cheaper on
a CPU than a gather of each cell's 100 inputs: 64 against 258 us a step for one 1000 x 1000
block in a scan on the 2-core machine, 98 against 297 under a load of 6;
``benchmarks/network.py`` times the whole network against Brian2, not this choice). Each
block is a :class:`~nnjax.brain.synapses.Projection` (AdEx) or
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
for the next round(t_ref / dt) steps (t_ref = 2.06 ms at dt = 0.1 ms: 21 steps, 2.1 ms; a
remainder of half a step rounds either way with the float rounding of t_ref - k dt: 2.05
gives 20 steps, 0.35 gives 4), while its w keeps evolving. External Poisson counts are drawn
by inverse transform from one uniform per neuron and step (fold_in(key, t)), truncated at
POISSON_MAX = 8 per step:
P(X > 8) is 1e-6 at a mean of 1 per step and 2.4e-4 at 2 (a 20 kHz drive at dt = 0.1 ms).
``Modulation`` holds the per-step levels (g_K, b_scale, the four
gains, ext_scale) that :mod:`~nnjax.brain.sleep_states` turns into wake, NREM and REM;
neutral values leave the network as built. A gain multiplies the presynaptic spike when it
is released (a change of release probability, the way acetylcholine acts on intracortical
terminals). The LFP proxy is the mean over E cells of |I_exc| + |I_inh| (pA; Mazzoni et al.
2008 sum the absolute AMPA and GABA currents onto pyramidal cells, the external AMPA input
included): I_exc = phi (g_exc + g_ext)(E_exc - V), I_inh = phi g_inh (E_inh - V), the currents
of the step (an adaptive-LIF network: its recurrent plus external excitatory and its
inhibitory synaptic currents, nA).

Parameters (:class:`NetworkParams`) are a pytree: jax.grad reaches weights, synapse and
neuron parameters; the network's shape (:class:`NetworkSpec`) and what is recorded
(:class:`Monitor`) are static. :func:`simulate` is jitted once per shape and vmaps over keys
and parameters (e.g. seeds: ``jax.vmap(lambda k: simulate(k, init_params(k, cfg), ...))``).
:func:`simulate_blocks` runs the same simulation in blocks through the training engine's
driver, so that a long run can be stopped between blocks and watched after each.

The types and their checks are in :mod:`~nnjax.brain.network_types`, one step in
:mod:`~nnjax.brain.network_step`, the monitors in :mod:`~nnjax.brain.monitors`; all are
importable from here.
"""

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from nnjax.brain import dynamics, plasticity
from nnjax.brain.monitors import (  # noqa: F401 (Monitor and its checks are part of this API)
    MAX_RECORD_BYTES,
    SPIKE_MONITORS,
    Monitor,
    _bin_record,
    _sample,
    bin_times,
    check_monitor,
    record_bytes,
)
from nnjax.brain.network_step import (  # noqa: F401 (the step, re-exported)
    POISSON_MAX,
    _adex_step,
    _alif_step,
    _block_parts,
    _clamp,
    _exc_mask,
    _neuron_params,
    _poisson_drive,
    _poisson_inverse,
    _split,
    _stable_factor,
    _stimulus,
)
from nnjax.brain.network_types import (  # noqa: F401 (the types and checks, re-exported)
    BLOCKS,
    MODELS,
    Modulation,
    NetworkParams,
    NetworkSpec,
    NetworkState,
    _block_shapes,
    _check_neuron_params,
    _check_per_neuron,
    _model,
    check_params,
    check_spec,
    check_state,
    init_state,
)

Array = jax.Array

MAX_STEPS = 2**30
"""The longest run :func:`simulate` takes in one call (about 30 h at dt = 0.1 ms, as
:data:`nnjax.brain.sleep_states.MAX_STEPS`); its recording is capped by
:data:`~nnjax.brain.monitors.MAX_RECORD_BYTES`."""


class Run(NamedTuple):
    """What :func:`simulate` returns: the final state (to continue from), the recording (a
    dict of arrays, one row per bin; see :class:`Monitor`), the plastic E->E weights and the
    STDP traces at the end (both None without plasticity). A plastic run continues exactly,
    pairs across the split counted, from ``state=run.state``, ``params._replace(W_ee=
    run.W_ee)`` and ``traces=run.traces``."""

    state: NetworkState
    record: dict
    W_ee: Array | None
    traces: plasticity.PairTraces | None = None


@functools.partial(jax.jit, static_argnames=("spec", "monitor", "plastic"))
def _simulate(key, params, state, traces, mods, stims, stdp, spec, monitor, plastic):
    W_ee = params.W_ee if plastic else None  # carried only when plastic, as the traces
    sim = (state, traces, W_ee)
    (state, traces, W_ee), record = _bins(
        key, params, sim, mods, stims, stdp, spec, monitor, plastic
    )
    return Run(state, record, W_ee, traces)


def _bins(key, params, sim, mods, stims, stdp, spec, monitor, plastic):
    """The scan over bins (mods and stims: (n_bins, every, ...)) from ``sim`` = (state, traces,
    W_ee): the carry after it and the record, one row per bin."""
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

    return jax.lax.scan(bin_, sim, (mods, stims))


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
    traces: plasticity.PairTraces | None = None,
) -> Run:
    """Simulate ``n_steps`` steps of dt ms from ``state`` (rest by default).

    key: the external Poisson input's key (step t draws with fold_in(key, t)).
    modulation: per-step levels (:class:`Modulation`; fields scalars or (n_steps,) series).
    stimulus: (n_steps, k) units per step through ``params.stim_pattern`` (N, k).
    stdp: pair STDP on W_ee (masked by ``params.mask_ee``) during the run; the new W_ee is
    returned in ``Run.W_ee``, the pre- and postsynaptic traces (n_exc,) in ``Run.traces``.
    traces: the STDP traces to start from (``Run.traces`` of the run this one continues;
    default zero: spike pairs across the split are not counted). Only with ``stdp``.
    One compile per (spec, monitor, n_steps, plasticity on/off).
    """
    spec, state, traces, xs, monitor = _prepare(
        params, spec, n_steps, state, modulation, stimulus, monitor, stdp, traces
    )
    return _simulate(key, params, state, traces, *xs, stdp, spec, monitor, stdp is not None)


def simulate_blocks(
    key,
    params: NetworkParams,
    spec: NetworkSpec,
    n_steps: int,
    block_steps: int,
    *,
    state: NetworkState | None = None,
    modulation: Modulation | None = None,
    stimulus=None,
    monitor: Monitor | None = None,
    stdp: plasticity.PairSTDPParams | None = None,
    traces: plasticity.PairTraces | None = None,
    stop=None,
    hooks=(),
) -> tuple[Run, Any]:
    """:func:`simulate` (the same arguments) run in blocks of ``block_steps``
    steps (a multiple of the monitor's ``every``; the last block shorter when it does not
    divide ``n_steps``), one compiled call per block, through the training engine's driver
    (:func:`nnjax.train.driver.drive`: one compile, two with a shorter last block): the same
    numbers as one call (step t still draws with fold_in(key, t)), and a run that can be
    stopped. ``stop`` (a :class:`nnjax.train.StopFlag`): a stop requested ends the run after
    the running block; ``hooks``: called after each block with the driver's
    :class:`~nnjax.train.driver.ChunkReport` (its indices are bins: ``end`` the bins done;
    ``outputs`` the block's record). Returns the :class:`Run` of the blocks simulated (its
    record as NumPy arrays; no rows when a stop came before the first block) and the
    driver's :class:`~nnjax.train.driver.Driven` (``stopped``: the stop reason, None for a
    whole run; compile and run seconds apart). A loop on the host: not for ``vmap``."""
    from nnjax.train.driver import FixedChunks, check_stop, drive

    check_stop(stop, "simulate_blocks")
    given = (key, params, state, modulation, stimulus, traces)
    if any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree.leaves(given)):
        raise ValueError(
            "simulate_blocks runs on the host, one compiled call per block: not under "
            "jax.jit, jax.vmap or jax.grad; use simulate there"
        )
    spec, state, traces, xs, monitor = _prepare(
        params, spec, n_steps, state, modulation, stimulus, monitor, stdp, traces
    )
    block_steps = dynamics.check_count(block_steps, "block_steps", "simulate_blocks")
    if block_steps % monitor.every:
        raise ValueError(
            f"simulate_blocks: block_steps must be a multiple of the monitor's every = "
            f"{monitor.every}, got {block_steps}"
        )
    plastic = stdp is not None

    def program(sim, indices, key, params, xs, stdp):  # indices: bins
        chunk = jax.tree.map(lambda a: a[indices], xs)
        return _bins(key, params, sim, *chunk, stdp, spec, monitor, plastic)

    sim, args = (state, traces, params.W_ee if plastic else None), (key, params, xs, stdp)
    chunks = FixedChunks(block_steps // monitor.every)
    total = n_steps // monitor.every
    driven = drive(program, sim, args, total=total, chunks=chunks, stop=stop, hooks=hooks)
    record = driven.outputs
    if record is None:  # stopped before the first block: the record's fields, without rows
        shapes = jax.eval_shape(program, sim, jnp.arange(1), *args)[1]
        record = jax.tree.map(lambda s: np.zeros((0,) + s.shape[1:], s.dtype), shapes)
    state, traces, W_ee = driven.carry
    return Run(state, record, W_ee, traces), driven


def _prepare(params, spec, n_steps, state, modulation, stimulus, monitor, stdp, traces):
    """:func:`simulate`'s arguments checked: the spec, the state and traces to start from, the
    per-step (modulation, stimulus) series split into bins (n_bins, every, ...), the monitor."""
    spec = check_spec(spec)
    check_params(params, spec)
    monitor = Monitor() if monitor is None else monitor
    n_steps = dynamics.check_count(n_steps, "n_steps", "network")
    if n_steps > MAX_STEPS:  # its (n_steps,) input series failed deep in XLA
        raise ValueError(
            f"network: n_steps must be at most MAX_STEPS = {MAX_STEPS} (the per-step input "
            f"series take 4 bytes a step each), got {n_steps}; split the run (Run.state)"
        )
    monitor = check_monitor(monitor, spec, n_steps)
    dtype = jnp.result_type(float)
    if state is None:
        state = init_state(params, spec, dtype=dtype)
    check_state(state, params, spec)
    dtype = state.ext.x.dtype
    mod = Modulation() if modulation is None else modulation
    if not isinstance(mod, Modulation):
        raise ValueError(f"network: modulation must be a Modulation, got {type(mod).__name__}")
    for name, v in zip(Modulation._fields, mod):  # nan: a nan network; < 0: no physical sense
        dynamics.check_positive(v, f"modulation.{name}", "network", allow_zero=True)
    mods = Modulation(*(_series(v, n_steps, n, dtype) for n, v in zip(Modulation._fields, mod)))
    k = 0 if params.stim_pattern is None else jnp.shape(params.stim_pattern)[1]
    try:  # a str failed in NumPy's cast, naming nothing
        stims = jnp.zeros((n_steps, k), dtype) if stimulus is None else jnp.asarray(stimulus, dtype)
    except (TypeError, ValueError):
        raise ValueError(
            f"network: stimulus must be numbers (n_steps, k), got {stimulus!r}"
        ) from None
    if stims.shape != (n_steps, k):
        raise ValueError(f"network: stimulus must be (n_steps={n_steps}, k={k}), got {stims.shape}")
    dynamics.check_finite(stims, "stimulus", "network")
    if stdp is not None and not isinstance(stdp, plasticity.PairSTDPParams):
        raise ValueError(f"network: stdp must be a PairSTDPParams or None, got {stdp!r}")
    if stdp is not None and params.mask_ee is None:
        raise ValueError("network: stdp needs params.mask_ee (the E->E synapses that exist)")
    traces = _check_traces(traces, stdp, spec, dtype)
    n_bins = n_steps // monitor.every
    split = lambda a: a.reshape((n_bins, monitor.every) + a.shape[1:])
    return spec, state, traces, jax.tree.map(split, (mods, stims)), monitor


def _check_traces(traces, stdp, spec: NetworkSpec, dtype):
    """The STDP traces a plastic run starts from: zero by default, else ``traces`` (a
    :class:`~nnjax.brain.plasticity.PairTraces` of two finite, non-negative (n_exc,)
    arrays) in ``dtype``; None without ``stdp``, where ``traces`` are refused."""
    if stdp is None:
        if traces is not None:
            raise ValueError("network: traces continue a plastic run: give them with stdp")
        return None
    if traces is None:
        return plasticity.pair_init(spec.n_exc, spec.n_exc, dtype=dtype)
    if not isinstance(traces, plasticity.PairTraces):
        raise ValueError(
            f"network: traces must be a PairTraces (Run.traces), got {type(traces).__name__}"
        )
    out = plasticity.PairTraces(*(jnp.asarray(t, dtype) for t in traces))
    for name, t in zip(("traces.x", "traces.y"), out):
        if t.shape != (spec.n_exc,):
            raise ValueError(f"network: {name} must be (n_exc={spec.n_exc},), got {t.shape}")
        dynamics.check_positive(t, name, "network", allow_zero=True)
    return out
