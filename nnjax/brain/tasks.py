"""Class-incremental splits: a dataset's classes cut into tasks, as arrays a run takes.

The 10 classes are cut, in a given class order, into T tasks of ``classes_per_task`` classes;
a task holds only its classes' training examples. Tasks have slightly different sizes, so each
task's examples are padded to a common length ``N`` (by cycling its real rows); only the
first ``n_t`` rows are real and a run draws its mini-batches from those. Inputs are scaled
to [0, 1] (digits / 16; MNIST-1D min-max on the training split) because Sleep Replay
Consolidation turns them into firing rates. Used by :mod:`nnjax.brain.continual`.
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from nnjax import data as nndata

Array = jax.Array

SPLIT_DATASETS = ("digits", "mnist1d")
VALIDATION_ORDER = 100  # the class order used only for choosing hyperparameters


class SplitData(NamedTuple):
    """A class-incremental split.

    ``X_tasks`` (T, N, d) float32 and ``y_tasks`` (T, N) int32: each task's training examples,
    padded to N rows (only the first ``n_tasks[t]`` rows are real); ``X_test`` (M, d),
    ``y_test`` (M,); ``task_classes`` (T, c) the classes of each task; ``image_shape`` the
    shape of one input (``(8, 8)`` for digits, ``(40,)`` for MNIST-1D).
    """

    X_tasks: np.ndarray
    y_tasks: np.ndarray
    n_tasks: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    task_classes: np.ndarray
    n_classes: int
    image_shape: tuple
    name: str


def class_order(k: int, n_classes: int = 10) -> np.ndarray:
    """Class order number ``k``: 0 is 0, 1, ..., K-1; k > 0 a permutation seeded by k."""
    if k == 0:
        return np.arange(n_classes)
    return np.random.default_rng(k).permutation(n_classes)


def _raw(name: str):
    if name == "digits":
        X, y = nndata.digits()
        return np.asarray(X, np.float32) / 16.0, np.asarray(y, np.int32), (8, 8)
    X, y = nndata.mnist1d()
    return np.asarray(X, np.float32), np.asarray(y, np.int32), (X.shape[1],)


def load_split(
    name: str = "digits",
    order: int | np.ndarray = 0,
    *,
    classes_per_task: int = 2,
    validation: bool = False,
) -> SplitData:
    """Split ``name`` (digits or mnist1d) into tasks of ``classes_per_task`` classes.

    Train/test is the stratified 80/20 split with seed 0. With ``validation=True`` the test
    set is not used at all: the training split is split again (80/20, seed 1) and the held-out
    part plays the test set — this is what hyperparameters are chosen on.
    ``order``: an int for :func:`class_order` or an explicit permutation of the classes.
    """
    if name not in SPLIT_DATASETS:
        raise ValueError(f"load_split: unknown dataset {name!r}; valid: {SPLIT_DATASETS}")
    X, y, shape = _raw(name)
    K = int(y.max()) + 1
    perm = class_order(order, K) if isinstance(order, int | np.integer) else np.asarray(order)
    if sorted(perm.tolist()) != list(range(K)):
        raise ValueError(f"load_split: order must be a permutation of 0..{K - 1}, got {perm}")
    if not isinstance(classes_per_task, int) or classes_per_task < 1 or K % classes_per_task:
        raise ValueError(f"load_split: classes_per_task must divide {K}, got {classes_per_task!r}")
    X_tr, X_te, y_tr, y_te = nndata.train_test_split(X, y, 0.2, seed=0)
    if validation:
        X_tr, X_te, y_tr, y_te = nndata.train_test_split(X_tr, y_tr, 0.2, seed=1)
    if name == "mnist1d":  # min-max of the training split, so firing rates live in [0, 1]
        lo, hi = X_tr.min(), X_tr.max()
        X_tr, X_te = (X_tr - lo) / (hi - lo), np.clip((X_te - lo) / (hi - lo), 0.0, 1.0)
    task_classes = perm.reshape(-1, classes_per_task)
    idx = [np.flatnonzero(np.isin(y_tr, c)) for c in task_classes]
    N = max(len(i) for i in idx)
    padded = np.stack([np.resize(i, N) for i in idx])  # cycles the real rows; never sampled
    return SplitData(
        X_tr[padded].astype(np.float32),
        y_tr[padded].astype(np.int32),
        np.array([len(i) for i in idx], np.int32),
        X_te.astype(np.float32),
        y_te.astype(np.int32),
        task_classes.astype(np.int32),
        K,
        shape,
        name,
    )


def cumulative(split: SplitData) -> SplitData:
    """The joint-training view: task t's data becomes the union of tasks 0..t."""
    T = len(split.n_tasks)
    rows = [
        np.concatenate([split.X_tasks[s, : split.n_tasks[s]] for s in range(t + 1)])
        for t in range(T)
    ]
    labels = [
        np.concatenate([split.y_tasks[s, : split.n_tasks[s]] for s in range(t + 1)])
        for t in range(T)
    ]
    N = max(len(r) for r in rows)
    X = np.stack([np.resize(r, (N, r.shape[1])) for r in rows])
    y = np.stack([np.resize(lab, N) for lab in labels])
    return split._replace(
        X_tasks=X.astype(np.float32),
        y_tasks=y.astype(np.int32),
        n_tasks=np.array([len(r) for r in rows], np.int32),
    )


class TaskArrays(NamedTuple):
    """The arrays of a :class:`SplitData` as a pytree: passed to a run as an *argument* (closing
    over them would make them XLA constants, which compile very slowly)."""

    X_tasks: Array
    y_tasks: Array
    n_tasks: Array
    X_test: Array
    y_test: Array


def task_arrays(split: SplitData) -> TaskArrays:
    return TaskArrays(*(jnp.asarray(a) for a in split[:5]))


def pad_tasks(split: SplitData, N: int) -> SplitData:
    """``split`` with every task padded (by cycling its real rows) to N >= n_t rows, so splits
    of different class orders, and the :func:`cumulative` view, share one shape (one compile)."""
    if N < split.X_tasks.shape[1]:
        raise ValueError(f"pad_tasks: N={N} is below the current {split.X_tasks.shape[1]} rows")
    X = np.stack([np.resize(x[:n], (N, x.shape[1])) for x, n in zip(split.X_tasks, split.n_tasks)])
    y = np.stack([np.resize(t[:n], N) for t, n in zip(split.y_tasks, split.n_tasks)])
    return split._replace(X_tasks=X, y_tasks=y)


def class_counts(y_test: np.ndarray, n_classes: int) -> np.ndarray:
    return np.bincount(np.asarray(y_test), minlength=n_classes).astype(np.float64)
