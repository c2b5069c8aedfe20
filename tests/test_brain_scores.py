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
