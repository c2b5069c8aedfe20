"""Recurrent cells and RNN layers against PyTorch's (float64, copied weights), initial
states, directions, and errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nnjax.layers import (
    RNN,
    Bidirectional,
    Dense,
    GRUCell,
    LSTMCell,
    SimpleRNNCell,
    serial,
)

KEY = jax.random.key(0)
B, T, F, H = 3, 7, 2, 4


def _params_from_torch(module, suffix="", kind="GRUCell"):
    """nnjax params from a torch RNN module's weights: W = torch weight transposed; GRU keeps
    both biases, the others sum them."""
    get = lambda name: getattr(module, name + suffix).detach().numpy()
    p = {"W_i": get("weight_ih").T, "W_h": get("weight_hh").T}
    if kind == "GRUCell":
        p["b_i"], p["b_h"] = get("bias_ih"), get("bias_hh")
    else:
        p["b"] = get("bias_ih") + get("bias_hh")
    return p


@pytest.mark.parametrize("kind", ["SimpleRNNCell", "GRUCell", "LSTMCell"])
def test_cells_equal_torch_cells(kind):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    make = {
        "SimpleRNNCell": torch.nn.RNNCell,
        "GRUCell": torch.nn.GRUCell,
        "LSTMCell": torch.nn.LSTMCell,
    }[kind]
    cell_t = make(F, H, dtype=torch.float64)
    rng = np.random.default_rng(0)
    x, h, c = rng.normal(size=(B, F)), rng.normal(size=(B, H)), rng.normal(size=(B, H))
    cell = {"SimpleRNNCell": SimpleRNNCell, "GRUCell": GRUCell, "LSTMCell": LSTMCell}[kind](H)
    p = _params_from_torch(cell_t, kind=kind)
    carry = (h, c) if kind == "LSTMCell" else h
    with jax.enable_x64(True):
        y, new = cell.apply(p, x, initial_state=carry, return_carry=True)
    xt, ht, ct = (torch.from_numpy(a) for a in (x, h, c))
    if kind == "LSTMCell":
        h_t, c_t = cell_t(xt, (ht, ct))
        np.testing.assert_allclose(new[1], c_t.detach().numpy(), rtol=1e-12)
    else:
        h_t = cell_t(xt, ht)
    np.testing.assert_allclose(y, h_t.detach().numpy(), rtol=1e-12)


@pytest.mark.parametrize("kind", ["GRU", "LSTM"])
def test_bidirectional_sequences_equal_torch_bidirectional(kind):
    torch = pytest.importorskip("torch")
    torch.manual_seed(1)
    net_t = getattr(torch.nn, kind)(F, H, batch_first=True, bidirectional=True, dtype=torch.float64)
    cell = GRUCell(H) if kind == "GRU" else LSTMCell(H)
    ckind = "GRUCell" if kind == "GRU" else "LSTMCell"
    p = {
        "forward": _params_from_torch(net_t, "_l0", ckind),
        "backward": _params_from_torch(net_t, "_l0_reverse", ckind),
    }
    rng = np.random.default_rng(2)
    x, h0 = rng.normal(size=(B, T, F)), rng.normal(size=(2, B, H))
    layer = Bidirectional(cell, return_sequences=True)
    if kind == "GRU":
        out_t, _ = net_t(torch.from_numpy(x), torch.from_numpy(h0))
        init = (h0[0], h0[1])
    else:
        c0 = rng.normal(size=(2, B, H))
        out_t, _ = net_t(torch.from_numpy(x), (torch.from_numpy(h0), torch.from_numpy(c0)))
        init = ((h0[0], c0[0]), (h0[1], c0[1]))
    with jax.enable_x64(True):
        y = layer.apply(p, x, initial_state=init)
    np.testing.assert_allclose(y, out_t.detach().numpy(), rtol=1e-11, atol=1e-13)


def test_rnn_last_output_reverse_and_zero_initial_state():
    cell = GRUCell(H)
    _, p = cell.init(KEY, (B, F))
    x = jax.random.normal(KEY, (B, T, F))
    seq = RNN(cell, return_sequences=True).apply(p, x)
    np.testing.assert_allclose(RNN(cell).apply(p, x), seq[:, -1], rtol=1e-6)
    back = RNN(cell, return_sequences=True, reverse=True).apply(p, x)
    flipped = RNN(cell, return_sequences=True).apply(p, x[:, ::-1])
    np.testing.assert_allclose(back, flipped[:, ::-1], rtol=1e-6)
    np.testing.assert_allclose(RNN(cell, reverse=True).apply(p, x), back[:, 0], rtol=1e-6)
    zeros = jnp.zeros((B, H))
    np.testing.assert_allclose(RNN(cell).apply(p, x, initial_state=zeros), seq[:, -1], rtol=1e-6)
    # one step by hand: h_1 = cell(x_0, h_0 = 0)
    np.testing.assert_allclose(seq[:, 0], cell.apply(p, x[:, 0]), rtol=1e-6)


def test_rnn_works_under_jit_and_grad():
    net = serial(RNN(LSTMCell(H), return_sequences=True), RNN(SimpleRNNCell(3)), Dense(2))
    _, p = net.init(KEY, (B, T, F))
    x = jax.random.normal(KEY, (B, T, F))
    np.testing.assert_allclose(jax.jit(net.apply)(p, x), net.apply(p, x), rtol=1e-5, atol=1e-6)
    g = jax.grad(lambda p: net.apply(p, x).sum())(p)
    assert all(bool(jnp.isfinite(leaf).all()) for leaf in jax.tree.leaves(g))


def test_recurrent_errors_name_layer_and_shapes():
    net = serial(Dense(2), RNN(GRUCell(H)))
    with pytest.raises(
        ValueError,
        match=r"layer 1 \(RNN\(GRUCell\(4\)\)\): .*at least 3 dims, got \(3, 2\)",
    ):
        net.init(KEY, (3, 5))
    with pytest.raises(ValueError, match=r"with T >= 1, got \(3, 0, 2\)"):
        RNN(GRUCell(H)).init(KEY, (B, 0, F))
    layer = RNN(LSTMCell(H))
    _, p = layer.init(KEY, (B, T, F))
    with pytest.raises(ValueError, match=r"initial_state must be \(h, c\), each \(3, 4\)"):
        layer.apply(p, jnp.ones((B, T, F)), initial_state=jnp.zeros((B, H)))
    with pytest.raises(ValueError, match=r"expected input of shape \(\.\.\., 2\), got \(3, 5\)"):
        layer.apply(p, jnp.ones((B, T, 5)))
    with pytest.raises(ValueError, match="Dense\\(3\\) is not a recurrent cell"):
        RNN(Dense(3))
    with pytest.raises(ValueError, match="merge must be 'concat' or 'sum'"):
        Bidirectional(GRUCell(3), merge="mean")
    with pytest.raises(ValueError, match="hidden must be a positive int"):
        GRUCell(0)


@pytest.mark.parametrize("cell", [SimpleRNNCell, GRUCell, LSTMCell])
def test_cells_refuse_zero_input_features(cell):
    with pytest.raises(ValueError) as err:
        RNN(cell(3)).init(KEY, (-1, 4, 0))  # was a bare ZeroDivisionError
    n = cell.__name__
    assert str(err.value) == f"RNN({n}(3)): {n}(3): input features must be >= 1, got shape (-1, 0)"


@pytest.mark.parametrize("dtype", [jnp.int32, jnp.float16, jnp.float32])
@pytest.mark.parametrize("jit", [False, True])
def test_rnn_initial_state_is_cast_to_the_carry_dtype(dtype, jit):
    # h_t = tanh(x_t W_i + h_{t-1} W_h + b) in NumPy, from h_0 = 1 given as int32/float16
    layer = RNN(SimpleRNNCell(H), return_sequences=True)
    _, p = layer.init(KEY, (B, T, F))
    x = np.asarray(jax.random.normal(KEY, (B, T, F)))
    apply = jax.jit(layer.apply) if jit else layer.apply
    y = apply(p, x, initial_state=jnp.ones((B, H), dtype))
    W_i, W_h, b = (np.asarray(p[k], np.float64) for k in ("W_i", "W_h", "b"))
    h, want = np.ones((B, H)), []
    for t in range(T):
        h = np.tanh(x[:, t] @ W_i + h @ W_h + b)
        want.append(h)
    assert y.dtype == jnp.float32
    np.testing.assert_allclose(y, np.stack(want, 1), rtol=1e-5, atol=1e-6)


def test_lstm_initial_state_as_a_list_and_wrong_counts_are_named():
    cell = LSTMCell(H)
    layer = RNN(cell)
    _, p = layer.init(KEY, (B, T, F))
    x = jax.random.normal(KEY, (B, T, F))
    h0, c0 = jax.random.normal(jax.random.key(1), (2, B, H))
    carry, want = (h0, c0), None
    for t in range(T):  # the cell one step at a time (the cell equals torch's)
        want, carry = cell.apply(p, x[:, t], initial_state=carry, return_carry=True)
    np.testing.assert_allclose(layer.apply(p, x, initial_state=[h0, c0]), want, rtol=1e-5)
    np.testing.assert_allclose(
        layer.apply(p, x, initial_state=[h0.astype(jnp.float16), c0]), want, rtol=1e-2, atol=1e-3
    )
    with pytest.raises(ValueError) as err:
        layer.apply(p, x, initial_state=[h0])
    assert str(err.value) == (
        "RNN(LSTMCell(4)): LSTMCell(4): initial_state must be (h, c), each (3, 4), "
        "got a list of [(3, 4)]"
    )
    with pytest.raises(
        ValueError, match=r"\(h, c\), each \(3, 4\), got an array of shape \(3, 4\)$"
    ):
        layer.apply(p, x, initial_state=h0)
    simple = RNN(SimpleRNNCell(H))
    with pytest.raises(
        ValueError, match=r"must be h of shape \(3, 4\), got a tuple of \[\(3, 4\)\]"
    ):
        simple.apply(simple.init(KEY, (B, T, F))[1], x, initial_state=(h0,))


def test_bidirectional_initial_state_must_be_a_pair():
    layer = Bidirectional(SimpleRNNCell(H))
    _, p = layer.init(KEY, (B, T, F))
    x = jnp.ones((B, T, F))
    h = jnp.zeros((B, H))
    with pytest.raises(ValueError) as err:
        layer.apply(p, x, initial_state=[h, h, h])
    assert str(err.value) == (
        "Bidirectional(SimpleRNNCell(4)): initial_state must be None or a pair (forward carry, "
        "backward carry), got 3 entries"
    )
    with pytest.raises(ValueError, match=r"a pair .*, got an array of shape \(2, 3, 4\)"):
        layer.apply(p, x, initial_state=jnp.zeros((2, B, H)))
    np.testing.assert_allclose(
        layer.apply(p, x, initial_state=[h, h.astype(jnp.int32)]), layer.apply(p, x), rtol=1e-6
    )


def test_cell_dtype_and_bias_initializer_are_checked():
    with pytest.raises(ValueError, match=r"^GRUCell\(3\): dtype must be float16, .*got int32$"):
        GRUCell(3, dtype="int32")
    with pytest.raises(ValueError, match=r"^LSTMCell\(3\): b_init 'lecun_normal' needs a weight"):
        LSTMCell(3, b_init="lecun_normal")
