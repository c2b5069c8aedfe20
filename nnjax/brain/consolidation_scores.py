"""How well a sequence is remembered and replayed (:mod:`~nnjax.brain.consolidation`), NumPy.

:func:`recall` (from a raster of cued tests), :func:`synaptic_trace` (forward minus backward
link weights), :func:`replay_order` (Kendall's tau of the groups' order in Up states) and
:func:`paired_stats` (sleep against quiet wake over paired seeds), on the host.
"""

import numpy as np

from nnjax.brain import dynamics
from nnjax.brain.consolidation_protocol import Protocol, groups
from nnjax.brain.scores import snap_ties


def _check_order(order, protocol: Protocol, where: str) -> np.ndarray:
    """``order`` as an int array of >= 2 distinct group ids in [0, n_groups), or a ValueError."""
    o = np.asarray(list(order) if isinstance(order, range) else order)
    n = protocol.n_groups
    ok = o.ndim == 1 and o.size >= 2 and o.dtype.kind in "iu" and len(set(o.tolist())) == o.size
    if not ok or o.min() < 0 or o.max() >= n:
        raise ValueError(
            f"{where}: order must be >= 2 distinct group ids (ints) in [0, {n}), got {order!r}"
        )
    return o


def _check_cells(shape: tuple, protocol: Protocol, name: str, where: str) -> None:
    need = protocol.n_groups * protocol.group_size
    if shape[-1] < need:
        raise ValueError(
            f"{where}: {name} must cover the n_groups * group_size = {need} cells of the "
            f"groups, got shape {shape}"
        )


def recall(raster, bin_ms: float, onsets, protocol: Protocol, order) -> float:
    """The recall score of the sequence ``order`` (the :mod:`~nnjax.brain.consolidation`
    docstring) from a raster (n_bins, N) whose cues of order[0] started at ``onsets`` (ms):
    with b = round(onset / bin_ms) and w = round(window_ms / bin_ms), the mean over cues and
    later groups G of

        frac(G fires in bins [b, b + w)) - frac(G fires in bins [b - w, b)).

    Each onset needs both windows inside the raster (w <= b <= n_bins - w), else a
    ValueError: a window cut short would compare unequal times."""
    where = "recall"
    r = np.asarray(raster) > 0
    if r.ndim != 2:
        raise ValueError(f"{where}: raster must be (n_bins, N), got shape {r.shape}")
    _check_cells(r.shape, protocol, "raster", where)
    dynamics.check_positive(bin_ms, "bin_ms", where)
    dynamics.check_positive(protocol.window_ms, "protocol.window_ms", where)
    t = np.asarray(onsets, np.float64)
    if t.ndim != 1 or t.size == 0 or not np.isfinite(t).all():
        raise ValueError(f"{where}: onsets must be a non-empty 1-D array of finite ms, got {t}")
    g = groups(protocol)[_check_order(order, protocol, where)[1:]]
    w = int(round(protocol.window_ms / bin_ms))
    b = np.round(t / bin_ms).astype(np.int64)
    if w < 1 or (b < w).any() or (b > r.shape[0] - w).any():
        raise ValueError(
            f"{where}: every onset needs window_ms={protocol.window_ms} before and after it "
            f"inside the raster ([{w * bin_ms}, {(r.shape[0] - w) * bin_ms}] ms at "
            f"bin_ms={bin_ms}), got onsets {t.tolist()}"
        )
    scores = []
    for k in b:
        after = r[k : k + w][:, g].any(axis=0).mean(axis=1)
        before = r[k - w : k][:, g].any(axis=0).mean(axis=1)
        scores.append(np.mean(after - before))
    return float(np.mean(scores))


def _mean_weight(blocks: np.ndarray, exists: np.ndarray) -> float:
    """sum of the existing synapses' weights / their number; NaN for none (nan in W stays)."""
    n = int(exists.sum())
    return float((blocks * exists).sum() / n) if n else float("nan")


def synaptic_trace(W_ee, protocol: Protocol, order, mask=None) -> float:
    """The mean weight of the existing forward synapses minus that of the existing backward
    ones (nS), pooled over the links k = 0..n-2 of ``order`` (g_k = its k-th group):

        trace = sum_{F} W / |F| - sum_{B} W / |B|,
        F = {(i, j): i in g_{k+1}, j in g_k, exists},  B = {(i, j): i in g_k, j in g_{k+1}},

    W (n_post, n_pre). A synapse exists where ``mask`` > 0 (the network's mask_ee: a synapse
    that STDP depressed to 0 counts, at 0 nS) or, without a mask, where W > 0. NaN when F or
    B is empty (the mean of no synapse) or a weight in them is NaN."""
    where = "synaptic_trace"
    W = np.asarray(W_ee, np.float64)
    if W.ndim != 2 or W.shape[0] != W.shape[1]:
        raise ValueError(f"{where}: W_ee must be a square (n_exc, n_exc) array, got {W.shape}")
    _check_cells(W.shape, protocol, "W_ee", where)
    if mask is not None and np.shape(mask) != W.shape:
        raise ValueError(f"{where}: mask must have W_ee's shape {W.shape}, got {np.shape(mask)}")
    g = groups(protocol)[_check_order(order, protocol, where)]
    M = ~(W <= 0) if mask is None else np.asarray(mask) > 0  # ~(W <= 0): NaN weights count
    fwd, bwd = [], []
    for k in range(len(g) - 1):
        fwd.append(np.ix_(g[k + 1], g[k]))
        bwd.append(np.ix_(g[k], g[k + 1]))
    mean = lambda links: _mean_weight(  # noqa: E731
        np.stack([W[i] for i in links]), np.stack([M[i] for i in links])
    )
    return mean(fwd) - mean(bwd)


def replay_order(raster, bin_ms: float, protocol: Protocol, order, *, lead_ms=150.0) -> float:
    """How much the Up states replay ``order``: for each Up state of the mean rate of the
    cells 0..max id of the groups (detect_updown; the groups' cells, not every E cell), the
    first-spike time of each group within lead_ms of its onset, and Kendall's tau between
    the groups' positions in ``order`` and those times (groups that stay silent are left out;
    an Up state needs 3 active groups); the mean over Up states, NaN without any. +1: in every
    Up state the groups first fire in order, one after the other; 0: no order. The detected
    onset lags an Up state's start (the smoothed rate must pass half its 95th percentile), so
    groups already firing there tie at time 0 and pull tau towards 0: sweeps through the
    groups in order, 5 to 40 ms apart, scored 0.84 to 0.94 in a synthetic raster."""
    from scipy.stats import kendalltau

    from nnjax.brain import detect

    where = "replay_order"
    r = np.asarray(raster) > 0
    if r.ndim != 2:  # as recall: a 1-D raster, a short one or a bad order failed in indexing
        raise ValueError(f"{where}: raster must be (n_bins, N), got shape {r.shape}")
    _check_cells(r.shape, protocol, "raster", where)
    dynamics.check_positive(bin_ms, "bin_ms", where)
    dynamics.check_positive(lead_ms, "lead_ms", where)  # nan: an int() error; 0: always nan
    g = groups(protocol)[_check_order(order, protocol, where)]
    rate = r[:, : g.max() + 1].mean(axis=1) * (1000.0 / bin_ms)
    try:
        ups = detect.detect_updown(rate, 1000.0 / bin_ms).up
    except ValueError:
        return float("nan")
    lead = int(round(lead_ms / bin_ms))
    taus = []
    for start, _ in ups:
        b = int(round(start * 1000.0 / bin_ms))
        seg = r[b : b + lead]
        first = [np.flatnonzero(seg[:, ids].any(axis=1)) for ids in g]
        pos = [k for k, f in enumerate(first) if f.size]
        if len(pos) >= 3:
            taus.append(kendalltau(pos, [first[k][0] for k in pos]).statistic)
    taus = [t for t in taus if np.isfinite(t)]
    return float(np.mean(taus)) if taus else float("nan")


def paired_stats(a, b) -> dict:
    """Mean and 95 % CI (t distribution, ddof = 1) of a, b and d = a - b over seeds, the paired
    t-test and the Wilcoxon signed-rank test of a against b (scipy.stats). a, b: (n,) paired,
    n >= 2. The p values are NaN only when every d is exactly 0 (no test has a statistic) or
    a value is NaN (the signed-rank p also when every d is rounding noise); a consistent
    difference, however small, is tested. The signed-rank test sees ties that rounding broke
    (recall 0.07 - 0.065 and 0.075 - 0.07 differ in the last bit; taken as distinct, p was
    0.34 instead of 0.73): magnitudes within 16 eps max(|a|, |b|) of each other (eps of the
    inputs' precision) are one (:func:`nnjax.brain.scores.snap_ties`)."""
    from scipy import stats

    # the inputs' precision (float32 recalls round at 1e-7), at least float32's when not float
    eps = float(np.finfo(np.result_type(np.asarray(a), np.asarray(b), np.float32)).eps)
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.ndim != 1 or a.shape != b.shape or a.size < 2:
        raise ValueError(
            f"paired_stats: a and b must be 1-D of one length n >= 2 (paired seeds), got "
            f"shapes {a.shape} and {b.shape}"
        )

    def ci(x):
        m, se = float(np.mean(x)), float(np.std(x, ddof=1) / np.sqrt(x.size))
        h = float(stats.t.ppf(0.975, x.size - 1) * se)
        return {"mean": m, "ci95": [m - h, m + h]}

    d, nan = a - b, float("nan")
    untestable = bool(np.all(d == 0) or np.isnan(d).any())
    tol = 16 * eps * float(np.max(np.abs(np.concatenate([a, b]))))  # nan a or b: untestable
    snapped = d if untestable else snap_ties(d, tol)
    no_rank = untestable or not snapped.any()  # every d rounding noise: no signed rank
    return {
        "a": ci(a),
        "b": ci(b),
        "difference": ci(d),
        "t_test_p": nan if untestable else float(stats.ttest_rel(a, b).pvalue),
        "wilcoxon_p": nan if no_rank else float(stats.wilcoxon(snapped).pvalue),
        "n": int(a.size),
    }
