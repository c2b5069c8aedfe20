"""Files written by older nnjax (tests/data/old_artifacts, made by its make.py at commits cc6d378,
ac1f196 and 54359a6) keep working: saved models predict what the old code predicted (to float32
rounding; bit for bit where the suite ran before); checkpoints resume to the old uninterrupted
run's params (bit for bit on the CPUs that recorded them, to float32 rounding on others); bare
params files load. Files that cannot work are refused in one line naming the file and the key
or leaf: a newer format, hand-edited records, arrays unlike their record."""

import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import nnjax
from nnjax import checkpoint, params_npz
from nnjax.checkpoint.record import _digest
from nnjax.models import mlp
from nnjax.saved_format import SavedModelError, _body_checksum

OLD = os.path.join(os.path.dirname(__file__), "data", "old_artifacts")
WITH_SAVED = ("ac1f196", "54359a6")  # cc6d378 predates saved models
COMMITS = ("cc6d378", *WITH_SAVED)
W = "[0]['W']"  # the first layer's weights, as a params file names them
FIT_ARGS = dict(optimizer="adam", learning_rate=0.05, epochs=4, batch_size=16, key=0)


def _fit_model():
    model = mlp([8, 2], "tanh")  # make.py's
    return model, model.init(jax.random.PRNGKey(0), (-1, 2))[1]


def _flat(tree) -> dict:
    leaves = jax.tree_util.tree_flatten_with_path(tree)[0]
    return {jax.tree_util.keystr(p): np.asarray(v) for p, v in leaves}


def _copy(tmp_path, commit: str, name: str) -> str:
    return shutil.copytree(os.path.join(OLD, commit, name), tmp_path / name)


def _one_line(fn, error, *parts):
    with pytest.raises(error) as e:
        fn()
    msg = str(e.value)
    assert "\n" not in msg and all(p in msg for p in parts), msg
    return msg


# --- what old files give with this code ---------------------------------------------------


@pytest.mark.parametrize("commit", WITH_SAVED)
@pytest.mark.parametrize("name", ["mlp", "bn", "cli"])
def test_old_saved_models_predict_what_the_old_code_predicted(commit, name):
    """To 4 float32 steps of the largest output: XLA compiles for the CPU it runs on, and the
    rounding differs between CPUs. Measured: max |outputs - old outputs| = 0.0 for all six
    on the AMD EPYC family 25 model 17 where the suite ran before; on an Intel Xeon family 6
    model 207 (2026-12-06, at XLA's defaults and at the tests' level) 0.0 for mlp and cli,
    2.98e-8 for bn (9 of 24 outputs; the largest 0.73), its probabilities 3.7e-9, the labels
    the same."""
    want = np.load(os.path.join(OLD, commit, "expected.npz"))
    X = want["cli_X" if name == "cli" else "X"]
    pred = nnjax.load(os.path.join(OLD, commit, "cli_model" if name == "cli" else name))
    for got, old in (
        (pred(X), want[f"{name}_outputs"]),
        (pred.predict_proba(X), want[f"{name}_proba"]),
    ):
        assert got.dtype == old.dtype and got.shape == old.shape
        steps = 4 * np.finfo(np.float32).eps * np.abs(old).max()
        np.testing.assert_allclose(got, old, rtol=0, atol=steps)
    assert pred.predict(X).astype(str).tolist() == want[f"{name}_predict"].tolist()


def _same_to_rounding(got, old, what) -> None:
    """``got`` equals ``old`` to 8 float32 steps of ``old``'s largest value. XLA compiles for
    the CPU it runs on, and the rounding of one CPU's vector width is not another's: the old
    runs' params came back bit for bit on the AVX-512 CPUs where the suite ran (an AMD EPYC
    family 25 model 17, an Intel Xeon family 6 model 207); on an AMD EPYC family 25 model 1
    (AVX2, 2026-12-07) up to 2 steps apart (1.19e-7 at 0.51, 7.5e-9 at 0.074). A resume from
    the wrong epoch, or with another optimizer state, is apart by far more."""
    assert got.dtype == old.dtype and got.shape == old.shape, what
    steps = 8 * np.finfo(np.float32).eps * np.abs(old).max()
    np.testing.assert_allclose(got, old, rtol=0, atol=steps, err_msg=what)


@pytest.mark.xla_defaults  # the old runs' params were recorded at XLA's defaults
@pytest.mark.parametrize("commit", COMMITS)
def test_old_fit_checkpoints_resume_to_the_old_runs_params(tmp_path, commit):
    """A run stopped at epoch 2 of 4 by old nnjax, resumed here, ends where the old
    uninterrupted run ended (:func:`_same_to_rounding`). cc6d378 named the mean step loss
    ``train_loss``: its resume was refused ("its metrics are ['train_loss'], this run's are
    ['step_loss_mean']")."""
    data = np.load(os.path.join(OLD, commit, "fit_data.npz"))
    folder = _copy(tmp_path, commit, "fit")
    model, params = _fit_model()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # another machine (54359a6 recorded it)
        res = nnjax.fit(model, params, data["X"], data["y"], **FIT_ARGS, checkpoint_dir=folder,
                        checkpoint_every=2, keep=None, resume=True)  # fmt: skip
    for k, v in _flat(res.params).items():
        _same_to_rounding(v, data[k], k)


@pytest.mark.parametrize("commit", COMMITS)
def test_old_checkpoints_and_bare_params_load_with_the_python_api(commit):
    """checkpoint.load/restore of every old checkpoint (the oldest named its loss history
    ['loss_history']), and io.load_params of an old io.save_params file."""
    data = np.load(os.path.join(OLD, commit, "fit_data.npz"))
    ck = checkpoint.load(os.path.join(OLD, commit, "fit"))
    assert (
        ck.step == 2 and ck.metadata["epoch"] == 2 and ck.prng_keys == {"['key']": "threefry2x32"}
    )
    like = {"params": _fit_model()[1]}
    tree, meta = checkpoint.restore(os.path.join(OLD, commit, "fit"), like, partial=True)
    assert meta["epochs"] == 4
    for k, v in _flat(tree["params"]).items():
        np.testing.assert_array_equal(v, ck.arrays["['params']" + k])
    back = params_npz.load_params(os.path.join(OLD, commit, "params.npz"), _fit_model()[1])
    for k, v in _flat(back).items():
        np.testing.assert_array_equal(v, data[k])


def _cli(*args):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    cmd = [sys.executable, "-m", "nnjax", *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)


@pytest.mark.xla_defaults  # recorded at XLA's defaults
def test_old_cli_checkpoint_resumes_and_old_model_predicts_through_the_cli(tmp_path):
    """nnjax train --resume of ac1f196's epoch-2 checkpoint ends with its epoch-4 model's
    params (:func:`_same_to_rounding`); nnjax predict on 54359a6's model prints its
    probabilities."""
    folder = _copy(tmp_path, "ac1f196", "cli_ck")
    args = "--dataset moons --hidden 4 --epochs 4 --batch-size 64 --lr 0.05".split()
    r = _cli("train", *args, "--checkpoint-dir", folder, "--checkpoint-every", "2",
             "--keep", "5", "--resume", "--out", str(tmp_path / "out"))  # fmt: skip
    assert r.returncode == 0, r.stderr
    old = np.load(os.path.join(OLD, "ac1f196", "cli_model", "params.npz"))
    new = np.load(tmp_path / "out" / "params.npz")
    assert sorted(old.files) == sorted(new.files)
    for k in old.files:
        _same_to_rounding(new[k], old[k], k)
    want = np.load(os.path.join(OLD, "54359a6", "expected.npz"))
    np.save(tmp_path / "x.npy", want["cli_X"])
    model = os.path.join(OLD, "54359a6", "cli_model")
    r = _cli("predict", model, "--data", str(tmp_path / "x.npy"), "--proba")
    assert r.returncode == 0, r.stderr
    rows = [line.split(",") for line in r.stdout.splitlines()[1:]]
    _same_to_rounding(np.array([r[2:] for r in rows], float), want["cli_proba"], "--proba")


# --- saved models that cannot work: one line -----------------------------------------------


def _reseal(folder, change) -> None:
    path = os.path.join(folder, "model.json")
    with open(path) as f:
        meta = json.load(f)
    change(meta)
    meta["checksum"] = _body_checksum(meta)
    with open(path, "w") as f:
        json.dump(meta, f)


def _rewrite_npz(folder, name, change) -> None:
    """Change the arrays of ``name`` and reseal model.json's size and SHA-256 (its leaves'
    record left as it was)."""
    arrays = dict(np.load(os.path.join(folder, name)))
    change(arrays)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    with open(os.path.join(folder, name), "wb") as f:
        f.write(buf.getvalue())
    entry = {"bytes": len(buf.getvalue()), "sha256": hashlib.sha256(buf.getvalue()).hexdigest()}
    _reseal(folder, lambda m: m["files"][name].update(entry))


@pytest.mark.parametrize(
    "change, parts",
    [
        (lambda m: m.update(format_version=2, nnjax_version="0.9"),
         ["format version 2 (written by nnjax 0.9)", "reads version 1 only"]),
        (lambda m: m.pop("loss"), ["field(s) loss missing or invalid"]),
        (lambda m: m["model"].pop("input_shape"), ["model.input_shape"]),
        (lambda m: m.update(label_names="abc"), ["field(s) label_names"]),
        # an edited output shape was named as 'label_names' alone: both fields now
        (lambda m: m["model"].update(output_shape=[-1, 7]),
         ["field(s) label_names missing or invalid (",
          " label_names, model.output_shape [-1, 7] gives 7 classes)"]),
    ],
)  # fmt: skip
def test_old_model_edited_is_one_line_naming_the_key(tmp_path, change, parts):
    folder = _copy(tmp_path, "ac1f196", "mlp")
    _reseal(folder, change)
    _one_line(lambda: nnjax.load(folder), SavedModelError, "model.json", *parts)


def test_old_model_json_truncated_or_extended(tmp_path):
    folder = _copy(tmp_path, "ac1f196", "mlp")
    _reseal(folder, lambda m: m.update(comment="extra keys are kept for newer writers"))
    assert nnjax.load(folder).meta["comment"].startswith("extra")
    with open(os.path.join(folder, "model.json"), "r+") as f:
        text = f.read()
        f.seek(0), f.truncate(), f.write(text[: len(text) // 2])
    _one_line(lambda: nnjax.load(folder), SavedModelError, "model.json: not valid JSON")


@pytest.mark.parametrize("bad", [5, "x", [[-1], 3]])
def test_output_shape_that_is_no_list_of_ints_is_one_line(tmp_path, bad):
    """Review: output_shape 5 raised TypeError: 'int' object is not iterable."""
    folder = _copy(tmp_path, "54359a6", "mlp")
    _reseal(folder, lambda m: m["model"].update(output_shape=bad))
    _one_line(lambda: nnjax.load(folder), SavedModelError, "model.json", "model.output_shape")


@pytest.mark.parametrize(
    "change, part",
    [
        (lambda a: a.pop(W), "no array for params[0]['W']"),
        (lambda a: a.update({W: a[W].T.copy()}), "(6, 4)"),
        (lambda a: a.update({W: a[W].astype(np.int32)}), "int32"),
    ],
)  # fmt: skip
def test_old_model_npz_missing_a_leaf_or_of_wrong_shape_or_dtype(tmp_path, change, part):
    folder = _copy(tmp_path, "54359a6", "mlp")
    _rewrite_npz(folder, "params.npz", change)
    _one_line(lambda: nnjax.load(folder), SavedModelError, "params.npz", "params[0]['W']", part)


def _bf16_model(tmp_path):
    model = mlp([3, 2])
    params = jax.tree.map(
        lambda a: a.astype(jnp.bfloat16), model.init(jax.random.key(0), (-1, 4))[1]
    )
    return nnjax.save(tmp_path / "bf16", model, params, input_shape=(-1, 4))


def test_a_leaves_record_of_the_wrong_type_is_one_line(tmp_path):
    """Review: a leaf's record given as a string was an AttributeError for bfloat16 params."""
    folder = _bf16_model(tmp_path)
    _reseal(folder, lambda m: m["files"]["params.npz"]["leaves"].update({"[0]['W']": "x"}))
    _one_line(lambda: nnjax.load(folder), SavedModelError, "model.json: field(s) files")


def test_raw_bytes_of_another_size_name_the_leaf(tmp_path):
    """Review: the message said '[0]['W'] holds raw bytes of an unknown dtype ('float32')'."""
    folder = _bf16_model(tmp_path)
    leaves = lambda m: m["files"]["params.npz"]["leaves"]["[0]['W']"]  # noqa: E731
    _reseal(folder, lambda m: leaves(m).update(dtype="float32"))
    _one_line(lambda: nnjax.load(folder), SavedModelError,
              "params.npz: params[0]['W'] holds raw 2-byte values", "(of 4 bytes)")  # fmt: skip


# --- checkpoints that cannot work: one line ---------------------------------------------------


def _reseal_record(folder, change, seal=True) -> str:
    path = os.path.join(folder, "ckpt_00000002.json")
    with open(path) as f:
        meta = json.load(f)
    meta.pop("meta_sha256")
    change(meta)
    meta["meta_sha256"] = _digest(meta) if seal else "sealed some newer way"
    with open(path, "w") as f:
        json.dump(meta, f)
    return path


def test_a_newer_checkpoint_format_names_both_versions(tmp_path):
    """Review: a newer format sealed another way was called 'corrupt (its content does not
    match its meta_sha256)'."""
    folder = _copy(tmp_path, "54359a6", "fit")
    _reseal_record(folder, lambda m: m.update(format=2), seal=False)
    _one_line(
        lambda: checkpoint.load(folder),
        checkpoint.CorruptCheckpointError,
        "ckpt_00000002.json: format 2, written by a newer nnjax (this one reads 1)",
    )


@pytest.mark.parametrize(
    "change, part",
    [
        (lambda m: m.pop("format"), "format None"),
        (lambda m: m.update(format="1"), "format '1'"),
        (lambda m: m.update(dtypes="bfloat16"), "'dtypes' 'bfloat16'"),
        (lambda m: m.update(step=3), "is of step 3, not 2"),
    ],
)
def test_a_checkpoint_record_edited_is_one_line(tmp_path, change, part):
    """Review: no format or format '1' loaded; dtypes 'bfloat16' was an AttributeError; a
    record of step 3 under the name of step 2 was listed as 2 and loaded as 3."""
    folder = _copy(tmp_path, "ac1f196", "fit")
    _reseal_record(folder, change)
    _one_line(lambda: checkpoint.load(folder), checkpoint.CorruptCheckpointError,
              "ckpt_00000002.json", part)  # fmt: skip


def _reseal_fit_record(folder, change=None, arrays=None) -> None:
    """Edit the fit metadata (``change``) and/or the arrays (``arrays``) of the epoch-2
    checkpoint, resealing both files as nnjax.checkpoint would."""
    npz = os.path.join(folder, "ckpt_00000002.npz")
    if arrays is not None:
        with np.load(npz) as f:
            stored = dict(f)
        arrays(stored)
        buf = io.BytesIO()
        np.savez(buf, **stored)
        with open(npz, "wb") as f:
            f.write(buf.getvalue())

    def edit(meta):
        with open(npz, "rb") as f:
            data = f.read()
        meta.update(size=len(data), sha256=hashlib.sha256(data).hexdigest())
        if change is not None:
            change(meta["metadata"])

    _reseal_record(folder, edit)


def _short(name):
    return lambda a: a.update({name: a[name][:-1]})


@pytest.mark.parametrize(
    "change, arrays, part",
    [
        (lambda m: m.update(epoch="2"), None, "metadata's 'epoch' '2' is not the file's step 2"),
        (lambda m: m.update(epoch=2.0), None, "'epoch' 2.0 is not"),
        (lambda m: m.update(epoch=-1), None, "'epoch' -1 is not"),
        (lambda m: m.update(metric_names="step_loss_mean"), None, "is no list of names"),
        (lambda m: m.update(config=[]), None, "'config' is a list, not a dict"),
        (lambda m: m.update(machine="x86"), None, "'machine' is a str, not a dict"),
        (None, _short("['metrics']['step_loss_mean']"), "is of shape (1,), not one value per"),
        (None, _short("['step_loss']"), "holds 7 step losses, not the 8 of 2 epoch(s) of 4"),
    ],
)
def test_a_fit_record_edited_and_resealed_is_refused_in_one_line(tmp_path, change, arrays, part):
    """Review: epoch "2" was a TypeError about '>', 2.0 failed deep in make_epochs_fn, -1
    resumed silently; metric_names as a string was read as its characters; config as a list
    or machine as a string were AttributeErrors; a short loss history was NumPy's 'cannot
    reshape', a short metric array resumed silently."""
    data = np.load(os.path.join(OLD, "54359a6", "fit_data.npz"))
    folder = _copy(tmp_path, "54359a6", "fit")
    _reseal_fit_record(folder, change, arrays)
    model, params = _fit_model()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # another machine
        _one_line(lambda: nnjax.fit(model, params, data["X"], data["y"], **FIT_ARGS,
                                    checkpoint_dir=folder, resume=True),
                  ValueError, "cannot resume from", "ckpt_00000002", part)  # fmt: skip


# --- bare params files (params_npz.load_params) ------------------------------------------------


def _params_file(tmp_path, change):
    arrays = dict(np.load(os.path.join(OLD, "cc6d378", "params.npz")))
    change(arrays)
    np.savez(tmp_path / "p.npz", **arrays)
    return tmp_path / "p.npz"


@pytest.mark.parametrize(
    "change, part",
    [
        (lambda a: a.update({W: a[W].astype(np.int32)}),
         "params[0]['W'] has dtype int32, like's leaf is float32 (floating)"),
        (lambda a: a.update({W: a[W].astype(str)}), "params[0]['W'] has dtype <U"),
        (lambda a: a.update({"[4]['W']": np.ones((2, 2), np.float32)}),
         "params[4]['W'] has no place in like (1 of the file's arrays"),
        (lambda a: a.update({W: np.empty((2, 8), object)}),
         "params[0]['W'] cannot be read (an object array"),
    ],
)  # fmt: skip
def test_load_params_refuses_leaves_of_another_kind_or_model(tmp_path, change, part):
    """Review: an int or text leaf was returned as it was, an array left over (another
    model's layer) silently dropped, an object array failed without naming file or leaf."""
    path = _params_file(tmp_path, change)
    _one_line(lambda: params_npz.load_params(path, _fit_model()[1]), ValueError, str(path), part)


def test_load_params_names_a_file_that_is_no_npz(tmp_path):
    """Review: a lone .npy was "'numpy.ndarray' object does not support the context manager
    protocol"; other bytes were called pickled data."""
    like = _fit_model()[1]
    np.save(tmp_path / "a.npy", np.ones(3))
    _one_line(lambda: params_npz.load_params(tmp_path / "a.npy", like), ValueError,
              "a.npy: a single .npy array of shape (3,)")  # fmt: skip
    (tmp_path / "b.npz").write_bytes(b"not an archive")
    _one_line(lambda: params_npz.load_params(tmp_path / "b.npz", like), ValueError,
              "b.npz: not an .npz archive of params (neither a zip archive nor .npy)")  # fmt: skip
