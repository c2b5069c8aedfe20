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
Inputs are scaled to [0, 1] (digits / 16; MNIST-1D min-max on the training split) because
Sleep Replay Consolidation turns them into firing rates.

Everything for one run — training every task, the optional consolidation between tasks, the
scoring — is pure (:func:`make_run`): its runs over seeds are ``vmap``-ed and run by fit's
driver, one task per compiled chunk (:func:`run_seeds`). Wake training steps through fit's
update (:func:`sgd_steps`). Tasks have slightly different sizes, so each task's examples are
padded to a common length ``N`` and mini-batches are drawn uniformly from the first ``n_t``
rows.
"""

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from nnjax import data as nndata
from nnjax.models import mlp
from nnjax.train import Carry, FixedChunks, NonFiniteLossError, Program, drive
from nnjax.train.step import make_optimizer_step

Array = jax.Array
SPLIT_DATASETS = ("digits", "mnist1d")
VALIDATION_ORDER = 100  # the class order used only for choosing hyperparameters


class SplitData(NamedTuple):
    """A class-incremental split.

    ``X_tasks`` (T, N, d) float32 and ``y_tasks`` (T, N) int32: each task's training examples,
    padded to N rows (only the first ``n_tasks[t]`` rows are real); ``X_test`` (M, d),
    ``y_test`` (M,); ``task_classes`` (T, c) the classes of each task; ``image_shape`` the
    shape of one input (``(8, 8)`` for digits, ``(40,)`` for MNIST-1D).
    """

    X_tasks: np.ndarray
    y_tasks: np.ndarray
    n_tasks: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    task_classes: np.ndarray
    n_classes: int
    image_shape: tuple
    name: str


def class_order(k: int, n_classes: int = 10) -> np.ndarray:
    """Class order number ``k``: 0 is 0, 1, ..., K-1; k > 0 a permutation seeded by k."""
    if k == 0:
        return np.arange(n_classes)
    return np.random.default_rng(k).permutation(n_classes)


def _raw(name: str):
    if name == "digits":
        X, y = nndata.digits()
        return np.asarray(X, np.float32) / 16.0, np.asarray(y, np.int32), (8, 8)
    X, y = nndata.mnist1d()
    return np.asarray(X, np.float32), np.asarray(y, np.int32), (X.shape[1],)


def load_split(
    name: str = "digits",
    order: int | np.ndarray = 0,
    *,
    classes_per_task: int = 2,
    validation: bool = False,
) -> SplitData:
    """Split ``name`` (digits or mnist1d) into tasks of ``classes_per_task`` classes.

    Train/test is the stratified 80/20 split with seed 0. With ``validation=True`` the test
    set is not used at all: the training split is split again (80/20, seed 1) and the held-out
    part plays the test set — this is what hyperparameters are chosen on.
    ``order``: an int for :func:`class_order` or an explicit permutation of the classes.
    """
    if name not in SPLIT_DATASETS:
        raise ValueError(f"load_split: unknown dataset {name!r}; valid: {SPLIT_DATASETS}")
    X, y, shape = _raw(name)
    K = int(y.max()) + 1
    perm = class_order(order, K) if isinstance(order, int | np.integer) else np.asarray(order)
    if sorted(perm.tolist()) != list(range(K)):
        raise ValueError(f"load_split: order must be a permutation of 0..{K - 1}, got {perm}")
    if not isinstance(classes_per_task, int) or classes_per_task < 1 or K % classes_per_task:
        raise ValueError(f"load_split: classes_per_task must divide {K}, got {classes_per_task!r}")
    X_tr, X_te, y_tr, y_te = nndata.train_test_split(X, y, 0.2, seed=0)
    if validation:
        X_tr, X_te, y_tr, y_te = nndata.train_test_split(X_tr, y_tr, 0.2, seed=1)
    if name == "mnist1d":  # min-max of the training split, so firing rates live in [0, 1]
        lo, hi = X_tr.min(), X_tr.max()
        X_tr, X_te = (X_tr - lo) / (hi - lo), np.clip((X_te - lo) / (hi - lo), 0.0, 1.0)
    task_classes = perm.reshape(-1, classes_per_task)
    idx = [np.flatnonzero(np.isin(y_tr, c)) for c in task_classes]
    N = max(len(i) for i in idx)
    padded = np.stack([np.resize(i, N) for i in idx])  # cycles the real rows; never sampled
    return SplitData(
        X_tr[padded].astype(np.float32),
        y_tr[padded].astype(np.int32),
        np.array([len(i) for i in idx], np.int32),
        X_te.astype(np.float32),
        y_te.astype(np.int32),
        task_classes.astype(np.int32),
        K,
        shape,
        name,
    )


def cumulative(split: SplitData) -> SplitData:
    """The joint-training view: task t's data becomes the union of tasks 0..t."""
    T = len(split.n_tasks)
    rows = [
        np.concatenate([split.X_tasks[s, : split.n_tasks[s]] for s in range(t + 1)])
        for t in range(T)
    ]
    labels = [
        np.concatenate([split.y_tasks[s, : split.n_tasks[s]] for s in range(t + 1)])
        for t in range(T)
    ]
    N = max(len(r) for r in rows)
    X = np.stack([np.resize(r, (N, r.shape[1])) for r in rows])
    y = np.stack([np.resize(lab, N) for lab in labels])
    return split._replace(
        X_tasks=X.astype(np.float32),
        y_tasks=y.astype(np.int32),
        n_tasks=np.array([len(r) for r in rows], np.int32),
    )


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


class TaskArrays(NamedTuple):
    """The arrays of a :class:`SplitData` as a pytree: passed to a run as an *argument* (closing
    over them would make them XLA constants, which compile very slowly)."""

    X_tasks: Array
    y_tasks: Array
    n_tasks: Array
    X_test: Array
    y_test: Array


def task_arrays(split: SplitData) -> TaskArrays:
    return TaskArrays(*(jnp.asarray(a) for a in split[:5]))


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
    ``compile_time``/``run_time`` in seconds."""

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
    carry = program.init(arrays, keys, hp)
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
    return SeedRuns(*out, final, driven.compile_time, driven.run_time)


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


def pad_tasks(split: SplitData, N: int) -> SplitData:
    """``split`` with every task padded (by cycling its real rows) to N >= n_t rows, so splits
    of different class orders, and the :func:`cumulative` view, share one shape (one compile)."""
    if N < split.X_tasks.shape[1]:
        raise ValueError(f"pad_tasks: N={N} is below the current {split.X_tasks.shape[1]} rows")
    X = np.stack([np.resize(x[:n], (N, x.shape[1])) for x, n in zip(split.X_tasks, split.n_tasks)])
    y = np.stack([np.resize(t[:n], N) for t, n in zip(split.y_tasks, split.n_tasks)])
    return split._replace(X_tasks=X, y_tasks=y)


def class_counts(y_test: np.ndarray, n_classes: int) -> np.ndarray:
    return np.bincount(np.asarray(y_test), minlength=n_classes).astype(np.float64)


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
