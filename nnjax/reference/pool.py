"""Pooling, forward and backward by hand, in NumPy: the twins of ``nnjax.layers.MaxPool``,
``AvgPool`` and ``GlobalAvgPool`` (no params; a 1-D input runs as 2-D with height 1).

The windows are gathered as in :mod:`nnjax.reference.conv` (im2col, no dilation):
cols[b, i, j, u, v, c] = xp[b, i sh + u, j sw + v, c], with xp the padded input.

* Max: xp is padded with -inf (an integer input with its dtype's smallest value, a bool
  one with False, as the JAX layer pads them); y[b, i, j, c] = max_{u, v} cols[b, i, j, u,
  v, c] (NaN if the window holds a NaN). The gradient goes, whole, to ONE tap per window:
  the first maximum in row-major (u, v) order, which is how JAX's ``reduce_window`` max
  differentiates (a scan with ``>=``: a later tap replaces the chosen one unless the chosen
  one is >= it). With a NaN in the window the scan's rule still holds, and it is not the
  first maximum (:func:`window_argmax`). dJ/dx adds up the routed gradients of every
  window a position belongs to. (PyTorch differs only with a NaN, routed to the window's
  last NaN, and for a window that starts in the padding with only -inf real values, routed
  to its first real position where this routes to the padding: :mod:`nnjax.layers.pool`.)
* Average: xp is padded with zeros; y = (sum_{u, v} cols) / n(i, j), n(i, j) the number of
  real (non-padding) positions in the window. dJ/dx[p] = sum over the windows w holding p of
  dJ/dy[w] / n(w).
* Global average: y[b, c] = mean over the spatial positions; dJ/dx = dJ/dy / (number of
  positions), broadcast.
"""

import numpy as np

from nnjax.reference.conv import col2im, conv_pads, im2col, out_size, per_axis
from nnjax.reference.pair import Pair


def _geometry(x, window, strides, padding):
    rank = x.ndim - 2
    if rank not in (1, 2):
        raise ValueError(f"expected input (B, W, C) or (B, H, W, C), got {x.shape}")
    k = per_axis(window, rank)
    s = k if strides is None else per_axis(strides, rank)
    pads = conv_pads(padding, x.shape[1:-1], k, s)
    if rank == 1:
        k, s, pads = (1, *k), (1, *s), [(0, 0), *pads]
    return k, s, pads


def _windows(x4, k, s, pads, fill):
    xp = np.pad(x4, ((0, 0), pads[0], pads[1], (0, 0)), constant_values=fill)
    Ho = out_size(x4.shape[1], k[0], s[0], *pads[0])  # the size before padding
    Wo = out_size(x4.shape[2], k[1], s[1], *pads[1])
    return xp.shape, im2col(xp, k[0], k[1], Ho, Wo, s, (1, 1))


def _unpad(dxp, pads, shape):
    (t, _), (l, _) = pads
    return dxp[:, t : t + shape[1], l : l + shape[2], :]


def window_argmax(flat):
    """The tap each window's gradient goes to: flat (B, Ho, Wo, kh kw, C), the taps in
    row-major window order -> (B, Ho, Wo, C).

    JAX's rule, a scan over the taps: start at tap 0; tap t replaces the chosen tap c unless
    x_c >= x_t. Without NaN that is the FIRST maximum. A NaN compares false both ways, so
    a NaN replaces the chosen tap and is replaced by the next tap: the gradient goes to the
    first maximum of the taps after the window's last NaN, or to that NaN when it is the
    last tap (e.g. [1, NaN, 0, 5] -> tap 3, [1, NaN, 0] -> tap 2, [1, NaN] -> tap 1),
    while y is NaN."""
    chosen = np.zeros(flat.shape[:3] + flat.shape[4:], dtype=np.intp)
    best = flat[:, :, :, 0]
    for t in range(1, flat.shape[3]):
        tap = flat[:, :, :, t]
        take = ~(best >= tap)
        chosen = np.where(take, t, chosen)
        best = np.where(take, tap, best)
    return chosen


def _lowest(dtype):
    """The max's padding value, the identity of max in ``dtype``: -inf for a float, the
    smallest integer for an int (as the JAX layer pads an int input), False for a bool."""
    if np.issubdtype(dtype, np.integer):
        return np.iinfo(dtype).min
    return False if dtype == np.bool_ else -np.inf


def _pool_pair(kind, window, strides, padding):
    name = f"{kind}({window})"

    def forward(params, x):
        x = np.asarray(x)
        x4 = x[:, None] if x.ndim == 3 else x
        fill = _lowest(x.dtype) if kind == "MaxPool" else 0.0
        try:
            k, s, pads = _geometry(x, window, strides, padding)
            xp_shape, cols = _windows(x4, k, s, pads, fill)
        except ValueError as e:
            raise ValueError(f"{name}: {e}") from None
        B, Ho, Wo, kh, kw, C = cols.shape
        flat = cols.reshape(B, Ho, Wo, kh * kw, C)
        if kind == "MaxPool":
            extra = window_argmax(flat)
            y = flat.max(axis=3)  # NaN if the window holds one, as lax.max
        else:
            ones = np.ones((1, *x4.shape[1:3], 1), np.result_type(x, np.float16))
            _, count_cols = _windows(ones, k, s, pads, 0.0)
            extra = count_cols.sum(axis=(3, 4))  # n(i, j): real positions per window
            y = flat.sum(axis=3) / extra
        cache = (x.ndim, x4.shape, xp_shape, cols.shape, k, s, pads, extra)
        return (y[:, 0] if x.ndim == 3 else y), cache

    def backward(dout, cache):
        ndim, x4_shape, xp_shape, cols_shape, k, s, pads, extra = cache
        dy = np.asarray(dout)
        dy = dy[:, None] if ndim == 3 else dy
        B, Ho, Wo, kh, kw, C = cols_shape
        dflat = np.zeros((B, Ho, Wo, kh * kw, C), dy.dtype)
        if kind == "MaxPool":
            np.put_along_axis(dflat, extra[:, :, :, None], dy[:, :, :, None], axis=3)
        else:
            dflat += (dy / extra)[:, :, :, None]
        dxp = col2im(dflat.reshape(cols_shape), xp_shape, s, (1, 1))
        dx = _unpad(dxp, pads, x4_shape)
        return (dx[:, 0] if ndim == 3 else dx), {}

    return Pair(forward, backward, name)


def max_pool(window, *, strides=None, padding="VALID") -> Pair:
    """The twin of ``nnjax.layers.MaxPool`` (module docstring: the first maximum wins)."""
    return _pool_pair("MaxPool", window, strides, padding)


def avg_pool(window, *, strides=None, padding="VALID") -> Pair:
    """The twin of ``nnjax.layers.AvgPool`` (the mean over each window's real positions)."""
    return _pool_pair("AvgPool", window, strides, padding)


def global_avg_pool() -> Pair:
    """The twin of ``nnjax.layers.GlobalAvgPool``: (B, *spatial, C) -> (B, C)."""

    def forward(params, x):
        x = np.asarray(x)
        if x.ndim < 3:
            raise ValueError(f"GlobalAvgPool: expected input (B, *spatial, C), got {x.shape}")
        return x.mean(axis=tuple(range(1, x.ndim - 1))), x.shape

    def backward(dout, shape):
        n = int(np.prod(shape[1:-1]))
        dout = np.asarray(dout)
        expand = dout.reshape(shape[0], *([1] * (len(shape) - 2)), shape[-1])
        return np.broadcast_to(expand / n, shape).copy(), {}

    return Pair(forward, backward, "GlobalAvgPool")
