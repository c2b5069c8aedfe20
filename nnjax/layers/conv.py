"""Convolutions over 1 or 2 spatial axes, channels-last (NWC / NHWC), by
``lax.conv_general_dilated``.

``Conv``: with kernel W (*k, C_in / G, F), stride s, dilation d, padding (lo, hi) and G groups,
for output position o, output channel f in group g = f // (F / G):

    y[b, o, f] = b_f + sum_{t, c} x_pad[b, o s + t d, g (C_in / G) + c] W[t, c, f]

(t over the kernel positions, c over the group's input channels; 2-D has a pair o = (i, j),
t = (u, v)). Depthwise convolution is G = C_in. ``ConvTranspose``: the same sum over the input
dilated by the stride (s - 1 zeros between neighbours) and then padded, with stride 1; this is
``lax.conv_transpose(..., transpose_kernel=False)`` and Flax's ``ConvTranspose``. PyTorch's
``ConvTranspose`` (padding 0) with weight W_pt (C_in, F, *k) is this with "VALID" padding and
W[t, c, f] = W_pt[c, f, k - 1 - t]: the kernel flipped in space, the channel axes in the same
order; when k_eff < s this layer's output is s - k_eff positions longer (bias only).

PyTorch, float64, copied weights (tests/test_layers_torch_audit.py, max error ~1e-14):
``Conv``'s W is torch's ``Conv1d/2d`` weight (F, C / G, *k) moved to (*k, C / G, F)
(``W_pt.permute(2, 3, 1, 0)`` in 2-D), x and y channels-last; an int padding p is torch's
``padding=p``, and "SAME" at stride 1 is torch's ``padding="same"`` for odd and even kernels
alike (both put the odd pad at the end: lo = floor(total / 2)); torch refuses "same" with a
stride, where this is XLA's (:mod:`nnjax.layers.spatial`). ``ConvTranspose`` with
``padding=[(lo, hi), ...]`` is torch's ``ConvTranspose(padding=q, output_padding=op)`` for
lo = k_eff - 1 - q, hi = k_eff - 1 - q + op (q <= k_eff - 1), the kernel mapped as above; an
int p here means (p, p) on the dilated input (lax's and Flax's meaning), i.e. torch's
q = k_eff - 1 - p, NOT torch's ``padding=p``. ConvTranspose has no groups. Initialisation
differs from torch's (W and b from U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with torch's fan_in of
its weight's axis 1: C / G prod(k) for ``Conv``, but F prod(k), the OUTPUT channels, for
``ConvTranspose``): W glorot_normal (fans prod(k) C_in and prod(k) C_out of W's last two
axes, :mod:`nnjax.initializers`), b zeros by default.

An int ``kernel_size``/``strides``/``dilation`` applies to every spatial axis, so the same layer
works on (B, W, C) and (B, H, W, C); a tuple fixes the number of spatial axes. Every spatial
size and C must be >= 1. ``apply`` takes an array-like x and checks the params against the
layer (static shapes: free under jit and vmap): exactly the keys ``{"W", "b"}`` (``{"W"}``
without bias), W of shape (*k, C / G, F) with the layer's kernel size and features F, b of
shape (F,); a :class:`~nnjax.layers.checks.ParamsError` (a ValueError) naming the layer and
the param otherwise, and a ValueError naming the input when x's rank or channels differ from
the W it is given. As Dense's x @ W, x and W are
promoted to ``jnp.result_type(x, W)`` (int32 x with float32 W: float32; float32 x with
float64 params under x64: float64).
"""

from typing import Any

import jax.numpy as jnp
from jax import lax

from nnjax.layers.checks import (
    as_array,
    bias_initializer,
    check_dtype,
    check_features,
    check_param_keys,
    check_param_shape,
    check_shape,
    check_spatial,
    dtype_name,
    flag,
    float_result_type,
    init_bias,
    located,
    param_dtype,
    param_shape_error,
    positive_int,
    split_key,
    weight_initializer,
)
from nnjax.layers.core import Layer, make_spec
from nnjax.layers.spatial import (
    explicit_pads,
    int_tuple,
    normalize_padding,
    output_sizes,
    spatial_rank,
)

_DIMENSIONS = {1: ("NWC", "WIO", "NWC"), 2: ("NHWC", "HWIO", "NHWC")}


def _fixed_rank(name: str, **values) -> int | None:
    """The number of spatial axes the tuple arguments imply (None when all are ints)."""
    ranks = {k: len(v) for k, v in values.items() if isinstance(v, tuple | list)}
    if len(set(ranks.values())) > 1:
        raise ValueError(f"{name}: tuple arguments disagree on the number of spatial axes: {ranks}")
    rank = next(iter(ranks.values()), None)
    if rank is not None and rank not in (1, 2):
        raise ValueError(f"{name}: 1 or 2 spatial axes are supported, got {ranks}")
    return rank


def _per_axis(name, rank, kernel_size, strides, dilation):
    k = int_tuple(name, "kernel_size", kernel_size, rank)
    s = int_tuple(name, "strides", strides, rank)
    d = int_tuple(name, "dilation", dilation, rank)
    return k, s, d, tuple((ki - 1) * di + 1 for ki, di in zip(k, d))


def _transpose_pads(padding, k_eff, strides):
    """lax.conv_transpose's padding of the dilated input for "SAME"/"VALID"; explicit
    pairs are used as given."""
    if padding not in ("SAME", "VALID"):
        return None
    pads = []
    for k, s in zip(k_eff, strides):
        if padding == "SAME":
            total = k + s - 2
            lo = k - 1 if s > k - 1 else -(-total // 2)
        else:
            total = k + s - 2 + max(k - s, 0)
            lo = k - 1
        pads.append((lo, total - lo))
    return pads


def _checked(name, features, kernel_size, strides, padding, dilation, groups):
    """Validate the layer's arguments once (the ints already checked by :func:`_conv`):
    (normalized padding, fixed number of spatial axes or None)."""
    padding = normalize_padding(name, padding)
    pad_pairs = padding if isinstance(padding, list) else None
    fixed = _fixed_rank(
        name, kernel_size=kernel_size, strides=strides, dilation=dilation, padding=pad_pairs
    )
    if features % groups:
        raise ValueError(f"{name}: features {features} is not divisible by groups {groups}")
    return padding, fixed


def _geometry(name, in_shape, fixed, kernel_size, strides, dilation, padding, transpose):
    """(kernel, strides, dilation, pads, output spatial sizes) for a (B, *spatial, C) input;
    a ValueError for a spatial size < 1 (before the transpose dilates it to (n - 1) s + 1)."""
    rank = spatial_rank(name, in_shape, fixed)
    check_spatial(name, in_shape)
    k, s, d, k_eff = _per_axis(name, rank, kernel_size, strides, dilation)
    sizes = in_shape[1:-1]
    if transpose:
        pads = _transpose_pads(padding, k_eff, s) or explicit_pads(name, padding, sizes, k_eff, s)
        dilated = [(n - 1) * si + 1 for n, si in zip(sizes, s)]
        out = output_sizes(name, dilated, k_eff, (1,) * rank, pads, in_shape, s)
    else:
        pads = explicit_pads(name, padding, sizes, k_eff, s)
        out = output_sizes(name, sizes, k_eff, s, pads, in_shape)
    return k, s, d, pads, out


def _check_kernel(name, W, x, fixed, kernel_size, features, groups) -> int:
    """The number of spatial axes of the params' kernel W, or a ValueError naming
    params['W'] unless it has shape (*k, C / G, F): 1 or 2 spatial axes (the number the
    layer fixes), the layer's kernel size k and its F features. The expected shape is
    written for the input x (its channels C; its rank when that is valid)."""
    w = tuple(jnp.shape(W))
    rank = len(w) - 2
    if rank in (1, 2) and fixed in (None, rank):
        k = int_tuple(name, "kernel_size", kernel_size, rank)
        if w[:-2] == k and w[-1] == features:
            return rank
    if fixed is not None:
        rank = fixed
    elif x.ndim - 2 in (1, 2):
        rank = x.ndim - 2
    elif rank not in (1, 2):
        rank = 1
    k = int_tuple(name, "kernel_size", kernel_size, rank)
    c = x.shape[-1] if x.ndim else "C"
    c_g = c // groups if isinstance(c, int) and c % groups == 0 else f"{c} / {groups}"
    why = f"kernel {k}, {c} input channels -> {features} features"
    if groups > 1:
        why += f" in {groups} groups"
    raise param_shape_error(name, "W", w, (*k, c_g, features), why)


def _conv_spec(kind, features, kernel_size, strides, padding, dilation, groups, use_bias,
               W_init, b_init, dtype):  # fmt: skip
    listed = lambda v: list(v) if isinstance(v, tuple | list) else v  # noqa: E731
    kw = dict(
        features=features,
        kernel_size=listed(kernel_size),
        strides=listed(strides),
        padding=padding,
        dilation=listed(dilation),
    )
    if kind != "ConvTranspose":
        kw["groups"] = groups
    return make_spec(
        kind, **kw, use_bias=bool(use_bias), W_init=W_init, b_init=b_init, dtype=dtype_name(dtype)
    )


def _conv(kind: str, features, kernel_size, strides, padding, dilation, groups, use_bias,
          W_init, b_init, dtype) -> Layer:  # fmt: skip
    name = f"{kind}({features}, {kernel_size})"
    # Python ints from here on (NumPy ints are taken): the spec is JSON
    features = positive_int(name, "features", features)
    groups = positive_int(name, "groups", groups)
    kernel_size, strides, dilation = (
        int_tuple(name, what, v, None)
        for what, v in (("kernel_size", kernel_size), ("strides", strides), ("dilation", dilation))
    )
    name = f"{kind}({features}, {kernel_size})"
    use_bias = flag(name, "use_bias", use_bias)
    padding, fixed = _checked(name, features, kernel_size, strides, padding, dilation, groups)
    check_dtype(name, dtype)
    w_init = weight_initializer(name, "W_init", W_init)
    bias_init = bias_initializer(name, b_init)
    transpose = kind == "ConvTranspose"

    def geometry(in_shape):
        return _geometry(name, in_shape, fixed, kernel_size, strides, dilation, padding, transpose)

    def init(key, input_shape):
        shape = check_shape(name, input_shape, 3)
        k, _, _, _, out = geometry(shape)
        check_features(name, shape, "input channels")
        if shape[-1] % groups:
            raise ValueError(
                f"{name}: input channels {shape[-1]} (input shape {shape}) are "
                f"not divisible by groups {groups}"
            )
        dt = param_dtype(dtype, name)
        k_w, k_b = split_key(name, key)
        params = {"W": located(f"{name}: W", w_init, k_w, (*k, shape[-1] // groups, features), dt)}
        if use_bias:
            params["b"] = init_bias(name, bias_init, k_b, features, dt)
        return (shape[0], *out, features), params

    keys = ("W", "b") if use_bias else ("W",)

    def apply(params, x, *, key=None):
        x = as_array(name, x)
        check_param_keys(name, params, keys)
        W = params["W"]
        rank = _check_kernel(name, W, x, fixed, kernel_size, features, groups)
        if use_bias:
            check_param_shape(name, params, "b", (features,), "one per feature")
        c_in = jnp.shape(W)[-2] * groups
        if x.ndim != rank + 2 or x.shape[-1] != c_in:
            want = "(B, W, " if rank == 1 else "(B, H, W, "
            raise ValueError(f"{name}: expected input of shape {want}{c_in}), got {tuple(x.shape)}")
        _, s, d, pads, _ = geometry(tuple(x.shape))
        conv_strides, lhs_dilation = ((1,) * rank, s) if transpose else (s, None)
        dt = float_result_type(x, W)  # as Dense's x @ W: float32 x, float64 W -> float64
        y = lax.conv_general_dilated(
            jnp.asarray(x, dt), jnp.asarray(W, dt), conv_strides, pads,
            lhs_dilation=lhs_dilation, rhs_dilation=d,
            dimension_numbers=_DIMENSIONS[rank], feature_group_count=groups,
        )  # fmt: skip
        return y + lax.broadcast_to_rank(params["b"], y.ndim) if use_bias else y

    spec = _conv_spec(kind, features, kernel_size, strides, padding, dilation, groups, use_bias,
                      W_init, b_init, dtype)  # fmt: skip
    return Layer(init, apply, name, False, spec)


def Conv(
    features: int,
    kernel_size: int | tuple[int, ...],
    *,
    strides: int | tuple[int, ...] = 1,
    padding: str | int | list = "VALID",
    dilation: int | tuple[int, ...] = 1,
    groups: int = 1,
    use_bias: bool = True,
    W_init: Any = "glorot_normal",
    b_init: Any = "zeros",
    dtype: Any = None,
) -> Layer:
    """Convolution, channels-last: (B, W, C) -> (B, W', F) or (B, H, W, C) -> (B, H', W', F).

    ``padding``: "VALID" (none; the default, as PyTorch's and stax's), "SAME" (XLA's,
    :mod:`nnjax.layers.spatial`), an int p (p on both sides of every axis, like PyTorch's
    ``padding=p``) or (lo, hi) pairs per axis. ``dilation`` spaces the kernel taps
    (``rhs_dilation``); ``groups`` splits the channels into G independent convolutions
    (``feature_group_count``; C and F divisible by G). Params ``{"W": (*k, C / G, F),
    "b": (F,)}`` (no ``"b"`` when ``use_bias=False``); sizes as in the module docstring.
    """
    return _conv(
        "Conv",
        features,
        kernel_size,
        strides,
        padding,
        dilation,
        groups,
        use_bias,
        W_init,
        b_init,
        dtype,
    )


def ConvTranspose(
    features: int,
    kernel_size: int | tuple[int, ...],
    *,
    strides: int | tuple[int, ...] = 1,
    padding: str | int | list = "VALID",
    dilation: int | tuple[int, ...] = 1,
    use_bias: bool = True,
    W_init: Any = "glorot_normal",
    b_init: Any = "zeros",
    dtype: Any = None,
) -> Layer:
    """Transposed convolution (``lax.conv_transpose``, ``transpose_kernel=False``): a stride-1
    convolution of the input dilated by ``strides``, padded as lax pads it: "SAME" gives
    W' = W s, "VALID" W' = W s + max(k_eff - s, 0) (k_eff the dilated kernel size); explicit
    (lo, hi) pairs pad the dilated input directly, W' = (W - 1) s + 1 + lo + hi - k_eff + 1,
    and an int p is the pair (p, p): NOT PyTorch's ``padding=p``, which is the pair
    (k_eff - 1 - p, k_eff - 1 - p + output_padding) with the kernel flipped (module docstring).
    Params ``{"W": (*k, C, F), "b": (F,)}``.
    """
    return _conv(
        "ConvTranspose",
        features,
        kernel_size,
        strides,
        padding,
        dilation,
        1,
        use_bias,
        W_init,
        b_init,
        dtype,
    )
