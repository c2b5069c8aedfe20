"""Spike-train synchrony measures (jit-, vmap- and grad-friendly) and coincidence detection.

Spike trains of varying length are fixed-size arrays of spike times (..., n) with a boolean
mask (..., n) marking the real spikes (padding is ignored), so batches vmap and shapes never
change under jit. A mask is bools or 0/1 (a concrete one holding anything else, a 2 or a 0.5
read as a weight, is a ValueError); a traced one keeps the spikes where it is > 0.

* :func:`van_rossum_distance` (van Rossum 2001). Each train is filtered with the causal
  kernel e^{-t/tau} H(t), f(t) = sum_i e^{-(t - t_i)/tau} H(t - t_i), and

      D^2 = (1/tau) int_0^inf (f(t) - g(t))^2 dt
          = 1/2 [ sum_ij e^{-|a_i - a_j|/tau} + sum_ij e^{-|b_i - b_j|/tau}
                  - 2 sum_ij e^{-|a_i - b_j|/tau} ]

  (closed form, since (1/tau) int e^{-(t - a)/tau} e^{-(t - b)/tau} H H dt = e^{-|a-b|/tau}/2).
  Under this normalisation one spike against an empty train gives D^2 = 1/2, and two single
  spikes delta apart give D^2 = 1 - e^{-delta/tau}. Differentiable in the spike times
  except where two spikes coincide (the cusp of e^{-|d|/tau}); there the derivative of |d|
  is taken as 0, the mean of the one-sided slopes (what central differences give), so at
  identical trains the gradient of D^2 is 0; that of D is 0 there too, not nan.
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
    m = concrete(mask)
    if m is not None and not np.all((m == 0) | (m == 1)):
        # a mask entry was a weight: 2 counted its spike twice (D^2 = 2 for one spike
        # against none), 0.5 a quarter, and in sttc it rescaled P
        bad = m[(m != 0) & (m != 1)].ravel()[0]
        raise ValueError(
            f"{where}: mask_{name} must hold booleans or 0/1 (1 keeps a spike), got {bad}"
        )
    return times, (mask > 0).astype(times.dtype)  # traced: kept iff > 0


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


def _merged_d2(t, sign, tau):
    """D^2 along one order of the merged spikes t (..., K) with signs (+1 for a, -1 for b, 0
    for padding): a stable sort puts equal times in their given order, padding last.
    Between consecutive spikes t_k <= t_{k+1}, f - g = h_k e^{-(t - t_k)/tau} with
    h_k = h_{k-1} e^{-(t_k - t_{k-1})/tau} + sign_k, so
    D^2 = sum_k h_k^2 (1 - e^{-2 (t_{k+1} - t_k)/tau}) / 2, the last factor 1. A sum of
    nonnegative terms: no cancellation between large sums, and O(K) memory."""
    order = jnp.argsort(jnp.where(sign != 0, t, jnp.inf), axis=-1, stable=True)
    t, sign = jnp.take_along_axis(t, order, -1), jnp.take_along_axis(sign, order, -1)
    keep = sign != 0
    last = keep & ~jnp.concatenate([keep[..., 1:], jnp.zeros_like(keep[..., :1])], -1)
    # padding is finite (0) and its gaps are set to 0 before exp: no nan in any gradient
    gap = jnp.where(keep & ~last, jnp.diff(t, append=t[..., -1:]), 0.0)

    def step(h, x):
        gap_k, sign_k, keep_k, last_k = x
        h = h + sign_k
        factor = jnp.where(last_k, 1.0, -jnp.expm1(-2.0 * gap_k / tau))
        return h * jnp.exp(-gap_k / tau), jnp.where(keep_k, 0.5 * h * h * factor, 0.0)

    xs = tuple(jnp.moveaxis(x, -1, 0) for x in (gap, sign, keep, last))
    _, terms = jax.lax.scan(step, jnp.zeros(t.shape[:-1], t.dtype), xs)
    return terms.sum(0)


def van_rossum_distance(a, b, tau, *, mask_a=None, mask_b=None, squared: bool = False):
    """Van Rossum distance between spike trains a (..., n) and b (..., m) (module docstring).

    Returns D (or D^2 with ``squared``), shape (...), the batch shapes of a and b broadcast.
    ``tau`` > 0 in the units of the times, one number (vmap for several). Spike times need
    not be sorted; those that the masks keep must be finite (a ValueError when concrete); a
    nan or inf one under a trace gives D = nan, as does a traced tau <= 0 or nan.

    The value is the closed form's, computed without it: f - g decays as e^{-t/tau} between
    consecutive spikes of the merged, sorted trains, so D^2 is a sum of nonnegative terms
    (:func:`_merged_d2`), O((n + m) log(n + m)) time and O(n + m) memory. The closed form, a
    difference of large sums, lost 1.5% of D^2 in float32 for 1000 spikes shifted by
    tau / 10^4, and held n x m matrices (a 2.6 GB peak for n = m = 10^4).
    """
    _check_number(tau, "tau", "van_rossum_distance")
    a, ma = _train(a, mask_a, "a", "van_rossum_distance")
    b, mb = _train(b, mask_b, "b", "van_rossum_distance")
    _check_batches(a, b, "van_rossum_distance")
    squared = check_flag(squared, "squared", "van_rossum_distance")  # "no" counted as True
    return _van_rossum(a, ma, b, mb, tau, squared)


@functools.partial(jax.jit, static_argnums=(5,))
def _van_rossum(a, ma, b, mb, tau, squared):
    batch = jnp.broadcast_shapes(a.shape[:-1], b.shape[:-1])
    a, ma = (jnp.broadcast_to(x, batch + a.shape[-1:]) for x in (a, ma))
    b, mb = (jnp.broadcast_to(x, batch + b.shape[-1:]) for x in (b, mb))
    t, sign = jnp.concatenate([a, b], -1), jnp.concatenate([ma, -mb], -1)
    # Equal times (a cusp of D^2) are taken once in each order and averaged: the gradient
    # is then the mean of the one-sided slopes, the closed form's with d|d|/dd = 0 at d = 0
    # (0 at identical trains); one order alone gives one side (1/tau per spike there).
    d2 = 0.5 * (_merged_d2(t, sign, tau) + _merged_d2(t[..., ::-1], sign[..., ::-1], tau))
    bad = jnp.any((sign != 0) & ~jnp.isfinite(t), axis=-1)  # traced nan or inf spike times
    d2 = jnp.where(bad | ~(tau > 0), jnp.nan, d2)  # and a traced tau <= 0 or nan
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
    if not jnp.issubdtype(traces.dtype, jnp.floating):  # bools, and uints that wrap below
        traces = traces.astype(jnp.result_type(float))
    return _chi(traces)


@jax.jit
def _chi(traces):
    # each trace minus its first sample: a constant trace becomes exactly 0, so its
    # variance is exactly 0 (in float32, var of 1000 samples of 0.1 was 1e-16, not 0, and
    # constant traces gave chi = 1.18, 0.94, 0.51 for 0.1, 0.3, 1000 instead of 0)
    traces = traces - traces[:1]
    pop = jnp.var(traces.mean(axis=1))
    single = jnp.var(traces, axis=0).mean()  # nan when a trace holds nan or inf
    ok = single > 0
    return jnp.where(ok, jnp.sqrt(pop / jnp.where(ok, single, 1.0)), single * 0.0)


def coincidence_inputs(
    key, n_inputs: int, n_steps: int, volley_times: Array, jitter: float
) -> Array:
    """Input raster (n_steps, n_inputs): input j fires once per volley k, at step
    clip(round(volley_times[k] + jitter z_kj), 0, n_steps - 1), z_kj ~ N(0, 1) (round to the
    nearest step, halves to even; so a fractional volley time is rounded too). jitter = 0 is
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
    noise = jitter * jax.random.normal(key, volley_times.shape + (n_inputs,))
    # round the spike time itself: astype truncated a fractional volley time (10.6 -> 10)
    t = jnp.clip(jnp.round(volley_times[:, None] + noise), 0, n_steps - 1).astype(jnp.int32)
    raster = jnp.zeros((n_steps, n_inputs))
    return raster.at[t, jnp.arange(n_inputs)[None, :]].add(1.0)


def coincidence_response(raster: Array, weight: float, *, beta: float = 0.8, theta=1.0):
    """Output spike count of one discrete LIF neuron (reset to zero) driven by
    I_t = weight * sum_j raster[t, j]; raster (T, n_inputs) -> count, shape ().

    u_t = beta v_{t-1} + I_t (v_{-1} = 0); s_t = 1[u_t >= theta]; v_t = u_t (1 - s_t);
    count = sum_t s_t. nan (not a count) when the current holds a nan or an inf (a nan or
    inf raster entry or weight), or a traced beta or theta is nan: such input has no spike
    count, and this also holds under jit. weight, beta and theta are single real numbers
    (not bools), concrete beta in (0, 1] and theta > 0 (finite), else a ValueError naming
    this function.
    """
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
    b = concrete(beta)  # lif refused these too, but named itself ("lif: beta ...")
    if b is not None and not (b > 0 and b <= 1):
        raise ValueError(f"{where}: beta must be in (0, 1], got {b.item()}")
    check_positive(theta, "theta", where)
    current = weight * raster.sum(axis=-1)
    spikes, _ = lif(current, beta=beta, theta=theta, reset="zero")
    bad = ~jnp.all(jnp.isfinite(current)) | jnp.any(jnp.isnan(beta)) | jnp.any(jnp.isnan(theta))
    return jnp.where(bad, jnp.nan, spikes.sum())
