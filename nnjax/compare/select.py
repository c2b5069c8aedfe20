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
spiked above k x its initial loss mid-way and came back down (full-batch GD at 3.16 on digits:
seeds 0, 1 and 4 of the default five reach 60-160x their initial loss in the first 25 epochs,
seeds 2 and 3 at most 2.2x, and all five end at 0.003-0.006, 94-96% test accuracy, on CPU)
ended converged, and is counted so; its instability shows in the loss curves.

When every learning rate of an optimizer has a run that diverged (or a non-finite criterion),
no rate is chosen: :func:`best_index` returns None, and the report, the JSON and the plots say
"no rate converged" instead of showing the numbers of a diverged run as the optimizer's best.
"""

import math

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


def seed_mean(values: np.ndarray) -> np.ndarray:
    """(L,) mean over the last axis (the seeds), the same whatever the order of the seeds:
    the correctly rounded sum (``math.fsum``, in float64) over S; nan where a value is not
    finite. ``np.mean`` of the float32 metrics rounds as it goes, so the same accuracies in
    another seed order gave another mean (0.6462963 and 0.64629626 for 243, 249 and 206 of
    360), and a tie was broken by rounding instead of by the smaller rate."""
    a = np.asarray(values, dtype=np.float64)
    ok = np.isfinite(a).all(axis=-1)
    sums = [math.fsum(row) if good else math.nan for row, good in zip(a, ok)]
    return np.asarray(sums, dtype=np.float64) / a.shape[-1]


def selection_scores(runs: OptimizerRuns, select: str) -> np.ndarray:
    """(L,) score to minimise: the criterion's seed mean (:func:`seed_mean`), signed; +inf
    if any seed diverged or its criterion is not finite."""
    metric, sign, _ = CRITERIA[select]
    score = sign * seed_mean(final(runs, metric))
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
