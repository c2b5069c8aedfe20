"""Optimizer comparison: optimizers x learning rates x seeds, each optimizer's runs vmapped
into one compiled program (:mod:`nnjax.compare.study`), summarised over seeds with the
learning rate chosen on a validation split (:mod:`nnjax.compare.report`) and plotted
(:mod:`nnjax.compare.plot`).

>>> from nnjax.compare import compare
>>> c = compare("digits", out="compare-digits")          # doctest: +SKIP
>>> c.summary["adam"]["best_lr"], c.summary["adam"]["test_accuracy"]["mean"]  # doctest: +SKIP
"""

import contextlib
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from nnjax.compare.files import check_kept, check_out, report_names, write_checked, write_report
from nnjax.compare.report import best_index, summarize
from nnjax.compare.settings import DEFAULT_LEARNING_RATES, DEFAULT_OPTIMIZERS
from nnjax.compare.study import (
    PRESETS,
    OptimizerRuns,
    Study,
    StudyResult,
    StudyStopped,
    make_study,
    run_optimizer_study,
    seed_keys,
)


class Comparison(NamedTuple):
    """What :func:`compare` returns: all curves, the per-optimizer summary, written paths."""

    result: StudyResult
    summary: dict[str, dict[str, Any]]
    paths: dict[str, str]


@contextlib.contextmanager
def progress_bar(enabled: bool = True, **progress_kw):
    """A progress line with an ETA across the runs of a study (:class:`nnjax.progress.Progress`,
    to stderr, shown at once); yields an ``on_progress`` callback (or None when disabled).
    The unit is a run-epoch; the rate includes each optimizer's compile."""
    if not enabled:
        yield None
        return
    from nnjax.progress import Progress

    with Progress(1, "compare", unit="run-epoch", **progress_kw) as bar:
        bar.start("preparing the data and the first compile...")

        def on_progress(name: str, done: int, total: int, epochs_per_run: int) -> None:
            bar.total = max(total, 1)
            runs = f"{done // epochs_per_run}/{total // epochs_per_run}"
            bar.update(done, f"{name} runs {runs}")

        yield on_progress


def compare(
    dataset: str = "digits",
    *,
    optimizers: str | Sequence[str] | None = None,
    learning_rates: Mapping[str, Sequence[float]] | None = None,
    seeds: int | Sequence[int] = 5,
    epochs: int | None = None,
    batch_size: int | None = None,
    hidden: Sequence[int] | None = None,
    activation: str | None = None,
    val_fraction: float | None = None,
    target_loss: float | None = None,
    select: str | None = None,
    data_seed: int | None = None,
    model=None,
    out: str | None = None,
    overwrite: bool = False,
    plots: bool = True,
    progress: bool = False,
    stop=None,
) -> Comparison:
    """Compare optimizers on a built-in dataset: every optimizer x learning rate x seed.

    Defaults: ``optimizers`` gd, sgd, momentum, adam; 5 log-spaced learning rates each
    (:data:`DEFAULT_LEARNING_RATES`); ``seeds=5`` means seeds 0..4; epochs, batch size, MLP
    widths and target loss from the dataset's :data:`PRESETS`, and the hidden activation
    from it where it names one (toy: tanh), else relu. ``gd`` is full batch.
    The learning rate is chosen per optimizer by ``select`` (default: lowest mean final
    validation loss; the validation split is ``val_fraction`` of the training split).
    With ``out``, writes report.md, runs.csv, runs.json and the plots there
    (:func:`write_report`). A folder ``out`` already holding a file of one of those names
    (:data:`nnjax.compare.files.OUT_FILES`; with ``plots=False`` a PNG, which would be
    removed), an earlier comparison's or the user's, is refused with a ValueError naming the
    files, as ``nnjax compare --out`` refuses it; ``overwrite=True`` replaces them (and with
    ``plots=False`` removes the PNGs), leaving every other file as it is
    (:func:`nnjax.compare.files.check_kept`). Every setting, and ``out``, is checked before
    anything trains; ``out`` once more before the files are written: where files of those
    names appeared there meanwhile (they are kept; ``overwrite=True`` replaces them as it
    replaces those found before), or it cannot be written (a full disk,
    made read-only or a file), the files go to a new temporary folder instead and a
    :class:`nnjax.rescue.RescuedError` (an ``OSError``) names it (``.rescued``); that
    error, or any other of the writing, holds the study as ``.comparison`` (no ``paths``).
    An optimizer whose every rate diverged has no chosen rate (``best_lr`` None, "no rate
    converged"); with one seed the spread over seeds is undefined (``std`` nan, "n/a").
    ``stop`` (a :class:`nnjax.train.StopFlag`, e.g. the one
    :func:`nnjax.train.stop_on_signals` yields): a stop requested ends the study after the
    running compiled chunk with :class:`~nnjax.compare.study.StudyStopped`; the optimizers
    that finished every run are written to ``out`` as above (the report says which are
    missing: ``StudyResult.stopped``) and held as its ``.comparison`` (None when none
    finished).
    """
    from nnjax.layers.checks import flag
    from nnjax.train.driver import check_stop

    check_stop(stop, "compare")  # before anything loads: a bool or an Event failed late

    # a string such as "no" counted as True: the plots were written, the bar shown
    plots, progress = flag("compare", "plots", plots), flag("compare", "progress", progress)
    overwrite = flag("compare", "overwrite", overwrite)
    study = make_study(
        dataset,
        optimizers=optimizers,
        learning_rates=learning_rates,
        seeds=seeds,
        epochs=epochs,
        batch_size=batch_size,
        hidden=hidden,
        activation=activation,
        val_fraction=val_fraction,
        target_loss=target_loss,
        select=select,
        data_seed=data_seed,
    )
    if out is not None:  # a str from here on: a Path was named PosixPath('...') in the error
        out = check_out(out)
        check_kept(out, plots=plots, overwrite=overwrite)
    return _run(study, out, model, progress, stop, plots=plots, overwrite=overwrite)


def _run(study: Study, out: str | None, model, progress: bool, stop, **kw) -> Comparison:
    """The study, run and written (:func:`_compared`); a stopped one raises its
    :class:`StudyStopped`, holding the finished optimizers' comparison, written likewise."""
    try:
        with progress_bar(progress) as on_progress:
            result = run_optimizer_study(study, model=model, on_progress=on_progress, stop=stop)
    except StudyStopped as e:
        e.comparison = None if e.result is None else _compared(e.result, out, **kw)
        raise
    return _compared(result, out, **kw)


def _compared(result: StudyResult, out: str | None, **kw) -> Comparison:
    paths = {} if out is None else _write_or_rescue(result, out, **kw)
    return Comparison(result, summarize(result), paths)


def _write_or_rescue(result, out: str, *, plots: bool, overwrite: bool) -> dict:
    """Write the study's files to ``out``, or to a new temporary folder where ``out`` came to
    hold files of their names while it trained (those are kept) or cannot be written; the
    error raised either way, or any other (an ``Exception``) of rendering or writing, holds
    the study as ``.comparison``."""
    from nnjax.rescue import out_appeared_error, write_or_rescue

    try:
        return write_or_rescue(
            out,
            lambda folder: write_checked(result, folder, plots=plots),
            "compare",
            "the report and its files",
            refuse=lambda: out_appeared_error(
                out, *report_names(plots), overwrite=overwrite, where=f"compare: out {out!r}"
            ),
        )
    except Exception as e:  # the study is not lost with the files, whatever failed: a
        # RuntimeError of matplotlib's lost it (only OSError and ValueError held it)
        e.comparison = Comparison(result, summarize(result), {})
        raise


__all__ = [
    "DEFAULT_LEARNING_RATES",
    "DEFAULT_OPTIMIZERS",
    "PRESETS",
    "Comparison",
    "OptimizerRuns",
    "Study",
    "StudyResult",
    "StudyStopped",
    "best_index",
    "check_kept",
    "check_out",
    "compare",
    "make_study",
    "progress_bar",
    "run_optimizer_study",
    "seed_keys",
    "summarize",
    "write_report",
]
