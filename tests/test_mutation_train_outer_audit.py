"""The training engine's outer parts (stop flags, checkpoints, resume, the CLI's disk and
resume rules): each test fails on a small fault the suite let pass (its docstring)."""

import argparse
import errno
import inspect
import os
import signal
from types import SimpleNamespace

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import nnjax
from nnjax import checkpoint as ck
from nnjax import preflight
from nnjax.commands.train_outputs import _tag, metrics_rows, print_results
from nnjax.commands.train_resume import check_resume_options
from nnjax.commands.train_space import checkpoint_left
from nnjax.errors import DivergenceError
from nnjax.train import StopFlag, TrainingStopped
from nnjax.train.arguments import _batch_size
from nnjax.train.checkpoint_record import check_prng, outputs
from nnjax.train.checkpoints import FitCheckpoints
from nnjax.train.fitting import fit_loop
from nnjax.train.plan import make_plan
from nnjax.train.run_control import _run_control
from nnjax.train.signals import SignalStop, stop_on_signals


def _full(folder, step) -> OSError:
    """ENOSPC met writing checkpoint ``step``'s file in ``folder``."""
    return OSError(errno.ENOSPC, "No space left on device", ck.npz_path(folder, step))


def test_a_full_disk_at_a_checkpoint_names_the_newest_before_it(tmp_path):
    """Fault: EDQUOT left out: a quota met at a checkpoint was not named as a full disk, with
    the checkpoint to go on from (the steps at and after the one written are not)."""
    for s in (1, 2, 3):
        ck.save(tmp_path, s, {"w": np.zeros(2, np.float32)})
    d = str(tmp_path)
    assert checkpoint_left(d, _full(d, 3)) == (ck.npz_path(d, 2), True)
    assert checkpoint_left(d, _full(d, 4)) == (ck.npz_path(d, 3), False)
    quota = OSError(errno.EDQUOT, "Disk quota exceeded", ck.npz_path(d, 4))
    assert checkpoint_left(d, quota) == (ck.npz_path(d, 3), False)
    assert checkpoint_left(d, _full(d, 1)) is None  # nothing before the first


def _cli_args(**kw):
    base = dict(override=[], resume=True, lr=None, optimizer="adam", activation=None)
    return argparse.Namespace(**{**base, "devices": None, **kw})


def test_an_override_with_a_blank_field_is_named_as_such():
    """Fault: only a missing ``=`` checked: ``--override ' =1'`` reached the parser."""
    with pytest.raises(ValueError, match=r"--override  =1: expected FIELD=VALUE"):
        check_resume_options(_cli_args(override=[" =1"]))


def test_a_checkpoint_without_prng_settings_is_not_refused():
    """Fault: a missing setting compared as None: a checkpoint written before nnjax recorded
    JAX's PRNG settings could never be resumed."""
    check_prng("old.npz", {})
    check_prng("old.npz", None)
    with pytest.raises(ValueError, match="jax_default_prng_impl='rbg'"):
        check_prng("p.npz", {"prng_impl": "rbg"})


def _control(**kw):
    base = dict(
        epochs=4, epochs_per_call=None, checkpoint_dir=None, checkpoint_every=None, keep=3,
        resume=False, stop=None, on_epochs=None, override=None, divergence_guard=None,
        max_chunk_seconds=None,
    )  # fmt: skip
    return _run_control(**{**base, **kw})


def test_an_empty_override_without_a_resume_is_refused():
    """Fault: ``override is not None`` as ``override``: override={} beside a fresh run passed."""
    for override in ({}, []):
        with pytest.raises(ValueError, match="override is for a resume"):
            _control(override=override)


def test_the_checkpoint_interval_sets_the_chunk_and_every_chunk_is_saved(tmp_path):
    """With ``checkpoint_every`` given, a call is one interval; with ``epochs_per_call``
    only, the interval is a call (fit's docstring). Fault: the interval then 1 epoch (a
    chunk cut by ``max_chunk_seconds`` saved every epoch, the free space asked for 2x)."""
    c = _control(checkpoint_dir=tmp_path, checkpoint_every=2)
    assert (c["epochs_per_call"], c["checkpoint_every"]) == (2, 2)
    c = _control(checkpoint_dir=tmp_path, epochs_per_call=2)
    assert (c["epochs_per_call"], c["checkpoint_every"]) == (2, 2)
    c = _control(stop=SignalStop())
    assert (c["epochs_per_call"], c["max_chunk_seconds"]) == (1, 5.0)


def test_signals_restore_every_previous_handler():
    """Fault: the first handler installed not restored on leaving the block."""
    nums, mine = (signal.SIGUSR1, signal.SIGTERM), lambda signum, frame: None
    before = [signal.getsignal(s) for s in nums]
    try:
        signal.signal(signal.SIGUSR1, mine)
        with stop_on_signals(("SIGTERM", "SIGUSR1")) as flag:
            assert [signal.getsignal(s) for s in nums] == [flag.handler] * 2
        assert [signal.getsignal(s) for s in nums] == [mine, before[1]]
    finally:
        for s, h in zip(nums, before):
            signal.signal(s, h if h is not None else signal.SIG_DFL)


def test_a_full_batch_optimizer_takes_a_batch_of_n():
    """Fault: ``batch_size not in (None, n)`` as ``is not None``: gd refused batch_size=n,
    which fit's docstring gives as the same full batch."""
    assert _batch_size(30, 30, "gd") == 30 and _batch_size(None, 30, "gd") is None
    with pytest.raises(ValueError, match=r"must be None \(or n = 30\), got batch_size=10"):
        _batch_size(10, 30, "gd")


def _problem(n=30):
    X = np.random.default_rng(0).normal(size=(n, 2)).astype(np.float32)
    y, model = (X[:, 0] * X[:, 1] > 0).astype(np.int32), nnjax.mlp([6, 2])
    return model, model.init(jax.random.key(0), (-1, 2))[1], X, y


def test_the_free_space_asked_is_one_checkpoint_more_than_the_run_keeps(tmp_path, monkeypatch):
    """5 epochs saved every 2: 3 saves (2, 4, 5), so keep=None and keep=5 keep 3, keep=1 one;
    one more is written before the oldest goes. Faults: the saves counted as 5 // 2 = 2;
    ``keep`` taken above the saves; the one being written left out."""
    needed = []

    def measure(directory, needed_bytes, what="directory"):
        needed.append(needed_bytes)
        raise LookupError("measured")

    monkeypatch.setattr(preflight, "check_free_space", measure)
    model, p0, X, y = _problem()
    for keep in (None, 5, 1):
        with pytest.raises(LookupError, match="measured"):
            nnjax.fit(
                model, p0, X, y, epochs=5, batch_size=10, checkpoint_dir=tmp_path / "c",
                checkpoint_every=2, keep=keep,
            )  # fmt: skip
    one = needed[2] // 2
    assert one > 0 and needed == [4 * one, 4 * one, 2 * one]


def test_a_run_split_by_a_resume_saves_and_ends_as_the_whole_run(tmp_path):
    """Every 2 epochs of 5, one epoch a call: the whole run saves 2, 4, 5; one that ran 2
    epochs and resumed to 5 saves the same epochs and ends bit-identical.
    Fault: the interval counted from 0, not from the resumed epoch (a save at 3)."""
    model, p0, X, y = _problem()
    kw = dict(batch_size=10, checkpoint_every=2, keep=None, epochs_per_call=1, key=7)
    whole = nnjax.fit(model, p0, X, y, epochs=5, **kw, checkpoint_dir=tmp_path / "a")
    nnjax.fit(model, p0, X, y, epochs=2, **kw, checkpoint_dir=tmp_path / "b")
    split = nnjax.fit(model, p0, X, y, epochs=5, **kw, checkpoint_dir=tmp_path / "b", resume=True)
    assert ck.steps(tmp_path / "a") == ck.steps(tmp_path / "b") == [2, 4, 5]
    # the interval counts from the last save (fit's docstring): stopped at 3, saves at 5
    nnjax.fit(model, p0, X, y, epochs=3, **kw, checkpoint_dir=tmp_path / "c")
    odd = nnjax.fit(model, p0, X, y, epochs=5, **kw, checkpoint_dir=tmp_path / "c", resume=True)
    assert ck.steps(tmp_path / "c") == [2, 3, 5]
    np.testing.assert_array_equal(odd.step_loss, whole.step_loss)
    meta = ck.load(tmp_path / "b", 4).metadata  # 3 steps an epoch
    assert (meta["epoch"], meta["step"], meta["epochs"]) == (4, 12, 5)
    np.testing.assert_array_equal(split.step_loss, whole.step_loss)
    for a, b in zip(jax.tree.leaves(split.params), jax.tree.leaves(whole.params)):
        np.testing.assert_array_equal(a, b)


def test_a_stop_asked_by_on_epochs_saves_that_epoch_once(tmp_path):
    """on_epochs asks for a stop after epoch 2 of 4, whose checkpoint the hooks wrote; the hooks
    run again with the stop (driver): nothing is due at epoch 2 any more. Fault: ``done <=
    last`` as ``<``: epoch 2 saved again, its first copy set aside under abandoned/."""
    model, p0, X, y = _problem()
    flag, seen = StopFlag(), []

    def on_epochs(done, metrics):
        seen.append(done)
        if done == 2:
            flag.request("enough")

    with pytest.raises(TrainingStopped) as e:
        nnjax.fit(
            model, p0, X, y, epochs=4, batch_size=10, checkpoint_dir=tmp_path, stop=flag,
            on_epochs=on_epochs,
        )  # fmt: skip
    assert seen == [1, 2] and e.value.epochs_done == 2
    assert e.value.checkpoint == ck.npz_path(tmp_path, 2)
    names = [f"ckpt_0000000{s}.{x}" for s in (1, 2) for x in ("json", "npz")]
    assert sorted(os.listdir(tmp_path)) == names  # the lock gone with the run


def test_the_checkpoint_to_go_back_to_is_the_newest_at_or_before_the_epoch(tmp_path):
    """newest_before(e), where a divergence from epoch e + 1 on sends the user: the newest of
    the directory's and the one resumed from, at epoch <= e. Faults: the resumed one taken
    only below e; the oldest found taken."""
    for s in (1, 3):
        ck.save(tmp_path, s, {"w": np.zeros(2, np.float32)})
    kw = dict(key=0, epochs=5, steps_per_epoch=1)
    run = FitCheckpoints(tmp_path, 1, None, {}, **kw)
    run.resumed = (2, "elsewhere/ckpt_00000002.npz")  # as restore() records it
    got = [run.newest_before(e) for e in range(5)]
    one, three = ck.npz_path(tmp_path, 1), ck.npz_path(tmp_path, 3)
    assert got == [None, one, "elsewhere/ckpt_00000002.npz", three, three]
    alone = FitCheckpoints(None, 1, None, {}, **kw)
    alone.resumed = (4, "r/ckpt_00000004.npz")
    assert [alone.newest_before(e) for e in (3, 4)] == [None, "r/ckpt_00000004.npz"]


def test_a_loss_history_of_another_length_than_epochs_times_steps_is_refused(tmp_path):
    """Fault: the count unchecked: 6 step losses of an epoch-2 record read at 2 steps an
    epoch came back as 3 epochs of history."""
    tree = {"step_loss": np.ones(6, np.float32), "metrics": {"step_loss_mean": np.ones(2)}}
    ck.save(tmp_path, 2, tree, metadata={"epoch": 2, "metric_names": ["step_loss_mean"]})
    saved = ck.load(tmp_path)
    assert outputs(saved, 3).step_loss.shape == (2, 3)
    with pytest.raises(ValueError) as e:
        outputs(saved, 2)
    assert str(e.value).endswith(
        "its loss history holds 6 step losses, not the 4 of 2 epoch(s) of 2 steps; resume "
        "from another checkpoint, or start a new run"
    )


def test_the_chunked_steps_a_call_reach_the_host_loop():
    """n = 30, b = 5: 6 steps an epoch; "chunked:4" runs calls of 3 (the largest divisor up
    to 4), "chunked" of 6, "per_step" of 1. Fault: fit's K not passed on (every call 1 step)."""
    model, p0, X, y = _problem()
    defaults = {k: p.default for k, p in inspect.signature(nnjax.fit).parameters.items()}
    base = {**defaults, "model": model, "params": p0, "X": X, "y": y, "batch_size": 5}
    ks = [fit_loop(make_plan(**{**base, "execution": ex})).k for ex in ("chunked:4", "chunked")]
    assert ks + [fit_loop(make_plan(**{**base, "execution": "per_step"})).k] == [3, 6, 1]


def test_a_divergence_names_the_checkpoint_before_its_first_epoch(tmp_path):
    """A linear least-squares fit at rate 1e-3 for 2 epochs, then 5 (|1 - 5 * 2 E[x^2]| > 1:
    each step multiplies the loss): epoch 3 is above 10 x the first loss, and the error sends
    the user to epoch 2's checkpoint. Fault: fit's guard not given the checkpoints (None)."""
    X = np.random.default_rng(1).normal(size=(30, 1)).astype(np.float32)
    p0 = (model := nnjax.mlp([1])).init(jax.random.key(0), (-1, 1))[1]
    rate = lambda t: jnp.where(t < 6, 1e-3, 5.0)  # noqa: E731
    with pytest.raises(DivergenceError) as e:
        nnjax.fit(
            model, p0, X, X[:, 0] + 1.0, optimizer="sgd", learning_rate=rate, loss="mse",
            epochs=4, batch_size=10, checkpoint_dir=tmp_path, divergence_guard=(10.0, 1),
        )  # fmt: skip
    assert "epochs 3-3" in str(e.value) and e.value.last_checkpoint == ck.npz_path(tmp_path, 2)


def test_the_final_lines_show_the_metrics_of_the_best_epoch_kept(capsys):
    """Early stopping kept epoch 2 of 3 (1-based): the lines show index 1's numbers. Fault:
    ``best_epoch - 1`` as ``best_epoch``: epoch 3's numbers shown (an IndexError when the
    best epoch is the last)."""
    m = {k: np.array([0.9, 0.5, 0.7]) + i for i, k in enumerate(["train", "val"])}
    metrics = {
        f"{k}_{w}": v + (w == "accuracy") for k, v in m.items() for w in ("loss", "accuracy")
    }
    res = SimpleNamespace(metrics=metrics, best_epoch=2, compile_time=1.0, run_time=2.0)
    print_results(res, {"loss": 0.25, "accuracy": 0.75}, "val", 4.0)
    first = capsys.readouterr().out.splitlines()[0]
    assert first == (
        "train loss 0.5000 acc 1.5000 | val loss 1.5000 acc 2.5000 | test loss 0.2500 acc 0.7500"
    )


def test_metrics_rows_and_tensorboard_tags_are_per_epoch_and_per_set():
    """metrics.csv: epoch e's row holds epoch e's learning rate (the module docstring), a
    time unknown is nan; TensorBoard tags ``loss/{name}``. Faults: every row given the last
    epoch's rate; ``val_loss`` tagged ``loss/val_``."""
    rows = metrics_rows({"val_loss": [3.0, 4.0], "step_loss_mean": [1.0, 2.0]}, [0.5], [0.1, 0.2])
    assert [list(r) for r in rows] == [
        ["epoch", "step_loss_mean", "val_loss", "wall_time_s", "learning_rate"]
    ] * 2
    keys = ("epoch", "step_loss_mean", "val_loss", "learning_rate")
    values = [[r[k] for k in keys] for r in rows]
    assert values == [[1, 1.0, 3.0, 0.1], [2, 2.0, 4.0, 0.2]]
    assert rows[0]["wall_time_s"] == 0.5 and np.isnan(rows[1]["wall_time_s"])
    tags = [_tag(k) for k in ("val_loss", "train_accuracy", "step_loss_mean")]
    assert tags == ["loss/val", "accuracy/train", "step_loss_mean"]
