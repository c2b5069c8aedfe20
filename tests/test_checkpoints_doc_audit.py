"""Defects found by checking docs/checkpoints.md against the code: the lock's timing
arguments are validated (a negative or nan heartbeat used to spin its thread, a NumPy float
killed it, a negative stale_after took over a live holder's lock), a file given as the lock's
directory is named as such (not "File exists"), a structured array is refused by save (it was
written and could never be loaded), an empty checkpoint_dir is named, and the free-space
warning counts one checkpoint in the singular; nnjax.io.save_params refuses what it could not
load back and load_params returns bfloat16 params as bfloat16 (not raw bytes). Tiny data,
1 epoch."""

import errno
import json
import os
import shutil
import time
import warnings

import jax
import ml_dtypes
import numpy as np
import pytest

import nnjax
from nnjax import checkpoint
from nnjax import io as nio
from nnjax.errors import PathError
from nnjax.lock import LOCK_NAME


@pytest.mark.parametrize(
    "kwargs, shown",
    [
        (
            {"heartbeat": -1},
            r"heartbeat must be seconds > 0 or None \(no heartbeat thread\), got -1",
        ),
        ({"heartbeat": float("nan")}, "heartbeat must be seconds > 0 or None .*, got nan"),
        ({"heartbeat": "60"}, "heartbeat must be seconds > 0 or None .*, got '60'"),
        ({"heartbeat": True}, "heartbeat must be seconds > 0 or None .*, got True"),
        ({"stale_after": -1}, "stale_after must be seconds > 0 or None .*, got -1"),
        ({"stale_after": 0}, "stale_after must be seconds > 0 or None .*, got 0"),
        ({"stale_after": float("nan")}, "stale_after must be seconds > 0 or None .*, got nan"),
    ],
)
def test_lock_refuses_bad_seconds_before_taking_it(tmp_path, kwargs, shown):
    with pytest.raises(ValueError, match=f"^DirectoryLock: {shown}"):
        checkpoint.lock(tmp_path, **kwargs)
    assert not (tmp_path / LOCK_NAME).exists()  # refused before the lock file was made


def test_a_negative_stale_after_no_longer_steals_a_fresh_lock(tmp_path):
    # another host's lock whose heartbeat is fresh (its mtime now) is never taken over
    record = {"pid": 4242, "host": "node-3", "started": "2026-01-01T00:00:00+00:00",
              "started_unix": time.time(), "identity": None, "command": "nnjax train"}  # fmt: skip
    (tmp_path / LOCK_NAME).write_text(json.dumps(record))
    with pytest.raises(ValueError, match="stale_after must be seconds > 0"):
        checkpoint.lock(tmp_path, stale_after=-1)
    assert json.loads((tmp_path / LOCK_NAME).read_text())["pid"] == 4242  # still the holder's


def test_numpy_seconds_keep_the_heartbeat_thread_running(tmp_path):
    with checkpoint.lock(tmp_path, heartbeat=np.float32(0.05), stale_after=np.int64(600)) as lk:
        path = tmp_path / LOCK_NAME
        os.utime(path, (1e9, 1e9))  # an old mtime: the next heartbeat refreshes it
        deadline = time.time() + 10
        while os.stat(path).st_mtime == 1e9 and time.time() < deadline:
            time.sleep(0.02)
        assert os.stat(path).st_mtime > time.time() - 60  # refreshed by the thread
        assert lk.stale_after == 600.0


def test_lock_names_a_file_given_as_its_directory(tmp_path):
    f = tmp_path / "runs"
    f.write_text("not a folder")
    with pytest.raises(PathError, match=f"^checkpoint.lock: {f} is a file, not a directory$") as e:
        checkpoint.lock(f)
    assert isinstance(e.value, OSError) and e.value.errno == errno.ENOTDIR
    assert f.read_text() == "not a folder"
    with pytest.raises(PathError, match="^checkpoint.lock: the directory is an empty path$"):
        checkpoint.lock("")


def test_save_refuses_a_structured_array_it_could_not_load(tmp_path):
    record = np.zeros(3, dtype=[("x", "f4"), ("n", "i4")])
    with pytest.raises(ValueError, match=r"step 1: \['a'\] is not an array of numbers"):
        checkpoint.save(tmp_path / "d", 1, {"a": record, "b": np.ones(2)})
    assert not (tmp_path / "d").exists()  # nothing written
    # plain numbers of every kind still round-trip exactly (bfloat16 is NumPy kind "V" too)
    tree = {"b": np.arange(3.0) / 7, "i": np.arange(4, dtype=np.int16), "t": np.array([True]),
            "h": (np.arange(3) / 3).astype(ml_dtypes.bfloat16)}  # fmt: skip
    checkpoint.save(tmp_path / "ok", 1, tree)
    back, _ = checkpoint.restore(tmp_path / "ok", tree)
    assert all(np.array_equal(back[k], tree[k]) and back[k].dtype == tree[k].dtype for k in tree)


def _toy():
    ds = nnjax.data.load("toy")
    model = nnjax.mlp([4, 2])
    return model, model.init(jax.random.key(0), (-1, 1))[1], ds.X_train, ds.y_train


def test_fit_names_an_empty_checkpoint_dir():
    model, p0, X, y = _toy()
    with pytest.raises(ValueError, match="^fit: checkpoint_dir is an empty path"):
        nnjax.fit(model, p0, X, y, epochs=1, checkpoint_dir="")


def test_free_space_warning_counts_one_checkpoint_in_the_singular(tmp_path, monkeypatch):
    from nnjax import preflight
    from nnjax.train import FreeSpaceWarning

    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(preflight.shutil, "disk_usage", lambda p: usage._replace(free=10))
    model, p0, X, y = _toy()
    with warnings.catch_warnings():
        warnings.simplefilter("error", FreeSpaceWarning)
        # one epoch: one checkpoint written, so one is kept whatever keep says
        with pytest.raises(FreeSpaceWarning, match=r"\(1 checkpoint kept, one more while saving\)"):
            nnjax.fit(model, p0, X, y, epochs=1, checkpoint_dir=tmp_path / "ck")


def test_save_params_round_trips_bfloat16_and_float8(tmp_path):
    params = [{"W": (np.arange(6).reshape(2, 3) / 7).astype(ml_dtypes.bfloat16),
               "q": np.arange(4).astype(ml_dtypes.float8_e4m3fn), "b": np.arange(3.0)}]  # fmt: skip
    nio.save_params(tmp_path / "p.npz", params)
    back = nio.load_params(tmp_path / "p.npz", params)
    for k, v in params[0].items():
        assert back[0][k].dtype == v.dtype  # bfloat16 used to come back as raw bytes, |V2
        assert np.array_equal(back[0][k].view(np.uint8), v.view(np.uint8))  # bit for bit


@pytest.mark.parametrize("leaf", [object(), "text", np.zeros(2, dtype=[("x", "f4")])])
def test_save_params_refuses_a_leaf_it_could_not_load(tmp_path, leaf):
    path = tmp_path / "p.npz"
    with pytest.raises(ValueError, match=r"^io.save_params: params\['a'\] is not an array of"):
        nio.save_params(path, {"a": leaf, "b": np.ones(2)})
    assert not path.exists() and os.listdir(tmp_path) == []  # nothing, no temporary file
