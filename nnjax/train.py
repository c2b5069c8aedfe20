"""Training: a loss builder, a jitted train step, and ``fit`` with the whole loop in one jit.

One optimisation step on a batch (x, y):

    J(theta) = loss(apply(theta, x), y)
    g = dJ/dtheta                      (jax.value_and_grad: backpropagation)
    theta, state = optax update(g, state, theta)

``fit`` runs E epochs as ``lax.scan`` over epochs of ``lax.scan`` over mini-batches: the
shuffling, the batching and every update happen inside one compiled program. Each epoch
draws a fresh permutation from ``fold_in(order_key, epoch)``; with ``batch_size=b`` there are
``n // b`` steps per epoch and the ``n % b`` examples left over by that epoch's permutation
are skipped (the last partial batch is *dropped*, so every step has one shape and nothing
recompiles). ``batch_size=None`` is full-batch gradient descent: one step per epoch on all
the data, in order.
"""

import os
import time
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from nnjax import checkpoint, parallel
from nnjax.layers import Layer
from nnjax.losses import get_loss, softmax_cross_entropy
from nnjax.optim import get_optimizer

Array = jax.Array
Batch = tuple[Array, Array]


class NonFiniteLossError(FloatingPointError):
    """The training loss became nan or inf."""


class FitResult(NamedTuple):
    """What :func:`fit` returns.

    ``loss_history``: (epochs * steps_per_epoch,) training loss of every step, in order.
    ``metrics``: per-epoch arrays of shape (epochs,): ``step_loss`` (the mean of the epoch's
    step losses, each taken before its update) and,
    for each ``eval_data`` entry ``name``, ``{name}_loss`` and ``{name}_accuracy``.
    ``compile_time``/``run_time``: seconds spent compiling and running (apart).
    """

    params: Any
    opt_state: Any
    loss_history: np.ndarray
    metrics: dict[str, np.ndarray]
    compile_time: float
    run_time: float


def _apply_fn(model: Layer | Callable) -> Callable:
    if isinstance(model, Layer):
        return model.apply
    if callable(model):
        return model
    raise ValueError(f"model must be an nnjax Layer or an apply function, got {type(model)}")


def make_loss_fn(model: Layer | Callable, loss: str | Callable = "softmax_cross_entropy"):
    """Return ``loss_fn(params, batch, key=None) -> scalar`` = loss(apply(params, x), y)."""
    apply, loss_f = _apply_fn(model), get_loss(loss)

    def loss_fn(params, batch: Batch, key=None):
        x, y = batch
        return loss_f(apply(params, x, key=key), y)

    return loss_fn


def accuracy(pred: Array, y: Array, threshold: float = 0.0) -> Array:
    """Fraction of correct predictions.

    pred (B, K>1): argmax against integer labels (B,) or one-hot (B, K).
    pred (B, 1) or (B,): pred > threshold against binary labels (0.0 for logits,
    0.5 for probabilities).
    """
    if pred.ndim >= 2 and pred.shape[-1] > 1:
        labels = jnp.argmax(y, axis=-1) if y.shape == pred.shape else y
        return jnp.mean(jnp.argmax(pred, axis=-1) == labels)
    p = pred.reshape(pred.shape[0], -1)[:, 0] if pred.ndim >= 2 else pred
    return jnp.mean((p > threshold) == (y.reshape(p.shape) > 0.5))


def _threshold(loss) -> float:
    return 0.5 if loss in ("binary_cross_entropy", "mse") else 0.0


def make_eval_fn(model: Layer | Callable, loss: str | Callable = "softmax_cross_entropy"):
    """Return ``eval_fn(params, x, y) -> (loss, accuracy)`` (no dropout: no key)."""
    apply, loss_f, thr = _apply_fn(model), get_loss(loss), _threshold(loss)

    def eval_fn(params, x, y):
        pred = apply(params, x)
        return loss_f(pred, y), accuracy(pred, y, thr)

    return eval_fn


def evaluate(model, params, X, y, loss: str | Callable = "softmax_cross_entropy") -> dict:
    """Loss and accuracy of ``params`` on (X, y), as Python floats."""
    X, y = _check_data(X, y, "evaluate")
    ev = jax.jit(make_eval_fn(model, loss))
    loss_v, acc = ev(params, X, y)
    return {"loss": float(loss_v), "accuracy": float(acc)}


def make_train_step(
    model: Layer | Callable, loss: str | Callable, optimizer: optax.GradientTransformation
):
    """A jitted ``step(params, opt_state, batch, key=None) -> (params, opt_state, loss)``."""
    loss_fn = make_loss_fn(model, loss)

    @jax.jit
    def step(params, opt_state, batch, key=None):
        value, grads = jax.value_and_grad(loss_fn)(params, batch, key)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, value

    return step


def make_epochs_fn(
    model: Layer | Callable,
    loss: str | Callable,
    optimizer: optax.GradientTransformation,
    *,
    n_examples: int,
    batch_size: int | None,
    dropout: bool = False,
    eval_names: tuple[str, ...] = (),
    batch_sharding: Any = None,
):
    """The pure training loop, for ``jit``/``vmap``:

    ``run(params, opt_state, key, X, y, epochs, evals) -> (params, opt_state, losses, metrics)``

    ``epochs``: int array (E,) of epoch indices (each one seeds that epoch's shuffle, so a
    run split into chunks equals the run in one piece); ``evals``: tuple of (x, y) pairs
    matching ``eval_names``. ``losses`` has shape (E, steps_per_epoch); ``metrics`` maps
    names to (E,) arrays. ``batch_sharding`` (e.g. :func:`nnjax.parallel.batch_sharding`):
    lay each gathered batch out with it (data parallelism; see :mod:`nnjax.parallel`).
    """
    if "step" in eval_names:
        raise ValueError("eval_data: the name 'step' is taken (metrics 'step_loss'); rename it")
    loss_fn, eval_fn = make_loss_fn(model, loss), make_eval_fn(model, loss)
    full_batch = batch_size is None
    bs = n_examples if full_batch else batch_size
    n_steps = n_examples // bs

    def run(params, opt_state, key, X, y, epochs, evals=()):
        order_key, drop_key = jax.random.split(key)

        def step(carry, xs):
            params, opt_state = carry
            idx, step_key = xs
            batch = (X, y) if full_batch else (X[idx], y[idx])
            if batch_sharding is not None:  # split the batch; XLA all-reduces the gradient
                batch = jax.lax.with_sharding_constraint(batch, batch_sharding)
            value, grads = jax.value_and_grad(loss_fn)(params, batch, step_key)
            updates, opt_state = optimizer.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), value

        def epoch(carry, e):
            if full_batch:
                idx = jnp.zeros((n_steps, 1), jnp.int32)
            else:
                perm = jax.random.permutation(jax.random.fold_in(order_key, e), n_examples)
                idx = perm[: n_steps * bs].reshape(n_steps, bs)
            step_keys = (
                jax.random.split(jax.random.fold_in(drop_key, e), n_steps) if dropout else None
            )
            carry, losses = jax.lax.scan(step, carry, (idx, step_keys))
            metrics = {"step_loss": jnp.mean(losses)}
            for name, (xe, ye) in zip(eval_names, evals):
                metrics[f"{name}_loss"], metrics[f"{name}_accuracy"] = eval_fn(carry[0], xe, ye)
            return carry, (losses, metrics)

        (params, opt_state), (losses, metrics) = jax.lax.scan(epoch, (params, opt_state), epochs)
        return params, opt_state, losses, metrics

    return run, n_steps


def _check_data(X, y, where: str):
    X, y = jnp.asarray(X), jnp.asarray(y)
    if X.ndim < 2:
        raise ValueError(f"{where}: X must have shape (n_examples, features...), got {X.shape}")
    if y.shape[:1] != X.shape[:1]:
        raise ValueError(f"{where}: X has {X.shape[0]} examples but y has shape {y.shape}")
    for name, a in (("X", X), ("y", y)):
        if jnp.issubdtype(a.dtype, jnp.inexact):
            bad = ~jnp.isfinite(a.reshape(a.shape[0], -1)).all(axis=1)
            if bool(bad.any()):
                rows = np.flatnonzero(np.asarray(bad))
                raise ValueError(
                    f"{where}: {name} has nan/inf in {rows.size} example(s), first rows "
                    f"{rows[:5].tolist()}"
                )
    return X, y


def _as_key(key):
    if key is None:
        key = 0
    if isinstance(key, int | np.integer):
        return jax.random.key(int(key))
    return key


def fit(
    model: Layer | Callable,
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
    dropout: bool = False,
    check_finite: bool = True,
    epochs_per_call: int | None = None,
    on_epochs: Callable[[int, dict], None] | None = None,
    mesh: Any = None,
    checkpoint_dir: str | os.PathLike | None = None,
    checkpoint_every: int | None = None,
    keep: int | None = 3,
    resume: bool | str | os.PathLike = False,
) -> FitResult:
    """Train ``params`` of ``model`` on (X, y) for ``epochs`` epochs, the loop fused in one jit.

    Args:
      model: an nnjax ``Layer`` (or an ``apply(params, x, *, key=None)`` function).
      params: the initial params pytree.
      X, y: arrays (n, ...) and (n,) or (n, K).
      optimizer: a name from :data:`nnjax.optim.OPTIMIZERS` (with ``learning_rate``; default
        1e-3 for adam/adamw, 1e-2 otherwise) or an ``optax.GradientTransformation``.
      loss: a name from :data:`nnjax.losses.LOSSES` or ``loss(pred, y) -> scalar``.
      batch_size: mini-batch size (last partial batch dropped each epoch), or ``None`` for
        full-batch gradient descent. ``optimizer="gd"`` requires ``None``.
      key: an int seed or a PRNG key; it seeds the shuffles (and dropout).
      eval_data: ``{"test": (X_test, y_test), ...}``; loss and accuracy after every epoch.
      opt_state: resume from this optimizer state (default ``optimizer.init(params)``).
      dropout: pass a fresh key to ``apply`` at every step (for ``Dropout`` layers).
      check_finite: raise :class:`NonFiniteLossError` naming the first step whose loss is
        nan/inf (checked after each compiled call).
      epochs_per_call: split the run into compiled calls of this many epochs (one compile;
        results identical); ``on_epochs(epochs_done, metrics_so_far)`` runs after each.
      mesh: data parallelism (:mod:`nnjax.parallel`): a ``jax.sharding.Mesh`` or a device
        count. Each batch is split across the devices (``batch_size``, or n for full batch,
        must divide by their number), params and optimizer state are replicated and XLA
        all-reduces the gradient. Same data order and numbers as one device up to float
        rounding (the batch sum is taken in another order).
      checkpoint_dir: save a checkpoint (:mod:`nnjax.checkpoint`: params, optimizer state,
        key, epoch, loss history) there every ``checkpoint_every`` epochs (default: after
        each call of ``epochs_per_call`` epochs, or each epoch) and at the end, keeping the
        ``keep`` newest (None: all). A directory that already holds checkpoints needs
        ``resume``.
      resume: ``True``: continue from the newest checkpoint in ``checkpoint_dir`` (start
        afresh if there is none); or the path of one checkpoint file. The resumed run ends
        with exactly the params of an uninterrupted one; ``params`` and ``opt_state`` then
        only give the structure, and ``key``, the data and ``batch_size`` must match.
    """
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"fit: epochs must be a positive int, got {epochs!r}")
    X, y = _check_data(X, y, "fit")
    n = X.shape[0]
    if batch_size is not None and (
        isinstance(batch_size, bool) or not isinstance(batch_size, int) or not 1 <= batch_size <= n
    ):
        raise ValueError(f"fit: batch_size must be an int in [1, {n}] or None, got {batch_size!r}")
    if optimizer == "gd" and batch_size not in (None, n):
        raise ValueError("fit: optimizer 'gd' is full-batch (batch_size=None); use 'sgd'")
    if isinstance(optimizer, str) and learning_rate is None:
        learning_rate = 1e-3 if optimizer in ("adam", "adamw") else 1e-2
    opt = get_optimizer(optimizer, learning_rate)
    every = _check_checkpointing(checkpoint_dir, checkpoint_every, keep, resume)
    if epochs_per_call is not None:
        chunk = int(epochs_per_call)
    else:  # with checkpoints, one compiled call per checkpoint interval
        chunk = epochs if checkpoint_dir is None else every or 1
    if not 1 <= chunk:
        raise ValueError(f"fit: epochs_per_call must be >= 1, got {epochs_per_call!r}")
    every = every or chunk

    eval_data = dict(eval_data or {})
    evals = tuple(_check_data(xe, ye, f"fit eval_data[{k!r}]") for k, (xe, ye) in eval_data.items())
    apply = _apply_fn(model)
    try:  # shapes are checked here, once, with a clear error, before anything compiles
        out = jax.eval_shape(lambda p, x: apply(p, x), params, X[:1])
    except ValueError as e:
        raise ValueError(f"fit: model does not accept X of shape {X.shape}: {e}") from None
    _check_labels(loss, y, out.shape, "fit: y")
    for name, (_, ye) in zip(eval_data, evals):
        _check_labels(loss, ye, out.shape, f"fit: eval_data[{name!r}] labels")

    shard = None
    if mesh is not None:
        mesh = parallel.as_mesh(mesh)
        parallel.check_batch(n if batch_size is None else batch_size, mesh, _bs_name(batch_size))
        shard = parallel.batch_sharding(mesh)
    run, n_steps = make_epochs_fn(
        apply,
        loss,
        opt,
        n_examples=n,
        batch_size=batch_size,
        dropout=dropout,
        eval_names=tuple(eval_data),
        batch_sharding=shard,
    )
    if opt_state is None:
        opt_state = opt.init(params)
    key = _as_key(key)

    ckpt = None
    if checkpoint_dir is not None or resume:
        config = checkpoint.fit_config(X, y, batch_size, dropout)
        ckpt = checkpoint.FitCheckpoints(checkpoint_dir, every, keep, config)
    start, all_losses, all_metrics = 0, [], []
    if resume:
        restored = ckpt.restore(resume, params, opt_state, key, epochs)
        if restored is not None:
            start, params, opt_state, history, metrics = restored
            all_losses, all_metrics = [history], [metrics]
    elif ckpt is not None:
        ckpt.check_empty()

    if mesh is not None:
        params, opt_state, key, X, y, evals = parallel.replicate(
            (params, opt_state, key, X, y, evals), mesh
        )
    jitted = jax.jit(run) if mesh is None else jax.jit(run, out_shardings=parallel.replicated(mesh))

    t0 = time.perf_counter()
    compiled = {}

    def call(params, opt_state, ep):
        if mesh is not None:
            ep = parallel.replicate(ep, mesh)
        size = ep.shape[0]
        if size not in compiled:
            t = time.perf_counter()
            compiled[size] = jitted.lower(params, opt_state, key, X, y, ep, evals).compile()
            compile_times.append(time.perf_counter() - t)
        return compiled[size](params, opt_state, key, X, y, ep, evals)

    compile_times: list[float] = []
    for begin in range(start, epochs, chunk):
        stop = min(begin + chunk, epochs)
        params, opt_state, losses, metrics = call(params, opt_state, jnp.arange(begin, stop))
        losses = np.asarray(losses).reshape(-1)
        all_losses.append(losses)
        all_metrics.append(jax.tree.map(np.asarray, metrics))
        if check_finite and not np.isfinite(losses).all():
            i = int(np.flatnonzero(~np.isfinite(losses))[0])
            bad = begin * n_steps + i
            raise NonFiniteLossError(
                f"fit: the training loss became {losses[i]} at step {bad} "
                f"(epoch {bad // n_steps}, batch {bad % n_steps}); lower the learning rate or "
                "check the data, or pass check_finite=False"
            )
        if ckpt is not None and ckpt.due(stop, epochs):
            ckpt.save(stop, n_steps, params, opt_state, key, all_losses, all_metrics, epochs)
        if on_epochs is not None:
            on_epochs(stop, _concat(all_metrics))
    total = time.perf_counter() - t0
    compile_time = sum(compile_times)
    return FitResult(
        params,
        opt_state,
        np.concatenate(all_losses),
        _concat(all_metrics),
        compile_time,
        total - compile_time,
    )


def _check_labels(loss, y, out_shape, where: str) -> None:
    """Integer labels for the softmax cross-entropy must index the model's K outputs."""
    if get_loss(loss) is not softmax_cross_entropy or not jnp.issubdtype(y.dtype, jnp.integer):
        return
    k = out_shape[-1]
    lo, hi = int(y.min()), int(y.max())
    if lo < 0 or hi >= k:
        raise ValueError(
            f"{where} holds labels from {lo} to {hi}, but the model has {k} outputs "
            f"(labels must be in [0, {k}))"
        )


def _bs_name(batch_size) -> str:
    return "fit: n_examples (full batch)" if batch_size is None else "fit: batch_size"


def _check_checkpointing(checkpoint_dir, checkpoint_every, keep, resume) -> int | None:
    for name, v, low in (("checkpoint_every", checkpoint_every, 1), ("keep", keep, 1)):
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < low):
            raise ValueError(f"fit: {name} must be an int >= {low} or None, got {v!r}")
    if checkpoint_dir is None and checkpoint_every is not None:
        raise ValueError("fit: checkpoint_every needs a checkpoint_dir")
    if resume is True and checkpoint_dir is None:
        raise ValueError("fit: resume=True needs a checkpoint_dir (or pass a checkpoint path)")
    if not isinstance(resume, bool | str | os.PathLike):
        raise ValueError(f"fit: resume must be a bool or a checkpoint path, got {resume!r}")
    return checkpoint_every


def _concat(metrics: list[dict]) -> dict[str, np.ndarray]:
    return {k: np.concatenate([m[k] for m in metrics]) for k in metrics[0]}
