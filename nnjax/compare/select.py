"""The learning-rate choice of a study, shared by the report and the plots.

A run *diverged* (:func:`diverged`) when its loss became nan or inf, or when its final training
loss on the whole fit set (after the last epoch) is above ``DIVERGENCE_FACTOR`` (k = 10) times
its initial loss (the loss of its first batch at the initial weights). A diverged run never
wins the choice. The learning rate of each optimizer is chosen on the validation split, never
on the test split (:func:`best_index`).

Why k = 10: at initialisation a classifier's cross-entropy is near log K (2.30 for 10 classes,
0.69 for 2), the loss of a uniform guess. A run that learns slowly, or oscillates, stays near
or below that; ten times it (23 nats for 10 classes) means the network gives the right class a
probability of about e^-23 on average: confidently wrong, the mark of weights that blew up
(e.g. full-batch GD at too large a rate ending at a loss in the thousands with chance
accuracy), not of slow progress. A finite but huge loss is as useless as nan, and counting it
as converged would let it into the averages. The rule reads the *final* loss: a run that
spiked above k x its initial loss mid-way and came back down (full-batch GD at 3.16 on digits
reaches 60-160x its initial loss in the first 25 epochs and ends at 0.004, 95% test accuracy)
ended converged, and is counted so; its instability shows in the loss curves.

When every learning rate of an optimizer has a run that diverged (or a non-finite criterion),
no rate is chosen: :func:`best_index` returns None, and the report, the JSON and the plots say
"no rate converged" instead of showing the numbers of a diverged run as the optimizer's best.
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


DIVERGENCE_FACTOR = 10.0
"""k of the divergence rule (module docstring)."""


def initial_loss(runs: OptimizerRuns) -> np.ndarray:
    """(L, S) the loss of each run's first (mini-)batch at its initial weights (``step_loss``
    records each loss before its update); the whole fit set for full-batch GD."""
    return runs.step_loss[:, :, 0]


def diverged(runs: OptimizerRuns, factor: float = DIVERGENCE_FACTOR) -> np.ndarray:
    """(L, S) bool: the run diverged, i.e. a step loss or an epoch's fit-set loss is nan/inf,
    or the final fit-set training loss exceeds ``factor`` x :func:`initial_loss`."""
    train = runs.metrics["train_loss"]  # (L, S, E)
    bad = ~np.isfinite(runs.step_loss).all(axis=-1) | ~np.isfinite(train).all(axis=-1)
    with np.errstate(invalid="ignore"):  # nan compares False; nan runs are caught above
        blown = train[:, :, -1] > factor * initial_loss(runs)
    return bad | blown


def selection_scores(runs: OptimizerRuns, select: str) -> np.ndarray:
    """(L,) score to minimise: the criterion's seed mean, signed; +inf if any seed diverged."""
    metric, sign, _ = CRITERIA[select]
    score = sign * np.mean(final(runs, metric), axis=-1)
    return np.where(np.isfinite(score) & ~diverged(runs).any(axis=-1), score, np.inf)


NO_RATE = "no rate converged"
"""What the report, the JSON summary and the plots say of an optimizer without a chosen rate."""


def best_index(runs: OptimizerRuns, select: str = "val_loss") -> int | None:
    """Index of the chosen learning rate, or None when no rate converged.

    With the scores s_l of :func:`selection_scores` (the ``select`` criterion's seed mean,
    signed to be minimised; +inf for a rate with a diverged run), the choice is
    ``argmin_l s_l`` over the rates with a finite s_l; equal scores (ties) go to the smallest
    learning rate, whatever the order of the rates in the list. None when every s_l is +inf
    (:data:`NO_RATE`): a diverged run never wins, not even by default.
    """
    if not isinstance(select, str) or select not in CRITERIA:  # a bare KeyError before
        raise ValueError(f"best_index: select must be one of {', '.join(CRITERIA)}, got {select!r}")
    scores = selection_scores(runs, select)
    finite = np.isfinite(scores)
    if not finite.any():
        return None
    tied = np.flatnonzero(scores == scores[finite].min())
    return int(tied[np.argmin(np.asarray(runs.learning_rates)[tied])])
