"""The learning-rate choice of a study, shared by the report and the plots.

A run *diverged* when its loss became nan or inf; it never wins the choice. The learning rate
of each optimizer is chosen on the validation split, never on the test split
(:func:`best_index`).
"""

import numpy as np

from nnjax.compare.study import OptimizerRuns

CRITERIA = {
    "val_loss": ("val_loss", +1, "lowest mean final validation loss"),
    "val_accuracy": ("val_accuracy", -1, "highest mean final validation accuracy"),
    "train_loss": ("train_loss", +1, "lowest mean final training loss"),
}


def final(runs: OptimizerRuns, metric: str) -> np.ndarray:
    """(L, S) value of ``metric`` after the last epoch."""
    return runs.metrics[metric][:, :, -1]


def diverged(runs: OptimizerRuns) -> np.ndarray:
    """(L, S) bool: the run's loss became nan/inf at some step or epoch."""
    bad = ~np.isfinite(runs.step_loss).all(axis=-1)
    return bad | ~np.isfinite(runs.metrics["train_loss"]).all(axis=-1)


def selection_scores(runs: OptimizerRuns, select: str) -> np.ndarray:
    """(L,) score to minimise: the criterion's seed mean, signed; +inf if any seed diverged."""
    metric, sign, _ = CRITERIA[select]
    score = sign * np.mean(final(runs, metric), axis=-1)
    return np.where(np.isfinite(score) & ~diverged(runs).any(axis=-1), score, np.inf)


def best_index(runs: OptimizerRuns, select: str = "val_loss") -> int:
    """Index of the chosen learning rate: the best ``select`` criterion (mean over seeds of the
    final value on the validation split by default); ties go to the smaller rate."""
    return int(np.argmin(selection_scores(runs, select)))
