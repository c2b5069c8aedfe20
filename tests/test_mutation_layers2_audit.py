"""Mutation audit, second round, of the layers and their NumPy twins: each test here kills a
small fault (a mutant) that the rest of the suite let through, against a closed form on a
tiny input, float64 central differences, or the JAX layer itself."""

import jax
import numpy as np
import pytest

from nnjax.layers import (
    Bidirectional,
    Dense,
    Embedding,
    FanInSum,
    GRUCell,
    LSTMCell,
    SimpleRNNCell,
    parallel,
    serial,
)
from nnjax.reference import combinators as RC
from nnjax.reference import layers as RL
from nnjax.reference import norm as RN
from nnjax.reference import recurrent as RR
from nnjax.verify import finite_difference_grad


def test_batch_norm_twin_in_evaluation_without_scale_divides_dx_by_sigma():
    """Evaluation mode is the affine map y = (x - m) / sqrt(v + eps) + offset, so dJ/dx =
    dJ/dy / sqrt(v + eps) with use_scale=False too (a twin returning dJ/dy unscaled there
    passed every test: the suite's evaluation rows all have a scale)."""
    state = {"mean": np.array([1.0, -2.0]), "var": np.array([3.0, 0.25])}
    pair = RN.batch_norm(use_scale=False, train=False, state=state, eps=0.5)
    params = {"offset": np.array([0.5, -1.0])}
    x = np.array([[0.0, 1.0], [2.0, -3.0], [4.0, 0.5]])
    y, cache = pair.forward(params, x)
    np.testing.assert_allclose(y, (x - state["mean"]) / np.sqrt(state["var"] + 0.5) + [0.5, -1])
    dy = np.array([[1.0, 2.0], [-1.0, 0.5], [3.0, -2.0]])
    dx, grads = pair.backward(dy, cache)
    np.testing.assert_allclose(dx, dy / np.sqrt([3.5, 0.75]), rtol=1e-12)
    fd = finite_difference_grad(lambda v: float(np.sum(dy * pair.forward(params, v)[0])), x)
    np.testing.assert_allclose(dx, fd, rtol=1e-7)
    np.testing.assert_allclose(grads["offset"], dy.sum(axis=0))


def test_bidirectional_init_gives_the_two_directions_their_own_weights():
    """'a second copy of cell, with its own params': the forward and backward RNNs draw from
    different keys (one key for both made the two directions identical at init, so their
    outputs at each step were mirror images and no test noticed)."""
    for layer in (Bidirectional(GRUCell(3)), Bidirectional(LSTMCell(3), LSTMCell(3))):
        _, params = layer.init(jax.random.key(0), (2, 4, 3))
        for k in ("W_i", "W_h"):
            f, b = np.asarray(params["forward"][k]), np.asarray(params["backward"][k])
            assert f.shape == b.shape and np.abs(f - b).min() > 0, (layer.name, k)


def test_cell_init_draws_w_i_w_h_and_the_grus_two_biases_from_their_own_keys():
    """With F = H, W_i and W_h have one shape: drawn from one key they came out equal (and
    the GRU's b_i and b_h equal under a random b_init); nothing in the suite compared them."""
    normal = lambda key, shape, dtype: jax.random.normal(key, shape, dtype)
    for cell in (SimpleRNNCell(3), GRUCell(3, b_init=normal), LSTMCell(3)):
        _, params = cell.init(jax.random.key(1), (2, 3))
        w_i, w_h = np.asarray(params["W_i"]), np.asarray(params["W_h"])
        assert w_i.shape == w_h.shape and np.abs(w_i - w_h).min() > 0, cell.name
    _, params = GRUCell(3, b_init=normal).init(jax.random.key(1), (2, 3))
    b_i, b_h = np.asarray(params["b_i"]), np.asarray(params["b_h"])
    assert b_i.shape == (9,) and np.abs(b_i - b_h).min() > 0


def test_parallel_and_serial_init_give_each_child_its_own_key():
    """parallel and serial split the init key into one per child: two Dense(3) children of
    one input shape start from different weights (one key for every child made them equal;
    only apply's dropout keys and the key's type were tested)."""
    _, params = parallel(Dense(3), Dense(3)).init(jax.random.key(2), ((2, 3), (2, 3)))
    _, params_s = serial(Dense(3), Dense(3)).init(jax.random.key(2), (2, 3))
    for p0, p1 in (params, params_s):
        w0, w1 = np.asarray(p0["W"]), np.asarray(p1["W"])
        assert w0.shape == w1.shape == (3, 3) and np.abs(w0 - w1).min() > 0


@pytest.mark.parametrize(
    "jax_cell, twin, G",
    [
        (SimpleRNNCell(3), RR.simple_rnn_cell, 1),
        (GRUCell(3), RR.gru_cell, 3),
        (LSTMCell(3), RR.lstm_cell, 4),
    ],
    ids=["SimpleRNNCell", "GRUCell", "LSTMCell"],
)
def test_cell_twins_start_from_their_initial_state_as_the_jax_cells(jax_cell, twin, G):
    """A twin cell with initial_state (h, or (h, c) for the LSTM) is one step from that carry:
    its output equals the JAX cell's apply(initial_state=...) and its dJ/dx, dJ/dW_h and dJ/db
    equal central differences (from h = 0 dJ/dW_h is 0, so only a start elsewhere tests it)."""
    rng = np.random.default_rng(5)
    F, H = 2, 3
    p = {"W_i": rng.normal(size=(F, G * H)), "W_h": rng.normal(size=(H, G * H))}
    bias = ("b_i", "b_h") if G == 3 else ("b",)
    p.update({b: rng.normal(size=G * H) for b in bias})
    h0, c0 = rng.normal(size=(2, 4, H))
    state = (h0, c0) if G == 4 else h0
    pair = twin(H, initial_state=state)
    x = rng.normal(size=(4, F))
    y, cache = pair.forward(p, x)
    f32 = lambda t: jax.tree.map(np.float32, t)
    y_jax = jax_cell.apply(f32(p), np.float32(x), initial_state=f32(state))
    np.testing.assert_allclose(y, np.asarray(y_jax), rtol=2e-5, atol=2e-6)
    dy = rng.normal(size=y.shape)
    dx, grads = pair.backward(dy, cache)
    J = lambda x_, p_: float(np.sum(dy * pair.forward(p_, x_)[0]))
    np.testing.assert_allclose(dx, finite_difference_grad(lambda v: J(v, p), x), rtol=1e-6)
    for k in ("W_h", *bias):
        fd = finite_difference_grad(lambda v, k=k: J(x, {**p, k: v}), p[k])
        np.testing.assert_allclose(grads[k], fd, rtol=1e-6, atol=1e-9, err_msg=k)


def test_fan_out_twin_of_a_tuple_adds_the_copies_branch_by_branch():
    """FanOut(2) of a pair (a, b) gives ((a, b), (a, b)); dJ/d(a, b) = (da1 + da2, db1 + db2),
    a pair of arrays of a's and b's shapes (adding the two gradient tuples with + joined them
    into one 4-tuple, and no test had a fan-out of branches)."""
    rng = np.random.default_rng(6)
    a, b = rng.normal(size=(2, 3)), rng.normal(size=(2, 5))
    pair = RC.fan_out(2)
    y, cache = pair.forward({}, (a, b))
    assert len(y) == 2 and all(len(c) == 2 and c[1].shape == (2, 5) for c in y)
    da1, da2, db1, db2 = (rng.normal(size=s) for s in ((2, 3), (2, 3), (2, 5), (2, 5)))
    dx, grads = pair.backward(((da1, db1), (da2, db2)), cache)
    assert isinstance(dx, tuple) and len(dx) == 2 and grads == {}
    np.testing.assert_allclose(dx[0], da1 + da2)
    np.testing.assert_allclose(dx[1], db1 + db2)


def test_parallel_twin_error_counts_branches_from_zero_as_the_jax_layer():
    """The twin's error names the branch as nnjax.layers.parallel's does, counting from 0:
    the second branch is 'branch 1 (Dense(3))' (a twin counting from 1 went unnoticed)."""
    W = {"W": np.ones((4, 3)), "b": np.zeros(3)}
    x = (np.ones((2, 4)), np.ones((2, 5)))
    with pytest.raises(ValueError, match=r"^branch 1 \(Dense\(3\)\): Dense: expected input of"):
        RC.parallel(RL.dense(3), RL.dense(3)).forward([W, W], x)
    with pytest.raises(ValueError, match=r"^branch 1 \(Dense\(3\)\): Dense\(3\): expected"):
        parallel(Dense(3), Dense(3)).apply([W, W], x)


def test_embedding_refuses_a_concrete_id_of_minus_one_alone():
    """A concrete id -1 is out of [0, n) and refused, as torch's IndexError, even when every
    other id is in range (the suite's -1 came with a 7, which the upper bound refused; a
    lower bound of -1 let -1 read row 0 through the clamp)."""
    layer = Embedding(5, 2)
    _, params = layer.init(jax.random.key(0), (1, 2))
    message = r"^Embedding\(5, 2\): ids must be in \[0, 5\), got -1\.\.2$"
    with pytest.raises(ValueError, match=message):
        layer.apply(params, np.array([[-1, 2]]))
    np.testing.assert_array_equal(layer.apply(params, np.array([[4, 0]]))[0, 0], params["W"][4])


def test_embedding_twin_refuses_the_id_equal_to_the_table_size_by_name():
    """The twin checks 0 <= id < len(W) itself: id 5 of a 5-row table is its ValueError, as
    the JAX layer's, not NumPy's IndexError from W[ids] (a bound of <= len(W) let it through)."""
    W = np.arange(10.0).reshape(5, 2)
    with pytest.raises(ValueError, match=r"^Embedding: ids must be integers in \[0, 5\), got"):
        RL.embedding(5, 2).forward({"W": W}, np.array([0, 5]))
    np.testing.assert_array_equal(RL.embedding(5, 2).forward({"W": W}, np.array([4]))[0], W[[4]])


def test_fan_in_sum_apply_refuses_branches_that_would_broadcast():
    """Equal shapes only, at apply as at init: (2, 3) + (1, 3) would broadcast silently into
    (2, 3); the error names both shapes (without the check the sum went through)."""
    with pytest.raises(
        ValueError, match=r"^FanInSum: branch shapes differ: \[\(2, 3\), \(1, 3\)\]$"
    ):
        FanInSum().apply({}, (np.ones((2, 3)), np.ones((1, 3))))
    np.testing.assert_array_equal(FanInSum().apply({}, (np.ones((2, 3)), np.ones((2, 3)))), 2.0)
