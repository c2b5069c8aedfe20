"""Checkpoints: exact round trips, keep-last-K, corruption detected with the good one offered,
fit resumed (in process and after a real SIGKILL) ends bit-identical to an uninterrupted run."""

import json
import os
import signal
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import nnjax
from nnjax import checkpoint as ck
from nnjax.cli import main as cli_main


def _tree_equal(a, b) -> bool:
    la, lb = jax.tree.leaves(a), jax.tree.leaves(b)
    return len(la) == len(lb) and all(
        np.asarray(x).dtype == np.asarray(y).dtype and np.array_equal(x, y) for x, y in zip(la, lb)
    )


def _state(seed=0):
    k = jax.random.key(seed)
    return {
        "params": [{"W": jax.random.normal(k, (3, 2)), "b": jnp.zeros(2)}, {}],
        "count": jnp.array(7, jnp.int32),
        "key": jax.random.fold_in(k, 3),
    }


def test_round_trip_is_bit_exact_with_dtypes_and_keys(tmp_path):
    with jax.enable_x64(True):
        tree = _state()
        tree["f64"] = jnp.linspace(0.0, 1.0, 5, dtype=jnp.float64) / 3.0
        path = ck.save(tmp_path, 5, tree, metadata={"epoch": 5, "note": "x"})
        back, meta = ck.restore(tmp_path, tree)
    assert path.endswith("ckpt_00000005.npz") and meta == {"epoch": 5, "note": "x"}
    assert jax.dtypes.issubdtype(back["key"].dtype, jax.dtypes.prng_key)
    assert np.array_equal(jax.random.key_data(back["key"]), jax.random.key_data(tree["key"]))
    del back["key"], tree["key"]
    assert _tree_equal(back, tree)
    assert back["f64"].dtype == np.float64


def test_keep_last_k_and_newest_first(tmp_path):
    for s in (1, 2, 3, 4, 5):
        ck.save(tmp_path, s, _state(s), keep=2)
    assert ck.steps(tmp_path) == [4, 5]
    assert sorted(os.listdir(tmp_path)) == [
        "ckpt_00000004.json",
        "ckpt_00000004.npz",
        "ckpt_00000005.json",
        "ckpt_00000005.npz",
    ]
    back, _ = ck.restore(tmp_path, _state())
    assert _tree_equal(back["params"], _state(5)["params"])


def _flip_byte(path):
    data = bytearray(open(path, "rb").read())
    data[len(data) // 2] ^= 0x01
    open(path, "wb").write(bytes(data))


def _truncate(path):
    data = open(path, "rb").read()
    open(path, "wb").write(data[: len(data) // 3])


def _edit_json(path):
    meta = json.load(open(path))
    meta["metadata"]["epoch"] = 99  # a plausible value, caught by meta_sha256 only
    json.dump(meta, open(path, "w"))


def _garbage_json(path):
    open(path, "w").write('{"step": 2, "sha')


@pytest.mark.parametrize(
    "damage, suffix",
    [(_flip_byte, "npz"), (_truncate, "npz"), (_edit_json, "json"), (_garbage_json, "json")],
)
def test_corruption_is_named_and_previous_checkpoint_offered(tmp_path, damage, suffix):
    ck.save(tmp_path, 1, _state(1), metadata={"epoch": 1})
    ck.save(tmp_path, 2, _state(2), metadata={"epoch": 2})
    bad = tmp_path / f"ckpt_00000002.{suffix}"
    damage(bad)
    with pytest.raises(ck.CorruptCheckpointError) as err:
        ck.load(tmp_path)
    msg = str(err.value)
    assert str(bad) in msg and "ckpt_00000001.npz" in msg
    assert err.value.path == str(bad) and err.value.latest_valid.step == 1
    good = ck.latest_valid(tmp_path)
    assert good.step == 1 and good.metadata == {"epoch": 1}
    n = sum(a.size for a in good.arrays.values())
    assert repr(good) == (
        f"Checkpoint({good.path!r}, step 1, {len(good.arrays)} arrays / {n:,} values, "
        "metadata keys: epoch)"
    )  # one line, not every array's values
    assert _tree_equal(ck.unflatten(good, _state())["params"], _state(1)["params"])


def test_interrupted_write_is_ignored_then_cleaned(tmp_path):
    ck.save(tmp_path, 1, _state(1))
    ck.save(tmp_path, 2, _state(2))
    os.unlink(tmp_path / "ckpt_00000002.json")  # killed between the .npz and its JSON
    assert ck.steps(tmp_path) == [1] and ck.load(tmp_path).step == 1
    ck.save(tmp_path, 3, _state(3))
    assert not (tmp_path / "ckpt_00000002.npz").exists()


def test_restore_names_a_mismatched_leaf(tmp_path):
    ck.save(tmp_path, 1, _state())
    like = _state()
    like["params"][0]["W"] = jnp.zeros((4, 2))
    with pytest.raises(ValueError, match=r"\['params'\]\[0\]\['W'\] is float32\[3, 2\]"):
        ck.restore(tmp_path, like)
    with pytest.raises(FileNotFoundError):
        ck.load(tmp_path / "empty")


# ---- fit ------------------------------------------------------------------------------------


def _problem():
    ds = nnjax.data.load("moons")
    model = nnjax.mlp([8, 2])
    return model, model.init(jax.random.key(0), (-1, 2))[1], ds.X_train, ds.y_train


FIT = dict(epochs=6, batch_size=32, key=3, optimizer="adam", learning_rate=0.01)


@pytest.fixture(scope="module")
def full():
    """The uninterrupted reference run, in one compiled call."""
    model, p0, X, y = _problem()
    return nnjax.fit(model, p0, X, y, **FIT)


def test_fit_resume_checks(tmp_path, full):
    model, p0, X, y = _problem()
    nnjax.fit(model, p0, X, y, **{**FIT, "epochs": 2}, checkpoint_dir=tmp_path)
    with pytest.raises(ValueError, match="already holds checkpoints"):
        nnjax.fit(model, p0, X, y, **FIT, checkpoint_dir=tmp_path)
    again = dict(checkpoint_dir=tmp_path, resume=True)
    with pytest.raises(ValueError, match="batch_size: 32 -> 16. batch_size cannot change"):
        nnjax.fit(model, p0, X, y, **{**FIT, "batch_size": 16}, **again)
    with pytest.raises(ValueError, match="another key"):
        nnjax.fit(model, p0, X, y, **{**FIT, "key": 4}, **again)
    with pytest.raises(ValueError, match=r"other data \(X, y\)"):
        nnjax.fit(model, p0, X + 1, y, **FIT, **again)
    with pytest.raises(ValueError, match="past epochs=1"):
        nnjax.fit(model, p0, X, y, **{**FIT, "epochs": 1}, **again)
    with pytest.raises(ValueError, match="checkpoint_every needs a checkpoint_dir"):
        nnjax.fit(model, p0, X, y, **FIT, checkpoint_every=2)
    _flip_byte(tmp_path / "ckpt_00000002.npz")
    with pytest.raises(ck.CorruptCheckpointError, match="ckpt_00000001.npz"):
        nnjax.fit(model, p0, X, y, **FIT, **again)
    res = nnjax.fit(model, p0, X, y, **FIT, resume=tmp_path / "ckpt_00000001.npz")
    assert _tree_equal(res.params, full.params)


def test_resuming_on_another_machine_warns_naming_the_change(tmp_path, full, monkeypatch):
    """A checkpoint records its machine; resumed on the same one it is silent and ends bit-
    identical; on another processor (simulated) it goes on, with a warning naming it."""
    import warnings

    from nnjax.train import checkpoint_record, checkpoints

    model, p0, X, y = _problem()
    nnjax.fit(model, p0, X, y, **{**FIT, "epochs": 2}, checkpoint_dir=tmp_path)
    meta = json.loads((tmp_path / "ckpt_00000002.json").read_text())
    assert meta["metadata"]["machine"] == checkpoints.machine()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the same machine: no warning
        res = nnjax.fit(
            model, p0, X, y, **{**FIT, "epochs": 3}, checkpoint_dir=tmp_path, resume=True
        )
    here = checkpoints.machine()
    monkeypatch.setattr(checkpoint_record, "machine", lambda: {**here, "cpu": "x86_64-another"})
    with pytest.warns(UserWarning, match="was written on another machine") as got:
        res = nnjax.fit(model, p0, X, y, **FIT, checkpoint_dir=tmp_path, resume=True)
    assert f"cpu {here['cpu']!r} -> 'x86_64-another'" in str(got[0].message)
    assert _tree_equal(res.params, full.params)  # it went on (here: truly the same machine)


# ---- a real crash: SIGKILL a training process, resume it -------------------------------------

WORKER = """
import sys, time, jax, nnjax
ds = nnjax.data.load("moons")
model = nnjax.mlp([8, 2])
p0 = model.init(jax.random.key(0), (-1, 2))[1]
nnjax.fit(model, p0, ds.X_train, ds.y_train, epochs=6, batch_size=32, key=3, optimizer="adam",
          learning_rate=0.01, checkpoint_dir=sys.argv[1], checkpoint_every=1, keep=2,
          on_epochs=lambda e, m: time.sleep(1.0))
"""


def test_sigkill_mid_training_then_resume_is_bit_identical(tmp_path, full):
    d = tmp_path / "ckpt"
    # one checkpoint per epoch and >= 6 s of training: ample time to kill it mid-run
    proc = subprocess.Popen([sys.executable, "-c", WORKER, str(d)], stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not ck.steps(d):
        assert proc.poll() is None, proc.communicate()[1].decode()[-2000:]
        assert time.monotonic() < deadline, "no checkpoint within 120 s"
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    killed_at = ck.steps(d)[-1]
    assert 1 <= killed_at < 6

    model, p0, X, y = _problem()
    with pytest.warns(ck.StaleLockWarning, match=f"process {proc.pid} is gone"):  # fit's lock
        res = nnjax.fit(
            model, p0, X, y, **FIT, checkpoint_dir=d, checkpoint_every=1, keep=2, resume=True
        )
    # the params, optimizer state and history of the uninterrupted run, bit for bit
    assert _tree_equal(res.params, full.params) and _tree_equal(res.opt_state, full.opt_state)
    np.testing.assert_array_equal(res.step_loss, full.step_loss)
    np.testing.assert_array_equal(res.metrics["step_loss_mean"], full.metrics["step_loss_mean"])
    assert ck.steps(d) == [5, 6]  # keep=2
    meta = ck.load(d).metadata
    assert (meta["epoch"], meta["step"]) == (6, 6 * (len(X) // 32))


def test_cli_checkpoints_and_resume(tmp_path, capsys):
    common = ["train", "--dataset", "moons", "--hidden", "8", "--batch-size", "32", "--keep", "5"]
    d = str(tmp_path / "ckpt")
    assert cli_main([*common, "--epochs", "2", "--checkpoint-dir", d]) == 0
    assert ck.steps(d) == [1, 2]
    first = ck.load(d).arrays["['step_loss']"]
    assert cli_main([*common, "--epochs", "3", "--checkpoint-dir", d, "--resume"]) == 0
    assert "resuming from" in capsys.readouterr().out and ck.steps(d) == [1, 2, 3]
    last = ck.load(d)
    assert last.metadata["epoch"] == 3 and len(last.arrays["['metrics']['test_accuracy']"]) == 3
    np.testing.assert_array_equal(last.arrays["['step_loss']"][: len(first)], first)
    assert cli_main([*common, "--resume"]) == 2  # --resume without a directory: a clear error
    assert "--resume needs --checkpoint-dir" in capsys.readouterr().err


# ---- refusals, pruning, recovery ------------------------------------------------------------


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
def test_save_refuses_non_finite_state_naming_the_first_bad_leaf(tmp_path, dtype):
    tree = _state()
    tree["params"][0]["b"] = jnp.array([0.0, jnp.inf], dtype)
    tree["params"].append({"W": jnp.full((2, 2), jnp.nan)})
    with pytest.raises(ck.NonFiniteCheckpointError) as err:
        ck.save(tmp_path / "d", 3, tree)
    assert isinstance(err.value, FloatingPointError) and err.value.step == 3
    assert err.value.leaf == "['params'][0]['b']"
    assert "['params'][0]['b'] holds 0 nan and 1 inf of its 2 values" in str(err.value)
    assert not (tmp_path / "d").exists()  # nothing written, not even the folder
    ck.save(tmp_path / "d", 3, tree, allow_nonfinite=True)  # the explicit escape hatch
    back, _ = ck.restore(tmp_path / "d", tree)
    assert np.isnan(back["params"][2]["W"]).all() and back["count"] == 7
    assert back["params"][0]["b"].dtype == dtype and np.isinf(back["params"][0]["b"][1])


def _always_valid(monkeypatch, d, check):
    """Run ``check(d)`` after every os.replace / os.unlink / os.rename anywhere."""
    for name in ("replace", "unlink", "rename"):
        real = getattr(os, name)

        def spy(*args, _real=real, **kwargs):
            out = _real(*args, **kwargs)
            check(d)
            return out

        monkeypatch.setattr(os, name, spy)


def test_recovery_with_keep_1_keeps_a_valid_checkpoint_at_every_instant(tmp_path, monkeypatch):
    d = tmp_path / "run"
    for s in (1, 2, 3, 4, 5):
        ck.save(d, s, _state(s), metadata={"run": "first"})
    _flip_byte(d / "ckpt_00000005.npz")
    with pytest.raises(ck.CorruptCheckpointError) as err:
        ck.load(d)
    offered = err.value.latest_valid
    assert offered.step == 4

    seen = []

    def check(d):
        good = ck.latest_valid(d)
        assert good is not None, sorted(os.listdir(d))
        newest = ck.load(d) if seen else None  # what resume=True would pick from now on
        seen.append((good.step, good.metadata["run"], newest and newest.metadata["run"]))

    _always_valid(monkeypatch, d, check)
    ck.save(d, 5, _state(55), metadata={"run": "resumed"}, keep=1)
    monkeypatch.undo()
    assert len(seen) >= 4 and seen[-1] == (5, "resumed", "resumed")
    assert all(new in ("first", "resumed") for _, _, new in seen[1:])  # never the corrupt one
    assert ck.steps(d) == [5] and ck.load(d).metadata == {"run": "resumed"}
    # the corrupt checkpoint was not counted and not lost: set aside for inspection, in the
    # folder of this set-aside event
    assert os.listdir(d / ck.ABANDONED) == ["0001"]
    assert sorted(os.listdir(d / ck.ABANDONED / "0001")) == [
        "ckpt_00000005.json",
        "ckpt_00000005.npz",
    ]


def test_resume_from_an_older_checkpoint_sets_the_abandoned_future_aside(tmp_path):
    d = tmp_path / "run"
    for s in (1, 2, 3, 4, 5):
        ck.save(d, s, _state(s), keep=3)
    _flip_byte(d / "ckpt_00000005.npz")
    # the user goes back further than offered: 4 and the corrupt 5 are the abandoned future
    ck.save(d, 4, _state(44), metadata={"run": "resumed"}, keep=1)
    assert ck.steps(d) == [4] and ck.load(d).metadata == {"run": "resumed"}
    assert ck.steps(d / ck.ABANDONED / "0001") == [4, 5]  # one event: one folder
    old = ck.unflatten(ck.load(d / ck.ABANDONED / "0001", 4), _state())
    assert _tree_equal(old["params"], _state(4)["params"])


def test_a_corrupt_checkpoint_is_not_counted_and_is_set_aside(tmp_path):
    d = tmp_path / "run"
    for s in (1, 2, 3, 4):
        ck.save(d, s, _state(s))
    _truncate(d / "ckpt_00000004.npz")
    ck.save(d, 5, _state(5), keep=2)  # keeps 5 and 3, the two newest that verify
    assert ck.steps(d) == [3, 5] and ck.steps(d / ck.CORRUPT / "0001") == [4]
    assert ck.latest_valid(d).step == 5 and ck.load(d, 3).step == 3


def test_missing_checkpoint_paths_are_named_as_given(tmp_path):
    d = tmp_path / "run"
    ck.save(d, 1, _state(1))
    ck.save(d, 2, _state(2))
    given = d / "ckpt_00000009.npz"
    with pytest.raises(FileNotFoundError, match=rf"no checkpoint at {given}: no such file; "):
        ck.load(given)
    with pytest.raises(FileNotFoundError, match="are of steps 1, 2"):
        ck.load(given)
    with pytest.raises(FileNotFoundError, match=rf"no checkpoint of step 7 in {d}"):
        ck.load(d, 7)
    os.unlink(d / "ckpt_00000002.json")
    with pytest.raises(FileNotFoundError, match=r"ckpt_00000002.json is missing \(a write cut"):
        ck.load(d / "ckpt_00000002.npz")
    with pytest.raises(FileNotFoundError, match=rf"no checkpoint at {tmp_path / 'nope'}: no such"):
        ck.load(tmp_path / "nope")


def test_fit_recovery_with_keep_1_from_the_offered_checkpoint(tmp_path, full):
    """The documented recovery: the newest checkpoint is corrupt, resume from the one the
    error offers with keep=1; the run ends bit-identical and the offered one's successor
    is on disk."""
    model, p0, X, y = _problem()
    d = tmp_path / "ckpt"
    nnjax.fit(model, p0, X, y, **{**FIT, "epochs": 5}, checkpoint_dir=d, checkpoint_every=1)
    assert ck.steps(d) == [3, 4, 5]  # keep=3 by default
    _flip_byte(d / "ckpt_00000005.npz")
    with pytest.raises(ck.CorruptCheckpointError) as err:
        ck.load(d)
    offered = err.value.latest_valid.path
    res = nnjax.fit(
        model, p0, X, y, **FIT, checkpoint_dir=d, checkpoint_every=1, keep=1, resume=offered
    )
    assert _tree_equal(res.params, full.params)
    assert ck.steps(d) == [6] and ck.load(d).metadata["epoch"] == 6
    assert ck.steps(d / ck.ABANDONED / "0001") == [5]  # the corrupt one, kept for inspection


SAVER = """
import sys, numpy as np
from nnjax import checkpoint as ck
lock = ck.lock(sys.argv[1])
tree = {"W": np.random.default_rng(0).standard_normal((500, 1000)).astype(np.float32)}
for s in range(1, 100000):
    tree["W"][0, 0] = s
    ck.save(sys.argv[1], s, tree, keep=2)
    if s == 3:
        print("saved 3", flush=True)
"""


def test_sigkill_of_a_locked_writer_then_the_next_run_takes_over_and_cleans(tmp_path):
    d = tmp_path / "ckpt"
    proc = subprocess.Popen([sys.executable, "-c", SAVER, str(d)], stdout=subprocess.PIPE)
    assert proc.stdout.readline() == b"saved 3\n"
    time.sleep(0.1)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
    assert (d / "nnjax.lock").exists()
    with pytest.warns(ck.StaleLockWarning, match=f"process {proc.pid} is gone"):
        lock = ck.lock(d)
    try:
        assert not [n for n in os.listdir(d) if n.endswith(".tmp")]  # none left after lock()
        newest = ck.load(d)  # the newest committed checkpoint verifies
        assert newest.arrays["['W']"][0, 0] == newest.step >= 3
        ck.save(d, newest.step + 1, {"W": newest.arrays["['W']"]}, keep=2)
        assert sorted(os.listdir(d)) == sorted(
            ["nnjax.lock"] + [f"ckpt_{s:08d}.{e}" for s in ck.steps(d) for e in ("json", "npz")]
        )
    finally:
        lock.release()
    assert "nnjax.lock" not in os.listdir(d)
