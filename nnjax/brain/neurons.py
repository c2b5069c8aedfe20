"""Spiking neuron models, stepped with ``lax.scan`` over a leading time axis.

Every simulator takes an input array of shape (T, ...) (the ellipsis is any batch of
neurons and trials, broadcast against the per-neuron parameters) and returns traces of shape
(T, ...); all are pure, jit-compiled and vmappable. Times are in ms, rates in Hz.

* :func:`lif`: discrete-time leaky integrate-and-fire, u_t = beta v_{t-1} + I_t,
  s_t = H(u_t - theta), v_t = u_t - theta s_t (``reset="subtract"``) or u_t (1 - s_t)
  (``reset="zero"``); ``beta = 1`` is the integrate-and-fire neuron (:func:`integrate_and_fire`).
  The spike is :func:`nnjax.brain.surrogate.spike`, so gradients flow through surrogates.
* :func:`lif_continuous`: tau dV/dt = -(V - E_L) + R I, integrated exactly between steps,
  spike times located exactly inside a step, reset to V_r and a refractory period t_ref;
  a step may hold several spikes, so the rate never saturates at 1/dt.
* Hodgkin–Huxley in :mod:`nnjax.brain.hodgkin_huxley`.

Closed forms used by the tests: :func:`lif_isi_discrete`, :func:`lif_rate_theory`.
:data:`MAX_STEPS` caps :func:`lif_fi_curve`'s and :func:`if_rate`'s grid; every model's
``step`` checks its shapes with :func:`~nnjax.brain.dynamics.check_step_input`.
"""

import functools
import math
import sys
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from nnjax.brain import dynamics
from nnjax.brain.surrogate import check_surrogate, spike

Array = jax.Array

RESETS = ("subtract", "zero")

MAX_STEPS = 20_000_000
"""The largest time grid, round(duration / dt) steps x len(currents), of :func:`lif_fi_curve`
(n_steps x x.size for :func:`if_rate`): about 18 bytes an entry in float32, so 0.4 GB; 5000
steps (500 ms at dt = 0.1 ms) x 4000 currents still pass."""


RHEOBASE_TOL = 4 * sys.float_info.epsilon
""":func:`lif_isi_discrete` reads a current within RHEOBASE_TOL x (1 + 1 / (1 - beta)) (relative)
above the rheobase theta (1 - beta) as the rheobase itself: 1 - beta is exact for beta >= 0.5
(within eps / 2 otherwise), but beta's own rounding (up to eps / 2) is a relative error of
eps / (2 (1 - beta)) in it: 1 - 0.8 is 0.19999999999999996, 1 - 0.9 is 0.09999999999999998."""


def _check_reset(reset, where: str = "lif"):
    if reset not in RESETS:
        raise ValueError(f"{where}: reset must be one of {RESETS}, got {reset!r}")


def lif_step(
    v: Array,
    current: Array,
    *,
    beta,
    theta,
    reset: str = "subtract",
    surrogate: str = "fast_sigmoid",
    slope: float | None = None,
    detach_reset: bool = True,
) -> tuple[Array, Array]:
    """One discrete LIF step: ``(v_{t-1}, I_t) -> (v_t, s_t)``.

    u = beta v + I;  s = H(u - theta);  v' = u - theta s  or  u (1 - s).
    With ``detach_reset`` (the default) the reset term uses stop_gradient(s): gradients flow
    through the spike's output but not back through the reset (Zenke & Vogels 2021).
    ValueError unless current, beta and theta broadcast to v's shape without widening it.
    """
    _check_reset(reset, "lif_step")  # any other string ran as reset="zero", silently
    _check_beta_theta(beta, theta, "lif_step")
    dynamics.check_step_input("lif_step", (v,), current, {"beta": beta, "theta": theta})
    u = beta * v + current
    s = spike(u - theta, surrogate, slope)
    r = jax.lax.stop_gradient(s) if detach_reset else s
    v_new = u - theta * r if reset == "subtract" else u * (1.0 - r)
    return v_new, s


def lif(
    inputs: Array,
    *,
    beta=0.9,
    theta=1.0,
    reset: str = "subtract",
    v0=0.0,
    surrogate: str = "fast_sigmoid",
    slope: float | None = None,
    detach_reset: bool = True,
) -> tuple[Array, Array]:
    """Run discrete LIF neurons over time: inputs (T, ...) -> (spikes (T, ...), v (T, ...)).

    ``v`` is the membrane after the reset of each step. ``beta`` (decay, 0 < beta <= 1),
    ``theta`` (threshold, > 0) and ``v0`` broadcast against the trailing shape.
    """
    # a layer's primitive: nan passes through (coincidence_response reads it as nan)
    inputs = dynamics.check_time_input(inputs, "lif", finite=False)
    _check_reset(reset)
    check_surrogate(surrogate, slope)
    _check_beta_theta(beta, theta, "lif")
    dynamics.check_finite(v0, "v0", "lif")  # a nan v0 kept v nan: a silent neuron
    try:
        shape = jnp.broadcast_shapes(inputs.shape[1:], jnp.shape(beta), jnp.shape(theta))
        fits = jnp.broadcast_shapes(jnp.shape(v0), shape) == shape
    except ValueError:
        fits = False
    if not fits:
        raise ValueError(
            f"lif: the input's trailing shape {inputs.shape[1:]} (input (T, ...)) and the "
            f"shapes of beta {jnp.shape(beta)}, theta {jnp.shape(theta)} and v0 "
            f"{jnp.shape(v0)} must broadcast to one population shape, v0 not widening it"
        )
    return _lif(inputs, beta, theta, v0, reset, surrogate, slope, detach_reset)


def _check_beta_theta(beta, theta, where: str) -> None:
    """Concrete beta in (0, 1] and theta a finite number > 0 (traced ones pass)."""
    b = dynamics.concrete(beta)  # Python or NumPy numbers, arrays; a traced one passes
    if b is not None and not np.all((b > 0) & (b <= 1)):
        raise ValueError(f"{where}: beta must be in (0, 1], got {beta}")
    dynamics.check_positive(theta, "theta", where)


@functools.partial(jax.jit, static_argnums=(4, 5, 6, 7))
def _lif(inputs, beta, theta, v0, reset, surrogate, slope, detach_reset):
    shape = jnp.broadcast_shapes(inputs.shape[1:], jnp.shape(beta), jnp.shape(theta))
    v = jnp.broadcast_to(jnp.asarray(v0, inputs.dtype), shape)
    kw = dict(beta=beta, theta=theta, reset=reset, surrogate=surrogate, slope=slope)

    def step(v, current):
        v, s = lif_step(v, current, detach_reset=detach_reset, **kw)
        return v, (s, v)

    _, (spikes, vs) = jax.lax.scan(step, v, inputs)
    return spikes, vs


def integrate_and_fire(inputs: Array, *, theta=1.0, reset: str = "subtract", v0=0.0, **kw):
    """The non-leaky IF neuron: :func:`lif` with beta = 1. Returns (spikes, v), each (T, ...).

    With subtractive reset, v0 = 0 and a constant input x, after T steps v_T = T x - theta n_T,
    with 0 <= v_T < theta for 0 <= x <= theta (no spike for x < 0, one every step for
    x > theta), so the rate n_T / T is within 1/T of clip(relu(x) / theta, 0, 1): the
    spike <-> ReLU identity behind ANN -> SNN conversion.
    """
    return lif(inputs, beta=1.0, theta=theta, reset=reset, v0=v0, **kw)


def if_rate(x: Array, n_steps: int, *, theta=1.0) -> Array:
    """Firing rate (spikes per step) of subtractive-reset IF neurons driven by constant x.

    x: any shape -> rate, same shape, in [0, 1]; approx clip(relu(x) / theta, 0, 1).
    ValueError when n_steps x x.size is above :data:`MAX_STEPS` (the input it builds).
    """
    n_steps = dynamics.check_count(n_steps, "n_steps", "if_rate")
    x = jnp.asarray(x)
    what = f"x of shape {x.shape} over n_steps"
    dynamics.check_grid("if_rate", n_steps, x.size, what, MAX_STEPS)
    spikes, _ = integrate_and_fire(jnp.broadcast_to(x, (n_steps,) + x.shape), theta=theta)
    return spikes.mean(axis=0)


def lif_isi_discrete(current, beta, theta=1.0):
    """Inter-spike interval (steps) of discrete LIF, reset to zero, constant input I > 0.

    From v = 0: u_n = I (1 - beta^n) / (1 - beta) (= n I for beta = 1), so the first n with
    u_n >= theta is  n* = ceil( ln(1 - theta (1 - beta) / I) / ln beta )  (ceil(theta / I) for
    beta = 1), and every later interval repeats it. inf when I <= theta (1 - beta), equality
    taken to within rounding (:data:`RHEOBASE_TOL` x (1 + 1 / (1 - beta)) relative): at
    I = 0.1, beta = 0.9, theta = 1, u_n only approaches theta, though 1 - 0.9 rounds below 0.1
    (an ISI of 343 steps before). Python floats in, a float out (the oracle for the tests).
    """
    current, beta, theta = (
        dynamics.check_number(v, name, "lif_isi_discrete")
        for name, v in (("current", current), ("beta", beta), ("theta", theta))
    )
    if math.isnan(current):  # math.ceil(nan) raised a bare "cannot convert float NaN"
        raise ValueError("lif_isi_discrete: current must be a number, got nan")
    if not 0.0 < beta <= 1.0:
        raise ValueError(f"lif_isi_discrete: beta must be in (0, 1], got {beta}")
    if not theta > 0:
        raise ValueError(f"lif_isi_discrete: theta must be > 0, got {theta}")
    if current <= 0:
        return math.inf
    if beta == 1.0:
        return float(math.ceil(theta / current))
    arg = 1.0 - theta * (1.0 - beta) / current
    if arg <= RHEOBASE_TOL * (1.0 + 1.0 / (1.0 - beta)):  # 1 - beta carries beta's rounding
        return math.inf
    return float(math.ceil(math.log(arg) / math.log(beta)))


class LIFTrace(NamedTuple):
    """Output of :func:`lif_continuous`, each (T, ...): the membrane V at the end of every
    step (mV); spikes (bool, at least one spike in the step); n_spikes (int32, how many);
    spike_times and last_spike_times (ms; the exact times of the first and the last spike of
    the step, nan where there is none; equal when the step holds one spike)."""

    v: Array
    spikes: Array
    spike_times: Array
    n_spikes: Array
    last_spike_times: Array


def lif_continuous(
    current: Array,
    *,
    dt: float = 0.1,
    tau=10.0,
    R=10.0,
    E_L=-65.0,
    theta=-50.0,
    V_r=-65.0,
    t_ref=2.0,
    V0=None,
) -> LIFTrace:
    """Continuous-time LIF, exact between steps: current (T, ...) (nA, constant per step).

    tau dV/dt = -(V - E_L) + R I; with V_inf = E_L + R I,
    V(t + s) = V_inf + (V(t) - V_inf) e^{-s / tau}. When V reaches theta the spike time is
    solved exactly, s* = tau ln((V - V_inf) / (theta - V_inf)); V is then held at V_r for
    t_ref and integrates again from there. Units: ms, mV, nA, MOhm.

    A step may hold several spikes (dt > t_ref, or a drive so strong that the inter-spike
    interval is below dt): under a constant current every spike after the first in a step
    follows the previous one by the period P = t_ref + tau ln((V_inf - V_r)/(V_inf - theta)),
    so the step holds 1 + floor(r / P) spikes, r the time left after the first, and the rate
    stays exact instead of saturating at 1/dt. Parameters broadcast against the batch shape.
    A neuron that starts at or above theta (V0 >= theta) fires at t = 0.
    """
    current = dynamics.check_time_input(current, "lif_continuous")
    dt = dynamics.check_dt(dt, "lif_continuous")  # a bool, a string or an array is refused
    _check_lif("lif_continuous", dt=dt, tau=tau, t_ref=t_ref, theta=theta, V_r=V_r, R=R, E_L=E_L)
    V0 = E_L if V0 is None else V0
    dynamics.check_finite(V0, "V0", "lif_continuous")
    dynamics.check_population(current, (tau, R, E_L, theta, V_r, t_ref, V0), None, "lif_continuous")
    return _lif_continuous(current, dt, tau, R, E_L, theta, V_r, t_ref, V0)


def _check_lif(who: str, *, tau, t_ref, theta, V_r, dt=1.0, R=1.0, E_L=0.0) -> None:
    """A ValueError naming the first concrete parameter out of range (Python or NumPy numbers
    and arrays, any element; traced ones pass): dt, tau, R > 0 and finite, t_ref >= 0, V_r <
    theta, E_L finite (a nan E_L or R makes V nan: a silent neuron with no error)."""
    for name, val in (("dt", dt), ("tau", tau), ("R", R)):
        dynamics.check_positive(val, name, who)
    dynamics.check_finite(E_L, "E_L", who)
    dynamics.check_positive(t_ref, "t_ref", who, allow_zero=True)
    dynamics.check_below(V_r, theta, ("V_r", "theta"), who)


def _extra_spikes(after, V_inf, tau, theta, V_r, t_ref):
    """Spikes after the first in a step, and the time from the last one to the step's end.

    ``after`` is the time left in the step after the first spike; under the constant drive
    the later spikes come every P = t_ref + tau ln((V_inf - V_r) / (V_inf - theta)) ms.
    """
    above = V_inf > theta
    ratio = jnp.where(above, (V_inf - V_r) / jnp.where(above, V_inf - theta, 1.0), 1.0)
    period = t_ref + tau * jnp.log(jnp.maximum(ratio, 1.0))
    safe = jnp.where(above & (period > 0), period, 1.0)
    extra = jnp.where(above & (period > 0), jnp.floor(after / safe), 0.0)
    return extra, after - extra * safe, safe


@functools.partial(jax.jit, static_argnums=(1,))
def _lif_continuous(current, dt, tau, R, E_L, theta, V_r, t_ref, V0):
    dtype = current.dtype
    shape = jnp.broadcast_shapes(
        current.shape[1:], *(jnp.shape(p) for p in (tau, R, E_L, theta, V_r, t_ref, V0))
    )
    V = jnp.broadcast_to(jnp.asarray(V0, dtype), shape)
    ref = jnp.zeros(shape, dtype)
    times = jnp.arange(current.shape[0], dtype=dtype) * dt

    def step(carry, xs):
        V, ref = carry
        I, t0 = xs
        V_inf = E_L + R * I
        free = jnp.maximum(dt - ref, 0.0)  # time this step spends out of refractoriness
        V_end = V_inf + (V - V_inf) * jnp.exp(-free / tau)
        above = V >= theta  # at or above threshold when the free time starts (V0): fire now
        fired = ((V_end >= theta) | above) & (free > 0)
        # log argument is > 1 exactly when a crossing happens; guard the other lanes
        ratio = jnp.where(fired, (V - V_inf) / jnp.where(fired, theta - V_inf, 1.0), 1.0)
        t_c = jnp.where(above, 0.0, jnp.clip(tau * jnp.log(jnp.maximum(ratio, 1.0)), 0.0, free))
        extra, since, period = _extra_spikes(free - t_c, V_inf, tau, theta, V_r, t_ref)
        left = jnp.maximum(since - t_ref, 0.0)  # free time after the last spike's refractoriness
        V_new = jnp.where(fired, V_inf + (V_r - V_inf) * jnp.exp(-left / tau), V_end)
        V_new = jnp.where((~fired) & (free == 0), V, V_new)
        ref_new = jnp.where(fired, jnp.maximum(t_ref - since, 0.0), jnp.maximum(ref - dt, 0.0))
        t_first = t0 + (dt - free) + t_c
        t_spike = jnp.where(fired, t_first, jnp.nan)
        t_last = jnp.where(fired, t_first + extra * period, jnp.nan)
        n = jnp.where(fired, 1 + extra, 0).astype(jnp.int32)
        return (V_new, ref_new), (V_new, fired, t_spike, n, t_last)

    _, (vs, spikes, t_sp, n, t_last) = jax.lax.scan(step, (V, ref), (current, times))
    return LIFTrace(vs, spikes, t_sp, n, t_last)


def rate_from_spike_times(spikes: Array, spike_times: Array, last_spike_times=None, n_spikes=None):
    """Firing rate (Hz) from exact spike times (ms), over the time axis 0.

    f = (n - 1) / (t_last - t_first) * 1000: the inverse mean inter-spike interval, free of
    the +-1 spike counting error; 0 where fewer than two spikes. (T, ...) -> (...).
    ``spikes`` (bool) and ``spike_times`` mark one spike per step; pass ``n_spikes`` and
    ``last_spike_times`` of a :class:`LIFTrace` too when a step can hold several.
    """
    spikes, spike_times = jnp.asarray(spikes), jnp.asarray(spike_times)
    n_steps = spikes if n_spikes is None else jnp.asarray(n_spikes)
    last = spike_times if last_spike_times is None else jnp.asarray(last_spike_times)
    shapes = [a.shape for a in (spikes, spike_times, n_steps, last)]
    if spikes.ndim < 1 or spikes.shape[0] < 1 or len(set(shapes)) != 1:
        raise ValueError(
            "rate_from_spike_times: spikes, spike_times (and n_spikes, last_spike_times) must "
            f"share one shape (T >= 1, ...), got {shapes}"
        )
    n = n_steps.sum(axis=0)
    t_first = jnp.min(jnp.where(spikes, spike_times, jnp.inf), axis=0)
    t_last = jnp.max(jnp.where(spikes, last, -jnp.inf), axis=0)
    span = jnp.where(n >= 2, t_last - t_first, 1.0)
    return jnp.where(n >= 2, (n - 1) / span * 1000.0, 0.0)


def lif_rate_theory(current, *, tau=10.0, R=10.0, E_L=-65.0, theta=-50.0, V_r=-65.0, t_ref=2.0):
    """Closed-form f–I curve of the continuous LIF (Hz):

    f = 1 / (t_ref + tau ln((R I + E_L - V_r) / (R I + E_L - theta)))  for R I + E_L > theta,
    else 0 (times in ms, hence the factor 1000); nan where the current is nan.
    """
    _check_lif("lif_rate_theory", tau=tau, t_ref=t_ref, theta=theta, V_r=V_r, R=R, E_L=E_L)
    if isinstance(current, str | bytes):  # jnp.asarray raised a bare TypeError
        raise ValueError(f"lif_rate_theory: current must be a number or an array, got {current!r}")
    current = jnp.asarray(current)
    V_inf = E_L + R * current
    above = V_inf > theta
    ratio = jnp.where(above, (V_inf - V_r) / jnp.where(above, V_inf - theta, 1.0), 1.0)
    rate = jnp.where(above, 1000.0 / (t_ref + tau * jnp.log(ratio)), 0.0)
    return jnp.where(jnp.isnan(V_inf), jnp.nan, rate)


def lif_fi_curve(currents: Array, *, duration: float = 500.0, dt: float = 0.1, **params):
    """Simulated f–I curve of :func:`lif_continuous`: currents (n,) (nA) -> rates (n,) (Hz),
    each current held constant for ``duration`` ms, rate from exact spike times; nan for a
    nan current. ValueError for a current of +-inf or not a number, and when
    round(duration / dt) x len(currents) is above :data:`MAX_STEPS`."""
    dt = dynamics.check_number(dt, "dt (ms)", "lif_fi_curve")  # not a string, None, array
    duration = dynamics.check_number(duration, "duration (ms)", "lif_fi_curve")
    for name, val in (("dt", dt), ("duration", duration)):
        if not 0 < val < math.inf:
            raise ValueError(f"lif_fi_curve: {name} must be a finite number > 0 (ms), got {val}")
    currents = dynamics.check_currents(currents, "lif_fi_curve")
    n_steps = int(round(duration / dt))
    if n_steps < 2:
        raise ValueError(f"lif_fi_curve: duration {duration} is less than two steps of {dt}")
    what = f"duration {duration:g} ms at dt {dt:g} ms"
    dynamics.check_grid("lif_fi_curve", n_steps, currents.size, what, MAX_STEPS)
    nan = jnp.isnan(currents)  # simulated at 0, read as nan (as lif_rate_theory gives)
    drive = jnp.broadcast_to(jnp.where(nan, 0.0, currents), (n_steps,) + currents.shape)
    tr = lif_continuous(drive, dt=dt, **params)
    rates = rate_from_spike_times(tr.spikes, tr.spike_times, tr.last_spike_times, tr.n_spikes)
    return jnp.where(nan, jnp.nan, rates)
