"""The Hodgkin–Huxley model of the squid giant axon, integrated with RK4 under ``lax.scan``.

C dV/dt = I - gNa m^3 h (V - ENa) - gK n^4 (V - EK) - gL (V - EL)
dx/dt   = phi (alpha_x(V) (1 - x) - beta_x(V) x),   x in {m, h, n},
phi = 3^((T_celsius - 6.3) / 10).

Standard parameters (Hodgkin & Huxley 1952, in the modern convention with rest at -65 mV):
C = 1 uF/cm^2; gNa = 120, gK = 36, gL = 0.3 mS/cm^2; ENa = 50, EK = -77, EL = -54.387 mV.
Rate functions (1/ms, V in mV):

alpha_m = 0.1 (V + 40) / (1 - e^{-(V + 40)/10}),   beta_m = 4 e^{-(V + 65)/18}
alpha_h = 0.07 e^{-(V + 65)/20},                    beta_h = 1 / (1 + e^{-(V + 35)/10})
alpha_n = 0.01 (V + 55) / (1 - e^{-(V + 55)/10}),  beta_n = 0.125 e^{-(V + 65)/80}

Units: ms, mV, uA/cm^2, mS/cm^2, uF/cm^2; firing rates in Hz. Inputs (T, ...) broadcast
over any batch of neurons. :class:`HHParams` is a pytree (fields may be per-neuron arrays)
passed as a traced argument, so populations can be heterogeneous and ``jax.grad`` reaches
every conductance. The network-facing form is ``step(state, current, params, dt) -> state``.
Temperatures below absolute zero (:data:`ABSOLUTE_ZERO`) are refused; :data:`MAX_STEPS`
caps the step count of :func:`fi_curve` and :func:`resting_potential`.
"""

import functools
import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from nnjax.brain import dynamics
from nnjax.layers.checks import check_dtype

Array = jax.Array

ABSOLUTE_ZERO = -273.15
"""The lowest temperature (degrees C) HHParams.celsius may hold; phi = 3^((T - 6.3) / 10) is
finite below it, so nothing else would stop it."""

MAX_STEPS = 10_000_000
"""The most time steps, round(duration / dt), of :func:`fi_curve` and
:func:`resting_potential`: 100 s at dt = 0.01 ms, 200 times the default 500 ms. Memory is 4
bytes a step for fi_curve (plus running statistics per current), about 20 for
resting_potential's trace; each step is 4 RK4 evaluations. A duration of 1e12 ms (1e14
steps) failed with an OverflowError (fi_curve) or an out-of-memory error."""


class HHParams(NamedTuple):
    """Membrane constants (the standard squid-axon values by default).

    A pytree, traced rather than static: any field may be an array that broadcasts against
    the batch of neurons (a heterogeneous population, e.g. ``HHParams(gNa=jnp.array([100.,
    120.]))``), and ``jax.grad`` reaches every field. Units: C uF/cm^2; gNa, gK, gL mS/cm^2;
    ENa, EK, EL mV; celsius degrees C.
    """

    C: Any = 1.0
    gNa: Any = 120.0
    gK: Any = 36.0
    gL: Any = 0.3
    ENa: Any = 50.0
    EK: Any = -77.0
    EL: Any = -54.387
    celsius: Any = 6.3


STANDARD = HHParams()
"""The standard squid-axon parameters at 6.3 C."""


class HHState(NamedTuple):
    """V (mV) and the gates m, h, n; each of the batch shape (a trace adds a leading T)."""

    V: Array
    m: Array
    h: Array
    n: Array


def _vtrap(x: Array) -> Array:
    """x / (1 - e^{-x/10}), finite at x = 0 (where it equals 10)."""
    z = -x / 10.0
    small = jnp.abs(z) < 1e-4
    zs = jnp.where(small, 1.0, z)
    exprel = jnp.where(small, 1.0 + z / 2.0 + z * z / 6.0, jnp.expm1(zs) / zs)
    return 10.0 / exprel


def rates(V: Array) -> tuple[Array, Array, Array, Array, Array, Array]:
    """(alpha_m, beta_m, alpha_h, beta_h, alpha_n, beta_n) at V (mV), in 1/ms at 6.3 C."""
    am = 0.1 * _vtrap(V + 40.0)
    bm = 4.0 * jnp.exp(-(V + 65.0) / 18.0)
    ah = 0.07 * jnp.exp(-(V + 65.0) / 20.0)
    bh = 1.0 / (1.0 + jnp.exp(-(V + 35.0) / 10.0))
    an = 0.01 * _vtrap(V + 55.0)
    bn = 0.125 * jnp.exp(-(V + 65.0) / 80.0)
    return am, bm, ah, bh, an, bn


def steady_state(V: Array) -> HHState:
    """Gates at their steady state x_inf = alpha / (alpha + beta) for a clamped V."""
    V = jnp.asarray(V)
    if not jnp.issubdtype(V.dtype, jnp.floating):  # a float32 V stays float32 under x64
        V = V.astype(jnp.result_type(float))
    am, bm, ah, bh, an, bn = rates(V)
    return HHState(V, am / (am + bm), ah / (ah + bh), an / (an + bn))


def derivatives(state: HHState, current: Array, p: HHParams = STANDARD) -> HHState:
    """d(V, m, h, n)/dt of the model equations (module docstring)."""
    V, m, h, n = state
    am, bm, ah, bh, an, bn = rates(V)
    phi = 3.0 ** ((p.celsius - 6.3) / 10.0)
    i_ion = p.gNa * m**3 * h * (V - p.ENa) + p.gK * n**4 * (V - p.EK) + p.gL * (V - p.EL)
    return HHState(
        (current - i_ion) / p.C,
        phi * (am * (1.0 - m) - bm * m),
        phi * (ah * (1.0 - h) - bh * h),
        phi * (an * (1.0 - n) - bn * n),
    )


def rk4_step(state: HHState, current: Array, dt: float, p: HHParams = STANDARD) -> HHState:
    """One classical Runge–Kutta step, the current held constant over the step.

    A ValueError for a current, a parameter or dt whose shape does not broadcast to the
    state's or would widen it (dt a scalar; static shapes: checked under jit too), and for
    concrete parameters or dt out of range (:func:`_check_params`; traced ones, as in a
    scan, pass unchecked)."""
    return _rk4_step(state, current, dt, p, "hodgkin_huxley.rk4_step")


def _rk4_step(state: HHState, current: Array, dt: float, p: HHParams, where: str) -> HHState:
    dynamics.check_step_dt(dt, where)  # a scalar; concrete dt > 0
    dynamics.check_step_input(where, state, current, p)
    _check_params(p, where)

    def add(s, k, c):
        return HHState(*(a + c * b for a, b in zip(s, k)))

    k1 = derivatives(state, current, p)
    k2 = derivatives(add(state, k1, dt / 2), current, p)
    k3 = derivatives(add(state, k2, dt / 2), current, p)
    k4 = derivatives(add(state, k3, dt), current, p)
    return HHState(
        *(s + dt / 6.0 * (a + 2 * b + 2 * c + d) for s, a, b, c, d in zip(state, k1, k2, k3, k4))
    )


def step(state: HHState, current: Array, params: HHParams = STANDARD, dt: float = 0.01):
    """The network-facing step, ``(state, current, params, dt) -> state``: one RK4 step of
    every neuron in the batch (current uA/cm^2 broadcast against the state; dt ms). Checks
    as :func:`rk4_step`'s."""
    return _rk4_step(state, current, dt, params, "hodgkin_huxley.step")


def init_state(shape=(), params: HHParams = STANDARD, *, V0=-65.0, dtype=None) -> HHState:
    """A batch of neurons at V0 (mV) with the gates at their steady state; each field of
    ``shape`` broadcast with the parameters' shapes (V0 may be an array too). ValueError for
    a dtype that is not floating (an int32 V) and a concrete V0 not finite."""
    dtype = (
        jnp.result_type(float) if dtype is None else check_dtype("hodgkin_huxley.init_state", dtype)
    )
    dynamics.check_finite(V0, "V0 (mV)", "hodgkin_huxley.init_state")
    shape = dynamics.batch_shape(shape, (*params, V0), "hodgkin_huxley.init_state")
    return steady_state(jnp.broadcast_to(jnp.asarray(V0, dtype), shape))


def _check(current, dt, params, where):
    """The current as a floating (T, ...) array with no nan or inf (when concrete), dt > 0
    and finite, and the concrete params in range: C > 0, every conductance >= 0 (0 blocks
    the channel, as TTX blocks gNa)."""
    current = dynamics.check_time_input(current, where)
    dynamics.check_dt(dt, where)
    _check_params(params, where)
    return current


def _check_params(params: HHParams, where: str) -> None:
    """C > 0, conductances >= 0, reversal potentials and temperature finite (a nan one would
    make V nan at the first step, which :func:`_diverged` would blame on dt), celsius at or
    above :data:`ABSOLUTE_ZERO` (below it the gates still moved, slowed by phi)."""
    dynamics.check_positive(params.C, "C (uF/cm^2)", where)
    for name in ("gNa", "gK", "gL"):
        dynamics.check_positive(getattr(params, name), f"{name} (mS/cm^2)", where, allow_zero=True)
    for name, unit in (("ENa", "mV"), ("EK", "mV"), ("EL", "mV"), ("celsius", "C")):
        dynamics.check_finite(getattr(params, name), f"{name} ({unit})", where)
    t = dynamics.concrete(params.celsius)
    if t is not None and not np.all(t >= ABSOLUTE_ZERO):
        shown = t.item() if t.ndim == 0 else f"{t[t < ABSOLUTE_ZERO].ravel()[0]} (among {t.shape})"
        raise ValueError(
            f"{where}: celsius (C) must be at or above absolute zero ({ABSOLUTE_ZERO}), got {shown}"
        )
    dtype = np.result_type(jnp.asarray(params.celsius).dtype, jnp.asarray(params.C).dtype)
    phi = _phi(params)
    if phi is not None and not phi < float(np.finfo(dtype).max):
        hot = 6.3 + 10 * math.log(float(np.finfo(dtype).max), 3)
        raise ValueError(
            f"{where}: celsius (C) = {_shown(params.celsius)} makes phi = 3^((T - 6.3) / 10) "
            f"overflow {np.dtype(dtype).name} (finite up to {hot:.0f} C): no dt integrates it"
        )


def simulate(
    current: Array, *, dt: float = 0.01, params: HHParams = STANDARD, V0: float = -65.0
) -> HHState:
    """Integrate from the steady state at ``V0``: current (T, ...) uA/cm^2 -> trace, each
    field (T, ...) (the state at the end of every step). The batch shape is the current's
    trailing shape broadcast with the parameters' shapes; params are traced, so ``jax.grad``
    reaches them and new values do not recompile. A run whose V diverges (dt too large for
    RK4) is a ValueError naming the step; called under ``jit``/``vmap``/``grad`` (a traced
    trace) that check cannot run, and the trace holds the inf/nan: check
    ``jnp.isfinite(trace.V)`` there."""
    current = _check(current, dt, params, "hodgkin_huxley.simulate")
    dynamics.check_finite(V0, "V0 (mV)", "hodgkin_huxley.simulate")
    dynamics.check_population(current, (params, V0), None, "hodgkin_huxley.simulate")
    trace = _simulate(current, float(dt), params, V0)
    if not isinstance(trace.V, jax.core.Tracer) and not bool(jnp.isfinite(trace.V).all()):
        finite = jnp.isfinite(trace.V).reshape(len(current), -1).all(axis=1)  # on the device
        _diverged("hodgkin_huxley.simulate", int(jnp.argmin(finite)) + 1, dt, "", params)
    return trace


def _diverged(where: str, step: int, dt: float, what: str = "", params=None):  # step 1: first
    """RK4 is explicit: on the HH equations it diverges (V to 1e6 mV, then inf and nan) once
    dt passes a limit set by the fastest gate. The largest finite dt over 0-200 uA/cm^2: 0.08
    ms up to 20 C (0.09 diverges at 6.3 C); warmer, the gates run phi times faster: 0.37 / phi
    at 20 C, 0.55 / phi at 30 C, 0.65-0.7 / phi from 35 C to 100 C (0.024 ms at 37 C). Advised
    above 20 C: min(0.08, 0.35 / phi) below 32 C, 0.55 / phi above, finite wherever measured
    (0.6 / phi, advised before, was 0.11 ms at 22 C, where 0.072 ms diverged)."""
    phi = _phi(params)
    warm = " (the standard neuron stays finite up to 0.08 ms; 0.01-0.025 ms is usual)"
    if phi is not None and phi > 4.5:  # above 20 C
        cool = phi < 3.0 ** ((32.0 - 6.3) / 10.0)  # below 32 C
        warm = (
            f"; at celsius = {_shown(params.celsius)} the gates run phi = 3^((T - 6.3) / 10) = "
            f"{phi:.3g} times faster than at 6.3 C, and dt must be below about "
            f"{'min(0.08, 0.35 / phi)' if cool else '0.55 / phi'} = "
            f"{min(0.08, 0.35 / phi) if cool else 0.55 / phi:.2g} ms"
        )
    raise ValueError(
        f"{where}: V became inf/nan after {step} steps (t = {step * dt:g} ms){what}: RK4 "
        f"diverges on these dynamics at dt = {dt:g} ms; use a smaller dt{warm}"
    )


def _phi(params) -> float | None:
    """The largest temperature factor phi = 3^((T - 6.3) / 10) of concrete ``params``."""
    t = None if params is None else dynamics.concrete(params.celsius)
    if t is None:
        return None
    with np.errstate(over="ignore"):
        return float(np.max(3.0 ** ((np.asarray(t, np.float64) - 6.3) / 10.0)))


def _shown(v) -> str:
    a = np.asarray(v)
    return f"{a.item():g}" if a.ndim == 0 else f"up to {a.max():g} (among {a.shape})"


@functools.partial(jax.jit, static_argnums=(1,))
def _simulate(current, dt, params, V0):
    s0 = init_state(current.shape[1:], params, V0=V0, dtype=current.dtype)

    def body(s, i_t):
        s = rk4_step(s, i_t, dt, params)
        return s, s

    return jax.lax.scan(body, s0, current)[1]


def resting_potential(*, params: HHParams = STANDARD, duration: float = 200.0, dt=0.01):
    """V (mV) after ``duration`` ms with no input, from V = -65 mV with steady-state gates.
    ValueError unless dt and duration are finite and > 0 with duration >= dt (ms) and
    duration / dt is at most :data:`MAX_STEPS`."""
    where = "hodgkin_huxley.resting_potential"
    dt = dynamics.check_dt(dt, where)
    duration = dynamics.check_dt(duration, where, "duration (ms)")
    if duration < dt:  # not round(duration / dt) < 1: 0.006 ms at dt 0.01 ran a whole step
        raise ValueError(f"{where}: duration must be at least dt = {dt} ms, got {duration}")
    n = int(round(duration / dt))
    _check_steps(where, n, duration, dt)
    return simulate(jnp.zeros((n,)), dt=dt, params=params).V[-1]


class FIResult(NamedTuple):
    """:func:`fi_curve` output, each (n_currents,): the rate (Hz, 0 unless firing is
    sustained), the number of spikes in the measuring window, and whether firing lasted.
    A spike is a peak of at least ``prominence`` mV (:func:`fi_curve`), so subthreshold
    ringing counts too when the window starts early: with discard = 0, n_spikes is 2 at
    2 uA/cm^2 (a 4.9 mV bump at -60 mV, no action potential) and 6 at 6.2 (3 action
    potentials). The default discard of 100 ms lets the ringing die out first."""

    rate: Array
    n_spikes: Array
    sustained: Array


def fi_curve(
    currents: Array,
    *,
    duration: float = 500.0,
    discard: float = 100.0,
    dt: float = 0.01,
    params: HHParams = STANDARD,
    prominence: float = 2.0,
) -> FIResult:
    """Steady firing rate for step currents switched on at t = 0 from rest (Hz).

    A spike is a local maximum of V that rises at least ``prominence`` mV above the lowest V
    since the previous spike (peak detection with a prominence criterion, no fixed voltage
    threshold: near the upper Hopf point, I ~= 154.5 uA/cm^2, the oscillation is a few mV
    wide and never crosses 0 mV). Its time is the vertex of the parabola through the three
    samples around the peak. Over the window [discard, duration] ms the rate is
    1000 (n - 1) / (t_last - t_first) Hz (times in ms); firing counts as sustained when
    n >= 2 and the last spike is no more than two mean inter-spike intervals before the
    end, so a transient burst, or an oscillation that decays into depolarisation block,
    reads 0. Only running statistics are kept, not the traces: memory is O(n_currents).
    (``params`` are traced, but the parabolic peak times jitter by O(dt^2) as a peak moves
    from one sample to the next, so a gradient of the rate is only approximate; differentiate
    :func:`simulate` instead.) ValueError for currents that are not finite numbers, a
    duration below dt and more than :data:`MAX_STEPS` steps.
    """
    where = "hodgkin_huxley.fi_curve"
    currents = dynamics.check_currents(currents, where, nan=None)  # a string named no function
    currents = jnp.atleast_1d(jnp.asarray(currents, jnp.result_type(float)))
    dynamics.check_finite_list(currents, where, "currents")  # not a time series
    _check_params(params, "hodgkin_huxley.fi_curve")
    duration = dynamics.check_number(duration, "duration (ms)", "hodgkin_huxley.fi_curve")
    discard = dynamics.check_number(discard, "discard (ms)", "hodgkin_huxley.fi_curve")
    prominence = dynamics.check_number(prominence, "prominence (mV)", "hodgkin_huxley.fi_curve")
    if not 0 <= discard < duration < math.inf:
        raise ValueError(
            f"hodgkin_huxley.fi_curve: need 0 <= discard < duration, duration finite (ms), "
            f"got discard={discard}, duration={duration}"
        )
    dt = dynamics.check_dt(dt, "hodgkin_huxley.fi_curve")
    if duration < dt:  # as resting_potential's: round(duration / dt) >= 1 let 0.6 dt pass
        raise ValueError(
            f"hodgkin_huxley.fi_curve: duration must be at least dt = {dt} ms, got {duration}"
        )
    _check_steps("hodgkin_huxley.fi_curve", int(round(duration / dt)), duration, dt)
    if not prominence > 0:
        raise ValueError(f"hodgkin_huxley.fi_curve: prominence must be > 0 mV, got {prominence}")
    res, bad = _fi_curve(currents, params, float(duration), float(discard), float(dt), prominence)
    if not isinstance(bad, jax.core.Tracer):
        bad = np.asarray(bad).reshape(-1)  # per current: the step V became inf/nan, or -1
        if (bad >= 0).any():
            i = int(np.argmax(bad >= 0))
            at = f" for the current {float(currents.reshape(-1)[i]):g} uA/cm^2"
            _diverged("hodgkin_huxley.fi_curve", int(bad[i]) + 1, dt, at, params)
    return res


def _check_steps(where: str, n: int, duration: float, dt: float) -> None:
    if n > MAX_STEPS:
        raise ValueError(
            f"{where}: duration {duration:g} ms at dt {dt:g} ms is {n} steps, above "
            f"MAX_STEPS = {MAX_STEPS}"
        )


def _peak(v0, v1, v2, k, dt):
    """Is the middle sample v1 (time k dt) a local maximum; if so, the parabola's vertex
    time. v0, v1, v2 are V at steps k - 1, k, k + 1."""
    is_max = (v1 > v0) & (v1 >= v2)
    curv = v0 - 2.0 * v1 + v2  # < 0 at a strict maximum
    safe = jnp.where(is_max & (curv < 0), curv, -1.0)
    offset = jnp.where(is_max & (curv < 0), 0.5 * (v0 - v2) / safe, 0.0)
    return is_max, (k + offset) * dt


@functools.partial(jax.jit, static_argnums=(2, 3, 4))
def _fi_curve(currents, params, duration, discard, dt, prominence):
    n_steps = int(round(duration / dt))
    s0 = init_state(currents.shape, params, dtype=currents.dtype)
    zeros = jnp.zeros(s0.V.shape, currents.dtype)

    def body(carry, k):
        (s, v_prev, trough, n, t_first, t_last), bad = carry
        s_new = rk4_step(s, currents, dt, params)
        bad = jnp.where((bad < 0) & ~jnp.isfinite(s_new.V), k.astype(jnp.int32), bad)
        # v_prev, s.V, s_new.V are V at times (k - 1) dt, k dt, (k + 1) dt
        is_max, t_peak = _peak(v_prev, s.V, s_new.V, k, dt)
        spike = is_max & (s.V - trough >= prominence)
        counted = spike & (t_peak >= discard)
        n = n + counted
        t_first = jnp.where(counted & (n == 1), t_peak, t_first)
        t_last = jnp.where(counted, t_peak, t_last)
        trough = jnp.where(spike, s.V, jnp.minimum(trough, s_new.V))
        return ((s_new, s.V, trough, n, t_first, t_last), bad), None

    init = ((s0, s0.V, s0.V, zeros, zeros, zeros), jnp.full(s0.V.shape, -1, jnp.int32))
    ks = jnp.arange(n_steps, dtype=currents.dtype)
    ((_, _, _, n, t_first, t_last), bad), _ = jax.lax.scan(body, init, ks)
    isi = jnp.where(n >= 2, (t_last - t_first) / jnp.maximum(n - 1, 1), jnp.inf)
    sustained = (n >= 2) & (duration - t_last <= 2.0 * isi)
    rate = jnp.where(sustained, 1000.0 / jnp.where(sustained, isi, 1.0), 0.0)
    rate = jnp.where(bad >= 0, jnp.nan, rate)  # diverged: nan (traced), else fi_curve raises
    return FIResult(rate, n, sustained), bad
