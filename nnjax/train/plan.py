"""Every argument of ``fit``, validated and interpreted once, into one :class:`Plan`.

After :func:`make_plan` nothing downstream re-checks or re-interprets an argument: the batch
size is an int or None (full batch), the optimizer an Optax transformation, the key a PRNG
key, the data arrays with their evaluation sets, the initial carry built, the chunk size and
the checkpoint interval decided, the placement (one device or a mesh) chosen.
"""

import os
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import jax
import numpy as np
import optax

from nnjax.layers import init_model
from nnjax.optim import DEFAULT_LEARNING_RATE, FULL_BATCH, check_learning_rate, get_optimizer
from nnjax.train.config import float_dtypes, run_config
from nnjax.train.early import EarlyStopping, check_early_stopping
from nnjax.train.execution import Execution, choose_execution, parse_execution
from nnjax.train.guards import DivergenceGuard, as_guard
from nnjax.train.loop import check_eval_names
from nnjax.train.model import as_apply, check_state
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
    _check_int("epochs", epochs, 1, none_ok=False)
    parse_execution(execution)
    X, y = check_data(X, y, "fit")
    n = int(X.shape[0])
    batch_size = _batch_size(batch_size, n, optimizer)
    if isinstance(optimizer, str) and learning_rate is None:
        learning_rate = DEFAULT_LEARNING_RATE.get(optimizer)
    opt = _optimizer(optimizer, learning_rate, params)
    every, chunk = _chunking(
        epochs, epochs_per_call, checkpoint_dir, checkpoint_every, keep, resume, stop
    )
    if override is not None and not resume:
        raise ValueError("fit: override is for a resume (resume=True or a checkpoint path)")
    eval_data = check_eval_data(eval_data)
    names = check_eval_names(eval_data)
    evals = tuple(check_data(a, b, f"fit eval_data[{k!r}]") for k, (a, b) in eval_data.items())
    state = check_state(model, state, "fit")
    early_stopping = check_early_stopping(early_stopping, names)
    if early_stopping is not None:
        chunk = _one_epoch_chunks(epochs_per_call, resume)
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
        max_chunk_seconds=_max_chunk_seconds(max_chunk_seconds, checkpoint_dir, stop),
        config=config,
        override=override,
        guard=as_guard(divergence_guard),
        early_stopping=early_stopping,
    )


def _check_model(model, loss, params, state, X, y, names, evals):
    """The params against ``model.init``'s shapes, then the model on X and each eval set;
    the forward pass's jaxpr at one example (:func:`_check_shapes`)."""
    try:
        check_params(model, params, state, X.shape[1:], "fit")
    except ShapeMismatch:  # X may be the culprit (another width than the params'): say so first
        _check_shapes(model, loss, params, state, X, y, names, evals)
        raise
    return _check_shapes(model, loss, params, state, X, y, names, evals)


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


def _optimizer(optimizer, learning_rate, params) -> optax.GradientTransformation:
    """A named optimizer with its rate, or an Optax transformation as is. A float rate must
    be finite in every float dtype of the params (1e39 is inf in float32)."""
    if isinstance(optimizer, str) and learning_rate is not None:
        for dtype in float_dtypes(params).split(","):
            try:
                check_learning_rate(learning_rate, dtype)
            except ValueError as e:
                raise ValueError(f"fit: {e}") from None
    return get_optimizer(optimizer, learning_rate)


def _max_chunk_seconds(seconds, checkpoint_dir, stop) -> float | None:
    """The bound of a chunk's wall time: ``seconds`` as given; by default
    :data:`STOP_LATENCY_SECONDS` when a checkpoint or a stop request can end a chunk."""
    if seconds is None:
        return STOP_LATENCY_SECONDS if checkpoint_dir is not None or stop is not None else None
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not seconds > 0:
        raise ValueError(f"fit: max_chunk_seconds must be a number > 0 or None, got {seconds!r}")
    return float(seconds)


def _chunking(epochs, epochs_per_call, checkpoint_dir, checkpoint_every, keep, resume, stop):
    """``(checkpoint_every, epochs_per_call)``: by default one compiled call for the whole run,
    one per checkpoint interval (default 1 epoch) when checkpointing, and one per epoch when
    a ``stop`` flag may end the run early (a stop is served at the end of a call)."""
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
    elif stop is not None:
        chunk = 1
    elif checkpoint_dir is not None:
        chunk = checkpoint_every or 1
    else:
        chunk = epochs
    return checkpoint_every or chunk, chunk


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


def check_params(model, params, state, example_shape, where: str = "fit") -> None:
    """``params`` (and a stateful model's ``state``) have the structure and the leaf shapes
    of ``model.init`` for inputs of shape ``(batch, *example_shape)``: abstractly evaluated
    (``jax.eval_shape``, nothing computed). A ``ValueError`` names the first leaf that
    differs, by its pytree path, with both shapes. A plain apply function has no ``init``:
    nothing to compare."""
    if not (hasattr(model, "init") and hasattr(model, "apply")):
        return
    shape = (-1, *map(int, example_shape))
    try:
        _, want_params, want_state = jax.eval_shape(
            lambda k: init_model(model, k, shape), jax.random.key(0)
        )
    except ValueError as e:
        raise ValueError(f"{where}: model does not accept inputs of shape {shape}: {e}") from None
    _compare_tree("params", params, want_params, f"{where}: params do not match the model")
    if getattr(model, "stateful", False):
        try:
            _compare_tree("state", state, want_state, f"{where}: state does not match the model")
        except ShapeMismatch as e:  # the params fit X: the state is the culprit
            raise ValueError(str(e)) from None


class ShapeMismatch(ValueError):
    """Params with the model's leaves, one of another shape (:func:`check_params`)."""


def _compare_tree(what: str, given, expected, where: str) -> None:
    """The first leaf path where ``given`` and ``expected`` differ: a missing or an extra
    leaf first, then the first leaf of another shape (:class:`ShapeMismatch`)."""
    got = {jax.tree_util.keystr(p): np.shape(a) for p, a in _leaves(given)}
    want = {jax.tree_util.keystr(p): tuple(a.shape) for p, a in _leaves(expected)}
    for path, shape in want.items():
        if path not in got:
            raise ValueError(f"{where}: {what}{path} is missing (the model's has shape {shape})")
    extra = [p for p in got if p not in want]
    if extra:
        raise ValueError(f"{where}: {what}{extra[0]} is not in the model's {what}")
    for path, shape in want.items():
        if got[path] != shape:
            raise ShapeMismatch(
                f"{where}: {what}{path} has shape {got[path]}, the model's has shape {shape}"
            )
    if jax.tree.structure(given) != jax.tree.structure(expected):
        raise ValueError(
            f"{where}: {what} has the model's leaves but another structure: "
            f"{jax.tree.structure(given)} vs {jax.tree.structure(expected)}"
        )


def _leaves(tree):
    return jax.tree_util.tree_flatten_with_path(tree)[0]


def _as_key(key) -> jax.Array:
    """``key`` as fit's one PRNG key: None is seed 0, an int (or an integer scalar array) a
    seed; a typed key of shape () or one raw ``uint32`` key passes as given."""
    if key is None:
        key = 0
    if isinstance(key, int | np.integer) and not isinstance(key, bool):
        return jax.random.key(int(key))
    dtype = getattr(key, "dtype", None)
    typed = dtype is not None and jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key)
    if not typed and np.shape(key) == () and jax.dtypes.issubdtype(dtype, np.integer):
        return jax.random.key(int(key))
    try:
        one = (key if typed else jax.random.wrap_key_data(key)).shape == ()
    except (TypeError, ValueError):
        one = False
    if not one:
        got = f"{dtype} of shape {np.shape(key)}" if dtype else f"{type(key).__name__} {key!r}"
        raise ValueError(
            "fit: key must be an int seed or one PRNG key (jax.random.key(seed) or "
            f"jax.random.PRNGKey(seed)), got {got}; for several runs, vmap over keys"
        )
    return key
