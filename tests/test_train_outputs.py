"""``nnjax train --out``'s files: written as one group, so a full disk at any of them or a
signal while they are renamed never leaves a folder that mixes two runs (it left the new
history.json beside the old model); a stateless model over a stateful one leaves no old
state.npz; after a resume, metrics.csv gives nan, not a wrong time, for the epochs run
before it."""

import csv
import errno
import json
import math
import os
import signal
import threading
from types import SimpleNamespace

import jax
import numpy as np
import pytest
from disk_faults import enospc_when_writing

import nnjax
from nnjax import io as nio
from nnjax.cli import main
from nnjax.commands import train_outputs
from nnjax.data import Standardizer
from nnjax.layers import BatchNorm
from nnjax.train import driver

RUN = ["train", "--dataset", "moons", "--hidden", "8", "--batch-size", "32"]
# every file of a run of a stateless model, in the order they are written
WRITTEN = ("history.json", "loss.png", "metrics.csv", "accuracy.png", "params.npz", "model.json")


# fit's compiled programs kept in a folder of this module's (tests/conftest.py)
pytestmark = pytest.mark.usefixtures("keep_compiled_programs")


def _files(folder) -> dict:
    """Every file in ``folder`` (temporary ones included) with its bytes."""
    return {n: (folder / n).read_bytes() for n in sorted(os.listdir(folder))}


def _one_error_line(err: str) -> str:
    """The one error line, last on stderr, after only status and progress lines."""
    lines = [line for line in err.strip().splitlines() if "warning:" not in line]
    assert "Traceback" not in err and lines, err
    assert all(x.startswith(("preparing ", "epoch ", "resuming ")) for x in lines[:-1]), err
    assert lines[-1].startswith("nnjax train: error: "), lines[-1]
    return lines[-1]


@pytest.fixture(scope="module")
def first_run(tmp_path_factory) -> dict:
    """The files of a first run (3 epochs, seed 0), to copy into a test's --out."""
    out = tmp_path_factory.mktemp("first") / "out"
    assert main([*RUN, "--epochs", "3", "--out", str(out)]) == 0
    return _files(out)


def _copy(files: dict, folder):
    folder.mkdir()
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return folder


# ---- one group --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", WRITTEN)
def test_a_full_disk_at_any_file_leaves_the_first_run_whole(
    first_run, tmp_path, capsys, monkeypatch, name
):
    """Review: a disk full at loss.png left the new history.json (seed 3, 2 epochs) beside
    the old model; at model.json, the new history, plots and metrics beside the old model."""
    assert sorted(first_run) == sorted(WRITTEN)
    out = _copy(first_run, tmp_path / "out")
    enospc_when_writing(monkeypatch, name)
    argv = [*RUN, "--epochs", "2", "--seed", "3", "--out", str(out), "--overwrite"]
    assert main(argv) == 3
    line = _one_error_line(capsys.readouterr().err)
    assert line.endswith(f"{out}/{name}: No space left on device (errno 28, ENOSPC)"), line
    assert _files(out) == first_run  # byte for byte, and no temporary file


def test_a_signal_during_the_renames_ends_the_run_after_the_last(
    first_run, tmp_path, capsys, monkeypatch
):
    """SIGTERM sent (to the process: JAX's threads may receive it) after the first rename:
    the run ends with its one line and exit 143 once every file is the new run's (it ended
    between two renames: the new history.json beside the old model)."""
    out = _copy(first_run, tmp_path / "out")
    real_replace, sent = os.replace, []

    def replace(src, dst):
        real_replace(src, dst)
        if os.path.dirname(os.fspath(dst)) == str(out) and not sent:
            sent.append(dst)
            os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(os, "replace", replace)
    argv = [*RUN, "--epochs", "2", "--seed", "3", "--out", str(out), "--overwrite"]
    assert main(argv) == 128 + signal.SIGTERM
    monkeypatch.undo()
    assert sent == [str(out / "history.json")]
    line = _one_error_line(capsys.readouterr().err)
    assert line == (
        f"nnjax train: error: interrupted by SIGTERM: training had finished; the results are "
        f"in {out}/"
    ), line
    after = _files(out)
    assert sorted(after) == sorted(WRITTEN)
    assert all(after[n] != first_run[n] for n in ("history.json", "params.npz", "model.json"))
    saved, history = nnjax.load(out).meta["config"], _json(out / "history.json")["config"]
    assert saved["seed"] == history["seed"] == 3 and saved["epochs"] == history["epochs"] == 2


def _json(path):
    return json.loads(path.read_text())


def test_a_stateless_run_over_a_stateful_model_leaves_no_old_state(tmp_path):
    out = tmp_path / "out"
    bn = nnjax.serial(nnjax.Dense(4), BatchNorm(), nnjax.Dense(2))
    _, params, state = bn.init(jax.random.key(4), (-1, 2))
    nnjax.save(out, bn, params, state=state, input_shape=(-1, 2))
    assert (out / "state.npz").is_file()
    assert main([*RUN, "--epochs", "2", "--out", str(out), "--overwrite"]) == 0
    assert sorted(os.listdir(out)) == sorted(WRITTEN)
    assert nnjax.load(out).state == ()  # the new, stateless model


# ---- a stateful model's files, in the same group ----------------------------------------------


@pytest.fixture(scope="module")
def stateful_runs():
    """Two fits of a BatchNorm model (seeds 0 and 1) with the inputs of write_more."""
    X = np.random.default_rng(0).normal(size=(64, 2)).astype(np.float32)
    y = (X[:, 0] > 0).astype(np.int32)
    model = nnjax.serial(nnjax.Dense(4), BatchNorm(), nnjax.Dense(2))
    runs = []
    for seed in (0, 1):
        _, params, state = model.init(jax.random.key(seed), (-1, 2))
        evals = {"train": (X, y), "test": (X, y)}
        runs.append(nnjax.fit(model, params, X, y, state=state, epochs=2, eval_data=evals))
    ds = SimpleNamespace(
        standardizer=Standardizer.fit(X), label_names=[0, 1], X_train=X, feature_names=None
    )
    return model, runs, ds


def _write(out, model, res, ds, seed: int) -> list[str]:
    log = train_outputs.EpochLog()
    log.times = [1.0, 2.0]
    config = {"seed": seed, "target": None}
    return train_outputs.write_more(
        str(out), model, "softmax_cross_entropy", res, ds, config, log, {"name": "test"}
    )


@pytest.mark.parametrize("name", [*WRITTEN[:-1], "state.npz", "model.json"])
def test_a_stateful_model_s_files_are_written_in_the_group(
    stateful_runs, tmp_path, monkeypatch, name
):
    model, (first, second), ds = stateful_runs
    out = tmp_path / "out"
    written = _write(out, model, first, ds, 0)
    assert sorted(written) == sorted([*WRITTEN, "state.npz"]) and written[0] == "params.npz"
    before = _files(out)
    enospc_when_writing(monkeypatch, name)
    with pytest.raises(OSError) as err:
        _write(out, model, second, ds, 1)
    assert err.value.errno == errno.ENOSPC and err.value.filename == str(out / name)
    assert _files(out) == before
    monkeypatch.undo()
    _write(out, model, second, ds, 1)
    loaded = nnjax.load(out)
    jax.tree.map(np.testing.assert_array_equal, loaded.state, second.state)
    assert loaded.meta["config"] == {"seed": 1, "target": None}  # the data: history.json only
    assert _json(out / "history.json")["data"] == {"name": "test"}


# ---- the signals held during the renames ------------------------------------------------------


class _Stopped(Exception):
    pass


def _raise_stopped(signum, frame):
    raise _Stopped(signum)


@pytest.fixture
def usr1_raises():
    previous = signal.signal(signal.SIGUSR1, _raise_stopped)
    yield
    signal.signal(signal.SIGUSR1, previous)


def _signal_at_first_rename(monkeypatch):
    real_replace = os.replace

    def replace(src, dst):
        real_replace(src, dst)
        monkeypatch.setattr(os, "replace", real_replace)
        os.kill(os.getpid(), signal.SIGUSR1)  # to the process: any thread may receive it

    monkeypatch.setattr(os, "replace", replace)


NAMES = ["a.npz", "b.npz", "model.json"]


def test_a_signal_between_renames_is_served_after_the_last(tmp_path, monkeypatch, usr1_raises):
    for n in NAMES:
        (tmp_path / n).write_text(f"old {n}")
    _signal_at_first_rename(monkeypatch)
    with pytest.raises(_Stopped):
        nio.atomic_write_files([(tmp_path / n, f"new {n}".encode()) for n in NAMES])
    assert _files(tmp_path) == {n: f"new {n}".encode() for n in NAMES}
    assert signal.getsignal(signal.SIGUSR1) is _raise_stopped


def test_a_rename_that_fails_restores_the_handlers_and_serves_the_signal(
    tmp_path, monkeypatch, usr1_raises
):
    (tmp_path / "b.npz").mkdir()  # a folder: the second rename fails
    _signal_at_first_rename(monkeypatch)
    with pytest.raises(_Stopped) as err:
        nio.atomic_write_files([(tmp_path / n, b"new") for n in NAMES])
    assert isinstance(err.value.__context__, OSError)  # the rename's error, then the signal
    assert sorted(os.listdir(tmp_path)) == ["a.npz", "b.npz"]  # no temporary file
    assert signal.getsignal(signal.SIGUSR1) is _raise_stopped


def test_signals_deferred_leaves_ignored_signals_and_other_threads_alone(tmp_path, usr1_raises):
    previous = signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        with nio.signals_deferred():
            assert signal.getsignal(signal.SIGTERM) is signal.SIG_IGN
            assert signal.getsignal(signal.SIGUSR1) is not _raise_stopped
        assert signal.getsignal(signal.SIGUSR1) is _raise_stopped
    finally:
        signal.signal(signal.SIGTERM, previous)
    errors = []

    def write():
        try:
            nio.atomic_write_files([(tmp_path / "x.json", b"{}")])
        except BaseException as e:  # signal.signal outside the main thread: ValueError
            errors.append(e)

    thread = threading.Thread(target=write)
    thread.start()
    thread.join()
    assert errors == [] and (tmp_path / "x.json").read_bytes() == b"{}"


# ---- wall times after a resume ----------------------------------------------------------------


def test_epoch_log_times_unknown_before_a_resume():
    ticks = iter([0.0, 1.5, 2.5])
    log = train_outputs.EpochLog(clock=lambda: next(ticks))
    log.epochs_done(4, {})  # resumed after epoch 3: this process ran epoch 4
    log.epochs_done(5, {})
    assert [math.isnan(t) for t in log.times] == [True, True, True, False, False]
    assert log.times[3:] == [1.5, 2.5]
    fresh = train_outputs.EpochLog(clock=iter([0.0, 1.0, 2.0]).__next__)
    fresh.epochs_done(1, {})
    fresh.epochs_done(2, {})
    assert fresh.times == [1.0, 2.0]


def test_metrics_csv_after_a_resume_has_nan_for_the_epochs_before_it(tmp_path, capsys, monkeypatch):
    """Review: every epoch before the resume had the time of the first resumed epoch."""
    ckpt, out = tmp_path / "ckpt", tmp_path / "out"
    argv = [*RUN, "--epochs", "4", "--checkpoint-dir", str(ckpt), "--out", str(out)]
    hooks = driver._call_hooks

    def stop_after_epoch_2(hook_list, report, stop):
        hooks(hook_list, report, stop)
        if report.end == 2:
            os.kill(os.getpid(), signal.SIGTERM)  # served by the run: a checkpoint, exit 143

    monkeypatch.setattr(driver, "_call_hooks", stop_after_epoch_2)
    assert main(argv) == 128 + signal.SIGTERM
    monkeypatch.undo()
    assert "stopped after epoch 2 of 4" in capsys.readouterr().err
    assert main([*argv, "--resume"]) == 0
    with open(out / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3, 4]
    wall = [float(r["wall_time_s"]) for r in rows]
    assert math.isnan(wall[0]) and math.isnan(wall[1])
    assert all(math.isfinite(t) and t > 0 for t in wall[2:]) and wall[2] < wall[3], wall


def test_the_loss_plot_of_a_run_whose_loss_reaches_zero_warns_nothing(recwarn):
    """A loss of exactly 0 (float32 underflow on separable data): the log scale made
    matplotlib warn 'Data has no positive values' and hide the points; linear now."""
    import types

    from nnjax.commands.train_outputs import loss_png

    zeros = np.zeros(3, np.float32)
    res = types.SimpleNamespace(step_loss=np.zeros(6), metrics={"train_loss": zeros})
    res.metrics["test_loss"] = zeros
    assert loss_png(res).startswith(b"\x89PNG")
    assert not [w for w in recwarn if "positive" in str(w.message)], [
        str(w.message) for w in recwarn
    ]
    res.step_loss = np.array([1.0, 0.5, 0.25, 0.1, 0.05, 0.01])
    res.metrics = {"train_loss": np.array([0.5, 0.1, 0.01]), "test_loss": np.array([0.6, 0.2, 0.1])}
    assert loss_png(res).startswith(b"\x89PNG")
