"""Built-in datasets, generated or shipped in a package: nothing is downloaded.

:func:`load` returns a :class:`Dataset` of NumPy arrays: ``X`` float32 (n, features), ``y``
int32 labels (n,); the generators it draws on (:func:`toy`, :func:`two_moons`, ...) return
``(X, y)`` as made, float64 and int64. Splits are seeded; standardisation uses the training
split's statistics, held as data by a :class:`Standardizer` (JSON-able, so a saved model can
re-apply it). :func:`load_splits` adds a stratified validation split; the user's own files
(CSV, ``.npz``, ``.npy``) are read by :mod:`nnjax.datafile` and split the same way by
:func:`split_own`.
"""

import functools
import gzip
import importlib.util
import os
from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from nnjax import data_checks as checks
from nnjax import splits
from nnjax.standardizer import Standardizer, standardize


class Dataset(NamedTuple):
    """A train/test split. ``X_*``: (n, features) float32; ``y_*``: (n,) int32 labels."""

    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    n_classes: int
    name: str


def toy() -> tuple[np.ndarray, np.ndarray]:
    """The seed example: X = 0..5 as a column (6, 1), y = 0,0,0,1,1,1."""
    return np.arange(6.0).reshape(6, 1), np.array([0, 0, 0, 1, 1, 1])


def xor() -> tuple[np.ndarray, np.ndarray]:
    """The four XOR points (4, 2) with labels x1 xor x2."""
    X = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    return X, np.array([0, 1, 1, 0])


def two_moons(n: int = 400, noise: float = 0.1, seed: int = 0):
    """Two interleaving half circles (scikit-learn's generator), (n, 2) and labels in {0, 1}:
    n // 2 of class 0, the rest of class 1. ``noise`` >= 0, ``seed`` in [0, 2**32)."""
    from sklearn.datasets import make_moons

    n, noise = checks.examples("two_moons", n, 2), checks.noise("two_moons", noise)
    return make_moons(n_samples=n, noise=noise, random_state=checks.seed("two_moons", seed))


def spirals(n: int = 600, n_classes: int = 3, noise: float = 0.2, seed: int = 0):
    """K = ``n_classes`` interleaved arms r = t, angle = 4t + 2 pi c / K + noise, t in [0, 1]:
    ``n`` >= 2K points (each arm has both ends; a lone point, t = 0, is the origin all arms
    share), n // K per arm, one more for the first n mod K. ``noise`` >= 0, seed in [0, 2**32)."""
    k = checks.count("spirals", "n_classes", n_classes)
    n, noise = checks.examples("spirals", n, 2, 2 * k), checks.noise("spirals", noise)
    rng = np.random.default_rng(checks.seed("spirals", seed))
    sizes = [n // k + (c < n % k) for c in range(k)]
    t = np.concatenate([np.linspace(0.0, 1.0, m) for m in sizes])
    c = np.repeat(np.arange(k), sizes)
    angle = 4.0 * t + 2.0 * np.pi * c / k + noise * rng.standard_normal(t.shape)
    X = np.stack([t * np.sin(angle), t * np.cos(angle)], axis=1)
    return X, c


def digits():
    """scikit-learn's 8x8 handwritten digits: (1797, 64) float64 in [0, 16], (1797,) int labels.
    Its ``datasets/data/digits.csv.gz`` read as ``load_digits`` reads it (64 pixels, the label
    last) without importing scikit-learn (1.3 s); by ``load_digits`` if the file is missing."""
    spec = importlib.util.find_spec("sklearn")
    folders = (spec and spec.submodule_search_locations) or []
    paths = [os.path.join(f, "datasets", "data", "digits.csv.gz") for f in folders]
    if not (paths and os.path.isfile(paths[0])):
        from sklearn.datasets import load_digits

        return load_digits(return_X_y=True)
    with gzip.open(paths[0], "rt", encoding="utf-8") as f:
        data = np.loadtxt(f, delimiter=",")
    return data[:, :-1], data[:, -1].astype(int, copy=False)


def _make_mnist1d(args) -> dict:
    """``mnist1d.make_dataset(args)``; it reseeds NumPy's global RNG, whose state is restored."""
    from mnist1d.data import make_dataset

    state = np.random.get_state()  # noqa: NPY002
    try:
        return make_dataset(args)
    finally:
        np.random.set_state(state)  # noqa: NPY002


def mnist1d(n: int = 4000, seed: int = 0):
    """MNIST-1D (40-dim signals, 10 classes), ``n`` examples generated locally by
    ``mnist1d.make_dataset`` with ``seed``, train and test parts joined: (X (n, 40), y (n,)).
    For the paper's split use :func:`mnist1d_canonical`. NumPy's global RNG is left alone.
    ``n`` is a multiple of 10 (the generator makes whole rounds of the 10 classes).
    """
    from mnist1d.data import get_dataset_args

    n = checks.examples("mnist1d", n, 40, 10)
    if n % 10:
        raise ValueError(f"mnist1d: n must be a multiple of 10 (one per class), got {n}")
    args = get_dataset_args()
    args.num_samples, args.seed = n, checks.seed("mnist1d", seed)
    d = _make_mnist1d(args)
    X = np.concatenate([d["x"], d["x_test"]])
    y = np.concatenate([d["y"], d["y_test"]])
    return X, y


@functools.cache
def _mnist1d_canonical() -> tuple[np.ndarray, ...]:
    from mnist1d.data import get_dataset_args

    d = _make_mnist1d(get_dataset_args())
    return tuple(np.asarray(d[k]) for k in ("x", "y", "x_test", "y_test"))


def mnist1d_canonical() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The canonical MNIST-1D split: (X_train (4000, 40), y_train, X_test (1000, 40), y_test).

    ``mnist1d.make_dataset`` with the package's default arguments (5000 examples, seed 42,
    ``train_split`` 0.8, the whole set centred and scaled to std 1), and the package's own
    x / x_test split. It equals the published ``mnist1d_data.pkl`` of
    github.com/greydanus/mnist1d (the data of the paper's table) to 1e-15, checked once by
    hand; nothing is downloaded. Generated once per process (a few seconds), then copied out.
    """
    return tuple(a.copy() for a in _mnist1d_canonical())


def train_test_split(X, y, test_fraction: float = 0.2, seed: int = 0, stratify: bool = True):
    """A seeded (stratified) split, scikit-learn's index for index: X_train, X_test, y_train,
    y_test; ceil(test_fraction * n) test examples in float (0.07 * 100: 8) (:mod:`nnjax.splits`)."""
    test_fraction = checks.fraction("train_test_split", "test_fraction", test_fraction)
    seed = checks.seed("train_test_split", seed)
    stratify = checks.flag("train_test_split", "stratify", stratify)
    return splits.train_test_split(X, y, test_fraction, seed, stratify, "train_test_split")


_GENERATORS: dict[str, Callable] = dict(
    toy=toy, xor=xor, moons=two_moons, spirals=spirals, digits=digits, mnist1d=mnist1d
)
NO_SPLIT = frozenset({"toy", "xor"})  # too small to split: train = validation = test points

DATASETS = tuple(_GENERATORS)


def load(
    name: str,
    *,
    seed: int = 0,
    test_fraction: float | None = None,
    standardized: bool = True,
    canonical: bool | None = None,
):
    """Load a built-in dataset by name as a :class:`Dataset` (see :data:`DATASETS`).

    The split is stratified, seeded by ``seed``, with ``test_fraction`` (default 0.2) of the
    examples in the test part, except: ``toy`` and ``xor`` are not split (test = train) and
    not standardised; ``mnist1d`` is by default (``canonical=True``) the canonical 4000 / 1000
    split of :func:`mnist1d_canonical`, which ``seed`` does not change and which takes no
    ``test_fraction``; ``canonical=False`` gives the former behaviour: 4000 examples from
    :func:`mnist1d` split 3200 / 800 by ``seed``. ``standardized``: (X - mean) / std per
    feature with the training part's statistics (:func:`standardize`). Flags must be True or
    False; ``test_fraction`` (toy, xor) and ``canonical`` (all but mnist1d) are refused.
    """
    if not isinstance(name, str) or name not in _GENERATORS:
        raise ValueError(f"unknown dataset {name!r}; valid names: {', '.join(DATASETS)}")
    seed = checks.seed("load", seed)
    if test_fraction is not None:
        test_fraction = checks.fraction("load", "test_fraction", test_fraction)
    standardized = checks.flag("load", "standardized", standardized)
    canonical = None if canonical is None else checks.flag("load", "canonical", canonical)
    if name in NO_SPLIT and test_fraction is not None:
        raise ValueError(
            f"load: dataset {name!r} is not split (test = train) and takes no test_fraction "
            "(moons, spirals, digits and mnist1d with canonical=False do)"
        )
    if canonical is not None and name != "mnist1d":
        raise ValueError(
            f"load: dataset {name!r} takes no canonical (only mnist1d has a canonical split); "
            "it takes seed, standardized" + (", test_fraction" if name not in NO_SPLIT else "")
        )
    if name == "mnist1d" and canonical is not False:
        if test_fraction is not None:
            raise ValueError(
                "mnist1d's canonical split is fixed (4000 train / 1000 test) and takes no "
                f"test_fraction (got {test_fraction}); pass canonical=False to split it yourself"
            )
        X_tr, y_tr, X_te, y_te = mnist1d_canonical()
        return _finish(name, X_tr, y_tr.astype(np.int32), X_te, y_te.astype(np.int32), standardized)
    test_fraction = 0.2 if test_fraction is None else test_fraction
    gen = _GENERATORS[name]
    X, y = gen(seed=seed) if name in ("moons", "spirals", "mnist1d") else gen()
    X, y = np.asarray(X, np.float32), np.asarray(y, np.int32)
    n_classes = int(y.max()) + 1
    if name in NO_SPLIT:
        return Dataset(X, y, X, y, n_classes, name)
    n_test = splits.held_out(len(y), test_fraction)
    splits.check_stratifiable(
        y, n_test, f"load({name!r}): the test split ({test_fraction:g})", range(n_classes)
    )
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_fraction, seed)
    return _finish(name, X_tr, y_tr, X_te, y_te, standardized)


def _finish(name, X_tr, y_tr, X_te, y_te, standardized) -> Dataset:
    if standardized:
        X_tr, X_te = standardize(X_tr, X_te)
    n_classes = int(max(y_tr.max(), y_te.max())) + 1
    return Dataset(X_tr.astype(np.float32), y_tr, X_te.astype(np.float32), y_te, n_classes, name)


def batches(X, y, batch_size: int, *, seed: int | None = None, drop_last: bool = True):
    """Yield (x, y) mini-batches in order or, with ``seed``, in a seeded random order.

    The last partial batch is dropped unless ``drop_last=False``. ``batch_size`` is an int
    in [1, len(X)] (a larger one would yield nothing with ``drop_last``); X and y (arrays,
    or lists: taken as arrays) must have the same number of rows; ``seed`` an int in
    [0, 2**32) or None. A ``ValueError`` names a bad argument, before the first batch.
    """
    X, y, batch_size, seed = _check_batches(X, y, batch_size, seed, drop_last)
    return _batches(X, y, batch_size, seed, drop_last)


def _check_batches(X, y, batch_size, seed, drop_last):
    X, y = np.asarray(X), np.asarray(y)
    if X.ndim < 1 or y.ndim < 1 or len(X) != len(y):
        raise ValueError(
            f"batches: X and y must have one row per example, got shapes {X.shape} and {y.shape}"
        )
    n = len(X)
    if not n:  # "batch_size must be in [1, 0]" before
        raise ValueError(f"batches: X and y have no rows (shapes {X.shape} and {y.shape})")
    batch_size = checks.count("batches", "batch_size", batch_size)
    if batch_size > n:
        raise ValueError(
            f"batches: batch_size must be in [1, {n}] for {n} examples, got {batch_size}"
        )
    checks.flag("batches", "drop_last", drop_last)
    return X, y, batch_size, None if seed is None else checks.seed("batches", seed)


def _batches(X, y, batch_size: int, seed: int | None, drop_last: bool):
    n = len(X)
    order = np.arange(n) if seed is None else np.random.default_rng(seed).permutation(n)
    stop = n - n % batch_size if drop_last else n
    for i in range(0, stop, batch_size):
        idx = order[i : i + batch_size]
        yield X[idx], y[idx]


class DataSplits(NamedTuple):
    """Train / validation / test splits, standardised with the training split's statistics.

    ``X_*``: (n_*, features) float32; ``y_*``: (n_*,) int32 class indices in
    [0, n_classes); ``X_val`` and ``y_val`` are None without a validation split.
    ``label_names[k]`` is class k's original label (an int or a str);
    ``standardizer`` holds the statistics applied (the identity for toy and xor, used raw);
    ``feature_names`` are a CSV file's column names, or None.
    """

    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray | None
    y_val: np.ndarray | None
    X_test: np.ndarray
    y_test: np.ndarray
    n_classes: int
    name: str
    label_names: tuple
    standardizer: Standardizer
    feature_names: tuple[str, ...] | None = None


def load_splits(
    name: str, *, seed: int = 0, test_fraction: float | None = None, val_fraction: float = 0.0
) -> DataSplits:
    """A built-in dataset as :class:`DataSplits`, stratified, seeded by ``seed`` only.

    The test split is :func:`load`'s (``test_fraction`` None: load's default, 0.2), and
    without a validation split the arrays are exactly load's. ``val_fraction`` (a fraction
    of the whole dataset, taken from load's training split) holds a stratified validation
    split out before the statistics are fitted; val_fraction + test_fraction < 1. ``toy`` and
    ``xor`` are neither split (test = train) nor standardised.
    """
    if test_fraction is not None:  # both fractions checked before the data are made
        test_fraction = checks.fraction("load_splits", "test_fraction", test_fraction)
    unsplit = isinstance(name, str) and name in NO_SPLIT
    test = 0.0 if unsplit else (0.2 if test_fraction is None else test_fraction)
    val_fraction = checks.val_fraction_below("load_splits", val_fraction, test)
    given = {} if test_fraction is None else {"test_fraction": test_fraction}
    ds = load(name, seed=seed, standardized=False, **given)
    names = tuple(range(ds.n_classes))
    if name in NO_SPLIT:
        if val_fraction:
            raise ValueError(
                f"{name} has {len(ds.y_train)} examples and is not split (test = train): "
                "no validation split"
            )
        identity = Standardizer.identity(ds.X_train.shape[1])
        return DataSplits(
            ds.X_train, ds.y_train, None, None, ds.X_test, ds.y_test, ds.n_classes, name, names,
            identity,
        )  # fmt: skip
    n_total = len(ds.y_train) + len(ds.y_test)
    parts = _hold_out_validation(ds.X_train, ds.y_train, n_total, val_fraction, seed, names, name)
    return _standardized(*parts, ds.X_test, ds.y_test, name=name, label_names=names)


def split_own(
    X: np.ndarray,
    y: np.ndarray,
    label_names: tuple,
    *,
    name: str,
    seed: int = 0,
    test_fraction: float = 0.2,
    val_fraction: float = 0.0,
    feature_names: tuple[str, ...] | None = None,
) -> DataSplits:
    """The user's data X (n, features), y (n,) class indices as :class:`DataSplits`.

    Stratified splits, seeded by ``seed``: ``ceil(test_fraction * n)`` test examples, then
    ``ceil(val_fraction * n)`` from the rest (float products: 0.07 * 100 holds out 8, as in
    scikit-learn); the standardisation statistics come from the training split alone.
    """
    test_fraction = checks.fraction(name, "test_fraction", test_fraction)
    val_fraction = checks.val_fraction_below(name, val_fraction, test_fraction)
    seed, y = checks.seed(name, seed), _class_indices(name, X, y, len(label_names))
    n_test = splits.held_out(len(y), test_fraction)
    splits.check_stratifiable(y, n_test, f"{name}: the test split ({test_fraction:g})", label_names)
    X_tr, X_te, y_tr, y_te = splits.train_test_split(X, y, n_test, seed, who=name)
    parts = _hold_out_validation(X_tr, y_tr, len(y), val_fraction, seed, label_names, name)
    return _standardized(
        *parts, X_te, y_te, name=name, label_names=label_names, feature_names=feature_names
    )


def _class_indices(name: str, X, y, k: int) -> np.ndarray:
    """``y`` as (n,) int32 class indices in [0, k), one per row of X (n >= 1)."""
    y, n = np.asarray(y), (np.shape(X) or (None,))[0]
    if y.ndim != 1 or y.dtype.kind not in "biu" or len(y) != n or not n:
        raise ValueError(
            f"{name}: y must be (n,) integer class indices, one per row of X (n >= 1); got "
            f"shape {y.shape}, dtype {y.dtype} for X of shape {np.shape(X)}"
        )
    if y.min() < 0 or y.max() >= k:
        raise ValueError(
            f"{name}: class indices must be in [0, {k}) for {k} label names, got "
            f"{int(y.min())} to {int(y.max())}"
        )
    return y.astype(np.int32)


def _hold_out_validation(X, y, n_total: int, val_fraction: float, seed: int, names, name: str):
    """(X_train, y_train, X_val, y_val): ceil(val_fraction * n_total) examples of (X, y)
    held out, stratified; (X, y, None, None) for val_fraction 0 (checked by the callers)."""
    if not val_fraction:
        return X, y, None, None
    n_val = splits.held_out(n_total, val_fraction)
    splits.check_stratifiable(y, n_val, f"{name}: the validation split ({val_fraction:g})", names)
    X_tr, X_val, y_tr, y_val = splits.train_test_split(X, y, n_val, seed, who=name)
    return X_tr, y_tr, X_val, y_val


def _standardized(X_tr, y_tr, X_val, y_val, X_te, y_te, *, name, label_names, feature_names=None):
    """DataSplits with every X standardised by the training split's statistics."""
    s = Standardizer.fit(X_tr)

    def f(X):
        return None if X is None else s.transform(X).astype(np.float32)

    return DataSplits(
        f(X_tr), y_tr, f(X_val), y_val, f(X_te), y_te, len(label_names), name,
        tuple(label_names), s, feature_names,
    )  # fmt: skip
