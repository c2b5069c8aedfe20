"""Layers: shapes at init, values against NumPy, gradients, keys, and shape errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import nnjax
from nnjax.layers import LAYERS, Activation, Dense, Dropout, Flatten, serial

KEY = jax.random.key(0)


def test_dense_shapes_names_and_value():
    layer = Dense(3)
    out_shape, p = layer.init(KEY, (-1, 4))
    assert out_shape == (-1, 3)
    assert set(p) == {"W", "b"} and p["W"].shape == (4, 3) and p["b"].shape == (3,)
    assert p["W"].dtype == jnp.float32
    x = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)
    np.testing.assert_allclose(
        layer.apply(p, x), x @ np.asarray(p["W"]) + np.asarray(p["b"]), rtol=1e-6
    )


def test_dense_without_bias_and_dtype_follows_x64():
    _, p = Dense(2, use_bias=False).init(KEY, (7, 3))
    assert set(p) == {"W"}
    with jax.enable_x64(True):
        _, p64 = Dense(2).init(KEY, (7, 3))
    assert p64["W"].dtype == jnp.float64


def test_serial_is_function_composition():
    net = serial(Dense(8), Activation("tanh"), Dense(2))
    out_shape, params = net.init(KEY, (-1, 3))
    assert out_shape == (-1, 2) and len(params) == 3 and params[1] == {}
    x = jnp.ones((4, 3))
    manual = jnp.tanh(x @ params[0]["W"] + params[0]["b"]) @ params[2]["W"] + params[2]["b"]
    np.testing.assert_allclose(net.apply(params, x), manual, rtol=1e-6)


def test_flatten_keeps_batch_axis():
    out_shape, _ = Flatten().init(KEY, (-1, 2, 3, 4))
    assert out_shape == (-1, 24)
    assert Flatten().apply({}, jnp.ones((5, 2, 3, 4))).shape == (5, 24)


def test_dropout_identity_without_key_and_inverted_scaling_with_key():
    layer = Dropout(0.5)
    x = jnp.ones((1000, 50))
    assert layer.apply({}, x) is x
    y = layer.apply({}, x, key=KEY)
    kept = y != 0
    np.testing.assert_allclose(y[kept], 2.0)
    assert abs(float(kept.mean()) - 0.5) < 0.01
    assert not np.array_equal(y, layer.apply({}, x, key=jax.random.key(1)))


@pytest.mark.parametrize(
    "make", [lambda: Dense(3), lambda: serial(Dense(4), Activation("gelu"), Dense(2))]
)
def test_layer_gradients_match_finite_differences(make):
    with jax.enable_x64(True):
        layer = make()
        _, p = layer.init(KEY, (-1, 5))
        x = jax.random.normal(jax.random.key(3), (6, 5))
        # compiled: the derivatives, not the eager path, are the point
        check_grads(jax.jit(layer.apply), (p, x), order=1, modes=["rev"])


def test_apply_jit_and_no_jit_agree():
    net = nnjax.mlp([16, 16, 3])
    _, p = net.init(KEY, (-1, 8))
    x = jax.random.normal(KEY, (10, 8))
    np.testing.assert_allclose(jax.jit(net.apply)(p, x), net.apply(p, x), rtol=1e-6, atol=1e-6)


def test_wrong_input_shape_names_layer_position_kind_and_shapes():
    net = serial(Dense(8), Activation("relu"), Dense(2))
    _, params = net.init(KEY, (-1, 3))
    with pytest.raises(ValueError, match=r"layer 0 \(Dense\(8\)\): .*\(\.\.\., 3\), got \(4, 5\)"):
        net.apply(params, jnp.ones((4, 5)))
    with pytest.raises(ValueError, match=r"layer 0 \(Flatten\).*at least 2 dims"):
        serial(Flatten(), Dense(2)).init(KEY, (5,))


def test_bad_layer_arguments_raise():
    with pytest.raises(ValueError, match="features must be a positive int"):
        Dense(0)
    with pytest.raises(ValueError, match="rate must be in \\[0, 1\\)"):
        Dropout(1.0)
    with pytest.raises(ValueError, match="unknown activation"):
        Activation("swish2")
    with pytest.raises(ValueError, match="unknown initializer 'xavier'"):
        Dense(3, W_init="xavier")
    with pytest.raises(ValueError, match="argument 1 is not a Layer"):
        serial(Dense(2), "relu")


def test_layers_registry_lists_the_public_layers():
    assert set(LAYERS) == {
        *("Dense", "Activation", "Flatten", "Reshape", "Identity", "Dropout", "serial"),
        *("Conv", "ConvTranspose", "MaxPool", "AvgPool", "GlobalAvgPool"),
        *("LayerNorm", "BatchNorm", "Embedding"),
        *("parallel", "FanOut", "FanInSum", "FanInConcat", "residual"),
        *("SimpleRNNCell", "GRUCell", "LSTMCell", "RNN", "Bidirectional"),
    }
    assert all(getattr(nnjax.layers, name) is make for name, make in LAYERS.items())


@pytest.mark.parametrize(
    "name",
    ["glorot_normal", "glorot_uniform", "he_normal", "he_uniform", "lecun_normal", "lecun_uniform"],
)
def test_initializer_variances(name):
    fan_in, fan_out = 400, 300
    w = nnjax.initializers.get_initializer(name)(KEY, (fan_in, fan_out), jnp.float32)
    target = {"glorot": 2 / (fan_in + fan_out), "he": 2 / fan_in, "lecun": 1 / fan_in}[
        name.split("_")[0]
    ]
    assert abs(float(jnp.var(w)) / target - 1) < 0.05
    assert abs(float(jnp.mean(w))) < 0.01


def test_zeros_and_normal_initializers():
    assert not nnjax.initializers.zeros(KEY, (3, 2), jnp.float32).any()
    w = nnjax.initializers.normal(0.5)(KEY, (200, 200), jnp.float32)
    assert abs(float(jnp.std(w)) - 0.5) < 0.01
    with pytest.raises(ValueError, match="std must be > 0"):
        nnjax.initializers.normal(0.0)


def test_combinators_fan_out_branch_and_merge():
    from nnjax.layers import FanInConcat, FanInSum, FanOut, Identity, parallel, residual

    net = serial(FanOut(2), parallel(Dense(3), Identity()), FanInConcat())
    out_shape, params = net.init(KEY, (4, 5))
    assert out_shape == (4, 8) and params[1][1] == {}
    x = jax.random.normal(KEY, (4, 5))
    y = net.apply(params, x)
    np.testing.assert_allclose(y[:, :3], Dense(3).apply(params[1][0], x), rtol=1e-6)
    np.testing.assert_array_equal(y[:, 3:], x)
    block = residual(Dense(5))
    _, p = block.init(KEY, (4, 5))
    np.testing.assert_allclose(block.apply(p, x), x + Dense(5).apply(p, x), rtol=1e-6)
    summed = serial(FanOut(3), FanInSum())
    np.testing.assert_allclose(summed.apply(summed.init(KEY, (4, 5))[1], x), 3 * x, rtol=1e-6)


def test_parallel_gives_each_branch_its_own_dropout_key():
    from nnjax.layers import FanOut, parallel

    net = serial(FanOut(2), parallel(Dropout(0.5), Dropout(0.5)))
    _, params = net.init(KEY, (50, 40))
    a, b = net.apply(params, jnp.ones((50, 40)), key=jax.random.key(3))
    assert not np.array_equal(a != 0, b != 0)
    a, b = net.apply(params, jnp.ones((50, 40)))
    assert (a == 1).all() and (b == 1).all()


def test_combinator_errors_name_the_culprit_and_both_shapes():
    from nnjax.layers import FanInConcat, FanInSum, FanOut, parallel, residual

    with pytest.raises(
        ValueError,
        match=r"residual\(Dense\(3\)\): f\(x\) has shape \(4, 3\) "
        r"but x has shape \(4, 5\)",
    ):
        residual(Dense(3)).init(KEY, (4, 5))
    # a branch whose apply changes the shape its init promised (params of the wrong shape
    # are refused by Dense itself, naming them): residual's apply-time check names both
    liar = nnjax.layers.Layer(lambda k, shape: (shape, {}), lambda p, x, **kw: x[:, :4], "Liar")
    net = serial(Dense(5), residual(liar))
    _, params = net.init(KEY, (4, 2))
    with pytest.raises(
        ValueError,
        match=r"layer 1 \(residual\(Liar\)\): .*\(4, 4\) but x has shape \(4, 5\)",
    ):
        net.apply(params, jnp.ones((4, 2)))
    with pytest.raises(ValueError, match=r"FanInSum: branch shapes differ: \(\(4, 2\), \(4, 3\)\)"):
        FanInSum().init(KEY, ((4, 2), (4, 3)))
    with pytest.raises(
        ValueError,
        match=r"layer 2 \(FanInConcat\(-1\)\): .*cannot concatenate "
        r"shapes \[\(4, 2, 3\), \(4, 10\)\] along axis -1",
    ):
        serial(FanOut(2), parallel(Dense(3), Flatten()), FanInConcat()).init(KEY, (4, 2, 5))
    with pytest.raises(ValueError, match=r"shapes \[\(4, 2, 3\), \(4, 5, 3\)\] differ off axis -1"):
        FanInConcat().init(KEY, ((4, 2, 3), (4, 5, 3)))
    with pytest.raises(ValueError, match=r"expected a tuple of 2 input shapes, got \(4, 3\)"):
        parallel(Dense(2), Dense(3)).init(KEY, (4, 3))
    with pytest.raises(
        ValueError,
        match=r"branch 1 \(Dense\(3\)\): Dense\(3\): expected input of "
        r"shape \(\.\.\., 2\), got \(4, 7\)",
    ):
        two = parallel(Dense(2), Dense(3))
        _, p = two.init(KEY, ((4, 2), (4, 2)))
        two.apply(p, (jnp.ones((4, 2)), jnp.ones((4, 7))))
    with pytest.raises(ValueError, match="expected a tuple of arrays, got an array"):
        FanInSum().apply({}, jnp.ones(3))


def test_params_follow_x64_for_every_layer_family():
    from nnjax.layers import BatchNorm, Conv, Embedding, GRUCell, LayerNorm

    layers = [
        (Conv(2, 3), (2, 5, 1)),
        (GRUCell(2), (2, 3)),
        (LayerNorm(), (2, 3)),
        (BatchNorm(), (2, 3)),
        (Embedding(4, 2), (2,)),
    ]
    for layer, shape in layers:
        _, p, *state = layer.init(KEY, shape)
        assert {leaf.dtype for leaf in jax.tree.leaves((p, state))} == {jnp.dtype("float32")}
        with jax.enable_x64(True):
            _, p, *state = layer.init(KEY, shape)
        assert {leaf.dtype for leaf in jax.tree.leaves((p, state))} == {jnp.dtype("float64")}


def test_embedding_looks_up_rows_and_checks_ids():
    from nnjax.layers import Embedding

    layer = Embedding(5, 3)
    _, p = layer.init(KEY, (2, 4))
    ids = jnp.array([[0, 4, 4, 1], [2, 2, 3, 0]])
    np.testing.assert_array_equal(layer.apply(p, ids), np.asarray(p["W"])[np.asarray(ids)])
    with pytest.raises(ValueError, match=r"ids must be in \[0, 5\), got 0\.\.5"):
        layer.apply(p, jnp.array([0, 5]))
    with pytest.raises(ValueError, match="expected integer ids, got dtype float32"):
        layer.apply(p, jnp.ones(3))
    assert jax.jit(layer.apply)(p, jnp.array([7]))[0].tolist() == p["W"][4].tolist()  # clamped


def test_fan_in_concat_keeps_the_batch_placeholder_on_its_axis():
    from nnjax.layers import FanInConcat, FanOut

    net = serial(FanOut(2), FanInConcat(0))
    assert net.init(KEY, (-1, 5))[0] == (-1, 5)  # was (-2, 5)
    assert net.init(KEY, (3, 5))[0] == (6, 5)
    x = jax.random.normal(KEY, (3, 5))
    np.testing.assert_array_equal(net.apply([{}, {}], x), np.concatenate([x, x], axis=0))
    assert serial(FanOut(3), FanInConcat(-1)).init(KEY, (-1, 2))[0] == (-1, 6)
    with pytest.raises(ValueError, match=r"^FanInConcat\(0\): input_shape must be ints"):
        FanInConcat(0).init(KEY, ((-1, 5.5), (-1, 5)))


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: Dense(4, dtype="int32"), "Dense(4): dtype must be float16, bfloat16, float32 or "
         "float64 (None: float32, float64 under x64), got int32"),
        (lambda: Dense(4, dtype="int32", W_init="zeros"), "Dense(4): dtype must be float16, "
         "bfloat16, float32 or float64 (None: float32, float64 under x64), got int32"),
        (lambda: Dense(4, dtype="foo"), "Dense(4): dtype must be float16, bfloat16, float32 or "
         "float64 (None: float32, float64 under x64), got 'foo'"),
        (lambda: Dense(4, dtype=jnp.complex64), "Dense(4): dtype must be float16, bfloat16, "
         "float32 or float64 (None: float32, float64 under x64), got complex64"),
        (lambda: Dense(4, b_init="glorot_normal"), "Dense(4): b_init 'glorot_normal' needs a "
         "weight matrix's fan-in and fan-out and cannot initialise a 1-D bias; use 'zeros', "
         "'ones' or normal(std)"),
    ],
)  # fmt: skip
def test_dense_dtype_and_bias_initializer_errors_name_the_layer(make, message):
    with pytest.raises(ValueError) as err:
        make()
    assert str(err.value) == message


def test_dense_float_dtypes_and_a_callable_fan_based_bias_initializer():
    _, p = Dense(3, dtype="bfloat16").init(KEY, (2, 4))
    assert p["W"].dtype == p["b"].dtype == jnp.bfloat16
    layer = Dense(3, b_init=jax.nn.initializers.glorot_normal())
    with pytest.raises(ValueError, match=r"^Dense\(3\): Can't compute input and output sizes"):
        layer.init(KEY, (2, 4))


def test_input_shape_dims_must_be_ints_not_truncated_floats():
    with pytest.raises(
        ValueError,
        match=r"^Dense\(4\): input_shape must be ints \(-1 for the batch\), got \(-1, 5\.7\)$",
    ):
        Dense(4).init(KEY, (-1, 5.7))  # was W (5, 4)
    with pytest.raises(ValueError, match=r"input_shape must be ints .*got \(True, 3\)"):
        Dense(4).init(KEY, (True, 3))
    out, p = Dense(4).init(KEY, np.array([-1, 5]))  # NumPy integers are ints
    assert out == (-1, 4) and p["W"].shape == (5, 4) and type(out[0]) is int


def test_dropout_takes_numpy_real_rates_and_refuses_bools():
    layer = Dropout(np.float32(0.5))
    assert layer.name == "Dropout(0.5)" and layer.spec == ("Dropout", {"rate": 0.5})
    y = layer.apply({}, jnp.ones((100, 100)), key=KEY)
    np.testing.assert_allclose(y[y != 0], 2.0)
    assert Dropout(np.int64(0)).apply({}, jnp.ones(3), key=KEY).tolist() == [1.0, 1.0, 1.0]
    with pytest.raises(ValueError, match=r"^Dropout: rate must be in \[0, 1\), got True$"):
        Dropout(True)
    with pytest.raises(
        ValueError, match=r"^Dropout: rate must be in \[0, 1\), got np\.float64\(1\.5\)$"
    ):
        Dropout(np.float64(1.5))
    assert Dropout(np.float32(0.1)).name == "Dropout(0.1)"  # as written, not 0.10000000149...


def test_embedding_dtype_is_checked_at_construction_naming_it():
    from nnjax.layers import Embedding

    for dtype in ("foo", "int32"):
        with pytest.raises(ValueError, match=r"^Embedding\(5, 3\): dtype must be float16, "):
            Embedding(5, 3, dtype=dtype)
    assert Embedding(5, 3, dtype="float16").init(KEY, (2,))[1]["W"].dtype == jnp.float16


def test_numpy_ints_are_taken_as_python_ints():
    """Review: Dense(np.int64(3)) (e.g. y.max() + 1 classes) was refused as not an int."""
    import json

    from nnjax.layers import Conv, Embedding, GRUCell, MaxPool

    i = np.int64
    layers = [Dense(i(3)), Conv(i(4), (i(3), 3), padding=[(i(1), 1), (0, 0)]), MaxPool(i(2)),
              GRUCell(np.int32(5)), Embedding(i(10), i(3))]  # fmt: skip
    for layer in layers:
        json.dumps(layer.spec)  # plain ints: the spec is JSON
        assert "int64" not in layer.name and "int32" not in layer.name, layer.name
    assert Dense(i(3)).spec == Dense(3).spec and Conv(4, (3, 3)).name == "Conv(4, (3, 3))"
    with pytest.raises(ValueError, match=r"features must be a positive int, got np.True_"):
        Dense(np.bool_(True))


@pytest.mark.parametrize(
    "make, message",
    [
        (
            lambda: Dense(3, use_bias="false"),
            "Dense(3): use_bias must be True or False, got 'false'",
        ),
        (
            lambda: nnjax.layers.Conv(2, 3, use_bias=0),
            "Conv(2, 3): use_bias must be True or False, got 0",
        ),
        (
            lambda: nnjax.layers.ConvTranspose(2, 3, use_bias=None),
            "ConvTranspose(2, 3): use_bias must be True or False, got None",
        ),
        (
            lambda: nnjax.layers.LayerNorm(use_scale="no"),
            "LayerNorm: use_scale must be True or False, got 'no'",
        ),
        (
            lambda: nnjax.layers.BatchNorm(use_offset=1),
            "BatchNorm: use_offset must be True or False, got 1",
        ),
        (
            lambda: nnjax.layers.RNN(nnjax.layers.GRUCell(2), reverse="True"),
            "RNN: reverse must be True or False, got 'True'",
        ),
        (
            lambda: nnjax.layers.Bidirectional(nnjax.layers.GRUCell(2), return_sequences=[]),
            "Bidirectional: return_sequences must be True or False, got []",
        ),
        (lambda: nnjax.mlp([3], use_bias="no"), "mlp: use_bias must be True or False, got 'no'"),
        (
            lambda: nnjax.logistic_regression(3, use_bias="False"),
            "logistic_regression: use_bias must be True or False, got 'False'",
        ),
    ],
)
def test_switches_must_be_bools_not_truthy_values(make, message):
    # a string (a hand-edited JSON spec's "false") used to switch the option ON silently
    with pytest.raises(ValueError) as err:
        make()
    assert str(err.value) == message


def test_switches_take_numpy_bools_and_specs_rebuild_them():
    layer = Dense(3, use_bias=np.bool_(False))
    assert layer.spec[1]["use_bias"] is False and set(layer.init(KEY, (-1, 2))[1]) == {"W"}
    spec = ("Dense", {"features": 3, "use_bias": "false"})  # as a hand-edited model.json
    with pytest.raises(ValueError, match="use_bias must be True or False, got 'false'"):
        nnjax.layers.from_spec(spec)


def test_embedding_takes_ids_as_a_list_and_fan_in_concat_a_numpy_axis():
    from nnjax.layers import Embedding, FanInConcat, FanOut

    layer = Embedding(5, 3)
    _, p = layer.init(KEY, (-1,))
    W = np.asarray(p["W"])
    np.testing.assert_array_equal(layer.apply(p, [4, 0, 4]), W[[4, 0, 4]])  # a TypeError
    np.testing.assert_array_equal(layer.apply(p, 2), W[2])
    with pytest.raises(ValueError, match=r"expected integer ids, got dtype float64"):
        layer.apply(p, np.array([1.0]))  # the input's own dtype is named, not float32
    net = serial(FanOut(2), FanInConcat(np.int64(0)))  # refused: "axis must be an int"
    assert net.spec[1]["layers"][1] == ("FanInConcat", {"axis": 0})
    x = jnp.arange(6.0).reshape(2, 3)
    np.testing.assert_array_equal(net.apply(net.init(KEY, (2, 3))[1], x), np.concatenate([x, x]))
