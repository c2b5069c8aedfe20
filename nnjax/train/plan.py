"""Every argument of ``fit``, validated and interpreted once, into one :class:`Plan`.

After :func:`make_plan` nothing downstream re-checks or re-interprets an argument: the batch
size is an int or None (full batch), the optimizer an Optax transformation, the key a PRNG
key, the data arrays with their evaluation sets, the initial carry built, the chunk size and
the checkpoint interval decided, the placement (one device or a mesh) chosen.
"""

import inspect
import os
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from nnjax.optim import DEFAULT_LEARNING_RATE, FULL_BATCH, check_learning_rate, get_optimizer
from nnjax.train.config import float_dtypes, run_config
from nnjax.train.driver import StopFlag
from nnjax.train.early import EarlyStopping, check_early_stopping
from nnjax.train.execution import Execution, choose_execution, parse_execution
from nnjax.train.guards import DivergenceGuard, as_guard
from nnjax.train.loop import check_eval_names
from nnjax.train.model import (
    ShapeMismatch,
    as_apply,
    check_params,
    check_state,
    compare_tree,
    has_dropout,
)
from nnjax.train.order import as_key, check_batch_size
from nnjax.train.placement import Placement
from nnjax.train.step import Carry, check_data, check_labels

STOP_LATENCY_SECONDS = 5.0  # fit's default bound of a chunk's wall time (a stop's latency)


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
    epochs = _check_int("epochs", epochs, 1, none_ok=False)
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
    placement = Placement(mesh)
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
        epochs=epochs, execution=how, dropout=dropout, check_finite=bool(check_finite),
        placement=placement, config=config, early_stopping=early_stopping, **run,
    )  # fmt: skip


def _run_control(
    epochs, epochs_per_call, checkpoint_dir, checkpoint_every, keep, resume, stop, on_epochs,
    override, divergence_guard, max_chunk_seconds,
) -> dict:  # fmt: skip
    """The :class:`Plan` fields that say how the run is cut into calls, saved, watched and
    stopped, each checked (:func:`_chunking`, :func:`_check_callbacks`)."""
    every, chunk, keep = _chunking(
        epochs, epochs_per_call, checkpoint_dir, checkpoint_every, keep, resume, stop
    )
    if override is not None and not resume:
        raise ValueError("fit: override is for a resume (resume=True or a checkpoint path)")
    _check_callbacks(on_epochs, stop)
    return dict(
        epochs_per_call=chunk,
        checkpoint_dir=None if checkpoint_dir is None else os.fspath(checkpoint_dir),
        checkpoint_every=every,
        keep=keep,
        resume=resume,
        on_epochs=on_epochs,
        stop=stop,
        max_chunk_seconds=_max_chunk_seconds(max_chunk_seconds, checkpoint_dir, stop),
        override=override,
        guard=as_guard(divergence_guard),
    )


def _check_callbacks(on_epochs, stop) -> None:
    """``on_epochs`` a function that takes ``(epochs_done, metrics)`` (its signature bound,
    nothing called), ``stop`` a :class:`~nnjax.train.driver.StopFlag`: checked before the
    run, not after its first chunk."""
    if on_epochs is not None:
        if not callable(on_epochs):
            raise ValueError(
                f"fit: on_epochs must be a function on_epochs(epochs_done, metrics), got "
                f"{on_epochs!r}"
            )
        try:
            signature = inspect.signature(on_epochs)
        except (TypeError, ValueError):  # no signature to read (some builtins): called as is
            signature = None
        try:
            if signature is not None:
                signature.bind(0, {})
        except TypeError as e:
            raise ValueError(
                f"fit: on_epochs is called as on_epochs(epochs_done, metrics), but it takes "
                f"{signature}: {e}"
            ) from None
    if stop is not None and not isinstance(stop, StopFlag):
        raise ValueError(
            "fit: stop must be a StopFlag (nnjax.train.StopFlag(), or stop_on_signals()'s) or "
            f"None, got {stop!r}"
        )


def _check_dropout(model, dropout) -> bool:
    """``dropout`` a bool; True only for a model with a ``Dropout`` layer where its spec
    tells (:func:`~nnjax.train.model.has_dropout`; a plain function or a layer without a
    spec may use the key its own way, and is taken at its word)."""
    if not isinstance(dropout, bool | np.bool_):
        raise ValueError(
            "fit: dropout must be True or False (it switches the model's Dropout layers on "
            "while training; their rate is the layer's, e.g. Dropout(0.5) or "
            f"mlp(..., dropout=0.5)), got {dropout!r}"
        )
    if dropout and has_dropout(model) is False:
        raise ValueError(
            "fit: dropout=True, but the model has no Dropout layer: nothing to switch on "
            "(add one, e.g. mlp(..., dropout=0.5), or leave dropout out)"
        )
    return bool(dropout)


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
        _check_shapes(model, loss, params, state, X, y, names, evals)
        raise
    return _check_shapes(model, loss, params, state, X, y, names, evals)


def _check_int(name: str, v, low: int, none_ok: bool = True) -> int | None:
    """``v`` as a Python int >= ``low`` (a NumPy int accepted), or None where ``none_ok``."""
    if v is None and none_ok:
        return None
    if isinstance(v, bool | np.bool_) or not isinstance(v, int | np.integer) or v < low:
        kind = "a positive int" if low == 1 else f"an int >= {low}"
        raise ValueError(f"fit: {name} must be {kind}{' or None' if none_ok else ''}, got {v!r}")
    return int(v)


def _batch_size(batch_size, n: int, optimizer) -> int | None:
    """An int in [1, n] (a NumPy int accepted), or None (full batch); a full-batch optimizer
    takes only None (or n)."""
    batch_size = check_batch_size(batch_size, n, "fit")
    if isinstance(optimizer, str) and optimizer in FULL_BATCH and batch_size not in (None, n):
        raise ValueError(
            f"fit: optimizer {optimizer!r} is full-batch (batch_size=None); use 'sgd' for "
            "mini-batches"
        )
    return batch_size


def _optimizer(optimizer, learning_rate, params, total_steps: int) -> optax.GradientTransformation:
    """A named optimizer with its rate, or an Optax transformation as is (it carries its own
    rate: a ``learning_rate`` beside it is refused). A float rate must be finite in every
    float dtype of the params (1e39 is inf in float32); a schedule is checked at the first
    and the last of the run's ``total_steps`` steps (:func:`_check_schedule`)."""
    if isinstance(optimizer, optax.GradientTransformation) and learning_rate is not None:
        raise ValueError(
            f"fit: learning_rate={learning_rate!r} is for a named optimizer; an "
            "optax.GradientTransformation carries its own rate (leave learning_rate out, or "
            "pass a name such as optimizer='adam')"
        )
    if isinstance(optimizer, str) and learning_rate is not None:
        for dtype in float_dtypes(params).split(","):
            try:
                check_learning_rate(learning_rate, dtype)
            except ValueError as e:
                raise ValueError(f"fit: {e}") from None
        if callable(learning_rate):
            _check_schedule(learning_rate, total_steps)
    try:
        return get_optimizer(optimizer, learning_rate)
    except ValueError as e:
        raise ValueError(f"fit: optimizer: {e}") from None


def _check_schedule(schedule, total_steps: int) -> None:
    """A learning-rate schedule eta_t = schedule(t) of the optimizer's step count t (an int32
    scalar, as Optax calls it), called here at t = 0 and t = T - 1 (T = ``total_steps``):
    each must be one finite number >= 0 (eta < 0 steps up the gradient: the loss grows)."""
    for t in sorted({0, total_steps - 1}):
        try:
            value = np.asarray(schedule(jnp.asarray(t, jnp.int32)))
        except Exception as e:  # any error of the user's schedule, named here
            raise ValueError(
                f"fit: learning_rate is a schedule, called as schedule(step) -> rate, but "
                f"schedule({t}) raised {type(e).__name__}: {e}"
            ) from None
        number = np.issubdtype(value.dtype, np.floating) or np.issubdtype(value.dtype, np.integer)
        if value.shape != () or not number or not (np.isfinite(value) and value >= 0):
            raise ValueError(
                f"fit: learning_rate schedule must give one finite rate >= 0 at every step, "
                f"got schedule({t}) = {value!r} (steps 0..{total_steps - 1})"
            )


def _max_chunk_seconds(seconds, checkpoint_dir, stop) -> float | None:
    """The bound of a chunk's wall time: ``seconds`` as given; by default
    :data:`STOP_LATENCY_SECONDS` when a checkpoint or a stop request can end a chunk."""
    if seconds is None:
        return STOP_LATENCY_SECONDS if checkpoint_dir is not None or stop is not None else None
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not seconds > 0:
        raise ValueError(f"fit: max_chunk_seconds must be a number > 0 or None, got {seconds!r}")
    return float(seconds)


def _chunking(epochs, epochs_per_call, checkpoint_dir, checkpoint_every, keep, resume, stop):
    """``(checkpoint_every, epochs_per_call, keep)``: by default one compiled call for the whole
    run, one per checkpoint interval (default 1 epoch) when checkpointing, and one per epoch
    when a ``stop`` flag may end the run early (a stop is served at the end of a call). A
    checkpoint is written between calls, so ``checkpoint_every`` must be a multiple of
    ``epochs_per_call`` (:func:`_check_aligned`)."""
    checkpoint_every = _check_int("checkpoint_every", checkpoint_every, 1)
    keep = _check_int("keep", keep, 1)
    epochs_per_call = _check_int("epochs_per_call", epochs_per_call, 1)
    if checkpoint_dir is None and checkpoint_every is not None:
        raise ValueError("fit: checkpoint_every needs a checkpoint_dir")
    if not isinstance(resume, bool | str | os.PathLike):
        raise ValueError(f"fit: resume must be a bool or a checkpoint path, got {resume!r}")
    if resume is True and checkpoint_dir is None:
        raise ValueError("fit: resume=True needs a checkpoint_dir (or pass a checkpoint path)")
    if epochs_per_call is not None:
        chunk = epochs_per_call
        _check_aligned(checkpoint_every, chunk)
    elif stop is not None:
        chunk = 1
    elif checkpoint_dir is not None:
        chunk = checkpoint_every or 1
    else:
        chunk = epochs
    return checkpoint_every or chunk, chunk, keep


def _check_aligned(checkpoint_every: int | None, epochs_per_call: int) -> None:
    """Calls end after epochs c, 2c, ... (c = ``epochs_per_call``) and a checkpoint is
    written at the end of a call, so checkpoints every k epochs need k = m c."""
    k, c = checkpoint_every, epochs_per_call
    if k is None or k % c == 0:
        return
    divisors = ", ".join(str(d) for d in range(1, k + 1) if k % d == 0)
    raise ValueError(
        f"fit: checkpoint_every={k} does not line up with epochs_per_call={c}: checkpoints "
        f"are written between compiled calls, which end every {c} epochs; use a "
        f"checkpoint_every that is a multiple of {c} ({c}, {2 * c}, ...) or an "
        f"epochs_per_call that divides {k} ({divisors})"
    )


def _check_shapes(model, loss, params, state, X, y, eval_names, evals):
    """The model accepts X and the labels index its outputs: checked once, before compiling.
    Returns the forward pass's jaxpr at one example (traced, nothing computed), which
    :func:`~nnjax.train.execution.choose_execution` reads too (one trace, not two)."""
    apply = as_apply(model)
    try:
        jaxpr = jax.make_jaxpr(lambda p, s, x: apply(p, s, x)[0])(params, state, X[:1])
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


def _one_epoch_chunks(epochs_per_call, resume) -> int:
    """Early stopping decides after every epoch, so a compiled chunk is one epoch; a resumed
    run would have lost the best params of its first part, so it is refused."""
    if epochs_per_call not in (None, 1):
        raise ValueError(
            f"fit: early_stopping runs one epoch per compiled call; epochs_per_call="
            f"{epochs_per_call} does not fit with it (leave it out)"
        )
    if resume:
        raise ValueError(
            "fit: early_stopping cannot resume a run: the best params of the interrupted part "
            "are not in its checkpoint (start afresh, or resume without early_stopping)"
        )
    return 1


def check_eval_data(eval_data) -> dict:
    """``eval_data`` as a dict ``{name: (X, y)}``; anything else is a ``ValueError`` that says
    what to pass (a bare ``(X, y)`` pair is the usual slip)."""
    if eval_data is None:
        return {}
    how = "pass a dict of named (X, y) pairs, e.g. eval_data={'test': (X_test, y_test)}"
    if not isinstance(eval_data, Mapping):
        kind = type(eval_data).__name__
        pair = isinstance(eval_data, tuple | list) and len(eval_data) == 2
        what = f"a {kind} of 2 (an (X, y) pair?)" if pair else f"a {kind}"
        raise ValueError(f"fit: eval_data must be a dict, got {what}; {how}")
    for name, value in eval_data.items():
        if not isinstance(name, str):
            raise ValueError(f"fit: eval_data's names must be strings, got {name!r}; {how}")
        if not isinstance(value, tuple | list) or len(value) != 2:
            kind = type(value).__name__
            raise ValueError(f"fit: eval_data[{name!r}] must be an (X, y) pair, got a {kind}")
    return dict(eval_data)
