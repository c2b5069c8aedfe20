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
* :func:`sosfiltfilt`: zero-phase IIR filtering (forward and backward second-order sections,
  odd extension at the ends, steady-state initial conditions), a JAX twin of
  scipy.signal.sosfiltfilt's defaults; :func:`bandpass` designs a Butterworth band-pass with
  scipy.signal.butter and applies it. :func:`moving_rms` and :func:`moving_average` are
  centred sliding windows of an odd number of samples.
"""

import functools
import math
import numbers

import jax
import jax.numpy as jnp
import numpy as np

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


def check_fs(fs, who: str) -> float:
    """``fs`` as a float, or a ValueError unless it is a finite number > 0 (in Hz)."""
    if isinstance(fs, bool) or not isinstance(fs, int | float | np.number):
        raise ValueError(f"{who}: fs must be a number in Hz, got {fs!r}")
    if not (math.isfinite(fs) and fs > 0):
        raise ValueError(f"{who}: fs must be a finite number > 0 (Hz), got {fs}")
    return float(fs)


def as_signal(x, who: str) -> Array:
    """``x`` as a floating JAX array with at least one axis (time last)."""
    x = jnp.asarray(x)
    if x.ndim == 0:
        raise ValueError(f"{who}: x must have a time axis (..., n), got a scalar")
    if jnp.issubdtype(x.dtype, jnp.complexfloating):  # its imaginary part was dropped
        raise ValueError(f"{who}: x must be a real signal, got {x.dtype}")
    if not jnp.issubdtype(x.dtype, jnp.floating):
        x = x.astype(jnp.result_type(float))
    return x


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
        raise ValueError(
            f"{who}: the signal has {n} samples, fewer than nperseg={nperseg} "
            f"(default 4 s at fs={fs:g} Hz); pass a smaller nperseg"
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
    (scipy.signal.spectrogram's layout, with ``window='hann'``).
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
    non-overlapping contiguous bands (like :data:`BANDS`) add up to 1. A band outside
    ``freqs`` (above the Nyquist frequency fs/2, say) is a ValueError naming this function.
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
    elif isinstance(bands, str):  # iterated letter by letter before
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
        out = {name: p / total for name, p in out.items()}
    return out


def _sos_padlen(sos: np.ndarray) -> int:
    """scipy.signal.sosfiltfilt's default odd-extension length for ``sos``."""
    trailing_zeros = min(int((sos[:, 2] == 0).sum()), int((sos[:, 5] == 0).sum()))
    return 3 * (2 * len(sos) + 1 - trailing_zeros)


def _sosfilt(coef: tuple, zi: tuple, x: Array) -> Array:
    """Cascaded direct-form-II-transposed sections along the last axis, state zi * x[..., 0].

    Per section (a0 = 1): y_t = b0 u_t + z0, z0 <- b1 u_t - a1 y_t + z1, z1 <- b2 u_t - a2 y_t.
    """
    xt = jnp.moveaxis(x, -1, 0)
    zi = np.asarray(zi)
    z0 = jnp.asarray(zi, x.dtype).reshape(zi.shape + (1,) * (x.ndim - 1)) * xt[0]

    def step(z, u):
        new = []
        for s, (b0, b1, b2, _, a1, a2) in enumerate(coef):
            y = b0 * u + z[s, 0]
            new.append(jnp.stack([b1 * u - a1 * y + z[s, 1], b2 * u - a2 * y]))
            u = y
        return jnp.stack(new), u

    _, yt = jax.lax.scan(step, z0, xt)
    return jnp.moveaxis(yt, 0, -1)


@functools.partial(jax.jit, static_argnums=(0, 1, 2))
def _filtfilt(coef: tuple, zi: tuple, pad: int, x: Array) -> Array:
    """Odd extension by pad, forward pass, backward pass, trim (compiled once per filter)."""
    head = 2.0 * x[..., :1] - x[..., pad:0:-1]
    tail = 2.0 * x[..., -1:] - x[..., -2 : -pad - 2 : -1]
    y = _sosfilt(coef, zi, jnp.concatenate([head, x, tail], axis=-1))
    y = _sosfilt(coef, zi, y[..., ::-1])[..., ::-1]
    return y[..., pad:-pad]


def sosfiltfilt(sos, x, *, who: str = "sosfiltfilt") -> Array:
    """Zero-phase filtering of x (..., n) by second-order sections ``sos`` (n_sections, 6).

    The JAX twin of ``scipy.signal.sosfiltfilt(sos, x)`` with its defaults: x is extended at
    each end by the odd reflection 2 x_0 - x_{p..1} (p = 3 (2 n_sections + 1) minus trailing
    zero coefficients), filtered forward from the steady-state initial conditions
    (scipy.signal.sosfilt_zi) scaled by the first sample, then backward the same way, and
    trimmed. The gain is |H(f)|^2 with no phase shift. A ``lax.scan`` over time, compiled
    once per filter, shape and dtype; differentiable in x. ``who`` names the caller in the
    errors (a signal too short for the filter's padding, say).
    """
    from scipy.signal import sosfilt_zi

    sos = np.asarray(sos, dtype=np.float64)
    if sos.ndim != 2 or sos.shape[1] != 6 or len(sos) == 0:
        raise ValueError(f"{who}: sos must have shape (n_sections, 6), got {sos.shape}")
    if not np.allclose(sos[:, 3], 1.0):
        raise ValueError(f"{who}: sos[:, 3] (a0 of every section) must be 1")
    x = as_signal(x, who)
    pad = _sos_padlen(sos)
    if x.shape[-1] <= pad:
        raise ValueError(
            f"{who}: the signal has {x.shape[-1]} samples; this filter needs more than "
            f"{pad} (its edge padding)"
        )
    coef = tuple(tuple(float(c) for c in row) for row in sos)
    zi = tuple(tuple(float(c) for c in row) for row in sosfilt_zi(sos))
    return _filtfilt(coef, zi, pad, x)


def butter_bandpass(fs, band, order: int = 4, who: str = "bandpass") -> np.ndarray:
    """Butterworth band-pass second-order sections (scipy.signal.butter), band in Hz; a
    ValueError naming ``who`` unless 0 < low < high < fs/2, the Nyquist frequency (a band at
    or above it cannot be sampled at ``fs``)."""
    fs = check_fs(fs, who)
    try:
        lo, hi = (float(b) for b in band)
    except (TypeError, ValueError):
        raise ValueError(f"{who}: band must be a pair (low, high) in Hz, got {band!r}") from None
    if not 0.0 < lo < hi < fs / 2:
        nyquist = (
            f"; high = {hi:g} Hz is at or above the Nyquist frequency fs/2 = {fs / 2:g} Hz of "
            f"the sampling rate fs = {fs:g} Hz"
            if hi >= fs / 2
            else ""
        )
        raise ValueError(
            f"{who}: band ({lo:g}, {hi:g}) Hz must satisfy 0 < low < high < fs/2 = {fs / 2:g}"
            f"{nyquist}"
        )
    if isinstance(order, bool) or not isinstance(order, numbers.Integral) or not 1 <= order <= 10:
        raise ValueError(f"{who}: order must be an int in 1..10, got {order!r}")
    from scipy.signal import butter  # after the checks: its first import takes ~0.7 s

    return butter(order, (lo, hi), btype="bandpass", fs=fs, output="sos")


def bandpass(x, fs, band, *, order: int = 4, who: str = "bandpass") -> Array:
    """x (..., n) band-passed to ``band`` = (low, high) Hz, zero phase: shape (..., n).

    A Butterworth band-pass of the given ``order`` (2 ``order`` poles) applied forward and
    backward (:func:`sosfiltfilt`), so the gain is |H(f)|^2: 1 at the centre sqrt(low high)
    and maximally flat around it, 1/2 (-6 dB) at the two cut-offs, and no phase shift
    (events keep their times). ``band`` must lie below the Nyquist frequency fs/2 (else a
    ValueError naming ``who``, the function that asked, with the frequency and fs).
    """
    return sosfiltfilt(butter_bandpass(fs, band, order, who), x, who=who)


def _window_half(fs, window_s, who: str) -> int:
    """The half-width h = floor(w / 2) of the centred window, w = max(1, round(window_s fs))."""
    fs = check_fs(fs, who)
    ok = isinstance(window_s, numbers.Real) and not isinstance(window_s, bool)
    if not (ok and math.isfinite(window_s) and window_s > 0):
        raise ValueError(f"{who}: window_s must be a number > 0 (s) and finite, got {window_s!r}")
    return max(1, int(round(float(window_s) * fs))) // 2


def moving_average(x, fs, window_s: float) -> Array:
    """Centred sliding mean of x (..., n) over ``window_s`` seconds: shape (..., n).

    With w = max(1, round(window_s fs)) samples and h = floor(w / 2),

        m_t = sum_{|j| <= h, 0 <= t + j < n} x_{t+j} / #{j : |j| <= h, 0 <= t + j < n},

    a window of 2 h + 1 samples centred on t (w itself when w is odd, w + 1 when it is even).
    Near the ends the mean is over the part of the window inside the signal (no zero padding
    bias); a window as long as the signal or longer is valid, and once h >= n - 1 every
    window covers the whole signal, m_t = mean(x). ``window_s`` is a finite number > 0;
    x needs at least one sample. A nan in x makes nan every m_t whose window holds it.
    """
    return _centred_mean(x, fs, window_s, "moving_average")


def _centred_mean(x, fs, window_s, who: str) -> Array:
    x = as_signal(x, who)
    h = _window_half(fs, window_s, who)
    n = x.shape[-1]
    if n == 0:
        raise ValueError(f"{who}: x must have at least one sample, got shape {x.shape}")
    return _moving_average(x, min(h, n - 1))  # h >= n - 1: every window is the whole signal


@functools.partial(jax.jit, static_argnums=1)
def _moving_average(x: Array, h: int) -> Array:
    n = x.shape[-1]
    kernel = jnp.ones(2 * h + 1, x.dtype)

    def one(row):  # full convolution; entry t + h is the sum over |j| <= h around t
        return jnp.convolve(row, kernel, mode="full")[h : h + n]

    sums = jax.vmap(one)(x.reshape(-1, n)).reshape(x.shape)
    t = np.arange(n)
    counts = np.minimum(t + h, n - 1) - np.maximum(t - h, 0) + 1
    return sums / jnp.asarray(counts, x.dtype)


def moving_rms(x, fs, window_s: float = 0.3, *, who: str = "moving_rms") -> Array:
    """Centred sliding root mean square sqrt(:func:`moving_average` of x^2) over ``window_s``
    s (the same window and edges): shape (..., n). ``who`` names the caller in errors."""
    x = as_signal(x, who)
    return jnp.sqrt(_centred_mean(x * x, fs, window_s, who))
