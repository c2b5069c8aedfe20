"""Every layer and model: the shape init returns is the shape apply makes (tuple shapes
included), with a concrete batch and with -1; specs round-trip through JSON and from_spec."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import nnjax
from nnjax.layers import (
    LAYERS,
    RNN,
    Activation,
    AvgPool,
    BatchNorm,
    Bidirectional,
    Conv,
    ConvTranspose,
    Dense,
    Dropout,
    Embedding,
    FanInConcat,
    FanInSum,
    FanOut,
    Flatten,
    GlobalAvgPool,
    GRUCell,
    Identity,
    LayerNorm,
    LSTMCell,
    MaxPool,
    Reshape,
    SimpleRNNCell,
    apply_model,
    from_spec,
    init_model,
    parallel,
    residual,
    serial,
)
from nnjax.models import MODELS

KEY = jax.random.key(0)

# name -> [(layer, input shape)]: every constructor of LAYERS, with the options that change
# the output shape.
EXAMPLES = {
    "Dense": [(Dense(3), (4, 5)), (Dense(2, use_bias=False), (2, 3, 5))],
    "Activation": [(Activation("softmax"), (4, 5))],
    "Flatten": [(Flatten(), (2, 3, 4, 5))],
    "Reshape": [(Reshape((5, 4)), (3, 20)), (Reshape((2, 2, 5)), (3, 4, 5))],
    "Identity": [(Identity(), (3, 2)), (Identity(), ((3, 2), (3, 4)))],
    "Dropout": [(Dropout(0.5), (4, 3))],
    "serial": [(serial(Dense(4), Activation("relu"), Dense(2)), (5, 3))],
    "Conv": [
        (Conv(4, 3), (2, 11, 3)),
        (Conv(4, 3, strides=2, padding="SAME", dilation=2, groups=2), (2, 11, 2)),
        (Conv(6, (3, 2), strides=(2, 3), padding=[(1, 2), (0, 1)], groups=3), (2, 9, 7, 3)),
        (Conv(2, 5, padding=1, use_bias=False), (3, 8, 8, 1)),
    ],
    "ConvTranspose": [
        (ConvTranspose(3, 3, strides=2, padding="SAME"), (2, 5, 2)),
        (ConvTranspose(2, (2, 3), strides=(3, 2)), (2, 4, 3, 2)),
        (ConvTranspose(2, 3, strides=2, padding=[(1, 0)], dilation=2), (2, 5, 1)),
    ],
    "MaxPool": [(MaxPool(2), (2, 9, 3)), (MaxPool(3, strides=2, padding="SAME"), (2, 7, 6, 2))],
    "AvgPool": [
        (AvgPool((2, 3), strides=1), (2, 5, 6, 1)),
        (AvgPool(2, padding=[(1, 1)]), (2, 5, 1)),
    ],
    "GlobalAvgPool": [(GlobalAvgPool(), (2, 5, 3)), (GlobalAvgPool(), (2, 4, 5, 3))],
    "LayerNorm": [(LayerNorm(), (3, 4, 5))],
    "BatchNorm": [(BatchNorm(), (8, 5)), (BatchNorm(), (2, 4, 4, 3))],
    "parallel": [(parallel(Dense(2), Flatten()), ((3, 4), (3, 2, 5)))],
    "FanOut": [(FanOut(3), (4, 2))],
    "FanInSum": [(FanInSum(), ((4, 2), (4, 2)))],
    "FanInConcat": [(FanInConcat(), ((4, 2), (4, 3))), (FanInConcat(1), ((4, 2, 3), (4, 1, 3)))],
    "residual": [(residual(serial(Dense(5), Activation("tanh"))), (3, 5))],
    "SimpleRNNCell": [(SimpleRNNCell(4), (3, 2))],
    "GRUCell": [(GRUCell(4), (3, 2))],
    "LSTMCell": [(LSTMCell(4), (3, 2))],
    "RNN": [
        (RNN(GRUCell(4)), (3, 6, 2)),
        (RNN(LSTMCell(3), return_sequences=True, reverse=True), (3, 6, 2)),
    ],
    "Bidirectional": [
        (Bidirectional(GRUCell(3), return_sequences=True), (2, 5, 2)),
        (Bidirectional(LSTMCell(3), SimpleRNNCell(3), merge="sum"), (2, 5, 2)),
    ],
    "Embedding": [(Embedding(7, 3), (4, 5))],
}

MODEL_EXAMPLES = {
    "mlp": [(nnjax.mlp([8, 3]), (4, 5))],
    "logistic_regression": [(nnjax.logistic_regression(5), (4, 5))],
    "cnn": [(nnjax.models.cnn(), (3, 40)), (nnjax.models.cnn(input_shape=(8, 8, 1)), (3, 64))],
    "gru": [(nnjax.models.gru(), (2, 40))],
    "resmlp": [(nnjax.models.resmlp(hidden=16), (4, 40))],
}

ALL = [
    (name, layer, shape)
    for table in (EXAMPLES, MODEL_EXAMPLES)
    for name, cases in table.items()
    for layer, shape in cases
]
IDS = [f"{name}-{i}" for i, (name, _, _) in enumerate(ALL)]


def test_every_layer_and_model_has_an_example():
    assert set(EXAMPLES) == set(LAYERS)
    assert set(MODEL_EXAMPLES) == set(MODELS)


def _input(shape, layer):
    if layer.name.startswith("Embedding"):
        return jnp.zeros(shape, jnp.int32)
    if isinstance(shape[0], tuple):
        return tuple(jnp.ones(s) for s in shape)
    return jnp.ones(shape)


def _shapes(tree):
    return jax.tree.map(lambda a: tuple(a.shape), tree)


def _as_tuples(shape):
    return tuple(_as_tuples(s) for s in shape) if isinstance(shape[0], tuple) else tuple(shape)


def _traced_init(layer, shape):
    """init_model traced, not run (eager init compiles every random op anew): (output shape,
    params and state as ShapeDtypeStructs)."""
    box = []

    def init(key):
        out, params, state = init_model(layer, key, shape)
        box.append(out)
        return params, state

    params, state = jax.eval_shape(init, KEY)
    return box[0], params, state


def _unbatch(s):
    return tuple(_unbatch(t) for t in s) if isinstance(s[0], tuple) else (-1, *s[1:])


@pytest.mark.parametrize("name, layer, shape", ALL, ids=IDS)
@pytest.mark.parametrize("train", [False, True])
def test_init_shape_is_the_shape_apply_makes(name, layer, shape, train):
    out_shape, params, state = _traced_init(layer, shape)
    x = _input(shape, layer)
    apply = lambda p, s, x: apply_model(layer, p, s, x, train=train)[0]
    y = jax.eval_shape(apply, params, state, x)
    produced = jax.tree.map(lambda s: tuple(s.shape), y)
    assert produced == _as_tuples(out_shape), (name, produced, out_shape)
    # -1 as the batch size gives the same shapes with -1 in front
    assert _as_tuples(_traced_init(layer, _unbatch(shape))[0]) == _unbatch(_as_tuples(out_shape))


@pytest.mark.parametrize("name, layer, shape", ALL, ids=IDS)
def test_spec_round_trips_through_json(name, layer, shape):
    assert layer.spec is not None and layer.spec[0] == name
    text = json.dumps(layer.spec)
    rebuilt = from_spec(json.loads(text))
    assert json.dumps(rebuilt.spec) == text
    assert rebuilt.stateful == layer.stateful
    _, params, state = _traced_init(layer, shape)
    assert _shapes(_traced_init(rebuilt, shape)[1:]) == _shapes((params, state))
    rng = np.random.default_rng(0)
    params, state = jax.tree.map(lambda s: rng.normal(size=s.shape) + 1.0, (params, state))
    x = _input(shape, layer)
    both = jax.jit(lambda p, s, x: [apply_model(m, p, s, x)[0] for m in (layer, rebuilt)])
    y1, y2 = both(params, state, x)
    jax.tree.map(np.testing.assert_array_equal, y1, y2)


def test_specs_say_none_for_python_callables():
    assert Activation(jnp.tanh).spec is None
    assert Dense(3, W_init=nnjax.initializers.normal(0.1)).spec is None
    assert serial(Dense(3), Activation(jnp.tanh)).spec is None
    assert residual(Activation(jnp.sin)).spec is None
    assert RNN(GRUCell(3, W_h_init=nnjax.initializers.normal(0.1))).spec is None
    assert nnjax.mlp([3], activation=jnp.tanh).spec is None
    assert Dense(3, dtype=jnp.float64).spec[1]["dtype"] == "float64"


def test_from_spec_errors_name_the_problem():
    with pytest.raises(ValueError, match="unknown constructor 'Dens'.*Dense"):
        from_spec(("Dens", {"features": 3}))
    with pytest.raises(ValueError, match="a spec is \\(constructor_name, kwargs\\)"):
        from_spec("Dense")
    with pytest.raises(ValueError, match="bad arguments for Dense"):
        from_spec(("Dense", {"features": 3, "width": 4}))
    with pytest.raises(ValueError, match="features must be a positive int"):
        from_spec(("Dense", {"features": 0}))
    with pytest.raises(ValueError, match="serial needs 'layers'"):
        from_spec(("serial", {}))


def _batch_of_0(s):
    return tuple(_batch_of_0(t) for t in s) if isinstance(s[0], tuple) else (0, *s[1:])


@pytest.mark.parametrize("name, layer, shape", ALL, ids=IDS)
def test_a_batch_of_0_gives_0_rows(name, layer, shape):
    """Review: Flatten reshaped to (0, -1), a ZeroDivisionError in JAX (and so cnn, gru and
    a loaded Predictor failed on an empty input)."""
    out_shape, params, state = _traced_init(layer, shape)
    x = _input(_batch_of_0(shape), layer)
    y = jax.eval_shape(
        lambda p, s, x: apply_model(layer, p, s, x, train=False)[0], params, state, x
    )
    assert jax.tree.map(lambda s: tuple(s.shape), y) == _batch_of_0(_as_tuples(out_shape)), name
