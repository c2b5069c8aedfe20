"""Splits and standardisation as data: the Standardizer against the formula and through
JSON; stratified validation splits keep the class proportions; the built-in arrays are
load()'s, bit for bit; the data seed and the training seed change different things."""

import json

import numpy as np
import pytest

from nnjax import data
from nnjax.cli import build_parser

RNG = np.random.default_rng(0)


def test_standardizer_is_the_formula_and_standardize_is_unchanged():
    tr = RNG.normal(3.0, 2.0, (50, 4)).astype(np.float32)
    tr[:, 2] = 7.0  # constant on the training split: centred only
    te = RNG.normal(size=(9, 4)).astype(np.float32)
    s = data.Standardizer.fit(tr)
    mean, std = tr.mean(axis=0), tr.std(axis=0)
    want = (te - mean) / np.where(std > 0, std, 1.0)
    got = s.transform(te)
    assert got.dtype == np.float32 and got.tobytes() == want.tobytes()  # bit for bit
    np.testing.assert_array_equal(s.std[2], 1.0)
    np.testing.assert_array_equal(s.transform(tr)[:, 2], 0.0)
    for a, b in zip(data.standardize(tr, te), (s.transform(tr), s.transform(te))):
        assert a.tobytes() == b.tobytes()


def test_standardizer_refuses_nan_or_inf_naming_the_columns():
    """A nan made its column's mean nan, and every standardised value of it."""
    X = RNG.normal(size=(6, 4))
    X[2, 1], X[0, 3] = np.nan, np.inf
    with pytest.raises(ValueError, match=r"nan/inf in 2 feature\(s\), first columns \[1, 3\]"):
        data.Standardizer.fit(X)


def test_standardizer_round_trips_exactly_through_json():
    s = data.Standardizer.fit(RNG.normal(size=(20, 5)).astype(np.float32) * 1e-3 + 1e4)
    back = data.Standardizer.from_dict(json.loads(json.dumps(s.to_dict())))
    assert back.mean.dtype == np.float32 and back.mean.tobytes() == s.mean.tobytes()
    assert back.std.tobytes() == s.std.tobytes()
    x = RNG.normal(size=(3, 5)).astype(np.float32)
    assert back.transform(x).tobytes() == s.transform(x).tobytes()
    identity = data.Standardizer.identity(3)
    np.testing.assert_array_equal(identity.transform(x[:, :3]), x[:, :3])


@pytest.mark.parametrize(
    "bad, match",
    [
        ({"mean": [0.0]}, "needs keys 'mean' and 'std'"),
        ({"mean": list(range(999))}, r"needs keys 'mean' and 'std'; got keys \['mean'\]$"),
        ([1.0], "needs keys 'mean' and 'std'; got list$"),
        ({"mean": [0.0, 1.0], "std": [1.0]}, "the same length"),
        ({"mean": [0.0], "std": [0.0]}, "std finite > 0"),
        ({"mean": ["a"], "std": [1.0]}, "must be numbers"),
        ({"mean": [0.0], "std": [1.0], "dtype": "int8"}, "not a float dtype"),
    ],
)
def test_standardizer_from_dict_names_what_is_wrong(bad, match):
    with pytest.raises(ValueError, match=match):
        data.Standardizer.from_dict(bad)


def test_standardizer_refuses_the_wrong_number_of_features():
    s = data.Standardizer.identity(3)
    with pytest.raises(ValueError, match="fitted on 3 features; got an input of shape \\(2, 4\\)"):
        s.transform(np.zeros((2, 4)))


@pytest.mark.parametrize("name", ["toy", "xor", "moons", "spirals", "digits"])
def test_without_validation_the_splits_are_loads_arrays_bit_for_bit(name):
    for seed in (0, 3):
        a, b = data.load(name, seed=seed), data.load_splits(name, seed=seed)
        for x, y in zip(a[:4], (b.X_train, b.y_train, b.X_test, b.y_test)):
            assert x.dtype == y.dtype and x.shape == y.shape and x.tobytes() == y.tobytes()
        assert b.X_val is None and b.label_names == tuple(range(a.n_classes))


def _counts(y, k):
    return np.bincount(y, minlength=k)


def test_stratified_validation_split_keeps_the_class_proportions():
    ds = data.load_splits("digits", val_fraction=0.25)
    n_all = 1797
    every = np.concatenate([ds.y_train, ds.y_val, ds.y_test])
    assert len(every) == n_all and len(ds.y_val) == int(np.ceil(0.25 * n_all))
    total = _counts(every, 10)
    for part in (ds.y_train, ds.y_val, ds.y_test):  # each part within one example of its share
        share = total * len(part) / n_all
        assert np.all(np.abs(_counts(part, 10) - share) <= 1.0), (_counts(part, 10), share)
    # the statistics are the training part's alone
    np.testing.assert_allclose(ds.X_train.mean(axis=0), 0.0, atol=1e-5)
    assert not np.allclose(ds.X_val.mean(axis=0), 0.0, atol=1e-3)


def test_own_data_split_is_stratified_disjoint_and_complete():
    n = 200
    y = (np.arange(n) % 10 == 0).astype(np.int32)  # 20 of class 1 (10 %)
    X = np.stack([np.arange(n), RNG.normal(size=n)], axis=1).astype(np.float32)  # row ids
    ds = data.split_own(X, y, ("no", "yes"), name="d", test_fraction=0.2, val_fraction=0.1)
    assert (len(ds.y_train), len(ds.y_val), len(ds.y_test)) == (140, 20, 40)
    assert [_counts(p, 2)[1] for p in (ds.y_train, ds.y_val, ds.y_test)] == [14, 2, 4]
    rows = [np.rint(ds.standardizer.mean[0] + p[:, 0] * ds.standardizer.std[0]).astype(int)
            for p in (ds.X_train, ds.X_val, ds.X_test)]  # fmt: skip
    assert sorted(np.concatenate(rows)) == list(range(n))  # disjoint, and nothing lost
    for ids, labels in zip(rows, (ds.y_train, ds.y_val, ds.y_test)):
        np.testing.assert_array_equal(labels, y[ids])


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"val_fraction": 0.001}, "validation split \\(0.001\\) holds out 1 of .* fewer than"),
        ({"test_fraction": 0.999}, "test split \\(0.999\\) leaves 0 of 30 examples"),
        ({"test_fraction": 0.5, "val_fraction": 0.5}, "must be below 1"),
    ],
)
def test_impossible_stratified_splits_say_why(kwargs, match):
    y = np.repeat(np.arange(3), 10).astype(np.int32)
    X = np.zeros((30, 1), np.float32)
    with pytest.raises(ValueError, match=match):
        data.split_own(X, y, (0, 1, 2), name="d", **kwargs)


def test_toy_and_xor_have_no_validation_split():
    with pytest.raises(ValueError, match="toy has 6 examples and is not split"):
        data.load_splits("toy", val_fraction=0.2)


def _prepared(*argv):
    from nnjax.commands import train

    args = build_parser(["train"]).parse_args(["train", "--dataset", "moons", *argv])
    train.check(args)
    ds, _, _, params, _ = train._prepare(args)
    return ds, params


def _same_params(a, b) -> bool:
    import jax

    return all(np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def test_the_data_seed_and_the_training_seed_are_separate():
    """--data-seed changes the data and never the init; --seed the reverse (it also seeds
    fit's batch order and dropout: fit(key=args.seed))."""
    ds0, p0 = _prepared("--seed", "0", "--data-seed", "0")
    ds1, p1 = _prepared("--seed", "0", "--data-seed", "1")
    ds2, p2 = _prepared("--seed", "1", "--data-seed", "0")
    assert not np.array_equal(ds0.X_train, ds1.X_train) and _same_params(p0, p1)
    assert ds0.X_train.tobytes() == ds2.X_train.tobytes() and not _same_params(p0, p2)
    assert ds0.y_test.tobytes() == ds2.y_test.tobytes()


def test_mnist1d_refuses_a_test_split_naming_the_option(capsys):
    from nnjax.cli import main

    assert main(["train", "--dataset", "mnist1d", "--test-split", "0.3"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--test-split" in err[0] and "canonical" in err[0]
