"""Hypnograms (sleep stage per epoch) and the night's figures: hypnogram and spectrogram.

A hypnogram is an integer array (n_epochs,) of stage codes, one per epoch of ``epoch_s``
seconds (30 s in clinical scoring), with ``names[code]`` the stage's name. The default
:data:`STAGES` = ("W", "N1", "N2", "N3", "REM") gives W=0, N1=1, N2=2, N3=3, REM=4 (YASA's
codes); a simulated night may use e.g. ``names=("wake", "NREM", "REM")``. Times in s.

The plots return a stand-alone :class:`matplotlib.figure.Figure` (no pyplot state; see
:mod:`nnjax.plotting`); matplotlib is imported inside them only.
"""

import numbers
from collections.abc import Sequence

import numpy as np

STAGES: tuple[str, ...] = ("W", "N1", "N2", "N3", "REM")


def check_hypnogram(hypno, names=STAGES) -> np.ndarray:
    """The hypnogram as int64 (n_epochs,), or a ValueError naming the bad codes or shape:
    codes are integers (or whole floats) in 0..len(names)-1, not stage names. The range is
    checked before the cast to int64 (1e20 or 2**63 wrapped to -2**63 in the message).
    ``names`` as :func:`check_names`."""
    check_names(names, "hypnogram")
    h = np.asarray(hypno)
    if h.ndim != 1 or h.size == 0:
        raise ValueError(f"hypnogram: must be a non-empty 1-D array of codes, got {h.shape}")
    if h.dtype.kind not in "iuf":
        bad = sorted({str(c) for c in h.tolist()})[:5]
        raise ValueError(
            f"hypnogram: codes must be integers 0..{len(names) - 1} standing for the stages "
            f"{dict(enumerate(names))}, got {bad} (dtype {h.dtype})"
        )
    if h.dtype.kind == "f":  # np.mod(inf, 1) warned and gave nan
        finite = np.isfinite(h)
        frac = ~finite | (np.mod(np.where(finite, h, 0.0), 1) != 0)
        if frac.any():
            raise ValueError(
                f"hypnogram: codes must be integers, got {np.unique(h[frac]).tolist()[:5]} "
                f"(dtype {h.dtype})"
            )
    out = (h < 0) | (h >= len(names))
    if out.any():
        bad = [int(c) if float(c).is_integer() else c for c in np.unique(h[out]).tolist()]
        raise ValueError(
            f"hypnogram: codes {bad[:5]} are not in 0..{len(names) - 1} (names={tuple(names)})"
        )
    return h.astype(np.int64)


def check_names(names, who: str) -> None:
    """A ValueError naming ``who`` unless ``names`` is a non-empty sequence (a tuple, list or
    1-D array, not a str) of distinct stage names: ``names=0`` failed in len() with a bare
    TypeError, and a repeated name merged two stages' durations into one key."""
    seq = isinstance(names, Sequence) and not isinstance(names, str | bytes)
    if not (seq or (isinstance(names, np.ndarray) and names.ndim == 1)) or len(names) == 0:
        raise ValueError(
            f"{who}: names must be a non-empty sequence of stage names such as {STAGES}, "
            f"got {names!r:.60}"
        )
    labels = [str(n) for n in names]
    if len(set(labels)) != len(labels):
        raise ValueError(f"{who}: names must be distinct, got {tuple(labels)}")


def _check_epoch(epoch_s, who: str) -> float:
    """``epoch_s`` as a float: any real number > 0 and finite (NumPy's too), not a bool."""
    ok = isinstance(epoch_s, numbers.Real) and not isinstance(epoch_s, bool | np.bool_)
    if not (ok and 0 < epoch_s < float("inf")):  # inf gave durations of inf s
        raise ValueError(f"{who}: epoch_s must be a number > 0 (s) and finite, got {epoch_s!r}")
    return float(epoch_s)


def stage_durations(hypno, epoch_s: float = 30.0, names=STAGES) -> dict[str, float]:
    """``{name: seconds spent in that stage}`` for every name (0.0 for absent stages)."""
    epoch_s = _check_epoch(epoch_s, "stage_durations")
    check_names(names, "stage_durations")
    h = check_hypnogram(hypno, names)
    counts = np.bincount(h, minlength=len(names))
    return {name: float(c * epoch_s) for name, c in zip(names, counts)}


def stage_intervals(hypno, epoch_s: float = 30.0, names=STAGES):
    """Runs of one stage: ``(codes (k,), intervals (k, 2) [start, end) in s)``."""
    epoch_s = _check_epoch(epoch_s, "stage_intervals")
    check_names(names, "stage_intervals")
    h = check_hypnogram(hypno, names)
    starts = np.flatnonzero(np.concatenate([[True], h[1:] != h[:-1]]))
    ends = np.concatenate([starts[1:], [h.size]])
    return h[starts], np.stack([starts, ends], axis=1) * epoch_s


def stage_at(hypno, times, epoch_s: float = 30.0, names=STAGES) -> np.ndarray:
    """Stage code at each time (s) (e.g. of detected events), the shape of ``times``: time t
    lies in epoch k = floor(t / epoch_s), [k epoch_s, (k + 1) epoch_s); -1 outside the
    hypnogram (before 0, at or after its end, inf or nan). A time within 4 ulps of a
    boundary counts as on it: 0.3 s is in epoch 3 of 0.1 s epochs, although 0.3 / 0.1 =
    2.9999999999999996 in floating point. ``times`` must be numbers (a string such as "35"
    is refused, not parsed)."""
    epoch_s = _check_epoch(epoch_s, "stage_at")
    check_names(names, "stage_at")
    h = check_hypnogram(hypno, names)
    t = np.asarray(times)
    if t.dtype.kind not in "iuf":  # NumPy parsed "35" as 35 s; bools ran as 0 and 1 s
        raise ValueError(f"stage_at: times must be numbers (s), got dtype {t.dtype}")
    t = t.astype(np.float64)
    q = t / epoch_s
    near = np.round(q)
    with np.errstate(invalid="ignore"):  # inf - inf: nan, not near
        on_boundary = np.abs(q - near) <= 4 * np.finfo(np.float64).eps * np.abs(near)
    epoch = np.where(on_boundary, near, np.floor(q))  # in float: inf cast to int64 wrapped
    inside = (t >= 0) & (epoch < h.size)
    idx = np.where(inside, epoch, 0).astype(np.int64)
    return np.where(inside, h[idx], -1)


def _time_unit(total_s: float, unit, who: str):
    if unit is None:
        unit = "h" if total_s >= 2 * 3600 else "min" if total_s >= 120 else "s"
    scale = {"s": 1.0, "min": 60.0, "h": 3600.0}
    if not isinstance(unit, str) or unit not in scale:  # a list: "unhashable type"
        raise ValueError(f"{who}: time_unit must be one of {sorted(scale)} or None, got {unit!r}")
    return unit, scale[unit]


def _draw_hypnogram(ax, h, epoch_s, names, unit, scale, highlight):
    t = np.arange(h.size + 1) * epoch_s / scale
    level = -np.concatenate([h, h[-1:]])  # first stage on top, later (deeper) stages below
    ax.step(t, level, where="post", color="k", lw=1.2)
    if highlight in names:
        code = names.index(highlight)
        on = np.where(np.concatenate([h, h[-1:]]) == code, level, np.nan)
        ax.step(t, on, where="post", color="tab:red", lw=3)
    # plain text: a name with a '$' was parsed as mathtext and failed at the save
    ax.set_yticks(-np.arange(len(names)), [str(n) for n in names], parse_math=False)
    ax.set_ylim(-len(names) + 0.5, 0.5)
    ax.set_xlim(0, t[-1])
    ax.set_ylabel("stage")
    ax.set_xlabel(f"time ({unit})")


def plot_hypnogram(hypno, epoch_s: float = 30.0, names=STAGES, *, time_unit=None, highlight="REM"):
    """A step plot of the stages over time: names[0] on top, names[-1] at the bottom.

    ``time_unit``: "s", "min" or "h" (None picks from the length); the ``highlight`` stage
    (REM by default, if among the names) is drawn thick and red. Returns a Figure.
    """
    from nnjax.plotting import subplots

    epoch_s = _check_epoch(epoch_s, "plot_hypnogram")
    check_names(names, "plot_hypnogram")
    h = check_hypnogram(hypno, names)
    unit, scale = _time_unit(h.size * epoch_s, time_unit, "plot_hypnogram")
    fig, ax = subplots(figsize=(8, 2.5), layout="constrained")
    _draw_hypnogram(ax, h, epoch_s, tuple(names), unit, scale, highlight)
    ax.set_title("hypnogram")
    return fig


def plot_spectrogram(
    times,
    freqs,
    sxx,
    *,
    fmax: float | None = 30.0,
    hypno=None,
    epoch_s: float = 30.0,
    names=STAGES,
    time_unit=None,
):
    """log10 power (dB) over time (s) and frequency (Hz), from :func:`rhythms.spectrogram`.

    ``sxx`` (n_freq, n_times) in u^2/Hz is drawn as 10 log10(sxx) up to ``fmax`` Hz (None:
    all), colours spanning its 2nd to 98th percentile. With ``hypno``, the hypnogram is
    drawn above on the same time axis. Returns a Figure.
    """
    from nnjax.plotting import subplots

    if hypno is not None:  # a str epoch_s failed deep in NumPy before it was checked
        epoch_s = _check_epoch(epoch_s, "plot_spectrogram")
        check_names(names, "plot_spectrogram")
    real = isinstance(fmax, int | float | np.integer | np.floating) and not isinstance(fmax, bool)
    if fmax is not None and not (real and fmax > 0):  # a str failed deep in NumPy
        raise ValueError(f"plot_spectrogram: fmax must be a number > 0 (Hz) or None, got {fmax}")
    t, f, s = (np.asarray(a, dtype=np.float64) for a in (times, freqs, sxx))
    if t.ndim != 1 or f.ndim != 1 or s.shape != (f.size, t.size):
        raise ValueError(
            f"plot_spectrogram: sxx must have shape (len(freqs), len(times)) = "
            f"({f.size}, {t.size}), got {s.shape}"
        )
    keep = f <= fmax if fmax is not None else np.ones(f.size, bool)
    if t.size == 0 or not keep.any():  # an empty or cut-away image failed with an IndexError
        raise ValueError(
            f"plot_spectrogram: needs at least one time and one frequency <= fmax={fmax}, got "
            f"{t.size} times and frequencies from {f.min() if f.size else None}"
        )
    total = t[-1] if hypno is None else max(t[-1], len(hypno) * epoch_s)
    unit, scale = _time_unit(total, time_unit, "plot_spectrogram")
    rows = 1 if hypno is None else 2
    ratios = [1] if hypno is None else [1, 3]
    fig, axes = subplots(
        rows,
        1,
        figsize=(8, 2 + 1.5 * rows),
        sharex=True,
        squeeze=False,
        height_ratios=ratios,
        layout="constrained",
    )
    ax = axes[-1, 0]
    db = 10.0 * np.log10(np.maximum(s[keep], np.finfo(np.float64).tiny))
    finite = np.isfinite(db)  # a nan bin made the colour limits nan: a blank image
    if not finite.any():
        raise ValueError(
            f"plot_spectrogram: sxx has no finite value up to fmax={fmax} (shape {s.shape})"
        )
    vmin, vmax = np.percentile(db[finite], [2, 98])  # a few extreme bins do not set the scale
    mesh = ax.pcolormesh(
        t / scale, f[keep], db, shading="nearest", cmap="magma", vmin=vmin, vmax=vmax
    )
    fig.colorbar(mesh, ax=list(axes[:, 0]), label="power (dB)")  # both rows keep one width
    ax.set_ylabel("frequency (Hz)")
    ax.set_xlabel(f"time ({unit})")
    if hypno is not None:
        h = check_hypnogram(hypno, names)
        _draw_hypnogram(axes[0, 0], h, epoch_s, tuple(names), unit, scale, "REM")
        axes[0, 0].set_xlabel("")
    return fig
