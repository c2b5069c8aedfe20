"""Sleep as a learning mechanism: Sleep Replay Consolidation (SRC) and synaptic downscaling.

**Sleep Replay Consolidation** (Tadros, Krishnan, Ramyaa and Bazhenov, Nature Communications
13:7742, 2022, "Sleep-like unsupervised replay reduces catastrophic forgetting in artificial
neural networks"). After a task is learned, the bias-free ReLU network W_1..W_L (W_l of shape
(n_{l-1}, n_l), x W_l) is run as a network of integrate-and-fire neurons for ``steps`` time
steps, and a local STDP-like rule edits its weights. Sleep uses no labels. It does use the
training *inputs* of every task seen so far (the rows of ``X`` where ``mask``; in a continual
run, all stored training inputs of tasks 0..t, :mod:`nnjax.brain.continual`), through two
statistics: their pixel-wise mean m (d numbers: the only input sleep is driven by) and, per
layer, the largest ReLU activation the *current* network produces on any of them (L numbers;
with each layer's largest weight they set the layer scales, step 1). The mean could be kept
as a running sum, but the maxima are recomputed with the current weights, so as implemented
sleep reads the stored inputs of the old tasks (not their labels):

1. Layer scales (data-based normalisation, the authors' ``normalize_nn_data``): with the
   ReLU activations a_l of the network on the training inputs of every task seen so far,
   s_l = max(max_ij W_l, max a_l),  f_l = s_l / f_{l-1} (f_0 = 1),  alpha_l = alpha / f_l.
2. Input: at each step a masked copy of the mean input m of those inputs (one random
   ``patch`` x ``patch`` window kept, the rest zero) becomes Poisson spikes
   s_0 = [u <= 2 dt r x], u ~ U[0, 1), i.e. firing probability min(1, 2 dt r x_i).
3. Layer l, in order, within the same step: v_l <- decay v_l + alpha_l s_{l-1} W_l;
   s_l = [v_l >= beta_l theta]; v_l <- 0 where s_l = 1 (reset).
4. STDP on W_l, for every post-synaptic neuron j that spiked:
   W_ij <- W_ij + inc sigma(W_ij)   if pre-synaptic i spiked in this step,
   W_ij <- W_ij - dec sigma(W_ij)   if it did not,
   with the authors' weight gate sigma(w) = 2 (1 - logistic(w / 0.001)) (their code's
   ``sigmoid``): about 2 for negative weights, 1 at 0, about 0 for positive ones, so sleep
   mostly edits the inhibitory (negative) and near-zero synapses.

What we follow: steps 1-4 as in the authors' MATLAB (``sleepnn_old.m``,
``normalize_nn_data.m``, ``create_masked_input.m`` in github.com/tmtadros/SleepReplayConsolidation),
with threshold theta = 1, dt = 0.001, decay = 0.999, W_inh = 0, no refractory period and no
weight renormalisation (their MNIST settings). Where we deviate: the 7 tuned numbers (input
rate r, inc, dec, beta_1..3, alpha) were chosen by a random search on a validation split of
digits (see ``docs/results/sleep-digits/src_search.json``), not by the authors' genetic
algorithm on MNIST; every sleep has the same length, 1000 steps (theirs: 15000 + 5000 (t-1)
on MNIST), and the window is 4 x 4 of the 8 x 8 digits (theirs 11 x 11 of 28 x 28); the network
is 64-128-128-10, trained with softmax cross-entropy and no dropout (theirs 784-1200-1200-10
with a ReLU output and dropout). The input rate r = 807 found by the search saturates the
firing probability at 1 for x > 0.62.

**Synaptic downscaling** (the synaptic homeostasis hypothesis: sleep scales synapses down).
In a bias-free ReLU network it is the contrast case: the network is positively homogeneous in
each layer's weights, relu(c z) = c relu(z) for c > 0, so f(W_1, .., c W_l, .., W_L)(x) =
c f(W_1, .., W_L)(x), scaling every layer by c_l scales the output by prod_l c_l, and the
argmax (the prediction) is unchanged. The hypothesis is about synapses relative to a neuron's
fixed firing threshold, and about pruning the weakest synapses; both are measured in the
spiking network, where they change firing and accuracy, in :mod:`nnjax.brain.homeostasis`.
"""

import math
from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from nnjax.brain.dynamics import check_count, check_positive, concrete

Array = jax.Array


class SRCParams(NamedTuple):
    """The tuned numbers of SRC (arrays, so a search can ``vmap`` over them).

    ``rate`` the input rate r (Hz), ``inc``/``dec`` the STDP steps, ``beta`` (L,) the layer
    thresholds (times theta = 1), ``alpha`` the global scale of the layer scales.
    """

    rate: Array
    inc: Array
    dec: Array
    beta: Array
    alpha: Array


PAPER = SRCParams(
    jnp.array(240.0),
    jnp.array(0.032),
    jnp.array(0.0033),
    jnp.array([14.5, 44.6, 38.0]),
    jnp.array(55.9),
)
"""The authors' values for MNIST (``run_class_task_summary.m``): the search's starting point."""

CHOSEN = SRCParams(
    jnp.array(807.2205),
    jnp.array(0.012077184),
    jnp.array(0.0066998033),
    jnp.array([58.392891, 152.58865, 199.85628]),
    jnp.array(171.95349),
)
"""The values chosen on the validation split by the earlier SRC-only search (2 rounds of 48
candidates, 3 validation runs each; mean final validation accuracy 56.1% against 19.7% for
no sleep; ``docs/results/sleep-digits/src_search.json``). Used with ``SRCConfig()``.
The study behind ``nnjax sleep`` uses the fair harness's choices instead
(:mod:`nnjax.brain.harness`, :mod:`nnjax.brain.tuned`)."""


def as_dict(hp: SRCParams) -> dict:
    """Plain floats / lists, for JSON."""
    return {k: jnp.asarray(v).tolist() for k, v in hp._asdict().items()}


class SRCConfig(NamedTuple):
    """The fixed (static) settings of a sleep phase; the authors' values by default: ``steps``
    >= 1 time steps, a ``patch`` >= 1 wide window, membrane ``decay`` in [0, 1], time step
    ``dt`` > 0, ``threshold`` theta > 0, ``gate_scale`` > 0 (:func:`check_config`)."""

    steps: int = 1000
    patch: int = 4
    decay: float = 0.999
    dt: float = 0.001
    threshold: float = 1.0
    gate_scale: float = 0.001


def check_config(cfg: SRCConfig, where: str = "sleep") -> SRCConfig:
    """``cfg`` when it is a valid :class:`SRCConfig`, else a ValueError naming ``where`` and the
    field (patch 0 kept no pixel and steps -1 failed deep in XLA: no sleep, silently or not)."""
    if not isinstance(cfg, SRCConfig):
        raise ValueError(f"{where}: cfg must be an SRCConfig, got {cfg!r}")
    check_count(cfg.steps, "SRCConfig.steps", where)
    check_count(cfg.patch, "SRCConfig.patch", where)
    for name, ok in (("decay", lambda v: 0 <= v <= 1), ("dt", lambda v: v > 0),
                     ("threshold", lambda v: v > 0), ("gate_scale", lambda v: v > 0)):  # fmt: skip
        v = getattr(cfg, name)
        if isinstance(v, bool) or not isinstance(v, int | float | np.number):
            raise ValueError(f"{where}: SRCConfig.{name} must be a number, got {v!r}")
        if not (math.isfinite(v) and ok(v)):
            bound = "in [0, 1]" if name == "decay" else "> 0"
            raise ValueError(f"{where}: SRCConfig.{name} must be finite and {bound}, got {v}")
    return cfg


def check_params(hp: SRCParams, where: str = "sleep") -> SRCParams:
    """``hp`` with array fields when its concrete values are finite, ``rate``, ``inc`` and
    ``dec`` >= 0, ``beta`` and ``alpha`` > 0, else a ValueError naming ``where`` and the field
    (a nan rate made no spike: a silent no-op). Traced fields pass unchecked."""
    if not isinstance(hp, SRCParams):
        raise ValueError(f"{where}: hp must be an SRCParams, got {type(hp).__name__}")
    hp = SRCParams(*(jnp.asarray(v) for v in hp))
    for name in SRCParams._fields:
        v = concrete(getattr(hp, name))
        if v is None:
            continue
        positive = name in ("beta", "alpha")
        ok = np.isfinite(v) & ((v > 0) if positive else (v >= 0))
        if not np.all(ok):
            bad = v[~ok].ravel()[0] if v.ndim else v.item()
            bound = "> 0" if positive else ">= 0"
            raise ValueError(f"{where}: hp.{name} must be finite and {bound}, got {bad}")
    return hp


def _check_shapes(weights, X, mask, beta, image_shape) -> tuple:
    """The weight chain, ``X`` (n, d), ``mask`` (n,), ``beta`` (L,) and ``image_shape`` (d
    pixels in all) agree, else a ValueError naming :func:`sleep`. Returns image_shape."""
    if not weights:
        raise ValueError("sleep: weights is empty; give [W_1 (d, n_1), ..., W_L]")
    for l, W in enumerate(weights):
        if W.ndim != 2 or (l and W.shape[0] != weights[l - 1].shape[1]):
            after = f" after {weights[l - 1].shape}" if l else ""
            raise ValueError(f"sleep: weights must be 2-D and chain (d, n_1), (n_1, n_2), ...; "
                             f"W_{l + 1} is {W.shape}{after}")  # fmt: skip
    L, d = len(weights), weights[0].shape[0]
    if beta.shape != (L,):
        got = f"has {beta.shape[-1]} entries" if beta.ndim else "is a scalar"
        raise ValueError(f"sleep: hp.beta {got} for {L} layers; it must be ({L},), one per layer")
    if X.ndim != 2 or X.shape[-1] != d:
        raise ValueError(f"sleep: X has {X.shape[-1] if X.ndim else 0} features, W_1 expects "
                         f"{d}; X must be (n, {d})")  # fmt: skip
    if X.shape[0] < 1:  # no input: the layer scales' max over no row failed in a reduction
        raise ValueError(f"sleep: X must hold at least one input (n >= 1, {d}), got {X.shape}")
    if mask.shape != X.shape[:1]:
        raise ValueError(f"sleep: mask must be ({X.shape[0]},), one per row of X, got {mask.shape}")
    known = concrete(mask)  # a traced mask passes (the harness's, which is never empty)
    if known is not None and not known.any():  # mean input 0: no spike, weights unchanged
        raise ValueError("sleep: mask selects no input; mark the rows of X seen so far")
    shape = tuple(image_shape) if isinstance(image_shape, tuple | list) else None
    if not shape or any(isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1
                        for n in shape) or math.prod(shape) != d:  # fmt: skip
        raise ValueError(f"sleep: image_shape must be a tuple of ints >= 1 with {d} pixels "
                         f"in all (X's features), got {image_shape!r}")  # fmt: skip
    return tuple(int(n) for n in shape)


def stdp_gate(w: Array, scale: float = 0.001) -> Array:
    """sigma(w) = 2 (1 - logistic(w / scale)): the weight gate of the SRC updates; ``scale``
    finite and > 0 (a tracer passes), else a ValueError."""
    if not isinstance(scale, jax.core.Tracer) and concrete(scale) is None:  # None: a TypeError
        raise ValueError(f"stdp_gate: scale must be a finite number > 0, got {scale!r}")
    check_positive(scale, "scale", "stdp_gate")  # 0 or < 0 flipped or froze the gate
    return 2.0 * jax.nn.sigmoid(-w / scale)


def forward_activations(weights: Sequence[Array], X: Array) -> list[Array]:
    """ReLU activations [relu(X W_1), relu(relu(X W_1) W_2), ...] of the bias-free net."""
    X, shapes = jnp.asarray(X), [jnp.shape(W) for W in weights]
    if (
        X.ndim != 2
        or not shapes
        or any(len(w) != 2 for w in shapes)
        or any(a[-1] != b[0] for a, b in zip([X.shape, *shapes], shapes))
    ):  # a dot_general TypeError before
        raise ValueError(
            f"forward_activations: need X (n, d) and weights chaining (d, n_1), (n_1, n_2), ...;"
            f" got X {X.shape} and weights {shapes}"
        )
    acts, a = [], X
    for W in weights:
        a = jax.nn.relu(a @ W)
        acts.append(a)
    return acts


def layer_scales(weights: Sequence[Array], X: Array, mask: Array) -> Array:
    """(L,) data-based layer scales 1 / f_l with f_l = s_l / f_{l-1}, s_l = max(max W_l,
    max over the rows of X where ``mask`` of a_l) (module docstring, step 1)."""
    acts = forward_activations(weights, X)
    if jnp.shape(mask) != acts[0].shape[:1]:
        raise ValueError(f"layer_scales: mask must be ({acts[0].shape[0]},), got {jnp.shape(mask)}")
    prev, out = 1.0, []
    for W, a in zip(weights, acts):
        a_max = jnp.max(jnp.where(mask[:, None], a, 0.0))
        s = jnp.maximum(jnp.max(jnp.maximum(W, 0.0)), a_max)
        f = s / prev
        out.append(1.0 / f)
        prev = f
    return jnp.stack(out)


def masked_mean_input(key: Array, mean: Array, image_shape: tuple, patch: int) -> Array:
    """``mean`` (d,) with all but one random ``patch``-wide window (square for 2-D images,
    an interval for 1-D signals) set to 0 (the authors' ``create_masked_input``)."""
    patch = check_count(patch, "patch", "masked_mean_input")  # 0 kept no pixel, silently
    if (
        not isinstance(image_shape, tuple | list)
        or not all(isinstance(n, int | np.integer) and n >= 1 for n in image_shape)
        or jnp.shape(mean) != (math.prod(image_shape),)
    ):
        raise ValueError(
            f"masked_mean_input: mean must be (d,) with d the pixels of image_shape (ints >= 1),"
            f" got mean {jnp.shape(mean)} and image_shape {image_shape!r}"
        )
    keys = jax.random.split(key, len(image_shape))
    keep = jnp.ones(image_shape, bool)
    for axis, (k, n) in enumerate(zip(keys, image_shape)):
        p = min(patch, n)
        start = jax.random.randint(k, (), 0, n - p + 1)
        pos = jnp.arange(n)
        inside = (pos >= start) & (pos < start + p)
        shape = [1] * len(image_shape)
        shape[axis] = n
        keep = keep & inside.reshape(shape)
    return jnp.where(keep.reshape(-1), mean, 0.0)


def sleep(
    weights: Sequence[Array],
    key: Array,
    X: Array,
    mask: Array,
    hp: SRCParams,
    image_shape: tuple,
    cfg: SRCConfig | None = None,
) -> tuple[list[Array], Array]:
    """One SRC sleep phase (module docstring): returns (new weights, spike counts (L+1,)).

    ``weights``: [W_1 (d, n_1), ..., W_L (n_{L-1}, K)]; ``X`` (n, d) inputs in [0, 1] and
    ``mask`` (n,) bool: the inputs seen so far (their mean drives the sleep; their activations
    set the layer scales); ``image_shape`` d pixels in all; ``hp.beta`` (L,). Shapes, ``cfg``
    (:func:`check_config`) and concrete ``hp`` (:func:`check_params`) are checked first. A
    nan/inf in the mean input (any row of X: it is m @ X) or in ``hp`` makes every returned
    weight and count nan (it drove no spike: the weights came back unchanged). The loop over
    time steps is a ``lax.scan``; jit/vmap-able.
    """
    cfg = check_config(SRCConfig() if cfg is None else cfg)
    hp = check_params(hp)
    weights = [jnp.asarray(W) for W in weights]
    X, mask = jnp.asarray(X), jnp.asarray(mask)
    image_shape = _check_shapes(weights, X, mask, hp.beta, image_shape)
    # one floating dtype: an int or float16 X, or mixed dtypes, failed in the scan's carry
    dtype = jnp.result_type(X.dtype, *(W.dtype for W in weights))
    if not jnp.issubdtype(dtype, jnp.floating):
        dtype = jnp.result_type(float)
    X, weights = X.astype(dtype), [W.astype(dtype) for W in weights]
    L = len(weights)
    m = mask.astype(X.dtype)
    mean = (m @ X) / jnp.maximum(m.sum(), 1.0)
    alphas = hp.alpha * layer_scales(weights, X, mask)
    p_scale = 2.0 * cfg.dt * hp.rate

    def step(carry, k):
        Ws, vs, counts = carry
        k_mask, k_spike = jax.random.split(k)
        x = masked_mean_input(k_mask, mean, image_shape, cfg.patch)
        s = (jax.random.uniform(k_spike, x.shape) <= p_scale * x).astype(x.dtype)
        new_Ws, new_vs, new_counts = [], [], [counts[0] + s.sum()]
        for l in range(L):
            W = Ws[l]
            v = cfg.decay * vs[l] + alphas[l] * (s @ W)
            post = (v >= hp.beta[l] * cfg.threshold).astype(x.dtype)
            gate = stdp_gate(W, cfg.gate_scale)
            dW = (hp.inc * s[:, None] - hp.dec * (1.0 - s)[:, None]) * post[None, :] * gate
            new_Ws.append(W + dW)
            new_vs.append(jnp.where(post > 0, 0.0, v))
            new_counts.append(counts[l + 1] + post.sum())
            s = post
        return (new_Ws, new_vs, jnp.stack(new_counts)), None

    vs = [jnp.zeros(W.shape[1], X.dtype) for W in weights]
    counts = jnp.zeros(L + 1, X.dtype)
    (Ws, _, counts), _ = jax.lax.scan(step, (weights, vs, counts), jax.random.split(key, cfg.steps))
    bad = ~jnp.isfinite(mean).all()
    for v in hp:
        bad = bad | ~jnp.isfinite(v).all()
    return [jnp.where(bad, jnp.nan, W) for W in Ws], jnp.where(bad, jnp.nan, counts)


def downscale(weights: Sequence[Array], factors: float | Sequence[float]) -> list[Array]:
    """Synaptic downscaling W_l <- c_l W_l (c_l finite and > 0, not a bool; one number, Python,
    NumPy or a 0-d array, scales every layer). Concrete factors are checked; traced ones pass.

    For a bias-free ReLU net the output is scaled by prod_l c_l and the argmax is unchanged.
    """
    weights = list(weights)
    if not isinstance(factors, list | tuple) and jnp.ndim(factors) == 0:
        factors = [factors] * len(weights)
    factors = list(factors)
    if len(factors) != len(weights):
        raise ValueError(f"downscale: {len(factors)} factors for {len(weights)} weight matrices")
    for i, c in enumerate(factors):
        v = concrete(c)
        bad = v is None and not isinstance(c, jax.core.Tracer)
        if bad or jnp.ndim(c) != 0 or (v is not None and v.dtype.kind == "b"):  # True ran as 1
            raise ValueError(f"downscale: factor {i} must be a number, got {c!r}")
        if v is not None and not (np.isfinite(v) and v > 0):
            raise ValueError(f"downscale: factor {i} must be > 0 and finite, got {c}")
    return [c * W for c, W in zip(factors, weights)]


def make_src_method(image_shape: tuple, cfg: SRCConfig | None = None):
    """SRC as a :class:`nnjax.brain.continual.Method`: sleep after every task; ``hp`` is an
    :class:`SRCParams` passed to the run (so studies vmap over it)."""
    from nnjax.brain.continual import Method, weights_of, with_weights

    def after_task(params, extra, key, t, task, seen, hp):
        X, mask = seen
        del task, t
        Ws, _ = sleep(weights_of(params), key, X, mask, hp, image_shape, cfg)
        return with_weights(params, Ws), extra

    check_config(SRCConfig() if cfg is None else cfg, "make_src_method")
    return Method(after_task=after_task, check=lambda hp: check_params(hp, "make_src_method"))
