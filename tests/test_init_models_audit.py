"""Audit of the initializers and the model builders against their stated definitions:
variances from the fans of each layer's own layout, the truncation and uniform bounds,
dtypes, argument errors that name the culprit, parameter counts counted by hand, spec round
trips, and the init/apply shape agreement over option combinations."""

import itertools
import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from test_layer_shapes import _traced_init

from nnjax import initializers
from nnjax.layers import (
    RNN,
    AvgPool,
    BatchNorm,
    Bidirectional,
    Conv,
    ConvTranspose,
    Dense,
    Embedding,
    GRUCell,
    LayerNorm,
    LSTMCell,
    MaxPool,
    SimpleRNNCell,
    apply_model,
    from_spec,
    init_model,
)
from nnjax.models import cnn, gru, layer_spec, logistic_regression, mlp, resmlp

KEY = jax.random.key(0)
FANS = ["glorot", "he", "lecun"]
NAMED = [f"{f}_{d}" for f in FANS for d in ("normal", "uniform")]


def _target(name: str, shape) -> float:
    """The stated variance for a weight (*k, fan_in rows, fan_out columns)."""
    k = math.prod(shape[:-2])
    fan_in, fan_out = k * shape[-2], k * shape[-1]
    return {"glorot": 2 / (fan_in + fan_out), "he": 2 / fan_in, "lecun": 1 / fan_in}[
        name.split("_")[0]
    ]


def _draws(fn, n: int = 64) -> np.ndarray:  # small kernels need many draws for a variance
    return np.asarray(jax.vmap(fn)(jax.random.split(jax.random.key(1), n)), np.float64)


def _check_variance(w: np.ndarray, target: float, name: str) -> None:
    # 5 standard errors of a sample variance (sqrt(2 / n) relative for a normal), no more
    tol = 5 * math.sqrt(2 / w.size)
    assert abs(w.var() / target - 1) < tol, (name, w.shape, w.var(), target)
    assert abs(w.mean()) < 5 * math.sqrt(target / w.size), (name, w.mean())
    sd = math.sqrt(target)
    if name.endswith("normal"):  # truncated at 2 sd of a normal rescaled by 1 / 0.8796
        assert 2.2 * sd < np.abs(w).max() < 2.28 * sd
    elif name.endswith("uniform"):
        assert 0.999 * math.sqrt(3) * sd < np.abs(w).max() <= math.sqrt(3 * target)


@pytest.mark.parametrize("name", NAMED)
@pytest.mark.parametrize("shape", [(512, 512), (3, 3, 64, 128), (5, 1, 25)])
def test_initializer_variance_and_bound_are_the_stated_ones(name, shape):
    init = initializers.get_initializer(name)
    w = _draws(lambda k: init(k, shape, jnp.float32), 1 if shape[0] == 512 else 8)
    _check_variance(w, _target(name, shape), name)


# (layer, input shape, param, the initializer the docstring names, the weight's layout)
LAYER_WEIGHTS = [
    (Dense(256), (-1, 512), "W", "glorot_normal", (512, 256)),
    (Dense(10, W_init="he_uniform"), (-1, 300), "W", "he_uniform", (300, 10)),
    (Conv(25, 5, W_init="he_normal"), (1, 40, 1), "W", "he_normal", (5, 1, 25)),
    (Conv(32, (3, 3)), (1, 8, 8, 16), "W", "glorot_normal", (3, 3, 16, 32)),
    (Conv(32, 3, groups=4, W_init="lecun_normal"), (1, 9, 16), "W", "lecun_normal", (3, 4, 32)),
    (ConvTranspose(8, 3, strides=2), (1, 5, 4), "W", "glorot_normal", (3, 4, 8)),
    (SimpleRNNCell(16), (-1, 8), "W_i", "lecun_normal", (8, 16)),
    (SimpleRNNCell(16), (-1, 8), "W_h", "lecun_normal", (16, 16)),
    (GRUCell(6), (-1, 3), "W_i", "lecun_normal", (3, 18)),
    (GRUCell(6), (-1, 3), "W_h", "lecun_normal", (6, 18)),
    (LSTMCell(32), (-1, 10), "W_i", "lecun_normal", (10, 128)),
    (LSTMCell(32), (-1, 10), "W_h", "lecun_normal", (32, 128)),
    (Embedding(100, 16), (4,), "W", "glorot_normal", (100, 16)),
]


@pytest.mark.parametrize(
    "layer, shape, leaf, name, layout",
    LAYER_WEIGHTS,
    ids=[f"{c[0].name}-{c[2]}" for c in LAYER_WEIGHTS],
)
def test_each_layer_draws_with_the_fans_of_its_own_layout(layer, shape, leaf, name, layout):
    w = _draws(
        lambda k: init_model(layer, k, shape)[1][leaf], 4 if math.prod(layout) > 4000 else 64
    )
    assert w.shape[1:] == layout
    _check_variance(w, _target(name, layout), name)


def test_biases_norm_params_and_statistics_start_as_stated():
    for layer, shape, leaves in [
        (Dense(4), (2, 3), {"b": 0}),
        (Conv(4, 3), (2, 5, 3), {"b": 0}),
        (ConvTranspose(4, 3), (2, 5, 3), {"b": 0}),
        (SimpleRNNCell(4), (2, 3), {"b": 0}),
        (GRUCell(4), (2, 3), {"b_i": 0, "b_h": 0}),
        (LSTMCell(4), (2, 3), {"b": 0}),
        (LayerNorm(), (2, 4), {"scale": 1, "offset": 0}),
        (BatchNorm(), (2, 4), {"scale": 1, "offset": 0}),
    ]:
        params = init_model(layer, KEY, shape)[1]
        for key, value in leaves.items():
            np.testing.assert_array_equal(params[key], np.full(params[key].shape, value))
    state = init_model(BatchNorm(), KEY, (2, 4))[2]
    np.testing.assert_array_equal(state["mean"], np.zeros(4))
    np.testing.assert_array_equal(state["var"], np.ones(4))


# ---- dtypes ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", [*NAMED, "zeros", "ones"])
def test_initializers_refuse_float64_while_x64_is_off(name):
    """Review: glorot_normal(key, shape, jnp.float64) with x64 off returned float32, with
    only JAX's UserWarnings (the layers refused it; the initializers did not)."""
    with jax.enable_x64(False):
        for dtype in (jnp.float64, np.dtype("float64"), "float64"):
            with pytest.raises(ValueError, match=rf"initializer {name}: dtype float64 needs JAX"):
                initializers.get_initializer(name)(KEY, (4, 3), dtype)
    with jax.enable_x64(True):
        w = initializers.get_initializer(name)(KEY, (400, 300), jnp.float64)
        assert w.dtype == jnp.float64
        if name in NAMED:
            assert abs(float(jnp.var(w)) / _target(name, (400, 300)) - 1) < 0.05


@pytest.mark.parametrize("name", NAMED)
@pytest.mark.parametrize("dtype", [jnp.float16, jnp.bfloat16, jnp.float32])
def test_initializers_keep_half_precision_dtypes(name, dtype):
    w = initializers.get_initializer(name)(KEY, (512, 512), dtype)
    assert w.dtype == dtype
    var = _target(name, (512, 512))
    assert abs(float(jnp.var(w.astype(jnp.float32))) / var - 1) < 0.03
    # the stated bound, up to the dtype's roundings (module docstring: 2^-9 in float16, 2^-6
    # in bfloat16; float32 rounds once)
    slack = {jnp.float16: 2**-9, jnp.bfloat16: 2**-6, jnp.float32: 2**-23}[dtype]
    bound = (2.28 if name.endswith("normal") else math.sqrt(3)) * math.sqrt(var)
    assert float(jnp.max(jnp.abs(w.astype(jnp.float32)))) <= bound * (1 + slack)


@pytest.mark.parametrize("name", [*NAMED, "normal"])
def test_random_initializers_name_themselves_for_an_integer_dtype(name):
    """Review: glorot_normal with int32 said "dtype argument to `uniform` must be a float
    dtype" (JAX's inner function, not the initializer that was called)."""
    init = initializers.normal(0.1) if name == "normal" else initializers.get_initializer(name)
    with pytest.raises(ValueError, match=r"initializer \S+: dtype must be floating .*got int32"):
        init(KEY, (4, 3), jnp.int32)
    with pytest.raises(ValueError, match=r"initializer \S+: dtype must be a dtype, got 'foo'"):
        init(KEY, (4, 3), "foo")


@pytest.mark.parametrize("name", [*NAMED, "zeros", "ones"])
def test_python_float_means_jaxs_default_float_as_in_jax(name):
    """dtype=float is JAX's default float (float32 unless x64), not a refused float64."""
    init = initializers.get_initializer(name)
    for x64, dtype in ((False, jnp.float32), (True, jnp.float64)):
        with jax.enable_x64(x64):
            w = init(KEY, (4, 3), float)
            assert w.dtype == dtype
            np.testing.assert_array_equal(w, init(KEY, (4, 3), dtype))


def test_zeros_and_ones_take_any_dtype_and_ignore_the_key():
    assert initializers.zeros(None, (2, 3), jnp.int32).dtype == jnp.int32
    np.testing.assert_array_equal(initializers.ones(None, (3,), jnp.bfloat16), np.ones(3))
    assert initializers.ones is initializers.INITIALIZERS["ones"]


@pytest.mark.parametrize("name", NAMED)
def test_an_int_seed_for_a_key_is_a_type_error_naming_the_initializer(name):
    """Review: JAX's 'invalid PRNG key data ... Got 0', without the initializer's name."""
    with pytest.raises(TypeError, match=rf"initializer {name}: key must be a PRNG key.*got 0"):
        initializers.get_initializer(name)(0, (4, 3))
    raw = initializers.get_initializer(name)(jax.random.PRNGKey(0), (4, 3))  # raw keys work
    np.testing.assert_array_equal(
        raw, initializers.get_initializer(name)(jax.random.key(0), (4, 3))
    )


# ---- argument errors -------------------------------------------------------------------


@pytest.mark.parametrize(
    "make, culprit",
    [
        (lambda: Dense(3, W_init="xavier"), r"Dense\(3\): W_init: unknown initializer 'xavier'"),
        (lambda: Dense(3, b_init="xavier"), r"Dense\(3\): b_init: unknown initializer 'xavier'"),
        (lambda: Conv(3, 2, W_init="Glorot"), r"Conv\(3, 2\): W_init: unknown initializer"),
        (lambda: ConvTranspose(3, 2, b_init=5), r"ConvTranspose\(3, 2\): b_init: unknown"),
        (lambda: GRUCell(3, W_h_init="orthogonal"), r"GRUCell\(3\): W_h_init: unknown"),
        (lambda: LSTMCell(3, W_i_init="x"), r"LSTMCell\(3\): W_i_init: unknown initializer 'x'"),
        (lambda: SimpleRNNCell(3, b_init="one"), r"SimpleRNNCell\(3\): b_init: unknown"),
        (lambda: Embedding(3, 2, W_init="x"), r"Embedding\(3, 2\): W_init: unknown initializer"),
    ],
)
def test_an_unknown_initializer_names_the_layer_and_the_argument(make, culprit):
    """Review: "unknown initializer 'orthogonal'" alone: in a model or a spec, which layer
    and which of W_i_init / W_h_init / b_init was left to guess."""
    with pytest.raises(ValueError, match=culprit + r".*valid names: glorot_normal"):
        make()


@pytest.mark.parametrize(
    "make, shape",
    [
        (lambda: mlp([2**70]), (-1, 4)),
        (lambda: Dense(2**63), (-1, 4)),
        (lambda: mlp([2**62, 3]), (-1, 4)),
        (lambda: Conv(2**62, 3), (1, 5, 4)),
        (lambda: LSTMCell(2**70), (2, 3)),
    ],
)
def test_sizes_past_an_arrays_limit_are_one_clear_error(make, shape):
    """Review: mlp([2**70]) and Dense(2**63) gave a TypeError from MLIR ("get():
    incompatible function arguments"), Conv(2**62, 3) a NotImplementedError from the PRNG,
    and mlp([2**62, 3]) aborted the Python process (XLA: "overflow in static extent
    product"). The check comes before any array is made."""
    culprit = r"(Dense|Conv|LSTMCell)\(\d+.*\): W(_i)?: initializer \w+: shape .* elements, more"
    with pytest.raises(ValueError, match=culprit):
        make().init(KEY, shape)


MODEL_ERRORS = [
    (lambda: mlp([]), "mlp: sizes must be a non-empty list of positive ints, got"),
    (lambda: mlp([0]), "mlp: sizes"),
    (lambda: mlp([-3]), "mlp: sizes"),
    (lambda: mlp([2.0]), "mlp: sizes"),
    (lambda: mlp([True]), "mlp: sizes"),
    (lambda: mlp("5"), "mlp: sizes"),
    (lambda: mlp([3], activation="ReLU"), "mlp: activation: unknown activation 'ReLU'"),
    (lambda: mlp([3], output_activation="nope"), "mlp: output_activation: unknown"),
    (lambda: mlp([3], W_init="xavier"), "mlp: W_init: unknown initializer 'xavier'"),
    (lambda: mlp([3], dropout=1.0), r"mlp: dropout must be a rate in \[0, 1\), got 1.0"),
    (lambda: mlp([3], use_bias="no"), "mlp: use_bias must be True or False"),
    (lambda: logistic_regression(0), "logistic_regression: n_features must be a positive int"),
    (lambda: logistic_regression(True), "logistic_regression: n_features"),
    (lambda: cnn(2.5), "cnn: n_classes must be a positive int, got 2.5"),
    (lambda: cnn(channels=-1), "cnn: channels must be a positive int"),
    (lambda: cnn(strides=0), "cnn: strides must be a positive int"),
    (lambda: cnn(padding=True), "cnn: padding must be an int >= 0, got True"),
    (lambda: cnn(kernel_sizes=[]), "cnn: kernel_sizes must be a non-empty list"),
    (lambda: cnn(input_shape=(4,)), r"cnn: input_shape must be \(length, channels\)"),
    (lambda: cnn(input_shape=(0, 1)), "cnn: input_shape must be a non-empty list of positive"),
    (lambda: cnn(input_shape=(2, 2, 1), kernel_sizes=[5]), r"cnn: kernel_sizes\[0\] = 5 is larger"),
    (
        lambda: cnn(kernel_sizes=[5, 3, 3], input_shape=(8, 8, 1), strides=1, padding=0),
        r"cnn: kernel_sizes\[2\] = 3 is larger than its input",
    ),  # fmt: skip
    (lambda: gru(hidden=0), "gru: hidden must be a positive int"),
    (lambda: gru(input_shape=(40,)), r"gru: input_shape must be \(time steps, features\)"),
    (lambda: resmlp(hidden=True), "resmlp: hidden must be a positive int, got True"),
    (lambda: resmlp(dropout="0.1"), "resmlp: dropout must be a rate"),
]


@pytest.mark.parametrize("make, message", MODEL_ERRORS)
def test_model_builders_name_the_bad_argument(make, message):
    with pytest.raises(ValueError, match=message):
        make()


# ---- model builders: counts, shapes, specs ---------------------------------------------


def _count_and_shape(model, shape):
    box = []

    def init(key):
        out, params, _ = init_model(model, key, shape)
        box.append(out)
        return params

    params = jax.eval_shape(init, KEY)
    return sum(math.prod(p.shape) for p in jax.tree.leaves(params)), tuple(box[0])


GRU_CELL = 1 * 18 + 6 * 18 + 2 * 18  # W_i (F=1, 3H), W_h (H, 3H), b_i and b_h (3H,), H = 6
MODEL_COUNTS = [
    (mlp([256, 256, 10]), (7, 64), 64 * 256 + 256 + 256 * 256 + 256 + 256 * 10 + 10, (7, 10)),
    (mlp([256, 256, 10], use_bias=False), (7, 64), 64 * 256 + 256 * 256 + 256 * 10, (7, 10)),
    (mlp([8, 3], dropout=0.5, output_activation="softmax"), (7, 5), 5 * 8 + 8 + 8 * 3 + 3, (7, 3)),
    (logistic_regression(5), (7, 5), 5 + 1, (7, 1)),
    (cnn(), (7, 40), 5 * 25 + 25 + 2 * (3 * 25 * 25 + 25) + 125 * 10 + 10, (7, 10)),
    (
        cnn(input_shape=(8, 8, 1)),
        (7, 64),
        25 * 25 + 25 + 2 * (9 * 625 + 25) + 25 * 10 + 10,
        (7, 10),
    ),
    (gru(), (7, 40), 2 * GRU_CELL + 480 * 10 + 10, (7, 10)),
    (resmlp(), (7, 40), 40 * 100 + 100 + 100 * 100 + 100 + 100 * 10 + 10, (7, 10)),
]


@pytest.mark.parametrize("model, shape, count, out", MODEL_COUNTS, ids=lambda v: str(v)[:20])
def test_model_param_counts_and_output_shapes_match_a_hand_count(model, shape, count, out):
    assert _count_and_shape(model, shape) == (count, out)
    y = jax.eval_shape(lambda p, x: model.apply(p, x), model.init(KEY, shape)[1], jnp.ones(shape))
    assert tuple(y.shape) == out


@pytest.mark.parametrize("model, shape", [(m, s) for m, s, _, _ in MODEL_COUNTS])
def test_spec_rebuilds_give_the_same_init_and_outputs(model, shape):
    params = model.init(KEY, shape)[1]
    x = jax.random.normal(jax.random.key(2), shape)
    for spec in (model.spec, layer_spec(model.spec)):
        rebuilt = from_spec(json.loads(json.dumps(spec)))
        again = rebuilt.init(KEY, shape)[1]
        assert jax.tree.structure(again) == jax.tree.structure(params)
        jax.tree.map(np.testing.assert_array_equal, again, params)
        np.testing.assert_array_equal(rebuilt.apply(again, x), model.apply(params, x))


def test_mlp_default_init_is_he_for_named_relu_and_glorot_otherwise():
    for activation, name in [("relu", "he_normal"), ("tanh", "glorot_normal"),
                             (jax.nn.relu, "glorot_normal")]:  # fmt: skip
        model = mlp([300, 200], activation)
        params = _draws(lambda k, model=model: model.init(k, (-1, 400))[1][0]["W"], 2)
        _check_variance(params, _target(name, (400, 300)), name)


# ---- init's shape is apply's shape, over option combinations ---------------------------


def _init_and_apply_shapes(layer, shape, dtype=jnp.float32):
    out, params, state = _traced_init(layer, shape)
    x = jax.ShapeDtypeStruct(shape, dtype)
    y = jax.eval_shape(lambda p, s, x: apply_model(layer, p, s, x)[0], params, state, x)
    return tuple(out), tuple(y.shape)


def _pads(pad) -> tuple[int, int]:  # (lo, hi) of a 1-D padding ("SAME" counted as none)
    return (0, 0) if isinstance(pad, str) else (pad, pad) if isinstance(pad, int) else pad[0]


@pytest.mark.parametrize("kind", ["Conv", "ConvTranspose"])
def test_conv_shapes_agree_and_init_refuses_exactly_the_empty_outputs(kind):
    """1-D, every padding form; init refuses exactly when the (dilated) input, padded, is
    shorter than the dilated kernel (no output position), and agrees with apply otherwise."""
    make = Conv if kind == "Conv" else ConvTranspose
    for k, s, d, pad, n in itertools.product(
        (1, 3, 4), (1, 2, 3), (1, 2), ("VALID", "SAME", 0, 2, [(0, 2)], [(3, 1)]), (1, 2, 5)
    ):
        layer, shape = make(2, k, strides=s, dilation=d, padding=pad), (2, n, 3)
        lo, hi = _pads(pad)
        length = n if kind == "Conv" or pad in ("SAME", "VALID") else (n - 1) * s + 1
        empty = length + lo + hi < (k - 1) * d + 1 and pad != "SAME"
        if kind == "ConvTranspose" and pad == "VALID":
            empty = False  # lax pads the dilated input by k_eff - 1 on each side
        if empty:
            with pytest.raises(ValueError, match=make.__name__):
                _init_and_apply_shapes(layer, shape)
            continue
        init_shape, apply_shape = _init_and_apply_shapes(layer, shape)
        assert init_shape == apply_shape, (kind, k, s, d, pad, n)


def test_2d_conv_pool_and_recurrent_shapes_agree_over_options():
    cases = [
        (make(2, k, strides=s, padding=p), (2, 6, 7, 2))
        for make in (Conv, ConvTranspose)
        for k, s, p in itertools.product(((1, 2), (3, 3)), ((1, 1), (2, 3)), ("SAME", 1))
    ]
    cases += [
        (pool(w, strides=s, padding=p), shape)
        for pool in (MaxPool, AvgPool)
        for w, s, p in itertools.product((2, 3), (None, 1, 2), ("VALID", "SAME"))
        for shape in ((2, 6, 3), (2, 5, 6, 3))
    ]
    for cell in (SimpleRNNCell, GRUCell, LSTMCell):
        cases += [(cell(3), (5,)), (cell(3), (2, 4, 5))]
        cases += [(RNN(cell(3), return_sequences=r, reverse=v), (2, 4, 5))
                  for r, v in itertools.product((False, True), repeat=2)]  # fmt: skip
        cases += [(Bidirectional(cell(3), return_sequences=r, merge=m), (2, 4, 5))
                  for r, m in itertools.product((False, True), ("concat", "sum"))]  # fmt: skip
    for layer, shape in cases:
        init_shape, apply_shape = _init_and_apply_shapes(layer, shape)
        assert init_shape == apply_shape, (layer.name, shape)
    assert _init_and_apply_shapes(Embedding(6, 2), (), jnp.int32) == ((2,), (2,))
    assert _init_and_apply_shapes(Dense(3), (2, 5), jnp.int32) == ((2, 3), (2, 3))
