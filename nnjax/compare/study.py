"""A study: dataset x model x optimizers x learning rates x seeds x epochs, vmapped.

For one optimizer, the L learning rates and S seeds make R = L * S runs that train together:
the pure loop of :func:`nnjax.train.make_epochs_fn` is ``vmap``-ed over a run axis of size R
and run by fit's driver (:func:`nnjax.train.drive`: compiled once, in chunks). Run
r = l * S + s starts from

    params_r    = model.init(init_key(seed_s))          (the same for every learning rate)
    opt_state_r = optimizer(lr_l).init(params_r)         (lr_l lives in the state, traced)
    shuffles    : train_key(seed_s)                      (the same for every learning rate)

with ``init_key, train_key = jax.random.split(jax.random.key(seed))`` (:func:`seed_keys`), so
run r equals ``nnjax.fit(model, params_r, ..., learning_rate=lr_l, key=train_key(seed_s))``.

The data: the dataset's training split (``nnjax.data.load(dataset, seed=data_seed)``) is split
once more, stratified, into a *fit* part (the runs train on it) and a *validation* part (used to
pick the learning rate); the test split is only reported. ``toy`` and ``xor`` are too small to
split: there fit = validation = test = all points.

Per run and epoch e (after its last update): ``train_loss``/``train_accuracy`` on the whole fit
set, ``val_*`` and ``test_*`` likewise, ``step_loss_mean`` (mean mini-batch loss of the epoch);
per step: the mini-batch loss ``step_loss``.
"""

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from nnjax.compare.model_checks import check_layer, check_model
from nnjax.compare.settings import (
    DEFAULT_LEARNING_RATES,
    DEFAULT_OPTIMIZERS,
    Label,
    parameter_label,
    validate,
)
from nnjax.data import DATASETS, NO_SPLIT, load, train_test_split
from nnjax.layers import Layer
from nnjax.models import mlp
from nnjax.optim import FULL_BATCH, injectable_optimizer
from nnjax.train import Carry, FixedChunks, StopFlag, drive, is_stateful, make_epochs_fn
from nnjax.train.driver import check_stop
from nnjax.train.order import check_seed
from nnjax.train.signals import stopped_text

# Per-dataset defaults (hidden widths, epochs, batch size, target loss): sized so that the
# default study runs in about a minute on 2 CPU cores and every default optimizer converges.
PRESETS: dict[str, dict[str, Any]] = {
    "toy": {
        "hidden": (4,),
        "activation": "tanh",
        "epochs": 200,
        "batch_size": 2,
        "target_loss": 0.1,
    },
    "xor": {"hidden": (8,), "epochs": 300, "batch_size": 2, "target_loss": 0.1},
    "moons": {"hidden": (32,), "epochs": 60, "batch_size": 32, "target_loss": 0.1},
    "spirals": {"hidden": (64, 64), "epochs": 100, "batch_size": 32, "target_loss": 0.2},
    "digits": {"hidden": (64,), "epochs": 60, "batch_size": 32, "target_loss": 0.1},
    "mnist1d": {"hidden": (128,), "epochs": 40, "batch_size": 64, "target_loss": 1.0},
}


@dataclasses.dataclass(frozen=True)
class Study:
    """What to run. ``learning_rates`` maps optimizer -> rates (default
    :data:`DEFAULT_LEARNING_RATES`); ``seeds`` are the run seeds (init and shuffles);
    ``batch_size`` applies to every optimizer but the full-batch ones
    (:data:`nnjax.optim.FULL_BATCH`);
    ``select`` is the learning-rate criterion (see :func:`nnjax.compare.report.best_index`)."""

    dataset: str = "digits"
    optimizers: tuple[str, ...] = DEFAULT_OPTIMIZERS
    learning_rates: Mapping[str, tuple[float, ...]] = dataclasses.field(default_factory=dict)
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    epochs: int = 60
    batch_size: int = 32
    hidden: tuple[int, ...] = (64,)
    activation: str = "relu"
    val_fraction: float = 0.2
    target_loss: float = 0.1
    select: str = "val_loss"
    data_seed: int = 0

    def rates(self, optimizer: str) -> tuple[float, ...]:
        """The learning rates of ``optimizer``: given (an empty list is refused by
        :func:`validate`, never replaced by the default), or its default grid."""
        if optimizer in self.learning_rates:
            return tuple(self.learning_rates[optimizer])
        return tuple(DEFAULT_LEARNING_RATES[optimizer])


def make_study(dataset: str = "digits", *, label: Label = parameter_label, **overrides) -> Study:
    """A validated :class:`Study` with the dataset's :data:`PRESETS`, then ``overrides``
    (None means the preset or default); see :func:`validate` for the settings it takes and
    ``label``, how its messages name them (the CLI: by its options)."""
    if not isinstance(dataset, str) or dataset not in DATASETS:
        raise ValueError(
            f"compare: unknown {label('dataset')} {dataset!r}; valid names: {', '.join(DATASETS)}"
        )
    fields = {**PRESETS[dataset], **{k: v for k, v in overrides.items() if v is not None}}
    unknown = set(fields) - {f.name for f in dataclasses.fields(Study)}
    if unknown:
        raise ValueError(f"make_study: unknown settings {sorted(unknown)}")
    return validate(Study(dataset=dataset, **fields), label)


class Splits(NamedTuple):
    """Float arrays X (n, d) and int labels y (n,) of the fit, validation and test sets."""

    fit: tuple[np.ndarray, np.ndarray]
    val: tuple[np.ndarray, np.ndarray]
    test: tuple[np.ndarray, np.ndarray]
    n_classes: int
    held_out_val: bool  # False: validation = fit (dataset too small or val_fraction = 0)


def make_splits(dataset: str, val_fraction: float = 0.2, data_seed: int = 0) -> Splits:
    """Load ``dataset`` and split its training part into fit / validation (stratified)."""
    ds = load(dataset, seed=data_seed)
    test = (ds.X_test, ds.y_test)
    if dataset in NO_SPLIT or val_fraction == 0.0:
        fit = (ds.X_train, ds.y_train)
        return Splits(fit, fit, test, ds.n_classes, False)
    X_fit, X_val, y_fit, y_val = train_test_split(ds.X_train, ds.y_train, val_fraction, data_seed)
    return Splits((X_fit, y_fit), (X_val, y_val), test, ds.n_classes, True)


def seed_keys(seed: int) -> tuple[jax.Array, jax.Array]:
    """``(init_key, train_key)`` of a run seed: the params' init and the shuffles."""
    init_key, train_key = jax.random.split(jax.random.key(check_seed(seed, "seed_keys")))
    return init_key, train_key


def seed_params(model: Layer, seeds: Sequence[int], feature_shape: tuple[int, ...]) -> Any:
    """The initial (params, model state) of every seed, ``model.init(init_key(seed))``,
    stacked: (S, ...) each (the state is ``()`` for a stateless model).

    A plain loop: after the first seed the eager ops are compiled, and the values are
    exactly those a single run gets (``vmap`` of ``init`` would compile a larger program).
    """
    shape = (-1, *feature_shape)
    inits = [model.init(seed_keys(s)[0], shape) for s in seeds]
    params = [i[1] for i in inits]
    states = [i[2] if is_stateful(model) else () for i in inits]
    stack = lambda trees: jax.tree.map(lambda *a: jnp.stack(a), *trees)  # noqa: E731
    return stack(params), stack(states)


class OptimizerRuns(NamedTuple):
    """All runs of one optimizer. L learning rates x S seeds; E epochs of T steps each.

    ``step_loss``: (L, S, E * T) mini-batch losses; ``metrics``: name -> (L, S, E) (see the
    module docstring); ``compile_time``/``run_time``: seconds for the whole batch of runs.
    """

    name: str
    learning_rates: np.ndarray
    seeds: np.ndarray
    batch_size: int | None
    steps_per_epoch: int
    step_loss: np.ndarray
    metrics: dict[str, np.ndarray]
    compile_time: float
    run_time: float


class StudyResult(NamedTuple):
    """``runs``: optimizer -> its runs, for every optimizer of ``study``. ``stopped``: None,
    or why a study stopped before its end holds only the optimizers that finished (e.g.
    "stopped by SIGTERM before momentum and adam finished their runs"; their names are gone
    from ``study.optimizers``)."""

    study: Study
    model_name: str
    sizes: dict[str, int]  # n_fit, n_val, n_test, n_features, n_classes
    held_out_val: bool
    runs: dict[str, OptimizerRuns]
    stopped: str | None = None


class StudyStopped(Exception):
    """A study stopped by its ``stop`` flag (:func:`run_optimizer_study`) before every
    optimizer finished its runs: ``result`` is the :class:`StudyResult` of those that did
    (None when none did), ``reason`` the flag's (e.g. ``"SIGTERM"``), ``unfinished`` the
    names of the others, in the study's order (the first one was running)."""

    def __init__(self, result: StudyResult | None, reason: str, unfinished: Sequence[str]):
        self.result, self.reason, self.unfinished = result, reason, tuple(unfinished)
        super().__init__(stopped_text(reason, self.unfinished, started=result is not None))


def _chunk(epochs: int, parts: int) -> int:
    """The largest divisor of ``epochs`` not above ceil(epochs / parts): equal chunks compile
    once, and the progress bar moves ``epochs / chunk`` times per optimizer: ``parts`` times
    where ``parts`` divides ``epochs`` (the presets), more otherwise (34 epochs: 17 chunks of
    2; a prime number above ``parts``, 61: one epoch a chunk). A shorter last chunk would
    compile a second program."""
    cap = max(1, math.ceil(epochs / parts))
    return max(d for d in range(1, cap + 1) if epochs % d == 0)


def _init_runs(name: str, params_s, states_s, train_keys, lrs, L: int) -> tuple[Carry, Any]:
    """The carry and keys of the L x S runs, run r = l * S + s (one small jitted program
    instead of many eager ops, each of which would compile)."""

    @jax.jit
    def init(params_s, states_s, train_keys, lrs):
        S = train_keys.shape[0]
        params, states = (
            jax.tree.map(lambda a: jnp.concatenate([a] * L), t) for t in (params_s, states_s)
        )
        run_lrs = jnp.repeat(lrs, S)
        opt_state = jax.vmap(lambda p, lr: injectable_optimizer(name, lr).init(p))(params, run_lrs)
        return Carry(params, opt_state, states), jnp.concatenate([train_keys] * L)

    return init(params_s, states_s, train_keys, lrs)


def train_optimizer(
    name: str,
    learning_rates: Sequence[float],
    seeds: Sequence[int],
    model: Layer,
    splits: Splits,
    *,
    epochs: int,
    batch_size: int | None,
    loss: str = "softmax_cross_entropy",
    chunks: int = 10,
    on_chunk: Callable[[int], None] | None = None,
    init_params: Any = None,
    stop: StopFlag | None = None,
) -> OptimizerRuns | None:
    """Train the L x S runs of optimizer ``name`` together: fit's loop
    (:func:`nnjax.train.make_epochs_fn`) ``vmap``-ed over the runs, compiled once and run in
    chunks by :func:`nnjax.train.drive`.

    ``on_chunk(epochs_done)`` is called before compiling and after each compiled call.
    ``init_params``: the seeds' initial (params, model state) stacked on a leading axis
    (S, ...), as :func:`seed_params` makes them (pass them to share one init across
    optimizers). Runs whose loss becomes nan/inf are kept (a study reports them as diverged).
    ``stop`` (a :class:`nnjax.train.StopFlag`): a stop requested ends the runs after the
    running chunk, and None is returned instead of runs that did not finish.
    """
    X, y = (jnp.asarray(a) for a in splits.fit)
    evals = tuple(
        (jnp.asarray(a), jnp.asarray(b)) for a, b in (splits.fit, splits.val, splits.test)
    )
    lrs = np.asarray(learning_rates, dtype=float)
    L, S = len(lrs), len(seeds)
    bs = None if name in FULL_BATCH or batch_size is None or batch_size >= len(X) else batch_size
    run, n_steps = make_epochs_fn(
        model,
        loss,
        injectable_optimizer(name, 1.0),  # the update reads each run's rate from its state
        n_examples=X.shape[0],
        batch_size=bs,
        eval_names=("fit", "val", "test"),
    )
    if init_params is None:
        init_params = seed_params(model, seeds, X.shape[1:])
    params_s, states_s = init_params
    train_keys = jnp.stack([seed_keys(s)[1] for s in seeds])
    # each rate in the params' dtype, as fit's optimizer scales their updates (float64 under
    # x64: a float32 rate would be another rate, 0.05 as 0.0500000007)
    rate_dtype = jnp.result_type(*(jax.tree.leaves(params_s) or [X]))
    carry, keys = _init_runs(name, params_s, states_s, train_keys, jnp.asarray(lrs, rate_dtype), L)
    if on_chunk is not None:
        on_chunk(0)
    driven = drive(
        jax.vmap(run, in_axes=(0, None, 0, None, None, None)),
        carry,
        (keys, X, y, evals),
        total=epochs,
        chunks=FixedChunks(_chunk(epochs, chunks)),
        hooks=() if on_chunk is None else (lambda report: on_chunk(report.end),),
        axis=1,  # outputs (R, epochs, ...)
        stop=stop,
    )
    if driven.done < epochs:
        return None
    step_loss = driven.outputs.step_loss.reshape(L, S, epochs * n_steps)
    names = {"fit_loss": "train_loss", "fit_accuracy": "train_accuracy"}
    metrics = {names.get(k, k): v.reshape(L, S, epochs) for k, v in driven.outputs.metrics.items()}
    return OptimizerRuns(
        name,
        lrs,
        np.asarray(seeds),
        bs,
        n_steps,
        step_loss,
        metrics,
        driven.compile_time,
        driven.run_time,
    )


def run_optimizer_study(
    study: Study,
    *,
    model: Layer | None = None,
    on_progress: Callable[[str, int, int, int], None] | None = None,
    stop: StopFlag | None = None,
) -> StudyResult:
    """Run every optimizer of ``study`` (one compile each) and return all curves.

    ``model`` defaults to ``mlp([*study.hidden, n_classes], study.activation)``.
    ``on_progress(optimizer, run_epochs_done, run_epochs_total, epochs)`` reports progress in
    run-epochs across the whole study (before each compile, then after each compiled call).
    ``stop`` (a :class:`nnjax.train.StopFlag`, e.g. the one
    :func:`nnjax.train.stop_on_signals` yields): a stop requested ends the study after the
    running chunk with :class:`StudyStopped`, which holds the optimizers that finished every
    run.
    """
    if not isinstance(study, Study):
        raise TypeError(f"run_optimizer_study: study must be a Study (make_study), got {study!r}")
    check_stop(stop, "run_optimizer_study")
    study = validate(study)
    check_layer(model)
    splits = make_splits(study.dataset, study.val_fraction, study.data_seed)
    if model is None:
        model = mlp([*study.hidden, splits.n_classes], study.activation)
    n_fit = len(splits.fit[1])
    S = len(study.seeds)
    total = sum(len(study.rates(o)) * S for o in study.optimizers) * study.epochs
    done = 0
    runs = {}
    inits = seed_params(model, study.seeds, splits.fit[0].shape[1:])
    check_model(model, inits, splits, study.dataset)
    for name in study.optimizers:
        R = len(study.rates(name)) * S
        base = done

        def on_chunk(epochs_done, name=name, base=base, R=R):
            if on_progress is not None:
                on_progress(name, base + R * epochs_done, total, study.epochs)

        trained = None
        if stop is None or not stop.requested:
            trained = train_optimizer(
                name,
                study.rates(name),
                study.seeds,
                model,
                splits,
                epochs=study.epochs,
                batch_size=study.batch_size,
                on_chunk=on_chunk,
                init_params=inits,
                stop=stop,
            )
        if trained is None:
            break
        runs[name] = trained
        done += R * study.epochs
    sizes = {
        "n_fit": n_fit,
        "n_val": len(splits.val[1]),
        "n_test": len(splits.test[1]),
        "n_features": int(np.prod(splits.fit[0].shape[1:])),
        "n_classes": splits.n_classes,
    }
    result = StudyResult(study, getattr(model, "name", "model"), sizes, splits.held_out_val, runs)
    if len(runs) < len(study.optimizers):
        raise _stopped(result, stop.reason)
    return result


def _stopped(result: StudyResult, reason: str) -> StudyStopped:
    """The :class:`StudyStopped` of a study that ran only ``result.runs``' optimizers."""
    study, done = result.study, tuple(result.runs)
    unfinished = [o for o in study.optimizers if o not in done]
    if not done:
        return StudyStopped(None, reason, unfinished)
    kept = {o: r for o, r in study.learning_rates.items() if o in done}
    finished = dataclasses.replace(study, optimizers=done, learning_rates=kept)
    text = stopped_text(reason, unfinished)
    return StudyStopped(result._replace(study=finished, stopped=text), reason, unfinished)
