"""Synaptic homeostasis where it matters: downscaling and pruning in a spiking network with
fixed thresholds.

The synaptic homeostasis hypothesis (Tononi and Cirelli 2003, 2014) says sleep scales the
synapses potentiated during waking down, and lets the weakest ones go. In a bias-free ReLU
network a uniform downscaling W_l <- c W_l (c > 0) changes nothing the network decides: the
output is multiplied by c^L (:func:`nnjax.brain.sleep.downscale`); with biases, b_l <- c^l b_l
keeps that true (:func:`downscaled`). A spiking neuron has a
threshold that does not scale with its synapses, and there it matters. Here the network is the
trained ReLU MLP converted into integrate-and-fire neurons (:mod:`nnjax.brain.convert`:
threshold theta = 1, subtractive reset, no leak, layer-wise normalised weights W_l', analog
input), run for T steps; hidden neuron j of layer l fires at rate

    r_lj = (number of spikes in T steps) / T  ~  clip(sum_i r_{l-1,i} W'_lij + b'_lj, 0, 1),

to within 1/T in the first hidden layer, whose drive (the analog input) is constant; deeper
layers integrate spike trains, and their error is C/T with C set by the weights and the
membrane's transient (:mod:`nnjax.brain.convert`: C about 2.6 at layer 2 of a 64-32-16-10
MLP), not 1/T. Downscaling every layer by c multiplies each layer's weights, relative to
the fixed threshold, by c, so the rates of layer l fall roughly as c^l, and a neuron whose
drive over the T steps stays under the threshold falls silent: information is lost once
the deepest hidden layer's few spikes no longer carry it. Pruning (:func:`prune`) sets the
fraction p of each layer's weights with the smallest |w| to 0.

:func:`sweep` measures both on data: per downscaling factor c and per pruning fraction p, the
mean firing rate of each hidden layer (spikes per step, over neurons, inputs and steps), the
fraction of silent hidden neurons, and the spiking network's accuracy (argmax of the decoded
output). Measured in ``tests/test_brain_homeostasis.py`` and notebook 06.
"""

from collections.abc import Iterable, Mapping, Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from nnjax.brain.convert import Converted, ann_forward, simulate
from nnjax.brain.dynamics import check_number, check_positive
from nnjax.brain.sleep import downscale
from nnjax.layers.checks import as_real

Array = jax.Array


def prune(weights: Sequence[Array] | Array, fraction: float) -> list[Array] | Array:
    """Each W_l with its k = floor(fraction * size) entries of smallest |w| set to 0 (ties
    broken by position); ``fraction`` in [0, 1). k is the floor of the intended product: a
    product a few ulps below an integer counts as that integer (0.29 of 100 weights is 29,
    although the binary float 0.29 times 100 is 28.999999999999996); a NumPy or JAX float32
    (float16) fraction is read as it prints, np.float32(0.29) as 0.29, not as the
    0.28999999165534973 it holds. Weights must be finite real numbers, a ValueError otherwise
    (a nan |w| sorted last and was kept); the dtype is kept. Integer weights are ordered by
    their exact |w| (int8 -128 has |w| = 128, not the -128 that jnp.abs wraps it to).

    ``weights`` is a list of weight matrices, each pruned on its own (returns a list), or a
    single array (a NumPy or JAX array), pruned as one matrix over all its entries (returns
    an array); a bare array is never split into rows.
    """
    fraction = _as_written(fraction, "fraction", "prune")  # a string failed in a comparison
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"prune: fraction must be in [0, 1), got {fraction}")
    if isinstance(weights, np.ndarray | jax.Array):
        return _prune_one(weights, fraction, "weights")
    if isinstance(weights, str | bytes | Mapping) or not isinstance(weights, Iterable):
        raise ValueError(  # None failed with "'NoneType' object is not iterable"
            f"prune: weights must be a list of weight arrays or one array, got {weights!r:.60}"
        )
    return [_prune_one(W, fraction, f"weights[{i}]") for i, W in enumerate(weights)]


def _as_written(value, name: str, where: str) -> float:
    """:func:`check_number`'s float, except that a NumPy or JAX float is read as it prints
    (:func:`nnjax.layers.checks.as_real`: np.float32(0.29) is 0.29; its exact
    0.28999999165534973 pruned 28 of 100 weights, the float64 tolerance of a few ulps being
    far too small for it; a float64 prints as its exact value)."""
    x = check_number(value, name, where)
    v = np.asarray(value)[()]  # a JAX scalar as a NumPy one, which as_real reads as it prints
    return as_real(v) if isinstance(v, np.floating) else x


def _prune_one(W, fraction: float, name: str) -> Array:
    try:
        W = jnp.asarray(W)  # a string or a ragged list: TypeError / ValueError
    except (TypeError, ValueError):
        raise ValueError(f"prune: {name} must be an array of real numbers, got {W!r:.60}") from None
    if not any(jnp.issubdtype(W.dtype, t) for t in (jnp.integer, jnp.floating)):  # bool, complex
        raise ValueError(f"prune: {name} must be an array of real numbers, got dtype {W.dtype}")
    if not isinstance(W, jax.core.Tracer) and not bool(jnp.isfinite(W).all()):
        bad = int(W.size - jnp.isfinite(W).sum())
        raise ValueError(f"prune: {name} must be finite, got {bad} nan/inf of {W.size} entries")
    x = fraction * W.size  # a product a few ulps under an integer k is k (0.29 * 100)
    k = min(int(np.floor(x + 8 * np.finfo(float).eps * x)), max(W.size - 1, 0))
    mag = jnp.abs(W).reshape(-1)
    if jnp.issubdtype(W.dtype, jnp.signedinteger):  # |int8 -128| wrapped to -128: pruned first
        mag = mag.astype(jnp.dtype(f"uint{8 * W.dtype.itemsize}"))  # -128 -> 128, others kept
    order = jnp.argsort(mag, stable=True)
    keep = jnp.ones(W.size, bool).at[order[:k]].set(False)
    return jnp.where(keep.reshape(W.shape), W, jnp.zeros_like(W))


def with_layer_weights(converted: Converted, weights: Sequence[Array]) -> Converted:
    """``converted`` with its layers' W replaced by ``weights`` (biases and scales kept)."""
    weights = list(weights)
    old = [jnp.shape(p["W"]) for p in converted.layers]
    if [jnp.shape(W) for W in weights] != old:  # zip's error, or a later shape failure
        raise ValueError(
            f"with_layer_weights: weights must have the layers' shapes {old}, got "
            f"{[jnp.shape(W) for W in weights]}"
        )
    layers = [{**p, "W": W} for p, W in zip(converted.layers, weights, strict=True)]
    return Converted(layers, converted.scales)


def downscaled(converted: Converted, c: float) -> Converted:
    """``converted`` downscaled by c > 0: W_l <- c W_l and b_l <- c^l b_l (layers l = 1..L).

    The ReLU network then computes c^l a_l at layer l (relu(c^{l-1} a_{l-1} c W_l + c^l b_l)
    = c^l relu(a_{l-1} W_l + b_l)), so its output is c^L times the original and its argmax
    unchanged, biases included; for a bias-free network it is W_l <- c W_l alone. The
    spiking network's thresholds stay at 1, so its layer l is driven c^l times less.
    ``c`` is one number (Python, NumPy or a 0-d array; a tracer passes unchecked); a bool,
    a string, a sequence, 0, a negative, nan or inf is a ValueError naming ``c``.
    """
    if not isinstance(c, jax.core.Tracer):  # a list failed in c ** l; True ran as 1
        c = check_number(c, "c", "downscaled")
        check_positive(c, "c", "downscaled")  # 0, < 0, nan, inf ("downscale: factor 0 ...")
    Ws = downscale([p["W"] for p in converted.layers], c)
    layers = [{**p, "W": W} | ({"b": c ** (i + 1) * p["b"]} if "b" in p else {})
              for i, (p, W) in enumerate(zip(converted.layers, Ws, strict=True))]  # fmt: skip
    # (a layer without "b" is left to simulate's check, which names it)
    return Converted(layers, converted.scales)


class Firing(NamedTuple):
    """What a spiking run gives: ``rates`` (L-1,) the mean rate of each hidden layer (spikes
    per step), ``silent`` (L-1,) the fraction of its neurons that never fired on any input,
    ``accuracy`` the fraction of argmax(output) equal to the labels, ``ann_accuracy`` the same
    for the ReLU network with the same weights (no spikes, no threshold)."""

    rates: np.ndarray
    silent: np.ndarray
    accuracy: float
    ann_accuracy: float


def firing(converted: Converted, X: Array, y: Array, n_steps: int) -> Firing:
    """Run ``converted`` (:func:`nnjax.brain.convert.simulate`) on X (n, d) for ``n_steps``
    steps and summarise it (:class:`Firing`). y (n,) holds integer labels in 0..n_out-1
    (else a ValueError: 0.5, 7 of 3 outputs or True matched no prediction, silently)."""
    out = simulate(converted, X, n_steps)
    if np.shape(y) != out.output.shape[:1] or out.output.shape[0] == 0:
        raise ValueError(
            f"firing: y must be (n,) = ({out.output.shape[0]},) labels for X, n >= 1, got "
            f"{np.shape(y)}"
        )
    _check_labels(y, out.output.shape[1])
    rates = np.array([float(r.mean()) for r in out.rates])
    # in NumPy: JAX's mean of booleans is float32 even under x64 (1/3 read 0.33333334)
    silent = np.array([(np.asarray(r).max(axis=0) == 0).mean() for r in out.rates])
    acc = float(np.mean(np.asarray(out.output).argmax(-1) == np.asarray(y)))
    ann = np.asarray(ann_forward(converted.layers, jnp.asarray(X))).argmax(-1)
    return Firing(rates, silent, acc, float(np.mean(ann == np.asarray(y))))


def _check_labels(y, n_out: int) -> None:
    """A ValueError naming ``firing: y`` unless y holds integer labels in 0..n_out-1."""
    labels = np.asarray(y)
    if labels.dtype.kind in "bcOUSV":  # bools, complex, strings (bfloat16 labels: no)
        raise ValueError(f"firing: y must hold integer labels, got dtype {labels.dtype}")
    bad = ~np.isfinite(labels) | (labels < 0) | (labels >= n_out) | (labels != np.round(labels))
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(
            f"firing: y must hold integer labels in 0..{n_out - 1}, got y[{i}] = {labels[i]}"
        )


class Sweep(NamedTuple):
    """:func:`sweep`'s result: ``factors`` (F,) and ``fractions`` (P,), with per entry the
    hidden layers' mean ``rates`` (F or P, L-1), ``silent`` fractions (F or P, L-1), the
    spiking ``accuracy`` and the ReLU network's ``ann_accuracy`` (F or P,), after downscaling
    (``down_*``) or pruning (``pruned_*``)."""

    factors: np.ndarray
    down_rates: np.ndarray
    down_silent: np.ndarray
    down_accuracy: np.ndarray
    down_ann_accuracy: np.ndarray
    fractions: np.ndarray
    pruned_rates: np.ndarray
    pruned_silent: np.ndarray
    pruned_accuracy: np.ndarray
    pruned_ann_accuracy: np.ndarray


def sweep(
    converted: Converted,
    X: Array,
    y: Array,
    n_steps: int,
    factors: Sequence[float] = (1.0, 0.8, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1),
    fractions: Sequence[float] = (0.0, 0.2, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9),
) -> Sweep:
    """Uniform downscaling of every layer by each c in ``factors`` (:func:`downscaled`: the
    biases by c^l, so the ReLU network's accuracy stays the same with biases too), and
    pruning of each fraction p in ``fractions`` (:func:`prune`, per layer, biases kept), each
    from ``converted``, the thresholds fixed at 1: firing and accuracy on X (n, d), y (n,)
    (:func:`firing`).
    One compiled simulation serves every entry (the shapes do not change). ``factors`` and
    ``fractions`` must each hold at least one value (ValueError otherwise).
    """
    if any(isinstance(v, str) or np.ndim(v) != 1 for v in (factors, fractions)):
        raise ValueError(
            f"sweep: factors and fractions must be sequences of numbers, got {factors!r}, "
            f"{fractions!r}"
        )
    factors, fractions = list(factors), list(fractions)
    for name, values in (("factors", factors), ("fractions", fractions)):
        if not values:
            raise ValueError(f"sweep: {name} must hold at least one value, got none")
    # each value before any run: float() parsed "0.5" and ran True as 1; a bad late value
    # failed after the earlier runs, as downscale's "factor 0" (its index of a layer)
    factors = [check_number(c, f"factors[{i}]", "sweep") for i, c in enumerate(factors)]
    fractions = [_as_written(p, f"fractions[{i}]", "sweep") for i, p in enumerate(fractions)]
    for i, c in enumerate(factors):
        if not 0 < c < np.inf:
            raise ValueError(f"sweep: factors[{i}] must be > 0 and finite, got {c}")
    for i, p in enumerate(fractions):
        if not 0 <= p < 1:
            raise ValueError(f"sweep: fractions[{i}] must be in [0, 1), got {p}")
    Ws = [p["W"] for p in converted.layers]
    down = [firing(downscaled(converted, float(c)), X, y, n_steps) for c in factors]
    pruned = [firing(with_layer_weights(converted, prune(Ws, float(p))), X, y, n_steps)
              for p in fractions]  # fmt: skip

    def stack(runs: list[Firing]) -> tuple:
        return tuple(np.stack([np.asarray(getattr(r, f)) for r in runs]) for f in Firing._fields)

    return Sweep(np.asarray(factors), *stack(down), np.asarray(fractions), *stack(pruned))
