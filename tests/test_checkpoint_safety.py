"""Checkpoint safety (review findings): nothing set aside is overwritten, a run never writes
over another run's checkpoints, NumPy ints are options, the evaluation sets are part of
the run (recorded, checked on resume, any name), restore refuses arrays it has no place for
and names a key leaf that is not a key, metadata is standard JSON, and JAX's PRNG settings
key both the stored programs and a resume. Tiny data, 1-3 epochs."""

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import nnjax
from nnjax import checkpoint as ck
from nnjax.runconfig import ConfigMismatchError
from nnjax.train import config as train_config
from nnjax.train import executables, fitting

FIT = dict(batch_size=32, key=3, optimizer="adam", learning_rate=0.01)


def _problem():
    ds = nnjax.data.load("moons")
    model = nnjax.mlp([8, 2])
    p0 = model.init(jax.random.key(0), (-1, 2))[1]
    return model, p0, ds.X_train, ds.y_train, (ds.X_test, ds.y_test)


def _value(d, step) -> float:
    return float(ck.load(d, step).arrays["['v']"][0])


def _no_training(monkeypatch):
    """Make any compiled training fail the test: a refusal must come before it."""

    def refuse(*a, **k):
        raise AssertionError("training started before the refusal")

    monkeypatch.setattr(fitting, "drive", refuse)


# ---- 1. set-aside checkpoints are never overwritten -------------------------------------------


def test_set_aside_checkpoints_are_never_overwritten_and_each_event_has_its_folder(tmp_path):
    d = tmp_path / "run"
    for s in (1, 2, 3):
        ck.save(d, s, {"v": np.full(1, float(s))})
    ck.save(d, 2, {"v": np.full(1, 20.0)})  # a resume from 1: 2 and 3 set aside
    ck.save(d, 2, {"v": np.full(1, 200.0)})  # again: the 20.0 goes to a new folder
    first, second = d / ck.ABANDONED / "0001", d / ck.ABANDONED / "0002"
    assert sorted(os.listdir(d / ck.ABANDONED)) == ["0001", "0002"]
    assert ck.steps(first) == [2, 3] and (_value(first, 2), _value(first, 3)) == (2.0, 3.0)
    assert ck.steps(second) == [2] and _value(second, 2) == 20.0
    assert ck.steps(d) == [1, 2] and _value(d, 2) == 200.0
    # corrupt ones too: each prune that finds one sets it aside in a new folder
    for s in (3, 4):
        ck.save(d, s, {"v": np.full(1, float(s))})
    for bad in (3, 4):
        data = bytearray((d / f"ckpt_{bad:08d}.npz").read_bytes())
        data[len(data) // 2] ^= 1
        (d / f"ckpt_{bad:08d}.npz").write_bytes(bytes(data))
        ck.save(d, 5 + bad, {"v": np.full(1, 9.0)}, keep=9)
    assert sorted(os.listdir(d / ck.CORRUPT)) == ["0001", "0002"]
    assert ck.steps(d / ck.CORRUPT / "0001") == [3] and ck.steps(d / ck.CORRUPT / "0002") == [4]


# ---- 2. a resume never writes over another run's checkpoints -----------------------------------


def test_resuming_into_another_runs_folder_is_refused_before_training(tmp_path, monkeypatch):
    model, p0, X, y, _ = _problem()
    a, b, c = tmp_path / "A", tmp_path / "B", tmp_path / "C"
    nnjax.fit(model, p0, X, y, epochs=3, **FIT, checkpoint_dir=b, keep=None)
    nnjax.fit(model, p0, X, y, epochs=2, **FIT, checkpoint_dir=a, keep=None)
    before = sorted(os.listdir(b))
    with monkeypatch.context() as mp:
        _no_training(mp)
        refused = (
            rf"resume={a}/ckpt_00000002.npz is a checkpoint of {a}, but checkpoint_dir {b} "
            r"holds the checkpoints of another run \(epochs 1, 2, 3\)"
        )
        with pytest.raises(ValueError, match=refused):
            nnjax.fit(
                model, p0, X, y, epochs=3, **FIT, checkpoint_dir=b, keep=2,
                resume=a / "ckpt_00000002.npz",
            )  # fmt: skip
    assert sorted(os.listdir(b)) == before  # nothing deleted, nothing set aside
    # into an empty folder it goes on; from the folder's own checkpoint too
    nnjax.fit(model, p0, X, y, epochs=3, **FIT, checkpoint_dir=c, resume=a / "ckpt_00000002.npz")
    assert ck.steps(c) == [3]
    nnjax.fit(model, p0, X, y, epochs=3, **FIT, checkpoint_dir=b, resume=b / "ckpt_00000002.npz")
    assert ck.steps(b / ck.ABANDONED / "0001") == [3]


# ---- 3. NumPy ints ------------------------------------------------------------------------------


def test_numpy_ints_are_accepted_as_checkpoint_options(tmp_path):
    ck.save(tmp_path / "s", np.int64(1), {"v": np.ones(1)}, keep=np.int64(1))
    ck.save(tmp_path / "s", 2, {"v": np.ones(1)}, keep=np.int32(1))
    assert ck.steps(tmp_path / "s") == [2]
    model, p0, X, y, _ = _problem()
    d = tmp_path / "fit"
    nnjax.fit(
        model, p0, X, y, **FIT, epochs=np.int64(3), checkpoint_dir=d,
        checkpoint_every=np.int64(1), keep=np.int64(2),
    )  # fmt: skip
    assert ck.steps(d) == [2, 3] and ck.load(d).metadata["epochs"] == 3


# ---- 4. the evaluation sets are part of the run --------------------------------------------------


def test_a_resume_with_other_evaluation_sets_is_refused_naming_them(tmp_path, monkeypatch):
    model, p0, X, y, test = _problem()
    d = tmp_path / "ckpt"
    nnjax.fit(model, p0, X, y, epochs=1, **FIT, checkpoint_dir=d, eval_data={"test": test})
    config = ck.load(d).metadata["config"]
    assert config["eval_names"] == ["test"]
    assert config["eval_data"]["test"].startswith("X float32[80, 2], y int32[80], sha256 ")
    again = dict(epochs=2, **FIT, checkpoint_dir=d, resume=True)
    _no_training(monkeypatch)
    dropped = r"eval_data.test: 'X float32\[80, 2\].*' -> <absent>.*eval_names: \['test'\] -> \[\]"
    with pytest.raises(ConfigMismatchError, match=dropped):
        nnjax.fit(model, p0, X, y, **again)  # dropped
    with pytest.raises(ConfigMismatchError, match=r"eval_names: \['test'\] -> \['val'\]"):
        nnjax.fit(model, p0, X, y, **again, eval_data={"val": test})  # renamed
    with pytest.raises(ConfigMismatchError, match=r"eval_names: \['test'\] -> \['test', 'tr'\]"):
        nnjax.fit(model, p0, X, y, **again, eval_data={"test": test, "tr": (X, y)})  # added
    other = (
        r"eval_data.test: 'X float32\[80, 2\], y int32\[80\], sha256 \w+' -> "
        r"'X float32\[320, 2\], y int32\[320\], sha256 \w+'\. eval_data.test cannot change"
    )
    with pytest.raises(ConfigMismatchError, match=other):
        nnjax.fit(model, p0, X, y, **again, eval_data={"test": (X, y)})  # same name, other data
    with pytest.raises(ValueError, match="override eval_data.test: it cannot be changed"):
        nnjax.fit(model, p0, X, y, **again, eval_data={"test": (X, y)}, override=["eval_data.test"])
    assert ck.steps(d) == [1]


def test_a_checkpoint_without_recorded_eval_sets_is_checked_by_its_metric_names(
    tmp_path, monkeypatch
):
    """A checkpoint of an nnjax that did not record the evaluation sets: their names are read
    from its metric names, and a resume with others is refused before training."""
    model, p0, X, y, test = _problem()
    d = tmp_path / "ckpt"
    with monkeypatch.context() as mp:
        mp.setattr(fitting, "eval_config", lambda names, evals: {}, raising=False)
        nnjax.fit(model, p0, X, y, epochs=1, **FIT, checkpoint_dir=d, eval_data={"test": test})
    assert "eval_names" not in ck.load(d).metadata["config"]
    _no_training(monkeypatch)
    named = (
        r"its metrics are \['step_loss_mean', 'test_accuracy', 'test_loss'\], this run's are "
        r"\['step_loss_mean', 'val_accuracy', 'val_loss'\]: eval_data differs"
    )
    with pytest.raises(ValueError, match=named):
        nnjax.fit(
            model, p0, X, y, epochs=2, **FIT, checkpoint_dir=d, resume=True,
            eval_data={"val": test},
        )  # fmt: skip


# ---- 5. any eval name ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["it's", 'say "hi"'])
def test_eval_names_with_quotes_save_and_resume(tmp_path, name):
    model, p0, X, y, test = _problem()
    d = tmp_path / "ckpt"
    kw = dict(**FIT, checkpoint_dir=d, eval_data={name: test})
    first = nnjax.fit(model, p0, X, y, epochs=1, **kw)
    res = nnjax.fit(model, p0, X, y, epochs=2, **kw, resume=True)
    got = res.metrics[f"{name}_accuracy"]
    assert got.shape == (2,) and got[0] == first.metrics[f"{name}_accuracy"][0]


# ---- 6. restore refuses what it has no place for -----------------------------------------------


def test_restore_refuses_extra_arrays_unless_partial(tmp_path):
    three = nnjax.mlp([4, 4, 2]).init(jax.random.key(0), (-1, 3))[1]
    two = nnjax.mlp([4, 4]).init(jax.random.key(0), (-1, 3))[1]  # the first two layers
    ck.save(tmp_path, 1, {"params": three, "b": jnp.ones(2)})
    with pytest.raises(ValueError, match=r"\['b'\] is not in like"):
        ck.restore(tmp_path, {"params": three})
    with pytest.raises(ValueError, match=r"\['params'\]\[4\]\['W'\] is not in like \(2 of"):
        ck.restore(tmp_path, {"params": two, "b": jnp.ones(2)})
    back, _ = ck.restore(tmp_path, {"b": jnp.zeros(2)}, partial=True)
    assert np.array_equal(back["b"], np.ones(2))
    sub = ck.unflatten(ck.load(tmp_path), three, "['params']")  # a subtree, whole
    assert all(np.array_equal(a, b) for a, b in zip(jax.tree.leaves(sub), jax.tree.leaves(three)))


def test_a_key_leaf_in_like_against_other_data_is_named(tmp_path):
    ck.save(tmp_path, 1, {"k": jnp.ones(2), "n": jnp.ones(3, jnp.uint32)})
    like = {"k": jax.random.key(0), "n": jnp.zeros(3, jnp.uint32)}
    named = r"\['k'\] is float32\[2\], not the data of a threefry2x32 PRNG key"
    with pytest.raises(ValueError, match=named):
        ck.restore(tmp_path, like)
    like = {"k": jnp.ones(2), "n": jax.random.key(0)}
    with pytest.raises(ValueError, match=r"\['n'\] is uint32\[3\], not the data of a threefry2x32"):
        ck.restore(tmp_path, like)


# ---- 7. metadata is standard JSON ----------------------------------------------------------------


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), np.float64("-inf")])
def test_non_finite_metadata_is_refused_naming_it(tmp_path, bad):
    named = r"checkpoint.save: metadata\['x'\]\['y'\]\[1\] is (-?inf|nan): JSON has no nan"
    with pytest.raises(ValueError, match=named):
        ck.save(tmp_path, 1, {"v": np.ones(1)}, metadata={"x": {"y": [1.0, bad]}})
    assert os.listdir(tmp_path) == []


def test_a_schedule_with_a_non_finite_value_is_stored_as_standard_json(tmp_path):
    model, p0, X, y, _ = _problem()

    def schedule(t):
        return jnp.where(t < 1000, 0.01, jnp.nan)  # nan only where the run never goes

    d = tmp_path / "ckpt"
    nnjax.fit(model, p0, X, y, epochs=1, batch_size=32, key=3, learning_rate=schedule,
              checkpoint_dir=d)  # fmt: skip

    def refuse(name):
        raise AssertionError(f"non-standard JSON: {name}")

    meta = json.loads((d / "ckpt_00000001.json").read_text(), parse_constant=refuse)
    values = meta["metadata"]["config"]["optimizer"]["learning_rate"]["values"]
    assert values[-1] == "nan" and values[0] == pytest.approx(0.01)
    nnjax.fit(model, p0, X, y, epochs=2, batch_size=32, key=3, learning_rate=schedule,
              checkpoint_dir=d, resume=True)  # fmt: skip
    assert ck.steps(d) == [1, 2]


# ---- 8. JAX's PRNG settings --------------------------------------------------------------------


def test_the_prng_settings_key_the_stored_programs(tmp_path):
    store = executables.ExecutableStore(tmp_path, {"run": 1})
    args = (np.zeros((2, 3), np.float32),)
    with jax.threefry_partitionable(not jax.config.jax_threefry_partitionable):
        other = executables.ExecutableStore(tmp_path, {"run": 1})
        assert other.prefix != store.prefix
    assert other.path(args) != store.path(args)
    assert executables.machine()["prng_impl"] == str(jax.config.jax_default_prng_impl)


def test_a_resume_under_other_prng_settings_is_refused_naming_the_flag(tmp_path, monkeypatch):
    model, p0, X, y, _ = _problem()
    d = tmp_path / "ckpt"
    nnjax.fit(model, p0, X, y, epochs=1, **FIT, checkpoint_dir=d)
    now = bool(jax.config.jax_threefry_partitionable)
    assert ck.load(d).metadata["machine"]["threefry_partitionable"] is now
    _no_training(monkeypatch)
    with jax.threefry_partitionable(not now):
        named = (
            rf"written with jax_threefry_partitionable={now}, this process has {not now}.*"
            rf"jax.config.update\('jax_threefry_partitionable', {now}\)"
        )
        with pytest.raises(ValueError, match=named):
            nnjax.fit(model, p0, X, y, epochs=2, **FIT, checkpoint_dir=d, resume=True)
    assert ck.steps(d) == [1]


def test_the_eval_fingerprint_covers_shape_dtype_and_bytes():
    X, y = np.zeros((4, 2), np.float32), np.zeros(4, np.int32)
    base = train_config.fingerprint(X, y)
    assert base.startswith("X float32[4, 2], y int32[4], sha256 ")
    assert train_config.fingerprint(X + 1, y) != base
    assert train_config.fingerprint(X.astype(np.float64), y) != base
    assert train_config.fingerprint(X.reshape(2, 4), y) != base


def test_a_checkpoint_fit_did_not_write_is_refused_naming_the_file(tmp_path, monkeypatch):
    """review: resuming from a checkpoint of nnjax.checkpoint.save (the same file names, no
    fit record) ended in KeyError: 'metric_names'."""
    model, p0, X, y, _ = _problem()
    ck.save(tmp_path, 2, {"params": p0}, metadata={"note": "mine"})
    _no_training(monkeypatch)
    path = ck.npz_path(tmp_path, 2)
    for resume in (True, path):
        with pytest.raises(ValueError, match="not a checkpoint of a fit run") as e:
            nnjax.fit(model, p0, X, y, epochs=3, checkpoint_dir=tmp_path, resume=resume, **FIT)
        assert path in str(e.value) and "epoch, metric_names" in str(e.value)
    assert ck.steps(tmp_path) == [2]  # left as it was


def test_a_float64_checkpoint_resumed_without_x64_names_the_way_to_resume_it(tmp_path, monkeypatch):
    model, p0, X, y, _ = _problem()
    d = tmp_path / "ckpt"
    with jax.enable_x64(True):
        p64 = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), p0)
        nnjax.fit(model, p64, X, y, epochs=1, **FIT, checkpoint_dir=d)
    assert ck.load(d).metadata["config"]["dtype"] == "float64"
    _no_training(monkeypatch)
    hint = r"dtype: 'float64' -> 'float32'.*JAX's x64 is off.*jax_enable_x64.*JAX_ENABLE_X64=1"
    with pytest.raises(ConfigMismatchError, match=hint):
        nnjax.fit(model, p0, X, y, epochs=2, **FIT, checkpoint_dir=d, resume=True)
