"""Spectra, band powers and zero-phase filters of EEG-like signals, in JAX.

Units: time in s, frequency in Hz, the signal in any unit u (µV for EEG, arbitrary units for a
simulated LFP proxy); a power spectral density is in u^2/Hz and a band power in u^2. Every
function works over the last axis of ``x`` (..., n), so channels ride along as leading axes
(or under ``jax.vmap``), and everything but the filter design is differentiable in ``x``.
``fs`` and the segment lengths are static Python numbers (they fix the shapes).

* :func:`welch`: Welch's averaged modified periodogram, with scipy.signal.welch's defaults
  and conventions (periodic Hann window, mean removal per segment, ``scaling='density'``).
  With segments x_s (length L, step L - noverlap), window w and X_s = rfft(w (x_s - mean x_s)),

      P(f_k) = c_k / (fs sum_n w_n^2) * mean_s |X_s(f_k)|^2,   f_k = k fs / L,

  c_k = 2 for the bins that stand for both signs of frequency, 1 for DC and (L even) Nyquist.
  Parseval per segment: sum_k P(f_k) fs/L = mean_s sum_n (w_n (x_s,n - mean x_s))^2 / sum w^2.
* :func:`spectrogram`: the same periodograms, one per segment, not averaged (for plots).
* :func:`band_power`: int_lo^hi P(f) df for the piecewise-linear interpolant of P (the
  trapezoidal rule; exactly additive over adjacent bands). :data:`BANDS` holds the named bands;
  sigma is 12–16 Hz there so that the six bands tile 0.5–80 Hz without overlap (YASA's band
  table, its gamma 30–40 Hz widened to 30–80 Hz) and relative powers add up to 1. The
  spindle detector uses the full spindle range :data:`SPINDLE_BAND` = 11–16 Hz (AASM), slow
  spindles included.
* :func:`sosfiltfilt`, :func:`bandpass`, :func:`butter_bandpass`, :func:`moving_average`,
  :func:`moving_rms`, :func:`check_fs` and :func:`as_signal` live in
  :mod:`~nnjax.brain.filters` and are re-exported here: zero-phase IIR filtering (a JAX twin
  of scipy.signal.sosfiltfilt), Butterworth band-passes and centred sliding windows.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np

from nnjax.brain.filters import (  # re-exported: rhythms.bandpass etc. stay valid
    as_signal,
    bandpass,
    butter_bandpass,
    check_fs,
    moving_average,
    moving_rms,
    sosfiltfilt,
)

__all__ = [
    "BANDS",
    "SLOW_WAVE_BAND",
    "SPINDLE_BAND",
    "as_signal",
    "band_power",
    "band_powers",
    "band_weights",
    "bandpass",
    "butter_bandpass",
    "check_fs",
    "moving_average",
    "moving_rms",
    "sosfiltfilt",
    "spectrogram",
    "welch",
]

Array = jax.Array

BANDS: dict[str, tuple[float, float]] = {
    "delta": (0.5, 4.0),
    "theta": (4.0, 8.0),
    "alpha": (8.0, 12.0),
    "sigma": (12.0, 16.0),
    "beta": (16.0, 30.0),
    "gamma": (30.0, 80.0),
}
SPINDLE_BAND: tuple[float, float] = (11.0, 16.0)
SLOW_WAVE_BAND: tuple[float, float] = (0.3, 1.5)


def _fft_input(x: Array, who: str) -> Array:
    """``x`` for the FFT, which takes float32 or float64 only (float16 failed deep in JAX)."""
    if x.dtype not in (jnp.float32, jnp.float64):
        raise ValueError(f"{who}: x must be float32 or float64 (the FFT's dtypes), got {x.dtype}")
    return x


def _segment_plan(n: int, fs: float, nperseg, noverlap, who: str) -> tuple[int, int]:
    default, nperseg = nperseg is None, int(round(4.0 * fs)) if nperseg is None else nperseg
    if isinstance(nperseg, bool) or not isinstance(nperseg, int | np.integer) or nperseg < 2:
        why = f"the default nperseg, 4 s of samples at fs={fs:g} Hz, is" if default else "got"
        raise ValueError(f"{who}: nperseg must be an int >= 2 (samples); {why} {nperseg!r}")
    if nperseg > n:
        why = f" (default 4 s at fs={fs:g} Hz)" if default else ""  # not when it was given
        raise ValueError(
            f"{who}: the signal has {n} samples, fewer than nperseg={nperseg}{why}; "
            "pass a smaller nperseg"
        )
    if noverlap is None:
        noverlap = nperseg // 2
    if isinstance(noverlap, bool) or not isinstance(noverlap, int | np.integer):
        raise ValueError(f"{who}: noverlap must be an int, got {noverlap!r}")
    if not 0 <= noverlap < nperseg:
        raise ValueError(f"{who}: noverlap must be in [0, nperseg={nperseg}), got {noverlap}")
    return int(nperseg), int(noverlap)


@functools.partial(jax.jit, static_argnums=(1, 2, 3))
def _periodograms(x: Array, fs: float, nperseg: int, noverlap: int) -> Array:
    """One-sided density periodograms of the Hann-windowed, demeaned segments: (..., s, f)."""
    step = nperseg - noverlap
    n_seg = (x.shape[-1] - nperseg) // step + 1
    idx = np.arange(n_seg)[:, None] * step + np.arange(nperseg)[None, :]
    seg = x[..., idx]
    seg = seg - seg.mean(axis=-1, keepdims=True)
    w = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(nperseg) / nperseg)  # periodic Hann
    spec = jnp.fft.rfft(seg * jnp.asarray(w, x.dtype), axis=-1)
    double = np.full(nperseg // 2 + 1, 2.0)
    double[0] = 1.0
    if nperseg % 2 == 0:
        double[-1] = 1.0
    scale = jnp.asarray(double / (fs * np.sum(w**2)), x.dtype)
    return (spec.real**2 + spec.imag**2) * scale  # real^2 + imag^2: finite gradient at 0


def welch(x, fs, *, nperseg: int | None = None, noverlap: int | None = None):
    """Welch power spectral density of x (..., n) sampled at fs Hz (formula: module docstring).

    ``nperseg`` defaults to 4 s of samples (0.25 Hz resolution), ``noverlap`` to nperseg // 2.
    Returns ``(freqs, psd)``: freqs a NumPy array (nperseg // 2 + 1,) in Hz, psd a JAX array
    (..., nperseg // 2 + 1) in u^2/Hz. Equals ``scipy.signal.welch(x, fs, nperseg=...,
    noverlap=...)`` (window 'hann', detrend 'constant', scaling 'density', mean average).
    A nan in a segment makes every bin of the psd nan; the last (n - nperseg) mod step
    samples, which no segment reaches, are ignored (as by SciPy).
    """
    fs = check_fs(fs, "welch")
    x = _fft_input(as_signal(x, "welch"), "welch")
    nperseg, noverlap = _segment_plan(x.shape[-1], fs, nperseg, noverlap, "welch")
    freqs = np.fft.rfftfreq(nperseg, 1.0 / fs)
    return freqs, _periodograms(x, fs, nperseg, noverlap).mean(axis=-2)


def spectrogram(x, fs, *, nperseg: int | None = None, noverlap: int | None = None):
    """Short-time power spectral density of x (..., n): one Welch segment per time step.

    Same segments, window and scaling as :func:`welch` (which is this averaged over time).
    Returns ``(times, freqs, sxx)``: times (n_seg,) in s at the segment centres
    ((s * step + nperseg / 2) / fs), freqs (n_freq,) in Hz, sxx (..., n_freq, n_seg) in u^2/Hz
    (scipy.signal.spectrogram's layout, with ``window='hann'``). ``noverlap`` defaults to
    nperseg // 2 as in :func:`welch`, not to scipy.signal.spectrogram's nperseg // 8: pass
    it to get SciPy's segments.
    """
    fs = check_fs(fs, "spectrogram")
    x = _fft_input(as_signal(x, "spectrogram"), "spectrogram")
    nperseg, noverlap = _segment_plan(x.shape[-1], fs, nperseg, noverlap, "spectrogram")
    step = nperseg - noverlap
    n_seg = (x.shape[-1] - nperseg) // step + 1
    times = (np.arange(n_seg) * step + nperseg / 2) / fs
    freqs = np.fft.rfftfreq(nperseg, 1.0 / fs)
    return times, freqs, jnp.swapaxes(_periodograms(x, fs, nperseg, noverlap), -1, -2)


def _hat_integral(f: np.ndarray, t: float) -> np.ndarray:
    """int_{-inf}^t phi_k(s) ds for the hat functions phi_k of the grid f (linear interpolation)."""
    h_left = np.diff(f, prepend=f[0])
    h_right = np.diff(f, append=f[-1])
    v = np.clip(t - (f - h_left), 0.0, h_left)
    u = np.clip(t - f, 0.0, h_right)
    left = np.divide(v**2, 2.0 * h_left, out=np.zeros_like(f), where=h_left > 0)
    right = u - np.divide(u**2, 2.0 * h_right, out=np.zeros_like(f), where=h_right > 0)
    return left + right


def band_weights(freqs, band, who: str = "band_power") -> np.ndarray:
    """Weights a_k with int_lo^hi P(f) df = sum_k a_k P(f_k) for the piecewise-linear P."""
    f = np.asarray(freqs, dtype=np.float64)
    if f.ndim != 1 or f.size < 2 or not np.all(np.diff(f) > 0):
        raise ValueError(f"{who}: freqs must be increasing, shape (n_freq >= 2,), got {f.shape}")
    try:
        lo, hi = (float(b) for b in band)
    except (TypeError, ValueError):
        raise ValueError(f"{who}: band must be a pair (low, high) in Hz, got {band!r}") from None
    if not (f[0] <= lo < hi <= f[-1]):
        raise ValueError(
            f"{who}: band ({lo:g}, {hi:g}) Hz must satisfy {f[0]:g} <= low < high <= "
            f"{f[-1]:g} (the highest frequency, fs/2 for an even nperseg)"
        )
    return _hat_integral(f, hi) - _hat_integral(f, lo)


def band_power(freqs, psd, band, *, axis: int = -1) -> Array:
    """Absolute power in ``band`` = (low, high) Hz: int P(f) df over the band, in u^2.

    ``psd`` (..., n_freq) (frequency along ``axis``) with ``freqs`` (n_freq,) from
    :func:`welch` or :func:`spectrogram`; the PSD is integrated exactly as a piecewise-linear
    function of f (the trapezoidal rule, also between bins). Linear in psd, hence
    differentiable and vmappable. A pure sinusoid A sin(2 pi f0 t) inside the band gives A^2/2
    (exactly for f0 on a bin and the band holding f0 +- 2 fs / nperseg; up to the Hann
    window's leakage otherwise).
    """
    return _band_power(freqs, psd, band, axis, "band_power")


def _band_power(freqs, psd, band, axis, who: str) -> Array:
    """:func:`band_power`, its errors naming ``who``."""
    w = band_weights(freqs, band, who)
    psd = jnp.asarray(psd)
    if isinstance(axis, bool) or not isinstance(axis, int | np.integer):
        raise ValueError(f"{who}: axis must be an int, got {axis!r}")
    if not -psd.ndim <= axis < psd.ndim or psd.shape[axis] != w.size:
        raise ValueError(f"{who}: psd shape {psd.shape} has no axis {axis} of {w.size} freqs")
    return jnp.tensordot(jnp.moveaxis(psd, axis, -1), jnp.asarray(w, psd.dtype), axes=1)


def band_powers(freqs, psd, bands=None, *, relative: bool = False, axis: int = -1) -> dict:
    """``{name: power}`` for the named bands (default :data:`BANDS` below the top frequency).

    ``bands`` is a dict name -> (low, high) Hz, or a list of names from :data:`BANDS`; a named
    band above the top frequency (e.g. gamma at fs < 160 Hz) is left out only by default.
    ``relative``: divide by the power over [min low, max high] of the bands returned, so
    non-overlapping contiguous bands (like :data:`BANDS`) add up to 1:
    rel_b = P_b / int_{min low}^{max high} P(f) df. That total must be > 0: a spectrum
    without power there (an all-zero PSD, a flat or silent channel) has no relative band
    powers (0/0), so a concrete ``psd`` with any such spectrum is a ValueError naming the
    total and the spectrum's index; under ``jax.jit``/``vmap``/``grad``, where the values
    are not known, those spectra get 0 for every band (and a zero gradient), never NaN.
    Each power has ``psd``'s shape without the frequency axis. A band outside ``freqs``
    (above the Nyquist frequency fs/2, say) is a ValueError naming this function.
    """
    from nnjax.brain.dynamics import check_flag

    relative = check_flag(relative, "relative", "band_powers")  # "no" counted as True
    f = np.asarray(freqs)
    if f.ndim != 1 or f.size < 2:  # an IndexError for a scalar; named by band_power else
        raise ValueError(
            f"band_powers: freqs must be increasing, shape (n_freq >= 2,), got {f.shape}"
        )
    top = float(f[-1])
    if bands is None:
        bands = {k: v for k, v in BANDS.items() if v[1] <= top}
    elif isinstance(bands, str) or not isinstance(bands, dict | list | tuple):
        # a str was iterated letter by letter, a number a TypeError ("not iterable")
        raise ValueError(f"band_powers: bands must be a dict or a list of names, got {bands!r}")
    elif not isinstance(bands, dict):
        unknown = [b for b in bands if b not in BANDS]
        if unknown:
            raise ValueError(f"band_powers: unknown bands {unknown}; known: {sorted(BANDS)}")
        bands = {b: BANDS[b] for b in bands}
    if not bands:
        raise ValueError(f"band_powers: no bands given, or none of them fits below {top:g} Hz")
    out = {name: _band_power(freqs, psd, b, axis, "band_powers") for name, b in bands.items()}
    if relative:
        lo = min(float(b[0]) for b in bands.values())
        hi = max(float(b[1]) for b in bands.values())
        total = _band_power(freqs, psd, (lo, hi), axis, "band_powers")
        out = _relative(out, total, lo, hi)
    return out


def _relative(powers: dict, total: Array, lo: float, hi: float) -> dict:
    """``{name: p / total}``; a ValueError where a concrete total is <= 0 (0/0 gave NaN),
    0 where a traced one is (the division kept safe, so gradients stay finite)."""
    from nnjax.brain.dynamics import concrete

    t = concrete(total)
    if t is not None and np.any(t <= 0):  # NaN (from a NaN signal) passes, and stays NaN
        bad = np.flatnonzero(np.ravel(t) <= 0)
        where = (
            f" in {bad.size} of {t.size} spectra, first at flat index {bad[0]}" if t.ndim else ""
        )
        raise ValueError(
            f"band_powers: relative=True needs power > 0 in [{lo:g}, {hi:g}] Hz (the total of "
            f"the bands), got {float(np.ravel(t)[bad[0]]):g}{where}: a silent or flat signal "
            "has no relative band powers; drop it or pass relative=False"
        )
    bad = total <= 0  # not NaN: a NaN spectrum keeps NaN relative powers
    safe = jnp.where(bad, jnp.ones_like(total), total)
    return {name: jnp.where(bad, jnp.zeros_like(p), p / safe) for name, p in powers.items()}
