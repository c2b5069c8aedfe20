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
"""

import time
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from nnjax.brain.dynamics import check_count, concrete
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
    "class_order", "cumulative", "group_counts", "load_split", "pad_tasks", "task_arrays",
    "ContinualRun", "Method", "RunCarry", "SeedProgram", "SeedRuns", "TaskOutputs",
    "TrainConfig", "make_model", "make_run", "metrics", "per_class_accuracy",
    "per_group_accuracy", "run_seeds", "seed_program", "sgd_carry", "sgd_steps",
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


def sgd_carry(loss_fn: Callable, params, key: Array, steps: int, opt) -> tuple[Carry, Array]:
    """``steps`` optimizer steps on ``loss_fn(params, key)`` (a fresh key each) from a fresh
    optimizer state, under scan: fit's update (:func:`nnjax.train.make_optimizer_step`).
    Returns (the final :class:`~nnjax.train.Carry`, losses (steps,)), each loss taken before
    its update."""
    step = make_optimizer_step(lambda p, state, k: (loss_fn(p, k), state), opt)
    keys = jax.random.split(key, steps)
    return jax.lax.scan(step, Carry(params, opt.init(params)), keys)


def sgd_steps(loss_fn: Callable, params, key: Array, steps: int, opt) -> tuple[Any, Array]:
    """:func:`sgd_carry`, returning (params, losses (steps,))."""
    carry, losses = sgd_carry(loss_fn, params, key, steps, opt)
    return carry.params, losses


def per_group_accuracy(apply: Callable, params, X: Array, y: Array, g: Array, G: int) -> Array:
    """(G,) accuracy on the test examples of each group: mean_{i: g_i = j} [argmax f(x_i) = y_i].
    (A group is a class in class-incremental splits, a task in permuted ones.) A group with no
    test example is a mean over an empty set: nan. Group ids ``g`` must lie in 0..G-1
    (checked when ``g`` is concrete; a traced id outside would be dropped)."""
    _check_groups(g, G, "per_group_accuracy")
    correct = (jnp.argmax(apply(params, X), axis=-1) == y).astype(jnp.float32)
    onehot = jax.nn.one_hot(g, G)
    return (correct @ onehot) / onehot.sum(0)


def _check_groups(g, G, where: str) -> None:
    """A ValueError naming ``where`` unless G is an int >= 1 and concrete ids ``g`` lie in
    0..G-1 (one_hot would drop the others silently)."""
    check_count(G, "G", where)
    ids = concrete(g)
    if ids is not None and ids.size and (ids.min() < 0 or ids.max() >= G):
        bad = ids[(ids < 0) | (ids >= G)].ravel()[0]
        raise ValueError(f"{where}: group ids must lie in 0..{G - 1}, got {bad}")


def per_class_accuracy(apply: Callable, params, X: Array, y: Array, n_classes: int) -> Array:
    """(K,) accuracy on the test examples of each class: mean_{i: y_i = k} [argmax f(x_i) = k]."""
    return per_group_accuracy(apply, params, X, y, y, n_classes)


class Method(NamedTuple):
    """Hooks that turn plain sequential training into a continual-learning method (all pure;
    ``hp`` is the method's hyperparameter pytree, so a study can ``vmap`` over candidates):

    * ``init(key, params, hp) -> extra``: state carried across tasks (``params``: the
      initial network), e.g. a generator, a replay buffer, an importance estimate;
    * ``loss(params, extra, key, t, x, y_onehot, hp) -> scalar``: the wake loss of task t on
      the batch ``x`` (B, d) (default: cross-entropy; EWC adds its penalty, replay a batch);
    * ``optimizer(opt, params, extra, t, hp) -> opt``: wraps task t's optimizer (optax), e.g.
      SI's path integral, which needs every step's gradient and update;
    * ``after_wake(params, extra, opt_state, t, hp) -> extra``: after task t's wake training,
      with the final optimizer state (SI reads its path integral there);
    * ``after_task(params, extra, key, t, task, seen, hp) -> (params, extra)``: runs after
      wake training; ``task`` = (X_t (N, d), y_t (N,), n_t), ``seen`` = (X (T*N, d), mask
      (T*N,)) the training inputs of tasks 0..t (SRC sleeps here; EWC takes its Fisher,
      replay fills its buffer, generative replay trains its generator);
    * ``check(hp)``: a ValueError for hyperparameters the method cannot use, called on the
      concrete ``hp`` (any leading candidate axes) before any training (:func:`run_seeds`).
    """

    init: Callable | None = None
    loss: Callable | None = None
    after_task: Callable | None = None
    optimizer: Callable | None = None
    after_wake: Callable | None = None
    check: Callable | None = None


class RunCarry(NamedTuple):
    """What a continual-learning run carries from task to task: the network's ``params``, the
    method's ``extra`` state and ``key`` (task t draws from ``fold_in(key, t)``)."""

    params: Any
    extra: Any
    key: Array


class TaskOutputs(NamedTuple):
    """Per task: ``acc_wake`` (G,) per-group test accuracy after wake training, ``acc_after``
    (G,) after ``method.after_task``, ``wake_loss`` (steps,) the wake training losses,
    ``acc_start`` (G,) before the task's training (task 0: the untrained network)."""

    acc_wake: Array
    acc_after: Array
    wake_loss: Array
    acc_start: Array


class ContinualRun(NamedTuple):
    """One continual-learning run as pure functions (jit/vmap-able):

    * ``init(arrays, key, hp=None) -> RunCarry``: the initial network and method state;
    * ``tasks(carry, ts, arrays, hp=None) -> (carry, TaskOutputs)``: train the tasks ``ts``
      (an int array) in order, outputs stacked over ``ts``: a driver program
      (:func:`nnjax.train.drive`);
    * calling it, ``run(arrays, key, hp=None) -> (A_wake (T, G), A_after (T, G), (params,
      extra))``, runs all ``n_tasks`` tasks in one piece;
    * ``check_hp(hp)``: the method's check of concrete hyperparameters (:class:`Method`).
    """

    init: Callable
    tasks: Callable
    n_tasks: int
    check_hp: Callable = lambda hp: None

    def __call__(self, arrays, key, hp=None):
        _check_concrete_hp(self.check_hp, hp)
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
        extra = method.init(jax.random.fold_in(k_init, 1), params, hp) if method.init else ()
        return RunCarry(params, extra, k_tasks)

    task = _make_task(model, cfg, method, (split.n_classes, split.n_groups), (T, N, d))

    def tasks(carry: RunCarry, ts, arrays: TaskArrays, hp=None):
        return jax.lax.scan(lambda c, t: task(c, t, arrays, hp), carry, ts)

    return ContinualRun(init, tasks, T, method.check or (lambda hp: None))


def _check_concrete_hp(check: Callable, hp) -> None:
    """``check(hp)`` when every leaf of ``hp`` is concrete (not inside a trace)."""
    leaves = jax.tree.leaves(hp)
    if leaves and not any(isinstance(x, jax.core.Tracer) for x in leaves):
        check(hp)


def _make_task(model, cfg: TrainConfig, method: Method, sizes: tuple, shape: tuple):
    """``task(carry, t, arrays, hp) -> (carry, TaskOutputs)``: wake training on task t (SGD
    with momentum on mini-batches drawn uniformly from its ``n_t`` real rows, through the
    method's loss and optimizer), then ``after_wake`` and ``after_task``; per-group test
    accuracy before, after the wake and after the hooks."""
    (K, G), (T, N, d) = sizes, shape
    apply, opt = model.apply, optax.sgd(cfg.learning_rate, momentum=cfg.momentum)

    def plain_loss(params, extra, key, t, x, y1h, hp):
        return soft_cross_entropy(apply(params, x), y1h)

    loss_of = method.loss or plain_loss

    def task(carry: RunCarry, t, arrays: TaskArrays, hp):
        X_tasks, y_tasks, n_tasks, X_test, y_test, g_test = arrays
        params, extra, key = carry
        k_train, k_after = jax.random.split(jax.random.fold_in(key, t))
        Xt, yt, nt = X_tasks[t], y_tasks[t], n_tasks[t]
        score = lambda p: per_group_accuracy(apply, p, X_test, y_test, g_test, G)  # noqa: E731
        acc_start = score(params)

        def loss(p, k):
            k_b, k_l = jax.random.split(k)
            i = jax.random.randint(k_b, (cfg.batch_size,), 0, nt)
            return loss_of(p, extra, k_l, t, Xt[i], jax.nn.one_hot(yt[i], K), hp)

        opt_t = method.optimizer(opt, params, extra, t, hp) if method.optimizer else opt
        wake, wake_loss = sgd_carry(loss, params, k_train, cfg.steps, opt_t)
        params = wake.params
        if method.after_wake is not None:
            extra = method.after_wake(params, extra, wake.opt_state, t, hp)
        acc_wake = score(params)
        if method.after_task is not None:
            mask = (jnp.arange(T)[:, None] <= t) & (jnp.arange(N)[None, :] < n_tasks[:, None])
            seen = (X_tasks.reshape(T * N, d), mask.reshape(-1))
            params, extra = method.after_task(params, extra, k_after, t, (Xt, yt, nt), seen, hp)
        out = TaskOutputs(acc_wake, score(params), wake_loss, acc_start)
        return RunCarry(params, extra, key), out

    return task


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
) -> SeedRuns:
    """Every run of ``keys`` (S,) vmapped, through fit's driver (:func:`nnjax.train.drive`):
    compiled once, one task per chunk, the wake losses checked for nan/inf after each task
    (:class:`~nnjax.train.NonFiniteLossError`), then ``hooks`` (driver hooks: progress).

    ``over``: outer vmapped axes, ``"arrays"`` (``arrays`` stacked, e.g. over class
    orders), ``"hp"`` (``hp`` stacked, e.g. over candidates) or ``"hp+arrays"`` (both; leading
    axes (C, O, S)). ``run``: a :class:`ContinualRun`, or the :func:`seed_program` of one (to
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
    )
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
