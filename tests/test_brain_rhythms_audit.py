"""Audit of the EEG-like signal analysis (rhythms, filters, detect, hypnogram, sleep_states)
against SciPy and analytic oracles: the paths the first tests left out, and the findings
("Finding: ..." in a docstring names what the old code did)."""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.signal as ss
from jax.test_util import check_grads

from nnjax.brain import detect as dt
from nnjax.brain import hypnogram as hy
from nnjax.brain import rhythms as rh
from nnjax.brain import sleep_states as st

RNG = np.random.default_rng(7)

# --- spectra against scipy.signal ------------------------------------------------------------


@pytest.mark.parametrize(
    "n,nperseg,noverlap",
    [(1000, 127, None), (1000, 127, 0), (1000, 128, 127), (1000, 2, 1), (1000, 2, 0),
     (128, 128, None), (129, 128, 64), (1001, 100, 99), (1000, 333, 1)],
)  # fmt: skip
def test_welch_and_spectrogram_edge_segments_equal_scipy(n, nperseg, noverlap):
    """Odd and even nperseg, noverlap 0 and nperseg - 1, nperseg = 2, one segment (n =
    nperseg), leading channel axes: float64 agreement to 1e-12 (measured <= 1e-15)."""
    x = RNG.normal(size=(3, 2, n))
    with jax.enable_x64(True):
        f, p = rh.welch(x, 250.0, nperseg=nperseg, noverlap=noverlap)
        t, _, s = rh.spectrogram(x, 250.0, nperseg=nperseg, noverlap=noverlap)
    ov = nperseg // 2 if noverlap is None else noverlap
    f_ref, p_ref = ss.welch(x, 250.0, nperseg=nperseg, noverlap=ov)
    _, t_ref, s_ref = ss.spectrogram(x, 250.0, window="hann", nperseg=nperseg, noverlap=ov)
    np.testing.assert_array_equal(f, f_ref)
    np.testing.assert_allclose(np.asarray(p), p_ref, rtol=1e-12, atol=1e-14 * p_ref.max())
    np.testing.assert_allclose(t, t_ref, rtol=0, atol=1e-12)
    np.testing.assert_allclose(np.asarray(s), s_ref, rtol=1e-12, atol=1e-14 * s_ref.max())


def test_welch_dtypes_follow_scipy():
    """float32 stays float32 (to 1e-5 of SciPy's float32); integers and bools are cast to
    float64 under x64 (SciPy takes a bool as float32: compared with its float64 cast); a nan
    in a segment makes every bin nan (as SciPy), one past the last segment nothing; complex
    is refused."""
    x = RNG.normal(size=500)
    _, p32 = rh.welch(x.astype(np.float32), 100.0, nperseg=64)
    assert p32.dtype == jnp.float32
    ref = ss.welch(x.astype(np.float32), 100.0, nperseg=64)[1]
    np.testing.assert_allclose(np.asarray(p32), ref, rtol=0, atol=1e-5 * ref.max())
    with jax.enable_x64(True):
        for v in (np.arange(300) % 7, np.arange(300) % 3 == 0):
            np.testing.assert_allclose(
                np.asarray(rh.welch(v, 100.0, nperseg=64)[1]),
                ss.welch(v.astype(np.float64), 100.0, nperseg=64)[1],
                rtol=1e-12,
                atol=1e-15,
            )
    assert np.isnan(np.asarray(rh.welch(np.r_[np.nan, x[1:]], 100.0, nperseg=64)[1])).all()
    # (500 - 64) mod 32 = 20 trailing samples lie in no segment, for SciPy as here
    tail = np.asarray(rh.welch(np.r_[x[:-1], np.nan], 100.0, nperseg=64)[1])
    np.testing.assert_allclose(tail, np.asarray(rh.welch(x[:480], 100.0, nperseg=64)[1]))
    with pytest.raises(ValueError, match="welch: x must be a real signal, got complex"):
        rh.welch(x + 1j, 100.0, nperseg=64)


@pytest.mark.parametrize("fs", [0, -100.0, float("nan"), float("inf"), True, "100"])
def test_spectra_refuse_bad_fs(fs):
    for f in (rh.welch, rh.spectrogram):
        with pytest.raises(ValueError, match=f"{f.__name__}: fs must be a"):
            f(np.zeros(500), fs, nperseg=64)


def test_nperseg_error_says_default_only_for_the_default():
    """Finding: welch(x (500,), 100, nperseg=600) said "(default 4 s at fs=100 Hz)" about an
    nperseg the caller had given."""
    with pytest.raises(ValueError, match=r"fewer than nperseg=600; pass a smaller") as e:
        rh.welch(np.zeros(500), 100.0, nperseg=600)
    assert "default" not in str(e.value)
    with pytest.raises(ValueError, match=r"nperseg=400 \(default 4 s at fs=100 Hz\)"):
        rh.welch(np.zeros(50), 100.0)


# --- band powers: analytic oracles -----------------------------------------------------------


def test_band_power_of_sines_white_noise_and_narrow_bands():
    """A sin(2 pi f0 t + phi) has power A^2/2 (on a bin: to 1e-12; off a bin: 1e-5); white
    noise of variance s^2 has the flat one-sided PSD 2 s^2 / fs (measured 0.028920 against
    0.0289, within 1 %); band powers add over adjacent bands to 1e-12; a band inside one bin
    is the trapezoid of the linear interpolant."""
    fs, t = 200.0, np.arange(12_000) / 200.0
    with jax.enable_x64(True):
        for a, f0, tol in [(3.0, 10.0, 1e-12), (2.0, 10.1, 1e-5), (1.5, 37.3, 1e-5)]:
            f, p = rh.welch(a * np.sin(2 * np.pi * f0 * t + 0.3), fs, nperseg=800)
            assert float(rh.band_power(f, p, (f0 - 2, f0 + 2))) == pytest.approx(a * a / 2, tol)
        s = 1.7
        f, p = rh.welch(
            np.random.default_rng(0).normal(scale=s, size=(4, 120_000)), fs, nperseg=400
        )
        p = np.asarray(p)
        assert p[:, 1:-1].mean() == pytest.approx(2 * s * s / fs, rel=0.01)
        p1, p2, p12 = (rh.band_power(f, p[0], b) for b in [(1, 7.3), (7.3, 19.17), (1, 19.17)])
        assert float(p1 + p2) == pytest.approx(float(p12), rel=1e-12)
        lo, hi = 10.1, 10.2  # both inside the bin [10.0, 10.5]
        trapezoid = (hi - lo) * (np.interp(lo, f, p[0]) + np.interp(hi, f, p[0])) / 2
        assert float(rh.band_power(f, p[0], (lo, hi))) == pytest.approx(trapezoid, rel=1e-12)
    for band in [(-1, 5), (90, 101), (5, 5), (6, 5), (float("nan"), 5), (1, float("inf"))]:
        with pytest.raises(ValueError, match=r"band_power: band .* must satisfy 0 <= low"):
            rh.band_power(f, p[0], band)


def test_relative_band_powers_of_a_silent_spectrum():
    """Finding: band_powers(f, zeros, relative=True) returned nan for every band (0/0).
    Now a concrete silent spectrum is a ValueError naming the zero total and its index;
    under jit the silent spectrum gets 0 per band with a zero (finite) gradient; a nan
    spectrum keeps nan; a live one still adds up to 1."""
    f, live, silent = np.linspace(0, 50, 101), np.ones(101), np.zeros(101)
    with pytest.raises(ValueError, match=r"relative=True needs power > 0 in \[0.5, 30\] Hz"):
        rh.band_powers(f, silent, relative=True)
    with pytest.raises(ValueError, match="got 0 in 1 of 2 spectra, first at flat index 1"):
        rh.band_powers(f, np.stack([live, silent]), relative=True)
    traced = jax.jit(lambda p: rh.band_powers(f, p, relative=True))(jnp.zeros(101))
    assert all(float(v) == 0.0 for v in traced.values())
    grad = jax.grad(lambda p: rh.band_powers(f, p, relative=True)["delta"])(jnp.zeros(101))
    assert np.all(np.asarray(grad) == 0.0)
    assert np.isnan(float(rh.band_powers(f, np.full(101, np.nan), relative=True)["delta"]))
    rel = rh.band_powers(f, live, relative=True)
    assert sum(float(v) for v in rel.values()) == pytest.approx(1.0, abs=1e-6)
    assert float(rel["delta"]) == pytest.approx(3.5 / 29.5, rel=1e-6)  # flat PSD: widths


# --- filters and moving windows --------------------------------------------------------------


@pytest.mark.parametrize(
    "design",
    [lambda: ss.butter(3, 10.0, fs=100.0, output="sos"),  # lowpass: trailing zero coefs
     lambda: ss.butter(3, 10.0, "high", fs=100.0, output="sos"),
     lambda: ss.cheby1(4, 1, [5, 20], "band", fs=100.0, output="sos"),
     lambda: ss.butter(10, (0.3, 1.5), "band", fs=1000.0, output="sos")],
)  # fmt: skip
def test_sosfiltfilt_equals_scipy_and_refuses_what_scipy_refuses(design):
    """To 1e-10 (measured 5.2e-12 of the peak for the order-10 0.3-1.5 Hz band at 1 kHz);
    a signal of n <= padlen samples is refused (SciPy raises too), n = padlen + 1 agrees."""
    sos = design()
    pad = 3 * (2 * len(sos) + 1 - min((sos[:, 2] == 0).sum(), (sos[:, 5] == 0).sum()))
    with jax.enable_x64(True):
        x = RNG.normal(size=(2, 3000))
        ref = ss.sosfiltfilt(sos, x)
        np.testing.assert_allclose(np.asarray(rh.sosfiltfilt(sos, x)), ref, atol=1e-10)
        y = RNG.normal(size=pad + 1)
        np.testing.assert_allclose(np.asarray(rh.sosfiltfilt(sos, y)), ss.sosfiltfilt(sos, y),
                                   atol=1e-10 * np.abs(y).max())  # fmt: skip
    with pytest.raises(ValueError):
        ss.sosfiltfilt(sos, np.zeros(pad))
    with pytest.raises(ValueError, match=f"sosfiltfilt: the signal has {pad} samples; .* {pad}"):
        rh.sosfiltfilt(sos, np.zeros(pad))


def test_sosfiltfilt_gradient_and_bandpass_edges():
    with jax.enable_x64(True):
        sos = ss.butter(2, (1, 10), "band", fs=100.0, output="sos")
        check_grads(lambda x: rh.sosfiltfilt(sos, x), (jnp.asarray(RNG.normal(size=200)),),
                    order=1, modes=("fwd", "rev"))  # fmt: skip
    for band in [(11, 50), (50, 60)]:
        with pytest.raises(ValueError, match=r"at or above the Nyquist frequency fs/2 = 50 Hz"):
            rh.bandpass(np.zeros(500), 100.0, band)
    for order in [0, -1, 11, 100, 2.0, True]:
        with pytest.raises(ValueError, match=r"bandpass: order must be an int in 1..10"):
            rh.bandpass(np.zeros(500), 100.0, (1, 10), order=order)


def test_sosfiltfilt_refuses_non_finite_and_unstable_sections():
    """Finding: a nan coefficient gave an all-nan output and an unstable section (poles of
    radius 1.85) nan, silently (SciPy: nan, and 1e170)."""
    sos = ss.butter(2, (1, 10), "band", fs=100.0, output="sos")
    nan = sos.copy()
    nan[1, 0] = np.nan
    with pytest.raises(ValueError, match=r"sosfiltfilt: sos must be finite, .* sections \[1\]"):
        rh.sosfiltfilt(nan, np.ones(300))
    unstable = sos.copy()
    unstable[0, 4:] = [-2.5, 1.2]
    with pytest.raises(ValueError, match=r"section 0 is unstable: a pole of radius 1.85208"):
        rh.sosfiltfilt(unstable, np.ones(300))
    narrow = ss.butter(10, (0.05, 0.1), "band", fs=1000.0, output="sos")  # poles near 1: fine
    assert np.isfinite(np.asarray(rh.sosfiltfilt(narrow, RNG.normal(size=5000)))).all()


def test_moving_windows_against_brute_force_and_a_sine():
    """m_t = mean of x over |j| <= h inside the signal, to 1e-14; a constant stays itself;
    a sine of amplitude a has RMS a / sqrt(2) to 1e-12 in a window of one whole period."""
    x = RNG.normal(size=(3, 37))
    with jax.enable_x64(True):
        for w in [0.001, 0.01, 0.02, 0.05, 0.2, 0.37, 0.5, 100.0]:
            h = max(1, round(w * 100.0)) // 2
            ref = [[x[c, max(0, i - h) : i + h + 1].mean() for i in range(37)] for c in range(3)]
            np.testing.assert_allclose(np.asarray(rh.moving_average(x, 100.0, w)), ref,
                                       rtol=0, atol=1e-14)  # fmt: skip
        c = np.asarray(rh.moving_rms(np.full(50, -3.2), 100.0, 0.3))
        np.testing.assert_allclose(c, 3.2, rtol=1e-14)
        t = np.arange(1100) / 110.0  # 10 Hz: 11 samples a period; window 0.1 s = 11 samples
        r = np.asarray(rh.moving_rms(2.5 * np.sin(2 * np.pi * 10 * t + 0.4), 110.0, 0.1))
        np.testing.assert_allclose(r[5:-5], 2.5 / np.sqrt(2), rtol=1e-12)


def test_moving_rms_gradient_is_finite_on_silence():
    """Finding: jax.grad of moving_rms(x).sum() at x = 0 was nan everywhere (sqrt'(0) = inf
    times 0), and a silent stretch made a whole loss's gradient nan. Now 0 there. (The
    gradients run under jax.jit, the same operations compiled once instead of op by op:
    5.6 s of eager check_grads became 1.5 s.)"""
    with jax.enable_x64(True):
        loss = lambda x: rh.moving_rms(x, 100.0, 0.03).sum()  # noqa: E731
        grad = jax.jit(jax.grad(loss))
        assert np.all(np.asarray(grad(jnp.zeros(10))) == 0.0)
        g = np.asarray(grad(jnp.r_[jnp.zeros(10), jnp.ones(10)]))
        assert np.isfinite(g).all() and np.all(g[:8] == 0.0) and g[-1] > 0
        check_grads(jax.jit(lambda x: rh.moving_rms(x, 100.0, 0.05)),
                    (jnp.asarray(RNG.normal(size=30)),), order=2)  # fmt: skip


# --- detectors on events planted at known times ----------------------------------------------


def test_slow_waves_of_a_sine_at_the_band_centre_start_where_the_sine_does():
    """-A sin(2 pi f0 t), f0 = sqrt(0.3 * 1.5) Hz (the band's centre, gain 1, no phase):
    each full cycle inside the record is a wave starting at k / f0, its negative peak at
    (k + 1/4) / f0, its positive crossing at (k + 1/2) / f0 and its end at (k + 1) / f0,
    within 1.5 samples (measured <= 1.4: the sampled crossing); amplitudes within 5 % of
    -A and 2A; the cut first and last cycles are not waves. Thresholds are inclusive."""
    fs, f0, amp = 100.0, np.sqrt(0.45), 150.0
    x = -amp * np.sin(2 * np.pi * f0 * np.arange(3000) / fs)
    ev = dt.detect_slow_waves(x, fs)
    k = np.arange(1, len(ev.start) + 1)
    assert len(ev.start) == 18  # cycles 1..18 of the 20.1 in 30 s
    for got, phase in [(ev.start, 0), (ev.neg_peak, 0.25), (ev.mid, 0.5), (ev.end, 1.0)]:
        np.testing.assert_allclose(got, (k + phase) / f0, atol=1.5 / fs)
    np.testing.assert_allclose(ev.neg_amplitude, -amp, rtol=0.05)
    np.testing.assert_allclose(ev.ptp, 2 * amp, rtol=0.05)
    at = dt.detect_slow_waves(x, fs, neg_threshold=float(ev.neg_amplitude.max()))
    assert len(at.start) == 18
    assert len(dt.detect_slow_waves(x, fs, ptp_threshold=float(ev.ptp.min())).start) == 18
    assert len(dt.detect_slow_waves(x, fs, ptp_threshold=float(ev.ptp.min()) + 1e-6).start) == 17
    assert len(dt.detect_slow_waves(np.zeros(3000), fs).start) == 0
    with pytest.raises(ValueError, match="detect_slow_waves: the signal has 13 samples"):
        dt.detect_slow_waves(np.ones(13), fs)


def _burst(n, fs, t0, t1, taper):
    t = np.arange(n) / fs
    m = (t >= t0) & (t < t1)
    env = np.hanning(m.sum()) if taper else 1.0
    y = np.zeros(n)
    y[m] = 20.0 * env * np.sin(2 * np.pi * 13.0 * (t[m] - t0))
    return y


def test_spindle_onsets_and_offsets_of_planted_bursts():
    """A 13 Hz, 20 µV, 1 s burst at 10-11 s on white noise of SD 2 µV (fs = 200 Hz): with a
    Hann envelope found within 0.05 s of both ends (measured -0.025 and +0.03 s); with a
    rectangular one 0.35 s early and 0.41 s late (the docstring's figures: the abrupt edges
    ring through the filter). Bursts touching the record's ends give events that do."""
    fs, n = 200.0, 6000
    noise = np.random.default_rng(0).normal(scale=2.0, size=n)
    ev = dt.detect_spindles(noise + _burst(n, fs, 10.0, 11.0, True), fs)
    np.testing.assert_allclose(ev.intervals, [[10.0, 11.0]], atol=0.05)
    assert 12.5 < ev.frequency[0] < 13.5
    ev = dt.detect_spindles(noise + _burst(n, fs, 10.0, 11.0, False), fs)
    np.testing.assert_allclose(ev.intervals, [[10.0 - 0.345, 11.0 + 0.41]], atol=0.03)
    assert dt.detect_spindles(noise + _burst(n, fs, 0.0, 1.0, True), fs).start.tolist() == [0.0]
    assert dt.detect_spindles(noise + _burst(n, fs, 29.0, 30.0, True), fs).end.tolist() == [30.0]
    assert len(dt.detect_spindles(noise, fs).start) == 0
    assert len(dt.detect_spindles(np.zeros(n), fs).start) == 0  # flat: nothing, no error


def test_spindles_on_silence_are_refused_not_missed():
    """Finding: a burst planted on zeros gave no spindle, silently: the envelope's median
    was 1.3e-15 (filter ringing), 1.5 x that marked 3.09-17.9 s as one event, too long."""
    burst = _burst(6000, 200.0, 10.0, 11.0, False)
    msg = r"detect_spindles: the envelope's median, .* is \S+, under 1e-6 of its peak 14.6"
    with pytest.raises(ValueError, match=msg):
        dt.detect_spindles(burst, 200.0)
    for bad, match in [(np.zeros(0), "at least one sample"), (np.full(100, np.nan), "finite")]:
        with pytest.raises(ValueError, match=f"detect_spindles: x must .*{match}"):
            dt.detect_spindles(bad, 200.0)


def test_updown_of_a_square_rate():
    """Up 0.3 s at 40 Hz / Down 0.5 s at 0 Hz: Up states at 0.8 k s (edges within 6 ms of
    smoothing lag), alternation 1 / 0.8 s = 1.25 Hz; a rate at the threshold is not above."""
    t = np.arange(4000) / 1000.0
    ud = dt.detect_updown(np.where(t % 0.8 < 0.3, 40.0, 0.0), 1000.0)
    np.testing.assert_allclose(ud.up, [[0.8 * k, 0.8 * k + 0.3] for k in range(5)], atol=0.006)
    assert ud.frequency == pytest.approx(1.25, rel=1e-12)
    r = np.tile([0.0, 0, 0, 10, 10, 10, 0, 0, 0, 0], 10)
    kw = dict(smooth_s=0, down_threshold=1.0, min_up_s=0, min_down_s=0)
    assert dt.detect_updown(r, 100.0, up_threshold=10.0, **kw).state.sum() == 0
    assert dt.detect_updown(r, 100.0, up_threshold=9.99, **kw).state.sum() == 30


def test_match_events_is_a_maximum_matching_whatever_the_order():
    """Finding: match_events([[0, 10], [0, 1.5]], [[1, 2], [5, 6]]) gave (0.5, 0.5) while the
    same detections listed the other way gave (1.0, 1.0): the first overlapping detection in
    start order was taken. Now the one that ends first, which is optimal."""
    true = [[1, 2], [5, 6]]
    assert dt.match_events([[0, 10], [0, 1.5]], true) == (1.0, 1.0)
    assert dt.match_events([[0, 1.5], [0, 10]], true) == (1.0, 1.0)
    rng = np.random.default_rng(3)
    for _ in range(50):  # against brute force over all one-to-one pairings
        d = np.sort(rng.uniform(0, 10, (4, 2)), axis=1)
        tr = np.sort(rng.uniform(0, 10, (3, 2)), axis=1)
        ok = (d[:, None, 0] < tr[None, :, 1]) & (tr[None, :, 0] < d[:, None, 1])
        best = max(sum(ok[p[j], j] for j in range(3)) for p in _perms(4, 3))
        assert dt.match_events(d, tr) == (best / 4, best / 3)
    assert all(np.isnan(v) for v in dt.match_events([], []))
    assert dt.match_events(np.zeros((0, 2)), [[0, 1]]) == (pytest.approx(np.nan, nan_ok=True), 0)
    assert dt.match_events([[0, 1]], [[1, 2]]) == (0.0, 0.0)  # touching is not overlapping


def _perms(n, k):
    import itertools

    return itertools.permutations(range(n), k)


# --- hypnograms and the night's schedule -----------------------------------------------------


def test_check_hypnogram_names_huge_and_non_finite_codes():
    """Finding: check_hypnogram([1e20]) and ([2**63]) said "codes [-9223372036854775808]"
    (cast to int64 before the range check), and [inf] warned 'invalid value' first."""
    with pytest.raises(ValueError, match=r"codes \[100000000000000000000\] are not in 0..4"):
        hy.check_hypnogram([1e20])
    with pytest.raises(ValueError, match=r"codes \[9223372036854775808\] are not in 0..4"):
        hy.check_hypnogram([2**63])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match=r"codes must be integers, got \[inf\]"):
            hy.check_hypnogram([0.0, np.inf])
        with pytest.raises(ValueError, match=r"codes must be integers, got \[nan\]"):
            hy.check_hypnogram([np.nan])
    with pytest.raises(ValueError, match="non-empty 1-D"):
        hy.check_hypnogram([])


def test_epoch_s_takes_numpy_numbers():
    """Finding: stage_durations(h, np.int64(30)) and (h, np.float32(30)) were refused with
    "epoch_s must be a number > 0 (s) and finite, got np.int64(30)"."""
    h = [0, 2, 2, 4]
    want = {"W": 30.0, "N1": 0.0, "N2": 60.0, "N3": 0.0, "REM": 30.0}
    for e in (np.int64(30), np.float32(30.0), 30):
        assert hy.stage_durations(h, e) == want
    for e in (0, -1.0, np.nan, np.inf, True, np.bool_(True), "30"):
        with pytest.raises(ValueError, match="stage_at: epoch_s must be a number > 0"):
            hy.stage_at(h, 1.0, e)


def test_stage_at_exact_epoch_boundaries_and_round_trips():
    """Finding: stage_at(range(10), [0.3, 0.6, 0.7], epoch_s=0.1) gave [2, 5, 6]: floor(0.3 /
    0.1) = floor(2.9999999999999996). Boundaries k epoch_s now start epoch k; times outside
    the night are -1; stage_intervals' starts and ends round-trip."""
    h = np.arange(10) % 5
    k = np.arange(10)
    np.testing.assert_array_equal(hy.stage_at(h, k / 10.0, epoch_s=0.1), h)
    np.testing.assert_array_equal(hy.stage_at(h, [1.0, -1e-12, np.nan, np.inf], 0.1), -1)
    codes, iv = hy.stage_intervals(h, 0.1)
    np.testing.assert_array_equal(hy.stage_at(h, iv[:, 0], 0.1), codes)
    np.testing.assert_array_equal(hy.stage_at(h, iv[:, 1] - 1e-9, 0.1), codes)
    hyp = [0, 0, 2, 2, 2, 3, 4, 4, 0]
    assert sum(hy.stage_durations(hyp).values()) == 270.0
    np.testing.assert_array_equal(hy.stage_at(hyp, [0, 29.999, 30, 60, 269.99, 270]),
                                  [0, 0, 0, 2, 0, -1])  # fmt: skip


def test_schedule_rounds_epochs_to_whole_steps_and_ramps_are_exact():
    """As documented: an epoch of 1 s at dt = 0.3 ms is round(3333.3) = 3333 steps (epoch k
    starts at step 3333 k); 0.35 s at 0.1 ms is 3500 steps (3500.0000000000005). A 0.2 s
    ramp (2000 steps) at the wake -> NREM boundary c = 10000 is ach_i = (c + 1000 - i) /
    2000 clipped to [0, 1] (to float32 precision). A ramp wider than an epoch and states
    without a stage's levels are refused."""
    h = [0, 1, 1, 2, 0]
    lv = st.schedule(h, 1.0, 0.3)
    np.testing.assert_array_equal(lv.ach, np.repeat([1.0, 0.0, 0.0, 1.0, 1.0], 3333))
    np.testing.assert_array_equal(lv.mono, np.repeat([1.0, 0.0, 0.0, 0.0, 1.0], 3333))
    assert st.schedule(h, 0.35, 0.1).ach.shape == (5 * 3500,)
    ach = st.schedule(h, 1.0, 0.1, ramp_s=0.2).ach.astype(np.float64)
    i = np.arange(8000, 12000)
    np.testing.assert_allclose(ach[i], np.clip((11000 - i) / 2000, 0, 1), atol=1e-6)
    with pytest.raises(ValueError, match=r"ramp_s must be >= 0 \(s\) and <= epoch_s, got 1.5"):
        st.schedule(h, 1.0, 0.1, ramp_s=1.5)
    with pytest.raises(ValueError, match=r"states has no levels for \['REM'\]"):
        st.schedule([0, 1], 1.0, 0.1, states={"wake": st.Levels(), "NREM": st.Levels(0, 0)})
