"""Layers as functional forward/backward pairs, by hand, in NumPy.

A :class:`Pair` mirrors one :class:`nnjax.layers.Layer` with the contract of ``jax.vjp``:

* ``forward(params, x) -> (out, cache)``
* ``backward(dout, cache) -> (dx, grads)``: ``dout = dJ/dout`` (out's shape) in,
  ``dx = dJ/dx`` (x's shape) and ``grads = dJ/dparams`` (params' structure) out.

The other twins live in :mod:`~nnjax.reference.conv`, :mod:`~nnjax.reference.pool`,
:mod:`~nnjax.reference.norm`, :mod:`~nnjax.reference.combinators` and
:mod:`~nnjax.reference.recurrent`; :data:`LAYERS` lists them all.

Params have exactly the structure of the JAX layer's params (``{"W": (in, out), "b": (out,)}``
for Dense, ``{"W": (num_embeddings, features)}`` for Embedding, ``{}`` for the other layers
here, a list for ``serial``), so one params tree feeds both.
Batches are rows: x has shape (..., in), every leading axis is a batch axis.
"""

from collections.abc import Callable

import numpy as np

from nnjax.reference import combinators as C
from nnjax.reference import conv, norm, pool, recurrent
from nnjax.reference.activations import ACTIVATIONS, vjp
from nnjax.reference.pair import Pair


def dense_forward(params, x):
    """z = x W + b; x (..., in), W (in, out), b (out,) -> z (..., out). cache = (x, W, has_b)."""
    W = params["W"]
    x = np.asarray(x)
    if x.ndim < 1 or x.shape[-1] != W.shape[0]:
        raise ValueError(f"Dense: expected input of shape (..., {W.shape[0]}), got {x.shape}")
    z = x @ W
    if "b" in params:
        z = z + params["b"]
    return z, (x, W, "b" in params)


def dense_backward(dout, cache):
    """With delta = dJ/dz (..., out), rows r over every batch axis:

    dJ/dx = delta W^T,   dJ/dW = sum_r x_r^T delta_r = X^T Delta,   dJ/db = sum_r delta_r.
    """
    x, W, has_b = cache
    dout = np.asarray(dout)
    dx = dout @ W.T
    x2, d2 = x.reshape(-1, x.shape[-1]), dout.reshape(-1, dout.shape[-1])
    grads = {"W": x2.T @ d2}
    if has_b:
        grads["b"] = np.sum(d2, axis=0)
    return dx, grads


def dense(features: int | None = None, *, use_bias: bool = True) -> Pair:
    """The twin of ``nnjax.layers.Dense``: y = x W + b (``features`` and ``use_bias`` are
    checked against the params given to ``forward``)."""

    def forward(params, x):
        if features is not None and params["W"].shape[-1] != features:
            raise ValueError(f"Dense({features}): W has shape {params['W'].shape}")
        if ("b" in params) != use_bias:
            raise ValueError(f"Dense: use_bias={use_bias} but params keys {sorted(params)}")
        return dense_forward(params, x)

    return Pair(forward, dense_backward, f"Dense({features})")


def activation(name: str) -> Pair:
    """The twin of ``nnjax.layers.Activation``: y = f(z), dJ/dz = vjp(f, z, dJ/dy) (no params).

    For elementwise f, dJ/dz = dJ/dy * f'(z).
    """
    if name not in ACTIVATIONS:
        raise ValueError(
            f"unknown activation {name!r}; valid names: {', '.join(sorted(ACTIVATIONS))}"
        )
    f = ACTIVATIONS[name][0]

    def forward(params, x):
        return f(x), np.asarray(x)

    def backward(dout, z):
        return vjp(name, z, dout), {}

    return Pair(forward, backward, f"Activation({name})")


def flatten() -> Pair:
    """The twin of ``nnjax.layers.Flatten``: (B, d1, d2, ...) -> (B, d1 d2 ...); dx is dout
    reshaped back."""

    def forward(params, x):
        x = np.asarray(x)
        if x.ndim < 2:
            raise ValueError(f"Flatten: expected a batch of at least 2 dims, got {x.shape}")
        return x.reshape(x.shape[0], -1), x.shape

    def backward(dout, shape):
        return np.asarray(dout).reshape(shape), {}

    return Pair(forward, backward, "Flatten")


def dropout(rate: float, mask=None) -> Pair:
    """The twin of ``nnjax.layers.Dropout`` with a fixed keep-mask m (booleans, x's shape):

    y = m * x / (1 - rate),   dJ/dx = m * dJ/dy / (1 - rate).

    ``mask=None`` is evaluation mode (the identity), as the JAX layer without a key. An
    integer or bool x is computed in float64 in every mode (never rounded back to ints).
    """
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"Dropout: rate must be in [0, 1), got {rate}")
    keep = None if mask is None else np.asarray(mask, dtype=bool)

    def forward(params, x):
        x = np.asarray(x)
        x = x if np.issubdtype(x.dtype, np.inexact) else x.astype(np.float64)
        if keep is None or rate == 0.0:
            return x, None
        if keep.shape != x.shape:
            raise ValueError(f"Dropout: mask shape {keep.shape} != input shape {x.shape}")
        return np.where(keep, x / (1.0 - rate), 0.0).astype(x.dtype), None

    def backward(dout, cache):
        dout = np.asarray(dout)
        if keep is None or rate == 0.0:
            return dout, {}
        return np.where(keep, dout / (1.0 - rate), 0.0).astype(dout.dtype), {}

    return Pair(forward, backward, f"Dropout({rate})")


def serial(*pairs: Pair) -> Pair:
    """Composition: forward runs a^l = f_l(a^{l-1}) in order, keeping each cache; backward
    runs the chain rule in reverse, dJ/da^{l-1} = backward_l(dJ/da^l). Params and grads are
    lists with one entry per layer."""
    if not pairs:
        raise ValueError("serial: needs at least one layer")
    for i, p in enumerate(pairs):
        if not isinstance(p, Pair):
            raise ValueError(f"serial: argument {i} is not a Pair but {type(p).__name__}")

    def forward(params, x):
        if len(params) != len(pairs):
            raise ValueError(f"serial: {len(pairs)} layers but params for {len(params)}")
        caches = []
        for i, (pair, p) in enumerate(zip(pairs, params)):
            try:
                x, c = pair.forward(p, x)
            except ValueError as e:
                raise ValueError(f"layer {i} ({pair.name}): {e}") from None
            caches.append(c)
        return x, caches

    def backward(dout, caches):
        grads = [None] * len(pairs)
        for i in reversed(range(len(pairs))):
            dout, grads[i] = pairs[i].backward(dout, caches[i])
        return dout, grads

    name = "serial(" + ", ".join(p.name for p in pairs) + ")"
    return Pair(forward, backward, name)


def reshape(shape) -> Pair:
    """The twin of ``nnjax.layers.Reshape``: (B, ...) -> (B, *shape); dx is dout reshaped back."""
    target = tuple(int(d) for d in shape)

    def forward(params, x):
        x = np.asarray(x)
        if x.ndim < 2 or int(np.prod(x.shape[1:])) != int(np.prod(target)):
            raise ValueError(f"Reshape({target}): input shape {x.shape} does not fit")
        return x.reshape(x.shape[0], *target), x.shape

    def backward(dout, shape):
        return np.asarray(dout).reshape(shape), {}

    return Pair(forward, backward, f"Reshape({target})")


def identity() -> Pair:
    """The twin of ``nnjax.layers.Identity``: y = x, dJ/dx = dJ/dy (arrays or tuples)."""
    return Pair(lambda params, x: (x, None), lambda dout, cache: (dout, {}), "Identity")


def embedding(num_embeddings=None, features=None) -> Pair:
    """The twin of ``nnjax.layers.Embedding``: y[...] = W[ids[...]]; dJ/dW[v] = the sum of
    dJ/dy over the positions with id v (``np.add.at``); the integer ids get a zero gradient."""

    def forward(params, x):
        ids = np.asarray(x)
        W = np.asarray(params["W"])
        if not np.issubdtype(ids.dtype, np.integer) or (
            ids.size and not 0 <= ids.min() <= ids.max() < len(W)
        ):
            raise ValueError(f"Embedding: ids must be integers in [0, {len(W)}), got {ids}")
        return W[ids], (ids, W.shape, W.dtype)

    def backward(dout, cache):
        ids, shape, dtype = cache
        dW = np.zeros(shape, dtype)
        np.add.at(dW, ids, np.asarray(dout))
        return np.zeros(ids.shape), {"W": dW}

    return Pair(forward, backward, f"Embedding({num_embeddings}, {features})")


LAYERS: dict[str, Callable[..., Pair]] = {
    "Dense": dense,
    "Activation": activation,
    "Flatten": flatten,
    "Reshape": reshape,
    "Identity": identity,
    "Dropout": dropout,
    "serial": serial,
    "Conv": conv.conv,
    "ConvTranspose": conv.conv_transpose,
    "MaxPool": pool.max_pool,
    "AvgPool": pool.avg_pool,
    "GlobalAvgPool": pool.global_avg_pool,
    "LayerNorm": norm.layer_norm,
    "BatchNorm": norm.batch_norm,
    "parallel": C.parallel,
    "FanOut": C.fan_out,
    "FanInSum": C.fan_in_sum,
    "FanInConcat": C.fan_in_concat,
    "residual": C.residual,
    "SimpleRNNCell": recurrent.simple_rnn_cell,
    "GRUCell": recurrent.gru_cell,
    "LSTMCell": recurrent.lstm_cell,
    "RNN": recurrent.rnn,
    "Bidirectional": recurrent.bidirectional,
    "Embedding": embedding,
}
"""The twin of every name in ``nnjax.layers.LAYERS``; the recurrent layers take the twin's
:class:`nnjax.reference.recurrent.Cell` (``CELLS[name]()``) where the JAX side takes a cell
layer."""
