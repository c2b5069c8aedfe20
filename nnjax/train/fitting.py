"""``fit``: plan -> placement -> loop -> driver, and what it returns.

``fit`` runs E epochs as ``lax.scan`` over epochs of ``lax.scan`` over mini-batches (the loop
of :mod:`nnjax.train.loop`): the shuffling, the batching and every update happen inside one
compiled program, called once per chunk of epochs by the driver (:mod:`nnjax.train.driver`),
which checks the losses, writes checkpoints and reports progress between chunks. A model with
convolutions on the CPU runs the same loop from the host instead, a few compiled steps per
call (:mod:`nnjax.train.execution` says why; :mod:`nnjax.train.stepped`). The data
order is :mod:`nnjax.train.order`'s: epoch e shuffles with ``fold_in(order_key, e)``, the
last partial batch is dropped, ``batch_size=None`` is full batch in order.
"""

import os
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import jax
import numpy as np
import optax

from nnjax.train.checkpoints import FitCheckpoints, fit_config
from nnjax.train.driver import ChunkReport, Driven, FixedChunks, StopFlag, drive
from nnjax.train.loop import EpochOutputs, make_epochs_fn
from nnjax.train.plan import Plan, make_plan
from nnjax.train.stepped import SteppedLoop


class NonFiniteLossError(FloatingPointError):
    """The training loss became nan or inf."""


class FitResult(NamedTuple):
    """What :func:`fit` returns.

    ``params``, ``opt_state``, ``state`` (the model state, ``()`` for a stateless model):
    the carry after the last epoch. ``step_loss``: (epochs * steps_per_epoch,) the training
    loss of every step, each taken before its update, in order. ``metrics``: per-epoch arrays
    of shape (epochs,): ``step_loss_mean`` (the mean of the epoch's step losses) and, for
    each ``eval_data`` entry ``name``, ``{name}_loss`` and ``{name}_accuracy`` after the
    epoch. ``compile_time``/``run_time``: seconds spent compiling and running (apart).
    """

    params: Any
    opt_state: Any
    state: Any
    step_loss: np.ndarray
    metrics: dict[str, np.ndarray]
    compile_time: float
    run_time: float


class TrainingStopped(Exception):
    """A stop was requested (``fit(..., stop=flag)``): the run ended after a compiled chunk.

    ``reason``: the flag's reason; ``result``: the :class:`FitResult` so far (its
    ``step_loss`` and metrics cover the ``epochs_done`` epochs run); a checkpoint was written
    when ``checkpoint_dir`` is set.
    """

    def __init__(self, reason: str, result: FitResult, epochs_done: int):
        super().__init__(f"fit: stopped after epoch {epochs_done}: {reason}")
        self.reason, self.result, self.epochs_done = reason, result, epochs_done


def fit(
    model,
    params: Any,
    X,
    y,
    *,
    optimizer: str | optax.GradientTransformation = "adam",
    learning_rate: float | Callable | None = None,
    loss: str | Callable = "softmax_cross_entropy",
    epochs: int = 10,
    batch_size: int | None = None,
    key: Any = 0,
    eval_data: Mapping[str, tuple] | None = None,
    opt_state: Any = None,
    state: Any = None,
    dropout: bool = False,
    check_finite: bool = True,
    epochs_per_call: int | None = None,
    on_epochs: Callable[[int, dict], None] | None = None,
    mesh: Any = None,
    checkpoint_dir: str | os.PathLike | None = None,
    checkpoint_every: int | None = None,
    keep: int | None = 3,
    resume: bool | str | os.PathLike = False,
    stop: StopFlag | None = None,
    execution: str = "auto",
) -> FitResult:
    """Train ``params`` of ``model`` on (X, y) for ``epochs`` epochs, the loop fused in one jit.

    Args:
      model: an nnjax ``Layer`` (or an ``apply(params, x, *, key=None)`` function).
      params: the initial params pytree.
      X, y: arrays (n, ...) and (n,) or (n, K).
      optimizer: a name from :data:`nnjax.optim.OPTIMIZERS` (with ``learning_rate``; default
        :data:`nnjax.optim.DEFAULT_LEARNING_RATE`) or an ``optax.GradientTransformation``.
      loss: a name from :data:`nnjax.losses.LOSSES` or ``loss(pred, y) -> scalar``.
      batch_size: mini-batch size (last partial batch dropped each epoch), or ``None`` for
        full-batch gradient descent. The optimizers of :data:`nnjax.optim.FULL_BATCH`
        (``"gd"``) require ``None``.
      key: an int seed or a PRNG key; it seeds the shuffles (and dropout).
      eval_data: ``{"test": (X_test, y_test), ...}``; loss and accuracy after every epoch.
      opt_state: resume from this optimizer state (default ``optimizer.init(params)``).
      state: the model state of a stateful model (from ``model.init``), required for one;
        training updates it (train mode), evaluations use it; returned as ``result.state``.
      dropout: pass a fresh key to ``apply`` at every step (for ``Dropout`` layers).
      check_finite: raise :class:`NonFiniteLossError` naming the first step whose loss is
        nan/inf (checked after each compiled call), and refuse to checkpoint non-finite
        params.
      epochs_per_call: split the run into compiled calls of this many epochs (one compile;
        results identical); ``on_epochs(epochs_done, metrics_so_far)`` runs after each.
      mesh: data parallelism (:mod:`nnjax.parallel`): a ``jax.sharding.Mesh`` or a device
        count. Each batch is split across the devices (``batch_size``, or n for full batch,
        must divide by their number), params, optimizer and model state are replicated and
        XLA all-reduces the gradient. Same data order and numbers as one device up to float
        rounding (the batch sum is taken in another order).
      checkpoint_dir: save a checkpoint (params, optimizer and model state, key, epoch, loss
        history; :mod:`nnjax.train.checkpoints`) there every ``checkpoint_every`` epochs
        (default: after each call of ``epochs_per_call`` epochs, or each epoch) and at the
        end, keeping the ``keep`` newest (None: all). A directory that already holds
        checkpoints needs ``resume``.
      resume: ``True``: continue from the newest checkpoint in ``checkpoint_dir`` (start
        afresh if there is none); or the path of one checkpoint file. The resumed run ends
        with exactly the params of an uninterrupted one; ``params``, ``opt_state`` and
        ``state`` then only give the structure, and ``key``, the data and ``batch_size``
        must match.
      stop: a :class:`~nnjax.train.driver.StopFlag`; when it is set (e.g. by a signal
        handler) the run ends after the running compiled call, writes a checkpoint if
        ``checkpoint_dir`` is set, and raises :class:`TrainingStopped`.
      execution: how the loop over steps runs (:mod:`nnjax.train.execution`): ``"fused"``
        (all steps of ``epochs_per_call`` epochs in one compiled program), ``"chunked"``
        (a host loop over compiled calls of 8 straight-line steps; ``"chunked:K"`` for K),
        ``"per_step"`` (one compiled call per step), or ``"auto"``: chunked for a model with
        convolutions on the CPU (XLA:CPU runs a convolution's gradient slowly inside a
        compiled loop), fused otherwise. The same results up to float rounding.
    """
    plan = make_plan(**locals())  # every argument validated and interpreted, once
    checkpoints, carry, start, history = _start(plan)  # afresh, or from a checkpoint
    placement = plan.placement  # one device, or replicated over a mesh
    carry, data = placement.put(carry), placement.put((plan.key, plan.X, plan.y, plan.evals))
    driven = drive(
        fit_loop(plan),  # the loop over epochs of steps, fused or from the host
        carry,
        data,
        start=start,
        total=plan.epochs,
        chunks=FixedChunks(plan.epochs_per_call),
        hooks=_hooks(plan, checkpoints),
        stop=plan.stop,
        placement=placement,
        history=history,
    )
    return _result(driven)  # or raise TrainingStopped after a stop request


def fit_loop(plan: Plan):
    """fit's loop: ``run(carry, epochs, key, X, y, evals) -> (carry, EpochOutputs)``, fused
    in one program or driven step by step from the host (``plan.execution``)."""
    if plan.execution.mode != "fused":
        return SteppedLoop(
            plan.model,
            plan.loss,
            plan.optimizer,
            n_examples=plan.n_examples,
            batch_size=plan.batch_size,
            steps_per_call=plan.execution.steps_per_call,
            dropout=plan.dropout,
            eval_names=plan.eval_names,
            placement=plan.placement,
        )
    run, _ = make_epochs_fn(
        plan.model,
        plan.loss,
        plan.optimizer,
        n_examples=plan.n_examples,
        batch_size=plan.batch_size,
        dropout=plan.dropout,
        eval_names=plan.eval_names,
        batch_sharding=plan.placement.batch_sharding,
    )
    return run


def _start(plan: Plan):
    """``(checkpoints or None, carry, first epoch, outputs so far)``: afresh, or resumed."""
    if plan.checkpoint_dir is None and not plan.resume:
        return None, plan.carry, 0, []
    checkpoints = FitCheckpoints(
        plan.checkpoint_dir,
        plan.checkpoint_every,
        plan.keep,
        fit_config(plan.X, plan.y, plan.batch_size, plan.dropout),
        key=plan.key,
        epochs=plan.epochs,
        steps_per_epoch=plan.steps_per_epoch,
    )
    if not plan.resume:
        checkpoints.check_empty()
        return checkpoints, plan.carry, 0, []
    restored = checkpoints.restore(plan.resume, plan.carry)
    if restored is None:
        return checkpoints, plan.carry, 0, []
    epoch, carry, outputs = restored
    return checkpoints, carry, epoch, [outputs]


def _hooks(plan: Plan, checkpoints: FitCheckpoints | None) -> list:
    """After each chunk, in order: the loss check, the checkpoint, the user's callback."""
    hooks = []
    if plan.check_finite:
        hooks.append(_check_losses(plan.steps_per_epoch))
    if checkpoints is not None:
        if plan.check_finite:
            hooks.append(_check_params_before(checkpoints))
        hooks.append(checkpoints.hook)
    if plan.on_epochs is not None:
        hooks.append(_report_epochs(plan.on_epochs))
    return hooks


def _check_losses(steps_per_epoch: int):
    def hook(report: ChunkReport) -> None:
        losses = report.outputs.step_loss.reshape(-1)
        if np.isfinite(losses).all():
            return
        i = int(np.flatnonzero(~np.isfinite(losses))[0])
        bad = report.begin * steps_per_epoch + i
        raise NonFiniteLossError(
            f"fit: the training loss became {losses[i]} at step {bad} "
            f"(epoch {bad // steps_per_epoch}, batch {bad % steps_per_epoch}); lower the "
            "learning rate or check the data, or pass check_finite=False"
        )

    return hook


def _check_params_before(checkpoints: FitCheckpoints):
    """No checkpoint is written from non-finite params (only checked when one is due)."""

    def hook(report: ChunkReport) -> None:
        if not checkpoints.due(report.end, report.final):
            return
        leaves = jax.tree.leaves(report.carry.params)
        if not all(bool(np.isfinite(np.asarray(a)).all()) for a in leaves):
            raise NonFiniteLossError(
                f"fit: the params hold nan/inf after epoch {report.end}; no checkpoint "
                "written (lower the learning rate, or pass check_finite=False)"
            )

    return hook


def _report_epochs(on_epochs: Callable[[int, dict], None]):
    """``on_epochs(epochs_done, metrics so far)``, once per chunk."""
    reported = [-1]

    def hook(report: ChunkReport) -> None:
        if report.end != reported[0]:
            reported[0] = report.end
            on_epochs(report.end, report.outputs_so_far().metrics)

    return hook


def _result(driven: Driven) -> FitResult:
    outputs: EpochOutputs = driven.outputs
    carry = driven.carry
    result = FitResult(
        carry.params,
        carry.opt_state,
        carry.state,
        outputs.step_loss.reshape(-1),
        dict(outputs.metrics),
        driven.compile_time,
        driven.run_time,
    )
    if driven.stopped is not None:
        raise TrainingStopped(driven.stopped, result, driven.done)
    return result
