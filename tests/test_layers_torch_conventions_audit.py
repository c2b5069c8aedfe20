"""Layers' conventions against ``torch.nn`` (float64 in both), for the combinations
tests/test_layers_torch_audit.py leaves out: Conv with stride x padding x dilation x groups at
once, asymmetric pads, batch 1, "SAME" with strides (XLA's pads, by F.pad); pooling as
torch's ``ceil_mode`` (an extra pad at the end), windows larger than the input, global
pooling; BatchNorm over several steps (running statistics) then eval on a batch of 1;
LayerNorm without affine; Bidirectional from an initial state; Flatten's order; and the
errors for an input smaller than the kernel. Outputs AND gradients (input and params), the
NumPy twin alongside where it exists; max errors in the docstrings are those measured."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from test_layers_torch_audit import (
    TORCH_RNNS,
    _cl,
    _fl,
    _normal,
    _oihw,
    _params,
    _torch_cell_params,
    max_errors,
)

from nnjax import layers as L
from nnjax.reference import conv as R_conv
from nnjax.reference import norm as R_norm
from nnjax.reference import pool as R_pool

torch = pytest.importorskip("torch")
F = torch.nn.functional
TOL = 1e-10


def _assert_close(errors, label):
    for side, (out, grad) in (errors if isinstance(errors, dict) else {"nnjax": errors}).items():
        assert out < TOL and grad < TOL, (label, side, out, grad)


# --------------------------------------------------------------------------- Conv

# label: (kernel, strides, nnjax padding, torch F.pad (last axis first) or None, torch
# padding, dilation, groups, batch, spatial sizes). A 192-case sweep of ranks 1-2 x stride
# 1-3 x pad 0/1/2/asymmetric x dilation 1-2 x groups 1-2 x batch 1/3 measured 3.2e-14.
CONV_MIX = {
    "1d k3 s3 pad2 d2 g2 B1": (3, 3, 2, None, 2, 2, 2, 1, (8,)),
    "1d k3 s2 pairs (2,0) d2 g2": (3, 2, [[2, 0]], (2, 0), 0, 2, 2, 3, (8,)),
    "2d k(3,2) s3 pairs (0,2),(1,3) d2 g2 B1": (
        (3, 2), 3, [[0, 2], [1, 3]], (1, 3, 0, 2), 0, 2, 2, 1, (8, 7),
    ),
    "2d k(3,2) s(2,3) pad1 d(1,2) g2": ((3, 2), (2, 3), 1, None, 1, (1, 2), 2, 2, (8, 7)),
    "2d k(2,3) SAME d(2,1) g2 (torch 'same')": (
        (2, 3), 1, "SAME", None, "same", (2, 1), 2, 1, (6, 5),
    ),
}  # fmt: skip


@pytest.mark.filterwarnings("ignore:Using padding='same'")
@pytest.mark.parametrize("label", list(CONV_MIX))
def test_conv_combinations_equal_torch(label):
    k, s, pad, fpad, tpad, d, g, B, sizes = CONV_MIX[label]
    layer = L.Conv(4, k, strides=s, padding=pad, dilation=d, groups=g)
    x = _normal(B, *sizes, 4)
    p = _params(layer, x.shape)
    conv = F.conv2d if len(sizes) == 2 else F.conv1d

    def tfn(p, x):
        xc = _cl(x) if fpad is None else F.pad(_cl(x), fpad)
        return _fl(conv(xc, _oihw(p["W"]), p["b"], stride=s, padding=tpad, dilation=d, groups=g))

    twin = R_conv.conv(4, k, strides=s, padding=pad, dilation=d, groups=g)
    _assert_close(max_errors(layer.apply, tfn, p, x, twin=twin), label)


@pytest.mark.parametrize(("k", "s", "d", "n"), [(2, 2, 2, 7), (4, 3, 1, 8), (3, 3, 2, 5)])
def test_conv_same_with_stride_is_xlas_pads(k, s, d, n):
    """torch refuses padding="same" with a stride; nnjax's "SAME" is XLA's (documented):
    out = ceil(n / s), total = max((out - 1) s + k_eff - n, 0), lo = total // 2, the odd
    one at the end. Written out here and applied by F.pad (72 cases k 2-4, s 1-3, d 1-2,
    n 5-8 measured 1.3e-15)."""
    k_eff, out = (k - 1) * d + 1, -(-n // s)
    total = max((out - 1) * s + k_eff - n, 0)
    layer, x = L.Conv(3, k, strides=s, padding="SAME", dilation=d), _normal(1, n, 2)
    p = _params(layer, x.shape)

    def tfn(p, x):
        xc = F.pad(_cl(x), (total // 2, total - total // 2))
        return _fl(F.conv1d(xc, _oihw(p["W"]), p["b"], stride=s, dilation=d))

    twin = R_conv.conv(3, k, strides=s, padding="SAME", dilation=d)
    _assert_close(max_errors(layer.apply, tfn, p, x, twin=twin), (k, s, d, n))
    assert layer.init(jax.random.key(0), x.shape)[0] == (1, out, 3)


@pytest.mark.parametrize(
    ("layer", "shape", "n", "pads", "k", "axis", "dilated"),
    [
        (L.Conv(4, 3), (1, 5, 2, 3), 2, (0, 0), 3, 2, ""),
        (L.Conv(4, 3, dilation=2), (2, 4, 3), 4, (0, 0), 5, 1, ""),
        (L.MaxPool(4, padding=1), (1, 1, 3), 1, (1, 1), 4, 1, ""),
        (L.AvgPool((2, 3)), (1, 4, 2, 3), 2, (0, 0), 3, 2, ""),
        (
            L.ConvTranspose(2, 7, strides=2, padding=[(0, 0)]),
            (1, 2, 3),
            3,
            (0, 0),
            7,
            1,
            " dilated by the stride 2",
        ),
    ],
)
def test_input_smaller_than_the_window_names_the_axis_and_the_input(
    layer, shape, n, pads, k, axis, dilated
):
    """One line naming the layer, the axis and the input shape, at init and at apply (it
    named neither: 'Conv(4, 3): spatial size 2 ... window 3' left open which axis of a 2-D
    input, and a ConvTranspose's size 3 was its input's 2 dilated by the stride)."""
    message = (
        f"{layer.name}: spatial size {n} padded by {pads} is smaller than the (dilated) "
        f"window {k} (spatial axis {axis} of the input {shape}{dilated})"
    )
    match = f"^{re.escape(message)}$"
    with pytest.raises(ValueError, match=match):
        layer.init(jax.random.key(0), shape)
    _, params = layer.init(jax.random.key(0), (1, *([9] * (len(shape) - 2)), shape[-1]))
    with pytest.raises(ValueError, match=match):
        layer.apply(params, np.zeros(shape))


def test_twin_too_small_error_reports_the_input_size_and_its_padding():
    """The twin said 'spatial size 3 padded by (0, 0)' for an input of size 1 padded by
    (1, 1) (the padded size), and the pooling twin's message had no layer name."""
    W = {"W": np.ones((5, 3, 2)), "b": np.zeros(2)}
    with pytest.raises(ValueError, match=r"^Conv\(2, 5\): spatial size 1 padded by \(1, 1\)"):
        R_conv.conv(2, 5, padding=1).forward(W, np.ones((1, 1, 3)))
    with pytest.raises(ValueError, match=r"^MaxPool\(4\): spatial size 1 padded by \(1, 1\)"):
        R_pool.max_pool(4, padding=1).forward({}, np.ones((1, 1, 3)))


@pytest.mark.filterwarnings("ignore:Using padding='same'")
def test_conv_same_on_an_input_smaller_than_the_kernel_equals_torch():
    """'SAME' at stride 1 pads a size-2 input for a kernel 5 (total 4: (2, 2)), as torch."""
    layer, x = L.Conv(2, 5, padding="SAME"), _normal(1, 2, 3)
    p = _params(layer, x.shape)
    tfn = lambda p, x: _fl(F.conv1d(_cl(x), _oihw(p["W"]), p["b"], padding="same"))  # noqa: E731
    _assert_close(max_errors(layer.apply, tfn, p, x, twin=R_conv.conv(2, 5, padding="SAME")), "")


# -------------------------------------------------------------------------- pooling


def _ceil_pairs(n, k, s, p, rank):
    """torch's ceil_mode=True as explicit pads: (p, p + extra), extra the overhang of the
    last window, which must start inside the input or the left padding (torch's rule)."""
    out = -(-(n + 2 * p - k) // s) + 1
    if (out - 1) * s >= n + p:
        out -= 1
    return [[p, p + max((out - 1) * s + k - n - 2 * p, 0)]] * rank


@pytest.mark.parametrize(
    ("kind", "rank", "k", "s", "p", "n"),
    [
        ("max", 2, 3, 2, 1, 6),
        ("avg", 2, 3, 2, 1, 6),
        ("avg", 1, 2, 3, 1, 7),
        ("max", 1, 3, 3, 0, 5),
    ],
)
def test_pool_ceil_mode_is_extra_end_padding(kind, rank, k, s, p, n):
    """torch's ceil_mode=True (and count_include_pad=False for the average) == nnjax with
    the pads (p, p + overhang); 144 cases (k 2-3, s 1-3, p <= k/2, n 5-7) measured 2.2e-16."""
    pairs = _ceil_pairs(n, k, s, p, rank)
    layer = (L.MaxPool if kind == "max" else L.AvgPool)(k, strides=s, padding=pairs)
    x = _normal(2, *(n, n)[:rank], 3)
    name = f"{kind}_pool{rank}d"
    kw = {"ceil_mode": True} if kind == "max" else {"ceil_mode": True, "count_include_pad": False}
    tfn = lambda P, x: _fl(getattr(F, name)(_cl(x), k, s, p, **kw))  # noqa: E731
    twin = (R_pool.max_pool if kind == "max" else R_pool.avg_pool)(k, strides=s, padding=pairs)
    _assert_close(max_errors(layer.apply, tfn, {}, x, twin=twin), (kind, rank, k, s, p, n))


@pytest.mark.parametrize("rank", [1, 2])
def test_global_and_window_larger_than_input_pooling_equal_torchs_adaptive(rank):
    """GlobalAvgPool == adaptive_avg_pool(1) (batch 1); a window 5 > the input 3 with "SAME"
    (pads (1, 1), one window) is the global max / the mean over the real positions."""
    x = _normal(1, *(3, 3)[:rank], 2)
    avg, mx = (F.adaptive_avg_pool2d, F.adaptive_max_pool2d) if rank == 2 else (
        F.adaptive_avg_pool1d, F.adaptive_max_pool1d)  # fmt: skip
    flat = lambda t: t.reshape(t.shape[0], t.shape[1])  # noqa: E731  (B, C, 1...) -> (B, C)
    cases = [
        (L.GlobalAvgPool().apply, lambda p, x: flat(avg(_cl(x), 1)), R_pool.global_avg_pool()),
        (lambda p, x: L.MaxPool(5, padding="SAME").apply(p, x).reshape(1, 2),
         lambda p, x: flat(mx(_cl(x), 1)), None),
        (lambda p, x: L.AvgPool(5, padding="SAME").apply(p, x).reshape(1, 2),
         lambda p, x: flat(avg(_cl(x), 1)), None),
    ]  # fmt: skip
    for jfn, tfn, twin in cases:
        _assert_close(max_errors(jfn, tfn, {}, x, twin=twin), rank)
    with pytest.raises(ValueError, match=r"MaxPool\(5\): spatial size 3 .* window 5"):
        L.MaxPool(5).apply({}, x)  # "VALID": as torch, a window larger than the input fails


# ---------------------------------------------------------------------- normalisation


@pytest.mark.parametrize("shape", [(4, 5, 3), (1, 3, 4, 2)])
def test_batch_norm_running_statistics_over_steps_then_eval_batch_of_one(shape):
    """5 training steps of BatchNorm against torch.nn.BatchNorm1d/2d (momentum 0.1: new =
    0.9 old + 0.1 batch, the variance unbiased; batch 1 with 12 values per channel), and
    the twin's batch_norm_update; then eval on a batch of 1 (max error 2.7e-15)."""
    C = shape[-1]
    layer = L.BatchNorm()
    p = _params(layer, shape)
    module = (torch.nn.BatchNorm2d if len(shape) == 4 else torch.nn.BatchNorm1d)(C).double()
    with torch.no_grad():
        module.weight.copy_(torch.tensor(p["scale"]))
        module.bias.copy_(torch.tensor(p["offset"]))
    with jax.enable_x64(True):
        state = jax.tree.map(jnp.asarray, L.init_model(layer, jax.random.key(0), shape)[2])
    twin_state = jax.tree.map(np.asarray, state)
    for step in range(5):
        x = _normal(*shape, seed=10 + step) * 3 + 2
        with jax.enable_x64(True):
            y, state = layer.apply(p, jnp.asarray(x), state=state, train=True)
        y_t = _fl(module.train()(_cl(torch.tensor(x)))).detach().numpy()
        twin_state = R_norm.batch_norm_update(twin_state, x, 0.1)
        np.testing.assert_allclose(y, y_t, rtol=0, atol=TOL)
        np.testing.assert_allclose(state["mean"], module.running_mean, rtol=0, atol=TOL)
        np.testing.assert_allclose(state["var"], module.running_var, rtol=0, atol=TOL)
        for k in state:
            np.testing.assert_allclose(state[k], twin_state[k], rtol=0, atol=TOL)
    module.eval()
    x1 = _normal(1, *shape[1:], seed=99)
    tfn = lambda P, x: _fl(torch.func.functional_call(  # noqa: E731
        module, {"weight": P["scale"], "bias": P["offset"]}, (_cl(x),)))  # fmt: skip
    jfn = lambda P, x: layer.apply(P, x, state=state, train=False)[0]  # noqa: E731
    twin = R_norm.batch_norm(train=False, state=jax.tree.map(np.asarray, state))
    _assert_close(max_errors(jfn, tfn, p, x1, twin=twin), shape)


def test_batch_norm_training_on_one_value_per_channel_is_refused_as_torch():
    layer, x = L.BatchNorm(), np.ones((1, 3))
    state = {"mean": np.zeros(3), "var": np.ones(3)}
    params = {"scale": np.ones(3), "offset": np.zeros(3)}
    with pytest.raises(ValueError, match=r"BatchNorm: training needs more than 1 value"):
        layer.apply(params, x, state=state, train=True)
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        torch.nn.BatchNorm1d(3).double()(torch.tensor(x))


@pytest.mark.parametrize("kw", [{"use_scale": False, "use_offset": False}, {"eps": 0.5}])
def test_layer_norm_without_affine_and_large_eps_equals_torch(kw):
    """eps inside the square root (a large eps shows it); no affine == elementwise_affine
    False (measured 7e-15)."""
    layer, x = L.LayerNorm(**kw), _normal(2, 3, 5) * 0.1
    p, eps = _params(layer, x.shape), kw.get("eps", 1e-5)
    tfn = lambda p, x: F.layer_norm(x, (5,), p.get("scale"), p.get("offset"), eps=eps)  # noqa: E731
    _assert_close(max_errors(layer.apply, tfn, p, x, twin=R_norm.layer_norm(**kw)), kw)


# ---------------------------------------------------------------------- recurrent, core


@pytest.mark.parametrize(
    ("kind", "B", "T", "seq"),
    [("GRUCell", 1, 1, False), ("LSTMCell", 2, 7, False), ("SimpleRNNCell", 1, 4, True)],
)
def test_bidirectional_from_an_initial_state_equals_torch(kind, B, T, seq):
    """Bidirectional with initial_state (forward carry, backward carry) == torch's h0
    stacked (2, B, H): outputs and the gradients through time to x, params and both
    carries (9 cases measured 8.9e-15)."""
    layer = L.Bidirectional(getattr(L, kind)(3), return_sequences=seq)
    x, H, lstm = _normal(B, T, 2), 3, kind == "LSTMCell"
    p = _params(layer, x.shape)

    def carry(seed):
        h = _normal(B, H, seed=seed)
        return (h, _normal(B, H, seed=seed + 1)) if lstm else h

    module = getattr(torch.nn, TORCH_RNNS[kind])(2, H, batch_first=True, bidirectional=True)

    def tfn(p, x, hf, hb):
        tp = _torch_cell_params(kind, p["forward"], "_l0")
        tp.update(_torch_cell_params(kind, p["backward"], "_l0_reverse"))
        h0 = tuple(torch.stack(pair) for pair in zip(hf, hb)) if lstm else torch.stack([hf, hb])
        ys, h_n = torch.func.functional_call(module.double(), tp, (x, h0))
        h_n = h_n[0] if lstm else h_n
        return ys if seq else torch.cat([h_n[0], h_n[1]], -1)

    jfn = lambda p, x, hf, hb: layer.apply(p, x, initial_state=(hf, hb))  # noqa: E731
    _assert_close(max_errors(jfn, tfn, p, x, carry(7), carry(9)), (kind, B, T, seq))


def test_flatten_order_and_torch_linear_weight_mapping_as_documented():
    """Flatten's docstring: a torch Linear after nn.Flatten (NCHW) is Dense with W =
    w.reshape(F, C, H, W).permute(2, 3, 1, 0).reshape(H W C, F), not w.T."""
    x, w, b = _normal(2, 3, 4, 5), _normal(6, 60, seed=3), _normal(6, seed=4)
    model = L.serial(L.Flatten(), L.Dense(6))
    W = torch.tensor(w).reshape(6, 5, 3, 4).permute(2, 3, 1, 0).reshape(60, 6).numpy()
    with jax.enable_x64(True):
        y = np.asarray(model.apply([{}, {"W": W, "b": b}], x))
        y_naive = np.asarray(model.apply([{}, {"W": w.T, "b": b}], x))
    y_t = F.linear(torch.nn.Flatten()(_cl(torch.tensor(x))), torch.tensor(w), torch.tensor(b))
    np.testing.assert_allclose(y, y_t.numpy(), rtol=0, atol=1e-12)
    assert np.max(np.abs(y_naive - y_t.numpy())) > 0.1


def test_embedding_concrete_jax_ids_out_of_range_are_one_line_errors():
    """As torch (IndexError), a concrete out-of-range id is refused, from a jax Array and an
    unsigned NumPy array alike (the existing test uses a signed NumPy array)."""
    layer, W = L.Embedding(5, 2), np.arange(10.0).reshape(5, 2)
    for ids in (jnp.array([0, 5]), np.array([[1], [9]], np.uint8)):
        with pytest.raises(ValueError, match=r"^Embedding\(5, 2\): ids must be in \[0, 5\), got"):
            layer.apply({"W": W}, ids)
