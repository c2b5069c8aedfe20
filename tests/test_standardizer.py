"""The standardiser's statistics: a constant feature is only centred, however its float32
sums round (a std of rounding noise would blow a new value up by 1e4 to 1e5)."""

import numpy as np
import pytest

from nnjax.standardizer import Standardizer


@pytest.mark.parametrize("value", [0.1, 3.3, 123.456, 1e6 + 0.1])
@pytest.mark.parametrize("n", [3, 10, 1000])
def test_a_constant_float32_column_is_only_centred(value, n):
    """Review: 1000 copies of 0.1 (float32) had mean 0.10000002 and std 1.5e-8, so 0.101 at
    prediction time became 67108."""
    X = np.stack([np.full(n, value, np.float32), np.arange(n, dtype=np.float32)], axis=1)
    s = Standardizer.fit(X)
    assert s.mean.dtype == s.std.dtype == np.float32
    assert s.std[0] == 1.0 and s.mean[0] == np.float32(value)
    np.testing.assert_array_equal(s.transform(X)[:, 0], 0.0)
    new = np.array([[value * 1.01, 0.0]], np.float32)
    np.testing.assert_allclose(s.transform(new)[0, 0], np.float32(value) * 0.01, rtol=1e-3)
    assert s.std[1] == pytest.approx(np.arange(n).std(), rel=1e-5)


def test_constant_integer_and_float64_columns_keep_their_dtypes():
    for X in (np.array([[1, 2], [1, 3]]), np.array([[0.1, 2.0], [0.1, 3.0]])):
        s = Standardizer.fit(X)
        assert s.mean.dtype == s.std.dtype == np.float64
        np.testing.assert_array_equal(s.std, [1.0, 0.5])
        np.testing.assert_array_equal(s.mean, [X[0, 0], 2.5])
