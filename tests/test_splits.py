"""nnjax.splits and the digits reader against scikit-learn, their definition: the same
indices for every split (stratified or not, ties in the class counts, int and float test
sizes, seeds 0..50), the same arrays from ``load`` / ``load_splits`` / ``split_own`` as the
former code that called scikit-learn, and no scikit-learn import on the way."""

import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split as sk_split

from nnjax import data, splits
from nnjax.standardizer import Standardizer, standardize

ROOT = Path(__file__).resolve().parent.parent
SIZES = [0.1, 0.15, 0.2, 0.25, 1 / 3, 0.4, 0.5]


def _labels(rs, n: int, k: int, shape: str) -> np.ndarray:
    """n labels of k classes: balanced (counts differ by at most 1, so ties), equal counts
    (all tied), or very imbalanced (one class takes all but 2 of each other class)."""
    if shape == "balanced":
        y = np.arange(n) % k
    elif shape == "tied":
        y = np.repeat(np.arange(k), n // k)
    else:
        y = np.concatenate([np.zeros(n - 2 * (k - 1), int), np.repeat(np.arange(1, k), 2)])
    return rs.permutation(y)


def _cases():
    """(y, test_size, seed) over n in 4..2000, 2..12 classes, three shapes, float and int sizes."""
    rs = np.random.RandomState(0)
    for n in (4, 5, 7, 12, 30, 61, 150, 499, 2000):
        for k in sorted({2, 3, min(12, n // 2), 12} & set(range(2, n // 2 + 1))):
            for shape in ("balanced", "tied", "imbalanced"):
                y = _labels(rs, n, k, shape)
                for _ in range(8):
                    size = float(rs.choice(SIZES)) if rs.rand() < 0.7 else int(rs.randint(1, n))
                    yield y, size, int(rs.randint(0, 51))


def _same_as_sklearn(y, size, seed, stratify) -> bool:
    """Both refuse, or both give the same rows of X (n, 2) and y, dtypes included."""
    X = np.arange(2 * len(y)).reshape(-1, 2)
    try:
        ours = splits.train_test_split(X, y, size, seed, stratify)
    except ValueError:
        ours = None
    try:
        theirs = sk_split(X, y, test_size=size, random_state=seed, stratify=y if stratify else None)
    except ValueError:
        return ours is None
    same = [np.array_equal(a, b) and a.dtype == b.dtype for a, b in zip(ours or [], theirs)]
    return ours is not None and all(same)


@pytest.mark.parametrize("stratify", [True, False])
def test_splits_equal_sklearn_index_for_index(stratify):
    cases = list(_cases())
    wrong = [(len(y), np.bincount(y).tolist(), size, seed) for y, size, seed in cases
             if not _same_as_sklearn(y, size, seed, stratify)]  # fmt: skip
    assert len(cases) > 250 and not wrong, wrong[:5]


def test_every_seed_0_to_50_and_fraction_on_ties_equals_sklearn():
    """Counts 7, 7, 7, 5 (ties) and 10 balanced classes of 103: the remainders tie, so the
    extra examples go by rng.choice, drawn as scikit-learn draws them."""
    tied = np.repeat(np.arange(4), [7, 7, 7, 5])
    balanced = np.arange(103) % 10
    for y in (tied, balanced):
        for seed in range(51):
            for size in (0.1, 0.3, 0.5, 11):
                assert _same_as_sklearn(y, size, seed, True), (len(y), seed, size)
    # the ties are really broken by the seed: class counts in the test part differ
    drawn = {tuple(np.bincount(splits.train_test_split(tied, tied, 5, s)[3])) for s in range(20)}
    assert len(drawn) > 1


def test_labels_of_any_kind_equal_sklearn():
    """Classes are the sorted distinct labels: strings, sparse ints, floats, rows of 2-D y."""
    rs = np.random.RandomState(1)
    y = rs.permutation(np.arange(60) % 4)
    for labels in (np.array(["b", "a", "c", "d"])[y], y * 7 - 3, y * 0.5, np.eye(4)[y]):
        for seed in (0, 5):
            assert _same_as_sklearn(labels, 0.25, seed, True)
            assert _same_as_sklearn(labels, 0.25, seed, False)


def test_held_out_rounds_as_sklearn():
    assert splits.held_out(100, 0.07) == 8  # 0.07 * 100 = 7.000000000000001 in floats
    assert len(sk_split(np.arange(100), test_size=0.07, random_state=0)[1]) == 8
    assert _same_as_sklearn(np.arange(100) % 4, 0.07, 0, True)
    assert splits.held_out(1797, 0.2) == 360 and splits.held_out(50, 7) == 7


def test_digits_equals_load_digits_dtype_too():
    X, y = data.digits()
    d = load_digits()
    assert np.array_equal(X, d.data) and X.dtype == d.data.dtype == np.float64
    assert np.array_equal(y, d.target) and y.dtype == d.target.dtype


def test_digits_falls_back_to_load_digits_without_the_file(monkeypatch):
    monkeypatch.setattr(data.importlib.util, "find_spec", lambda name: None)
    X, y = data.digits()
    assert np.array_equal(X, load_digits().data) and np.array_equal(y, load_digits().target)


def _old_load(seed, fraction, standardized=True):
    """load('digits') as the former code made it: scikit-learn's reader and split."""
    X, y = load_digits(return_X_y=True)
    X, y = np.asarray(X, np.float32), np.asarray(y, np.int32)
    X_tr, X_te, y_tr, y_te = sk_split(X, y, test_size=fraction, random_state=seed, stratify=y)
    if standardized:
        X_tr, X_te = standardize(X_tr, X_te)
    return X_tr.astype(np.float32), y_tr, X_te.astype(np.float32), y_te


@pytest.mark.parametrize("seed, fraction", [(0, 0.2), (3, 0.1), (17, 0.35), (50, 0.5)])
def test_load_digits_equals_the_former_sklearn_split(seed, fraction):
    ds = data.load("digits", seed=seed, test_fraction=fraction)
    for a, b in zip(ds[:4], _old_load(seed, fraction)):
        assert a.dtype == b.dtype and np.array_equal(a, b)
    assert ds.n_classes == 10


@pytest.mark.parametrize("seed, test, val", [(0, None, 0.1), (7, 0.3, 0.25), (42, 0.15, 0.05)])
def test_load_splits_with_validation_equals_the_former_sklearn_splits(seed, test, val):
    got = data.load_splits("digits", seed=seed, test_fraction=test, val_fraction=val)
    X_tr, y_tr, X_te, y_te = _old_load(seed, test or 0.2, standardized=False)
    n_val = math.ceil(val * 1797)
    X_fit, X_val, y_fit, y_val = sk_split(
        X_tr, y_tr, test_size=n_val, random_state=seed, stratify=y_tr
    )
    s = Standardizer.fit(X_fit)
    want = [s.transform(X_fit), y_fit, s.transform(X_val), y_val, s.transform(X_te), y_te]
    for a, b in zip(got[:6], want):
        assert np.array_equal(a, np.asarray(b, a.dtype))


def test_split_own_equals_the_former_sklearn_splits():
    rs = np.random.RandomState(2)
    X, y = rs.standard_normal((97, 3)), rs.permutation(np.arange(97) % 3).astype(np.int32)
    got = data.split_own(X, y, ("a", "b", "c"), name="own", seed=9, test_fraction=0.3,
                         val_fraction=0.2)  # fmt: skip
    X_tr, X_te, y_tr, y_te = sk_split(X, y, test_size=30, random_state=9, stratify=y)
    X_fit, X_val, y_fit, y_val = sk_split(X_tr, y_tr, test_size=20, random_state=9, stratify=y_tr)
    for a, b in zip(got[:6], [X_fit, y_fit, X_val, y_val, X_te, y_te]):
        assert a.shape == b.shape
    for a, b in zip(got[1:6:2], [y_fit, y_val, y_te]):
        assert np.array_equal(a, b)
    s = Standardizer.fit(X_fit)
    assert np.array_equal(got.X_val, s.transform(X_val).astype(np.float32))


X10, Y10 = np.arange(20.0).reshape(10, 2), np.arange(10) % 2


@pytest.mark.parametrize(
    "args, kwargs, message",
    [
        # scikit-learn's "The least populated classes in y have only 1 member"
        ((X10, np.r_[Y10[:9], 2], 0.4), {}, r"train_test_split: class 2 has only 1 of the 10"),
        # "The test_size = 1 should be greater or equal to the number of classes = 2"
        ((X10, Y10, 0.05), {}, r"train_test_split: the test part holds 1 of 10 .* 2 classes"),
        ((X10, Y10, 0.9), {}, r"train_test_split: the train part holds 1 of 10 .* 2 classes"),
        # "With n_samples=10, test_size=0.95 ... the resulting train set will be empty"
        ((X10, Y10, 0.95), {"stratify": False}, r"train_test_split: .*holds 10; it must hold 1"),
        # "Found input variables with inconsistent numbers of samples: [10, 8]"
        ((X10, Y10[:8], 0.2), {}, r"train_test_split: X and y must have one row per example"),
        # "Input y contains NaN."
        ((X10, np.r_[Y10[:9], np.nan], 0.4), {}, r"train_test_split: the labels y must be finite"),
        ((X10[:1], Y10[:1], 0.5), {}, r"train_test_split: a split needs at least 2 examples"),
        # "Found array with dim 3. None expected <= 2."
        ((X10, np.zeros((10, 1, 1)), 0.5), {}, r"train_test_split: the labels y must be \(n,\)"),
    ],
)
def test_impossible_splits_are_nnjax_errors_naming_the_cause(args, kwargs, message):
    with pytest.raises(ValueError, match=message):
        data.train_test_split(*args, **kwargs)


def _python(code: str, cwd) -> str:
    """Run ``code`` in a fresh interpreter; its last stdout line."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout.strip().splitlines()[-1]


def test_loading_and_splitting_digits_imports_no_sklearn(tmp_path):
    code = (
        "import sys\nimport nnjax.data as d\nd.load('digits')\n"
        "d.load_splits('digits', seed=3, val_fraction=0.1)\nprint('sklearn' in sys.modules)"
    )
    assert _python(code, tmp_path) == "False"


def test_nnjax_train_imports_no_sklearn(tmp_path):
    code = (
        "import contextlib, io, sys\nfrom nnjax.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    assert main(['train', '--epochs', '1', '--val-split', '0.1', '--no-cache']) == 0\n"
        "print('sklearn' in sys.modules, 'scipy' in sys.modules)"
    )
    assert _python(code, tmp_path) == "False False"
