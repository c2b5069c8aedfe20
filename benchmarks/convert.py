"""nnjax MLP params <-> Equinox and PyTorch models (Flax lives in :mod:`nnjax.interop`).

Both frameworks store a linear layer's weight as (out, in) and compute y = x W^T + b, so
W_torch = W_eqx = W_nnjax^T; biases are shared as is. Hidden activation: ReLU; the output
is logits. Values are copied exactly (no rounding), so all rows start from the same params.
"""

import functools
from collections.abc import Callable

import numpy as np

from benchmarks.harness import Unavailable
from nnjax.interop import dense_layers


def _nnjax(Ws, bs) -> list:
    params = []
    for i, (W, b) in enumerate(zip(Ws, bs)):
        params += ([{}] if i else []) + [{"W": np.asarray(W), "b": np.asarray(b)}]
    return params


def require(module: str):
    """Import ``module`` or raise :class:`Unavailable` (the row is skipped, with a note)."""
    try:
        return __import__(module)
    except ImportError as e:
        raise Unavailable(f"{module} is not installed (pip install -e '.[bench]'): {e}") from None


@functools.cache
def equinox_mlp_class():
    """An ``eqx.Module`` MLP of ``eqx.nn.Linear`` layers, called per example (vmap it)."""
    eqx = require("equinox")

    class EqxMLP(eqx.Module):
        layers: list
        activation: Callable = eqx.field(static=True)

        def __call__(self, x):
            for i, layer in enumerate(self.layers):
                if i:
                    x = self.activation(x)
                x = layer(x)
            return x

    return EqxMLP


def to_equinox(params):
    """An Equinox MLP (ReLU hidden layers) with weight = W^T, bias = b."""
    eqx = require("equinox")
    import jax
    import jax.numpy as jnp

    layers = []
    for i, d in enumerate(dense_layers(params)):
        n_in, n_out = d["W"].shape
        lin = eqx.nn.Linear(n_in, n_out, key=jax.random.key(i), dtype=d["W"].dtype)
        lin = eqx.tree_at(
            lambda m: (m.weight, m.bias), lin, (jnp.asarray(d["W"]).T, jnp.asarray(d["b"]))
        )
        layers.append(lin)
    return equinox_mlp_class()(layers, jax.nn.relu)


def from_equinox(model) -> list:
    return _nnjax([np.asarray(m.weight).T for m in model.layers], [m.bias for m in model.layers])


def to_torch(params):
    """A ``torch.nn.Sequential`` of Linear/ReLU with weight = W^T, bias = b (copied)."""
    torch = require("torch")
    mods = []
    for i, d in enumerate(dense_layers(params)):
        W = np.asarray(d["W"])
        lin = torch.nn.Linear(W.shape[0], W.shape[1], dtype=_torch_dtype(torch, W.dtype))
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(np.ascontiguousarray(W.T)))
            lin.bias.copy_(torch.from_numpy(np.array(d["b"])))
        mods += ([torch.nn.ReLU()] if i else []) + [lin]
    return torch.nn.Sequential(*mods)


def from_torch(model) -> list:
    import torch

    lins = [m for m in model if isinstance(m, torch.nn.Linear)]
    return _nnjax(
        [m.weight.detach().numpy().T.copy() for m in lins],
        [m.bias.detach().numpy().copy() for m in lins],
    )


def _torch_dtype(torch, dtype):
    return {np.dtype(np.float32): torch.float32, np.dtype(np.float64): torch.float64}[
        np.dtype(dtype)
    ]
