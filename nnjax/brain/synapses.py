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

Spikes timed inside a step (:mod:`~nnjax.brain.adaptive_lif`'s ``t_spike``) go through a
:class:`TimedProjection` instead: each spike arrives at its own offset d steps later
(latency exactly d dt, d >= 1), x at step ends is the exact continuous-time value, and the
neuron receives the mean of x over its step. Postsynaptic spike times are then continuous,
piecewise-smooth functions of presynaptic parameters, so gradients through a network of
such neurons match finite differences (the 0/1 grid form makes them jump instead).

Parameters are pytrees (arrays per postsynaptic neuron allowed; one tau per timed projection),
and the weights are plain arrays, so ``jax.grad`` reaches tau, E_rev and W; delays are
integer arguments, not params. Shapes that would widen the state are refused (ValueError).
"""

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from nnjax.brain import delays as delay_line
from nnjax.brain import dynamics
from nnjax.brain.delays import (  # the delay line, public here as before
    INT32_MAX as INT32_MAX,
)
from nnjax.brain.delays import (
    DelayLine as DelayLine,
)
from nnjax.brain.delays import (
    delay_init as delay_init,
)
from nnjax.brain.delays import (
    delay_push as delay_push,
)
from nnjax.brain.delays import (
    delay_read as delay_read,
)
from nnjax.brain.delays import (
    delay_steps as delay_steps,
)

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


def init_state(shape, params: SynapseParams = AMPA, *, dtype=None) -> SynapseState:
    """x = 0 of ``shape`` (e.g. (n_post,)) broadcast with the parameters."""
    dtype = jnp.result_type(float) if dtype is None else dtype
    shape = dynamics.batch_shape(shape, params, "synapses.init_state")
    return SynapseState(jnp.zeros(shape, dtype))


def step(state: SynapseState, drive: Array, params: SynapseParams, dt: float) -> SynapseState:
    """x <- x e^{-dt/tau} + drive; drive (pA or nS) is the summed weight arriving now, and
    drive and tau broadcast to x's shape without changing it (a scalar passes); dt is a
    scalar. ValueError for a concrete tau or dt that is not finite and > 0 (tracers pass)."""
    return _step(state, drive, params, dt, "synapses.step")


def _step(state: SynapseState, drive, params: SynapseParams, dt, where: str) -> SynapseState:
    _check_decay(params, dt, where)
    shape = jnp.shape(state.x)
    dynamics.check_fits(params.tau, "tau", shape, where, "the state's shape")
    dynamics.check_fits(drive, "drive", shape, where, "the state's shape")  # a wider one widened x
    return SynapseState(state.x * jnp.exp(-dt / params.tau) + drive)


def _check_decay(params: SynapseParams, dt, where: str):
    """tau and dt finite and > 0 where concrete: cheap (skipped for tracers), so step
    functions run it once per trace; dt a scalar (static shape: also under jit)."""
    dynamics.check_positive(params.tau, "tau (ms)", where)
    dynamics.check_positive(dt, "dt (ms)", where)
    if jnp.ndim(dt) != 0:  # an array dt widened x into its shape
        raise ValueError(f"{where}: dt has shape {jnp.shape(dt)}; dt must be a scalar (ms)")


def current(state: SynapseState, V: Array, params: SynapseParams, kind: str) -> Array:
    """The synaptic current (pA), of x's shape: x itself ("current") or x (E_rev - V)
    ("conductance"; V and E_rev broadcast to x's shape without changing it, a scalar passes;
    ValueError for a concrete E_rev that is nan or inf)."""
    where = "synapses.current"
    if kind not in KINDS:
        raise ValueError(f"{where}: synapse kind must be one of {KINDS}, got {kind!r}")
    if kind == "conductance":
        dynamics.check_finite(params.E_rev, "E_rev (mV)", where)
        dynamics.check_fits(V, "V", jnp.shape(state.x), where, "the state's shape")
        dynamics.check_fits(params.E_rev, "E_rev", jnp.shape(state.x), where, "the state's shape")
    return state.x if kind == "current" else state.x * (params.E_rev - V)


def synaptic_drive(W: Array, delayed: Array, per_synapse: bool | None = None) -> Array:
    """Summed weight arriving at each postsynaptic neuron: W (n_post, n_pre) with delayed
    spikes (n_pre, *c) -> W @ s, or per synapse (n_post, n_pre, *c) -> sum_j W_ij s_ij;
    -> (n_post, *c). ``per_synapse`` (a bool) defaults to ``delayed.ndim == 2``."""
    where = "synapses.synaptic_drive"
    delayed = jnp.asarray(delayed)
    if per_synapse is None:
        per_synapse = delayed.ndim == 2
    else:  # a string such as "no" counted as True
        per_synapse = dynamics.check_flag(per_synapse, "per_synapse", where)
    n = jnp.shape(W)[:2] if per_synapse else jnp.shape(W)[1:2]
    if jnp.ndim(W) != 2 or delayed.shape[: len(n)] != n:
        want = "(n_post, n_pre, ...)" if per_synapse else "(n_pre, ...)"
        raise ValueError(
            f"{where}: W must be (n_post, n_pre) and the delayed spikes {want}, got W "
            f"{jnp.shape(W)} and spikes {delayed.shape}"
        )
    if not per_synapse:
        return jnp.tensordot(W, delayed, axes=1)
    w = W.reshape(W.shape + (1,) * (delayed.ndim - 2))
    return jnp.sum(w * delayed, axis=1)


class Projection(NamedTuple):
    """State of one projection (a pre population onto a post population, one synapse
    type): its delay line and its synaptic variable."""

    line: DelayLine
    syn: SynapseState


def projection_init(n_pre: int, n_post: int, max_delay: int, params=AMPA, dtype=None):
    """An empty :class:`Projection` (no spikes in flight, x = 0 of (n_post,) broadcast with
    the parameters)."""
    n_post = dynamics.check_count(n_post, "n_post", "synapses.projection_init", minimum=0)
    return Projection(
        delay_init(n_pre, max_delay, dtype=dtype), init_state((n_post,), params, dtype=dtype)
    )


def _check_projection(line: DelayLine, x, W, delays, where: str):
    """W (n_post, n_pre) and delays (), (n_pre,) or (n_post, n_pre) for a projection of the
    line's n_pre neurons onto x's last axis (n_post): a W (1, n_pre) gave every
    postsynaptic neuron the first row's drive, silently."""
    n_pre, x_shape = line.buffer.shape[1], jnp.shape(x)
    n_post = x_shape[-1] if x_shape else None
    w = jnp.shape(W)
    if len(w) != 2 or w[1] != n_pre or (n_post is not None and w[0] != n_post):
        raise ValueError(
            f"{where}: W has shape {w}, the projection maps {n_pre} presynaptic neurons onto "
            f"x {x_shape}; W must be ({'n_post' if n_post is None else n_post}, {n_pre})"
        )
    delay_line.check_delay_shape(delays, n_pre, n_post, where)


def projection_step(
    state: Projection, pre_spikes: Array, W: Array, delays: Array, params: SynapseParams, dt
) -> Projection:
    """Push this step's presynaptic spikes (n_pre,), read the delayed ones, and step the
    synapse. W (n_post, n_pre), n_post the last axis of x; delays () or (n_pre,) (axonal)
    or (n_post, n_pre) (per synapse), whole steps in 0..max_delay. ValueError naming the
    argument for another shape, for concrete delays outside the ring (traced ones wrap),
    and for a concrete tau or dt that is not finite and > 0."""
    where = "synapses.projection_step"
    _check_decay(params, dt, where)
    _check_projection(state.line, state.syn.x, W, delays, where)
    delay_line.check_delays(delays, 0, state.line.buffer.shape[0] - 1, where)
    line = delay_line.push(state.line, pre_spikes, where, "pre_spikes")
    drive = synaptic_drive(W, delay_read(line, delays))
    return Projection(line, _step(state.syn, drive, params, dt, where))


def check_weights(W, n_pre: int, n_post: int, where: str = "synapses"):
    """ValueError unless W has shape (n_post, n_pre)."""
    if jnp.shape(W) != (n_post, n_pre):
        raise ValueError(
            f"{where}: W must be (n_post, n_pre) = ({n_post}, {n_pre}), got {jnp.shape(W)}"
        )


# Spikes timed inside a step (adaptive_lif): exact arrival, smooth in the spike time.


class TimedProjection(NamedTuple):
    """A projection for spikes with sub-step times. Its delay line carries, per spike, the
    two numbers :func:`arrival_weights` gives; x is the synaptic variable at step ends."""

    line: DelayLine
    syn: SynapseState


def arrival_weights(spike: Array, t_spike: Array, dt: float, params: SynapseParams) -> Array:
    """(n,) spikes at t_spike ms into their step -> (n, 2): [e^{-(dt - t_s)/tau},
    tau (1 - e^{-(dt - t_s)/tau}) / dt], a spike's share of x at the step's end and of the
    mean of x over the step, when it arrives t_s into a step. 0 where there is no spike; a
    spike at the step's end (t_s = dt, e.g. a grid model's) gives [1, 0]. t_spike and tau
    broadcast to spike's shape without changing it (a scalar passes). ValueError for a
    concrete tau or dt that is not finite and > 0 (dt = 0 gave nan: tau (1 - 1) / 0), and
    for concrete spike times outside [0, dt] where spike > 0 (a share above 1)."""
    return _arrival(spike, t_spike, dt, params, "synapses.arrival_weights")


def _arrival(spike, t_spike, dt, params: SynapseParams, where: str) -> Array:
    _check_decay(params, dt, where)
    shape = jnp.shape(spike)
    dynamics.check_fits(t_spike, "t_spike", shape, where, "spike's shape")
    dynamics.check_fits(params.tau, "tau", shape, where, "spike's shape")
    s, t, h = dynamics.concrete(spike), dynamics.concrete(t_spike), dynamics.concrete(dt)
    if s is not None and t is not None and h is not None:
        t = np.broadcast_to(t, s.shape)[s > 0]
        tol = 1e-5 * float(h)  # rounding in a neuron's t_spike = dt - free + t_c
        bad = ~(np.isfinite(t) & (t >= -tol) & (t <= float(h) + tol))
        if np.any(bad):
            raise ValueError(
                f"{where}: t_spike must be finite and in [0, dt={float(h)}] ms where spike > 0, "
                f"got {t[bad][0]!s}"
            )
    spike = jnp.asarray(spike)
    has = spike > 0
    lag = jnp.where(has, dt - jnp.where(has, t_spike, dt), 0.0)
    decay = jnp.exp(-lag / params.tau)
    out = jnp.stack([decay, params.tau * (1.0 - decay) / dt], axis=-1)
    return jnp.where(has[..., None], spike[..., None] * out, 0.0)


def _check_timed_tau(params: SynapseParams, x, where: str):
    """One tau for a timed projection: its line carries spike shares computed with it; a tau
    per postsynaptic neuron was paired with the presynaptic ones (silently if n_pre = n_post)."""
    if jnp.size(params.tau) != 1:
        raise ValueError(
            f"{where}: tau has shape {jnp.shape(params.tau)}; a timed projection needs one tau "
            "(shape () or (1,)): its line carries spike shares computed with it"
        )
    dynamics.check_fits(params.tau, "tau", jnp.shape(x), where, "the state's shape")


def timed_projection_init(n_pre: int, n_post: int, max_delay: int, params=AMPA, dtype=None):
    """An empty :class:`TimedProjection`; delays are 1..max_delay steps (max_delay >= 1)."""
    where = "synapses.timed_projection_init"
    max_delay = dynamics.check_count(max_delay, "max_delay (steps)", where)
    n_post = dynamics.check_count(n_post, "n_post", where, minimum=0)
    line = delay_init(n_pre, max_delay - 1, channels=2, dtype=dtype)
    return TimedProjection(line, init_state((n_post,), params, dtype=dtype))


def timed_projection_input(
    state: TimedProjection, W: Array, delays: Array, params: SynapseParams, dt: float
) -> tuple[Array, Array]:
    """What arrives this step: (the mean of x over the step, x's jump by the step's end),
    each (n_post,). Spikes from d >= 1 steps ago arrive at their own offset in this step:
    the latency is exactly d dt. Feed the mean to the neuron (as its current, pA or nA, or
    as the conductance), then :func:`timed_projection_update`. W (n_post, n_pre); delays
    (), (n_pre,) or (n_post, n_pre); tau one value. ValueError naming the argument for
    another shape, for concrete delays that are not whole steps in [1, max_delay], or
    tau, dt not finite and > 0."""
    where = "synapses.timed_projection_input"
    delay_line.check_delays(delays, 1, state.line.buffer.shape[0], where)
    _check_decay(params, dt, where)
    _check_timed_tau(params, state.syn.x, where)
    _check_projection(state.line, state.syn.x, W, delays, where)
    arrived = delay_read(state.line, jnp.asarray(delays) - 1)
    drive = synaptic_drive(W, arrived, per_synapse=jnp.ndim(delays) == 2)
    decay = jnp.exp(-dt / params.tau)
    mean = state.syn.x * params.tau * (1.0 - decay) / dt + drive[..., 1]
    return mean, drive[..., 0]


def timed_projection_update(
    state: TimedProjection, jump: Array, spike: Array, t_spike: Array, params, dt: float
) -> TimedProjection:
    """x at the step's end, and this step's presynaptic spikes (n_pre,) with their times
    pushed (as :func:`arrival_weights`; tau one value, as :func:`timed_projection_input`)."""
    where = "synapses.timed_projection_update"
    _check_decay(params, dt, where)
    _check_timed_tau(params, state.syn.x, where)
    n_pre = state.line.buffer.shape[1]
    if jnp.shape(spike) != (n_pre,):
        raise ValueError(
            f"{where}: spike has shape {jnp.shape(spike)}, the line holds {n_pre} presynaptic "
            f"neurons; spike must be ({n_pre},)"
        )
    line = delay_line.push(state.line, _arrival(spike, t_spike, dt, params, where), where, "spike")
    return TimedProjection(line, _step(state.syn, jump, params, dt, where))
