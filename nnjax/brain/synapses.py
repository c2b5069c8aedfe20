"""Exponential synapses, current- or conductance-based, with transmission delays.

Units: ms, mV, nS (conductances and conductance weights), pA (currents and current weights),
so nS * mV = pA, the current unit of :mod:`nnjax.brain.adex`. (For the nA-based
:mod:`~nnjax.brain.neurons` and :mod:`~nnjax.brain.adaptive_lif`, divide by 1000.)

Weights are W (n_post, n_pre): row i holds the synapses onto postsynaptic neuron i. Since
exponential synapses are linear, all synapses of one type onto a neuron share one variable
x_i, which decays with tau and jumps by the weights of the spikes that arrive:

    x_i <- x_i e^{-dt/tau} + sum_j W_ij s_j(t - d_ij)          (exact for the decay)

current-based:      I_i = x_i  (pA)
conductance-based:  g_i = x_i  (nS),  I_i = g_i (E_rev - V_i)  (pA)

so a single spike through weight w gives x = w e^{-k dt / tau} at the end of the k-th step
after its arrival. Several receptor types (AMPA, GABA_A) are separate states, or one state
with a leading receptor axis and tau, E_rev shaped (n_types, 1).

Delays are integers in steps (:func:`delay_steps` converts ms). A :class:`DelayLine` is a ring
buffer of the last D steps of presynaptic spikes (D = max delay + 1); :func:`delay_read`
returns the spikes of d steps ago, with d per presynaptic neuron (axonal, shape (n_pre,):
cheap, then W @ s) or per synapse (shape (n_post, n_pre): a gather of that size every step).
Within a step of a network: neurons update and spike; their spikes are pushed; the delayed
spikes are read and the synapse steps. A spike of step t with delay d therefore enters x at
the end of step t + d and acts on the membrane from step t + d + 1: the effective latency is
(d + 1) dt, and d = 0 is the shortest (one step).

Parameters are pytrees (arrays per postsynaptic neuron allowed), and the weights are plain
arrays, so ``jax.grad`` reaches tau, E_rev and W; delays are integer arguments, not params.
"""

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from nnjax.brain import dynamics

Array = jax.Array

KINDS = ("current", "conductance")


class SynapseParams(NamedTuple):
    """tau: decay time constant (ms); E_rev: reversal potential (mV), used by
    conductance-based synapses only (0 mV excitatory, about -80 mV GABA_A)."""

    tau: Any = 5.0
    E_rev: Any = 0.0


AMPA = SynapseParams(tau=5.0, E_rev=0.0)
"""A fast excitatory synapse: 5 ms decay, reversal 0 mV (the default; the values of the COBA
benchmark network, Vogels & Abbott 2005, Brette et al. 2007)."""

GABA_A = SynapseParams(tau=10.0, E_rev=-80.0)
"""A fast inhibitory synapse: 10 ms decay, reversal -80 mV (the COBA benchmark's)."""


class SynapseState(NamedTuple):
    """x: the summed synaptic variable per postsynaptic neuron, a current (pA) for
    current-based synapses, a conductance (nS) for conductance-based ones."""

    x: Array


class DelayLine(NamedTuple):
    """Ring buffer of presynaptic spikes: buffer (D, n_pre), head = the slot of the latest
    step (int32 scalar)."""

    buffer: Array
    head: Array


def init_state(shape, params: SynapseParams = AMPA, *, dtype=None) -> SynapseState:
    """x = 0 of ``shape`` (e.g. (n_post,)) broadcast with the parameters."""
    dtype = jnp.result_type(float) if dtype is None else dtype
    return SynapseState(jnp.zeros(dynamics.batch_shape(shape, params), dtype))


def step(state: SynapseState, drive: Array, params: SynapseParams, dt: float) -> SynapseState:
    """x <- x e^{-dt/tau} + drive; drive (pA or nS) is the summed weight arriving now."""
    return SynapseState(state.x * jnp.exp(-dt / params.tau) + drive)


def current(state: SynapseState, V: Array, params: SynapseParams, kind: str) -> Array:
    """The synaptic current (pA): x itself ("current") or x (E_rev - V) ("conductance")."""
    if kind not in KINDS:
        raise ValueError(f"synapse kind must be one of {KINDS}, got {kind!r}")
    return state.x if kind == "current" else state.x * (params.E_rev - V)


def delay_steps(delay_ms, dt: float) -> Array:
    """Delays in ms -> whole steps, round(delay / dt), int32; ValueError if negative."""
    d = jnp.asarray(delay_ms)
    steps = jnp.round(d / dynamics.check_dt(dt, "delay_steps")).astype(jnp.int32)
    try:
        negative = bool(jnp.any(steps < 0))
    except jax.errors.ConcretizationTypeError:  # traced: not checked
        negative = False
    if negative:
        raise ValueError(f"delay_steps: delays must be >= 0 ms, got min {float(d.min())}")
    return steps


def delay_init(n_pre: int, max_delay: int, *, dtype=None) -> DelayLine:
    """An empty ring buffer for ``n_pre`` neurons and delays of 0..max_delay steps."""
    if not isinstance(max_delay, int) or max_delay < 0:
        raise ValueError(f"delay_init: max_delay must be an int >= 0 steps, got {max_delay!r}")
    if not isinstance(n_pre, int) or n_pre < 1:
        raise ValueError(f"delay_init: n_pre must be a positive int, got {n_pre!r}")
    dtype = jnp.result_type(float) if dtype is None else dtype
    return DelayLine(jnp.zeros((max_delay + 1, n_pre), dtype), jnp.zeros((), jnp.int32))


def delay_push(line: DelayLine, spikes: Array) -> DelayLine:
    """Store this step's spikes (n_pre,) in the slot after the head."""
    head = (line.head + 1) % line.buffer.shape[0]
    return DelayLine(line.buffer.at[head].set(spikes.astype(line.buffer.dtype)), head)


def delay_read(line: DelayLine, delays: Array) -> Array:
    """Spikes of ``delays`` steps ago (0 = the latest push).

    delays (n_pre,) or a scalar -> (n_pre,); delays (n_post, n_pre) -> (n_post, n_pre).
    Delays must lie in 0..max_delay (not checked under jit: they wrap around the ring).
    """
    D, n_pre = line.buffer.shape
    delays = jnp.asarray(delays, jnp.int32)
    slot = (line.head - delays) % D
    cols = jnp.arange(n_pre)
    return line.buffer[slot, jnp.broadcast_to(cols, slot.shape) if slot.ndim else cols]


def synaptic_drive(W: Array, delayed: Array) -> Array:
    """Summed weight arriving at each postsynaptic neuron: W (n_post, n_pre) with delayed
    spikes (n_pre,) -> W @ s, or (n_post, n_pre) per synapse -> sum_j W_ij s_ij."""
    return W @ delayed if delayed.ndim == 1 else jnp.sum(W * delayed, axis=-1)


class Projection(NamedTuple):
    """State of one projection (a pre population onto a post population, one synapse
    type): its delay line and its synaptic variable."""

    line: DelayLine
    syn: SynapseState


def projection_init(n_pre: int, n_post: int, max_delay: int, params=AMPA, dtype=None):
    """An empty :class:`Projection` (no spikes in flight, x = 0)."""
    return Projection(
        delay_init(n_pre, max_delay, dtype=dtype), init_state((n_post,), params, dtype=dtype)
    )


def projection_step(
    state: Projection, pre_spikes: Array, W: Array, delays: Array, params: SynapseParams, dt
) -> Projection:
    """Push this step's presynaptic spikes, read the delayed ones, and step the synapse."""
    line = delay_push(state.line, pre_spikes)
    drive = synaptic_drive(W, delay_read(line, delays))
    return Projection(line, step(state.syn, drive, params, dt))


def check_weights(W, n_pre: int, n_post: int, where: str = "synapses"):
    """ValueError unless W has shape (n_post, n_pre)."""
    if jnp.shape(W) != (n_post, n_pre):
        raise ValueError(
            f"{where}: W must be (n_post, n_pre) = ({n_post}, {n_pre}), got {jnp.shape(W)}"
        )
