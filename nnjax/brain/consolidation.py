"""Consolidation in a spiking network: a sequence imprinted by STDP in wake, then NREM sleep
or an equal time of quiet wake, then an interfering sequence; recall after each phase.

Units: ms, mV, nS, pA, Hz (as :mod:`~nnjax.brain.network`); phase lengths in s.

Memory. S1 is the chain of E-cell groups G_0 -> G_1 -> ... -> G_{n-1} (``group_size`` cells
each, disjoint). It is imprinted by driving G_k with a current (``stim_pA`` into each of
its cells) during [k step_ms, k step_ms + width_ms) of every trial (one per ``period_ms``)
while pair STDP (:mod:`~nnjax.brain.plasticity`) acts on the E->E weights: G_k fires
step_ms before G_{k+1}, so G_k -> G_{k+1} potentiates and G_{k+1} -> G_k depresses. The
interfering memory S2 is the same groups in reverse order (as S1* in González et al. 2020,
eLife 9:e51005): learning it depresses exactly the synapses that hold S1.

Recall of a sequence (NumPy, on the host). A cue drives the sequence's first group for
``cue_ms``; for each later group, the fraction of its cells that fire within
(t_cue, t_cue + window_ms] minus the fraction that fire in the window_ms before the cue (the
background); recall is the mean over the later groups and over ``n_cues`` cues. 0: the cue
spreads no further than chance; 1: every cell of every later group answers. The synaptic
trace of a sequence is the mean weight of the synapses of its forward links G_k -> G_{k+1}
minus that of the synapses of its backward links (nS), over the synapses that exist (mask_ee).

Protocol per seed (one network; both conditions start from the same state after learning):

    train S1 (wake + input + STDP)  -> test
    -> NREM sleep | quiet wake (STDP on, no input, ``consolidation_s`` each) -> test
    -> train S2 (wake + input + STDP, ``interference_s``) -> test

Sleep is NREM of :mod:`~nnjax.brain.sleep_states` (Up/Down states); quiet wake is the wake
state with the same external background and no stimulus. Tests run in the wake state with
STDP off. Both conditions use the same random draws phase by phase (common random numbers):
only the state differs. Seeds are vmapped: one compile per phase.

The settings and stimuli are in :mod:`~nnjax.brain.consolidation_protocol`, the scores
(recall, synaptic trace, replay order, paired statistics) in
:mod:`~nnjax.brain.consolidation_scores`; this module runs the protocol, and re-exports both.
"""

import jax
import jax.numpy as jnp
import numpy as np

from nnjax.brain import circuits, dynamics, network, sleep_states
from nnjax.brain.consolidation_protocol import (  # noqa: F401 (the settings, re-exported)
    SMALL_CORTEX,
    Protocol,
    _steps,
    check_protocol,
    cue_stimulus,
    groups,
    pattern,
    sequence_stimulus,
)
from nnjax.brain.consolidation_scores import (  # noqa: F401 (the scores, re-exported)
    _check_cells,
    _check_order,
    _mean_weight,
    paired_stats,
    recall,
    replay_order,
    synaptic_trace,
)
from nnjax.train.order import check_seed

Array = jax.Array


def _phase(spec, n_steps: int, monitor, plastic: bool):
    """simulate vmapped over seeds: (keys, params, states, STDP traces (None: zero),
    modulation, stimulus, stdp)."""

    def one(key, params, state, traces, mod, stim, stdp):
        return network.simulate(
            key, params, spec, n_steps, state=state, modulation=mod, stimulus=stim,
            monitor=monitor, stdp=stdp if plastic else None, traces=traces,
        )  # fmt: skip

    return jax.vmap(one, in_axes=(0, 0, 0, 0, None, None, None))


_QUIET = network.Monitor(every=100, spikes=None, lfp=False)
_RASTER = network.Monitor(every=10, spikes="raster", lfp=False)


def raster_bin_ms(cfg) -> float:
    """The width (ms) of the replay rasters' bins: the raster monitor's steps times dt."""
    return _RASTER.every * cfg.dt


def _run(keys, params, state, mod, stim, protocol, cfg, monitor, plastic, tag: int, traces=None):
    """One phase for every seed, a plastic one from the STDP ``traces`` (None: zero); returns
    (params with the learned W_ee, state, record, the traces at its end)."""
    stim = jnp.asarray(stim)
    keys = jax.vmap(lambda k: jax.random.fold_in(k, tag))(keys)
    run = _phase(cfg.spec, int(stim.shape[0]), monitor, plastic)(
        keys, params, state, traces, mod, stim, protocol.stdp
    )
    if plastic:
        params = params._replace(W_ee=run.W_ee)
    return params, run.state, run.record, run.traces


def _test(keys, params, state, wake, protocol, cfg, tag: int) -> tuple:
    """Cue S1 and S2 alternately (STDP off); returns (state, recall S1 (seeds,), recall S2,
    synaptic traces S1, S2)."""
    n = protocol.n_groups
    s1, s2 = list(range(n)), list(range(n))[::-1]
    stim, onsets = cue_stimulus(protocol, cfg.dt, [s1[0], s2[0]])
    _, state, rec, _ = _run(keys, params, state, wake, stim, protocol, cfg, _RASTER, False, tag)
    raster = np.asarray(rec["spikes"])
    bin_ms = raster_bin_ms(cfg)
    r1 = [recall(r, bin_ms, onsets[0::2], protocol, s1) for r in raster]
    r2 = [recall(r, bin_ms, onsets[1::2], protocol, s2) for r in raster]
    W, M = np.asarray(params.W_ee), np.asarray(params.mask_ee)
    t1 = [synaptic_trace(w, protocol, s1, m) for w, m in zip(W, M)]
    t2 = [synaptic_trace(w, protocol, s2, m) for w, m in zip(W, M)]
    return state, np.array(r1), np.array(r2), np.array(t1), np.array(t2)


def _train(keys, params, state, wake, protocol, cfg, order, seconds, tag):
    n_steps = _steps(seconds * 1000.0, cfg.dt)
    stim = sequence_stimulus(protocol, n_steps, cfg.dt, order)
    params, state, _, _ = _run(keys, params, state, wake, stim, protocol, cfg, _QUIET, True, tag)
    return params, state


def _consolidate(keys, params, state, mod, protocol, cfg, tag):
    """The consolidation period (STDP on, no input); its first raster_s s are recorded. Two
    calls, one plastic run: the second goes on from the first's STDP traces (they restarted
    at zero there, and spike pairs across the split were lost)."""
    k = protocol.n_groups
    shown = min(protocol.raster_s, protocol.consolidation_s)
    first = np.zeros((_steps(shown * 1000.0, cfg.dt), k), np.float32)
    rest = np.zeros((_steps((protocol.consolidation_s - shown) * 1000.0, cfg.dt), k))
    params, state, rec, traces = _run(
        keys, params, state, mod, first, protocol, cfg, _RASTER, True, tag
    )
    if rest.shape[0]:
        params, state, _, _ = _run(
            keys, params, state, mod, rest, protocol, cfg, _QUIET, True, tag + 1, traces
        )
    return params, state, np.asarray(rec["spikes"])


CONDITIONS = ("sleep", "quiet_wake")
STAGES = ("after_learning", "after_consolidation", "after_interference")


def run_experiment(
    n_seeds: int,
    protocol: Protocol | None = None,
    cfg: circuits.NetworkConfig = SMALL_CORTEX,
    smap: sleep_states.StateMap | None = None,
    *,
    seed: int = 0,
    log=None,
) -> dict:
    """The protocol of the module docstring for ``n_seeds`` networks (vmapped).

    Returns NumPy arrays (n_seeds,): ``recall[cond][stage][seq]`` and
    ``trace[cond][stage][seq]`` (cond in :data:`CONDITIONS`, stage in :data:`STAGES`, seq
    "S1"/"S2"; after_learning is shared by both conditions), ``replay_order[cond]`` (both
    conditions: in quiet wake the Up/Down detector takes dips of the asynchronous rate for
    Down states, so it is mostly a number: all 10 seeds of docs/results/network-sleep; NaN
    only where no Up state gave a tau, :func:`replay_order`) and the first ``raster_s`` s of
    each consolidation period of seed 0, ``raster[cond]`` (n_bins, N) uint8.
    """
    log = log or (lambda msg: None)
    protocol = Protocol() if protocol is None else protocol
    n_seeds = dynamics.check_count(n_seeds, "n_seeds", "run_experiment")
    check_protocol(protocol, cfg.n_exc, "run_experiment", cfg.dt)
    smap = sleep_states.StateMap() if smap is None else smap
    keys = jax.random.split(jax.random.key(check_seed(seed, "run_experiment")), n_seeds)
    P = jnp.asarray(pattern(protocol, cfg.n_exc + cfg.n_inh))
    params = jax.vmap(lambda k: circuits.init_params(k, cfg))(keys)
    params = params._replace(stim_pattern=jnp.broadcast_to(P, (n_seeds,) + P.shape))
    state = jax.vmap(lambda p: network.init_state(p, cfg.spec))(params)
    mods = {s: sleep_states.modulation(sleep_states.STATES[s], smap) for s in ("wake", "NREM")}
    wake = mods["wake"]
    s1, s2 = list(range(protocol.n_groups)), list(range(protocol.n_groups))[::-1]
    log(f"training S1 for {protocol.train_s} s ({n_seeds} seeds)")
    params, state = _train(keys, params, state, wake, protocol, cfg, s1, protocol.train_s, 1)
    state, r1, r2, t1, t2 = _test(keys, params, state, wake, protocol, cfg, 2)
    learned = {"recall": {"S1": r1, "S2": r2}, "trace": {"S1": t1, "S2": t2}}
    out = {"recall": {}, "trace": {}, "replay_order": {}, "raster": {}}
    # the same random draws (tags) in both conditions: they differ only in the state, so the
    # paired difference holds no noise of their own (tags 10 + 10 c made two networks in
    # one state recall 0.93 and 0.14 after the same period)
    for cond, mod in zip(CONDITIONS, (mods["NREM"], wake)):
        log(f"{cond}: {protocol.consolidation_s} s, then S2 ({protocol.interference_s} s)")
        p, st, raster = _consolidate(keys, params, state, mod, protocol, cfg, 10)
        st, a1, a2, u1, u2 = _test(keys, p, st, wake, protocol, cfg, 12)
        p, st = _train(keys, p, st, wake, protocol, cfg, s2, protocol.interference_s, 13)
        st, b1, b2, v1, v2 = _test(keys, p, st, wake, protocol, cfg, 14)
        out["recall"][cond] = {
            "after_learning": learned["recall"],
            "after_consolidation": {"S1": a1, "S2": a2},
            "after_interference": {"S1": b1, "S2": b2},
        }
        out["trace"][cond] = {
            "after_learning": learned["trace"],
            "after_consolidation": {"S1": u1, "S2": u2},
            "after_interference": {"S1": v1, "S2": v2},
        }
        bin_ms = raster_bin_ms(cfg)
        out["replay_order"][cond] = np.array(
            [replay_order(r, bin_ms, protocol, s1) for r in raster]
        )
        out["raster"][cond] = raster[0]
    return out
