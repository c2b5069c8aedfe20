"""Audit of interop, saved models, the predictor and `nnjax predict` on untried paths.

Interop: every activation, with and without an output activation, no hidden layer and one,
round-trips bit for bit through NNX and linen; params of other layers (conv, recurrent,
normalisation, nested blocks) are refused naming the layer. Saved models: an array file of
the wrong dtype, a lone .npy in place of the archive, a missing standardizer, a model.json
whose recorded outputs or label names do not fit the rebuilt model, a nan weight or a
negative running variance: each one line naming the file (they loaded, then predicted
zeros, complex numbers, nan blamed on the inputs, ragged CSV rows or an IndexError).
"""

import hashlib
import io
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import nnjax
from nnjax import interop, saved
from nnjax.activations import ACTIVATIONS
from nnjax.cli import main
from nnjax.data import Standardizer
from nnjax.layers import BatchNorm, Dense, init_model, serial

# --- interop ---------------------------------------------------------------------------


def _mlp_params(sizes, output_activation, n_in=4, seed=0):
    """An nnjax mlp's params with NumPy-drawn values (nonzero biases) and a batch (5, n_in)."""
    model = nnjax.mlp(list(sizes), "tanh", output_activation)
    _, params = model.init(jax.random.key(0), (-1, n_in))
    rng = np.random.default_rng(seed)
    params = jax.tree.map(lambda a: jnp.asarray(rng.normal(size=a.shape), a.dtype), params)
    return params, jnp.asarray(rng.normal(size=(5, n_in)), jnp.float32)


@pytest.mark.parametrize("sizes", [(3,), (6, 3)])
@pytest.mark.parametrize("activation", list(ACTIVATIONS))
def test_every_activation_round_trips_bit_for_bit(sizes, activation):
    """Measured: params identical after to_nnx -> from_nnx and to_linen -> from_linen, and
    outputs equal to the nnjax apply (max |diff| 0 in float32 for every activation)."""
    for out_act in (None, activation):
        params, x = _mlp_params(sizes, out_act)
        want = nnjax.mlp(list(sizes), activation, out_act).apply(params, x)
        net = interop.to_nnx(params, activation, out_act)
        module, variables = interop.to_linen(params, activation, out_act)
        for back in (interop.from_nnx(net), interop.from_linen(module, variables)):
            assert jax.tree.structure(back) == jax.tree.structure(params)
            for u, v in zip(jax.tree.leaves(back), jax.tree.leaves(params)):
                assert u.dtype == v.dtype
                np.testing.assert_array_equal(np.asarray(u), np.asarray(v))
        np.testing.assert_allclose(net(x), want, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(module.apply(variables, x), want, rtol=1e-6, atol=1e-6)


def _params_of(model, shape):
    return init_model(model, jax.random.key(0), shape)[1]


@pytest.mark.parametrize(
    "make, shape, match",
    [
        (lambda: nnjax.models.cnn(3, input_shape=(16, 1)), (-1, 16, 1), r"params\[1\] is a conv"),
        (lambda: nnjax.models.gru(3, input_shape=(5, 2)), (-1, 5, 2), "Bidirectional recurrent"),
        (lambda: serial(Dense(4), BatchNorm(), Dense(2)), (-1, 3), "BatchNorm or LayerNorm"),
        (lambda: nnjax.models.resmlp(3, hidden=4), (-1, 5), r"params\[2\] is a nested list"),
        (lambda: nnjax.models.logistic_regression(4), (-1, 4), r"give them as a list: \[params"),
    ],
)
def test_params_of_another_model_are_refused_naming_the_layer(make, shape, match):
    """Before: a CNN's or GRU's params were 'params[0] should be a Dense layer, got keys []'
    (its Reshape), a BatchNorm's 'should be an activation layer', naming no layer kind."""
    params = _params_of(make(), shape)
    for convert in (interop.to_nnx, interop.to_linen):
        with pytest.raises(ValueError, match=match) as e:
            convert(params)
        assert "\n" not in str(e.value)


def test_params_of_a_recurrent_cell_name_it():
    params = [{"W_i": jnp.ones((2, 9)), "W_h": jnp.ones((3, 9)), "b_i": jnp.ones(9)}]
    params[0]["b_h"] = jnp.ones(9)
    with pytest.raises(ValueError, match=r"params\[0\] is a recurrent layer's \(a GRUCell"):
        interop.to_nnx(params)


def test_from_nnx_names_a_layer_that_is_not_linear():
    """Before: an nnx.BatchNorm among the layers was AttributeError: no attribute 'kernel'."""
    dense = [{"W": jnp.ones((3, 4)), "b": jnp.ones(4)}, {"W": jnp.ones((4, 2)), "b": jnp.ones(2)}]
    net = interop.to_nnx([dense[0], {}, dense[1]])
    net.layers[1] = nnx.BatchNorm(4, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match=r"from_nnx: layers\[1\] is a flax\.nnx\..*BatchNorm"):
        interop.from_nnx(net)


def test_a_leaf_that_is_none_is_named_not_read_as_a_nan_scalar():
    """Before: W=None was read as nan of shape (): 'Dense 0 W must be 2-D, got ()'."""
    with pytest.raises(ValueError, match="Dense 0 W must be an array of floats, got NoneType"):
        interop.to_nnx([{"W": None, "b": jnp.ones(4)}])
    with pytest.raises(ValueError, match="Dense 0 b must be an array of floats, got list"):
        interop.to_linen([{"W": jnp.ones((3, 4)), "b": ["a", "b", "c", "d"]}])


# --- saved models ----------------------------------------------------------------------


def _X(n=6, d=8):
    return np.random.default_rng(0).normal(2.0, 3.0, size=(n, d))


@pytest.fixture
def saved_mlp(tmp_path):
    model = nnjax.mlp([5, 3])
    _, params = model.init(jax.random.key(0), (-1, 8))
    return saved.save(tmp_path / "m", model, params, standardizer=Standardizer.fit(_X()))


@pytest.fixture
def saved_bn(tmp_path):
    model = serial(Dense(4), BatchNorm(), Dense(3))
    _, params, state = init_model(model, jax.random.key(0), (-1, 8))
    return saved.save(tmp_path / "bn", model, params, state=state, input_shape=(-1, 8))


def _meta(path):
    with open(f"{path}/model.json") as f:
        return json.load(f)


def _reseal(path, meta):
    """model.json with its checksum recomputed: as another program would write it."""
    meta["checksum"] = saved._body_checksum(meta)
    with open(f"{path}/model.json", "w") as f:
        json.dump(meta, f)


def _replace_array_file(path, name, data: bytes):
    """``name`` replaced by ``data``, model.json's size and SHA-256 of it updated."""
    with open(f"{path}/{name}", "wb") as f:
        f.write(data)
    meta = _meta(path)
    meta["files"][name].update(bytes=len(data), sha256=hashlib.sha256(data).hexdigest())
    _reseal(path, meta)


def _edit_leaf(path, name, key, change):
    with np.load(f"{path}/{name}") as a:
        arrays = {k: a[k] for k in a.files}
    arrays[key] = change(arrays[key])
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    _replace_array_file(path, name, buf.getvalue())


def _one_line(path, *parts):
    with pytest.raises(saved.SavedModelError) as e:
        nnjax.load(path)
    msg = str(e.value)
    assert "\n" not in msg and all(p in msg for p in parts), msg
    return msg


@pytest.mark.parametrize("dtype", ["int32", "uint8", "bool", "complex64", "<U3"])
def test_an_array_of_the_wrong_dtype_is_named(saved_mlp, dtype):
    """Before: int32/uint8/bool weights loaded (int32: all outputs 0.0), complex64 gave
    complex outputs, a string array a many-line JAX TypeError inside the jit."""
    _edit_leaf(saved_mlp, "params.npz", "[0]['W']", lambda a: a.astype(dtype))
    _one_line(
        saved_mlp,
        "m/params.npz: params[0]['W'] has dtype",
        str(np.dtype(dtype)),
        "the model needs a floating-point array",
    )


def test_a_weight_of_another_precision_still_loads(saved_mlp):
    """float16 weights are a model of lower precision, not a damaged one: outputs agree to
    float16 rounding (measured max |diff| 4.5e-4 on outputs up to 3.8 in size)."""
    want = nnjax.load(saved_mlp)(_X())
    _edit_leaf(saved_mlp, "params.npz", "[0]['W']", lambda a: a.astype(np.float16))
    np.testing.assert_allclose(nnjax.load(saved_mlp)(_X()), want, rtol=0, atol=5e-3)


def test_a_lone_npy_in_place_of_the_archive_is_named(saved_mlp):
    """Before: TypeError: 'numpy.ndarray' object does not support the context manager."""
    buf = io.BytesIO()
    np.save(buf, np.ones(3))
    _replace_array_file(saved_mlp, "params.npz", buf.getvalue())
    _one_line(saved_mlp, "m/params.npz: not an .npz archive (a single .npy array of shape (3,))")


def test_a_missing_standardizer_field_is_named(saved_mlp):
    """Before: "cannot rebuild the model: 'standardizer'" (a KeyError's text)."""
    meta = _meta(saved_mlp)
    del meta["standardizer"]
    _reseal(saved_mlp, meta)
    _one_line(saved_mlp, "model.json: field(s) standardizer missing or invalid")


def _edited(path, edit):
    meta = _meta(path)
    edit(meta)
    _reseal(path, meta)
    return path


def test_recorded_outputs_that_do_not_fit_the_model_are_named(saved_mlp, capsys, tmp_path):
    """Before: loaded; predict_proba gave 3 columns for 4 label names, and `nnjax predict
    --proba` wrote a header of 4 p_ columns over rows of 3 values, exit 0."""

    def four(meta):
        meta["model"]["output_shape"] = [-1, 4]
        meta["label_names"] = [0, 1, 2, 3]

    _edited(saved_mlp, four)
    _one_line(saved_mlp, "model.output_shape [-1, 4] but the model rebuilt", "gives [-1, 3]")
    data = tmp_path / "x.npy"
    np.save(data, _X())
    assert main(["predict", str(saved_mlp), "--data", str(data), "--proba"]) == 2
    assert "model.output_shape [-1, 4]" in capsys.readouterr().err


def test_label_names_too_few_for_the_outputs_are_named(saved_mlp):
    """Before (no output_shape recorded, two names, three outputs): IndexError in predict."""

    def two(meta):
        del meta["model"]["output_shape"]
        meta["label_names"] = ["a", "b"]

    _edited(saved_mlp, two)
    _one_line(saved_mlp, "model.json: 2 label_names for a model with 3 classes")


def test_a_binary_loss_for_several_outputs_is_named(saved_mlp):
    """Before: loaded; predict_proba took a softmax of what the loss calls probabilities."""
    _edited(saved_mlp, lambda m: m.update(loss="binary_cross_entropy"))
    _one_line(saved_mlp, "loss binary_cross_entropy takes one output per example", "gives 3")


def test_a_standardizer_of_another_width_is_named(saved_mlp):
    """Before: loaded; every call failed with 'Standardizer: fitted on 5 features', naming
    no file."""

    def cut(meta):
        std = meta["standardizer"]
        std["mean"], std["std"] = std["mean"][:5], std["std"][:5]

    _edited(saved_mlp, cut)
    _one_line(saved_mlp, "model.json: the standardizer has 5 features", "(-1, 8) has 8")


def test_a_nan_weight_is_named_not_blamed_on_the_inputs(saved_mlp):
    """Before: loaded; every prediction was NonFiniteRows '(inputs far outside the training
    data?)'. save refuses such params; load now does too, naming the leaf."""

    def nan(a):
        a = a.copy()
        a[1, 2] = np.nan
        return a

    _edit_leaf(saved_mlp, "params.npz", "[2]['W']", nan)
    _one_line(saved_mlp, "params.npz: params[2]['W'] holds 1 nan/inf value(s) of 15")


def test_a_negative_running_variance_is_named(saved_bn):
    _edit_leaf(saved_bn, "state.npz", "[1]['var']", lambda a: a - 3.0)
    _one_line(saved_bn, "state.npz: state[1]['var'], a running variance, holds values < 0")


def test_a_float64_model_loads_without_x64_to_float32_rounding(tmp_path):
    """Saved with x64 (float64 params), loaded without: float32 params and outputs within
    float32 rounding of the float64 ones (measured max |diff| 2.4e-7, outputs up to 6.9),
    with a warning that says so."""
    X = _X()
    with jax.enable_x64(True):
        model = nnjax.mlp([5, 3])
        _, params = model.init(jax.random.key(0), (-1, 8))
        assert params[0]["W"].dtype == jnp.float64
        saved.save(tmp_path / "m", model, params, standardizer=Standardizer.fit(X))
        wide = nnjax.load(tmp_path / "m")(X)
        assert wide.dtype == np.float64
    with pytest.warns(UserWarning, match=r"params.npz: the params were saved in float64"):
        narrow = nnjax.load(tmp_path / "m")(X)
    assert narrow.dtype == np.float32
    np.testing.assert_allclose(narrow, wide, rtol=0, atol=1e-5 * np.abs(wide).max())


# --- predictor and the predict command -------------------------------------------------


def test_object_inputs_are_refused_naming_the_valid_dtypes(saved_mlp):
    pred = nnjax.load(saved_mlp)
    with pytest.raises(ValueError, match=r"numbers \(an array of ints, bools or floats\), got "):
        pred(np.array([[1, None, 2, 3, 4, 5, 6, 7]], dtype=object))


def test_predict_help_states_the_output_columns(capsys):
    """Before: --out said only 'write the predictions as CSV here'."""
    assert main(["predict", "-h"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    for column in ("row (the CSV line", "prediction (the label name)", "label (when", "p_<label>"):
        assert column in text, column


def test_predict_on_the_folder_of_a_killed_run_says_so(tmp_path, capsys):
    """Before: a folder holding only the nnjax.lock of a run killed before it saved was
    'not a saved nnjax model (no model.json)', with no word of the run."""
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "nnjax.lock").write_text('{"pid": 1}')
    np.save(tmp_path / "x.npy", _X())
    assert main(["predict", str(tmp_path / "run"), "--data", str(tmp_path / "x.npy")]) == 2
    err = capsys.readouterr().err
    assert "no model.json); it holds nnjax.lock: a training run into it" in err, err


def test_a_probability_model_whose_outputs_are_no_probabilities_is_refused(tmp_path):
    """Before: a logit model saved with loss binary_cross_entropy gave predict_proba rows
    [-2.0, 3.0] for z = 3 and class 0 for z = 0.3 (a positive logit), silently."""
    model = nnjax.models.logistic_regression(2)
    params = {"W": jnp.array([[3.0], [0.0]]), "b": jnp.array([0.0])}
    path = saved.save(
        tmp_path / "m", model, params, loss="binary_cross_entropy", input_shape=(-1, 2)
    )
    pred = nnjax.load(path)
    inside = np.array([[0.1, 0.0], [0.3, 5.0]])  # z = 0.3, 0.9: probabilities, kept
    np.testing.assert_allclose(pred.predict_proba(inside)[:, 1], [0.3, 0.9], rtol=1e-6)
    with pytest.raises(ValueError, match=r"outside \[0, 1\], no probabilities, in 2 row\(s\), "):
        pred.predict_proba(np.array([[1.0, 0.0], [0.1, 0.0], [-1.0, 0.0]]))


def test_save_names_a_file_in_the_way_and_an_empty_path(tmp_path):
    """Before: save('') was FileNotFoundError "No such file or directory: ''", and a path
    under a file "[Errno 20] Not a directory: '.../afile/m'", naming neither cause."""
    from nnjax.errors import PathError

    model = nnjax.mlp([3])
    _, params = model.init(jax.random.key(0), (-1, 2))
    (tmp_path / "afile").write_text("x")
    with pytest.raises(ValueError, match=r"^nnjax\.save: path must name a folder, got ''$"):
        saved.save("", model, params, input_shape=(-1, 2))
    with pytest.raises(PathError, match=f"cannot make the folder .*: {tmp_path}/afile is a file$"):
        saved.save(tmp_path / "afile" / "m" / "n", model, params, input_shape=(-1, 2))
    path = saved.save(tmp_path / "a b" / "ünï", model, params, input_shape=(-1, 2))
    x = np.ones((1, 2))
    np.testing.assert_array_equal(nnjax.load(path)(x), model.apply(params, x.astype(np.float32)))
