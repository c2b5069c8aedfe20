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

from nnjax.layers.checks import ParamsError
from nnjax.optim import DEFAULT_LEARNING_RATE
from nnjax.train.arguments import _batch_size, _check_dropout, _check_int, _check_loss, _optimizer
from nnjax.train.arguments import check_eval_data as check_eval_data
from nnjax.train.config import run_config
from nnjax.train.early import EarlyStopping, check_early_stopping
from nnjax.train.execution import Execution, choose_execution, parse_execution
from nnjax.train.guards import DivergenceGuard
from nnjax.train.loop import check_eval_names, check_flag
from nnjax.train.model import (
    ShapeMismatch,
    as_apply,
    canonical_arrays,
    check_model,
    check_params,
    check_state,
    compare_tree,
)
from nnjax.train.order import as_key
from nnjax.train.placement import Placement
from nnjax.train.run_control import STOP_LATENCY_SECONDS as STOP_LATENCY_SECONDS
from nnjax.train.run_control import _one_epoch_chunks, _run_control
from nnjax.train.step import Carry, check_data, check_labels


class Plan(NamedTuple):
    """A validated ``fit`` run.

    ``carry``: the initial (params, opt_state, model state); ``X``, ``y`` and ``evals`` (a
    tuple of (x, y) in the order of ``eval_names``) as arrays; ``batch_size``: an int, or None
    for full batch; ``steps_per_epoch`` = n // batch_size (1 for full batch);
    ``epochs_per_call``: the epochs of one compiled call; ``execution``: how the loop runs
    (:mod:`nnjax.train.execution`: fused, chunked or per step); ``checkpoint_every``: epochs
    between checkpoints (used with ``checkpoint_dir``); ``on_epochs(epochs_done, metrics_so_far)``
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
    max_chunk_seconds: float | None
    config: dict | None
    override: Any
    guard: DivergenceGuard | None
    early_stopping: EarlyStopping | None = None

    @property
    def n_examples(self) -> int:
        return int(self.X.shape[0])


def make_plan(
    model, params, X, y, *, state, optimizer, learning_rate, loss, epochs, batch_size, key,
    eval_data, opt_state, dropout, check_finite, epochs_per_call, on_epochs, mesh,
    checkpoint_dir, checkpoint_every, keep, resume, stop, override, divergence_guard,
    max_chunk_seconds, early_stopping=None, execution="auto",
) -> Plan:  # fmt: skip
    """The :class:`Plan` of ``fit(model, params, X, y, ...)`` (see ``fit`` for the arguments);
    a ``ValueError`` names the first bad one."""
    check_model(model, "fit")
    epochs = _check_int("epochs", epochs, 1, none_ok=False)
    loss = _check_loss(loss)
    # the dtypes JAX computes in (float64 leaves are float32 without x64), recorded as such
    params, opt_state, state = map(canonical_arrays, (params, opt_state, state))
    _check_float_params(params)
    parse_execution(execution)
    X, y = check_data(X, y, "fit")
    n = int(X.shape[0])
    batch_size = _batch_size(batch_size, n, optimizer)
    steps = 1 if batch_size is None else n // batch_size
    if isinstance(optimizer, str) and learning_rate is None:
        learning_rate = DEFAULT_LEARNING_RATE.get(optimizer)
    opt = _optimizer(optimizer, learning_rate, params, epochs * steps)
    run = _run_control(
        epochs, epochs_per_call, checkpoint_dir, checkpoint_every, keep, resume, stop,
        on_epochs, override, divergence_guard, max_chunk_seconds,
    )  # fmt: skip
    eval_data = check_eval_data(eval_data)
    names = check_eval_names(eval_data, "fit")
    evals = tuple(check_data(a, b, f"fit eval_data[{k!r}]") for k, (a, b) in eval_data.items())
    state = check_state(model, state, "fit")
    dropout = _check_dropout(model, dropout)
    early_stopping = check_early_stopping(early_stopping, names)
    if early_stopping is not None:
        run["epochs_per_call"] = _one_epoch_chunks(epochs_per_call, resume)
    forward = _check_model(model, loss, params, state, X, y, names, evals)
    placement = Placement(mesh, "fit")
    placement.check_batch(
        n if batch_size is None else batch_size,
        "fit: n_examples (full batch)" if batch_size is None else "fit: batch_size",
    )
    how = choose_execution(
        execution, as_apply(model), params, state, X[:1], placement.platform, jaxpr=forward
    )
    config = None
    if checkpoint_dir is not None or resume:
        config = run_config(
            model=model, loss=loss, optimizer=optimizer, learning_rate=learning_rate,
            params=params, devices=placement.size, X=X, y=y, batch_size=batch_size,
            dropout=dropout,
        )  # fmt: skip
    return Plan(
        model=model, loss=loss, optimizer=opt,
        carry=Carry(params, _opt_state(opt, params, opt_state), state), key=as_key(key),
        X=X, y=y, evals=evals, eval_names=names, batch_size=batch_size, steps_per_epoch=steps,
        epochs=epochs, execution=how, dropout=dropout,
        check_finite=check_flag(check_finite, "fit", "check_finite"),
        placement=placement, config=config, early_stopping=early_stopping, **run,
    )  # fmt: skip


def _check_float_params(params) -> None:
    """Every leaf of ``params`` a float array (the gradient is taken with respect to each):
    an int or bool leaf is a ``ValueError`` naming it, not JAX's error from inside the loop."""
    for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]:
        dtype = getattr(leaf, "dtype", None)
        dtype = np.asarray(leaf).dtype if dtype is None else dtype  # a Python float: float
        if not jax.numpy.issubdtype(dtype, jax.numpy.inexact):
            raise ValueError(
                f"fit: params{jax.tree_util.keystr(path)} has dtype {dtype}; every leaf of "
                "params must be a float array (the gradient is taken with respect to each), "
                "e.g. from model.init, or converted with .astype('float32')"
            )


def _opt_state(opt, params, opt_state):
    """``opt.init(params)``, or ``opt_state`` checked against it abstractly (``jax.eval_shape``,
    nothing computed): the same tree, leaf shapes and dtypes; a ``ValueError`` names the
    first leaf that differs (another optimizer's state, or another model's)."""
    if opt_state is None:
        return opt.init(params)
    want = jax.eval_shape(opt.init, params)
    where = "fit: opt_state does not match the optimizer's state for these params (opt.init)"
    compare_tree("opt_state", opt_state, want, where, "the optimizer's", dtypes=True)
    return opt_state


def _check_model(model, loss, params, state, X, y, names, evals):
    """The params against ``model.init``'s shapes, then the model on X and each eval set;
    the forward pass's jaxpr at one example (:func:`_check_shapes`)."""
    try:
        check_params(model, params, state, X.shape[1:], "fit")
    except ShapeMismatch:  # X may be the culprit (another width than the params'): say so first
        try:
            _check_shapes(model, loss, params, state, X, y, names, evals)
        except ParamsError:  # a layer refused the params: the leaf-by-leaf message says more
            pass
        raise
    return _check_shapes(model, loss, params, state, X, y, names, evals)


def _check_shapes(model, loss, params, state, X, y, eval_names, evals):
    """The model accepts X and the labels index its outputs: checked once, before compiling.
    Returns the forward pass's jaxpr at one example (traced, nothing computed), which
    :func:`~nnjax.train.execution.choose_execution` reads too (one trace, not two)."""
    apply = as_apply(model)
    try:
        jaxpr = jax.make_jaxpr(lambda p, s, x: apply(p, s, x)[0])(params, state, X[:1])
    except ParamsError as e:  # the params are the culprit, not X
        raise ParamsError(f"fit: {e}") from None
    except ValueError as e:
        raise ValueError(f"fit: model does not accept X of shape {X.shape}: {e}") from None
    shape = jaxpr.out_avals[0].shape
    check_labels(loss, y, shape, "fit: y")
    for name, (Xe, ye) in zip(eval_names, evals):
        where = f"fit: eval_data[{name!r}]"
        out = shape
        if Xe.shape[1:] != X.shape[1:]:  # a model may take other lengths (pooling): try it
            try:
                f = jax.eval_shape(lambda p, s, x: apply(p, s, x)[0], params, state, Xe[:1])
            except ValueError as e:
                raise ValueError(
                    f"{where}: model does not accept X of shape {Xe.shape}: {e}"
                ) from None
            out = f.shape
        check_labels(loss, ye, out, f"{where} labels")
    return jaxpr
