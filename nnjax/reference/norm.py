"""Layer and batch normalisation, backward by hand, in NumPy: the twins of
``nnjax.layers.LayerNorm`` and ``BatchNorm``.

Over the normalised axes (the last axis for LayerNorm; every axis but the last for BatchNorm
in training), with m values per group:

    mu = (1/m) sum x,   var = (1/m) sum (x - mu)^2,   sigma = sqrt(var + eps)
    xhat = (x - mu) / sigma,   y = xhat * scale + offset

Backward, with dxhat = dJ/dy * scale and the means taken over the same axes:

    dJ/dscale  = sum over the other axes of dJ/dy * xhat
    dJ/doffset = sum over the other axes of dJ/dy
    dJ/dx      = (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)) / sigma

(the full gradient: mu and var depend on every x of the group). In evaluation mode BatchNorm
is the affine map y = (x - running_mean) / sqrt(running_var + eps) * scale + offset, so
dJ/dx = dxhat / sqrt(running_var + eps). The running statistics follow PyTorch's rule:
mean <- (1 - momentum) mean + momentum mu, var <- (1 - momentum) var + momentum var m/(m-1).
"""

import numpy as np

from nnjax.reference.pair import Pair


def norm_forward(params, x, axes, eps):
    """y and the cache for normalising x over ``axes`` with batch statistics."""
    mu = x.mean(axis=axes, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=axes, keepdims=True)
    sigma = np.sqrt(var + eps)
    xhat = (x - mu) / sigma
    y = xhat * params["scale"] if "scale" in params else xhat
    if "offset" in params:
        y = y + params["offset"]
    return y, (xhat, sigma, axes, params.get("scale"), sorted(params))


def norm_backward(dy, cache):
    """(dx, grads) for :func:`norm_forward` (module docstring)."""
    xhat, sigma, axes, scale, keys = cache
    dy = np.asarray(dy)
    rest = tuple(range(dy.ndim - 1))
    grads = {}
    if "scale" in keys:
        grads["scale"] = (dy * xhat).sum(axis=rest)
    if "offset" in keys:
        grads["offset"] = dy.sum(axis=rest)
    dxhat = dy * scale if scale is not None else dy
    mean_d = dxhat.mean(axis=axes, keepdims=True)
    mean_dx = (dxhat * xhat).mean(axis=axes, keepdims=True)
    return (dxhat - mean_d - xhat * mean_dx) / sigma, grads


def _check_keys(name, params, use_scale, use_offset):
    want = {k for k, on in (("scale", use_scale), ("offset", use_offset)) if on}
    if set(params) != want:
        raise ValueError(f"{name}: expected params {sorted(want)}, got {sorted(params)}")


def _check_batch(name, x) -> int:
    """m, the values per channel of x (B, ..., C); a ValueError, as the JAX layer's, when
    m < 2 (the variance of one value is 0 and the unbiased one 0/0)."""
    m = x.size // x.shape[-1] if x.ndim >= 2 and x.shape[-1] else 0
    if m < 2:
        raise ValueError(
            f"{name}: training needs more than 1 value per channel, got input {x.shape}"
        )
    return m


def layer_norm(*, eps=1e-5, use_scale=True, use_offset=True) -> Pair:
    """The twin of ``nnjax.layers.LayerNorm``: statistics over the last axis."""

    def forward(params, x):
        _check_keys("LayerNorm", params, use_scale, use_offset)
        x = np.asarray(x)
        return norm_forward(params, x, (x.ndim - 1,), eps)

    return Pair(forward, norm_backward, "LayerNorm")


def batch_norm(
    *, momentum=0.1, eps=1e-5, use_scale=True, use_offset=True, train=True, state=None
) -> Pair:
    """The twin of ``nnjax.layers.BatchNorm``: ``train=True`` normalises with the batch
    statistics over every axis but the last; ``train=False`` with ``state`` =
    ``{"mean", "var"}`` (the running statistics). ``momentum`` is used by
    :func:`batch_norm_update` only."""

    def forward(params, x):
        _check_keys("BatchNorm", params, use_scale, use_offset)
        x = np.asarray(x)
        if train:
            _check_batch("BatchNorm", x)
            return norm_forward(params, x, tuple(range(x.ndim - 1)), eps)
        sigma = np.sqrt(state["var"] + eps)
        xhat = (x - state["mean"]) / sigma
        y = xhat * params["scale"] if use_scale else xhat
        return (y + params["offset"] if use_offset else y), (xhat, sigma, params.get("scale"))

    def backward(dout, cache):
        if train:
            return norm_backward(dout, cache)
        xhat, sigma, scale = cache
        dy = np.asarray(dout)
        rest = tuple(range(dy.ndim - 1))
        grads = {}
        if use_scale:
            grads["scale"] = (dy * xhat).sum(axis=rest)
        if use_offset:
            grads["offset"] = dy.sum(axis=rest)
        return (dy * scale if use_scale else dy) / sigma, grads

    return Pair(forward, backward, f"BatchNorm({'train' if train else 'eval'})")


def batch_norm_update(state, x, momentum=0.1):
    """The new running statistics after one training step on x (PyTorch's rule: the
    unbiased batch variance, m/(m-1) times the biased one)."""
    x = np.asarray(x)
    m = _check_batch("batch_norm_update", x)
    axes = tuple(range(x.ndim - 1))
    mu = x.mean(axis=axes)
    var = ((x - mu) ** 2).mean(axis=axes)
    return {
        "mean": (1 - momentum) * state["mean"] + momentum * mu,
        "var": (1 - momentum) * state["var"] + momentum * var * m / (m - 1),
    }
