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
training: over the 10 seeds of ``split(key(0), 10)`` the forward links G_k -> G_{k+1} grew
from 4 to 8.6 nS on average (seed 0: 8.4), the backward ones fell to 1.0 nS; at seed 0
a_plus = 0.08 gave 4.9 and 3.3 nS and no recall."""


_POSITIVE_MS = ("step_ms", "width_ms", "period_ms", "cue_ms", "cue_period_ms", "window_ms")
_POSITIVE_S = ("train_s", "interference_s", "consolidation_s", "raster_s")


def check_protocol(protocol: Protocol, n_exc: int, where: str, dt: float | None = None) -> None:
    """A ValueError naming ``where`` and the field unless the protocol can run and be scored:

    * >= 2 groups of >= 1 cell that fit among the n_exc E cells (n_groups * group_size <=
      n_exc): a group reaching past them would drive and score inhibitory cells;
    * the times (``step_ms``, ``width_ms``, ``period_ms``, ``cue_ms``, ``cue_period_ms``,
      ``window_ms``, the phases ``train_s``, ``interference_s``, ``consolidation_s``,
      ``raster_s``) finite and > 0, ``settle_s`` finite and >= 0, ``stim_pA`` finite and > 0,
      ``n_cues`` an int >= 1; with ``dt`` (ms), each phase at least one step;
    * a trial that drives every group: (n_groups - 1) step_ms + width_ms <= period_ms (a
      group starting after the period is never driven);
    * cue_period_ms >= 2 window_ms (recall compares a window before and after each cue);
    * the STDP rule's time constants finite and > 0, amplitudes finite and >= 0.

    (Unchecked, a period of 0 or a nan current ran for minutes and reported recall 0; a
    negative phase failed deep in NumPy.)"""
    from nnjax.brain.plasticity import _check_rule

    p = protocol
    dynamics.check_count(p.n_groups, "protocol.n_groups", where, minimum=2)
    dynamics.check_count(p.group_size, "protocol.group_size", where)
    if p.n_groups * p.group_size > n_exc:
        raise ValueError(
            f"{where}: protocol.n_groups * protocol.group_size = "
            f"{p.n_groups * p.group_size} must be <= n_exc = {n_exc} (the groups "
            "are E cells)"
        )
    dynamics.check_count(p.n_cues, "protocol.n_cues", where)
    for name in (*_POSITIVE_MS, *_POSITIVE_S, "stim_pA", "settle_s"):
        _check_number(getattr(p, name), f"protocol.{name}", where, name == "settle_s")
    if (p.n_groups - 1) * p.step_ms + p.width_ms > p.period_ms:
        raise ValueError(
            f"{where}: protocol.period_ms = {p.period_ms} must hold a whole trial, (n_groups - "
            f"1) step_ms + width_ms = {(p.n_groups - 1) * p.step_ms + p.width_ms} ms"
        )
    if p.cue_period_ms < 2 * p.window_ms:
        raise ValueError(
            f"{where}: protocol.cue_period_ms = {p.cue_period_ms} must be >= 2 window_ms = "
            f"{2 * p.window_ms} (a window before and one after each cue)"
        )
    if dt is not None:
        for name in _POSITIVE_S:
            if _steps(getattr(p, name) * 1000.0, dt) < 1:
                raise ValueError(f"{where}: protocol.{name} = {getattr(p, name)} s is under "
                                 f"one time step of {dt} ms")  # fmt: skip
    if not isinstance(p.stdp, plasticity.PairSTDPParams):
        raise ValueError(f"{where}: protocol.stdp must be a PairSTDPParams, got {p.stdp!r}")
    _check_rule(p.stdp, 0.0, ("tau_plus", "tau_minus"), f"{where}: protocol.stdp")
    for name in ("a_plus", "a_minus"):
        _check_number(getattr(p.stdp, name), f"protocol.stdp.{name}", where, True)


def _check_number(value, name: str, where: str, allow_zero: bool = False) -> None:
    """A ValueError naming ``where: name`` unless ``value`` is a finite number > 0 (>= 0)."""
    if isinstance(value, bool) or dynamics.concrete(value) is None:
        raise ValueError(f"{where}: {name} must be a number, got {value!r}")
    dynamics.check_positive(value, name, where, allow_zero=allow_zero)


def groups(protocol: Protocol) -> np.ndarray:
    """Cell ids of the groups, (n_groups, group_size): G_k = the k-th block of E cells."""
    for name in ("n_groups", "group_size"):  # 0 or 2.5 failed in a reshape
        dynamics.check_count(getattr(protocol, name), f"protocol.{name}", "groups")
    return np.arange(protocol.n_groups * protocol.group_size).reshape(protocol.n_groups, -1)


def pattern(protocol: Protocol, n: int) -> np.ndarray:
    """The stimulus pattern (n, n_groups): stim_pA of current into the cells of each group."""
    n = dynamics.check_count(n, "n", "pattern", minimum=0)
    need = len(groups(protocol).ravel())
    if need > n:  # an IndexError before
        raise ValueError(f"pattern: n = {n} cells cannot hold the groups' {need} cells")
    dynamics.check_finite(protocol.stim_pA, "protocol.stim_pA", "pattern")
    P = np.zeros((n, protocol.n_groups), np.float32)
    for k, ids in enumerate(groups(protocol)):
        P[ids, k] = protocol.stim_pA
    return P


def _check_groups(ids, protocol: Protocol, name: str, where: str) -> None:
    """A ValueError unless ``ids`` is a non-empty sequence of distinct group ids (ints) in
    [0, n_groups): -1 indexed the last group silently, 9 was an IndexError."""
    a = np.asarray(list(ids) if isinstance(ids, range) else ids)
    n = protocol.n_groups
    if (
        a.ndim != 1
        or a.size == 0
        or a.dtype.kind not in "iu"
        or len(set(a.tolist())) != a.size
        or a.min() < 0
        or a.max() >= n
    ):
        raise ValueError(
            f"{where}: {name} must be distinct group ids (ints) in [0, {n}), got {ids!r}"
        )


def _steps(ms: float, dt: float) -> int:
    return int(round(ms / dt))


def sequence_stimulus(protocol: Protocol, n_steps: int, dt: float, order) -> np.ndarray:
    """(n_steps, n_groups) 0/1: group order[j] on during [j step_ms, j step_ms + width_ms) of
    every trial of period_ms."""
    where = "sequence_stimulus"
    n_steps = dynamics.check_count(n_steps, "n_steps", where, minimum=0)
    dt = dynamics.check_dt(dt, where)  # dt <= 0 ran silently
    _check_groups(order, protocol, "order", where)
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
    dt = dynamics.check_dt(dt, "cue_stimulus")  # 0 was a ZeroDivisionError
    _check_groups(cued, protocol, "cued", "cue_stimulus")
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
