"""The NumPy twins of the layers beyond Dense: their own derivatives vs finite differences,
every row of the verify table, and a wrong twin (or a wrong tie rule) caught."""

import numpy as np
import pytest

from nnjax import verify as V
from nnjax.reference import combinators as RC
from nnjax.reference import conv as RConv
from nnjax.reference import layers as RLay
from nnjax.reference import norm as RN
from nnjax.reference import pool as RP
from nnjax.reference import recurrent as RR
from nnjax.verify import finite_difference_grad


def _assert_rows_pass(rows):
    bad = [f"{r.component}: abs {r.max_abs:.2e} rel {r.max_rel:.2e}" for r in rows if not r.passed]
    assert rows and not bad, "\n".join(bad)


def _fd_check(pair, params, x, rng, rtol=1e-6):
    """The twin's dJ/dx and dJ/dparams vs central differences of J = sum(dout * y)."""
    y, cache = pair.forward(params, x)
    dout = rng.normal(size=np.shape(y))
    dx, grads = pair.backward(dout, cache)
    J = lambda x_, p_: float(np.sum(dout * pair.forward(p_, x_)[0]))
    fd_x = finite_difference_grad(lambda v: J(v, params), x)
    np.testing.assert_allclose(dx, fd_x, rtol=rtol, atol=1e-8)
    for k in params:
        fd = finite_difference_grad(lambda v, k=k: J(x, {**params, k: v}), params[k])
        np.testing.assert_allclose(grads[k], fd, rtol=rtol, atol=1e-8, err_msg=k)


def _normal(rng, *shape):
    return rng.normal(size=shape)


@pytest.mark.parametrize(
    "pair, params, x_shape",
    [
        (
            RConv.conv(strides=2, padding="SAME", dilation=2, groups=2),
            {"W": (3, 2, 4), "b": (4,)},
            (2, 9, 4),
        ),
        (
            RConv.conv(strides=(2, 1), padding=[(1, 0), (2, 1)], use_bias=False),
            {"W": (2, 3, 2, 3)},
            (2, 5, 4, 2),
        ),
        (
            RConv.conv_transpose(strides=2, padding="SAME"),
            {"W": (3, 3, 2, 2), "b": (2,)},
            (1, 3, 4, 2),
        ),
        (RConv.conv_transpose(strides=3, dilation=2, use_bias=False), {"W": (2, 2, 3)}, (2, 4, 2)),
        (RP.avg_pool(3, strides=2, padding="SAME"), {}, (2, 5, 4, 2)),
        (RP.max_pool(2, strides=1), {}, (2, 6, 3)),
        (RP.global_avg_pool(), {}, (2, 3, 4, 2)),
        (RN.layer_norm(), {"scale": (5,), "offset": (5,)}, (3, 4, 5)),
        (RN.batch_norm(), {"scale": (3,), "offset": (3,)}, (4, 5, 3)),
        (
            RN.batch_norm(
                use_offset=False, train=False, state={"mean": np.arange(3.0), "var": np.ones(3) * 2}
            ),
            {"scale": (3,)},
            (4, 3),
        ),
    ],
    ids=[
        "conv1d",
        "conv2d",
        "convT2d",
        "convT1d",
        "avgpool",
        "maxpool",
        "gap",
        "layernorm",
        "batchnorm",
        "batchnorm-eval",
    ],
)
def test_twin_gradients_match_finite_differences(pair, params, x_shape):
    rng = np.random.default_rng(0)
    params = {k: _normal(rng, *s) for k, s in params.items()}
    _fd_check(pair, params, _normal(rng, *x_shape), rng)


@pytest.mark.parametrize("cell", ["SimpleRNNCell", "GRUCell", "LSTMCell"])
@pytest.mark.parametrize("reverse, seqs", [(False, False), (True, True)])
def test_bptt_matches_finite_differences(cell, reverse, seqs):
    rng = np.random.default_rng(1)
    F, H = 2, 3
    G = {"SimpleRNNCell": 1, "GRUCell": 3, "LSTMCell": 4}[cell]
    params = {"W_i": _normal(rng, F, G * H), "W_h": _normal(rng, H, G * H)}
    if cell == "GRUCell":
        params["b_i"], params["b_h"] = _normal(rng, G * H), _normal(rng, G * H)
    else:
        params["b"] = _normal(rng, G * H)
    pair = RR.rnn(RR.CELLS[cell](), return_sequences=seqs, reverse=reverse)
    _fd_check(pair, params, _normal(rng, 2, 5, F), rng)


def test_combinator_twins_sum_fan_out_gradients():
    rng = np.random.default_rng(2)
    dense = RLay.dense()
    net = RLay.serial(
        RC.fan_out(3),
        RC.parallel(dense, RLay.identity(), RLay.activation("tanh")),
        RC.fan_in_concat(-1),
    )
    params = [{}, [{"W": _normal(rng, 4, 4), "b": _normal(rng, 4)}, {}, {}], {}]
    x = _normal(rng, 3, 4)
    y, cache = net.forward(params, x)
    dout = _normal(rng, *y.shape)
    dx, grads = net.backward(dout, cache)
    d1, d2, d3 = np.split(dout, 3, axis=-1)
    np.testing.assert_allclose(dx, d1 @ params[1][0]["W"].T + d2 + d3 * (1 - np.tanh(x) ** 2))
    res = RC.residual(RLay.activation("tanh"))
    y, cache = res.forward({}, x)
    np.testing.assert_allclose(y, x + np.tanh(x))
    np.testing.assert_allclose(
        res.backward(dout[:, :4], cache)[0], dout[:, :4] * (2 - np.tanh(x) ** 2)
    )


def test_every_row_of_the_layer_table_passes():
    rng = np.random.default_rng(0)
    _assert_rows_pass(V.check_more_layers(rng))


def test_a_wrong_twin_fails_the_comparison(monkeypatch):
    spec = ("RNN", {"cell": ("GRUCell", {"hidden": 3}), "return_sequences": True})
    _assert_rows_pass(V.compare_network(spec, (2, 4, 2), seed=3))
    good = RR.gru

    def gru_with_reset_before():  # r multiplies h before the matmul: another GRU
        cell = good()

        def step(params, h, x):
            H = h.shape[-1]
            a_r, a_z, a_n = np.split(x @ params["W_i"] + params["b_i"], 3, axis=-1)
            h_r, h_z, _ = np.split(h @ params["W_h"] + params["b_h"], 3, axis=-1)
            r, z = 1 / (1 + np.exp(-a_r - h_r)), 1 / (1 + np.exp(-a_z - h_z))
            n = np.tanh(a_n + (r * h) @ params["W_h"][:, 2 * H :] + params["b_h"][2 * H :])
            h_new = (1 - z) * n + z * h
            return h_new, h_new, cell.step(params, h, x)[2]

        return cell._replace(step=step)

    monkeypatch.setitem(RR.CELLS, "GRUCell", gru_with_reset_before)
    rows = V.compare_network(spec, (2, 4, 2), seed=3)
    assert not rows[1].passed  # the output differs


def test_a_wrong_max_pool_tie_rule_fails_the_comparison(monkeypatch):
    rng = np.random.default_rng(4)
    _assert_rows_pass(V.check_max_pool_ties(rng))

    def last_max(flat):  # the last maximum of each window instead of the first
        return flat.shape[3] - 1 - np.argmax(np.flip(flat, axis=3), axis=3)

    monkeypatch.setattr(RP, "window_argmax", last_max)
    rows = V.check_max_pool_ties(np.random.default_rng(4))
    assert not any(r.passed for r in rows)


def test_a_wrong_batch_norm_gradient_fails_the_comparison(monkeypatch):
    def partial_backward(dy, cache):  # forgets that mu and var depend on x
        xhat, sigma, axes, scale, keys = cache
        dx, grads = (np.asarray(dy) * (scale if scale is not None else 1)) / sigma, {}
        grads["scale"] = (dy * xhat).sum(axis=tuple(range(dy.ndim - 1)))
        grads["offset"] = dy.sum(axis=tuple(range(dy.ndim - 1)))
        return dx, grads

    monkeypatch.setattr(RN, "norm_backward", partial_backward)
    monkeypatch.setattr(
        RN,
        "batch_norm",
        lambda **kw: RN.Pair(
            lambda p, x: RN.norm_forward(p, np.asarray(x), (0,), 1e-5), partial_backward, "BN"
        ),
    )
    rows = V.compare_network(("BatchNorm", {}), (6, 3), seed=0)
    assert rows[1].passed and not rows[3].passed  # same output, wrong dJ/dx
