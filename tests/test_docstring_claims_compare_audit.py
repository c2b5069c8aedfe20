"""Docstring claims of nnjax.compare, nnjax.checkpoint, nnjax.interop and nnjax.parallel, held
against NumPy oracles and the files written.

Each test quotes the claim it checks. Three were defects: ``best_index`` promises that equal
scores go to the smallest learning rate, but the seed mean was ``np.mean`` of float32 metrics,
so the same accuracies in another seed order gave another mean and the larger rate won by
rounding (now an order-free mean, ``math.fsum``); the report gave the validation fraction as
``:.0%`` (0.003 of mnist1d, 12 examples held out, read "0%"); and the checkpoint module
docstring listed the JSON record's fields without ``format`` and ``file``, which every record
holds.
"""

import json
import math
import os
import re
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import nnjax
from nnjax import checkpoint, interop
from nnjax.compare.report import seed_stats, steps_to_target
from nnjax.compare.select import DIVERGENCE_FACTOR, best_index, diverged
from nnjax.compare.study import OptimizerRuns


def _runs(lrs, val_acc=None, val_loss=None, train_loss=None, step0=2.3, epochs=2, steps=3):
    """OptimizerRuns of L rates x S seeds whose per-epoch metrics are constant in time."""
    base = np.asarray(val_loss if val_loss is not None else val_acc, np.float32)
    L, S = base.shape

    def curve(v, default):
        v = default if v is None else np.asarray(v, np.float32)
        return np.repeat(v[..., None], epochs, axis=-1)

    ones = np.ones((L, S), np.float32)
    metrics = {
        "train_loss": curve(train_loss, ones),
        "train_accuracy": curve(None, ones),
        "val_loss": curve(val_loss, ones),
        "val_accuracy": curve(val_acc, ones),
        "test_loss": curve(None, ones),
        "test_accuracy": curve(None, ones),
    }
    step_loss = np.full((L, S, epochs * steps), step0, np.float32)
    return OptimizerRuns("sgd", np.asarray(lrs), np.arange(S), 32, steps, step_loss, metrics,
                         0.0, 1.0)  # fmt: skip


# --- nnjax.compare.select ----------------------------------------------------------------


def test_a_tie_in_mean_accuracy_goes_to_the_smaller_rate_whatever_the_seed_order():
    # best_index: "equal scores (ties) go to the smallest learning rate, whatever the order
    # of the rates in the list"; before: np.mean of float32 gave 0.6462963 for 243, 249, 206
    # of 360 and 0.64629626 for 206, 249, 243, and the larger rate won by rounding
    a = np.float32(np.array([243, 249, 206]) / 360)
    for lrs, accs, smaller in (([0.1, 0.01], [a, a[::-1]], 1), ([0.01, 0.1], [a[::-1], a], 0)):
        runs = _runs(lrs, val_acc=np.stack(accs))
        assert best_index(runs, "val_accuracy") == smaller
        runs = _runs(lrs, val_acc=np.stack(accs[::-1]))
        assert best_index(runs, "val_accuracy") == smaller


def test_the_selection_mean_is_the_correctly_rounded_mean_of_the_seeds():
    from nnjax.compare.select import seed_mean

    rng = np.random.default_rng(0)
    v = rng.integers(0, 361, size=(4, 5)).astype(np.float32) / np.float32(360)
    want = [math.fsum(map(float, row)) / 5 for row in v]
    assert seed_mean(v).tolist() == want
    assert seed_mean(v[:, ::-1]).tolist() == want
    v[2, 1] = np.inf
    assert np.isnan(seed_mean(v)[2]) and np.isfinite(seed_mean(v)[[0, 1, 3]]).all()


def test_the_lowest_mean_loss_wins_and_exact_ties_go_to_the_smallest_rate():
    runs = _runs([0.3, 0.1, 0.03, 0.01], val_loss=[[0.5, 0.7], [0.6, 0.6], [0.7, 0.5], [2, 2]])
    assert best_index(runs) == 2  # 0.03: the smallest of the three rates at mean 0.6


def test_diverged_is_a_nonfinite_loss_or_a_final_loss_above_ten_times_the_initial():
    # select: "its final training loss ... is above DIVERGENCE_FACTOR (k = 10) times its
    # initial loss (the loss of its first batch at the initial weights)"; never chosen
    assert DIVERGENCE_FACTOR == 10.0
    train = [[23.0, 23.1], [1.0, 1.0], [np.nan, 1.0]]
    runs = _runs([1.0, 0.1, 0.01], val_loss=[[0.1, 0.1], [0.5, 0.5], [0.1, 0.1]],
                 train_loss=train, step0=2.3)  # fmt: skip
    assert diverged(runs).tolist() == [[False, True], [False, False], [True, False]]
    assert best_index(runs) == 1  # the lower val losses of 1.0 and 0.01 have a diverged run
    every = _runs([1.0], val_loss=[[0.1]], train_loss=[[np.inf]])
    assert best_index(every) is None


def test_best_index_names_a_bad_criterion():
    with pytest.raises(ValueError, match=r"^best_index: select must be one of val_loss, "
                       r"val_accuracy, train_loss, got 'test_loss'$"):  # fmt: skip
        best_index(_runs([0.1], val_loss=[[1.0]]), "test_loss")


# --- nnjax.compare.report ----------------------------------------------------------------


def test_seed_stats_std_is_the_sample_std_and_undefined_for_one_seed():
    a = np.array([[1.0, 2.0, 4.0], [0.5, 0.5, 0.8]])
    s = seed_stats(a)
    assert np.allclose(s["std"], np.std(a, axis=-1, ddof=1), rtol=0, atol=1e-15)
    assert np.allclose(s["mean"], a.mean(-1)) and s["median"].tolist() == [2.0, 0.5]
    one = seed_stats(np.array([[3.0]]))
    assert np.isnan(one["std"]).all() and one["mean"].tolist() == [3.0]


def test_steps_to_target_counts_updates_to_the_first_epoch_at_or_below_target():
    runs = _runs([0.1], val_loss=[[1.0, 1.0]], train_loss=[[0.1, 0.2]], epochs=2, steps=3)
    runs.metrics["train_loss"][0, 0] = [0.5, 0.1]  # seed 0 reaches 0.1 after epoch 2
    assert steps_to_target(runs, 0.1)[0, 0] == 6.0 and np.isnan(steps_to_target(runs, 0.1)[0, 1])


# --- nnjax.checkpoint --------------------------------------------------------------------


def test_the_json_record_holds_the_fields_the_module_docstring_lists(tmp_path):
    # "ckpt_{s:08d}.json: {...} (and "dtypes" for leaves such as bfloat16 ...)"; before, the
    # list lacked "format" and "file"
    listed = re.search(r"ckpt_\{s:08d\}\.json``: ``\{(.*?)\}``", checkpoint.__doc__, re.S)
    named = set(re.findall(r'"(\w+)"', listed.group(1)))
    checkpoint.save(tmp_path, 0, {"w": jnp.ones(2), "h": jnp.ones(2, jnp.bfloat16)})
    with open(tmp_path / "ckpt_00000000.json") as f:
        record = json.load(f)
    assert set(record) == named | {"dtypes"}
    assert record["format"] == checkpoint.FORMAT and record["file"] == "ckpt_00000000.npz"


def test_keep_one_step_zero_and_an_empty_folder(tmp_path):
    assert checkpoint.steps(tmp_path) == [] and checkpoint.latest_valid(tmp_path) is None
    with pytest.raises(FileNotFoundError, match=f"^no checkpoint in {re.escape(str(tmp_path))}$"):
        checkpoint.load(tmp_path)
    tree = {"w": jnp.arange(3.0), "k": jax.random.key(1)}
    for s in (0, 1, 2):
        checkpoint.save(tmp_path, s, tree, keep=1)
    assert checkpoint.steps(tmp_path) == [2]
    checkpoint.save(tmp_path, 0, tree, keep=1)  # step 0 again: step 2 is set aside
    assert checkpoint.steps(tmp_path) == [0]
    assert sorted(os.listdir(tmp_path / "abandoned" / "0001")) == [
        "ckpt_00000002.json",
        "ckpt_00000002.npz",
    ]
    back, meta = checkpoint.restore(tmp_path, tree)
    assert np.array_equal(back["w"], tree["w"]) and meta == {}
    assert np.array_equal(jax.random.key_data(back["k"]), jax.random.key_data(tree["k"]))


# --- nnjax.interop -----------------------------------------------------------------------


def test_flax_twins_compute_the_nnjax_outputs_and_share_the_arrays():
    model = nnjax.mlp([5, 3], "tanh")
    _, params = model.init(jax.random.key(0), (-1, 4))
    x = jax.random.normal(jax.random.key(1), (2, 7, 4))
    want = np.asarray(model.apply(params, x))
    nnx_model = interop.to_nnx(params, "tanh")
    assert nnx_model(x).shape == (2, 7, 3)
    assert np.allclose(nnx_model(x), want, atol=1e-6)
    module, variables = interop.to_linen(params, "tanh")
    assert np.allclose(module.apply(variables, x), want, atol=1e-6)
    assert interop.from_nnx(nnx_model)[0]["W"] is params[0]["W"]
    assert interop.from_linen(module, variables)[2]["b"] is params[2]["b"]


# --- nnjax.parallel ----------------------------------------------------------------------


def test_a_batch_is_split_in_contiguous_rows_over_four_cpu_devices():
    # "device d holds rows [d B/D, (d+1) B/D)"; a mesh of one device takes any batch
    code = textwrap.dedent("""
        import jax, jax.numpy as jnp
        from nnjax import parallel as par
        m = par.make_mesh()
        x = jax.device_put(jnp.arange(16.0).reshape(8, 2), par.batch_sharding(m))
        print(sorted((s.device.id, s.index[0].start, s.index[0].stop)
                     for s in x.addressable_shards))
        par.check_batch(3, par.make_mesh(1))
        try:
            par.check_batch(6, m)
        except ValueError as e:
            print(e)
    """)
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=4",
           "JAX_PLATFORMS": "cpu"}  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=60, check=True).stdout.splitlines()  # fmt: skip
    assert out == [
        "[(0, 0, 2), (1, 2, 4), (2, 4, 6), (3, 6, 8)]",
        "batch_size=6 does not divide across the 4 devices of the mesh; use a multiple of 4 "
        "(e.g. 4 or 8), or a device count that divides it (2, 3, 6)",
    ]


def test_the_setup_line_gives_the_validation_fraction_that_was_held_out():
    # the report: "a held-out validation split (n examples, p% of the training split)";
    # before: 12 of mnist1d's 4000 held out at 0.003 read "0%", and 0.125 read "12%"
    from nnjax.compare.report import _setup
    from nnjax.compare.study import Study, StudyResult

    runs = {"sgd": _runs([0.1], val_loss=[[1.0]])}
    for fraction, n_val, shown in ((0.003, 12, "0.3%"), (0.125, 500, "12.5%"), (0.2, 800, "20%")):
        study = Study(dataset="mnist1d", optimizers=("sgd",), seeds=(0,), val_fraction=fraction)
        sizes = {"n_fit": 4000 - n_val, "n_val": n_val, "n_test": 1000, "n_features": 40,
                 "n_classes": 10}  # fmt: skip
        lines = _setup(StudyResult(study, "m", sizes, True, runs))
        choice = next(line for line in lines if "Learning-rate choice" in line)
        assert f"({n_val} examples, {shown} of the training split, stratified)" in choice


def test_a_metric_that_is_not_finite_is_shown_as_itself_not_as_diverged():
    """A rate whose validation loss was inf while its training loss stayed finite has not
    diverged (select.diverged reads the training loss): its row said "diverged" beside a
    diverged count of 0/S."""
    from nnjax.compare.report import _f, _pm

    assert _pm({"mean": np.inf, "std": np.nan}) == "inf"
    assert _pm({"mean": np.nan, "std": np.nan}) == "nan"
    assert _f(-np.inf) == "-inf" and _f(0.25) == "0.2500"
    assert _pm({"mean": 0.5, "std": np.nan}) == "0.5000 ± n/a"
