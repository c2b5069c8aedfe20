"""Normalisation layers, channels-last: the last axis holds the C features/channels.

``LayerNorm`` normalises each example over its last axis (``torch.nn.LayerNorm(C, eps)``;
torch's several trailing axes: reshape them into one); ``BatchNorm`` normalises each
channel over every other axis (the batch and the spatial axes):

    mu = mean(x),  var = mean((x - mu)^2)       (biased, over the normalised axes)
    y  = (x - mu) / sqrt(var + eps) * scale + offset

Params ``{"scale": (C,), "offset": (C,)}`` start at 1 and 0 (either left out with
``use_scale=False`` / ``use_offset=False``). C must be >= 1, ``eps`` finite and > 0, ``dtype``
a floating dtype; ``apply`` takes an array-like x and checks that the params have exactly
the keys the layer makes (``{"scale", "offset"}`` less those left out) and that every param
and state leaf has shape (C,): a ValueError naming the layer otherwise
(:class:`~nnjax.layers.checks.ParamsError` for the params).

``BatchNorm`` is stateful (the protocol in :mod:`nnjax.layers`): state
``{"mean": (C,), "var": (C,)}`` starts at 0 and 1. Its convention is PyTorch's, so its
numbers equal ``torch.nn.BatchNorm1d/2d`` with the same ``momentum`` and ``eps``:

* ``train=True``: normalise with the batch statistics (biased variance, as above) and
  update the running statistics with the UNBIASED batch variance, n the number of
  values per channel (n >= 2):

      running_mean <- (1 - momentum) * running_mean + momentum * mu
      running_var  <- (1 - momentum) * running_var  + momentum * var * n / (n - 1)

* ``train=False``: normalise with the running statistics; the state comes back unchanged.

(torch's ``momentum=None``, a cumulative average, has no counterpart; eps is inside the
square root in both modes, as torch's.)

``train`` must be a bool (a string such as "False" is refused, not read as True).

The new statistics keep the dtypes of the state (bfloat16 statistics stay bfloat16 for a
float32 input), so the state can be a ``lax.scan`` carry, as ``fit`` makes it.

Flax's ``BatchNorm(momentum=m)`` weighs the running value by m, i.e. ours with
momentum = 1 - m, and updates with the biased variance. The running statistics are not
differentiated (``lax.stop_gradient``).
"""

import math
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

from nnjax.layers.checks import (
    ParamsError,
    as_array,
    as_real,
    check_dtype,
    check_features,
    check_param_keys,
    check_shape,
    dtype_name,
    flag,
    param_dtype,
)
from nnjax.layers.core import Layer, make_spec


def _check_eps(name, eps) -> float:
    """``eps`` as a float: a finite real number > 0 (Python or NumPy), else a ValueError."""
    value = as_real(eps)
    if value is None or not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name}: eps must be a number > 0 and finite, got {eps!r}")
    return value


def _check_momentum(name, momentum) -> float:
    """``momentum`` as a float: a real number in [0, 1] (Python or NumPy), else a ValueError."""
    value = as_real(momentum)
    if value is None or not 0 <= value <= 1:
        raise ValueError(f"{name}: momentum must be in [0, 1], got {momentum!r}")
    return value


def _affine_params(name, shape, use_scale, use_offset, dtype):
    check_features(name, shape, "channels C")
    dt, C = param_dtype(dtype, name), shape[-1]
    params = {}
    if use_scale:
        params["scale"] = jnp.ones((C,), dt)
    if use_offset:
        params["offset"] = jnp.zeros((C,), dt)
    return params


def _dtypes(x, params, *stats):
    """(out, hi): ``out`` the dtype of y, what x (an int x as the default float), the params
    and the given statistics promote to; ``hi`` the dtype the statistics and y are computed
    in, ``out`` but at least float32. Computed in bfloat16 (8 bits of mantissa), the
    statistics of x of mean 100 and std 3 moved y by 0.065 (LayerNorm) and 0.16 (BatchNorm)
    from a float64 oracle (float16: 0.011 and 0.017); in float32, by 2e-7."""
    out = jnp.result_type(x, 1.0, *params.values(), *stats)
    return out, jnp.promote_types(out, jnp.float32)


def _normalize(params, x, mean, var, eps):
    """y = (x - mean) / sqrt(var + eps) * scale + offset, computed in at least float32 and
    given in the dtype x, the statistics and the params promote to (:func:`_dtypes`)."""
    out, hi = _dtypes(x, params, mean, var)

    def right(v):  # (C,) as (1, ..., 1, C): no implicit rank promotion
        return lax.broadcast_to_rank(v.astype(hi), x.ndim)

    y = (x.astype(hi) - right(mean)) * lax.rsqrt(right(var) + eps)
    if "scale" in params:
        y = y * right(params["scale"])
    if "offset" in params:
        y = y + right(params["offset"])
    return y.astype(out)


def _param_keys(use_scale, use_offset) -> tuple[str, ...]:
    return ("scale",) * use_scale + ("offset",) * use_offset


def _check_channels(name, params, state, x, keys):
    """A ValueError unless params has exactly ``keys``, x is (..., C) with C >= 1 (C the
    params' size, when there are params) and every param and state leaf has shape (C,)."""
    check_param_keys(name, params, keys)
    sizes = [jnp.shape(v) for v in params.values()]
    C = sizes[0][0] if sizes and len(sizes[0]) == 1 else "C >= 1"
    if x.ndim < 1 or x.shape[-1] < 1 or (C != "C >= 1" and x.shape[-1] != C):
        raise ValueError(f"{name}: expected input of shape (..., {C}), got {tuple(x.shape)}")
    C = x.shape[-1]
    for what, leaves in (("params", params), ("state", state or {})):
        for key, leaf in leaves.items():
            if jnp.shape(leaf) != (C,):
                error = ParamsError if what == "params" else ValueError
                raise error(
                    f"{name}: {what} {key!r} must have shape ({C},), one entry per channel of "
                    f"the input {tuple(x.shape)}, got {jnp.shape(leaf)}"
                )


def LayerNorm(
    *, eps: float = 1e-5, use_scale: bool = True, use_offset: bool = True, dtype: Any = None
) -> Layer:
    """Per-example normalisation over the last axis (module docstring): (..., C) -> (..., C)."""
    name = "LayerNorm"
    eps = _check_eps(name, eps)
    use_scale, use_offset = flag(name, "use_scale", use_scale), flag(name, "use_offset", use_offset)
    check_dtype(name, dtype)
    keys = _param_keys(use_scale, use_offset)

    def init(key, input_shape):
        shape = check_shape(name, input_shape, 1)
        return shape, _affine_params(name, shape, use_scale, use_offset, dtype)

    def apply(params, x, *, key=None):
        x = as_array(name, x)
        _check_channels(name, params, None, x, keys)
        out, hi = _dtypes(x, params)
        xh = x.astype(hi)
        mean = jnp.mean(xh, axis=-1, keepdims=True)
        var = jnp.mean(jnp.square(xh - mean), axis=-1, keepdims=True)
        return _normalize(params, xh, mean, var, eps).astype(out)

    spec = make_spec(
        "LayerNorm",
        eps=eps,
        use_scale=bool(use_scale),
        use_offset=bool(use_offset),
        dtype=dtype_name(dtype),
    )
    return Layer(init, apply, name, False, spec)


def BatchNorm(
    *,
    momentum: float = 0.1,
    eps: float = 1e-5,
    use_scale: bool = True,
    use_offset: bool = True,
    dtype: Any = None,
) -> Layer:
    """Per-channel normalisation over all axes but the last, with running statistics as
    state (module docstring; PyTorch's momentum convention): (B, ..., C) -> (B, ..., C)."""
    name = "BatchNorm"
    eps = _check_eps(name, eps)
    use_scale, use_offset = flag(name, "use_scale", use_scale), flag(name, "use_offset", use_offset)
    momentum = _check_momentum(name, momentum)
    check_dtype(name, dtype)
    keys = _param_keys(use_scale, use_offset)

    def init(key, input_shape):
        shape = check_shape(name, input_shape, 2)
        params = _affine_params(name, shape, use_scale, use_offset, dtype)
        dt = param_dtype(dtype, name)
        state = {"mean": jnp.zeros((shape[-1],), dt), "var": jnp.ones((shape[-1],), dt)}
        return shape, params, state

    def apply(params, x, *, key=None, state=None, train=False):
        train = flag(name, "train", train)
        x = as_array(name, x)
        if not isinstance(state, dict) or set(state) != {"mean", "var"}:
            raise ValueError(
                f"{name}: state must be the {{'mean', 'var'}} dict from init, "
                f"got {jax.tree.map(jnp.shape, state)!r}"
            )
        _check_channels(name, params, state, x, keys)
        if x.ndim < 2:
            raise ValueError(f"{name}: expected input (B, ..., C), got {tuple(x.shape)}")
        if not train:
            return _normalize(params, x, state["mean"], state["var"], eps), state
        n = x.size // x.shape[-1]
        if n < 2:
            raise ValueError(
                f"{name}: training needs more than 1 value per channel, got input {tuple(x.shape)}"
            )
        axes, (out, hi) = tuple(range(x.ndim - 1)), _dtypes(x, params)
        xh = x.astype(hi)
        mean = jnp.mean(xh, axis=axes, keepdims=True)  # (1, ..., 1, C), as x's rank
        var = jnp.mean(jnp.square(xh - mean), axis=axes)
        mean = mean.reshape(var.shape)  # (C,)
        y = _normalize(params, xh, mean, var, eps).astype(out)
        new = {
            "mean": (1 - momentum) * state["mean"] + momentum * mean,
            "var": (1 - momentum) * state["var"] + momentum * var * (n / (n - 1)),
        }
        # The state keeps its dtypes (a scan carry must): float32 x into bfloat16 statistics,
        # or float64 x (x64) into float32 ones, would otherwise promote them.
        new = {k: v.astype(jnp.result_type(state[k])) for k, v in new.items()}
        return y, lax.stop_gradient(new)

    spec = make_spec(
        "BatchNorm",
        momentum=momentum,
        eps=eps,
        use_scale=bool(use_scale),
        use_offset=bool(use_offset),
        dtype=dtype_name(dtype),
    )
    return Layer(init, apply, name, True, spec)
