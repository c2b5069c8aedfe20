"""Every argument of ``fit``, validated and interpreted once, into one :class:`Plan`.

After :func:`make_plan` nothing downstream re-checks or re-interprets an argument: the batch
size is an int or None (full batch), the optimizer an Optax transformation, the key a PRNG
key, the data arrays with their evaluation sets, the initial carry built, the chunk size and
the checkpoint interval decided, the placement (one device or a mesh) chosen.
"""

import os
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import numpy as np
import optax

from nnjax.optim import DEFAULT_LEARNING_RATE, FULL_BATCH, get_optimizer
from nnjax.train.execution import Execution, choose_execution, parse_execution
from nnjax.train.loop import check_eval_names
from nnjax.train.model import as_apply, check_state
from nnjax.train.placement import Placement
from nnjax.train.step import Carry, check_data, check_labels


class Plan(NamedTuple):
    """A validated ``fit`` run.

    ``carry``: the initial (params, opt_state, model state); ``X``, ``y`` and ``evals`` (a
    tuple of (x, y) in the order of ``eval_names``) as arrays; ``batch_size``: an int, or None
    for full batch; ``steps_per_epoch`` = n // batch_size (1 for full batch);
    ``epochs_per_call``: the epochs of one compiled call; ``execution``: how the loop runs
    (:mod:`nnjax.train.execution`: fused, chunked or per step); ``checkpoint_every``: epochs between
    checkpoints (used with ``checkpoint_dir``); ``on_epochs(epochs_done, metrics_so_far)``
    and ``stop`` (a :class:`~nnjax.train.driver.StopFlag`) as given to ``fit``.
    """

    model: Any
    loss: str | Callable
    optimizer: optax.GradientTransformation
    carry: Carry
    key: jax.Array
    X: jax.Array
    y: jax.Array
    evals: tuple
    eval_names: tuple[str, ...]
    batch_size: int | None
    steps_per_epoch: int
    epochs: int
    epochs_per_call: int
    execution: Execution
    dropout: bool
    check_finite: bool
    placement: Placement
    checkpoint_dir: str | None
    checkpoint_every: int
    keep: int | None
    resume: bool | str | os.PathLike
    on_epochs: Callable[[int, dict], None] | None
    stop: Any

    @property
    def n_examples(self) -> int:
        return int(self.X.shape[0])


def make_plan(
    model, params, X, y, *, state, optimizer, learning_rate, loss, epochs, batch_size, key,
    eval_data, opt_state, dropout, check_finite, epochs_per_call, on_epochs, mesh,
    checkpoint_dir, checkpoint_every, keep, resume, stop, execution,
) -> Plan:  # fmt: skip
    """The :class:`Plan` of ``fit(model, params, X, y, ...)`` (see ``fit`` for the arguments);
    a ``ValueError`` names the first bad one."""
    _check_int("epochs", epochs, 1, none_ok=False)
    parse_execution(execution)
    X, y = check_data(X, y, "fit")
    n = int(X.shape[0])
    batch_size = _batch_size(batch_size, n, optimizer)
    opt = _optimizer(optimizer, learning_rate)
    every, chunk = _chunking(
        epochs, epochs_per_call, checkpoint_dir, checkpoint_every, keep, resume
    )
    names = check_eval_names(dict(eval_data or {}))
    evals = tuple(
        check_data(a, b, f"fit eval_data[{k!r}]") for k, (a, b) in (eval_data or {}).items()
    )
    state = check_state(model, state, "fit")
    _check_shapes(model, loss, params, state, X, y, names, evals)
    placement = Placement(mesh)
    placement.check_batch(
        n if batch_size is None else batch_size,
        "fit: n_examples (full batch)" if batch_size is None else "fit: batch_size",
    )
    how = choose_execution(execution, as_apply(model), params, state, X[:1], placement.platform)
    return Plan(
        model=model,
        loss=loss,
        optimizer=opt,
        carry=Carry(params, opt.init(params) if opt_state is None else opt_state, state),
        key=_as_key(key),
        X=X,
        y=y,
        evals=evals,
        eval_names=names,
        batch_size=batch_size,
        steps_per_epoch=1 if batch_size is None else n // batch_size,
        epochs=epochs,
        epochs_per_call=chunk,
        execution=how,
        dropout=bool(dropout),
        check_finite=bool(check_finite),
        placement=placement,
        checkpoint_dir=None if checkpoint_dir is None else os.fspath(checkpoint_dir),
        checkpoint_every=every,
        keep=keep,
        resume=resume,
        on_epochs=on_epochs,
        stop=stop,
    )


def _check_int(name: str, v, low: int, none_ok: bool = True) -> None:
    if v is None and none_ok:
        return
    if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < low:
        kind = "a positive int" if low == 1 else f"an int >= {low}"
        raise ValueError(f"fit: {name} must be {kind}{' or None' if none_ok else ''}, got {v!r}")


def _batch_size(batch_size, n: int, optimizer) -> int | None:
    """An int in [1, n], or None (full batch); a full-batch optimizer takes only None (or n)."""
    if batch_size is not None and (
        isinstance(batch_size, bool) or not isinstance(batch_size, int) or not 1 <= batch_size <= n
    ):
        raise ValueError(f"fit: batch_size must be an int in [1, {n}] or None, got {batch_size!r}")
    if isinstance(optimizer, str) and optimizer in FULL_BATCH and batch_size not in (None, n):
        raise ValueError(
            f"fit: optimizer {optimizer!r} is full-batch (batch_size=None); use 'sgd' for "
            "mini-batches"
        )
    return batch_size


def _optimizer(optimizer, learning_rate) -> optax.GradientTransformation:
    """A named optimizer with its rate (default :data:`nnjax.optim.DEFAULT_LEARNING_RATE`),
    or an Optax transformation as is."""
    if isinstance(optimizer, str) and learning_rate is None:
        learning_rate = DEFAULT_LEARNING_RATE.get(optimizer)
    return get_optimizer(optimizer, learning_rate)


def _chunking(epochs, epochs_per_call, checkpoint_dir, checkpoint_every, keep, resume):
    """``(checkpoint_every, epochs_per_call)``: by default one compiled call for the whole run,
    or one per checkpoint interval (default 1 epoch) when checkpointing."""
    _check_int("checkpoint_every", checkpoint_every, 1)
    _check_int("keep", keep, 1)
    _check_int("epochs_per_call", epochs_per_call, 1)
    if checkpoint_dir is None and checkpoint_every is not None:
        raise ValueError("fit: checkpoint_every needs a checkpoint_dir")
    if not isinstance(resume, bool | str | os.PathLike):
        raise ValueError(f"fit: resume must be a bool or a checkpoint path, got {resume!r}")
    if resume is True and checkpoint_dir is None:
        raise ValueError("fit: resume=True needs a checkpoint_dir (or pass a checkpoint path)")
    if epochs_per_call is not None:
        chunk = int(epochs_per_call)
    else:
        chunk = epochs if checkpoint_dir is None else checkpoint_every or 1
    return checkpoint_every or chunk, chunk


def _check_shapes(model, loss, params, state, X, y, eval_names, evals) -> None:
    """The model accepts X and the labels index its outputs: checked once, before compiling."""
    apply = as_apply(model)
    try:
        out = jax.eval_shape(lambda p, s, x: apply(p, s, x)[0], params, state, X[:1])
    except ValueError as e:
        raise ValueError(f"fit: model does not accept X of shape {X.shape}: {e}") from None
    check_labels(loss, y, out.shape, "fit: y")
    for name, (_, ye) in zip(eval_names, evals):
        check_labels(loss, ye, out.shape, f"fit: eval_data[{name!r}] labels")


def _as_key(key) -> jax.Array:
    if key is None:
        key = 0
    if isinstance(key, int | np.integer):
        return jax.random.key(int(key))
    return key
