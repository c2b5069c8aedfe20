"""Reading a network's spikes: irregularity, synchrony, rasters (NumPy, on the host).

Units: ms for times and bins, Hz for rates. A raster is a spike-count array (n_bins, N) with
bins of ``bin_ms`` (a :class:`~nnjax.brain.network.Monitor` with ``spikes="raster"`` and
``every`` steps gives bin_ms = every dt); a spike is placed at its bin's centre.

* :func:`isi_cv`: the coefficient of variation of each neuron's inter-spike intervals,
  CV = std(ISI) / mean(ISI) (ddof = 0): 1 for a Poisson train, 0 for a clock. Asynchronous
  irregular (AI) activity has CV near 1 (Brunel 2000; Destexhe 2009 use CV > 0.8).
* :func:`pairwise_correlation`: the mean Pearson correlation of the spike counts of random
  pairs of neurons in windows of ``window_ms`` (5 ms here by default): near 0 in the AI
  state, large when neurons fire together (Up states, oscillations).
* :func:`population_synchrony`: Golomb–Rinzel chi of the counts of a set of neurons
  (:func:`nnjax.brain.synchrony.golomb_rinzel_chi`) in the same windows.
* :func:`raster_points`, :func:`plot_raster`: (time, neuron) pairs and their dot plot.

``bin_ms`` and ``window_ms`` must be finite numbers > 0 (Python or NumPy scalars), else a
ValueError naming the function; so must a raster's finite entries be whole counts >= 0 where
they are read as spikes (:func:`isi_cv`, :func:`raster_points`).
"""

import numpy as np

from nnjax.brain.dynamics import check_count, check_positive, concrete
from nnjax.brain.synchrony import golomb_rinzel_chi


def _raster(raster, who: str) -> np.ndarray:
    r = np.asarray(raster)
    if r.ndim != 2:
        raise ValueError(f"{who}: raster must be spike counts (n_bins, N), got shape {r.shape}")
    if r.dtype.kind not in "biuf":  # strings failed in a ufunc, complex lost its imaginary part
        raise ValueError(f"{who}: raster must hold real numbers (spike counts), got {r.dtype}")
    return r


def _counts(raster, who: str) -> np.ndarray:
    """The raster, refused with a ValueError when a finite entry is not a whole number >= 0:
    spike times are read by repeating a bin's count, which would truncate 0.5 to 0 spikes
    and fail (or, in isi_cv, read nan) on -1. nan and inf pass (read as nan)."""
    r = _raster(raster, who)
    finite = r[np.isfinite(r)] if r.dtype.kind == "f" else r
    bad = (finite < 0) | (finite != np.round(finite))
    if np.any(bad):
        raise ValueError(
            f"{who}: raster must hold spike counts (whole numbers >= 0), got {finite[bad][0]}"
        )
    return r


def _check_ms(value, who: str, name: str = "bin_ms") -> float:
    """A duration in ms (a Python or NumPy number or 0-d array, not a bool) as a float; a
    ValueError naming ``who: name`` unless it is a finite number > 0."""
    v = concrete(value)
    if v is None or v.ndim != 0 or v.dtype.kind == "b":
        raise ValueError(f"{who}: {name} must be a finite number > 0, got {value!r}")
    check_positive(v, name, who)
    return float(v)


def isi_cv(raster, bin_ms: float, *, min_spikes: int = 5) -> np.ndarray:
    """CV of the inter-spike intervals of each neuron, (N,); NaN for neurons with fewer than
    ``min_spikes`` spikes or with a nan or inf count. Several spikes in one bin count as
    intervals of 0 ms (choose bins shorter than the refractory period to avoid that)."""
    r = _counts(raster, "isi_cv")
    bin_ms = _check_ms(bin_ms, "isi_cv")
    min_spikes = check_count(min_spikes, "min_spikes", "isi_cv", minimum=0)
    out = np.full(r.shape[1], np.nan)
    for i in range(r.shape[1]):
        if not np.isfinite(r[:, i]).all():
            continue  # a nan count has no intervals: nan, not a cast of nan to an int
        counts = r[:, i].astype(np.int64)
        if counts.sum() < max(min_spikes, 3):
            continue
        times = (np.repeat(np.flatnonzero(counts), counts[counts > 0]) + 0.5) * bin_ms
        isi = np.diff(times)
        out[i] = isi.std() / isi.mean() if isi.mean() > 0 else np.nan
    return out


def _windows(r: np.ndarray, bin_ms: float, window_ms: float, who: str) -> np.ndarray:
    """Counts summed over windows of window_ms (a whole number of bins): (n_windows, N)."""
    bin_ms = _check_ms(bin_ms, who)
    window_ms = _check_ms(window_ms, who, "window_ms")
    per = int(round(window_ms / bin_ms))
    if per < 1 or abs(per * bin_ms - window_ms) > 1e-6 * window_ms:
        raise ValueError(f"{who}: window_ms={window_ms} must be a multiple of bin_ms={bin_ms}")
    n = r.shape[0] // per
    if n < 2:
        raise ValueError(f"{who}: the raster holds fewer than 2 windows of {window_ms} ms")
    return r[: n * per].reshape(n, per, -1).sum(axis=1).astype(np.float64)


def pairwise_correlation(
    raster, bin_ms: float, *, window_ms: float = 5.0, n_pairs: int = 2000, seed: int = 0
) -> float:
    """Mean Pearson correlation of the window counts of ``n_pairs`` random distinct pairs
    among the neurons that fire at all; NaN if fewer than two do or a count is nan or inf."""
    n_pairs = check_count(n_pairs, "n_pairs", "pairwise_correlation")
    seed = check_count(seed, "seed", "pairwise_correlation", minimum=0)  # NumPy's own error
    c = _windows(_raster(raster, "pairwise_correlation"), bin_ms, window_ms, "pairwise_correlation")
    if not np.isfinite(c).all():
        return float("nan")
    active = np.flatnonzero(c.std(axis=0) > 0)
    if active.size < 2:
        return float("nan")
    rng = np.random.default_rng(seed)
    i = rng.choice(active, n_pairs)
    j = rng.choice(active, n_pairs)
    keep = i != j
    z = (c - c.mean(0)) / np.where(c.std(0) > 0, c.std(0), 1.0)
    return float(np.mean((z[:, i[keep]] * z[:, j[keep]]).mean(axis=0)))


def population_synchrony(raster, bin_ms: float, *, window_ms: float = 5.0) -> float:
    """Golomb–Rinzel chi of the neurons' window counts: about 1/sqrt(N) for independent
    neurons, 1 for identical ones; NaN if a count is nan or inf."""
    c = _windows(_raster(raster, "population_synchrony"), bin_ms, window_ms, "population_synchrony")
    return float(golomb_rinzel_chi(c))


def raster_points(raster, bin_ms: float, *, t0_ms: float = 0.0):
    """(times ms, neuron ids) of every spike of a raster, times at the bin centres."""
    r = _counts(raster, "raster_points")
    bin_ms = _check_ms(bin_ms, "raster_points")
    t0 = concrete(t0_ms)
    if t0 is None or t0.ndim != 0 or t0.dtype.kind == "b" or not np.isfinite(t0):
        raise ValueError(f"raster_points: t0_ms must be a finite number (ms), got {t0_ms!r}")
    if not np.isfinite(r).all():  # np.repeat of a nan count failed with "negative values"
        raise ValueError("raster_points: raster must hold finite spike counts, got nan or inf")
    b, n = np.nonzero(r)
    reps = r[b, n].astype(np.int64)
    return t0_ms + (np.repeat(b, reps) + 0.5) * bin_ms, np.repeat(n, reps)


def plot_raster(raster, bin_ms: float, *, n_exc=None, t0_ms=0.0, ax=None, groups=None, title=""):
    """A dot raster (time in s); E cells blue and I cells red when ``n_exc`` is given,
    ``groups`` (a list of id arrays) coloured one by one on top. Returns the Figure."""
    from nnjax.plotting import subplots

    t, i = raster_points(raster, bin_ms, t0_ms=t0_ms)
    if n_exc is not None:
        n_exc = check_count(n_exc, "n_exc", "plot_raster", minimum=0)
    if ax is None:
        fig, ax = subplots(figsize=(8, 3), layout="constrained")
    else:
        fig = ax.figure
    colour = np.where(i < (n_exc if n_exc is not None else np.inf), "tab:blue", "tab:red")
    ax.scatter(t / 1000.0, i, s=0.5, c=colour, marker=".", linewidths=0)
    for k, ids in enumerate(groups or ()):
        sel = np.isin(i, np.asarray(ids))
        ax.scatter(t[sel] / 1000.0, i[sel], s=2, color=f"C{(k + 1) % 10}", marker=".")
    ax.set_xlabel("time (s)")
    ax.set_ylabel("neuron")
    ax.set_ylim(-0.5, np.asarray(raster).shape[1] - 0.5)
    if title:
        ax.set_title(title)
    return fig
