"""Layer edge paths: an explicit float64 dtype while x64 is off, MaxPool's gradient with NaN
inputs (JAX against the NumPy twin), and Dropout on integer and bool inputs."""

import itertools
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nnjax.layers import (
    RNN,
    BatchNorm,
    Bidirectional,
    Conv,
    ConvTranspose,
    Dense,
    Dropout,
    Embedding,
    GRUCell,
    LayerNorm,
    LSTMCell,
    MaxPool,
    SimpleRNNCell,
    from_spec,
    serial,
)
from nnjax.reference.layers import dropout
from nnjax.reference.pool import max_pool

KEY = jax.random.key(0)
FIX = (
    "dtype float64 needs JAX's 64-bit mode, which is off (JAX would make float32 params); "
    'enable it first with nnjax.enable_x64(), jax.config.update("jax_enable_x64", True) or '
    "JAX_ENABLE_X64=1, or leave dtype=None (float32)"
)

# (make(dtype), input shape, the name the error starts with)
FLOAT64_LAYERS = [
    (lambda dt: Dense(3, dtype=dt), (2, 4), "Dense(3)"),
    (lambda dt: Conv(2, 3, dtype=dt), (2, 5, 1), "Conv(2, 3)"),
    (lambda dt: ConvTranspose(2, 3, dtype=dt), (2, 5, 1), "ConvTranspose(2, 3)"),
    (lambda dt: LayerNorm(dtype=dt), (2, 3), "LayerNorm"),
    (lambda dt: BatchNorm(dtype=dt), (2, 3), "BatchNorm"),
    (lambda dt: SimpleRNNCell(2, dtype=dt), (2, 3), "SimpleRNNCell(2)"),
    (lambda dt: GRUCell(2, dtype=dt), (2, 3), "GRUCell(2)"),
    (lambda dt: LSTMCell(2, dtype=dt), (2, 3), "LSTMCell(2)"),
    (lambda dt: Embedding(4, 2, dtype=dt), (2,), "Embedding(4, 2)"),
    (lambda dt: RNN(GRUCell(2, dtype=dt)), (2, 4, 3), "RNN(GRUCell(2)): GRUCell(2)"),
    (
        lambda dt: Bidirectional(LSTMCell(2, dtype=dt)),
        (2, 4, 3),
        "Bidirectional(LSTMCell(2)): RNN(LSTMCell(2)): LSTMCell(2)",
    ),
    (lambda dt: serial(Dense(3), Dense(2, dtype=dt)), (2, 4), "layer 1 (Dense(2)): Dense(2)"),
]


@pytest.mark.parametrize("dtype", ["float64", np.float64, jnp.float64, np.dtype("float64")])
@pytest.mark.parametrize("make, shape, name", FLOAT64_LAYERS)
def test_float64_params_without_x64_are_refused_at_init_naming_the_layer_and_the_fix(
    make, shape, name, dtype
):
    # was: float32 params, silently, with one UserWarning per array
    with jax.enable_x64(False):
        layer = make(dtype)  # building it stays legal: x64 may be switched on before init
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no JAX truncation warning before the error
            with pytest.raises(ValueError) as err:
                layer.init(KEY, shape)
    assert str(err.value) == f"{name}: {FIX}"


@pytest.mark.parametrize("make, shape, name", FLOAT64_LAYERS)
def test_float64_layers_and_their_specs_init_in_float64_once_x64_is_on(make, shape, name):
    with jax.enable_x64(False):
        layer = make("float64")
        rebuilt = from_spec(layer.spec)  # a model.json spec that records the dtype still loads
    for each in (layer, rebuilt):
        with jax.enable_x64(True), warnings.catch_warnings():
            warnings.simplefilter("error")
            _, *trees = each.init(KEY, shape)
        # every leaf, a serial's default-float Dense(3) included (float64 under x64)
        assert {leaf.dtype for leaf in jax.tree.leaves(trees)} == {jnp.dtype("float64")}


def test_float32_and_narrow_dtypes_still_init_without_x64():
    with jax.enable_x64(False), warnings.catch_warnings():
        warnings.simplefilter("error")
        for dt in ("float32", "float16", "bfloat16", None):
            _, p = Dense(3, dtype=dt).init(KEY, (2, 4))
            assert p["W"].dtype == jnp.dtype(dt or "float32")


# --- MaxPool with NaN: the twin follows JAX's scan rule ---------------------------------


def _scan_rule(window):
    """JAX's tap for one window, written out: keep tap c unless not x_c >= x_t."""
    chosen = 0
    for t in range(1, len(window)):
        if not window[chosen] >= window[t]:
            chosen = t
    return chosen


@pytest.mark.parametrize(
    "window, tap",
    [
        ([1.0, np.nan, 0.0, 5.0], 3),  # the first maximum after the NaN, not the NaN
        ([1.0, np.nan, 0.0, -1.0], 2),
        ([np.nan, 2.0, 2.0, 1.0], 1),
        ([1.0, 3.0, 0.0, np.nan], 3),  # a NaN in the last tap keeps it
        ([np.nan, np.nan, np.nan, np.nan], 3),
        ([2.0, 5.0, 5.0, -np.inf], 1),  # no NaN: the first maximum
    ],
)
def test_max_pool_gradient_with_nan_goes_where_jax_sends_it(window, tap):
    x = np.array(window).reshape(1, 4, 1)
    with jax.enable_x64(True):
        y, vjp = jax.vjp(lambda v: MaxPool(4).apply({}, v), jnp.asarray(x))
        (g,) = vjp(jnp.ones_like(y))
    want = np.zeros(4)
    want[tap] = 1.0
    np.testing.assert_array_equal(np.asarray(g).ravel(), want)
    y_t, cache = max_pool(4).forward({}, x)
    dx, _ = max_pool(4).backward(np.ones_like(y_t), cache)
    np.testing.assert_array_equal(dx.ravel(), want)  # was: the first NaN's tap
    np.testing.assert_array_equal(y_t, np.asarray(y))  # NaN where the window holds a NaN
    assert np.isnan(y_t).item() == any(np.isnan(window))


def test_max_pool_twin_agrees_with_jax_on_every_window_of_nan_inf_and_ties():
    values = [0.0, 1.0, np.nan, -np.inf, np.inf]
    windows = np.array(list(itertools.product(values, repeat=4)))  # 625 windows
    x = windows.reshape(-1, 4, 1)
    with jax.enable_x64(True):
        y, vjp = jax.vjp(lambda v: MaxPool(4).apply({}, v), jnp.asarray(x))
        dy = np.arange(1.0, x.shape[0] + 1).reshape(np.shape(y))
        (g,) = vjp(jnp.asarray(dy))
    taps = np.argmax(np.asarray(g)[:, :, 0] != 0, axis=1)
    np.testing.assert_array_equal(taps, [_scan_rule(w) for w in windows])
    y_t, cache = max_pool(4).forward({}, x)
    dx, _ = max_pool(4).backward(dy, cache)
    np.testing.assert_array_equal(y_t, np.asarray(y))
    np.testing.assert_array_equal(dx, np.asarray(g))


@pytest.mark.parametrize(
    "window, strides, padding",
    [((2, 2), None, "VALID"), ((3, 3), (1, 1), "SAME"), ((2, 3), (1, 2), ((1, 1), (0, 2)))],
)
def test_max_pool_twin_agrees_with_jax_on_2d_overlapping_padded_windows_with_nan(
    window, strides, padding
):
    rng = np.random.default_rng(7)
    x = rng.integers(-2, 3, size=(2, 5, 6, 3)).astype(float)  # ties
    x[rng.random(x.shape) < 0.2] = np.nan
    x[rng.random(x.shape) < 0.1] = -np.inf
    layer, twin = (
        MaxPool(window, strides=strides, padding=padding),
        max_pool(window, strides=strides, padding=padding),
    )
    with jax.enable_x64(True):
        y, vjp = jax.vjp(lambda v: layer.apply({}, v), jnp.asarray(x))
        dy = rng.normal(size=np.shape(y))
        (g,) = vjp(jnp.asarray(dy))
    y_t, cache = twin.forward({}, x)
    dx, _ = twin.backward(dy, cache)
    np.testing.assert_array_equal(y_t, np.asarray(y))
    np.testing.assert_allclose(dx, np.asarray(g), rtol=1e-12, atol=0)


# --- Dropout on integer and bool inputs ---------------------------------------------------


@pytest.mark.parametrize("x64", [False, True])
@pytest.mark.parametrize("rate", [0.0, 0.3])
@pytest.mark.parametrize(
    "x", [np.arange(-3, 9).reshape(3, 4), np.arange(12).reshape(3, 4) % 3 == 0]
)
def test_dropout_computes_int_and_bool_input_in_the_default_float_with_or_without_key(x, rate, x64):
    # was: ints (bools) back without a key or with rate 0, floats with a key
    with jax.enable_x64(x64):
        want = jnp.dtype("float64" if x64 else "float32")
        layer = Dropout(rate)
        y_eval = layer.apply({}, jnp.asarray(x))
        assert y_eval.dtype == want
        np.testing.assert_array_equal(y_eval, x.astype(float))
        y = layer.apply({}, jnp.asarray(x), key=KEY)
        assert y.dtype == want
        keep = np.asarray(y) != 0
        # the twin with the same mask: x / (1 - rate) where kept, in float (not truncated)
        y_t, _ = dropout(rate, keep | (x == 0)).forward({}, x)
        assert y_t.dtype == np.float64
        np.testing.assert_allclose(y, y_t, rtol=1e-6 if not x64 else 1e-15)
        np.testing.assert_array_equal(dropout(rate).forward({}, x)[0], x.astype(float))


def test_dropout_float_input_keeps_its_dtype_and_identity():
    x = jnp.ones((4, 3), jnp.bfloat16)
    assert Dropout(0.5).apply({}, x) is x
    assert Dropout(0.5).apply({}, x, key=KEY).dtype == jnp.bfloat16


@pytest.mark.parametrize(
    "layer, shape",
    [
        (Dense(3), (-1, 4)),
        (Conv(2, (3, 3)), (-1, 5, 5, 1)),
        (RNN(GRUCell(3)), (-1, 6, 2)),
        (Bidirectional(LSTMCell(2)), (-1, 6, 2)),
        (Embedding(5, 2), (-1, 3)),
        (serial(Dense(3), Dense(1)), (-1, 4)),
    ],
    ids=lambda v: getattr(v, "name", None),
)
def test_an_int_seed_as_init_key_names_the_layer_and_the_key_to_pass(layer, shape):
    """An int seed used to reach JAX as 'invalid PRNG key data ... Got 0' (or, for
    Embedding, an initializer's error); the layer now names itself and the key to pass."""
    name = layer.name.replace("(", r"\(").replace(")", r"\)")
    with pytest.raises(TypeError, match=name + r": key must be a PRNG key .*jax\.random\.key\(7\)"):
        layer.init(7, shape)
    with pytest.raises(TypeError, match="got NoneType None"):
        layer.init(None, shape)
    a = layer.init(jax.random.key(7), shape)[1]
    b = layer.init(jax.random.PRNGKey(7), shape)[1]  # raw uint32 keys still work
    assert jax.tree.structure(a) == jax.tree.structure(b)


def test_dropout_and_serial_apply_name_a_seed_given_as_key():
    x = jnp.ones((2, 4))
    with pytest.raises(TypeError, match=r"Dropout\(0.5\): key must be .*key\(1\)"):
        Dropout(0.5).apply({}, x, key=1)
    net = serial(Dense(3), Dropout(0.5))
    params = net.init(jax.random.key(0), (-1, 4))[1]
    with pytest.raises(TypeError, match=r"serial\(Dense\(3\), Dropout\(0.5\)\): key must be"):
        net.apply(params, x, key=np.int64(1))
    assert net.apply(params, x).shape == (2, 3)  # no key: no randomness, still fine


def test_embedding_inside_a_jit_that_closes_over_concrete_ids():
    """Ids that are a concrete jax.Array closed over by a jitted function: their range is
    checked on the host (numpy's min of the array had been traced: ConcretizationTypeError),
    and out-of-range ids are still refused by name."""
    emb = Embedding(5, 3)
    _, p = emb.init(jax.random.key(0), (-1, 4))
    ids = jnp.array([[0, 1, 2, 4], [4, 3, 2, 1]], jnp.int32)
    got = jax.jit(lambda q: emb.apply(q, ids))(p)
    np.testing.assert_array_equal(got, np.asarray(p["W"])[np.asarray(ids)])
    bad = ids.at[0, 0].set(5)
    with pytest.raises(ValueError, match=r"Embedding\(5, 3\): ids must be in \[0, 5\), got 1..5"):
        jax.jit(lambda q: emb.apply(q, bad))(p)
