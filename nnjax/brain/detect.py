"""Sleep-event detectors: slow waves, spindles, Up/Down states; and scoring them.

Units: time in s, frequency in Hz, the signal in u (µV for EEG: the slow-wave defaults are
µV; a simulated LFP proxy in other units needs its own thresholds), rates in Hz. Detectors take
one channel, a finite 1-D array (n,) sampled at ``fs`` Hz (a nan or inf sample is refused
with a ValueError: the zero-phase filter would spread it over the whole signal); a ``band``
must lie below the Nyquist frequency fs/2 (a ValueError naming the band, fs and fs/2). JAX
computes the filters and envelopes (:mod:`~nnjax.brain.rhythms`); the events, whose number
depends on the data, are then found in NumPy on the host, so the detectors themselves are
neither jitted nor differentiated.

* :func:`detect_slow_waves` (Massimini et al. 2004, J Neurosci 24:6862): band-pass
  :data:`~nnjax.brain.rhythms.SLOW_WAVE_BAND` = 0.3–1.5 Hz (Butterworth order 2, zero phase;
  YASA's band; it keeps the < 1 Hz slow oscillation and the faster delta waves whose
  negative half-waves last 0.3–1 s). A candidate is a negative zero crossing followed by a
  positive one 0.3–1.0 s later; it is a slow wave if its negative peak is <= -80 µV and its
  peak-to-peak amplitude (the highest point before the next negative crossing minus the
  negative peak) is >= 140 µV.
* :func:`detect_spindles`: band-pass :data:`~nnjax.brain.rhythms.SPINDLE_BAND` = 11–16 Hz
  (Butterworth order 4, zero phase), envelope = moving RMS over 0.3 s (as YASA). Thresholds
  are relative to the signal's own envelope: with m = median(envelope), an event is a run
  where the envelope exceeds ``thresh_low`` m (1.5 m) and reaches ``thresh_high`` m (2.5 m)
  somewhere; such runs closer than 0.5 s are merged, and an event lasts 0.5–2 s. The
  median is robust to the spindles themselves, but needs a background: x silent over half
  its length (a burst planted on zeros) is a ValueError, not an empty result; a constant x
  has no event (nor has any x whose envelope peaks within 8 float eps of median |x|: that
  is rounding). The envelope spreads an event by up to half the RMS window at each end,
  and the filter's ringing by more when a burst starts or stops abruptly: a 1 s, 20 µV,
  13 Hz burst on white noise of SD 2 µV (fs = 200 Hz) is found within 0.03 s of its start
  and end with a Hann envelope, but 0.35 s early and 0.41 s late with a rectangular one (a
  1.8 s rectangular burst then lasts over 2 s and is dropped); the tests' Tukey-tapered
  spindles start -0.34..+0.23 s and end -0.26..+0.47 s from the truth (medians within
  0.03 s).
* :func:`detect_updown`: the population rate smoothed over 20 ms, then hysteresis: Up when
  the rate rises above ``up_threshold``, Down when it falls below ``down_threshold``; Down
  runs shorter than ``min_down_s`` are absorbed into Up, then Up runs shorter than
  ``min_up_s`` into Down (a run cut by the record's start or end is judged by its length
  inside the record; one filling the whole record keeps its state). Default thresholds 0.5
  and 0.25 times the 95th percentile of the smoothed rate: they assume near-silent Down
  states (as in slow-wave sleep) and Up states over >= 5 % of the time; for a membrane
  potential pass both thresholds. A stationary Poisson rate then shows no alternation if a
  smoothing window holds >= ~20 expected spikes (e.g. 100 neurons at >= 10 Hz over 20 ms);
  with fewer, its Poisson dips can pass for Down states (100 neurons at 5 Hz: one 64 ms
  "Down state" in a minute, in the tests' seed).
* :func:`match_events`: precision and recall of detected intervals against true ones; a
  detection matches a true event if their intervals overlap, each used at most once, and
  the number of matches is the largest possible (whatever the order of the intervals).
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from nnjax.brain import rhythms as rh
from nnjax.brain.dynamics import check_number, concrete


def _check_pair(p, who: str, name: str) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in p)
    except (TypeError, ValueError):
        raise ValueError(f"{who}: {name} must be a pair (low, high), got {p!r}") from None
    if not 0 <= lo < hi:
        raise ValueError(f"{who}: {name} must satisfy 0 <= low < high, got {p!r}")
    return lo, hi


def _one_channel(x, who: str, name: str = "x") -> np.ndarray:
    """x as one floating channel (n,), refused if it holds nan or inf: the band-pass filter
    and the moving windows would spread one nan over the whole signal and hide every event."""
    x = rh.as_signal(x, who)
    if x.ndim != 1:
        raise ValueError(
            f"{who}: {name} must be one channel of shape (n,), got {x.shape}; loop or "
            "use a list comprehension over channels"
        )
    if x.shape[0] == 0:  # detect_updown's message named moving_average
        raise ValueError(f"{who}: {name} must hold at least one sample, got shape {x.shape}")
    v = concrete(x)
    if v is not None and not np.all(np.isfinite(v)):
        bad = int(v.size - np.count_nonzero(np.isfinite(v)))
        raise ValueError(
            f"{who}: {name} must be finite, got {bad} nan/inf of {v.size} samples; "
            "drop or interpolate them first"
        )
    return x


def runs(mask) -> np.ndarray:
    """(k, 2) [start, stop) sample indices of the runs of True in a boolean array (n,)."""
    mask = np.asarray(mask, dtype=bool)
    if mask.ndim != 1:
        raise ValueError(f"runs: mask must be a boolean array (n,), got shape {mask.shape}")
    m = np.concatenate([[False], mask, [False]])
    edges = np.flatnonzero(np.diff(m.astype(np.int8)))
    return edges.reshape(-1, 2)


class SlowWaves(NamedTuple):
    """Detected slow waves, arrays (k,): times in s, amplitudes in the signal's units."""

    start: np.ndarray  # negative zero crossing
    neg_peak: np.ndarray  # time of the negative peak
    mid: np.ndarray  # positive zero crossing
    pos_peak: np.ndarray  # time of the positive peak
    end: np.ndarray  # next negative zero crossing
    neg_amplitude: np.ndarray  # value at the negative peak (< 0)
    pos_amplitude: np.ndarray  # value at the positive peak
    ptp: np.ndarray  # pos_amplitude - neg_amplitude

    @property
    def intervals(self) -> np.ndarray:
        """(k, 2) [start, end] in s."""
        return np.stack([self.start, self.end], axis=1)


def detect_slow_waves(
    x,
    fs,
    *,
    band=rh.SLOW_WAVE_BAND,
    neg_duration_s=(0.3, 1.0),
    neg_threshold: float = -80.0,
    ptp_threshold: float = 140.0,
    order: int = 2,
) -> SlowWaves:
    """Slow waves in x (n,) (µV by default) at fs Hz, Massimini-style (module docstring).

    ``neg_duration_s``: allowed time from the negative to the positive zero crossing (s);
    ``neg_threshold``: the negative peak must be <= it; ``ptp_threshold``: the peak-to-peak
    amplitude must be >= it (both in the signal's units, on the band-passed signal). The
    first and last half-waves, cut by the recording's ends, are never events.
    """
    who = "detect_slow_waves"
    fs = rh.check_fs(fs, who)
    dmin, dmax = _check_pair(neg_duration_s, who, "neg_duration_s")
    neg_threshold = check_number(neg_threshold, "neg_threshold", who)  # not a str or an array
    ptp_threshold = check_number(ptp_threshold, "ptp_threshold", who)
    if not (-np.inf < neg_threshold < 0 < ptp_threshold < np.inf):  # inf: never a wave
        raise ValueError(
            f"{who}: need finite neg_threshold < 0 < ptp_threshold, got {neg_threshold}, "
            f"{ptp_threshold}"
        )
    xf = rh.bandpass(_one_channel(x, who), fs, band, order=order, who=who)  # band < fs/2
    xf = np.asarray(xf, dtype=np.float64)
    neg = xf < 0
    change = np.flatnonzero(neg[1:] != neg[:-1]) + 1  # first sample of each new sign
    events = []
    for j, c in enumerate(change[:-2]):
        if not neg[c]:
            continue
        up, nxt = change[j + 1], change[j + 2]  # alternate signs: up, then the next down
        if not dmin <= (up - c) / fs <= dmax:
            continue
        i_neg = c + int(np.argmin(xf[c:up]))
        i_pos = up + int(np.argmax(xf[up:nxt]))
        if xf[i_neg] <= neg_threshold and xf[i_pos] - xf[i_neg] >= ptp_threshold:
            events.append((c, i_neg, up, i_pos, nxt))
    ev = np.asarray(events, dtype=np.int64).reshape(-1, 5)
    neg_amp, pos_amp = xf[ev[:, 1]], xf[ev[:, 3]]
    t = ev / fs
    return SlowWaves(*t.T, neg_amp, pos_amp, pos_amp - neg_amp)


class Spindles(NamedTuple):
    """Detected spindles, arrays (k,): times in s, amplitudes in the signal's units."""

    start: np.ndarray
    peak: np.ndarray  # time of the envelope's maximum
    end: np.ndarray
    duration: np.ndarray  # s
    amplitude: np.ndarray  # peak-to-peak of the sigma-band signal inside the event
    rms: np.ndarray  # the envelope's maximum
    frequency: np.ndarray  # Hz: zero crossings of the sigma-band signal / (2 duration)

    @property
    def intervals(self) -> np.ndarray:
        """(k, 2) [start, end] in s."""
        return np.stack([self.start, self.end], axis=1)


def _merge_close(r: np.ndarray, gap: int) -> np.ndarray:
    """Runs (k, 2) with those separated by fewer than ``gap`` samples joined."""
    if len(r) == 0:
        return r
    new = np.concatenate([[True], r[1:, 0] - r[:-1, 1] >= gap])
    group = np.cumsum(new) - 1
    starts = r[new, 0]
    stops = np.zeros_like(starts)
    np.maximum.at(stops, group, r[:, 1])
    return np.stack([starts, stops], axis=1)


def detect_spindles(
    x,
    fs,
    *,
    band=rh.SPINDLE_BAND,
    window_s: float = 0.3,
    thresh_low: float = 1.5,
    thresh_high: float = 2.5,
    duration_s=(0.5, 2.0),
    min_distance_s: float = 0.5,
    order: int = 4,
) -> Spindles:
    """Sleep spindles in x (n,) at fs Hz (criteria in the module docstring).

    ``thresh_low`` and ``thresh_high`` are multiples of the median moving-RMS envelope of
    the ``band``-passed signal (so any unit works); ``duration_s`` bounds an event's length,
    measured where the envelope exceeds the low threshold; runs that reach the high
    threshold and lie closer than ``min_distance_s`` are merged first.
    """
    who = "detect_spindles"
    fs = rh.check_fs(fs, who)
    dmin, dmax = _check_pair(duration_s, who, "duration_s")
    thresh_low, thresh_high, min_distance_s = (
        check_number(v, name, who)  # a string or an array failed in a comparison
        for name, v in (
            ("thresh_low", thresh_low),
            ("thresh_high", thresh_high),
            ("min_distance_s", min_distance_s),
        )
    )
    if not 0 < thresh_low <= thresh_high < np.inf:
        raise ValueError(
            f"{who}: need 0 < thresh_low <= thresh_high, got {thresh_low}, {thresh_high}"
        )
    if not 0 <= min_distance_s < np.inf:
        raise ValueError(
            f"{who}: min_distance_s must be a finite number >= 0 (s), got {min_distance_s}"
        )
    x = _one_channel(x, who)
    xs = rh.bandpass(x, fs, band, order=order, who=who)
    env = np.asarray(rh.moving_rms(xs, fs, window_s, who=who), dtype=np.float64)
    base, peak = float(np.median(env)), float(env.max())
    if peak <= 8 * np.finfo(xs.dtype).eps * float(jnp.median(jnp.abs(x))):  # a constant x:
        return Spindles(*np.zeros((7, 0)))  # only rounding in the band (-3000 was "silent")
    xs = np.asarray(xs, dtype=np.float64)
    if not base > 1e-6 * peak:  # the ringing outran 1.5 m: one event of ~15 s
        raise ValueError(
            f"{who}: the envelope's median, the unit of thresh_low and thresh_high, is "
            f"{base:.3g}, under 1e-6 of its peak {peak:.3g}: x is silent over half its length "
            "or more, and the filter's ringing would pass the thresholds; add a background "
            "(the recording's noise) or cut the silence"
        )
    r = runs(env > thresh_low * base)
    r = r[[env[a:b].max() >= thresh_high * base for a, b in r]].reshape(-1, 2)
    events = []
    for a, b in _merge_close(r, int(round(min_distance_s * fs))):
        dur = (b - a) / fs
        if not dmin <= dur <= dmax:
            continue
        i_pk = a + int(np.argmax(env[a:b]))
        seg = xs[a:b]
        n_cross = np.count_nonzero(np.signbit(seg[1:]) != np.signbit(seg[:-1]))
        events.append(
            (a / fs, i_pk / fs, b / fs, dur, np.ptp(seg), env[i_pk], n_cross / (2.0 * dur))
        )
    ev = np.asarray(events, dtype=np.float64).reshape(-1, 7)
    return Spindles(*ev.T)


class UpDown(NamedTuple):
    """Up/Down states: state (n,) int8 (1 Up, 0 Down); intervals (k, 2) [start, end) in s."""

    state: np.ndarray
    up: np.ndarray
    down: np.ndarray
    up_threshold: float
    down_threshold: float

    @property
    def frequency(self) -> float:
        """Up/Down alternation frequency in Hz: 1 / mean time between successive Up onsets.

        Onsets are Down-to-Up transitions (an Up state at the recording's start is not one);
        NaN with fewer than two onsets.
        """
        onsets = self.up[:, 0][self.up[:, 0] > 0]
        if len(onsets) < 2:
            return float("nan")
        return float((len(onsets) - 1) / (onsets[-1] - onsets[0]))


@jax.jit
def _hysteresis(r, up, down):
    def step(s, v):
        s = jnp.where(v > up, 1, jnp.where(v < down, 0, s))
        return s, s

    s0 = jnp.where(r[0] > 0.5 * (up + down), 1, 0)
    return jax.lax.scan(step, s0, r)[1]


def _drop_short(state: np.ndarray, value: int, min_len: int) -> np.ndarray:
    """Runs of ``value`` shorter than ``min_len`` samples flipped to the other state, except
    a run filling the whole record: it has no neighbour to be absorbed into."""
    state = state.copy()
    for a, b in runs(state == value):
        if b - a < min_len and b - a < len(state):
            state[a:b] = 1 - value
    return state


def detect_updown(
    rate,
    fs,
    *,
    smooth_s: float = 0.02,
    up_threshold: float | None = None,
    down_threshold: float | None = None,
    min_up_s: float = 0.05,
    min_down_s: float = 0.05,
) -> UpDown:
    """Up and Down states of a population rate (n,) (Hz, or any unit) at fs Hz.

    Hysteresis thresholds in the rate's units (defaults and clean-up in the module
    docstring); ``smooth_s`` = 0 skips the smoothing. Returns :class:`UpDown`, whose
    ``frequency`` is the Up/Down alternation frequency.
    """
    who = "detect_updown"
    fs = rh.check_fs(fs, who)
    r = _one_channel(rate, who, "rate")
    smooth_s, min_up_s, min_down_s = (
        check_number(v, name, who)  # a string failed in a comparison
        for name, v in (("smooth_s", smooth_s), ("min_up_s", min_up_s), ("min_down_s", min_down_s))
    )
    for name, v in (("up_threshold", up_threshold), ("down_threshold", down_threshold)):
        if v is not None and not np.isfinite(check_number(v, name, who)):
            raise ValueError(f"{who}: {name} must be a finite number or None, got {v!r}")
    if not 0 <= smooth_s < np.inf:  # else named by moving_average, or nan read as "smooth"
        raise ValueError(f"{who}: smooth_s must be a finite number >= 0 (s), got {smooth_s}")
    if not (0 <= min_up_s < np.inf and 0 <= min_down_s < np.inf):  # inf: OverflowError
        raise ValueError(
            f"{who}: min_up_s and min_down_s must be >= 0 s and finite, got {min_up_s}, "
            f"{min_down_s}"
        )
    if smooth_s:
        r = rh.moving_average(r, fs, smooth_s)
    r_np = np.asarray(r, dtype=np.float64)
    scale = float(np.percentile(r_np, 95))
    up = 0.5 * scale if up_threshold is None else float(up_threshold)
    down = 0.25 * scale if down_threshold is None else float(down_threshold)
    if not down < up:
        hint = "; the defaults need a rate with a positive 95th percentile" if scale <= 0 else ""
        raise ValueError(f"{who}: need down_threshold < up_threshold, got {down:g} >= {up:g}{hint}")
    state = np.asarray(_hysteresis(r, up, down), dtype=np.int8)
    state = _drop_short(state, 0, int(round(min_down_s * fs)))
    state = _drop_short(state, 1, int(round(min_up_s * fs)))
    return UpDown(state, runs(state == 1) / fs, runs(state == 0) / fs, up, down)


def _intervals(a, name: str) -> np.ndarray:
    """``a`` as (k, 2) float intervals [start, end], each finite with start <= end."""
    try:
        a = np.asarray(a, dtype=np.float64)
    except (TypeError, ValueError):  # strings, ragged lists: NumPy's message named neither
        raise ValueError(f"match_events: {name} must be intervals (k, 2) of numbers") from None
    if a.size == 0 or a.shape == (2,):  # none, or one interval [start, end]
        a = a.reshape(-1, 2)
    if a.ndim != 2 or a.shape[1] != 2:
        raise ValueError(f"match_events: {name} must be intervals (k, 2), got shape {a.shape}")
    bad = np.flatnonzero(~(np.isfinite(a).all(axis=1) & (a[:, 0] <= a[:, 1])))
    if len(bad):
        i = int(bad[0])
        raise ValueError(
            f"match_events: {name} intervals must be finite with start <= end, got "
            f"{name}[{i}] = {a[i].tolist()} ({len(bad)} of {len(a)} such)"
        )
    return a


def match_events(detected, true) -> tuple[float, float]:
    """(precision, recall) of detected intervals (k, 2) against true intervals (m, 2), in s.

    A pair matches if the intervals overlap (a_start < b_end and b_start < a_end), each
    interval in at most one pair; the number of pairs is the maximum: true events in order
    of their end, each taking the unmatched overlapping detection that ends first (any other
    choice d' overlaps every later true event that the chosen one does, so none is lost).
    precision = matched / k (NaN if k = 0), recall = matched / m (NaN if m = 0). Every
    interval must be finite with start <= end (ValueError otherwise).
    """
    d = _intervals(detected, "detected")
    t = _intervals(true, "true")
    used = np.zeros(len(d), dtype=bool)
    hits = 0
    for s, e in t[np.argsort(t[:, 1], kind="stable")]:
        cand = np.flatnonzero(~used & (d[:, 0] < e) & (s < d[:, 1]))
        if len(cand):  # taking the first in start order lost pairs: (0.5, 0.5), not (1, 1)
            used[cand[np.argmin(d[cand, 1])]] = True
            hits += 1
    precision = hits / len(d) if len(d) else float("nan")
    recall = hits / len(t) if len(t) else float("nan")
    return precision, recall
