"""Persistence and prediction: each test fails on a fault the suite let pass (its docstring)."""

import errno
import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading

import jax
import numpy as np
import pytest

import nnjax
from nnjax import _host
from nnjax import checkpoint as ck
from nnjax.checkpoint.record import _digest
from nnjax.layers.core import init_model
from nnjax.lock import LOCK_NAME, DirectoryLock, DirectoryLockedError, StaleLockWarning
from nnjax.models import logistic_regression
from nnjax.predictor import Predictor
from nnjax.rescue import write_or_rescue
from nnjax.runconfig import config_diff
from nnjax.saved_format import _body_checksum
from nnjax.standardizer import Standardizer
from nnjax.train.checkpoint_record import record_problem
from nnjax.train.config import check_resume, fit_config


def _tree(v=0.0):
    return {"w": np.full((2, 3), v, np.float32), "n": np.arange(4, dtype=np.int32)}


def test_a_truncated_checkpoint_is_named_truncated_with_both_sizes(tmp_path):
    """Fault: the size check dropped: a truncated file was only 'corrupt: its sha256...'."""
    ck.save(tmp_path, 1, _tree(1.0))
    npz = ck.save(tmp_path, 2, _tree(2.0))
    size = os.path.getsize(npz)
    with open(npz, "r+b") as f:
        f.truncate(size - 10)
    with pytest.raises(ck.CorruptCheckpointError) as e:
        ck.load(tmp_path)
    assert f"checkpoint {npz} is truncated: {size - 10} bytes, not {size}" in str(e.value)
    assert e.value.latest_valid.step == 1


def test_a_checkpoint_copied_under_another_steps_name_is_refused(tmp_path):
    """Fault: the record's step unchecked: a copy of step 2 named 3 loaded as step 3."""
    ck.save(tmp_path, 2, _tree(2.0))
    for ext in ("npz", "json"):
        shutil.copy(tmp_path / f"ckpt_00000002.{ext}", tmp_path / f"ckpt_00000003.{ext}")
    with pytest.raises(ck.CorruptCheckpointError) as e:
        ck.load(tmp_path, 3)
    js = tmp_path / "ckpt_00000003.json"
    assert f"checkpoint metadata {js} is of step 2, not 3" in str(e.value)
    assert e.value.latest_valid.step == 2


def test_latest_valid_before_a_step_excludes_that_step(tmp_path):
    """Fault: ``s >= before`` as ``s > before``: latest_valid(before=2) returned step 2."""
    for s in (1, 2, 3):
        ck.save(tmp_path, s, _tree(s))
    assert ck.latest_valid(tmp_path, before=2).step == 1
    assert ck.latest_valid(tmp_path, before=1) is None
    assert ck.latest_valid(tmp_path, before=4).step == 3


@pytest.mark.parametrize("keep", [0, -1])
def test_keep_below_one_is_refused_before_anything_is_written(tmp_path, keep):
    """Fault: ``keep < 1`` as ``keep < 0``: keep=0 was taken and deleted older checkpoints."""
    ck.save(tmp_path, 1, _tree(1.0))
    with pytest.raises(ValueError) as e:
        ck.save(tmp_path, 2, _tree(2.0), keep=keep)
    assert str(e.value) == f"checkpoint.save: keep must be an int >= 1 or None, got {keep}"
    assert ck.steps(tmp_path) == [1]


def test_a_finished_run_resumes_at_its_own_epochs_as_itself(tmp_path):
    """Fault: ``epoch > epochs`` as ``>=``: a finished run resumed with its epochs was refused."""
    X = np.random.default_rng(0).normal(size=(40, 2)).astype(np.float32)
    y, model = (X[:, 0] * X[:, 1] > 0).astype(np.int32), nnjax.mlp([8, 2])
    p0, FIT = model.init(jax.random.key(0), (-1, 2))[1], dict(batch_size=10, key=3)
    done = nnjax.fit(model, p0, X, y, epochs=2, **FIT, checkpoint_dir=tmp_path)
    again = nnjax.fit(model, p0, X, y, epochs=2, **FIT, checkpoint_dir=tmp_path, resume=True)
    same = jax.tree.map(
        lambda a, b: a.dtype == b.dtype and np.array_equal(a, b), done.params, again.params
    )
    assert jax.tree.all(same)
    np.testing.assert_array_equal(again.metrics["step_loss_mean"], done.metrics["step_loss_mean"])
    assert len(again.metrics["step_loss_mean"]) == 2 and ck.steps(tmp_path) == [1, 2]


def test_a_fit_record_whose_epoch_is_not_its_files_step_is_refused(tmp_path):
    """Fault: ``epoch != ck.step`` dropped: a step-2 file saying epoch 1 passed as a record."""
    tree = {"step_loss": np.ones(3, np.float32), "metrics": {"step_loss_mean": np.ones(1)}}
    ck.save(tmp_path, 2, tree, metadata={"epoch": 1, "metric_names": ["step_loss_mean"]})
    assert record_problem(ck.load(tmp_path)) == "'epoch' 1 is not the file's step 2"
    ck.save(tmp_path / "ok", 1, tree, metadata={"epoch": 1, "metric_names": ["step_loss_mean"]})
    assert record_problem(ck.load(tmp_path / "ok")) is None


@pytest.mark.parametrize("dtype", [np.float64, np.float16])
def test_standardizer_statistics_come_back_from_json_in_their_own_dtype(dtype):
    """Fault: ``dtype`` left out of to_dict: float64 statistics came back float32."""
    s = Standardizer(np.array([0.1, -2.5], dtype), np.array([1 / 3, 7.0], dtype))
    d = json.loads(json.dumps(s.to_dict()))
    back = Standardizer.from_dict(d)
    assert d["dtype"] == np.dtype(dtype).name and back.mean.dtype == back.std.dtype == dtype
    assert np.array_equal(back.mean, s.mean) and np.array_equal(back.std, s.std)
    x = np.array([[1.0, 2.0]], dtype)
    assert np.array_equal(back.transform(x), (x - s.mean) / s.std)


def _lock_file(d, host, pid, age):
    path = d / LOCK_NAME
    path.write_text(json.dumps({"pid": pid, "host": host, "started": "2024-01-01T00:00:00"}))
    os.utime(path, (os.path.getmtime(path) - age,) * 2)
    return path


def test_another_hosts_lock_is_taken_over_once_its_heartbeat_is_older_than_stale_after(tmp_path):
    """Fault: the age compared with 2 * stale_after (the suite's 3600 s vs 600 s passed)."""
    path = _lock_file(tmp_path, "node-17.cluster", 4242, age=3000)
    with pytest.raises(DirectoryLockedError, match="process 4242 on host node-17.cluster"):
        DirectoryLock(tmp_path, stale_after=3100, heartbeat=None).acquire()
    with pytest.warns(StaleLockWarning, match=r"is 3000 s old \(stale_after=2000 s\)"):
        lock = DirectoryLock(tmp_path, stale_after=2000, heartbeat=None).acquire()
    assert lock.taken_over["pid"] == 4242 and json.loads(path.read_text())["pid"] == os.getpid()
    lock.release()


def test_a_lock_record_being_written_is_waited_for_not_called_unreadable(tmp_path):
    """Fault: the 2 s grace for an unreadable record dropped: a record not yet written was
    refused as 'unreadable' at once instead of read again (here: a gone process's)."""
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    (tmp_path / LOCK_NAME).write_text("")

    timer = threading.Timer(0.4, _lock_file, (tmp_path, _host.hostname(), gone.pid, 0))
    timer.start()
    try:
        with pytest.warns(StaleLockWarning, match=f"process {gone.pid} is gone"):
            DirectoryLock(tmp_path, heartbeat=None).acquire().release()
    finally:
        timer.join()


def test_a_lock_file_naming_this_very_process_is_an_earlier_runs(tmp_path):
    """Fault: the own-pid check dropped: a lock file left with our pid (a container whose
    runs all have one pid) was refused as held by a live process, forever."""
    _lock_file(tmp_path, _host.hostname(), os.getpid(), age=0)
    want = f"process {os.getpid()} \\(this process's id\\) does not hold it: an earlier run"
    with pytest.warns(StaleLockWarning, match=want):
        DirectoryLock(tmp_path, heartbeat=None).acquire().release()


@pytest.mark.parametrize("version", [0, -1])
def test_a_saved_model_of_a_version_below_1_is_refused(tmp_path, version):
    """Fault: ``version != 1`` as ``version > 1``: format_version 0 was read as 1."""
    model = nnjax.mlp([3, 2])
    params = model.init(jax.random.key(0), (-1, 2))[1]
    nnjax.save(tmp_path / "m", model, params, input_shape=(-1, 2))
    path = tmp_path / "m" / "model.json"
    meta = json.loads(path.read_text())
    meta["format_version"] = version
    meta["checksum"] = _body_checksum(meta)
    path.write_text(json.dumps(meta))
    with pytest.raises(ValueError) as e:
        nnjax.load(tmp_path / "m")
    assert f"model.json: format version {version} (written by nnjax" in str(e.value)
    assert str(e.value).endswith("reads version 1 only")


def test_a_float64_model_is_fed_float64_inputs():
    """Fault: the predictor's dtype fixed at float32: 1 + 1e-12 reached a float64 model as 1."""
    with jax.enable_x64(True):
        model = logistic_regression(1)
        _, _, state = init_model(model, jax.random.key(0), (-1, 1))
        params = {"W": np.ones((1, 1)), "b": np.zeros(1)}
        meta = {"label_names": ["no", "yes"], "loss": "binary_cross_entropy_with_logits"}
        p = Predictor(model, params, state, None, {**meta, "model": {"input_shape": [-1, 1]}})
        X = np.array([[1.0 + 1e-12], [-3e-300]])
        got = p.transform(X)
        assert got.dtype == np.float64 and np.array_equal(got, X)
        assert p.predict(X).tolist() == ["yes", "no"]


def test_a_rescue_that_fails_with_a_value_error_leaves_the_first_error_standing(tmpdir_here):
    """Fault: only an OSError of the rescue write was caught: a ValueError there (the results
    refused in the temporary folder too) replaced the disk error that stopped --out."""

    def write(folder):
        if folder == "OUT":
            raise OSError(errno.ENOSPC, "No space left on device", "OUT/results.json")
        (tmpdir_here / "seen").write_text(folder)
        shutil.copy(tmpdir_here / "seen", folder)  # half the results were written
        raise ValueError("not JSON data")

    with pytest.raises(OSError) as e:
        write_or_rescue("OUT", write, "compare", "the results")
    assert e.value.errno == errno.ENOSPC and e.value.filename == "OUT/results.json"
    assert not os.path.exists((tmpdir_here / "seen").read_text())  # the half folder went


@pytest.mark.parametrize("std", [0.0, -2.0])
def test_a_standardizer_dict_with_a_std_not_above_zero_is_refused(std):
    """Fault: ``std > 0`` dropped from from_dict: a std of 0 loaded (inputs became inf)."""
    with pytest.raises(ValueError) as e:
        Standardizer.from_dict({"mean": [1.0, 5.0], "std": [2.0, std]})
    assert str(e.value) == "Standardizer.from_dict: mean must be finite and std finite > 0; " + (
        f"feature 1 has mean 5 and std {std:g} (1 such feature(s))"
    )


def test_a_checkpoint_record_of_format_0_is_refused(tmp_path):
    """Fault: ``version < 1`` as ``version < 0``: a record of format 0 loaded as format 1."""
    ck.save(tmp_path, 1, _tree(1.0))
    js = tmp_path / "ckpt_00000001.json"
    meta = {k: v for k, v in json.loads(js.read_text()).items() if k != "meta_sha256"}
    js.write_text(json.dumps({**meta, "format": 0, "meta_sha256": _digest({**meta, "format": 0})}))
    with pytest.raises(ck.CorruptCheckpointError) as e:
        ck.load(tmp_path)
    want = f"checkpoint metadata {js} is corrupt (not a checkpoint record: format 0 (nnjax"
    assert want in str(e.value)


def test_a_corrupt_checkpoint_offers_an_older_one_never_a_newer(tmp_path):
    """Fault: the hint looked at every step: a damaged step 1 offered the later step 2."""
    ck.save(tmp_path, 1, _tree(1.0))
    ck.save(tmp_path, 2, _tree(2.0))
    with open(tmp_path / "ckpt_00000001.npz", "r+b") as f:
        f.seek(-5, 2)
        f.write(b"XXXXX")
    with pytest.raises(ck.CorruptCheckpointError) as e:
        ck.load(tmp_path, 1)
    assert e.value.latest_valid is None
    assert str(e.value).endswith(
        "does not match "
        + str(tmp_path / "ckpt_00000001.json")
        + "; there is no older valid checkpoint"
    )


def test_the_data_fingerprint_covers_the_dtype_and_shape_not_only_the_bytes():
    """Fault: dtype and shape left out of data_sha256: X's bits read as int32 matched X."""
    X = np.arange(12, dtype=np.float32).reshape(6, 2)
    y = np.array([0, 1, 0, 1, 1, 0], np.int32)
    h = hashlib.sha256()
    for a in (X, y):
        h.update(f"{a.dtype}{a.shape}".encode() + a.tobytes())
    got = fit_config(X, y, 2, False)
    assert got == {"n_examples": 6, "batch_size": 2, "dropout": False, "data_sha256": h.hexdigest()}
    others = [(X.view(np.int32), y), (X, y.view(np.float32)), (X.reshape(6, 2, 1), y)]
    assert len({fit_config(a, b, 2, False)["data_sha256"] for a, b in [(X, y), *others]}) == 4


def test_config_diff_holds_nan_equal_only_to_nan():
    """Fault: nan compared as equal to anything: a nan against 0.5 was no difference."""
    nan = float("nan")
    assert config_diff({"a": nan, "b": [nan]}, {"a": nan, "b": [nan]}) == []
    assert [d[0] for d in config_diff({"a": nan, "b": [nan]}, {"a": 0.5, "b": [1.0]})] == ["a", "b"]


def test_model_json_holds_the_standardizer_as_load_reads_it(tmp_path):
    """Fault: a standardizer dict saved as given (ints, no dtype, a stray key) in model.json."""
    model = nnjax.mlp([3, 2])
    params = model.init(jax.random.key(0), (-1, 2))[1]
    nnjax.save(tmp_path, model, params, standardizer={"mean": [1, 2], "std": [4, 8], "n": 3})
    meta = json.loads((tmp_path / "model.json").read_text())
    assert meta["standardizer"] == {"mean": [1.0, 2.0], "std": [4.0, 8.0], "dtype": "float32"}
    assert nnjax.load(tmp_path).transform(np.array([[5, 0]])).tolist() == [[1.0, -0.25]]


def test_a_set_aside_folder_is_numbered_one_above_the_highest_there(tmp_path):
    """Fault: numbered by the count: beside a lone abandoned/0003 the next went into 0002."""
    ck.save(tmp_path, 1, _tree(1.0))
    (tmp_path / "abandoned" / "0003").mkdir(parents=True)
    ck.save(tmp_path, 1, _tree(2.0))  # the run's step 1 again: the old one is set aside
    assert sorted(os.listdir(tmp_path / "abandoned")) == ["0003", "0004"]
    assert ck.load(tmp_path / "abandoned" / "0004" / "ckpt_00000001.npz").arrays["['w']"][0, 0] == 1


def test_an_override_of_the_optimizer_name_to_the_same_one_changes_nothing():
    """Fault: override optimizer.name to the same name dropped the optimizer state."""
    cfg = {"optimizer": {"name": "adam", "learning_rate": 0.01, "b1": 0.9}, "n_examples": 40}
    assert check_resume(cfg, cfg, ["optimizer.name"]) == []
    other = {**cfg, "optimizer": {"name": "sgd", "learning_rate": 0.01}}
    assert [r["field"] for r in check_resume(cfg, other, ["optimizer.name"])] == ["optimizer"]


def test_a_complex_leaf_holding_nan_is_not_checkpointed(tmp_path):
    """Fault: only real floats checked for nan: a complex64 leaf of nan was written."""
    tree = {"z": np.array([1 + 1j, complex("nan+0j")], np.complex64)}
    with pytest.raises(ck.NonFiniteCheckpointError) as e:
        ck.save(tmp_path, 1, tree)
    assert "refusing to write step 1: ['z'] holds 1 nan and 0 inf of its 2 values" in str(e.value)
    assert ck.steps(tmp_path) == []
