"""Mutation audit of the night, hypnogram and continual-learning baselines:
each test kills a small deliberate fault that the other tests let through."""

from argparse import Namespace
from types import SimpleNamespace

import numpy as np
import pytest

from nnjax.brain import harness


def test_score_runs_reads_the_start_of_the_first_task_as_the_untrained_accuracy():
    # R_lj = A_after[l, j] (one group per task); b_j = A_start[task 0, j] (the untrained
    # network); FWT = mean_{j>=1} (R_{j-1,j} - b_j), BWT = mean_{j<T-1} (R_{T-1,j} - R_jj),
    # ACC = count-weighted mean of the last row. A_start of later tasks must not enter.
    R = np.array([[0.9, 0.3, 0.2], [0.5, 0.8, 0.4], [0.4, 0.6, 0.7]])
    start = np.array([[0.1, 0.2, 0.25], [0.9, 0.3, 0.2], [0.5, 0.8, 0.4]])  # row t: before t
    runs = SimpleNamespace(A_after=R[None, None, None], A_start=start[None, None, None])
    split = SimpleNamespace(
        task_groups=np.array([[0], [1], [2]]), n_groups=3, g_test=np.array([0, 1, 1, 2, 2, 2])
    )  # counts 1, 2, 3
    m = harness.score_runs(runs, [split])
    assert m["fwt"].shape == (1, 1)
    assert m["fwt"][0, 0] == pytest.approx(((0.3 - 0.2) + (0.4 - 0.25)) / 2)
    assert m["bwt"][0, 0] == pytest.approx(((0.4 - 0.9) + (0.6 - 0.8)) / 2)
    assert m["final"][0, 0] == pytest.approx((0.4 * 1 + 0.6 * 2 + 0.7 * 3) / 6)
    assert m["just_learned"][0, 0] == pytest.approx((0.9 + 0.8 + 0.7) / 3)


def test_run_candidates_keeps_each_candidate_once_when_the_last_group_is_padded(monkeypatch):
    # 5 candidates in groups of 2: (0, 1), (2, 3), (4, 4 padding): 5 rows, in order
    import jax.numpy as jnp

    C = harness.C
    monkeypatch.setattr(harness, "splits_for", lambda *a, **k: [None])
    monkeypatch.setattr(harness, "build", lambda *a: None)
    monkeypatch.setattr(harness, "stack_arrays", lambda splits: None)
    monkeypatch.setattr(C, "make_run", lambda *a: None)
    monkeypatch.setattr(C, "seed_program", lambda *a, **k: None)
    monkeypatch.setattr(C, "run_seeds", lambda program, arrays, keys, hp, **k: hp["x"])
    monkeypatch.setattr(harness, "score_runs", lambda runs, s: {"final": np.asarray(runs)[:, None]})
    monkeypatch.setattr(harness, "diverged", lambda runs: np.zeros((len(runs), 1, 1), bool))
    hps = {"x": jnp.arange(5.0)}
    got = harness.run_candidates("ewc", "digits", hps, [0], None, validation=True, group=2)
    np.testing.assert_array_equal(got.metrics["final"][:, 0], [0, 1, 2, 3, 4])
    assert got.diverged.shape == (5, 1)


# --------------------------------------------------------------------------- nnjax night


@pytest.mark.parametrize("consolidation_s, need", [(6.0, 61e6), (2.0, 51e6)])
def test_seeds_memory_records_the_first_min_4_s_consolidation_s(consolidation_s, need):
    # --seeds x (4.1 MB + 0.5 MB/s x min(raster_s 4 s, --consolidation-s))
    from nnjax.commands import night as cmd

    args = Namespace(seeds=10, consolidation_s=consolidation_s)
    cmd._check_seeds_memory(args, int(need))
    with pytest.raises(ValueError, match=r"^--seeds 10: 10 networks simulated together need"):
        cmd._check_seeds_memory(args, int(need) - 1)


# --------------------------------------------------------------------------- hypnogram


def test_stage_durations_give_0_s_for_the_stages_after_the_last_one_present():
    from nnjax.brain import hypnogram as hy

    got = hy.stage_durations([0, 0, 2], epoch_s=30.0)  # no N3, no REM: 0.0, not left out
    assert got == {"W": 60.0, "N1": 0.0, "N2": 30.0, "N3": 0.0, "REM": 0.0}


@pytest.mark.parametrize("epochs, unit", [(3, "s"), (4, "min"), (239, "min"), (240, "h")])
def test_hypnogram_time_unit_switches_at_exactly_2_min_and_2_h(epochs, unit):
    from nnjax.brain import hypnogram as hy

    fig = hy.plot_hypnogram(np.zeros(epochs, int), epoch_s=30.0)  # 90 s, 120 s, 7170 s, 2 h
    assert fig.axes[0].get_xlabel() == f"time ({unit})"


def test_hypnogram_draws_the_highlighted_stage_only_where_it_is():
    from nnjax.brain import hypnogram as hy

    ax = hy.plot_hypnogram([0, 4, 4, 2], epoch_s=30.0).axes[0]  # REM in epochs 1, 2
    np.testing.assert_array_equal(ax.get_lines()[1].get_ydata(), [np.nan, -4, -4, np.nan, np.nan])


def test_spectrogram_time_unit_reads_a_hypnogram_longer_than_the_spectrogram():
    from nnjax.brain import hypnogram as hy

    t, f = np.arange(0.0, 100.0, 10.0), np.arange(4.0)
    fig = hy.plot_spectrogram(t, f, np.ones((4, 10)), hypno=np.zeros(10, int), epoch_s=30.0)
    assert fig.axes[1].get_xlabel() == "time (min)"  # 300 s of hypnogram, not 90 s


# --------------------------------------------------------------------------- the night's README


def _consolidation_results(tau):
    from nnjax.brain import consolidation, night

    a, b = np.array([0.1, 0.2, 0.3, 0.6]), np.array([0.0, 0.1, 0.1, 0.2])
    per = {cond: {st: {"S1": x, "S2": x} for st in consolidation.STAGES}
           for cond, x in (("sleep", a), ("quiet_wake", b))}  # fmt: skip
    raw = {"recall": per, "trace": per, "replay_order": {"sleep": np.asarray(tau)}}
    p = consolidation.Protocol(step_ms=20.0, width_ms=10.0, period_ms=300.0)
    return {"args": {"parts": ["consolidation"], "seed": 0}, "load_average": [1.5, 7.0, 9.0],
            "consolidation": {"protocol": p._asdict(), "network": "SMALL",
                              "stats": night.experiment_stats(raw)}}  # fmt: skip


def test_night_readme_consolidation_numbers_by_hand():
    from scipy import stats

    from nnjax.brain import night

    text = night.report_markdown(_consolidation_results([0.5, np.nan, -0.2, 0.3]))
    a, d = np.array([0.1, 0.2, 0.3, 0.6]), np.array([0.1, 0.1, 0.2, 0.4])
    h = [stats.t.ppf(0.975, 3) * x.std(ddof=1) / 2 for x in (a, d)]
    want = f"| after consolidation | S1 | 0.300 [{0.3 - h[0]:.3f}, {0.3 + h[0]:.3f}] |"
    assert want in text
    assert f" | 0.200 [{0.2 - h[1]:.3f}, {0.2 + h[1]:.3f}] | " in text
    assert "load average 1.5 at the end" in text  # the 1-minute one
    assert "SMALL; 4 seeds (vmapped)" in text
    assert "driven 20 ms apart (10 ms each, every 300 ms)" in text
    assert "averaged over the 3 of 4 seeds with a scored Up state: 0.20 (" in text


@pytest.mark.parametrize("tau, reverse", [([-0.05, -0.05], False), ([-0.15, -0.15], True)])
def test_night_readme_explains_a_replay_tau_below_minus_0_1_only(tau, reverse):
    from nnjax.brain import night

    text = night.report_markdown(_consolidation_results(tau))
    assert ("mostly in reverse order" in text) is reverse
    assert "seeds with a scored Up state" not in text  # every seed scored


def test_recall_figure_plots_sleep_and_quiet_wake_means_with_their_own_intervals():
    from nnjax.brain import consolidation, night

    def s(m, lo, hi):
        return {"mean": m, "ci95": [lo, hi]}

    stats = {st: {seq: {"a": s(0.5 + 0.1 * i, 0.45 + 0.1 * i, 0.7 + 0.1 * i),
                        "b": s(0.1 * i, 0.1 * i - 0.02, 0.1 * i + 0.05)}
                  for seq in ("S1", "S2")}
             for i, st in enumerate(consolidation.STAGES)}  # fmt: skip
    ax = night.figure_recall(stats).axes[0]
    assert len(ax.containers) == 2
    for c, key, (lo, hi) in zip(ax.containers, "ab", ((0.45, 0.7), (-0.02, 0.05))):
        assert c.get_label() == ("sleep" if key == "a" else "quiet wake")
        np.testing.assert_allclose(
            c.lines[0].get_ydata(), [stats[st]["S1"][key]["mean"] for st in consolidation.STAGES]
        )
        seg = np.array(c.lines[2][0].get_segments())  # (3 stages, [lo, hi], [x, y])
        np.testing.assert_allclose(seg[:, :, 1], [[lo + 0.1 * i, hi + 0.1 * i] for i in range(3)])


def test_stage_rasters_show_the_middle_seconds_of_the_longest_run():
    from nnjax.brain import night

    hypno = np.array([0, 1, 1, 1, 0, 0, 0, 0, 2, 2, 2])  # wake's longest run: [4, 8) s
    n = 1100  # 11 s of 10 ms bins
    rec = {"spikes": np.zeros((n, 5), bool), "rate": np.arange(n, dtype=float)[:, None]}
    fig = night.figure_stages({"hypno": hypno, "epoch_s": 1.0, "bin_ms": 10.0, "n_exc": 4,
                               "record": rec, "stages": {"wake": {}, "NREM": {}, "REM": {}}},
                              seconds=1.0)  # fmt: skip
    rates = [ax.get_lines()[0] for ax in fig.axes if ax.get_xlabel() == "time (s)"]
    assert len(rates) == 3
    # middles 6 s, 2.5 s, 9.5 s: from 5.5, 2 and 9 s, one second of bins centred at +5 ms
    for line, a in zip(rates, (550, 200, 900)):
        np.testing.assert_allclose(line.get_ydata(), np.arange(a, a + 100))
        assert line.get_xdata()[0] == pytest.approx((a + 0.5) / 100)


# --------------------------------------------------------------------------- replay buffer


def test_a_task_with_fewer_rows_than_the_buffer_capacity_fills_the_buffer():
    # select_per_class returns (K, capacity) as documented, also when the task has N < capacity
    # rows (it returned (K, N), and replay_method.after_task failed in a broadcast)
    import jax
    import jax.numpy as jnp

    from nnjax.brain import baselines

    y = jnp.array([0, 1, 0, 1, 0])
    idx, valid = baselines.select_per_class(jax.random.key(0), y, 5, 2, capacity=10, m=3)
    assert idx.shape == valid.shape == (2, 10)
    m = baselines.replay_method(lambda p, x: x @ p, n_tasks=2, n_classes=2, d=2, capacity=10)
    hp, W = {"rho": jnp.array(1.0), "m": jnp.array(3.0)}, jnp.zeros((2, 2))
    Xt = jnp.arange(10.0).reshape(5, 2)  # row r holds (2r, 2r + 1)
    _, extra = m.after_task(W, m.init(None, W, hp), jax.random.key(1), 0, (Xt, y, 5), None, hp)
    np.testing.assert_array_equal(extra["valid"].sum(-1), [[3, 2], [0, 0]])  # min(m, n_k)
    for k, rows in ((0, {0, 2, 4}), (1, {1, 3})):
        stored = np.asarray(extra["X"][0, k])[np.asarray(extra["valid"][0, k])]
        assert {int(r) for r in stored[:, 0] // 2} == rows


@pytest.mark.parametrize("which", [0, 1])
def test_combine_puts_the_after_wake_state_back_in_its_own_methods_slot(which):
    from nnjax.brain import baselines
    from nnjax.brain.continual import Method

    def after_wake(params, extra, opt_state, t, hp):
        return extra + [(t, hp, opt_state)]

    methods = [Method(), Method()]
    methods[which] = Method(after_wake=after_wake)
    m = baselines.combine(*methods)
    extra, hp = (["first"], ["second"]), ("hp0", "hp1")
    got = m.after_wake(None, extra, "opt", 3, hp)
    want = list(extra)
    want[which] = extra[which] + [(3, hp[which], "opt")]
    assert got == tuple(want)


def test_lwf_distils_on_every_class_seen_before_not_only_the_last_tasks():
    import jax.numpy as jnp

    from nnjax.brain import baselines

    m = baselines.lwf_method(lambda p, x: x @ p, n_classes=5)
    hp = {"temperature": jnp.array(2.0), "lam": jnp.array(1.0)}
    W0, W1 = jnp.zeros((2, 5)), jnp.ones((2, 5))
    extra = m.init(None, W0, hp)
    _, extra = m.after_task(W0, extra, None, 0, (None, jnp.array([0, 1, 1]), 3), None, hp)
    _, extra = m.after_task(W1, extra, None, 1, (None, jnp.array([3, 2, 3]), 3), None, hp)
    np.testing.assert_array_equal(extra["seen"], [True, True, True, True, False])
    np.testing.assert_array_equal(extra["old"], W1)  # the network at the end of task 1


def test_fisher_padding_rows_of_the_last_chunk_weigh_nothing():
    # logits x W + b, 2 classes: sum_k p_k (d log p_k / d theta_j)^2 = p_j (1 - p_j) times x^2
    # for W, times 1 for b. With a bias a zero padding row has a Fisher information of its own.
    import jax.numpy as jnp

    from nnjax.brain import baselines

    params = {"W": jnp.array([[np.log(3.0), 0.0]]), "b": jnp.array([0.5, 0.0])}
    X = np.array([[1.0], [2.0], [-1.0]])
    z = X @ np.asarray(params["W"]) + np.asarray(params["b"])
    p = np.exp(z) / np.exp(z).sum(-1, keepdims=True)
    F = baselines.fisher_diagonal(
        lambda q, x: x @ q["W"] + q["b"], params, jnp.asarray(X), jnp.ones(3), chunk=2
    )
    np.testing.assert_allclose(F["b"], (p * (1 - p)).mean(0), rtol=1e-5)
    np.testing.assert_allclose(F["W"], [(X**2 * p * (1 - p)).mean(0)], rtol=1e-5)
