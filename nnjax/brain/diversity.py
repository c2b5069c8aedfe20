"""How varied a set of generated samples is, against real data.

Two figures, each computed for the samples and for real inputs alike, so they can be read
side by side (e.g. a VAE's dreams in :mod:`nnjax.brain.dreams`):

* **class histogram**: a classifier trained on the real data assigns each sample a class,
  h_k = #{i : argmax f(x_i) = k} (K,). From it: the *entropy* H = -sum_k p_k log2 p_k in bits
  (p = h / n; 0 log 0 = 0; log2 K for a uniform histogram, 0 when every sample gets one
  class), the *effective number of classes* 2^H, and the *classes covered*, #{k : h_k > 0}.
* **mean pairwise distance**: D = 2 / (n (n - 1)) sum_{i<j} ||x_i - x_j||_2 over the n
  samples (n >= 2), in input units; samples that are all one average input have D near 0,
  while real data have the spread of their classes and styles.

The samples' D divided by the real data's D is the *distance ratio*: 1 when the samples spread
as far as the data, well under 1 for a collapsed generator.
"""

from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from nnjax.brain.dynamics import check_count


class Diversity(NamedTuple):
    """:func:`diversity` of one set of samples: ``histogram`` (K,) int counts, ``entropy_bits``
    H, ``effective_classes`` 2^H, ``classes_covered``, ``mean_distance`` D."""

    histogram: np.ndarray
    entropy_bits: float
    effective_classes: float
    classes_covered: int
    mean_distance: float


def _as_real(x, name: str, where: str) -> np.ndarray:
    """``x`` as a float64 array, or a ValueError naming ``where: name`` for bools, complex
    numbers, strings or objects ("1" was parsed, True counted as 1); bfloat16 is cast."""
    try:
        a = np.asarray(x)
    except (TypeError, ValueError):  # a ragged list
        raise ValueError(f"{where}: {name} must hold real numbers, got {x!r:.60}") from None
    if a.dtype.kind in "bcOUSMm":
        raise ValueError(f"{where}: {name} must hold real numbers, got dtype {a.dtype}")
    return a.astype(np.float64)


def class_histogram(labels, n_classes: int) -> np.ndarray:
    """h_k = #{i : labels_i = k}, (K,) int; labels (n,) ints in [0, K)."""
    n_classes = check_count(n_classes, "n_classes", "class_histogram")
    labels = np.asarray(labels)
    whole = labels.dtype.kind == "f" and np.all(np.isfinite(labels) & (labels == np.round(labels)))
    if labels.size == 0 or whole:  # [] is float64; whole floats are class ids (inf is not)
        labels = labels.astype(np.int64)
    if labels.dtype.kind not in "iu":  # a float or str label failed in np.bincount's cast
        raise ValueError(f"class_histogram: labels must be ints, got dtype {labels.dtype}")
    if labels.ndim != 1:
        raise ValueError(
            f"class_histogram: labels must be a 1-D array of ints, got shape {labels.shape}"
        )
    out = labels[(labels < 0) | (labels >= n_classes)]
    if out.size:  # the message named the (valid) shape, not the label
        raise ValueError(
            f"class_histogram: labels must be ints in [0, {n_classes}), got {out[0]} "
            f"({out.size} of {labels.size} outside)"
        )
    return np.bincount(labels, minlength=n_classes)


def entropy_bits(histogram) -> float:
    """H = -sum_k p_k log2 p_k of a histogram of counts (p = h / sum h; 0 log 0 = 0)."""
    h = _as_real(histogram, "histogram", "entropy_bits")  # [True, False] ran as counts 1, 0
    if h.ndim != 1 or not h.sum() > 0 or (h < 0).any() or not np.isfinite(h).all():  # nan
        raise ValueError(
            "entropy_bits: need a 1-D histogram of finite non-negative counts, not all 0"
        )
    p = h[h > 0] / h.sum()
    return float(-(p * np.log2(p)).sum() + 0.0)


def mean_pairwise_distance(X) -> float:
    """D = 2 / (n (n - 1)) sum_{i<j} ||x_i - x_j||_2 for X (n, d), n >= 2 (in float64;
    through the Gram matrix of the centred rows y_i = x_i - mean_k x_k, ||x_i - x_j||^2 =
    |y_i|^2 + |y_j|^2 - 2 y_i . y_j: centring leaves every difference as it is and keeps a
    large common offset from cancelling them), :data:`BLOCK_ROWS` rows at a time. X must
    hold finite real numbers (nan or inf: a ValueError naming the first bad row; a nan D
    read as "no spread" downstream); bools and strings are refused."""
    X = _as_real(X, "X", "mean_pairwise_distance")
    if X.ndim != 2 or X.shape[0] < 2:
        raise ValueError(f"mean_pairwise_distance: need X of shape (n >= 2, d), got {X.shape}")
    bad = np.flatnonzero(~np.isfinite(X).all(axis=1))
    if bad.size:
        raise ValueError(
            f"mean_pairwise_distance: X must be finite, got nan/inf in {bad.size} of "
            f"{X.shape[0]} rows (first: row {bad[0]})"
        )
    Y = X - X.mean(axis=0)
    sq = (Y * Y).sum(1)
    n = X.shape[0]
    total = 0.0
    for a in range(0, n - 1, BLOCK_ROWS):  # rows a..b against the later rows: O(BLOCK_ROWS n)
        b = min(a + BLOCK_ROWS, n)
        d2 = np.maximum(sq[a:b, None] + sq[None, a:] - 2.0 * Y[a:b] @ Y[a:].T, 0.0)
        upper = np.arange(a, b)[:, None] < np.arange(a, n)[None, :]  # pairs i < j only
        total += float(np.sqrt(d2[upper]).sum())
    return total / (n * (n - 1) / 2)


BLOCK_ROWS = 1024
"""Rows of X per block in :func:`mean_pairwise_distance`: memory O(BLOCK_ROWS n), not the
n x n Gram matrix (tens of GB at n = 60000, an MNIST training set)."""


def diversity(X, classify: Callable, n_classes: int) -> Diversity:
    """The figures of the module docstring for samples X (n, d); ``classify(X) -> (n, K)``
    scores (e.g. a trained classifier's logits), argmax taken as the class. A ValueError when
    the scores are not (n, n_classes) or a sample's scores hold NaN (no class can be read off
    it; argmax would call it class 0)."""
    n_classes = check_count(n_classes, "n_classes", "diversity")
    X = np.asarray(X)
    if X.ndim != 2 or X.shape[0] < 2:  # checked before classify runs (n=0 named entropy_bits)
        raise ValueError(f"diversity: need samples X of shape (n >= 2, d), got {X.shape}")
    if not callable(classify):  # 3 failed with "'int' object is not callable"
        raise ValueError(
            f"diversity: classify must be a function X (n, d) -> scores (n, n_classes), got "
            f"{classify!r:.60}"
        )
    scores = np.asarray(classify(X))
    if scores.shape != (X.shape[0], n_classes):
        raise ValueError(
            f"diversity: classify(X) must return scores (n={X.shape[0]}, n_classes={n_classes}), "
            f"got shape {scores.shape}"
        )
    bad = np.flatnonzero(np.isnan(scores).any(axis=1))
    if bad.size:
        raise ValueError(
            f"diversity: classify(X) gave NaN scores for {bad.size} of {X.shape[0]} samples "
            f"(first: sample {bad[0]}); no class can be assigned to them"
        )
    labels = scores.argmax(-1)
    h = class_histogram(labels, n_classes)
    H = entropy_bits(h)
    return Diversity(h, H, float(2.0**H), int((h > 0).sum()), mean_pairwise_distance(X))
