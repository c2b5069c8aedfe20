"""The Izhikevich (2003) simple model of spiking neurons.

Units: ms and mV; the current I is in the model's own units (it enters dv/dt directly, so
it is mV/ms; Izhikevich's figures drive it with I of order 10).

    dv/dt = 0.04 v^2 + 5 v + 140 - u + I
    du/dt = a (b v - u)
    when v >= v_peak (30 mV):  v -> c,  u -> u + d

Integrated with forward Euler at step dt (Izhikevich's own code uses two half-steps of
0.5 ms for v); the quadratic is evaluated at min(v, v_peak), so one step past the peak
cannot overflow. The error grows with dt and is not refused: over 1 s of the RS cell at
I = 10, 23 spikes at dt = 0.01-0.5 ms, 22 at 1-2 ms, then 99 at 5 ms and 55 at 9 ms (the
v equation's own time scale near rest is about 1.7 ms, past which Euler overshoots). Keep
dt <= 1 ms, and check a result against a smaller dt. Refused: dt >= 1 / a, u's own time
constant (:func:`check_euler_dt`; there, u and v could run to inf and nan). Spikes are
:func:`nnjax.brain.surrogate.spike` of v - v_peak (mV); the reset, v -> c and u += d s
alike, uses stop_gradient(spike) (``detach_reset``), so u += d s carries dL/dd for a fixed
spike pattern and no gradient runs from one spike's surrogate into the next upswing (it grew
by orders of magnitude per spike there: d(count)/d(input scale) was -6.3e15 after 300 ms of
the RS cell at I = 10, and nan in float32 (1e40 in float64) after 1 s).

:data:`IZHIKEVICH_2003`: the (a, b, c, d) of Fig. 2 of Izhikevich, IEEE Trans. Neural
Networks 14:1569 (2003), for the cortical classes the tests reproduce: regular spiking (RS),
intrinsically bursting (IB), chattering (CH), fast spiking (FS) and low-threshold spiking
(LTS). Start from v = -65 mV, u = b v (the paper's initial condition).
"""

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from nnjax.brain import dynamics
from nnjax.brain.surrogate import check_surrogate, spike
from nnjax.layers.checks import check_dtype

Array = jax.Array


class IzhikevichParams(NamedTuple):
    """a (1/ms), b (1/ms: u's sensitivity to v), c (reset, mV), d (u jump), v_peak (mV);
    u, d and I in mV/ms. A pytree, each field a float or a per-neuron array. Default: RS."""

    a: Any = 0.02
    b: Any = 0.2
    c: Any = -65.0
    d: Any = 8.0
    v_peak: Any = 30.0


class IzhikevichState(NamedTuple):
    """v (mV), the recovery variable u, and the step's spike (0/1), each population-shaped."""

    v: Array
    u: Array
    spike: Array


IZHIKEVICH_2003: dict[str, IzhikevichParams] = {
    "RS": IzhikevichParams(0.02, 0.2, -65.0, 8.0),
    "IB": IzhikevichParams(0.02, 0.2, -55.0, 4.0),
    "CH": IzhikevichParams(0.02, 0.2, -50.0, 2.0),
    "FS": IzhikevichParams(0.1, 0.2, -65.0, 2.0),
    "LTS": IzhikevichParams(0.02, 0.25, -65.0, 2.0),
}
"""Izhikevich 2003, Fig. 2: regular spiking, intrinsically bursting, chattering, fast
spiking, low-threshold spiking."""


def init_state(
    shape=(), params: IzhikevichParams = IZHIKEVICH_2003["RS"], *, v0=-65.0, dtype=None
) -> IzhikevichState:
    """v = v0 (mV), u = b v0, no spike; fields of ``shape`` broadcast with the parameters.
    ValueError for a dtype that is not floating (an int32 v) and a concrete v0 or b not
    finite (a string v0 too)."""
    where = "izhikevich.init_state"
    dtype = jnp.result_type(float) if dtype is None else check_dtype(where, dtype)
    dynamics.check_finite(v0, "v0", where)
    dynamics.check_finite(params.b, "b", where)
    shape = dynamics.batch_shape(shape, params, where)
    v = jnp.broadcast_to(jnp.asarray(v0, dtype), shape)
    return IzhikevichState(v, params.b * v, jnp.zeros(shape, dtype))


def step(
    state: IzhikevichState,
    current: Array,
    params: IzhikevichParams,
    dt: float,
    *,
    surrogate: str = "fast_sigmoid",
    slope: float | None = 1.0,
    detach_reset: bool = True,
) -> IzhikevichState:
    """One Euler step of the whole population; current broadcast against the state.

    A ValueError for a current or a parameter whose shape does not broadcast to the state's
    or would widen it, and for a dt that is not a scalar (static shapes: checked under jit
    too), and for concrete parameters or dt out of range (:func:`check_params`,
    :func:`check_euler_dt`; traced ones, as in a scan, pass unchecked)."""
    dynamics.check_step_dt(dt, "izhikevich.step")  # a scalar; concrete dt > 0
    dynamics.check_step_input("izhikevich.step", state, current, params)
    check_params(params, "izhikevich.step")
    if dynamics.concrete(dt) is not None:
        check_euler_dt(params, float(dt), "izhikevich.step")
    p = params
    v, u = state.v, state.u
    vc = jnp.minimum(v, p.v_peak)
    v1 = v + dt * (0.04 * vc * vc + 5.0 * vc + 140.0 - u + current)
    u1 = u + dt * p.a * (p.b * vc - u)
    s = spike(v1 - p.v_peak, surrogate, slope)
    r = jax.lax.stop_gradient(s) if detach_reset else s
    return IzhikevichState(v1 * (1.0 - r) + p.c * r, u1 + p.d * r, s)


class _Stepper(NamedTuple):
    surrogate: str
    slope: float

    def __call__(self, state, current, params, dt):
        return step(state, current, params, dt, surrogate=self.surrogate, slope=self.slope)


def simulate(
    current: Array,
    params: IzhikevichParams = IZHIKEVICH_2003["RS"],
    *,
    dt: float = 0.1,
    state: IzhikevichState | None = None,
    surrogate: str = "fast_sigmoid",
    slope: float | None = 1.0,
) -> IzhikevichState:
    """Run the population over current (T, ...) from ``state`` (v = -65, u = b v by
    default). Returns the trace, each field (T, *population shape). ValueError for concrete
    parameters outside the model's range (:func:`check_params`) and a dt at or above 1 / a
    (:func:`check_euler_dt`)."""
    where = "izhikevich.simulate"
    current = dynamics.check_time_input(current, where)
    dt = dynamics.check_dt(dt, where)
    k = check_surrogate(surrogate, slope)
    check_params(params, where)
    check_euler_dt(params, dt, where)
    dynamics.check_population(current, params, state, where)
    if state is None:
        state = init_state(current.shape[1:], params, dtype=dynamics.state_dtype(current, params))
    return dynamics.run(_Stepper(surrogate, k), state, current, params, dt)


def check_euler_dt(p: IzhikevichParams, dt: float, where: str) -> None:
    """A ValueError unless dt < 1 / a for every neuron (concrete a; traced passes): u's Euler
    factor 1 - a dt is <= 0 from dt = 1 / a on, so u overshoots its nullcline every step,
    and the cell can diverge with no error, below 2 / a too (the FS cell, a = 0.1, from rest
    at I = 0: |u| about 1e51 after 200 steps of 19 ms, 1e57 of 20 ms, nan by step 1210; at
    I = 10 and 20 ms it stayed bounded)."""
    a = dynamics.concrete(p.a)
    if a is not None and a.size and not dt * float(np.max(a)) < 1.0:
        raise ValueError(
            f"{where}: dt must be below 1 / a = {1.0 / float(np.max(a)):g} ms, the time "
            f"constant of u (forward Euler overshoots past it, and diverges from 2 / a), got "
            f"dt={dt:g}"
        )


def check_params(p: IzhikevichParams, where: str) -> None:
    """ValueErrors for concrete parameters outside the model's range (any element of an
    array; traced ones pass): a (the recovery rate, 1/ms) finite and > 0, the reset c finite
    and below v_peak (else a reset neuron is already past the peak and fires again on the next
    step); b and d may have either sign, finite (a nan one makes u, then v nan: a silent
    neuron)."""
    dynamics.check_positive(p.a, "a", where)
    dynamics.check_below(p.c, p.v_peak, ("c", "v_peak"), where)
    for name in ("b", "d"):
        dynamics.check_finite(getattr(p, name), name, where)
