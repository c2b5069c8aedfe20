"""Continual-learning scores from an accuracy matrix, and their statistics over runs.

**The matrix.** A run scores its network on every test group (a class in class-incremental
splits, a permuted task in domain-incremental ones) after each of its T tasks: ``A`` (T, G).
With ``task_groups`` (T, g) (the groups of each task) and ``counts`` (G,) (test examples per
group), R_{i,j} = the accuracy on task j's test examples after training task i (and after
the method's consolidation, e.g. a sleep): an example-weighted mean of A[i, groups of j].

**Scores** (:func:`metrics`; every one an array over the runs' leading axes):

* seen accuracy after task t: accuracy on the test examples of tasks 0..t; the curve over t
  is the average-accuracy curve, its last value the **final accuracy** (all test examples,
  so tasks weigh by their test sizes; Lopez-Paz & Ranzato's ACC = 1/T sum_j R_{T-1,j} weighs
  them equally: from the committed MNIST-1D results, sequential training's final accuracy
  is 17.86% and its ACC 17.58%; on digits 19.89% and 19.83%);
* **BWT** (backward transfer, Lopez-Paz & Ranzato 2017):
  BWT = 1/(T-1) sum_{j<T-1} (R_{T-1,j} - R_{j,j});
* **FWT** (forward transfer, Lopez-Paz & Ranzato 2017):
  FWT = 1/(T-1) sum_{j>=1} (R_{j-1,j} - b_j), where b_j is the accuracy on task j of the
  run's own *untrained* network (its random initialisation: the baseline of "no learning");
* **forgetting** (after Chaudhry et al. 2018): F = 1/(T-1) sum_{j<T-1} max_{l in [j, T-2]}
  R_{l,j} - R_{T-1,j} (the best accuracy task j had once learned, minus its final one;
  Chaudhry et al. take the max over l in [0, T-2], rows before task j's training included,
  which is the same unless task j scored higher before its training than at any row after);
* **just-learned accuracy**: 1/T sum_j R_{j,j}, task j's accuracy right after its own
  training *and consolidation* (a sleep that destroys the new task shows here), and R_{0,0};
* old-task accuracy: at the end, on the test examples of tasks 0..T-2.

**Statistics over n runs** (:func:`summary`, :func:`paired`): the mean, the sample standard
deviation s (ddof = 1), the 95% confidence interval of the mean from Student's t,
mean ± t_{0.975, n-1} s / sqrt(n); a paired comparison of two methods on the same runs
(paired by class order and seed) reports the mean difference with its t interval, the
two-sided paired t-test (``scipy.stats.ttest_rel``) and the two-sided Wilcoxon signed-rank
test (``scipy.stats.wilcoxon``, exact for small n without ties) as a check that does not
assume normal differences. The runs of one class order share its tasks, so they are not
independent pairs: :func:`nnjax.brain.scores_clustered.paired_clustered` tests over the orders.
"""

import numpy as np


def task_matrix(A: np.ndarray, task_groups: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """R (..., T, T): R[..., i, j] = example accuracy on task j's groups in row i of ``A``
    (..., T, G) (module docstring); ``counts`` (G,) weights the groups."""
    A, task_groups, counts = _check("task_matrix", A, task_groups, counts)
    return _task_means(A, task_groups, counts)


def _task_means(A, task_groups, counts) -> np.ndarray:
    """(..., rows, T): column j the ``counts``-weighted mean of A[..., groups of task j]."""
    cols = [(A[..., g] * counts[g]).sum(-1) / counts[g].sum() for g in task_groups]
    return np.stack(cols, axis=-1)


def seen_accuracy(A: np.ndarray, task_groups: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """(..., T): after task t, the accuracy on the test examples of tasks 0..t."""
    A, task_groups, counts = _check("seen_accuracy", A, task_groups, counts)
    return _seen(A, task_groups, counts)


def _seen(A, task_groups, counts) -> np.ndarray:
    out = []
    for t in range(len(task_groups)):
        g = task_groups[: t + 1].ravel()
        out.append((A[..., t, g] * counts[g]).sum(-1) / counts[g].sum())
    return np.stack(out, axis=-1)


def metrics(
    A: np.ndarray, task_groups: np.ndarray, counts: np.ndarray, A_init: np.ndarray | None = None
) -> dict:
    """The scores of the module docstring from ``A`` (..., T, G) (leading axes = runs).

    ``task_groups`` (T, g) integer group ids in 0..G-1, ``counts`` (G,) finite and >= 0 with
    every task's total > 0 (a task without test examples has no accuracy: refused).
    ``A_init`` (..., G): the per-group accuracy of each run's untrained network (needed for
    ``fwt``; without it ``fwt`` is left out). Accuracies are fractions in [0, 1]: a value
    outside (a percentage, say) or nan in a group with test examples is a ValueError naming
    its position; a group of count 0 carries no weight, so its accuracy (nan, a mean over no
    example) is not read. Returns arrays over the leading axes: ``seen``
    (..., T), ``final``, ``old``, ``bwt``, ``fwt``, ``forgetting``, ``just_learned``,
    ``first_task`` (R_{0,0}) (...,). With T = 1 there is no old task: ``old``, ``bwt``,
    ``fwt`` and ``forgetting`` (means over j < T-1, an empty set) are nan.
    """
    A, task_groups, counts = _check("metrics", A, task_groups, counts)
    T, lead = task_groups.shape[0], A.shape[:-2]
    R = _task_means(A, task_groups, counts)
    seen = _seen(A, task_groups, counts)
    diag = np.diagonal(R, axis1=-2, axis2=-1)  # (..., T) R_jj
    undefined = np.full(lead, np.nan)  # T = 1: a mean over no old task
    out = {
        "seen": seen,
        "final": seen[..., -1],
        "old": _old(A, task_groups, counts) if T > 1 else undefined,
        "bwt": (R[..., -1, : T - 1] - diag[..., : T - 1]).mean(-1) if T > 1 else undefined,
        "forgetting": _forgetting(R),
        "just_learned": diag.mean(-1),
        "first_task": diag[..., 0],
    }
    if A_init is not None:
        A_init = _check_init("metrics", A_init, A.shape, counts)
        b = _task_means(A_init[..., None, :], task_groups, counts)[..., 0, :]
        before = R[..., np.arange(T - 1), np.arange(1, T)]  # R_{j-1, j}, j = 1..T-1
        out["fwt"] = (before - b[..., 1:]).mean(-1) if T > 1 else undefined
    return out


def _floats(x, name: str, fn: str) -> np.ndarray:
    """``x`` as a float64 array, or a ValueError naming ``fn: name`` (NumPy's "could not
    convert string to float" named neither; None, or a list holding one, became nan: a
    summary of nan statistics with no error)."""
    try:
        if np.asarray(x).dtype.kind not in "OUSc":  # bfloat16 is kind "V": a number too
            return np.asarray(x, np.float64)
    except (TypeError, ValueError):
        pass
    raise ValueError(f"{fn}: {name} must hold numbers, got {x!r:.80}")


def _accuracies(A: np.ndarray, name: str, fn: str, used=None) -> np.ndarray:
    """``A`` refused with a ValueError naming ``fn``, ``name`` and the first bad position
    unless its entries are accuracies in [0, 1] (nan is refused: it spread silently into
    every score); ``used`` (G,): groups of count 0 are not read (and are set to 0)."""
    bad = ~((A >= 0) & (A <= 1))
    if used is not None:
        bad &= used
        A = np.where(used, A, 0.0)
    if bad.any():
        pos = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(
            f"{fn}: {name} must hold accuracies in [0, 1] (fractions, not percentages), got "
            f"{name}[{', '.join(map(str, pos))}] = {A[pos]} ({int(bad.sum())} of {bad.size} "
            "entries out of range or nan)"
        )
    return A


def _check(fn: str, A, task_groups, counts) -> tuple:
    """(A float64 (..., T, G), task_groups int (T, g), counts float64 (G,)), or a ValueError
    naming ``fn`` and the argument: shapes that disagree, group ids outside 0..G-1, counts
    that are negative or not finite, a task whose groups hold no test example, accuracies
    outside [0, 1] or nan (in a group with test examples; the others are set to 0)."""
    A, tg = _floats(A, "A", fn), np.asarray(task_groups)
    if tg.ndim != 2 or tg.shape[0] < 1 or tg.shape[1] < 1 or tg.dtype.kind not in "iu":
        raise ValueError(
            f"{fn}: task_groups must be a 2-D integer array (T tasks, g groups each), T, g >= 1; "
            f"got shape {tg.shape} of {tg.dtype}"
        )
    T = tg.shape[0]
    if A.ndim < 2 or A.shape[-2] != T:
        raise ValueError(f"{fn}: A must be (..., T={T}, G): one row per task, got shape {A.shape}")
    G = A.shape[-1]
    if tg.min() < 0 or tg.max() >= G:
        raise ValueError(f"{fn}: task_groups must hold group ids in 0..{G - 1} (A has {G} "
                         f"groups), got values {tg.min()}..{tg.max()}")  # fmt: skip
    counts = _floats(counts, "counts", fn)
    if counts.shape != (G,):
        raise ValueError(f"{fn}: counts must be ({G},), one per group of A, got {counts.shape}")
    if not np.all(np.isfinite(counts) & (counts >= 0)):
        raise ValueError(f"{fn}: counts must be finite and >= 0, got {counts}")
    empty = [j for j, g in enumerate(tg) if counts[g].sum() == 0]
    if empty:
        raise ValueError(f"{fn}: task {empty[0]} has no test examples (counts of its groups "
                         f"{tg[empty[0]].tolist()} are 0); its accuracy is undefined")  # fmt: skip
    return _accuracies(A, "A", fn, counts > 0), tg, counts


def _check_init(fn: str, A_init, shape: tuple, counts: np.ndarray) -> np.ndarray:
    """``A_init`` as float64 (..., G) whose leading axes broadcast to the runs' ``shape[:-2]``,
    accuracies in [0, 1] where ``counts`` > 0 (:func:`_accuracies`)."""
    A_init = _floats(A_init, "A_init", fn)
    lead, G = shape[:-2], shape[-1]
    ok = A_init.ndim >= 1 and A_init.shape[-1] == G
    try:
        ok = ok and np.broadcast_shapes(A_init.shape[:-1], lead) == lead
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(f"{fn}: A_init must be (..., G={G}) with the runs' leading axes "
                         f"{lead}, got shape {A_init.shape}")  # fmt: skip
    return _accuracies(A_init, "A_init", fn, counts > 0)


def _old(A, task_groups, counts) -> np.ndarray:
    g = task_groups[:-1].ravel()
    return (A[..., -1, g] * counts[g]).sum(-1) / counts[g].sum()


def forgetting(R: np.ndarray) -> np.ndarray:
    """Forgetting from R (..., T, T): mean over j < T-1 of max_{l in [j, T-2]} R_lj
    - R_{T-1,j}; nan when T = 1 (no old task). Chaudhry et al. 2018 take the max over
    l in [0, T-2] (module docstring). R holds accuracies in [0, 1] (else a ValueError)."""
    R = _floats(R, "R", "forgetting")
    if R.ndim < 2 or R.shape[-1] != R.shape[-2] or R.shape[-1] < 1:
        raise ValueError(f"forgetting: R must be (..., T, T) with T >= 1, got shape {R.shape}")
    return _forgetting(_accuracies(R, "R", "forgetting"))


def _forgetting(R: np.ndarray) -> np.ndarray:
    """:func:`forgetting` of a checked R (metrics' weighted means: no second check, which a
    mean of ones rounded to 1 + 1e-16 could fail)."""
    T = R.shape[-1]
    if T == 1:
        return np.full(R.shape[:-2], np.nan)
    f = [R[..., j : T - 1, j].max(-1) - R[..., T - 1, j] for j in range(T - 1)]
    return np.stack(f, -1).mean(-1)


def summary(x) -> dict:
    """n, mean, sample ``std`` (ddof = 1), ``sem`` = std / sqrt(n) and the 95% t interval
    ``ci`` = t_{0.975, n-1} sem, ``lo``/``hi`` = mean -/+ ci, of the 1-D sample ``x``.
    With n = 1: std, sem and ci are nan."""
    from scipy import stats

    x = _floats(x, "x", "summary").ravel()
    n = x.size
    if n == 0:
        raise ValueError("summary: the sample is empty")
    mean = float(x.mean())
    std = float(x.std(ddof=1)) if n > 1 else float("nan")
    sem = std / np.sqrt(n)
    ci = float(stats.t.ppf(0.975, n - 1) * sem) if n > 1 else float("nan")
    return {
        "n": n,
        "mean": mean,
        "std": std,
        "sem": sem,
        "ci": ci,
        "lo": mean - ci,
        "hi": mean + ci,
    }


TIE = 1e-6
"""|a - b| at or below this is a tie in :func:`paired`: two runs with the same number of
correct test examples get accuracies that differ by float32 rounding (~1e-7: per-class
fractions weighted by the class counts), while one example of 1000 is 1e-3."""


def paired(a, b, *, tie: float = TIE) -> dict:
    """a - b over runs paired by (class order, seed), ``a`` and ``b`` of one shape (compared
    before flattening, finite); a difference d with |d| <= ``tie`` is a tie, d = 0 (:data:`TIE`),
    and magnitudes within ``tie`` of their neighbour are one magnitude (their mean): every
    statistic here is of this d. Returns :func:`summary` of the differences (``diff``), the
    two-sided paired t-test p-value ``p_t`` (Student's t on d, ``scipy.stats.ttest_1samp``,
    i.e. ``ttest_rel`` up to that snapping; nan for a single pair), the two-sided Wilcoxon
    signed-rank p-value ``p_wilcoxon`` on the nonzero differences (ties dropped, Wilcoxon's
    convention; exact for up to 50 of them with distinct magnitudes; 1.0 when every
    difference is 0), and ``wins``/``losses``: runs where d > 0 / d < 0. The snapping lets
    the signed-rank test see the tied ranks the counts have; with tied magnitudes SciPy
    (>= 1.15, the project's requirement: before, it used the untied exact table, not exact
    with ties) takes the exact permutation distribution over all 2^n sign flips for
    n <= 13 and the normal approximation with its tie correction above."""
    d = snap_ties(difference(a, b, tie, "paired", "give at least one pair"), tie)
    p_t, p_w = p_values(d)
    return {
        "diff": summary(d),
        "p_t": p_t,
        "p_wilcoxon": p_w,
        "wins": int((d > 0).sum()),
        "losses": int((d < 0).sum()),
    }


def difference(a, b, tie, where: str, need: str) -> np.ndarray:
    """a - b flattened (n,), or a ValueError naming ``where``: shapes that differ (compared
    before flattening: (2, 3) and (3, 2) hold 6 runs each, not the same 6), no run (``need``
    says how many to give), a non-finite entry (a nan pair was neither win nor loss, every
    p nan), a ``tie`` that is not a finite number >= 0 (a nan tie made no tie)."""
    a, b = _floats(a, "a", where), _floats(b, "b", where)
    if a.shape != b.shape:
        raise ValueError(
            f"{where}: a has shape {a.shape} and b {b.shape}; they must pair up run by run"
        )
    if a.size == 0:
        raise ValueError(f"{where}: a and b hold no run; {need}")
    for name, x in (("a", a), ("b", b)):
        if not np.isfinite(x).all():
            i = int(np.flatnonzero(~np.isfinite(x.ravel()))[0])
            raise ValueError(f"{where}: {name} must be finite, got {x.ravel()[i]} at run {i}")
    if (
        isinstance(tie, bool)
        or not isinstance(tie, int | float | np.number)
        or not (0 <= tie < np.inf)
    ):
        raise ValueError(f"{where}: tie must be a finite number >= 0, got {tie!r}")
    return a.ravel() - b.ravel()


def p_values(d: np.ndarray) -> tuple[float, float]:
    """(p_t, p_wilcoxon) of the snapped differences ``d`` (n,): two-sided Student's t on d
    and the signed-rank test of its nonzero entries; (1, 1) when every d is 0; p_t nan for
    n = 1 (no spread: undefined) and 0 for n > 1 equal nonzero d (s = 0, |t| = inf; SciPy
    warned of catastrophic cancellation and returned 0 without the guard)."""
    from scipy import stats

    if np.all(d == 0):
        return 1.0, 1.0
    if d.size == 1:
        p_t = float("nan")
    else:
        p_t = float(stats.ttest_1samp(d, 0.0).pvalue) if np.ptp(d) > 0 else 0.0
    return p_t, float(stats.wilcoxon(d[d != 0]).pvalue)


def snap_ties(d: np.ndarray, tie: float) -> np.ndarray:
    """``d`` with every |d| <= ``tie`` set to 0 and the magnitudes that lie within ``tie`` of
    their neighbour (sorted) replaced by their group's mean, signs kept."""
    m = np.abs(d)
    order = np.argsort(m, kind="stable")
    group = np.cumsum(np.r_[False, np.diff(m[order]) > tie])  # a new group at each gap
    means = np.bincount(group, m[order]) / np.bincount(group)
    snapped = np.empty_like(m)
    snapped[order] = means[group]
    return np.where(m <= tie, 0.0, np.sign(d) * snapped)
