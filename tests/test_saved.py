"""Saved models: nnjax.save -> nnjax.load round trips (mlp, logreg, a CNN with BatchNorm state,
the GRU); every damaged file and another format version is one line naming the file."""

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import nnjax
from nnjax import saved
from nnjax.data import Standardizer
from nnjax.layers import BatchNorm, Conv, Reshape, apply_model


def _X(n=12, d=8, seed=0):
    return np.random.default_rng(seed).normal(2.0, 3.0, size=(n, d)).astype(np.float32)


def _outputs(model, params, state, X, std):
    x = std.transform(X).astype(np.float32)
    f = jax.jit(lambda p, s, x: apply_model(model, p, s, x, train=False)[0])
    return np.asarray(f(params, state, x))


def _roundtrip(tmp_path, model, params, state=None, loss="softmax_cross_entropy", names=None):
    X = _X()
    std = Standardizer.fit(X)
    path = tmp_path / "m"
    nnjax.save(path, model, params, state=state, standardizer=std, label_names=names, loss=loss)
    pred = nnjax.load(path)
    want = _outputs(model, params, () if state is None else state, X, std)
    np.testing.assert_array_equal(pred(X), want)  # bit for bit: the same program
    return pred, X, want


def test_mlp_roundtrip_predicts_label_names(tmp_path):
    model = nnjax.mlp([16, 16, 3], "tanh")
    _, params = model.init(jax.random.key(1), (-1, 8))
    pred, X, z = _roundtrip(tmp_path, model, params, names=["cat", "dog", "eel"])
    assert pred.predict(X).tolist() == [["cat", "dog", "eel"][k] for k in z.argmax(1)]
    p = pred.predict_proba(X)
    e = np.exp(z.astype(np.float64) - z.max(1, keepdims=True))
    np.testing.assert_allclose(p, e / e.sum(1, keepdims=True), rtol=1e-12)
    assert pred.model.spec == model.spec and "3 classes (cat, dog, eel)" in repr(pred)
    jax.tree.map(np.testing.assert_array_equal, pred.params, params)


def test_logreg_roundtrip_sigmoid_probabilities(tmp_path):
    model = nnjax.logistic_regression(8)
    params = {"W": jnp.arange(8.0)[:, None] / 10, "b": jnp.array([0.3])}
    loss = "binary_cross_entropy_with_logits"
    pred, X, z = _roundtrip(tmp_path, model, params, loss=loss, names=[3, 7])
    p1 = 1 / (1 + np.exp(-z[:, 0].astype(np.float64)))
    np.testing.assert_allclose(pred.predict_proba(X), np.stack([1 - p1, p1], 1), rtol=1e-12)
    assert pred.predict(X).tolist() == [7 if v > 0 else 3 for v in z[:, 0]]


def test_cnn_with_batchnorm_state_roundtrip(tmp_path):
    model = nnjax.serial(
        Reshape((8, 1)), Conv(4, 3), BatchNorm(), nnjax.Activation("relu"), nnjax.Flatten(),
        nnjax.Dense(3),
    )  # fmt: skip
    _, params, state = model.init(jax.random.key(2), (-1, 8))
    X = _X(n=40, seed=3)
    res = nnjax.fit(model, params, X, (X[:, 0] > 2).astype(np.int32), state=state, epochs=2)
    assert not np.allclose(res.state[2]["mean"], 0)  # running statistics moved
    pred, _, _ = _roundtrip(tmp_path, model, res.params, state=res.state)
    assert os.path.isfile(tmp_path / "m" / "state.npz")
    jax.tree.map(np.testing.assert_array_equal, pred.state, res.state)


def test_stateless_model_saved_over_a_stateful_one_leaves_no_old_state(tmp_path):
    bn = nnjax.serial(nnjax.Dense(4), BatchNorm(), nnjax.Dense(3))
    _, params, state = bn.init(jax.random.key(4), (-1, 8))
    nnjax.save(tmp_path, bn, params, state=state, input_shape=(-1, 8))
    assert os.path.isfile(tmp_path / "state.npz")
    model = nnjax.mlp([5, 3])
    _, params = model.init(jax.random.key(5), (-1, 8))
    nnjax.save(tmp_path, model, params, input_shape=(-1, 8))
    assert sorted(os.listdir(tmp_path)) == ["model.json", "params.npz"]
    jax.tree.map(np.testing.assert_array_equal, nnjax.load(tmp_path).params, params)


def test_gru_roundtrip(tmp_path):
    model = nnjax.gru(4, hidden=3, input_shape=(8, 1))
    _, params = model.init(jax.random.key(3), (-1, 8))
    _roundtrip(tmp_path, model, params)


def test_a_model_from_a_python_function_cannot_be_saved(tmp_path):
    model = nnjax.serial(nnjax.Dense(4), nnjax.Activation(jnp.tanh), nnjax.Dense(2))
    _, params = model.init(jax.random.key(0), (-1, 8))
    with pytest.raises(ValueError, match=r"Activation\(tanh\) \(in serial.*cannot be saved"):
        nnjax.save(tmp_path / "m", model, params, input_shape=(-1, 8))
    with pytest.raises(ValueError, match="plain function"):
        nnjax.save(tmp_path / "m", lambda p, x, key=None: x, {}, input_shape=(-1, 8))


def test_save_refuses_params_of_another_model(tmp_path):
    _, params = nnjax.mlp([4, 2]).init(jax.random.key(0), (-1, 8))
    with pytest.raises(ValueError, match=r"params\[0\]\['W'\] has shape \(8, 4\).*\(8, 5\)"):
        nnjax.save(tmp_path / "m", nnjax.mlp([5, 2]), params, input_shape=(-1, 8))


@pytest.mark.parametrize("shape", [(8,), (-1, 8.5), (True, 8), "8", (-1, 0), (0, 8), ()])
def test_save_refuses_an_input_shape_without_its_batch_axis_or_of_bad_sizes(tmp_path, shape):
    """Review: (8,) became (-1,) and failed deep in the model's check; (-1, 8.5) was saved
    as (-1, 8)."""
    model = nnjax.mlp([4, 2])
    _, params = model.init(jax.random.key(0), (-1, 8))
    with pytest.raises(ValueError, match=r"nnjax.save: input_shape must be the model's input "
                       r"with the batch axis first, e.g. \(-1, 64\)"):  # fmt: skip
        nnjax.save(tmp_path / "m", model, params, input_shape=shape)
    assert not (tmp_path / "m").exists()


def test_save_names_a_missing_batch_axis_when_the_model_takes_it(tmp_path):
    """nnjax.gru(..., input_shape=(T, F)) names its shape without a batch axis; the same
    tuple given to save is one axis short, and the error says what to give."""
    model = nnjax.gru(4, hidden=3, input_shape=(8, 1))
    _, params = model.init(jax.random.key(3), (-1, 8, 1))
    with pytest.raises(ValueError, match=r"input_shape \(8, 1\) has no batch axis: give "
                       r"\(-1, 8, 1\)\)$"):  # fmt: skip
        nnjax.save(tmp_path / "m", model, params, input_shape=(8, 1))
    nnjax.save(tmp_path / "m", model, params, input_shape=(None, 8, 1))
    assert nnjax.load(tmp_path / "m").meta["model"]["input_shape"] == [-1, 8, 1]


def test_a_save_that_fails_leaves_the_model_saved_before(tmp_path, monkeypatch):
    """Review: nnjax.save replaced params.npz, then the disk was full at model.json: the old
    model.json no longer matched (checksum mismatch), so the old model was lost and the new
    one not written. Now every file is on disk before any is replaced."""
    import errno

    from nnjax import io as nio

    model = nnjax.mlp([5, 3])
    _, old = model.init(jax.random.key(0), (-1, 8))
    _, new = model.init(jax.random.key(1), (-1, 8))
    nnjax.save(tmp_path / "m", model, old, input_shape=(-1, 8))
    X = np.random.default_rng(0).normal(size=(4, 8))
    before = nnjax.load(tmp_path / "m")(X)
    real = nio._write_all

    def full_at_model_json(fd, data):
        if bytes(data[:1]) == b"{":  # model.json's text; the arrays are zip archives
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(fd, data)

    monkeypatch.setattr(nio, "_write_all", full_at_model_json)
    with pytest.raises(OSError, match="No space left on device"):
        nnjax.save(tmp_path / "m", model, new, input_shape=(-1, 8))
    monkeypatch.undo()
    np.testing.assert_array_equal(nnjax.load(tmp_path / "m")(X), before)
    assert sorted(os.listdir(tmp_path / "m")) == ["model.json", "params.npz"]


@pytest.fixture
def saved_mlp(tmp_path):
    model = nnjax.mlp([5, 3])
    _, params = model.init(jax.random.key(0), (-1, 8))
    path = tmp_path / "m"
    nnjax.save(path, model, params, standardizer=Standardizer.fit(_X()))
    return path


def _one_line(path, match):
    with pytest.raises(saved.SavedModelError) as e:
        nnjax.load(path)
    msg = str(e.value)
    assert "\n" not in msg and match in msg, msg
    return msg


def _reseal(path, edit):
    """Edit model.json and recompute its checksum, as a writer of another version would."""
    meta = json.loads((path / "model.json").read_text())
    edit(meta)
    meta["checksum"] = saved._body_checksum(meta)
    (path / "model.json").write_text(json.dumps(meta))


def test_truncated_params(saved_mlp):
    data = (saved_mlp / "params.npz").read_bytes()
    (saved_mlp / "params.npz").write_bytes(data[: len(data) // 2])
    _one_line(saved_mlp, f"params.npz: truncated ({len(data) // 2} bytes, {len(data)} written)")


def test_params_replaced_by_another_file_of_the_same_size(saved_mlp):
    data = bytearray((saved_mlp / "params.npz").read_bytes())
    data[-100] ^= 1
    (saved_mlp / "params.npz").write_bytes(bytes(data))
    _one_line(saved_mlp, "params.npz: checksum mismatch")


def test_edited_json(saved_mlp):
    text = (saved_mlp / "model.json").read_text()
    (saved_mlp / "model.json").write_text(text.replace('"relu"', '"tanh"'))
    _one_line(saved_mlp, "model.json: checksum mismatch: the file was edited")
    (saved_mlp / "model.json").write_text(text[:-40])
    _one_line(saved_mlp, "model.json: not valid JSON")


def test_another_format_version(saved_mlp):
    _reseal(saved_mlp, lambda m: m.update(format_version=2, nnjax_version="9.0"))
    msg = _one_line(saved_mlp, "model.json: format version 2 (written by nnjax 9.0)")
    assert "reads version 1 only" in msg
    _reseal(saved_mlp, lambda m: m.update(format="something-else"))
    _one_line(saved_mlp, "not an nnjax saved model (format 'something-else')")


def test_missing_leaf_and_shape_mismatch(saved_mlp):
    def widen(meta):  # the spec says 6 hidden units, the params hold 5
        meta["model"]["spec"][1]["sizes"] = [6, 3]

    _reseal(saved_mlp, widen)
    _one_line(saved_mlp, "params.npz: params[0]['W'] has shape (8, 5), the model needs (8, 6)")
    _reseal(saved_mlp, lambda m: m["model"]["spec"][1].update(sizes=[5, 5, 3]))
    _one_line(saved_mlp, "params.npz: no array for params[4]['W'] (the model needs shape (5, 3))")


@pytest.mark.parametrize(
    "edit, names",
    [
        (lambda m: m.pop("files"), "files"),
        (lambda m: m["files"]["params.npz"].pop("bytes"), "files"),
        (lambda m: m.pop("label_names"), "label_names"),
        (lambda m: m.update(loss="hinge"), "loss missing or invalid (loss: one of mse, "),
        (lambda m: m.update(feature_names="x1"), "feature_names"),
    ],
)
def test_a_resealed_json_missing_a_field_is_one_line_not_a_key_error(saved_mlp, edit, names):
    """A model.json with a valid checksum but no 'files' raised a bare KeyError."""
    _reseal(saved_mlp, edit)
    _one_line(saved_mlp, f"model.json: field(s) {names}")


@pytest.mark.parametrize(
    "edit, names",
    [  # review: each was loaded, then predict raised a traceback or named classes wrongly
        (lambda m: m.update(label_names=[0, 1]), "label_names"),  # 3 outputs: IndexError
        (lambda m: m.update(label_names=[0, 1, 2, 3]), "label_names"),  # p_ columns ragged
        (lambda m: m.update(label_names=[0, 1, 1]), "label_names"),  # two classes named 1
        (lambda m: m.update(label_names=[[0], 1, 2]), "label_names"),  # unhashable
        (lambda m: m.update(feature_names=[f"x{i}" for i in range(7)]), "feature_names"),
        (lambda m: m.update(feature_names=list(range(8))), "feature_names"),
        (lambda m: m.update(target=5), "target"),
        (lambda m: m["model"].update(input_shape="abc"), "model"),
        (lambda m: m["files"]["params.npz"].update(bytes="12"), "files"),
    ],
)
def test_a_resealed_json_with_fields_that_do_not_fit_is_one_line(saved_mlp, edit, names):
    _reseal(saved_mlp, edit)
    _one_line(saved_mlp, f"model.json: field(s) {names} missing or invalid")


def test_save_refuses_label_names_that_repeat_or_are_no_scalars(tmp_path):
    """Review: saved, then predict mapped both classes' labels to the last of them."""
    model = nnjax.mlp([5, 2])
    _, params = model.init(jax.random.key(0), (-1, 8))
    odd = r"must be strings or numbers; got \(0,\) \(tuple\)"
    for names, match in [([1, 1], "label names repeat: 1"), ([(0,), 1], odd)]:
        with pytest.raises(ValueError, match=match):
            nnjax.save(tmp_path / "m", model, params, input_shape=(-1, 8), label_names=names)
    assert not (tmp_path / "m").exists()
    nnjax.save(tmp_path / "m", model, params, input_shape=(-1, 8), label_names=[False, 1.5])
    assert nnjax.load(tmp_path / "m").label_names == [False, 1.5]


def test_bfloat16_params_load_in_their_dtype(tmp_path):
    """Review: saved, but .npz keeps bfloat16 as raw bytes (V2): load raised a TypeError
    traceback ("Error interpreting argument to stage as a JAX value")."""
    import jax.numpy as jnp

    model = nnjax.mlp([5, 3])
    _, params = model.init(jax.random.key(0), (-1, 8))
    params = jax.tree.map(lambda a: a.astype(jnp.bfloat16), params)
    nnjax.save(tmp_path / "m", model, params, input_shape=(-1, 8))
    pred = nnjax.load(tmp_path / "m")
    chex_equal = jax.tree.map(lambda a, b: bool((np.asarray(a) == np.asarray(b)).all()),
                              pred.params, params)  # fmt: skip
    assert all(jax.tree.leaves(chex_equal))
    assert {str(a.dtype) for a in jax.tree.leaves(pred.params)} == {"bfloat16"}
    X = np.random.default_rng(0).normal(size=(4, 8)).astype(np.float32)
    want = np.asarray(model.apply(params, jnp.asarray(X)))
    np.testing.assert_allclose(pred(X), want, atol=1e-6)


def test_the_light_loss_names_are_the_loss_table():
    from nnjax.losses import LOSSES

    assert saved.LOSS_NAMES == tuple(LOSSES)


def test_save_refuses_a_standardizer_or_names_the_model_cannot_take(tmp_path):
    """Both were saved, and every later prediction failed."""
    model = nnjax.mlp([5, 3])
    _, params = model.init(jax.random.key(0), (-1, 4))
    std = Standardizer.fit(_X(d=3))
    with pytest.raises(ValueError, match=r"standardizer has 3 features, but the model's input"):
        nnjax.save(tmp_path / "a", model, params, standardizer=std, input_shape=(-1, 4))
    with pytest.raises(ValueError, match=r"2 feature names for the model's input shape \(-1, 4\)"):
        nnjax.save(tmp_path / "b", model, params, feature_names=["x", "y"], input_shape=(-1, 4))
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


@pytest.mark.parametrize("loss", ["binary_cross_entropy", "binary_cross_entropy_with_logits"])
def test_save_refuses_a_binary_loss_for_several_outputs(tmp_path, loss):
    """Review: saved, and predict_proba then took the softmax of three probabilities."""
    model = nnjax.mlp([4, 3], output_activation="sigmoid")
    _, params = model.init(jax.random.key(0), (-1, 2))
    with pytest.raises(ValueError, match=rf"loss {loss} takes one output per example .*"
                       r"the model gives 3 \(for 3 classes: softmax_cross_entropy\)"):  # fmt: skip
        nnjax.save(tmp_path / "m", model, params, input_shape=(-1, 2), loss=loss)
    assert not (tmp_path / "m").exists()


def test_missing_files(saved_mlp, tmp_path):
    os.remove(saved_mlp / "params.npz")
    _one_line(saved_mlp, "params.npz: missing")
    with pytest.raises(OSError, match=rf"^{tmp_path / 'nothing'}: no saved model there \(no such"):
        nnjax.load(tmp_path / "nothing")  # a path problem (a PathError): the CLI exits 3
    (tmp_path / "empty").mkdir()
    _one_line(tmp_path / "empty", "not a saved nnjax model (no model.json)")


def test_predictor_refuses_inputs_of_another_shape(saved_mlp):
    pred = nnjax.load(saved_mlp)
    with pytest.raises(ValueError, match=r"expects inputs of shape \(n, 8\), got \(3, 7\)"):
        pred(np.zeros((3, 7), np.float32))


def test_predictor_on_no_rows_gives_empty_predictions_of_the_label_type(tmp_path):
    """Review: predict on a (0, 8) batch raised NumPy's "cannot reshape array of size 0"."""
    model = nnjax.mlp([5, 3])
    _, params = model.init(jax.random.key(0), (-1, 8))
    nnjax.save(tmp_path / "m", model, params, input_shape=(-1, 8), label_names=[3, 5, 7])
    pred = nnjax.load(tmp_path / "m")
    empty = np.zeros((0, 8), np.float32)
    got = pred.predict(empty)
    assert got.shape == (0,) and got.dtype == np.asarray([3]).dtype
    assert pred.predict_proba(empty).shape == (0, 3)
    X = np.random.default_rng(0).normal(size=(6, 8))
    expected = np.asarray([3, 5, 7])[np.argmax(pred(X), axis=1)]
    np.testing.assert_array_equal(pred.predict(X), expected)


def test_the_docs_example_runs_and_predicts_named_labels(tmp_path, monkeypatch):
    """docs/saved-models.md's example, as written (it once used attributes a Dataset lacks)."""
    import re

    doc = os.path.join(os.path.dirname(__file__), "..", "docs", "saved-models.md")
    (block,) = re.findall(r"```python\n(.*?)```", open(doc).read(), re.S)
    monkeypatch.chdir(tmp_path)
    ns = {}
    exec(compile(block, "docs/saved-models.md", "exec"), ns)
    labels = ns["p"].predict(ns["X_raw"])
    accuracy = np.mean(labels == np.asarray(ns["names"])[ns["y"]])
    assert accuracy > 0.9, accuracy
    assert (tmp_path / "run" / "model.json").is_file()
