"""Convolution by im2col, forward and backward written out, in NumPy: the twin of
``nnjax.layers.Conv`` and ``ConvTranspose``.

Channels-last, 1 or 2 spatial axes; a 1-D input (B, W, C) is run as a 2-D one (B, 1, W, C)
with a 1-tall kernel. With the input first dilated by ``lhs`` (s - 1 zeros between
neighbours; 1 for ``Conv``, the stride for ``ConvTranspose``) and zero-padded by (lo, hi),
kernel W (kh, kw, C/G, F), stride (sh, sw) and dilation (dh, dw):

    cols[b, i, j, u, v, c] = xp[b, i sh + u dh, j sw + v dw, c]             (im2col)
    y[b, i, j, f]          = b_f + sum_{u, v, c} cols[b, i, j, u, v, c_g] W[u, v, c, f]

where group g = f // (F/G) sees the channels c_g = g (C/G) + c. With delta = dJ/dy:

    dJ/db        = sum_{b, i, j} delta[b, i, j, :]
    dJ/dW[.., f] = cols_g^T delta[.., f]                 (cols as a (B Ho Wo, kh kw C/G) matrix)
    dJ/dcols     = delta_g W_g^T, and dJ/dxp[b, i sh + u dh, j sw + v dw, c] += dJ/dcols[...]
    dJ/dx        = dJ/dxp with the padding cut off, then every lhs-th position (undilate).

Padding: "VALID" is (0, 0); "SAME" (the convolution's) gives out = ceil(n / s) with
total = max((out - 1) s + k_eff - n, 0) split lo = total // 2, hi = total - lo
(k_eff = (k - 1) d + 1); an int p is (p, p). ``ConvTranspose``'s "SAME"/"VALID" pad the
dilated input as ``lax.conv_transpose`` does: SAME total = k_eff + s - 2,
lo = k_eff - 1 if s > k_eff - 1 else ceil(total / 2); VALID total = k_eff + s - 2 +
max(k_eff - s, 0), lo = k_eff - 1.
"""

import numpy as np

from nnjax.reference.pair import Pair


def per_axis(value, rank: int) -> tuple[int, ...]:
    """An int for every axis, or a tuple of ``rank`` ints."""
    if isinstance(value, int | np.integer):
        return (int(value),) * rank
    value = tuple(int(v) for v in value)
    if len(value) != rank:
        raise ValueError(f"{value} has {len(value)} entries for {rank} spatial axes")
    return value


def conv_pads(padding, sizes, k_eff, strides) -> list[tuple[int, int]]:
    """(lo, hi) per axis for a convolution or a pooling window (module docstring)."""
    if isinstance(padding, str) and padding.upper() == "VALID":
        return [(0, 0)] * len(sizes)
    if isinstance(padding, str) and padding.upper() == "SAME":
        pads = []
        for n, k, s in zip(sizes, k_eff, strides):
            out = int(np.ceil(n / s))
            total = max((out - 1) * s + k - n, 0)
            pads.append((total // 2, total - total // 2))
        return pads
    if isinstance(padding, int | np.integer):
        return [(int(padding), int(padding))] * len(sizes)
    return [(int(lo), int(hi)) for lo, hi in padding]


def transpose_pads(padding, k_eff, strides) -> list[tuple[int, int]] | None:
    """lax.conv_transpose's padding of the dilated input for "SAME"/"VALID", else None."""
    if not isinstance(padding, str):
        return None
    pads = []
    for k, s in zip(k_eff, strides):
        if padding.upper() == "SAME":
            total = k + s - 2
            lo = k - 1 if s > k - 1 else int(np.ceil(total / 2))
        else:
            total = k + s - 2 + max(k - s, 0)
            lo = k - 1
        pads.append((lo, total - lo))
    return pads


def dilate(x, lhs):
    """Insert lhs - 1 zeros between neighbours along axes 1 and 2 of (B, H, W, C)."""
    B, H, W, C = x.shape
    out = np.zeros((B, (H - 1) * lhs[0] + 1, (W - 1) * lhs[1] + 1, C), x.dtype)
    out[:, :: lhs[0], :: lhs[1], :] = x
    return out


def window_slices(kh, kw, Ho, Wo, strides, dilation):
    """For each kernel tap (u, v): the (u, v, rows, columns) of xp it meets, as slices."""
    (sh, sw), (dh, dw) = strides, dilation
    for u in range(kh):
        for v in range(kw):
            rows = slice(u * dh, u * dh + (Ho - 1) * sh + 1, sh)
            cols = slice(v * dw, v * dw + (Wo - 1) * sw + 1, sw)
            yield u, v, rows, cols


def im2col(xp, kh, kw, Ho, Wo, strides, dilation):
    """cols (B, Ho, Wo, kh, kw, C) with cols[b, i, j, u, v] = xp[b, i sh + u dh, j sw + v dw]."""
    cols = np.empty((xp.shape[0], Ho, Wo, kh, kw, xp.shape[3]), xp.dtype)
    for u, v, rows, columns in window_slices(kh, kw, Ho, Wo, strides, dilation):
        cols[:, :, :, u, v, :] = xp[:, rows, columns, :]
    return cols


def col2im(dcols, xp_shape, strides, dilation):
    """The adjoint of :func:`im2col`: every tap's gradient added back where it was read."""
    _, Ho, Wo, kh, kw, _ = dcols.shape
    dxp = np.zeros(xp_shape, dcols.dtype)
    for u, v, rows, columns in window_slices(kh, kw, Ho, Wo, strides, dilation):
        dxp[:, rows, columns, :] += dcols[:, :, :, u, v, :]
    return dxp


def out_size(n, k_eff, s, lo, hi):
    """floor((n + lo + hi - k_eff) / s) + 1 (>= 1 required)."""
    if n + lo + hi < k_eff:
        raise ValueError(
            f"spatial size {n} padded by ({lo}, {hi}) is smaller than the window {k_eff}"
        )
    return (n + lo + hi - k_eff) // s + 1


def conv2d_forward(x, W, b, strides, pads, dilation, lhs, groups):
    """y (B, Ho, Wo, F) for x (B, H, W, C), W (kh, kw, C/G, F), b (F,) or None (docstring)."""
    kh, kw, cg, F = W.shape
    if x.shape[3] != cg * groups:
        raise ValueError(f"expected input of shape (B, H, W, {cg * groups}), got {x.shape}")
    xd = dilate(x, lhs)
    xp = np.pad(xd, ((0, 0), pads[0], pads[1], (0, 0)))
    k_eff = ((kh - 1) * dilation[0] + 1, (kw - 1) * dilation[1] + 1)
    Ho = out_size(xd.shape[1], k_eff[0], strides[0], *pads[0])  # the size before padding
    Wo = out_size(xd.shape[2], k_eff[1], strides[1], *pads[1])
    cols = im2col(xp, kh, kw, Ho, Wo, strides, dilation)
    fg, B = F // groups, x.shape[0]
    y = np.empty((B, Ho, Wo, F), np.result_type(x, W))
    for g in range(groups):
        A = cols[..., g * cg : (g + 1) * cg].reshape(B * Ho * Wo, kh * kw * cg)
        Wg = W[..., g * fg : (g + 1) * fg].reshape(kh * kw * cg, fg)
        y[..., g * fg : (g + 1) * fg] = (A @ Wg).reshape(B, Ho, Wo, fg)
    if b is not None:
        y = y + b
    return y, (x.shape, xp.shape, cols, W, strides, pads, dilation, lhs, groups)


def conv2d_backward(dy, cache):
    """(dx, dW, db) for :func:`conv2d_forward` (module docstring)."""
    x_shape, xp_shape, cols, W, strides, pads, dilation, lhs, groups = cache
    kh, kw, cg, F = W.shape
    B, Ho, Wo, _ = dy.shape
    fg = F // groups
    dW = np.empty_like(W)
    dcols = np.empty(cols.shape, dy.dtype)
    for g in range(groups):
        A = cols[..., g * cg : (g + 1) * cg].reshape(B * Ho * Wo, kh * kw * cg)
        Wg = W[..., g * fg : (g + 1) * fg].reshape(kh * kw * cg, fg)
        D = dy[..., g * fg : (g + 1) * fg].reshape(B * Ho * Wo, fg)
        dW[..., g * fg : (g + 1) * fg] = (A.T @ D).reshape(kh, kw, cg, fg)
        dcols[..., g * cg : (g + 1) * cg] = (D @ Wg.T).reshape(B, Ho, Wo, kh, kw, cg)
    dxp = col2im(dcols, xp_shape, strides, dilation)
    (t, _), (l, _) = pads
    Hd, Wd = (x_shape[1] - 1) * lhs[0] + 1, (x_shape[2] - 1) * lhs[1] + 1
    dx = dxp[:, t : t + Hd, l : l + Wd, :][:, :: lhs[0], :: lhs[1], :]
    return dx, dW, dy.sum(axis=(0, 1, 2))


def _conv_pair(kind, features, kernel_size, strides, padding, dilation, groups, use_bias):
    name = f"{kind}({features}, {kernel_size})"

    def forward(params, x):
        W = np.asarray(params["W"])
        x = np.asarray(x)
        rank = W.ndim - 2
        if rank not in (1, 2) or x.ndim != rank + 2:
            raise ValueError(f"{name}: input {x.shape} does not fit a kernel {W.shape}")
        if features is not None and W.shape[-1] != features:
            raise ValueError(f"{name}: W has shape {W.shape}")
        if ("b" in params) != use_bias:
            raise ValueError(f"{name}: use_bias={use_bias} but params keys {sorted(params)}")
        k = W.shape[:rank]
        s, d = per_axis(strides, rank), per_axis(dilation, rank)
        k_eff = tuple((ki - 1) * di + 1 for ki, di in zip(k, d))
        if kind == "ConvTranspose":
            pads = transpose_pads(padding, k_eff, s) or conv_pads(padding, x.shape[1:-1], k_eff, s)
            conv_s, lhs = (1,) * rank, s
        else:
            pads, conv_s, lhs = conv_pads(padding, x.shape[1:-1], k_eff, s), s, (1,) * rank
        if rank == 1:  # as 2-D with a height of 1
            x, W = x[:, None], W[None]
            conv_s, pads, d, lhs = (1, *conv_s), [(0, 0), *pads], (1, *d), (1, *lhs)
        try:
            y, cache = conv2d_forward(x, W, params.get("b"), conv_s, pads, d, lhs, groups)
        except ValueError as e:
            raise ValueError(f"{name}: {e}") from None
        return (y[:, 0] if rank == 1 else y), (rank, cache)

    def backward(dout, cache):
        rank, c = cache
        dout = np.asarray(dout)
        dx, dW, db = conv2d_backward(dout[:, None] if rank == 1 else dout, c)
        grads = {"W": dW[0] if rank == 1 else dW}
        if use_bias:
            grads["b"] = db
        return (dx[:, 0] if rank == 1 else dx), grads

    return Pair(forward, backward, name)


def conv(
    features=None,
    kernel_size=None,
    *,
    strides=1,
    padding="VALID",
    dilation=1,
    groups=1,
    use_bias=True,
) -> Pair:
    """The twin of ``nnjax.layers.Conv`` (kernel size read from ``params["W"]``)."""
    return _conv_pair("Conv", features, kernel_size, strides, padding, dilation, groups, use_bias)


def conv_transpose(
    features=None, kernel_size=None, *, strides=1, padding="VALID", dilation=1, use_bias=True
) -> Pair:
    """The twin of ``nnjax.layers.ConvTranspose``: a stride-1 convolution of the input
    dilated by ``strides`` (module docstring)."""
    return _conv_pair(
        "ConvTranspose", features, kernel_size, strides, padding, dilation, 1, use_bias
    )
