"""fit's safety (issue 15): the directory lock for the run's lifetime, the whole configuration
recorded and checked on resume (overrides recorded), no checkpoint from non-finite state,
the divergence guard, stops by signal, empty data and learning rates infinite in the dtype.
The command-line side is tests/test_reliability_cli.py."""

import os
import signal
import subprocess
import sys
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import nnjax
from nnjax import checkpoint as ck
from nnjax import errors
from nnjax.runconfig import ConfigMismatchError
from nnjax.train import DivergenceGuard, TrainingStopped, stop_on_signals
from nnjax.train.driver import ChunkReport
from nnjax.train.loop import EpochOutputs

FIT = dict(batch_size=32, key=3, optimizer="adam", learning_rate=0.01)


def _problem(activation="relu"):
    ds = nnjax.data.load("moons")
    model = nnjax.mlp([8, 2], activation)
    return model, model.init(jax.random.key(0), (-1, 2))[1], ds.X_train, ds.y_train


def _scaled_cross_entropy(logits, labels):
    """Another loss that takes the same targets (a resume may not switch losses)."""
    return nnjax.losses.softmax_cross_entropy(2 * logits, labels)


def _tree_equal(a, b) -> bool:
    la, lb = jax.tree.leaves(a), jax.tree.leaves(b)
    return len(la) == len(lb) and all(np.array_equal(x, y) for x, y in zip(la, lb))


@pytest.fixture(scope="module")
def two_epochs(tmp_path_factory):
    """A directory with the checkpoints of epochs 1 and 2 of a moons run."""
    d = tmp_path_factory.mktemp("run") / "ckpt"
    model, p0, X, y = _problem()
    nnjax.fit(model, p0, X, y, epochs=2, **FIT, checkpoint_dir=d)
    return d


def _copy(d, tmp_path):
    import shutil

    return shutil.copytree(d, tmp_path / "ckpt")


# ---- the lock ---------------------------------------------------------------------------------

HOLDER = """
import sys, time
from nnjax import checkpoint
lock = checkpoint.lock(sys.argv[1])
print("locked", flush=True)
time.sleep(120)
"""


def test_fit_holds_the_lock_while_it_runs_and_refuses_a_second_writer(tmp_path):
    model, p0, X, y = _problem()
    d = tmp_path / "ckpt"
    seen = []

    def on_epochs(done, metrics):  # inside the run: the lock is ours and held
        seen.append(ck.DirectoryLock(d).path)
        with pytest.raises(ck.DirectoryLockedError, match="already locked by this process"):
            ck.lock(d)

    nnjax.fit(model, p0, X, y, epochs=1, **FIT, checkpoint_dir=d, on_epochs=on_epochs)
    assert seen and not os.path.exists(seen[0])  # released at the end
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(d)], stdout=subprocess.PIPE)
    try:
        assert holder.stdout.readline() == b"locked\n"
        with pytest.raises(ck.DirectoryLockedError, match=f"process {holder.pid} on host"):
            nnjax.fit(model, p0, X, y, epochs=2, **FIT, checkpoint_dir=d, resume=True)
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()
    assert ck.steps(d) == [1]  # the refused run wrote nothing


# ---- the configuration ------------------------------------------------------------------------


def test_checkpoints_record_the_whole_configuration(two_epochs):
    config = ck.load(two_epochs).metadata["config"]
    assert config["model"] == {
        "kind": "mlp",
        "sizes": [8, 2],
        "activation": "relu",
        "output_activation": None,
        "use_bias": True,
        "W_init": None,
    }
    assert config["optimizer"] == {
        "name": "adam",
        "learning_rate": 0.01,
        "b1": 0.9,
        "b2": 0.999,
        "eps": 1e-8,
    }
    assert config["loss"] == "softmax_cross_entropy" and config["dtype"] == "float32"
    assert (config["devices"], config["batch_size"], config["dropout"]) == (1, 32, False)
    assert len(config["data_sha256"]) == 64 and config["n_examples"] == 320


def test_an_optax_optimizer_and_a_schedule_are_described_as_far_as_they_can_be():
    from nnjax.train.config import describe_optimizer

    assert describe_optimizer(optax.adam(1e-3), None) == {"name": "optax", "describable": False}
    sched = optax.exponential_decay(0.1, 10, 0.5)
    lr = describe_optimizer("sgd", sched)["learning_rate"]
    assert lr["schedule"].startswith("<function") and lr["values"][:3] == pytest.approx(
        [0.1, 0.1 * 0.5**0.1, 0.05]
    )


@pytest.mark.parametrize(
    "change, field, old, new",
    [
        (dict(learning_rate=0.02), "optimizer.learning_rate", "0.01", "0.02"),
        (dict(optimizer="momentum"), "optimizer.name", "'adam'", "'momentum'"),
        (dict(activation="tanh"), "model.activation", "'relu'", "'tanh'"),
        (
            dict(loss=_scaled_cross_entropy),
            "loss",
            "'softmax_cross_entropy'",
            "'<function _scaled_cross_entropy>'",
        ),  # fmt: skip
    ],
)
def test_resume_with_another_setting_is_refused_naming_the_field(
    two_epochs, change, field, old, new
):
    model, p0, X, y = _problem(change.pop("activation", "relu"))
    with pytest.raises(ConfigMismatchError, match=f"{field}: {old} -> {new}") as err:
        nnjax.fit(model, p0, X, y, epochs=3, **{**FIT, **change}, checkpoint_dir=two_epochs,
                  resume=True)  # fmt: skip
    assert "no array for" not in str(err.value) and [d[0] for d in err.value.diffs] == [field]
    assert ck.steps(two_epochs) == [1, 2]


def test_an_override_allows_the_change_and_is_recorded(two_epochs, tmp_path):
    d = _copy(two_epochs, tmp_path)
    model, p0, X, y = _problem()
    kw = dict(epochs=3, **{**FIT, "learning_rate": 0.003}, checkpoint_dir=d, resume=True)
    with pytest.raises(ValueError, match="this run has optimizer.learning_rate=0.003"):
        nnjax.fit(model, p0, X, y, **kw, override={"optimizer.learning_rate": 0.001})
    with pytest.raises(ValueError, match="batch_size: it cannot be changed on resume"):
        nnjax.fit(model, p0, X, y, **kw, override=["batch_size"])
    with pytest.raises(ValueError, match="no such field; valid fields: .*optimizer.b1"):
        nnjax.fit(model, p0, X, y, **kw, override={"lr": 0.003})
    nnjax.fit(model, p0, X, y, **kw, override={"optimizer.learning_rate": 0.003})
    meta = ck.load(d).metadata
    assert meta["config"]["optimizer"]["learning_rate"] == 0.003
    assert meta["overrides"] == [
        {"epoch": 2, "field": "optimizer.learning_rate", "old": 0.01, "new": 0.003}
    ]
    # the next resume compares with the overridden value, and keeps the record
    nnjax.fit(model, p0, X, y, **{**kw, "epochs": 4})
    assert ck.load(d).metadata["overrides"] == meta["overrides"]


def test_another_optimizer_by_override_starts_its_state_afresh(two_epochs, tmp_path):
    d = _copy(two_epochs, tmp_path)
    model, p0, X, y = _problem()
    fresh = optax.sgd(0.01, momentum=0.9).init(p0)
    with pytest.warns(UserWarning, match="optimizer momentum instead of adam .* adam state"):
        res = nnjax.fit(model, p0, X, y, epochs=3, **{**FIT, "optimizer": "momentum"},
                        checkpoint_dir=d, resume=True, override=["optimizer.name"])  # fmt: skip
    assert jax.tree.structure(res.opt_state) == jax.tree.structure(fresh)
    (record,) = ck.load(d).metadata["overrides"]
    assert record["field"] == "optimizer" and record["old"]["name"] == "adam"
    assert record["new"] == {"name": "momentum", "learning_rate": 0.01, "momentum": 0.9}


# ---- finiteness -------------------------------------------------------------------------------


def _nan_after(step: int) -> optax.GradientTransformation:
    """SGD whose update number ``step`` (0-based) makes every param nan: each step's loss is
    taken before its update, so the losses of that chunk are all finite."""

    def init(params):
        return jnp.zeros((), jnp.int32)

    def update(grads, count, params=None):
        bad = jnp.where(count == step, jnp.nan, 1.0)
        return jax.tree.map(lambda g: -0.01 * g * bad, grads), count + 1

    return optax.GradientTransformation(init, update)


def _assert_all_finite(d):
    for s in ck.steps(d):
        arrays = ck.load(d, s).arrays
        assert all(np.isfinite(a).all() for a in arrays.values() if a.dtype.kind == "f"), s


def test_no_checkpoint_from_non_finite_params(tmp_path):
    model, p0, X, y = _problem()
    steps = len(X) // 32
    d = tmp_path / "ckpt"
    kw = dict(epochs=4, batch_size=32, key=3, checkpoint_dir=d)
    with pytest.raises(nnjax.NonFiniteLossError, match=r"\['params'\]\[0\]\['W'\] holds nan/inf "
                       r"after epoch 2; no checkpoint written") as err:  # fmt: skip
        nnjax.fit(model, p0, X, y, optimizer=_nan_after(2 * steps - 1), **kw)
    assert isinstance(err.value, errors.DivergenceError)
    assert ck.steps(d) == [1] and err.value.last_checkpoint == ck.npz_path(d, 1)
    assert "the newest checkpoint from before it is" in str(err.value)
    _assert_all_finite(d)
    # with the checks off, checkpoint.save refuses all the same (a DivergenceError: exit 4)
    d2 = tmp_path / "unchecked"
    with pytest.raises(ck.NonFiniteCheckpointError) as err:
        nnjax.fit(model, p0, X, y, optimizer=_nan_after(steps - 1), check_finite=False,
                  **{**kw, "checkpoint_dir": d2})  # fmt: skip
    assert isinstance(err.value, errors.DivergenceError) and ck.steps(d2) == []


def test_non_finite_params_without_checkpoints_claim_no_checkpoint():
    """Before: 'holds nan/inf after epoch 4; no checkpoint written' for a run that had no
    checkpoint folder at all."""
    model, p0, X, y = _problem()
    steps = len(X) // 32
    with pytest.raises(nnjax.NonFiniteLossError, match=r"holds nan/inf after epoch 4") as err:
        nnjax.fit(model, p0, X, y, optimizer=_nan_after(4 * steps - 1), epochs=4, batch_size=32)
    assert "checkpoint" not in str(err.value)


def test_a_non_finite_evaluation_metric_stops_the_run(tmp_path):
    model, p0, X, y = _problem()

    def apply(params, x, *, key=None):  # finite in training (a key), inf in evaluation
        out = model.apply(params, x)
        return out if key is not None else out * jnp.inf

    with pytest.raises(nnjax.NonFiniteLossError, match="test_loss became (nan|inf) in epoch 1"):
        nnjax.fit(apply, p0, X, y, epochs=2, **FIT, dropout=True, eval_data={"test": (X, y)},
                  checkpoint_dir=tmp_path / "ckpt")  # fmt: skip
    assert ck.steps(tmp_path / "ckpt") == []


def test_the_final_params_are_checked_without_a_checkpoint_directory():
    model, p0, X, y = _problem()
    with pytest.raises(nnjax.NonFiniteLossError, match="after epoch 1"):
        nnjax.fit(model, p0, X, y, epochs=1, batch_size=32, optimizer=_nan_after(9))


def test_learning_rates_infinite_in_the_params_dtype_are_refused():
    model, p0, X, y = _problem()
    with pytest.raises(ValueError, match="learning_rate 1e\\+39 is infinite in float32"):
        nnjax.fit(model, p0, X, y, epochs=1, optimizer="sgd", learning_rate=1e39)
    half = jax.tree.map(lambda a: a.astype(jnp.float16), p0)
    with pytest.raises(ValueError, match="infinite in float16"):
        nnjax.fit(model, half, X, y, epochs=1, optimizer="sgd", learning_rate=1e5)


@pytest.mark.parametrize("dtype", ["float32", np.dtype("float32"), np.float32, jnp.float32])
def test_check_learning_rate_reads_any_form_of_the_dtype(dtype):
    """Review: check_learning_rate(1e39, np.float32) or (.., jnp.float32) returned None: the
    dtype was looked up by str(), "<class 'numpy.float32'>", and the check skipped."""
    from nnjax.optim import check_learning_rate

    with pytest.raises(ValueError, match="learning_rate 1e\\+39 is infinite in float32 "):
        check_learning_rate(1e39, dtype)
    check_learning_rate(1e38, dtype)  # finite in float32


def test_an_empty_dataset_is_a_value_error_naming_it():
    model, p0, X, y = _problem()
    with pytest.raises(ValueError, match=r"fit: X has no examples .* the dataset is empty"):
        nnjax.fit(model, p0, X[:0], y[:0], epochs=1)
    with pytest.raises(ValueError, match=r"eval_data\['test'\]: X has no examples"):
        nnjax.fit(model, p0, X, y, epochs=1, eval_data={"test": (X[:0], y[:0])})
    with pytest.raises(ValueError, match="evaluate: X has no examples"):
        nnjax.evaluate(model, p0, X[:0], y[:0])


# ---- the divergence guard ---------------------------------------------------------------------


def _report(means, first=2.0, begin=0):
    """A driver report of epochs begin .. len(means) - 1 whose first step loss is ``first``."""
    means = np.asarray(means, np.float32)
    losses = np.repeat(means[:, None], 3, axis=1)
    losses[0, 0] = first
    out = EpochOutputs(losses, {"step_loss_mean": means})
    return ChunkReport(begin, len(means), 100, None, out, [out], 0.0, None, 0)


@pytest.mark.parametrize(
    "means, trips, streak_start",
    [
        ([1.0, 25.0, 30.0, 19.0, 1.0], False, None),  # 2 epochs above 10 x 2: not yet
        ([1.0, 25.0, 30.0, 21.0, 1.0], True, 1),  # 3 in a row, from epoch 2 (1 done)
        ([25.0, 25.0, 1.0, 25.0, 25.0], False, None),  # interrupted: the count restarts
        ([np.nan, np.nan, np.nan], True, 0),  # nan counts as above
    ],
)
def test_the_guard_trips_after_m_epochs_in_a_row_above_k_times_the_start(
    means, trips, streak_start
):
    asked = []

    def before(epoch):
        asked.append(epoch)
        return f"ckpt_{epoch}"

    hook = DivergenceGuard(factor=10.0, epochs=3).hook(before)
    if not trips:
        hook(_report(means))
        return
    with pytest.raises(errors.DivergenceError, match="above 10 x its initial value 2 for 3 "
                       "epochs in a row") as err:  # fmt: skip
        hook(_report(means))
    assert not isinstance(err.value, nnjax.NonFiniteLossError)
    assert asked == [streak_start] and err.value.last_checkpoint == f"ckpt_{streak_start}"


def test_the_guard_has_no_scale_for_a_loss_that_starts_at_or_below_zero():
    DivergenceGuard().hook(lambda e: None)(_report([5.0, 5.0, 5.0, 5.0], first=0.0))
    with pytest.raises(ValueError, match="factor must be a finite number > 1"):
        nnjax.fit(*_problem(), epochs=1, divergence_guard=(1.0, 2))
    with pytest.raises(ValueError, match="epochs must be an int >= 1"):
        nnjax.fit(*_problem(), epochs=1, divergence_guard=DivergenceGuard(10.0, 0))


def test_adam_at_lr_1e6_stops_with_the_divergence_message():
    model, p0, X, y = _problem()
    kw = dict(epochs=6, batch_size=32, key=3, optimizer="adam", learning_rate=1e6)
    with pytest.raises(errors.DivergenceError, match="the training loss diverged"):
        nnjax.fit(model, p0, X, y, **kw, divergence_guard=True)


# ---- stops ------------------------------------------------------------------------------------


def test_stop_on_signals_installs_and_restores_its_handlers():
    before = signal.getsignal(signal.SIGUSR1)
    with stop_on_signals() as stop:
        assert signal.getsignal(signal.SIGUSR1) == stop.handler
        os.kill(os.getpid(), signal.SIGUSR1)
        assert stop.requested and (stop.signum, stop.reason) == (signal.SIGUSR1, "SIGUSR1")
        with pytest.raises(errors.Interrupted, match="a second signal") as err:
            os.kill(os.getpid(), signal.SIGTERM)
        assert err.value.signum == signal.SIGTERM and errors.exit_code(err.value) == 143
    assert signal.getsignal(signal.SIGUSR1) == before


def test_stop_on_signals_leaves_an_ignored_signal_ignored():
    """nohup's SIGHUP, a background job's SIGINT: SIG_IGN stays, no stop is requested."""
    before = signal.signal(signal.SIGUSR1, signal.SIG_IGN)
    try:
        with stop_on_signals() as stop:
            assert signal.getsignal(signal.SIGUSR1) is signal.SIG_IGN
            os.kill(os.getpid(), signal.SIGUSR1)
            assert not stop.requested
        assert signal.getsignal(signal.SIGUSR1) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGUSR1, before)


def test_a_signal_mid_run_ends_in_a_checkpoint_and_the_resume_is_bit_identical(tmp_path):
    model, p0, X, y = _problem()
    full = nnjax.fit(model, p0, X, y, epochs=4, **FIT)
    d = tmp_path / "ckpt"

    def term(done, metrics):  # a SIGTERM arrives during epoch 1's hooks
        os.kill(os.getpid(), signal.SIGTERM)

    with stop_on_signals() as stop:
        with pytest.raises(TrainingStopped) as err:
            nnjax.fit(model, p0, X, y, epochs=4, **FIT, checkpoint_dir=d, checkpoint_every=3,
                      stop=stop, on_epochs=term)  # fmt: skip
    e = err.value
    assert (e.reason, e.epochs_done, e.checkpoint) == ("SIGTERM", 1, ck.npz_path(d, 1))
    assert ck.steps(d) == [1] and len(e.result.step_loss) == len(X) // 32
    res = nnjax.fit(model, p0, X, y, epochs=4, **FIT, checkpoint_dir=d, resume=True)
    assert _tree_equal(res.params, full.params) and _tree_equal(res.opt_state, full.opt_state)
    np.testing.assert_array_equal(res.step_loss, full.step_loss)


def test_a_stop_before_the_first_epoch_returns_an_empty_history():
    model, p0, X, y = _problem()
    with stop_on_signals() as stop:
        stop.request("test")
        with pytest.raises(TrainingStopped) as err:
            nnjax.fit(model, p0, X, y, epochs=3, **FIT, stop=stop)
    assert err.value.epochs_done == 0 and err.value.result.step_loss.shape == (0,)


def test_chunks_halved_by_their_time_bound_give_the_same_run(tmp_path):
    model, p0, X, y = _problem()
    full = nnjax.fit(model, p0, X, y, epochs=8, **FIT)
    d = tmp_path / "ckpt"
    res = nnjax.fit(model, p0, X, y, epochs=8, **FIT, checkpoint_dir=d, epochs_per_call=4,
                    keep=None, max_chunk_seconds=1e-9)  # fmt: skip
    assert _tree_equal(res.params, full.params)
    assert ck.steps(d) == [4, 8]  # chunks 4, 2, 1, 1: checkpoints every 4 epochs still


def test_a_short_disk_is_a_warning_before_the_run(tmp_path, monkeypatch):
    import shutil

    from nnjax import preflight
    from nnjax.train import FreeSpaceWarning

    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(preflight.shutil, "disk_usage", lambda p: usage._replace(free=10))
    model, p0, X, y = _problem()
    with warnings.catch_warnings():
        warnings.simplefilter("error", FreeSpaceWarning)
        with pytest.raises(FreeSpaceWarning, match=r"only 10 B free .*\(3 checkpoints kept"):
            nnjax.fit(model, p0, X, y, epochs=3, **FIT, checkpoint_dir=tmp_path / "ckpt")
    assert not (tmp_path / "ckpt" / "nnjax.lock").exists()
