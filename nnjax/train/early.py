"""Early stopping: end a ``fit`` run when a watched metric stops improving, keep the best params.

``fit(..., eval_data={"val": (X_val, y_val)}, early_stopping=EarlyStopping(patience=5))``
watches ``val_loss`` after every epoch. With m_e the metric after epoch e (1-based) and
m* the best value so far, epoch e *improves* when

    m_e < m* - min_delta      (a loss: mode "min")
    m_e > m* + min_delta      (an accuracy: mode "max")

and the run stops after the first epoch that ends ``patience`` epochs without an improvement.
The carry (params, optimizer state, model state) of the best epoch is kept (a device copy,
taken when it improves) and is what ``fit`` returns, whether the run stopped early or ran
all its epochs; ``FitResult.best_epoch`` says which epoch it is (1-based: the metrics of
that epoch are ``metrics[name][best_epoch - 1]``), while ``metrics`` and ``step_loss`` cover
every epoch run. A nan/inf metric never improves.

It is built on the driver's seams (:mod:`nnjax.train.driver`): the monitor is a hook that
requests a stop on the run's :class:`~nnjax.train.driver.StopFlag`, and a run stops at chunk
boundaries, so with early stopping a compiled chunk is one epoch. A stop requested first by
someone else (a signal) still ends in ``TrainingStopped``.
"""

from typing import NamedTuple

import jax
import numpy as np

from nnjax.train.driver import ChunkReport, Driven, StopFlag


class EarlyStopping(NamedTuple):
    """Stop after ``patience`` epochs without an improvement of ``metric`` by more than
    ``min_delta``; ``mode`` "min" or "max" (None: "max" for an ``*_accuracy`` metric, else
    "min"). ``metric`` is a per-epoch metric of ``fit``: ``{name}_loss`` or
    ``{name}_accuracy`` of an ``eval_data`` set ``name``, or ``step_loss_mean``."""

    patience: int
    metric: str = "val_loss"
    min_delta: float = 0.0
    mode: str | None = None

    @property
    def direction(self) -> str:
        if self.mode is not None:
            return self.mode
        return "max" if self.metric.endswith("_accuracy") else "min"


def check_early_stopping(rule, eval_names, where: str = "fit") -> EarlyStopping | None:
    """``rule`` validated against the run's metrics (None stays None)."""
    if rule is None:
        return None
    if not isinstance(rule, EarlyStopping):
        raise ValueError(
            f"{where}: early_stopping must be an EarlyStopping(patience, metric='val_loss'), "
            f"got {type(rule).__name__}"
        )
    p, delta = rule.patience, rule.min_delta
    if isinstance(p, bool | np.bool_) or not isinstance(p, int | np.integer) or p < 1:
        raise ValueError(f"{where}: early_stopping patience must be an int >= 1, got {p!r}")
    real = isinstance(delta, int | float | np.integer | np.floating)
    if isinstance(delta, bool | np.bool_) or not (real and 0 <= delta < float("inf")):
        raise ValueError(
            f"{where}: early_stopping min_delta must be a finite number >= 0, got {delta!r}"
        )
    if rule.mode not in (None, "min", "max"):
        raise ValueError(
            f"{where}: early_stopping mode must be 'min', 'max' or None (None: 'max' for an "
            f"*_accuracy metric, else 'min'), got {rule.mode!r}"
        )
    metrics = ["step_loss_mean"] + [f"{n}_{m}" for n in eval_names for m in ("loss", "accuracy")]
    if not isinstance(rule.metric, str):
        raise ValueError(
            f"{where}: early_stopping metric must be a metric's name (one of "
            f"{', '.join(metrics)}), got {rule.metric!r}"
        )
    if rule.metric not in metrics:
        raise ValueError(
            f"{where}: early_stopping watches {rule.metric!r}, which this run does not compute "
            f"(its metrics: {', '.join(metrics)}); {_metric_hint(rule.metric)}"
        )
    return rule._replace(patience=int(p), min_delta=float(delta))


def _metric_hint(metric: str) -> str:
    """What gives ``metric``: the evaluation set it names (``val_loss``: ``eval_data={'val':
    ...}``); a name that no set gives (``step_loss``, ``loss``, ``val_auc``) is told to
    watch one of the run's metrics instead (a set named 'step' is refused, and no set gives
    an ``_auc``)."""
    name, _, kind = metric.rpartition("_")
    if kind in ("loss", "accuracy") and name not in ("", "step"):
        return f"pass eval_data={{{name!r}: (X, y)}}"
    return "watch one of them, or {name}_loss / {name}_accuracy of an eval_data set"


class EarlyStoppingMonitor:
    """The hook that follows one run: ``best`` value, ``best_epoch`` (1-based), the best
    ``carry``, ``wait`` epochs since; it requests a stop on ``stop`` with :attr:`reason`."""

    def __init__(self, rule: EarlyStopping, stop: StopFlag):
        self.rule, self.stop = rule, stop
        self.best, self.best_epoch, self.best_carry = None, None, None
        self.wait, self.seen, self.reason = 0, 0, None

    def _improves(self, value: float) -> bool:
        if not np.isfinite(value):
            return False
        if self.best is None:
            return True
        if self.rule.direction == "min":
            return value < self.best - self.rule.min_delta
        return value > self.best + self.rule.min_delta

    def hook(self, report: ChunkReport) -> None:
        """After a chunk: update the best; request the stop when patience runs out. The same
        report seen twice (the driver re-runs hooks after a stop request) counts once."""
        if report.end <= self.seen:
            return
        values = np.asarray(report.outputs.metrics[self.rule.metric]).reshape(-1)
        for i, value in enumerate(values):
            epoch = report.begin + i + 1
            if self._improves(float(value)):
                self.best, self.best_epoch, self.wait = float(value), epoch, 0
                if epoch == report.end:  # the carry is the one after the chunk's last epoch
                    self.best_carry = jax.tree.map(lambda a: a.copy(), report.carry)
            else:
                self.wait += 1
        self.seen = report.end
        if self.wait >= self.rule.patience and self.reason is None and report.end < report.total:
            best = (
                f"best {self.best:.6g} at epoch {self.best_epoch}"
                if self.best is not None
                else "no epoch gave a finite value"  # nan from the start (check_finite=False)
            )
            self.reason = (
                f"early stopping: {self.rule.metric} did not improve for {self.wait} "
                f"{'epoch' if self.wait == 1 else 'epochs'} "
                f"({best})"
            )
            self.stop.request(self.reason)

    def finish(self, driven: Driven) -> Driven:
        """The run's outcome with the best carry in place (the last one when no epoch gave a
        finite value: ``best_epoch`` None); the monitor's own stop is the run's normal end
        (someone else's stop stays a stop)."""
        carry = driven.carry if self.best_carry is None else self.best_carry
        stopped = None if driven.stopped == self.reason else driven.stopped
        return driven._replace(carry=carry, stopped=stopped)


class RunStop(StopFlag):
    """The flag of a run with early stopping: set by the monitor (its own :meth:`request`)
    or by the caller's ``outer`` flag (a signal), whichever came first. The monitor's request
    stays here: the caller's flag is never set by it, so the flag can serve the next run
    (and a :class:`~nnjax.train.signals.SignalStop` does not take the next signal for a
    second one)."""

    def __init__(self, outer: StopFlag | None = None):
        self.outer, self.own = outer, None

    @property
    def reason(self) -> str | None:
        if self.own is not None or self.outer is None:
            return self.own
        return self.outer.reason

    def request(self, reason: str = "stop requested") -> None:
        if self.reason is None:
            self.own = reason
