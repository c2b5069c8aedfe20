"""The adaptive exponential integrate-and-fire neuron (AdEx; Brette & Gerstner 2005).

Units: ms, mV, pF, nS, pA (so nS * mV = pA and pA / pF = mV/ms).

    C dV/dt = -g_L (V - E_L) + g_L Delta_T exp((V - V_T) / Delta_T) - w + I
    tau_w dw/dt = a (V - E_L) - w
    when V >= V_peak:  V -> V_r,  w -> w + b

Integrated with forward Euler at step dt (Brette & Gerstner's and Naud et al.'s scheme; a
spike is registered at the end of the step in which V passes V_peak). The exponential is
evaluated at min(V, V_peak), so it cannot overflow and nothing changes below the cut-off.
Euler's error grows with dt: over 1 s of Naud et al.'s tonic cell at its step current, 103
spikes at dt = 0.01 ms, 100 at 0.1 ms, 83 at 1 ms, 50 at 5 ms (dt of 0.1 ms or less is
usual). From dt = tau_m = C / g_L (or tau_w) on, Euler's leak factor 1 - dt / tau is 0,
then negative: V and w land on or overshoot their fixed point each step and the model is no
longer the ODE (Brette & Gerstner's cell at 800 pA fires 24 spikes in 1 s at dt = 15 ms,
17 at 0.1 ms): :func:`simulate` and the network refuse dt >= min(tau_m, tau_w)
(:func:`check_euler_dt`).

Gradients: the spike is :func:`nnjax.brain.surrogate.spike` of V - V_peak (mV), so dL/dV
flows through the surrogate; the reset, V -> V_r and the jump w += b s alike, uses
stop_gradient(spike) (``detach_reset``), so the jump carries dL/db exactly for a fixed spike
pattern. Through the jump the surrogate would feed each spike's sensitivity into the next
upswing, where Euler's Jacobian exceeds 1, and the gradient would grow by orders of
magnitude per spike (with only the reset detached, the derivative of the spike count in
the scale of an 800 pA step was about -1e9 after 300 ms and 8e21 after 1 s). The argument of
the surrogate is in mV: choose ``slope`` of order 1 per mV (the default slopes are per unit).

Parameter sets: :data:`BRETTE_GERSTNER_2005` (regular spiking, the paper's fit to a
detailed pyramidal-cell model) and :data:`NAUD_2008` (Naud, Marcille, Clopath & Gerstner
2008, Biol Cybern 99:335, Table 1: the firing patterns and the step current of each).
"""

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from nnjax.brain import dynamics
from nnjax.brain.surrogate import check_surrogate, spike
from nnjax.layers.checks import check_dtype

Array = jax.Array

EXP_CAP = 40.0
"""Largest exponent (V - V_T) / Delta_T evaluated; above (V_peak - V_T) / Delta_T for every
published set (25 for Naud et al., 35 for V_peak = 20 mV), so it only guards odd inputs."""


class AdExParams(NamedTuple):
    """AdEx parameters (a pytree; each field a float or a per-neuron array).

    C (pF), g_L (nS), E_L (mV), V_T (mV), Delta_T (mV), a (nS), tau_w (ms), b (pA),
    V_r (mV), V_peak (mV). Defaults: Brette & Gerstner 2005's regular-spiking cell, cut at
    V_peak = 0 mV.
    """

    C: Any = 281.0
    g_L: Any = 30.0
    E_L: Any = -70.6
    V_T: Any = -50.4
    Delta_T: Any = 2.0
    a: Any = 4.0
    tau_w: Any = 144.0
    b: Any = 80.5
    V_r: Any = -70.6
    V_peak: Any = 0.0


class AdExState(NamedTuple):
    """V (mV), w (pA) and the step's spike (0/1), each of the population's shape."""

    V: Array
    w: Array
    spike: Array


BRETTE_GERSTNER_2005 = AdExParams()
"""Regular spiking: C 281 pF, g_L 30 nS, E_L -70.6, V_T -50.4, Delta_T 2 mV, a 4 nS,
tau_w 144 ms, b 80.5 pA, V_r = E_L (Brette & Gerstner 2005)."""


def _naud(C, g_L, E_L, a, tau_w, b, V_r, current):
    return AdExParams(C, g_L, E_L, -50.0, 2.0, a, tau_w, b, V_r, 0.0), current


NAUD_2008: dict[str, tuple[AdExParams, float]] = {
    "tonic": _naud(200.0, 10.0, -70.0, 2.0, 30.0, 0.0, -58.0, 500.0),
    "adapting": _naud(200.0, 12.0, -70.0, 2.0, 300.0, 60.0, -58.0, 500.0),
    "initial_burst": _naud(130.0, 18.0, -58.0, 4.0, 150.0, 120.0, -50.0, 400.0),
    "regular_bursting": _naud(200.0, 10.0, -58.0, 2.0, 120.0, 100.0, -46.0, 210.0),
    "delayed_accelerating": _naud(200.0, 12.0, -70.0, -10.0, 300.0, 0.0, -58.0, 300.0),
    "delayed_regular_bursting": _naud(100.0, 10.0, -65.0, -10.0, 90.0, 30.0, -47.0, 110.0),
    "transient": _naud(100.0, 10.0, -65.0, 10.0, 90.0, 100.0, -47.0, 180.0),
    "irregular": _naud(100.0, 12.0, -60.0, -11.0, 130.0, 30.0, -48.0, 160.0),
}
"""Naud et al. 2008, Table 1: name -> (parameters, step current in pA). V_T = -50 mV and
Delta_T = 2 mV throughout; V_peak = 0 mV."""


def init_state(shape=(), params: AdExParams = BRETTE_GERSTNER_2005, *, dtype=None) -> AdExState:
    """Rest: V = E_L, w = 0, no spike; fields of ``shape`` broadcast with the parameters.
    ValueError for a dtype that is not floating (an int32 V) and a concrete E_L not finite."""
    dtype = jnp.result_type(float) if dtype is None else check_dtype("adex.init_state", dtype)
    dynamics.check_finite(params.E_L, "E_L", "adex.init_state")
    shape = dynamics.batch_shape(shape, params, "adex.init_state")
    V = jnp.broadcast_to(jnp.asarray(params.E_L, dtype), shape)
    return AdExState(V, jnp.zeros(shape, dtype), jnp.zeros(shape, dtype))


def step(
    state: AdExState,
    current: Array,
    params: AdExParams,
    dt: float,
    *,
    surrogate: str = "fast_sigmoid",
    slope: float | None = 1.0,
    detach_reset: bool = True,
) -> AdExState:
    """One Euler step of the whole population: current (pA) broadcast against the state.

    A ValueError for a current or a parameter whose shape does not broadcast to the state's
    or would widen it, and for a dt that is not a scalar (static shapes: checked under jit
    too), and for concrete parameters or dt out of range (:func:`_check_params`,
    :func:`check_euler_dt`; traced ones, as in a scan, pass unchecked)."""
    dynamics.check_step_dt(dt, "adex.step")  # a scalar; concrete dt > 0, traced passes
    dynamics.check_step_input("adex.step", state, current, params)
    _check_params(params, "adex.step")
    if dynamics.concrete(dt) is not None:  # dt >= tau ran silently here, refused in simulate
        check_euler_dt(params, float(dt), "adex.step")
    p = params
    V, w = state.V, state.w
    x = jnp.minimum((jnp.minimum(V, p.V_peak) - p.V_T) / p.Delta_T, EXP_CAP)
    dV = (-p.g_L * (V - p.E_L) + p.g_L * p.Delta_T * jnp.exp(x) - w + current) / p.C
    dw = (p.a * (V - p.E_L) - w) / p.tau_w
    V1 = V + dt * dV
    w1 = w + dt * dw
    s = spike(V1 - p.V_peak, surrogate, slope)
    r = jax.lax.stop_gradient(s) if detach_reset else s
    # (1 - r) V1 + r V_r, not V1 + (V_r - V1) r: V1 can be ~1e10 one step past the peak
    return AdExState(V1 * (1.0 - r) + p.V_r * r, w1 + p.b * r, s)


def simulate(
    current: Array,
    params: AdExParams = BRETTE_GERSTNER_2005,
    *,
    dt: float = 0.1,
    state: AdExState | None = None,
    surrogate: str = "fast_sigmoid",
    slope: float | None = 1.0,
) -> AdExState:
    """Run the population over current (T, ...) pA from ``state`` (rest by default).

    Returns the trace, each field (T, *population shape), the population shape being the
    input's trailing shape broadcast with the parameters' (and equal to ``state``'s). A
    ValueError names concrete parameters out of range (:func:`_check_params`), a dt at or
    above a time constant (:func:`check_euler_dt`) and shapes that
    do not broadcast (:func:`~nnjax.brain.dynamics.check_population`).
    """
    current = dynamics.check_time_input(current, "adex.simulate")
    dt = dynamics.check_dt(dt, "adex.simulate")
    k = check_surrogate(surrogate, slope)
    _check_params(params, "adex.simulate")
    check_euler_dt(params, dt, "adex.simulate")
    dynamics.check_population(current, params, state, "adex.simulate")
    if state is None:
        state = init_state(current.shape[1:], params, dtype=dynamics.state_dtype(current, params))
    return dynamics.run(_Stepper(surrogate, k), state, current, params, dt)


class _Stepper(NamedTuple):
    """:func:`step` with its surrogate fixed: hashable, so :func:`dynamics.run` caches it."""

    surrogate: str
    slope: float

    def __call__(self, state, current, params, dt):
        return step(state, current, params, dt, surrogate=self.surrogate, slope=self.slope)


def check_euler_dt(p: AdExParams, dt: float, where: str):
    """A ValueError unless dt < min(C / g_L, tau_w) for every neuron (concrete parameters;
    traced ones pass): forward Euler past a time constant overshoots the fixed point."""
    C, g_L, tau_w = (dynamics.concrete(v) for v in (p.C, p.g_L, p.tau_w))
    if C is None or g_L is None or tau_w is None:
        return
    tau = float(np.min(np.minimum(C / g_L, tau_w)))
    if not dt < tau:
        raise ValueError(
            f"{where}: dt must be below the fastest time constant min(C / g_L, tau_w) = "
            f"{tau:g} ms (forward Euler overshoots past it), got dt={dt:g}"
        )


def _check_params(p: AdExParams, where: str):
    """ValueErrors for concrete parameters that break the model (any element of an array):
    C, g_L, Delta_T, tau_w finite and > 0; V_r < V_peak, both finite; E_L, V_T, a, b finite
    (a nan one would make V or w nan: a silent neuron). a and b may have either sign (Naud et
    al.'s delayed-accelerating and irregular cells have a < 0; b < 0 is a spike-triggered
    depolarisation). Traced ones pass."""
    for name in ("C", "g_L", "Delta_T", "tau_w"):
        dynamics.check_positive(getattr(p, name), name, where)
    dynamics.check_below(p.V_r, p.V_peak, ("V_r", "V_peak"), where)
    for name in ("E_L", "V_T", "a", "b"):
        dynamics.check_finite(getattr(p, name), name, where)
