"""Flax interop: an nnjax MLP's params as a Flax NNX or linen model, and back.

An nnjax :func:`~nnjax.models.mlp` has params ``[{"W", "b"}, {}, {"W", "b"}, {}, ..., {"W", "b"}]``
(plus a trailing ``{}`` when it has an output activation): one dict per ``Dense`` layer,
``W`` of shape (in, out), ``b`` of shape (out,), and an empty dict per activation layer.
Flax's ``Linear``/``Dense`` compute the same affine map y = x @ kernel + bias with
``kernel`` of shape (in, out), so the conversion is a renaming, W <-> kernel, b <-> bias,
with no transpose: outputs and gradients agree to rounding.

* :func:`to_nnx` / :func:`from_nnx`: an :class:`NNXMLP` (``flax.nnx.Module``).
* :func:`to_linen` / :func:`from_linen`: a :class:`LinenMLP` (``flax.linen.Module``) and its
  ``{"params": {"Dense_0": {"kernel", "bias"}, ...}}`` variables.

Params carry no activation, so ``activation`` and ``output_activation`` are passed again
(names from :data:`nnjax.activations.ACTIVATIONS` or callables), as to ``mlp``.
"""

from collections.abc import Callable, Sequence
from typing import Any

import jax.numpy as jnp
from flax import linen, nnx

from nnjax.activations import get_activation

Params = list[dict[str, Any]]


def dense_layers(params: Params) -> list[dict[str, Any]]:
    """Check that ``params`` has the layout of an nnjax ``mlp`` and return its Dense dicts.

    Layout: Dense, then (activation, Dense) repeated, then an optional activation; each
    Dense dict holds ``W`` (in, out) and, for all layers or none, ``b`` (out,).
    Raises ValueError naming the offending layer index.
    """
    if not isinstance(params, list | tuple) or not params:
        raise ValueError(
            f"interop: params must be a non-empty list (an nnjax mlp's), got {params!r}"
        )
    dense = []
    for i, p in enumerate(params):
        if not isinstance(p, dict):
            raise ValueError(f"interop: params[{i}] must be a dict, got {type(p).__name__}")
        want_dense = i % 2 == 0
        if want_dense and set(p) not in ({"W", "b"}, {"W"}):
            raise ValueError(
                f"interop: params[{i}] should be a Dense layer {{'W', 'b'}}, got keys {sorted(p)}"
            )
        if not want_dense and p:
            raise ValueError(
                f"interop: params[{i}] should be an activation layer {{}}, got keys {sorted(p)}"
            )
        if want_dense:
            dense.append(p)
    for j, p in enumerate(dense):
        W = p["W"]
        if getattr(W, "ndim", None) != 2:
            raise ValueError(f"interop: Dense {j} W must be 2-D (in, out), got {jnp.shape(W)}")
        if "b" in p and jnp.shape(p["b"]) != (W.shape[1],):
            raise ValueError(
                f"interop: Dense {j} b has shape {jnp.shape(p['b'])}, expected ({W.shape[1]},)"
            )
        if j and dense[j - 1]["W"].shape[1] != W.shape[0]:
            raise ValueError(
                f"interop: Dense {j} W has {W.shape[0]} inputs but Dense {j - 1} has "
                f"{dense[j - 1]['W'].shape[1]} outputs"
            )
    if len({"b" in p for p in dense}) > 1:
        raise ValueError("interop: either every Dense layer has a bias 'b' or none does")
    return dense


def _has_output_activation(params: Params) -> bool:
    return len(params) % 2 == 0


def _resolve(activation, output_activation, params):
    act = get_activation(activation)
    out_act = None if output_activation is None else get_activation(output_activation)
    if (out_act is not None) != _has_output_activation(params):
        raise ValueError(
            "interop: output_activation must be given exactly when params end with an "
            f"activation layer; params have {len(params)} entries, "
            f"output_activation={output_activation!r}"
        )
    return act, out_act


def _nnjax_params(Ws: Sequence, bs: Sequence | None, output_activation: bool) -> Params:
    params: Params = []
    for j, W in enumerate(Ws):
        if j:
            params.append({})
        params.append({"W": W} if bs is None else {"W": W, "b": bs[j]})
    if output_activation:
        params.append({})
    return params


def _const(value):
    return lambda key, shape, dtype=None: jnp.asarray(value)


class NNXMLP(nnx.Module):
    """y = g(L_k(f(... f(L_1(x))))) with ``nnx.Linear`` layers L_l(x) = x @ kernel + bias.

    Shapes: x (..., in) -> y (..., out). ``activation`` f and ``output_activation`` g are
    callables (g may be None: logits).
    """

    def __init__(
        self,
        layers: Sequence[nnx.Linear],
        activation: Callable,
        output_activation: Callable | None = None,
    ):
        self.layers = nnx.List(list(layers))
        self.activation = activation
        self.output_activation = output_activation

    def __call__(self, x):
        for i, layer in enumerate(self.layers):
            if i:
                x = self.activation(x)
            x = layer(x)
        return x if self.output_activation is None else self.output_activation(x)


def to_nnx(
    params: Params,
    activation: str | Callable = "relu",
    output_activation: str | Callable | None = None,
) -> NNXMLP:
    """An :class:`NNXMLP` whose ``layers[l].kernel``/``.bias`` are ``params``' ``W``/``b``.

    The arrays keep their dtype (float64 stays float64).
    """
    dense = dense_layers(params)
    act, out_act = _resolve(activation, output_activation, params)
    rngs = nnx.Rngs(0)  # unused: every initializer returns the given array
    layers = []
    for p in dense:
        W = jnp.asarray(p["W"])
        layers.append(
            nnx.Linear(
                W.shape[0],
                W.shape[1],
                use_bias="b" in p,
                param_dtype=W.dtype,
                kernel_init=_const(W),
                bias_init=_const(p["b"]) if "b" in p else nnx.initializers.zeros_init(),
                rngs=rngs,
            )
        )
    return NNXMLP(layers, act, out_act)


def from_nnx(model: NNXMLP) -> Params:
    """The nnjax ``mlp`` params of an :class:`NNXMLP` (arrays are shared, not copied)."""
    if not isinstance(model, NNXMLP):
        raise ValueError(f"from_nnx: expected an nnjax.interop.NNXMLP, got {type(model).__name__}")
    Ws = [layer.kernel[...] for layer in model.layers]
    has_bias = [layer.bias is not None for layer in model.layers]
    bs = [layer.bias[...] for layer in model.layers] if all(has_bias) else None
    return _nnjax_params(Ws, bs, model.output_activation is not None)


class LinenMLP(linen.Module):
    """The linen twin of :class:`NNXMLP`: ``Dense_l`` layers of widths ``features``."""

    features: tuple[int, ...]
    activation: Callable
    output_activation: Callable | None = None
    use_bias: bool = True

    @linen.compact
    def __call__(self, x):
        for i, width in enumerate(self.features):
            if i:
                x = self.activation(x)
            x = linen.Dense(width, use_bias=self.use_bias, name=f"Dense_{i}")(x)
        return x if self.output_activation is None else self.output_activation(x)


def to_linen(
    params: Params,
    activation: str | Callable = "relu",
    output_activation: str | Callable | None = None,
) -> tuple[LinenMLP, dict]:
    """``(module, variables)`` with ``module.apply(variables, x)`` equal to the nnjax apply.

    ``variables = {"params": {"Dense_l": {"kernel": W_l, "bias": b_l}}}``.
    """
    dense = dense_layers(params)
    act, out_act = _resolve(activation, output_activation, params)
    use_bias = "b" in dense[0]
    module = LinenMLP(tuple(int(p["W"].shape[1]) for p in dense), act, out_act, use_bias)
    tree = {}
    for i, p in enumerate(dense):
        tree[f"Dense_{i}"] = {"kernel": p["W"], "bias": p["b"]} if use_bias else {"kernel": p["W"]}
    return module, {"params": tree}


def from_linen(module: LinenMLP, variables: dict) -> Params:
    """The nnjax ``mlp`` params of a :class:`LinenMLP` and its variables."""
    if not isinstance(module, LinenMLP):
        raise ValueError(f"from_linen: expected an nnjax.interop.LinenMLP, got {type(module)}")
    tree = variables.get("params", variables)
    names = [f"Dense_{i}" for i in range(len(module.features))]
    missing = [n for n in names if n not in tree]
    if missing:
        raise ValueError(f"from_linen: variables lack {missing}; have {sorted(tree)}")
    Ws = [tree[n]["kernel"] for n in names]
    bs = [tree[n]["bias"] for n in names] if module.use_bias else None
    return _nnjax_params(Ws, bs, module.output_activation is not None)
