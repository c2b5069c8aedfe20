"""Synaptic plasticity with traces: pair STDP, the triplet rule, homeostatic scaling.

Units: ms for times, Hz for rates; weights in the units of the synapse they scale (nS or pA,
:mod:`nnjax.brain.synapses`), or dimensionless; every update is in weight units.
Weights are W (n_post, n_pre), spikes 0/1 arrays (n_pre,) and (n_post,) per step.

Pair STDP (trace form; Morrison, Diesmann & Gerstner 2008, Biol Cybern 98:459). Presynaptic
trace x (tau_plus), postsynaptic trace y (tau_minus). Each step: the traces decay by
e^{-dt/tau}; a postsynaptic spike potentiates every synapse by a_plus x_j, a presynaptic
spike depresses it by a_minus y_i; then the traces take this step's spikes: x += 1
(``interaction="all_to_all"``: every pair counts) or x = 1 (``"nearest"``: symmetric
nearest-spike, each spike pairs with the latest spike of the other side only). Weight
updates read the traces before this step's spikes enter, so a pre and a post spike in the
same step (|Delta t| < dt) do not pair. One pair at Delta t = t_post - t_pre gives
a_plus e^{-Delta t / tau_plus} for Delta t > 0 and -a_minus e^{Delta t / tau_minus} for
Delta t < 0: the window of Bi & Poo 1998, with tau_plus = 16.8 ms and tau_minus = 33.7 ms,
the exponential fits to their data that Pfister & Gerstner 2006 take from Bi & Poo 2001
(Annu Rev Neurosci 24:139) and fix in every triplet model (quoted here from the NEST/NESTML
triplet-synapse documentation, not read from the papers). Default amplitudes a_plus = 0.005,
a_minus = 1.05 a_plus are Song, Miller & Abbott 2000's; they are per-pair learning rates, not
a fit to Bi & Poo's percentages. Song et al.'s window has tau_plus = tau_minus = 20 ms, so
their ratio of areas a_minus tau_minus / (a_plus tau_plus) is 1.05, a slight dominance of
depression; with the defaults here it is 1.05 x 33.7 / 16.8 = 2.1 (under uncorrelated
firing the mean depression is 2.1 times the mean potentiation): set tau_minus = tau_plus
for Song et al.'s balance.

Triplet rule (Pfister & Gerstner 2006, J Neurosci 26:9673). Two presynaptic traces r1
(tau_plus), r2 (tau_x) and two postsynaptic ones o1 (tau_minus), o2 (tau_y):

    post spike:  W_ij += r1_j (A2+ + A3+ o2_i)      pre spike:  W_ij -= o1_i (A2- + A3- r2_j)

with o2 and r2 read before the current spike enters them, and the same all-to-all (+= 1) or
nearest-spike (= 1) trace updates. :data:`PFISTER_GERSTNER_2006` holds the published fits to
the visual-cortex data of Sjöström, Turrigiano & Nelson 2001 (the paper's Table 3; values as
quoted from the open-access text by the NEST documentation and other implementations, not
read from the paper here). Weight changes are in units of the initial weight (w0 = 1).

Homeostatic synaptic scaling (Turrigiano et al. 1998; the multiplicative form of van Rossum,
Bi & Turrigiano 2000). Each postsynaptic neuron estimates its rate, r_i (Hz) =
(1000 / tau_rate) sum_k e^{-(t - t_k)/tau_rate}, and scales all its incoming weights by the
same factor, tau_scaling dW_ij/dt = W_ij (1 - r_i / target_rate), applied exactly for the
step (W_ij <- W_ij e^{(dt / tau_scaling)(1 - r_i / target_rate)}): the ratios between a
neuron's synapses never change, only their common scale, with time constant tau_scaling.

All parameters are pytrees (arrays per synapse or neuron allowed: amplitudes and bounds
broadcast to W (n_post, n_pre), a trace's time constant to its own side's neurons, the
scaling parameters to (n_post,)) and every step is differentiable (with surrogate spikes
from the neurons, gradients reach through the rule). Each step refuses concrete parameters
outside their range (a ValueError naming the step and the parameter): time constants and
target_rate finite and > 0, w_min <= w_max (neither nan), dt a scalar >= 0 (0 for events at
the same time when stepping from event to event), and shapes that do not match (checked
statically, also under jit); traced values pass unchecked, so the checks cost nothing per
step inside a scan.
"""

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from nnjax.brain import dynamics

Array = jax.Array

INTERACTIONS = ("all_to_all", "nearest")
INF = float("inf")


def _check_interaction(interaction: str, where: str):
    if interaction not in INTERACTIONS:
        raise ValueError(f"{where}: interaction must be one of {INTERACTIONS}, got {interaction!r}")


def _check_dt(dt, where: str):
    """dt finite and >= 0 where concrete, and a scalar (an array dt widened the traces)."""
    dynamics.check_positive(dt, "dt (ms)", where, allow_zero=True)
    if jnp.ndim(dt) != 0:
        raise ValueError(f"{where}: dt has shape {jnp.shape(dt)}; dt must be a scalar (ms)")


def _check_rule(params, dt, taus: tuple[str, ...], where: str):
    """Concrete taus finite and > 0, dt finite and >= 0, w_min <= w_max (tracers pass)."""
    for name in taus:
        dynamics.check_positive(getattr(params, name), f"{name} (ms)", where)
    _check_dt(dt, where)
    lo, hi = dynamics.concrete(params.w_min), dynamics.concrete(params.w_max)
    for name, v in (("w_min", lo), ("w_max", hi)):  # +-inf is no bound; nan is no number
        if v is not None and np.any(np.isnan(v)):
            raise ValueError(f"{where}: {name} must be a number or +-inf, got nan")
    if lo is not None and hi is not None and not np.all(lo <= hi):
        raise ValueError(
            f"{where}: w_min must be <= w_max, got w_min={params.w_min}, w_max={params.w_max}"
        )


def _check_shapes(W, pre, post, pre_traces, post_traces, where: str):
    """W (n_post, n_pre) for spikes pre (n_pre,), post (n_post,) and traces of those shapes."""
    n_pre, n_post = jnp.shape(pre), jnp.shape(post)
    got_pre, got_post = [jnp.shape(t) for t in pre_traces], [jnp.shape(t) for t in post_traces]
    ok = len(n_pre) == 1 and len(n_post) == 1 and jnp.shape(W) == n_post + n_pre
    if not (ok and set(got_pre) <= {n_pre} and set(got_post) <= {n_post}):
        raise ValueError(
            f"{where}: needs W (n_post, n_pre), pre (n_pre,), post (n_post,) and traces of "
            f"those shapes; got W {jnp.shape(W)}, pre {n_pre}, post {n_post}, presynaptic "
            f"traces {got_pre}, postsynaptic {got_post}"
        )


def _check_param_shapes(params, W, pre_taus, post_taus, where: str):
    """Presynaptic time constants broadcast to (n_pre,), postsynaptic ones to (n_post,) and
    every other parameter (amplitudes, bounds) to W (n_post, n_pre), none changing the
    shape: a tau_plus (n_post, 1) turned the trace x into (n_post, n_pre) and W into 3-D."""
    n_post, n_pre = jnp.shape(W)
    for name, value in params._asdict().items():
        if name in pre_taus:
            dynamics.check_fits(value, name, (n_pre,), where, "the presynaptic trace's shape")
        elif name in post_taus:
            dynamics.check_fits(value, name, (n_post,), where, "the postsynaptic trace's shape")
        else:
            dynamics.check_fits(value, name, (n_post, n_pre), where, "W's shape")


def _take(trace, spikes, interaction):
    """Decayed trace with this step's spikes: + s (all-to-all) or set to 1 (nearest)."""
    if interaction == "all_to_all":
        return trace + spikes
    return spikes + (1.0 - spikes) * trace


def _check_mask(mask, W, where: str) -> None:
    """A ValueError unless ``mask`` is None or broadcasts to W's shape without changing it: a
    mask (n_pre,) or (k, n_post, n_pre) would otherwise reshape W silently."""
    if mask is None:
        return
    try:
        ok = jnp.broadcast_shapes(jnp.shape(mask), jnp.shape(W)) == jnp.shape(W)
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(
            f"{where}: mask must have W's shape (n_post, n_pre) = {jnp.shape(W)}, got "
            f"{jnp.shape(mask)}"
        )


def _apply(W, dW, params, mask):
    """W + dW clipped to [w_min, w_max]; where ``mask`` is 0, W is kept as it is (the clip
    too: an absent synapse of weight 0 became w_min > 0 at the first step, spikes or not)."""
    if mask is None:
        return jnp.clip(W + dW, params.w_min, params.w_max)
    return jnp.where(mask != 0, jnp.clip(W + dW * mask, params.w_min, params.w_max), W)


class PairSTDPParams(NamedTuple):
    """tau_plus, tau_minus (ms); a_plus, a_minus (weight units per pair); w_min, w_max."""

    tau_plus: Any = 16.8
    tau_minus: Any = 33.7
    a_plus: Any = 0.005
    a_minus: Any = 0.00525
    w_min: Any = 0.0
    w_max: Any = INF


class PairTraces(NamedTuple):
    """x: presynaptic trace (n_pre,); y: postsynaptic trace (n_post,)."""

    x: Array
    y: Array


def pair_init(n_pre: int, n_post: int, *, dtype=None) -> PairTraces:
    """Zero traces."""
    n_pre = dynamics.check_count(n_pre, "n_pre", "plasticity.pair_init", minimum=0)
    n_post = dynamics.check_count(n_post, "n_post", "plasticity.pair_init", minimum=0)
    dtype = jnp.result_type(float) if dtype is None else dtype
    return PairTraces(jnp.zeros((n_pre,), dtype), jnp.zeros((n_post,), dtype))


def pair_stdp_step(
    traces: PairTraces,
    W: Array,
    pre: Array,
    post: Array,
    params: PairSTDPParams,
    dt: float,
    *,
    interaction: str = "all_to_all",
    mask: Array | None = None,
) -> tuple[PairTraces, Array]:
    """One step of pair STDP: (traces, W (n_post, n_pre)) -> (traces, W) given this step's
    spikes pre (n_pre,) and post (n_post,). ``mask`` (n_post, n_pre) multiplies the update:
    W <- clip(W + mask * dW) where mask != 0, W kept as it is where mask == 0 (absent synapses
    of a sparse network); a fractional mask scales each synapse's learning rate. dt is a
    scalar; tau_plus broadcasts to (n_pre,), tau_minus to (n_post,), a_plus, a_minus, w_min,
    w_max (and the mask) to W's shape, none changing it (scalars pass): ValueError naming the
    argument and both shapes."""
    where = "plasticity.pair_stdp_step"
    _check_interaction(interaction, where)
    _check_rule(params, dt, ("tau_plus", "tau_minus"), where)
    for name in ("a_plus", "a_minus"):  # a nan amplitude made every updated weight nan
        dynamics.check_finite(getattr(params, name), name, where)
    _check_shapes(W, pre, post, (traces.x,), (traces.y,), where)
    _check_param_shapes(params, W, ("tau_plus",), ("tau_minus",), where)
    _check_mask(mask, W, where)
    x = traces.x * jnp.exp(-dt / params.tau_plus)
    y = traces.y * jnp.exp(-dt / params.tau_minus)
    dW = params.a_plus * post[:, None] * x[None, :] - params.a_minus * y[:, None] * pre[None, :]
    W = _apply(W, dW, params, mask)
    return PairTraces(_take(x, pre, interaction), _take(y, post, interaction)), W


class TripletParams(NamedTuple):
    """tau_plus, tau_minus, tau_x, tau_y (ms); a2_plus, a3_plus, a2_minus, a3_minus (weight
    units); w_min, w_max. Default: visual cortex, minimal all-to-all model."""

    tau_plus: Any = 16.8
    tau_minus: Any = 33.7
    tau_x: Any = 101.0
    tau_y: Any = 114.0
    a2_plus: Any = 0.0
    a3_plus: Any = 6.5e-3
    a2_minus: Any = 7.1e-3
    a3_minus: Any = 0.0
    w_min: Any = -INF
    w_max: Any = INF


class TripletTraces(NamedTuple):
    """r1, r2: presynaptic traces (n_pre,); o1, o2: postsynaptic traces (n_post,)."""

    r1: Array
    r2: Array
    o1: Array
    o2: Array


PFISTER_GERSTNER_2006: dict[str, TripletParams] = {
    "visual_cortex_all_to_all_minimal": TripletParams(),
    "visual_cortex_nearest_minimal": TripletParams(
        tau_y=40.0, a2_plus=0.0, a3_plus=5e-2, a2_minus=8e-3, a3_minus=0.0
    ),
    "visual_cortex_all_to_all_full": TripletParams(
        tau_x=101.0, tau_y=125.0, a2_plus=5e-10, a3_plus=6.2e-3, a2_minus=7e-3, a3_minus=2.3e-4
    ),
}
"""Pfister & Gerstner 2006, Table 3 (visual cortex): the minimal all-to-all model (A2+ = 0,
A3+ = 6.5e-3, A2- = 7.1e-3, A3- = 0, tau_y = 114 ms), the minimal nearest-spike model
(A3+ = 5e-2, A2- = 8e-3, tau_y = 40 ms) and the full all-to-all one; tau_plus = 16.8 ms and
tau_minus = 33.7 ms in all. tau_x is unused where A3- = 0 (101 ms is the full model's)."""


def triplet_init(n_pre: int, n_post: int, *, dtype=None) -> TripletTraces:
    """Zero traces."""
    n_pre = dynamics.check_count(n_pre, "n_pre", "plasticity.triplet_init", minimum=0)
    n_post = dynamics.check_count(n_post, "n_post", "plasticity.triplet_init", minimum=0)
    dtype = jnp.result_type(float) if dtype is None else dtype
    zp, zq = jnp.zeros((n_pre,), dtype), jnp.zeros((n_post,), dtype)
    return TripletTraces(zp, zp, zq, zq)


def triplet_stdp_step(
    traces: TripletTraces,
    W: Array,
    pre: Array,
    post: Array,
    params: TripletParams,
    dt: float,
    *,
    interaction: str = "all_to_all",
    mask: Array | None = None,
) -> tuple[TripletTraces, Array]:
    """One step of the triplet rule (module docstring); shapes as :func:`pair_stdp_step`,
    with tau_plus, tau_x broadcasting to (n_pre,) and tau_minus, tau_y to (n_post,).
    tau_x (tau_y) enters only through a3_minus (a3_plus): where that amplitude is concretely
    0, tau_x (tau_y) may be 0, and its trace then holds only the latest step's spikes."""
    where = "plasticity.triplet_stdp_step"
    _check_interaction(interaction, where)
    p = params
    _check_triplet(p, dt, where)
    _check_shapes(W, pre, post, (traces.r1, traces.r2), (traces.o1, traces.o2), where)
    _check_param_shapes(p, W, ("tau_plus", "tau_x"), ("tau_minus", "tau_y"), where)
    _check_mask(mask, W, where)
    r1 = traces.r1 * jnp.exp(-dt / p.tau_plus)
    r2 = traces.r2 * _decay(dt, p.tau_x)
    o1 = traces.o1 * jnp.exp(-dt / p.tau_minus)
    o2 = traces.o2 * _decay(dt, p.tau_y)
    ltp = post[:, None] * r1[None, :] * (p.a2_plus + p.a3_plus * o2[:, None])
    ltd = o1[:, None] * pre[None, :] * (p.a2_minus + p.a3_minus * r2[None, :])
    W = _apply(W, ltp - ltd, p, mask)
    take = lambda tr, s: _take(tr, s, interaction)
    return TripletTraces(take(r1, pre), take(r2, pre), take(o1, post), take(o2, post)), W


def _check_triplet(p: TripletParams, dt, where: str):
    """As :func:`_check_rule`, with tau_x (tau_y) allowed to be 0 where a3_minus (a3_plus),
    the only amplitude that reads its trace, is concretely 0."""
    _check_rule(p, dt, ("tau_plus", "tau_minus"), where)
    for name in ("a2_plus", "a3_plus", "a2_minus", "a3_minus"):  # nan: every weight nan
        dynamics.check_finite(getattr(p, name), name, where)
    for tau, amplitude in (("tau_x", p.a3_minus), ("tau_y", p.a3_plus)):
        a = dynamics.concrete(amplitude)
        unused = a is not None and not np.any(a)
        dynamics.check_positive(getattr(p, tau), f"{tau} (ms)", where, allow_zero=unused)


def _decay(dt, tau):
    """e^{-dt/tau}, and 0 where tau = 0 (the limit; no ZeroDivisionError for floats)."""
    tau = jnp.asarray(tau)
    positive = tau > 0
    return jnp.where(positive, jnp.exp(-dt / jnp.where(positive, tau, 1.0)), 0.0)


class ScalingParams(NamedTuple):
    """target_rate (Hz); tau_rate: the rate estimator's time constant (ms); tau_scaling:
    the scaling's time constant (ms; hours in cortex, seconds in simulations)."""

    target_rate: Any = 5.0
    tau_rate: Any = 1000.0
    tau_scaling: Any = 10000.0


def scaling_init(n_post: int, *, rate0=0.0, dtype=None) -> Array:
    """The rate estimates (Hz), (n_post,), starting at ``rate0`` (a scalar, or an array that
    broadcasts to (n_post,)): finite and >= 0, and finite in ``dtype`` too (1e300 is inf in
    float32), else a ValueError (None failed deep in jnp.full; 1e300 gave rates of inf)."""
    where = "plasticity.scaling_init"
    n_post = dynamics.check_count(n_post, "n_post", where, minimum=0)
    rate = dynamics.concrete(rate0)
    if rate is None and not isinstance(rate0, jax.core.Tracer):
        raise ValueError(f"{where}: rate0 (Hz) must be a finite number >= 0, got {rate0!r:.60}")
    dynamics.check_positive(rate0, "rate0 (Hz)", where, allow_zero=True)
    dynamics.check_fits(rate0, "rate0", (n_post,), where, "the rates' shape")
    dtype = jnp.result_type(float) if dtype is None else dtype
    if rate is not None and jnp.issubdtype(dtype, jnp.floating):
        with np.errstate(over="ignore"):
            inf = ~np.isfinite(rate.astype(jnp.dtype(dtype)))
        if inf.any():
            raise ValueError(
                f"{where}: rate0 (Hz) must be finite in dtype {jnp.dtype(dtype).name} "
                f"(at most {float(jnp.finfo(dtype).max):g}), got {rate[inf].ravel()[0]:g}"
            )
    return jnp.full((n_post,), rate0, dtype)


def scaling_step(
    rate: Array, W: Array, post: Array, params: ScalingParams, dt: float
) -> tuple[Array, Array]:
    """One step of synaptic scaling: (rate (n_post,) Hz, W (n_post, n_pre)) -> (rate, W),
    given this step's spikes post (n_post,) (or a scalar). target_rate, tau_rate and
    tau_scaling must be finite and > 0 (checked where concrete) and broadcast to (n_post,)
    without changing it (scalars pass); dt a scalar, finite and >= 0, and dt / tau_scaling,
    dt / tau_rate 0 or at least :data:`RESOLUTION` x eps of W's dtype (else ValueError)."""
    p, where = params, "plasticity.scaling_step"
    for name in ("target_rate", "tau_rate", "tau_scaling"):
        dynamics.check_positive(getattr(p, name), name, where)
    _check_dt(dt, where)
    n_post = jnp.shape(W)[:1]
    if jnp.ndim(W) != 2 or jnp.shape(rate) != n_post or jnp.shape(post) not in ((), n_post):
        raise ValueError(
            f"{where}: needs W (n_post, n_pre), rate (n_post,) and post (n_post,) (or a "
            f"scalar); got W {jnp.shape(W)}, rate {jnp.shape(rate)}, post {jnp.shape(post)}"
        )
    for name, value in p._asdict().items():
        dynamics.check_fits(value, name, n_post, where, "the rates' shape")
    _check_resolution(W, dt, p, where)
    # x + x expm1(z), not x e^z: e^z rounds to a multiple of eps near 1, a bias of the same
    # sign every step (float32, dt / tau_scaling = 1e-6: e^1 came out as e^0.952 after 1e6)
    rate = rate + rate * jnp.expm1(-dt / p.tau_rate) + post * (1000.0 / p.tau_rate)
    growth = jnp.expm1((dt / p.tau_scaling) * (1.0 - rate / p.target_rate))
    return rate, W + W * growth[:, None]


RESOLUTION = 8
""":func:`scaling_step` refuses 0 < dt / tau (tau_scaling or tau_rate) < RESOLUTION x eps of
W's dtype: a step's relative change then falls below the weights' resolution. Measured in
float32 over t = tau: 0.1% error at dt / tau = 1e-6 (8.4 eps), 11% at 1e-7, and at 3e-8 W
did not move at all."""


def _check_resolution(W, dt, p: ScalingParams, where: str) -> None:
    """A ValueError when concrete dt / tau_scaling or dt / tau_rate is in (0, RESOLUTION eps)
    for W's floating dtype (the weights or the rates would not move, or move wrongly)."""
    h = dynamics.concrete(dt)
    dtype = jnp.result_type(W)
    if h is None or float(h) == 0 or not jnp.issubdtype(dtype, jnp.floating):
        return
    bound = RESOLUTION * float(jnp.finfo(dtype).eps)
    for name in ("tau_scaling", "tau_rate"):
        tau = dynamics.concrete(getattr(p, name))
        if tau is not None and tau.size and float(h) / float(np.max(tau)) < bound:
            raise ValueError(
                f"{where}: dt / {name} = {float(h) / float(np.max(tau)):.3g} is below "
                f"{RESOLUTION} x the resolution of {jnp.dtype(dtype).name} ({bound:.3g}): each "
                "step's change would be lost to rounding; use float64 weights, or apply the "
                "scaling every k steps with dt = k x the step"
            )
