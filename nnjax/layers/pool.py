"""Pooling over 1 or 2 spatial axes, channels-last, by ``lax.reduce_window``; no params.

For a window of size k, stride s and padding (lo, hi) (sizes as in
:mod:`nnjax.layers.spatial`; the window is not dilated), with W(o) the window of output
position o:

* ``MaxPool``: y[b, o, c] = max_{p in W(o)} x_pad[b, p, c] with -inf padding. Its gradient
  (JAX's, ``select_and_scatter_add``) sends dJ/dy[o] to one position per window: the FIRST
  maximum in row-major order over the window. Ties are not split. It is a scan in which a
  later position replaces the chosen one unless the chosen one is >= it, so with a NaN in
  the window (y is NaN) the gradient goes to the first maximum after the window's last NaN,
  or to that NaN when it is the last position (measured on XLA:CPU;
  :func:`nnjax.reference.pool.window_argmax` writes the rule out). PyTorch's
  ``MaxPool1d/2d(k, s, padding=p)`` (padding p <= k / 2 there) gives the same y and, without
  NaN, the same gradient (ties: the first maximum too); it differs in two corner cases:
  with a NaN torch (CPU) routes to the window's LAST NaN, and a window that starts in the
  padding and whose real positions are all -inf routes here to its first (padding)
  position, so the gradient is dropped, in torch to its first real position.
* ``AvgPool``: y[b, o, c] = (1 / n(o)) sum_{p in W(o), p real} x[b, p, c], where n(o) counts
  only the real (non-padding) positions of the window (as TensorFlow/Keras "SAME" pooling and
  Flax's ``count_include_pad=False``; PyTorch's default ``count_include_pad=True`` divides
  by prod(k) and differs at the borders: this is torch's ``AvgPool1d/2d(k, s, padding=p,
  count_include_pad=False)``). With "VALID" padding every window has n(o) = prod(k).
* ``GlobalAvgPool``: y[b, c] = mean over every spatial position of x[b, ..., c].

``MaxPool`` keeps the input's dtype (a max of ints is an int); the averages are taken in the
input's floating dtype, or in the default float (float32, float64 under x64) for an integer
or bool input, as Dense and Conv compute.

Explicit padding must be smaller than the window on each side, so that every window holds
at least one real position. As for Conv, every spatial size and the channels C must be >= 1
(checked at init and at apply); ``apply`` takes array-likes (nested lists).
"""

import jax.numpy as jnp
from jax import lax

from nnjax.layers.checks import (
    as_array,
    check_features,
    check_shape,
    check_spatial,
    float_result_type,
)
from nnjax.layers.core import Layer, make_spec
from nnjax.layers.spatial import (
    explicit_pads,
    int_tuple,
    normalize_padding,
    output_sizes,
    spatial_rank,
)


def _pool(kind: str, window, strides, padding) -> Layer:
    name = f"{kind}({window})"
    window = int_tuple(name, "window", window, None)  # Python ints: the spec is JSON
    if strides is not None:
        strides = int_tuple(name, "strides", strides, None)
    name = f"{kind}({window})"
    padding = normalize_padding(name, padding)
    lists = {
        k: len(v)
        for k, v in (("window", window), ("strides", strides), ("padding", padding))
        if isinstance(v, tuple | list)
    }
    if len(set(lists.values())) > 1:
        raise ValueError(f"{name}: tuple arguments disagree on the number of spatial axes: {lists}")
    fixed = next(iter(lists.values()), None)

    def geometry(in_shape):
        rank = spatial_rank(name, in_shape, fixed)
        check_spatial(name, in_shape)
        check_features(name, in_shape, "input channels")
        k = int_tuple(name, "window", window, rank)
        s = k if strides is None else int_tuple(name, "strides", strides, rank)
        pads = explicit_pads(name, padding, in_shape[1:-1], k, s)
        if any(lo >= ki or hi >= ki for (lo, hi), ki in zip(pads, k)):
            raise ValueError(f"{name}: padding {pads} must be smaller than the window {k}")
        return k, s, pads, output_sizes(name, in_shape[1:-1], k, s, pads, in_shape)

    def init(key, input_shape):
        shape = check_shape(name, input_shape, 3)
        *_, out = geometry(shape)
        return (shape[0], *out, shape[-1]), {}

    def apply(params, x, *, key=None):
        x = as_array(name, x)
        k, s, pads, _ = geometry(tuple(x.shape))
        dims, steps, full = (1, *k, 1), (1, *s, 1), [(0, 0), *pads, (0, 0)]
        if kind == "MaxPool":
            return lax.reduce_window(x, -jnp.inf, lax.max, dims, steps, full)
        x = jnp.asarray(x, float_result_type(x))  # bools: reduce_window cannot add them
        # Python-scalar init values: JAX then knows the reduction (max/add) and its gradient.
        sums = lax.reduce_window(x, 0.0, lax.add, dims, steps, full)
        ones = jnp.ones((1, *x.shape[1:-1], 1), x.dtype)
        counts = lax.reduce_window(ones, 0.0, lax.add, dims, steps, full)
        return sums / counts

    def listed(v):
        return list(v) if isinstance(v, tuple | list) else v

    spec = make_spec(kind, window=listed(window), strides=listed(strides), padding=padding)
    return Layer(init, apply, name, False, spec)


def MaxPool(window, *, strides=None, padding="VALID") -> Layer:
    """Max pooling (module docstring): (B, W, C) -> (B, W', C) or (B, H, W, C) ->
    (B, H', W', C). ``strides`` defaults to ``window`` (non-overlapping windows, as PyTorch
    and Keras); ``padding``: "VALID" (default), "SAME", an int, or (lo, hi) pairs."""
    return _pool("MaxPool", window, strides, padding)


def AvgPool(window, *, strides=None, padding="VALID") -> Layer:
    """Average pooling over the real positions of each window (module docstring); arguments
    as :func:`MaxPool`."""
    return _pool("AvgPool", window, strides, padding)


def GlobalAvgPool() -> Layer:
    """y[b, c] = mean of x[b, ..., c] over the spatial axes: (B, *spatial, C) -> (B, C).
    Every spatial size and C must be >= 1 (checked at init and at apply: no mean of
    nothing)."""
    name = "GlobalAvgPool"

    def init(key, input_shape):
        shape = check_shape(name, input_shape, 3)
        check_spatial(name, shape)
        check_features(name, shape, "input channels")
        return (shape[0], shape[-1]), {}

    def apply(params, x, *, key=None):
        x = as_array(name, x)
        if x.ndim < 3:
            raise ValueError(f"{name}: expected input (B, *spatial, C), got {tuple(x.shape)}")
        check_spatial(name, tuple(x.shape))
        check_features(name, tuple(x.shape), "input channels")
        x = jnp.asarray(x, float_result_type(x))  # jnp.mean: int32 -> float32 under x64
        return jnp.mean(x, axis=tuple(range(1, x.ndim - 1)))

    return Layer(init, apply, name, False, make_spec("GlobalAvgPool"))
