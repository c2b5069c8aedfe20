"""Built-in datasets: shapes, seeds, splits and standardisation; no download."""

# ruff: noqa: NPY002  (the global RNG is the point of the mnist1d test)

import numpy as np
import pytest

import nnjax
from nnjax import data


def test_seed_toy_data():
    X, y = data.toy()
    np.testing.assert_array_equal(X[:, 0], np.arange(6))
    np.testing.assert_array_equal(y, [0, 0, 0, 1, 1, 1])


@pytest.mark.parametrize(
    "name, n_features, n_classes",
    [("xor", 2, 2), ("moons", 2, 2), ("spirals", 2, 3), ("digits", 64, 10), ("toy", 1, 2)],
)
def test_load_shapes_dtypes_and_classes(name, n_features, n_classes):
    ds = data.load(name)
    assert ds.X_train.dtype == np.float32 and ds.y_train.dtype == np.int32
    assert ds.X_train.shape[1] == ds.X_test.shape[1] == n_features
    assert ds.n_classes == n_classes
    assert set(np.unique(ds.y_train)) == set(range(n_classes))


def test_split_is_seeded_and_standardised_on_train_statistics():
    a, b, c = data.load("moons", seed=0), data.load("moons", seed=0), data.load("moons", seed=1)
    np.testing.assert_array_equal(a.X_train, b.X_train)
    assert not np.array_equal(a.X_train, c.X_train)
    np.testing.assert_allclose(a.X_train.mean(0), 0, atol=1e-6)
    np.testing.assert_allclose(a.X_train.std(0), 1, atol=1e-5)


def test_standardize_leaves_constant_features_centred_not_blown_up():
    tr = np.array([[1.0, 5.0], [3.0, 5.0]])
    te = np.array([[2.0, 6.0]])
    tr_s, te_s = data.standardize(tr, te)
    np.testing.assert_allclose(te_s, [[0.0, 1.0]])
    np.testing.assert_allclose(tr_s[:, 1], 0.0)


def test_mnist1d_is_generated_locally_and_restores_numpy_global_rng():
    np.random.seed(123)
    expected = np.random.random()
    np.random.seed(123)
    X, y = data.mnist1d(n=200, seed=0)
    assert np.random.random() == expected
    assert X.shape == (200, 40) and set(np.unique(y)) <= set(range(10))


def test_batches_drop_the_last_partial_batch():
    X, y = np.arange(10)[:, None], np.arange(10)
    sizes = [len(b[0]) for b in data.batches(X, y, 4)]
    assert sizes == [4, 4]
    assert [len(b[0]) for b in data.batches(X, y, 4, drop_last=False)] == [4, 4, 2]


def test_unknown_dataset_lists_valid_names():
    with pytest.raises(ValueError, match="unknown dataset 'mnist'.*digits"):
        nnjax.data.load("mnist")


def test_mnist1d_canonical_split_is_the_packages_4000_1000_with_its_published_numbers():
    # The numbers below were read from the published mnist1d_data.pkl of
    # github.com/greydanus/mnist1d (the data of the paper's table), which
    # make_dataset(get_dataset_args()) reproduces to 1e-15.
    ds = data.load("mnist1d", standardized=False)
    assert ds.X_train.shape == (4000, 40) and ds.X_test.shape == (1000, 40)
    assert ds.X_train.dtype == np.float32 and ds.y_train.dtype == np.int32 and ds.n_classes == 10
    np.testing.assert_allclose(
        ds.X_train[0, :4], [-0.33200567, -0.47191037, -0.77869708, -1.00974083], rtol=1e-6
    )
    np.testing.assert_array_equal(ds.y_train[:10], [2, 6, 4, 5, 6, 6, 6, 0, 3, 1])
    np.testing.assert_array_equal(ds.y_test[:10], [2, 6, 3, 9, 4, 3, 1, 9, 5, 2])
    np.testing.assert_array_equal(
        np.bincount(ds.y_train), [398, 396, 411, 394, 394, 402, 401, 404, 402, 398]
    )
    X_tr, y_tr, X_te, y_te = data.mnist1d_canonical()
    np.testing.assert_array_equal(X_tr.astype(np.float32), ds.X_train)
    assert data.load("mnist1d", seed=5, standardized=False).y_train.tolist() == y_tr.tolist()
    X_tr[:] = 0.0  # a copy: the cached arrays are not touched
    assert data.mnist1d_canonical()[0].any()


def test_mnist1d_canonical_standardises_on_train_and_refuses_a_test_fraction():
    ds = data.load("mnist1d")
    np.testing.assert_allclose(ds.X_train.mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(ds.X_train.std(0), 1, atol=1e-4)
    with pytest.raises(ValueError, match="canonical split is fixed .* canonical=False"):
        data.load("mnist1d", test_fraction=0.3)
    old = data.load("mnist1d", canonical=False, test_fraction=0.25)
    assert old.X_train.shape == (3000, 40) and old.X_test.shape == (1000, 40)


def test_spirals_make_exactly_n_points():
    """spirals(n=10) made 9 points and spirals(n=2) none."""
    X, y = data.spirals(n=10)
    assert X.shape == (10, 2) and np.bincount(y).tolist() == [4, 3, 3]
    X600, y600 = data.spirals()
    assert np.bincount(y600).tolist() == [200, 200, 200]


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: data.spirals(n=2), "spirals: n must be an int >= 6, got 2"),
        (lambda: data.spirals(n_classes=0), "spirals: n_classes must be an int >= 1, got 0"),
        (lambda: data.mnist1d(n=12), "mnist1d: n must be a multiple of 10"),
        (lambda: data.load("spirals", seed=-1), r"load: seed must be an int in \[0, 2\*\*32\)"),
        (lambda: data.load("moons", seed=0.5), r"load: seed must be an int"),
        (lambda: data.load("xor", test_fraction=-1.0), r"test_fraction must be in \(0, 1\)"),
        (
            lambda: data.load("moons", test_fraction=0.001),
            r"load\('moons'\): the test split \(0.001\) holds out 1 of 400 examples",
        ),
        (lambda: data.load("moons", test_fraction=0.999), "leaves 0 of 400 examples"),
        (
            lambda: list(data.batches(np.zeros((5, 2)), np.zeros(5), 7)),
            r"batch_size must be in \[1, 5\] for 5 examples, got 7",
        ),
        (
            lambda: list(data.batches(np.zeros((5, 2)), np.zeros(5), 0)),
            "batches: batch_size must be an int >= 1, got 0",
        ),
        (
            lambda: data.split_own(
                np.zeros((6, 2)), np.array([0, 0, 0, 2, 2, 2]), ("a", "b"), name="own"
            ),
            r"own: class indices must be in \[0, 2\) for 2 label names, got 0 to 2",
        ),
    ],
)
def test_data_arguments_out_of_range_are_named(call, message):
    """Each gave fewer points, nothing, sklearn's or NumPy's message, or was taken silently."""
    with pytest.raises(ValueError, match=message):
        call()


def test_standardize_of_huge_float32_values_is_finite_and_exact():
    """The float32 variance of +-1e30 overflowed: the values came out [0, -0] (or nan)."""
    X = np.array([[1e30], [-1e30]], np.float32)
    np.testing.assert_array_equal(data.standardize(X)[0].ravel(), [1.0, -1.0])
    same = np.array([[3e38], [3e38]], np.float32)
    np.testing.assert_array_equal(data.standardize(same)[0].ravel(), [0.0, 0.0])


def test_numpy_fractions_and_batches_arguments_are_checked_by_name():
    """review: load(test_fraction=np.float32(0.25)) ended in scikit-learn's
    InvalidParameterError; batches(X, y[:5], 2) raised IndexError midway, after yielding
    batches, and a seed of -1 NumPy's 'expected non-negative integer'."""
    from nnjax import data

    a = data.load("moons", test_fraction=np.float32(0.25), seed=np.int64(3))
    b = data.load("moons", test_fraction=0.25, seed=3)
    assert a.X_test.shape == (100, 2)  # ceil(0.25 * 400)
    np.testing.assert_array_equal(a.X_test, b.X_test)
    with pytest.raises(ValueError, match=r"load: test_fraction must be in \(0, 1\), got '0.2'"):
        data.load("moons", test_fraction="0.2")
    with pytest.raises(ValueError, match=r"unknown dataset \['moons'\]; valid names: toy, xor"):
        data.load(["moons"])
    X, y = np.arange(20.0).reshape(10, 2), np.arange(10)
    with pytest.raises(ValueError, match=r"shapes \(10, 2\) and \(5,\)"):
        data.batches(X, y[:5], 2)  # refused at the call, before any batch
    with pytest.raises(ValueError, match=r"batches: seed must be an int in \[0, 2\*\*32\)"):
        data.batches(X, y, 2, seed=-1)
    with pytest.raises(ValueError, match="batches: drop_last must be True or False"):
        data.batches(X, y, 3, drop_last="no")
    with pytest.raises(ValueError, match=r"batches: X and y have no rows \(shapes \(0, 2\)"):
        data.batches(X[:0], y[:0], 1)  # was "batch_size must be in [1, 0]"
    got = list(data.batches(X.tolist(), y.tolist(), 4, seed=np.int64(1)))  # lists as arrays
    order = np.random.default_rng(1).permutation(10)
    assert len(got) == 2
    for i, (xb, yb) in enumerate(got):
        np.testing.assert_array_equal(yb, order[4 * i : 4 * i + 4])
        np.testing.assert_array_equal(xb, X[order[4 * i : 4 * i + 4]])
