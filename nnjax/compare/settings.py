"""The settings of a :class:`~nnjax.compare.study.Study` checked and normalised:
:func:`validate` names the first bad setting and its valid values before anything is
trained, and turns NumPy numbers into plain Python values so that the outputs serialise."""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np

from nnjax.data import DATASETS, load
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


def validate(study: Study) -> Study:
    """Check every setting of ``study`` and return it with each normalised to plain Python
    values (NumPy ints and floats taken; a seed count n becomes seeds 0..n-1, a single
    optimizer name a one-name tuple), so the outputs serialise. Raises a ValueError naming
    the first bad setting and its valid values, before anything is trained. The checks that
    need the data (the validation split leaves every class in both parts, the batch fits the
    fit set) load the dataset, which the study loads anyway."""
    if not isinstance(study.dataset, str) or study.dataset not in DATASETS:
        raise ValueError(
            f"compare: unknown dataset {study.dataset!r}; valid names: {', '.join(DATASETS)}"
        )
    optimizers = _optimizers(study.optimizers)
    study = dataclasses.replace(
        study,
        optimizers=optimizers,
        learning_rates=_learning_rates(study.learning_rates, optimizers),
        seeds=_seeds(study.seeds),
        epochs=_positive_int("epochs", study.epochs),
        batch_size=_positive_int("batch_size", study.batch_size),
        hidden=_hidden(study.hidden),
        val_fraction=_number("val_fraction", study.val_fraction, 0.0, 1.0, "in [0, 1)"),
        target_loss=_number("target_loss", study.target_loss, 0.0, None, "> 0"),
        select=_select(study.select),
        data_seed=_data_seed(study.data_seed),
        activation=_activation(study.activation),
    )
    _check_split(study)
    return study


NO_SPLIT = ("toy", "xor")  # too small to split: fit = validation = test = all points
RUN_DTYPE = np.float32  # the dtype of the data, the params and each run's learning rate


def _activation(name) -> str:
    """A hidden-layer activation's name (softmax and log_softmax normalise across the
    features: output functions, refused as the CLI refuses them)."""
    from nnjax.commands.options import HIDDEN_ACTIVATIONS

    if not isinstance(name, str) or name not in HIDDEN_ACTIVATIONS:
        raise ValueError(
            f"compare: activation must be a hidden-layer activation, one of "
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


def _optimizers(v) -> tuple[str, ...]:
    names = (v,) if isinstance(v, str) else _items(v, "optimizers", "a name or a list of names")
    if not names:
        raise ValueError(f"compare: optimizers: give at least one of {', '.join(OPTIMIZERS)}")
    for name in names:
        if not isinstance(name, str) or name not in OPTIMIZERS:
            raise ValueError(
                f"compare: unknown optimizer {name!r} in optimizers; valid names: "
                f"{', '.join(OPTIMIZERS)}"
            )
    if len(set(names)) != len(names):
        raise ValueError(f"compare: optimizers: repeated names in {names}")
    return names


def _learning_rates(v, optimizers: tuple[str, ...]) -> dict[str, tuple[float, ...]]:
    if not isinstance(v, Mapping):
        raise ValueError(
            "compare: learning_rates must be a dict {optimizer: [rate, ...]}, e.g. "
            f"{{'sgd': [0.01, 0.1]}}, got {v!r}"
        )
    for name in v:
        if name not in optimizers:
            raise ValueError(
                f"compare: learning_rates given for {name!r}, which is not in optimizers "
                f"{optimizers}"
            )
    return {name: _rates(name, rates) for name, rates in v.items()}


def _rates(name: str, rates) -> tuple[float, ...]:
    """One optimizer's rates as Python floats: each > 0 and finite in the runs' float32, and
    no two equal in float32 (they would be the same runs)."""
    where = f"compare: learning_rates[{name!r}]"
    rates = _items(rates, f"learning_rates[{name!r}]", "a list of learning rates (floats > 0)")
    if not rates:
        raise ValueError(
            f"{where} is empty: give at least one rate, or leave {name!r} out of learning_rates "
            f"for its default grid ({', '.join(f'{r:.3g}' for r in DEFAULT_LEARNING_RATES[name])})"
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


def _seeds(v) -> tuple[int, ...]:
    valid = "a count n >= 1 (seeds 0..n-1) or a list of distinct ints in [0, 2**31)"
    if _is_int(v):
        if v < 1:
            raise ValueError(f"compare: seeds must be {valid}, got {v!r}")
        return tuple(range(int(v)))
    seeds = _items(v, "seeds", valid)
    if (
        not seeds
        or not all(_is_int(s) and 0 <= s < 2**31 for s in seeds)
        or len(set(seeds)) != len(seeds)
    ):
        raise ValueError(f"compare: seeds must be {valid}, got {v!r}")
    return tuple(int(s) for s in seeds)


def _hidden(v) -> tuple[int, ...]:
    valid = "a list of positive int widths, e.g. (64,) or [64, 64]"
    widths = _items(v, "hidden", valid)
    if not widths or not all(_is_int(h) and h >= 1 for h in widths):
        raise ValueError(f"compare: hidden must be {valid}, got {v!r}")
    return tuple(int(h) for h in widths)


def _select(v) -> str:
    if not isinstance(v, str) or v not in SELECT:
        raise ValueError(f"compare: select must be one of {', '.join(SELECT)}, got {v!r}")
    return v


def _data_seed(v) -> int:
    if not _is_int(v) or not 0 <= v < 2**32:
        raise ValueError(
            f"compare: data_seed must be an int in [0, 2**32) (it seeds the data and its "
            f"split), got {v!r}"
        )
    return int(v)


@functools.lru_cache(maxsize=32)
def _class_counts(dataset: str, data_seed: int) -> tuple[int, ...]:
    """The number of examples of each class in ``dataset``'s training split."""
    return tuple(int(c) for c in np.bincount(load(dataset, seed=data_seed).y_train))


def _check_split(study: Study) -> None:
    """The stratified validation split leaves at least one example of each of the K classes
    in both parts, ``n_val = ceil(val_fraction * n)`` and ``n_fit = n - n_val`` (sklearn's
    rule), and the batch fits the fit set."""
    counts = _class_counts(study.dataset, study.data_seed)
    n, K = sum(counts), len(counts)
    n_val = 0 if study.dataset in NO_SPLIT else math.ceil(study.val_fraction * n)
    n_fit = n - n_val
    if 0 < n_val < K or (n_val > 0 and n_fit < K):
        # valid: (K - 1) / n < val_fraction <= (n - K) / n; shown inside, to 6 decimals
        low = math.floor((K - 1) / n * 1e6 + 1) / 1e6
        high = math.floor((n - K) / n * 1e6) / 1e6
        raise ValueError(
            f"compare: val_fraction={study.val_fraction:g} holds out {n_val} of the {n} "
            f"training examples of {study.dataset} ({n_val / K:.3g} per class) and leaves "
            f"{n_fit} to fit ({n_fit / K:.3g} per class) for its {K} classes; both parts need "
            f"at least one example of each class: val_fraction must be 0 (no held-out "
            f"split) or in [{low:g}, {high:g}]"
        )
    if study.batch_size > n_fit and any(o not in FULL_BATCH for o in study.optimizers):
        raise ValueError(
            f"compare: batch_size {study.batch_size} exceeds the {n_fit} fit examples of "
            f"{study.dataset}; valid: 1..{n_fit}"
        )
