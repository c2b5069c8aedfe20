"""One step of a spiking E/I network (:mod:`~nnjax.brain.network`), AdEx or adaptive LIF.

The step's equations, the external Poisson drive (drawn by inverse transform, truncated at
:data:`POISSON_MAX`), the stable conductance factor phi and the LFP proxy are those of the
:mod:`~nnjax.brain.network` docstring; :func:`~nnjax.brain.network.simulate` scans them.
"""

import jax
import jax.numpy as jnp

from nnjax.brain import adaptive_lif, adex
from nnjax.brain import synapses as syn
from nnjax.brain.network_types import BLOCKS, Modulation, NetworkParams, NetworkSpec, NetworkState

Array = jax.Array


def _exc_mask(spec: NetworkSpec, dtype) -> Array:
    return (jnp.arange(spec.n) < spec.n_exc).astype(dtype)


def _stimulus(params: NetworkParams, stim: Array) -> Array:
    """The stimulus current of this step, P u_t (N,) (pA, or nA for adaptive LIF)."""
    if params.stim_pattern is None:
        return jnp.zeros((), stim.dtype)
    return params.stim_pattern @ stim


def _poisson_drive(key, state, params, mod, spec):
    """External Poisson spikes of this step, as the jump of g_ext (N,)."""
    rate = params.rate_ext * mod.ext_scale
    lam = jnp.broadcast_to(rate * (spec.dt / 1000.0), (spec.n,))
    u = jax.random.uniform(jax.random.fold_in(key, state.t), lam.shape, lam.dtype)
    return params.w_ext * _poisson_inverse(u, lam)


POISSON_MAX = 8
"""External spikes per neuron and step are drawn up to this count (the
:mod:`~nnjax.brain.network` docstring)."""


def _poisson_inverse(u: Array, lam: Array) -> Array:
    """Poisson(lam) counts from uniforms u by inverse transform, truncated at POISSON_MAX:
    the number of k < POISSON_MAX with u > F(k), F the Poisson CDF."""
    p = jnp.exp(-lam)
    cdf, count = p, jnp.zeros_like(lam)
    for k in range(1, POISSON_MAX + 1):
        count = count + (u > cdf)
        p = p * lam / k
        cdf = cdf + p
    return count


def _split(spike: Array, spec: NetworkSpec):
    return spike[: spec.n_exc], spike[spec.n_exc :]


def _block_parts(name: str, params: NetworkParams, mod: Modulation):
    """(W, synapse params, gain) of one block."""
    p = params.exc_syn if name[1] == "e" else params.inh_syn
    return getattr(params, "W_" + name), p, getattr(mod, "gain_" + name)


def _neuron_params(params: NetworkParams, mod: Modulation, exc: Array):
    """The neuron parameters of this step: b of E cells scaled by b_scale."""
    scale = 1.0 + exc * (mod.b_scale - 1.0)
    return params.neuron._replace(b=params.neuron.b * scale)


def _adex_step(state: NetworkState, params, spec, mod, stim, key):
    """One step of an AdEx network (the :mod:`~nnjax.brain.network` docstring); returns
    (state, lfp, g_exc, g_inh)."""
    exc = _exc_mask(spec, state.ext.x.dtype)
    ee, ei, ie, ii = state.blocks
    V = state.neurons.V
    g_exc = jnp.concatenate([ee.syn.x, ie.syn.x])
    g_inh = jnp.concatenate([ei.syn.x, ii.syn.x])
    g_K = exc * mod.g_K
    phi = _stable_factor(g_exc + state.ext.x + g_inh + g_K, params.neuron.C, spec.dt)
    I_exc = phi * (g_exc + state.ext.x) * (params.exc_syn.E_rev - V)
    I_inh = phi * g_inh * (params.inh_syn.E_rev - V)
    I = I_exc + I_inh + phi * g_K * (params.E_K - V) + params.I_bias + _stimulus(params, stim)
    p = _neuron_params(params, mod, exc)
    refractory = state.ref > 0.5 * spec.dt
    neurons = adex.step(
        state.neurons, jnp.where(refractory, _clamp(state.neurons, p), I), p, spec.dt
    )
    ref = jnp.where(neurons.spike > 0, params.t_ref, jnp.maximum(state.ref - spec.dt, 0.0))
    s_e, s_i = _split(neurons.spike, spec)
    blocks = []
    for name, block in zip(BLOCKS, state.blocks):
        W, p, gain = _block_parts(name, params, mod)
        pre = s_e if name[1] == "e" else s_i
        blocks.append(syn.projection_step(block, pre * gain, W, spec.delay_steps, p, spec.dt))
    jump = _poisson_drive(key, state, params, mod, spec)
    ext = syn.step(state.ext, jump, params.exc_syn, spec.dt)
    lfp = jnp.mean((jnp.abs(I_exc) + jnp.abs(I_inh))[: spec.n_exc])
    return NetworkState(neurons, tuple(blocks), ext, ref, state.t + 1), lfp, g_exc, g_inh


def _stable_factor(g, C, dt):
    """phi(x) = (1 - e^{-x}) / x at x = g dt / C: the conductance currents times phi move V
    by the exact exponential relaxation towards their reversal potentials within the step,
    where plain Euler would overshoot (and go unstable for g dt / C > 2)."""
    x = g * dt / C
    small = x < 1e-4
    xs = jnp.where(small, 1.0, x)
    return jnp.where(small, 1.0 - 0.5 * x, -jnp.expm1(-xs) / xs)


def _clamp(neurons, p):
    """The current that holds V where it is (dV/dt = 0): a refractory cell stays at V_r."""
    x = jnp.minimum((jnp.minimum(neurons.V, p.V_peak) - p.V_T) / p.Delta_T, adex.EXP_CAP)
    return p.g_L * (neurons.V - p.E_L) - p.g_L * p.Delta_T * jnp.exp(x) + neurons.w


def _alif_step(state: NetworkState, params, spec, mod, stim, key):
    """One step of an adaptive-LIF network with timed current synapses (nA)."""
    exc = _exc_mask(spec, state.ext.x.dtype)
    dt, d = spec.dt, spec.delay_steps
    arrivals = []
    for name, block in zip(BLOCKS, state.blocks):
        W, p, _ = _block_parts(name, params, mod)
        arrivals.append(syn.timed_projection_input(block, W, d, p, dt))
    (m_ee, j_ee), (m_ei, j_ei), (m_ie, j_ie), (m_ii, j_ii) = arrivals
    I_exc, I_inh = jnp.concatenate([m_ee, m_ie]), jnp.concatenate([m_ei, m_ii])
    tau = params.exc_syn.tau
    I_ext = state.ext.x * tau * (1.0 - jnp.exp(-dt / tau)) / dt  # x's mean over the step
    V = state.neurons.V
    I = I_exc + I_inh + I_ext + exc * mod.g_K * (params.E_K - V) / 1000.0 + params.I_bias
    I = I + _stimulus(params, stim)
    neurons = adaptive_lif.step(state.neurons, I, _neuron_params(params, mod, exc), dt)
    s_e, s_i = _split(neurons.spike, spec)
    t_e, t_i = _split(neurons.t_spike, spec)
    blocks = []
    for name, block, (_, jump) in zip(BLOCKS, state.blocks, arrivals):
        _, p, gain = _block_parts(name, params, mod)
        pre, t_pre = (s_e, t_e) if name[1] == "e" else (s_i, t_i)
        blocks.append(syn.timed_projection_update(block, jump, pre * gain, t_pre, p, dt))
    ext = syn.step(state.ext, _poisson_drive(key, state, params, mod, spec), params.exc_syn, dt)
    lfp = jnp.mean((jnp.abs(I_exc + I_ext) + jnp.abs(I_inh))[: spec.n_exc])  # as AdEx's: ext in
    state = NetworkState(neurons, tuple(blocks), ext, state.ref, state.t + 1)
    return state, lfp, I_exc, I_inh
