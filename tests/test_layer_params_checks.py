"""Every parametrised layer's apply checks the params it is given against the layer (keys and
static shapes: free per step, and valid under jit, grad and vmap over stacked params), takes
array-likes, and refuses what its init cannot mean. (That init's output shape is the shape
apply makes, for every layer, is tests/test_layer_shapes.py.)"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import nnjax
from nnjax.layers import (
    RNN,
    BatchNorm,
    Bidirectional,
    Conv,
    ConvTranspose,
    Dense,
    Embedding,
    Flatten,
    GlobalAvgPool,
    GRUCell,
    LayerNorm,
    LSTMCell,
    MaxPool,
    ParamsError,
    Reshape,
    SimpleRNNCell,
    apply_model,
    init_model,
    parallel,
    serial,
)

K = jax.random.key(0)


def params_of(layer, shape):
    return init_model(layer, K, shape)[1]


def with_(params, **leaves):
    return {**params, **{k: jnp.ones(v) for k, v in leaves.items()}}


ONES = jnp.ones
BN_STATE = {"mean": jnp.zeros(3), "var": jnp.ones(3)}


# (what to call, a regex for the ValueError): each one ran, or failed otherwise, before.
WRONG_PARAMS = {
    "Dense-features": (
        lambda: Dense(3).apply(params_of(Dense(5), (-1, 4)), ONES((2, 4))),
        r"^Dense\(3\): params\['W'\] has shape \(4, 5\), expected \(4, 3\) "
        r"\(input features 4 -> 3 units\)$",
    ),
    "Dense-bias": (
        lambda: Dense(3).apply(with_(params_of(Dense(3), (-1, 4)), b=(5,)), ONES((2, 4))),
        r"^Dense\(3\): params\['b'\] has shape \(5,\), expected \(3,\) \(one per unit\)$",
    ),
    "Dense-no-b": (
        lambda: Dense(3).apply({"W": ONES((4, 3))}, ONES((2, 4))),
        r"^Dense\(3\): params must be a dict with keys \['W', 'b'\] .*missing \['b'\]",
    ),
    "Dense-extra-b": (
        lambda: Dense(3, use_bias=False).apply(params_of(Dense(3), (-1, 4)), ONES((2, 4))),
        r"^Dense\(3\): params must be a dict with keys \['W'\] .*not expected \['b'\]",
    ),
    "Dense-LayerNorm-params": (
        lambda: Dense(3).apply(params_of(LayerNorm(), (-1, 4)), ONES((2, 4))),
        r"^Dense\(3\): params must be a dict with keys \['W', 'b'\]",
    ),
    "Dense-Conv-params": (  # said "expected input of shape (..., 2)", 2 the kernel size
        lambda: Dense(3).apply(params_of(Conv(3, 2), (-1, 5, 2)), ONES((2, 4))),
        r"^Dense\(3\): params\['W'\] has shape \(2, 2, 3\), expected \(4, 3\)",
    ),
    "Dense-list-params": (
        lambda: Dense(3).apply([params_of(Dense(3), (-1, 4))], ONES((2, 4))),
        r"^Dense\(3\): params must be a dict .* got a list$",
    ),
    "Conv-features-kernel": (
        lambda: Conv(4, 3).apply(params_of(Conv(5, 5), (-1, 8, 2)), ONES((2, 8, 2))),
        r"^Conv\(4, 3\): params\['W'\] has shape \(5, 2, 5\), expected \(3, 2, 4\) "
        r"\(kernel \(3,\), 2 input channels -> 4 features\)$",
    ),
    "Conv-Dense-params": (  # said "(B, H, W, 2)"
        lambda: Conv(3, 2).apply(params_of(Dense(3), (-1, 2)), ONES((2, 5, 4))),
        r"^Conv\(3, 2\): params\['W'\] has shape \(2, 3\), expected \(2, 4, 3\)",
    ),
    "Conv-bias": (
        lambda: Conv(3, 2).apply(with_(params_of(Conv(3, 2), (-1, 5, 2)), b=(4,)), ONES((1, 5, 2))),
        r"^Conv\(3, 2\): params\['b'\] has shape \(4,\), expected \(3,\)",
    ),
    "ConvTranspose-features": (
        lambda: ConvTranspose(3, 2).apply(
            params_of(ConvTranspose(2, 2), (-1, 4, 4, 1)), ONES((1, 4, 4, 1))
        ),
        r"^ConvTranspose\(3, 2\): params\['W'\] has shape \(2, 2, 1, 2\), expected "
        r"\(2, 2, 1, 3\)",
    ),
    "Embedding-rows": (  # id 4 came back as row 2, clamped
        lambda: Embedding(5, 3).apply(params_of(Embedding(3, 3), (-1,)), jnp.array([4])),
        r"^Embedding\(5, 3\): params\['W'\] has shape \(3, 3\), expected \(5, 3\) "
        r"\(5 ids -> 3 features\)$",
    ),
    "LayerNorm-no-scale": (  # ran without its scale
        lambda: LayerNorm().apply({"offset": ONES(4)}, ONES((2, 4))),
        r"^LayerNorm: params must be a dict with keys \['scale', 'offset'\] .*missing",
    ),
    "LayerNorm-offset-size": (
        lambda: LayerNorm().apply({"scale": ONES(3), "offset": ONES(4)}, ONES((2, 3))),
        r"^LayerNorm: params 'offset' must have shape \(3,\)",
    ),
    "LayerNorm-Dense-params": (
        lambda: LayerNorm().apply(params_of(Dense(4), (-1, 4)), ONES((2, 4))),
        r"^LayerNorm: params must be a dict with keys \['scale', 'offset'\]",
    ),
    "BatchNorm-offset-off": (  # the offset was added although use_offset=False
        lambda: BatchNorm(use_offset=False).apply(
            params_of(BatchNorm(), (-1, 3)), ONES((2, 3)), state=BN_STATE
        ),
        r"^BatchNorm: params must be a dict with keys \['scale'\] .*not expected \['offset'\]",
    ),
    "GRUCell-hidden": (  # "dot_general requires contracting dimensions"
        lambda: GRUCell(3).apply(params_of(GRUCell(4), (-1, 2)), ONES((5, 2))),
        r"^GRUCell\(3\): params\['W_i'\] has shape \(2, 12\), expected \(2, 9\) "
        r"\(input features 2 -> 3 hidden x 3 gates\)$",
    ),
    "SimpleRNNCell-W_h": (
        lambda: SimpleRNNCell(3).apply(
            with_(params_of(SimpleRNNCell(3), (-1, 2)), W_h=(4, 3)), ONES((5, 2))
        ),
        r"^SimpleRNNCell\(3\): params\['W_h'\] has shape \(4, 3\), expected \(3, 3\)",
    ),
    "LSTMCell-bias": (
        lambda: LSTMCell(3).apply(with_(params_of(LSTMCell(3), (-1, 2)), b=(3,)), ONES((5, 2))),
        r"^LSTMCell\(3\): params\['b'\] has shape \(3,\), expected \(12,\) "
        r"\(3 hidden x 4 gates\)$",
    ),
    "RNN-GRU-params": (  # KeyError 'b'
        lambda: RNN(LSTMCell(3)).apply(params_of(RNN(GRUCell(3)), (-1, 4, 2)), ONES((1, 4, 2))),
        r"^RNN\(LSTMCell\(3\)\): LSTMCell\(3\): params must be a dict with keys "
        r"\['W_i', 'W_h', 'b'\]",
    ),
    "Bidirectional-RNN-params": (  # KeyError 'forward'
        lambda: Bidirectional(GRUCell(3)).apply(
            params_of(RNN(GRUCell(3)), (-1, 4, 2)), ONES((1, 4, 2))
        ),
        r"^Bidirectional\(GRUCell\(3\)\): params must be a dict with keys "
        r"\['forward', 'backward'\]",
    ),
    "serial-Dense-in-serial": (
        lambda: serial(Dense(4), Dense(3)).apply(
            params_of(serial(Dense(4), Dense(2)), (-1, 5)), ONES((2, 5))
        ),
        r"^layer 1 \(Dense\(3\)\): Dense\(3\): params\['W'\] has shape \(4, 2\)",
    ),
    "serial-count": (  # "serial: 2 layers but params for dict"
        lambda: serial(Dense(4), Dense(3)).apply({}, ONES((2, 5))),
        r"^serial\(Dense\(4\), Dense\(3\)\): params must be a list with one entry per layer "
        r"\(2, from init\), got a dict$",
    ),
    "parallel-count": (  # "2 branches but params list"
        lambda: parallel(Dense(2), Dense(2)).apply([{}], (ONES((1, 2)), ONES((1, 2)))),
        r"^parallel\(Dense\(2\), Dense\(2\)\): params must be a list with one entry per "
        r"branch \(2, from init\), got a list of 1$",
    ),
}


@pytest.mark.parametrize("case", sorted(WRONG_PARAMS))
def test_wrong_params_are_named(case):
    call, message = WRONG_PARAMS[case]
    with pytest.raises(ParamsError, match=message):  # a ValueError: the params are the culprit
        call()


def test_a_wrong_input_is_still_named_as_the_input():
    # params that fit the layer: x is the culprit, as before (a ValueError, no ParamsError)
    with pytest.raises(
        ValueError, match=r"^Dense\(3\): expected input of shape \(\.\.\., 4\)"
    ) as e:
        Dense(3).apply(params_of(Dense(3), (-1, 4)), ONES((2, 5)))
    assert not isinstance(e.value, ParamsError)
    with pytest.raises(
        ValueError, match=r"^Conv\(3, 2\): expected input of shape \(B, W, 2\)"
    ) as e:
        Conv(3, 2).apply(params_of(Conv(3, 2), (-1, 5, 2)), ONES((1, 5, 4)))
    assert not isinstance(e.value, ParamsError)


def test_make_loss_fn_refuses_the_params_of_another_model():
    model, other = serial(Dense(4), Dense(3)), serial(Dense(4), Dense(2))
    loss_fn = nnjax.make_loss_fn(model, "softmax_cross_entropy")
    batch = (ONES((2, 5)), jnp.array([0, 1]))
    with pytest.raises(ValueError, match=r"Dense\(3\): params\['W'\] has shape \(4, 2\)"):
        jax.jit(loss_fn)(params_of(other, (-1, 5)), batch)
    assert np.isfinite(jax.jit(loss_fn)(params_of(model, (-1, 5)), batch))


def test_batch_norm_train_must_be_a_bool():
    bn, x = BatchNorm(), jnp.arange(8.0).reshape(4, 2)
    _, p, state = init_model(bn, K, (-1, 2))
    with pytest.raises(ValueError, match=r"^BatchNorm: train must be True or False, got 'False'"):
        bn.apply(p, x, state=state, train="False")  # ran in training mode
    net = serial(Dense(2), BatchNorm())
    _, p, state = init_model(net, K, (-1, 2))
    with pytest.raises(ValueError, match=r"^layer 1 \(BatchNorm\): BatchNorm: train must be"):
        net.apply(p, x, state=state, train="False")
    _, new = bn.apply(p[1], x, state=state[1], train=np.bool_(False))
    assert new is state[1]


def test_array_likes_are_taken_and_branch_tuples_refused():
    for layer, shape in [(Dense(3), (-1, 2)), (LayerNorm(), (-1, 2)), (GRUCell(3), (-1, 2))]:
        p = params_of(layer, shape)  # a list used to give "'list' object has no attribute"
        np.testing.assert_allclose(
            layer.apply(p, [[1.0, 2.0]]), layer.apply(p, jnp.array([[1.0, 2.0]]))
        )
    conv, x = Conv(2, 2), [[[1.0], [2.0], [3.0]]]
    p = params_of(conv, (-1, 3, 1))
    np.testing.assert_allclose(conv.apply(p, x), conv.apply(p, jnp.array(x)))
    p = params_of(Dense(3), (-1, 2))
    with pytest.raises(ValueError, match=r"^Dense\(3\): expected an array, got a tuple of 2 arr"):
        Dense(3).apply(p, (ONES((1, 2)), ONES((1, 2))))
    with pytest.raises(ValueError, match=r"^LayerNorm: expected an array, got list"):
        LayerNorm().apply(params_of(LayerNorm(), (-1, 2)), [[1.0, 2.0], [3.0]])


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: Flatten().init(K, (-1, -1, 3)), r"^Flatten: the sizes after the batch axis"),
        (lambda: Reshape((3,)).init(K, (-1, -1, -1, 3)), r"^Reshape\(\(3,\)\): the sizes after"),
        (lambda: MaxPool(2).init(K, (-1, 4, 0)), r"^MaxPool\(2\): input channels must be >= 1"),
        (lambda: MaxPool(2).apply({}, ONES((1, 4, 0))), r"^MaxPool\(2\): input channels"),
        (lambda: GlobalAvgPool().init(K, (-1, 4, 0)), r"^GlobalAvgPool: input channels must be"),
        (lambda: GlobalAvgPool().apply({}, ONES((1, 4, 0))), r"^GlobalAvgPool: input channels"),
        (lambda: Embedding(5, 3).init(K, (-1, -3)), r"^Embedding\(5, 3\): input_shape sizes"),
        (lambda: Dense(3).init(K, (-1, -2, 4)), r"^Dense\(3\): input_shape sizes must be >= 0"),
        (lambda: Reshape(()), r"^Reshape: shape must hold at least one size, got \(\)"),
    ],
)
def test_shapes_init_cannot_mean_are_refused(call, message):
    with pytest.raises(ValueError, match=message):
        call()


# Layers with params, and an input shape.
LAYERS = [
    (Dense(3), (2, 4)),
    (Conv(4, 2, groups=2), (2, 5, 2)),
    (ConvTranspose(2, (2, 2), strides=2), (2, 3, 3, 1)),
    (Embedding(5, 3), (2, 4)),
    (LayerNorm(), (2, 3)),
    (BatchNorm(), (4, 3)),
    (GRUCell(3), (2, 2)),
    (RNN(LSTMCell(3), return_sequences=True), (2, 4, 2)),
    (Bidirectional(SimpleRNNCell(2)), (2, 4, 2)),
    (serial(Conv(2, 2), Flatten(), Dense(2)), (2, 5, 1)),
]


def _x(layer, shape):
    if layer.name.startswith("Embedding"):
        return jnp.arange(np.prod(shape)).reshape(shape) % 5
    return jax.random.normal(jax.random.key(1), shape)


def _run(layer, params, state, x):
    return apply_model(layer, params, state, x, train=layer.stateful)[0]


@pytest.mark.parametrize("layer, shape", LAYERS, ids=[layer.name for layer, _ in LAYERS])
def test_right_params_pass_under_jit_vmap_and_grad(layer, shape):
    x = _x(layer, shape)
    # init, vmap and grad run compiled (once each; op by op they took half the test's time):
    # apply's checks see the same tracers of vmap and grad either way
    init = jax.jit(lambda k: init_model(layer, k, (-1, *shape[1:]))[1:])
    inits = [init(k) for k in jax.random.split(K, 2)]
    params = [p for p, _ in inits]
    state = inits[0][1]
    ys = [_run(layer, p, state, x) for p in params]
    # jit with the params as arguments
    np.testing.assert_allclose(
        jax.jit(lambda p, s, x: _run(layer, p, s, x))(params[0], state, x),
        ys[0],
        rtol=1e-5,
        atol=1e-6,
    )
    # vmap over stacked params (nnjax's runs over seeds): apply sees the unbatched shapes
    stacked = jax.tree.map(lambda *a: jnp.stack(a), *params)
    y_v = jax.jit(jax.vmap(lambda p: _run(layer, p, state, x)))(stacked)
    for i in range(2):
        np.testing.assert_allclose(y_v[i], ys[i], rtol=1e-5, atol=1e-6)
    # grad through apply
    grads = jax.jit(jax.grad(lambda p: jnp.sum(_run(layer, p, state, x) ** 2)))(params[0])
    assert jax.tree.structure(grads) == jax.tree.structure(params[0])
    assert all(np.isfinite(g).all() for g in jax.tree.leaves(grads))
