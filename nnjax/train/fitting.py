"""``fit``: plan -> placement -> loop -> driver, and what it returns.

``fit`` runs E epochs as ``lax.scan`` over epochs of ``lax.scan`` over mini-batches (the loop
of :mod:`nnjax.train.loop`): the shuffling, the batching and every update happen inside one
compiled program, called once per chunk of epochs by the driver (:mod:`nnjax.train.driver`),
which checks the losses, writes checkpoints and reports progress between chunks. A model with
convolutions on the CPU runs the same loop from the host instead, a few compiled steps per
call (:mod:`nnjax.train.execution` says why; :mod:`nnjax.train.stepped`). The data
order is :mod:`nnjax.train.order`'s: epoch e shuffles with ``fold_in(order_key, e)``, the
last partial batch is dropped, ``batch_size=None`` (or n) is full batch in order.
"""

import inspect
import os
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import jax
import numpy as np
import optax

from nnjax.errors import NonFiniteLossError as NonFiniteLossError
from nnjax.preflight import estimate_checkpoint_bytes
from nnjax.train import guards
from nnjax.train.checkpoints import FitCheckpoints, locked_directory
from nnjax.train.config import eval_config
from nnjax.train.driver import BoundedChunks, ChunkReport, Driven, FixedChunks, StopFlag, drive
from nnjax.train.early import EarlyStopping, EarlyStoppingMonitor, RunStop
from nnjax.train.executables import store_for_fit
from nnjax.train.loop import EpochOutputs, make_epochs_fn
from nnjax.train.plan import Plan, make_plan
from nnjax.train.stepped import SteppedLoop


class FitResult(NamedTuple):
    """What :func:`fit` returns.

    ``params``, ``opt_state``, ``state`` (the model state, ``()`` for a stateless model):
    the carry after the last epoch. ``step_loss``: (epochs * steps_per_epoch,) the training
    loss of every step, each taken before its update, in order. ``metrics``: per-epoch arrays
    of shape (epochs,): ``step_loss_mean`` (the mean of the epoch's step losses) and, for
    each ``eval_data`` entry ``name``, ``{name}_loss`` and ``{name}_accuracy`` after the
    epoch. With early stopping, or in a :class:`TrainingStopped`'s result, ``epochs`` is the
    number of epochs run (0 before the first: every array empty, every name there).
    ``compile_time``/``run_time``: seconds spent compiling and running (apart).
    ``best_epoch``: with ``early_stopping``, the epoch (1-based) whose carry this is; else
    None. Its repr is one line of shapes and final metrics, never the arrays.
    """

    params: Any
    opt_state: Any
    state: Any
    step_loss: np.ndarray
    metrics: dict[str, np.ndarray]
    compile_time: float
    run_time: float
    best_epoch: int | None = None

    def __repr__(self) -> str:
        return _describe(self)


def _describe(r: FitResult) -> str:
    """``FitResult(params 3 arrays / 4,810 values, epochs 10 x 12 steps, final
    step_loss_mean 0.12, test_accuracy 0.97, compile 1.2 s, run 0.3 s)``."""
    leaves = jax.tree.leaves(r.params)
    size = sum(int(np.size(a)) for a in leaves)
    parts = [f"params {len(leaves)} arrays / {size:,} values"]
    if jax.tree.leaves(r.state):
        parts.append(f"state {len(jax.tree.leaves(r.state))} arrays")
    epochs = len(next(iter(r.metrics.values()), ()))
    steps = len(r.step_loss) // epochs if epochs else 0
    parts.append(f"epochs {epochs} x {steps} step{'' if steps == 1 else 's'}")
    final = [f"{k} {float(v[-1]):.4g}" for k, v in r.metrics.items() if len(v)]
    if final:
        parts.append("final " + ", ".join(final))
    if r.best_epoch is not None:
        parts.append(f"best_epoch {r.best_epoch}")
    parts.append(f"compile {r.compile_time:.2f} s, run {r.run_time:.2f} s")
    return f"FitResult({', '.join(parts)})"


class TrainingStopped(Exception):
    """A stop was requested (``fit(..., stop=flag)``): the run ended after a compiled chunk.

    ``reason``: the flag's reason; ``result``: the :class:`FitResult` so far (its
    ``step_loss`` and metrics cover the ``epochs_done`` epochs run; with early stopping, the
    carry of its ``best_epoch`` so far); ``checkpoint``: the path
    of the checkpoint written at the stop (``checkpoint_dir`` set), else None.
    """

    def __init__(self, reason: str, result: FitResult, epochs_done: int, checkpoint=None):
        saved = f"; checkpoint {checkpoint}" if checkpoint else ""
        super().__init__(f"fit: stopped after epoch {epochs_done}: {reason}{saved}")
        self.reason, self.result, self.epochs_done = reason, result, epochs_done
        self.checkpoint = checkpoint


# fit's argument reference, appended to its docstring (help(fit) shows it whole)
_ARGUMENTS = """

    Args:
      model: an nnjax ``Layer`` (or an ``apply(params, x, *, key=None)`` function).
      params: the initial params pytree.
      X, y: arrays (n, ...) and (n,) or (n, K). Dtypes follow JAX: float64 params and data
        stay float64 only with x64 on (``jax.config.update("jax_enable_x64", True)``), else
        they train as float32, without a warning; with x64 on, float32 params stay float32
        and float64 X makes the losses and metrics float64.
      optimizer: a name from :data:`nnjax.optim.OPTIMIZERS` or an
        ``optax.GradientTransformation`` (which carries its own rate).
      learning_rate: a named optimizer's rate, a float or a schedule ``step -> rate``
        (default: :data:`nnjax.optim.DEFAULT_LEARNING_RATE` of the name); finite and not 0
        in the params' dtype; refused beside an Optax transformation.
      loss: a name from :data:`nnjax.losses.LOSSES` or ``loss(pred, y) -> scalar``.
      epochs: the passes over (X, y), at least 1.
      batch_size: mini-batch size (last partial batch dropped each epoch), or ``None`` for
        full-batch gradient descent; n (the number of examples) runs the same full batch,
        in stored order, with no shuffle drawn. The optimizers of
        :data:`nnjax.optim.FULL_BATCH` (``"gd"``) require ``None``.
      key: an int seed or a PRNG key; it seeds the shuffles (and dropout).
      eval_data: ``{"test": (X_test, y_test), ...}``; loss and accuracy after every epoch.
      opt_state: resume from this optimizer state (default ``optimizer.init(params)``).
      state: the model state of a stateful model (from ``model.init``), required for one;
        training updates it (train mode), evaluations use it; returned as ``result.state``.
      dropout: pass a fresh key to ``apply`` at every step (for ``Dropout`` layers).
      check_finite: raise :class:`NonFiniteLossError` naming the first step whose loss, or
        the first evaluation metric, is nan/inf (checked after each compiled call), or the
        first leaf of params, optimizer or model state that is, before a checkpoint and at
        the end; no checkpoint is written from non-finite state (:mod:`nnjax.train.guards`).
      epochs_per_call: split the run into compiled calls of this many epochs (one compile,
        two when it does not divide ``epochs``: the last call is shorter; results identical).
      on_epochs: ``on_epochs(epochs_done, metrics_so_far)``, called after each compiled call.
      mesh: data parallelism (:mod:`nnjax.parallel`): a ``jax.sharding.Mesh`` or a device
        count. Each batch is split across the devices (``batch_size``, or n for full batch,
        must divide by their number), params, optimizer and model state are replicated and
        XLA all-reduces the gradient. Same data order and numbers as one device up to float
        rounding (the batch sum is taken in another order).
      checkpoint_dir: save a checkpoint (params, optimizer and model state, key, epoch, loss
        history, the run's configuration; :mod:`nnjax.train.checkpoints`) there every
        ``checkpoint_every`` epochs and at the end, keeping the ``keep`` newest. A directory
        that already holds checkpoints needs ``resume``. Before compiling, the directory is
        checked for writability and free space (a ``FreeSpaceWarning`` below ``keep + 1``
        checkpoints' worth) and its lock (:func:`nnjax.checkpoint.lock`) is taken for the
        run's lifetime: a second run on it fails at once with ``DirectoryLockedError``.
      checkpoint_every: epochs between checkpoints (with ``checkpoint_dir``; a multiple of
        ``epochs_per_call``); default: after each call of ``epochs_per_call`` epochs, or
        each epoch. Counted from the last save: a run stopped at epoch 3 and resumed with
        ``checkpoint_every=2`` saves at 5, 7, ... (the params equal an uninterrupted run's).
      keep: the newest checkpoints kept (None: all).
      resume: ``True``: continue from the newest checkpoint in ``checkpoint_dir`` (start
        afresh if there is none); or the path of one checkpoint file. The resumed run ends
        with exactly the params of an uninterrupted one on the same machine (on another: a
        warning naming the change, and equal to float rounding); ``params``, ``opt_state`` and
        ``state`` then only give the structure. ``key`` and the data must match, and so
        must the configuration (model, loss, optimizer and learning rate, dtype, devices,
        batch size, dropout, the ``eval_data`` sets and their data:
        :mod:`nnjax.train.config`), or a ``ConfigMismatchError`` names each differing field,
        old and new; and JAX's PRNG settings. A checkpoint path outside a ``checkpoint_dir``
        that holds checkpoints is refused (they would be set aside). All before training.
      stop: a :class:`~nnjax.train.driver.StopFlag`; when it is set (e.g. by a signal
        handler, :func:`nnjax.train.stop_on_signals`) the run ends after the running compiled
        call, writes a checkpoint if ``checkpoint_dir`` is set, and raises
        :class:`TrainingStopped`. Without ``epochs_per_call``, a call is then one epoch.
      early_stopping: an :class:`~nnjax.train.early.EarlyStopping` rule, e.g.
        ``EarlyStopping(patience=5, metric="val_loss")`` (the metric of an ``eval_data``
        set): the run stops once the metric has not improved for ``patience`` epochs, and
        the result holds the carry of the best epoch (``result.best_epoch``, 1-based), also
        when the run went to the end, or was stopped (``TrainingStopped.result``). One epoch
        per compiled call; no ``resume``. A ``stop`` flag given is read, never set by it.
      override: on resume, the configuration fields deliberately changed: ``{field: value}``
        (the value this run has, e.g. ``{"optimizer.learning_rate": 1e-4}``) or a list of
        field names. They are recorded in the next checkpoint's ``overrides``. Another
        optimizer (``optimizer.name``) starts its state afresh, with a warning.
      divergence_guard: stop with :class:`nnjax.errors.DivergenceError` when the epoch-mean
        training loss stays above ``factor`` x the first step's loss for ``epochs`` epochs:
        True (factor 10, 3 epochs), a :class:`~nnjax.train.guards.DivergenceGuard`, or a
        ``(factor, epochs)`` pair. Off by default.
      max_chunk_seconds: halve a compiled call's epochs (to a divisor: 5 -> 1, so
        checkpoints stay every ``checkpoint_every`` epochs) when one takes longer
        (:class:`~nnjax.train.driver.BoundedChunks`), which bounds how long a stop or a
        checkpoint waits; by default 5 s with ``checkpoint_dir`` or ``stop``, else unbounded.
      execution: how the loop over steps runs (:mod:`nnjax.train.execution`): ``"fused"``
        (all steps of ``epochs_per_call`` epochs in one compiled program), ``"chunked"``
        (a host loop over compiled calls of 8 straight-line steps; ``"chunked:K"`` for K),
        ``"per_step"`` (one compiled call per step), or ``"auto"``: chunked for a model with
        convolutions on the CPU (XLA:CPU runs a convolution's gradient slowly inside a
        compiled loop), fused otherwise. The same results up to float rounding.
"""


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
    override: Mapping[str, Any] | list[str] | None = None,
    divergence_guard: Any = None,
    max_chunk_seconds: float | None = None,
    early_stopping: EarlyStopping | None = None,
    execution: str = "auto",
) -> FitResult:
    """Train ``params`` of ``model`` on (X, y) for ``epochs`` epochs, the loop fused in one jit,
    and return a :class:`FitResult`. The arguments follow (``_ARGUMENTS``, kept beside
    the function so that it reads as its steps: plan, placement, loop, driver)."""
    plan = make_plan(**locals())  # every argument validated and interpreted, once
    stop, early = _early_stopping(plan)  # early stopping asks for its stop on the run's flag
    with _directory(plan):  # checked, locked for the run's lifetime (one writer)
        checkpoints, carry, start, history = _start(plan)  # afresh, or from a checkpoint
        placement = plan.placement  # one device, or replicated over a mesh
        carry, data = placement.put(carry), placement.put((plan.key, plan.X, plan.y, plan.evals))
        driven = drive(
            fit_loop(plan),  # the loop over epochs of steps, fused or from the host
            carry,
            data,
            start=start,
            total=plan.epochs,
            chunks=_chunks(plan),
            hooks=_hooks(plan, checkpoints, early),
            stop=stop,
            placement=placement,
            history=history,
            store=store_for_fit(plan, optimizer, learning_rate, loss),  # compiled runs on disk
        )
    if early is None:
        return _result(driven, checkpoints, None, plan.eval_names)  # or TrainingStopped
    return _result(early.finish(driven), checkpoints, early.best_epoch, plan.eval_names)


if fit.__doc__ is not None:  # None under python -OO
    # both parts dedented first: Python 3.13 strips a docstring's indentation as it compiles
    # it, so the reference, indented for 3.11's docstring, came out 4 spaces too deep there
    fit.__doc__ = inspect.cleandoc(fit.__doc__) + "\n\n" + inspect.cleandoc(_ARGUMENTS)


def _directory(plan: Plan):
    """The checkpoint directory's checks and lock (:func:`locked_directory`), with the free
    space needed estimated from the shapes: ``keep`` (or every) checkpoint(s) of the whole
    carry, key and the full loss history."""
    if plan.checkpoint_dir is None:
        return locked_directory(None, 0, 0)
    steps, n_metrics = plan.epochs * plan.steps_per_epoch, 1 + 2 * len(plan.eval_names)
    per_epoch = jax.ShapeDtypeStruct((plan.epochs,), "float32")
    tree = (
        plan.carry,
        plan.key,
        jax.ShapeDtypeStruct((steps,), "float32"),
        [per_epoch] * n_metrics,
    )
    n_saves = -(-plan.epochs // plan.checkpoint_every)
    kept = n_saves if plan.keep is None else min(plan.keep, n_saves)
    return locked_directory(plan.checkpoint_dir, estimate_checkpoint_bytes(tree), kept)


def _chunks(plan: Plan):
    """Fixed chunks, or chunks cut (to a divisor) while one runs longer than ``max_chunk_seconds``
    (``epochs_per_call``, or ``checkpoint_every``, may be a NumPy int)."""
    if plan.max_chunk_seconds is None:
        return FixedChunks(int(plan.epochs_per_call))
    return BoundedChunks(int(plan.epochs_per_call), plan.max_chunk_seconds)


def _early_stopping(plan: Plan):
    """``(stop flag, monitor or None)``: early stopping requests its stop on the run's own
    flag, which also sees the caller's (:class:`~nnjax.train.early.RunStop`)."""
    if plan.early_stopping is None:
        return plan.stop, None
    stop = RunStop(plan.stop)  # the caller's flag is read, never set by early stopping
    return stop, EarlyStoppingMonitor(plan.early_stopping, stop)


def fit_loop(plan: Plan):
    """fit's loop: ``run(carry, epochs, key, X, y, evals) -> (carry, EpochOutputs)``, fused
    in one program or driven step by step from the host (``plan.execution``)."""
    model = (plan.model, plan.loss, plan.optimizer)
    shared = {"n_examples": plan.n_examples, "batch_size": plan.batch_size}
    shared.update(dropout=plan.dropout, eval_names=plan.eval_names)
    if plan.execution.mode != "fused":
        per_call = plan.execution.steps_per_call
        return SteppedLoop(*model, steps_per_call=per_call, placement=plan.placement, **shared)
    run, _ = make_epochs_fn(*model, batch_sharding=plan.placement.batch_sharding, **shared)
    return run


def _start(plan: Plan):
    """``(checkpoints or None, carry, first epoch, outputs so far)``: afresh, or resumed.
    Before anything trains: the target directory is refused when it holds another run's
    checkpoints (:meth:`FitCheckpoints.check_target`), and a resume is checked against its
    checkpoint, evaluation sets included (:func:`nnjax.train.config.eval_config`)."""
    if plan.checkpoint_dir is None and not plan.resume:
        return None, plan.carry, 0, []
    checkpoints = FitCheckpoints(
        plan.checkpoint_dir,
        plan.checkpoint_every,
        plan.keep,
        {**plan.config, **eval_config(plan.eval_names, plan.evals)},
        key=plan.key,
        epochs=plan.epochs,
        steps_per_epoch=plan.steps_per_epoch,
        override=plan.override,
        init_opt_state=plan.optimizer.init,
    )
    checkpoints.check_target(plan.resume)
    if not plan.resume:
        return checkpoints, plan.carry, 0, []
    restored = checkpoints.restore(plan.resume, plan.carry)
    if restored is None:
        return checkpoints, plan.carry, 0, []
    epoch, carry, outputs = restored
    return checkpoints, carry, epoch, [outputs]


def _hooks(plan: Plan, checkpoints: FitCheckpoints | None, early=None) -> list:
    """After each chunk, in order: the finiteness checks (losses, metrics, the carry before a
    checkpoint and at the end), the divergence guard, early stopping, the checkpoint, the
    user's callback.
    Every check comes before the checkpoint: nothing is saved from a run gone wrong."""
    last = (lambda: checkpoints.last_path) if checkpoints is not None else (lambda: None)
    due = checkpoints.due if checkpoints is not None else (lambda done, final: False)
    hooks = []
    if plan.check_finite:
        hooks.append(guards.check_losses(plan.steps_per_epoch, last))
        hooks.append(guards.check_metrics(last))
        hooks.append(guards.check_carry(due, last))
    if plan.guard is not None:
        before = checkpoints.newest_before if checkpoints is not None else (lambda e: None)
        hooks.append(plan.guard.hook(before))
    if early is not None:
        hooks.append(early.hook)
    if checkpoints is not None:
        hooks.append(checkpoints.hook)
    if plan.on_epochs is not None:
        hooks.append(_report_epochs(plan.on_epochs))
    return hooks


def _report_epochs(on_epochs: Callable[[int, dict], None]):
    """``on_epochs(epochs_done, metrics so far)``, once per chunk."""
    reported = [-1]

    def hook(report: ChunkReport) -> None:
        if report.end != reported[0]:
            reported[0] = report.end
            on_epochs(report.end, report.outputs_so_far().metrics)

    return hook


def _result(
    driven: Driven, checkpoints: FitCheckpoints | None, best_epoch=None, eval_names=()
) -> FitResult:
    """The :class:`FitResult`; after a stop request, :class:`TrainingStopped` carrying it (a
    stop before the first epoch ran has no losses yet: empty arrays, under every metric's
    name of ``eval_names``' run, as ``FitResult`` lists them). ``best_epoch``: early
    stopping's, whose carry ``driven`` holds (in the stopped result too)."""
    outputs: EpochOutputs | None = driven.outputs
    carry = driven.carry
    if outputs is None:
        names = ["step_loss_mean"] + [f"{n}_{m}" for n in eval_names for m in ("loss", "accuracy")]
        empty = np.zeros(0, np.float32)
        step_loss, metrics = empty, {name: empty.copy() for name in sorted(names)}
    else:
        step_loss, metrics = outputs.step_loss.reshape(-1), dict(outputs.metrics)
    result = FitResult(
        carry.params,
        carry.opt_state,
        carry.state,
        step_loss,
        metrics,
        driven.compile_time,
        driven.run_time,
        best_epoch,
    )
    if driven.stopped is not None:
        path = checkpoints.last_path if checkpoints is not None else None
        raise TrainingStopped(driven.stopped, result, driven.done, path)
    return result
