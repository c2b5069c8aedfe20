"""Public docstrings of nnjax.brain held to what the code does: shapes, formulas, stated
errors. Each defect test failed on the code before its fix; the rest pin stated numbers that no
other test checked (Butterworth gains, maximal event matching, Euler spike-count tables)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment
from scipy.signal import butter, sosfreqz
from scipy.signal import sosfiltfilt as scipy_sosfiltfilt

from nnjax.brain import adex, detect, filters, izhikevich, rhythms, scores, sleep, spiking, tasks

# ----------------------------------------------------------------- defects (fixed here)


def test_split_docstring_states_the_image_shape_each_dataset_returns():
    """SplitData said image_shape (40,) for MNIST-1D; load_split returns (2, 40) (ON/OFF)."""
    for name in ("digits", "mnist1d"):
        split = tasks.load_split(name)
        assert int(np.prod(split.image_shape)) == split.X_tasks.shape[-1]
        assert f"``{split.image_shape}`` {'digits' if name == 'digits' else 'MNIST-1D'}" in (
            tasks.SplitData.__doc__
        )


@pytest.mark.parametrize("kind", ["lowpass3", "bandpass2"])
def test_sosfiltfilt_padding_is_the_documented_scipy_length(kind):
    """p = 3 (2 n_sections + 1 - z): the docstring said 3 (2 n + 1) minus z (14, not 12, for
    an odd-order low-pass). A signal of p samples is refused, p + 1 matches SciPy."""
    if kind == "lowpass3":
        sos = butter(3, 10, fs=100, output="sos")  # a first-order section: b2 = a2 = 0
    else:
        sos = butter(2, (5, 15), btype="bandpass", fs=100, output="sos")
    z = min(int((sos[:, 2] == 0).sum()), int((sos[:, 5] == 0).sum()))
    p = 3 * (2 * len(sos) + 1 - z)
    assert "p = 3 (2 n_sections + 1 - z)" in " ".join(filters.sosfiltfilt.__doc__.split())
    with pytest.raises(ValueError, match=f"needs more than {p} "):
        filters.sosfiltfilt(sos, np.zeros(p))
    x = np.random.default_rng(0).normal(size=p + 1)
    got = np.asarray(filters.sosfiltfilt(sos, jnp.asarray(x, jnp.float32)), np.float64)
    np.testing.assert_allclose(got, scipy_sosfiltfilt(sos, x), atol=2e-5)


@pytest.mark.parametrize(
    "call, who",
    [
        (lambda v: filters.moving_rms(v, 100.0, 0.1), "moving_rms"),
        (lambda v: filters.moving_average(v, 100.0, 0.1), "moving_average"),
        (lambda v: rhythms.welch(v, 100.0, nperseg=4), "welch"),
        (lambda v: detect.detect_updown(v, 100.0), "detect_updown"),
        (lambda v: detect.detect_spindles(v, 100.0), "detect_spindles"),
    ],
)
@pytest.mark.parametrize("bad", ["x", [1.0, "a"], [[1.0, 2.0], [3.0]]])
def test_signal_functions_refuse_non_numbers_naming_themselves(call, who, bad):
    """A string signal failed deep in JAX ("Value 'x' with dtype <U1 is not a valid JAX
    array type"); now one ValueError naming the function and x."""
    with pytest.raises(ValueError, match=f"^{who}: x must be real numbers"):
        call(bad)


def test_scores_refuse_none_instead_of_summarising_nan():
    """summary(None) returned n = 1 and nan statistics with no error (np.asarray(None,
    float64) is nan); None and lists holding None are refused, bfloat16 still counts."""
    for bad in (None, [0.5, None]):
        with pytest.raises(ValueError, match="^summary: x must hold numbers"):
            scores.summary(bad)
        with pytest.raises(ValueError, match="^paired: a must hold numbers"):
            scores.paired(bad, [0.1, 0.2])
    s = scores.summary(jnp.array([0.25, 0.75], jnp.bfloat16))
    assert s["mean"] == 0.5 and s["n"] == 2


@pytest.mark.parametrize("bad", [None, [0.2, 0.3], True, "0.1", float("nan")])
def test_latency_threshold_must_be_one_finite_number(bad):
    """None or a list failed in JAX's comparison (TypeError), True ran as 1 (every input
    silent): each is a ValueError naming the function and threshold."""
    x = np.array([0.5, 0.9])
    with pytest.raises(ValueError, match="^latency_encode: threshold must be"):
        spiking.latency_encode(x, 5, threshold=bad)
    with pytest.raises(ValueError, match="^LatencyEncoder: threshold must be"):
        spiking.LatencyEncoder(5, threshold=bad)


def test_latency_threshold_numbers_and_tracers_still_work():
    x = jnp.array([0.5, 0.9])
    for t in (0.6, np.float32(0.6), jnp.array(0.6)):
        np.testing.assert_array_equal(spiking.latency_encode(x, 5, threshold=t).sum(0), [0, 1])
    traced = jax.jit(lambda t: spiking.latency_encode(x, 5, threshold=t))(0.6)
    # t = round((1 - x) (T - 1)): x = 0.9 fires at step 0, x = 0.5 (below 0.6) never
    np.testing.assert_array_equal(traced[:, 1], [1, 0, 0, 0, 0])
    assert float(traced[:, 0].sum()) == 0.0


def test_downscale_refuses_a_bool_factor_and_stdp_gate_a_missing_scale():
    """downscale(W, True) scaled by 1 silently (homeostasis.downscaled refuses bools);
    stdp_gate(w, None) failed with a bare TypeError in the division."""
    W = [np.ones((2, 2))]
    for bad in (True, np.bool_(True), [True]):
        with pytest.raises(ValueError, match="^downscale: factor 0 must be a number"):
            sleep.downscale(W, bad)
    np.testing.assert_array_equal(sleep.downscale(W, 0.5)[0], 0.5 * W[0])
    with pytest.raises(ValueError, match="^stdp_gate: scale must be a finite number > 0"):
        sleep.stdp_gate(np.zeros(2), None)
    # the gate itself: 2 (1 - logistic(w / s)), 1 at w = 0
    w = np.array([-0.01, 0.0, 0.002])
    np.testing.assert_allclose(
        sleep.stdp_gate(w, 0.001), 2.0 / (1.0 + np.exp(w / 0.001)), rtol=1e-6
    )


# ----------------------------------------------------------------- stated numbers (sound)


@pytest.mark.parametrize(
    "fs, band", [(100.0, (0.5, 4.0)), (250.0, (30.0, 100.0)), (100.0, (10.0, 45.0))]
)
def test_bandpass_gain_is_one_half_at_the_cutoffs_and_one_at_the_centre(fs, band):
    """bandpass: zero-phase gain |H(f)|^2, 1/2 at the cut-offs, 1 at sqrt(low high)
    (maximally flat: within 1e-4 there; exact at the bilinear-warped centre)."""
    sos = filters.butter_bandpass(fs, band, 4)
    lo, hi = band
    _, h = sosfreqz(sos, worN=[lo, hi, np.sqrt(lo * hi)], fs=fs)
    g = np.abs(h) ** 2
    np.testing.assert_allclose(g[:2], 0.5, atol=1e-12)
    assert abs(g[2] - 1.0) < 1e-4


def test_match_events_finds_the_largest_matching():
    """match_events' greedy pass (true events by end, earliest-ending overlapping
    detection) reaches the maximum matching, checked against the Hungarian algorithm."""
    rng = np.random.default_rng(0)
    for _ in range(300):
        k, m = rng.integers(1, 7, 2)
        d = np.sort(rng.uniform(0, 10, (k, 2)), axis=1)
        t = np.sort(rng.uniform(0, 10, (m, 2)), axis=1)
        overlap = (d[:, None, 0] < t[None, :, 1]) & (t[None, :, 0] < d[:, None, 1])
        r, c = linear_sum_assignment(-overlap.astype(float))
        best = int(overlap[r, c].sum())
        precision, recall = detect.match_events(d, t)
        assert round(precision * k) == best and round(recall * m) == best


def test_izhikevich_and_adex_euler_tables_of_their_docstrings():
    """Spike counts in 1 s the module docstrings quote: Izhikevich RS at I = 10, 23 at
    0.1 ms, 22 at 1-2 ms, 99 at 5 ms; AdEx tonic (Naud et al.) 100 at 0.1 ms, 83 at 1 ms,
    50 at 5 ms."""
    for dt, want in ((0.1, 23), (1.0, 22), (2.0, 22), (5.0, 99)):
        n = int(round(1000 / dt))
        assert int(izhikevich.simulate(jnp.full((n,), 10.0), dt=dt).spike.sum()) == want
    p, current = adex.NAUD_2008["tonic"]
    for dt, want in ((0.1, 100), (1.0, 83), (5.0, 50)):
        n = int(round(1000 / dt))
        assert int(adex.simulate(jnp.full((n,), current), p, dt=dt).spike.sum()) == want
