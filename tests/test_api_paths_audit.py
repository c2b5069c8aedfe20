"""Audit of the Python paths around a saved model, Flax interop and the model builders: bad
input is a ValueError naming the function, the argument and the value (never a silent wrong
number or a deep NumPy/Flax error), and save -> load -> predict gives the in-memory model's
outputs. Each test's comment says what the code did before."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import nnjax
from nnjax import interop, presets
from nnjax.inputs import read_inputs
from nnjax.layers import apply_model, init_model
from nnjax.standardizer import Standardizer

K = jax.random.key(0)


@pytest.fixture(scope="module")
def net():
    model = nnjax.mlp([5, 3])
    return model, init_model(model, K, (-1, 4))[1]


@pytest.fixture(scope="module")
def saved(net, tmp_path_factory):
    X = np.random.default_rng(0).normal(size=(8, 4)).astype(np.float32)
    folder = tmp_path_factory.mktemp("saved") / "m"
    nnjax.save(folder, *net, standardizer=Standardizer.fit(X), label_names=["a", "β", "日本"])
    return nnjax.load(folder), X


# ---- Predictor: inputs ----------------------------------------------------------------


def test_ragged_rows_are_named_as_the_saved_models_inputs(saved):
    pred, _ = saved
    # was NumPy's "setting an array element with a sequence", naming no nnjax function
    with pytest.raises(ValueError, match=r"^saved model .*: inputs must be an array of shape"):
        pred.predict([[1, 2, 3, 4], [1, 2, 3]])


def test_one_example_given_as_a_row_gets_a_hint(saved):
    pred, X = saved
    with pytest.raises(ValueError, match=r"got \(4,\) \(one example\? give X\[None\]"):
        pred(X[0])
    np.testing.assert_array_equal(pred(X[0][None]), pred(X[:1]))


def test_a_float64_model_predicts_in_float64_as_in_memory(tmp_path):
    """A float64 model and standardizer (x64 on): predict cast the standardised inputs to
    float32, 1e-7 away from the in-memory model's float64 outputs."""
    with jax.enable_x64(True):
        model = nnjax.mlp([5, 3])
        _, params, _ = init_model(model, K, (-1, 4))
        assert params[0]["W"].dtype == jnp.float64
        X = np.random.default_rng(1).normal(size=(6, 4)) * 1000
        std = Standardizer.fit(X)
        pred = nnjax.load(nnjax.save(tmp_path / "m", model, params, standardizer=std))
        want = np.asarray(apply_model(model, params, (), std.transform(X))[0])
        got = pred(X)
        assert got.dtype == np.float64 and pred.transform(X).dtype == np.float64
        np.testing.assert_array_equal(got, want)
        assert pred(np.ones((2, 4), int)).dtype == np.float64


def test_float32_models_still_predict_in_float32(saved):
    pred, X = saved
    assert pred(X).dtype == np.float32 and pred(X.astype(int)).dtype == np.float32


# ---- nnjax.save: what nnjax.load would refuse or match wrongly -------------------------


@pytest.mark.parametrize(
    "kwargs, match",
    [  # each was saved; the first three loaded with names that match no table's columns
        ({"feature_names": "abcd"}, "feature_names must be a list .*got the string 'abcd'"),
        ({"feature_names": set("abcd")}, r"feature_names must be .*got a set \(no order\)"),
        (
            {"feature_names": [None, "b", "c", "d"]},
            r"feature names must be strings .*got None \(NoneType\)",
        ),
        # saved, then load refused its own file as "written by another program or edited"
        ({"feature_names": ["a", "a", "b", "c"]}, "feature names repeat: 'a'"),
        ({"feature_names": [1, "1", "b", "c"]}, "feature names repeat: '1'"),
        ({"input_shape": (-1, 4), "target": 3}, r"target must be .* got 3 \(int\)"),
        # json's "Object of type bytes is not JSON serializable"
        ({"input_shape": (-1, 4), "target": b"y"}, r"got b'y' \(bytes\)"),
        # saved; a table's column y was then dropped as the labels and found missing
        ({"feature_names": list("abcy"), "target": "y"}, "target 'y' is also one of feature"),
        # list({0: "cat", 1: "dog"}) named the classes 0 and 1
        ({"input_shape": (-1, 4), "label_names": {0: "c", 1: "d", 2: "e"}}, "got a dict"),
        ({"input_shape": (-1, 4), "label_names": {"c", "d", "e"}}, r"got a set \(no order\)"),
        # predict named both classes '1'
        ({"input_shape": (-1, 4), "label_names": [1, "1", 2]}, "are the same as text"),
    ],
)
def test_save_refuses_names_load_would_refuse_or_misread(tmp_path, net, kwargs, match):
    with pytest.raises(ValueError, match=r"^nnjax\.save: .*" + match):
        nnjax.save(tmp_path / "m", *net, **kwargs)
    assert not (tmp_path / "m").exists()


def test_valid_names_still_save_and_load(tmp_path, net):
    pred = nnjax.load(
        nnjax.save(tmp_path / "m", *net, feature_names=np.array(list("abcd")), target="y")
    )
    assert pred.feature_names == list("abcd") and pred.target == "y"
    assert nnjax.load(nnjax.save(tmp_path / "n", *net, feature_names=range(4))).feature_names == [
        "0",
        "1",
        "2",
        "3",
    ]


def test_label_names_of_mixed_types_keep_their_types(tmp_path, net):
    """[0, 'other', 2]: predict gave the strings '0' and '2' (one NumPy array of text)."""
    pred = nnjax.load(
        nnjax.save(tmp_path / "m", *net, input_shape=(-1, 4), label_names=[0, "other", 2])
    )
    names = pred.names_of(np.array([0, 1, 2, 0]))
    assert names.tolist() == [0, "other", 2, 0] and type(names[0]) is int


def test_bn_model_round_trip_with_unicode_labels_is_exact(tmp_path):
    from nnjax.layers import BatchNorm, Dense, serial

    model = serial(Dense(5), BatchNorm(), Dense(2))
    _, params, state = init_model(model, K, (-1, 3))
    X = np.random.default_rng(2).normal(size=(16, 3)).astype(np.float32)
    _, state = apply_model(model, params, state, X, train=True)
    folder = nnjax.save(tmp_path / "m", model, params, state=state, input_shape=(-1, 3),
                        label_names=["ü", "日本"])  # fmt: skip
    pred = nnjax.load(folder)
    want = np.asarray(apply_model(model, params, state, X, train=False)[0])
    np.testing.assert_array_equal(pred(X), want)
    assert set(pred.predict(X).tolist()) <= {"ü", "日本"}


# ---- read_inputs: labels as training read them ------------------------------------------


def test_array_labels_with_spaces_match_the_classes_training_made(tmp_path):
    """An .npz's labels ' a' and 'a ' are two classes in training (not stripped);
    read_inputs stripped them and refused every row ("label 'a ' is not one of")."""
    from nnjax import datafile

    path = tmp_path / "s.npz"
    np.savez(path, X=np.ones((4, 3)), y=np.array(["a ", " a", "b", "b"]))
    data = datafile.read(path)
    got = read_inputs(path, n_features=3, label_names=data.label_names)
    np.testing.assert_array_equal(got.y, data.y)
    csv = tmp_path / "c.csv"
    csv.write_text("x1,x2,target\n1,2, a\n3,4,b \n")  # a CSV cell's spaces: still stripped
    got = read_inputs(csv, n_features=2, label_names=["a", "b"], trained_target="target")
    np.testing.assert_array_equal(got.y, [0, 1])


# ---- interop ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def linen(net):
    return interop.to_linen(net[1])


def _with(variables, **layers):
    return {"params": {**variables["params"], **layers}}


def test_from_linen_checks_the_variables_against_the_module(linen):
    module, v = linen
    d0, d1 = v["params"]["Dense_0"], v["params"]["Dense_1"]
    cases = [  # each converted silently, or failed with a KeyError / AttributeError
        (_with(v, Dense_0={"kernel": d0["kernel"].T, "bias": d0["bias"]}), "is W transposed"),
        (_with(v, Dense_2=d1), r"variables hold \['Dense_2'\], which the module"),
        (_with(v, Dense_0={**d0, "scale": jnp.ones(5)}), r"Dense_0 must hold \['bias', 'kernel'"),
        (_with(v, Dense_0={"kernel": d0["kernel"]}), r"got \['kernel'\]"),
        (_with(v, Dense_0={"kernel": jnp.ones(3), "bias": d0["bias"]}), "W must be 2-D"),
        ([1], "variables must be a dict"),
    ]
    for variables, match in cases:
        with pytest.raises(ValueError, match="^from_linen: .*" + match):
            interop.from_linen(module, variables)
    with pytest.raises(ValueError, match="Dense_0 kernel has shape .* features give 7"):
        interop.from_linen(interop.LinenMLP((7, 3), jax.nn.relu), v)


def test_from_nnx_refuses_layers_that_drop_biases_or_do_not_chain(net):
    from flax import nnx

    mixed = interop.to_nnx(net[1])
    mixed.layers[1] = nnx.Linear(5, 3, use_bias=False, rngs=nnx.Rngs(0))
    # was: every bias dropped silently, the other layers' too
    with pytest.raises(ValueError, match=r"from_nnx: either every layer .* layers \[1\]"):
        interop.from_nnx(mixed)
    broken = interop.to_nnx(net[1])
    broken.layers[1] = nnx.Linear(6, 3, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="from_nnx: Dense 1 W has 6 inputs"):
        interop.from_nnx(broken)


def test_to_flax_takes_nested_lists_and_refuses_int_weights(net):
    model, params = net
    x = jnp.ones((2, 4))
    want = apply_model(model, params, (), x)[0]
    lists = jax.tree.map(lambda a: a.tolist(), params)
    module, v = interop.to_linen(lists)  # was "W must be 2-D (in, out), got (4, 5)"
    np.testing.assert_allclose(module.apply(v, x), want, rtol=1e-6)
    np.testing.assert_allclose(interop.to_nnx(lists)(x), want, rtol=1e-6)
    with pytest.raises(ValueError, match="Dense 0 W must be a real floating-point array.*int"):
        interop.to_nnx([{"W": jnp.ones((4, 5), int), "b": jnp.zeros(5)}])  # was accepted
    with pytest.raises(ValueError, match="Dense 0 W must be an array of floats"):
        interop.to_linen([{"W": [[1.0, 2.0], [3.0]], "b": [0.0, 0.0]}])


def test_interop_messages_name_the_argument_and_a_dropout_layout(net):
    with pytest.raises(ValueError, match="^interop: activation: unknown activation 'RELU'"):
        interop.to_nnx(net[1], "RELU")
    dropped = init_model(nnjax.mlp([4, 3], dropout=0.1), K, (-1, 4))[1]
    with pytest.raises(ValueError, match=r"params\[2\] .* \(an mlp with dropout\?"):
        interop.to_nnx(dropped)


# ---- model builders, Standardizer, subplots, presets ------------------------------------


@pytest.mark.parametrize(
    "kwargs, match",
    [  # "unknown activation 'RELU'": no function, no argument named
        ({"activation": "RELU"}, "mlp: activation: unknown activation 'RELU'"),
        ({"output_activation": "Softmax"}, "mlp: output_activation: unknown activation"),
        ({"W_init": "He_normal"}, "mlp: W_init: unknown initializer 'He_normal'"),
    ],
)
def test_mlp_names_the_argument_of_an_unknown_name(kwargs, match):
    with pytest.raises(ValueError, match="^" + match):
        nnjax.mlp([3, 2], **kwargs)


def test_cnn_refuses_kernels_larger_than_its_input_when_built():
    # was built, then failed at init naming "layer 1 (Conv(25, 5))", not cnn's arguments
    with pytest.raises(ValueError, match=r"^cnn: kernel_sizes\[0\] = 5 is larger than its in"):
        nnjax.cnn(input_shape=(2, 1))
    with pytest.raises(ValueError, match=r"kernel_sizes\[1\] = 3 .* after 1 convolution"):
        nnjax.cnn(input_shape=(6, 1), padding=0)
    model = nnjax.cnn(input_shape=(4, 4, 1), channels=2)  # fits: 6 -> 1 -> 1 -> 1
    assert init_model(model, K, (-1, 16))[0] == (-1, 10)


@pytest.mark.parametrize(
    "X, match",
    [  # complex: fitted, its statistics then no JSON; text/objects: NumPy's TypeError
        (np.array([[1 + 1j, 2], [3, 5]]), "dtype complex128"),
        (np.array([["1", "2"], ["3", "5"]]), "dtype <U1"),
        (np.array([[1, 2], [3, "a"]], object), "dtype object"),
        ([[1.0, 2.0], [3.0]], "must be an array"),
    ],
)
def test_standardizer_fit_wants_real_numbers(X, match):
    with pytest.raises(ValueError, match="^Standardizer.fit: .*" + match):
        Standardizer.fit(X)


@pytest.mark.parametrize("n", [0, -1, True, 2.0])
def test_standardizer_identity_wants_a_positive_int(n):
    with pytest.raises(ValueError, match="^Standardizer.identity: n_features must be an int"):
        Standardizer.identity(n)  # 0 made a standardizer save refused; -1 NumPy's error


def test_subplots_passes_figure_keywords_as_plt_subplots_does():
    from nnjax.plotting import subplots

    # was "FigureBase.subplots() got an unexpected keyword argument 'facecolor'"
    fig, axes = subplots(2, 1, facecolor="red", constrained_layout=True, sharex=True)
    assert fig.get_facecolor() == (1.0, 0.0, 0.0, 1.0) and len(axes) == 2
    assert fig.get_layout_engine() is not None


def test_preset_of_a_non_string_is_a_value_error():
    with pytest.raises(ValueError, match=r"^preset: no preset for dataset \['toy'\]"):
        presets.preset(["toy"])  # was TypeError: unhashable type: 'list'
