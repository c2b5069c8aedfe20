"""Audit of the Python API fed every kind of array a researcher has: dtypes (uint8 images,
ints, bools, float16, bfloat16, float8, complex, object) and input kinds (lists, memmaps,
non-contiguous and Fortran-order views). Each input gives the number its documented
conversion gives (checked against the float32 input or a NumPy float64 oracle), or one
ValueError naming the culprit. Each defect's old behaviour is in its test's docstring."""

import re

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import optax
import pytest

import nnjax
from nnjax import losses, tree_arrays
from nnjax.layers import (
    RNN,
    Activation,
    Conv,
    Dense,
    GRUCell,
    LayerNorm,
    MaxPool,
    init_model,
    serial,
)

KEY = jax.random.key(0)
N, D, K = 16, 4, 3


@pytest.fixture(scope="module")
def problem():
    rng = np.random.default_rng(0)
    model = serial(Dense(8), Activation("relu"), Dense(K))
    params = init_model(model, KEY, (-1, D))[1]
    X8 = rng.integers(0, 256, (N, D)).astype(np.uint8)
    Xf = rng.normal(size=(N, D)).astype(np.float32)
    return model, params, X8, Xf, rng.integers(0, K, N)


# ---- defects: each test failed on the old code ---------------------------------------------

LAYERS = {
    "Dense(4)": (Dense(4), (2, 3)),
    "Activation(tanh)": (Activation("tanh"), (2, 3)),
    "LayerNorm": (LayerNorm(), (2, 3)),
    "MaxPool((2, 2))": (MaxPool((2, 2)), (2, 4, 4, 1)),
    "Conv(2, (3, 3))": (Conv(2, (3, 3)), (2, 5, 5, 1)),
    "RNN(GRUCell(2))": (RNN(GRUCell(2)), (2, 3, 1)),
}


@pytest.mark.parametrize("name", LAYERS)
@pytest.mark.parametrize("dtype", [object, np.complex64])
def test_layers_refuse_object_and_complex_inputs_naming_the_layer(name, dtype):
    """Old: an object array ended in JAX's 'TypeError: Error interpreting argument to matmul
    as an abstract array' (Dense; each layer another JAX function); a complex one gave a
    complex output, the imaginary parts mixed in silently (Dense(4) on complex64: complex64)."""
    layer, shape = LAYERS[name]
    params = init_model(layer, KEY, (-1, *shape[1:]))[1]
    x = np.ones(shape, dtype)
    match = re.escape(f"{name}: expected an array of numbers (bool, int or float), got dtype ")
    with pytest.raises(ValueError, match="^" + match + np.dtype(dtype).name):
        layer.apply(params, x)


def test_a_layer_refuses_complex_inputs_under_jit_too():
    """The check reads the dtype only, so it holds for a tracer (old: complex64 output)."""
    layer = Dense(2)
    params = init_model(layer, KEY, (-1, 3))[1]
    with pytest.raises(ValueError, match=r"^Dense\(2\): .* got dtype complex64"):
        jax.jit(layer.apply)(params, jnp.ones((1, 3), jnp.complex64))


CALLS = {
    "mse": lambda z, y: losses.mse(z[:, :1], y % 2),
    "binary_cross_entropy_with_logits": lambda z, y: losses.binary_cross_entropy_with_logits(
        z[:, :1], y % 2
    ),
    "binary_cross_entropy": lambda z, y: losses.binary_cross_entropy(
        np.full((len(y), 1), 0.5, z.dtype), y % 2
    ),
    "softmax_cross_entropy": lambda z, y: losses.softmax_cross_entropy(z, y),
}


@pytest.mark.parametrize("loss", CALLS)
def test_losses_refuse_complex_predictions(loss):
    """Old: mse gave (1.607+0j) and binary_cross_entropy_with_logits (0.726+0j), a complex
    "loss"; softmax_cross_entropy said 'isposinf/isneginf are not well defined for complex
    types' (naming no argument)."""
    z = np.random.default_rng(0).normal(size=(8, 3)).astype(np.complex64)
    y = np.arange(8) % 3
    with pytest.raises(ValueError, match=rf"^{loss}: .* must hold real numbers \(bool, int or "
                       r"float\), got dtype complex64"):  # fmt: skip
        CALLS[loss](z, y)


@pytest.mark.parametrize("loss", ["mse", "softmax_cross_entropy"])
def test_losses_refuse_object_targets_naming_the_loss(loss):
    """Old: 'TypeError: Error interpreting argument to stage as a JAX value'."""
    z = np.zeros((4, 3 if loss == "softmax_cross_entropy" else 1), np.float32)
    y = np.array([0, 1, 2, 1], dtype=object)
    with pytest.raises(ValueError, match=rf"^{loss}: targets must hold real numbers .* object"):
        losses.get_loss(loss)(z, y)


@pytest.mark.parametrize("optimizer", ["adam", "adamw", "rmsprop"])
def test_fit_refuses_an_optimizer_whose_eps_is_zero_in_float16(problem, optimizer):
    """Old: fit(float16 params, optimizer='adam') stopped at its second step with 'the
    training loss became nan ...; lower the learning rate or check the data', which does not
    help: eps = 1e-8 is 0 in float16, so a zero gradient gives 0/0 (the oracle below)."""
    model, params, _, Xf, y = problem
    half = jax.tree.map(lambda a: a.astype(jnp.float16), params)
    with pytest.raises(ValueError, match=rf"^fit: optimizer '{optimizer}' .* eps = 1e-08, and "
                       r"eps is 0 in float16, the dtype of the params"):  # fmt: skip
        nnjax.fit(model, half, Xf, y, optimizer=optimizer, epochs=1, key=KEY)


def test_the_float16_eps_refusal_is_right_and_spares_what_works():
    """Oracle for the refusal: Optax's own Adam and RMSprop in float16 turn gradients 0 and
    1e-4 into nan and inf; Adagrad (eps 1e-7, not 0 in float16) and Adam in bfloat16 (float32's
    range) stay finite."""
    g16 = jnp.array([0.0, 1e-4, 1e-2], jnp.float16)
    for opt in (optax.adam(1e-3), optax.rmsprop(1e-2)):
        u = np.asarray(opt.update(g16, opt.init(g16), g16)[0], np.float64)
        assert np.isnan(u[0]) and np.isinf(u[1])
    ok = [(optax.adagrad(1e-2, eps=1e-7), g16), (optax.adam(1e-3), g16.astype(jnp.bfloat16))]
    for opt, g in ok:
        assert np.isfinite(np.asarray(opt.update(g, opt.init(g), g)[0], np.float64)).all()
    from nnjax.train.arguments import _check_eps

    _check_eps("adagrad", "float16")
    _check_eps("adam", "bfloat16")
    _check_eps("sgd", "float16")


def test_predictor_takes_bfloat16_and_float8_inputs(tmp_path, problem):
    """Old: 'saved model ...: inputs must be numbers (an array of ints, bools or floats), got
    dtype bfloat16' (bfloat16 is floats: NumPy's kind 'V' was read as no number)."""
    model, params, _, Xf, _ = problem
    nnjax.save(tmp_path / "m", model, params, label_names=[0, 1, 2], input_shape=(-1, D))
    predictor = nnjax.load(tmp_path / "m")
    for dtype in (ml_dtypes.bfloat16, ml_dtypes.float8_e4m3fn):
        X = Xf.astype(dtype)
        np.testing.assert_array_equal(predictor(X), predictor(X.astype(np.float32)))
        np.testing.assert_array_equal(predictor.predict(X), predictor.predict(X.astype(np.float32)))


@pytest.mark.parametrize("dtype", ["float8_e5m2", "float8_e4m3fn", "bfloat16", "int4"])
def test_tree_arrays_store_every_ml_dtype_bit_for_bit(tmp_path, dtype):
    """Old: float8_e5m2 (dtype.str '<f1', a code NumPy does not read) stopped
    ``storable`` and so checkpoint.save with 'TypeError: data type '<f1' not understood'."""
    from nnjax.checkpoint import store

    a = np.arange(-3, 4).astype(getattr(ml_dtypes, dtype))
    stored, names = tree_arrays.storable({"a": a})
    assert names == {"a": dtype} and np.dtype(stored["a"].dtype.str) == stored["a"].dtype
    back = tree_arrays.unstored(stored, names)["a"]
    assert back.dtype == a.dtype and back.tobytes() == a.tobytes()
    tree = {"w": jnp.asarray(a)}
    store.save(tmp_path, 1, tree)
    restored = store.restore(tmp_path, tree)[0]["w"]
    assert restored.dtype == a.dtype and np.asarray(restored).tobytes() == a.tobytes()


# ---- sound: documented conversions give the float32 (or float64 oracle) numbers -----------


def _leaves(result):
    return [np.asarray(v) for v in jax.tree.leaves(result.params)]


def test_fit_on_integer_and_bool_inputs_equals_fit_on_their_float32(problem):
    """uint8 images, int64 and bool features train as their float32 values, bit for bit."""
    model, params, X8, _, y = problem

    def run(X):
        return _leaves(nnjax.fit(model, params, X, y, epochs=2, batch_size=8, key=KEY))

    want = run(X8.astype(np.float32))
    for X in (X8, X8.astype(np.int64)):
        for a, b in zip(run(X), want):
            np.testing.assert_array_equal(a, b)
    for a, b in zip(run(X8 > 100), run((X8 > 100).astype(np.float32))):
        np.testing.assert_array_equal(a, b)


def test_evaluate_on_every_input_kind_matches_a_float64_oracle(tmp_path, problem):
    """evaluate's loss on uint8 X against NumPy float64 (max relative error 2e-7 measured);
    every other kind of the same values (int32, float16, bfloat16, float64, a list, a
    memmap, a strided view, Fortran order) gives the float32 input's numbers exactly."""
    model, params, X8, _, y = problem
    (W1, b1), (W2, b2) = [(np.float64(p["W"]), np.float64(p["b"])) for p in (params[0], params[2])]
    z = np.maximum(X8 @ W1 + b1, 0) @ W2 + b2
    logp = z - z.max(1, keepdims=True)
    logp -= np.log(np.exp(logp).sum(1, keepdims=True))
    oracle = -logp[np.arange(N), y].mean()
    got = nnjax.evaluate(model, params, X8, y)
    assert abs(got["loss"] - oracle) <= 1e-6 * abs(oracle)
    assert got["accuracy"] == np.mean(z.argmax(1) == y)
    mm = np.lib.format.open_memmap(tmp_path / "x.npy", "w+", np.float32, X8.shape)
    mm[:] = X8
    wide = np.repeat(X8.astype(np.float32), 2, axis=1)
    for X in (X8.astype(np.int32), X8.astype(np.float16), X8.astype(ml_dtypes.bfloat16),
              X8.astype(np.float64), X8.tolist(), mm, wide[:, ::2],
              np.asfortranarray(X8.astype(np.float32))):  # fmt: skip
        assert nnjax.evaluate(model, params, X, y.astype(np.int64)) == got


@pytest.mark.parametrize(
    "labels, match",
    [
        (lambda y: y + 0.5, r"targets must be integer labels of shape \(16,\) .* got float32"),
        (lambda y: y.astype(np.float64), r"integer labels .* got float32 \(16,\)"),
        (lambda y: y - 1, r"labels from -1 to 1, but the model has 3 outputs"),
        (lambda y: y + 1, r"labels from 1 to 3, but the model has 3 outputs"),
        (lambda y: y[:, None], r"got int32 \(16, 1\)"),
        (lambda y: y > 0, r"got bool \(16,\)"),
    ],
)
def test_labels_the_softmax_cross_entropy_cannot_take_are_refused(problem, labels, match):
    """Float labels (3.0 and 3.5 alike: never truncated), negative ones, ones >= K, (n, 1)
    and bool labels: one ValueError naming y, before anything is computed."""
    model, params, _, Xf, y = problem
    with pytest.raises(ValueError, match=r"^evaluate: y .*" + match):
        nnjax.evaluate(model, params, Xf, labels(y))
