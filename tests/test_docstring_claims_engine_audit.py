"""Docstring claims of the training engine's inner modules (nnjax.train: executables, early,
guards, driver, stepped, fitting), each checked against what the code does."""

import os

import jax
import numpy as np
import optax
import pytest

import nnjax
from nnjax import cache
from nnjax.errors import DivergenceError
from nnjax.train import driver, executables
from nnjax.train.checkpoints import FitCheckpoints
from nnjax.train.driver import ChunkReport
from nnjax.train.early import EarlyStopping, EarlyStoppingMonitor, RunStop, check_early_stopping
from nnjax.train.execution import parse_execution
from nnjax.train.guards import DivergenceGuard, as_guard
from nnjax.train.loop import EpochOutputs
from nnjax.train.stepped import SteppedLoop


def _data(n=48, d=4, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)).astype(np.float32)
    return X, (X[:, 0] > 0).astype(np.int32)


def _fit(X, y, **kw):
    model = nnjax.mlp([8, 2])
    params = model.init(jax.random.key(0), X.shape[1:])[1]
    args = dict(loss="softmax_cross_entropy", optimizer="sgd", learning_rate=0.1, epochs=2)
    return nnjax.fit(model, params, X, y, **{**args, "batch_size": 8, **kw})


def _same(a, b):
    for x, z in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(z))


# ---- executables: the key covers the execution mode, not why "auto" chose it ---------------


def test_fused_and_an_auto_that_picks_fused_share_one_stored_program(tmp_path, monkeypatch):
    # the same program (an MLP, fused either way) was stored twice: the key held the reason
    monkeypatch.setattr(cache, "_active", str(tmp_path))
    X, y = _data()
    first = _fit(X, y, execution="fused")
    second = _fit(X, y, execution="auto")
    assert len(os.listdir(tmp_path / executables.SUBDIR)) == 1
    _same(first.params, second.params)


def test_a_chunked_run_is_never_stored(tmp_path, monkeypatch):
    monkeypatch.setattr(cache, "_active", str(tmp_path))
    X, y = _data()
    _fit(X, y, execution="chunked")
    _fit(X, y, execution="per_step")
    assert not (tmp_path / executables.SUBDIR).exists()


# ---- early stopping: the hint names a set only where one would give the metric -------------


@pytest.mark.parametrize("metric", ["step_loss", "loss", "val_auc"])
def test_a_metric_no_set_gives_is_not_answered_with_an_eval_set(metric):
    with pytest.raises(ValueError) as e:
        check_early_stopping(EarlyStopping(3, metric), ("train",))
    assert str(e.value) == (
        f"fit: early_stopping watches {metric!r}, which this run does not compute (its "
        "metrics: step_loss_mean, train_loss, train_accuracy); watch one of them, or "
        "{name}_loss / {name}_accuracy of an eval_data set"
    )


def test_a_set_metric_not_computed_names_the_set_to_pass():
    with pytest.raises(ValueError, match=r"; pass eval_data=\{'val': \(X, y\)\}$"):
        check_early_stopping(EarlyStopping(3, "val_accuracy"), ())


def _monitor_run(values, **rule):
    """Feed per-epoch values to a monitor, one epoch per chunk, as fit does; returns
    (best_epoch, epochs seen, the best carry's epoch, the stop reason)."""
    stop = RunStop()
    monitor = EarlyStoppingMonitor(EarlyStopping(**rule), stop)
    for e, v in enumerate(values):
        out = EpochOutputs(np.zeros((1, 2)), {"val_loss": np.array([v], np.float32)})
        monitor.hook(
            ChunkReport(e, e + 1, 100, {"epoch": np.int32(e + 1)}, out, [out], 0.0, None, 0)
        )
        if stop.requested:
            break
    carry = None if monitor.best_carry is None else int(monitor.best_carry["epoch"])
    return monitor.best_epoch, e + 1, carry, stop.reason


def test_early_stopping_counts_a_tie_as_no_improvement_and_keeps_the_first_best():
    best, seen, carry, reason = _monitor_run([3.0, 2.0, 2.0, 2.0], patience=2)
    assert (best, seen, carry) == (2, 4, 2)
    assert reason == "early stopping: val_loss did not improve for 2 epochs (best 2 at epoch 2)"


def test_min_delta_compares_with_the_best_so_far_not_the_last_epoch():
    # 1.95 is no improvement on 2 by more than 0.1; 1.85 is (against the best, 2)
    assert _monitor_run([3.0, 2.0, 1.95, 1.85], patience=2, min_delta=0.1)[:3] == (4, 4, 4)


# ---- the divergence guard's trip rule ------------------------------------------------------


def _guard(first, means, **kw):
    out = EpochOutputs(np.array([[first, 1.0]] * len(means)), {"step_loss_mean": np.array(means)})
    report = ChunkReport(0, len(means), 100, None, out, [out], 0.0, None, 0)
    try:
        DivergenceGuard(**kw).hook(lambda e: f"ckpt-{e}")(report)
    except DivergenceError as e:
        return e
    return None


def test_the_guard_trips_on_epochs_strictly_above_factor_times_the_first_loss():
    assert _guard(1.0, [10.0] * 5) is None  # equal to 10 x L_0 is not above
    e = _guard(1.0, [11.0, 11.0, 5.0, 11.0, 11.0, 11.0])
    assert "epochs 4-6: 11, 11, 11" in str(e) and e.last_checkpoint == "ckpt-3"
    assert "epochs 1-3: nan, nan, nan" in str(_guard(1.0, [float("nan")] * 3))
    assert _guard(-1.0, [11.0] * 5) is None  # L_0 <= 0: not applied


# ---- chunking: what the docstrings promise of compiles and results -------------------------


def test_epochs_per_call_not_dividing_epochs_compiles_two_programs_same_numbers(monkeypatch):
    lengths = []
    compiled = driver.Program.compiled

    def spy(self, carry, indices, args):
        if int(indices.shape[0]) not in self.by_length:
            lengths.append(int(indices.shape[0]))
        return compiled(self, carry, indices, args)

    monkeypatch.setattr(driver.Program, "compiled", spy)
    X, y = _data()
    whole = _fit(X, y, epochs=5)
    split = _fit(X, y, epochs=5, epochs_per_call=2)
    assert lengths == [5, 2, 1]
    _same(whole.params, split.params)
    np.testing.assert_array_equal(whole.step_loss, split.step_loss)


@pytest.mark.parametrize("n, k, want", [(7, 8, 7), (7, 3, 1), (12, 8, 6), (12, 5, 4)])
def test_steps_per_call_is_the_largest_divisor_of_the_epoch_up_to_it(n, k, want):
    loop = SteppedLoop(
        nnjax.mlp([2]), "mse", optax.sgd(0.1), n_examples=n, batch_size=1, steps_per_call=k
    )
    assert (loop.T, loop.k) == (n, want)


# ---- execution: a K that str.isdigit() takes but int() refuses -----------------------------


@pytest.mark.parametrize("execution", ["chunked:\u00b3", "chunked:\u0663"])
def test_a_non_ascii_digit_k_is_refused_naming_fit_execution(execution):
    with pytest.raises(ValueError) as e:
        parse_execution(execution)
    assert str(e.value) == (
        "fit: execution must be one of 'auto', 'fused', 'chunked', 'per_step' or 'chunked:K' "
        f"(K steps per compiled call, K >= 1), got {execution!r}"
    )


# ---- the guard's switch takes NumPy's bools as fit's other flags do -------------------------


def test_divergence_guard_takes_numpy_bools():
    assert as_guard(np.True_) == DivergenceGuard(10.0, 3)
    assert as_guard(np.False_) is None
    with pytest.raises(ValueError, match=r"must be True, False, .*got 0$"):
        as_guard(0)


# ---- a bounded chunk is cut to a divisor: checkpoints stay every checkpoint_every epochs -----


class _OneSecondPerEpoch(driver.HostProgram):
    """A host program whose chunk of n epochs advances a fake clock by n seconds."""

    def __init__(self, clock):
        self.clock = clock

    def compile(self, carry, indices, args):
        def run(carry, epochs):
            self.clock[0] += float(len(epochs))
            return carry, np.asarray(epochs)

        return run


@pytest.mark.parametrize("size, want", [(5, [1] * 6), (6, [3] * 5), (8, [2] * 8)])
def test_a_cut_chunk_divides_the_one_before(size, want):
    now = [0.0]
    ends = []
    drive = driver.drive(
        _OneSecondPerEpoch(now), 0, total=size + sum(want),
        chunks=driver.BoundedChunks(size, max_seconds=3.0),
        hooks=(lambda r: ends.append(r.end),), clock=lambda: now[0],
    )  # fmt: skip
    assert drive.done == size + sum(want)
    assert np.diff([0, *ends]).tolist() == [size, *want]


def test_bounded_chunks_keep_fits_checkpoints_on_their_multiples():
    # fit's rule (FitCheckpoints.due) with checkpoint_every = epochs_per_call = 5 and a
    # 3 s bound at 1 s per epoch: halving 5 to 2 saved after epochs 5, 11, 17, ...
    class Due:
        directory, last, every, epochs = "runs", 0, 5, 30
        due = FitCheckpoints.due

    rule, now, saved = Due(), [0.0], []

    def hook(report):
        if rule.due(report.end, report.final):
            saved.append(report.end)
            rule.last = report.end

    driver.drive(
        _OneSecondPerEpoch(now), 0, total=30, chunks=driver.BoundedChunks(5, 3.0),
        hooks=(hook,), clock=lambda: now[0],
    )  # fmt: skip
    assert saved == [5, 10, 15, 20, 25, 30]


def test_early_stopping_after_one_epoch_says_one_epoch():
    _, _, _, reason = _monitor_run([3.0, 2.0, 2.5], patience=1)
    assert reason == "early stopping: val_loss did not improve for 1 epoch (best 2 at epoch 2)"
