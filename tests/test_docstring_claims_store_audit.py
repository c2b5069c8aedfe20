"""Docstring claims of nnjax's checkpoints, saved models and params files, held against the
code (a second look after test_docstring_claims_infra_audit.py and test_checkpoint_api_audit.py).

Defects found:

* ``params_npz.load_params`` promises each leaf "of its kind (floating point, in any
  precision ...)", yet a bfloat16 or float8 leaf (stored as raw bytes, ``|V2``/``|V1``) read
  into a ``like`` leaf of another dtype of the same width was reinterpreted bit for bit: a
  bfloat16 1.5 came back as float16 1.9375, a float8 -2.0 as int8 -64, silently;
* ``params_npz.save_params`` wrote a float8_e5m2 leaf under NumPy's code ``'<f1'``, which no
  NumPy reads: ``load_params`` failed with "descr is not a valid dtype descriptor";
* ``checkpoint.Checkpoint.metadata`` "is the dict given to save", yet ``{2: x}`` came back
  as ``{"2": x}``, and ``{"a": 1, 2: 3}`` (JSON-serialisable) was refused as not
  JSON-serialisable with "'<' not supported between instances of 'int' and 'str'";
* ``docs/saved-models.md``: model.json is "UTF-8 JSON", yet ``nnjax.save(config={"x": nan})``
  wrote the token ``NaN``, which JSON has not (strict readers reject the file);
* ``checkpoint.save`` after its commit, pruning: "pruning is housekeeping, and a run does
  not die of it", yet a corrupt older checkpoint on a disk too full for a new
  ``corrupt/NNNN`` folder made the save raise ENOSPC, its checkpoint committed;
* ``checkpoint.load(DIR)`` while another process's run saved there with ``keep=1`` said the
  checkpoint it had found "is missing (its metadata exists)", nothing damaged.

The other claims checked (atomic groups under ENOSPC, the lock against a second writer,
dtype and pytree round trips) held; a few are pinned here.
"""

import errno
import json
import os
import warnings
from collections import namedtuple

import jax
import ml_dtypes
import numpy as np
import pytest

import nnjax
from nnjax import checkpoint, params_npz

# --- params_npz: raw-byte dtypes ------------------------------------------------------------


def test_load_params_refuses_bfloat16_bytes_read_as_float16(tmp_path):
    # "of its kind (floating point, in any precision ...)": a bfloat16 1.5 read as float16
    # came back as 1.9375 (its bits viewed as float16)
    path = tmp_path / "p.npz"
    params_npz.save_params(path, {"W": np.array([1.5, -2.0, 3.0], ml_dtypes.bfloat16)})
    with pytest.raises(ValueError) as e:
        params_npz.load_params(path, {"W": np.zeros(3, np.float16)})
    assert str(e.value) == (
        f"{path}: params['W'] holds raw 2-byte values (a dtype the .npy header cannot name: "
        "bfloat16, a float8 type), and like's leaf is float16: give like in the dtype the "
        "params were saved in"
    )
    back = params_npz.load_params(path, {"W": np.zeros(3, ml_dtypes.bfloat16)})["W"]
    assert back.dtype == ml_dtypes.bfloat16 and back.astype(np.float32).tolist() == [1.5, -2, 3]


@pytest.mark.parametrize("like", [np.int8, np.uint8])
def test_load_params_refuses_float8_bytes_read_as_integers(tmp_path, like):
    path = tmp_path / "p.npz"
    params_npz.save_params(path, {"W": np.array([1.0, -2.0], ml_dtypes.float8_e4m3fn)})
    with pytest.raises(
        ValueError, match=rf"params\['W'\] holds raw 1-byte values .* is {like.__name__}:"
    ):
        params_npz.load_params(path, {"W": np.zeros(2, like)})


def test_save_params_round_trips_float8_e5m2(tmp_path):
    # "load_params gives bfloat16 and float8 leaves back in their dtype" (docs/checkpoints.md):
    # float8_e5m2 was written as '<f1' and failed "descr is not a valid dtype descriptor"
    a = np.array([1.0, -2.0, 0.5, 57344.0], ml_dtypes.float8_e5m2)
    params_npz.save_params(tmp_path / "p.npz", [{"q": a, "b": np.arange(3.0)}])
    back = params_npz.load_params(tmp_path / "p.npz", [{"q": a, "b": np.zeros(3)}])[0]
    assert back["q"].dtype == a.dtype and back["q"].tobytes() == a.tobytes()
    assert back["b"].tolist() == [0.0, 1.0, 2.0]


def test_npz_bytes_of_numpy_and_bfloat16_arrays_are_numpys_own():
    # the fix views only what NumPy cannot read back: saved models' bytes (and their
    # SHA-256 in model.json) are unchanged
    import io

    arrays = {"a": np.arange(6.0).reshape(2, 3).T, "b": np.ones(3, ml_dtypes.bfloat16)}
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    assert params_npz.npz_bytes(arrays) == buf.getvalue()


# --- checkpoint metadata ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("metadata", "key"), [({2: 3}, "2 (int)"), ({"a": 1, "b": {1.5: "x"}}, "1.5 (float)")]
)
def test_checkpoint_metadata_key_that_json_would_change_is_refused(tmp_path, metadata, key):
    # Checkpoint: "metadata is the dict given to save"; {2: 3} came back as {'2': 3}
    where = "metadata['b']" if "b" in metadata else "metadata"
    with pytest.raises(ValueError) as e:
        checkpoint.save(tmp_path, 1, {"a": np.ones(2)}, metadata=metadata)
    assert str(e.value).startswith(f"checkpoint.save: {where} has the key {key}: JSON's keys")
    assert os.listdir(tmp_path) == []


def test_checkpoint_metadata_mixed_keys_named_not_said_unserialisable(tmp_path):
    with pytest.raises(ValueError, match=r"^checkpoint.save: metadata has the key 2 \(int\)"):
        checkpoint.save(tmp_path, 1, {"a": np.ones(2)}, metadata={"a": 1, 2: 3})


def test_checkpoint_metadata_round_trips_as_json_gives_it(tmp_path):
    md = {"epoch": 3, "t": (1, 2), "nested": {"x": [1.5, None, "s"]}}
    checkpoint.save(tmp_path, 3, {"a": np.ones(2)}, metadata=md)
    assert checkpoint.load(tmp_path).metadata == {
        "epoch": 3,
        "t": [1, 2],
        "nested": {"x": [1.5, None, "s"]},
    }


# --- checkpoints: pytrees, dtypes, a full disk -------------------------------------------------


def test_checkpoint_round_trips_tuples_namedtuples_none_and_every_dtype(tmp_path):
    # "Restoring is exact: arrays come back bit for bit with their dtypes"
    NT = namedtuple("NT", "a b")
    tree = {
        "t": (np.arange(3.0), None, NT(np.full(2, 2.5), np.ones(2, ml_dtypes.bfloat16))),
        "k": jax.random.key(3),
        "f8": np.array([1, -2], ml_dtypes.float8_e5m2),
        "c": np.array([1 + 2j]),
        "i": np.arange(3, dtype=np.int16),
    }
    checkpoint.save(tmp_path, 1, tree)
    back, _ = checkpoint.restore(tmp_path, tree)
    assert jax.tree.structure(back) == jax.tree.structure(tree)
    assert isinstance(back["t"][2], NT) and back["t"][1] is None
    for a, b in zip(jax.tree.leaves(tree), jax.tree.leaves(back)):
        if jax.dtypes.issubdtype(a.dtype, jax.dtypes.prng_key):
            a, b = jax.random.key_data(a), jax.random.key_data(b)
        a, b = np.asarray(a), np.asarray(b)
        assert a.dtype == b.dtype and a.tobytes() == b.tobytes()


def test_checkpoint_full_disk_keeps_the_step_saved_again(tmp_path, monkeypatch):
    # "A full disk fails while writing, before anything is moved: the committed
    # checkpoints, the one of the same step included, stay as they were"
    for s in (1, 2, 3):
        checkpoint.save(tmp_path, s, {"a": np.arange(3.0) + s})
    before = {n: (tmp_path / n).read_bytes() for n in os.listdir(tmp_path)}

    def full(fd, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", full)
    with pytest.raises(OSError) as e:
        checkpoint.save(tmp_path, 2, {"a": np.zeros(3)})
    monkeypatch.undo()
    assert e.value.errno == errno.ENOSPC and e.value.filename == str(tmp_path / "ckpt_00000002.npz")
    assert {n: (tmp_path / n).read_bytes() for n in os.listdir(tmp_path)} == before


# --- saved models -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny():
    model = nnjax.mlp([4, 3])
    _, params = model.init(jax.random.key(0), (-1, 4))
    return model, params


def test_saved_model_config_with_nan_is_refused_naming_it(tmp_path, tiny):
    # docs/saved-models.md: model.json is "UTF-8 JSON"; a nan in config was written as NaN
    model, params = tiny
    with pytest.raises(ValueError) as e:
        nnjax.save(tmp_path / "m", model, params, input_shape=(-1, 4), config={"f": float("inf")})
    assert str(e.value) == (
        "nnjax.save: config['f'] is inf: JSON has no nan or inf; store it as a string ('inf') "
        "or None"
    )
    assert not (tmp_path / "m").exists()


def test_saved_model_json_is_strict_json(tmp_path, tiny):
    model, params = tiny
    nnjax.save(tmp_path / "m", model, params, input_shape=(-1, 4), config={"lr": 1e-3})

    def refuse(token):
        raise ValueError(token)

    meta = json.loads((tmp_path / "m" / "model.json").read_text(), parse_constant=refuse)
    assert meta["config"] == {"lr": 1e-3}


def test_saved_model_full_disk_leaves_the_old_model_and_no_lock(tmp_path, tiny, monkeypatch):
    # "a failed save (a full disk) leaves a model saved before in the folder as it was"
    model, params = tiny
    folder = tmp_path / "m"
    nnjax.save(folder, model, params, input_shape=(-1, 4))
    before = {n: (folder / n).read_bytes() for n in os.listdir(folder)}
    other = jax.tree.map(lambda a: a + 1, params)
    real, calls = os.write, []

    def second_fails(fd, data):  # the lock's record goes through; params.npz does not
        calls.append(fd)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(fd, data)

    monkeypatch.setattr(os, "write", second_fails)
    with pytest.raises(OSError) as e:
        nnjax.save(folder, model, other, input_shape=(-1, 4))
    monkeypatch.undo()
    assert e.value.errno == errno.ENOSPC and e.value.filename == str(folder / "params.npz")
    assert {n: (folder / n).read_bytes() for n in os.listdir(folder)} == before
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = nnjax.load(folder).params
    assert all(np.array_equal(a, b) for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(params)))


def test_prune_on_a_full_disk_keeps_the_committed_save(tmp_path, monkeypatch):
    # _remove: "pruning is housekeeping, and a run does not die of it"; a corrupt older
    # checkpoint met while pruning needs a new corrupt/NNNN folder, which a full disk
    # refused: save raised ENOSPC naming 'corrupt' although its checkpoint was committed
    for s in (1, 2):
        checkpoint.save(tmp_path, s, {"a": np.arange(50.0) + s})
    data = bytearray((tmp_path / "ckpt_00000002.npz").read_bytes())
    data[-30] ^= 1
    (tmp_path / "ckpt_00000002.npz").write_bytes(bytes(data))

    def full(path, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", path)

    monkeypatch.setattr(os, "mkdir", full)
    with pytest.warns(UserWarning) as caught:
        path = checkpoint.save(tmp_path, 3, {"a": np.zeros(50)}, keep=3)
    monkeypatch.undo()
    assert [str(w.message) for w in caught] == [
        f"checkpoint: cannot move the corrupt checkpoint(s) of step 2 into {tmp_path}/corrupt "
        "(No space left on device): left in place (loading skips them)"
    ]
    assert path == checkpoint.npz_path(tmp_path, 3) and checkpoint.latest_valid(tmp_path).step == 3
    checkpoint.save(tmp_path, 4, {"a": np.ones(50)}, keep=3)  # room again: moved now
    assert checkpoint.steps(tmp_path) == [1, 3, 4]
    assert checkpoint.steps(tmp_path / "corrupt" / "0001") == [2]


# --- a reader beside a writer ---------------------------------------------------------------


def _save_during_first_read(monkeypatch, save):
    """Make ``checkpoint.load``'s first read run ``save()`` first: another process's run
    saving into the folder between the reader's lookup and its read."""
    from nnjax.checkpoint import store

    real, calls = store._read, []

    def read(npz, js):
        calls.append(npz)
        if len(calls) == 1:
            save()
        return real(npz, js)

    monkeypatch.setattr(store, "_read", read)
    return calls


def test_a_load_while_another_run_prunes_with_keep_1_reads_the_new_checkpoint(
    tmp_path, monkeypatch
):
    # load found step 1, the writer saved step 2 and deleted step 1 (keep=1): "checkpoint
    # ... is missing (its metadata exists)" or a FileNotFoundError, though nothing is damaged
    checkpoint.save(tmp_path, 1, {"w": np.zeros(3)}, keep=1)
    calls = _save_during_first_read(
        monkeypatch, lambda: checkpoint.save(tmp_path, 2, {"w": np.ones(3)}, keep=1)
    )
    got = checkpoint.load(tmp_path)
    assert got.step == 2 and len(calls) == 2
    np.testing.assert_array_equal(got.arrays["['w']"], np.ones(3))


def test_a_checkpoint_damaged_on_disk_is_still_reported_at_once(tmp_path, monkeypatch):
    path = checkpoint.save(tmp_path, 1, {"w": np.zeros(3)})
    with open(path, "r+b") as f:  # same size, other bytes: its sha256 no longer matches
        f.seek(-1, os.SEEK_END)
        f.write(b"\xff")
    calls = _save_during_first_read(monkeypatch, lambda: None)
    with pytest.raises(checkpoint.CorruptCheckpointError, match="sha256 does not match"):
        checkpoint.load(tmp_path)
    assert len(calls) == 1  # not read again: nothing changed it meanwhile


def test_save_params_names_a_prng_key_leaf(tmp_path):
    # JAX's "JAX array with PRNGKey dtype cannot be converted to a NumPy array" named no leaf
    path = tmp_path / "p.npz"
    with pytest.raises(ValueError) as e:
        params_npz.save_params(path, {"w": np.zeros(2), "k": jax.random.key(0)})
    assert str(e.value).startswith(
        f"io.save_params: params['k'] is a PRNG key (key<fry>), which {path}"
    )
    assert not path.exists()


def test_saved_model_label_name_nan_is_refused_naming_it(tmp_path, tiny):
    # model.json held the token NaN (no JSON), and the model loaded with a nan class name
    model, params = tiny
    with pytest.raises(ValueError) as e:
        nnjax.save(
            tmp_path / "m", model, params, input_shape=(-1, 4), label_names=["a", float("nan"), "c"]
        )
    assert str(e.value) == (
        "nnjax.save: label names must be strings or finite numbers; got nan at index 1"
    )
    assert not (tmp_path / "m").exists()
