"""Audit of the sleep side of nnjax.brain: the fairness of the sleep / quiet-wake comparison
and the signed-rank test of paired_stats with ties."""

import numpy as np
from scipy import stats

from nnjax.brain import consolidation as cons
from nnjax.brain import sleep_states as ss


def test_sleep_and_quiet_wake_differ_only_in_the_state():
    """Finding: the two conditions drew their noise with different tags (10 + 10 c, ...): with
    a state map that makes NREM the same as wake, one network recalled S1 0.93 after "sleep"
    and 0.14 after "quiet wake". The comparison is paired: identical but for the state."""
    cfg = cons.SMALL_CORTEX._replace(n_exc=60, n_inh=15, p=0.5)
    # train_s = interference_s: both training phases are one compiled program (its compile is
    # most of the test's time); 100 raster bins of 75 cells hold some 30 spikes per condition
    proto = cons.Protocol(n_groups=3, group_size=10, train_s=0.05, consolidation_s=0.15,
                          interference_s=0.05, n_cues=1, settle_s=0.05, raster_s=0.1)  # fmt: skip
    flat = ss.StateMap(g_K_max=0.0, b_block=0.0, gain_ee_max=1.0, ext_min=1.0)  # NREM = wake
    out = cons.run_experiment(1, proto, cfg, flat, seed=3)
    for measure in ("recall", "trace"):
        for stage in cons.STAGES:
            for seq in ("S1", "S2"):
                a, b = (out[measure][c][stage][seq] for c in cons.CONDITIONS)
                np.testing.assert_array_equal(a, b, err_msg=f"{measure} {stage} {seq}")
    np.testing.assert_array_equal(out["raster"]["sleep"], out["raster"]["quiet_wake"])
    assert out["raster"]["sleep"].any()


def test_paired_stats_wilcoxon_sees_ties_that_rounding_broke():
    """Finding: recall values are fractions (multiples of 1/400 at the defaults); 0.07 - 0.065
    and 0.075 - 0.07 differ in the last bit, so the signed-rank test took eight tied
    magnitudes as distinct: p = 0.34 where the exact test with ties gives 0.73."""
    a = np.array([0.07, 0.07, 0.0775, 0.045, 0.0625, 0.2825, 0.41, 0.325])
    b = np.array([0.065, 0.075, 0.08, 0.04, 0.0575, 0.2875, 0.415, 0.33])
    want = stats.wilcoxon(np.round((a - b) * 400)).pvalue  # the same d in whole units
    assert want > 0.7
    for x, y in ((a, b), (a.astype(np.float32), b.astype(np.float32))):
        s = cons.paired_stats(x, y)
        assert s["wilcoxon_p"] == want
        assert s["t_test_p"] == stats.ttest_rel(np.float64(x), np.float64(y)).pvalue
    # no ties: scipy's p as it is; a tiny consistent difference is still a difference
    u, v = np.array([0.3, 0.5, 0.2, 0.9, 0.4]), np.array([0.1, 0.5, 0.25, 0.6, 0.3])
    assert cons.paired_stats(u, v)["wilcoxon_p"] == stats.wilcoxon(u, v).pvalue
    c = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6])
    assert cons.paired_stats(c + 1e-9, c)["wilcoxon_p"] == 1 / 32
