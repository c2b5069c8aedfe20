"""Mutation audit of the built-in datasets, splits, data checks and the progress line: each
test kills a small fault the rest of the suite let through (an arm's angle, the spiral's
end points, mnist1d's join order, a seed not passed, a dtype not restored, a boundary
moved by one, a hint's word swapped, a bar rounded down)."""

import io
import re

import numpy as np
import pytest

from nnjax import data, presets, splits
from nnjax import data_checks as checks
from nnjax.progress import Progress


def _spirals_oracle(n, k, noise, seed):
    """The docstring's arms by hand: r = t, angle = 4t + 2 pi c / K + noise."""
    sizes = [n // k + (1 if c < n % k else 0) for c in range(k)]
    t = np.concatenate([np.linspace(0.0, 1.0, m) for m in sizes])
    c = np.repeat(np.arange(k), sizes)
    angle = 4 * t + 2 * np.pi * c / k + noise * np.random.default_rng(seed).standard_normal(n)
    return np.column_stack([t * np.sin(angle), t * np.cos(angle)]), c


@pytest.mark.parametrize(("n", "k", "noise", "seed"), [(7, 3, 0.0, 0), (11, 4, 0.3, 5)])
def test_spirals_are_the_documented_arms_with_both_ends(n, k, noise, seed):
    X, y = data.spirals(n=n, n_classes=k, noise=noise, seed=seed)
    X_ref, y_ref = _spirals_oracle(n, k, noise, seed)
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_allclose(X, X_ref, rtol=0, atol=1e-15)
    if not noise:  # each arm ends at radius 1, at its own angle 4 + 2 pi c / K
        ends = np.cumsum([n // k + (c < n % k) for c in range(k)]) - 1
        np.testing.assert_allclose(np.hypot(*X[ends].T), 1.0, atol=1e-15)


def test_mnist1d_joins_the_generators_train_part_then_its_test_part():
    from mnist1d.data import get_dataset_args, make_dataset

    X, y = data.mnist1d(n=20, seed=3)
    args = get_dataset_args()
    args.num_samples, args.seed = 20, 3
    state = np.random.get_state()  # noqa: NPY002
    d = make_dataset(args)
    np.random.set_state(state)  # noqa: NPY002
    assert X.shape == (20, 40) and len(d["x"]) == 16  # train_split 0.8
    np.testing.assert_array_equal(X, np.concatenate([d["x"], d["x_test"]]))
    np.testing.assert_array_equal(y, np.concatenate([d["y"], d["y_test"]]))
    msg = "mnist1d: n must be a multiple of 10 (one per class), got 25"
    with pytest.raises(ValueError, match=re.escape(msg)):
        data.mnist1d(n=25)


def test_load_spirals_draws_the_generator_with_the_data_seed():
    ds = data.load("spirals", seed=1, standardized=False)
    rows = np.concatenate([ds.X_train, ds.X_test])
    X, y = data.spirals(seed=1)

    def key(a):
        return a[np.lexsort(a.T[::-1])]

    np.testing.assert_array_equal(key(rows), key(X.astype(np.float32)))
    np.testing.assert_array_equal(np.bincount(np.concatenate([ds.y_train, ds.y_test])), [200] * 3)


def test_mnist1d_canonical_unstandardised_is_float32_as_documented(monkeypatch):
    rng = np.random.default_rng(0)  # the generator's float64 arrays, 20 / 10 rows, not 5000
    X_tr, X_te = rng.normal(size=(20, 40)), rng.normal(size=(10, 40))
    y_tr, y_te = np.arange(20) % 10, np.arange(10)
    monkeypatch.setattr(data, "mnist1d_canonical", lambda: (X_tr, y_tr, X_te, y_te))
    ds = data.load("mnist1d", standardized=False)
    assert ds.X_train.dtype == ds.X_test.dtype == np.float32
    assert ds.y_train.dtype == ds.y_test.dtype == np.int32 and ds.n_classes == 10
    np.testing.assert_array_equal(ds.X_test, X_te.astype(np.float32))
    np.testing.assert_array_equal(ds.X_train, X_tr.astype(np.float32))


def test_a_batch_of_every_row_and_the_partial_last_batch():
    X, y = np.arange(10.0).reshape(5, 2), np.arange(5)
    (whole,) = data.batches(X, y, 5)
    np.testing.assert_array_equal(whole[0], X)
    got = list(data.batches(X, y, 2, drop_last=False))
    assert [len(b) for b, _ in got] == [2, 2, 1]
    np.testing.assert_array_equal(np.concatenate([b for _, b in got]), y)
    assert [len(b) for b, _ in data.batches(X, y, 2)] == [2, 2]


def test_the_validation_fraction_is_checked_against_the_default_test_fraction():
    msg = "load_splits: val_fraction 0.8 + test_fraction 0.2 must be below 1"
    with pytest.raises(ValueError, match=re.escape(msg)):
        data.load_splits("moons", val_fraction=0.8)


@pytest.mark.parametrize(
    ("n_held", "words"),
    [(9, "leaves 1 of 10 examples, fewer than the 3 classes: a stratified split needs one of "
         "each; give a smaller fraction"),
     (2, "holds out 2 of 10 examples, fewer than the 3 classes: a stratified split needs one "
         "of each; give a larger fraction")],
)  # fmt: skip
def test_a_stratified_split_too_small_says_which_way_to_move_the_fraction(n_held, words):
    y = np.array([0, 0, 0, 0, 1, 1, 1, 2, 2, 2])
    with pytest.raises(ValueError, match="^" + re.escape(f"the split {words}") + "$"):
        splits.check_stratifiable(y, n_held, "the split", range(3))


@pytest.mark.parametrize(
    ("call", "msg"),
    [
        (lambda: data.two_moons(noise=float("inf")),
         "two_moons: noise must be a finite number >= 0, got inf"),
        (lambda: data.load("moons", seed=True),
         "load: seed must be an int in [0, 2**32), got True"),
        (lambda: data.load("moons", standardized=1),
         "load: standardized must be True or False, got 1"),
        (lambda: data.load("moons", test_fraction=1.0),
         "load: test_fraction must be in (0, 1), got 1.0"),
        (lambda: checks.examples("spirals", 2**30 // 16 + 1, 2),
         "spirals: n must be an int in [1, 67108864] (at most 1 GiB of float64 features"),
    ],
)  # fmt: skip
def test_data_checks_refuse_at_their_boundaries(call, msg):
    with pytest.raises(ValueError, match=re.escape(msg)):
        call()


def test_the_largest_n_that_fits_is_taken():
    assert checks.examples("spirals", 2**30 // 16, 2) == 2**30 // 16  # exactly 1 GiB


class _Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


def _bar(total, tty=False, **kw):
    clock, out = _Clock(), io.StringIO()
    return Progress(total, "epoch", stream=out, clock=clock, tty=tty, **kw), clock, out


def test_a_total_of_zero_counts_as_one():
    p, _, out = _bar(0)
    p.start()
    assert out.getvalue() == "epoch 0/1 [--------------------]   0%  ETA ?\n"


def test_the_bar_and_the_percentage_round_to_nearest():
    p, _, _ = _bar(3)
    p.update(1)
    assert "epoch 1/3 [#######-------------]  33%" in p.line()  # 6.67 of 20 marks: 7
    p.update(2)
    assert "epoch 2/3 [#############-------]  67%" in p.line()  # 66.7%: 67, not 66


def test_a_line_is_due_at_exactly_the_interval_off_a_terminal():
    p, clock, out = _bar(10, interval=2.0)
    p.start()
    clock.t = 1.9
    p.update(1)
    clock.t = 2.0
    p.update(2)
    assert [line.split(" [")[0] for line in out.getvalue().splitlines()] == [
        "epoch 0/10",
        "epoch 2/10",
    ]


def test_the_rate_counts_from_the_first_update_even_one_of_zero_units():
    p, clock, _ = _bar(10)
    clock.t = 1.0
    p.update(0)
    clock.t = 3.0
    p.update(0)
    clock.t = 5.0
    p.update(2)
    assert p.seconds_per_unit() == 2.0 and p.eta() == 16.0


def test_closing_a_bar_never_shown_writes_nothing_to_a_terminal():
    p, _, out = _bar(5, tty=True, columns=200)
    p.close()
    assert out.getvalue() == ""


def test_a_dumb_terminal_bar_started_again_after_closing_pads_nothing(monkeypatch):
    monkeypatch.setenv("TERM", "dumb")
    p, _, out = _bar(5, tty=True, columns=200)
    p.start("compiling (the first epoch includes it)...")
    p.close()
    p.start("x")
    assert out.getvalue().split("\n")[-1] == "\r" + p.line()


def test_a_preset_is_a_copy_the_caller_may_change():
    for name in (None, "moons"):
        mine = presets.preset(name)
        mine["epochs"], mine["hidden"] = 1, (3,)
        assert presets.preset(name)["epochs"] != 1 and presets.preset(name)["hidden"] != (3,)


def test_only_a_batch_size_of_0_reads_as_full_batch():
    p = {"hidden": (4,), "activation": "relu", "epochs": 2}
    assert presets.describe({**p, "batch_size": 1}).endswith("--batch-size 1")
    assert presets.describe({**p, "batch_size": 0}).endswith("--batch-size 0 (full)")


@pytest.mark.parametrize(
    ("name", "takes"),
    [("toy", "seed, standardized"), ("moons", "seed, standardized, test_fraction")],
)
def test_canonical_refused_lists_what_the_dataset_takes(name, takes):
    msg = (
        f"load: dataset {name!r} takes no canonical (only mnist1d has a canonical split); "
        f"it takes {takes}"
    )
    with pytest.raises(ValueError, match="^" + re.escape(msg) + "$"):
        data.load(name, canonical=True)


@pytest.mark.parametrize("name", ["toy", "xor"])
def test_toy_and_xor_carry_the_identity_standardizer_their_raw_arrays_need(name):
    s = data.load_splits(name)
    X, _ = getattr(data, name)()
    np.testing.assert_array_equal(s.X_train, X.astype(np.float32))  # used raw
    np.testing.assert_array_equal(s.standardizer.mean, np.zeros(X.shape[1]))
    np.testing.assert_array_equal(s.standardizer.std, np.ones(X.shape[1]))
    np.testing.assert_array_equal(s.standardizer.transform(s.X_test), s.X_test)


@pytest.mark.parametrize(("unit", "shown"), [("epoch", "1.23 s/epoch"), ("", "1.23 s each")])
def test_the_rate_is_shown_to_three_significant_digits(unit, shown):
    p, clock, _ = _bar(10, unit=unit)
    p.update(0)
    clock.t = 1.23456
    p.update(1)
    assert f"  {shown}  ETA 11 s" in p.line()  # 9 left at 1.23456 s each: 11.1 s
