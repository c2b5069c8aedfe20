"""Bad input to the brain side's analysis functions (activity, synchrony, kuramoto, detect,
rhythms, planted, sleep_states, scores, convert, helmholtz): each case used to run silently
(a string or a bool taken as a number, an accuracy of 1.5, a band above the Nyquist
frequency planted as zeros), to fail deep inside a helper that named itself instead of the
function called, or to exhaust the memory. Each is now a ValueError naming the function
and the argument; the valid edges still run, also under jit. Tiny inputs only."""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nnjax.brain import activity, convert, detect, helmholtz, kuramoto, planted, rhythms, scores
from nnjax.brain import sleep_states as ss
from nnjax.brain import synchrony as sy

NAN, INF = float("nan"), float("inf")
KEY = jax.random.key(0)
SIGNAL = np.sin(np.arange(2000) / 100.0 * 2 * np.pi * 10.0)
TRAINS = (jnp.array([1.0, 5.0]), jnp.array([2.0, 6.0, 9.0]))
GROUPS, COUNTS = np.array([[0], [1]]), np.ones(2)


def _converted():
    """A converted 16-8-3 network (NumPy arrays: no JAX program to compile), x and labels."""
    rng = np.random.default_rng(0)
    layers = [{"W": rng.normal(0.0, 0.5, (m, n)).astype(np.float32), "b": np.zeros(n, np.float32)}
              for m, n in ((16, 8), (8, 3))]  # fmt: skip
    conv = convert.Converted(layers, np.array([1.0, 2.0, 3.0], np.float32))
    return conv, rng.random((6, 16)).astype(np.float32), np.arange(6) % 3


def _conv(**kw):
    return _converted()[0]._replace(**kw)


def _helmholtz(n0=9, n1=3, n2=1):
    """A Helmholtz machine of NumPy arrays (init_helmholtz compiles a JAX program per shape)."""
    rng = np.random.default_rng(0)
    shapes = ((n2,), (n2, n1), (n1,), (n1, n0), (n0,), (n0, n1), (n1,), (n1, n2), (n2,))
    return helmholtz.Helmholtz(*(rng.normal(0.0, 0.1, sh).astype(np.float32) for sh in shapes))


def _bars():
    return helmholtz.bars_distribution(3)


def _record(n_bins=3000, n=10, **kw):
    rec = {"rate": np.ones((n_bins, 2)), "lfp": np.zeros(n_bins), "spikes": np.zeros((n_bins, n))}
    return {**rec, **kw}


# (id, call, the message's start: the function and the argument)
CASES = [
    # activity: the caller names itself
    ("population_synchrony/N=0", lambda: activity.population_synchrony(np.zeros((100, 0)), 1.0),
     r"population_synchrony: raster must hold N >= 1 neurons"),
    # synchrony: one real number for tau, dt, duration, weight, beta, theta; real trains
    ("van_rossum/tau bool", lambda: sy.van_rossum_distance(*TRAINS, True),
     "van_rossum_distance: tau must be a finite number"),
    ("van_rossum/tau array", lambda: sy.van_rossum_distance(*TRAINS, jnp.ones(3)),
     "van_rossum_distance: tau must be a finite number > 0 .a single one"),
    ("van_rossum/a str", lambda: sy.van_rossum_distance(np.array(["1"]), TRAINS[1], 2.0),
     "van_rossum_distance: a must hold real numbers"),
    ("van_rossum/mask shape", lambda: sy.van_rossum_distance(*TRAINS, 2.0, mask_a=jnp.ones(3)),
     r"van_rossum_distance: mask_a shape \(3,\) differs"),
    ("sttc/dt bool", lambda: sy.sttc(*TRAINS, True, 10.0), "sttc: dt must be a finite number"),
    ("sttc/duration array", lambda: sy.sttc(*TRAINS, 1.0, jnp.array([10.0, 20.0])),
     "sttc: duration must be a finite number"),
    ("sttc/mask_b str", lambda: sy.sttc(*TRAINS, 1.0, 10.0, mask_b=np.array(["a"] * 3)),
     "sttc: mask_b must hold real numbers"),
    ("golomb_rinzel_chi/complex", lambda: sy.golomb_rinzel_chi(np.ones((3, 2)) * 1j),
     "golomb_rinzel_chi: traces must hold real numbers"),
    ("coincidence_inputs/jitter bool", lambda: sy.coincidence_inputs(
        KEY, 3, 10, jnp.array([2.0]), True), r"coincidence_inputs: jitter \(steps\)"),
    ("coincidence_inputs/volley str", lambda: sy.coincidence_inputs(
        KEY, 3, 10, np.array(["2"]), 0.0), "coincidence_inputs: volley_times"),
    ("coincidence_response/weight bool", lambda: sy.coincidence_response(jnp.ones((5, 3)), True),
     "coincidence_response: weight must be a number"),
    ("coincidence_response/beta str", lambda: sy.coincidence_response(
        jnp.ones((5, 3)), 0.3, beta="0.8"), "coincidence_response: beta must be a number"),
    ("coincidence_response/beta array", lambda: sy.coincidence_response(
        jnp.ones((5, 3)), 0.3, beta=jnp.full(2, 0.8)), "coincidence_response: beta"),
    # kuramoto: real numbers only (strings and bools ran as numbers)
    ("stationary_r/K str", lambda: kuramoto.stationary_r("3"), "stationary_r: K must be a number"),
    ("stationary_r/K bool", lambda: kuramoto.stationary_r(True), "stationary_r: K"),
    ("stationary_r/gamma bool", lambda: kuramoto.stationary_r(3.0, True), "stationary_r: gamma"),
    ("lorentzian/gamma bool", lambda: kuramoto.lorentzian_frequencies(3, True),
     "lorentzian_frequencies: gamma must be a number"),
    ("lorentzian/gamma array", lambda: kuramoto.lorentzian_frequencies(3, np.ones(2)),
     "lorentzian_frequencies: gamma must be a number"),
    ("lorentzian/dtype int", lambda: kuramoto.lorentzian_frequencies(3, dtype=jnp.int32),
     "lorentzian_frequencies: dtype must be float"),
    ("gaussian/sigma bool", lambda: kuramoto.gaussian_frequencies(3, True),
     "gaussian_frequencies: sigma"),
    ("gaussian/dtype name", lambda: kuramoto.gaussian_frequencies(3, dtype="x"),
     "gaussian_frequencies: dtype"),
    ("order_parameter/str", lambda: kuramoto.order_parameter(np.array(["a"])),
     "order_parameter: theta must be a number"),
    ("velocity/K str", lambda: kuramoto.velocity(jnp.ones(3), jnp.ones(3), "3"), "velocity: K"),
    ("velocity/omega str", lambda: kuramoto.velocity(jnp.ones(2), "1", 1.0), "velocity: omega"),
    ("velocity/coupling str", lambda: kuramoto.velocity(
        jnp.ones(2), jnp.ones(2), 1.0, np.full((2, 2), "a")), "velocity: coupling"),
    ("kuramoto.simulate/K bool", lambda: kuramoto.simulate(jnp.ones(3), jnp.ones(3), True,
                                                           n_steps=2), "simulate: K must be a"),
    ("kuramoto.simulate/omega None", lambda: kuramoto.simulate(jnp.ones(3), None, 1.0, n_steps=2),
     "simulate: omega"),
    ("kuramoto.simulate/theta0 complex", lambda: kuramoto.simulate(
        jnp.ones(2) * 1j, jnp.ones(2), 1.0, n_steps=2), "simulate: theta0"),
    # bands at or above the Nyquist frequency, named by the function called
    ("detect_spindles/Nyquist", lambda: detect.detect_spindles(SIGNAL, 20.0),
     r"detect_spindles: band \(11, 16\) Hz .* high = 16 Hz is at or above the Nyquist frequency "
     r"fs/2 = 10 Hz of the sampling rate fs = 20 Hz"),
    ("detect_slow_waves/Nyquist", lambda: detect.detect_slow_waves(SIGNAL, 2.0),
     r"detect_slow_waves: band \(0.3, 1.5\) Hz .* Nyquist frequency fs/2 = 1 Hz"),
    ("bandpass/Nyquist", lambda: rhythms.bandpass(SIGNAL, 100.0, (30.0, 50.0)),
     r"bandpass: band \(30, 50\) Hz .* at or above the Nyquist frequency fs/2 = 50 Hz"),
    ("band_powers/band", lambda: rhythms.band_powers(*rhythms.welch(SIGNAL, 100.0, nperseg=200),
                                                     {"x": (11.0, 60.0)}),
     r"band_powers: band \(11, 60\) Hz must satisfy"),
    ("band_powers/psd", lambda: rhythms.band_powers(np.arange(5.0), jnp.ones(4), ["delta"]),
     "band_powers: psd shape"),
    ("band_powers/freqs", lambda: rhythms.band_powers(2.0, jnp.ones(4)), "band_powers: freqs"),
    ("plant_spindles/Nyquist", lambda: planted.plant_spindles(KEY, 2000, 20.0),
     r"plant_spindles: freq_hz high = 15.5 Hz, at or above the Nyquist frequency fs/2 = 10 Hz "
     r"of the sampling rate fs = 20 Hz"),
    ("plant_spindles/at Nyquist", lambda: planted.plant_spindles(KEY, 2000, 20.0,
                                                                 freq_hz=(10.0, 10.0)),
     "plant_spindles: freq_hz high = 10 Hz, at or above the Nyquist"),
    ("plant_slow_waves/Nyquist", lambda: planted.plant_slow_waves(KEY, 2000, 100.0,
                                                                  neg_duration_s=(0.001, 0.5)),
     r"plant_slow_waves: the half-wave frequency 1 / \(2 neg_duration_s low\) for low = 0.001 s "
     r"= 500 Hz, at or above the Nyquist frequency fs/2 = 50 Hz"),
    # the detectors' other arguments, named by the detector
    ("detect_spindles/short", lambda: detect.detect_spindles(SIGNAL[:20], 100.0),
     "detect_spindles: the signal has 20 samples"),
    ("detect_spindles/window_s", lambda: detect.detect_spindles(SIGNAL, 100.0, window_s=-1.0),
     "detect_spindles: window_s"),
    ("detect_updown/empty", lambda: detect.detect_updown(np.ones(0), 100.0),
     "detect_updown: rate must hold at least one sample"),
    ("detect_slow_waves/ptp inf", lambda: detect.detect_slow_waves(SIGNAL, 100.0,
                                                                   ptp_threshold=INF),
     "detect_slow_waves: need finite neg_threshold"),
    ("two_state_rate/n_neurons bool", lambda: planted.two_state_rate(KEY, 200, 100.0,
                                                                     n_neurons=True),
     "two_state_rate: n_neurons"),
    ("two_state_rate/up str", lambda: planted.two_state_rate(KEY, 200, 100.0, up_rate_hz="20"),
     "two_state_rate: up_rate_hz"),
    ("two_state_rate/up inf", lambda: planted.two_state_rate(KEY, 200, 100.0, up_rate_hz=INF),
     "two_state_rate: need 0 <= down_rate_hz < up_rate_hz < inf"),
    # sleep states
    ("schedule/huge", lambda: ss.schedule([0, 1], 1e6, 1e-3),
     r"schedule: the night would take 2 epochs x 1000000000000 steps .* MAX_STEPS"),
    ("schedule/epoch bool", lambda: ss.schedule([0, 1], True, 0.1), "schedule: epoch_s"),
    ("schedule/hypnogram", lambda: ss.schedule([0, 5], 0.01, 0.1), r"schedule: hypnogram: codes"),
    ("modulation/levels str", lambda: ss.modulation(ss.Levels("0.5", 0.5)),
     r"modulation: levels.ach must be a number in \[0, 1\]"),
    ("modulation/levels bool", lambda: ss.modulation(ss.Levels(1.0, True)),
     "modulation: levels.mono"),
    ("modulation/b_block str", lambda: ss.modulation(ss.Levels(), ss.StateMap(b_block="1")),
     "modulation: smap.b_block"),
    ("modulation/levels tuple", lambda: ss.modulation((0.5, 0.5)),
     "modulation: levels must be a Levels"),
    ("modulation/smap tuple", lambda: ss.modulation(ss.Levels(), (1.5, 1.0, 1.8, 0.35)),
     "modulation: smap must be a StateMap"),
    ("describe/n_exc -1", lambda: ss.describe(_record(), 1.0, -1), "describe: n_exc"),
    ("describe/n_exc > N", lambda: ss.describe(_record(), 1.0, 50),
     "describe: n_exc = 50 exceeds the raster's 10 cells"),
    ("describe/bin_ms bool", lambda: ss.describe(_record(), True, 8), "describe: bin_ms"),
    ("describe/rate 1-D", lambda: ss.describe(_record(rate=np.ones(3000)), 1.0, 8),
     r"describe: record\['rate'\] must be real"),
    ("describe/rate nan", lambda: ss.describe(_record(rate=np.full((3000, 2), NAN)), 1.0, 8),
     r"describe: record\['rate'\] must be finite"),
    ("describe/nperseg", lambda: ss.describe(_record(), 1.0, 8, nperseg=1), "describe: nperseg"),
    ("describe/short lfp", lambda: ss.describe(_record(lfp=np.zeros(10)), 1.0, 8),
     r"describe: the LFP's spectrum, nperseg = 10 samples at fs = 1000 Hz"),
    ("describe/empty", lambda: ss.describe(_record(n_bins=0), 1.0, 8),  # "nperseg = 0 ..."
     r"^describe: the record is empty \(0 bins\): record a stage first$"),
    ("describe/bin_ms Nyquist", lambda: ss.describe(_record(), 400.0, 8),
     r"describe: .* up to 1.25 Hz .* Nyquist .* the slow band's 2 Hz"),
    # scores: accuracies are fractions in [0, 1]
    ("metrics/A 1.5", lambda: scores.metrics(np.array([[0.5, 0.2], [0.5, 1.5]]), GROUPS, COUNTS),
     r"metrics: A must hold accuracies in \[0, 1\] .* got A\[1, 1\] = 1.5"),
    ("metrics/A percent", lambda: scores.metrics(np.full((3, 2, 2), 50.0), GROUPS, COUNTS),
     r"metrics: A .*fractions, not percentages.* A\[0, 0, 0\] = 50.0 \(12 of 12"),
    ("metrics/A nan", lambda: scores.metrics(np.array([[NAN, 0.2], [0.5, 0.9]]), GROUPS, COUNTS),
     r"metrics: A .* A\[0, 0\] = nan"),
    ("metrics/A_init", lambda: scores.metrics(np.full((2, 2), 0.5), GROUPS, COUNTS,
                                              A_init=np.array([-0.2, 0.1])),
     r"metrics: A_init .* A_init\[0\] = -0.2"),
    ("metrics/A str", lambda: scores.metrics(np.full((2, 2), "a"), GROUPS, COUNTS),
     "metrics: A must hold numbers"),
    ("task_matrix/A", lambda: scores.task_matrix(np.full((2, 2), -1.0), GROUPS, COUNTS),
     "task_matrix: A must hold accuracies"),
    ("seen_accuracy/counts str", lambda: scores.seen_accuracy(np.full((2, 2), 0.5), GROUPS,
                                                              ["a", "b"]),
     "seen_accuracy: counts must hold numbers"),
    ("forgetting/R", lambda: scores.forgetting(np.array([[1.5, 0.2], [0.5, 0.9]])),
     r"forgetting: R .* R\[0, 0\] = 1.5"),
    ("summary/str", lambda: scores.summary(["a"]), "summary: x must hold numbers"),
    ("paired/str", lambda: scores.paired(["a"], [1.0]), "paired: a must hold numbers"),
    # conversion: a Converted is checked where it is run
    ("convert.simulate/scales short", lambda: convert.simulate(
        _conv(scales=jnp.ones(1)), _converted()[1], 5),
     r"simulate: converted.scales must be \(3,\): lambda_0 and one scale per layer for its 2 "
     r"layers, got shape \(1,\)"),
    ("convert.simulate/scales long", lambda: convert.simulate(
        _conv(scales=jnp.ones(7)), _converted()[1], 5), r"simulate: converted.scales .* \(7,\)"),
    ("spiking_accuracy/scales", lambda: convert.spiking_accuracy(
        _conv(scales=jnp.ones(2)), *_converted()[1:], 5),
     r"spiking_accuracy: converted.scales must be \(3,\)"),
    ("convert.simulate/scales nan", lambda: convert.simulate(
        _conv(scales=jnp.array([1.0, 1.0, NAN])), _converted()[1], 5),
     "simulate: converted.scales must be a finite number > 0"),
    ("convert.simulate/no layer", lambda: convert.simulate(
        convert.Converted([], jnp.ones(1)), _converted()[1], 5), "simulate: converted.layers"),
    ("convert.simulate/chain", lambda: convert.simulate(
        _conv(layers=_converted()[0].layers[::-1]), _converted()[1], 5),
     "simulate: converted.layers .* that chain"),
    ("convert.simulate/return_spikes", lambda: convert.simulate(*_converted()[:2], 5,
                                                                return_spikes="no"),
     "simulate: return_spikes"),
    ("spiking_accuracy/x", lambda: convert.spiking_accuracy(
        _converted()[0], jnp.ones((6, 5)), _converted()[2], 5), "spiking_accuracy: x"),
    ("spiking_accuracy/y range", lambda: convert.spiking_accuracy(
        *_converted()[:2], _converted()[2] + 5, 5),
     r"spiking_accuracy: y must hold integer labels in 0..2, got y\[0\] = 5"),
    ("spiking_accuracy/y 0.5", lambda: convert.spiking_accuracy(
        *_converted()[:2], _converted()[2] + 0.5, 5), "spiking_accuracy: y must hold integer"),
    ("normalize/X str", lambda: convert.normalize(
        [{"W": jnp.ones((2, 2)), "b": jnp.zeros(2)}], np.full((3, 2), "a")),
     "normalize: X must hold real numbers"),
    ("ann_forward/layers", lambda: convert.ann_forward("ab", jnp.ones((2, 2))),
     "ann_forward: layers"),
    # helmholtz: the caller names itself; binary patterns; the enumeration capped
    ("exact_kl/width", lambda: helmholtz.exact_kl(_helmholtz(), np.ones((2, 5)), np.ones(2) / 2),
     r"exact_kl: patterns must be \(M, n0=9\), got \(2, 5\)"),
    ("exact_kl/2.0", lambda: helmholtz.exact_kl(_helmholtz(), np.full((1, 9), 2.0), np.ones(1)),
     r"exact_kl: patterns must hold binary patterns \(0 or 1\), got 2.0"),
    ("exact_kl/params", lambda: helmholtz.exact_kl(tuple(_helmholtz()), *_bars()),
     "exact_kl: params must be a Helmholtz"),
    ("exact_kl/n1", lambda: helmholtz.exact_kl(_helmholtz(9, 21, 1), *_bars()),
     "exact_kl: n1 = 21 and n2 = 1 hidden units"),
    ("log_marginal/joint", lambda: helmholtz.log_marginal(
        _helmholtz(9, 13, 12), _bars()[0]),
     r"log_marginal: n1 = 13 and n2 = 12 .* n1 \+ n2 <= 24"),
    ("log_marginal/V 0.5", lambda: helmholtz.log_marginal(_helmholtz(), np.full(9, 0.5)),
     "log_marginal: V must hold binary patterns"),
    ("wake_sleep_step/v 2", lambda: helmholtz.wake_sleep_step(_helmholtz(), KEY,
                                                              jnp.full((2, 9), 2.0), 0.1),
     "wake_sleep_step: v must hold binary"),
    ("wake_sleep_step/lr bool", lambda: helmholtz.wake_sleep_step(_helmholtz(), KEY,
                                                                  jnp.ones((2, 9)), True),
     "wake_sleep_step: lr"),
    ("train_wake_sleep/n1", lambda: helmholtz.train_wake_sleep(KEY, *_bars(), n1=21),
     "train_wake_sleep: n1 = 21"),
    ("train_wake_sleep/joint", lambda: helmholtz.train_wake_sleep(KEY, *_bars(), n1=15, n2=15),
     "train_wake_sleep: n1 = 15 and n2 = 15"),
    ("train_wake_sleep/patterns", lambda: helmholtz.train_wake_sleep(
        KEY, _bars()[0] * 2, _bars()[1]), "train_wake_sleep: patterns must hold binary"),
    ("bars_distribution/huge", lambda: helmholtz.bars_distribution(30),
     "bars_distribution: n must be <= 16"),
    ("bars_distribution/p str", lambda: helmholtz.bars_distribution(3, "0.2"),
     "bars_distribution: need an int n >= 2 and p_bar"),
    ("init_helmholtz/scale bool", lambda: helmholtz.init_helmholtz(KEY, 4, 2, 1, scale=True),
     "init_helmholtz: scale"),
    ("smooth/str", lambda: helmholtz.smooth(np.array(["a"]), 2), "smooth: x must hold numbers"),
]  # fmt: skip


@pytest.mark.parametrize("call, message", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_a_value_error_naming_the_function_and_argument(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def _isi_cv_reference(r, bin_ms, min_spikes=5):
    """The old per-neuron isi_cv: np.repeat of every count, np.diff of the times."""
    out = np.full(r.shape[1], np.nan)
    for i in range(r.shape[1]):
        if not np.isfinite(r[:, i]).all():
            continue
        counts = r[:, i].astype(np.int64)
        if counts.sum() < max(min_spikes, 3):
            continue
        times = (np.repeat(np.flatnonzero(counts), counts[counts > 0]) + 0.5) * bin_ms
        isi = np.diff(times)
        out[i] = isi.std() / isi.mean() if isi.mean() > 0 else np.nan
    return out


def test_isi_cv_reads_the_nonzero_bins_only_and_matches_the_old_values():
    """isi_cv repeated every count into a spike-time array: a count of 4e9 in one bin asked
    for 30 GB (MemoryError); a float raster was copied whole. The CV is now computed from
    the nonzero bins (0 ms intervals inside a bin, one interval between bins) and equals the
    old values to rounding; nan, inf and multi-spike bins as before."""
    rng = np.random.default_rng(1)
    r = rng.poisson(0.3, (300, 8)).astype(float)
    r[:, 5] = 0.0
    r[[3, 9], 5] = [4.0, 1.0]  # all but one interval 0 ms
    r[7, 6] = NAN
    r[:, 7] = 0.0
    r[50, 7] = 6.0  # every interval 0 ms: mean 0, nan
    for bin_ms, ms in ((1.0, 5), (0.37, 0), (2.0, 40)):
        np.testing.assert_allclose(activity.isi_cv(r, bin_ms, min_spikes=ms),
                                   _isi_cv_reference(r, bin_ms, ms), rtol=1e-13)  # fmt: skip
    for dtype in (bool, np.uint8, np.int64, np.float32):
        d = (r[:, :5] > 0) if dtype is bool else r[:, :5].astype(dtype)
        np.testing.assert_allclose(activity.isi_cv(d, 1.0), _isi_cv_reference(d, 1.0), rtol=1e-13)
    huge = np.zeros((100, 1))
    huge[[3, 50], 0] = [4e9, 1.0]  # 4e9 - 1 intervals of 0 ms and one of 47 ms
    assert activity.isi_cv(huge, 1.0)[0] == pytest.approx(np.sqrt(4e9 - 1.0), rel=1e-9)
    assert activity.isi_cv(np.zeros((0, 3)), 1.0).shape == (3,)
    assert activity.isi_cv(np.zeros((10, 0)), 1.0).shape == (0,)


def test_raster_points_and_pairwise_correlation_keep_their_values():
    """raster_points now reads the nonzero entries (no dense copy); pairwise_correlation
    multiplies the pairs in chunks: both give the old values exactly."""
    r = (np.random.default_rng(0).random((400, 12)) < 0.1).astype(float)
    r[5, 3] = 3.0
    t, i = activity.raster_points(r, 0.5, t0_ms=2.0)
    b, n = np.nonzero(r)
    reps = r[b, n].astype(int)
    np.testing.assert_array_equal(t, 2.0 + (np.repeat(b, reps) + 0.5) * 0.5)
    np.testing.assert_array_equal(i, np.repeat(n, reps))
    c = r.reshape(80, 5, 12).sum(1)
    z = (c - c.mean(0)) / c.std(0)
    rng = np.random.default_rng(3)
    i, j = rng.choice(np.arange(12), 500), rng.choice(np.arange(12), 500)
    keep = i != j
    want = np.mean((z[:, i[keep]] * z[:, j[keep]]).mean(axis=0))
    assert activity.pairwise_correlation(r, 1.0, n_pairs=500, seed=3) == want
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "Mean of empty slice" when every pair was (i, i)
        two = np.zeros((40, 2))
        two[::3, 0], two[::5, 1] = 1.0, 1.0
        values = [
            activity.pairwise_correlation(two, 1.0, window_ms=1.0, n_pairs=1, seed=s)
            for s in range(8)
        ]
    assert any(np.isnan(values)) and not all(np.isnan(values))
    assert activity.population_synchrony(r[:, :1], 1.0) == pytest.approx(1.0)  # N = 1 is valid


def _old_ramp(x, width):
    """The old ramp: np.convolve with a centred box, O(n width)."""
    if width <= 1:
        return x
    pad = np.concatenate([np.full(width, x[0]), x, np.full(width, x[-1])])
    return np.convolve(pad, np.ones(width) / width, mode="same")[width:-width]


def test_schedule_ramp_is_the_old_convolution_to_the_last_bit():
    """_ramp was np.convolve with a box of width samples (O(n width): minutes for a 1e5-step
    ramp on 1e7 steps); now a cumulative sum over the steps' neighbourhoods only. The float32
    levels equal the old ones bit for bit, edges (held values) and even widths included."""
    rng = np.random.default_rng(0)
    for _ in range(60):
        values = rng.random(4)[rng.integers(0, 4, int(rng.integers(1, 9)))]
        per = int(rng.integers(1, 30))
        width = int(rng.integers(0, 3 * per * len(values)))  # wider than an epoch too
        old = _old_ramp(np.repeat(values, per), width).astype(np.float32)
        np.testing.assert_array_equal(ss._ramp(values, per, width), old)
    for hypno, epoch_s, dt, ramp_s in (
        ([0, 1, 2, 2, 0], 0.01, 0.1, 0.004),
        ([2, 1], 0.05, 0.3, 0.05),
    ):
        lv = ss.schedule(hypno, epoch_s, dt, ramp_s=ramp_s)
        per, width = round(epoch_s * 1000 / dt), round(ramp_s * 1000 / dt)
        for field, got in zip(ss.Levels._fields, lv):
            levels = np.array([getattr(ss.STATES[s], field) for s in ss.STAGE_NAMES])[hypno]
            want = _old_ramp(np.repeat(levels, per), width).astype(np.float32)
            np.testing.assert_array_equal(got, want)
    assert ss.schedule([0, 1], np.float32(0.01), 0.1).ach.shape == (200,)  # refused before


def test_valid_edges_still_run():
    """NumPy integers, bool adjacency matrices, bands just below Nyquist, count-0 groups."""
    assert planted.two_state_rate(KEY, 200, 100.0, n_neurons=np.int64(5))[0].shape == (200,)
    assert helmholtz.bars_distribution(np.int64(3))[0].shape == (14, 9)
    th = jnp.linspace(0.0, 1.0, 3)
    r = kuramoto.simulate(th, jnp.zeros(3), 1.0, coupling=np.ones((3, 3), bool), n_steps=2).r
    assert r.shape == (2,)
    v = kuramoto.velocity(th, jnp.zeros(3), np.float32(1.0), [[1, 1, 1]] * 3)  # a list
    np.testing.assert_allclose(v, kuramoto.velocity(th, jnp.zeros(3), 1.0), rtol=1e-6)
    np.testing.assert_allclose(kuramoto.stationary_r(np.array([1.0, 4.0])), [0.0, np.sqrt(0.5)])
    assert rhythms.bandpass(SIGNAL, 100.0, (30.0, 49.0)).shape == SIGNAL.shape
    x, iv = planted.plant_spindles(KEY, 2000, 100.0, freq_hz=(11.0, 49.9))
    assert x.shape == (2000,) and np.abs(x).max() > 0
    # a group without test examples: its accuracy is nan (a mean over none) and has no weight
    A = np.array([[0.8, NAN, 0.4], [0.6, NAN, 0.9]])
    m = scores.metrics(A, np.array([[0, 1], [2, 1]]), np.array([10.0, 0.0, 10.0]))
    np.testing.assert_allclose(m["seen"], [0.8, 0.75])
    assert m["bwt"] == pytest.approx(-0.2)
    assert scores.metrics(np.ones((1, 1)), np.array([[0]]), np.ones(1))["final"] == 1.0
    conv, X, y = _converted()
    assert 0.0 <= convert.spiking_accuracy(conv, X, y.astype(float), 5) <= 1.0  # whole floats
    d = ss.describe(_record(spikes=np.ones((3000, 10))), 1.0, 10)  # n_exc = N, every cell
    assert d["rate_exc_hz"] == 1.0 and d["up_fraction"] == 1.0  # a flat rate: always Up


def test_the_checks_pass_tracers_under_jit_vmap_and_grad():
    """The new checks read only dtypes, static shapes and concrete values."""
    assert float(jax.jit(kuramoto.stationary_r)(3.0, 1.0)) == pytest.approx(np.sqrt(1 / 3))
    assert float(jax.grad(kuramoto.stationary_r)(4.0, 1.0)) == pytest.approx(
        1 / (16 * np.sqrt(0.5))
    )
    jax.jit(lambda K: kuramoto.velocity(jnp.ones(3), jnp.zeros(3), K))(1.0)
    jax.jit(lambda g: kuramoto.lorentzian_frequencies(4, g))(2.0)
    a, b = TRAINS
    d = jax.vmap(lambda tau: sy.van_rossum_distance(a, b, tau))(jnp.array([0.5, 2.0]))
    assert d.shape == (2,)
    assert np.isfinite(float(jax.jit(lambda dt: sy.sttc(a, b, dt, 10.0))(1.0)))
    jax.jit(lambda w, beta: sy.coincidence_response(jnp.ones((5, 3)), w, beta=beta))(0.3, 0.8)
    conv, X, _ = _converted()
    out = jax.jit(lambda c, x: convert.simulate(c, x, 5).output)(conv, X)
    np.testing.assert_allclose(out, convert.simulate(conv, X, 5).output, rtol=1e-6)
    assert np.isfinite(float(jax.jit(helmholtz.exact_kl)(_helmholtz(), *_bars())))
    jax.jit(lambda a: ss.modulation(ss.Levels(ach=a, mono=a)))(jnp.full(4, 0.5))
