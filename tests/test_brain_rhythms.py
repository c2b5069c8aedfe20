"""Reading the rhythms: spectra and filters against scipy.signal, band powers against A^2/2,
detectors against planted events (precision and recall >= 0.9), hypnograms and their plots."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.signal as ss
from jax.test_util import check_grads

from nnjax.brain import detect as dt
from nnjax.brain import hypnogram as hy
from nnjax.brain import planted as pl
from nnjax.brain import rhythms as rh

# --- spectra -------------------------------------------------------------------------------

WELCH_CASES = [(100.0, 256, None), (250.0, 100, 30), (1.0, 63, 0), (100.0, 400, 399)]


@pytest.mark.parametrize("fs,nperseg,noverlap", WELCH_CASES)
def test_welch_and_spectrogram_equal_scipy(fs, nperseg, noverlap):
    x = np.random.default_rng(0).standard_normal((2, 3, 1000)) * 7.0 + 3.0
    with jax.enable_x64(True):
        f, p = rh.welch(x, fs, nperseg=nperseg, noverlap=noverlap)
        t, f2, s = rh.spectrogram(x, fs, nperseg=nperseg, noverlap=noverlap)
    f_ref, p_ref = ss.welch(x, fs, nperseg=nperseg, noverlap=noverlap)
    np.testing.assert_allclose(f, f_ref, rtol=0, atol=1e-12)
    np.testing.assert_allclose(np.asarray(p), p_ref, rtol=1e-10, atol=0)
    ov = nperseg // 2 if noverlap is None else noverlap
    f_ref, t_ref, s_ref = ss.spectrogram(x, fs, window="hann", nperseg=nperseg, noverlap=ov)
    np.testing.assert_allclose(f2, f_ref, atol=1e-12)
    np.testing.assert_allclose(t, t_ref, atol=1e-12)
    np.testing.assert_allclose(np.asarray(s), s_ref, rtol=1e-10, atol=0)
    np.testing.assert_allclose(np.asarray(s).mean(-1), np.asarray(p), rtol=1e-12)


def test_welch_parseval():
    """sum_k P_k df = mean over segments of sum (w (x_s - mean))^2 / sum w^2, exactly; and the
    integral of white noise's PSD is its variance (to sampling error)."""
    fs, L, step = 50.0, 128, 64
    x = np.random.default_rng(1).standard_normal(20_000) * 3.0
    with jax.enable_x64(True):
        f, p = rh.welch(x, fs, nperseg=L)
        total = float(rh.band_power(f, p, (0.0, fs / 2)))
    w = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(L) / L)
    segs = np.stack([x[i : i + L] for i in range(0, len(x) - L + 1, step)])
    energy = (((segs - segs.mean(1, keepdims=True)) * w) ** 2).sum(1) / (w**2).sum()
    assert float(np.sum(np.asarray(p)) * (f[1] - f[0])) == pytest.approx(energy.mean(), rel=1e-12)
    assert total == pytest.approx(9.0, rel=0.05)


def test_welch_vmaps_and_jits_over_channels():
    x = jnp.asarray(np.random.default_rng(2).standard_normal((4, 600)), jnp.float32)
    _, p = rh.welch(x, 100.0, nperseg=128)
    pv = jax.vmap(lambda c: rh.welch(c, 100.0, nperseg=128)[1])(x)
    pj = jax.jit(lambda c: rh.welch(c, 100.0, nperseg=128)[1])(x)
    assert p.dtype == jnp.float32 and p.shape == (4, 65)
    np.testing.assert_allclose(pv, p, rtol=1e-5)
    np.testing.assert_allclose(pj, p, rtol=1e-5)


def _sines(fs, n, freqs, amps):
    t = np.arange(n) / fs
    return sum(a * np.sin(2 * np.pi * f * t + 0.3 * i) for i, (f, a) in enumerate(zip(freqs, amps)))


def test_band_powers_of_sinusoids_are_a_squared_over_two():
    """One sinusoid per band, on bins of 0.25 Hz (nperseg = 4 s): each band holds A^2/2."""
    fs, n = 200.0, 8000
    freqs = [2.0, 6.0, 10.0, 14.0, 22.0, 50.0]  # delta theta alpha sigma beta gamma
    amps = [40.0, 12.0, 8.0, 6.0, 3.0, 1.5]
    with jax.enable_x64(True):
        f, p = rh.welch(_sines(fs, n, freqs, amps), fs)
        absolute = rh.band_powers(f, p)
        relative = rh.band_powers(f, p, relative=True)
    assert list(absolute) == list(rh.BANDS)
    expected = [a**2 / 2 for a in amps]
    for name, e in zip(rh.BANDS, expected):
        assert float(absolute[name]) == pytest.approx(e, rel=1e-10), name
        assert float(relative[name]) == pytest.approx(e / sum(expected), rel=1e-10), name
    assert sum(float(v) for v in relative.values()) == pytest.approx(1.0, rel=1e-12)


def test_band_power_is_the_exact_integral_of_the_linear_interpolant():
    f = np.linspace(0.0, 10.0, 41)
    psd = np.random.default_rng(3).uniform(1.0, 2.0, (3, 41))
    with jax.enable_x64(True):
        on_bins = rh.band_power(f, psd, (2.0, 6.0))
        a = rh.band_power(f, psd, (1.1, 3.37))
        b = rh.band_power(f, psd, (3.37, 7.9))
        ab = rh.band_power(f, psd, (1.1, 7.9))
        whole = rh.band_power(f, psd, (0.0, 10.0))
        in_spectrogram = rh.band_power(f, psd.T, (2.0, 6.0), axis=0)
    inside = (f >= 2.0) & (f <= 6.0)
    np.testing.assert_allclose(on_bins, np.trapezoid(psd[:, inside], f[inside]), rtol=1e-13)
    np.testing.assert_allclose(np.asarray(a) + np.asarray(b), ab, rtol=1e-13)
    np.testing.assert_allclose(whole, np.trapezoid(psd, f), rtol=1e-13)
    np.testing.assert_allclose(in_spectrogram, on_bins, rtol=1e-13)
    # a linear PSD is integrated exactly between bins: int_1.1^3.37 (1 + f) df
    line = 1.0 + f
    exact = (3.37 - 1.1) + (3.37**2 - 1.1**2) / 2
    assert float(rh.band_power(f, line, (1.1, 3.37))) == pytest.approx(exact, rel=1e-6)


def test_band_power_gradient_matches_finite_differences():
    x = np.random.default_rng(4).standard_normal(300)
    with jax.enable_x64(True):

        def delta_then_sigma(v):
            f, p = rh.welch(v, 100.0, nperseg=100)
            y = rh.bandpass(v, 100.0, (11.0, 16.0), order=2)
            return rh.band_power(f, p, rh.BANDS["delta"]) + jnp.mean(y**2)

        check_grads(delta_then_sigma, (jnp.asarray(x),), order=1, modes=["rev"], atol=1e-6)


def test_default_bands_stop_below_nyquist_and_explicit_bands_are_checked():
    f, p = rh.welch(np.random.default_rng(5).standard_normal(1000), 100.0)
    assert "gamma" not in rh.band_powers(f, p)  # 80 Hz > fs/2 = 50 Hz
    with pytest.raises(ValueError, match="band .30, 80. Hz must satisfy"):
        rh.band_powers(f, p, ["gamma"])
    with pytest.raises(ValueError, match="unknown bands .'spindle'."):
        rh.band_powers(f, p, ["delta", "spindle"])
    with pytest.raises(ValueError, match="low < high"):
        rh.band_power(f, p, (4.0, 4.0))
    with pytest.raises(ValueError, match="pair"):
        rh.band_power(f, p, 4.0)
    with pytest.raises(ValueError, match="no axis"):
        rh.band_power(f, p[:-1], (1.0, 4.0))


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"fs": 0.0}, "fs must be a finite number > 0"),
        ({"fs": float("nan")}, "fs must be a finite number > 0"),
        ({"fs": "100"}, "fs must be a number"),
        ({"fs": 100.0, "nperseg": 2000}, "fewer than nperseg=2000"),
        ({"fs": 1000.0}, "fewer than nperseg=4000 .default 4 s"),
        ({"fs": 100.0, "nperseg": 1}, "nperseg must be an int >= 2"),
        ({"fs": 100.0, "nperseg": 64.0}, "nperseg must be an int"),
        ({"fs": 100.0, "nperseg": 64, "noverlap": 64}, r"noverlap must be in \[0, nperseg=64\)"),
    ],
)
def test_spectra_reject_bad_input(kwargs, match):
    x = np.zeros(1000)
    with pytest.raises(ValueError, match=match):
        rh.welch(x, **kwargs)
    with pytest.raises(ValueError, match=match):
        rh.spectrogram(x, **kwargs)


# --- filters -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fs,band,order", [(100.0, (0.3, 1.5), 2), (100.0, (11.0, 16.0), 4), (1000.0, (0.5, 2.0), 3)]
)
def test_sosfiltfilt_equals_scipy(fs, band, order):
    x = np.random.default_rng(6).standard_normal((2, 3000)) * 50.0
    sos = ss.butter(order, band, btype="bandpass", fs=fs, output="sos")
    ref = ss.sosfiltfilt(sos, x)
    with jax.enable_x64(True):
        y = rh.sosfiltfilt(sos, x)
        yb = rh.bandpass(x, fs, band, order=order)
    scale = np.abs(ref).max()
    np.testing.assert_allclose(np.asarray(y), ref, rtol=0, atol=1e-10 * scale)
    np.testing.assert_allclose(np.asarray(yb), ref, rtol=0, atol=1e-10 * scale)
    y32 = rh.sosfiltfilt(sos, x.astype(np.float32))
    assert y32.dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(y32), ref, rtol=0, atol=1e-3 * scale)


def test_bandpass_gain_is_one_inside_and_half_at_the_cutoffs():
    """filtfilt squares the Butterworth gain: 1 at the band's centre, 1/2 at each cut-off."""
    fs, n = 200.0, 20_000
    t = np.arange(n) / fs
    core = slice(2000, -2000)
    with jax.enable_x64(True):
        for f0, gain in [(13.5, 1.0), (11.0, 0.5), (16.0, 0.5), (30.0, 0.0)]:
            y = np.asarray(rh.bandpass(np.sin(2 * np.pi * f0 * t), fs, rh.SPINDLE_BAND))
            assert np.abs(y[core]).max() == pytest.approx(gain, abs=0.01), f0


def test_moving_average_and_rms():
    x = np.random.default_rng(7).standard_normal((2, 50))
    m = np.asarray(rh.moving_average(x, 10.0, 0.5))  # 5 samples, centred
    brute = np.stack([[r[max(0, i - 2) : i + 3].mean() for i in range(50)] for r in x])
    np.testing.assert_allclose(m, brute, rtol=0, atol=1e-6)
    t = np.arange(2000) / 100.0
    # 0.25 s = 25 samples = 5 whole periods of 20 Hz: the window's mean of sin^2 is exactly 1/2
    rms = np.asarray(rh.moving_rms(3.0 * np.sin(2 * np.pi * 20 * t), 100.0, 0.25))
    np.testing.assert_allclose(rms[50:-50], 3.0 / np.sqrt(2), rtol=1e-3)
    # 0.3 s at 100 Hz: w = 30 -> 31 samples centred (3.1 periods of 10 Hz), so the power
    # ripples around A^2/2 by at most 1/31 of it (a 30-sample window held exactly 3 periods)
    x10 = 3.0 * np.sin(2 * np.pi * 10 * t)
    rms10 = np.asarray(rh.moving_rms(x10, 100.0, 0.3))[50:-50]
    brute10 = np.sqrt([np.mean(x10[i - 15 : i + 16] ** 2) for i in range(50, 1950)])
    np.testing.assert_allclose(rms10, brute10, rtol=1e-5)
    assert np.abs(rms10**2 / 4.5 - 1.0).max() == pytest.approx(1 / 31, rel=1e-3)


def test_moving_average_even_window_is_the_centred_odd_one():
    # w = round(2 s * 1 Hz) = 2: |j| <= 1, three samples centred on t (not (x_{t-1} + x_t) / 2)
    spike = np.array([0.0, 0.0, 1.0, 0.0, 0.0])
    np.testing.assert_allclose(rh.moving_average(spike, 1.0, 2.0), [0, 1 / 3, 1 / 3, 1 / 3, 0])
    x = np.random.default_rng(3).standard_normal(300)
    m = np.asarray(rh.moving_average(x, 1000.0, 0.02))  # w = 20: 21 samples, |j| <= 10
    brute = [x[max(0, i - 10) : i + 11].mean() for i in range(300)]
    np.testing.assert_allclose(m, brute, rtol=0, atol=1e-6)


def test_moving_windows_longer_than_the_signal():
    x = np.arange(5.0)
    # h = 3 (w = 7) on 5 samples: the part of [t - 3, t + 3] inside the signal
    np.testing.assert_allclose(rh.moving_average(x, 1.0, 7.0), [1.5, 2.0, 2.0, 2.0, 2.5])
    # h >= n - 1: every window is the whole signal
    np.testing.assert_allclose(rh.moving_average(x, 100.0, 100.0), np.full(5, 2.0))
    np.testing.assert_allclose(rh.moving_rms(x, 100.0, 100.0), np.full(5, np.sqrt(6.0)))
    one = np.asarray(rh.moving_average(np.array([[4.0], [-1.0]]), 10.0, 1.0))
    np.testing.assert_array_equal(one, [[4.0], [-1.0]])
    # a 2 s envelope window on a 1 s recording: a constant envelope, no spindle
    noise = np.random.default_rng(0).standard_normal(100)
    assert len(dt.detect_spindles(noise, 100.0, window_s=2.0).start) == 0


def test_moving_windows_and_orders_take_numpy_numbers_and_refuse_bad_ones():
    x = np.random.default_rng(1).standard_normal(200)
    np.testing.assert_array_equal(
        rh.moving_average(x, 100.0, np.float32(0.05)), rh.moving_average(x, 100.0, 0.05)
    )
    np.testing.assert_array_equal(
        rh.bandpass(x, 100.0, (1.0, 4.0), order=np.int64(2)),
        rh.bandpass(x, 100.0, (1.0, 4.0), order=2),
    )
    for bad in (float("inf"), float("nan"), -0.1, True, "0.3"):
        with pytest.raises(
            ValueError, match=r"moving_rms: window_s must be a number > 0 \(s\) and finite"
        ):
            rh.moving_rms(x, 100.0, bad)
    with pytest.raises(
        ValueError, match=r"moving_average: x must have at least one sample, got shape \(0,\)"
    ):
        rh.moving_average(np.zeros(0), 100.0, 0.1)


def test_filters_reject_bad_input():
    sos = ss.butter(2, (1.0, 4.0), btype="bandpass", fs=100.0, output="sos")
    with pytest.raises(ValueError, match="needs more than 15"):  # 3 (2 * 2 + 1) = 15
        rh.sosfiltfilt(sos, np.zeros(15))
    with pytest.raises(ValueError, match=r"shape \(n_sections, 6\)"):
        rh.sosfiltfilt(sos[:, :5], np.zeros(100))
    with pytest.raises(ValueError, match="a0 of every section"):
        rh.sosfiltfilt(sos * 2.0, np.zeros(100))
    with pytest.raises(ValueError, match=r"0 < low < high < fs/2 = 50"):
        rh.bandpass(np.zeros(100), 100.0, (30.0, 60.0))
    with pytest.raises(ValueError, match="order must be an int"):
        rh.bandpass(np.zeros(100), 100.0, (1.0, 4.0), order=0)
    with pytest.raises(ValueError, match="window_s must be a number > 0"):
        rh.moving_rms(np.zeros(100), 100.0, 0.0)


# --- detectors on planted events -------------------------------------------------------------
# Matching (dt.match_events): a detection matches a planted event if their intervals overlap,
# one to one. Signals: 10 min at 100 Hz (EEG) or 2 min at 1 kHz (rates), seeds 0 and 1.

FS, N = 100.0, 60_000


def _eeg(seed, planter, noise_uv, **kwargs):
    k_noise, k_events = jax.random.split(jax.random.key(seed))
    events, truth = planter(k_events, N, FS, **kwargs)
    return (
        events + noise_uv * pl.pink_noise(k_noise, N),
        truth,
        noise_uv * pl.pink_noise(k_noise, N),
    )


@pytest.mark.parametrize("seed", [0, 1])
def test_slow_waves_precision_and_recall(seed):
    """Waves 130-200 µV deep (peak-to-peak 208-400 µV before filtering) on pink noise of SD
    20 µV (about 6-8 µV in 0.3-1.5 Hz). Measured P = 1.00, R = 1.00 and 0.99 for seeds 0, 1
    (P = 1.00, R >= 0.988 over seeds 0-9); 0 detections in the noise alone."""
    x, truth, noise = _eeg(seed, pl.plant_slow_waves, 20.0)
    ev = dt.detect_slow_waves(x, FS)
    precision, recall = dt.match_events(ev.intervals, truth)
    print(
        f"slow waves seed {seed}: {len(truth)} planted, {len(ev.start)} found, "
        f"precision {precision:.3f}, recall {recall:.3f}"
    )
    assert precision >= 0.9 and recall >= 0.9
    # every event meets the Massimini criteria, in order in time
    assert np.all((ev.start < ev.neg_peak) & (ev.neg_peak < ev.mid) & (ev.mid < ev.pos_peak))
    assert np.all(ev.pos_peak < ev.end)
    assert np.all((ev.mid - ev.start >= 0.3) & (ev.mid - ev.start <= 1.0))
    assert np.all(ev.neg_amplitude <= -80.0) and np.all(ev.ptp >= 140.0)
    np.testing.assert_allclose(ev.ptp, ev.pos_amplitude - ev.neg_amplitude)
    # negative control: the same noise alone holds no slow wave
    assert len(dt.detect_slow_waves(noise, FS).start) == 0


def test_slow_waves_follow_the_thresholds_and_their_units():
    """Shallow waves (40-60 µV deep) fail the -80 µV criterion; the same waves pass with
    thresholds halved; a signal in mV with thresholds in mV gives the same events."""
    x, truth, _ = _eeg(0, pl.plant_slow_waves, 20.0, depth_uv=(40.0, 60.0))
    assert len(dt.detect_slow_waves(x, FS).start) == 0
    ev = dt.detect_slow_waves(x, FS, neg_threshold=-20.0, ptp_threshold=35.0)
    assert dt.match_events(ev.intervals, truth)[1] >= 0.9
    mv = dt.detect_slow_waves(x / 1000.0, FS, neg_threshold=-0.020, ptp_threshold=0.035)
    np.testing.assert_allclose(mv.start, ev.start)
    np.testing.assert_allclose(mv.ptp, ev.ptp / 1000.0, rtol=1e-4)


@pytest.mark.parametrize("seed", [0, 1])
def test_spindles_precision_and_recall(seed):
    """Spindles 8-20 µV (peak), 11.5-15.5 Hz, 0.7-1.8 s, on pink noise of SD 10 µV (about
    1.5-1.9 µV in 11-16 Hz). Measured P = R = 1.00 for seeds 0, 1 (P = 1.00, R >= 0.99 over
    seeds 0-9); pure noise: 3 and 2 detections in 10 min against ~113 planted."""
    x, truth, noise = _eeg(seed, pl.plant_spindles, 10.0)
    ev = dt.detect_spindles(x, FS)
    precision, recall = dt.match_events(ev.intervals, truth)
    n_noise = len(dt.detect_spindles(noise, FS).start)
    print(
        f"spindles seed {seed}: {len(truth)} planted, {len(ev.start)} found, precision "
        f"{precision:.3f}, recall {recall:.3f}; {n_noise} found in noise alone"
    )
    assert precision >= 0.9 and recall >= 0.9
    assert n_noise <= 0.05 * len(truth)  # negative control: few detections in pure noise
    assert np.all((ev.duration >= 0.5) & (ev.duration <= 2.0))
    assert np.all((ev.frequency > 11.0) & (ev.frequency < 16.0))
    assert np.all((ev.start <= ev.peak) & (ev.peak < ev.end))
    # thresholds are relative to the signal's own envelope: any unit gives the same events
    np.testing.assert_allclose(dt.detect_spindles(x * 1e-3, FS).start, ev.start)


def test_spindles_below_the_noise_are_not_found():
    """Bursts of 1-2 µV (about the background's sigma-band SD) stay below 2.5 x median."""
    x, truth, _ = _eeg(0, pl.plant_spindles, 10.0, amplitude_uv=(1.0, 2.0))
    ev = dt.detect_spindles(x, FS)
    assert dt.match_events(ev.intervals, truth)[1] < 0.2


@pytest.mark.parametrize("seed", [0, 1])
def test_updown_precision_recall_and_frequency(seed):
    """100 Poisson neurons at 20 Hz (Up, 0.2-0.7 s) or 0.5 Hz (Down, 0.2-0.8 s), 2 min at
    1 kHz. Measured P = R = 1.00 for seeds 0, 1, frequency equal to the planted one, 99 % of
    samples in the right state."""
    fs, n = 1000.0, 120_000
    rate, truth = pl.two_state_rate(jax.random.key(seed), n, fs)
    ud = dt.detect_updown(rate, fs)
    precision, recall = dt.match_events(ud.up, truth)
    onsets = truth[:, 0]
    f_true = (len(onsets) - 1) / (onsets[-1] - onsets[0])
    print(
        f"up/down seed {seed}: {len(truth)} planted, {len(ud.up)} found, precision "
        f"{precision:.3f}, recall {recall:.3f}, {ud.frequency:.3f} Hz (planted {f_true:.3f})"
    )
    assert precision >= 0.9 and recall >= 0.9
    assert ud.frequency == pytest.approx(f_true, rel=0.02)
    t = np.arange(n) / fs
    planted = np.zeros(n, np.int8)
    for s, e in truth:
        planted[(t >= s) & (t < e)] = 1
    assert np.mean(ud.state == planted) > 0.97
    assert np.all(np.diff(ud.up, axis=1) >= 0.05) and np.all(np.diff(ud.down, axis=1) >= 0.05)
    assert np.allclose(ud.up[1:, 0], ud.down[ud.down[:, 0] > 0, 1][: len(ud.up) - 1])


@pytest.mark.parametrize("n_neurons,rate_hz", [(100, 10.0), (100, 20.0), (1000, 2.0)])
def test_updown_stationary_rate_has_no_alternation(n_neurons, rate_hz):
    """Negative control: Poisson neurons at a constant rate (asynchronous, wake-like), with
    >= 20 expected spikes per 20 ms smoothing window: one Up state, no Down state."""
    fs, n = 1000.0, 60_000
    counts = np.random.default_rng(3).poisson(n_neurons * rate_hz / fs, n).astype(np.float64)
    ud = dt.detect_updown(counts * fs / n_neurons, fs)
    assert len(ud.down) == 0 and len(ud.up) == 1 and np.isnan(ud.frequency)


def test_updown_on_a_membrane_potential_proxy_with_explicit_thresholds():
    """Vm -70 mV (Down) / -55 mV (Up) plus 2 mV noise: thresholds in mV find the same Up
    states as the rate (P = R = 1.00 for this seed)."""
    fs, n = 1000.0, 60_000
    rate, truth = pl.two_state_rate(jax.random.key(7), n, fs)
    t = np.arange(n) / fs
    vm = np.full(n, -70.0) + 2.0 * np.random.default_rng(7).standard_normal(n)
    for s, e in truth:
        vm[(t >= s) & (t < e)] += 15.0
    ud = dt.detect_updown(vm, fs, up_threshold=-60.0, down_threshold=-65.0)
    assert dt.match_events(ud.up, truth) == (1.0, 1.0)
    with pytest.raises(ValueError, match="down_threshold < up_threshold"):
        dt.detect_updown(vm, fs)  # the rate defaults make no sense for a negative signal


def test_updown_hysteresis_and_minimum_durations_by_hand():
    fs = 100.0
    r = np.array([0.0] * 10 + [10.0] * 10 + [4.0] * 3 + [10.0] * 10 + [0.0] * 2 + [10.0] * 2
                 + [0.0] * 10)  # fmt: skip
    ud = dt.detect_updown(r, fs, smooth_s=0, up_threshold=8.0, down_threshold=3.0,
                          min_up_s=0.05, min_down_s=0.05)  # fmt: skip
    # 4.0 sits between the thresholds (stays Up); the 20 ms dip is absorbed into Up
    np.testing.assert_allclose(ud.up, [[0.10, 0.37]])
    np.testing.assert_allclose(ud.down, [[0.0, 0.10], [0.37, 0.47]])
    assert ud.state.dtype == np.int8 and ud.state.sum() == 27
    with pytest.raises(ValueError, match="down_threshold < up_threshold"):
        dt.detect_updown(r, fs, up_threshold=3.0, down_threshold=3.0)


def test_match_events_by_hand():
    true = [[0.0, 1.0], [2.0, 3.0], [5.0, 6.0]]
    det = [[0.5, 0.8], [0.9, 1.5], [2.9, 4.0], [7.0, 8.0]]
    assert dt.match_events(det, true) == (0.5, 2 / 3)  # one detection per true event
    assert dt.match_events([], true)[1] == 0.0 and np.isnan(dt.match_events([], true)[0])
    assert dt.match_events([[1.0, 2.0]], [[2.0, 3.0]]) == (0.0, 0.0)  # touching is no overlap


def test_detectors_refuse_a_signal_with_nan_or_inf():
    x = np.random.default_rng(2).standard_normal(3000)
    x[[10, 20]], x[30] = np.nan, np.inf
    detectors = [(dt.detect_spindles, "x"), (dt.detect_slow_waves, "x"), (dt.detect_updown, "rate")]
    for detector, name in detectors:
        msg = rf"{detector.__name__}: {name} must be finite, got 3 nan/inf of 3000 samples"
        with pytest.raises(ValueError, match=msg):
            detector(x, FS)


def test_match_events_refuses_non_finite_and_reversed_intervals():
    msg = r"detected intervals must be finite with start <= end, got detected\[0\] = \[0.0, nan\]"
    with pytest.raises(ValueError, match=msg):
        dt.match_events([[0.0, np.nan]], [[0.0, 1.0]])
    with pytest.raises(ValueError, match=r"got true\[1\] = \[3.0, 2.0\] \(1 of 2 such\)"):
        dt.match_events([[0.0, 1.0]], [[0.0, 1.0], [3.0, 2.0]])
    assert dt.match_events([[1.0, 1.0]], [[0.0, 2.0]]) == (1.0, 1.0)  # zero length is an interval


def test_detectors_reject_bad_input():
    x = np.zeros((2, 1000))
    with pytest.raises(ValueError, match=r"one channel of shape \(n,\)"):
        dt.detect_spindles(x, FS)
    with pytest.raises(ValueError, match="fs must be a finite number > 0"):
        dt.detect_slow_waves(x[0], -1.0)
    with pytest.raises(ValueError, match="neg_threshold < 0 < ptp_threshold"):
        dt.detect_slow_waves(x[0], FS, neg_threshold=80.0)
    with pytest.raises(ValueError, match="neg_duration_s must satisfy"):
        dt.detect_slow_waves(x[0], FS, neg_duration_s=(1.0, 0.3))
    with pytest.raises(ValueError, match="0 < thresh_low <= thresh_high"):
        dt.detect_spindles(x[0], FS, thresh_low=3.0, thresh_high=2.0)
    with pytest.raises(ValueError, match=r"fs/2 = 10"):
        dt.detect_spindles(x[0], 20.0)


def test_planted_generators_put_the_events_where_they_say():
    key = jax.random.key(5)
    t = np.arange(N) / FS
    for planter, peak in [(pl.plant_slow_waves, 200.0), (pl.plant_spindles, 20.0)]:
        x, iv = planter(key, N, FS)
        assert np.all(iv[1:, 0] > iv[:-1, 1]) and iv[0, 0] > 0 and iv[-1, 1] < N / FS
        inside = np.zeros(N, bool)
        for s, e in iv:
            inside |= (t >= s) & (t < e)
        assert np.all(x[~inside] == 0.0) and np.abs(x).max() <= peak
        np.testing.assert_array_equal(planter(key, N, FS)[0], x)  # same key, same signal
    x, iv = pl.plant_slow_waves(key, N, FS)
    depths = [-x[(t >= s) & (t < e)].min() for s, e in iv]
    assert 130.0 <= min(depths) and max(depths) <= 200.0
    noise = pl.pink_noise(key, 2**16)
    f, p = rh.welch(noise, 100.0)
    band = (f >= 1.0) & (f <= 40.0)
    slope = np.polyfit(np.log(f[band]), np.log(np.asarray(p)[band]), 1)[0]
    assert noise.std() == pytest.approx(1.0) and slope == pytest.approx(-1.0, abs=0.1)
    rate, up = pl.two_state_rate(key, 120_000, 1000.0, n_neurons=500)
    tt = np.arange(120_000) / 1000.0
    in_up = np.zeros(tt.size, bool)
    for s, e in up:
        in_up |= (tt >= s) & (tt < e)
    assert rate[in_up].mean() == pytest.approx(20.0, rel=0.02)
    assert rate[~in_up].mean() == pytest.approx(0.5, rel=0.1)


def test_planted_and_updown_reject_bad_input():
    with pytest.raises(ValueError, match="shortest event plus the shortest gap must be > 0"):
        pl.plant_spindles(jax.random.key(0), 1000, FS, duration_s=(0.0, 1.0), gap_s=(0.0, 1.0))
    with pytest.raises(ValueError, match="gap_s must satisfy 0 <= low <= high"):
        pl.plant_slow_waves(jax.random.key(0), 1000, FS, gap_s=(2.0, 1.0))
    with pytest.raises(ValueError, match="n must be an int >= 2"):
        pl.pink_noise(jax.random.key(0), 1)
    with pytest.raises(ValueError, match="defaults need a rate with a positive 95th percentile"):
        dt.detect_updown(np.zeros(1000), 1000.0)
    with pytest.raises(ValueError, match="min_up_s and min_down_s must be >= 0"):
        dt.detect_updown(np.ones(1000), 1000.0, min_up_s=-1.0)


# --- hypnograms ------------------------------------------------------------------------------

HYPNO = np.array([0, 0, 1, 2, 2, 3, 3, 3, 2, 4, 4, 0])


def test_hypnogram_durations_intervals_and_lookup():
    assert hy.stage_durations(HYPNO) == {"W": 90.0, "N1": 30.0, "N2": 90.0, "N3": 90.0,
                                         "REM": 60.0}  # fmt: skip
    codes, iv = hy.stage_intervals(HYPNO, epoch_s=30.0)
    np.testing.assert_array_equal(codes, [0, 1, 2, 3, 2, 4, 0])
    np.testing.assert_allclose(iv[:, 1] - iv[:, 0], [60, 30, 60, 90, 30, 60, 30])
    assert iv[0, 0] == 0.0 and iv[-1, 1] == 360.0
    np.testing.assert_array_equal(hy.stage_at(HYPNO, [0.0, 29.9, 30.0, 165.0, 359.9, 360.0, -1]),
                                  [0, 0, 0, 3, 0, -1, -1])  # fmt: skip
    sim = hy.stage_durations([0, 1, 1, 2], epoch_s=10.0, names=("wake", "NREM", "REM"))
    assert sim == {"wake": 10.0, "NREM": 20.0, "REM": 10.0}


def test_hypnogram_rejects_bad_codes():
    with pytest.raises(ValueError, match=r"codes \[5\] are not in 0..4"):
        hy.stage_durations([0, 5])
    with pytest.raises(ValueError, match="codes must be integers"):
        hy.stage_durations([0.5, 1.0])
    with pytest.raises(ValueError, match="non-empty 1-D"):
        hy.stage_durations([[0, 1]])
    with pytest.raises(ValueError, match="epoch_s must be a number > 0"):
        hy.stage_durations([0, 1], epoch_s=0)


def test_plots_are_standalone_figures(tmp_path):
    import matplotlib.pyplot as plt
    from matplotlib.figure import Figure

    fig = hy.plot_hypnogram(HYPNO, time_unit="min")
    ax = fig.axes[0]
    assert isinstance(fig, Figure) and ax.get_xlabel() == "time (min)"
    assert [t.get_text() for t in ax.get_yticklabels()] == list(hy.STAGES)
    line = ax.get_lines()[0]
    np.testing.assert_allclose(line.get_ydata()[:-1], -HYPNO)  # W on top, REM at the bottom
    assert line.get_xdata()[-1] == pytest.approx(6.0)  # 12 epochs of 30 s
    x = _sines(100.0, 36_000, [2.0, 13.0], [50.0, 10.0])
    t, f, s = rh.spectrogram(x, 100.0, nperseg=400)
    fig2 = hy.plot_spectrogram(t, f, s, hypno=HYPNO, fmax=20.0)
    assert len(fig2.axes) == 3  # hypnogram, spectrogram, colour bar
    mesh = fig2.axes[1].collections[0]
    assert mesh.get_array().shape == (int(20.0 / 0.25) + 1, len(t))
    fig.savefig(tmp_path / "h.png")
    fig2.savefig(tmp_path / "s.png")
    assert (tmp_path / "h.png").stat().st_size > 0 and (tmp_path / "s.png").stat().st_size > 0
    assert plt.get_fignums() == []  # no pyplot state touched
    with pytest.raises(ValueError, match=r"sxx must have shape"):
        hy.plot_spectrogram(t, f, np.asarray(s).T)
    with pytest.raises(ValueError, match=r"plot_hypnogram: time_unit must be one of"):
        hy.plot_hypnogram(HYPNO, time_unit="hours")
