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
they are read as spikes (:func:`isi_cv`, :func:`raster_points`). Those two read only the
raster's nonzero entries, so their memory grows with the spikes, not with n_bins x N (a
dense float copy of a (200000, 500) raster took 1.7 GB); the window counts of
:func:`pairwise_correlation` and :func:`population_synchrony` are (n_windows, N) float64.
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


def _spikes(raster, who: str):
    """(raster, bins, neurons, counts) of the raster's nonzero entries (C order), refused with
    a ValueError when a finite one is not a whole number >= 0: spike times are read by
    repeating a bin's count, which would truncate 0.5 to 0 spikes and fail (or, in isi_cv,
    read nan) on -1. nan and inf pass (read as nan). Memory in proportion to the nonzero
    entries (at most the spikes), not to the raster: no dense copy of it is made."""
    r = _raster(raster, who)
    b, n = np.nonzero(r)  # a nan is nonzero
    vals = r[b, n]
    if r.dtype.kind != "b":
        finite = vals[np.isfinite(vals)] if r.dtype.kind == "f" else vals
        bad = (finite < 0) | (finite != np.round(finite))
        if np.any(bad):
            raise ValueError(
                f"{who}: raster must hold spike counts (whole numbers >= 0), got {finite[bad][0]}"
            )
    return r, b, n, vals


def _check_ms(value, who: str, name: str = "bin_ms") -> float:
    """A duration in ms (a Python or NumPy number or 0-d array, not a bool) as a float; a
    ValueError naming ``who: name`` unless it is a finite number > 0."""
    v = concrete(value)
    if v is None or v.ndim != 0 or v.dtype.kind == "b":
        raise ValueError(f"{who}: {name} must be a finite number > 0, got {value!r}")
    check_positive(v, name, who)
    return float(v)


def isi_cv(raster, bin_ms: float, *, min_spikes: int = 5) -> np.ndarray:
    """CV of the inter-spike intervals of each neuron, (N,): std(ISI) / mean(ISI) (ddof = 0),
    spike times at the bin centres (b + 1/2) bin_ms. NaN for neurons with fewer than
    max(min_spikes, 3) spikes (one interval has std 0, a CV of 0 by construction, so 3 is
    the floor even for min_spikes = 0, 1 or 2), with all intervals 0 ms (mean 0), or with a
    nan or inf count. Several spikes in one bin count as intervals of 0 ms (choose bins
    shorter than the refractory period to avoid that). The memory used grows with the
    nonzero bins, not with the raster's size or its counts."""
    r, b, n, vals = _spikes(raster, "isi_cv")
    bin_ms = _check_ms(bin_ms, "isi_cv")
    min_spikes = check_count(min_spikes, "min_spikes", "isi_cv", minimum=0)
    n_neurons = r.shape[1]
    order = np.argsort(n, kind="stable")  # neuron by neuron, bins ascending within each
    b, n, c = b[order], n[order], vals[order].astype(np.float64)
    finite = np.isfinite(c)  # a nan or inf count has no intervals: its neuron reads nan
    unread = np.bincount(n[~finite], minlength=n_neurons) > 0
    c[~finite] = 1.0
    spikes = np.bincount(n, weights=c, minlength=n_neurons)
    # intervals: c - 1 of 0 ms inside a bin of c spikes, and one between successive bins
    times = (b + 0.5) * bin_ms
    same = n[1:] == n[:-1]
    gap, who = np.diff(times)[same], n[1:][same]
    n_isi = np.maximum(spikes - 1.0, 1.0)
    mean = np.bincount(who, weights=gap, minlength=n_neurons) / n_isi
    zeros = np.bincount(n, weights=c - 1.0, minlength=n_neurons)
    dev = np.bincount(who, weights=(gap - mean[who]) ** 2, minlength=n_neurons)
    std = np.sqrt((dev + zeros * mean**2) / n_isi)
    ok = ~unread & (spikes >= max(min_spikes, 3)) & (mean > 0)
    out = np.full(n_neurons, np.nan)
    out[ok] = std[ok] / mean[ok]
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
    blocks = r[: n * per].reshape(n, per, -1)
    if r.dtype.kind in "biu":  # summed in float64 directly: no int64 copy of the windows
        return blocks.sum(axis=1, dtype=np.float64)
    return blocks.sum(axis=1).astype(np.float64)


def pairwise_correlation(
    raster, bin_ms: float, *, window_ms: float = 5.0, n_pairs: int = 2000, seed: int = 0
) -> float:
    """Mean Pearson correlation rho_ij = cov(c_i, c_j) / (sd(c_i) sd(c_j)) of the window
    counts c (n_windows, N) over random pairs i != j of the neurons whose counts vary
    (sd > 0: a silent neuron, or one with the same count in every window, has no
    correlation): ``n_pairs`` draws with replacement, self-pairs dropped. NaN if fewer than
    two neurons vary or a count is nan or inf."""
    n_pairs = check_count(n_pairs, "n_pairs", "pairwise_correlation")
    seed = check_count(seed, "seed", "pairwise_correlation", minimum=0)  # NumPy's own error
    c = _windows(_raster(raster, "pairwise_correlation"), bin_ms, window_ms, "pairwise_correlation")
    if not np.isfinite(c).all():
        return float("nan")
    mean, std = c.mean(0), c.std(0)
    active = np.flatnonzero(std > 0)
    if active.size < 2:
        return float("nan")
    rng = np.random.default_rng(seed)
    i = rng.choice(active, n_pairs)
    j = rng.choice(active, n_pairs)
    i, j = i[i != j], j[i != j]
    if i.size == 0:  # every pair drawn was a neuron with itself
        return float("nan")
    z = c[:, active]  # z-scores of the active neurons only (in place), pairs by column
    z -= mean[active]
    z /= std[active]
    i, j = np.searchsorted(active, i), np.searchsorted(active, j)
    # pairs in chunks of at most 2^22 products: all (n_windows, n_pairs) products at once
    # took gigabytes on a long raster
    step = max(1, 2**22 // len(z))
    per_pair = np.concatenate(
        [
            (z[:, i[k : k + step]] * z[:, j[k : k + step]]).mean(axis=0)
            for k in range(0, i.size, step)
        ]
    )
    return float(np.mean(per_pair))


def population_synchrony(raster, bin_ms: float, *, window_ms: float = 5.0) -> float:
    """Golomb–Rinzel chi of the neurons' window counts: about 1/sqrt(N) for independent
    neurons, 1 for identical ones; NaN if a count is nan or inf. N >= 1 neurons."""
    r = _raster(raster, "population_synchrony")
    if r.shape[1] == 0:  # golomb_rinzel_chi named itself, not this function and its argument
        raise ValueError(
            f"population_synchrony: raster must hold N >= 1 neurons (n_bins, N), got {r.shape}"
        )
    c = _windows(r, bin_ms, window_ms, "population_synchrony")
    return float(golomb_rinzel_chi(c))


def raster_points(raster, bin_ms: float, *, t0_ms: float = 0.0):
    """(times ms, neuron ids) of every spike of a raster, times at the bin centres."""
    _, b, n, vals = _spikes(raster, "raster_points")
    bin_ms = _check_ms(bin_ms, "raster_points")
    t0 = concrete(t0_ms)
    if t0 is None or t0.ndim != 0 or t0.dtype.kind == "b" or not np.isfinite(t0):
        raise ValueError(f"raster_points: t0_ms must be a finite number (ms), got {t0_ms!r}")
    if not np.isfinite(vals).all():  # np.repeat of a nan count failed with "negative values"
        raise ValueError("raster_points: raster must hold finite spike counts, got nan or inf")
    reps = vals.astype(np.int64)
    # float(t0): a JAX t0_ms made the times a JAX array, float32 without x64 (0.25 ms steps
    # an hour in)
    return float(t0) + (np.repeat(b, reps) + 0.5) * bin_ms, np.repeat(n, reps)


def _check_groups(groups) -> list:
    """``groups`` as a list of arrays of neuron ids, ints >= 0 (whole floats pass), or a
    ValueError naming plot_raster: "x" was read as one group matching no neuron, so the
    figure came out without it and without a word. Ids at or beyond the raster's N columns
    are valid and not drawn (a raster cut to its first columns takes every group)."""
    if groups is None:
        return []
    if isinstance(groups, str | bytes | dict) or not hasattr(groups, "__iter__"):
        raise ValueError(
            f"plot_raster: groups must be a list of arrays of neuron ids, got {groups!r:.60}"
        )
    out = []
    for k, ids in enumerate(groups):
        try:
            a = np.asarray(ids)
        except (TypeError, ValueError):  # ragged lists
            a = np.asarray(None)
        whole = a.dtype.kind == "f" and bool(np.all(np.isfinite(a) & (a == np.round(a))))
        if not (a.dtype.kind in "iu" or whole or a.size == 0) or np.any(a < 0):
            raise ValueError(
                f"plot_raster: groups[{k}] must be neuron ids (ints >= 0), got {ids!r:.60}"
            )
        out.append(a)
    return out


def plot_raster(raster, bin_ms: float, *, n_exc=None, t0_ms=0.0, ax=None, groups=None, title=""):
    """A dot raster (time in s); E cells blue and I cells red when ``n_exc`` is given,
    ``groups`` (a list of arrays of neuron ids, ints >= 0; ids >= N are not drawn) coloured
    one by one on top, else a ValueError. Returns the Figure."""
    from nnjax.plotting import subplots

    t, i = raster_points(raster, bin_ms, t0_ms=t0_ms)
    groups = _check_groups(groups)
    if n_exc is not None:
        n_exc = check_count(n_exc, "n_exc", "plot_raster", minimum=0)
    if ax is None:
        fig, ax = subplots(figsize=(8, 3), layout="constrained")
    else:
        fig = ax.figure
    colour = np.where(i < (n_exc if n_exc is not None else np.inf), "tab:blue", "tab:red")
    ax.scatter(t / 1000.0, i, s=0.5, c=colour, marker=".", linewidths=0)
    for k, ids in enumerate(groups):
        sel = np.isin(i, ids)
        ax.scatter(t[sel] / 1000.0, i[sel], s=2, color=f"C{(k + 1) % 10}", marker=".")
    ax.set_xlabel("time (s)")
    ax.set_ylabel("neuron")
    ax.set_ylim(-0.5, np.asarray(raster).shape[1] - 0.5)
    if title:
        ax.set_title(title)
    return fig
