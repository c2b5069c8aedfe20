"""The three figures of a study (stand-alone matplotlib Figures; nothing is shown).

* ``loss_curves.png``: training (mini-batch) loss per step against epochs, per optimizer at its
  chosen learning rate: the median over seeds, a min-max band.
* ``lr_sensitivity.png``: final training and validation loss against the learning rate (log
  axes), median over seeds with min-max bars; the chosen rate is circled; a rate with a
  diverged run (:func:`nnjax.compare.select.diverged`) is drawn as x above every point.
* ``test_accuracy.png``: test accuracy after each epoch at the chosen learning rate, median
  with a min-max band.

The loss axes are logarithmic unless a loss drawn is exactly 0 (float32 cross-entropy on
separable data reaches it) or below: then linear, where that point stays in sight (a log axis
hid it, the chosen rate's circle included). A curve of a single point (one epoch; one step)
is drawn as a marker with a min-max bar (a line and a band of one point are invisible).

An optimizer without a chosen rate (every rate diverged, :func:`~nnjax.compare.select.best_index`
None) has no curve: its legend entry says "no rate converged", and no rate is circled.
"""

import io
import os
import warnings

import numpy as np

from nnjax.compare.select import NO_RATE, best_index, diverged, final
from nnjax.compare.study import StudyResult
from nnjax.io import atomic_save_figure, atomic_write_bytes
from nnjax.plotting import subplots

PLOTS = ("loss_curves", "lr_sensitivity", "test_accuracy")
"""The figures a study writes, as ``<name>.png``: the only PNG names compare owns."""
DPI = 100


def _band(ax, x, a, color, label, axis=0):
    """Median line and min-max band of ``a`` (seeds on ``axis``); nan-safe. A single point
    (one epoch) is a marker with a min-max bar: a line and a band of one point draw nothing."""
    with warnings.catch_warnings():  # an all-nan column (every seed diverged) is expected
        warnings.simplefilter("ignore", RuntimeWarning)
        med, lo, hi = (np.nanmedian(a, axis), np.nanmin(a, axis), np.nanmax(a, axis))
    if len(x) == 1:
        ax.errorbar(x, med, yerr=[med - lo, hi - med], color=color, marker="o", ms=4,
                    capsize=3, lw=1.2, label=label)  # fmt: skip
        return
    ax.fill_between(x, lo, hi, color=color, alpha=0.2, lw=0)
    ax.plot(x, med, color=color, lw=1.2, label=label)


def _log_fits(values) -> bool:
    """Whether a log axis shows every finite value of ``values`` (arrays): none is <= 0."""
    v = np.concatenate([np.ravel(np.asarray(a, np.float64)) for a in values] + [np.ones(0)])
    return not (v[np.isfinite(v)] <= 0).any()


def _colors(names):
    return {n: f"C{i}" for i, n in enumerate(names)}


def _no_rate(ax, name: str, color) -> None:
    """The legend entry of an optimizer without a chosen rate (no curve to draw)."""
    ax.plot([], [], color=color, lw=1.2, ls=":", label=f"{name}: {NO_RATE}")


def _note_if_empty(ax, drawn: bool) -> None:
    """Say so in the middle of an axis on which no optimizer had a curve to draw."""
    if not drawn:
        ax.text(0.5, 0.5, f"{NO_RATE} for any optimizer", transform=ax.transAxes, ha="center")


def figure_loss_curves(result: StudyResult):
    colors = _colors(result.runs)
    fig, ax = subplots(figsize=(6.4, 4.0))
    drawn = []
    for name, runs in result.runs.items():
        b = best_index(runs, result.study.select)
        if b is None:
            _no_rate(ax, name, colors[name])
            continue
        curves = runs.step_loss[b]  # (S, E * T)
        x = np.arange(1, curves.shape[1] + 1) / runs.steps_per_epoch
        lr = runs.learning_rates[b]
        _band(ax, x, curves, colors[name], f"{name} (lr {lr:.3g})")
        drawn.append(curves)
    ax.set(
        xlabel="epoch",
        ylabel="training loss (per step)",
        yscale="log" if drawn and _log_fits(drawn) else "linear",  # log of no data warns
        title=f"{result.study.dataset}: loss at the chosen learning rate (median, min-max)",
    )
    _note_if_empty(ax, bool(drawn))
    ax.title.set_fontsize(10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_loss_curves(result: StudyResult, path: str) -> None:
    atomic_save_figure(figure_loss_curves(result), path, dpi=DPI)


def _final_losses(result: StudyResult) -> dict:
    """{(metric, name): (v, ok)}: each optimizer's final train and val loss v (L, S), and
    ok (L,): the rates whose seeds all ended finite and none diverged (the rest are an x)."""
    out = {}
    for metric in ("train_loss", "val_loss"):
        for name, runs in result.runs.items():
            v = final(runs, metric)
            out[metric, name] = v, np.isfinite(v).all(axis=1) & ~diverged(runs).any(axis=1)
    return out


def _top(values: np.ndarray, log: bool) -> float:
    """The height of the x of a diverged rate: above every point of the figure (both panels
    share it): twice the largest on a log axis, a fifth of the range above it on a linear
    one; 2 when no point is drawn."""
    if values.size == 0:
        return 2.0
    hi, lo = float(values.max()), float(values.min())
    return 2.0 * hi if log else hi + 0.2 * ((hi - lo) or abs(hi) or 1.0)


def figure_lr_sensitivity(result: StudyResult):
    colors = _colors(result.runs)
    fig, axes = subplots(1, 2, figsize=(9.0, 3.8), sharey=True)
    finals = _final_losses(result)
    points = np.concatenate([v[ok].ravel() for v, ok in finals.values()] + [np.ones(0)])
    log = _log_fits([points])
    top = _top(points, log)  # was per panel, from the optimizers drawn before: below later ones
    for ax, metric, title in zip(axes, ("train_loss", "val_loss"), ("training", "validation")):
        for name, runs in result.runs.items():
            v, ok = finals[metric, name]
            b = best_index(runs, result.study.select)
            med = np.where(ok, np.median(v, axis=1), np.nan)
            lo, hi = np.where(ok, v.min(axis=1), np.nan), np.where(ok, v.max(axis=1), np.nan)
            lr = runs.learning_rates
            ax.errorbar(
                lr,
                med,
                yerr=[med - lo, hi - med],
                color=colors[name],
                marker="o",
                ms=4,
                capsize=2,
                lw=1.2,
                label=name if b is not None else f"{name}: {NO_RATE}",
            )
            if b is not None:
                ax.plot(lr[b], med[b], "o", ms=11, mfc="none", mec=colors[name], mew=1.5)
            if (~ok).any():
                ax.plot(lr[~ok], np.full((~ok).sum(), top), "x", color=colors[name], ms=8)
        ax.set(
            xscale="log",
            yscale="log" if log else "linear",
            xlabel="learning rate",
            title=f"final {title} loss (median, min-max)",
        )
        ax.title.set_fontsize(10)
    axes[0].set_ylabel("loss after the last epoch")
    axes[0].legend(fontsize=8)
    fig.suptitle(
        f"{result.study.dataset}: learning-rate sensitivity (circle: chosen; x: diverged)",
        fontsize=10,
    )
    fig.tight_layout()
    return fig


def plot_lr_sensitivity(result: StudyResult, path: str) -> None:
    atomic_save_figure(figure_lr_sensitivity(result), path, dpi=DPI)


def figure_test_accuracy(result: StudyResult):
    colors = _colors(result.runs)
    fig, ax = subplots(figsize=(6.4, 4.0))
    drawn = False
    for name, runs in result.runs.items():
        b = best_index(runs, result.study.select)
        if b is None:
            _no_rate(ax, name, colors[name])
            continue
        drawn = True
        acc = runs.metrics["test_accuracy"][b]  # (S, E)
        x = np.arange(1, acc.shape[1] + 1)
        _band(ax, x, acc, colors[name], f"{name} (lr {runs.learning_rates[b]:.3g})")
    ax.set(
        xlabel="epoch",
        ylabel="test accuracy",
        title=f"{result.study.dataset}: test accuracy at the chosen learning rate "
        "(median, min-max)",
    )
    _note_if_empty(ax, drawn)
    ax.title.set_fontsize(10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig


def plot_test_accuracy(result: StudyResult, path: str) -> None:
    atomic_save_figure(figure_test_accuracy(result), path, dpi=DPI)


FIGURES = {
    "loss_curves": figure_loss_curves,
    "lr_sensitivity": figure_lr_sensitivity,
    "test_accuracy": figure_test_accuracy,
}


def render_plots(result: StudyResult) -> dict[str, tuple[str, bytes]]:
    """The three PNGs rendered in memory: {name: (file name, PNG bytes)}, in :data:`PLOTS`
    order (what :func:`plot_all` writes)."""
    files = {}
    for name in PLOTS:
        buf = io.BytesIO()
        FIGURES[name](result).savefig(buf, format="png", dpi=DPI)
        files[name] = (f"{name}.png", buf.getvalue())
    return files


def plot_all(result: StudyResult, out: str) -> dict[str, str]:
    """Write the three PNGs into ``out``, each atomically; returns {name: path}."""
    paths = {}
    for name, (file, data) in render_plots(result).items():
        paths[name] = os.path.join(out, file)
        atomic_write_bytes(paths[name], data)
    return paths
