"""Audit: random architectures against their hand-derived NumPy twins.

A seeded generator (:func:`random_net`) builds networks from every layer kind of
``nnjax.layers`` (Dense, Conv and ConvTranspose in 1-D and 2-D, the pools, LayerNorm,
BatchNorm in training and evaluation, residual and fan-out branches with stateful and
dropout children, RNN/Bidirectional/bare cells, Dropout, Flatten, Reshape, Embedding, every
activation) with edge sizes (batch 1, width 1, a window as wide as its input, odd strides),
each block paired with its hand-derived NumPy twin. In float64 the loss J, dJ/dparams and
dJ/dx of every loss, through JAX, must equal the twin's forward, loss gradient and backward
to 1e-9 relative (measured: at most 9e-13 over 400 random networks). Random fit
configurations are held against Optax in tests/test_random_fit_audit.py.
"""

import jax
import numpy as np
import pytest

from nnjax import layers as L
from nnjax.losses import get_loss
from nnjax.reference import activations as RA
from nnjax.reference import combinators as RC
from nnjax.reference import conv as RCv
from nnjax.reference import layers as RL
from nnjax.reference import losses as RLo
from nnjax.reference import norm as RN
from nnjax.reference import pool as RP
from nnjax.reference import recurrent as RR

ACTS = sorted(RA.ACTIVATIONS)
CELLS = {"SimpleRNNCell": L.SimpleRNNCell, "GRUCell": L.GRUCell, "LSTMCell": L.LSTMCell}
CELL_TWINS = {"SimpleRNNCell": RR.simple_rnn_cell, "GRUCell": RR.gru_cell,
              "LSTMCell": RR.lstm_cell}  # fmt: skip


def _pick(rng, seq):
    return seq[int(rng.integers(len(seq)))]


def _fixed(twin):
    """A block whose twin needs nothing from the run (no key, no mode, no state)."""
    return lambda key, shape, train, rng: (twin, None)


def _spatial(rng, shape):
    rank, C, small = len(shape) - 2, shape[-1], min(shape[1:-1])

    def sizes():  # one int (the input's smallest size too) or a tuple, one per spatial axis
        return _pick(rng, [1, 2, 3, small, tuple(_pick(rng, [1, 2, 3]) for _ in range(rank))])

    kind = _pick(rng, ["Conv", "ConvTranspose", "MaxPool", "AvgPool", "GlobalAvgPool"])
    if kind == "GlobalAvgPool":
        return L.GlobalAvgPool(), _fixed(RP.global_avg_pool())
    pairs = [[int(rng.integers(0, 2)), int(rng.integers(0, 2))] for _ in range(rank)]
    kw = {"strides": sizes(), "padding": _pick(rng, ["VALID", "SAME", 0, 1, pairs])}
    if kind in ("MaxPool", "AvgPool"):
        kw["strides"] = _pick(rng, [None, kw["strides"]])
        k = sizes()
        pj, pt = (L.MaxPool, RP.max_pool) if kind == "MaxPool" else (L.AvgPool, RP.avg_pool)
        return pj(k, **kw), _fixed(pt(k, **kw))
    kw.update(dilation=_pick(rng, [1, 1, 2]), use_bias=bool(rng.random() < 0.7))
    k = sizes()
    if kind == "Conv":
        g = _pick(rng, [g for g in (1, 2, 3) if C % g == 0])
        F = g * _pick(rng, [1, 2])
        return L.Conv(F, k, groups=g, **kw), _fixed(RCv.conv(F, k, groups=g, **kw))
    F = _pick(rng, [1, 2, 3])
    return L.ConvTranspose(F, k, **kw), _fixed(RCv.conv_transpose(F, k, **kw))


def _recurrent(rng, shape):
    kind, H, seqs = _pick(rng, list(CELLS)), _pick(rng, [1, 2, 3]), bool(rng.random() < 0.5)
    if rng.random() < 0.5:
        rev = bool(rng.random() < 0.5)
        twin = RR.rnn(RR.CELLS[kind](), return_sequences=seqs, reverse=rev)
        return L.RNN(CELLS[kind](H), return_sequences=seqs, reverse=rev), _fixed(twin)
    merge, back = _pick(rng, ["concat", "sum"]), _pick(rng, [None, *CELLS])
    bj, bt = (None, None) if back is None else (CELLS[back](H), RR.CELLS[back]())
    kw = {"return_sequences": seqs, "merge": merge}
    twin = RR.bidirectional(RR.CELLS[kind](), bt, **kw)
    return L.Bidirectional(CELLS[kind](H), bj, **kw), _fixed(twin)


def _batch_norm(eps, us, uo, train, state):
    return RN.batch_norm(eps=eps, use_scale=us, use_offset=uo, train=train, state=state)


def _branch(rng, shape):
    F, act = shape[-1], _pick(rng, ACTS)
    conv = len(shape) >= 3 and rng.random() < 0.5
    fj, ft = (L.Conv(F, 3, padding="SAME"), RCv.conv(F, 3, padding="SAME")) if conv else (
        L.Dense(F), RL.dense(F))  # fmt: skip
    fj, ft = L.serial(fj, L.Activation(act)), RL.serial(ft, RL.activation(act))
    kind = _pick(rng, ["residual", "residual2", "sum", "concat3", "bn", "dropout", "nested"])
    if kind == "residual":
        return L.residual(fj), _fixed(RC.residual(ft))
    if kind == "residual2":
        return L.residual(L.residual(fj)), _fixed(RC.residual(RC.residual(ft)))
    if kind == "bn":  # a stateful child, its statistics as init makes them
        zero_one = {"mean": np.zeros(F), "var": np.ones(F)}
        return L.residual(L.serial(L.Dense(F), L.BatchNorm())), lambda key, s, train, rng: (
            RC.residual(RL.serial(RL.dense(F), _batch_norm(1e-5, True, True, train, zero_one))),
            None,
        )  # fmt: skip
    if kind == "dropout":  # residual passes its key on; serial splits it
        rate = _pick(rng, [0.3, 0.5])

        def twin(key, s, train, rng):
            mask = np.asarray(jax.random.bernoulli(jax.random.split(key)[1], 1 - rate, s))
            return RC.residual(RL.serial(RL.dense(F), RL.dropout(rate, mask))), None

        return L.residual(L.serial(L.Dense(F), L.Dropout(rate))), twin
    if kind == "nested":  # a branch that is itself two branches: x + x + f(x)
        layer = L.serial(L.FanOut(2), L.parallel(L.FanOut(2), L.Identity()),
                         L.parallel(L.FanInSum(), fj), L.FanInSum())  # fmt: skip
        twin = RL.serial(RC.fan_out(2), RC.parallel(RC.fan_out(2), RL.identity()),
                         RC.parallel(RC.fan_in_sum(), ft), RC.fan_in_sum())  # fmt: skip
        return layer, _fixed(twin)
    if kind == "sum":
        layer = L.serial(L.FanOut(2), L.parallel(fj, L.Identity()), L.FanInSum())
        twin = RL.serial(RC.fan_out(2), RC.parallel(ft, RL.identity()), RC.fan_in_sum())
        return layer, _fixed(twin)
    ax = _pick(rng, [-1, 0, 1])
    layer = L.serial(L.FanOut(3), L.parallel(fj, L.Identity(), fj), L.FanInConcat(ax))
    twin = RL.serial(RC.fan_out(3), RC.parallel(ft, RL.identity(), ft), RC.fan_in_concat(ax))
    return layer, _fixed(twin)


def _anywhere(rng, shape):
    kind = _pick(rng, ["Dense", "Activation", "LayerNorm", "BatchNorm", "Dropout", "Cell",
                       "Reshape", "Flatten"])  # fmt: skip
    flags = (bool(rng.random() < 0.7), bool(rng.random() < 0.7))
    if kind == "Dense":
        F = _pick(rng, [1, 2, 3, 5])
        return L.Dense(F, use_bias=flags[0]), _fixed(RL.dense(F, use_bias=flags[0]))
    if kind == "Activation":
        a = _pick(rng, ACTS)
        return L.Activation(a), _fixed(RL.activation(a))
    eps = _pick(rng, [1e-5, 1e-3, 0.1])
    if kind == "LayerNorm":
        twin = RN.layer_norm(eps=eps, use_scale=flags[0], use_offset=flags[1])
        return L.LayerNorm(eps=eps, use_scale=flags[0], use_offset=flags[1]), _fixed(twin)
    if kind == "BatchNorm":  # random running statistics: evaluation mode reads them

        def twin(key, s, train, rng):
            st = {"mean": rng.normal(size=s[-1]), "var": rng.uniform(0.2, 2.0, s[-1])}
            return _batch_norm(eps, *flags, train, st), st

        return L.BatchNorm(eps=eps, use_scale=flags[0], use_offset=flags[1]), twin
    if kind == "Dropout":
        rate = _pick(rng, [0.0, 0.1, 0.5, 0.9])
        return L.Dropout(rate), lambda key, s, train, rng: (
            RL.dropout(rate, np.asarray(jax.random.bernoulli(key, 1 - rate, s))),
            None,
        )
    if kind == "Cell":  # a bare cell maps (..., F) -> (..., H), every leading axis a batch
        c, H = _pick(rng, list(CELLS)), _pick(rng, [1, 2, 3])
        return CELLS[c](H), _fixed(CELL_TWINS[c](H))
    if kind == "Flatten" and len(shape) > 2:
        return L.Flatten(), _fixed(RL.flatten())
    n = int(np.prod(shape[1:]))
    t = _pick(rng, [d for d in range(1, n + 1) if n % d == 0])
    target = _pick(rng, [(n,), (t, n // t), (1, t, n // t), (t, 1, n // t)])
    return L.Reshape(target), _fixed(RL.reshape(target))


def _init_shapes(layer, shape):
    """(output shape, params, state) of ``init_model``, the arrays as ShapeDtypeStructs (the
    init traced, not run)."""
    box = []

    def init():
        out, params, state = L.init_model(layer, jax.random.key(0), shape)
        box.append(out)
        return params, state

    params, state = jax.eval_shape(init)
    return tuple(box[0]), params, state


def _out_shape(layer, shape):
    return _init_shapes(layer, shape)[0]


def random_net(rng, n_blocks=3):
    """(blocks [(layer, twin_factory)], input shape, (vocabulary, features) or None)."""
    B = _pick(rng, [1, 2, 3, 4])
    emb, kind = None, _pick(rng, ["vec", "seq", "img", "ids"])
    dims = {"vec": 1, "seq": 2, "img": 3}.get(kind, 0)
    shape = (B, *(_pick(rng, [1, 2, 3, 5]) for _ in range(dims)))
    blocks = []
    if kind == "ids":
        emb = (_pick(rng, [1, 3, 7]), _pick(rng, [1, 2, 3]))
        shape = _pick(rng, [(B,), (B, _pick(rng, [1, 2, 4]))])
        blocks.append((L.Embedding(*emb), _fixed(RL.embedding(*emb))))
    cur = _out_shape(blocks[0][0], shape) if blocks else shape
    for _ in range(200):
        if len(blocks) >= n_blocks + (emb is not None):
            break
        r = rng.random()
        if len(cur) in (3, 4) and r < 0.35:
            block = _spatial(rng, cur)
        elif len(cur) == 3 and r < 0.5:
            block = _recurrent(rng, cur)
        else:
            block = _branch(rng, cur) if r < 0.65 else _anywhere(rng, cur)
        try:
            new = _out_shape(block[0], cur)
        except ValueError:  # the block does not fit this input: draw another
            continue
        norm = block[0].stateful and int(np.prod(cur[:-1])) < 2
        if int(np.prod(new)) and not norm:
            blocks.append(block)
            cur = new
    if len(cur) > 2:
        blocks.append((L.Flatten(), _fixed(RL.flatten())))
    K = _pick(rng, [1, 2, 3])
    return blocks + [(L.Dense(K), _fixed(RL.dense(K)))], shape, emb


LOSSES = ("mse", "softmax_cross_entropy", "binary_cross_entropy",
          "binary_cross_entropy_with_logits")  # fmt: skip


def _target(rng, loss, B, K):
    if loss == "mse":
        return rng.normal(size=(B, K))
    if loss == "softmax_cross_entropy":
        return rng.integers(0, K, B) if rng.random() < 0.5 else rng.dirichlet(np.ones(K), B)
    return rng.integers(0, 2, B).astype(float) if K == 1 else rng.random((B, K))


def _rel(actual, expected):
    """max |a - e| over a tree, relative to max(|e|, 1e-6) over the tree."""
    a, e = jax.tree.leaves(actual), jax.tree.leaves(expected)
    assert [np.shape(x) for x in a] == [np.shape(x) for x in e]
    top = max([float(np.max(np.abs(x))) for x in e if np.size(x)] + [1e-6])
    return max([float(np.max(np.abs(np.subtract(x, y)))) for x, y in zip(a, e) if np.size(x)]
               + [0.0]) / top  # fmt: skip


def compare_random_net(seed):
    """{"J", "dparams", "dx"}: relative differences, JAX (float64) vs the twin, for the random
    network and loss of ``seed``; asserts init's output shape is apply's."""
    rng = np.random.default_rng(seed)
    blocks, shape, emb = random_net(rng)
    train, key = bool(rng.random() < 0.6), jax.random.key(seed)
    model = L.serial(*(layer for layer, _ in blocks))
    out_shape, params, state = _init_shapes(model, shape)
    params = jax.tree.map(lambda p: rng.normal(0, 0.7, p.shape), params)
    state = [jax.tree.map(lambda v: np.zeros(v.shape), s) for s in state] if state else ()
    for st in jax.tree.leaves(state, is_leaf=lambda v: isinstance(v, dict)):
        st["var"] += 1.0  # BatchNorm's running statistics as init makes them: 0 and 1
    twins, cur = [], shape
    for i, ((layer, twin), k) in enumerate(zip(blocks, jax.random.split(key, len(blocks)))):
        pair, st = twin(k, cur, train, rng)
        twins.append(pair)
        if st is not None:
            state[i] = st
        cur = _out_shape(layer, cur)
    x = rng.integers(0, emb[0], shape) if emb else rng.normal(size=shape)
    B, K = out_shape
    loss = _pick(rng, [n for n in LOSSES if K > 1 or n != "softmax_cross_entropy"])
    t, squash = _target(rng, loss, B, K), loss == "binary_cross_entropy"

    def J(p, x):
        y = L.apply_model(model, p, state, x, key=key, train=train)[0]
        assert y.shape == out_shape
        return get_loss(loss)(jax.nn.sigmoid(y) if squash else y, t)

    jJ, (jdp, jdx) = jax.jit(jax.value_and_grad(J, (0, 1), allow_int=True))(params, x)
    twin = RL.serial(*twins)
    y, cache = twin.forward(params, x)
    p = RA.sigmoid(y) if squash else y
    value, grad = RLo.LOSSES[loss]
    dy = grad(p, t) * (p * (1 - p) if squash else 1.0)
    tdx, tdp = twin.backward(dy, cache)
    dx = 0.0 if emb else _rel(jdx, tdx)
    return {"J": _rel(jJ, value(p, t)), "dparams": _rel(jdp, tdp), "dx": dx}


ARCHITECTURE_SEEDS = list(range(26))


@pytest.mark.parametrize("seed", ARCHITECTURE_SEEDS)
def test_random_architecture_matches_its_twin(seed):
    with jax.enable_x64(True):
        errors = compare_random_net(seed)
    assert max(errors.values()) < 1e-9, errors


def _value_and_vjp(f, params, x, dout):
    y, vjp = jax.vjp(f, params, x)
    return y, vjp(dout)


@pytest.mark.parametrize("kind", sorted(CELLS))
@pytest.mark.parametrize("x_shape", [(2, 3, 4), (4,), (1, 1, 1, 2)])
def test_a_bare_cell_twin_takes_every_leading_batch_axis(kind, x_shape):
    """Finding: a cell maps x (..., F) -> h (..., H) (nnjax.layers.recurrent), but its twin
    took x (B, F) only: on x (2, 3, 4) each raised "operands could not be broadcast together
    with shapes (2,3,12) (2,12)" (LSTM; (2,3,3) (2,3) the others), on x (4,) it returned h
    of shape (4, 3) for the cell's (3,), and where the shapes happened to broadcast (x (4, 1,
    3), h (4, 3)) a wrong (4, 4, 3). Random networks with a bare cell after a sequence layer
    or an Embedding of (B, T) ids failed so."""
    rng = np.random.default_rng(0)
    with jax.enable_x64(True):
        layer = CELLS[kind](3)
        _, params, _ = _init_shapes(layer, x_shape)
        params = jax.tree.map(lambda p: rng.normal(0, 0.7, p.shape), params)
        x, dout = rng.normal(size=x_shape), rng.normal(size=(*x_shape[:-1], 3))
        # one compiled program (eagerly, each op of the cell and its vjp compiles alone)
        y, (dp, dx) = jax.jit(_value_and_vjp, static_argnums=0)(layer.apply, params, x, dout)
    twin = CELL_TWINS[kind](3)
    ty, cache = twin.forward(params, x)
    tdx, tdp = twin.backward(dout, cache)
    assert ty.shape == y.shape and tdx.shape == x.shape
    assert max(_rel(y, ty), _rel(dx, tdx), _rel(dp, tdp)) < 1e-12


@pytest.mark.parametrize("fan_out_of_branches", [False, True])
def test_the_twin_takes_a_branch_that_is_itself_branches(fan_out_of_branches):
    """Finding: a fan-out inside a branch (JAX takes any tuple of branches) broke the twin,
    which stacked the inner tuple into one array: serial(FanOut(2), parallel(FanOut(2),
    Identity()), parallel(FanInSum(), Dense(3)), FanInSum()) raised "layer 2 (parallel(
    FanInSum, Dense(3))): branch 0 (FanInSum): FanInSum: expected a tuple of several
    arrays" (and a FanOut of a tuple of branches likewise). Checked through ``nnjax.verify``
    (the twin built from the spec, float64, J = sum(dout * y))."""
    from nnjax.verify.layers import compare_network

    if fan_out_of_branches:  # ((x, x), (x, x)) -> (x + x, [x, x]) -> [2x, x, x]
        layers = [L.Dense(3), L.FanOut(2), L.FanOut(2)]
        layers += [L.parallel(L.FanInSum(), L.FanInConcat()), L.FanInConcat()]
    else:  # ((x, x), x) -> (x + x, x W + b) -> 2x + x W + b
        layers = [L.FanOut(2), L.parallel(L.FanOut(2), L.Identity())]
        layers += [L.parallel(L.FanInSum(), L.Dense(3)), L.FanInSum()]
    rows = compare_network(L.serial(*layers).spec, (2, 3), seed=0)
    assert all(row.passed for row in rows), rows


@pytest.mark.parametrize("padding", ["SAME", 1, [[0, 1]]])
@pytest.mark.parametrize("dtype", [np.int32, np.int8, np.uint8, np.bool_])
def test_max_pool_twin_pads_integer_and_bool_inputs_as_the_layer(padding, dtype):
    """Finding: MaxPool keeps an integer or bool input's dtype and pads it with the dtype's
    lowest value, but its twin padded with -inf: RP.max_pool(2, padding="SAME") on int32
    raised "OverflowError: cannot convert float infinity to integer"."""
    x = np.random.default_rng(1).integers(-128 if dtype == np.int8 else 0, 100, (2, 5, 3))
    x = (x % 2).astype(dtype) if dtype == np.bool_ else x.astype(dtype)
    with jax.enable_x64(True):
        want = np.asarray(L.MaxPool(2, strides=1, padding=padding).apply({}, x))
    got, _ = RP.max_pool(2, strides=1, padding=padding).forward({}, x)
    assert got.dtype == want.dtype == dtype
    np.testing.assert_array_equal(got, want)
