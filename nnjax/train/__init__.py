"""Training: one engine that every training loop in nnjax shares.

The pieces, in the order ``fit`` composes them:

* :mod:`~nnjax.train.plan`: every ``fit`` argument validated and interpreted once (:class:`Plan`);
* :mod:`~nnjax.train.order`: the one data order (:func:`batch_indices`, :func:`run_keys`);
* :mod:`~nnjax.train.step`: the objective, one optimizer step, the evaluation;
* :mod:`~nnjax.train.loop`: the pure scan over epochs and steps (:func:`make_epochs_fn`), for
  anyone to ``jit`` or ``vmap``;
* :mod:`~nnjax.train.stepped`: the same loop driven from the host, k compiled steps per call
  (:class:`SteppedLoop`); :mod:`~nnjax.train.execution`: which of the two ``fit`` runs
  (``execution="auto"|"fused"|"chunked"|"per_step"``, :func:`choose_execution`);
* :mod:`~nnjax.train.placement`: one device or a data-parallel mesh (:class:`Placement`);
* :mod:`~nnjax.train.driver`: compile once, run in chunks, hooks between (:func:`drive`),
  the outputs so far joined as they come (:class:`~nnjax.train.history.History`);
* :mod:`~nnjax.train.checkpoints`: the checkpoints of a ``fit`` run, and
  :mod:`~nnjax.train.config`: the configuration they record and a resume checks;
* :mod:`~nnjax.train.guards`: the finiteness checks and the divergence guard (hooks);
* :mod:`~nnjax.train.signals`: stop on SIGTERM/SIGINT/SIGHUP/SIGUSR1 (:func:`stop_on_signals`);
* :mod:`~nnjax.train.early`: early stopping, a hook on the driver's stop seam;
* :mod:`~nnjax.train.fitting`: :func:`fit` itself.
"""

from nnjax.train.checkpoints import FitCheckpoints, FreeSpaceWarning
from nnjax.train.config import fit_config, run_config
from nnjax.train.driver import (
    BoundedChunks,
    ChunkReport,
    Driven,
    FixedChunks,
    HostProgram,
    Program,
    StopFlag,
    concat,
    drive,
)
from nnjax.train.early import EarlyStopping, EarlyStoppingMonitor
from nnjax.train.execution import EXECUTIONS, Execution, choose_execution
from nnjax.train.fitting import FitResult, NonFiniteLossError, TrainingStopped, fit, fit_loop
from nnjax.train.guards import DivergenceGuard
from nnjax.train.history import History
from nnjax.train.loop import EpochOutputs, make_epochs_fn
from nnjax.train.model import apply_model, is_stateful
from nnjax.train.order import batch_indices, run_batch_indices, run_keys, step_keys
from nnjax.train.placement import Placement
from nnjax.train.plan import Plan, make_plan
from nnjax.train.signals import SignalStop, stop_on_signals
from nnjax.train.step import (
    Carry,
    classification_accuracy,
    evaluate,
    make_eval_fn,
    make_loss_fn,
    make_objective,
    make_optimizer_step,
    make_train_step,
)
from nnjax.train.stepped import SteppedLoop

__all__ = [
    "BoundedChunks",
    "Carry",
    "ChunkReport",
    "DivergenceGuard",
    "Driven",
    "EXECUTIONS",
    "EarlyStopping",
    "EarlyStoppingMonitor",
    "EpochOutputs",
    "Execution",
    "FitCheckpoints",
    "FitResult",
    "FixedChunks",
    "FreeSpaceWarning",
    "History",
    "HostProgram",
    "NonFiniteLossError",
    "Placement",
    "Plan",
    "Program",
    "SignalStop",
    "SteppedLoop",
    "StopFlag",
    "TrainingStopped",
    "apply_model",
    "batch_indices",
    "choose_execution",
    "classification_accuracy",
    "concat",
    "drive",
    "evaluate",
    "fit",
    "fit_config",
    "fit_loop",
    "is_stateful",
    "make_epochs_fn",
    "make_eval_fn",
    "make_loss_fn",
    "make_objective",
    "make_optimizer_step",
    "make_plan",
    "make_train_step",
    "run_batch_indices",
    "run_config",
    "run_keys",
    "step_keys",
    "stop_on_signals",
]
