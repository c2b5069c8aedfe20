"""Recurrent cells and backpropagation through time, step by step, in NumPy: the twins of
``nnjax.layers.SimpleRNNCell``, ``GRUCell``, ``LSTMCell``, ``RNN`` and ``Bidirectional``.

Equations and weight layout as :mod:`nnjax.layers.recurrent` (x W, gates side by side in
PyTorch's order; s = sigmoid, s' = s (1 - s), tanh' = 1 - tanh^2). A :class:`Cell` steps
once: ``step(params, carry, x) -> (h, carry', cache)`` and ``step_back(dh, dcarry', cache)
-> (dcarry, dx, grads)``, where dh is dJ/dh from the step's own output and dcarry' is dJ/d
carry' from the later steps (None at the last one). h is part of the carry, so the two add:
dJ/dh' = dh + dcarry'_h.

SimpleRNN, h' = tanh(a), a = x W_i + h W_h + b:
    da = dJ/dh' (1 - h'^2);  dW_i = x^T da, dW_h = h^T da, db = sum da;  dx = da W_i^T,
    dh = da W_h^T.
GRU (reset-after, torch's; not Cho et al.'s r * h before the matmul), with
a_i = x W_i + b_i = [a_ir, a_iz, a_in], a_h = h W_h + b_h likewise:
    dn = dJ/dh' (1 - z),  dz = dJ/dh' (h - n),  dh (direct) = dJ/dh' z
    dp_n = dn (1 - n^2);  dr = dp_n a_hn;  dp_r = dr r (1 - r);  dp_z = dz z (1 - z)
    da_i = [dp_r, dp_z, dp_n],  da_h = [dp_r, dp_z, dp_n r]
    dW_i = x^T da_i, db_i = sum da_i, dW_h = h^T da_h, db_h = sum da_h
    dx = da_i W_i^T,  dh = dh (direct) + da_h W_h^T
LSTM, a = x W_i + h W_h + b = [a_i, a_f, a_g, a_o]; c' = f c + i g, h' = o tanh(c'):
    do = dJ/dh' tanh(c');  dc' (total) = dJ/dc' + dJ/dh' o (1 - tanh^2(c'))
    di = dc' g, df = dc' c, dg = dc' i;  dc = dc' f
    da = [di i (1 - i), df f (1 - f), dg (1 - g^2), do o (1 - o)]
    dW_i = x^T da, dW_h = h^T da, db = sum da;  dx = da W_i^T,  dh = da W_h^T

``rnn`` runs the steps over t = 0..T-1 (or T-1..0 with ``reverse``), keeping every cache;
its backward walks the same steps in the opposite order, adding dJ/dy_t to each step's dh
(every step with ``return_sequences``, else only the last one run) and summing the grads.
"""

from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from nnjax.reference.activations import sigmoid
from nnjax.reference.pair import Pair


class Cell(NamedTuple):
    """One recurrent step and its backward (module docstring); ``lstm`` marks an (h, c) carry."""

    step: Callable
    step_back: Callable
    name: str
    lstm: bool = False


def _grads_of(x, h, da_i, da_h, bias_keys):
    """dW_i = X^T dA_i, dW_h = H^T dA_h, db = sum of the rows, the rows r running over every
    leading (batch) axis of x (..., F), h (..., H) and da (..., G H)."""
    x, h = x.reshape(-1, x.shape[-1]), h.reshape(-1, h.shape[-1])
    da_i, da_h = da_i.reshape(-1, da_i.shape[-1]), da_h.reshape(-1, da_h.shape[-1])
    g = {"W_i": x.T @ da_i, "W_h": h.T @ da_h}
    if bias_keys == ("b",):
        g["b"] = da_i.sum(axis=0)
    else:
        g["b_i"], g["b_h"] = da_i.sum(axis=0), da_h.sum(axis=0)
    return g


def simple_rnn() -> Cell:
    """The Elman cell h' = tanh(x W_i + h W_h + b)."""

    def step(params, h, x):
        h_new = np.tanh(x @ params["W_i"] + h @ params["W_h"] + params["b"])
        return h_new, h_new, (params, x, h, h_new)

    def step_back(dh, dcarry, cache):
        params, x, h, h_new = cache
        dh_new = dh if dcarry is None else dh + dcarry
        da = dh_new * (1 - h_new**2)
        return da @ params["W_h"].T, da @ params["W_i"].T, _grads_of(x, h, da, da, ("b",))

    return Cell(step, step_back, "SimpleRNNCell")


def gru() -> Cell:
    """PyTorch's reset-after GRU (module docstring)."""

    def step(params, h, x):
        a_r, a_z, a_n = np.split(x @ params["W_i"] + params["b_i"], 3, axis=-1)
        h_r, h_z, h_n = np.split(h @ params["W_h"] + params["b_h"], 3, axis=-1)
        r, z = sigmoid(a_r + h_r), sigmoid(a_z + h_z)
        n = np.tanh(a_n + r * h_n)
        h_new = (1 - z) * n + z * h
        return h_new, h_new, (params, x, h, r, z, n, h_n)

    def step_back(dh, dcarry, cache):
        params, x, h, r, z, n, h_n = cache
        dh_new = dh if dcarry is None else dh + dcarry
        dn, dz, dh_direct = dh_new * (1 - z), dh_new * (h - n), dh_new * z
        dp_n = dn * (1 - n**2)
        dp_r = dp_n * h_n * r * (1 - r)
        dp_z = dz * z * (1 - z)
        da_i = np.concatenate([dp_r, dp_z, dp_n], axis=-1)
        da_h = np.concatenate([dp_r, dp_z, dp_n * r], axis=-1)
        dh_prev = dh_direct + da_h @ params["W_h"].T
        return dh_prev, da_i @ params["W_i"].T, _grads_of(x, h, da_i, da_h, ("b_i", "b_h"))

    return Cell(step, step_back, "GRUCell")


def lstm() -> Cell:
    """PyTorch's LSTM, gates (i, f, g, o), carry (h, c) (module docstring)."""

    def step(params, carry, x):
        h, c = carry
        a_i, a_f, a_g, a_o = np.split(x @ params["W_i"] + h @ params["W_h"] + params["b"], 4, -1)
        i, f, g, o = sigmoid(a_i), sigmoid(a_f), np.tanh(a_g), sigmoid(a_o)
        c_new = f * c + i * g
        h_new = o * np.tanh(c_new)
        return h_new, (h_new, c_new), (params, x, h, c, i, f, g, o, np.tanh(c_new))

    def step_back(dh, dcarry, cache):
        params, x, h, c, i, f, g, o, tc = cache
        dh_new, dc_new = (dh, 0.0) if dcarry is None else (dh + dcarry[0], dcarry[1])
        do = dh_new * tc
        dc_total = dc_new + dh_new * o * (1 - tc**2)
        di, df, dg = dc_total * g, dc_total * c, dc_total * i
        da = np.concatenate(
            [di * i * (1 - i), df * f * (1 - f), dg * (1 - g**2), do * o * (1 - o)], axis=-1
        )
        dcarry_prev = (da @ params["W_h"].T, dc_total * f)
        return dcarry_prev, da @ params["W_i"].T, _grads_of(x, h, da, da, ("b",))

    return Cell(step, step_back, "LSTMCell", lstm=True)


CELLS: dict[str, Callable[[], Cell]] = {
    "SimpleRNNCell": simple_rnn,
    "GRUCell": gru,
    "LSTMCell": lstm,
}


def _zeros(cell: Cell, params, x):
    """The zero carry (..., H) for a batch x (..., F), in the dtype the step computes in
    (float32 stays so)."""
    dtype = np.result_type(params["W_h"], x, np.float16)  # integer x: a float carry
    h = np.zeros((*x.shape[:-1], params["W_h"].shape[0]), dtype)
    return (h, h.copy()) if cell.lstm else h


def _add(a, b):
    return {k: a[k] + b[k] for k in a}


def cell_pair(cell: Cell, initial_state=None) -> Pair:
    """One step of ``cell`` as a layer, x (..., F) -> h (..., H) (every leading axis a batch
    axis, as the JAX cell's), from ``initial_state`` (zeros)."""

    def forward(params, x):
        x = np.asarray(x)
        carry = _zeros(cell, params, x) if initial_state is None else initial_state
        h, _, cache = cell.step(params, carry, x)
        return h, cache

    def backward(dout, cache):
        _, dx, grads = cell.step_back(np.asarray(dout), None, cache)
        return dx, grads

    return Pair(forward, backward, cell.name)


def simple_rnn_cell(hidden=None, *, initial_state=None) -> Pair:
    """The twin of ``nnjax.layers.SimpleRNNCell`` as a one-step layer."""
    return cell_pair(simple_rnn(), initial_state)


def gru_cell(hidden=None, *, initial_state=None) -> Pair:
    """The twin of ``nnjax.layers.GRUCell`` as a one-step layer."""
    return cell_pair(gru(), initial_state)


def lstm_cell(hidden=None, *, initial_state=None) -> Pair:
    """The twin of ``nnjax.layers.LSTMCell`` as a one-step layer."""
    return cell_pair(lstm(), initial_state)


def rnn(cell: Cell, *, return_sequences=False, reverse=False, initial_state=None) -> Pair:
    """The twin of ``nnjax.layers.RNN(cell)``: x (B, T, F) -> (B, H) or (B, T, H); BPTT in
    ``backward`` (module docstring)."""

    def forward(params, x):
        x = np.asarray(x)
        if x.ndim != 3 or x.shape[1] < 1:
            raise ValueError(f"RNN: expected input (B, T, F) with T >= 1, got {x.shape}")
        B, T, _ = x.shape
        order = list(reversed(range(T))) if reverse else list(range(T))
        carry = _zeros(cell, params, x[:, 0]) if initial_state is None else initial_state
        ys, caches = [None] * T, [None] * T
        for t in order:
            ys[t], carry, caches[t] = cell.step(params, carry, x[:, t])
        out = np.stack(ys, axis=1) if return_sequences else ys[order[-1]]
        return out, (order, caches, x.shape, x.dtype)

    def backward(dout, cache):
        order, caches, shape, dtype = cache
        dout = np.asarray(dout)
        dx = np.zeros(shape, np.result_type(dtype, dout, np.float16))
        grads, dcarry = None, None
        for t in reversed(order):
            if return_sequences:
                dh = dout[:, t]
            else:
                dh = dout if t == order[-1] else np.zeros_like(dout)
            dcarry, dx[:, t], g = cell.step_back(dh, dcarry, caches[t])
            grads = g if grads is None else _add(grads, g)
        return dx, grads

    return Pair(forward, backward, f"RNN({cell.name})")


def bidirectional(
    cell: Cell,
    backward_cell: Cell | None = None,
    *,
    return_sequences=False,
    merge="concat",
    initial_state=None,
) -> Pair:
    """The twin of ``nnjax.layers.Bidirectional``: a forward and a reverse :func:`rnn`,
    params ``{"forward", "backward"}``, outputs concatenated [forward, backward]
    (``merge="concat"``) or summed (``"sum"``); any other merge is a ValueError, as there."""
    if merge not in ("concat", "sum"):
        raise ValueError(f"Bidirectional: merge must be 'concat' or 'sum', got {merge!r}")
    h_f, h_b = (None, None) if initial_state is None else initial_state
    fwd = rnn(cell, return_sequences=return_sequences, initial_state=h_f)
    bwd = rnn(
        backward_cell or cell, return_sequences=return_sequences, reverse=True, initial_state=h_b
    )

    def forward(params, x):
        y_f, c_f = fwd.forward(params["forward"], x)
        y_b, c_b = bwd.forward(params["backward"], x)
        y = np.concatenate([y_f, y_b], axis=-1) if merge == "concat" else y_f + y_b
        return y, (c_f, c_b, y_f.shape[-1])

    def backward(dout, cache):
        c_f, c_b, H = cache
        dout = np.asarray(dout)
        d_f, d_b = (dout[..., :H], dout[..., H:]) if merge == "concat" else (dout, dout)
        dx_f, g_f = fwd.backward(d_f, c_f)
        dx_b, g_b = bwd.backward(d_b, c_b)
        return dx_f + dx_b, {"forward": g_f, "backward": g_b}

    return Pair(forward, backward, f"Bidirectional({cell.name})")
