"""A paired comparison over clusters of runs: the study's runs grouped by class order.

The study (:mod:`nnjax.brain.study`) runs every method on O class orders x S seeds. The S runs
of one order share its tasks and their sequence, so their differences between two methods
are not independent: :func:`nnjax.brain.scores.paired` treats the O*S runs as independent
pairs, which understates its p-values and intervals when the runs of an order agree more with
each other than with those of other orders. :func:`paired_clustered` takes the orders (the
clusters) as the independent units instead.

**The statistic.** With n = C k runs in C clusters of k runs each, d_{c,s} = a_{c,s} - b_{c,s}
(ties snapped as in :func:`nnjax.brain.scores.paired`: :func:`nnjax.brain.scores.snap_ties`),
the cluster means m_c = 1/k sum_s d_{c,s} (snapped again, so that clusters with the same net
number of test examples right tie) and their mean m = 1/C sum_c m_c, which for equal k is the
run-level mean difference 1/n sum d. The interval is m ± t_{0.975, C-1} s_m / sqrt(C)
(s_m the sample std of the m_c, ddof = 1), the t-test is Student's one-sample t of the m_c
(C - 1 degrees of freedom), the Wilcoxon test is the signed-rank test of the nonzero m_c
(exact for C <= 13 in SciPy >= 1.15, ties included; with C clusters its smallest two-sided
p is 2 / 2^C: 0.0625 for C = 5, so it can never reach 0.05 with 5 orders).

**How much the runs of a cluster agree**: the one-way ANOVA intraclass correlation of the
d_{c,s}, ICC(1) = (MSB - MSW) / (MSB + (k - 1) MSW), with MSB = k/(C-1) sum_c (m_c - m)^2
and MSW = 1/(C (k-1)) sum_{c,s} (d_{c,s} - m_c)^2 (unsnapped m_c here). Clipped at 0 it is
the share of the differences' variance that lies between clusters, sigma_b^2 / (sigma_b^2 +
sigma_w^2) with sigma_b^2 = (MSB - MSW)/k, sigma_w^2 = MSW; a negative value says the runs
of a cluster differ more than chance would make them (with 5 clusters it is a noisy estimate).
The naive run-level variance of the mean is too small by about the design effect
1 + (k - 1) ICC.
"""

import numpy as np

from nnjax.brain import scores


def paired_clustered(a, b, clusters, *, tie: float = scores.TIE) -> dict:
    """a - b over n paired runs, tested over the clusters of ``clusters`` (module docstring).

    ``a``, ``b``: one shape (compared before flattening), n = their size, finite; ``clusters``:
    n labels (any sortable values; flattened in the same order), at least 2 distinct ones,
    each labelling the same number k >= 1 of runs (balanced clusters: then the mean of the
    cluster means is the run mean; unbalanced ones are refused, not weighted silently);
    ``tie``: as in :func:`nnjax.brain.scores.paired`. Returns ``diff`` (:func:`scores.summary`
    of the C cluster means m_c: n = C, mean, std, ci, lo, hi), ``p_t`` (two-sided Student's t
    over the m_c, C - 1 df; 0 when the m_c are equal and nonzero: s_m = 0, |t| = inf),
    ``p_wilcoxon`` (two-sided signed-rank test of the nonzero m_c; 1.0 when every m_c is 0,
    as is ``p_t``), ``wins``/``losses`` (clusters with m_c > 0 / m_c < 0), ``icc`` (ICC(1)
    of the runs' differences; nan for k = 1 or when every d is equal), ``n_clusters`` C,
    ``cluster_size`` k and ``cluster_means`` (C,) in the sorted order of the labels. Bad
    input: a ValueError naming ``paired_clustered`` and the argument."""

    where, need = "paired_clustered", "give at least two clusters of runs"
    d = scores.snap_ties(scores.difference(a, b, tie, where, need), tie)
    labels, groups, k = _clusters(clusters, d.size)
    D = np.stack([d[groups == i] for i in range(labels.size)])  # (C, k)
    m = scores.snap_ties(D.mean(1), tie)
    p_t, p_w = scores.p_values(m)  # C >= 2; equal nonzero m_c: p_t = 0 (s_m = 0)
    return {
        "diff": scores.summary(m),
        "p_t": p_t,
        "p_wilcoxon": p_w,
        "wins": int((m > 0).sum()),
        "losses": int((m < 0).sum()),
        "icc": icc(D),
        "n_clusters": int(labels.size),
        "cluster_size": k,
        "cluster_means": m,
    }


def icc(D) -> float:
    """ICC(1) of ``D`` (C clusters, k runs each), C >= 2: (MSB - MSW) / (MSB + (k-1) MSW)
    (module docstring); nan when k = 1 (no within-cluster spread to compare) or when the
    denominator is 0 (every entry equal)."""
    D = scores._floats(D, "D", "icc")
    if D.ndim != 2 or D.shape[0] < 2:
        raise ValueError(f"icc: D must be (C, k) with C >= 2 clusters, got shape {D.shape}")
    C, k = D.shape
    if k < 2:
        return float("nan")
    msb = k * D.mean(1).var(ddof=1)
    msw = D.var(axis=1, ddof=1).mean()
    den = msb + (k - 1) * msw
    return float((msb - msw) / den) if den > 0 else float("nan")


def _clusters(clusters, n: int) -> tuple:
    """(sorted distinct labels (C,), each run's cluster index (n,), k) of balanced clusters,
    or a ValueError naming the wrong length, fewer than 2 clusters or unequal sizes."""
    fn = "paired_clustered"
    c = np.asarray(clusters).ravel()
    if c.size != n:
        raise ValueError(f"{fn}: clusters must give one label per run ({n}), got {c.size}")
    labels, groups, sizes = np.unique(c, return_inverse=True, return_counts=True)
    if labels.size < 2:
        raise ValueError(
            f"{fn}: clusters must hold at least 2 distinct labels (a t-test over clusters "
            f"needs 2 or more), got {labels.size}: {labels.tolist()}"
        )
    if np.any(sizes != sizes[0]):
        size = dict(zip(labels.tolist(), sizes.tolist()))
        raise ValueError(
            f"{fn}: clusters must all hold the same number of runs (balanced, so the mean of "
            f"the cluster means is the run mean), got sizes {size}"
        )
    return labels, groups.ravel(), int(sizes[0])
