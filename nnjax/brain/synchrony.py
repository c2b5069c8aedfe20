"""Spike-train synchrony measures (jit-, vmap- and grad-friendly) and coincidence detection.

Spike trains of varying length are fixed-size arrays of spike times (..., n) with a boolean
mask (..., n) marking the real spikes (padding is ignored), so batches vmap and shapes never
change under jit.

* :func:`van_rossum_distance` (van Rossum 2001). Each train is filtered with the causal
  kernel e^{-t/tau} H(t), f(t) = sum_i e^{-(t - t_i)/tau} H(t - t_i), and

      D^2 = (1/tau) int_0^inf (f(t) - g(t))^2 dt
          = 1/2 [ sum_ij e^{-|a_i - a_j|/tau} + sum_ij e^{-|b_i - b_j|/tau}
                  - 2 sum_ij e^{-|a_i - b_j|/tau} ]

  (closed form, since (1/tau) int e^{-(t - a)/tau} e^{-(t - b)/tau} H H dt = e^{-|a-b|/tau}/2).
  Under this normalisation one spike against an empty train gives D^2 = 1/2, and two single
  spikes delta apart give D^2 = 1 - e^{-delta/tau}. Differentiable in the spike times; at
  D = 0 (identical trains) the gradient of D is taken as 0, not nan.
* :func:`sttc`, the spike time tiling coefficient (Cutts & Eglen 2014, J Neurosci 34:14288):
  STTC = 1/2 [ (P_A - T_B) / (1 - P_A T_B) + (P_B - T_A) / (1 - P_B T_A) ], with T_A the
  fraction of the recording [0, duration] within +-dt of a spike of A, P_A the fraction of
  A's spikes within +-dt of a spike of B.
* :func:`golomb_rinzel_chi` (Golomb & Rinzel 1993; Golomb 2007, Scholarpedia 2:1347):
  chi^2 = Var_t(mean_i V_i(t)) / mean_i Var_t(V_i(t)); the function returns chi: 1 for
  identical traces, about 1/sqrt(N) (chi^2 about 1/N) for N independent ones.
* :func:`coincidence_inputs` and :func:`coincidence_response`: a leaky integrate-and-fire
  neuron fires more for synchronous input than for the same spikes spread out in time.

Validation: concrete arguments (Python and NumPy numbers and arrays, JAX arrays outside a
trace) are checked and refused with a ValueError; traced ones cannot be, and a nan or an
invalid value among them gives nan, never a plausible number.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np

from nnjax.brain.dynamics import check_count, check_flag, check_positive, concrete
from nnjax.brain.neurons import lif

Array = jax.Array


def _real(value, name: str, where: str, *, scalar: bool = False) -> None:
    """A ValueError naming ``where: name`` unless ``value`` holds real numbers (with
    ``scalar``, a single one, not a bool): a string failed deep in JAX, a complex time lost
    its imaginary part, True ran as 1, and an array tau or dt broadcast against the spike
    axis (one per spike, silently). A tracer is checked on its dtype and shape only."""
    arrays = jax.Array | np.ndarray | np.generic  # tracers too: the dtype, with no copy
    v = value if isinstance(value, arrays) else concrete(value)
    kinds = "iuf" if scalar else "biuf"
    if v is None or v.dtype.kind not in kinds or (scalar and v.ndim != 0):
        what = "be a finite number > 0 (a single one, not a bool; vmap for a batch)"
        raise ValueError(
            f"{where}: {name} must {what if scalar else 'hold real numbers'}, got {_shown(value)}"
        )


def _shown(value) -> str:
    """A short one-line repr of ``value`` for an error message."""
    text = " ".join(repr(value).split())
    return text if len(text) <= 80 else f"{text[:77]}..."


def _mask(times, mask, name: str, where: str):
    _real(times, name, where)
    times = jnp.asarray(times)
    if not jnp.issubdtype(times.dtype, jnp.floating):
        times = times.astype(jnp.result_type(float))
    if mask is None:
        return times, jnp.ones(times.shape, times.dtype)
    _real(mask, f"mask_{name}", where)
    mask = jnp.asarray(mask)
    if mask.shape != times.shape:
        raise ValueError(
            f"{where}: mask_{name} shape {mask.shape} differs from spike times {name} shape "
            f"{times.shape}"
        )
    return times, mask.astype(times.dtype)


def _train(times, mask, name: str, where: str, duration=None):
    """(times, mask) as float arrays of one shape. A concrete spike time that the mask keeps
    (mask > 0) must be finite, and in [0, duration] when ``duration`` is given, else a
    ValueError; masked-out times are set to 0 so that padding (even inf or nan) never reaches
    the value or its gradient."""
    times, mask = _mask(times, mask, name, where)
    t, m = concrete(times), concrete(mask)
    if t is not None and m is not None:
        bad = (m > 0) & ~np.isfinite(t)
        span = ""
        d = concrete(duration)
        if d is not None:
            bad |= (m > 0) & ((t < 0) | (t > d))
            span = f" in [0, duration] = [0, {d.item() if d.ndim == 0 else d}]"
        if bad.any():
            raise ValueError(
                f"{where}: {name} must hold finite spike times{span} (where mask_{name} is "
                f"true), got {t[bad].ravel()[0]}"
            )
    return jnp.where(mask > 0, times, 0.0), mask


def _check_batches(a, b, where: str) -> None:
    """A ValueError unless the batch shapes of trains a (..., n) and b (..., m) broadcast."""
    try:
        ok = a.ndim >= 1 and b.ndim >= 1
        jnp.broadcast_shapes(a.shape[:-1], b.shape[:-1])
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(
            f"{where}: trains a (..., n) and b (..., m) need batch shapes that broadcast, got "
            f"a {a.shape} and b {b.shape}"
        )


def _check_number(value, name: str, where: str) -> None:
    """check_positive, and a ValueError for a value that is not one real number (None, a
    bool, a string, an array: :func:`_real`)."""
    _real(value, name, where, scalar=True)
    check_positive(value, name, where)


def _kernel_sum(a, ma, b, mb, tau):
    d = a[..., :, None] - b[..., None, :]
    w = ma[..., :, None] * mb[..., None, :]
    # where() keeps padded pairs (weight 0) out of the gradient
    return jnp.sum(jnp.where(w > 0, jnp.exp(-jnp.abs(d) / tau), 0.0) * w, axis=(-2, -1))


def van_rossum_distance(a, b, tau, *, mask_a=None, mask_b=None, squared: bool = False):
    """Van Rossum distance between spike trains a (..., n) and b (..., m) (module docstring).

    Returns D (or D^2 with ``squared``), shape (...). ``tau`` > 0 in the units of the times,
    one number (an array of them broadcast against the spikes; vmap for several).
    Spike times that the masks keep must be finite (a ValueError when concrete); a nan or
    inf one under a trace gives D = nan (its kernel term e^{-|inf - inf|/tau} is nan), as
    does a traced tau <= 0 or nan.
    """
    _check_number(tau, "tau", "van_rossum_distance")
    a, ma = _train(a, mask_a, "a", "van_rossum_distance")
    b, mb = _train(b, mask_b, "b", "van_rossum_distance")
    _check_batches(a, b, "van_rossum_distance")
    squared = check_flag(squared, "squared", "van_rossum_distance")  # "no" counted as True
    return _van_rossum(a, ma, b, mb, tau, squared)


@functools.partial(jax.jit, static_argnums=(5,))
def _van_rossum(a, ma, b, mb, tau, squared):
    d2 = 0.5 * (
        _kernel_sum(a, ma, a, ma, tau)
        + _kernel_sum(b, mb, b, mb, tau)
        - 2.0 * _kernel_sum(a, ma, b, mb, tau)
    )
    d2 = jnp.maximum(d2, 0.0)  # rounding can leave -1e-17 for equal trains; nan stays nan
    d2 = jnp.where(tau > 0, d2, jnp.nan)  # a traced tau <= 0 or nan
    return d2 if squared else _safe_sqrt(d2)


def _safe_sqrt(x):
    """sqrt(x) for x >= 0 whose gradient at x = 0 is 0 (the subgradient of D = |...| at its
    minimum) instead of inf * 0 = nan; elsewhere it is 1 / (2 sqrt(x)) as usual. nan stays
    nan (x * 0 is 0 at x = 0 and nan at nan, with gradient 0)."""
    pos = x > 0
    return jnp.where(pos, jnp.sqrt(jnp.where(pos, x, 1.0)), x * 0.0)


def _tiled_fraction(t, m, dt, duration):
    """T: fraction of [0, duration] covered by the union of [t_i - dt, t_i + dt]."""
    ts = jnp.sort(jnp.where(m > 0, t, jnp.inf), axis=-1)
    valid = jnp.isfinite(ts)
    lo = jnp.maximum(ts - dt, 0.0)
    hi = jnp.minimum(ts + dt, duration)
    prev_hi = jnp.concatenate([jnp.full(ts.shape[:-1] + (1,), -jnp.inf), hi[..., :-1]], -1)
    start = jnp.maximum(lo, prev_hi)  # sorted, equal-width windows: only the previous overlaps
    covered = jnp.where(valid, jnp.maximum(hi - start, 0.0), 0.0)
    return covered.sum(-1) / duration


def _proportion_near(a, ma, b, mb, dt):
    """P: fraction of a's spikes with some spike of b within +-dt."""
    near = (jnp.abs(a[..., :, None] - b[..., None, :]) <= dt) & (mb[..., None, :] > 0)
    hit = near.any(-1) & (ma > 0)
    return hit.sum(-1) / jnp.maximum(ma.sum(-1), 1.0)


def sttc(a, b, dt, duration, *, mask_a=None, mask_b=None):
    """Spike time tiling coefficient of trains a (..., n) and b (..., m) on [0, duration].

    In [-1, 1]; 1 for identical trains. Returns 0 where either train is empty (undefined in
    the original). Where a term's denominator 1 - P T vanishes (P = T = 1: the other train's
    windows cover the whole record and every spike lies in them) the term is its limit, 1.
    ``dt`` and ``duration`` are single finite numbers > 0 (vmap for several); the spike
    times that the masks keep lie in [0, duration]. Concrete values breaking this are a
    ValueError; under a trace they give nan (as does a nan dt or duration).
    """
    _check_number(dt, "dt", "sttc")
    _check_number(duration, "duration", "sttc")
    a, ma = _train(a, mask_a, "a", "sttc", duration)
    b, mb = _train(b, mask_b, "b", "sttc", duration)
    _check_batches(a, b, "sttc")
    return _sttc(a, ma, b, mb, dt, duration)


def _invalid(x):
    """Whether x is not a finite number > 0 (a traced dt or duration)."""
    return ~(jnp.isfinite(x) & (x > 0))


def _outside(t, m, duration):
    """Whether some kept spike time of a train (..., n) is not in [0, duration] (or is nan)."""
    return jnp.any((m > 0) & ~((t >= 0) & (t <= duration)), axis=-1)


@jax.jit
def _sttc(a, ma, b, mb, dt, duration):
    T_a, T_b = _tiled_fraction(a, ma, dt, duration), _tiled_fraction(b, mb, dt, duration)
    P_a, P_b = _proportion_near(a, ma, b, mb, dt), _proportion_near(b, mb, a, ma, dt)

    def term(p, t):
        # P, T <= 1, so 1 - P T = 0 only at P = T = 1: every spike is near the other train and
        # its windows tile the whole record. The term is then 0/0; its limit is 1, since
        # (P - T) / (1 - P T) = 1 for P = 1 and any T < 1 (Elephant gives +1 here as well).
        den = 1.0 - p * t
        ok = jnp.abs(den) > 1e-12
        return jnp.where(ok, (p - t) / jnp.where(ok, den, 1.0), 1.0)

    value = 0.5 * (term(P_a, T_b) + term(P_b, T_a))
    nonempty = (ma.sum(-1) > 0) & (mb.sum(-1) > 0)
    invalid = (
        _outside(a, ma, duration) | _outside(b, mb, duration) | _invalid(dt) | _invalid(duration)
    )
    return jnp.where(invalid, jnp.nan, jnp.where(nonempty, value, 0.0))


def golomb_rinzel_chi(traces: Array) -> Array:
    """Synchrony chi of traces (T, N) (e.g. voltages or filtered spike trains), shape ().

    chi^2 = Var_t(V_bar(t)) / ((1/N) sum_i Var_t(V_i(t))), V_bar = (1/N) sum_i V_i.
    0 where every trace is constant; nan where a trace holds a nan or an inf. T, N >= 1 (an
    empty axis is a ValueError). Leading batch axes: use vmap.
    """
    _real(traces, "traces", "golomb_rinzel_chi")  # a complex trace lost its imaginary part
    traces = jnp.asarray(traces)
    if traces.ndim != 2 or 0 in traces.shape:
        raise ValueError(
            f"golomb_rinzel_chi: traces must be (T, N) with T >= 1 and N >= 1, got {traces.shape}"
        )
    return _chi(traces)


@jax.jit
def _chi(traces):
    pop = jnp.var(traces.mean(axis=1))
    single = jnp.var(traces, axis=0).mean()  # nan when a trace holds nan or inf
    ok = single > 0
    return jnp.where(ok, jnp.sqrt(pop / jnp.where(ok, single, 1.0)), single * 0.0)


def coincidence_inputs(
    key, n_inputs: int, n_steps: int, volley_times: Array, jitter: float
) -> Array:
    """Input raster (n_steps, n_inputs): every input fires once per volley, at the volley time
    plus a Gaussian jitter of sd ``jitter`` steps (rounded; clipped to the run). jitter = 0 is
    perfectly synchronous; larger jitter spreads the same number of spikes out in time.
    n_inputs, n_steps: ints >= 1; jitter: a finite number >= 0 (steps); volley_times (k,):
    finite steps in [0, n_steps - 1]. Concrete values breaking this are a ValueError (a nan
    jitter or volley time would be cast to an arbitrary step, a volley past the run piled
    onto its last step)."""
    where = "coincidence_inputs"
    n_inputs = check_count(n_inputs, "n_inputs", where)
    n_steps = check_count(n_steps, "n_steps", where)
    if concrete(jitter) is not None and concrete(jitter).dtype.kind == "b":  # True ran as 1
        raise ValueError(f"{where}: jitter (steps) must be a number >= 0, got {jitter!r}")
    check_positive(jitter, "jitter (steps)", where, allow_zero=True)
    _real(volley_times, "volley_times", where)  # a string failed deep in JAX
    v = concrete(volley_times)
    if v is not None and (
        v.ndim != 1 or not np.all(np.isfinite(v) & (v >= 0) & (v <= n_steps - 1))
    ):
        raise ValueError(
            f"{where}: volley_times must be (k,) finite steps in [0, n_steps - 1 = "
            f"{n_steps - 1}], got {v if v.size <= 8 else v.shape}"
        )
    volley_times = jnp.asarray(volley_times)
    shift = jnp.round(jitter * jax.random.normal(key, volley_times.shape + (n_inputs,)))
    t = jnp.clip(volley_times[:, None] + shift, 0, n_steps - 1).astype(jnp.int32)
    raster = jnp.zeros((n_steps, n_inputs))
    return raster.at[t, jnp.arange(n_inputs)[None, :]].add(1.0)


def coincidence_response(raster: Array, weight: float, *, beta: float = 0.8, theta=1.0):
    """Output spike count of one discrete LIF neuron (reset to zero) driven by
    I_t = weight * sum_j raster[t, j]; raster (T, n_inputs) -> count, shape (). nan (not a
    count) when the current holds a nan or an inf (a nan or inf raster entry or weight), or
    beta or theta is nan: such input has no spike count, and this also holds under jit.
    weight, beta and theta are single real numbers (not bools: a ValueError)."""
    where = "coincidence_response"
    _real(raster, "raster", where)
    raster = jnp.asarray(raster)
    if raster.ndim != 2:
        raise ValueError(
            f"{where}: raster must have shape (T, n_inputs), got shape {tuple(raster.shape)}"
        )
    for name, value in (("weight", weight), ("beta", beta), ("theta", theta)):
        v = value if isinstance(value, jax.core.Tracer) else concrete(value)
        if v is None or v.ndim != 0 or v.dtype.kind not in "iuf":  # True ran as 1; a (2,)
            # beta simulated two neurons, a (n_inputs,) weight failed in a broadcast
            raise ValueError(f"{where}: {name} must be a number, got {_shown(value)}")
    current = weight * raster.sum(axis=-1)
    spikes, _ = lif(current, beta=beta, theta=theta, reset="zero")
    bad = ~jnp.all(jnp.isfinite(current)) | jnp.any(jnp.isnan(beta)) | jnp.any(jnp.isnan(theta))
    return jnp.where(bad, jnp.nan, spikes.sum())
