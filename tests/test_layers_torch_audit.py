"""Every layer against PyTorch's ``torch.nn`` (float64 in both): outputs AND gradients (input
and params), params copied across layouts (NHWC/NCHW, (in, out)/(out, in), HWIO/OIHW, flipped
transposed kernels, gate order). ``max_errors`` gives max |nnjax - torch| per case (the audit
table: ``python tests/test_layers_torch_audit.py``)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nnjax import layers as L
from nnjax.reference import conv as R_conv
from nnjax.reference import layers as R_layers
from nnjax.reference import norm as R_norm
from nnjax.reference import pool as R_pool
from nnjax.reference import recurrent as R_rec

torch = pytest.importorskip("torch")
F = torch.nn.functional
TOL = 1e-10


def _tree_err(a, b) -> float:
    return max(float(np.max(np.abs(np.asarray(x) - np.asarray(y)), initial=0.0))
               for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))  # fmt: skip


def max_errors(jfn, tfn, *args, twin=None, seed=0):
    """Max |nnjax - torch| of the output and of the gradients: y = jfn(*args) in JAX (x64)
    and tfn(*args) in torch, args float64 NumPy pytrees in nnjax's layout (tfn moves them to
    torch's with differentiable ops, so torch's gradients come back in nnjax's layout); the
    gradients are those of sum(y * R) for a random R, w.r.t. every arg. ``twin``: the NumPy
    twin (a Pair) of the same layer, run on (args[0], args[1]) = (params, x); then a dict
    ``{"nnjax": (out, grad), "twin": (out, grad)}``, the twin's grads checked against torch's
    for (params, x)."""
    with jax.enable_x64(True):  # output and vjp compiled as one program (not op by op)
        jargs = jax.tree.map(jnp.asarray, args)
        R = np.random.default_rng(seed).normal(size=jax.eval_shape(jfn, *jargs).shape)
        y, jgrads = jax.jit(lambda a, r: _out_and_vjp(jfn, a, r))(jargs, jnp.asarray(R))
    targs = jax.tree.map(lambda a: torch.tensor(a, requires_grad=True), args)
    yt = tfn(*targs)
    (yt * torch.tensor(R)).sum().backward()
    tgrads = jax.tree.map(lambda t: t.grad.numpy(), targs)
    assert yt.shape == y.shape, (yt.shape, y.shape)
    yt = yt.detach().numpy()
    errors = (_tree_err(y, yt), _tree_err(jgrads, tgrads))
    if twin is None:
        return errors
    y_twin, cache = twin.forward(args[0], args[1])
    dx, grads = twin.backward(R, cache)
    twin_errors = (_tree_err(y_twin, yt), _tree_err((grads, dx), (tgrads[0], tgrads[1])))
    return {"nnjax": errors, "twin": twin_errors}


def _out_and_vjp(jfn, args, R):
    y, vjp = jax.vjp(jfn, *args)
    return y, vjp(R)


def _normal(*shape, seed=1):
    return np.random.default_rng(seed).normal(size=shape)


def _params(layer, shape, seed=2):
    """The layer's params with random values (biases and scales too), float64 (shapes from
    init, traced only: nothing compiled)."""
    with jax.enable_x64(True):
        p = jax.eval_shape(lambda: L.init_model(layer, jax.random.key(0), shape)[1])
    rng = np.random.default_rng(seed)
    return jax.tree.map(lambda a: rng.normal(size=a.shape), p)


def _cl(t):  # channels-last -> channels-first
    return t.movedim(-1, 1)


def _fl(t):  # channels-first -> channels-last
    return t.movedim(1, -1)


def _oihw(W):  # nnjax (*k, C/G, F) -> torch Conv (F, C/G, *k)
    return W.permute(W.ndim - 1, W.ndim - 2, *range(W.ndim - 2))


def _pt_transpose(W):  # nnjax ConvTranspose (*k, C, F) -> torch (C, F, *k), kernel flipped
    return W.flip(tuple(range(W.ndim - 2))).permute(W.ndim - 2, W.ndim - 1, *range(W.ndim - 2))


# ------------------------------------------------------------------ cases: name -> (errors)


def dense_case():
    layer, x = L.Dense(5), _normal(4, 3, 6)
    p = _params(layer, x.shape)
    tfn = lambda p, x: F.linear(x, p["W"].T, p["b"])  # noqa: E731
    return max_errors(layer.apply, tfn, p, x, twin=R_layers.dense(5))


CONV_CASES = {  # label: (kernel, strides, nnjax padding, torch padding, dilation, groups, rank)
    "2d k3 s1 VALID": (3, 1, "VALID", 0, 1, 1, 2),
    "2d k3 s2 pad1": (3, 2, 1, 1, 1, 1, 2),
    "2d k(2,3) s(2,1) pairs": ((2, 3), (2, 1), [[1, 1], [2, 2]], (1, 2), 1, 1, 2),
    "2d k3 SAME (odd)": (3, 1, "SAME", "same", 1, 1, 2),
    "2d k4 SAME (even)": (4, 1, "SAME", "same", 1, 1, 2),
    "2d k2 d3 SAME (even, dilated)": (2, 1, "SAME", "same", 3, 1, 2),
    "2d k3 d2 s1": (3, 1, "VALID", 0, 2, 1, 2),
    "2d k3 groups 2": (3, 1, 1, 1, 1, 2, 2),
    "2d k3 depthwise (groups C)": (3, 1, "SAME", "same", 1, 4, 2),
    "1d k4 SAME (even)": (4, 1, "SAME", "same", 1, 1, 1),
    "1d k3 s3 d2 groups 2": (3, 3, 2, 2, 2, 2, 1),
}


def conv_case(label):
    k, s, pad, tpad, d, g, rank = CONV_CASES[label]
    layer = L.Conv(8, k, strides=s, padding=pad, dilation=d, groups=g)
    x = _normal(2, *(9, 8)[:rank], 4)
    p = _params(layer, x.shape)
    conv = F.conv2d if rank == 2 else F.conv1d

    def tfn(p, x):
        y = conv(_cl(x), _oihw(p["W"]), p["b"], stride=s, padding=tpad, dilation=d, groups=g)
        return _fl(y)

    twin = R_conv.conv(8, k, strides=s, padding=pad, dilation=d, groups=g)
    return max_errors(layer.apply, tfn, p, x, twin=twin)


def same_stride2_case():
    """'SAME' with stride 2 (torch's 'same' refuses strides): XLA's pads, lo = floor(total/2),
    the extra one at the end (as torch pads 'same' with an even kernel), by F.pad."""
    layer, x = L.Conv(3, 4, strides=2, padding="SAME"), _normal(2, 8, 7, 2)
    p = _params(layer, x.shape)  # H: out 4, total 2 -> (1, 1); W: out 4, total 3 -> (1, 2)

    def tfn(p, x):
        return _fl(F.conv2d(F.pad(_cl(x), (1, 2, 1, 1)), _oihw(p["W"]), p["b"], stride=2))

    return max_errors(layer.apply, tfn, p, x, twin=R_conv.conv(3, 4, strides=2, padding="SAME"))


CONV_T_CASES = {  # label: (kernel, strides, dilation, torch padding, output_padding, rank)
    "2d k3 s2 p0": (3, 2, 1, 0, 0, 2),
    "2d k4 s2 p1": (4, 2, 1, 1, 0, 2),
    "2d k3 s2 p1 op1": (3, 2, 1, 1, 1, 2),
    "2d k3 s1 d2 p1": (3, 1, 2, 1, 0, 2),
    "1d k5 s3 p2 op2": (5, 3, 1, 2, 2, 1),
    "1d k2 s2 d2 p0": (2, 2, 2, 0, 0, 1),
}


def conv_transpose_case(label):
    """torch padding p, output_padding op == nnjax pairs (k_eff-1-p, k_eff-1-p+op)."""
    k, s, d, tp, op, rank = CONV_T_CASES[label]
    k_eff = (k - 1) * d + 1
    pairs = [[k_eff - 1 - tp, k_eff - 1 - tp + op]] * rank
    layer = L.ConvTranspose(5, k, strides=s, padding=pairs, dilation=d)
    x = _normal(2, *(5, 4)[:rank], 3)
    p = _params(layer, x.shape)
    conv = F.conv_transpose2d if rank == 2 else F.conv_transpose1d

    def tfn(p, x):
        w = _pt_transpose(p["W"])
        return _fl(conv(_cl(x), w, p["b"], stride=s, padding=tp, output_padding=op, dilation=d))

    twin = R_conv.conv_transpose(5, k, strides=s, padding=pairs, dilation=d)
    return max_errors(layer.apply, tfn, p, x, twin=twin)


def conv_transpose_valid_case(k):
    """ "VALID" == torch padding 0 when k_eff >= s; with k_eff < s nnjax's output has
    s - k_eff more positions, which hold only the bias (compared separately)."""
    s, layer, x = 3, L.ConvTranspose(2, k, strides=3), _normal(2, 4, 3)
    p = _params(layer, x.shape)
    n_torch = (4 - 1) * s + k

    def jfn(p, x):
        return layer.apply(p, x)[:, :n_torch]

    def tfn(p, x):
        return _fl(F.conv_transpose1d(_cl(x), _pt_transpose(p["W"]), p["b"], stride=s))

    errors = max_errors(jfn, tfn, p, x)
    with jax.enable_x64(True):
        tail = np.asarray(layer.apply(p, x))[:, n_torch:]
    assert tail.shape[1] == max(s - k, 0)
    return errors[0] + _tree_err(tail, np.broadcast_to(p["b"], tail.shape)), errors[1]


POOL_CASES = {  # label: (kind, window, strides, padding, rank)
    "max 2d k2": ("MaxPool", 2, None, 0, 2),
    "max 2d k3 s2 pad1": ("MaxPool", 3, 2, 1, 2),
    "max 2d k(3,2) s1": ("MaxPool", (3, 2), 1, 0, 2),
    "max 1d k3 s2 pad1": ("MaxPool", 3, 2, 1, 1),
    "avg 2d k2": ("AvgPool", 2, None, 0, 2),
    "avg 2d k3 s2 pad1 (count_include_pad=False)": ("AvgPool", 3, 2, 1, 2),
    "avg 2d k3 s1 pad1 (count_include_pad=False)": ("AvgPool", 3, 1, 1, 2),
    "avg 1d k4 s3 pad2 (count_include_pad=False)": ("AvgPool", 4, 3, 2, 1),
}


def pool_case(label, x=None):
    kind, k, s, pad, rank = POOL_CASES[label]
    layer = getattr(L, kind)(k, strides=s, padding=pad)
    x = _normal(2, *(7, 6)[:rank], 3) if x is None else x
    tk, ts = k, k if s is None else s
    if kind == "MaxPool":
        pool = F.max_pool2d if rank == 2 else F.max_pool1d
        tfn = lambda p, x: _fl(pool(_cl(x), tk, ts, pad))  # noqa: E731
    else:
        pool = F.avg_pool2d if rank == 2 else F.avg_pool1d
        tfn = lambda p, x: _fl(pool(_cl(x), tk, ts, pad, count_include_pad=False))  # noqa: E731
    twin = (R_pool.max_pool if kind == "MaxPool" else R_pool.avg_pool)(k, strides=s, padding=pad)
    return max_errors(layer.apply, tfn, {}, x, twin=twin)


def max_pool_ties_case():
    """Integer-valued input with many ties, overlapping windows: both send each window's
    gradient to its FIRST maximum (row-major)."""
    x = np.random.default_rng(3).integers(0, 3, size=(2, 7, 6, 3)).astype(np.float64)
    return pool_case("max 2d k3 s2 pad1", x)


def global_avg_case():
    layer, x = L.GlobalAvgPool(), _normal(2, 5, 4, 3)
    tfn = lambda p, x: x.mean((1, 2))  # noqa: E731
    return max_errors(layer.apply, tfn, {}, x, twin=R_pool.global_avg_pool())


def layer_norm_case():
    layer, x = L.LayerNorm(eps=1e-3), _normal(3, 4, 6)
    p = _params(layer, x.shape)
    tfn = lambda p, x: F.layer_norm(x, (6,), p["scale"], p["offset"], eps=1e-3)  # noqa: E731
    return max_errors(layer.apply, tfn, p, x, twin=R_norm.layer_norm(eps=1e-3))


def batch_norm_case(train, shape=(4, 5, 3, 2)):
    """One step of BatchNorm against F.batch_norm (channels moved first), momentum 0.3,
    eps 1e-3, from running statistics (mean, var) = (m0, v0): output and gradients; the
    new running statistics are compared too (added to the output error)."""
    layer = L.BatchNorm(momentum=0.3, eps=1e-3)
    x = _normal(*shape) * 2 + 1
    p = _params(layer, shape)
    C = shape[-1]
    state = {"mean": _normal(C, seed=5), "var": np.abs(_normal(C, seed=6)) + 0.5}
    rm, rv = torch.tensor(state["mean"]), torch.tensor(state["var"])

    def jfn(p, x):
        return layer.apply(p, x, state=jax.tree.map(jnp.asarray, state), train=train)[0]

    def tfn(p, x):
        y = F.batch_norm(_cl(x), rm, rv, p["scale"], p["offset"], train, 0.3, 1e-3)
        return _fl(y)

    twin = R_norm.batch_norm(momentum=0.3, eps=1e-3, train=train, state=state)
    errors = max_errors(jfn, tfn, p, x, twin=twin)
    with jax.enable_x64(True):
        _, new = layer.apply(p, x, state=jax.tree.map(jnp.asarray, state), train=train)
    torch_new = {"mean": rm.numpy(), "var": rv.numpy()}
    twin_new = R_norm.batch_norm_update(state, x, 0.3) if train else state
    (out, grad), (t_out, t_grad) = errors["nnjax"], errors["twin"]
    return {
        "nnjax": (out + _tree_err(new, torch_new), grad),
        "twin": (t_out + _tree_err(twin_new, torch_new), t_grad),
    }


def embedding_case():
    layer = L.Embedding(7, 4)
    ids = np.random.default_rng(0).integers(0, 7, size=(3, 5))
    p = _params(layer, ids.shape)
    jfn = lambda p: layer.apply(p, ids)  # noqa: E731
    errors = max_errors(jfn, lambda p: F.embedding(torch.tensor(ids), p["W"]), p)
    y, cache = R_layers.embedding().forward(p, ids)  # the twin, against nnjax (== torch)
    R = np.random.default_rng(0).normal(size=y.shape)
    with jax.enable_x64(True):
        y_jax, vjp = jax.vjp(jfn, jax.tree.map(jnp.asarray, p))
        (gW,) = vjp(jnp.asarray(R))
    twin = (_tree_err(y, y_jax), _tree_err(R_layers.embedding().backward(R, cache)[1], gW))
    return {"nnjax": errors, "twin": twin}


def _torch_cell_params(kind, p, suffix=""):
    """torch's weight_ih/hh (G H, .) = W^T; GRU keeps b_ih, b_hh; the others put the single
    bias b into bias_ih and zeros into bias_hh."""
    out = {f"weight_ih{suffix}": p["W_i"].T, f"weight_hh{suffix}": p["W_h"].T}
    if kind == "GRUCell":
        out[f"bias_ih{suffix}"], out[f"bias_hh{suffix}"] = p["b_i"], p["b_h"]
    else:
        out[f"bias_ih{suffix}"], out[f"bias_hh{suffix}"] = p["b"], torch.zeros_like(p["b"])
    return out


TORCH_CELLS = {"SimpleRNNCell": "RNNCell", "GRUCell": "GRUCell", "LSTMCell": "LSTMCell"}
TWIN_CELLS = {"SimpleRNNCell": R_rec.simple_rnn, "GRUCell": R_rec.gru, "LSTMCell": R_rec.lstm}
TORCH_RNNS = {"SimpleRNNCell": "RNN", "GRUCell": "GRU", "LSTMCell": "LSTM"}


def cell_case(kind):
    """One step from a random carry (h, or (h, c)); the output is h' (and c' for the LSTM,
    concatenated), the gradients reach x, the params and the carry."""
    cell, x, H = getattr(L, kind)(5), _normal(3, 4), 5
    p = _params(cell, x.shape)
    h0 = (_normal(3, H, seed=7), _normal(3, H, seed=8)) if kind == "LSTMCell" else _normal(3, H)
    module = getattr(torch.nn, TORCH_CELLS[kind])(4, H).double()

    def jfn(p, x, h0):
        y, carry = cell.apply(p, x, initial_state=h0, return_carry=True)
        return jnp.concatenate(carry, -1) if kind == "LSTMCell" else y

    def tfn(p, x, h0):
        out = torch.func.functional_call(module, _torch_cell_params(kind, p), (x, h0))
        return torch.cat(out, -1) if kind == "LSTMCell" else out

    return max_errors(jfn, tfn, p, x, h0)


def rnn_case(kind, return_sequences, reverse=False):
    """RNN over (B, T, F) from a random initial carry, against torch.nn.RNN/GRU/LSTM
    (batch_first); reverse == torch on the time-flipped input, outputs flipped back."""
    layer = L.RNN(getattr(L, kind)(5), return_sequences=return_sequences, reverse=reverse)
    x, H = _normal(3, 6, 4), 5
    p = _params(layer, x.shape)
    lstm = kind == "LSTMCell"
    h0 = (_normal(3, H, seed=7), _normal(3, H, seed=8)) if lstm else _normal(3, H)
    module = getattr(torch.nn, TORCH_RNNS[kind])(4, H, batch_first=True).double()

    def tfn(p, x, h0):
        h0t = (h0[0][None], h0[1][None]) if lstm else h0[None]
        xs = x.flip(1) if reverse else x
        ys = torch.func.functional_call(module, _torch_cell_params(kind, p, "_l0"), (xs, h0t))[0]
        ys = ys.flip(1) if reverse else ys
        return ys if return_sequences else ys[:, 0 if reverse else -1]

    twin = R_rec.rnn(TWIN_CELLS[kind](), return_sequences=return_sequences, reverse=reverse,
                     initial_state=h0)  # fmt: skip
    jfn = lambda p, x, h0: layer.apply(p, x, initial_state=h0)  # noqa: E731
    return max_errors(jfn, tfn, p, x, h0, twin=twin)


def bidirectional_case(kind, return_sequences):
    """Bidirectional (concat) against torch's bidirectional=True: output (B, T, 2H) as is;
    the last output [forward at T-1, backward at 0] == cat(h_n[0], h_n[1])."""
    layer = L.Bidirectional(getattr(L, kind)(5), return_sequences=return_sequences)
    x, H = _normal(3, 6, 4), 5
    p = _params(layer, x.shape)
    module = getattr(torch.nn, TORCH_RNNS[kind])(4, H, batch_first=True, bidirectional=True)
    module = module.double()

    def tfn(p, x):
        tp = _torch_cell_params(kind, p["forward"], "_l0")
        tp.update(_torch_cell_params(kind, p["backward"], "_l0_reverse"))
        ys, h_n = torch.func.functional_call(module, tp, (x,))
        h_n = h_n[0] if kind == "LSTMCell" else h_n
        return ys if return_sequences else torch.cat([h_n[0], h_n[1]], -1)

    twin = R_rec.bidirectional(TWIN_CELLS[kind](), return_sequences=return_sequences)
    return max_errors(layer.apply, tfn, p, x, twin=twin)


CASES = {
    "Dense": dense_case,
    **{f"Conv {k}": (lambda k=k: conv_case(k)) for k in CONV_CASES},
    "Conv 2d k4 s2 SAME (F.pad (1,2))": same_stride2_case,
    **{f"ConvTranspose {k}": (lambda k=k: conv_transpose_case(k)) for k in CONV_T_CASES},
    "ConvTranspose 1d k4 s3 VALID": lambda: conv_transpose_valid_case(4),
    "ConvTranspose 1d k2 s3 VALID (+1 bias-only)": lambda: conv_transpose_valid_case(2),
    **{f"{k}": (lambda k=k: pool_case(k)) for k in POOL_CASES},
    "max 2d k3 s2 pad1, ties": max_pool_ties_case,
    "GlobalAvgPool": global_avg_case,
    "LayerNorm eps 1e-3": layer_norm_case,
    "BatchNorm train (B,H,W,C)": lambda: batch_norm_case(True),
    "BatchNorm eval (B,H,W,C)": lambda: batch_norm_case(False),
    "BatchNorm train (B,C)": lambda: batch_norm_case(True, (6, 3)),
    "BatchNorm train (B,T,C)": lambda: batch_norm_case(True, (2, 3, 4)),
    "Embedding": embedding_case,
    **{f"{k}": (lambda k=k: cell_case(k)) for k in TORCH_CELLS},
    **{
        f"RNN({k}) seq={s} rev={r}": (lambda k=k, s=s, r=r: rnn_case(k, s, r))
        for k in TORCH_CELLS
        for s, r in ((False, False), (True, True))
    },
    **{
        f"Bidirectional({k}) seq={s}": (lambda k=k, s=s: bidirectional_case(k, s))
        for k, s in (
            ("SimpleRNNCell", True),
            ("GRUCell", True),
            ("LSTMCell", True),
            ("LSTMCell", False),
        )
    },  # fmt: skip
}


def _by_side(errors) -> dict:
    return errors if isinstance(errors, dict) else {"nnjax": errors}


@pytest.mark.filterwarnings("ignore:Using padding='same'")
@pytest.mark.parametrize("case", list(CASES))
def test_layer_and_twin_equal_torch_outputs_and_gradients(case):
    for side, (out, grad) in _by_side(CASES[case]()).items():
        assert out < TOL and grad < TOL, (case, side, out, grad)


# ------------------------------------------ conventions that differ from torch (documented)


def _max_pool_grads(x, k, s, pad):
    """(nnjax's dJ/dx, torch's dJ/dx) of sum(MaxPool(x)) for a (W,) signal."""
    x3 = np.asarray(x, np.float64)[None, :, None]
    with jax.enable_x64(True):
        layer = L.MaxPool(k, strides=s, padding=pad)
        g = jax.grad(lambda x: layer.apply({}, x).sum())(jnp.asarray(x3))
    xt = torch.tensor(x3, requires_grad=True)
    F.max_pool1d(_cl(xt), k, s, pad).sum().backward()
    return np.asarray(g).ravel(), xt.grad.numpy().ravel()


@pytest.mark.parametrize(
    ("x", "k", "s", "pad", "ours", "theirs"),
    [
        ([1.0, np.nan, 3.0, 2.0], 4, 4, 0, [0, 0, 1, 0], [0, 1, 0, 0]),  # torch: the last NaN
        ([np.nan, 1.0, np.nan, 0.5], 4, 4, 0, [0, 0, 0, 1], [0, 0, 1, 0]),
        ([-np.inf, -np.inf, 1.0, 2.0], 3, 2, 1, [0, 0, 0, 1], [1, 0, 0, 1]),  # lost in the pad
        ([2.0, 2.0, 1.0, 2.0], 2, 1, 1, [2, 1, 0, 2], [2, 1, 0, 2]),  # ties: both the first
    ],
)
def test_max_pool_gradient_routing_against_torch_as_documented(x, k, s, pad, ours, theirs):
    """MaxPool's docstring: a window with a NaN routes to JAX's scan choice where torch
    (CPU) picks the window's last NaN; a window that starts in the padding, its real
    positions all -inf, sends its gradient to the padding (dropped) where torch picks the
    first real position; ties go to
    the first maximum in both. The twin follows nnjax."""
    g, g_torch = _max_pool_grads(x, k, s, pad)
    np.testing.assert_array_equal(g, ours)
    np.testing.assert_array_equal(g_torch, theirs)
    x3 = np.asarray(x, np.float64)[None, :, None]
    twin = R_pool.max_pool(k, strides=s, padding=pad)
    y, cache = twin.forward({}, x3)
    np.testing.assert_array_equal(twin.backward(np.ones_like(y), cache)[0].ravel(), ours)


def test_avg_pool_is_count_include_pad_false_not_torchs_default():
    layer, x = L.AvgPool(3, strides=1, padding=1), _normal(1, 5, 2)
    with jax.enable_x64(True):
        y = np.asarray(layer.apply({}, x))
    xt = _cl(torch.tensor(x))
    np.testing.assert_allclose(y, _fl(F.avg_pool1d(xt, 3, 1, 1, count_include_pad=False)))
    default = _fl(F.avg_pool1d(xt, 3, 1, 1)).numpy()  # count_include_pad=True: / 3 at borders
    np.testing.assert_allclose(y[:, 0] * 2 / 3, default[:, 0])
    np.testing.assert_allclose(y[:, 1:-1], default[:, 1:-1])


def test_conv_transpose_int_padding_is_flaxs_not_torchs():
    """ConvTranspose(padding=p) pads the dilated input by p per side (lax/Flax): torch's
    ConvTranspose(padding=q, output_padding=op) is the pair (k_eff-1-q, k_eff-1-q+op), so an
    int p is torch's q = k_eff - 1 - p (here k 4, p 1 == torch q 2: 2 positions fewer)."""
    layer, x = L.ConvTranspose(2, 4, strides=2, padding=1), _normal(1, 5, 3)
    p = _params(layer, x.shape)
    with jax.enable_x64(True):
        y = np.asarray(layer.apply(p, x))
    pt = {k: torch.tensor(v) for k, v in p.items()}
    w = _pt_transpose(pt["W"])
    same = _fl(F.conv_transpose1d(_cl(torch.tensor(x)), w, pt["b"], stride=2, padding=2))
    np.testing.assert_allclose(y, same.numpy(), atol=1e-12)
    torch_p1 = F.conv_transpose1d(_cl(torch.tensor(x)), w, pt["b"], stride=2, padding=1)
    assert y.shape[1] == 8 and torch_p1.shape[-1] == 10


def test_gru_is_reset_after_not_cho_2014():
    """n = tanh(x W_in + b_in + r * (h W_hn + b_hn)) (torch), not Cho et al.'s
    tanh(x W_in + b_in + (r * h) W_hn + b_hn): the two agree only where r = 1."""
    cell, x, h = L.GRUCell(3), _normal(2, 4), _normal(2, 3, seed=9)
    p = _params(cell, x.shape)
    with jax.enable_x64(True):
        y = np.asarray(cell.apply(p, x, initial_state=h))
    sig = lambda a: 1 / (1 + np.exp(-a))  # noqa: E731
    a_r, a_z, a_n = np.split(x @ p["W_i"] + p["b_i"], 3, -1)
    W_r, W_z, W_n = np.split(p["W_h"], 3, -1)
    b_r, b_z, b_n = np.split(p["b_h"], 3, -1)
    r, z = sig(a_r + h @ W_r + b_r), sig(a_z + h @ W_z + b_z)
    after = (1 - z) * np.tanh(a_n + r * (h @ W_n + b_n)) + z * h
    cho = (1 - z) * np.tanh(a_n + (r * h) @ W_n + b_n) + z * h
    np.testing.assert_allclose(y, after, atol=1e-12)
    assert np.max(np.abs(y - cho)) > 1e-2


def test_lstm_bias_starts_at_zero_no_unit_forget_bias():
    """Documented init: b = 0 for every gate (no forget-gate bias of 1 as Keras's
    unit_forget_bias; torch draws U(-1/sqrt(H), 1/sqrt(H)) for b_ih and b_hh)."""
    _, p = L.LSTMCell(4).init(jax.random.key(0), (2, 3))
    np.testing.assert_array_equal(p["b"], np.zeros(16))


def test_embedding_out_of_range_ids_refused_when_concrete_clamped_when_traced():
    layer, W = L.Embedding(5, 2), np.arange(10.0).reshape(5, 2)
    with pytest.raises(ValueError, match=r"Embedding\(5, 2\): ids must be in \[0, 5\), got -1..7"):
        layer.apply({"W": W}, np.array([-1, 7]))
    with pytest.raises(IndexError):  # torch refuses too (always)
        F.embedding(torch.tensor([7]), torch.tensor(W))
    ids = jnp.array([-1, 7])
    take = lambda i: layer.apply({"W": W}, i)  # noqa: E731
    for traced in (jax.jit(take), jax.vmap(take)):
        np.testing.assert_array_equal(traced(ids), W[[0, 4]])  # clamped (documented)


def test_dropout_is_torchs_inverted_dropout():
    """y in {0, x / (1 - rate)} as torch's F.dropout(training=True); mean kept ~ 1 - rate."""
    x = np.abs(_normal(200, 50)) + 1
    with jax.enable_x64(True):
        y = np.asarray(L.Dropout(0.3).apply({}, x, key=jax.random.key(1)))
    yt = F.dropout(torch.tensor(x), 0.3, training=True).numpy()
    for out in (y, yt):
        kept = out != 0
        np.testing.assert_allclose(out[kept], x[kept] / 0.7, rtol=1e-15)
        assert abs(kept.mean() - 0.7) < 0.02


if __name__ == "__main__":
    print(f"{'case':50s} {'out':>8s} {'grad':>8s} {'twin out':>9s} {'twin grad':>9s}")
    for case, fn in CASES.items():
        e = _by_side(fn())
        twin = "".join(f" {v:9.1e}" for v in e.get("twin", ()))
        print(f"{case:50s} {e['nnjax'][0]:8.1e} {e['nnjax'][1]:8.1e}{twin}")
