"""The paired comparison over class orders (nnjax.brain.scores_clustered) against SciPy and
hand-computed values, and its place in the study's summary and table."""

import warnings

import numpy as np
import pytest
from scipy import stats

from nnjax.brain import scores, study
from nnjax.brain.scores_clustered import icc, paired_clustered
from nnjax.brain.study_report import format_table

# 4 clusters (class orders) x 2 runs (seeds), order-major; distinct magnitudes everywhere
D = np.array([[0.03, 0.05], [0.01, -0.02], [0.06, 0.02], [0.04, 0.07]])
B = np.linspace(0.2, 0.9, D.size).reshape(D.shape)
LABELS = np.repeat(np.arange(4), 2)


def test_against_scipy_on_cluster_means():
    out = paired_clustered((B + D).ravel(), B.ravel(), LABELS)
    m = D.mean(1)  # 0.04, -0.005, 0.04, 0.055: the two 0.04 tie (their rounding snapped)
    np.testing.assert_allclose(out["cluster_means"], m, atol=1e-15)
    assert out["diff"]["n"] == 4 and (out["n_clusters"], out["cluster_size"]) == (4, 2)
    np.testing.assert_allclose(out["diff"]["mean"], m.mean(), rtol=1e-13)
    half = stats.t.ppf(0.975, 3) * m.std(ddof=1) / 2  # t_{0.975, 3} s / sqrt(4)
    np.testing.assert_allclose([out["diff"]["lo"], out["diff"]["hi"]],
                               [m.mean() - half, m.mean() + half], rtol=1e-12)  # fmt: skip
    np.testing.assert_allclose(out["p_t"], stats.ttest_1samp(m, 0.0).pvalue, rtol=1e-12)
    # signed ranks: |-0.005| 1, 0.04 and 0.04 2.5 each, 0.055 4; W- = 1 of 16 sign patterns
    # the exact two-sided p: patterns with W- <= 1 or W+ <= 1 -> 2 x 2 of 16 = 0.25
    np.testing.assert_allclose(out["p_wilcoxon"], 0.25)
    np.testing.assert_allclose(out["p_wilcoxon"], stats.wilcoxon(m).pvalue, rtol=1e-12)
    assert (out["wins"], out["losses"]) == (3, 1)


def test_icc_against_the_one_way_anova_by_hand():
    C, k = D.shape
    grand, means = D.mean(), D.mean(1)
    msb = k * ((means - grand) ** 2).sum() / (C - 1)
    msw = ((D - means[:, None]) ** 2).sum() / (C * (k - 1))
    want = (msb - msw) / (msb + (k - 1) * msw)
    got = paired_clustered((B + D).ravel(), B.ravel(), LABELS)["icc"]
    np.testing.assert_allclose(got, want, rtol=1e-12)
    # the limits: runs of a cluster identical -> 1; cluster means identical -> -1 / (k - 1)
    assert icc([[0.1, 0.1], [0.3, 0.3], [0.2, 0.2]]) == pytest.approx(1.0)
    assert icc([[0.1, -0.1, 0.0], [0.2, -0.2, 0.0]]) == pytest.approx(-0.5)
    assert np.isnan(icc([[0.1], [0.2]]))  # one run per cluster: no within-cluster spread


def test_balanced_clusters_keep_the_run_level_point_estimate():
    a, b = (B + D).ravel(), B.ravel()
    run, order = scores.paired(a, b), paired_clustered(a, b, LABELS)
    np.testing.assert_allclose(order["diff"]["mean"], run["diff"]["mean"], rtol=1e-13)
    # equal seeds within each order: the same point estimate and the t-test of the 4 distinct
    # differences; the run-level test counts each twice and reports a smaller p
    m = np.array([0.03, -0.01, 0.06, 0.045])
    a2, b2 = np.repeat(0.5 + m, 2), np.full(8, 0.5)
    run, order = scores.paired(a2, b2), paired_clustered(a2, b2, LABELS)
    np.testing.assert_allclose(order["diff"]["mean"], run["diff"]["mean"], rtol=1e-13)
    np.testing.assert_allclose(order["diff"]["mean"], m.mean(), rtol=1e-13)
    np.testing.assert_allclose(order["p_t"], stats.ttest_1samp(m, 0.0).pvalue, rtol=1e-9)
    assert order["icc"] == pytest.approx(1.0) and run["p_t"] < order["p_t"]


def test_one_run_per_cluster_is_the_run_level_test():
    a, b = B[:, 0] + D[:, 0], B[:, 0]
    run, order = scores.paired(a, b), paired_clustered(a, b, [7, 3, 5, 1])
    for key in ("p_t", "p_wilcoxon", "wins", "losses"):
        assert order[key] == pytest.approx(run[key], rel=1e-12)
    np.testing.assert_allclose(order["diff"]["ci"], run["diff"]["ci"], rtol=1e-12)
    # labels sorted: cluster 1 is run 3, cluster 7 run 0
    np.testing.assert_allclose(order["cluster_means"], D[[3, 1, 2, 0], 0], atol=1e-15)


def test_five_orders_cannot_reach_wilcoxon_p_below_one_sixteenth():
    m = np.array([0.01, 0.02, 0.03, 0.04, 0.05])  # all five orders better
    out = paired_clustered(np.repeat(0.5 + m, 2), np.full(10, 0.5), np.repeat(np.arange(5), 2))
    assert out["p_wilcoxon"] == pytest.approx(2 / 2**5) and out["p_t"] < 0.02


def test_cluster_means_within_the_tie_are_one_magnitude():
    # orders 0 and 1 differ by +-0.02 and -(0.02 + 1e-8): no two runs tie (run-level snapping
    # leaves them), but the two order means do; tied, the exact p is 0.25 (untied 0.3125)
    d = np.array([0.01, 0.03, -0.02 - 1e-8, -0.02 - 1e-8, 0.03, 0.03, 0.05, 0.05, 0.01, 0.01])
    out = paired_clustered(0.5 + d, np.full(10, 0.5), np.repeat(np.arange(5), 2))
    assert out["cluster_means"][0] == -out["cluster_means"][1]
    want = stats.wilcoxon([0.02, -0.02, 0.03, 0.05, 0.01]).pvalue
    np.testing.assert_allclose([out["p_wilcoxon"], want], 0.25, rtol=1e-12)


def test_all_ties_give_p_one():
    out = paired_clustered(np.full(6, 0.4), np.full(6, 0.4), [0, 0, 1, 1, 2, 2])
    assert (out["p_t"], out["p_wilcoxon"], out["wins"], out["losses"]) == (1.0, 1.0, 0, 0)


def test_equal_nonzero_order_means_give_p_t_zero_without_a_warning():
    # every order 1 test example better on average (+0.1 - 0.0 and +0.05 + 0.05 snapped):
    # s_m = 0, |t| = inf; SciPy warned of catastrophic cancellation and returned p = 0
    a = np.array([0.6, 0.5, 0.55, 0.55, 0.5 + 0.05 + 1e-9, 0.55])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = paired_clustered(a, np.full(6, 0.5), [0, 0, 1, 1, 2, 2])
    assert out["p_t"] == 0.0 and out["diff"]["std"] == 0.0 and out["wins"] == 3
    assert out["p_wilcoxon"] == pytest.approx(0.25)  # 2 / 2^3


@pytest.mark.parametrize(
    "a, b, clusters, match",
    [
        (np.ones(5), np.ones(5), [0, 0, 1, 1, 1], r"same number of runs .* \{0: 2, 1: 3\}"),
        (np.ones(4), np.ones(4), [3, 3, 3, 3], r"at least 2 distinct labels .* got 1: \[3\]"),
        (np.ones(4), np.ones(4), [0, 1, 2], r"one label per run \(4\), got 3"),
        (np.ones((2, 2)), np.ones(4), [0, 0, 1, 1], r"a has shape \(2, 2\) and b \(4,\)"),
        (np.r_[1.0, np.nan], np.ones(2), [0, 1], "a must be finite, got nan at run 1"),
        (np.array([]), np.array([]), [], "hold no run"),
    ],
)
def test_refusals_name_the_function_and_the_culprit(a, b, clusters, match):
    with pytest.raises(ValueError, match="paired_clustered: .*" + match):
        paired_clustered(a, b, clusters)


def test_tie_must_be_a_finite_number():
    with pytest.raises(ValueError, match="paired_clustered: tie must be a finite number"):
        paired_clustered(np.ones(4), np.ones(4), [0, 0, 1, 1], tie=float("nan"))


def _study(n_orders, n_seeds, finals):
    metrics = {r: {k: np.asarray(f) for k in study.METRICS} | {"seen": np.tile(f[:, None], 5)}
               for r, f in finals.items()}  # fmt: skip
    res = {"dataset": "digits", "orders": list(range(n_orders)), "n_seeds": n_seeds,
           "rows": list(finals), "scenario": "class", "metrics": metrics,
           "hp": {}, "hp_source": dict.fromkeys(finals, "-")}  # fmt: skip
    res["stats"] = study.summarise(res)
    return res


def test_the_study_table_reports_the_test_over_class_orders():
    """Before: summarise and the printed table had only the run-level test, which counted
    the 2 seeds of a class order as independent pairs."""
    seq = np.full(8, 0.2)
    res = _study(4, 2, {"sequential": seq, "src": seq + D.ravel()})
    c = res["stats"]["src"]["vs_sequential_orders"]
    want = paired_clustered(seq + D.ravel(), seq, LABELS)
    assert c["p_t"] == want["p_t"] and c["icc"] == want["icc"]
    table = format_table(res)
    assert "over the 4 class orders" in table and "2/2^4 = 0.125" in table
    rows = [x for x in table.splitlines() if x.startswith("| SRC (sleep) |")]
    assert len(rows) == 3  # the accuracy table's row, the run-level one (kept), the order one
    d = c["diff"]
    cells = f"| {100 * d['mean']:+.1f} [{100 * d['lo']:.1f}, {100 * d['hi']:.1f}] | "
    assert rows[2].startswith("| SRC (sleep) " + cells) and f"| {c['icc']:.2f} |" in rows[2]
    assert f"| {c['p_wilcoxon']:.3g} | {c['wins']}/{c['losses']} |" in rows[2]
    assert rows[2].endswith("| - | - | - | - | - |")


def test_a_single_class_order_prints_no_order_table():
    res = _study(1, 3, {"sequential": np.full(3, 0.2), "src": np.array([0.3, 0.4, 0.35])})
    assert "vs_sequential_orders" not in res["stats"]["src"]
    assert "Final accuracy over the" not in format_table(res)
