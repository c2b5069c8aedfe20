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
STDP off. Seeds are vmapped: one compile per phase.
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from nnjax.brain import circuits, dynamics, network, plasticity, sleep_states

Array = jax.Array


class Protocol(NamedTuple):
    """The experiment's settings (module docstring); times in ms unless named _s."""

    n_groups: int = 5
    group_size: int = 20
    step_ms: float = 15.0
    width_ms: float = 15.0
    period_ms: float = 250.0
    stim_pA: float = 3000.0
    train_s: float = 4.0
    interference_s: float = 3.0
    consolidation_s: float = 6.0
    cue_ms: float = 10.0
    n_cues: int = 5
    cue_period_ms: float = 250.0
    window_ms: float = 80.0
    settle_s: float = 0.5
    raster_s: float = 4.0
    stdp: plasticity.PairSTDPParams = plasticity.PairSTDPParams(
        a_plus=0.3, a_minus=0.1575, w_max=12.0
    )


SMALL_CORTEX = circuits.CORTEX._replace(n_exc=200, n_inh=50, p=0.4)
"""CORTEX at 250 neurons with the same in-degrees (80 E and 20 I inputs per cell). The STDP
amplitudes of :class:`Protocol` (a_plus = 0.3 nS per pair, a_minus = 0.525 a_plus, so that
a_minus tau_minus > a_plus tau_plus as in Song et al. 2000) imprint a sequence within 4 s of
training: in a trial run (seed 0) the forward links G_k -> G_{k+1} grew from 4 to 8.6 nS,
the backward ones fell to 1.0 nS; a_plus = 0.08 gave 4.9 and 3.3 nS and no recall."""


def check_protocol(protocol: Protocol, n_exc: int, where: str) -> None:
    """A ValueError naming ``where`` unless there are >= 2 groups of >= 1 cell and the groups
    fit among the n_exc E cells (n_groups * group_size <= n_exc): a group reaching past them
    would drive and score inhibitory cells."""
    dynamics.check_count(protocol.n_groups, "protocol.n_groups", where, minimum=2)
    dynamics.check_count(protocol.group_size, "protocol.group_size", where)
    if protocol.n_groups * protocol.group_size > n_exc:
        raise ValueError(
            f"{where}: protocol.n_groups * protocol.group_size = "
            f"{protocol.n_groups * protocol.group_size} must be <= n_exc = {n_exc} (the groups "
            "are E cells)"
        )


def groups(protocol: Protocol) -> np.ndarray:
    """Cell ids of the groups, (n_groups, group_size): G_k = the k-th block of E cells."""
    return np.arange(protocol.n_groups * protocol.group_size).reshape(protocol.n_groups, -1)


def pattern(protocol: Protocol, n: int) -> np.ndarray:
    """The stimulus pattern (n, n_groups): stim_pA of current into the cells of each group."""
    P = np.zeros((n, protocol.n_groups), np.float32)
    for k, ids in enumerate(groups(protocol)):
        P[ids, k] = protocol.stim_pA
    return P


def _steps(ms: float, dt: float) -> int:
    return int(round(ms / dt))


def sequence_stimulus(protocol: Protocol, n_steps: int, dt: float, order) -> np.ndarray:
    """(n_steps, n_groups) 0/1: group order[j] on during [j step_ms, j step_ms + width_ms) of
    every trial of period_ms."""
    t = (np.arange(n_steps) * dt) % protocol.period_ms
    out = np.zeros((n_steps, protocol.n_groups), np.float32)
    for j, k in enumerate(order):
        on = j * protocol.step_ms
        out[:, k] = (t >= on) & (t < on + protocol.width_ms)
    return out


def cue_stimulus(protocol: Protocol, dt: float, cued) -> tuple[np.ndarray, np.ndarray]:
    """Cues of the groups ``cued`` (one per cue period, cycling), (n_steps, n_groups), and
    the cue onsets in ms. The cues start after ``settle_s`` s without input (the adaptation
    left by the preceding phase decays) and one window."""
    per = _steps(protocol.cue_period_ms, dt)
    settle = _steps(protocol.settle_s * 1000.0, dt)
    n_steps = settle + per * protocol.n_cues * len(cued)
    out = np.zeros((n_steps, protocol.n_groups), np.float32)
    onsets = []
    for c in range(protocol.n_cues * len(cued)):
        start = settle + c * per + _steps(protocol.window_ms, dt)
        out[start : start + _steps(protocol.cue_ms, dt), cued[c % len(cued)]] = 1.0
        onsets.append(start * dt)
    return out, np.array(onsets)


def _check_order(order, protocol: Protocol, where: str) -> np.ndarray:
    """``order`` as an int array of >= 2 distinct group ids in [0, n_groups), or a ValueError."""
    o = np.asarray(list(order) if isinstance(order, range) else order)
    n = protocol.n_groups
    ok = o.ndim == 1 and o.size >= 2 and o.dtype.kind in "iu" and len(set(o.tolist())) == o.size
    if not ok or o.min() < 0 or o.max() >= n:
        raise ValueError(
            f"{where}: order must be >= 2 distinct group ids (ints) in [0, {n}), got {order!r}"
        )
    return o


def _check_cells(shape: tuple, protocol: Protocol, name: str, where: str) -> None:
    need = protocol.n_groups * protocol.group_size
    if shape[-1] < need:
        raise ValueError(
            f"{where}: {name} must cover the n_groups * group_size = {need} cells of the "
            f"groups, got shape {shape}"
        )


def recall(raster, bin_ms: float, onsets, protocol: Protocol, order) -> float:
    """The recall score of the sequence ``order`` (module docstring) from a raster (n_bins, N)
    whose cues of order[0] started at ``onsets`` (ms): with b = round(onset / bin_ms) and
    w = round(window_ms / bin_ms), the mean over cues and later groups G of

        frac(G fires in bins [b, b + w)) - frac(G fires in bins [b - w, b)).

    Each onset needs both windows inside the raster (w <= b <= n_bins - w), else a
    ValueError: a window cut short would compare unequal times."""
    where = "recall"
    r = np.asarray(raster) > 0
    if r.ndim != 2:
        raise ValueError(f"{where}: raster must be (n_bins, N), got shape {r.shape}")
    _check_cells(r.shape, protocol, "raster", where)
    dynamics.check_positive(bin_ms, "bin_ms", where)
    dynamics.check_positive(protocol.window_ms, "protocol.window_ms", where)
    t = np.asarray(onsets, np.float64)
    if t.ndim != 1 or t.size == 0 or not np.isfinite(t).all():
        raise ValueError(f"{where}: onsets must be a non-empty 1-D array of finite ms, got {t}")
    g = groups(protocol)[_check_order(order, protocol, where)[1:]]
    w = int(round(protocol.window_ms / bin_ms))
    b = np.round(t / bin_ms).astype(np.int64)
    if w < 1 or (b < w).any() or (b > r.shape[0] - w).any():
        raise ValueError(
            f"{where}: every onset needs window_ms={protocol.window_ms} before and after it "
            f"inside the raster ([{w * bin_ms}, {(r.shape[0] - w) * bin_ms}] ms at "
            f"bin_ms={bin_ms}), got onsets {t.tolist()}"
        )
    scores = []
    for k in b:
        after = r[k : k + w][:, g].any(axis=0).mean(axis=1)
        before = r[k - w : k][:, g].any(axis=0).mean(axis=1)
        scores.append(np.mean(after - before))
    return float(np.mean(scores))


def _mean_weight(blocks: np.ndarray, exists: np.ndarray) -> float:
    """sum of the existing synapses' weights / their number; NaN for none (nan in W stays)."""
    n = int(exists.sum())
    return float((blocks * exists).sum() / n) if n else float("nan")


def synaptic_trace(W_ee, protocol: Protocol, order, mask=None) -> float:
    """The mean weight of the existing forward synapses minus that of the existing backward
    ones (nS), pooled over the links k = 0..n-2 of ``order`` (g_k = its k-th group):

        trace = sum_{F} W / |F| - sum_{B} W / |B|,
        F = {(i, j): i in g_{k+1}, j in g_k, exists},  B = {(i, j): i in g_k, j in g_{k+1}},

    W (n_post, n_pre). A synapse exists where ``mask`` > 0 (the network's mask_ee: a synapse
    that STDP depressed to 0 counts, at 0 nS) or, without a mask, where W > 0. NaN when F or
    B is empty (the mean of no synapse) or a weight in them is NaN."""
    where = "synaptic_trace"
    W = np.asarray(W_ee, np.float64)
    if W.ndim != 2 or W.shape[0] != W.shape[1]:
        raise ValueError(f"{where}: W_ee must be a square (n_exc, n_exc) array, got {W.shape}")
    _check_cells(W.shape, protocol, "W_ee", where)
    if mask is not None and np.shape(mask) != W.shape:
        raise ValueError(f"{where}: mask must have W_ee's shape {W.shape}, got {np.shape(mask)}")
    g = groups(protocol)[_check_order(order, protocol, where)]
    M = ~(W <= 0) if mask is None else np.asarray(mask) > 0  # ~(W <= 0): NaN weights count
    fwd, bwd = [], []
    for k in range(len(g) - 1):
        fwd.append(np.ix_(g[k + 1], g[k]))
        bwd.append(np.ix_(g[k], g[k + 1]))
    mean = lambda links: _mean_weight(  # noqa: E731
        np.stack([W[i] for i in links]), np.stack([M[i] for i in links])
    )
    return mean(fwd) - mean(bwd)


def replay_order(raster, bin_ms: float, protocol: Protocol, order, *, lead_ms=150.0) -> float:
    """How much the Up states replay ``order``: for each Up state of the E rate
    (detect_updown), the first-spike time of each group within lead_ms of its onset, and
    Kendall's tau between the groups' positions in ``order`` and those times (groups that
    stay silent are left out; an Up state needs 3 active groups); the mean over Up states,
    NaN without any. +1: every Up state runs through the groups in order; 0: no order."""
    from scipy.stats import kendalltau

    from nnjax.brain import detect

    r = np.asarray(raster) > 0
    g = groups(protocol)[np.asarray(order)]
    rate = r[:, : g.max() + 1].mean(axis=1) * (1000.0 / bin_ms)
    try:
        ups = detect.detect_updown(rate, 1000.0 / bin_ms).up
    except ValueError:
        return float("nan")
    lead = int(round(lead_ms / bin_ms))
    taus = []
    for start, _ in ups:
        b = int(round(start * 1000.0 / bin_ms))
        seg = r[b : b + lead]
        first = [np.flatnonzero(seg[:, ids].any(axis=1)) for ids in g]
        pos = [k for k, f in enumerate(first) if f.size]
        if len(pos) >= 3:
            taus.append(kendalltau(pos, [first[k][0] for k in pos]).statistic)
    taus = [t for t in taus if np.isfinite(t)]
    return float(np.mean(taus)) if taus else float("nan")


def _phase(spec, n_steps: int, monitor, plastic: bool):
    """simulate vmapped over seeds: (keys, params, states, modulation, stimulus, stdp)."""

    def one(key, params, state, mod, stim, stdp):
        return network.simulate(
            key, params, spec, n_steps, state=state, modulation=mod, stimulus=stim,
            monitor=monitor, stdp=stdp if plastic else None,
        )  # fmt: skip

    return jax.vmap(one, in_axes=(0, 0, 0, None, None, None))


_QUIET = network.Monitor(every=100, spikes=None, lfp=False)
_RASTER = network.Monitor(every=10, spikes="raster", lfp=False)


def _run(keys, params, state, mod, stim, protocol, cfg, monitor, plastic, tag: int):
    """One phase for every seed; returns (params with the learned W_ee, state, record)."""
    stim = jnp.asarray(stim)
    keys = jax.vmap(lambda k: jax.random.fold_in(k, tag))(keys)
    run = _phase(cfg.spec, int(stim.shape[0]), monitor, plastic)(
        keys, params, state, mod, stim, protocol.stdp
    )
    if plastic:
        params = params._replace(W_ee=run.W_ee)
    return params, run.state, run.record


def _test(keys, params, state, wake, protocol, cfg, tag: int) -> tuple:
    """Cue S1 and S2 alternately (STDP off); returns (state, recall S1 (seeds,), recall S2,
    synaptic traces S1, S2)."""
    n = protocol.n_groups
    s1, s2 = list(range(n)), list(range(n))[::-1]
    stim, onsets = cue_stimulus(protocol, cfg.dt, [s1[0], s2[0]])
    _, state, rec = _run(keys, params, state, wake, stim, protocol, cfg, _RASTER, False, tag)
    raster = np.asarray(rec["spikes"])
    bin_ms = _RASTER.every * cfg.dt
    r1 = [recall(r, bin_ms, onsets[0::2], protocol, s1) for r in raster]
    r2 = [recall(r, bin_ms, onsets[1::2], protocol, s2) for r in raster]
    W, M = np.asarray(params.W_ee), np.asarray(params.mask_ee)
    t1 = [synaptic_trace(w, protocol, s1, m) for w, m in zip(W, M)]
    t2 = [synaptic_trace(w, protocol, s2, m) for w, m in zip(W, M)]
    return state, np.array(r1), np.array(r2), np.array(t1), np.array(t2)


def _train(keys, params, state, wake, protocol, cfg, order, seconds, tag):
    n_steps = _steps(seconds * 1000.0, cfg.dt)
    stim = sequence_stimulus(protocol, n_steps, cfg.dt, order)
    params, state, _ = _run(keys, params, state, wake, stim, protocol, cfg, _QUIET, True, tag)
    return params, state


def _consolidate(keys, params, state, mod, protocol, cfg, tag):
    """The consolidation period (STDP on, no input); its first raster_s s are recorded."""
    k = protocol.n_groups
    shown = min(protocol.raster_s, protocol.consolidation_s)
    first = np.zeros((_steps(shown * 1000.0, cfg.dt), k), np.float32)
    rest = np.zeros((_steps((protocol.consolidation_s - shown) * 1000.0, cfg.dt), k))
    params, state, rec = _run(keys, params, state, mod, first, protocol, cfg, _RASTER, True, tag)
    if rest.shape[0]:
        params, state, _ = _run(
            keys, params, state, mod, rest, protocol, cfg, _QUIET, True, tag + 1
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
    "S1"/"S2"; after_learning is shared by both conditions), ``replay_order[cond]`` (sleep
    only; NaN for quiet wake, which has no Up states) and the first ``raster_s`` s of each
    consolidation period of seed 0, ``raster[cond]`` (n_bins, N) uint8.
    """
    log = log or (lambda msg: None)
    protocol = Protocol() if protocol is None else protocol
    n_seeds = dynamics.check_count(n_seeds, "n_seeds", "run_experiment")
    check_protocol(protocol, cfg.n_exc, "run_experiment")
    smap = sleep_states.StateMap() if smap is None else smap
    keys = jax.random.split(jax.random.key(seed), n_seeds)
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
    for c, (cond, mod) in enumerate(zip(CONDITIONS, (mods["NREM"], wake))):
        log(f"{cond}: {protocol.consolidation_s} s, then S2 ({protocol.interference_s} s)")
        p, st, raster = _consolidate(keys, params, state, mod, protocol, cfg, 10 + 10 * c)
        st, a1, a2, u1, u2 = _test(keys, p, st, wake, protocol, cfg, 12 + 10 * c)
        p, st = _train(keys, p, st, wake, protocol, cfg, s2, protocol.interference_s, 13 + 10 * c)
        st, b1, b2, v1, v2 = _test(keys, p, st, wake, protocol, cfg, 14 + 10 * c)
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
        bin_ms = _RASTER.every * cfg.dt
        out["replay_order"][cond] = np.array(
            [replay_order(r, bin_ms, protocol, s1) for r in raster]
        )
        out["raster"][cond] = raster[0]
    return out


def paired_stats(a, b) -> dict:
    """Mean and 95 % CI (t distribution, ddof = 1) of a, b and d = a - b over seeds, the paired
    t-test and the Wilcoxon signed-rank test of a against b (scipy.stats). a, b: (n,) paired,
    n >= 2. The p values are NaN only when every d is exactly 0 (no test has a statistic) or
    a value is NaN; a consistent difference, however small, is tested."""
    from scipy import stats

    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.ndim != 1 or a.shape != b.shape or a.size < 2:
        raise ValueError(
            f"paired_stats: a and b must be 1-D of one length n >= 2 (paired seeds), got "
            f"shapes {a.shape} and {b.shape}"
        )

    def ci(x):
        m, se = float(np.mean(x)), float(np.std(x, ddof=1) / np.sqrt(x.size))
        h = float(stats.t.ppf(0.975, x.size - 1) * se)
        return {"mean": m, "ci95": [m - h, m + h]}

    d = a - b
    untestable = bool(np.all(d == 0) or np.isnan(d).any())
    return {
        "a": ci(a),
        "b": ci(b),
        "difference": ci(d),
        "t_test_p": float("nan") if untestable else float(stats.ttest_rel(a, b).pvalue),
        "wilcoxon_p": float("nan") if untestable else float(stats.wilcoxon(a, b).pvalue),
        "n": int(a.size),
    }
