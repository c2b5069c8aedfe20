"""Recurrent cells and the layers that run them over time with ``lax.scan``.

A cell is a stateless :class:`Layer` for ONE time step, x_t (..., F) -> h_t (..., H), whose
``apply(params, x, *, key=None, initial_state=None, return_carry=False)`` starts from the
carry ``initial_state`` (zeros by default) and, with ``return_carry=True``, returns
``(h_t, new_carry)``. The carry is h (..., H), or (h, c) for the LSTM. Weights multiply from
the right (x W), the gates of one matrix side by side along its last axis, in PyTorch's
order, so ``W_i = torch_weight_ih.T`` and ``W_h = torch_weight_hh.T``; sigma is the logistic
sigmoid, * the elementwise product.

``SimpleRNNCell``: params W_i (F, H), W_h (H, H), b (H,)  [b = torch's b_ih + b_hh]

    h' = tanh(x W_i + h W_h + b)

``GRUCell``: params W_i (F, 3H), W_h (H, 3H), b_i (3H,), b_h (3H,), gates (r, z, n); the
reset-after form of PyTorch's ``torch.nn.GRU`` (and of cuDNN), r applied after the matmul:

    r  = sigma(x W_ir + b_ir + h W_hr + b_hr)
    z  = sigma(x W_iz + b_iz + h W_hz + b_hz)
    n  = tanh(x W_in + b_in + r * (h W_hn + b_hn))
    h' = (1 - z) * n + z * h

This is NOT the reset-before form of Cho et al. (2014) (Keras's ``reset_after=False``),
n = tanh(x W_in + b_in + (r * h) W_hn + b_hn), a different function (the two agree only
where r = 1); weights trained in that form cannot be loaded here unchanged.

``LSTMCell``: params W_i (F, 4H), W_h (H, 4H), b (4H,), gates (i, f, g, o) as PyTorch
[b = torch's b_ih + b_hh]; carry (h, c):

    i, f, o = sigma(x W_. + h W_. + b_.),   g = tanh(x W_g + h W_g + b_g)
    c' = f * c + i * g,   h' = o * tanh(c')

Initialisation is nnjax's, not PyTorch's (which draws every weight and both biases from
U(-1/sqrt(H), 1/sqrt(H))): W_i and W_h lecun_normal, biases 0 by default; the LSTM's
forget-gate bias starts at 0 too (no "unit forget bias" of 1 as Keras's: ``b_init`` sets all
four gates' biases, so give a callable that sets b[H:2H], the f gate's, to 1).

``RNN(cell)`` maps (B, T, F) to the last output (B, H), or to every output (B, T, H) with
``return_sequences=True``; ``reverse=True`` runs from t = T - 1 down to 0 (outputs stay
aligned with their inputs, so the last output is the one at t = 0). ``Bidirectional`` runs a
forward and a reverse RNN and concatenates (or sums) their outputs. As torch's
``nn.RNN/GRU/LSTM(batch_first=True)`` with weights ``*_l0`` (and ``*_l0_reverse``):
``return_sequences=True`` is torch's output (B, T, H) or (B, T, 2H); the last output is
h_n[0], or cat(h_n[0], h_n[1]) for ``Bidirectional``; ``reverse=True`` alone is torch run on
the time-flipped input, its outputs flipped back.

Every ``apply`` takes an array-like x and checks the params against the layer (static
shapes: free under jit and vmap): a cell wants exactly its keys, W_i (F, G H), W_h
(H, G H) and its biases (G H,) (G gates); ``RNN`` passes its params to the cell's checks,
``Bidirectional`` wants ``{"forward", "backward"}``. A
:class:`~nnjax.layers.checks.ParamsError` (a ValueError) names the layer and the param.
When the params fit the cell but the input's features are not W_i's F, the error is a
plain ValueError naming the layer and the input (x, not the params, is the culprit);
``RNN`` and ``Bidirectional`` add the whole input's shape to the cell's line about one step.
"""

import inspect
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

from nnjax.layers.checks import (
    ParamsError,
    as_array,
    bias_initializer,
    check_dtype,
    check_features,
    check_key,
    check_param_keys,
    check_param_shape,
    check_shape,
    dtype_name,
    flag,
    float_result_type,
    init_bias,
    located,
    param_dtype,
    positive_int,
    split_key,
    weight_initializer,
)
from nnjax.layers.core import Layer, check_layers, make_spec, spec_of

_GATES = {"SimpleRNNCell": 1, "GRUCell": 3, "LSTMCell": 4}


def _plus(a, b):
    """a + b with the bias b (units,) broadcast to a's rank explicitly (nnjax runs under
    ``jax_numpy_rank_promotion='raise'``)."""
    return a + lax.broadcast_to_rank(b, a.ndim)


def _simple_step(params, x, h):
    h = jnp.tanh(_plus(x @ params["W_i"] + h @ params["W_h"], params["b"]))
    return h, h


def _gru_step(params, x, h):
    a_r, a_z, a_n = jnp.split(_plus(x @ params["W_i"], params["b_i"]), 3, axis=-1)
    h_r, h_z, h_n = jnp.split(_plus(h @ params["W_h"], params["b_h"]), 3, axis=-1)
    r, z = jax.nn.sigmoid(a_r + h_r), jax.nn.sigmoid(a_z + h_z)
    n = jnp.tanh(a_n + r * h_n)
    h = (1 - z) * n + z * h
    return h, h


def _lstm_step(params, x, carry):
    h, c = carry
    a = _plus(x @ params["W_i"] + h @ params["W_h"], params["b"])
    a_i, a_f, a_g, a_o = jnp.split(a, 4, axis=-1)
    c = jax.nn.sigmoid(a_f) * c + jax.nn.sigmoid(a_i) * jnp.tanh(a_g)
    h = jax.nn.sigmoid(a_o) * jnp.tanh(c)
    return h, (h, c)


_STEPS = {"SimpleRNNCell": _simple_step, "GRUCell": _gru_step, "LSTMCell": _lstm_step}


def _initial_carry(name: str, lstm: bool, state, h_shape: tuple, dtype):
    """The carry a step starts from: zeros when ``state`` is None, else ``state`` (h, or for
    the LSTM a pair (h, c) as a tuple or a list) cast to ``dtype``, each part of shape
    ``h_shape``; a ValueError naming the cell otherwise."""
    n = 2 if lstm else 1
    if state is None:
        return (jnp.zeros(h_shape, dtype),) * 2 if lstm else jnp.zeros(h_shape, dtype)
    listed = isinstance(state, tuple | list)
    parts = tuple(state) if listed else (state,)
    shapes = [tuple(p.shape) if hasattr(p, "shape") else type(p).__name__ for p in parts]
    if shapes != [h_shape] * n or listed != lstm:
        want = "(h, c), each" if lstm else "h of shape"
        got = f"an array of shape {shapes[0]}" if hasattr(state, "shape") else shapes[0]
        got = f"a {type(state).__name__} of {shapes}" if listed else got
        raise ValueError(f"{name}: initial_state must be {want} {h_shape}, got {got}")
    parts = tuple(jnp.asarray(part, dtype) for part in parts)
    return parts if lstm else parts[0]


def _cell(kind: str, hidden: int, W_i_init, W_h_init, b_init, dtype) -> Layer:
    name = f"{kind}({hidden})"
    hidden = positive_int(name, "hidden", hidden)
    check_dtype(name, dtype)
    G, step = _GATES[kind], _STEPS[kind]
    wi = weight_initializer(name, "W_i_init", W_i_init)
    wh = weight_initializer(name, "W_h_init", W_h_init)
    bi = bias_initializer(name, b_init)
    biases = ("b_i", "b_h") if kind == "GRUCell" else ("b",)
    keys, width = ("W_i", "W_h", *biases), G * hidden
    gates = f"{hidden} hidden" + (f" x {G} gates" if G > 1 else "")

    def check_params(params, x):
        check_param_keys(name, params, keys)
        w_i = tuple(jnp.shape(params["W_i"]))
        if len(w_i) != 2 or w_i[1] != width:  # another cell's: say what it should be
            n = x.shape[-1] if x.ndim else "F"
            check_param_shape(name, params, "W_i", (n, width), f"input features {n} -> {gates}")
        check_param_shape(name, params, "W_h", (hidden, width), gates)
        for b in biases:
            check_param_shape(name, params, b, (width,), gates)
        if x.ndim < 1 or x.shape[-1] != w_i[0]:
            raise ValueError(
                f"{name}: expected input of shape (..., {w_i[0]}), got {tuple(x.shape)}"
            )

    def init(key, input_shape):
        shape = check_shape(name, input_shape, 1)
        check_features(name, shape)
        dt = param_dtype(dtype, name)
        k_i, k_h, *k_b = split_key(name, key, 2 + len(biases))
        params = {
            "W_i": located(f"{name}: W_i", wi, k_i, (shape[-1], G * hidden), dt),
            "W_h": located(f"{name}: W_h", wh, k_h, (hidden, G * hidden), dt),
        }
        params.update({b: init_bias(name, bi, k, G * hidden, dt) for b, k in zip(biases, k_b)})
        return shape[:-1] + (hidden,), params

    def apply(params, x, *, key=None, initial_state=None, return_carry=False):
        x = as_array(name, x)
        check_params(params, x)
        h_shape = x.shape[:-1] + (hidden,)
        dt = float_result_type(x, *jax.tree.leaves(params))  # the dtype step computes in
        carry = _initial_carry(name, kind == "LSTMCell", initial_state, h_shape, dt)
        y, carry = step(params, x, carry)
        return (y, carry) if return_carry else y

    spec = make_spec(
        kind,
        hidden=hidden,
        W_i_init=W_i_init,
        W_h_init=W_h_init,
        b_init=b_init,
        dtype=dtype_name(dtype),
    )
    return Layer(init, apply, name, False, spec)


def SimpleRNNCell(
    hidden: int,
    *,
    W_i_init: Any = "lecun_normal",
    W_h_init: Any = "lecun_normal",
    b_init: Any = "zeros",
    dtype: Any = None,
) -> Layer:
    """Elman cell h' = tanh(x W_i + h W_h + b) (module docstring)."""
    return _cell("SimpleRNNCell", hidden, W_i_init, W_h_init, b_init, dtype)


def GRUCell(
    hidden: int,
    *,
    W_i_init: Any = "lecun_normal",
    W_h_init: Any = "lecun_normal",
    b_init: Any = "zeros",
    dtype: Any = None,
) -> Layer:
    """Gated recurrent unit, PyTorch's reset-after form (module docstring)."""
    return _cell("GRUCell", hidden, W_i_init, W_h_init, b_init, dtype)


def LSTMCell(
    hidden: int,
    *,
    W_i_init: Any = "lecun_normal",
    W_h_init: Any = "lecun_normal",
    b_init: Any = "zeros",
    dtype: Any = None,
) -> Layer:
    """Long short-term memory cell, PyTorch's gate order (i, f, g, o) (module docstring)."""
    return _cell("LSTMCell", hidden, W_i_init, W_h_init, b_init, dtype)


def _check_cell(who: str, cell) -> None:
    check_layers(who, [cell])
    if cell.stateful or "return_carry" not in inspect.signature(cell.apply).parameters:
        raise ValueError(
            f"{who}: {cell.name} is not a recurrent cell (SimpleRNNCell, GRUCell, LSTMCell)"
        )


def _check_sequence(name: str, shape) -> None:
    if len(shape) != 3 or shape[1] < 1:
        raise ValueError(f"{name}: expected input (B, T, F) with T >= 1, got {tuple(shape)}")


def _start_carry(name: str, carry_struct, initial_state):
    """The scan's first carry, in the structure, shapes and dtypes of ``carry_struct`` (the
    carry one step makes): zeros when ``initial_state`` is None, else its arrays cast (an
    LSTM's [h, c] list becomes the pair (h, c)); a ValueError when they do not fit."""
    leaves, tree = jax.tree.flatten(carry_struct)
    if initial_state is None:
        return jax.tree.unflatten(tree, [jnp.zeros(s.shape, s.dtype) for s in leaves])
    given = jax.tree.leaves(initial_state)
    shapes = [tuple(jnp.shape(g)) for g in given]
    if shapes != [tuple(s.shape) for s in leaves]:
        want = [tuple(s.shape) for s in leaves]
        raise ValueError(f"{name}: initial_state must be arrays of shapes {want}, got {shapes}")
    return jax.tree.unflatten(tree, [jnp.asarray(g, s.dtype) for g, s in zip(given, leaves)])


def _with_input(error: ValueError, params, x) -> str:
    """The cell's error line, followed by the RNN's input shape when x's features are not
    those of the params' W_i: the cell checked one time step x[:, t] (B, F), whose shape
    alone does not say which array the caller got wrong."""
    w_i = params.get("W_i") if isinstance(params, Mapping) else None
    if w_i is None or jnp.ndim(w_i) != 2 or jnp.shape(w_i)[0] == x.shape[-1]:
        return str(error)
    return f"{error} (each time step x[:, t] of the input {tuple(x.shape)})"


def RNN(cell: Layer, *, return_sequences: bool = False, reverse: bool = False) -> Layer:
    """Run ``cell`` over the time axis of x (B, T, F) with ``lax.scan`` (module docstring).

    ``apply(params, x, *, key=None, initial_state=None)``: the carry at the first step run
    (t = 0, or t = T - 1 when ``reverse``), zeros by default: h (B, H), or (h, c) for the
    LSTM (a list [h, c] is taken as the pair), cast to the dtype the cell computes in.
    Params are the cell's.
    """
    _check_cell("RNN", cell)
    return_sequences = flag("RNN", "return_sequences", return_sequences)
    reverse = flag("RNN", "reverse", reverse)
    name = f"RNN({cell.name}{', reverse' if reverse else ''})"

    def init(key, input_shape):
        shape = check_shape(name, input_shape, 3)
        _check_sequence(name, shape)
        (_, H), params = located(name, cell.init, check_key(name, key), (shape[0], shape[2]))
        return ((shape[0], shape[1], H) if return_sequences else (shape[0], H)), params

    def apply(params, x, *, key=None, initial_state=None):
        x = as_array(name, x)
        _check_sequence(name, x.shape)
        xs = jnp.swapaxes(x, 0, 1)  # (T, B, F): scan runs over the leading axis
        try:
            y0, carry0 = located(
                name,
                jax.eval_shape,
                lambda: cell.apply(params, xs[0], initial_state=initial_state, return_carry=True),
            )
        except ParamsError:
            raise
        except ValueError as e:  # the cell saw one step (B, F): name the whole input too
            if (text := _with_input(e, params, x)) == str(e):
                raise
            raise ValueError(text) from None
        zeros = lambda s: jnp.zeros(s.shape, s.dtype)
        carry0 = _start_carry(name, carry0, initial_state)

        def body(carry, x_t):
            y, carry = cell.apply(params, x_t, initial_state=carry, return_carry=True)
            return carry, y

        if return_sequences:
            _, ys = lax.scan(body, carry0, xs, reverse=reverse)
            return jnp.swapaxes(ys, 0, 1)

        def last(carry_y, x_t):  # keeps only the latest output: no (T, B, H) stack
            carry, y = body(carry_y[0], x_t)
            return (carry, y), None

        return lax.scan(last, (carry0, zeros(y0)), xs, reverse=reverse)[0][1]

    spec = make_spec(
        "RNN", cell=spec_of(cell), return_sequences=bool(return_sequences), reverse=bool(reverse)
    )
    return Layer(init, apply, name, False, spec)


def _pair(name: str, initial_state) -> tuple:
    """(forward carry, backward carry) from None or a pair (tuple or list of 2 entries)."""
    if initial_state is None:
        return None, None
    if not isinstance(initial_state, tuple | list) or len(initial_state) != 2:
        got = (
            f"{len(initial_state)} entries"
            if isinstance(initial_state, tuple | list)
            else f"an array of shape {tuple(jnp.shape(initial_state))}"
        )
        raise ValueError(
            f"{name}: initial_state must be None or a pair (forward carry, backward carry), "
            f"got {got}"
        )
    return tuple(initial_state)


def Bidirectional(
    cell: Layer,
    backward_cell: Layer | None = None,
    *,
    return_sequences: bool = False,
    merge: str = "concat",
) -> Layer:
    """A forward ``RNN(cell)`` and a reverse ``RNN(backward_cell)`` (a second copy of ``cell``,
    with its own params, by default) over the same (B, T, F) input, merged on the last axis:
    ``merge="concat"`` -> (..., 2H) [forward, backward], ``"sum"`` -> (..., H). Without
    ``return_sequences`` the outputs are the forward one at t = T - 1 and the backward one at
    t = 0. Params ``{"forward": ..., "backward": ...}``; ``apply(..., initial_state=None)``
    takes None or a pair (forward carry, backward carry).
    """
    _check_cell("Bidirectional", cell)
    if backward_cell is not None:
        _check_cell("Bidirectional", backward_cell)
    return_sequences = flag("Bidirectional", "return_sequences", return_sequences)
    if merge not in ("concat", "sum"):
        raise ValueError(f"Bidirectional: merge must be 'concat' or 'sum', got {merge!r}")
    fwd = RNN(cell, return_sequences=return_sequences)
    bwd = RNN(backward_cell or cell, return_sequences=return_sequences, reverse=True)
    name = f"Bidirectional({cell.name})"

    def init(key, input_shape):
        k_f, k_b = split_key(name, key)
        shape, p_f = located(name, fwd.init, k_f, input_shape)
        shape_b, p_b = located(name, bwd.init, k_b, input_shape)
        if shape != shape_b:
            raise ValueError(f"{name}: forward output {shape} and backward output {shape_b} differ")
        out = shape[:-1] + ((2 * shape[-1],) if merge == "concat" else (shape[-1],))
        return out, {"forward": p_f, "backward": p_b}

    def apply(params, x, *, key=None, initial_state=None):
        check_param_keys(name, params, ("forward", "backward"))
        h_f, h_b = _pair(name, initial_state)
        y_f = located(name, fwd.apply, params["forward"], x, initial_state=h_f)
        y_b = located(name, bwd.apply, params["backward"], x, initial_state=h_b)
        return jnp.concatenate([y_f, y_b], axis=-1) if merge == "concat" else y_f + y_b

    b_spec = None if backward_cell is None else spec_of(backward_cell)
    spec = make_spec(
        "Bidirectional",
        cell=spec_of(cell),
        backward_cell=b_spec,
        return_sequences=bool(return_sequences),
        merge=merge,
    )
    return Layer(init, apply, name, False, spec)
