"""Leftovers in training and layers: make_loss_fn's missing state, the LSTM's initial_state
message, and MaxPool/AvgPool windows that could lie wholly in the padding."""

import itertools
import re

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import nnjax
from nnjax.layers import RNN, AvgPool, BatchNorm, Dense, LSTMCell, MaxPool, serial

KEY = jax.random.key(0)
STATEFUL = "serial(Dense(4), BatchNorm, Dense(3)) is stateful; pass state="


def _stateful_model():
    model = serial(Dense(4), BatchNorm(), Dense(3))
    _, params, state = model.init(KEY, (-1, 5))
    X = jax.random.normal(jax.random.key(1), (6, 5))
    return model, params, state, (X, jnp.arange(6) % 3)


def test_make_loss_fn_without_state_names_itself_like_make_train_step():
    model, params, state, batch = _stateful_model()
    loss_fn = nnjax.make_loss_fn(model)
    for call in (loss_fn, jax.jit(loss_fn), jax.grad(loss_fn)):
        for given in ({}, {"state": None}):  # left out, or None as evaluate's default
            with pytest.raises(ValueError) as err:
                call(params, batch, **given)
            assert str(err.value).startswith(f"make_loss_fn: loss_fn: {STATEFUL}")
    step = nnjax.make_train_step(model, "softmax_cross_entropy", optax.sgd(0.1))
    for given in ({}, {"state": None}):
        with pytest.raises(ValueError, match="^" + re.escape(f"make_train_step: step: {STATEFUL}")):
            step(params, optax.sgd(0.1).init(params), batch, **given)


def test_make_loss_fn_with_state_is_the_training_mode_cross_entropy():
    # J = mean_b [logsumexp(z_b) - z_b[y_b]], z = model in training mode (batch statistics)
    model, params, state, (X, y) = _stateful_model()
    J = nnjax.make_loss_fn(model)(params, (X, y), state=state)
    z, _ = model.apply(params, X, state=state, train=True)
    z = np.asarray(z, np.float64)
    want = np.mean(np.log(np.exp(z).sum(1)) - z[np.arange(6), np.asarray(y)])
    np.testing.assert_allclose(float(J), want, rtol=1e-5)


def test_lstm_single_array_initial_state_is_named_an_array():
    B, T, F, H = 2, 3, 5, 4
    layer = RNN(LSTMCell(H))
    _, p = layer.init(KEY, (B, T, F))
    with pytest.raises(ValueError) as err:
        layer.apply(p, jnp.ones((B, T, F)), initial_state=jnp.zeros((B, H)))
    assert str(err.value) == (
        "RNN(LSTMCell(4)): LSTMCell(4): initial_state must be (h, c), each (2, 4), "
        "got an array of shape (2, 4)"
    )
    cell = LSTMCell(H)
    _, pc = cell.init(KEY, (B, F))
    with pytest.raises(ValueError) as err:
        cell.apply(pc, jnp.ones((B, F)), initial_state=np.zeros((2, B, H)))
    assert str(err.value) == (
        "LSTMCell(4): initial_state must be (h, c), each (2, 4), got an array of shape (2, 2, 4)"
    )


def _oracle_pool(x, k, s, lo, hi, kind):
    """1-D max/mean over the real positions of each window of the padded axis."""
    n = len(x)
    out = []
    for start in range(0, n + lo + hi - k + 1, s):
        real = [x[p - lo] for p in range(start, start + k) if lo <= p < lo + n]
        assert real, "a window wholly in the padding"
        out.append(max(real) if kind == "max" else float(np.mean(real)))
    return np.asarray(out)


def _pool_runs(cases):
    """For each (MaxPool, AvgPool, x (n,)) of cases, on x as (1, n, 1): MaxPool's y and dJ/dx
    for J = sum(y), and AvgPool's y; all cases in one compiled program (one compile, not one
    per case)."""

    def run(xs):
        out = []
        for (mx, av, _), v in zip(cases, xs):
            y, vjp = jax.vjp(lambda u, mx=mx: mx.apply({}, u), v)
            out.append((y, vjp(jnp.ones_like(y))[0], av.apply({}, v)))
        return out

    return jax.jit(run)([jnp.asarray(x).reshape(1, -1, 1) for _, _, x in cases])


def test_every_accepted_pool_window_holds_a_real_position():
    # Padding < window on each side (SAME always is) leaves no window wholly in the padding:
    # no -inf from MaxPool, no 0/0 from AvgPool, and every dJ/dy reaches a real input. The
    # geometry is checked for every accepted config (init: no compile); the values and the
    # gradient on the tiny inputs (n <= 2), where a stride could step into the padding.
    rng = np.random.default_rng(0)
    pads = ["SAME", "VALID"] + [[(lo, hi)] for lo in range(4) for hi in range(4)]
    n_checked, run, cases = 0, {}, []
    for n, k, s, pad in itertools.product(range(1, 7), range(1, 4), range(1, 5), pads):
        mx = MaxPool(k, strides=s, padding=pad)
        lo, hi = pad[0] if isinstance(pad, list) else (0, 0)
        if pad == "SAME":  # XLA's: out = ceil(n / s), total = (out - 1) s + k - n, lo = total // 2
            total = max((-(-n // s) - 1) * s + k - n, 0)
            lo, hi = total // 2, total - total // 2
        try:
            out_shape, _ = mx.init(KEY, (1, n, 1))
        except ValueError as e:  # refused: a padding >= k, or a padded axis shorter than k
            assert max(lo, hi) >= k or n + lo + hi < k, (n, k, s, pad, e)
            continue
        x = rng.standard_normal(n).astype(np.float32)
        want = _oracle_pool(x, k, s, lo, hi, "max")  # asserts a real position per window
        assert out_shape == (1, len(want), 1), (n, k, s, pad)
        n_checked += 1
        if n > 2 or (n, k, s, lo, hi) in run:  # SAME repeats an explicit padding
            continue
        run[(n, k, s, lo, hi)] = (want, _oracle_pool(x, k, s, lo, hi, "mean"))
        cases.append((mx, AvgPool(k, strides=s, padding=pad), x))
    for (want, want_avg), (y, g, avg) in zip(run.values(), _pool_runs(cases)):
        np.testing.assert_allclose(np.ravel(y), want, rtol=1e-6)
        assert float(g.sum()) == y.size  # one unit of gradient per window, none dropped
        np.testing.assert_allclose(np.ravel(avg), want_avg, rtol=1e-5, atol=1e-6)
    assert n_checked > 400 and len(run) > 30, (n_checked, len(run))
