"""Class-incremental continual learning: split digits / split MNIST-1D, metrics, baselines.

The benchmark. The 10 classes are cut, in a given class order, into T = 5 tasks of 2 classes.
One network with a shared 10-way head learns the tasks one after the other and sees only the
current task's data (class-incremental: no task label at test time). After task t it is scored
on the test examples of every class, giving a per-class accuracy matrix ``A`` of shape (T, K).
From ``A``:

* seen accuracy   a_t = accuracy on the test examples of the classes of tasks 0..t;
* final accuracy  a_{T-1}: the 10-class accuracy at the end;
* old-task accuracy: at the end, accuracy on the classes of tasks 0..T-2;
* forgetting (Chaudhry et al. 2018): mean over tasks j < T-1 of
  max_{t<T-1} acc_j(t) - acc_j(T-1), with acc_j the accuracy on task j's classes.

Baselines: ``sequential`` (plain SGD task after task: the lower bound, old classes drop to
about 0) and ``joint`` (after task t, train on the union of tasks 0..t: the upper bound).
The splits (tasks padded to one length, inputs in [0, 1]) are :mod:`nnjax.brain.tasks`'s,
re-exported here.

Everything for one run — training every task, the optional consolidation between tasks, the
scoring — is pure (:func:`make_run`): its runs over seeds are ``vmap``-ed and run by fit's
driver, one task per compiled chunk (:func:`run_seeds`). Wake training steps through fit's
update (:func:`sgd_steps`); its mini-batches are drawn uniformly from a task's ``n_t`` real
rows.
"""

import time
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from nnjax.brain.tasks import (
    SPLIT_DATASETS,
    VALIDATION_ORDER,
    SplitData,
    TaskArrays,
    class_counts,
    class_order,
    cumulative,
    load_split,
    pad_tasks,
    task_arrays,
)
from nnjax.models import mlp
from nnjax.train import (
    Carry,
    FixedChunks,
    NonFiniteLossError,
    Program,
    drive,
    make_optimizer_step,
)

Array = jax.Array
__all__ = [  # the splits (nnjax.brain.tasks) are re-exported: one import for a study
    "SPLIT_DATASETS", "VALIDATION_ORDER", "SplitData", "TaskArrays", "class_counts",
    "class_order", "cumulative", "load_split", "pad_tasks", "task_arrays", "ContinualRun",
    "Method", "RunCarry", "SeedProgram", "SeedRuns", "TaskOutputs", "TrainConfig", "make_model",
    "make_run", "metrics", "per_class_accuracy", "run_seeds", "seed_program", "sgd_steps",
    "soft_cross_entropy", "weights_of", "with_weights",
]  # fmt: skip


class TrainConfig(NamedTuple):
    """Wake training of each task: ``steps`` SGD-with-momentum steps on mini-batches of
    ``batch_size``, a fresh optimizer state per task; ``hidden`` the widths of the bias-free
    ReLU MLP d -> hidden... -> K."""

    hidden: tuple = (128, 128)
    steps: int = 300
    batch_size: int = 32
    learning_rate: float = 0.05
    momentum: float = 0.5


def make_model(cfg: TrainConfig, n_classes: int = 10):
    """The bias-free ReLU MLP (SRC needs no biases: a spike threshold replaces them)."""
    return mlp([*cfg.hidden, n_classes], "relu", use_bias=False)


def weights_of(params) -> list:
    """The weight matrices (in, out) of an :func:`nnjax.mlp` params list, in order."""
    return [p["W"] for p in params if "W" in p]


def with_weights(params, weights) -> list:
    """``params`` with its weight matrices replaced by ``weights`` (same order)."""
    it = iter(weights)
    return [{**p, "W": next(it)} if "W" in p else p for p in params]


def soft_cross_entropy(logits: Array, target: Array) -> Array:
    """mean_b -sum_k target_bk log softmax(logits_b)_k; ``target`` (B, K) probabilities."""
    return -jnp.mean(jnp.sum(target * jax.nn.log_softmax(logits, axis=-1), axis=-1))


def sgd_steps(loss_fn: Callable, params, key: Array, steps: int, opt) -> tuple[Any, Array]:
    """``steps`` optimizer steps on ``loss_fn(params, key)`` (a fresh key each) from a fresh
    optimizer state, under scan: fit's update (:func:`nnjax.train.make_optimizer_step`).
    Returns (params, losses (steps,)), each loss taken before its update."""
    step = make_optimizer_step(lambda p, state, k: (loss_fn(p, k), state), opt)
    keys = jax.random.split(key, steps)
    carry, losses = jax.lax.scan(step, Carry(params, opt.init(params)), keys)
    return carry.params, losses


def per_class_accuracy(apply: Callable, params, X: Array, y: Array, n_classes: int) -> Array:
    """(K,) accuracy on the test examples of each class: mean_{i: y_i = k} [argmax f(x_i) = k]."""
    correct = (jnp.argmax(apply(params, X), axis=-1) == y).astype(jnp.float32)
    onehot = jax.nn.one_hot(y, n_classes)
    return (correct @ onehot) / jnp.maximum(onehot.sum(0), 1.0)


class Method(NamedTuple):
    """Hooks that turn plain sequential training into a continual-learning method (all pure).

    * ``init(key, d) -> extra``: extra state carried across tasks (e.g. a generator);
    * ``loss(params, extra, key, t, x, y_onehot) -> scalar``: the wake loss of task t
      (default: cross-entropy on the current batch; generative replay adds a dreamed batch);
    * ``after_task(params, extra, key, t, task, seen, hp) -> (params, extra)``: runs after
      training task t; ``task`` = (X_t (N, d), y_t (N,), n_t), ``seen`` = (X (T*N, d),
      mask (T*N,)) the training inputs of tasks 0..t (SRC sleeps here; generative replay
      trains its generator).
    """

    init: Callable | None = None
    loss: Callable | None = None
    after_task: Callable | None = None


class RunCarry(NamedTuple):
    """What a continual-learning run carries from task to task: the network's ``params``, the
    method's ``extra`` state and ``key`` (task t draws from ``fold_in(key, t)``)."""

    params: Any
    extra: Any
    key: Array


class TaskOutputs(NamedTuple):
    """Per task: ``acc_wake`` (K,) per-class test accuracy after wake training, ``acc_after``
    (K,) after ``method.after_task``, ``wake_loss`` (steps,) the wake training losses."""

    acc_wake: Array
    acc_after: Array
    wake_loss: Array


class ContinualRun(NamedTuple):
    """One continual-learning run as pure functions (jit/vmap-able):

    * ``init(arrays, key, hp=None) -> RunCarry``: the initial network and method state;
    * ``tasks(carry, ts, arrays, hp=None) -> (carry, TaskOutputs)``: train the tasks ``ts``
      (an int array) in order, outputs stacked over ``ts``: a driver program
      (:func:`nnjax.train.drive`);
    * calling it, ``run(arrays, key, hp=None) -> (A_wake (T, K), A_after (T, K), (params,
      extra))``, runs all ``n_tasks`` tasks in one piece.
    """

    init: Callable
    tasks: Callable
    n_tasks: int

    def __call__(self, arrays, key, hp=None):
        carry, out = self.tasks(self.init(arrays, key, hp), jnp.arange(self.n_tasks), arrays, hp)
        return out.acc_wake, out.acc_after, (carry.params, carry.extra)


def make_run(
    split: SplitData, cfg: TrainConfig | None = None, method: Method | None = None
) -> ContinualRun:
    """One continual-learning run (:class:`ContinualRun`) on tasks of the shapes of ``split``,
    with ``arrays = task_arrays(split)`` passed in (only the shapes are baked in). ``hp`` is
    handed to the hooks (a pytree of arrays, so a study can ``vmap`` over hyperparameters as
    well as over keys)."""
    cfg, method = cfg or TrainConfig(), method or Method()
    model = make_model(cfg, split.n_classes)
    T, N, d = split.X_tasks.shape

    def init(arrays: TaskArrays, key, hp=None) -> RunCarry:
        k_init, k_tasks = jax.random.split(key)
        _, params = model.init(k_init, (-1, d))
        extra = method.init(jax.random.fold_in(k_init, 1), d) if method.init else ()
        return RunCarry(params, extra, k_tasks)

    task = _make_task(model, cfg, method, split.n_classes, (T, N, d))

    def tasks(carry: RunCarry, ts, arrays: TaskArrays, hp=None):
        return jax.lax.scan(lambda c, t: task(c, t, arrays, hp), carry, ts)

    return ContinualRun(init, tasks, T)


def _make_task(model, cfg: TrainConfig, method: Method, K: int, shape: tuple):
    """``task(carry, t, arrays, hp) -> (carry, TaskOutputs)``: wake training on task t (SGD
    with momentum on mini-batches drawn uniformly from its ``n_t`` real rows), then the
    method's ``after_task``; per-class test accuracy after each."""
    T, N, d = shape
    apply, opt = model.apply, optax.sgd(cfg.learning_rate, momentum=cfg.momentum)

    def plain_loss(params, extra, key, t, x, y1h):
        return soft_cross_entropy(apply(params, x), y1h)

    loss_of = method.loss or plain_loss

    def task(carry: RunCarry, t, arrays: TaskArrays, hp):
        X_tasks, y_tasks, n_tasks, X_test, y_test = arrays
        params, extra, key = carry
        k_train, k_after = jax.random.split(jax.random.fold_in(key, t))
        Xt, yt, nt = X_tasks[t], y_tasks[t], n_tasks[t]

        def loss(p, k):
            k_b, k_l = jax.random.split(k)
            i = jax.random.randint(k_b, (cfg.batch_size,), 0, nt)
            return loss_of(p, extra, k_l, t, Xt[i], jax.nn.one_hot(yt[i], K))

        params, wake_loss = sgd_steps(loss, params, k_train, cfg.steps, opt)
        acc_wake = per_class_accuracy(apply, params, X_test, y_test, K)
        if method.after_task is not None:
            mask = (jnp.arange(T)[:, None] <= t) & (jnp.arange(N)[None, :] < n_tasks[:, None])
            seen = (X_tasks.reshape(T * N, d), mask.reshape(-1))
            params, extra = method.after_task(params, extra, k_after, t, (Xt, yt, nt), seen, hp)
        acc_after = per_class_accuracy(apply, params, X_test, y_test, K)
        return RunCarry(params, extra, key), TaskOutputs(acc_wake, acc_after, wake_loss)

    return task


class SeedRuns(NamedTuple):
    """What :func:`run_seeds` returns, NumPy arrays with the runs' leading axes (``lead``:
    (S,) seeds, or (O, S) / (C, S) with an outer axis): ``A_wake``, ``A_after`` (*lead, T, K),
    ``wake_loss`` (*lead, T, steps); ``final`` = (params, extra) at the end (device arrays);
    ``compile_time`` (with the first call of the small init program) and ``run_time`` in
    seconds."""

    A_wake: np.ndarray
    A_after: np.ndarray
    wake_loss: np.ndarray
    final: Any
    compile_time: float
    run_time: float


class SeedProgram(NamedTuple):
    """A :class:`ContinualRun` vmapped for :func:`run_seeds`: ``init`` (jitted), ``tasks`` (a
    :class:`nnjax.train.Program`, compiled once per shape) and ``n_tasks``."""

    init: Callable
    tasks: Program
    n_tasks: int


def seed_program(run: ContinualRun, over: str | None = None) -> SeedProgram:
    """The driver program of :func:`run_seeds`: ``run.tasks`` vmapped over the seeds (and the
    ``over`` axis), with its ``init`` likewise; reusable across calls of the same shapes."""
    init = jax.vmap(run.init, in_axes=(None, 0, None))
    tasks = jax.vmap(run.tasks, in_axes=(0, None, None, None))
    if over == "arrays":
        init = jax.vmap(init, in_axes=(0, None, None))
        tasks = jax.vmap(tasks, in_axes=(0, None, 0, None))
    elif over == "hp":
        init = jax.vmap(init, in_axes=(None, None, 0))
        tasks = jax.vmap(tasks, in_axes=(0, None, None, 0))
    elif over is not None:
        raise ValueError(f"run_seeds: over must be None, 'arrays' or 'hp', got {over!r}")
    return SeedProgram(jax.jit(init), Program(tasks), run.n_tasks)


def run_seeds(
    run: ContinualRun | SeedProgram,
    arrays: TaskArrays,
    keys: Array,
    hp=None,
    *,
    over: str | None = None,
    check_finite: bool = True,
    hooks: tuple = (),
) -> SeedRuns:
    """Every run of ``keys`` (S,) vmapped, through fit's driver (:func:`nnjax.train.drive`):
    compiled once, one task per chunk, the wake losses checked for nan/inf after each task
    (:class:`~nnjax.train.NonFiniteLossError`), then ``hooks`` (driver hooks: progress).

    ``over``: an outer vmapped axis, ``"arrays"`` (``arrays`` stacked, e.g. over class
    orders) or ``"hp"`` (``hp`` stacked, e.g. over candidates). ``run``: a
    :class:`ContinualRun`, or the :func:`seed_program` of one (to share its compiles).
    """
    program = run if isinstance(run, SeedProgram) else seed_program(run, over)
    t0 = time.perf_counter()  # the init program: its first call is nearly all compilation
    carry = jax.block_until_ready(program.init(arrays, keys, hp))
    init_time = time.perf_counter() - t0
    axis = 1 if over is None else 2
    checks = (_check_wake_losses(axis),) if check_finite else ()
    driven = drive(
        program.tasks,
        carry,
        (arrays, hp),
        total=program.n_tasks,
        chunks=FixedChunks(1),
        hooks=(*checks, *hooks),
        axis=axis,
    )
    out: TaskOutputs = driven.outputs
    final = (driven.carry.params, driven.carry.extra)
    return SeedRuns(*out, final, init_time + driven.compile_time, driven.run_time)


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


def metrics(A: np.ndarray, task_classes: np.ndarray, counts: np.ndarray) -> dict:
    """Continual metrics from per-class accuracies ``A`` (..., T, K) (leading axes = runs).

    Returns arrays over the leading axes: ``seen`` (..., T) accuracy on classes seen so far
    after each task, ``final`` (...,) the 10-class accuracy at the end, ``old`` (...,) the
    final accuracy on the classes of tasks 0..T-2, ``forgetting`` (...,) (module docstring).
    Class accuracies are weighted by the class's test count, so these are example accuracies.
    """
    A = np.asarray(A, np.float64)
    T = task_classes.shape[0]
    correct = A * counts  # (..., T, K) correct examples per class

    def acc_on(classes, row):
        return correct[..., row, classes].sum(-1) / counts[classes].sum()

    seen = np.stack([acc_on(task_classes[: t + 1].ravel(), t) for t in range(T)], axis=-1)
    old = acc_on(task_classes[:-1].ravel(), T - 1)
    per_task = np.stack(
        [np.stack([acc_on(task_classes[j], t) for j in range(T)], -1) for t in range(T)], -2
    )  # (..., T rows, T tasks)
    best = np.stack([per_task[..., : T - 1, j].max(-1) for j in range(T - 1)], -1)
    forgetting = (best - per_task[..., T - 1, : T - 1]).mean(-1)
    return {"seen": seen, "final": seen[..., -1], "old": old, "forgetting": forgetting}
