"""Zero-phase filters and centred moving windows of EEG-like signals, in JAX.

Units as :mod:`~nnjax.brain.rhythms` (time in s, frequency in Hz, the signal in any unit
u). Every function works over the last axis of ``x`` (..., n), channels as leading axes,
and is differentiable in ``x`` (the filter design, in SciPy, is not). ``fs`` and the
window lengths are static Python numbers. :mod:`~nnjax.brain.rhythms` re-exports every
public name here.

* :func:`sosfiltfilt`: zero-phase IIR filtering (forward and backward second-order sections,
  odd extension at the ends, steady-state initial conditions), a JAX twin of
  scipy.signal.sosfiltfilt's defaults; :func:`bandpass` designs a Butterworth band-pass with
  scipy.signal.butter (:func:`butter_bandpass`) and applies it.
* :func:`moving_average` and :func:`moving_rms`: centred sliding windows of an odd number
  of samples, averaged over the part inside the signal at the ends.
* :func:`check_fs` and :func:`as_signal`: the input checks shared by the spectra and the
  detectors.
"""

import functools
import math
import numbers

import jax
import jax.numpy as jnp
import numpy as np

Array = jax.Array


def check_fs(fs, who: str) -> float:
    """``fs`` as a float, or a ValueError unless it is a finite number > 0 (in Hz)."""
    if isinstance(fs, bool) or not isinstance(fs, numbers.Real):  # np.complex128 ran as Re
        raise ValueError(f"{who}: fs must be a number in Hz, got {fs!r}")
    if not (math.isfinite(fs) and fs > 0):
        raise ValueError(f"{who}: fs must be a finite number > 0 (Hz), got {fs}")
    return float(fs)


def as_signal(x, who: str) -> Array:
    """``x`` as a floating JAX array with at least one axis (time last); a ValueError naming
    ``who`` for anything that is not real numbers (a string or an object failed deep in JAX)."""
    try:  # NumPy first: JAX read a string as a dtype name ("a": a DeprecationWarning)
        ok = isinstance(x, jax.Array) or np.asarray(x).dtype.kind not in "OUS"
    except (TypeError, ValueError):  # ragged lists
        ok = False
    if not ok:  # "x", None in a list: a TypeError deep in JAX
        raise ValueError(f"{who}: x must be real numbers (..., n), got {x!r:.60}")
    x = jnp.asarray(x)
    if x.ndim == 0:
        raise ValueError(f"{who}: x must have a time axis (..., n), got a scalar")
    if jnp.issubdtype(x.dtype, jnp.complexfloating):  # its imaginary part was dropped
        raise ValueError(f"{who}: x must be a real signal, got {x.dtype}")
    if not jnp.issubdtype(x.dtype, jnp.floating):
        x = x.astype(jnp.result_type(float))
    return x


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
    each end by the odd reflection 2 x_0 - x_{p..1} (p = 3 (2 n_sections + 1 - z), z the
    smaller of the counts of sections with b2 = 0 and with a2 = 0: an odd-order section's
    trailing zeros), filtered forward from the steady-state initial conditions
    (scipy.signal.sosfilt_zi) scaled by the first sample, then backward the same way, and
    trimmed. The gain is |H(f)|^2 with no phase shift. A ``lax.scan`` over time, compiled
    once per filter, shape and dtype; differentiable in x. ``who`` names the caller in the
    errors (a signal too short for the filter's padding, say). Every coefficient must be
    finite and every section stable, its poles (roots of z^2 + a1 z + a2) inside the unit
    circle, |a2| < 1 and |a1| < 1 + a2: else a ValueError (SciPy returns nan or 1e170).
    """
    from scipy.signal import sosfilt_zi

    try:  # a dict failed in float(); strings were parsed ("1" as 1), complex lost its Im
        kind = np.asarray(sos).dtype.kind
    except (TypeError, ValueError):  # ragged lists
        kind = "O"
    if kind not in "iuf":
        raise ValueError(
            f"{who}: sos must be an array of real numbers (n_sections, 6), got {sos!r:.60}"
        )
    sos = np.asarray(sos, dtype=np.float64)
    if sos.ndim != 2 or sos.shape[1] != 6 or len(sos) == 0:
        raise ValueError(f"{who}: sos must have shape (n_sections, 6), got {sos.shape}")
    if not np.all(np.isfinite(sos)):
        bad = sorted({int(i) for i in np.argwhere(~np.isfinite(sos))[:, 0]})
        raise ValueError(f"{who}: sos must be finite, got nan or inf in sections {bad}")
    if not np.allclose(sos[:, 3], 1.0):
        raise ValueError(f"{who}: sos[:, 3] (a0 of every section) must be 1")
    a1, a2 = sos[:, 4], sos[:, 5]
    unstable = np.flatnonzero(~((np.abs(a2) < 1) & (np.abs(a1) < 1 + a2)))
    if unstable.size:  # the output grew without bound, to inf and nan
        k = int(unstable[0])
        radius = float(np.abs(np.roots([1.0, a1[k], a2[k]])).max())
        raise ValueError(
            f"{who}: sos section {k} is unstable: a pole of radius {radius:.6g} >= 1 (need "
            f"|a2| < 1 and |a1| < 1 + a2, got a1 = {a1[k]:g}, a2 = {a2[k]:g})"
        )
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
        # HIGHEST: a GPU may run a float32 convolution in TF32 (errors ~1e-3 of the envelope)
        full = jnp.convolve(row, kernel, mode="full", precision=jax.lax.Precision.HIGHEST)
        return full[h : h + n]

    sums = jax.vmap(one)(x.reshape(-1, n)).reshape(x.shape)
    t = np.arange(n)
    counts = np.minimum(t + h, n - 1) - np.maximum(t - h, 0) + 1
    return sums / jnp.asarray(counts, x.dtype)


def moving_rms(x, fs, window_s: float = 0.3, *, who: str = "moving_rms") -> Array:
    """Centred sliding root mean square r_t = sqrt(m_t), m_t the :func:`moving_average` of
    x^2 over ``window_s`` s (the same window and edges): shape (..., n). ``who`` names the
    caller in errors. A sine of amplitude a gives a / sqrt(2) in the interior when the
    window holds whole periods (within a few % otherwise). Where m_t = 0 (a silent
    stretch) r_t = 0 with gradient 0 (a subgradient of the norm; sqrt's infinite slope at
    0 times the zero slope of x^2 made NaN there, which a sum spread to every input)."""
    x = as_signal(x, who)
    m = _centred_mean(x * x, fs, window_s, who)
    pos = m > 0
    return jnp.where(pos, jnp.sqrt(jnp.where(pos, m, jnp.ones_like(m))), jnp.zeros_like(m))
