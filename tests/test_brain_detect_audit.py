"""Audit of the sleep-signal analysis (detect, filters, hypnogram, activity, diversity) on the
numbers and the edges: events planted at known samples, non-integer sampling rates, float64
against SciPy and hand computation in NumPy ("Finding: ..." names what the old code did)."""

import jax
import numpy as np
import pytest
import scipy.signal as ss
from scipy.spatial.distance import pdist

from nnjax.brain import activity as ac
from nnjax.brain import detect as dt
from nnjax.brain import diversity as dv
from nnjax.brain import filters as fl
from nnjax.brain import hypnogram as hy

RNG = np.random.default_rng(11)

# --- filters against scipy.signal, float64, non-integer fs -----------------------------------


@pytest.mark.parametrize(
    "fs,band,order",
    [(173.3, (11, 16), 4), (99.7, (0.3, 1.5), 2), (250.5, (0.5, 4), 3), (31.25, (1, 15.6), 1)],
)
def test_bandpass_equals_scipy_at_non_integer_fs(fs, band, order):
    """bandpass = sosfiltfilt(butter(order, band, 'bandpass', fs)) of SciPy, channels last,
    to 1e-10 of the signal's scale in float64; the dtype stays float64."""
    sos = ss.butter(order, band, "bandpass", fs=fs, output="sos")
    np.testing.assert_array_equal(fl.butter_bandpass(fs, band, order), sos)
    x = RNG.normal(size=(3, 2000)) * 50.0
    with jax.enable_x64(True):
        y = fl.bandpass(x, fs, band, order=order)
        assert y.dtype == np.float64 and y.shape == x.shape
    np.testing.assert_allclose(np.asarray(y), ss.sosfiltfilt(sos, x), rtol=0, atol=1e-10 * 50)


def test_moving_average_and_rms_at_non_integer_fs_against_numpy():
    """w = max(1, round(window_s fs)), h = w // 2, mean over |j| <= h inside the signal."""
    x = RNG.normal(size=(2, 301))
    for fs, w_s in [(173.3, 0.3), (99.7, 0.02), (12.5, 0.2), (1000.0 / 3, 0.0151)]:
        h = max(1, round(w_s * fs)) // 2
        win = [[x[c, max(0, i - h) : i + h + 1] for i in range(301)] for c in (0, 1)]
        ref = np.array([[w.mean() for w in row] for row in win])
        rms = np.array([[np.sqrt((w**2).mean()) for w in row] for row in win])
        with jax.enable_x64(True):
            np.testing.assert_allclose(np.asarray(fl.moving_average(x, fs, w_s)), ref, atol=1e-13)
            np.testing.assert_allclose(np.asarray(fl.moving_rms(x, fs, w_s)), rms, atol=1e-13)


# --- slow waves planted at known samples ------------------------------------------------------


def _slow_wave_train(fs, n, amps):
    """-a_k sin(2 pi f0 t) over whole cycles k of f0 = sqrt(0.3 * 1.5) Hz (the band's centre,
    gain 1): cycle k starts at k / f0 with amplitude amps[k]."""
    f0 = np.sqrt(0.45)
    t = np.arange(n) / fs
    k = np.floor(t * f0).astype(int)
    return -np.asarray(amps)[np.minimum(k, len(amps) - 1)] * np.sin(2 * np.pi * f0 * t), f0


@pytest.mark.parametrize("fs", [100.0, 128.7, 256.0])
def test_slow_waves_found_exactly_where_planted_at_any_fs(fs):
    """Big cycles (150 µV) among small ones (30 µV) at a non-integer fs: the detector finds
    exactly the big cycles inside the record (the first, cut by the start, is small), each
    starting and ending within 1.5 samples of k / f0 and (k + 1) / f0 (measured <= 1.38);
    the positive crossing within 0.04 s of (k + 1/2) / f0 (measured 0.033 s: a step from
    150 to 30 µV distorts the half-waves through the filter's ringing)."""
    amps = [30, 150, 150, 30, 150, 30, 30, 150, 30, 150, 150, 30, 30, 30]
    x, f0 = _slow_wave_train(fs, int(20.0 * fs), amps)
    with jax.enable_x64(True):
        ev = dt.detect_slow_waves(x, fs)
    big = np.array([k for k in range(14) if amps[k] == 150])  # 13 whole cycles in 20 s
    np.testing.assert_allclose(ev.start, big / f0, atol=1.5 / fs)
    np.testing.assert_allclose(ev.end, (big + 1) / f0, atol=1.5 / fs)
    np.testing.assert_allclose(ev.mid, (big + 0.5) / f0, atol=0.04)
    assert np.all(ev.neg_amplitude <= -80.0) and np.all(ev.ptp >= 140.0)


def test_slow_waves_of_a_constant_and_of_a_short_signal():
    """A constant (any offset) has no wave; a signal one sample longer than the padding runs
    and finds none; one sample shorter is refused naming the function."""
    with jax.enable_x64(True):
        for c in (0.0, 500.0, -1e4):
            assert len(dt.detect_slow_waves(np.full(3000, c), 100.0).start) == 0
        assert len(dt.detect_slow_waves(RNG.normal(size=16), 100.0).start) == 0
    with pytest.raises(ValueError, match="detect_slow_waves: the signal has 15 samples"):
        dt.detect_slow_waves(np.ones(15), 100.0)


# --- spindles ---------------------------------------------------------------------------------


def _spindles(fs, n, spans, f=13.0, amp=20.0, noise=2.0, seed=0):
    t = np.arange(n) / fs
    y = np.random.default_rng(seed).normal(scale=noise, size=n)
    for t0, t1 in spans:
        m = (t >= t0) & (t < t1)
        y[m] += amp * np.hanning(m.sum()) * np.sin(2 * np.pi * f * (t[m] - t0))
    return y


@pytest.mark.parametrize("fs", [200.0, 173.3, 256.0])
def test_spindles_found_where_planted_at_any_fs(fs):
    """Four Hann-tapered 13 Hz bursts of 0.8-1.2 s (one touching the record's end): exactly
    four events, starting 0.2 s early to 0.05 s late and ending 0.05 s early to 0.35 s late
    (measured -0.169..-0.015 and -0.02..+0.32: the RMS window and the noise around a burst
    spread it), the last ending at the record's end; frequency 12-14 Hz."""
    spans = np.array([(3.0, 4.0), (8.0, 9.2), (14.2, 15.0), (29.0, 30.0)])
    n = int(30 * fs)
    with jax.enable_x64(True):
        ev = dt.detect_spindles(_spindles(fs, n, spans), fs)
    assert len(ev.start) == 4
    assert np.all((ev.start - spans[:, 0] > -0.2) & (ev.start - spans[:, 0] < 0.05))
    assert np.all((ev.end - spans[:, 1] > -0.05) & (ev.end - spans[:, 1] < 0.35))
    assert ev.end[-1] == n / fs
    assert np.all((ev.frequency > 12.0) & (ev.frequency < 14.0))
    np.testing.assert_allclose(ev.duration, ev.end - ev.start, rtol=1e-12)


def test_spindles_of_a_constant_a_short_and_a_float32_signal():
    """Finding: a constant -3000 µV (float64) was refused as 'silent over half its length'
    (envelope median 1.2e-29, peak 8.9e-16: rounding), while a constant 1 gave no event.
    Now any constant gives no event, in float64 and float32; a signal shorter than the
    minimum duration gives none; shorter than the filter's padding is refused."""
    fs = 200.0
    with jax.enable_x64(True):
        for c in (0.0, 1.0, 75.0, -3e3):
            assert len(dt.detect_spindles(np.full(6000, c), fs).start) == 0, c
        assert len(dt.detect_spindles(_spindles(fs, 80, []), fs).start) == 0
    for c in (1.0, 75.0):
        assert len(dt.detect_spindles(np.full(6000, c, np.float32), fs).start) == 0, c
    with pytest.raises(ValueError, match="detect_spindles: the signal has 27 samples"):
        dt.detect_spindles(np.ones(27), fs)


# --- Up/Down states ---------------------------------------------------------------------------


@pytest.mark.parametrize("fs", [1000.0, 333.3])
def test_updown_intervals_are_the_planted_samples(fs):
    """No smoothing, explicit thresholds: the Up states are exactly the planted runs, to the
    sample, including one from the first sample and one to the last."""
    n = int(3 * fs)
    ups = [(0, int(0.2 * fs)), (int(0.7 * fs), int(1.1 * fs)), (int(2.6 * fs), n)]
    r = np.full(n, 0.5)
    for a, b in ups:
        r[a:b] = 30.0
    ud = dt.detect_updown(r, fs, smooth_s=0, up_threshold=10.0, down_threshold=5.0)
    np.testing.assert_allclose(ud.up, np.array(ups) / fs, rtol=1e-15)
    downs = [(ups[0][1], ups[1][0]), (ups[1][1], ups[2][0])]
    np.testing.assert_allclose(ud.down, np.array(downs) / fs, rtol=1e-15)
    assert ud.frequency == pytest.approx(1 / ((ups[2][0] - ups[1][0]) / fs), rel=1e-12)


def test_updown_whole_record_shorter_than_the_minimum_keeps_its_state():
    """Finding: a record shorter than min_up_s that is Up throughout came out Down
    throughout (and one Down throughout, shorter than min_down_s, flipped to Up and then back
    to Down): a run filling the record has no neighbour to be absorbed into."""
    kw = dict(smooth_s=0, up_threshold=10.0, down_threshold=5.0)
    ud = dt.detect_updown(np.full(30, 40.0), 1000.0, **kw)  # 30 ms < 50 ms
    assert ud.state.tolist() == [1] * 30
    np.testing.assert_allclose(ud.up, [[0.0, 0.03]])
    assert ud.down.shape == (0, 2)
    ud = dt.detect_updown(np.full(30, 1.0), 1000.0, **kw)
    assert ud.state.tolist() == [0] * 30 and ud.up.shape == (0, 2)
    ud = dt.detect_updown(np.full(30, 40.0), 1000.0)  # default thresholds: 20 and 10 Hz
    assert ud.state.tolist() == [1] * 30


# --- hypnograms -------------------------------------------------------------------------------


def test_hypnogram_fractions_and_transitions_by_hand():
    """Durations add up to the record, fractions to 1; stage_intervals' runs give the
    transitions (counted by hand); a single epoch is one run; empty is refused."""
    h = [0, 0, 1, 2, 2, 2, 3, 3, 2, 4, 4, 0, 2, 2]
    d = hy.stage_durations(h, 30.0)
    assert d == {"W": 90.0, "N1": 30.0, "N2": 180.0, "N3": 60.0, "REM": 60.0}
    frac = np.array(list(d.values())) / (len(h) * 30.0)
    assert frac.sum() == pytest.approx(1.0, abs=1e-15)
    codes, spans = hy.stage_intervals(h, 30.0)
    assert codes.tolist() == [0, 1, 2, 3, 2, 4, 0, 2]
    assert len(codes) - 1 == sum(a != b for a, b in zip(h[:-1], h[1:])) == 7
    np.testing.assert_array_equal(spans[1:, 0], spans[:-1, 1])
    assert spans[0, 0] == 0.0 and spans[-1, 1] == len(h) * 30.0
    c1, s1 = hy.stage_intervals([3], 20.0)
    assert c1.tolist() == [3] and s1.tolist() == [[0.0, 20.0]]
    assert hy.stage_durations([4], 7.5)["REM"] == 7.5
    assert hy.stage_at([4], [0.0, 7.4999, 7.5, -0.1], 7.5).tolist() == [4, 4, -1, -1]
    with pytest.raises(ValueError, match="non-empty 1-D"):
        hy.stage_durations([], 30.0)


# --- activity against NumPy by hand -----------------------------------------------------------


def _isi_cv_by_hand(raster, bin_ms, min_spikes=5):
    out = []
    for col in raster.T:
        t = np.repeat(np.arange(len(col)), col.astype(int)) * bin_ms + 0.5 * bin_ms
        isi = np.diff(t)
        ok = len(t) >= max(min_spikes, 3) and isi.mean() > 0
        out.append(isi.std() / isi.mean() if ok else np.nan)
    return np.array(out)


def test_isi_cv_equals_numpy_by_hand():
    raster = RNG.poisson(0.08, size=(3000, 40)).astype(float)
    raster[:, :3] = 0
    raster[::7, 1] = 1  # a clock: CV 0
    raster[5, 2] = 6  # one bin of 6 spikes: all ISIs 0, nan
    for bin_ms in (0.1, 1.0, 2.5):
        np.testing.assert_allclose(ac.isi_cv(raster, bin_ms), _isi_cv_by_hand(raster, bin_ms),
                                   rtol=1e-12, atol=1e-14)  # fmt: skip
    assert ac.isi_cv(raster, 1.0)[1] == pytest.approx(0.0, abs=1e-12)


def test_pairwise_correlation_and_synchrony_equal_numpy_by_hand():
    """The mean Pearson r of the same random pairs (np.corrcoef), and chi^2 = var(mean) /
    mean(var) of the window counts."""
    shared = RNG.poisson(0.3, size=(4000, 1))
    raster = (RNG.poisson(0.2, size=(4000, 12)) + shared).astype(float)
    raster[:, 3] = 0  # silent: never drawn
    c = raster.reshape(800, 5, 12).sum(1)
    active = np.flatnonzero(c.std(0) > 0)
    rng = np.random.default_rng(4)
    i, j = rng.choice(active, 300), rng.choice(active, 300)
    keep = i != j
    with np.errstate(invalid="ignore", divide="ignore"):  # the silent neuron: nan, unused
        cc = np.corrcoef(c.T)
    ref = np.mean(cc[i[keep], j[keep]])
    got = ac.pairwise_correlation(raster, 1.0, window_ms=5.0, n_pairs=300, seed=4)
    assert got == pytest.approx(ref, rel=1e-12)
    chi = np.sqrt(np.var(c.mean(1)) / np.var(c, axis=0).mean())
    with jax.enable_x64(True):
        assert ac.population_synchrony(raster, 1.0, window_ms=5.0) == pytest.approx(chi, rel=1e-12)
    t, nid = ac.raster_points(raster[:50], 0.5, t0_ms=100.0)
    pairs = [(b, k) for b in range(50) for k in range(12) for _ in range(int(raster[b, k]))]
    np.testing.assert_allclose(t, [100.0 + (b + 0.5) * 0.5 for b, _ in pairs], rtol=1e-15)
    assert nid.tolist() == [k for _, k in pairs]


# --- diversity against NumPy by hand ----------------------------------------------------------


def test_mean_pairwise_distance_and_entropy_equal_numpy(monkeypatch):
    """D against scipy's pdist in blocks of 1, 7 and all rows, with a large offset; H
    against -sum p log2 p by hand."""
    X = RNG.normal(size=(53, 9)) + 1e4
    ref = pdist(X).mean()
    for rows in (1, 7, 1024):
        monkeypatch.setattr(dv, "BLOCK_ROWS", rows)
        assert dv.mean_pairwise_distance(X) == pytest.approx(ref, rel=1e-9)
    h = np.array([5, 0, 3, 12, 1])
    p = h[h > 0] / h.sum()
    assert dv.entropy_bits(h) == pytest.approx(-(p * np.log2(p)).sum(), rel=1e-14)
    assert dv.entropy_bits([0, 7, 0]) == 0.0


def test_class_histogram_names_the_label_out_of_range():
    """Finding: class_histogram([0, 5, 1], 3) said 'labels must be a 1-D array of ints in
    [0, 3), got shape (3,)': the shape was fine, the label 5 was not named."""
    with pytest.raises(ValueError, match=r"class_histogram: labels .* \[0, 3\), got 5"):
        dv.class_histogram([0, 5, 1], 3)
    with pytest.raises(ValueError, match=r"class_histogram: labels .* \[0, 3\), got -1"):
        dv.class_histogram(np.array([0, -1]), 3)
    with pytest.raises(ValueError, match=r"class_histogram: labels .* got shape \(2, 2\)"):
        dv.class_histogram(np.zeros((2, 2), int), 3)
    np.testing.assert_array_equal(dv.class_histogram([0, 2, 2.0], 4), [1, 0, 2, 0])


def test_raster_points_keep_float64_times_with_a_jax_t0():
    """Finding: t0_ms as a JAX scalar made the times a float32 JAX array (without x64):
    3.6e6 ms + 0.05 ms came out 3.6e6 exactly, every time on a 0.25 ms grid."""
    import jax.numpy as jnp

    raster = np.zeros((4, 1))
    raster[[0, 1, 3], 0] = 1
    t, _ = ac.raster_points(raster, 0.1, t0_ms=jnp.asarray(3.6e6))
    assert isinstance(t, np.ndarray) and t.dtype == np.float64
    np.testing.assert_allclose(t, 3.6e6 + np.array([0.05, 0.15, 0.35]), rtol=0, atol=1e-6)


def test_a_numpy_complex_fs_is_refused_in_one_line():
    """Finding: fs = np.complex128(200 + 5j) passed the type check (an np.number) and ran
    as 200 Hz, its imaginary part dropped with only a ComplexWarning."""
    for f in (dt.detect_spindles, dt.detect_slow_waves, dt.detect_updown):
        with pytest.raises(ValueError, match=f"{f.__name__}: fs must be a number in Hz"):
            f(np.ones(3000), np.complex128(200.0 + 5j))
    assert fl.check_fs(np.float32(173.3), "x") == pytest.approx(173.3, rel=1e-7)
    assert fl.check_fs(np.int16(200), "x") == 200.0
