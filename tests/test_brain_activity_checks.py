"""Argument checks of nnjax.brain.activity: bin_ms and window_ms, NumPy scalars, nan rasters."""

import jax.numpy as jnp
import numpy as np
import pytest

from nnjax.brain import activity as ac


def _raster():
    r = np.zeros((40, 3))
    r[::4, 0] = 1.0  # a clock: one spike every 4 ms
    r[::4, 1] = 1.0  # the same clock
    r[[0, 2, 6, 8, 12, 14], 2] = 1.0  # ISIs 2, 4, 2, 4, 2 ms
    return r


@pytest.mark.parametrize("fn", [ac.pairwise_correlation, ac.population_synchrony])
@pytest.mark.parametrize("bad", [0, 0.0, -1.0, np.nan, np.inf, None, True, np.float32(-2.0)])
def test_bin_ms_checked_up_front(fn, bad):
    """Review: 0 gave ZeroDivisionError, -1 a misleading 'multiple of bin_ms', nan a
    'cannot convert float NaN to integer'."""
    with pytest.raises(ValueError, match=f"{fn.__name__}: bin_ms must be a finite number > 0"):
        fn(_raster(), bad)


@pytest.mark.parametrize("fn", [ac.pairwise_correlation, ac.population_synchrony])
@pytest.mark.parametrize("bad", [0.0, -5.0, np.nan, np.inf, None])
def test_window_ms_checked(fn, bad):
    with pytest.raises(ValueError, match=f"{fn.__name__}: window_ms must be a finite number > 0"):
        fn(_raster(), 1.0, window_ms=bad)


def test_numpy_and_0d_bin_ms_accepted():
    """Review: isi_cv(bin_ms=np.float32(1.0)) was refused."""
    r = _raster()
    isi = np.array([2.0, 4.0, 2.0, 4.0, 2.0])
    expected = [0.0, 0.0, isi.std() / isi.mean()]
    for b in (1.0, np.float32(1.0), np.float64(1.0), jnp.array(1.0), np.int64(1)):
        np.testing.assert_allclose(ac.isi_cv(r, b, min_spikes=5), expected, atol=1e-15)
        t, i = ac.raster_points(r, b)
        assert t[i == 2].tolist() == [0.5, 2.5, 6.5, 8.5, 12.5, 14.5]
    # neurons 0 and 1 fire identically (counts 1, 0, 1, 0, ... in 2-bin windows): chi = 1
    # and correlation 1 over those two
    assert ac.population_synchrony(r[:, :2], np.float32(1.0), window_ms=2.0) == 1.0
    assert ac.pairwise_correlation(r[:, :2], np.float32(0.5), window_ms=1.0) == 1.0


def test_nan_raster_gives_nan():
    r = _raster()
    r[5, 1] = np.nan
    assert np.isnan(ac.population_synchrony(r, 1.0, window_ms=4.0))
    assert np.isnan(ac.pairwise_correlation(r, 1.0, window_ms=4.0))
    cv = ac.isi_cv(r, 1.0)
    assert np.isnan(cv[1]) and cv[0] == 0.0


def test_isi_cv_clock_poisson_and_min_spikes_floor():
    rng = np.random.default_rng(3)
    r = np.zeros((200_000, 2))
    r[::25, 0] = 1.0  # 40 Hz clock at 1 ms bins
    r[:, 1] = rng.random(200_000) < 0.01  # Bernoulli per bin: geometric ISIs, CV sqrt(1 - p)
    cv = ac.isi_cv(r, 1.0)
    assert cv[0] == pytest.approx(0.0, abs=1e-12)
    assert cv[1] == pytest.approx(np.sqrt(1 - 0.01), abs=0.05)  # ~2000 intervals
    # min_spikes below 3 is floored at 3 (docstring): one interval has no spread
    two, three = np.zeros((20, 1)), np.zeros((20, 1))
    two[[2, 7]] = 1.0
    three[[2, 7, 13]] = 1.0
    for m in (0, 1, 2, 3):
        assert np.isnan(ac.isi_cv(two, 1.0, min_spikes=m)[0])
        isi = np.array([5.0, 6.0])
        assert ac.isi_cv(three, 1.0, min_spikes=m)[0] == pytest.approx(isi.std() / isi.mean())
    assert np.isnan(ac.isi_cv(three, 1.0, min_spikes=4)[0])


def test_correlation_and_synchrony_identical_independent_silent():
    rng = np.random.default_rng(4)
    x = (rng.random((20_000, 1)) < 0.05).astype(float)
    ind = (rng.random((20_000, 64)) < 0.05).astype(float)
    r = np.hstack([x, x, ind[:, :2], np.zeros((20_000, 1))])
    assert ac.pairwise_correlation(r[:, :2], 1.0) == pytest.approx(1.0, abs=1e-12)
    assert abs(ac.pairwise_correlation(r[:, 2:4], 1.0)) < 0.03  # 4000 windows: sd ~ 0.016
    # the silent neuron has no correlation: it is left out, not counted as 0
    assert ac.pairwise_correlation(r[:, [0, 1, 4]], 1.0) == pytest.approx(1.0, abs=1e-12)
    assert np.isnan(ac.pairwise_correlation(r[:, [0, 4]], 1.0))
    assert ac.population_synchrony(ind, 1.0) == pytest.approx(1 / 8, rel=0.05)
    assert ac.population_synchrony(r[:, :2], 1.0) == pytest.approx(1.0, abs=1e-6)
    assert ac.population_synchrony(np.zeros((100, 3)), 1.0) == 0.0


@pytest.mark.parametrize(
    "bin_ms, window_ms, message",
    [
        (1.0, 0.5, r"window_ms=0.5 must be a multiple of bin_ms=1.0"),  # shorter than a bin
        (1.0, 2.5, r"window_ms=2.5 must be a multiple of bin_ms=1.0"),
        (
            1.0,
            30.0,
            r"the raster holds fewer than 2 windows of 30.0 ms",
        ),  # longer than half the recording
    ],
)
def test_window_edges(bin_ms, window_ms, message):
    for fn in (ac.pairwise_correlation, ac.population_synchrony):
        with pytest.raises(ValueError, match=f"{fn.__name__}: {message}"):
            fn(_raster(), bin_ms, window_ms=window_ms)
    # a window that is a multiple of a bin that is not exactly representable is accepted
    r = np.repeat(_raster(), 10, axis=0)  # 400 bins of 0.1 ms
    assert ac.population_synchrony(r, 0.1, window_ms=0.3) >= 0.0
