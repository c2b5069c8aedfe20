"""ANN -> SNN conversion: a trained nnjax ReLU MLP run as integrate-and-fire neurons.

The identity behind it: an IF neuron with threshold theta = 1 and subtractive reset, driven
by a constant current z, fires at rate clip(relu(z), 0, 1) per step (to within 1/T after T
steps: floor(T z) spikes for z in [0, 1]; on the grid z = k/T the rounding of the running
sum can lose one, e.g. z = 0.1, T = 10 gives 0 spikes in float64 (0.1 summed ten times is
0.999..., an error of exactly 1/T; 1 spike in float32, where the sum is 1.0000001);
:func:`nnjax.brain.neurons.integrate_and_fire`). A ReLU unit's output can therefore be
carried by a spike rate, provided no activation exceeds 1. Layer-wise data-based
normalisation (Diehl et al. 2015; Rueckauer et al. 2017) ensures that: with lambda_l the
``percentile`` of the ReLU activations of layer l over calibration data (lambda_0 = 1: the
input enters as an analog current),

    W_l' = W_l lambda_{l-1} / lambda_l,     b_l' = b_l / lambda_l,

so the normalised network computes a_l / lambda_l, in [0, 1] (up to the percentile), at
every hidden layer. Only layer 1 has a constant drive (the analog input), so only its rates
are within 1/T; deeper layers integrate spike trains and converge as C/T with C set by the
weights and the membrane's transient (C about 2.6 at layer 2 of a 64-32-16-10 digits MLP).
The output layer does not spike: its units integrate their input current and the decoded
output is the mean current, mean_t (s_{L-1}(t) W_L' + b_L'), times lambda_L (in the ANN's
logit units); its argmax is the prediction.

Only ReLU hidden units convert, and params cannot show it: an activation layer's params are
``{}`` whatever its function, so a tanh, sigmoid or gelu MLP's params are indistinguishable
from a ReLU MLP's and would convert silently into a different network. The activation lives in
the model (:class:`~nnjax.layers.Layer`): pass it, ``normalize(params, X, model=model)``, and
a non-ReLU network is refused (:func:`check_relu_mlp`). An output activation is allowed: the
decoded output is the output layer's pre-activation.

API (stable; :mod:`nnjax.brain.sleep` builds on it):

* :func:`dense_params` (nnjax ``mlp`` params -> list of ``{"W", "b"}``),
* :func:`normalize` (params, X[, model]) -> :class:`Converted` (normalised layers and their
  scales), :func:`check_relu_mlp` (model: a ReLU MLP, or a ValueError naming the activation),
* :func:`simulate` (converted, x, n_steps) -> :class:`SimResult` (decoded output, rates,
  optionally the spike trains),
* :func:`ann_forward` (the ReLU MLP on dense params, for comparison).
"""

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from nnjax.brain.dynamics import check_count, check_flag, check_positive, concrete
from nnjax.layers import Layer

Array = jax.Array


def _as_float(x, name: str, where: str) -> Array:
    """``x`` as a JAX array of a floating dtype (integers become the default float), or a
    ValueError naming ``where: name`` for strings or complex numbers (a JAX TypeError, or
    the imaginary part dropped)."""
    traced = isinstance(x, jax.core.Tracer)
    if jnp.iscomplexobj(x) if traced else concrete(x) is None:  # concrete: None for complex
        raise ValueError(f"{where}: {name} must hold real numbers, got {type(x).__name__}")
    x = jnp.asarray(x)
    return x if jnp.issubdtype(x.dtype, jnp.floating) else x.astype(jnp.result_type(float))


def _check_finite(value, name: str, where: str) -> None:
    """A ValueError naming ``where: name`` when a concrete ``value`` holds nan or inf (a NaN
    would otherwise pass as a plausible number: no spike, or a scale of 1); traced values
    pass unchecked."""
    v = concrete(value)
    if v is not None and not np.all(np.isfinite(v)):
        bad = int(np.size(v) - np.count_nonzero(np.isfinite(v)))
        raise ValueError(
            f"{where}: {name} must be finite, got {bad} nan/inf of {np.size(v)} entries"
        )


class Converted(NamedTuple):
    """A converted network: ``layers`` is a list of ``{"W": (in, out), "b": (out,)}`` with the
    normalised weights; ``scales`` (n_layers + 1,) holds lambda_0 = 1, lambda_1, ...,
    lambda_L, so layer l's rates times lambda_l recover the ANN activations."""

    layers: list
    scales: Array


class SimResult(NamedTuple):
    """:func:`simulate` output. ``output`` (B, out): mean output current times lambda_L (the
    ANN's logits, approximately); ``rates``: per hidden layer, (B, width) spikes per step;
    ``spikes``: per hidden layer, (T, B, width) trains when ``return_spikes`` else None."""

    output: Array
    rates: list
    spikes: Any


def dense_params(params) -> list:
    """The ``{"W", "b"}`` entries of an nnjax ``mlp`` / ``serial`` params list, in order
    (activation layers' ``{}`` dropped). Raises ValueError if there are none."""
    if isinstance(params, dict):
        params = [params]
    layers = []
    for i, p in enumerate(params):
        if isinstance(p, dict) and "W" in p:
            W = jnp.asarray(p["W"])
            if W.ndim != 2:  # a 1-D W was an IndexError
                raise ValueError(f"dense_params: entry {i}'s W must be (in, out), got {W.shape}")
            b = jnp.asarray(p["b"]) if "b" in p else jnp.zeros(W.shape[1], W.dtype)
            if b.shape != W.shape[1:]:
                raise ValueError(
                    f"dense_params: entry {i}'s b must be ({W.shape[1]},) for W {W.shape}, got "
                    f"{b.shape}"
                )
            layers.append({"W": W, "b": b})
        elif p not in ({}, None) and not (isinstance(p, list | tuple) and len(p) == 0):
            raise ValueError(f"dense_params: entry {i} is neither a Dense layer nor empty: {p!r}")
    if not layers:
        raise ValueError("dense_params: no Dense layer ({'W', 'b'}) found in params")
    for i in range(1, len(layers)):
        if layers[i]["W"].shape[0] != layers[i - 1]["W"].shape[1]:
            raise ValueError(
                f"dense_params: layer {i} takes {layers[i]['W'].shape[0]} inputs but layer "
                f"{i - 1} has {layers[i - 1]['W'].shape[1]} outputs"
            )
    return layers


_RELU_MLP_PARTS = ("Dense(", "Dropout(", "Identity", "Activation(relu)")


def check_relu_mlp(model, where: str = "check_relu_mlp") -> None:
    """A ValueError naming ``where`` unless ``model`` is a ReLU MLP: a ``serial`` (``nnjax.mlp``
    is one) of Dense, Activation("relu"), Dropout and Identity layers, with any activation as
    its last layer (the output, decoded before it). Read from the layer names, which carry the
    activation's name even when it is a callable (``mlp(..., activation=jax.nn.tanh)`` has no
    spec); an unnamed callable (a lambda) cannot be checked and is refused too."""
    name = getattr(model, "name", None)
    if not (isinstance(model, Layer) and isinstance(name, str) and name.startswith("serial(")):
        got = name if isinstance(model, Layer) else type(model).__name__
        raise ValueError(
            f"{where}: model must be an nnjax ReLU MLP (nnjax.mlp or serial), got {got}"
        )
    parts, depth, start = [], 0, len("serial(")
    for i, c in enumerate(name[:-1]):  # split the children at the top-level ", "
        depth += (c in "([") - (c in ")]")
        if c == "," and depth == 1:
            parts.append(name[start:i].strip())
            start = i + 1
    parts.append(name[start:-1].strip())
    for i, part in enumerate(parts):
        last_activation = i == len(parts) - 1 and part.startswith("Activation(")
        if not (last_activation or part.startswith(_RELU_MLP_PARTS)):
            what = f"activation {part[11:-1]!r}" if part.startswith("Activation(") else part
            raise ValueError(f"{where}: model must be a ReLU MLP (IF neurons carry relu units "
                             f"only), got {what} at layer {i} of {name}")  # fmt: skip


def ann_forward(layers: list, x: Array, *, return_hidden: bool = False):
    """ReLU MLP on dense params: a_l = relu(a_{l-1} W_l + b_l), logits = a_{L-1} W_L + b_L.

    x (B, in) -> logits (B, out); with ``return_hidden`` also the list of hidden activations.
    """
    if not isinstance(layers, list | tuple) or not all(isinstance(p, dict) and "W" in p and "b" in p
                                                     for p in layers):  # fmt: skip
        raise ValueError(f"ann_forward: layers must be a list of {{'W', 'b'}} (dense_params), "
                         f"got {type(layers).__name__}")  # fmt: skip
    shapes = [jnp.shape(p["W"]) for p in layers]
    if not shapes or jnp.ndim(x) != 2 or jnp.shape(x)[1] != shapes[0][0]:  # IndexError, XLA
        raise ValueError(
            f"ann_forward: need layers (at least one) and x (B, {shapes[0][0] if shapes else 'in'}"
            f"), got {len(shapes)} layers and x {jnp.shape(x)}"
        )
    hidden = []
    a = x
    for p in layers[:-1]:
        a = jax.nn.relu(a @ p["W"] + p["b"])
        hidden.append(a)
    out = a @ layers[-1]["W"] + layers[-1]["b"]
    return (out, hidden) if return_hidden else out


def normalize(params, X: Array, *, percentile: float = 99.9, model=None) -> Converted:
    """Layer-wise normalisation of a ReLU MLP for IF neurons (module docstring).

    params: nnjax ``mlp`` params (or a list of ``{"W", "b"}``), read as a ReLU MLP: they do
    not carry the activation, so pass ``model`` (the Layer they belong to) to have it checked
    (:func:`check_relu_mlp`: a tanh MLP is refused); X (n, in): calibration inputs
    (the training set, n >= 1). lambda_l is the ``percentile`` (in (0, 100]; 100 = max) of
    layer l's activations over X, and of the output logits for the last layer; a lambda_l <= 0
    (a layer silent on X) is replaced by 1. Computed in floating point (integer X is cast).
    A concrete X, W or b holding nan/inf is refused (ValueError); under a trace a nan
    lambda_l stays nan, and so do the layers it scales.
    """
    if isinstance(percentile, bool) or concrete(percentile) is None or jnp.ndim(percentile):
        raise ValueError(f"normalize: percentile must be a number, got {percentile!r}")
    if not 0.0 < percentile <= 100.0:
        raise ValueError(f"normalize: percentile must be in (0, 100], got {percentile}")
    if model is not None:
        check_relu_mlp(model, "normalize")
    layers = dense_params(params)
    for i, p in enumerate(layers):
        _check_finite(p["W"], f"layer {i} W", "normalize")
        _check_finite(p["b"], f"layer {i} b", "normalize")
    X = _as_float(X, "X", "normalize")
    if X.ndim != 2 or X.shape[1] != layers[0]["W"].shape[0] or X.shape[0] == 0:
        raise ValueError(
            f"normalize: X must have shape (n >= 1, {layers[0]['W'].shape[0]}), "
            f"got {tuple(X.shape)}"
        )
    _check_finite(X, "X", "normalize")
    out, hidden = ann_forward(layers, X, return_hidden=True)
    lams = [jnp.ones((), X.dtype)]
    for a in hidden + [out]:
        lam = jnp.percentile(a.reshape(-1), percentile)
        lams.append(jnp.where(lam <= 0, 1.0, lam).astype(X.dtype))  # nan <= 0 is False
    new = [
        {"W": p["W"] * lams[i] / lams[i + 1], "b": p["b"] / lams[i + 1]}
        for i, p in enumerate(layers)
    ]
    return Converted(new, jnp.stack(lams))


def simulate(
    converted: Converted,
    x: Array,
    n_steps: int,
    *,
    reset: str = "subtract",
    theta: float = 1.0,
    return_spikes: bool = False,
) -> SimResult:
    """Run the converted network for ``n_steps`` steps on x (B, in), under ``lax.scan``.

    Hidden layer l holds IF neurons (beta = 1, threshold ``theta``, reset ``"subtract"`` or
    ``"zero"``) driven by I_l(t) = s_{l-1}(t) W_l' + b_l', with s_0(t) = x (analog input);
    the output layer integrates I_L(t) without spiking. jit-compatible (n_steps, reset,
    theta and return_spikes are static). n_steps is an int >= 1 (Python or NumPy), theta a
    finite number > 0; integer x is cast to float. ``converted`` must be a :class:`Converted`
    whose layers chain ({"W": (in, out), "b": (out,)}, at least one) and whose ``scales``
    hold one lambda per layer plus lambda_0, shape (n_layers + 1,), finite and > 0 when
    concrete (else a ValueError: only scales[-1] was read, so a wrong length passed
    silently). A concrete x holding nan/inf is refused (ValueError); under a trace a nan
    membrane potential u gives a nan "spike" (s = 1 if u >= theta, 0 if u < theta, nan
    otherwise), so nan reaches the rates and the output instead of silence.
    """
    return _run(converted, x, n_steps, "simulate", reset, theta, return_spikes)


def _check_converted(converted, where: str) -> list:
    """The layers of ``converted``, or a ValueError naming ``where``: not a Converted, layers
    that are not a non-empty chain of {"W": (in, out), "b": (out,)}, scales not of shape
    (n_layers + 1,) or (when concrete) not finite and > 0."""
    if not isinstance(converted, Converted):
        raise ValueError(f"{where}: converted must be a Converted (normalize's output), got "
                         f"{type(converted).__name__}")  # fmt: skip
    layers = converted.layers
    ok = isinstance(layers, list | tuple) and len(layers) > 0
    ok = ok and all(isinstance(p, dict) and "W" in p and "b" in p for p in layers)
    shapes = [(jnp.shape(p["W"]), jnp.shape(p["b"])) for p in layers] if ok else []
    ok = ok and all(len(w) == 2 and b == w[1:] for w, b in shapes)
    ok = ok and all(shapes[i][0][0] == shapes[i - 1][0][1] for i in range(1, len(shapes)))
    if not ok:  # an IndexError or a dot_general shape error before
        raise ValueError(
            f"{where}: converted.layers must be a non-empty list of {{'W': (in, out), 'b': "
            f"(out,)}} that chain, got {shapes or type(layers).__name__}"
        )
    n = len(layers)
    if jnp.shape(converted.scales) != (n + 1,):
        raise ValueError(
            f"{where}: converted.scales must be ({n + 1},): lambda_0 and one scale per layer for "
            f"its {n} layers, got shape {jnp.shape(converted.scales)}"
        )
    check_positive(converted.scales, "converted.scales", where)  # a nan or 0 lambda_L
    return list(layers)


MAX_STEPS = 2**31 - 1
"""The longest run :func:`simulate` counts spikes for (int32 counts)."""


def _run(converted, x, n_steps, where, reset, theta, return_spikes) -> SimResult:
    """:func:`simulate`, its errors naming ``where``."""
    n_steps = check_count(n_steps, "n_steps", where)
    if n_steps > MAX_STEPS:  # the int32 spike counts would wrap
        raise ValueError(f"{where}: n_steps must be <= {MAX_STEPS}, got {n_steps}")
    if reset not in ("subtract", "zero"):
        raise ValueError(f"{where}: reset must be 'subtract' or 'zero', got {reset!r}")
    layers = _check_converted(converted, where)
    if isinstance(theta, bool | str) or jnp.ndim(theta) != 0:  # "1" ran as 1.0, an array failed
        raise ValueError(f"{where}: theta must be a number, got {theta!r}")
    check_positive(theta, "theta", where)
    return_spikes = check_flag(return_spikes, "return_spikes", where)  # "no" counted as True
    for i, p in enumerate(layers):  # a nan weight (an edited Converted) gave nan rates
        _check_finite(p["W"], f"layer {i} W", where)
        _check_finite(p["b"], f"layer {i} b", where)
    x = _as_float(x, "x", where)
    if x.ndim != 2 or x.shape[1] != layers[0]["W"].shape[0]:
        raise ValueError(
            f"{where}: x must have shape (B, {layers[0]['W'].shape[0]}), got {tuple(x.shape)}"
        )
    _check_finite(x, "x", where)
    return _simulate(layers, converted.scales, x, n_steps, reset, float(theta), return_spikes)


def _if_layer(v, current, reset, theta):
    """u = v + I; s = H(u - theta), nan where u is nan; v' = u - theta s or u (1 - s)."""
    u = v + current
    s = jnp.where(u >= theta, 1.0, jnp.where(u < theta, 0.0, jnp.nan)).astype(u.dtype)
    return (u - theta * s if reset == "subtract" else u * (1.0 - s)), s


def _simulate_impl(layers, scales, x, n_steps, reset, theta, return_spikes):
    """The scan. Its carry holds the potentials and int32 spike counts, so memory does not
    grow with n_steps (stacking every step's spikes and output currents took
    O(n_steps B width): 840 MB at T = 10^4, B = 100, two layers of 100). The output uses
    linearity: mean_t (s_{L-1}(t) W_L' + b_L') = r_{L-1} W_L' + b_L', with the rate r from
    exact integer counts (a float32 running sum stops growing at 2^24; int32 counts hold up
    to n_steps = 2^31 - 1)."""
    batch = x.shape[0]
    hidden = layers[:-1]
    v0 = [jnp.zeros((batch, p["W"].shape[1]), x.dtype) for p in hidden]
    n0 = [jnp.zeros((batch, p["W"].shape[1]), jnp.int32) for p in hidden]
    first = x @ layers[0]["W"] + layers[0]["b"]  # constant analog drive of layer 1

    def step(carry, _):
        vs, counts = carry
        new_vs, spikes = [], []
        inp = None
        for i, (p, v) in enumerate(zip(hidden, vs)):
            current = first if i == 0 else inp @ p["W"] + p["b"]
            v, s = _if_layer(v, current, reset, theta)
            new_vs.append(v)
            spikes.append(s)
            inp = s
        counts = [n + s.astype(jnp.int32) for n, s in zip(counts, spikes)]
        return (new_vs, counts), (spikes if return_spikes else None)

    (vs, counts), spikes = jax.lax.scan(step, (v0, n0), None, length=n_steps)
    # a nan potential stays nan (nan + I, nan - theta s) and spikes nan: keep it in the rate
    rates = [jnp.where(jnp.isnan(v), jnp.nan, n.astype(x.dtype) / n_steps)
             for v, n in zip(vs, counts)]  # fmt: skip
    if hidden:
        out_current = rates[-1] @ layers[-1]["W"] + layers[-1]["b"]
    else:
        out_current = first
    return SimResult(out_current * scales[-1], rates, spikes if return_spikes else None)


_simulate = jax.jit(_simulate_impl, static_argnums=(3, 4, 5, 6))


def spiking_accuracy(
    converted: Converted,
    X: Array,
    y: Array,
    n_steps: int,
    *,
    reset: str = "subtract",
    theta: float = 1.0,
    return_spikes: bool = False,
) -> float:
    """Fraction of argmax(:func:`simulate` output) equal to the integer labels y (B,), each
    in 0..n_out-1 (else a ValueError); the other arguments are checked as in
    :func:`simulate`, the errors naming this function."""
    out = _run(converted, X, n_steps, "spiking_accuracy", reset, theta, return_spikes).output
    if jnp.shape(y) != out.shape[:1] or out.shape[0] == 0:  # a broadcast error, or a nan
        raise ValueError(
            f"spiking_accuracy: y must be (B,) = ({out.shape[0]},) labels, B >= 1, got "
            f"{jnp.shape(y)}"
        )
    labels, n_out = concrete(y), out.shape[1]
    if labels is not None:  # 0.5 or 7 (of 3 outputs) matched no prediction: accuracy 0
        bad = (labels < 0) | (labels >= n_out) | (labels != np.round(labels))
        if labels.dtype.kind == "b" or bad.any():
            i = int(np.argmax(bad))
            raise ValueError(f"spiking_accuracy: y must hold integer labels in 0..{n_out - 1}, "
                             f"got y[{i}] = {labels[i]}")  # fmt: skip
    return float(jnp.mean(jnp.argmax(out, axis=-1) == jnp.asarray(y)))
