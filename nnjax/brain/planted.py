"""Synthetic signals with planted events: the ground truth for the detectors in
:mod:`~nnjax.brain.detect`.

Units: time in s, frequency in Hz, EEG-like signals in µV, rates in Hz (spikes per second per
neuron). Every generator takes an explicit ``jax.random`` key, draws from a NumPy generator
seeded by it (same key, same signal; NumPy's Poisson sampler compiles nothing), and returns
NumPy arrays: the
signal (n,) and the planted events as intervals (k, 2) of [start, end] in s, sorted and
separated by random gaps drawn uniformly from ``gap_s``.

* :func:`pink_noise`: 1/f^exponent noise of unit variance (the EEG background).
* :func:`plant_slow_waves`: a negative half-sine of depth A and duration d1 followed by a
  positive half-sine of height r A and duration d2 (a slow wave, peak-to-peak (1 + r) A).
* :func:`plant_spindles`: A sin(2 pi f t + phi) under a Tukey taper (cosine ramps over the
  first and last quarter of the duration): the waxing-and-waning sigma burst.
* :func:`two_state_rate`: a population of n_neurons Poisson neurons that switch between an
  Up rate and a Down rate; the rate estimate is spike count / (n_neurons dt).
"""

import math

import jax
import jax.numpy as jnp
import numpy as np

from nnjax.brain.dynamics import check_count, check_number
from nnjax.brain.rhythms import check_fs


def _check_n(n, who: str) -> int:
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 2:
        raise ValueError(f"{who}: n must be an int >= 2 (samples), got {n!r}")
    return int(n)


def _check_range(r, who: str, name: str) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in r)
    except (TypeError, ValueError):
        raise ValueError(f"{who}: {name} must be a pair (low, high), got {r!r}") from None
    if not 0 <= lo <= hi < math.inf:  # an inf bound drew inf (then nan) samples
        raise ValueError(f"{who}: {name} must satisfy 0 <= low <= high < inf, got {r!r}")
    return lo, hi


def _below_nyquist(f_hz: float, fs: float, who: str, what: str) -> None:
    """A ValueError naming ``who`` when a planted frequency ``f_hz`` is at or above the
    Nyquist frequency fs/2: sampled at fs it reads as a slower wave, or as zeros."""
    if f_hz >= fs / 2:
        raise ValueError(
            f"{who}: {what} = {f_hz:g} Hz, at or above the Nyquist frequency fs/2 = "
            f"{fs / 2:g} Hz of the sampling rate fs = {fs:g} Hz; it must lie below it"
        )


def _rng(key) -> np.random.Generator:
    """A NumPy generator seeded by 128 bits drawn from the JAX key."""
    return np.random.default_rng(np.asarray(jax.random.bits(key, (4,), dtype=jnp.uint32)))


def pink_noise(key, n: int, *, exponent: float = 1.0) -> np.ndarray:
    """(n,) noise with power spectral density proportional to 1/f^exponent, unit variance.

    White Gaussian noise shaped in the Fourier domain by f^(-exponent / 2) (DC set to 0),
    then scaled to standard deviation 1. exponent 0 is white, 1 pink, 2 brown.
    """
    n = _check_n(n, "pink_noise")
    exponent = check_number(exponent, "exponent", "pink_noise")
    if not math.isfinite(exponent):  # a nan exponent made every sample nan
        raise ValueError(f"pink_noise: exponent must be a finite number, got {exponent}")
    white = _rng(key).standard_normal(n)
    f = np.fft.rfftfreq(n)
    gain = np.zeros_like(f)
    gain[1:] = f[1:] ** (-exponent / 2.0)
    x = np.fft.irfft(np.fft.rfft(white) * gain, n)
    return x / x.std()


def _n_slots(n: int, fs: float, min_cycle_s: float, who: str, what: str) -> int:
    """How many events to draw: enough to fill n / fs seconds at the shortest cycle
    ``min_cycle_s``, the sum of the low ends named by ``what``."""
    if not min_cycle_s > 0:  # the message named neither argument nor value
        raise ValueError(
            f"{who}: the shortest event plus the shortest gap must be > 0 s ({what}), got "
            f"{min_cycle_s:g} s"
        )
    slots = n / fs / min_cycle_s + 1
    if slots > MAX_EVENTS:  # NumPy asked for TiB of draws, naming no argument
        raise ValueError(
            f"{who}: {n / fs:g} s at a shortest event plus gap of {min_cycle_s:g} s asks for "
            f"up to {slots:.3g} events, above MAX_EVENTS = {MAX_EVENTS}; raise the low ends "
            "of the durations or gap_s"
        )
    return int(slots)


MAX_EVENTS = 10_000_000
"""The most events a generator draws (its draws: a few arrays of this many floats)."""


def _place(rng, n: int, fs: float, durations: np.ndarray, gap_s) -> np.ndarray:
    """Starts (k,) in s of events with these durations, one after another with random gaps."""
    gaps = rng.uniform(gap_s[0], gap_s[1], durations.shape)
    ends = np.cumsum(gaps + durations)
    starts = ends - durations
    keep = ends <= (n - 1) / fs
    return starts[keep]


def plant_slow_waves(
    key,
    n: int,
    fs: float,
    *,
    depth_uv=(130.0, 200.0),
    pos_ratio=(0.6, 1.0),
    neg_duration_s=(0.35, 0.9),
    pos_duration_s=(0.3, 0.6),
    gap_s=(1.0, 4.0),
):
    """(signal (n,) in µV, intervals (k, 2) in s) of slow waves planted on zeros.

    Each wave: -A sin(pi t / d1) on [0, d1), then r A sin(pi (t - d1) / d2) on [d1, d1 + d2),
    with A ~ U(depth_uv), r ~ U(pos_ratio), d1 ~ U(neg_duration_s), d2 ~ U(pos_duration_s);
    its interval is [start, start + d1 + d2]. Add noise to the signal yourself. A half-wave
    of d s is a wave of 1 / (2 d) Hz, so the shortest of each must exceed 1 / fs (else it is
    at or above the Nyquist frequency fs/2: a ValueError).
    """
    n, fs = _check_n(n, "plant_slow_waves"), check_fs(fs, "plant_slow_waves")
    ranges = [depth_uv, pos_ratio, neg_duration_s, pos_duration_s, gap_s]
    names = ["depth_uv", "pos_ratio", "neg_duration_s", "pos_duration_s", "gap_s"]
    ranges = [_check_range(r, "plant_slow_waves", m) for r, m in zip(ranges, names)]
    for (d, _), name in zip(ranges[2:4], names[2:4]):  # d <= 1/fs: zero or one random sample
        what = f"the half-wave frequency 1 / (2 {name} low) for low = {d:g} s"
        _below_nyquist(1.0 / (2.0 * d) if d > 0 else np.inf, fs, "plant_slow_waves", what)
    lows = ranges[2][0] + ranges[3][0] + ranges[4][0]
    k = _n_slots(n, fs, lows, "plant_slow_waves", "neg_duration_s + pos_duration_s + gap_s lows")
    rng = _rng(key)
    depth, ratio, d1, d2 = (rng.uniform(lo, hi, k) for lo, hi in ranges[:4])
    starts = _place(rng, n, fs, d1 + d2, ranges[4])
    t = np.arange(n) / fs
    x = np.zeros(n)
    for i, s in enumerate(starts):
        u = t - s
        neg = (u >= 0) & (u < d1[i])
        pos = (u >= d1[i]) & (u < d1[i] + d2[i])
        x[neg] = -depth[i] * np.sin(np.pi * u[neg] / d1[i])
        x[pos] = ratio[i] * depth[i] * np.sin(np.pi * (u[pos] - d1[i]) / d2[i])
    k = len(starts)
    return x, np.stack([starts, starts + d1[:k] + d2[:k]], axis=1)


def plant_spindles(
    key,
    n: int,
    fs: float,
    *,
    amplitude_uv=(8.0, 20.0),
    freq_hz=(11.5, 15.5),
    duration_s=(0.7, 1.8),
    gap_s=(2.0, 6.0),
):
    """(signal (n,) in µV, intervals (k, 2) in s) of spindles planted on zeros.

    Each spindle: A sin(2 pi f (t - start) + phi) times a Tukey taper of length d (flat in
    the middle half, cosine ramps over the first and last quarter), with A ~ U(amplitude_uv),
    f ~ U(freq_hz), d ~ U(duration_s), phi ~ U(0, 2 pi); its interval is [start, start + d].
    freq_hz must lie below the Nyquist frequency fs/2 (a ValueError otherwise).
    """
    n, fs = _check_n(n, "plant_spindles"), check_fs(fs, "plant_spindles")
    ranges = [amplitude_uv, freq_hz, duration_s, gap_s]
    names = ["amplitude_uv", "freq_hz", "duration_s", "gap_s"]
    ranges = [_check_range(r, "plant_spindles", m) for r, m in zip(ranges, names)]
    _below_nyquist(ranges[1][1], fs, "plant_spindles", "freq_hz high")
    k = _n_slots(n, fs, ranges[2][0] + ranges[3][0], "plant_spindles", "duration_s low + gap_s low")
    rng = _rng(key)
    amp, freq, dur = (rng.uniform(lo, hi, k) for lo, hi in ranges[:3])
    phase = rng.uniform(0.0, 2.0 * np.pi, k)
    starts = _place(rng, n, fs, dur, ranges[3])
    t = np.arange(n) / fs
    x = np.zeros(n)
    for i, s in enumerate(starts):
        u = t - s
        inside = (u >= 0) & (u < dur[i])
        v = u[inside] / dur[i]  # in [0, 1)
        taper = np.where(np.abs(v - 0.5) <= 0.25, 1.0, 0.5 - 0.5 * np.cos(4 * np.pi * v))
        x[inside] = amp[i] * taper * np.sin(2 * np.pi * freq[i] * u[inside] + phase[i])
    k = len(starts)
    return x, np.stack([starts, starts + dur[:k]], axis=1)


def two_state_rate(
    key,
    n: int,
    fs: float,
    *,
    n_neurons: int = 100,
    up_rate_hz: float = 20.0,
    down_rate_hz: float = 0.5,
    up_duration_s=(0.2, 0.7),
    down_duration_s=(0.2, 0.8),
):
    """(rate (n,) in Hz, up intervals (k, 2) in s) of a population alternating Up and Down.

    The population starts in a Down state; Up and Down durations are drawn from U(up_duration_s)
    and U(down_duration_s). Each bin of dt = 1 / fs holds Poisson(n_neurons r(t) dt) spikes and
    the returned rate is count / (n_neurons dt), so its noise shrinks as n_neurons grows.
    """
    n, fs = _check_n(n, "two_state_rate"), check_fs(fs, "two_state_rate")
    up_d = _check_range(up_duration_s, "two_state_rate", "up_duration_s")
    down_d = _check_range(down_duration_s, "two_state_rate", "down_duration_s")
    n_neurons = check_count(n_neurons, "n_neurons", "two_state_rate")  # True ran as 1
    down_rate_hz, up_rate_hz = (  # a string failed in a comparison, inf deep in NumPy
        check_number(v, name, "two_state_rate")
        for name, v in (("down_rate_hz", down_rate_hz), ("up_rate_hz", up_rate_hz))
    )
    if not 0 <= down_rate_hz < up_rate_hz < math.inf:
        raise ValueError(
            f"two_state_rate: need 0 <= down_rate_hz < up_rate_hz < inf, got {down_rate_hz}, "
            f"{up_rate_hz}"
        )
    k = _n_slots(
        n, fs, up_d[0] + down_d[0], "two_state_rate", "up_duration_s low + down_duration_s low"
    )
    rng = _rng(key)
    dur = rng.uniform(up_d[0], up_d[1], k)
    starts = _place(rng, n, fs, dur, down_d)
    t = np.arange(n) / fs
    r = np.full(n, float(down_rate_hz))
    for s, d in zip(starts, dur):
        r[(t >= s) & (t < s + d)] = up_rate_hz
    counts = rng.poisson(n_neurons * r / fs).astype(np.float64)
    return counts * fs / n_neurons, np.stack([starts, starts + dur[: len(starts)]], axis=1)
