"""Spiking layers that compose with nnjax layers, encoders, decoders, and a spiking MLP.

A spiking network carries a leading time axis: activity has shape (T, B, features). nnjax's
``Dense`` maps (..., in) -> (..., out), so it acts on every time step at once, and a spiking
network is an ordinary :func:`nnjax.serial`:

    serial(RateEncoder(T), Dense(128), LIF(), Dense(10), LIF(), SpikeCount())

maps x (B, 64) -> Bernoulli spikes (T, B, 64) -> ... -> spike counts (B, 10), used as logits.
Every layer follows the ``Layer = (init, apply, name)`` contract; the spiking nonlinearity is
:func:`nnjax.brain.surrogate.spike`, so ``jax.grad`` trains the network end to end
(backpropagation through time, through the scan).

Encoders: :func:`rate_encode` (s_t ~ Bernoulli(clip(x, 0, 1)), or a deterministic regular
train without a key), :func:`latency_encode` (one spike at t = round((1 - x)(T - 1))).
Decoders: :class:`SpikeCount` (sum over time), :func:`MembraneReadout` (a non-spiking leaky
integrator read as its mean, max or last value).
"""

import functools
import numbers
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from nnjax.brain.dynamics import (
    check_count,
    check_finite,
    check_number,
    check_positive,
    concrete,
)
from nnjax.brain.neurons import RESETS, lif
from nnjax.brain.surrogate import check_surrogate
from nnjax.layers import Dense, Layer, serial

Array = jax.Array


def _check_steps(n_steps, where) -> int:
    """n_steps as a Python int >= 1 (Python or NumPy int), else a ValueError."""
    return check_count(n_steps, "n_steps", where)


def _check_finite_input(x, where: str) -> None:
    """A ValueError naming ``where`` when a concrete x holds nan or inf (clipping would turn
    them into a plausible 0 or 1); traced x passes unchecked."""
    v = concrete(x)
    if v is not None and not np.all(np.isfinite(v)):
        bad = int(v.size - np.count_nonzero(np.isfinite(v)))
        raise ValueError(f"{where}: x must be finite, got {bad} nan/inf of {v.size} entries")


def _check_beta(where: str, beta) -> None:
    """A ValueError naming ``where`` unless beta is a number in (0, 1]: True ran as 1 (no
    leak), a string failed in a bare comparison."""
    if not 0.0 < check_number(beta, "beta", where) <= 1.0:
        raise ValueError(f"{where}: beta must be in (0, 1], got {beta}")


def _check_time_input(name, x, min_ndim=2):
    if x.ndim < min_ndim:
        raise ValueError(
            f"{name}: expects activity with a leading time axis (T, B, features), "
            f"got shape {tuple(x.shape)}"
        )


def _nan_where_nan(x, spikes):
    """``spikes`` (T, ...) with nan at every step of each entry where x (...) is nan."""
    if not jnp.issubdtype(x.dtype, jnp.floating):
        return spikes
    return jnp.where(jnp.isnan(x), jnp.nan, spikes)


def rate_encode(key, x: Array, n_steps: int) -> Array:
    """Rate code: p = clip(x, 0, 1); x (...) -> spikes (n_steps, ...) in {0, 1}.

    With a key, s_t ~ Bernoulli(p) independently per step (a Poisson-like train). With
    ``key=None``, the deterministic regular train of an IF neuron driven by p (subtractive
    reset, threshold 1, v_0 = 0), in closed form: s_t = floor((t + 1) p) - floor(t p), so the
    count after n steps is floor(n p). Counted in float32 at least (float64 for float64 x),
    whatever x's dtype, so the train is 0/1 in float16 and bfloat16 too, up to 2^24 steps.

    A concrete x holding nan or inf is refused (ValueError); under a trace an entry x = nan
    gives nan at every step (both paths), never a plausible spike train.
    """
    n_steps = _check_steps(n_steps, "rate_encode")
    _check_finite_input(x, "rate_encode")
    return _rate_encode(key, jnp.asarray(x), n_steps)


@functools.partial(jax.jit, static_argnums=(2,))
def _rate_encode(key, x, n_steps):
    p = jnp.clip(x, 0.0, 1.0)
    if key is not None:
        s = jax.random.bernoulli(key, p, (n_steps,) + x.shape).astype(p.dtype)
        return _nan_where_nan(p, s)  # Bernoulli(nan) would be silence
    w = _wide(p)  # float16 counted to 2048 (bfloat16 to 256), then "spikes" of 2
    t = jnp.arange(n_steps + 1, dtype=w.dtype).reshape((n_steps + 1,) + (1,) * p.ndim)
    return jnp.diff(jnp.floor(t * w), axis=0).astype(p.dtype)


def _wide(p: Array) -> Array:
    """p in at least float32: spike times and counts computed in float16 or bfloat16 were
    rounded (a bfloat16 input's latency off by up to 998 steps of 1000, or never fired)."""
    return p.astype(jnp.promote_types(p.dtype, jnp.float32))


def latency_encode(x: Array, n_steps: int, *, threshold: float = 0.0) -> Array:
    """Latency (time-to-first-spike) code: x in [0, 1], (...) -> (n_steps, ...).

    Each input with x > threshold fires once, at t = round((1 - clip(x, 0, 1)) (n_steps - 1)):
    the stronger the input, the earlier the spike. Inputs at or below threshold stay silent.
    A concrete x holding nan or inf is refused (ValueError); under a trace an entry x = nan
    gives nan at every step instead of silence. ``threshold`` is one finite number (not a
    bool; a tracer passes), else a ValueError.
    """
    n_steps = _check_steps(n_steps, "latency_encode")
    _check_finite_input(x, "latency_encode")
    threshold = _check_threshold(threshold, "latency_encode")
    x = jnp.asarray(x)
    p = jnp.clip(x, 0.0, 1.0)
    t = jnp.round((1.0 - _wide(p)) * (n_steps - 1)).astype(jnp.int32)
    steps = jnp.arange(n_steps).reshape((n_steps,) + (1,) * p.ndim)
    # x, not its clip, against threshold: x = 1.5 > 1 fired never, x = -1 <= -0.5 at T - 1
    return _nan_where_nan(p, ((steps == t) & (x > threshold)).astype(p.dtype))


def RateEncoder(n_steps: int, *, gain: float = 1.0) -> Layer:
    """Layer: x (B, F) -> spikes (n_steps, B, F) by :func:`rate_encode` of gain * x.

    Stochastic when ``apply`` gets a key (training, e.g. ``fit(..., dropout=True)``),
    deterministic without one (evaluation). No params.
    """
    n_steps = _check_steps(n_steps, "RateEncoder")
    check_positive(gain, "gain", "RateEncoder")  # <= 0: a silent input; nan: an error on x
    name = f"RateEncoder({n_steps})"

    def init(key, input_shape):
        return (n_steps,) + tuple(input_shape), {}

    def apply(params, x, *, key=None):
        return rate_encode(key, gain * x, n_steps)

    return Layer(init, apply, name)


def _check_threshold(threshold, where: str):
    """``threshold`` as a float when it is one finite number (a tracer passes), else a
    ValueError naming ``where``: None or a list failed deep in JAX's comparison, True ran
    as 1 (every input silent), an array of another shape failed in a broadcast."""
    if isinstance(threshold, jax.core.Tracer):
        return threshold
    threshold = check_number(threshold, "threshold", where)
    check_finite(threshold, "threshold", where)  # nan: every input silent
    return threshold


def LatencyEncoder(n_steps: int, *, threshold: float = 0.0) -> Layer:
    """Layer: x (B, F) in [0, 1] -> one spike per input, (n_steps, B, F); no params;
    ``threshold`` as :func:`latency_encode`'s."""
    n_steps = _check_steps(n_steps, "LatencyEncoder")
    threshold = _check_threshold(threshold, "LatencyEncoder")
    name = f"LatencyEncoder({n_steps})"

    def init(key, input_shape):
        return (n_steps,) + tuple(input_shape), {}

    def apply(params, x, *, key=None):
        return latency_encode(x, n_steps, threshold=threshold)

    return Layer(init, apply, name)


def LIF(
    beta: float = 0.9,
    theta: float = 1.0,
    *,
    reset: str = "subtract",
    surrogate: str = "fast_sigmoid",
    slope: float | None = None,
    detach_reset: bool = True,
) -> Layer:
    """Layer: input currents (T, B, F) -> spikes (T, B, F) of discrete LIF neurons.

    u_t = beta v_{t-1} + I_t; s_t = H(u_t - theta) with the chosen surrogate gradient;
    v_t = u_t - theta s_t (``"subtract"``) or u_t (1 - s_t) (``"zero"``); v_0 = 0.
    The reset is detached from the gradient unless ``detach_reset=False``. No params.
    """
    _check_beta("LIF", beta)
    if not check_number(theta, "theta", "LIF") > 0 or not np.isfinite(theta):  # inf: silent
        raise ValueError(f"LIF: theta must be a finite number > 0, got {theta}")
    if reset not in RESETS:
        raise ValueError(f"LIF: reset must be one of {RESETS}, got {reset!r}")
    if not isinstance(detach_reset, bool | np.bool_):  # "no" counted as True
        raise ValueError(f"LIF: detach_reset must be True or False, got {detach_reset!r}")
    slope = check_surrogate(surrogate, slope)
    name = f"LIF(beta={beta})"
    kw = dict(beta=beta, theta=theta, reset=reset, surrogate=surrogate, slope=slope)

    def init(key, input_shape):
        if len(input_shape) < 2:
            raise ValueError(f"{name}: needs a time axis, input_shape (T, B, F); got {input_shape}")
        return tuple(input_shape), {}

    def apply(params, x, *, key=None):
        _check_time_input(name, x)
        return lif(x, detach_reset=detach_reset, **kw)[0]

    return Layer(init, apply, name)


def SpikeCount() -> Layer:
    """Decoder layer: spikes (T, B, F) -> counts (B, F) = sum_t s_t. No params."""
    name = "SpikeCount"

    def init(key, input_shape):
        if len(input_shape) < 2:  # (F,) gave a () output: the time axis taken for features
            raise ValueError(f"{name}: needs a time axis, input_shape (T, B, F); got {input_shape}")
        return tuple(input_shape[1:]), {}

    def apply(params, x, *, key=None):
        _check_time_input(name, x)
        return x.sum(axis=0)

    return Layer(init, apply, name)


READOUTS = ("mean", "max", "last")


def MembraneReadout(beta: float = 0.9, mode: str = "mean") -> Layer:
    """Decoder layer: currents (T, B, F) -> (B, F) from a non-spiking leaky integrator.

    v_t = beta v_{t-1} + I_t (no threshold, no reset); the output is mean_t v_t, max_t v_t or
    v_T (``mode``). No params. The recursion is linear, so up to :data:`KERNEL_MAX_STEPS`
    steps it is computed as one product with the causal kernel L[t, s] = beta^(t - s)
    (s <= t) instead of a scan; longer inputs are scanned (the kernel is O(T^2) memory).
    """
    _check_beta("MembraneReadout", beta)
    if mode not in READOUTS:
        raise ValueError(f"MembraneReadout: mode must be one of {READOUTS}, got {mode!r}")
    name = f"MembraneReadout({mode})"

    def no_steps(n_steps) -> None:
        if n_steps == 0:  # mean_t and max_t of no steps are undefined, v_T does not exist
            raise ValueError(f"{name}: needs at least one time step (T >= 1), got T = 0")

    def init(key, input_shape):
        if len(input_shape) < 2:  # as SpikeCount: (F,) read as F time steps
            raise ValueError(f"{name}: needs a time axis, input_shape (T, B, F); got {input_shape}")
        no_steps(input_shape[0])
        return tuple(input_shape[1:]), {}

    def apply(params, x, *, key=None):
        _check_time_input(name, x)
        no_steps(x.shape[0])
        if not jnp.issubdtype(x.dtype, jnp.floating):  # spikes as int or bool: sums in float
            x = x.astype(jnp.float32)
        v = _leaky_integral(x, beta)
        if mode == "mean":
            return v.mean(axis=0)
        return v.max(axis=0) if mode == "max" else v[-1]

    return Layer(init, apply, name)


KERNEL_MAX_STEPS = 512
"""Up to this many steps :func:`MembraneReadout` integrates with the (T, T) causal kernel
(one matrix product); beyond, with a scan (O(T) memory: T = 10^5 steps made a 40 GB kernel)."""


def _leaky_integral(x: Array, beta: float) -> Array:
    """v_t = beta v_{t-1} + x_t, v_0 = x_0, over the leading axis of x (T, ...)."""
    n = x.shape[0]
    if n > KERNEL_MAX_STEPS:
        b = jnp.asarray(beta, x.dtype)
        return jax.lax.scan(lambda v, xt: (b * v + xt,) * 2, jnp.zeros_like(x[0]), x)[1]
    lag = jnp.arange(n)[:, None] - jnp.arange(n)[None, :]
    kernel = jnp.where(lag >= 0, beta ** jnp.maximum(lag, 0), 0.0).astype(x.dtype)
    return jnp.tensordot(kernel, x, axes=1)


def spiking_mlp(
    sizes: Sequence[int],
    n_steps: int = 25,
    *,
    beta: float = 0.9,
    theta: float = 1.0,
    readout: str = "count",
    surrogate: str = "fast_sigmoid",
    slope: float | None = None,
    gain: float = 1.0,
) -> Layer:
    """A rate-coded spiking MLP: x (B, F) in [0, 1] -> logits (B, sizes[-1]).

    serial(RateEncoder(n_steps), Dense(h1), LIF, ..., Dense(out), decoder) where the decoder
    is LIF + :class:`SpikeCount` (``readout="count"``) or :func:`MembraneReadout`
    (``readout="membrane"``, mean membrane of non-spiking output units).
    """
    sizes = list(sizes)
    if not sizes or any(
        isinstance(s, bool) or not isinstance(s, numbers.Integral) or s < 1 for s in sizes
    ):
        raise ValueError(f"spiking_mlp: sizes must be ints >= 1 (Python or NumPy), got {sizes}")
    sizes = [int(s) for s in sizes]
    if readout not in ("count", "membrane"):
        raise ValueError(f"spiking_mlp: readout must be 'count' or 'membrane', got {readout!r}")
    neuron = dict(beta=beta, theta=theta, surrogate=surrogate, slope=slope)
    LIF(**neuron)  # checked even when none is built (sizes [n], "membrane"): theta=-1 passed
    layers = [RateEncoder(n_steps, gain=gain)]
    for width in sizes[:-1]:
        layers += [Dense(width), LIF(**neuron)]
    layers.append(Dense(sizes[-1]))
    if readout == "count":
        layers += [LIF(**neuron), SpikeCount()]
    else:
        layers.append(MembraneReadout(beta))
    return serial(*layers)
