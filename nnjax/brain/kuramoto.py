"""The Kuramoto model of coupled phase oscillators, integrated with RK4 under ``lax.scan``.

Coupling convention (all-to-all):

    dtheta_i/dt = omega_i + (K / N) sum_j sin(theta_j - theta_i) = omega_i + K r sin(psi - theta_i)

with the order parameter r e^{i psi} = (1/N) sum_j e^{i theta_j}. The mean-field form costs
O(N) per step. On a coupling matrix A (N, N):

    dtheta_i/dt = omega_i + (K / N) sum_j A_ij sin(theta_j - theta_i)
                = omega_i + (K / N) Im(e^{-i theta_i} sum_j A_ij e^{i theta_j})   (O(N^2)).

With A = all ones the two agree. For two oscillators the phase difference phi = theta_1 -
theta_2 obeys dphi/dt = delta_omega - K sin(phi), so they lock iff |delta_omega| <= K, and
otherwise drift at the beat frequency sqrt(delta_omega^2 - K^2).
For Lorentzian natural frequencies of half-width gamma, the stationary order parameter is
r = sqrt(1 - 2 gamma / K) above the critical coupling K_c = 2 gamma, and r = 0 below
(Kuramoto 1975; Strogatz 2000, Physica D 143:1).

Shapes: theta, omega (..., N); a batch of independent networks vmaps over leading axes.

Numbers are real: a concrete bool, string, None or complex value given for a number or an
array of numbers (K, gamma, omega, theta, ...) is a ValueError naming the function and the
argument ("3" ran as K = 3.0, True as 1.0, a complex theta0 lost its imaginary part); a
tracer is checked on its dtype only.
"""

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import ndtri

from nnjax.brain.dynamics import check_count, check_finite, check_flag, check_positive, concrete
from nnjax.layers.checks import check_available, check_dtype

Array = jax.Array


def _real(value, name: str, where: str, *, scalar: bool = False, bool_ok: bool = False) -> None:
    """A ValueError naming ``where: name`` unless ``value`` is a real number or an array of
    them (with ``scalar``, one number; with ``bool_ok``, bools too, as for a 0/1 adjacency
    matrix): a string, a bool, None or a complex value is refused. A tracer passes when its
    dtype is real (its values are unknown)."""
    if isinstance(value, jax.Array | np.ndarray | np.generic):  # tracers too: no copy
        dtype, ndim = value.dtype, value.ndim
    else:
        v = concrete(value)  # None for a string, None, a complex number or an object
        dtype, ndim = (None, None) if v is None else (v.dtype, v.ndim)
    # issubdtype, not dtype.kind: bfloat16's kind is "V" (it was refused as "not a number")
    real = dtype is not None and any(jnp.issubdtype(dtype, t) for t in (jnp.integer, jnp.floating))
    if not (real or (bool_ok and dtype == np.bool_)) or (scalar and ndim):
        what = "a number" if scalar else "a number or an array of numbers"
        kind = "real or bool" if bool_ok else "real, not a bool"
        shown = repr(value)
        shown = shown if len(shown) <= 80 else f"{shown[:77]}..."
        raise ValueError(f"{where}: {name} must be {what} ({kind}), got {shown}")


def _float_dtype(dtype, where: str):
    """``dtype`` (None: the default float) checked as a floating dtype, else a ValueError:
    an int dtype was ignored, a name such as "x" failed as a TypeError."""
    dtype = check_dtype(where, dtype)
    check_available(where, dtype)  # float64 without x64 came back float32 (a UserWarning)
    return dtype or jnp.result_type(float)


def lorentzian_frequencies(n: int, gamma: float = 1.0, omega0: float = 0.0, dtype=None):
    """n deterministic, quantile-spaced draws of a Lorentzian (Cauchy) of half-width gamma:
    omega_i = omega0 + gamma tan(pi ((i + 1/2) / n - 1/2)), i = 0..n-1. Shape (n,).
    ValueError unless gamma is a finite number > 0 and omega0 finite (single real numbers;
    an array of gammas failed in a broadcast), or ``dtype`` is not a floating dtype."""
    n = check_count(n, "n", "lorentzian_frequencies")
    _real(gamma, "gamma", "lorentzian_frequencies", scalar=True)  # True ran as 1
    _real(omega0, "omega0", "lorentzian_frequencies", scalar=True)
    check_positive(gamma, "gamma", "lorentzian_frequencies")
    check_finite(omega0, "omega0", "lorentzian_frequencies")
    q = (jnp.arange(n, dtype=_float_dtype(dtype, "lorentzian_frequencies")) + 0.5) / n
    return omega0 + gamma * jnp.tan(jnp.pi * (q - 0.5))


def gaussian_frequencies(n: int, sigma: float = 1.0, omega0: float = 0.0, dtype=None):
    """n quantile-spaced Gaussian frequencies omega0 + sigma Phi^{-1}((i + 1/2) / n). (n,)
    ValueError unless sigma is a finite number > 0 and omega0 finite (single real numbers),
    or ``dtype`` is not a floating dtype."""
    n = check_count(n, "n", "gaussian_frequencies")
    _real(sigma, "sigma", "gaussian_frequencies", scalar=True)
    _real(omega0, "omega0", "gaussian_frequencies", scalar=True)
    check_positive(sigma, "sigma", "gaussian_frequencies")
    check_finite(omega0, "omega0", "gaussian_frequencies")
    q = (jnp.arange(n, dtype=_float_dtype(dtype, "gaussian_frequencies")) + 0.5) / n
    return omega0 + sigma * ndtri(q)


def stationary_r(K, gamma: float = 1.0):
    """Theory for Lorentzian frequencies of half-width gamma > 0: r = sqrt(1 - 2 gamma / K)
    for K > 2 gamma, else 0 (negative K included), so 0 <= r < 1; nan where K or gamma is nan.
    A concrete gamma that is not a finite number > 0 is a ValueError; so is a K or a gamma
    that is not real (a string, a bool: stationary_r("3") ran as K = 3)."""
    _real(K, "K", "stationary_r")
    _real(gamma, "gamma", "stationary_r")
    check_positive(gamma, "gamma", "stationary_r")
    K = jnp.asarray(K, jnp.result_type(float))
    above = K > 2.0 * gamma
    r = jnp.where(above, jnp.sqrt(jnp.where(above, 1.0 - 2.0 * gamma / K, 0.0)), 0.0)
    return jnp.where(jnp.isnan(K) | jnp.isnan(gamma), jnp.nan, r)


def order_parameter(theta: Array) -> Array:
    """z = r e^{i psi} = mean_j e^{i theta_j} over the last axis: (..., N) -> complex (...)."""
    _real(theta, "theta", "order_parameter")  # strings failed deep in JAX
    theta = jnp.asarray(theta)
    if theta.ndim < 1 or theta.shape[-1] < 1:  # a scalar was an IndexError, N = 0 a nan
        raise ValueError(f"order_parameter: theta must be (..., N) with N >= 1, got {theta.shape}")
    return jnp.mean(jnp.exp(1j * theta), axis=-1)


def velocity(theta: Array, omega: Array, K, coupling: Array | None = None) -> Array:
    """dtheta/dt (module docstring): all-to-all through the mean field, or on ``coupling``
    (N, N) of real numbers or bools."""
    for name, value in (("theta", theta), ("omega", omega), ("K", K)):
        _real(value, name, "velocity")  # a string K was an IndexError, True ran as 1
    if coupling is not None:
        _real(coupling, "coupling", "velocity", bool_ok=True)
        coupling = jnp.asarray(coupling)  # a list failed on .T
    theta, omega = jnp.asarray(theta), jnp.asarray(omega)
    try:
        fits = theta.ndim >= 1 and jnp.broadcast_shapes(theta.shape, omega.shape) == theta.shape
    except ValueError:
        fits = False
    if not fits or (coupling is not None and jnp.shape(coupling) != (theta.shape[-1],) * 2):
        raise ValueError(
            f"velocity: theta (..., N) {theta.shape}, omega {omega.shape} (broadcastable to "
            f"theta) and coupling (N, N) {None if coupling is None else jnp.shape(coupling)} "
            "do not fit"
        )
    _check_K(K, theta.shape, "velocity", widen=True)
    n = theta.shape[-1]
    c, s = jnp.cos(theta), jnp.sin(theta)  # real arithmetic: cheaper than complex exp
    if coupling is None:  # r e^{i psi} = C + iS, the same for every i
        C, S = jnp.mean(c, axis=-1, keepdims=True), jnp.mean(s, axis=-1, keepdims=True)
    else:  # (1/N) sum_j A_ij e^{i theta_j}
        A = coupling.T.astype(c.dtype) / n
        C, S = c @ A, s @ A
    # Im((C + iS) e^{-i theta}) = S cos(theta) - C sin(theta)
    return omega + K * (S * c - C * s)


class KuramotoResult(NamedTuple):
    """``theta`` (..., N): final phases (unwrapped); ``r``, ``psi`` (n_steps // record_every,
    ...): the order parameter after every ``record_every`` steps; ``phases``: (n_records,
    ..., N) when ``return_phases`` else None."""

    theta: Array
    r: Array
    psi: Array
    phases: Array | None


def _check_K(K, shape: tuple, where: str = "simulate", widen: bool = False) -> None:
    """K is a scalar or (..., 1), broadcastable against theta0's batch: a K of shape (N,)
    broadcast over the oscillator axis, giving each oscillator its own coupling silently.
    Unless ``widen``, K must not widen the batch: simulate's scan carries theta0's shape (a K
    of shape (3, 1) for theta0 (N,) failed there on the carry's type)."""
    k = jnp.shape(K)
    try:
        out = jnp.broadcast_shapes(k, shape)
        ok = (len(k) == 0 or k[-1] == 1) and (widen or out == tuple(shape))
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(
            f"{where}: K must be a scalar or of shape (..., 1) broadcastable to theta0's batch "
            f"{shape[:-1]} (one coupling strength per network), got shape {k}"
        )


def simulate(
    theta0: Array,
    omega: Array,
    K,
    *,
    dt: float = 0.05,
    n_steps: int = 2000,
    coupling: Array | None = None,
    record_every: int = 1,
    return_phases: bool = False,
) -> KuramotoResult:
    """Integrate the Kuramoto model with classical RK4 for ``n_steps`` steps of ``dt``.

    theta0, omega (..., N); K a scalar (or broadcastable to the batch, shape (..., 1));
    coupling (N, N) or None (all-to-all). Phases are not wrapped, so (theta(t1) - theta(t0))
    / (t1 - t0) is each oscillator's observed mean frequency. ``dt`` (a finite number > 0),
    ``n_steps`` and ``record_every`` (ints >= 1) fix the compiled loop, so they are concrete:
    Python or NumPy scalars or 0-d arrays; anything else is a ValueError. N >= 1, and
    concrete theta0, omega, K and coupling must be finite (a ValueError naming the first that
    is not: one nan turns every phase and r into nan) and real (coupling may be bool); traced
    ones pass unchecked. The phases take the float type that theta0, omega and K promote to
    (float32 theta0 with float64 omega under x64: float64).
    """
    for name, value in (("theta0", theta0), ("omega", omega), ("K", K)):
        _real(value, name, "simulate")  # a complex theta0 lost its imaginary part
    if not isinstance(K, int | float):  # a list reached velocity as a list of tracers
        K = jnp.asarray(K)
    if coupling is not None:
        _real(coupling, "coupling", "simulate", bool_ok=True)
    theta0, omega = jnp.asarray(theta0), jnp.asarray(omega)
    # the phases carry the float type of theta0, omega and K together: a float32 theta0 with
    # a float64 omega (x64) failed in lax.scan, whose carry must keep its type
    dtype = jnp.result_type(theta0, omega, K)
    theta0 = theta0.astype(dtype if jnp.issubdtype(dtype, jnp.floating) else jnp.result_type(float))
    try:
        fits = theta0.ndim >= 1 and jnp.broadcast_shapes(theta0.shape, omega.shape) == theta0.shape
    except ValueError:  # not broadcastable at all
        fits = False
    if not fits:
        raise ValueError(
            f"simulate: theta0 {theta0.shape} and omega {omega.shape} must be (..., N), "
            "omega broadcastable to theta0"
        )
    n = theta0.shape[-1]
    if n == 0:  # the order parameter, a mean over no oscillator, would be nan
        raise ValueError(
            f"simulate: theta0 must hold N >= 1 oscillators (..., N), got {theta0.shape}"
        )
    if coupling is not None:
        coupling = jnp.asarray(coupling)
        if coupling.shape != (n, n):
            raise ValueError(f"simulate: coupling must have shape ({n}, {n}), got {coupling.shape}")
    _check_K(K, theta0.shape)
    for name, value in (("theta0", theta0), ("omega", omega), ("K", K), ("coupling", coupling)):
        if value is not None:  # a nan spreads to every phase through the mean field
            check_finite(value, name, "simulate")
    dt = _static_float(dt, "dt", "simulate")
    n_steps = _static_int(n_steps, "n_steps", "simulate")
    record_every = _static_int(record_every, "record_every", "simulate")
    if n_steps % record_every:
        raise ValueError(
            f"simulate: n_steps ({n_steps}) must be a multiple of record_every ({record_every})"
        )
    return_phases = check_flag(return_phases, "return_phases", "simulate")  # "no" was True
    return _simulate(theta0, omega, K, coupling, dt, n_steps, record_every, return_phases)


def _static_float(value, name: str, where: str) -> float:
    """A concrete scalar (Python or NumPy number, 0-d array) as a Python float, refused
    with a ValueError unless it is a finite number > 0 (it is a static argument of jit)."""
    v = concrete(value)
    if v is None or v.ndim != 0 or v.dtype.kind == "b":
        raise ValueError(f"{where}: {name} must be a finite number > 0, got {value!r}")
    check_positive(v, name, where)
    return float(v)


def _static_int(value, name: str, where: str) -> int:
    """check_count, also accepting a 0-d integer array, as a Python int."""
    v = concrete(value)
    if v is not None and v.ndim == 0 and v.dtype.kind in "iu":
        value = v.item()
    return check_count(value, name, where)


@functools.partial(jax.jit, static_argnums=(4, 5, 6, 7))
def _simulate(theta0, omega, K, coupling, dt, n_steps, record_every, return_phases):
    def f(th):
        return velocity(th, omega, K, coupling)

    def rk4(th, _):
        k1 = f(th)
        k2 = f(th + 0.5 * dt * k1)
        k3 = f(th + 0.5 * dt * k2)
        k4 = f(th + dt * k3)
        return th + dt / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4), None

    def record(th, _):
        th = jax.lax.scan(rk4, th, None, length=record_every)[0]
        z = order_parameter(th)
        return th, (jnp.abs(z), jnp.angle(z), th if return_phases else None)

    theta, (r, psi, phases) = jax.lax.scan(record, theta0, None, length=n_steps // record_every)
    return KuramotoResult(theta, r, psi, phases)
