"""Building E/I networks: sparse random connectivity and a recipe for the parameters.

Units as :mod:`~nnjax.brain.network`: ms, mV, pF, nS, pA, Hz (nA for adaptive-LIF
networks). Weights are W (n_post, n_pre).

:func:`random_mask` draws which synapses exist, seeded and vmappable over keys:

* ``"fixed_in_degree"``: every postsynaptic neuron gets exactly K = round(p n_pre) inputs,
  drawn without replacement (the K smallest of a uniform draw per row, ties broken by
  index);
* ``"bernoulli"``: each synapse exists with probability p, independently (in-degree
  Binomial(n_pre, p)).

Self-connections are excluded within a population (then K <= n_pre - 1). :func:`init_params`
turns a :class:`NetworkConfig` into :class:`~nnjax.brain.network.NetworkParams`: the four
blocks are the masks times their weights (w_ee, w_ei, w_ie, w_ii; inhibitory weights are
positive conductances for AdEx, negative currents for adaptive LIF), and the neuron
parameters of the two populations are stacked into (N,) arrays.

:data:`CORTEX` is the AdEx network the sleep states are built on: 800 regular-spiking E cells
with spike-triggered adaptation and 200 fast-spiking I cells, each receiving exactly 80 E and
20 I inputs, conductance synapses with the COBA benchmark's kinetics and reversal potentials
(:data:`~nnjax.brain.synapses.AMPA` 5 ms / 0 mV, :data:`~nnjax.brain.synapses.GABA_A`
10 ms / -80 mV) and weights of the same order (4 nS excitatory, 50 nS inhibitory; Vogels &
Abbott 2005, Brette et al. 2007), a 5 ms refractory period, and 1 kHz of external Poisson
input of 1.5 nS per cell. The cells follow the AdEx networks of Destexhe 2009 and di Volo et
al. 2019 (C = 200 pF, g_L = 10 nS, V_T = -50 mV, tau_w = 500 ms, Delta_T 2 mV for E and
0.5 mV for I). The weights and drive are this package's choice for 1000 neurons, found by a
search over the regimes (:mod:`~nnjax.brain.sleep_states`): inhibition strong enough that
the network cannot run away even at 1.8 times the recurrent excitation.
"""

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from nnjax.brain import adaptive_lif, adex
from nnjax.brain import synapses as syn
from nnjax.brain.dynamics import check_count, check_flag, check_number, concrete
from nnjax.brain.network import NetworkParams, NetworkSpec, check_spec

Array = jax.Array

CONNECTIVITY = ("fixed_in_degree", "bernoulli")


def in_degree(p: float, n_pre: int, no_self: bool = False) -> int:
    """K = round(p n_pre), the in-degree of ``"fixed_in_degree"``; ValueError if impossible."""
    n_pre = check_count(n_pre, "n_pre", "connectivity", minimum=0)
    p = check_number(p, "p", "connectivity")  # a string or an array failed in a comparison
    no_self = check_flag(no_self, "no_self", "connectivity")  # "no" failed in int()
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"connectivity: p must lie in [0, 1], got {p}")
    k = int(round(p * n_pre))
    if k > max(n_pre - int(no_self), 0):  # an empty block (0 neurons) has K = 0, not -1
        raise ValueError(
            f"connectivity: p={p} asks for {k} inputs from {n_pre} neurons"
            + (" without self-connections" if no_self else "")
        )
    return k


def random_mask(
    key, n_post: int, n_pre: int, p: float, kind: str = "fixed_in_degree", *, no_self=False
) -> Array:
    """Which synapses exist: float 0/1 array (n_post, n_pre) (module docstring).

    ``no_self`` (square blocks): no neuron connects to itself.
    """
    if kind not in CONNECTIVITY:
        raise ValueError(f"connectivity must be one of {CONNECTIVITY}, got {kind!r}")
    n_post = check_count(n_post, "n_post", "connectivity", minimum=0)  # -1 failed in XLA
    n_pre = check_count(n_pre, "n_pre", "connectivity", minimum=0)
    p = check_number(p, "p", "connectivity")
    no_self = check_flag(no_self, "no_self", "connectivity")  # "no" counted as True
    if no_self and n_post != n_pre:
        raise ValueError(f"connectivity: no_self needs a square block, got ({n_post}, {n_pre})")
    u = jax.random.uniform(key, (n_post, n_pre))
    if no_self:
        u = jnp.where(jnp.eye(n_post, dtype=bool), 2.0, u)  # never among the smallest
    if kind == "bernoulli":
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"connectivity: p must lie in [0, 1], got {p}")
        return (u < p).astype(jnp.result_type(float))
    k = in_degree(p, n_pre, no_self)
    if k == 0:
        return jnp.zeros((n_post, n_pre), jnp.result_type(float))
    # the ranks, not u <= (k-th smallest): float32 draws tie (about 1 row in 25000 at
    # n_pre = 800), and a tie at the k-th gave K + 1 inputs; a stable sort breaks it by index
    rank = jnp.argsort(jnp.argsort(u, axis=1, stable=True), axis=1)
    return (rank < k).astype(jnp.result_type(float))


class NetworkConfig(NamedTuple):
    """A recipe for :func:`init_params`: sizes, model, dt (ms), delay (ms), connection
    probability and kind, the four weights (nS or nA), the E and I cell parameters, the
    synapse parameters, the external Poisson input (weight, rate in Hz per neuron) and a bias
    current (pA or nA); t_ref, the AdEx cells' refractory period (ms). ``exc``, ``inh`` None:
    the model's defaults, for AdEx RS_CELL (adapting) and FS_CELL (fast spiking), for ALIF
    ``adaptive_lif.DEFAULT`` for E cells and the same without adaptation (b = 0) for I cells,
    as interneurons fire without adapting."""

    n_exc: int = 800
    n_inh: int = 200
    model: str = "adex"
    dt: float = 0.1
    delay_ms: float = 1.5
    p: float = 0.1
    connectivity: str = "fixed_in_degree"
    w_ee: float = 4.0
    w_ei: float = 50.0
    w_ie: float = 4.0
    w_ii: float = 50.0
    exc: Any = None
    inh: Any = None
    exc_syn: syn.SynapseParams = syn.AMPA
    inh_syn: syn.SynapseParams = syn.GABA_A
    w_ext: float = 1.5
    rate_ext: float = 1000.0
    I_bias: float = 0.0
    t_ref: float = 5.0

    @property
    def spec(self) -> NetworkSpec:
        return NetworkSpec(self.n_exc, self.n_inh, self.model, self.dt, self.delay_ms)


RS_CELL = adex.AdExParams(
    C=200.0, g_L=10.0, E_L=-60.0, V_T=-50.0, Delta_T=2.0, a=0.0, tau_w=500.0, b=60.0,
    V_r=-60.0, V_peak=-30.0,
)  # fmt: skip
"""Regular-spiking E cell: 20 ms membrane at rest -60 mV, threshold -50 mV, b = 60 pA of
spike-triggered adaptation decaying over 500 ms (the sleep states scale b with
acetylcholine)."""

FS_CELL = adex.AdExParams(
    C=200.0, g_L=10.0, E_L=-60.0, V_T=-50.0, Delta_T=0.5, a=0.0, tau_w=500.0, b=0.0,
    V_r=-60.0, V_peak=-30.0,
)  # fmt: skip
"""Fast-spiking I cell: no adaptation, a sharp spike onset (Delta_T = 0.5 mV)."""


def _stack(exc, inh, n_exc: int, n_inh: int):
    """Per-population parameters -> one NamedTuple of (N,) arrays, E first; a ValueError
    naming the field unless each is a scalar or one value per cell (n_exc,) or (n_inh,)."""
    dtype = jnp.result_type(float)

    def part(v, n, pop, name):
        if jnp.shape(v) not in ((), (1,), (n,)):  # JAX's broadcast error named no field
            raise ValueError(f"init_params: NetworkConfig.{pop}.{name} must be a scalar or "
                             f"({n},), one value per cell, got shape {jnp.shape(v)}")  # fmt: skip
        return jnp.broadcast_to(jnp.asarray(v, dtype), (n,))

    return type(exc)(*(
        jnp.concatenate([part(e, n_exc, "exc", name), part(i, n_inh, "inh", name)])
        for name, e, i in zip(exc._fields, exc, inh)
    ))  # fmt: skip


def _cells(cfg: NetworkConfig):
    """The E and I cell parameters, each the model's NamedTuple: an ALIFParams paired with an
    AdExParams was zipped field by field (V_r and V_peak left at AdEx's defaults)."""
    if cfg.model == "adex":
        kind, default = adex.AdExParams, (RS_CELL, FS_CELL)
    else:
        kind, default = (
            adaptive_lif.ALIFParams,
            (adaptive_lif.DEFAULT, adaptive_lif.DEFAULT._replace(b=0.0)),
        )
    exc = default[0] if cfg.exc is None else cfg.exc
    inh = default[1] if cfg.inh is None else cfg.inh
    for name, cell in (("exc", exc), ("inh", inh)):
        if not isinstance(cell, kind):
            raise ValueError(
                f"init_params: NetworkConfig.{name} must be an {kind.__name__} for model "
                f"{cfg.model!r} (or None), got {type(cell).__name__}"
            )
    return exc, inh


def init_params(key, cfg: NetworkConfig | None = None) -> NetworkParams:
    """Draw the connectivity from ``key`` and assemble the parameters (vmappable over keys);
    ``cfg`` defaults to :data:`CORTEX`."""
    cfg = NetworkConfig() if cfg is None else cfg
    spec = check_spec(cfg.spec)  # sizes >= 1 named here, before a mask is drawn
    nE, nI = spec.n_exc, spec.n_inh
    k_ee, k_ei, k_ie, k_ii = jax.random.split(key, 4)
    mask = lambda k, n_post, n_pre, square: random_mask(
        k, n_post, n_pre, cfg.p, cfg.connectivity, no_self=square
    )
    _check_weight_signs(cfg)
    m_ee = mask(k_ee, nE, nE, True)
    exc, inh = _cells(cfg)
    return NetworkParams(
        neuron=_stack(exc, inh, nE, nI),
        W_ee=cfg.w_ee * m_ee,
        W_ei=cfg.w_ei * mask(k_ei, nE, nI, False),
        W_ie=cfg.w_ie * mask(k_ie, nI, nE, False),
        W_ii=cfg.w_ii * mask(k_ii, nI, nI, True),
        exc_syn=cfg.exc_syn,
        inh_syn=cfg.inh_syn,
        w_ext=cfg.w_ext,
        rate_ext=cfg.rate_ext,
        I_bias=cfg.I_bias,
        mask_ee=m_ee,
        t_ref=cfg.t_ref,
    )


CORTEX = NetworkConfig()
"""The default 1000-neuron AdEx network (module docstring), the base of the wake, NREM and REM
states of :mod:`~nnjax.brain.sleep_states`."""


def _check_weight_signs(cfg: NetworkConfig) -> None:
    """Excitatory weights >= 0; inhibitory ones >= 0 for AdEx (conductances, their sign in the
    reversal potential) and <= 0 for adaptive LIF (currents): the defaults, AdEx's 50 nS, made
    an adaptive-LIF network's "inhibition" 50 nA of excitation. Traced weights pass."""
    for name in ("w_ee", "w_ie", "w_ei", "w_ii"):
        w = concrete(getattr(cfg, name))
        if (w is None or w.dtype.kind == "b") and not isinstance(
            getattr(cfg, name), jax.core.Tracer
        ):
            # "4" failed in the product with the mask ("Only integer scalar arrays ...")
            raise ValueError(f"init_params: {name} must be a number or an array of numbers, got "
                             f"{getattr(cfg, name)!r}")  # fmt: skip
        inhibitory, alif = name in ("w_ei", "w_ii"), cfg.model == "alif"
        if w is None or (w <= 0 if inhibitory and alif else w >= 0).all():
            continue
        want = "<= 0 (a current)" if inhibitory and alif else ">= 0"
        hint = "; NetworkConfig's defaults are AdEx conductances" if alif and inhibitory else ""
        raise ValueError(f"init_params: {name} must be {want} for model {cfg.model!r}, got "
                         f"{getattr(cfg, name)}{hint}")  # fmt: skip
