"""Adaptive leaky integrate-and-fire neurons, exact between steps, with exact spike times.

Units: ms, mV, nA, MOhm (as in :mod:`nnjax.brain.neurons`).

    tau_m dV/dt = -(V - E_L) + R (I - w),    tau_w dw/dt = -w
    when V reaches theta:  V -> V_r held for t_ref,  w -> w + b

With I constant over a step and w decaying, the membrane has the closed form (u = V - V_inf,
V_inf = E_L + R I)

    u(s) = (u0 - K) e^{-s/tau_m} + K e^{-s/tau_w},   K = -R w0 tau_w / (tau_w - tau_m),

computed in the equivalent form

    u(s) = u0 e^{-s/tau_m} - R w0 (s/tau_m) e^{-s/max(tau_m, tau_w)} psi(s |1/tau_m - 1/tau_w|),
    psi(y) = (1 - e^{-y}) / y,   psi(0) = 1,

which has no cancellation between the two terms of K when tau_w is close to tau_m and holds
at tau_w = tau_m too (the limit, u0 e^{-s/tau_m} - R w0 (s/tau_m) e^{-s/tau_m}); so every
step is integrated exactly. A threshold crossing inside a step is located by Newton's method
on that closed form, and its time t* enters the state (the refractory time left), so the
spike time is a smooth function of every parameter. Newton runs under stop_gradient and one
last Newton step is taken outside it, which gives the implicit-function derivative dt*/dp =
-(dV/dp) / (dV/dt) at t*: gradients of spike times, and of anything computed from them
(rates, inter-spike intervals), are exact, not surrogates. This is the "exact gradient
through a reset" (as in event-based methods, e.g. Wunderlich & Pehle 2021) rather than a
surrogate; ``state.spike`` is the 0/1 event itself (no gradient; use the spike times).

At most one spike per step, which requires dt <= t_ref (checked): after a spike the neuron is
refractory past the step's end. A neuron whose state is at or above theta when its free time
starts fires at that instant. With w < 0 (b < 0) V can rise past theta and fall back within
one step (V = -50.2 mV, w = -3 nA, tau_w = 1 ms, no input, dt = 2 ms): u(s) has at most one
extremum, a maximum only where w < 0, at a time in closed form, so a step fires where V at
its end or at that maximum inside it is at or above theta, and the crossing is then sought
before the maximum, where V rises (Newton on sqrt(V_peak - V), kept in a bracket; exact to
the conditioning of V - theta near a tangential peak). A population with no w < 0 skips
that search (a lax.cond). :func:`fi_curves` gives the rates of the first
inter-spike intervals at each step current: the adaptation f–I curves (f_1 is the onset
curve, the last approaches the steady-state one; Benda & Herz 2003).
"""

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from nnjax.brain import dynamics
from nnjax.layers.checks import check_dtype

Array = jax.Array

NEWTON_STEPS = 4
PEAK_STEPS = 12

MAX_STEPS = 20_000_000
"""The largest time grid, steps x currents, of :func:`fi_curves` (round(duration / dt) x
len(currents)): its trace and spike times take about 55 bytes an entry in float32, so about
1.1 GB. 500 ms at dt = 0.1 ms is 5000 steps: 4000 currents still pass; split a larger sweep."""


class ALIFParams(NamedTuple):
    """tau_m (ms), R (MOhm), E_L (mV), theta (mV), V_r (mV), t_ref (ms), tau_w (ms),
    b (nA): a pytree, each field a float or a per-neuron array."""

    tau_m: Any = 10.0
    R: Any = 10.0
    E_L: Any = -65.0
    theta: Any = -50.0
    V_r: Any = -65.0
    t_ref: Any = 2.0
    tau_w: Any = 100.0
    b: Any = 0.2


DEFAULT = ALIFParams()
"""10 ms, 10 MOhm (rheobase 1.5 nA), threshold 15 mV above rest, 2 ms refractory,
adaptation b = 0.2 nA decaying with 100 ms."""


class ALIFState(NamedTuple):
    """V (mV), w (nA), ref (ms of refractoriness left), spike (0/1 this step), t_spike (ms
    from the step's start to its spike, nan where none); each population-shaped."""

    V: Array
    w: Array
    ref: Array
    spike: Array
    t_spike: Array


def init_state(shape=(), params: ALIFParams = DEFAULT, *, dtype=None) -> ALIFState:
    """Rest: V = E_L, w = 0, not refractory; fields of ``shape`` broadcast with params.
    ValueError for a dtype that is not floating (an int32 V) and a concrete E_L not finite."""
    dtype = (
        jnp.result_type(float) if dtype is None else check_dtype("adaptive_lif.init_state", dtype)
    )
    dynamics.check_finite(params.E_L, "E_L", "adaptive_lif.init_state")
    shape = dynamics.batch_shape(shape, params, "adaptive_lif.init_state")
    z = jnp.zeros(shape, dtype)
    V = jnp.broadcast_to(jnp.asarray(params.E_L, dtype), shape)
    return ALIFState(V, z, z, z, jnp.full(shape, jnp.nan, dtype))


def _trajectory(s, V0, w0, V_inf, p):
    """V(s) and dV/ds (mV, mV/ms) from V0, w0 after s ms of constant drive (module
    docstring's form of u(s); dV/ds = -(u + R w) / tau_m, the ODE itself)."""
    y = s * jnp.abs(1.0 / p.tau_m - 1.0 / p.tau_w)
    y_safe = jnp.where(y > 0, y, 1.0)
    psi = jnp.where(y > 0, -jnp.expm1(-y_safe) / y_safe, 1.0)
    slow = jnp.exp(-s / jnp.maximum(p.tau_m, p.tau_w))
    u = (V0 - V_inf) * jnp.exp(-s / p.tau_m) - p.R * w0 * (s / p.tau_m) * slow * psi
    return V_inf + u, -(u + p.R * w0 * jnp.exp(-s / p.tau_w)) / p.tau_m


def _log1p_ratio(y):
    """log1p(y) / y for y > -1, and its limit 1 at y = 0."""
    y_safe = jnp.where(y != 0, y, 1.0)
    return jnp.where(y != 0, jnp.log1p(y_safe) / y_safe, 1.0)


def _peak(V0, w0, V_inf, free, p):
    """(s, hit): V's maximum at s in (0, free) and whether V0 < theta <= V(s) there.

    dV/ds = 0 has at most one root, e^{s d} = (tau_w / tau_m)(1 + tau_m d u0 / (R w0)) with
    d = 1/tau_m - 1/tau_w, a maximum only where w0 < 0 (there tau_m V'' = R w / tau_w < 0);
    as s = tau_m (g(-x) + c g(x c)), g(y) = log1p(y) / y, x = tau_m d, c = u0 / (R w0), it
    has no cancellation near tau_w = tau_m and is tau_m (1 + c) at tau_w = tau_m. Where hit,
    V rises on (0, s) to its peak at or above theta, and the first crossing lies there. Not
    differentiated: it only selects and brackets the crossing."""
    V0, w0, V_inf, free, p = jax.lax.stop_gradient((V0, w0, V_inf, free, p))
    Rw = p.R * w0
    x = 1.0 - p.tau_m / p.tau_w  # tau_m d, below 1
    c = (V0 - V_inf) / jnp.where(Rw < 0, Rw, -1.0)
    exists = (Rw < 0) & (x * c > -1)
    s = p.tau_m * (_log1p_ratio(-x) + c * _log1p_ratio(jnp.where(exists, x * c, 0.0)))
    inside = exists & (s > 0) & (s < free)
    s = jnp.where(inside, s, free)
    V_peak, _ = _trajectory(s, V0, w0, V_inf, p)
    return s, inside & (V0 < p.theta) & (V_peak >= p.theta)


def _bracketed(V0, w0, V_inf, s_peak, p):
    """The root of V = theta in (0, s_peak), where V rises from V0 < theta to V(s_peak) >= theta.

    Newton on h(t) = sqrt(V(s_peak) - V(t)) - sqrt(V(s_peak) - theta), which near the peak is
    about linear in t where V - theta has a near-double root (plain Newton halved the error
    per step there), kept strictly inside the bracket that V's sign keeps, else the bracket's
    midpoint. Not differentiated."""
    V0, w0, V_inf, s_peak, p = jax.lax.stop_gradient((V0, w0, V_inf, s_peak, p))
    V_peak, _ = _trajectory(s_peak, V0, w0, V_inf, p)
    r = jnp.sqrt(jnp.maximum(V_peak - p.theta, 0.0))
    q0 = jnp.sqrt(jnp.maximum(V_peak - V0, 0.0))
    lo, hi = jnp.zeros_like(s_peak), s_peak
    t = s_peak * jnp.clip(1.0 - r / jnp.where(q0 > 0, q0, 1.0), 0.0, 1.0)  # h's secant root
    for _ in range(PEAK_STEPS):
        V, dV = _trajectory(t, V0, w0, V_inf, p)
        below = V < p.theta
        lo, hi = jnp.where(below, t, lo), jnp.where(below, hi, t)
        q = jnp.sqrt(jnp.maximum(V_peak - V, 0.0))
        ok = dV > 0
        t_n = t + 2.0 * q * (q - r) / jnp.where(ok, dV, 1.0)
        t = jnp.where(ok & (t_n > lo) & (t_n < hi), t_n, 0.5 * (lo + hi))
    return t


def _crossing(V0, w0, V_inf, V_end, free, p):
    """(t, hit): the time in [0, free] at which V first reaches theta (where it does by
    ``free``), and whether it does before V's peak inside the step (:func:`_peak`), which
    V_end >= theta misses where V falls back below theta by ``free``."""

    def newton(t):
        V, dV = _trajectory(t, V0, w0, V_inf, p)
        ok = dV > 1e-12
        return jnp.clip(t - jnp.where(ok, (V - p.theta) / jnp.where(ok, dV, 1.0), 0.0), 0, free)

    rise = V_end - V0
    guess = free * (p.theta - V0) / jnp.where(rise > 0, rise, 1.0)  # the secant's root
    t = jax.lax.stop_gradient(jnp.clip(guess, 0.0, free))
    for _ in range(NEWTON_STEPS):  # V is monotone on [0, free] where not hit
        t = jax.lax.stop_gradient(newton(t))
    t, hit = jax.lax.cond(  # a peak needs w < 0: skipped in a population with none
        jnp.any(w0 < 0),
        lambda: _peak_crossing(t, V0, w0, V_inf, free, p),
        lambda: (t, jnp.zeros(t.shape, bool)),
    )
    return newton(t), hit  # one differentiable step: the implicit-function gradient


def _peak_crossing(t, V0, w0, V_inf, free, p):
    """(t, hit): t replaced by the crossing before V's peak where :func:`_peak` hits; the
    search runs only where some neuron of the population hits (rare: V must rise past theta
    and fall back within the step)."""
    s_peak, hit = _peak(V0, w0, V_inf, free, p)
    hit = jnp.broadcast_to(hit, t.shape)
    search = lambda: jnp.where(hit, _bracketed(V0, w0, V_inf, s_peak, p), t)  # noqa: E731
    return jax.lax.cond(jnp.any(hit), search, lambda: t), hit


def step(state: ALIFState, current: Array, params: ALIFParams, dt: float) -> ALIFState:
    """One exact step of the population (current nA, constant over the step).

    A ValueError for a current, a parameter or dt whose shape does not broadcast to the
    state's or would widen it (dt a scalar; static shapes: checked under jit too), and for
    concrete parameters or dt out of range (:func:`check_params`; traced ones, as in a
    scan, pass unchecked: a traced dt > t_ref gives wrong spike counts)."""
    dynamics.check_step_dt(dt, "adaptive_lif.step")  # a scalar; concrete dt > 0
    dynamics.check_step_input("adaptive_lif.step", state, current, params)
    if dynamics.concrete(dt) is not None:
        check_params(params, dt, "adaptive_lif.step")
    p = params
    V_inf = p.E_L + p.R * current
    free = jnp.maximum(dt - state.ref, 0.0)  # time out of refractoriness, at the step's end
    w_free = state.w * jnp.exp(-(dt - free) / p.tau_w)  # w when the free part begins
    V_end, _ = _trajectory(free, state.V, w_free, V_inf, p)
    above = state.V >= p.theta  # at or above threshold when the free time starts: fire now
    t_c, hit = _crossing(state.V, w_free, V_inf, V_end, free, p)
    fired = ((V_end >= p.theta) | above | hit) & (free > 0)
    t_c = jnp.where(above, 0.0, t_c)
    after = free - t_c  # < dt <= t_ref: the neuron stays refractory to the step's end
    w_spike = w_free * jnp.exp(-t_c / p.tau_w) + p.b
    w_new = jnp.where(fired, w_spike * jnp.exp(-after / p.tau_w), state.w * jnp.exp(-dt / p.tau_w))
    V_new = jnp.where(fired, p.V_r, jnp.where(free > 0, V_end, state.V))
    ref_new = jnp.where(fired, p.t_ref - after, jnp.maximum(state.ref - dt, 0.0))
    t_spike = jnp.where(fired, dt - free + t_c, jnp.nan)
    return ALIFState(V_new, w_new, ref_new, fired.astype(V_new.dtype), t_spike)


def check_params(p: ALIFParams, dt: float, where: str = "adaptive_lif"):
    """ValueErrors for concrete parameters (any element of an array) that break the model:
    tau_m, tau_w, R finite and > 0, t_ref >= dt (one spike per step at most), V_r below theta
    (both finite), E_L and b finite; dt a positive float (ms). Traced parameters pass
    unchecked."""
    dt = dynamics.check_dt(dt, where)
    for name in ("tau_m", "tau_w", "R"):
        dynamics.check_positive(getattr(p, name), name, where)
    t_ref = dynamics.concrete(p.t_ref)
    if t_ref is not None and not np.all(dt <= t_ref):
        raise ValueError(
            f"{where}: needs dt <= t_ref (one spike per step at most), got dt={dt}, t_ref={p.t_ref}"
        )
    dynamics.check_below(p.V_r, p.theta, ("V_r", "theta"), where)
    for name in ("E_L", "b"):  # a nan one makes V or w nan: a silent neuron
        dynamics.check_finite(getattr(p, name), name, where)


def simulate(
    current: Array, params: ALIFParams = DEFAULT, *, dt: float = 0.1, state=None
) -> ALIFState:
    """Run the population over current (T, ...) nA from ``state`` (rest by default).

    Returns the trace, each field (T, *population shape); absolute spike times are
    ``k * dt + t_spike`` at step k (see :func:`spike_time_array`). A ValueError names
    concrete parameters out of range (:func:`check_params`) and shapes that do not broadcast
    (:func:`~nnjax.brain.dynamics.check_population`).
    """
    where = "adaptive_lif.simulate"
    current = dynamics.check_time_input(current, where)
    dt = dynamics.check_dt(dt, where)
    check_params(params, dt, where)
    dynamics.check_population(current, params, state, where)
    if state is None:
        state = init_state(current.shape[1:], params, dtype=dynamics.state_dtype(current, params))
    return dynamics.run(step, state, current, params, dt)


def spike_time_array(trace: ALIFState, dt: float, n_spikes: int) -> tuple[Array, Array]:
    """The first ``n_spikes`` spike times (ms) of every neuron of a trace (T, ...).

    Returns (times (..., n_spikes), valid (..., n_spikes)); times are differentiable in the
    parameters; missing spikes are nan with valid False.
    """
    n_spikes = dynamics.check_count(n_spikes, "n_spikes", "spike_time_array")
    dynamics.check_positive(dt, "dt (ms)", "spike_time_array")  # a concrete dt only
    T = trace.spike.shape[0]
    flat_s = trace.spike.reshape(T, -1).T
    flat_t = trace.t_spike + dt * jnp.arange(T).reshape((T,) + (1,) * (trace.spike.ndim - 1))
    flat_t = flat_t.reshape(T, -1).T

    def first(s, t):
        (idx,) = jnp.nonzero(s > 0, size=n_spikes, fill_value=0)
        valid = jnp.arange(n_spikes) < jnp.sum(s > 0)
        return jnp.where(valid, t[idx], jnp.nan), valid

    times, valid = jax.vmap(first)(flat_s, flat_t)
    shape = trace.spike.shape[1:] + (n_spikes,)
    return times.reshape(shape), valid.reshape(shape)


def fi_curves(
    currents: Array, params: ALIFParams = DEFAULT, *, n_isi: int = 8, duration=500.0, dt=0.1
) -> tuple[Array, Array]:
    """Rates (Hz) of the first ``n_isi`` inter-spike intervals for step currents (nA).

    currents (n,) -> (rates (n, n_isi), valid (n, n_isi)): rates[:, k] = 1000 / ISI_{k+1}
    with the current switched on at t = 0 from rest; valid is False where the neuron fired
    fewer than k + 2 spikes within ``duration`` ms (rate 0 there, nan for a nan current).
    Differentiable in ``params``. ValueError unless dt > 0 and duration >= dt (ms), finite,
    for a current of +-inf or not a number, and when round(duration / dt) x len(currents) is
    above :data:`MAX_STEPS`.
    """
    where = "adaptive_lif.fi_curves"
    currents = dynamics.check_currents(currents, where)
    if currents.ndim != 1:
        raise ValueError(f"{where}: currents must be (n,), got shape {currents.shape}")
    n_isi = dynamics.check_count(n_isi, "n_isi", where)
    dt = dynamics.check_dt(dt, where)
    duration = dynamics.check_dt(duration, where, "duration (ms)")
    n_steps = int(round(duration / dt))
    if n_steps < 1:
        raise ValueError(f"{where}: duration must be at least dt = {dt} ms, got {duration}")
    dynamics.check_grid(
        where, n_steps, currents.size, f"duration {duration:g} ms at dt {dt:g} ms", MAX_STEPS
    )
    check_params(params, dt, where)
    nan = jnp.isnan(currents)  # simulated at 0, read as nan
    drive = jnp.broadcast_to(jnp.where(nan, 0.0, currents), (n_steps,) + currents.shape)
    tr = simulate(drive, params, dt=dt)
    times, valid = spike_time_array(tr, dt, n_isi + 1)
    isi = jnp.diff(times, axis=-1)
    ok = valid[..., 1:]
    rates = jnp.where(ok, 1000.0 / jnp.where(ok, isi, 1.0), 0.0)
    return jnp.where(nan[:, None], jnp.nan, rates), ok & ~nan[:, None]
