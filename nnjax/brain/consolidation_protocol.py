"""The consolidation experiment's settings and stimuli (:mod:`~nnjax.brain.consolidation`).

:class:`Protocol` (the settings), :data:`SMALL_CORTEX` (the network it runs on), the groups of
E cells that hold a sequence (:func:`groups`), the stimulus pattern onto them
(:func:`pattern`) and the stimuli of training (:func:`sequence_stimulus`) and of recall tests
(:func:`cue_stimulus`), as NumPy arrays.
"""

from typing import NamedTuple

import numpy as np

from nnjax.brain import circuits, dynamics, plasticity


class Protocol(NamedTuple):
    """The experiment's settings (the :mod:`~nnjax.brain.consolidation` docstring); times in
    ms unless named _s."""

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
