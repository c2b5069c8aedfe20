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

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax.numpy as jnp
from flax import linen, nnx

from nnjax.activations import get_activation

Params = list[dict[str, Any]]


def dense_layers(params: Params) -> list[dict[str, Any]]:
    """Check that ``params`` has the layout of an nnjax ``mlp`` and return its Dense dicts.

    Layout: Dense, then (activation, Dense) repeated, then an optional activation; each
    Dense dict holds ``W`` (in, out) and, for all layers or none, ``b`` (out,), real
    floating-point arrays (or nested lists of floats). Raises ValueError naming the
    offending layer index, and the kind of layer when its leaves tell it (a convolution's
    W of 3 or more axes, a recurrent cell's W_i/W_h, a normalisation's scale/offset, a
    nested block of resmlp): those are no mlp's, and Flax's Linear has no place for them.
    """
    if not isinstance(params, list | tuple) or not params:
        raise ValueError(
            f"interop: params must be a non-empty list (an nnjax mlp's), got {_described(params)}"
        )
    for i, p in enumerate(params):
        if what := _foreign(p):
            raise ValueError(
                f"interop: params[{i}] is {what}; interop converts only the params of an "
                "nnjax mlp (Dense layers {'W', 'b'} between activation layers {})"
            )
    dense = []
    for i, p in enumerate(params):
        if not isinstance(p, dict):
            raise ValueError(f"interop: params[{i}] must be a dict, got {type(p).__name__}")
        want_dense = i % 2 == 0
        if want_dense and set(p) not in ({"W", "b"}, {"W"}):
            hint = ""
            if not p and i and not params[i - 1]:  # two {} in a row: mlp(..., dropout=r)
                hint = (
                    " (an mlp with dropout? its Dropout layers add {} entries; interop "
                    "converts the params of an mlp without dropout)"
                )
            raise ValueError(
                f"interop: params[{i}] should be a Dense layer {{'W', 'b'}}, got keys "
                f"{sorted(p)}{hint}"
            )
        if not want_dense and p:
            raise ValueError(
                f"interop: params[{i}] should be an activation layer {{}}, got keys {sorted(p)}"
            )
        if want_dense:
            dense.append(p)
    shapes = [_float_shape(j, "W", p["W"]) for j, p in enumerate(dense)]
    for j, p in enumerate(dense):
        W = shapes[j]
        if len(W) != 2:
            raise ValueError(f"interop: Dense {j} W must be 2-D (in, out), got {W}")
        transposed = " (is W transposed? nnjax's W is (in, out), a torch weight (out, in))"
        if "b" in p and (b := _float_shape(j, "b", p["b"])) != (W[1],):
            hint = transposed if b == (W[0],) else ""
            raise ValueError(f"interop: Dense {j} b has shape {b}, expected ({W[1]},){hint}")
        if j and shapes[j - 1][1] != W[0]:
            hint = transposed if shapes[j - 1][1] == W[1] else ""
            raise ValueError(
                f"interop: Dense {j} W has {W[0]} inputs but Dense {j - 1} has "
                f"{shapes[j - 1][1]} outputs{hint}"
            )
    if len({"b" in p for p in dense}) > 1:
        raise ValueError("interop: either every Dense layer has a bias 'b' or none does")
    return dense


def _described(params) -> str:
    """``params`` (not a list) in a few words: another layer's dict named by
    :func:`_foreign`, a lone Dense layer's dict (a logistic_regression's) as such."""
    if isinstance(params, dict) and (what := _foreign(params)):
        return what
    if isinstance(params, dict) and "W" in params and set(map(str, params)) <= {"W", "b"}:
        return (
            f"one Dense layer's dict with keys {sorted(map(str, params))} (a "
            "logistic_regression's params? give them as a list: [params])"
        )
    return f"{type(params).__name__} {str(params)[:80]}"


def _foreign(p) -> str:
    """What a params entry of a layer other than Dense or an activation is, told by its
    leaves (a conv kernel, a recurrent cell, a normalisation, a nested block), or ''."""
    if isinstance(p, list | tuple):
        return f"a nested list of {len(p)} entries (a residual or serial block, as in resmlp)"
    if not isinstance(p, dict):
        return ""
    keys = {str(k) for k in p}
    if keys == {"forward", "backward"}:
        return "a Bidirectional recurrent layer's (keys 'backward', 'forward')"
    if keys & {"W_i", "W_h"}:
        cell = "a GRUCell" if "b_h" in keys else "an LSTMCell or a SimpleRNNCell"
        return f"a recurrent layer's ({cell}: keys {sorted(keys)})"
    if keys == {"offset", "scale"}:
        return "a normalisation layer's (BatchNorm or LayerNorm: keys 'offset', 'scale')"
    if "W" in keys and keys <= {"W", "b"} and len(w := getattr(p["W"], "shape", ())) > 2:
        return f"a convolution's (Conv or ConvTranspose: W of shape {tuple(w)})"
    return ""


def _float_shape(j: int, name: str, a) -> tuple[int, ...]:
    """The shape of Dense ``j``'s leaf ``name``, a real floating-point array (or nested
    lists of numbers, read as floats), or a ValueError naming it."""
    import numpy as np

    dtype = getattr(a, "dtype", None)
    if dtype is None:  # a list: NumPy reads it (ragged rows are refused)
        try:
            if not isinstance(a, list | tuple) or np.asarray(a).dtype.kind not in "iuf":
                raise TypeError("not a (nested) list of numbers")  # None would read as nan
            a = np.asarray(a, dtype=float)
        except (TypeError, ValueError) as e:
            raise ValueError(
                f"interop: Dense {j} {name} must be an array of floats, got "
                f"{type(a).__name__} ({str(e).splitlines()[0]})"
            ) from None
        dtype = a.dtype
    if not jnp.issubdtype(dtype, jnp.floating):
        raise ValueError(
            f"interop: Dense {j} {name} must be a real floating-point array, got dtype "
            f"{dtype} (cast it, e.g. with .astype('float32'))"
        )
    return tuple(int(d) for d in jnp.shape(a))


def _has_output_activation(params: Params) -> bool:
    return len(params) % 2 == 0


def _resolve(activation, output_activation, params):
    try:
        act = get_activation(activation)
    except ValueError as e:
        raise ValueError(f"interop: activation: {e}") from None
    try:
        out_act = None if output_activation is None else get_activation(output_activation)
    except ValueError as e:
        raise ValueError(f"interop: output_activation: {e}") from None
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

    The arrays keep their dtype (float64 stays float64 with ``jax_enable_x64`` on; without
    it a NumPy float64 array becomes float32, as ``jnp.asarray`` makes it, so ``from_nnx``
    gives float32 back, while ``to_linen`` keeps NumPy arrays as they are).
    """
    dense = dense_layers(params)
    act, out_act = _resolve(activation, output_activation, params)
    rngs = nnx.Rngs(0)  # unused: every initializer returns the given array
    layers = []
    for p in dense:
        W = jnp.asarray(_array(p["W"]))
        layers.append(
            nnx.Linear(
                W.shape[0],
                W.shape[1],
                use_bias="b" in p,
                param_dtype=W.dtype,
                kernel_init=_const(W),
                bias_init=_const(_array(p["b"])) if "b" in p else nnx.initializers.zeros_init(),
                rngs=rngs,
            )
        )
    return NNXMLP(layers, act, out_act)


def from_nnx(model: NNXMLP) -> Params:
    """The nnjax ``mlp`` params of an :class:`NNXMLP` (arrays are shared, not copied),
    checked as :func:`dense_layers` checks params (a layer without a bias among layers
    with one, or shapes that do not chain, is a ValueError naming the layer)."""
    if not isinstance(model, NNXMLP):
        raise ValueError(f"from_nnx: expected an nnjax.interop.NNXMLP, got {type(model).__name__}")
    for i, layer in enumerate(model.layers):
        if not isinstance(layer, nnx.Linear):
            raise ValueError(
                f"from_nnx: layers[{i}] is a {type(layer).__module__}.{type(layer).__name__}, "
                "not an nnx.Linear; an NNXMLP converts to an nnjax mlp only when it holds "
                "Linear layers alone"
            )
    Ws = [layer.kernel[...] for layer in model.layers]
    has_bias = [getattr(layer, "bias", None) is not None for layer in model.layers]
    if len(set(has_bias)) > 1:  # bs = None would drop the biases the other layers have
        raise ValueError(
            "from_nnx: either every layer has a bias or none does; layers "
            f"{[i for i, b in enumerate(has_bias) if not b]} have none"
        )
    bs = [layer.bias[...] for layer in model.layers] if all(has_bias) else None
    return _checked("from_nnx", _nnjax_params(Ws, bs, model.output_activation is not None))


def _checked(who: str, params: Params) -> Params:
    """``params`` converted from Flax, checked by :func:`dense_layers` (``who`` named)."""
    try:
        dense_layers(params)
    except ValueError as e:
        raise ValueError(f"{who}: {str(e).removeprefix('interop: ')}") from None
    return params


def _listed(a) -> bool:
    """Is ``a`` a (nested) list rather than an array? Lists are read as float32."""
    return getattr(a, "dtype", None) is None


def _array(a):
    """An array stays as it is (shared); a nested list becomes a float32 array."""
    return jnp.asarray(a, jnp.float32) if _listed(a) else a


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
    tree = {}
    for i, p in enumerate(dense):
        leaves = {"kernel": p["W"], "bias": p["b"]} if use_bias else {"kernel": p["W"]}
        tree[f"Dense_{i}"] = {k: _array(v) for k, v in leaves.items()}
    widths = tuple(int(layer["kernel"].shape[1]) for layer in tree.values())
    module = LinenMLP(widths, act, out_act, use_bias)
    return module, {"params": tree}


def from_linen(module: LinenMLP, variables: dict) -> Params:
    """The nnjax ``mlp`` params of a :class:`LinenMLP` and its variables, every layer's
    leaves and shapes checked against ``module`` (a missing, extra or transposed leaf is a
    ValueError naming it)."""
    if not isinstance(module, LinenMLP):
        raise ValueError(f"from_linen: expected an nnjax.interop.LinenMLP, got {type(module)}")
    if not isinstance(variables, Mapping):
        raise ValueError(
            "from_linen: variables must be a dict {'params': {'Dense_0': {'kernel', 'bias'}, "
            f"...}}, got {type(variables).__name__}"
        )
    tree = variables.get("params", variables)
    names = [f"Dense_{i}" for i in range(len(module.features))]
    missing = [n for n in names if n not in tree]
    if missing:
        raise ValueError(f"from_linen: variables lack {missing}; have {sorted(tree)}")
    extra = sorted(str(n) for n in tree if n not in names)
    if extra:
        raise ValueError(
            f"from_linen: variables hold {extra}, which the module (features "
            f"{tuple(module.features)}) has no layer for"
        )
    leaves = {"kernel", "bias"} if module.use_bias else {"kernel"}
    for n in names:
        got = sorted(tree[n]) if isinstance(tree[n], Mapping) else type(tree[n]).__name__
        if got != sorted(leaves):
            raise ValueError(
                f"from_linen: {n} must hold {sorted(leaves)} (use_bias={module.use_bias}), "
                f"got {got}"
            )
    Ws = [tree[n]["kernel"] for n in names]
    bs = [tree[n]["bias"] for n in names] if module.use_bias else None
    params = _checked("from_linen", _nnjax_params(Ws, bs, module.output_activation is not None))
    widths = tuple(int(jnp.shape(W)[1]) for W in Ws)
    if widths != tuple(module.features):
        i = next(i for i, (a, b) in enumerate(zip(widths, module.features)) if a != b)
        raise ValueError(
            f"from_linen: Dense_{i} kernel has shape {tuple(jnp.shape(Ws[i]))}: "
            f"{widths[i]} outputs, but the module's features give {module.features[i]}"
        )
    return params
