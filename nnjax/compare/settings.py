"""The settings of a :class:`~nnjax.compare.study.Study` checked and normalised:
:func:`validate` names the first bad setting and its valid values before anything is
trained, and turns NumPy numbers into plain Python values so that the outputs serialise."""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from nnjax._host import ACTIVATION_COPIES, PARAM_COPIES
from nnjax.data import DATASETS, NO_SPLIT, load
from nnjax.optim import FULL_BATCH, OPTIMIZERS, check_learning_rate

if TYPE_CHECKING:
    from nnjax.compare.study import Study

# 5 log-spaced learning rates (half-decade steps) around each optimizer's usual range.
# Full-batch GD takes one step per epoch, so its useful rates are large.
DEFAULT_LEARNING_RATES: dict[str, tuple[float, ...]] = {
    "gd": tuple(np.logspace(-1.5, 0.5, 5)),  # 0.0316 .. 3.16
    "sgd": tuple(np.logspace(-2.5, -0.5, 5)),  # 0.00316 .. 0.316
    "momentum": tuple(np.logspace(-3.5, -1.5, 5)),  # 0.000316 .. 0.0316 (mu = 0.9)
    "nesterov": tuple(np.logspace(-3.5, -1.5, 5)),
    "adam": tuple(np.logspace(-4.0, -2.0, 5)),  # 1e-4 .. 1e-2
    "adamw": tuple(np.logspace(-4.0, -2.0, 5)),
    "rmsprop": tuple(np.logspace(-4.0, -2.0, 5)),
    "adagrad": tuple(np.logspace(-3.0, -1.0, 5)),
}
DEFAULT_OPTIMIZERS = ("gd", "sgd", "momentum", "adam")
SELECT = ("val_loss", "val_accuracy", "train_loss")

# label(setting, optimizer=None) -> how error messages name a setting (one optimizer's rates
# when ``optimizer`` is given); the CLI names its options instead (``--batch-size``)
Label = Callable[..., str]


def parameter_label(setting: str, optimizer: str | None = None) -> str:
    """The Python parameter: ``batch_size``, ``learning_rates['adam']``."""
    return setting if optimizer is None else f"{setting}[{optimizer!r}]"


def validate(study: Study, label: Label = parameter_label) -> Study:
    """Check every setting of ``study`` and return it with each normalised to plain Python
    values (NumPy ints and floats taken; a seed count n becomes seeds 0..n-1, a single
    optimizer name a one-name tuple), so the outputs serialise. Raises a ValueError naming
    the first bad setting and its valid values, before anything is trained. The checks that
    need the data (the validation split leaves every class in both parts, the batch fits the
    fit set, the default model and the curves fit in memory) load the dataset, which the
    study loads anyway.
    ``label(setting)`` names a setting in the messages (default: the parameter's name)."""
    if not isinstance(study.dataset, str) or study.dataset not in DATASETS:
        raise ValueError(
            f"compare: unknown {label('dataset')} {study.dataset!r}; valid names: "
            f"{', '.join(DATASETS)}"
        )
    optimizers = _optimizers(study.optimizers, label)
    study = dataclasses.replace(
        study,
        optimizers=optimizers,
        learning_rates=_learning_rates(study.learning_rates, optimizers, label),
        seeds=_seeds(study.seeds, label),
        epochs=_positive_int(label("epochs"), study.epochs),
        batch_size=_positive_int(label("batch_size"), study.batch_size),
        hidden=_hidden(study.hidden, label),
        val_fraction=_number(label("val_fraction"), study.val_fraction, 0.0, 1.0, "in [0, 1)"),
        target_loss=_number(label("target_loss"), study.target_loss, 0.0, None, "> 0"),
        select=_select(study.select, label),
        data_seed=_data_seed(study.data_seed, label),
        activation=_activation(study.activation, label),
    )
    n_fit = _check_split(study, label)
    check_memory(study, n_fit, np.dtype(RUN_DTYPE).itemsize, label)
    check_model_memory(study, np.dtype(RUN_DTYPE).itemsize, label)
    # a seed count stays a range until the memory check has passed: 10**9 seeds are refused
    # there, not built here
    return dataclasses.replace(study, seeds=tuple(study.seeds))


RUN_DTYPE = np.float32  # the data's dtype; the params' and the rates' too, but under x64


def _activation(name, label: Label) -> str:
    """A hidden-layer activation's name (softmax and log_softmax normalise across the
    features: output functions, refused as the CLI refuses them)."""
    from nnjax.commands.options import HIDDEN_ACTIVATIONS

    if not isinstance(name, str) or name not in HIDDEN_ACTIVATIONS:
        raise ValueError(
            f"compare: {label('activation')} must be a hidden-layer activation, one of "
            f"{', '.join(HIDDEN_ACTIVATIONS)}; got {name!r}"
        )
    return name


def _is_int(v) -> bool:
    return isinstance(v, int | np.integer) and not isinstance(v, bool)


def _is_number(v) -> bool:
    return isinstance(v, int | float | np.integer | np.floating) and not isinstance(v, bool)


def _items(v, name: str, what: str) -> tuple:
    """``v`` as a tuple, refusing a string or a non-iterable with a ValueError naming it."""
    try:
        if isinstance(v, str | bytes | Mapping):
            raise TypeError
        return tuple(v)
    except TypeError:
        raise ValueError(f"compare: {name} must be {what}, got {v!r}") from None


def _positive_int(name: str, v) -> int:
    if not _is_int(v) or v < 1:
        raise ValueError(f"compare: {name} must be a positive int (1, 2, ...), got {v!r}")
    return int(v)


def _number(name: str, v, low: float, high: float | None, valid: str) -> float:
    """``v`` as a finite float with ``low <= v`` (``low < v`` when ``high`` is None, i.e. an
    open lower bound) and ``v < high``."""
    ok = _is_number(v) and math.isfinite(v)
    ok = ok and (low <= v < high if high is not None else v > low)
    if not ok:
        raise ValueError(f"compare: {name} must be a finite number {valid}, got {v!r}")
    return float(v)


def _optimizers(v, label: Label) -> tuple[str, ...]:
    what = label("optimizers")
    names = (v,) if isinstance(v, str) else _items(v, what, "a name or a list of names")
    if not names:
        raise ValueError(f"compare: {what}: give at least one of {', '.join(OPTIMIZERS)}")
    for name in names:
        if not isinstance(name, str) or name not in OPTIMIZERS:
            raise ValueError(
                f"compare: unknown optimizer {name!r} in {what}; valid names: "
                f"{', '.join(OPTIMIZERS)}"
            )
    if len(set(names)) != len(names):
        raise ValueError(f"compare: {what}: repeated names in {names}")
    return names


def _learning_rates(v, optimizers: tuple[str, ...], label: Label) -> dict[str, tuple[float, ...]]:
    if not isinstance(v, Mapping):
        raise ValueError(
            f"compare: {label('learning_rates')} must be a dict {{optimizer: [rate, ...]}}, "
            f"e.g. {{'sgd': [0.01, 0.1]}}, got {v!r}"
        )
    for name in v:
        if name not in optimizers:
            raise ValueError(
                f"compare: {label('learning_rates')} given for {name!r}, which is not in "
                f"{label('optimizers')} {optimizers}"
            )
    return {name: _rates(name, rates, label) for name, rates in v.items()}


def _rates(name: str, rates, label: Label) -> tuple[float, ...]:
    """One optimizer's rates as Python floats: each > 0 and finite in the runs' float32, and
    no two equal in float32 (they would be the same runs)."""
    where = f"compare: {label('learning_rates', name)}"
    valid = "a list of learning rates (floats > 0)"
    rates = _items(rates, label("learning_rates", name), valid)
    if not rates:
        raise ValueError(
            f"{where} is empty: give at least one rate, or leave {name!r} out of "
            f"{label('learning_rates')} for its default grid ({_grid(name)})"
        )
    for r in rates:
        if callable(r):
            raise ValueError(f"{where}: numbers only, got a schedule {r!r}")
        try:
            check_learning_rate(r, np.dtype(RUN_DTYPE).name)
        except ValueError as e:
            raise ValueError(f"{where}: {e}") from None
    values = tuple(float(r) for r in rates)
    in_run = [RUN_DTYPE(r) for r in values]
    if min(in_run) == 0:
        raise ValueError(f"{where}: {min(values):g} is 0 in float32, the runs' dtype")
    if len(set(in_run)) != len(in_run):
        raise ValueError(
            f"{where}: repeated values {values} (equal as float32, the dtype of the runs)"
        )
    return values


SEED_LIMIT = 2**31  # seeds are ints in [0, 2**31)


def _grid(name: str) -> str:
    return ", ".join(f"{r:.3g}" for r in DEFAULT_LEARNING_RATES[name])


def _seeds(v, label: Label) -> Sequence[int]:
    """A list of seeds as a tuple of ints, or a count n as ``range(n)``: :func:`validate`
    makes it a tuple once the memory check has passed."""
    what = label("seeds")
    valid = "a count n >= 1 (seeds 0..n-1) or a list of distinct ints in [0, 2**31)"
    if _is_int(v):
        if not 1 <= v <= SEED_LIMIT:
            raise ValueError(f"compare: {what} must be {valid}, got {v!r}")
        return range(int(v))
    seeds = _items(v, what, valid)
    if (
        not seeds
        or not all(_is_int(s) and 0 <= s < SEED_LIMIT for s in seeds)
        or len(set(seeds)) != len(seeds)
    ):
        raise ValueError(f"compare: {what} must be {valid}, got {v!r}")
    return tuple(int(s) for s in seeds)


def _hidden(v, label: Label) -> tuple[int, ...]:
    what = label("hidden")
    valid = "a list of positive int widths, e.g. (64,) or [64, 64]"
    widths = _items(v, what, valid)
    if not widths or not all(_is_int(h) and h >= 1 for h in widths):
        raise ValueError(f"compare: {what} must be {valid}, got {v!r}")
    return tuple(int(h) for h in widths)


def _select(v, label: Label) -> str:
    if not isinstance(v, str) or v not in SELECT:
        raise ValueError(
            f"compare: {label('select')} must be one of {', '.join(SELECT)}, got {v!r}"
        )
    return v


def _data_seed(v, label: Label) -> int:
    if not _is_int(v) or not 0 <= v < 2**32:
        raise ValueError(
            f"compare: {label('data_seed')} must be an int in [0, 2**32) (it seeds the data "
            f"and its split), got {v!r}"
        )
    return int(v)


@functools.lru_cache(maxsize=32)
def _class_counts(dataset: str, data_seed: int) -> tuple[int, ...]:
    """The number of examples of each class in ``dataset``'s training split."""
    return tuple(int(c) for c in np.bincount(load(dataset, seed=data_seed).y_train))


@functools.lru_cache(maxsize=32)
def _features_and_test(dataset: str, data_seed: int) -> tuple[int, int]:
    """``(features per example, test examples)`` of ``dataset``."""
    ds = load(dataset, seed=data_seed)
    return int(np.prod(ds.X_train.shape[1:])), len(ds.y_test)


def _check_split(study: Study, label: Label) -> int:
    """The stratified validation split leaves at least one example of each of the K classes
    in both parts, ``n_val = ceil(val_fraction * n)`` and ``n_fit = n - n_val`` (sklearn's
    rule), and the batch fits the fit set; returns ``n_fit``."""
    counts = _class_counts(study.dataset, study.data_seed)
    n, K = sum(counts), len(counts)
    n_val = 0 if study.dataset in NO_SPLIT else math.ceil(study.val_fraction * n)
    n_fit = n - n_val
    if 0 < n_val < K or (n_val > 0 and n_fit < K):
        # valid: (K - 1) / n < val_fraction <= (n - K) / n; shown inside, to 6 decimals
        low = math.floor((K - 1) / n * 1e6 + 1) / 1e6
        high = math.floor((n - K) / n * 1e6) / 1e6
        raise ValueError(
            f"compare: {label('val_fraction')}={study.val_fraction:g} holds out {n_val} of the {n} "
            f"training examples of {study.dataset} ({n_val / K:.3g} per class) and leaves "
            f"{n_fit} to fit ({n_fit / K:.3g} per class) for its {K} classes; both parts need "
            f"at least one example of each class: {label('val_fraction')} must be 0 (no held-out "
            f"split) or in [{low:g}, {high:g}]"
        )
    if study.batch_size > n_fit and any(o not in FULL_BATCH for o in study.optimizers):
        raise ValueError(
            f"compare: {label('batch_size')} {study.batch_size} exceeds the {n_fit} fit "
            f"examples of {study.dataset}; valid: 1..{n_fit}"
        )
    return n_fit


def check_memory(study: Study, n_fit: int, itemsize: int, label: Label = parameter_label) -> None:
    """Refuse a study whose curves cannot fit in this machine's memory: every run keeps its
    loss per step and its metrics per epoch, and each optimizer's are concatenated once from
    the chunks (twice the bytes while that happens). It counts, allocating nothing (a count
    of 10**9 seeds is still a ``range`` here)."""
    from nnjax._host import physical_memory, size_text

    have = physical_memory()
    if have is None:
        return
    values = 0
    for name in study.optimizers:
        full = name in FULL_BATCH or study.batch_size >= n_fit
        steps = 1 if full else n_fit // study.batch_size
        values += len(study.rates(name)) * len(study.seeds) * study.epochs * (steps + 8)
    need = 2 * values * itemsize
    if need > have:
        raise ValueError(
            f"compare: the curves of {len(study.optimizers)} optimizer(s) x their learning rates "
            f"x {len(study.seeds)} seeds x {study.epochs} epochs need about {size_text(need)} "
            f"of memory; this machine has {size_text(have)}: fewer epochs, seeds or learning "
            f"rates ({label('epochs')}, {label('seeds')}, {label('learning_rates')})"
        )


def mlp_parameters(n_features: int, hidden: Sequence[int], n_classes: int) -> int:
    """The weights and biases of ``mlp([*hidden, n_classes])`` on ``n_features`` inputs:
    sum over layers of (inputs + 1) * outputs."""
    widths = [n_features, *hidden, n_classes]
    return sum((a + 1) * b for a, b in zip(widths[:-1], widths[1:]))


def check_model_memory(study: Study, itemsize: int, label: Label = parameter_label) -> None:
    """Refuse a study whose default model (``mlp([*hidden, K])``) cannot fit in this
    machine's memory: one optimizer's R runs train together, each holding
    :data:`PARAM_COPIES` copies of the params and :data:`ACTIVATION_COPIES` values per unit
    for each example of the largest set it evaluates (fit, validation or test). Counted,
    allocating nothing: a huge ``hidden`` was XLA's out-of-memory error after the compile."""
    from nnjax._host import physical_memory, size_text

    have = physical_memory()
    if have is None:
        return
    counts = _class_counts(study.dataset, study.data_seed)
    n_features, n_test = _features_and_test(study.dataset, study.data_seed)
    params = mlp_parameters(n_features, study.hidden, len(counts))
    rows = max(sum(counts), n_test)  # the training split bounds its fit and validation parts
    units = sum(study.hidden) + len(counts)
    runs = max(len(study.rates(name)) for name in study.optimizers) * len(study.seeds)
    need = runs * (PARAM_COPIES * params + ACTIVATION_COPIES * rows * units) * itemsize
    if need > have:
        widths = "-".join(map(str, (n_features, *study.hidden, len(counts))))
        raise ValueError(
            f"compare: the MLP {widths} of {label('hidden')} has {params:,} parameters; "
            f"{runs} runs trained together (learning rates x {len(study.seeds)} seeds) need "
            f"about {size_text(need)} of memory for its params, gradients, optimizer state and "
            f"activations on {rows} examples; this machine has {size_text(have)}: narrower "
            f"{label('hidden')}, or fewer seeds or learning rates ({label('seeds')}, "
            f"{label('learning_rates')})"
        )
