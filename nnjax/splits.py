"""Seeded (stratified) train/test splits without scikit-learn, index for index its own.

The definition reproduced is scikit-learn's StratifiedShuffleSplit (1.9), and its ShuffleSplit
without ``stratify``, as ``train_test_split(X, y, test_size=..., random_state=seed,
stratify=y or None)`` runs them: one split drawn from ``np.random.RandomState(seed)``.
Importing scikit-learn costs about 1.3 s (``sklearn.utils`` pulls in SciPy); this module
needs NumPy alone. The equality is tested case by case in ``tests/test_splits.py``.
"""

import math
import numbers

import numpy as np


def held_out(n: int, test_size) -> int:
    """How many of ``n`` examples a split holds out: an int ``test_size`` as it is, a float
    fraction f as ``ceil(f * n)`` in float arithmetic (scikit-learn's rounding)."""
    if isinstance(test_size, numbers.Integral):
        return int(test_size)
    return math.ceil(test_size * n)


def split_indices(y, test_size, seed: int, stratify: bool = True, who: str = "split"):
    """``(train, test)`` index arrays (int64) of a seeded split of the n examples labelled y.

    ``test_size``: an int count in [1, n - 1] or a fraction in (0, 1) (:func:`held_out`);
    n_test = held_out(n, test_size), n_train = n - n_test, ``rng = RandomState(seed)``.

    - Not stratified: p = rng.permutation(n); test = p[:n_test], train = p[n_test:].
    - Stratified: the K classes of y (sorted, as ``np.unique``), with counts c_k and the
      indices I_k of class k in increasing order. Train takes m_k = mode(c, n_train) of each
      class, test t_k = mode(c - m, n_test) (:func:`_approximate_mode`, train first). Then for
      k = 0..K-1: q = I_k[rng.permutation(c_k)], train gets q[:m_k], test q[m_k : m_k + t_k];
      finally train = rng.permutation(train), test = rng.permutation(test).

    Errors (ValueError, prefixed by ``who``): n_test outside [1, n - 1]; stratified with a
    class of one example, or with either part smaller than the number of classes.
    """
    y = np.asarray(y)
    n = len(y)
    n_test = held_out(n, test_size)
    if n < 2:
        raise ValueError(f"{who}: a split needs at least 2 examples, got {n}")
    if not 1 <= n_test <= n - 1:
        raise ValueError(
            f"{who}: the test part ({test_size!r} of {n} examples) holds {n_test}; it must hold "
            f"1 to {n - 1} so that both parts have examples"
        )
    rng = np.random.RandomState(seed)
    if not stratify:
        p = rng.permutation(n)
        return p[n_test:], p[:n_test]
    return _stratified(y, n - n_test, n_test, rng, who)


def _stratified(y, n_train: int, n_test: int, rng, who: str):
    if y.dtype.kind in "fc" and not np.isfinite(y).all():
        bad = y[~np.isfinite(y)][0]
        raise ValueError(f"{who}: the labels y must be finite to stratify, got {bad}")
    if y.ndim > 2:
        raise ValueError(
            f"{who}: the labels y must be (n,) or (n, labels) to stratify, got {y.shape}"
        )
    if y.ndim == 2:  # one label per row: each distinct row is a class
        y = np.array([" ".join(row.astype("str")) for row in y])
    classes, y_indices, counts = np.unique(y, return_inverse=True, return_counts=True)
    if counts.min() < 2:
        lone = classes[counts < 2].tolist()[0]
        raise ValueError(
            f"{who}: class {lone!r} has only 1 of the {len(y)} examples; a stratified split "
            "needs at least 2 of each class"
        )
    k = len(classes)
    if n_train < k or n_test < k:
        part, size = ("test", n_test) if n_test < k else ("train", n_train)
        raise ValueError(
            f"{who}: the {part} part holds {size} of {len(y)} examples, fewer than the {k} "
            f"classes: a stratified split needs one of each; give a "
            f"{'larger' if part == 'test' else 'smaller'} test size"
        )
    members = np.split(np.argsort(y_indices, kind="stable"), np.cumsum(counts)[:-1])
    m = _approximate_mode(counts, n_train, rng)
    t = _approximate_mode(counts - m, n_test, rng)
    train, test = [], []
    for i in range(k):
        q = members[i][rng.permutation(counts[i])]
        train.extend(q[: m[i]])
        test.extend(q[m[i] : m[i] + t[i]])
    return rng.permutation(train), rng.permutation(test)


def _approximate_mode(counts: np.ndarray, n_draws: int, rng) -> np.ndarray:
    """How many of each class n_draws takes, near the mode of the multivariate
    hypergeometric: x_k = floor(c_k / sum(c) * n_draws), then one more for the classes with
    the largest remainders (largest first) until sum(x) = n_draws; a tie between more
    classes than still needed is broken by ``rng.choice(tied, need, replace=False)``."""
    continuous = counts / counts.sum() * n_draws
    floored = np.floor(continuous)
    need = int(n_draws - floored.sum())
    remainder = continuous - floored
    for value in np.unique(remainder)[::-1] if need > 0 else ():
        (tied,) = np.nonzero(remainder == value)
        take = min(len(tied), need)
        floored[rng.choice(tied, size=take, replace=False)] += 1
        need -= take
        if need == 0:
            break
    return floored.astype(int)


def train_test_split(X, y, test_size, seed: int, stratify: bool = True, who: str = "split"):
    """``(X_train, X_test, y_train, y_test)``: the rows of X and y (NumPy arrays, or taken
    as such) at :func:`split_indices`; X and y must have the same number of rows."""
    X, y = np.asarray(X), np.asarray(y)
    if X.ndim < 1 or y.ndim < 1 or len(X) != len(y):
        raise ValueError(
            f"{who}: X and y must have one row per example, got shapes {X.shape} and {y.shape}"
        )
    train, test = split_indices(y, test_size, seed, stratify, who)
    return X[train], X[test], y[train], y[test]


def check_stratifiable(y: np.ndarray, n_held: int, what: str, names) -> None:
    """A stratified split of y that holds out n_held examples is possible: every class has
    2 examples or more, and both parts can hold one of each class."""
    counts = np.bincount(y, minlength=len(names))
    present = np.flatnonzero(counts)
    single = present[counts[present] < 2]
    n, k = len(y), len(present)
    if len(single):
        raise ValueError(
            f"{what}: class {names[single[0]]!r} has only 1 of the {n} examples left to split; "
            "a stratified split needs at least 2 of each class"
        )
    if n_held < k or n - n_held < k:
        part, size = ("holds out", n_held) if n_held < k else ("leaves", n - n_held)
        raise ValueError(
            f"{what} {part} {size} of {n} examples, fewer than the {k} classes: a stratified "
            f"split needs one of each; give a {'larger' if n_held < k else 'smaller'} fraction"
        )
