"""Mutation audit of the brain side's analysis (Kuramoto, synchrony, detection, scores, tasks,
sleep states, night and study reports): each test kills a small deliberate fault that the
other tests let through, against closed forms, NumPy loops and hand-made inputs."""

import numpy as np
import pytest
from scipy import stats

from nnjax.brain import (
    activity,
    detect,
    kuramoto,
    night_report,
    rhythms,
    scores,
    sleep_states,
    study_report,
    tasks,
)


def test_quantile_frequencies_are_the_midpoint_quantiles_of_the_docstring():
    # omega_i = omega0 + gamma tan(pi ((i + 1/2) / n - 1/2)): n = 4 gives tan(-+3 pi/8) and
    # tan(-+pi/8), i.e. -+(1 + sqrt 2) and -+(sqrt 2 - 1); Gaussian: Phi^{-1}((i + 1/2) / n)
    s2 = np.sqrt(2.0)
    want = 1.0 + 2.0 * np.array([-(1 + s2), -(s2 - 1), s2 - 1, 1 + s2])
    got = kuramoto.lorentzian_frequencies(4, gamma=2.0, omega0=1.0)
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-5)
    got = kuramoto.gaussian_frequencies(4, sigma=3.0, omega0=-1.0)
    want = -1.0 + 3.0 * stats.norm.ppf((np.arange(4) + 0.5) / 4)
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-5)


def test_stationary_r_is_zero_up_to_2_gamma_and_the_square_root_above():
    # r = sqrt(1 - 2 gamma / K) for K > K_c = 2 gamma, else 0: between gamma and 2 gamma too
    K = np.array([-1.0, 0.5, 1.5, 2.0, 3.0, 8.0, 3.0, 5.0])
    gamma = np.array([1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 2.0, 2.0])
    want = np.sqrt(np.maximum(1.0 - 2.0 * gamma / K, 0.0))
    want[:2] = 0.0
    np.testing.assert_allclose(np.asarray(kuramoto.stationary_r(K, gamma)), want, atol=1e-7)


def test_velocity_on_an_asymmetric_coupling_is_the_row_sum_of_the_docstring():
    # dtheta_i/dt = omega_i + (K / N) sum_j A_ij sin(theta_j - theta_i), by a NumPy loop
    theta = np.array([0.1, 1.3, -2.0, 2.9])
    omega = np.array([0.5, -0.25, 1.0, 0.0])
    A = np.array([[0, 1, 0, 0], [0, 0, 2, 0], [1, 0, 0, 0.5], [0, 0, 0, 0]], float)
    K, n = 1.7, 4
    want = [omega[i] + K / n * sum(A[i, j] * np.sin(theta[j] - theta[i]) for j in range(n))
            for i in range(n)]  # fmt: skip
    got = kuramoto.velocity(theta, omega, K, coupling=A)
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-5, atol=1e-6)
    # all-to-all: the mean field K r sin(psi - theta_i)
    z = np.exp(1j * theta).mean()
    want = omega + K * np.abs(z) * np.sin(np.angle(z) - theta)
    got = kuramoto.velocity(theta, omega, K)
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-5, atol=1e-6)


def test_uncoupled_phases_rotate_freely_and_r_psi_are_those_of_each_record():
    # K = 0: theta(t) = theta0 + omega t exactly (RK4 of a constant velocity), so record k,
    # after (k + 1) * record_every steps, holds z = mean e^{i theta(t_k)}
    theta0, omega = np.array([0.0, 0.5, 2.0]), np.array([1.0, -0.3, 0.2])
    dt, every, n_rec = 0.1, 3, 4
    res = kuramoto.simulate(theta0, omega, 0.0, dt=dt, n_steps=every * n_rec, record_every=every)
    t = dt * every * np.arange(1, n_rec + 1)
    z = np.exp(1j * (theta0 + omega * t[:, None])).mean(-1)
    np.testing.assert_allclose(np.asarray(res.r), np.abs(z), rtol=1e-5)
    np.testing.assert_allclose(np.asarray(res.psi), np.angle(z), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(res.theta), theta0 + omega * t[-1], rtol=1e-5)
    # order_parameter of a known phase set: {0, pi/2} gives (1 + i) / 2
    np.testing.assert_allclose(complex(kuramoto.order_parameter(np.array([0.0, np.pi / 2]))),
                               0.5 + 0.5j, atol=1e-7)  # fmt: skip


def test_study_durations_round_to_whole_seconds_and_switch_to_minutes_at_60_s():
    # round(s), then "XmYYs" from 60 s on: 59.4 -> 59s, 59.6 -> 60 s -> 1m00s, 60 -> 1m00s
    got = [study_report._duration(s) for s in (-3.0, 0.4, 59.4, 59.6, 60.0, 61.0, 3599.5)]
    assert got == ["0s", "0s", "59s", "1m00s", "1m00s", "1m01s", "60m00s"]


def test_spindle_cells_are_read_from_the_band_passed_signal_inside_each_event():
    # each event [a, b): amplitude = ptp of the sigma-band signal there, rms = the envelope's
    # maximum, peak = its time, frequency = sign changes / (2 duration) (module docstring)
    fs, rng = 200.0, np.random.default_rng(3)
    t = np.arange(int(20 * fs)) / fs
    x = rng.normal(size=t.size)
    for t0 in (5.0, 12.0):
        w = (t >= t0) & (t < t0 + 1.0)
        x[w] += 6.0 * np.hanning(w.sum()) * np.sin(2 * np.pi * 13.0 * (t[w] - t0))
    ev = detect.detect_spindles(x, fs)
    assert len(ev.start) == 2 and np.all(np.abs(ev.start - [5.0, 12.0]) < 0.4)
    xs = np.asarray(rhythms.bandpass(x, fs, rhythms.SPINDLE_BAND, order=4), np.float64)
    env = np.asarray(rhythms.moving_rms(xs, fs, 0.3), np.float64)
    for k in range(2):
        a, b = round(ev.start[k] * fs), round(ev.end[k] * fs)
        seg = xs[a:b]
        cross = np.count_nonzero(np.signbit(seg[1:]) != np.signbit(seg[:-1]))
        assert ev.duration[k] == pytest.approx((b - a) / fs, rel=1e-12)
        assert ev.amplitude[k] == pytest.approx(seg.max() - seg.min(), rel=1e-9)
        assert ev.rms[k] == pytest.approx(env[a:b].max(), rel=1e-9)
        assert ev.peak[k] == pytest.approx((a + np.argmax(env[a:b])) / fs, abs=1e-12)
        assert ev.frequency[k] == pytest.approx(cross / (2 * (b - a) / fs), rel=1e-12)
        assert 12.0 < ev.frequency[k] < 14.0
    # bounds at the event's own duration and the high threshold at its own peak: inclusive
    a, b = round(ev.start[0] * fs), round(ev.end[0] * fs)
    for bounds in (((b - a) / fs, 2.0), (0.2, (b - a) / fs)):
        assert ev.start[0] in detect.detect_spindles(x, fs, duration_s=bounds).start
    base = float(np.median(env))
    high = ev.rms.min() / base
    assert high * base == ev.rms.min()  # exact: the event's peak is exactly on the threshold
    assert len(detect.detect_spindles(x, fs, thresh_high=high).start) == 2


def test_runs_exactly_min_distance_apart_are_not_merged():
    r = np.array([[0, 10], [15, 20], [30, 40]])
    np.testing.assert_array_equal(detect._merge_close(r, 5), r)
    np.testing.assert_array_equal(detect._merge_close(r, 6), [[0, 20], [30, 40]])
    np.testing.assert_array_equal(detect._merge_close(r, 11), [[0, 40]])


def test_a_single_tied_pair_has_no_t_test_in_the_study_table():
    # paired() gives p_t = 1 when every d is 0; the table's t-test of one pair is n/a anyway
    c = scores.paired(np.array([0.5]), np.array([0.5]))
    assert c["p_t"] == 1.0
    assert study_report._run_cells(c) == ["+0.0 n/a", "n/a", "1", "0/0"]
    c = scores.paired(np.array([0.7, 0.6]), np.array([0.5, 0.5]))  # d = 0.2, 0.1
    h = stats.t.ppf(0.975, 1) * np.std([0.2, 0.1], ddof=1) / np.sqrt(2)
    p = stats.ttest_1samp([0.2, 0.1], 0).pvalue
    want = f"+15.0 [{100 * (0.15 - h):.1f}, {100 * (0.15 + h):.1f}]"  # within +-100: not cut
    assert study_report._run_cells(c) == [want, f"{p:.2g}", "0.5", "2/0"]


def _split(n_tasks):
    T, N = len(n_tasks), 5
    X = np.arange(T * N, dtype=np.float32).reshape(T, N, 1)
    X[0, 3:] = -1.0  # task 0: 3 real rows, then padding
    y = np.arange(T * N, dtype=np.int32).reshape(T, N)
    y[0, 3:] = -1
    g = np.zeros(1, np.int32)
    return tasks.SplitData(X, y, np.array(n_tasks, np.int32), X[0, :1, :], g, g[None], 1,
                           (1,), "toy", g, g[None], 1, "class")  # fmt: skip


def test_padding_and_the_cumulative_view_cycle_only_the_real_rows():
    split = _split([3, 5])
    out = tasks.pad_tasks(split, 8)
    np.testing.assert_array_equal(out.X_tasks[0, :, 0], [0, 1, 2, 0, 1, 2, 0, 1])
    np.testing.assert_array_equal(out.y_tasks[0], [0, 1, 2, 0, 1, 2, 0, 1])
    np.testing.assert_array_equal(out.X_tasks[1, :, 0], [5, 6, 7, 8, 9, 5, 6, 7])
    cum = tasks.cumulative(split)  # task 1: tasks 0 and 1's 3 + 5 real rows, N = 8
    np.testing.assert_array_equal(cum.n_tasks, [3, 8])
    np.testing.assert_array_equal(cum.X_tasks[1, :, 0], [0, 1, 2, 5, 6, 7, 8, 9])
    np.testing.assert_array_equal(cum.X_tasks[0, :, 0], [0, 1, 2, 0, 1, 2, 0, 1])
    np.testing.assert_array_equal(tasks.on_off(np.array([[2.0, -1.0]]), 4.0), [[0.5, 0, 0, 0.25]])


def test_slow_wave_bounds_and_thresholds_are_inclusive_at_a_waves_own_values():
    # a 0.8 Hz wave of 150 uV: detected, then detected again with neg_duration_s pinned to
    # its own (up - c) / fs and the thresholds set to its own amplitudes (all inclusive)
    fs = 100.0
    t = np.arange(int(10 * fs)) / fs
    x = -150.0 * np.sin(2 * np.pi * 0.8 * t) + np.random.default_rng(0).normal(0, 5, t.size)
    ev = detect.detect_slow_waves(x, fs)
    assert len(ev.start) >= 5
    d = round((ev.mid[2] - ev.start[2]) * fs)
    xf = np.asarray(rhythms.bandpass(x, fs, rhythms.SLOW_WAVE_BAND, order=2), np.float64)
    c, up = round(ev.start[2] * fs), round(ev.mid[2] * fs)
    assert ev.neg_amplitude[2] == xf[c:up].min() and ev.neg_peak[2] * fs == pytest.approx(
        c + np.argmin(xf[c:up])
    )
    for bounds in ((d / fs, 2.0), (0.1, d / fs)):
        same = detect.detect_slow_waves(
            x, fs, neg_duration_s=bounds, neg_threshold=ev.neg_amplitude[2], ptp_threshold=ev.ptp[2]
        )
        assert ev.start[2] in same.start  # fmt: skip


def test_magnitudes_exactly_tie_apart_are_one_magnitude():
    # |d| <= tie is 0; sorted magnitudes within tie of their neighbour share their mean
    got = scores.snap_ties(np.array([1.0, 1.5, -3.0, 0.25, -2.25]), 0.5)
    np.testing.assert_array_equal(got, [1.25, 1.25, -3.0, 0.0, -2.25])
    np.testing.assert_array_equal(scores.snap_ties(np.array([1.0, 1.5]), 0.25), [1.0, 1.5])


def test_updown_starts_in_the_state_nearer_its_first_value_and_needs_to_pass_a_threshold():
    # hysteresis at up = 10, down = 5: the first sample picks Up iff above their midpoint
    # 7.5; then only a value above 10 (not equal) turns Up and below 5 turns Down
    kw = dict(smooth_s=0, up_threshold=10, down_threshold=5, min_up_s=0, min_down_s=0)
    rate = np.array([8, 8, 12, 1, 7, 10, 12, 6.0])
    np.testing.assert_array_equal(detect.detect_updown(rate, 1.0, **kw).state,
                                  [1, 1, 1, 0, 0, 0, 1, 1])  # fmt: skip
    rate[:2] = 7.0
    np.testing.assert_array_equal(detect.detect_updown(rate, 1.0, **kw).state[:2], [0, 0])


def test_slow_waves_are_every_complete_negative_half_wave_of_a_numpy_loop():
    # negative zero crossing c, positive one up, next negative one nxt, all inside the record;
    # (up - c) / fs in [0.3, 1] s, min <= -80, max - min >= 140 on the band-passed signal
    fs, rng = 100.0, np.random.default_rng(1)
    t = np.arange(int(12 * fs)) / fs
    x = -120.0 * np.sin(2 * np.pi * 0.7 * t) * (1 + 0.5 * np.sin(0.9 * t)) + rng.normal(
        0, 10, t.size
    )
    xf = np.asarray(rhythms.bandpass(x, fs, rhythms.SLOW_WAVE_BAND, order=2), np.float64)
    ch = np.flatnonzero((xf[1:] < 0) != (xf[:-1] < 0)) + 1
    want = [c / fs for c, up, nxt in zip(ch, ch[1:], ch[2:])
            if xf[c] < 0 and 0.3 <= (up - c) / fs <= 1.0 and xf[c:up].min() <= -80
            and xf[up:nxt].max() - xf[c:up].min() >= 140]  # fmt: skip
    got = detect.detect_slow_waves(x, fs)
    assert len(want) >= 4 and want[-1] > 9.0
    np.testing.assert_array_equal(got.start, want)


def test_the_replay_is_scored_on_at_most_the_consolidation_period():
    # the first raster_s of the consolidation period, all of it when shorter
    assert night_report.replay_s({"raster_s": 20.0, "consolidation_s": 5.0}) == 5.0
    assert night_report.replay_s({"raster_s": 20.0, "consolidation_s": 60.0}) == 20.0
    r = {"mean": 0.5, "values": [0.4, 0.6], "n_scored": 2}
    line = night_report._replay_line(r, {"raster_s": 20.0, "consolidation_s": 5.0, "n_groups": 4})
    assert line.startswith("Replay: in the first 5 s of NREM,") and ": 0.50 (+1:" in line


def test_permuted_test_examples_are_grouped_by_their_task_block():
    # the test split once per task, task t's block under permutation t: its group is t
    sp = tasks.load_split("permuted-digits", 3)
    M = len(sp.y_test) // 5
    np.testing.assert_array_equal(sp.g_test, np.repeat(np.arange(5), M))
    perms = tasks.task_permutations(3, sp.X_test.shape[1])
    np.testing.assert_array_equal(sp.X_test[2 * M : 3 * M], sp.X_test[:M][:, perms[2]])
    np.testing.assert_array_equal(tasks.group_counts(sp), [M] * 5)
    np.testing.assert_array_equal(tasks.class_counts(np.array([0, 0, 2]), 4), [2, 0, 1, 0])


def test_stage_spectrum_peak_includes_4_hz_and_the_total_starts_at_the_first_bin():
    # peak in (0, 4] Hz: a 4 Hz sine on 0.25 Hz bins peaks at 4.0; total from fs / nperseg
    fs = 100.0
    t = np.arange(int(16 * fs)) / fs
    lfp = np.sin(2 * np.pi * 4.0 * t) + 0.5 * np.sin(2 * np.pi * 1.0 * t) + 0.3 * t / t[-1]
    out = sleep_states._spectrum(lfp, fs, 400)
    assert out["peak_hz_below_4"] == 4.0
    f, p = rhythms.welch(lfp, fs, nperseg=400)
    want = rhythms.band_power(f, p, sleep_states.SLOW_BAND) / rhythms.band_power(f, p, (0.25, 50))
    assert out["slow_power_fraction"] == pytest.approx(float(want), rel=1e-9)


def test_describe_takes_the_median_cv_of_the_e_cells_and_counts_the_up_states():
    n, rng = 2000, np.random.default_rng(4)
    raster = np.zeros((n, 5), np.float32)
    raster[::100, 0] = raster[::50, 1] = 1  # regular: CV 0
    raster[[5, 9, 200, 210, 900, 1500, 1510, 1900], 2] = 1  # irregular
    raster[[3, 400, 401, 402, 1200, 1800], 3] = 1
    raster[::7, 4] = 1  # an I cell: left out
    rate = np.where((np.arange(n) // 400) % 2 == 1, 20.0, 0.5) + rng.uniform(0, 0.1, n)
    rec = {"rate": rate[:, None], "lfp": rng.normal(size=n), "spikes": raster}
    out = sleep_states.describe(rec, 1.0, 4)
    cv = np.asarray(activity.isi_cv(raster[:, :4], 1.0))
    assert out["cv_isi_median"] == pytest.approx(float(np.median(cv)), rel=1e-9)
    assert np.median(cv) != pytest.approx(np.mean(cv))
    ud = detect.detect_updown(rate, 1000.0)
    assert out["n_up"] == len(ud.up) == 2 and len(ud.down) == 3
