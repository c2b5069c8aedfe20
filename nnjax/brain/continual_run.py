"""One continual-learning run as pure functions (:mod:`~nnjax.brain.continual`).

:class:`Method` (the hooks around plain sequential training), what a run carries from task to
task (:class:`RunCarry`) and outputs per task (:class:`TaskOutputs`), and :func:`make_run`,
which builds a :class:`ContinualRun`: wake training of each task through the method's loss and
optimizer, then its hooks, scored before and after.
"""

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from nnjax.brain.continual_train import (
    TrainConfig,
    check_train_config,
    make_model,
    per_group_accuracy,
    sgd_carry,
    soft_cross_entropy,
)
from nnjax.brain.tasks import SplitData, TaskArrays

Array = jax.Array


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
    cfg = check_train_config(TrainConfig() if cfg is None else cfg, "make_run")
    method = method or Method()
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
    """``check(hp)`` when no leaf of ``hp`` is traced: a concrete ``hp``, and ``hp`` None
    (which a method with hyperparameters refuses by name; skipping it left a bare TypeError
    inside the trace)."""
    leaves = jax.tree.leaves(hp)
    if not any(isinstance(x, jax.core.Tracer) for x in leaves):
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
