"""Small faults in the sleep side and the continual-learning scores that the suite let pass
(a mutation audit): each test below fails on one of them and checks a documented value
against a hand computation (NumPy), an exact boundary, or an exact error message."""

import io
import re
from types import SimpleNamespace

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from nnjax.brain import baselines as B
from nnjax.brain import detect, scores, sleep
from nnjax.brain import sleep_states as S
from nnjax.brain import study_report as SR
from nnjax.brain.consolidation_protocol import (
    Protocol,
    check_protocol,
    cue_stimulus,
    groups,
    sequence_stimulus,
)
from nnjax.brain.consolidation_scores import paired_stats, recall, replay_order, synaptic_trace
from nnjax.brain.night import describe_stages, parse_hypnogram, stage_bins
from nnjax.brain.night_report import verdict
from nnjax.brain.study import summarise


def test_paired_counts_a_difference_of_exactly_tie_as_a_tie():
    # |d| <= tie is a tie (d = 0): d = 2**-10 exactly, with tie = 2**-10
    tie = 2.0**-10
    a, b = np.array([0.5 + tie, 0.75, 0.25]), np.array([0.5, 0.5, 0.375])
    res = scores.paired(a, b, tie=tie)
    assert (res["wins"], res["losses"]) == (1, 1)
    assert res["diff"]["mean"] == pytest.approx((0.0 + 0.25 - 0.125) / 3)


def test_select_per_class_never_takes_a_row_at_or_past_n():
    # rows 0, 1 are real (classes 0 and 1); rows 2.. are padding that repeats class 0
    y = jnp.array([0, 1, 0, 0, 0, 1])
    for seed in range(4):
        idx, valid = B.select_per_class(jax.random.key(seed), y, 2, 2, capacity=4, m=3)
        idx, valid = np.asarray(idx), np.asarray(valid)
        assert valid.sum(1).tolist() == [1, 1]  # min(m, n_k) with n_k = 1 real row each
        assert idx[0][valid[0]].tolist() == [0] and idx[1][valid[1]].tolist() == [1]


def test_ewc_fisher_reads_only_the_first_nt_rows_of_the_task():
    # logits x @ W: sum_k p_k (d log p_k / d W_ij)^2 = x_i^2 p_j (1 - p_j) (by hand)
    rng = np.random.default_rng(0)
    W, X = rng.normal(size=(2, 3)), rng.normal(size=(5, 2))
    nt = 3  # rows 3, 4 are padding
    z = X[:nt] @ W
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    F_hand = np.einsum("ni,nj->ij", X[:nt] ** 2, p * (1 - p)) / nt
    m = B.ewc_method(lambda q, x: x @ q["W"])
    hp = {"lam": jnp.array(3.0), "gamma": jnp.array(1.0)}
    params = {"W": jnp.asarray(W, jnp.float32)}
    extra = m.init(None, params, hp)
    task = (jnp.asarray(X, jnp.float32), jnp.zeros(5, int), jnp.array(nt))
    _, extra = m.after_task(params, extra, None, 0, task, None, hp)
    np.testing.assert_allclose(extra["fisher"]["W"], F_hand, rtol=1e-5, atol=1e-7)
    # the penalty lam/2 sum F (theta - theta*)^2, by hand
    delta = rng.normal(size=(2, 3))
    theta = {"W": params["W"] + jnp.asarray(delta, jnp.float32)}
    x, y1h = jnp.zeros((1, 2)), jnp.array([[1.0, 0.0, 0.0]])
    want = np.log(3.0) + 0.5 * 3.0 * np.sum(F_hand * delta**2)
    np.testing.assert_allclose(m.loss(theta, extra, None, 1, x, y1h, hp), want, rtol=1e-5)


def test_a_bad_buffer_size_in_a_candidate_array_names_that_value():
    m = B.replay_method(lambda q, x: x @ q, n_tasks=2, n_classes=2, d=2, capacity=20)
    msg = (
        "replay_method: m (examples per class) must be a whole number in 0..20 (the buffer's "
        "capacity), got 25.0"
    )
    with pytest.raises(ValueError, match=f"^{re.escape(msg)}$"):
        m.check({"rho": jnp.array([1.0, 1.0]), "m": jnp.array([3.0, 25.0])})


def test_schedule_rounds_steps_per_epoch_to_the_nearest():
    # 0.35 s at dt = 0.3 ms: 1166.67 steps, per = round(...) = 1167 (the docstring)
    lv = S.schedule(np.array([0, 1]), 0.35, 0.3)
    assert lv.ach.shape == (2 * 1167,)
    assert lv.ach[1166] == 1.0 and lv.ach[1167] == 0.0


def _box(values, per, width):
    """The docstring's ramp: x = repeat(values, per); output i = mean of x over
    [i - width // 2, i + (width - 1) // 2], indices clamped to [0, n - 1]."""
    x = np.repeat(np.asarray(values, np.float64), per)
    n = x.size
    return np.array(
        [x[np.clip(np.arange(i - width // 2, i + (width - 1) // 2 + 1), 0, n - 1)].mean()
         for i in range(n)]
    )  # fmt: skip


@pytest.mark.parametrize("ramp_steps", [2, 3, 4, 7, 10])
def test_schedule_ramps_are_the_documented_box_average(ramp_steps):
    # epochs of 10 steps (1 ms at dt = 0.1 ms); a ramp of 10 steps is one full epoch
    hypno = np.array([0, 1, 1, 2, 0, 1])
    lv = S.schedule(hypno, 0.001, 0.1, ramp_s=ramp_steps * 1e-4)
    for f in ("ach", "mono"):
        x = np.array([getattr(S.STATES[n], f) for n in S.STAGE_NAMES])[hypno]
        np.testing.assert_allclose(getattr(lv, f), _box(x, 10, ramp_steps), atol=1e-6)


def test_schedule_allows_exactly_max_steps(monkeypatch):
    monkeypatch.setattr(S, "MAX_STEPS", 20)
    assert S.schedule(np.array([0, 1]), 0.001, 0.1).ach.shape == (20,)
    with pytest.raises(ValueError, match="3 epochs x 10 steps = 30 steps of dt = 0.1 ms, more"):
        S.schedule(np.array([0, 1, 2]), 0.001, 0.1)


def test_describe_defaults_to_4_s_welch_segments():
    rng = np.random.default_rng(1)
    n = 10_000  # 10 s of 1 ms bins
    t = np.arange(n) / 1000.0
    lfp = np.sin(2 * np.pi * 0.8 * t) + 0.5 * np.sin(2 * np.pi * 7.0 * t) + rng.normal(size=n)
    spikes = rng.random((n, 6)) < 0.01
    rec = {"rate": spikes.mean(1, keepdims=True) * 1000.0, "lfp": lfp, "spikes": spikes}
    d, d4 = S.describe(rec, 1.0, 6), S.describe(rec, 1.0, 6, nperseg=4000)
    assert d["slow_power_fraction"] == d4["slow_power_fraction"]
    assert d["peak_hz_below_4"] == d4["peak_hz_below_4"] == 0.75  # 0.25 Hz bins


def test_synaptic_trace_is_forward_minus_backward_over_existing_synapses_by_hand():
    # 3 groups of 2 cells (ids 0-1, 2-3, 4-5) and 2 spare cells; W[post, pre]
    proto = Protocol(n_groups=3, group_size=2)
    rng = np.random.default_rng(2)
    W = rng.uniform(0.5, 2.0, size=(8, 8))
    mask = rng.random((8, 8)) < 0.6
    W_masked = np.where(mask, W, 0.0)
    g, order = [[0, 1], [2, 3], [4, 5]], [2, 0, 1]
    fwd_w, fwd_n, bwd_w, bwd_n = 0.0, 0, 0.0, 0
    for a, b in zip(order[:-1], order[1:]):  # link a -> b: post in b, pre in a
        for i in g[b]:
            for j in g[a]:
                fwd_w, fwd_n = fwd_w + W_masked[i, j], fwd_n + mask[i, j]
                bwd_w, bwd_n = bwd_w + W_masked[j, i], bwd_n + mask[j, i]
    want = fwd_w / fwd_n - bwd_w / bwd_n
    assert synaptic_trace(W_masked, proto, order) == pytest.approx(want)
    # with a mask, a synapse outside it does not count, whatever W holds there
    assert synaptic_trace(W, proto, order, mask=mask) == pytest.approx(want)
    # a mask synapse at 0 nS counts (STDP depressed it): the mean drops
    W0 = W_masked.copy()
    i, j = g[order[1]][0], g[order[0]][0]
    assert mask[i, j]  # seed 2: the synapse from cell 4 to cell 2 exists
    W0[i, j] = 0.0
    want0 = (fwd_w - W_masked[i, j]) / fwd_n - bwd_w / bwd_n
    assert synaptic_trace(W0, proto, order, mask=mask) == pytest.approx(want0)


def test_paired_stats_intervals_are_t_intervals_with_the_sample_std():
    a, b = np.array([0.31, 0.12, 0.44, 0.25]), np.array([0.20, 0.15, 0.30, 0.05])
    out = paired_stats(a, b)
    for key, x in (("a", a), ("b", b), ("difference", a - b)):
        m = x.mean()
        h = stats.t.ppf(0.975, 3) * np.sqrt(((x - m) ** 2).sum() / 3) / 2.0  # ddof 1, sqrt(4)
        assert out[key]["mean"] == pytest.approx(m)
        np.testing.assert_allclose(out[key]["ci95"], [m - h, m + h], rtol=1e-12)
    d = a - b  # paired t by hand: t = mean(d) / (s_d / sqrt(n)), 3 df, two-sided
    t = d.mean() / (d.std(ddof=1) / 2.0)
    assert out["t_test_p"] == pytest.approx(2 * stats.t.sf(abs(t), 3))


def test_replay_order_lead_window_is_lead_ms_over_bin_ms_rounded():
    # lead = round(lead_ms / bin_ms) bins from each detected onset b: the last group's first
    # spike at bin b + L - 1 with lead_ms = L - 0.3 bins lies inside (round: L), outside with
    # a truncated L - 1; without it an Up state has 2 active groups: not scored (nan)
    protocol = Protocol(n_groups=4, group_size=3)
    G, r = groups(protocol), np.zeros((5000, 12), int)
    for t0 in (500, 1500, 2500, 3500):
        r[t0 : t0 + 200, G[0]] = 1
        r[t0 + 40 : t0 + 200, G[1]] = 1
        r[t0 + 60 : t0 + 200, G[2]] = 1
        r[t0 + 90 : t0 + 200, G[3]] = 1
    ups = detect.detect_updown(r.mean(1) * 1000.0, 1000.0).up
    b = [int(round(s * 1000.0)) for s, _ in ups]
    assert len(b) == 4 and len({t0 + 90 - k for t0, k in zip((500, 1500, 2500, 3500), b)}) == 1
    L = 500 + 90 - b[0] + 1  # bins from b to the last group's first spike, inclusive
    assert replay_order(r, 1.0, protocol, [1, 2, 3], lead_ms=L - 0.3) == 1.0
    assert np.isnan(replay_order(r, 1.0, protocol, [1, 2, 3], lead_ms=L - 1.3))


def test_recall_accepts_an_onset_whose_window_ends_at_the_raster_end():
    # w <= b <= n_bins - w: the last allowed onset's "after" window is the raster's last w bins
    protocol = Protocol(n_groups=3, group_size=2, window_ms=4.0)
    r = np.zeros((20, 6), int)
    r[16:20, 2] = 1  # group 1, one of its 2 cells, in the last window: frac 0.5
    r[14, 4:6] = 1  # group 2 in the window before: frac 1
    assert recall(r, 1.0, [16.0], protocol, [0, 1, 2]) == pytest.approx((0.5 + (0 - 1)) / 2)
    with pytest.raises(ValueError, match=r"inside the raster \(\[4.0, 16.0\] ms"):
        recall(r, 1.0, [17.0], protocol, [0, 1, 2])


def test_stage_bins_rounds_to_the_nearest_bin():
    assert stage_bins(3 * 0.35, 1.0) == 1050  # 1.0499999999999998 s
    assert stage_bins(0.0104, 1.0) == 10 and stage_bins(0.0106, 1.0) == 11


def test_summarise_gives_the_seen_curve_after_every_task():
    rng = np.random.default_rng(3)
    seen = {r: rng.uniform(0.2, 0.9, size=(6, 4)) for r in ("sequential", "ewc")}
    m = {r: {"seen": s, "final": s[:, -1]} for r, s in seen.items()}
    res = {"metrics": m, "orders": [0, 1], "n_seeds": 3, "rows": ["sequential", "ewc"]}
    out = summarise(res)["ewc"]
    assert len(out["seen"]) == 4
    for t in range(4):
        assert out["seen"][t]["mean"] == pytest.approx(seen["ewc"][:, t].mean())
        assert out["seen"][t]["std"] == pytest.approx(seen["ewc"][:, t].std(ddof=1))
    d = seen["ewc"][:, -1] - seen["sequential"][:, -1]
    assert out["vs_sequential"]["diff"]["mean"] == pytest.approx(d.mean())
    want = [d[:3].mean(), d[3:].mean()]  # runs are order-major: order 0's seeds are runs 0..2
    np.testing.assert_allclose(out["vs_sequential_orders"]["cluster_means"], want)


def test_protocol_stimuli_and_checks_at_their_documented_edges():
    p = Protocol(n_groups=3, group_size=2, step_ms=5.0, width_ms=5.0, period_ms=15.0)
    s = sequence_stimulus(p, 30, 1.0, [2, 0, 1])  # group order[j] on in [5 j, 5 j + 5) ms
    for j, k in enumerate([2, 0, 1]):
        want = [(5 * j <= t % 15 < 5 * j + 5) for t in range(30)]
        assert s[:, k].tolist() == want
    # a trial that just fits, (n_groups - 1) step + width = period, and cue_period = 2 window
    check_protocol(p._replace(cue_period_ms=160.0, window_ms=80.0), 6, "here", dt=0.1)
    with pytest.raises(ValueError, match="must be >= 2 window_ms = 160.0"):
        check_protocol(p._replace(cue_period_ms=159.0, window_ms=80.0), 6, "here")
    # cues cycle through ``cued``: one per cue period, onsets after settle and a window
    q = Protocol(n_groups=3, group_size=2, n_cues=2, cue_period_ms=20.0, window_ms=5.0,
                 cue_ms=2.0, settle_s=0.01)  # fmt: skip
    out, onsets = cue_stimulus(q, 1.0, [2, 1])
    assert onsets.tolist() == [15.0, 35.0, 55.0, 75.0] and out.shape == (90, 3)
    assert [int(np.flatnonzero(out[int(t)])[0]) for t in onsets] == [2, 1, 2, 1]


def test_parse_hypnogram_letters_are_the_stage_codes():
    want = [S.STAGE_NAMES.index(n) for n in ("wake", "NREM", "REM", "NREM")]
    assert parse_hypnogram("W, n,R,N").tolist() == want


def test_verdict_needs_p_below_0_05():
    s = {"difference": {"mean": 0.1, "ci95": [0.01, 0.19]}, "t_test_p": 0.05}
    assert verdict(s).startswith("no significant difference: +0.100")
    assert verdict({**s, "t_test_p": 0.049}).startswith("sleep helped: +0.100")


def test_study_report_interval_and_eta_by_hand():
    # an interval that ends exactly at the range is not cut
    assert SR._ci({"ci": 0.25, "lo": 0.0, "hi": 0.5}) == "[0.0, 50.0]"
    assert SR._ci({"ci": 0.5, "lo": -0.25, "hi": 0.75}) == f"[0.0, 75.0]{SR.CUT}"
    # ETA = elapsed / done x (total - done), done in the cost model's units
    times = iter([0.0, 10.0])
    out = io.StringIO()
    prog = SR.Progress([(("a",), 2.0), (("b",), 2.0)], stream=out, clock=lambda: next(times))
    prog.begin(("a",))
    prog.hook(SimpleNamespace(end=1, total=2))  # done 1 of 4 units after 10 s: 30 s left
    assert out.getvalue().splitlines()[-1].strip() == "task 1/2  elapsed 10s  ETA 30s"


def test_describe_stages_reads_the_longest_run_of_a_stage():
    rng = np.random.default_rng(4)
    hypno = np.array([0, 1, 0, 0])  # wake runs of 1 and 2 epochs of 3 s
    n = 12_000  # 12 s of 1 ms bins
    spikes = rng.random((n, 4)) < 0.02
    rec = {"rate": spikes.mean(1, keepdims=True) * 1000.0, "lfp": rng.normal(size=n),
           "spikes": spikes}  # fmt: skip
    out = describe_stages(rec, hypno, 3.0, 1.0, 4, settle_s=0.5)
    assert out["wake"]["seconds"] == pytest.approx(5.5)  # [6.5, 12) s, not [0.5, 3) s
    assert out["NREM"]["seconds"] == pytest.approx(2.5)
    assert "REM" not in out


def test_src_sleep_ignores_the_rows_outside_its_mask():
    rng = np.random.default_rng(5)
    Ws = [jnp.asarray(rng.normal(0, 0.4, s), jnp.float32) for s in ((4, 5), (5, 3))]
    X = np.abs(rng.normal(0.3, 0.2, (3, 4)))
    X[2] = 9.0  # a masked-out row with large activations and a large mean
    X, mask = jnp.asarray(X, jnp.float32), jnp.array([True, True, False])
    # s_l = max(max W_l, max over the masked rows of a_l); scales 1 / f_l, f_l = s_l / f_{l-1}
    a1 = np.maximum(np.asarray(X[:2]) @ np.asarray(Ws[0]), 0)
    a2 = np.maximum(a1 @ np.asarray(Ws[1]), 0)
    s = [max(np.asarray(Ws[0]).max(), a1.max()), max(np.asarray(Ws[1]).max(), a2.max())]
    np.testing.assert_allclose(sleep.layer_scales(Ws, X, mask), [1 / s[0], s[0] / s[1]], rtol=1e-5)
    hp = sleep.SRCParams(*(jnp.asarray(v) for v in (300.0, 0.01, 0.002, [0.5, 0.5], 1.0)))
    cfg, key = sleep.SRCConfig(steps=40, patch=2), jax.random.key(7)
    W_a, c_a = sleep.sleep(Ws, key, X, mask, hp, (2, 2), cfg)
    W_b, c_b = sleep.sleep(Ws, key, X[:2], jnp.ones(2, bool), hp, (2, 2), cfg)
    np.testing.assert_array_equal(np.asarray(c_a), np.asarray(c_b))
    assert int(c_a[1]) > 0  # the first layer fired: the weights moved
    for a, b in zip(W_a, W_b):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6, atol=1e-7)
