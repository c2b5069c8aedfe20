"""Normalisation and the stateful protocol: LayerNorm/BatchNorm values, running statistics in
evaluation, PyTorch's BatchNorm1d/2d over 10 steps, state threading through combinators."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import nnjax
from nnjax.layers import (
    BatchNorm,
    Conv,
    Dense,
    Flatten,
    LayerNorm,
    apply_model,
    init_model,
    parallel,
    residual,
    serial,
)
from nnjax.verify import batch_norm_steps

KEY = jax.random.key(0)


def test_layer_norm_normalises_each_example_over_its_last_axis():
    x = jax.random.normal(KEY, (4, 3, 6)) * 3 + 2
    _, p = LayerNorm().init(KEY, x.shape)
    y = LayerNorm().apply(p, x)
    np.testing.assert_allclose(y.mean(-1), 0, atol=1e-5)
    np.testing.assert_allclose(y.var(-1), 1 / (1 + 1e-5 / x.var(-1)), rtol=1e-4)
    p = {"scale": jnp.full(6, 2.0), "offset": jnp.full(6, -1.0)}
    np.testing.assert_allclose(LayerNorm().apply(p, x), 2 * y - 1, rtol=1e-5, atol=1e-5)


def test_batch_norm_train_uses_the_batch_eval_uses_the_running_statistics():
    bn = BatchNorm(momentum=0.5)
    x = jax.random.normal(KEY, (16, 3)) * 4 + 10
    _, p, state = bn.init(KEY, x.shape)
    assert state["mean"].tolist() == [0, 0, 0] and state["var"].tolist() == [1, 1, 1]
    y, new = bn.apply(p, x, state=state, train=True)
    np.testing.assert_allclose(y.mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(new["mean"], 0.5 * x.mean(0), rtol=1e-6)
    np.testing.assert_allclose(new["var"], 0.5 + 0.5 * x.var(0, ddof=1), rtol=1e-5)
    # evaluation: the running statistics, state unchanged, whatever the batch
    y_eval, same = bn.apply(p, x, state=new, train=False)
    assert same is new
    np.testing.assert_allclose(y_eval, (x - new["mean"]) / jnp.sqrt(new["var"] + 1e-5), rtol=1e-5)
    one = bn.apply(p, x[:1], state=new)[0]
    np.testing.assert_allclose(one, y_eval[:1], rtol=1e-6)  # no batch dependence
    assert not np.allclose(y_eval, y, atol=1e-2)
    # training mode ignores the running statistics for its output
    y2, _ = bn.apply(p, x, state={"mean": new["mean"] + 5, "var": new["var"] * 3}, train=True)
    np.testing.assert_allclose(y2, y, rtol=1e-6)


def test_batch_norm_errors():
    bn = BatchNorm()
    _, p, state = bn.init(KEY, (4, 3))
    with pytest.raises(ValueError, match="state must be the .* dict from init"):
        bn.apply(p, jnp.ones((4, 3)))
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        bn.apply(p, jnp.ones((1, 3)), state=state, train=True)
    with pytest.raises(ValueError, match=r"expected input of shape \(\.\.\., 3\), got \(4, 5\)"):
        bn.apply(p, jnp.ones((4, 5)), state=state)
    with pytest.raises(ValueError, match="momentum must be in"):
        BatchNorm(momentum=1.5)
    with pytest.raises(ValueError, match="eps must be a number > 0"):
        LayerNorm(eps=0)


def test_state_threads_through_serial_parallel_and_residual():
    net = serial(Dense(4), BatchNorm(), residual(serial(Dense(4), BatchNorm())), Dense(2))
    assert net.stateful
    out_shape, params, state = init_model(net, KEY, (8, 3))
    assert out_shape == (8, 2) and state[0] == () and state[3] == ()
    assert (
        set(state[1]) == {"mean", "var"}
        and state[2][0] == ()
        and set(state[2][1]) == {"mean", "var"}
    )
    x = jax.random.normal(KEY, (8, 3))
    y, new = apply_model(net, params, state, x, train=True)
    assert y.shape == (8, 2)
    assert not np.allclose(new[1]["mean"], state[1]["mean"])
    assert not np.allclose(new[2][1]["var"], state[2][1]["var"])
    y_eval, same = apply_model(net, params, new, x)
    assert jax.tree.all(jax.tree.map(lambda a, b: bool((a == b).all()), same, new))
    with pytest.raises(ValueError, match="state must be a list with 4 entries"):
        net.apply(params, x)
    two = parallel(BatchNorm(), Dense(2))
    _, p2, s2 = init_model(two, KEY, ((8, 3), (8, 3)))
    (a, b), s2_new = two.apply(p2, (x, x), state=s2, train=True)
    assert s2_new[1] == () and a.shape == (8, 3) and b.shape == (8, 2)


def test_stateless_models_and_plain_callables_pay_nothing():
    net = nnjax.mlp([4, 2])
    assert not net.stateful
    out_shape, params, state = init_model(net, KEY, (5, 3))
    assert state == ()
    x = jnp.ones((5, 3))
    y, s = apply_model(net, params, state, x, train=True)
    np.testing.assert_array_equal(y, net.apply(params, x))
    assert s == ()
    fn = lambda p, x, *, key=None: x * p
    y, s = apply_model(fn, 2.0, "s", x)
    assert s == "s" and (y == 2.0).all()


def _torch_batch_norm_run(xs_channels_last, momentum, eps):
    """torch.nn.BatchNorm1d/2d (float64) in training mode over the batches; channels moved
    to axis 1 as PyTorch wants them and back."""
    torch = pytest.importorskip("torch")
    ndim = xs_channels_last.ndim - 1
    C = xs_channels_last.shape[-1]
    bn = (torch.nn.BatchNorm1d if ndim in (2, 3) else torch.nn.BatchNorm2d)(
        C, eps=eps, momentum=momentum, dtype=torch.float64
    )
    outs, means, vars_ = [], [], []
    for x in xs_channels_last:
        xt = torch.from_numpy(np.moveaxis(x, -1, 1).copy())
        outs.append(np.moveaxis(bn(xt).detach().numpy(), 1, -1))
        means.append(bn.running_mean.numpy().copy())
        vars_.append(bn.running_var.numpy().copy())
    bn.eval()
    x_eval = torch.from_numpy(np.moveaxis(xs_channels_last[0], -1, 1).copy())
    y_eval = np.moveaxis(bn(x_eval).detach().numpy(), 1, -1)
    return np.stack(outs), np.stack(means), np.stack(vars_), y_eval


@pytest.mark.parametrize("shape", [(6, 4), (5, 4, 7), (3, 5, 6, 4)], ids=["1d-BC", "1d-BLC", "2d"])
def test_batch_norm_equals_torch_over_10_steps(shape):
    rng = np.random.default_rng(1)
    xs = rng.normal(2.0, 3.0, (10, *shape))
    momentum, eps = 0.3, 1e-3
    t_out, t_mean, t_var, t_eval = _torch_batch_norm_run(xs, momentum, eps)
    outs, states = batch_norm_steps(xs, momentum=momentum, eps=eps)
    np.testing.assert_allclose(outs, t_out, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(states["mean"], t_mean, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(states["var"], t_var, rtol=1e-10, atol=1e-12)
    with jax.enable_x64(True):
        bn = BatchNorm(momentum=momentum, eps=eps)
        _, p, _ = bn.init(KEY, shape)
        final = {k: v[-1] for k, v in states.items()}
        y_eval, _ = bn.apply(p, jnp.asarray(xs[0]), state=final)
    np.testing.assert_allclose(y_eval, t_eval, rtol=1e-10, atol=1e-12)


def test_a_cnn_with_batch_norm_learns_digits():
    import optax

    ds = nnjax.data.load("digits")
    X, y = jnp.asarray(ds.X_train[:512]), jnp.asarray(ds.y_train[:512])
    net = serial(
        nnjax.layers.Reshape((8, 8, 1)),
        Conv(8, 3, padding="SAME"),
        BatchNorm(),
        nnjax.layers.Activation("relu"),
        Flatten(),
        Dense(10),
    )
    _, params, state = init_model(net, KEY, (-1, 64))
    opt = optax.adam(1e-2)

    def loss(p, s, xb, yb):
        logits, s = apply_model(net, p, s, xb, train=True)
        return nnjax.losses.softmax_cross_entropy(logits, yb), s

    @jax.jit
    def epoch(carry, order):
        def step(carry, idx):
            p, s, o = carry
            (value, s), g = jax.value_and_grad(loss, has_aux=True)(p, s, X[idx], y[idx])
            u, o = opt.update(g, o, p)
            return (optax.apply_updates(p, u), s, o), value

        return jax.lax.scan(step, carry, order.reshape(-1, 64))

    carry = (params, state, opt.init(params))
    for e in range(8):
        carry, losses = epoch(carry, jax.random.permutation(jax.random.key(e), 512))
    params, state, _ = carry
    logits, _ = apply_model(net, params, state, ds.X_test)  # evaluation: running statistics
    accuracy = float((logits.argmax(-1) == ds.y_test).mean())
    assert float(losses[-1]) < 0.2 and accuracy > 0.9, (float(losses[-1]), accuracy)


@pytest.mark.parametrize(
    "make, message",
    [
        (
            lambda: BatchNorm().init(KEY, (4, 0)),
            "BatchNorm: channels C must be >= 1, got shape (4, 0)",
        ),
        (
            lambda: LayerNorm().init(KEY, (4, 0)),
            "LayerNorm: channels C must be >= 1, got shape (4, 0)",
        ),
        (
            lambda: LayerNorm(use_scale=False, use_offset=False).apply({}, jnp.ones((4, 0))),
            "LayerNorm: expected input of shape (..., C >= 1), got (4, 0)",
        ),
        (
            lambda: BatchNorm(eps=float("inf")),
            "BatchNorm: eps must be a number > 0 and finite, got inf",
        ),
        (lambda: LayerNorm(eps=np.nan), "LayerNorm: eps must be a number > 0 and finite, got nan"),
        (lambda: BatchNorm(momentum=True), "BatchNorm: momentum must be in [0, 1], got True"),
        (
            lambda: LayerNorm(dtype="int8"),
            "LayerNorm: dtype must be float16, bfloat16, float32 or float64 (None: float32, "
            "float64 under x64), got int8",
        ),
        (
            lambda: BatchNorm(dtype="int32"),
            "BatchNorm: dtype must be float16, bfloat16, float32 or float64 (None: float32, "
            "float64 under x64), got int32",
        ),
    ],
)
def test_norm_options_and_empty_channels_are_named_errors(make, message):
    with pytest.raises(ValueError) as err:
        make()
    assert str(err.value) == message


def test_norm_options_take_numpy_real_scalars():
    x = np.random.default_rng(0).normal(2.0, 3.0, (8, 3))
    bn = BatchNorm(momentum=np.float32(0.25), eps=np.float64(1e-3))
    assert bn.spec[1]["momentum"] == 0.25 and type(bn.spec[1]["eps"]) is float
    _, p, state = bn.init(KEY, x.shape)
    y, new = bn.apply(p, jnp.asarray(x), state=state, train=True)
    np.testing.assert_allclose(y, (x - x.mean(0)) / np.sqrt(x.var(0) + 1e-3), atol=1e-5)
    np.testing.assert_allclose(new["mean"], 0.25 * x.mean(0), rtol=1e-5)
    ln = LayerNorm(eps=np.float32(0.5))
    _, p = ln.init(KEY, x.shape)
    want = (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + 0.5)
    np.testing.assert_allclose(ln.apply(p, jnp.asarray(x)), want, atol=1e-5)


@pytest.mark.parametrize("size", [1, 4])
@pytest.mark.parametrize("train", [False, True])
def test_batch_norm_state_must_have_one_entry_per_channel(size, train):
    # (1,) used to broadcast silently (train=True even returned a (5,) state), (4,) failed deep
    bn = BatchNorm()
    _, p, _ = bn.init(KEY, (4, 5))
    state = {"mean": jnp.zeros(size), "var": jnp.ones(size)}
    with pytest.raises(ValueError) as err:
        bn.apply(p, jnp.ones((4, 5)), state=state, train=train)
    assert str(err.value) == (
        f"BatchNorm: state 'mean' must have shape (5,), one entry per channel of the input "
        f"(4, 5), got ({size},)"
    )
    no_params = BatchNorm(use_scale=False, use_offset=False)
    state = {"mean": jnp.zeros(5), "var": jnp.ones(size)}
    with pytest.raises(
        ValueError, match=rf"state 'var' must have shape \(5,\), .* got \({size},\)"
    ):
        no_params.apply({}, jnp.ones((4, 5)), state=state, train=train)


def _running_stats(xs, momentum):
    """NumPy oracle: PyTorch's running mean and unbiased variance after each batch of xs."""
    mean, var, out = np.zeros(xs.shape[-1]), np.ones(xs.shape[-1]), []
    for x in xs:
        flat = x.reshape(-1, x.shape[-1])
        mean = (1 - momentum) * mean + momentum * flat.mean(0)
        var = (1 - momentum) * var + momentum * flat.var(0, ddof=1)
        out.append((mean, var))
    return out


@pytest.mark.parametrize(
    "state_dtype, x_dtype, x64, rtol",
    [("bfloat16", "float32", False, 2e-2), ("float32", "float64", True, 1e-6)],
)
def test_batch_norm_state_keeps_its_dtype_as_a_scan_carry(state_dtype, x_dtype, x64, rtol):
    # the update used to promote the state to the input's dtype: a scan (fit's loop) refused
    # the carry, "carry input and carry output must have equal types"
    xs = np.random.default_rng(0).normal(size=(3, 6, 2)) * 2 + 1
    with jax.enable_x64(x64):
        bn = BatchNorm(momentum=0.3, dtype=state_dtype)
        _, p, state = bn.init(KEY, (-1, 2))

        def step(state, x):
            y, state = bn.apply(p, x, state=state, train=True)
            return state, state

        final, states = jax.lax.scan(step, state, jnp.asarray(xs, x_dtype))
        assert {v.dtype.name for v in jax.tree.leaves(final)} == {state_dtype}
        for i, (mean, var) in enumerate(_running_stats(xs, 0.3)):
            np.testing.assert_allclose(np.float64(states["mean"][i]), mean, rtol=rtol, atol=rtol)
            np.testing.assert_allclose(np.float64(states["var"][i]), var, rtol=rtol)


def test_fit_trains_a_model_with_bfloat16_batch_norm_statistics():
    model = serial(Dense(4), BatchNorm(dtype="bfloat16"), Dense(2))
    _, params, state = init_model(model, KEY, (-1, 3))
    X = np.random.default_rng(1).normal(size=(32, 3)).astype(np.float32)
    res = nnjax.fit(model, params, X, (X[:, 0] > 0).astype(np.int32), optimizer="sgd",
                    learning_rate=0.1, loss="softmax_cross_entropy", epochs=2, batch_size=8,
                    state=state)  # fmt: skip
    assert jax.tree.map(lambda v: v.dtype.name, res.state[1]) == {
        "mean": "bfloat16",
        "var": "bfloat16",
    }
