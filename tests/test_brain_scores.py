"""Continual-learning scores and statistics on hand-made cases (nnjax.brain.scores)."""

import numpy as np
import pytest

from nnjax.brain import scores


def test_bwt_fwt_forgetting_on_a_hand_made_matrix():
    # 3 tasks, one test group each (equal counts): A[i, j] = R[i, j]
    A = np.array([[0.5, 0.1, 0.2], [0.9, 0.8, 0.3], [0.4, 0.6, 0.7]])
    A_init = np.array([0.1, 0.2, 0.05])
    groups, counts = np.array([[0], [1], [2]]), np.ones(3)
    m = scores.metrics(A, groups, counts, A_init)
    # BWT = ((R20 - R00) + (R21 - R11)) / 2 = ((0.4 - 0.5) + (0.6 - 0.8)) / 2
    np.testing.assert_allclose(m["bwt"], -0.15)
    # FWT = ((R01 - b1) + (R12 - b2)) / 2 = ((0.1 - 0.2) + (0.3 - 0.05)) / 2
    np.testing.assert_allclose(m["fwt"], 0.075)
    # forgetting: task 0 best after it was learned max(R00, R10) = 0.9, final 0.4 -> 0.5;
    # task 1: R11 = 0.8 -> 0.6: 0.2; mean 0.35 (not -BWT: task 0 improved before it fell)
    np.testing.assert_allclose(m["forgetting"], 0.35)
    np.testing.assert_allclose(m["just_learned"], (0.5 + 0.8 + 0.7) / 3)
    np.testing.assert_allclose(m["first_task"], 0.5)
    np.testing.assert_allclose(m["seen"], [0.5, 0.85, (0.4 + 0.6 + 0.7) / 3])
    np.testing.assert_allclose(m["final"], m["seen"][-1])
    np.testing.assert_allclose(m["old"], 0.5)
    # a row is never compared with a row before its task was learned: the max starts at l = j
    A2 = A.copy()
    A2[0, 1] = 0.99  # task 1 "accuracy" before task 1 was trained
    np.testing.assert_allclose(scores.metrics(A2, groups, counts)["forgetting"], 0.35)


def test_scores_weight_groups_by_their_test_counts_and_keep_leading_axes():
    # class-incremental: 2 tasks of 2 classes with 10, 10, 20, 20 test examples
    A = np.array([[1.0, 1.0, 0.0, 0.0], [0.5, 0.0, 1.0, 0.5]])
    groups, counts = np.array([[0, 1], [2, 3]]), np.array([10.0, 10, 20, 20])
    m = scores.metrics(A, groups, counts, np.full(4, 0.25))
    np.testing.assert_allclose(m["seen"], [1.0, (5 + 0 + 20 + 10) / 60])
    R10, R11 = 5 / 20, 30 / 40
    np.testing.assert_allclose(m["bwt"], R10 - 1.0)
    np.testing.assert_allclose(m["fwt"], 0.0 - 0.25)
    np.testing.assert_allclose(m["just_learned"], (1.0 + R11) / 2)
    runs = scores.metrics(np.stack([A, A, A]), groups, counts, np.full((3, 4), 0.25))
    assert runs["bwt"].shape == (3,) and runs["seen"].shape == (3, 2)


def test_summary_uses_the_sample_std_and_a_t_interval():
    s = scores.summary([1.0, 2.0, 3.0, 4.0, 5.0])
    assert s["n"] == 5 and s["mean"] == 3.0
    np.testing.assert_allclose(s["std"], np.sqrt(2.5))  # ddof = 1, not sqrt(2)
    # t_{0.975, 4} = 2.7764451 (tables); ci = t * std / sqrt(5)
    np.testing.assert_allclose(s["ci"], 2.7764451 * np.sqrt(2.5) / np.sqrt(5), rtol=1e-6)
    np.testing.assert_allclose([s["lo"], s["hi"]], [3 - s["ci"], 3 + s["ci"]])
    one = scores.summary([0.4])
    assert one["mean"] == 0.4 and np.isnan(one["std"]) and np.isnan(one["ci"])
    with pytest.raises(ValueError, match="empty"):
        scores.summary([])


def test_paired_tests_on_a_known_sample():
    a = np.array([2.0, 4.0, 6.0, 8.0, 10.0])
    b = a - np.array([1.0, 2.0, 3.0, 4.0, 5.0])  # differences 1..5
    c = scores.paired(a, b)
    np.testing.assert_allclose(c["diff"]["mean"], 3.0)
    # t = 3 / (sqrt(2.5) / sqrt(5)) = sqrt(18); Student's t with 4 degrees of freedom has the
    # closed form F(t) = 1/2 + 3/8 u (1 - t^2 / (12 (1 + t^2/4))), u = t / sqrt(1 + t^2 / 4)
    t = np.sqrt(18.0)
    u = t / np.sqrt(1 + t * t / 4)
    F = 0.5 + 3 / 8 * u * (1 - t * t / (12 * (1 + t * t / 4)))
    np.testing.assert_allclose(c["p_t"], 2 * (1 - F), rtol=1e-6)
    # Wilcoxon, exact: all 5 differences positive, p = 2 / 2^5
    np.testing.assert_allclose(c["p_wilcoxon"], 2 / 32)
    assert (c["wins"], c["losses"]) == (5, 0)
    same = scores.paired(a, a)
    assert same["p_t"] == 1.0 and same["p_wilcoxon"] == 1.0 and same["wins"] == 0
    with pytest.raises(ValueError, match="pair up"):
        scores.paired(a, a[:3])


def _three_tasks():
    A = np.array([[0.5, 0.1, 0.2], [0.9, 0.8, 0.3], [0.4, 0.6, 0.7]])
    return A, np.array([[0], [1], [2]]), np.ones(3)


@pytest.mark.parametrize(
    "change, match",
    [
        (lambda A, g, c: (A, np.array([[-1], [1], [2]]), c), "group ids in 0..2"),  # no wrap
        (lambda A, g, c: (A, np.array([[0], [1], [3]]), c), "group ids in 0..2"),
        (lambda A, g, c: (np.vstack([A, A]), g, c), r"A must be \(..., T=3, G\)"),  # 6 rows
        (lambda A, g, c: (A, g, np.ones(4)), r"counts must be \(3,\)"),
        (lambda A, g, c: (A, g, np.array([1.0, 0.0, 1.0])), "task 1 has no test examples"),
        (lambda A, g, c: (A, g, np.array([1.0, -1.0, 1.0])), "counts must be finite and >= 0"),
        (lambda A, g, c: (A, g.astype(float), c), "task_groups must be a 2-D integer"),
        (lambda A, g, c: (A, g.ravel(), c), "task_groups must be a 2-D integer"),
    ],
    ids=["negative", "too-large", "rows", "counts", "empty", "negative-count", "float", "1-d"],
)
def test_metrics_refuses_groups_rows_and_counts_that_do_not_fit(change, match):
    A, groups, counts = change(*_three_tasks())
    with pytest.raises(ValueError, match=f"metrics: .*{match}"):
        scores.metrics(A, groups, counts)


def test_metrics_checks_the_length_of_a_init():
    A, groups, counts = _three_tasks()
    with pytest.raises(ValueError, match=r"metrics: A_init must be \(..., G=3\)"):
        scores.metrics(A, groups, counts, np.zeros(4))
    with pytest.raises(ValueError, match="A_init"):  # 2 runs' A_init for 1 run
        scores.metrics(A, groups, counts, np.zeros((2, 3)))


def test_one_task_has_no_backward_transfer_or_forgetting():
    # T = 1: BWT, FWT, forgetting and old-task accuracy are means over j < T-1 = 0: nan
    m = scores.metrics(np.array([[0.8, 0.6]]), np.array([[0, 1]]), np.array([1.0, 3.0]),
                       np.zeros(2))  # fmt: skip
    np.testing.assert_allclose([m["final"], m["just_learned"], m["first_task"]], 0.65)
    for k in ("bwt", "fwt", "forgetting", "old"):
        assert np.isnan(m[k]), k
    runs = scores.metrics(np.full((4, 1, 2), 0.5), np.array([[0, 1]]), np.ones(2))
    assert runs["bwt"].shape == (4,) and np.isnan(runs["forgetting"]).all()
    assert np.isnan(scores.forgetting(np.ones((1, 1))))


def test_paired_checks_shapes_before_flattening():
    a, b = np.arange(6.0), np.arange(6.0)[::-1] + 0.5
    with pytest.raises(ValueError, match=r"paired: a has shape \(2, 3\) and b \(3, 2\)"):
        scores.paired(a.reshape(2, 3), b.reshape(3, 2))
    same = scores.paired(a.reshape(2, 3), b.reshape(2, 3))  # the same runs in the same layout
    assert same["diff"]["n"] == 6


def test_paired_counts_float32_rounding_as_a_tie():
    """Review: two runs with the same number of correct test examples got final accuracies
    1e-8 apart (float32 per-class fractions weighted by the class counts), and the sleep
    tables counted those ties as wins or losses (LwF - sequential on split digits: 9/0,
    Wilcoxon 0.0039, where the counts give 8/0 with 2 ties, 0.0078); tied magnitudes (+5
    and -5 examples) were split too. With noise below TIE the result is the exact data's."""
    exact_a = np.array([0.50, 0.52, 0.48, 0.61, 0.55, 0.47, 0.53, 0.60, 0.51, 0.58])
    exact_b = np.array([0.50, 0.50, 0.49, 0.58, 0.55, 0.45, 0.50, 0.59, 0.49, 0.56])
    noise = np.random.default_rng(0).normal(0, 5e-8, (2, 10))
    exact = scores.paired(exact_a, exact_b)
    noisy = scores.paired(exact_a + noise[0], exact_b + noise[1])
    assert (exact["wins"], exact["losses"]) == (noisy["wins"], noisy["losses"]) == (7, 1)
    np.testing.assert_allclose(noisy["p_wilcoxon"], exact["p_wilcoxon"], rtol=1e-12)
    np.testing.assert_allclose(noisy["p_t"], exact["p_t"], rtol=1e-5)
    # the nonzero differences 0.02, -0.01, 0.03, 0.02, 0.03, 0.01, 0.02, 0.02 have tied
    # magnitudes: scipy's normal approximation with the tie correction, on these values
    from scipy import stats

    d = np.array([0.02, -0.01, 0.03, 0.02, 0.03, 0.01, 0.02, 0.02])
    np.testing.assert_allclose(exact["p_wilcoxon"], stats.wilcoxon(d).pvalue, rtol=1e-12)
    # a real difference above TIE stays a win
    assert scores.paired([0.5 + 2 * scores.TIE], [0.5])["wins"] == 1


def test_paired_wilcoxon_with_tied_magnitudes_is_the_exact_sign_flip_distribution():
    """With tied |d| the p-value is the exact permutation one: all 2^n sign flips of the
    mid-ranks, counted by hand here (scipy >= 1.15; before, the untied table was used)."""
    import itertools

    from scipy.stats import rankdata

    d = np.array([0.1, 0.1, 0.2, 0.3, 0.4, -0.05, 0.5, 0.6])
    r = rankdata(np.abs(d))
    observed = r[d > 0].sum()
    centre = r.sum() / 2
    flips = [r[np.array(s, bool)].sum() for s in itertools.product([0, 1], repeat=d.size)]
    exact = np.mean([abs(w - centre) >= abs(observed - centre) - 1e-12 for w in flips])
    np.testing.assert_allclose(scores.paired(d, np.zeros_like(d))["p_wilcoxon"], exact)
    assert exact == 0.015625  # 4 of 256


def test_equal_nonzero_differences_give_p_t_zero_without_a_warning():
    """Four runs each 0.1 better: s = 0, |t| = inf; SciPy's ttest_1samp warned of
    catastrophic cancellation (and p 0) on these snapped differences."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = scores.paired([0.6] * 4, [0.5] * 4)
    assert out["p_t"] == 0.0 and out["wins"] == 4 and out["p_wilcoxon"] == 0.125
