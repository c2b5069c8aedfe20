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

Units: ms, mV, uA/cm^2; rates in Hz. Inputs (T, ...) broadcast over any batch of neurons.
"""

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp

Array = jax.Array


class HHParams(NamedTuple):
    """Membrane constants (the standard squid-axon values by default)."""

    C: float = 1.0
    gNa: float = 120.0
    gK: float = 36.0
    gL: float = 0.3
    ENa: float = 50.0
    EK: float = -77.0
    EL: float = -54.387
    celsius: float = 6.3


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
    V = jnp.asarray(V, jnp.result_type(float))
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
    """One classical Runge–Kutta step, the current held constant over the step."""

    def add(s, k, c):
        return HHState(*(a + c * b for a, b in zip(s, k)))

    k1 = derivatives(state, current, p)
    k2 = derivatives(add(state, k1, dt / 2), current, p)
    k3 = derivatives(add(state, k2, dt / 2), current, p)
    k4 = derivatives(add(state, k3, dt), current, p)
    return HHState(
        *(s + dt / 6.0 * (a + 2 * b + 2 * c + d) for s, a, b, c, d in zip(state, k1, k2, k3, k4))
    )


def _check(current, dt, where):
    current = jnp.asarray(current)
    if current.ndim < 1:
        raise ValueError(f"{where}: current must have a leading time axis (T, ...)")
    if not jnp.issubdtype(current.dtype, jnp.floating):
        current = current.astype(jnp.result_type(float))
    if not dt > 0:
        raise ValueError(f"{where}: dt must be > 0, got {dt}")
    return current


def simulate(
    current: Array, *, dt: float = 0.01, params: HHParams = STANDARD, V0: float = -65.0
) -> HHState:
    """Integrate from the steady state at ``V0``: current (T, ...) uA/cm^2 -> trace, each
    field (T, ...) (the state at the end of every step)."""
    current = _check(current, dt, "hodgkin_huxley.simulate")
    return _simulate(current, dt, params, V0)


@functools.partial(jax.jit, static_argnums=(1, 2))
def _simulate(current, dt, params, V0):
    s0 = steady_state(jnp.full(current.shape[1:], V0, current.dtype))

    def step(s, i_t):
        s = rk4_step(s, i_t, dt, params)
        return s, s

    return jax.lax.scan(step, s0, current)[1]


def resting_potential(*, params: HHParams = STANDARD, duration: float = 200.0, dt=0.01):
    """V (mV) after ``duration`` ms with no input, from V = -65 mV with steady-state gates."""
    n = int(round(duration / dt))
    return simulate(jnp.zeros((n,)), dt=dt, params=params).V[-1]


class FIResult(NamedTuple):
    """:func:`fi_curve` output, each (n_currents,): the rate (Hz, 0 unless firing is
    sustained), the number of spikes in the measuring window, and whether firing lasted."""

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
    threshold: float = 0.0,
) -> FIResult:
    """Steady firing rate for step currents switched on at t = 0 from rest (Hz).

    Spikes are upward crossings of ``threshold`` mV, timed by linear interpolation within a
    step. Over the window [discard, duration] ms the rate is (n - 1) / (t_last - t_first);
    firing counts as sustained when n >= 2 and the last spike is no more than two mean
    inter-spike intervals before the end (so a transient burst that dies out reads 0).
    Only the running statistics are kept, not the traces: memory is O(n_currents).
    """
    currents = jnp.atleast_1d(jnp.asarray(currents, jnp.result_type(float)))
    if not 0 <= discard < duration:
        raise ValueError(f"fi_curve: need 0 <= discard < duration, got {discard}, {duration}")
    if not dt > 0:
        raise ValueError(f"fi_curve: dt must be > 0, got {dt}")
    return _fi_curve(currents, float(duration), float(discard), float(dt), params, threshold)


@functools.partial(jax.jit, static_argnums=(1, 2, 3, 4, 5))
def _fi_curve(currents, duration, discard, dt, params, threshold):
    n_steps = int(round(duration / dt))
    dtype = currents.dtype
    s0 = steady_state(jnp.full(currents.shape, -65.0, dtype))
    zeros = jnp.zeros(currents.shape, dtype)

    def step(carry, k):
        s, n, t_first, t_last = carry
        s_new = rk4_step(s, currents, dt, params)
        up = (s.V < threshold) & (s_new.V >= threshold)
        frac = (threshold - s.V) / jnp.where(up, s_new.V - s.V, 1.0)
        t_cross = (k + frac) * dt
        counted = up & (t_cross >= discard)
        n = n + counted
        t_first = jnp.where(counted & (n == 1), t_cross, t_first)
        t_last = jnp.where(counted, t_cross, t_last)
        return (s_new, n, t_first, t_last), None

    init = (s0, zeros, zeros, zeros)
    (_, n, t_first, t_last), _ = jax.lax.scan(step, init, jnp.arange(n_steps, dtype=dtype))
    isi = jnp.where(n >= 2, (t_last - t_first) / jnp.maximum(n - 1, 1), jnp.inf)
    sustained = (n >= 2) & (duration - t_last <= 2.0 * isi)
    rate = jnp.where(sustained, 1000.0 / jnp.where(sustained, isi, 1.0), 0.0)
    return FIResult(rate, n, sustained)
