"""Continual-learning splits: a dataset cut into tasks, as arrays a run takes.

Two scenarios (van de Ven & Tolias 2019):

* **class-incremental** (``digits``, ``mnist1d``): the 10 classes are cut, in a given class
  order, into T tasks of ``classes_per_task`` classes; a task holds only its classes'
  training examples; one shared 10-way head, no task label at test time. A test example's
  *group* is its class.
* **domain-incremental, permuted** (``permuted-digits``, ``permuted-mnist1d``): T = 5 tasks,
  each the whole 10-class training set with its input features permuted by a fixed
  permutation (task 0: the identity; tasks 1..4: permutations drawn with
  ``default_rng([order, t])``); the same 10 labels in every task, one shared head, no task
  label at test time. The test set is the test split once per task, under that task's
  permutation; a test example's *group* is its task.

Data: ``digits`` is scikit-learn's 8x8 digits / 16 with the stratified 80/20 train/test split
(seed 0); ``mnist1d`` is the canonical MNIST-1D split (:func:`nnjax.data.mnist1d_canonical`:
4000 train / 1000 test, the ``mnist1d`` package's defaults, centred signals of 40 samples)
as ON/OFF channels, x = [max(z, 0), max(-z, 0)] / max |z_train| clipped to [0, 1] (80
features, ``image_shape`` (2, 40): channel x position), like the ON and OFF cells of a
retina. Inputs lie in [0, 1] because Sleep Replay Consolidation turns them into firing
rates; a bias-free network cannot centre a signal that is all positive, so the signed signal
is split into two non-negative ones (joint training on the validation split, class order
100, 2 seeds: min-max scaling to [0, 1] reached 30% with digits' wake settings and 10% with
MNIST-1D's, ON/OFF 37% and 59%). ``validation=True`` never touches the test
split: the training split is cut again 80/20 (stratified, seed 1) and its held-out fifth
plays the test set.

Tasks have slightly different sizes, so each task's examples are padded to a common length
``N`` (by cycling its real rows); only the first ``n_t`` rows are real and a run draws its
mini-batches from those. Used by :mod:`nnjax.brain.continual`.
"""

import math
import numbers
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from nnjax import data as nndata

Array = jax.Array

SPLIT_DATASETS = ("digits", "mnist1d", "permuted-digits", "permuted-mnist1d")
VALIDATION_ORDER = 100  # the first class order used only for choosing hyperparameters
PERMUTED_TASKS = 5


class SplitData(NamedTuple):
    """A continual-learning split (module docstring).

    ``X_tasks`` (T, N, d) float32 and ``y_tasks`` (T, N) int32: each task's training examples,
    padded to N rows (only the first ``n_tasks[t]`` rows are real); ``X_test`` (M, d),
    ``y_test`` (M,) the test examples and labels, ``g_test`` (M,) their groups (class for
    class-incremental, task for permuted); ``task_classes`` (T, c) the classes of each task;
    ``task_groups`` (T, g) the groups scored as task t's (= ``task_classes`` for
    class-incremental, ``[[t]]`` for permuted); ``n_groups`` G; ``image_shape`` the shape of
    one input (``(8, 8)`` digits; ``(2, 40)`` MNIST-1D: its ON/OFF channels x 40 positions,
    d = 80); ``scenario`` ``"class"``/``"domain"``.
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
    g_test: np.ndarray
    task_groups: np.ndarray
    n_groups: int
    scenario: str


def class_order(k: int, n_classes: int = 10) -> np.ndarray:
    """Class order number ``k`` (an int >= 0, NumPy ints too): 0 is 0, 1, ..., K-1; k > 0 a
    permutation seeded by k. ``n_classes`` K an int >= 1."""
    k = _int(k, "k", "class_order", 0)
    n_classes = _int(n_classes, "n_classes", "class_order", 1)
    if k == 0:
        return np.arange(n_classes)
    return np.random.default_rng(k).permutation(n_classes)


def _int(value, name: str, where: str, minimum: int) -> int:
    """``value`` as an int when it is a Python or NumPy integer (not a bool) >= ``minimum``,
    else a ValueError naming ``where: name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{where}: {name} must be an int >= {minimum}, got {value!r}")
    return int(value)


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _raw(name: str, validation: bool):
    """(X_train, y_train, X_test, y_test, image_shape), inputs in [0, 1] (module docstring)."""
    if name == "digits":
        X, y = nndata.digits()
        X_tr, X_te, y_tr, y_te = nndata.train_test_split(X / 16.0, y, 0.2, seed=0)
        shape = (8, 8)
    else:
        X_tr, y_tr, X_te, y_te = nndata.mnist1d_canonical()
        shape = (X_tr.shape[1],)
    if validation:
        X_tr, X_te, y_tr, y_te = nndata.train_test_split(X_tr, y_tr, 0.2, seed=1)
    if name == "mnist1d":  # ON/OFF channels scaled by the training split's max |z|
        s = np.abs(X_tr).max()
        X_tr, X_te = (on_off(X, s) for X in (X_tr, X_te))
        shape = (2, shape[0])
    f32, i32 = np.float32, np.int32
    return X_tr.astype(f32), np.asarray(y_tr, i32), X_te.astype(f32), np.asarray(y_te, i32), shape


def on_off(X: np.ndarray, scale: float) -> np.ndarray:
    """(n, 2 d) ON/OFF channels of signed signals X (n, d): [max(X, 0), max(-X, 0)] / scale,
    clipped to [0, 1]; ``scale`` a finite number > 0 (0 gave 0/0 = nan for a zero sample and
    1 for every other, a negative one swapped the channels, inf zeroed both), X 2-D (a 1-D
    X failed in NumPy's concatenate, naming no argument)."""
    if (
        isinstance(scale, bool)
        or not isinstance(scale, numbers.Real)
        or not (math.isfinite(scale) and scale > 0)
    ):
        raise ValueError(f"on_off: scale must be a finite number > 0, got {scale!r}")
    X = np.asarray(X)
    if X.ndim != 2:
        raise ValueError(f"on_off: X must be 2-D (n, d) signals, got shape {X.shape}")
    return np.clip(np.concatenate([X, -X], axis=1) / scale, 0.0, 1.0)


def load_split(
    name: str = "digits",
    order: int | np.ndarray = 0,
    *,
    classes_per_task: int | None = None,
    validation: bool = False,
) -> SplitData:
    """Split ``name`` (one of :data:`SPLIT_DATASETS`) into tasks (module docstring).

    ``order``: class-incremental, an int >= 0 for :func:`class_order` or an explicit
    permutation of the classes (an integer array); permuted, an int >= 0 seeding the tasks'
    permutations (NumPy ints too). ``classes_per_task``: class-incremental only, an int that
    divides the number of classes K (None: 2, so T = K / 2 tasks); a permuted split has
    T = 5 tasks of all K classes and refuses it (a value was silently ignored there).
    ``validation`` (True or False): the held-out part of the training split as the test set
    (what hyperparameters are chosen on).
    """
    if name not in SPLIT_DATASETS:
        raise ValueError(f"load_split: unknown dataset {name!r}; valid: {SPLIT_DATASETS}")
    if not isinstance(validation, bool | np.bool_):  # "no" was truthy: the validation split
        raise ValueError(f"load_split: validation must be True or False, got {validation!r}")
    validation = bool(validation)
    if name.startswith("permuted-"):
        if classes_per_task is not None:
            raise ValueError(f"load_split: classes_per_task is for the class-incremental splits "
                             f"(digits, mnist1d); {name} has {PERMUTED_TASKS} tasks of all the "
                             f"classes, got classes_per_task={classes_per_task!r}")  # fmt: skip
        if not _is_int(order) or order < 0:
            raise ValueError(f"load_split: {name} takes an int order >= 0, got {order!r}")
        return _permuted(name, int(order), validation)
    if _is_int(order):
        _int(order, "order", "load_split", 0)
    elif np.ndim(order) != 1 or np.asarray(order).dtype.kind not in "iu":
        raise ValueError(f"load_split: order must be an int >= 0 (a class order number) or an "
                         f"integer permutation of the classes, got {order!r}")  # fmt: skip
    classes_per_task = 2 if classes_per_task is None else classes_per_task
    X_tr, y_tr, X_te, y_te, shape = _raw(name, validation)
    K = int(y_tr.max()) + 1
    perm = class_order(order, K) if _is_int(order) else np.asarray(order)
    if sorted(perm.tolist()) != list(range(K)):
        raise ValueError(f"load_split: order must be a permutation of 0..{K - 1}, got {perm}")
    if not _is_int(classes_per_task) or classes_per_task < 1 or K % classes_per_task:
        raise ValueError(f"load_split: classes_per_task must divide {K} (an int >= 1), got "
                         f"{classes_per_task!r}")  # fmt: skip
    classes_per_task = int(classes_per_task)
    task_classes = perm.reshape(-1, classes_per_task).astype(np.int32)
    idx = [np.flatnonzero(np.isin(y_tr, c)) for c in task_classes]
    N = max(len(i) for i in idx)
    padded = np.stack([np.resize(i, N) for i in idx])  # cycles the real rows; never sampled
    n = np.array([len(i) for i in idx], np.int32)
    return SplitData(
        X_tr[padded], y_tr[padded], n, X_te, y_te, task_classes, K, shape, name,
        y_te.copy(), task_classes, K, "class",
    )  # fmt: skip


def task_permutations(order: int, d: int, n_tasks: int = PERMUTED_TASKS) -> np.ndarray:
    """(T, d) feature permutations of the permuted tasks: row 0 the identity, row t > 0
    ``default_rng([order, t]).permutation(d)``. ``order`` an int >= 0, ``d`` (features) and
    ``n_tasks`` T ints >= 1 (n_tasks=0 returned the identity row, one task; a negative order
    failed in NumPy's SeedSequence, naming no argument)."""
    order = _int(order, "order", "task_permutations", 0)
    d = _int(d, "d", "task_permutations", 1)
    n_tasks = _int(n_tasks, "n_tasks", "task_permutations", 1)
    rows = [np.arange(d)] + [np.random.default_rng([order, t]).permutation(d)
                             for t in range(1, n_tasks)]  # fmt: skip
    return np.stack(rows)


def _permuted(name: str, order: int, validation: bool) -> SplitData:
    X_tr, y_tr, X_te, y_te, shape = _raw(name.removeprefix("permuted-"), validation)
    K, (n, d), M = int(y_tr.max()) + 1, X_tr.shape, len(y_te)
    perms = task_permutations(order, d)
    T = len(perms)
    return SplitData(
        np.stack([X_tr[:, p] for p in perms]),
        np.tile(y_tr, (T, 1)),
        np.full(T, n, np.int32),
        np.concatenate([X_te[:, p] for p in perms]),
        np.tile(y_te, T),
        np.tile(np.arange(K, dtype=np.int32), (T, 1)),
        K, shape, name,
        np.repeat(np.arange(T, dtype=np.int32), M),
        np.arange(T, dtype=np.int32)[:, None],
        T, "domain",
    )  # fmt: skip


def _check_task_counts(split: SplitData, where: str) -> None:
    """A ValueError naming ``where`` unless there is a task and ``split.n_tasks`` holds one int
    1 <= n_t <= N per task (N the padded rows): no task failed in max() or np.stack, an empty
    task was padded with rows of zeros labelled 0, an n_t past N counted padding as real."""
    n, (T, N) = np.asarray(split.n_tasks), split.X_tasks.shape[:2]
    if T == 0 or n.shape != (T,) or n.dtype.kind not in "iu" or not 1 <= n.min() <= n.max() <= N:
        raise ValueError(f"{where}: split.n_tasks must hold one int in [1, {N}] (the real rows "
                         f"of each task) for each of T >= 1 tasks, got T={T} and "
                         f"n_tasks={n.tolist()}")  # fmt: skip


def cumulative(split: SplitData) -> SplitData:
    """The joint-training view: task t's data becomes the union of tasks 0..t (n_t' =
    n_0 + ... + n_t real rows, padded by cycling them to the largest)."""
    _check_task_counts(split, "cumulative")
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
    g_test: Array


def task_arrays(split: SplitData) -> TaskArrays:
    return TaskArrays(*(jnp.asarray(a) for a in (*split[:5], split.g_test)))


def pad_tasks(split: SplitData, N: int) -> SplitData:
    """``split`` with every task padded (by cycling its real rows) to N >= n_t rows, so splits
    of different class orders, and the :func:`cumulative` view, share one shape (one compile)."""
    if not _is_int(N):  # 300.5 failed in np.resize, "400" in a comparison
        raise ValueError(f"pad_tasks: N must be an int (rows per task), got {N!r}")
    if N < split.X_tasks.shape[1]:
        raise ValueError(f"pad_tasks: N={N} is below the current {split.X_tasks.shape[1]} rows")
    _check_task_counts(split, "pad_tasks")
    X = np.stack([np.resize(x[:n], (N, x.shape[1])) for x, n in zip(split.X_tasks, split.n_tasks)])
    y = np.stack([np.resize(t[:n], N) for t, n in zip(split.y_tasks, split.n_tasks)])
    return split._replace(X_tasks=X, y_tasks=y)


def class_counts(y_test: np.ndarray, n_classes: int) -> np.ndarray:
    """(K,) the number of test examples of each class (float64): ``y_test`` integer labels in
    0..K-1 (a label outside would add a class or fail), ``n_classes`` K an int >= 1."""
    K = _int(n_classes, "n_classes", "class_counts", 1)
    y = np.asarray(y_test)
    if y.size and (y.dtype.kind not in "iu" or y.ndim != 1):
        raise ValueError(f"class_counts: y_test must be 1-D integer labels, got {y.dtype} of "
                         f"shape {y.shape}")  # fmt: skip
    if y.size and (y.min() < 0 or y.max() >= K):
        bad = y[(y < 0) | (y >= K)][0]
        raise ValueError(f"class_counts: y_test holds {bad}, outside the classes 0..{K - 1}")
    return np.bincount(y.astype(np.int64).ravel(), minlength=K).astype(np.float64)


def group_counts(split: SplitData) -> np.ndarray:
    """(G,) the number of test examples of each group (float64): the weights of the metrics."""
    return class_counts(split.g_test, split.n_groups)
