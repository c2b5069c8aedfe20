"""The three figures of a study (stand-alone matplotlib Figures; nothing is shown).

* ``loss_curves.png``: training (mini-batch) loss per step against epochs, per optimizer at its
  chosen learning rate: the median over seeds, a min-max band.
* ``lr_sensitivity.png``: final training and validation loss against the learning rate (log
  axes), median over seeds with min-max bars; the chosen rate is circled; a rate with a
  diverged run (:func:`nnjax.compare.select.diverged`) is drawn as x at the top.
* ``test_accuracy.png``: test accuracy after each epoch at the chosen learning rate, median
  with a min-max band.

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
    """Median line and min-max band of ``a`` (seeds on ``axis``); nan-safe."""
    with warnings.catch_warnings():  # an all-nan column (every seed diverged) is expected
        warnings.simplefilter("ignore", RuntimeWarning)
        med, lo, hi = (np.nanmedian(a, axis), np.nanmin(a, axis), np.nanmax(a, axis))
    ax.fill_between(x, lo, hi, color=color, alpha=0.2, lw=0)
    ax.plot(x, med, color=color, lw=1.2, label=label)


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
    drawn = False
    for name, runs in result.runs.items():
        b = best_index(runs, result.study.select)
        if b is None:
            _no_rate(ax, name, colors[name])
            continue
        curves = runs.step_loss[b]  # (S, E * T)
        x = np.arange(1, curves.shape[1] + 1) / runs.steps_per_epoch
        lr = runs.learning_rates[b]
        _band(ax, x, curves, colors[name], f"{name} (lr {lr:.3g})")
        drawn = True
    ax.set(
        xlabel="epoch",
        ylabel="training loss (per step)",
        yscale="log" if drawn else "linear",  # log of no data warns
        title=f"{result.study.dataset}: loss at the chosen learning rate (median, min-max)",
    )
    _note_if_empty(ax, drawn)
    ax.title.set_fontsize(10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_loss_curves(result: StudyResult, path: str) -> None:
    atomic_save_figure(figure_loss_curves(result), path, dpi=DPI)


def figure_lr_sensitivity(result: StudyResult):
    colors = _colors(result.runs)
    fig, axes = subplots(1, 2, figsize=(9.0, 3.8), sharey=True)
    for ax, metric, title in zip(axes, ("train_loss", "val_loss"), ("training", "validation")):
        finite_max = []
        for name, runs in result.runs.items():
            v = final(runs, metric)  # (L, S)
            ok = np.isfinite(v).all(axis=1) & ~diverged(runs).any(axis=1)
            b = best_index(runs, result.study.select)
            finite_max.append(np.max(v[ok]) if ok.any() else 1.0)
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
                top = max(finite_max) * 2
                ax.plot(lr[~ok], np.full((~ok).sum(), top), "x", color=colors[name], ms=8)
        ax.set(
            xscale="log",
            yscale="log",
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
