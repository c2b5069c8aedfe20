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
