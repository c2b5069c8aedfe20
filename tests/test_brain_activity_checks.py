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
