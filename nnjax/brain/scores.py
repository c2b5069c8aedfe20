"""Continual-learning scores from an accuracy matrix, and their statistics over runs.

**The matrix.** A run scores its network on every test group (a class in class-incremental
splits, a permuted task in domain-incremental ones) after each of its T tasks: ``A`` (T, G).
With ``task_groups`` (T, g) (the groups of each task) and ``counts`` (G,) (test examples per
group), R_{i,j} = the accuracy on task j's test examples after training task i (and after
the method's consolidation, e.g. a sleep): an example-weighted mean of A[i, groups of j].

**Scores** (:func:`metrics`; every one an array over the runs' leading axes):

* seen accuracy after task t: accuracy on the test examples of tasks 0..t; the curve over t
  is the average-accuracy curve, its last value the **final accuracy** (all test examples);
* **BWT** (backward transfer, Lopez-Paz & Ranzato 2017):
  BWT = 1/(T-1) sum_{j<T-1} (R_{T-1,j} - R_{j,j});
* **FWT** (forward transfer, Lopez-Paz & Ranzato 2017):
  FWT = 1/(T-1) sum_{j>=1} (R_{j-1,j} - b_j), where b_j is the accuracy on task j of the
  run's own *untrained* network (its random initialisation: the baseline of "no learning");
* **forgetting** (Chaudhry et al. 2018): F = 1/(T-1) sum_{j<T-1} max_{l in [j, T-2]}
  R_{l,j} - R_{T-1,j} (the best accuracy task j had once learned, minus its final one);
* **just-learned accuracy**: 1/T sum_j R_{j,j}, task j's accuracy right after its own
  training *and consolidation* (a sleep that destroys the new task shows here), and R_{0,0};
* old-task accuracy: at the end, on the test examples of tasks 0..T-2.

**Statistics over n runs** (:func:`summary`, :func:`paired`): the mean, the sample standard
deviation s (ddof = 1), the 95% confidence interval of the mean from Student's t,
mean ± t_{0.975, n-1} s / sqrt(n); a paired comparison of two methods on the same runs
(paired by class order and seed) reports the mean difference with its t interval, the
two-sided paired t-test (``scipy.stats.ttest_rel``) and the two-sided Wilcoxon signed-rank
test (``scipy.stats.wilcoxon``, exact for small n without ties) as a check that does not
assume normal differences.
"""

import numpy as np


def task_matrix(A: np.ndarray, task_groups: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """R (..., T, T): R[..., i, j] = example accuracy on task j's groups in row i of ``A``
    (..., T, G) (module docstring); ``counts`` (G,) weights the groups."""
    A, counts = np.asarray(A, np.float64), np.asarray(counts, np.float64)
    cols = [(A[..., task_groups[j]] * counts[task_groups[j]]).sum(-1) / counts[task_groups[j]].sum()
            for j in range(len(task_groups))]  # fmt: skip
    return np.stack(cols, axis=-1)


def seen_accuracy(A: np.ndarray, task_groups: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """(..., T): after task t, the accuracy on the test examples of tasks 0..t."""
    A, counts = np.asarray(A, np.float64), np.asarray(counts, np.float64)
    out = []
    for t in range(len(task_groups)):
        g = np.asarray(task_groups[: t + 1]).ravel()
        out.append((A[..., t, g] * counts[g]).sum(-1) / counts[g].sum())
    return np.stack(out, axis=-1)


def metrics(
    A: np.ndarray, task_groups: np.ndarray, counts: np.ndarray, A_init: np.ndarray | None = None
) -> dict:
    """The scores of the module docstring from ``A`` (..., T, G) (leading axes = runs).

    ``A_init`` (..., G): the per-group accuracy of each run's untrained network (needed for
    ``fwt``; without it ``fwt`` is left out). Returns arrays over the leading axes: ``seen``
    (..., T), ``final``, ``old``, ``bwt``, ``fwt``, ``forgetting``, ``just_learned``,
    ``first_task`` (R_{0,0}) (...,).
    """
    task_groups = np.asarray(task_groups)
    T = task_groups.shape[0]
    R = task_matrix(A, task_groups, counts)
    seen = seen_accuracy(A, task_groups, counts)
    diag = np.diagonal(R, axis1=-2, axis2=-1)  # (..., T) R_jj
    out = {
        "seen": seen,
        "final": seen[..., -1],
        "old": _old(A, task_groups, counts),
        "bwt": (R[..., -1, : T - 1] - diag[..., : T - 1]).mean(-1),
        "forgetting": forgetting(R),
        "just_learned": diag.mean(-1),
        "first_task": diag[..., 0],
    }
    if A_init is not None:
        b = task_matrix(np.asarray(A_init)[..., None, :], task_groups, counts)[..., 0, :]
        before = np.stack([R[..., j - 1, j] for j in range(1, T)], -1)
        out["fwt"] = (before - b[..., 1:]).mean(-1)
    return out


def _old(A, task_groups, counts) -> np.ndarray:
    g = np.asarray(task_groups[:-1]).ravel()
    A, counts = np.asarray(A, np.float64), np.asarray(counts, np.float64)
    return (A[..., -1, g] * counts[g]).sum(-1) / counts[g].sum()


def forgetting(R: np.ndarray) -> np.ndarray:
    """Chaudhry et al. 2018 from R (..., T, T): mean over j < T-1 of max_{l in [j, T-2]} R_lj
    - R_{T-1,j}."""
    T = R.shape[-1]
    f = [R[..., j : T - 1, j].max(-1) - R[..., T - 1, j] for j in range(T - 1)]
    return np.stack(f, -1).mean(-1)


def summary(x) -> dict:
    """n, mean, sample ``std`` (ddof = 1), ``sem`` = std / sqrt(n) and the 95% t interval
    ``ci`` = t_{0.975, n-1} sem, ``lo``/``hi`` = mean -/+ ci, of the 1-D sample ``x``.
    With n = 1: std, sem and ci are nan."""
    from scipy import stats

    x = np.asarray(x, np.float64).ravel()
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


def paired(a, b) -> dict:
    """a - b over runs paired by (class order, seed): :func:`summary` of the differences
    (``diff``), the two-sided paired t-test p-value ``p_t`` (``scipy.stats.ttest_rel``), the
    two-sided Wilcoxon signed-rank p-value ``p_wilcoxon`` (1.0 when every difference is 0),
    and ``wins``/``losses``: runs where a > b / a < b."""
    from scipy import stats

    a, b = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    if a.shape != b.shape:
        raise ValueError(f"paired: samples of {a.size} and {b.size} runs; they must pair up")
    d = a - b
    if np.all(d == 0):
        p_t = p_w = 1.0
    else:
        p_t = float(stats.ttest_rel(a, b).pvalue)
        p_w = float(stats.wilcoxon(a, b).pvalue) if np.count_nonzero(d) > 0 else 1.0
    return {
        "diff": summary(d),
        "p_t": p_t,
        "p_wilcoxon": p_w,
        "wins": int((d > 0).sum()),
        "losses": int((d < 0).sum()),
    }
