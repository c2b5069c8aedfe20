"""Sleep states as neuromodulation of an E/I network, and the hypnogram that schedules them.

Units: ms, mV, nS, pA, Hz (as :mod:`~nnjax.brain.network`); times of a hypnogram in s.

Two levels, each in [0, 1], stand for the neuromodulators: ``ach`` (acetylcholine, from the
basal forebrain and the brainstem) and ``mono`` (the monoamines: noradrenaline, serotonin,
histamine). Wake: both high; NREM: both low; REM: acetylcholine as high as in wake,
monoamines near silent (Krishnan et al. 2016, eLife 5:e18607, who follow these levels
through a thalamocortical model). :class:`StateMap` turns levels into the network's
:class:`~nnjax.brain.network.Modulation`, each effect one documented action:

    g_K       = g_K_max (1 - (ach + mono) / 2)     K+ leak, closed by ACh and monoamines
    b_scale   = 1 - b_block ach                     spike-triggered adaptation (the slow
                                                    AHP / M-current), blocked by ACh
    gain_ee   = 1 + (gain_ee_max - 1) (1 - ach)     intracortical excitation, presynaptically
                                                    suppressed by ACh
    ext_scale = ext_min + (1 - ext_min) mono        the drive from outside the cortex
                                                    (arousal systems, sensory input)

Krishnan et al. model the first and third (ACh reduces the K+ leak of cortical and thalamic
cells and the AMPA strength between cortical pyramids; monoamines reduce the K+ leak too);
the second is the switch between asynchronous firing and slow waves in the AdEx networks of
Nghiem et al. 2020 (Cereb Cortex 30:3451), where a cholinergic agonist reduces adaptation;
Compte et al. 2003 and Bazhenov et al. 2002 generate the slow oscillation by such
activity-dependent K+ currents. What is left out: the thalamus (so no spindles), GABA-level
changes, NMDA, short-term depression, synaptic and intrinsic heterogeneity beyond the random
connectivity. The NREM Up/Down states here come from adaptation: an Up state ends when the
adaptation current w built up by its spikes silences the E cells; w decays over tau_w in
the Down state until the external input ignites the next Up state.

:data:`STATES` holds the levels of wake, NREM and REM; :func:`schedule` turns a hypnogram
(one stage code per epoch) into per-step levels, with linear ramps at the transitions, so
that :func:`run_night` drives a network through the night inside one scan.
"""

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from nnjax.brain import dynamics, network
from nnjax.brain.hypnogram import check_hypnogram
from nnjax.layers.checks import as_real, located

Array = jax.Array

STAGE_NAMES: tuple[str, ...] = ("wake", "NREM", "REM")
"""Hypnogram codes of a simulated night: wake = 0, NREM = 1, REM = 2."""


class Levels(NamedTuple):
    """Neuromodulator levels in [0, 1] (scalars or series): acetylcholine and monoamines."""

    ach: Any = 1.0
    mono: Any = 1.0


STATES: dict[str, Levels] = {
    "wake": Levels(ach=1.0, mono=1.0),
    "NREM": Levels(ach=0.0, mono=0.0),
    "REM": Levels(ach=1.0, mono=0.0),
}
"""Levels of each stage, in the order of :data:`STAGE_NAMES` (Krishnan et al. 2016's
qualitative scheme with the levels at their extremes)."""


class StateMap(NamedTuple):
    """How levels act (module docstring): g_K_max (nS), b_block, gain_ee_max, ext_min."""

    g_K_max: Any = 1.5
    b_block: Any = 1.0
    gain_ee_max: Any = 1.8
    ext_min: Any = 0.35


def _check_unit(value, name: str, where: str) -> None:
    """A ValueError naming ``where: name`` when a concrete value (any element) lies outside
    [0, 1] or is not a number (a string "0.5" ran as 0.5, True as 1, None failed deep in
    JAX); traced values and NaN pass (NaN gives NaN)."""
    v = dynamics.concrete(value)
    if not isinstance(value, jax.core.Tracer) and (v is None or v.dtype.kind == "b"):
        raise ValueError(f"{where}: {name} must be a number in [0, 1], got {value!r}")
    if v is not None and ((v < 0) | (v > 1)).any():
        raise ValueError(f"{where}: {name} must lie in [0, 1], got {v[(v < 0) | (v > 1)][0]}")


def check_levels(levels: Levels, where: str) -> None:
    """ValueError unless concrete levels lie in [0, 1] (ach 2 would make b_scale negative)."""
    for field, v in zip(Levels._fields, levels):
        _check_unit(v, f"levels.{field}", where)


def modulation(levels: Levels, smap: StateMap | None = None) -> network.Modulation:
    """The network modulation of ``levels`` (formulas: module docstring); differentiable and
    elementwise, so series of levels give series of modulation; ``smap`` defaults to
    StateMap(). Concrete levels, b_block and ext_min must be numbers in [0, 1] (so that
    b_scale and ext_scale do too)."""
    smap = StateMap() if smap is None else smap
    for name, value, kind in (("levels", levels, Levels), ("smap", smap, StateMap)):
        if not isinstance(value, kind):  # a tuple failed with an AttributeError
            raise ValueError(
                f"modulation: {name} must be a {kind.__name__}, got {type(value).__name__}"
            )
    check_levels(levels, "modulation")
    _check_unit(smap.b_block, "smap.b_block", "modulation")
    _check_unit(smap.ext_min, "smap.ext_min", "modulation")
    for name in ("g_K_max", "gain_ee_max"):  # a negative K+ conductance or release gain
        dynamics.check_positive(getattr(smap, name), f"smap.{name}", "modulation", allow_zero=True)
    try:
        jnp.broadcast_shapes(jnp.shape(levels.ach), jnp.shape(levels.mono))
    except ValueError:
        raise ValueError(
            f"modulation: levels.ach {jnp.shape(levels.ach)} and levels.mono "
            f"{jnp.shape(levels.mono)} must broadcast to one shape (scalars or one series)"
        ) from None
    ach, mono = jnp.broadcast_arrays(
        jnp.asarray(levels.ach, jnp.result_type(float)),
        jnp.asarray(levels.mono, jnp.result_type(float)),
    )
    one = jnp.ones_like(ach)
    return network.Modulation(
        g_K=smap.g_K_max * (1.0 - 0.5 * (ach + mono)),
        b_scale=1.0 - smap.b_block * ach,
        gain_ee=1.0 + (smap.gain_ee_max - 1.0) * (1.0 - ach),
        gain_ei=one,
        gain_ie=one,
        gain_ii=one,
        ext_scale=smap.ext_min + (1.0 - smap.ext_min) * mono,
    )


MAX_STEPS = 2**30
"""The longest night :func:`schedule` builds, in steps (about 30 h at dt = 0.1 ms): its two
float32 series then take 8 GiB, and a network run over them far more."""


def _ramp(values: np.ndarray, per: int, width: int) -> np.ndarray:
    """x = np.repeat(values, per) (n,) convolved with a centred box of ``width`` samples,
    edges held, as float32: steps become linear ramps of that width. Output i is the mean of
    x over [i - width // 2, i + (width - 1) // 2], indices clamped to [0, n - 1] (the old
    np.convolve(mode="same") of x padded with its end values). O(n): the box sum is taken,
    from a cumulative sum over each stretch, only where the window holds a step; elsewhere
    the output is x itself. x is never built in float64 (4 bytes a step, not 24)."""
    values = np.asarray(values, np.float64)
    out = np.repeat(values.astype(np.float32), per)
    n, half = len(out), width // 2
    steps = (np.flatnonzero(values[1:] != values[:-1]) + 1) * per  # x[c] != x[c - 1]
    if width <= 1 or steps.size == 0:
        return out
    # output i's window [i - half, i - half + width - 1] holds step c iff
    # c - width + half < i < c + half: stretches [start, stop), merged where they touch
    start, stop = np.maximum(steps - width + half + 1, 0), np.minimum(steps + half, n)
    first = np.flatnonzero(np.r_[True, start[1:] > stop[:-1]])
    for a, b in zip(start[first], np.maximum.reduceat(stop, first)):
        idx = np.clip(np.arange(a - half, b - half + width - 1), 0, n - 1)
        c = np.concatenate([[0.0], np.cumsum(values[idx // per])])
        out[a:b] = (c[width:] - c[:-width]) / width
    return out


def schedule(hypno, epoch_s: float, dt: float, *, states=None, ramp_s: float = 0.0) -> Levels:
    """Per-step levels (n_steps,) float32 for a hypnogram (codes of :data:`STAGE_NAMES`).

    Each epoch of ``epoch_s`` seconds holds its stage's levels (``states``: a dict name ->
    Levels, default :data:`STATES`); a transition is a linear ramp of ``ramp_s`` s centred on
    the boundary, at most one epoch wide (0 <= ramp_s <= epoch_s). Each epoch lasts
    per = round(epoch_s * 1000 / dt) steps and n_steps = len(hypno) * per, at most
    :data:`MAX_STEPS` (a longer night is a ValueError before anything is allocated). When
    epoch_s is not a whole number of steps, epoch k starts at k per dt, not k epoch_s: for
    1 s epochs at dt = 0.3 ms, 3333 steps = 0.9999 s each, so the schedule runs ahead of the
    hypnogram's clock by 0.1 ms an epoch (pick a dt that divides epoch_s; ``nnjax night``
    asks for whole 10 ms). ``states`` needs levels for every stage name, used or not. Time
    and memory are O(n_steps), whatever the ramp's width.
    """
    h = located("schedule", check_hypnogram, hypno, STAGE_NAMES)
    states = STATES if states is None else states
    missing = [s for s in STAGE_NAMES if s not in states]
    if missing:
        raise ValueError(f"schedule: states has no levels for {missing}")
    for name in STAGE_NAMES:
        check_levels(states[name], f"schedule: states[{name!r}]")
    if not 0 < (as_real(epoch_s) or 0.0) < np.inf:  # True ran as 1 s, np.float32 was refused
        raise ValueError(f"schedule: epoch_s must be > 0 (s) and finite, got {epoch_s!r}")
    epoch_s = as_real(epoch_s)
    per = int(round(epoch_s * 1000.0 / network.dynamics.check_dt(dt, "schedule")))
    if per < 1:  # a night of 0 steps, silently
        raise ValueError(f"schedule: epoch_s = {epoch_s} s is under one step of dt = {dt} ms")
    if len(h) * per > MAX_STEPS:  # np.repeat allocated tens of GB, or was killed filling them
        raise ValueError(
            f"schedule: the night would take {len(h)} epochs x {per} steps = {len(h) * per} "
            f"steps of dt = {dt} ms, more than MAX_STEPS = {MAX_STEPS} (two float32 series of "
            f"{8 * len(h) * per / 2**30:.0f} GiB); use a larger dt or a shorter hypnogram"
        )
    # read as written, as epoch_s (np.float32(0.3) is 0.3, not 0.30000001192092896 > epoch_s)
    ramp = as_real(ramp_s)
    ramp_s = dynamics.check_number(ramp_s, "ramp_s", "schedule") if ramp is None else ramp
    if not 0 <= ramp_s <= epoch_s:  # a wider ramp blends non-adjacent epochs; inf overflowed
        raise ValueError(f"schedule: ramp_s must be >= 0 (s) and <= epoch_s, got {ramp_s!r}")
    width = int(round(ramp_s * 1000.0 / float(dt)))  # per's float dt, so width <= per
    out = []
    for field in Levels._fields:
        per_stage = np.array(  # one number per stage (an array failed in float())
            [dynamics.check_number(getattr(states[s], field), f"states[{s!r}].{field}", "schedule")
             for s in STAGE_NAMES]
        )  # fmt: skip
        out.append(_ramp(per_stage[h], per, width))
    return Levels(*out)


def run_night(
    key,
    params: network.NetworkParams,
    spec: network.NetworkSpec,
    hypno,
    epoch_s: float,
    *,
    smap: StateMap | None = None,
    ramp_s: float = 0.0,
    monitor: network.Monitor | None = None,
    state=None,
    stdp=None,
    traces=None,
    stop=None,
    hooks=(),
) -> network.Run:
    """Simulate the night of ``hypno``: the levels of :func:`schedule` as the modulation
    series of one :func:`network.simulate` (one compile, one scan); the monitor defaults to
    1 ms bins at dt = 0.1 ms (Monitor(every=10)). ``state``, ``stdp`` and ``traces`` as
    :func:`network.simulate`'s (a plastic night goes on from ``Run.traces``).

    With ``stop`` (a :class:`nnjax.train.StopFlag`) or ``hooks``, the night runs in blocks of
    :data:`BLOCK_S` s (whole bins), one compiled call each (:func:`network.simulate_blocks`:
    the same numbers): a stop requested ends it after the running block, and the Run holds
    the blocks simulated (its record's rows say how many); ``hooks`` are called after each
    block (the driver's ChunkReport)."""
    monitor = network.Monitor(every=10) if monitor is None else monitor
    levels = schedule(hypno, epoch_s, spec.dt, ramp_s=ramp_s)
    n_steps = int(levels.ach.shape[0])
    mod = modulation(Levels(jnp.asarray(levels.ach), jnp.asarray(levels.mono)), smap)
    kwargs = dict(state=state, modulation=mod, monitor=monitor, stdp=stdp, traces=traces)
    if stop is None and not hooks:
        return network.simulate(key, params, spec, n_steps, **kwargs)
    block = max(1, int(BLOCK_S * 1000.0 / spec.dt) // monitor.every) * monitor.every
    return network.simulate_blocks(
        key, params, spec, n_steps, block, stop=stop, hooks=hooks, **kwargs
    )[0]


BLOCK_S = 1.0
"""The blocks of a night that :func:`run_night` runs one call each when it can be stopped
(s; the last one shorter): a stop waits for the running block (0.8-1.7 s of wall time for
the 1000-cell CORTEX network on 2 cores of an Intel Xeon, in two runs)."""


SLOW_BAND: tuple[float, float] = (0.5, 2.0)
"""The band of the slow oscillation's spectral peak (Hz)."""


_DESCRIBED = ("rate", "lfp", "spikes")
_WINDOW_MS = 5.0  # the windows of describe's pairwise correlation


def _spectrum(lfp: np.ndarray, fs: float, nperseg: int) -> dict:
    """The LFP's slow-band fraction, slow / total with total the power from the first
    non-zero frequency (fs / nperseg: 0.25 Hz for 4 s segments, 0.5 Hz for a 2 s stretch) to
    100 Hz, and its spectral peak in (0, 4] Hz; NaN for both when the
    LFP carries no power (a silent network) or holds NaN."""
    from nnjax.brain import rhythms

    freqs, psd = rhythms.welch(lfp, fs, nperseg=nperseg)
    psd = np.asarray(psd)
    slow = float(rhythms.band_power(freqs, psd, SLOW_BAND))
    total = float(rhythms.band_power(freqs, psd, (freqs[1], min(freqs[-1], 100.0))))
    low = (freqs > 0) & (freqs <= 4.0)
    if not (total > 0 and np.isfinite(psd[low]).all() and psd[low].max() > 0):
        return {"slow_power_fraction": float("nan"), "peak_hz_below_4": float("nan")}
    return {
        "slow_power_fraction": slow / total,
        "peak_hz_below_4": float(freqs[low][np.argmax(psd[low])]),
    }


def describe(record: dict, bin_ms: float, n_exc: int, *, nperseg: int | None = None) -> dict:
    """What a stage looks like, from a recording with ``rate``, ``lfp`` and a ``spikes``
    raster in bins of ``bin_ms`` (Monitor(spikes="raster"), the defaults otherwise): the E
    rate (Hz); the LFP's relative power in :data:`SLOW_BAND` and its spectral peak below 4 Hz
    (Welch, 4 s segments unless ``nperseg``; NaN for an LFP without power, e.g. a silent
    network); Up/Down states of the E rate (detect_updown: frequency in Hz, the fraction of
    time Up, the number of Up states); the median CV of the E cells' ISIs (cells with >= 5
    spikes) and their mean pairwise count correlation in 5 ms windows. The record holds
    rate (n_bins, >= 1), lfp (n_bins,) and spikes (n_bins, N), one n_bins, 1 <= n_exc <= N;
    bin_ms divides the 5 ms windows (0.1, 0.5, 1, 2.5, 5 ms, ...); the LFP's Welch bins
    (fs = 1000 / bin_ms) must reach the slow band's top, 2 Hz, below the Nyquist frequency
    fs/2, with a first bin under 100 Hz (else a ValueError)."""
    from nnjax.brain import activity, detect

    missing = [k for k in _DESCRIBED if k not in record]
    if missing:
        raise ValueError(
            f"describe: record lacks {missing}; record with Monitor(spikes='raster', rate=True, "
            f"lfp=True), got keys {sorted(record)}"
        )
    bin_ms = dynamics.check_number(bin_ms, "bin_ms", "describe")  # True ran as 1 ms
    dynamics.check_positive(bin_ms, "bin_ms", "describe")
    fs = 1000.0 / bin_ms
    rate, lfp, raster = (np.asarray(record[k]) for k in _DESCRIBED)
    shapes = {"rate": (2, "(n_bins, >= 1)"), "lfp": (1, "(n_bins,)"), "spikes": (2, "(n_bins, N)")}
    for k, a in zip(_DESCRIBED, (rate, lfp, raster)):
        if a.ndim != shapes[k][0] or a.dtype.kind not in "biuf" or 0 in a.shape[1:]:
            raise ValueError(f"describe: record[{k!r}] must be real, of shape {shapes[k][1]}, "
                             f"got {a.shape} of {a.dtype}")  # fmt: skip
    if not lfp.shape[0]:  # was "nperseg = 0 samples ... bins of inf Hz up to 0 Hz"
        raise ValueError("describe: the record is empty (0 bins): record a stage first")
    n_exc = dynamics.check_count(n_exc, "n_exc", "describe")  # -1 dropped the last cell
    if n_exc > raster.shape[1]:
        raise ValueError(f"describe: n_exc = {n_exc} exceeds the raster's {raster.shape[1]} cells")
    if nperseg is None:
        nperseg = min(int(4 * fs), lfp.size)
    else:
        nperseg = dynamics.check_count(nperseg, "nperseg", "describe", minimum=2)
    step, top = (fs / nperseg, (nperseg // 2) * fs / nperseg) if nperseg else (np.inf, 0.0)
    if not (SLOW_BAND[1] <= top and step < min(top, 100.0)):  # band_power named itself
        raise ValueError(
            f"describe: the LFP's spectrum, nperseg = {nperseg} samples at fs = {fs:g} Hz "
            f"(bin_ms = {bin_ms:g}), has bins of {step:g} Hz up to {top:g} Hz (the Nyquist "
            f"frequency fs/2 = {fs / 2:g} Hz at most); it must reach the slow band's "
            f"{SLOW_BAND[1]:g} Hz and have a bin below 100 Hz: a longer LFP or shorter bins"
        )
    if not rate.shape[0] == lfp.shape[0] == raster.shape[0]:  # each was read on its own bins
        raise ValueError(f"describe: record's rate, lfp and spikes must have one n_bins, got "
                         f"{rate.shape[0]}, {lfp.shape[0]}, {raster.shape[0]}")  # fmt: skip
    per = round(_WINDOW_MS / bin_ms)  # else pairwise_correlation's error, after the rest ran
    if per < 1 or abs(per * bin_ms - _WINDOW_MS) > 1e-6 * _WINDOW_MS:
        raise ValueError(
            f"describe: bin_ms = {bin_ms:g} must divide the {_WINDOW_MS:g} ms windows of the "
            f"pairwise correlation (0.5, 1, 2.5, 5 ms, ...)"
        )
    rate = rate[:, 0]
    if not np.isfinite(rate).all():  # detect_updown's refusal read as "no Up state"
        raise ValueError("describe: record['rate'] must be finite, got nan or inf")
    lfp = lfp.astype(np.float64)
    out = {"rate_exc_hz": float(rate.mean()), **located("describe", _spectrum, lfp, fs, nperseg)}
    try:
        ud = detect.detect_updown(rate, fs)
        out.update(updown_hz=ud.frequency, up_fraction=float(ud.state.mean()), n_up=len(ud.up))
    except ValueError:  # a silent population: no Up state at all
        out.update(updown_hz=float("nan"), up_fraction=0.0, n_up=0)
    raster = raster[:, :n_exc]
    cv = activity.isi_cv(raster, bin_ms)
    out["cv_isi_median"] = float(np.nanmedian(cv)) if np.isfinite(cv).any() else float("nan")
    out["pairwise_correlation"] = activity.pairwise_correlation(
        raster, bin_ms, window_ms=_WINDOW_MS
    )
    return out
