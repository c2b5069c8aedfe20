"""Mutation audit of the model builders, spec round trips, optimizer option checks, the
Flax interop and config_diff: each test here failed with a small deliberate fault that the
rest of the suite let through, and passes on the code as it is."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from nnjax import interop
from nnjax import runconfig as rc
from nnjax.layers import (
    RNN,
    Activation,
    Bidirectional,
    Dense,
    GRUCell,
    LSTMCell,
    Reshape,
    SimpleRNNCell,
    from_spec,
    parallel,
    serial,
)
from nnjax.models import cnn, layer_spec, logistic_regression, mlp, resmlp
from nnjax.optim import get_optimizer, injectable_optimizer, make_schedule
from nnjax.optim_checks import check_learning_rate

KEY = jax.random.key(0)


def _var_ratio(w, target: float) -> float:
    return float(np.var(np.asarray(w, np.float64))) / target


# ---- models ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "activation, he",
    [(a, True) for a in ("relu", "leaky_relu", "elu", "gelu", "silu", "softplus")]
    + [(a, False) for a in ("tanh", "sigmoid", "identity")],
)
def test_mlp_default_w_init_is_he_for_every_relu_like_name(activation, he):
    # W (300, 100): he var 2/300, glorot 2/400; 30000 draws give the variance to ~1%
    W = mlp([100], activation).init(KEY, (-1, 300))[1][0]["W"]
    assert abs(_var_ratio(W, 2 / 300 if he else 2 / 400) - 1) < 0.05


def test_cnn_convolutions_and_resmlp_hidden_layers_start_he_normal():
    params = cnn(input_shape=(8, 8, 1)).init(KEY, (-1, 64))[1]
    kernels = [p["W"] for p in params if isinstance(p, dict) and "W" in p][:3]
    assert [k.shape for k in kernels] == [(5, 5, 1, 25), (3, 3, 25, 25), (3, 3, 25, 25)]
    for k in kernels[1:]:  # fan_in 9 * 25: he 2/225, glorot 2/450
        assert abs(_var_ratio(k, 2 / 225) - 1) < 0.1
    readout = cnn(125).init(KEY, (-1, 40))[1][-1]["W"]  # (125, 125): glorot 2/250, not he
    assert abs(_var_ratio(readout, 2 / 250) - 1) < 0.1
    p = resmlp(200, hidden=200).init(KEY, (-1, 300))[1]  # [W1, {}, [W2, {}], W3]
    assert abs(_var_ratio(p[0]["W"], 2 / 300) - 1) < 0.05
    assert abs(_var_ratio(p[2][0]["W"], 2 / 200) - 1) < 0.05  # he, not glorot's 2/400
    assert abs(_var_ratio(p[3]["W"], 2 / 400) - 1) < 0.05  # the read-out: glorot


def test_resmlp_dropout_follows_each_of_the_two_hidden_layers():
    model = resmlp(3, hidden=4, dropout=0.5)
    names = [s[0] for s in layer_spec(model.spec)[1]["layers"]]
    assert names == ["Dense", "Activation", "Dropout", "residual", "Dropout", "Dense"]
    params = model.init(KEY, (-1, 5))[1]
    assert params[2] == {} and params[4] == {} and len(params) == 6
    # with a key the dropout is on: the outputs move
    x = jax.random.normal(KEY, (256, 5))
    keep = model.apply(params, x, key=jax.random.key(3))
    assert not np.allclose(keep, model.apply(params, x))


def test_a_spec_without_dropout_has_no_dropout_field():
    # saved specs of runs without dropout read the same as before dropout existed
    assert "dropout" not in mlp([3]).spec[1] and "dropout" not in resmlp().spec[1]
    assert mlp([3], dropout=0.25).spec[1]["dropout"] == 0.25


def test_a_callable_w_init_makes_the_mlp_undescribable():
    def init(key, shape, dtype=jnp.float32):
        return jnp.ones(shape, dtype)

    assert mlp([3], W_init=init).spec is None
    assert mlp([3], W_init="he_uniform").spec[1]["W_init"] == "he_uniform"


def test_cnn_window_check_follows_the_padded_strided_sizes():
    # length 3 -> (3 + 2 * 1 - 1) // 2 + 1 = 3; the kernel 5 fits 3 + 2 * 1: accepted
    model = cnn(4, input_shape=(3, 1), kernel_sizes=(1, 5), strides=2, padding=1)
    out, _ = model.init(KEY, (-1, 3))
    assert tuple(out) == (-1, 4)
    with pytest.raises(ValueError) as e:
        cnn(input_shape=(3, 1), kernel_sizes=(1, 6), strides=2, padding=1)
    assert str(e.value) == (
        "cnn: kernel_sizes[1] = 6 is larger than its input: input_shape (3, 1) after 1 "
        "convolution(s) of stride 2 has spatial size (3,), (5,) with padding 1; use smaller "
        "kernels, more padding or a larger input"
    )


# ---- specs rebuilt: every option survives ---------------------------------------------


def _round_trip(layer, shape):
    rebuilt = from_spec(json.loads(json.dumps(layer.spec)))
    assert json.loads(json.dumps(rebuilt.spec)) == json.loads(json.dumps(layer.spec))
    out, params = layer.init(KEY, shape)[:2]
    out2, params2 = rebuilt.init(KEY, shape)[:2]
    assert out2 == out
    jax.tree.map(np.testing.assert_array_equal, params2, params)
    return rebuilt, params


def test_parallel_and_bidirectional_with_its_own_backward_cell_rebuild_from_their_specs():
    par = parallel(Dense(3, W_init="he_uniform"), Dense(2, use_bias=False))
    rebuilt, params = _round_trip(par, ((-1, 4), (-1, 5)))
    xs = (jnp.ones((2, 4)), jnp.ones((2, 5)))
    for a, b in zip(rebuilt.apply(params, xs), par.apply(params, xs)):
        np.testing.assert_array_equal(a, b)
    # a GRU forward and an LSTM backward, summed: the backward cell is no copy of the first
    bi = serial(Reshape((4, 1)), Bidirectional(GRUCell(3), LSTMCell(3), merge="sum"))
    rebuilt, params = _round_trip(bi, (-1, 4))
    assert set(params[1]["backward"]) == set(LSTMCell(3).init(KEY, (-1, 1))[1])
    x = jax.random.normal(KEY, (2, 4))
    np.testing.assert_array_equal(rebuilt.apply(params, x), bi.apply(params, x))


def test_rnn_and_logistic_regression_without_bias_rebuild_as_built():
    rnn = serial(Reshape((4, 1)), RNN(SimpleRNNCell(3), return_sequences=True, reverse=True))
    rebuilt, params = _round_trip(rnn, (-1, 4))
    x = jax.random.normal(KEY, (2, 4))
    np.testing.assert_array_equal(rebuilt.apply(params, x), rnn.apply(params, x))
    _, params = _round_trip(logistic_regression(3, use_bias=False), (-1, 3))
    assert set(params) == {"W"}


def test_from_spec_leaves_the_spec_it_is_given_as_it_was():
    model = serial(Dense(2), Activation("relu"), Dense(1))
    spec = model.spec
    before = json.dumps(spec)
    from_spec(spec)
    assert json.dumps(spec) == before and json.dumps(model.spec) == before


# ---- optimizer options: the ends of each range, the errors' exact words ---------------


def test_a_range_that_includes_0_takes_0():
    # momentum, b1 and decay are in [0, 1): momentum 0 is plain SGD, theta - 0.1 g
    import optax

    params, grads = {"w": jnp.array([1.0, -2.0])}, {"w": jnp.array([0.5, 3.0])}
    for opt in (get_optimizer("momentum", 0.1, momentum=0.0), get_optimizer("sgd", 0.1)):
        updates, _ = opt.update(grads, opt.init(params), params)
        np.testing.assert_allclose(optax.apply_updates(params, updates)["w"], [0.95, -2.3])
    get_optimizer("adam", 0.1, b1=0.0)
    get_optimizer("rmsprop", 0.1, decay=0.0)


def test_a_hyperparameter_that_is_no_number_is_named_with_its_type():
    with pytest.raises(ValueError) as e:
        get_optimizer("momentum", 0.1, momentum="0.9")
    assert str(e.value) == "momentum: momentum must be in [0, 1), got '0.9' (str, not a number)"


def test_an_injectable_optimizers_schedule_is_checked_at_step_0():
    with pytest.raises(ValueError) as e:
        injectable_optimizer("sgd", lambda count: jnp.nan)
    assert str(e.value) == (
        "learning_rate is a schedule, called by Optax as schedule(step) -> rate, whose rate "
        "must be one finite number >= 0; schedule(0) gave nan"
    )


def test_rates_are_checked_at_step_0_and_in_the_default_float():
    with pytest.raises(ValueError, match=r"schedule\(0\) gave Array\(nan"):  # nan at 0 only
        get_optimizer("sgd", lambda count: jnp.where(count == 0, jnp.nan, 0.1))
    with pytest.raises(ValueError) as e:
        injectable_optimizer("sgd", 1e-40)
    assert str(e.value) == (
        "learning_rate 1e-40 is 0 in float32, JAX's default float dtype (the smallest rate "
        "that is not: 1.175e-38), so no update would move the params; give a larger rate"
    )
    with pytest.raises(ValueError, match=r"^adam: eps 1e-40 is 0 in float32, JAX's default"):
        get_optimizer("adam", 1e-3, eps=1e-40)
    with jax.enable_x64(True):  # float64 holds 1e-40
        get_optimizer("adam", 1e-3, eps=1e-40)
    with pytest.raises(ValueError) as e:
        make_schedule("cosine", lambda count: 0.1, total_steps=3)
    assert str(e.value).startswith(
        "make_schedule: learning_rate must be one number, the peak rate eta_0, got the schedule "
    )
    assert str(e.value).endswith("; pass a schedule to get_optimizer as it is")


def test_the_largest_float32_is_a_finite_rate_and_one_step_past_it_is_not():
    largest = float(np.finfo(np.float32).max)
    check_learning_rate(largest, "float32")
    with pytest.raises(ValueError, match=r"learning_rate 3\.40282e\+38 is infinite in float32"):
        check_learning_rate(float(np.nextafter(largest, np.inf)), "float32")


def test_an_unknown_schedule_lists_the_valid_names():
    with pytest.raises(ValueError) as e:
        make_schedule("linear", 0.1, total_steps=3)
    assert str(e.value) == (
        "unknown schedule 'linear'; valid: constant, cosine, warmup-cosine, exponential"
    )


# ---- interop -----------------------------------------------------------------------


def test_from_linen_names_a_kernel_whose_width_is_not_the_modules():
    params = [{"W": jnp.ones((4, 6)), "b": jnp.zeros(6)}, {}, {"W": jnp.ones((6, 4))}]
    params[2]["b"] = jnp.zeros(4)
    module, v = interop.to_linen(params, "relu")
    v = {"params": {**v["params"], "Dense_1": {"kernel": jnp.ones((6, 3)), "bias": jnp.ones(3)}}}
    with pytest.raises(ValueError) as e:
        interop.from_linen(module, v)
    assert str(e.value) == (
        "from_linen: Dense_1 kernel has shape (6, 3): 3 outputs, but the module's features give 4"
    )


def test_from_linen_takes_the_variables_or_their_params_tree():
    params = [{"W": jnp.ones((2, 3)), "b": jnp.arange(3.0)}]
    module, v = interop.to_linen(params, "relu")
    for given in (v, v["params"]):
        got = interop.from_linen(module, given)
        np.testing.assert_array_equal(got[0]["b"], [0.0, 1.0, 2.0])


def test_from_nnx_refuses_a_model_with_biases_in_some_layers_only():
    rngs = nnx.Rngs(0)
    layers = [nnx.Linear(2, 3, rngs=rngs), nnx.Linear(3, 1, use_bias=False, rngs=rngs)]
    with pytest.raises(ValueError) as e:  # not the params without layer 0's bias
        interop.from_nnx(interop.NNXMLP(layers, jax.nn.relu))
    assert str(e.value) == (
        "from_nnx: either every layer has a bias or none does; layers [1] have none"
    )


def test_the_transposed_hint_comes_only_when_b_has_the_input_width():
    for b, hint in ((3, ""), (4, " (is W transposed?")):
        with pytest.raises(ValueError) as e:
            interop.to_nnx([{"W": jnp.ones((4, 7)), "b": jnp.zeros(b)}])
        assert str(e.value).startswith(f"interop: Dense 0 b has shape ({b},), expected (7,){hint}")
        assert ("transposed" in str(e.value)) == bool(hint)


def test_nested_lists_of_ints_are_read_as_float32_in_both_directions():
    params = [{"W": [[1, 0], [0, 2]], "b": [1, 2]}]  # lists of numbers, read as floats
    x = jnp.array([[1.0, 1.0]])
    module, v = interop.to_linen(params, "relu")
    assert v["params"]["Dense_0"]["kernel"].dtype == jnp.float32
    np.testing.assert_array_equal(module.apply(v, x), [[2.0, 4.0]])
    net = interop.to_nnx(params, "relu")
    assert net.layers[0].kernel[...].dtype == jnp.float32
    np.testing.assert_array_equal(net(x), [[2.0, 4.0]])
    with jax.enable_x64(True):  # lists are float32 whatever the default float
        module, v = interop.to_linen([{"W": [[0.1]]}], "relu")
        assert v["params"]["Dense_0"]["kernel"].dtype == jnp.float32


# ---- config_diff -------------------------------------------------------------------


def test_an_empty_section_added_or_removed_is_a_difference():
    assert rc.config_diff({"callbacks": {}}, {}) == [("callbacks", {}, rc.MISSING)]
    assert rc.config_diff({"a": {}}, {"a": {"b": 1}}) == [
        ("a", {}, rc.MISSING),
        ("a.b", rc.MISSING, 1),
    ]


def test_an_override_of_a_list_field_must_be_a_list():
    with pytest.raises(ValueError) as e:
        rc.apply_overrides({"hidden": [64, 32]}, {"hidden": 5})
    assert (
        str(e.value) == "override hidden=5: must be of type list, like the current value [64, 32]"
    )
    assert rc.apply_overrides({"hidden": (64, 32)}, {"hidden": [8]}) == {"hidden": [8]}
