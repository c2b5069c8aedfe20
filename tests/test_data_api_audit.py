"""An audit of nnjax.data's Python API on legal-but-odd arguments: each test names what the
old code did (a silent wrong number, another library's message, a MemoryError)."""

import json

import numpy as np
import pytest

from nnjax import data, datafile
from nnjax.inputs import read_inputs


@pytest.mark.parametrize(
    "call, message",
    [
        # make_moons' own messages named n_samples and random_state, not n and seed
        (lambda: data.two_moons(n=0), "two_moons: n must be an int >= 1, got 0"),
        (lambda: data.two_moons(n=True), "two_moons: n must be an int >= 1, got True"),
        (lambda: data.two_moons(seed=-1), r"two_moons: seed must be an int in \[0, 2\*\*32\)"),
        (lambda: data.two_moons(noise=-1.0), "two_moons: noise must be a finite number >= 0"),
        # spirals: a nan noise made every point nan, a text one a UFuncTypeError
        (lambda: data.spirals(noise=float("nan")), "spirals: noise must be a finite number"),
        (lambda: data.spirals(noise="0.2"), "spirals: noise must be a finite number"),
        (lambda: data.spirals(noise=-0.2), "spirals: noise must be a finite number >= 0"),
        # spirals asked NumPy for 2.4 TiB (MemoryError); moons and mnist1d alike
        (lambda: data.spirals(n=10**12), r"spirals: n must be an int in \[6, 67108864\]"),
        (lambda: data.two_moons(n=10**12), r"two_moons: n must be an int in \[1, 67108864\]"),
        (lambda: data.mnist1d(n=10**10), r"mnist1d: n must be an int in \[10, 3355443\]"),
    ],
)
def test_generator_arguments_are_checked_by_name(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_two_moons_refuses_an_unseeded_call_and_takes_numpy_ints():
    """seed=None was passed on to make_moons: different data on every call."""
    with pytest.raises(ValueError, match=r"two_moons: seed must be an int .*, got None"):
        data.two_moons(seed=None)
    X, y = data.two_moons(n=np.int64(5), noise=0, seed=np.uint32(3))
    assert X.shape == (5, 2) and np.bincount(y).tolist() == [2, 3]
    np.testing.assert_array_equal(X, data.two_moons(n=5, noise=0.0, seed=3)[0])
    assert data.spirals(n=6, noise=np.float32(0.0))[0].shape == (6, 2)


X10 = np.arange(20.0).reshape(10, 2)
Y10 = np.arange(10) % 2


@pytest.mark.parametrize(
    "call, message",
    [
        # seed None split differently on every call; -1 was sklearn's random_state message
        (
            lambda: data.train_test_split(X10, Y10, 0.4, seed=None),
            r"train_test_split: seed must be an int in \[0, 2\*\*32\), got None",
        ),
        (
            lambda: data.train_test_split(X10, Y10, 0.4, stratify="no"),
            "train_test_split: stratify must be True or False",
        ),
        (
            lambda: data.split_own(X10, Y10, (0, 1), name="own", seed=None),
            r"own: seed must be an int in \[0, 2\*\*32\), got None",
        ),
        (
            lambda: data.split_own(X10, Y10, (0, 1), name="own", seed=-1),
            r"own: seed must be an int in \[0, 2\*\*32\), got -1",
        ),
        # float labels: "Cannot cast array data from dtype('float64')"; (n, 1): "object too
        # deep for desired array"; 8 labels for 10 rows: sklearn's inconsistent numbers
        (
            lambda: data.split_own(X10, Y10 * 0.5, (0, 1), name="own"),
            r"own: y must be \(n,\) integer class indices.*dtype float64",
        ),
        (
            lambda: data.split_own(X10, Y10[:, None], (0, 1), name="own"),
            r"own: y must be \(n,\) integer class indices.*shape \(10, 1\)",
        ),
        (
            lambda: data.split_own(X10, Y10[:8], (0, 1), name="own"),
            r"own: y must be .* one per row of X.*shape \(8,\).*X of shape \(10, 2\)",
        ),
        (
            lambda: data.split_own(X10[:0], Y10[:0], (0, 1), name="own"),
            r"own: y must be .*\(n >= 1\)",
        ),
    ],
)
def test_split_arguments_are_checked_by_name(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_split_own_gives_int32_labels_as_documented():
    """An int64 y came back int64 (DataSplits: y_* int32)."""
    ds = data.split_own(X10, Y10.astype(np.int64), (0, 1), name="own", val_fraction=0.2)
    assert ds.y_train.dtype == ds.y_val.dtype == ds.y_test.dtype == np.int32
    same = data.split_own(X10, Y10.astype(np.int32), (0, 1), name="own", val_fraction=0.2)
    for a, b in zip(ds[:6], same[:6]):
        assert a.tobytes() == b.tobytes()


def test_standardizer_of_float64_values_near_the_maximum_is_finite():
    """The float64 sum of 1e308 + 1e308 overflowed: mean inf, every value -inf or nan."""
    X = np.array([[1e308], [1e308], [-1e308]])
    s = data.Standardizer.fit(X)
    assert np.isfinite(s.mean).all() and np.isfinite(s.std).all()
    np.testing.assert_allclose(s.mean, [1e308 / 3], rtol=1e-12)
    np.testing.assert_allclose(s.transform(X).ravel(), [0.5**0.5, 0.5**0.5, -(2**0.5)])


def test_standardizer_refuses_no_features_that_from_dict_would_refuse():
    """fit((3, 0)) was taken; its to_dict() could not be read back by from_dict."""
    with pytest.raises(ValueError, match=r"X must be \(n >= 1, features >= 1\); got \(3, 0\)"):
        data.Standardizer.fit(np.zeros((3, 0)))
    s = data.Standardizer.fit(np.ones((3, 1)))
    assert data.Standardizer.from_dict(json.loads(json.dumps(s.to_dict()))).std.tolist() == [1]


def test_labels_with_digit_separators_are_names_not_merged_numbers(tmp_path):
    """Python's float() and int() read '1_2' as 12: the labels 1_2 and 12 were one class."""
    path = tmp_path / "d.csv"
    path.write_text("x,target\n1,1_2\n2,12\n3,7\n4,7\n")
    own = datafile.read(path)
    assert own.label_names == ("12", "1_2", "7") and own.y.tolist() == [1, 0, 2, 2]
    path.write_text("x,target\n1,12\n2,7\n")
    with pytest.raises(ValueError, match="label '1_2' is not one of the model's classes"):
        path.write_text("x,target\n1,1_2\n")
        read_inputs(path, n_features=1, feature_names=("x",), label_names=(7, 12), target="target")


def test_a_feature_with_digit_separators_is_not_a_number(tmp_path):
    """'2021_05' was read as the number 202105."""
    path = tmp_path / "d.csv"
    path.write_text("x,target\n2021_05,a\n3,b\n")
    with pytest.raises(ValueError, match=r"column 'x', line 2: '2021_05' is not a number"):
        datafile.read(path)
