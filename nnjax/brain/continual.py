"""Continual learning: one network learns tasks one after the other, every run pure.

The benchmark (:mod:`nnjax.brain.tasks`): class-incremental split digits / MNIST-1D (the 10
classes cut, in a given class order, into T = 5 tasks of 2 classes, one shared 10-way head,
no task label at test time) and domain-incremental permuted digits / MNIST-1D. After task t
the network is scored on every test *group* (a class, or a permuted task), giving a
per-group accuracy matrix ``A`` of shape (T, G); :mod:`nnjax.brain.scores` turns it into
average accuracy, backward / forward transfer and forgetting.

A method (:class:`Method`) is a handful of pure hooks around plain sequential training:
EWC, SI, LwF and replay buffers (:mod:`nnjax.brain.baselines`), Sleep Replay Consolidation
(:mod:`nnjax.brain.sleep`), generative replay (:mod:`nnjax.brain.dreams`). ``sequential``
(no hooks) is the lower bound; ``joint`` (plain training on the union of tasks 0..t, the
:func:`cumulative` view) the upper bound.

Everything for one run — training every task, the method's hooks, the scoring — is pure
(:func:`make_run`): its runs over seeds (and class orders, and hyperparameter candidates) are
``vmap``-ed and run by fit's driver, one task per compiled chunk (:func:`run_seeds`). Wake
training steps through fit's update (:func:`sgd_steps`); its mini-batches are drawn uniformly
from a task's ``n_t`` real rows.

The network and its training are in :mod:`~nnjax.brain.continual_train`, one run
(:class:`Method`, :func:`make_run`) in :mod:`~nnjax.brain.continual_run`; this module runs
seeds through the driver, and re-exports both.
"""

import time
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from nnjax.brain.continual_run import (  # noqa: F401 (the run, re-exported)
    ContinualRun,
    Method,
    RunCarry,
    TaskOutputs,
    _check_concrete_hp,
    _make_task,
    make_run,
)
from nnjax.brain.continual_train import (  # noqa: F401 (the training, re-exported)
    TrainConfig,
    _check_groups,
    check_train_config,
    make_model,
    per_class_accuracy,
    per_group_accuracy,
    sgd_carry,
    sgd_steps,
    soft_cross_entropy,
    weights_of,
    with_weights,
)
from nnjax.brain.scores import metrics
from nnjax.brain.tasks import (
    SPLIT_DATASETS,
    VALIDATION_ORDER,
    SplitData,
    TaskArrays,
    class_counts,
    class_order,
    cumulative,
    group_counts,
    load_split,
    pad_tasks,
    task_arrays,
)
from nnjax.train import FixedChunks, NonFiniteLossError, Program, drive

Array = jax.Array
__all__ = [  # the splits (nnjax.brain.tasks) are re-exported: one import for a study
    "SPLIT_DATASETS", "VALIDATION_ORDER", "SplitData", "TaskArrays", "class_counts",
    "class_order", "cumulative", "group_counts", "load_split", "pad_tasks", "task_arrays",
    "ContinualRun", "Method", "RunCarry", "SeedProgram", "SeedRuns", "TaskOutputs",
    "TrainConfig", "check_train_config", "make_model", "make_run", "metrics", "per_class_accuracy",
    "per_group_accuracy", "run_seeds", "seed_program", "sgd_carry", "sgd_steps",
    "soft_cross_entropy", "weights_of", "with_weights",
]  # fmt: skip


class SeedRuns(NamedTuple):
    """What :func:`run_seeds` returns, NumPy arrays with the runs' leading axes (``lead``:
    (S,) seeds, or (O, S) / (C, S) / (C, O, S) with outer axes): ``A_wake``, ``A_after``,
    ``A_start`` (*lead, T, G) (:class:`TaskOutputs`), ``wake_loss`` (*lead, T, steps);
    ``final`` = (params, extra) at the end (device arrays); ``compile_time`` (with the first
    call of the small init program) and ``run_time`` in seconds."""

    A_wake: np.ndarray
    A_after: np.ndarray
    wake_loss: np.ndarray
    final: Any
    compile_time: float
    run_time: float
    A_start: np.ndarray


class SeedProgram(NamedTuple):
    """A :class:`ContinualRun` vmapped for :func:`run_seeds`: ``init`` (jitted), ``tasks`` (a
    :class:`nnjax.train.Program`, compiled once per shape), ``n_tasks``, the outer axes
    ``over`` it was vmapped over (:func:`seed_program`) and the method's ``check_hp``."""

    init: Callable
    tasks: Program
    n_tasks: int
    over: str | None = None
    check_hp: Callable = lambda hp: None


OVER = (None, "arrays", "hp", "hp+arrays")


def seed_program(run: ContinualRun, over: str | None = None) -> SeedProgram:
    """The driver program of :func:`run_seeds`: ``run.tasks`` vmapped over the seeds (and the
    ``over`` axes: ``"hp+arrays"`` is hp outermost, then arrays), with its ``init``
    likewise; reusable across calls of the same shapes."""
    if over not in OVER:
        raise ValueError(f"seed_program: over must be one of {OVER}, got {over!r}")
    init = jax.vmap(run.init, in_axes=(None, 0, None))
    tasks = jax.vmap(run.tasks, in_axes=(0, None, None, None))
    if over in ("arrays", "hp+arrays"):
        init = jax.vmap(init, in_axes=(0, None, None))
        tasks = jax.vmap(tasks, in_axes=(0, None, 0, None))
    if over in ("hp", "hp+arrays"):
        init = jax.vmap(init, in_axes=(None, None, 0))
        tasks = jax.vmap(tasks, in_axes=(0, None, None, 0))
    return SeedProgram(jax.jit(init), Program(tasks), run.n_tasks, over, run.check_hp)


def run_seeds(
    run: ContinualRun | SeedProgram,
    arrays: TaskArrays,
    keys: Array,
    hp=None,
    *,
    over: str | None = None,
    check_finite: bool = True,
    hooks: tuple = (),
    stop=None,
) -> SeedRuns | None:
    """Every run of ``keys`` (S,) vmapped, through fit's driver (:func:`nnjax.train.drive`):
    compiled once, one task per chunk, the wake losses checked for nan/inf after each task
    (:class:`~nnjax.train.NonFiniteLossError`), then ``hooks`` (driver hooks: progress).

    ``over``: outer vmapped axes, ``"arrays"`` (``arrays`` stacked, e.g. over class
    orders), ``"hp"`` (``hp`` stacked, e.g. over candidates) or ``"hp+arrays"`` (both; leading
    axes (C, O, S)). ``stop`` (a :class:`nnjax.train.StopFlag`): a stop requested ends the
    runs after the running task, and None is returned instead of runs that did not finish.
    ``run``: a :class:`ContinualRun`, or the :func:`seed_program` of one (to
    share its compiles): then ``over`` is the program's own (None reads it; another value is
    refused). ``keys``: (S,) split keys, S >= 1; ``arrays.X_tasks`` must have the outer
    axes of ``over`` before (T, N, d); the method's ``check`` sees ``hp`` first. All checked
    before anything runs.
    """
    if isinstance(run, SeedProgram):
        if over is not None and over != run.over:
            raise ValueError(f"run_seeds: over={over!r}, but the program was built with "
                             f"over={run.over!r} (seed_program); pass that, or None")  # fmt: skip
        program, over = run, run.over
    else:
        program = seed_program(run, over)
    _check_run_inputs(program, arrays, keys, hp)
    t0 = time.perf_counter()  # the init program: its first call is nearly all compilation
    carry = jax.block_until_ready(program.init(arrays, keys, hp))
    init_time = time.perf_counter() - t0
    axis = 1 + (over is not None) + (over == "hp+arrays")
    checks = (_check_wake_losses(axis),) if check_finite else ()
    driven = drive(
        program.tasks,
        carry,
        (arrays, hp),
        total=program.n_tasks,
        chunks=FixedChunks(1),
        hooks=(*checks, *hooks),
        axis=axis,
        stop=stop,
    )
    if driven.done < program.n_tasks:
        return None
    out: TaskOutputs = driven.outputs
    final = (driven.carry.params, driven.carry.extra)
    return SeedRuns(
        out.acc_wake, out.acc_after, out.wake_loss, final,
        init_time + driven.compile_time, driven.run_time, out.acc_start,
    )  # fmt: skip


def _check_run_inputs(program: SeedProgram, arrays, keys, hp) -> None:
    """A ValueError naming :func:`run_seeds` for keys that are not a 1-D batch of split keys,
    task arrays without the outer axes ``program.over`` vmaps (e.g. orders stacked but a plain
    program: the orders would land on the seed axis) and hyperparameters the method refuses."""
    typed = jax.dtypes.issubdtype(jnp.asarray(keys).dtype, jax.dtypes.prng_key)
    seeds = jnp.shape(keys) if typed else jnp.shape(keys)[:-1]
    if len(seeds) != 1 or seeds[0] < 1:
        raise ValueError(f"run_seeds: keys must be (S,) keys, S >= 1 (jax.random.split(key, "
                         f"S)), got shape {jnp.shape(keys)}")  # fmt: skip
    outer = int(program.over in ("arrays", "hp+arrays"))
    X = jnp.shape(arrays.X_tasks)
    if len(X) != 3 + outer or X[-3] != program.n_tasks:
        want = "(O, T, N, d), orders stacked" if outer else "(T, N, d), unstacked"
        raise ValueError(f"run_seeds: with over={program.over!r}, arrays.X_tasks must be {want} "
                         f"with T={program.n_tasks}, got shape {X}")  # fmt: skip
    if program.over in ("hp", "hp+arrays"):
        sizes = {jnp.shape(x)[0] if jnp.ndim(x) else 0 for x in jax.tree.leaves(hp)}
        if len(sizes) != 1 or 0 in sizes:
            raise ValueError(f"run_seeds: with over={program.over!r}, every leaf of hp must "
                             f"stack the candidates on one leading axis, got leading sizes "
                             f"{sorted(sizes)}")  # fmt: skip
    _check_concrete_hp(program.check_hp, hp)


def _check_wake_losses(axis: int):
    """A driver hook: raise when a wake loss of the chunk's tasks is nan/inf."""

    def hook(report) -> None:
        losses = np.moveaxis(report.outputs.wake_loss, axis, 0)  # (tasks, *runs, steps)
        bad = ~np.isfinite(losses.reshape(losses.shape[0], -1)).all(axis=1)
        if bad.any():
            t = report.begin + int(np.flatnonzero(bad)[0])
            raise NonFiniteLossError(
                f"continual run: the wake training loss became nan/inf in task {t}"
            )

    return hook
