"""The types of a spiking E/I network (:mod:`~nnjax.brain.network`) and their checks.

:class:`NetworkSpec` (the static shape), :class:`NetworkParams` (the traced parameters),
:class:`Modulation` (the per-step levels) and :class:`NetworkState`; :func:`init_state`, the
state at rest; :func:`check_spec`, :func:`check_params` and :func:`check_state`, the
ValueErrors :func:`~nnjax.brain.network.simulate` raises before it runs. Units and shapes as
:mod:`~nnjax.brain.network`.
"""

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from nnjax.brain import adaptive_lif, adex, dynamics
from nnjax.brain import synapses as syn

Array = jax.Array

MODELS = ("adex", "alif")
BLOCKS = ("ee", "ei", "ie", "ii")


class NetworkSpec(NamedTuple):
    """The static shape of a network: population sizes, neuron model, dt and delay (ms).

    The delay is whole steps, :attr:`delay_steps` d = round(delay_ms / dt) (a delay between
    grid points is rounded, half-way to even after float division: 0.25 ms at dt = 0.1 is
    2 steps). An AdEx spike of step t (registered at its end) enters the conductance at the
    end of step t + d, d dt later (d = 0: at once, acting from the next step); an
    adaptive-LIF spike arrives exactly d dt after its time (d >= 1)."""

    n_exc: int = 800
    n_inh: int = 200
    model: str = "adex"
    dt: float = 0.1
    delay_ms: float = 1.5

    @property
    def n(self) -> int:
        return self.n_exc + self.n_inh

    @property
    def delay_steps(self) -> int:
        return int(round(self.delay_ms / self.dt))


class NetworkParams(NamedTuple):
    """Traced parameters. neuron: AdExParams/ALIFParams with (N,) fields (E then I);
    W_ee, W_ei, W_ie, W_ii: weight blocks (n_post, n_pre), nS (AdEx) or nA (ALIF, inhibitory
    blocks negative); exc_syn, inh_syn: SynapseParams; w_ext: weight of one external spike;
    rate_ext: external Poisson rate per neuron (Hz, scalar or (N,)); I_bias: constant current
    (N,) or scalar; E_K (mV) of the modulated K+ leak; stim_pattern: (N, k) current per
    stimulus unit (pA, or nA), or None; mask_ee: 1 where an E->E synapse exists (plasticity
    keeps the others 0);
    t_ref: refractory period (ms) of AdEx cells (adaptive LIF has its own, neuron.t_ref)."""

    neuron: Any
    W_ee: Array
    W_ei: Array
    W_ie: Array
    W_ii: Array
    exc_syn: syn.SynapseParams = syn.AMPA
    inh_syn: syn.SynapseParams = syn.GABA_A
    w_ext: Any = 0.0
    rate_ext: Any = 0.0
    I_bias: Any = 0.0
    E_K: Any = -90.0
    stim_pattern: Any = None
    mask_ee: Any = None
    t_ref: Any = 0.0


class Modulation(NamedTuple):
    """Per-step levels (each a scalar or a (T,) series): g_K, an extra K+ leak onto E cells
    (nS); b_scale, a factor on the E cells' adaptation increment b; gain_ee, gain_ei,
    gain_ie, gain_ii, factors on the release of each block; ext_scale on the external rate.
    The defaults are neutral."""

    g_K: Any = 0.0
    b_scale: Any = 1.0
    gain_ee: Any = 1.0
    gain_ei: Any = 1.0
    gain_ie: Any = 1.0
    gain_ii: Any = 1.0
    ext_scale: Any = 1.0


class NetworkState(NamedTuple):
    """neurons: the model's state (N,); blocks: one (Timed)Projection per block, in the
    order of :data:`BLOCKS`; ext: the external synapse (N,); ref: refractory time left (ms,
    AdEx); t: the step count (int32)."""

    neurons: Any
    blocks: tuple
    ext: syn.SynapseState
    ref: Array
    t: Array


def _model(spec: NetworkSpec):
    if spec.model not in MODELS:
        raise ValueError(f"network: model must be one of {MODELS}, got {spec.model!r}")
    return adex if spec.model == "adex" else adaptive_lif


def _block_shapes(spec: NetworkSpec):
    nE, nI = spec.n_exc, spec.n_inh
    return {"ee": (nE, nE), "ei": (nE, nI), "ie": (nI, nE), "ii": (nI, nI)}


def init_state(params: NetworkParams, spec: NetworkSpec, *, dtype=None) -> NetworkState:
    """Every neuron at rest (V = E_L), no spike in flight, all conductances 0."""
    spec = check_spec(spec)
    _check_neuron_params(params, spec)  # (N,) fields of another N failed in a broadcast
    dtype = jnp.result_type(float) if dtype is None else dtype
    neurons = _model(spec).init_state((spec.n,), params.neuron, dtype=dtype)
    blocks = []
    for name, (n_post, n_pre) in _block_shapes(spec).items():
        p = params.exc_syn if name[1] == "e" else params.inh_syn
        if spec.model == "adex":
            blocks.append(syn.projection_init(n_pre, n_post, spec.delay_steps, p, dtype))
        else:
            blocks.append(syn.timed_projection_init(n_pre, n_post, spec.delay_steps, p, dtype))
    ext = syn.init_state((spec.n,), params.exc_syn, dtype=dtype)
    ref = jnp.zeros((spec.n,), dtype)
    return NetworkState(neurons, tuple(blocks), ext, ref, jnp.zeros((), jnp.int32))


def check_spec(spec: NetworkSpec) -> NetworkSpec:
    """ValueError for a network shape that cannot be simulated (a model not in MODELS, fewer
    than 1 E or 1 I cell, a bad dt, a delay that is negative, nan or inf); returns the spec
    with Python ints for the sizes (NumPy ints are accepted)."""
    _model(spec)
    n_exc = dynamics.check_count(spec.n_exc, "n_exc", "network")
    n_inh = dynamics.check_count(spec.n_inh, "n_inh", "network")
    dynamics.check_dt(spec.dt, "network")
    delay = dynamics.check_number(spec.delay_ms, "delay_ms", "network")  # True ran as 1 ms
    low = 1 if spec.model == "alif" else 0
    if not 0 <= delay < float("inf") or spec.delay_steps < low:
        raise ValueError(
            f"network: delay_ms must give >= {low} step(s) of dt={spec.dt} for {spec.model!r}, "
            f"got {spec.delay_ms}"
        )
    return spec._replace(n_exc=n_exc, n_inh=n_inh)


def _check_per_neuron(value, name: str, n: int) -> None:
    """A ValueError unless ``value`` is a scalar (or (1,)) or (n,): one value per neuron."""
    shape = jnp.shape(value)
    if shape not in ((), (1,), (n,)):
        raise ValueError(f"network: {name} must be a scalar or (N={n},), got shape {shape}")


def _check_neuron_params(params: NetworkParams, spec: NetworkSpec) -> None:
    """The neuron parameters are the model's NamedTuple; they and the other per-neuron
    parameters are scalars or (N,); the synapse parameters are scalars."""
    kind = adex.AdExParams if spec.model == "adex" else adaptive_lif.ALIFParams
    if not isinstance(params.neuron, kind):
        raise ValueError(
            f"network: params.neuron must be {kind.__name__} for model {spec.model!r}, got "
            f"{type(params.neuron).__name__}"
        )
    for field, v in zip(kind._fields, params.neuron):
        _check_per_neuron(v, f"neuron.{field}", spec.n)
    for name in ("w_ext", "rate_ext", "I_bias", "E_K", "t_ref"):
        _check_per_neuron(getattr(params, name), name, spec.n)
    for name in ("exc_syn", "inh_syn"):
        for field, v in zip(syn.SynapseParams._fields, getattr(params, name)):
            if jnp.size(v) != 1:
                raise ValueError(
                    f"network: {name}.{field} must be a scalar (one synapse type per block), "
                    f"got shape {jnp.shape(v)}"
                )


def _check_values(params: NetworkParams, spec: NetworkSpec) -> None:
    """ValueErrors for concrete parameter values out of range (traced ones pass, so this
    costs nothing under vmap or jit): the neuron model's own checks (AdEx: C, g_L, Delta_T,
    tau_w > 0, V_r < V_peak, dt below C / g_L and tau_w; adaptive LIF: tau_m, tau_w, R > 0,
    dt <= t_ref, V_r < theta), synaptic tau > 0 and E_rev finite, rate_ext and t_ref >= 0,
    w_ext, I_bias, E_K finite. Inside the step these would run silently: a negative C or
    tau flips the sign of the dynamics, a negative rate draws no external spike, a nan
    freezes a neuron."""
    if spec.model == "adex":
        adex._check_params(params.neuron, "network: neuron")
        adex.check_euler_dt(params.neuron, float(spec.dt), "network: neuron")
    else:
        adaptive_lif.check_params(params.neuron, float(spec.dt), "network: neuron")
    for name in ("exc_syn", "inh_syn"):
        p = getattr(params, name)
        dynamics.check_positive(p.tau, f"{name}.tau (ms)", "network")
        dynamics.check_finite(p.E_rev, f"{name}.E_rev (mV)", "network")
    for name in ("rate_ext", "t_ref"):
        dynamics.check_positive(getattr(params, name), name, "network", allow_zero=True)
    for name in ("w_ext", "I_bias", "E_K"):
        dynamics.check_finite(getattr(params, name), name, "network")
    for name in (*(f"W_{b}" for b in BLOCKS), "stim_pattern"):  # a nan weight: nan network
        if getattr(params, name) is not None:
            dynamics.check_finite(getattr(params, name), name, "network")


def check_params(params: NetworkParams, spec: NetworkSpec):
    """ValueError naming the first weight block, pattern, mask or per-neuron parameter of the
    wrong shape, or neuron parameters of another model; then concrete values out of range
    (:func:`_check_values`). Shapes are static: runs under vmap."""
    for name, shape in _block_shapes(spec).items():
        syn.check_weights(getattr(params, "W_" + name), shape[1], shape[0], f"network W_{name}")
    P = params.stim_pattern
    if P is not None and (jnp.ndim(P) != 2 or jnp.shape(P)[0] != spec.n):
        raise ValueError(f"network: stim_pattern must be (N={spec.n}, k), got {jnp.shape(P)}")
    M = params.mask_ee
    if M is not None and jnp.shape(M) != (spec.n_exc, spec.n_exc):
        raise ValueError(
            f"network: mask_ee must be W_ee's shape ({spec.n_exc}, {spec.n_exc}), got "
            f"{jnp.shape(M)}"
        )
    _check_neuron_params(params, spec)
    _check_values(params, spec)


def check_state(state: NetworkState, params: NetworkParams, spec: NetworkSpec):
    """ValueError unless ``state`` has the structure and shapes of init_state(params, spec):
    a state from a network of other sizes, model or delay is named, not broadcast."""
    want = jax.eval_shape(lambda p: init_state(p, spec), params)
    fields, tree = jax.tree_util.tree_flatten_with_path(want)
    leaves = jax.tree.leaves(state)
    bad = "its structure differs" if jax.tree.structure(state) != tree else None
    for (path, w), a in zip(fields, leaves if bad is None else []):
        if jnp.shape(a) != w.shape:
            bad = f"its {jax.tree_util.keystr(path)} has shape {jnp.shape(a)}, not {w.shape}"
            break
    if bad is not None:
        raise ValueError(
            f"network: state must come from this network ({spec.n_exc} E + {spec.n_inh} I "
            f"{spec.model!r} cells, delay {spec.delay_steps} steps: init_state(params, spec) or "
            f"a run of it); {bad}"
        )
