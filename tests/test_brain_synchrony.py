"""Synchrony measures against closed forms and brute force; coincidence detection."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from nnjax.brain import synchrony as sy


def test_van_rossum_one_spike_against_empty_train():
    with jax.enable_x64(True):
        for tau in (0.5, 2.0, 10.0):
            d2 = sy.van_rossum_distance(
                jnp.array([3.7]), jnp.array([0.0]), tau, mask_b=jnp.array([False]), squared=True
            )
            assert float(d2) == 0.5  # D^2 = 1/2 under the 1/tau normalisation
            d = sy.van_rossum_distance(jnp.array([3.7]), jnp.zeros(0), tau)
            assert float(d) == np.sqrt(0.5)


def test_van_rossum_two_single_spikes():
    with jax.enable_x64(True):
        for delta, tau in [(0.0, 1.0), (0.3, 1.0), (1.0, 2.0), (5.0, 0.7)]:
            d2 = sy.van_rossum_distance(
                jnp.array([1.0]), jnp.array([1.0 + delta]), tau, squared=True
            )
            assert float(d2) == pytest.approx(1.0 - np.exp(-delta / tau), rel=1e-15, abs=1e-15)


def test_van_rossum_matches_numerical_integral_and_ignores_padding():
    with jax.enable_x64(True):
        a, b, tau = np.array([1.0, 2.5, 4.0]), np.array([1.2, 3.9]), 0.8

        def filt(t, ts):
            return sum(np.where(t >= s, np.exp(-(t - s) / tau), 0.0) for s in ts)

        # the integrand is smooth between consecutive spike times: Gauss–Legendre per piece
        nodes, weights = np.polynomial.legendre.leggauss(40)
        breaks = np.sort(np.concatenate([a, b, [6.0, 12.0, 24.0, 48.0]]))
        ref = 0.0
        for lo, hi in zip(breaks[:-1], breaks[1:]):
            t = (hi - lo) / 2 * nodes + (hi + lo) / 2
            ref += (hi - lo) / 2 * np.sum(weights * (filt(t, a) - filt(t, b)) ** 2)
        ref /= tau
        d2 = sy.van_rossum_distance(jnp.array(a), jnp.array(b), tau, squared=True)
        assert float(d2) == pytest.approx(ref, rel=1e-9)
        padded = sy.van_rossum_distance(
            jnp.array([1.0, 2.5, 4.0, 99.0]),
            jnp.array([1.2, 3.9, -5.0]),
            tau,
            mask_a=jnp.array([1, 1, 1, 0], bool),
            mask_b=jnp.array([1, 1, 0], bool),
            squared=True,
        )
        assert float(padded) == pytest.approx(float(d2), rel=1e-14)


def test_van_rossum_gradient_under_jit_matches_finite_differences():
    with jax.enable_x64(True):
        b = jnp.array([1.2, 3.9, 6.0])
        f = jax.jit(lambda a: sy.van_rossum_distance(a, b, 1.5))
        check_grads(f, (jnp.array([1.0, 2.5, 4.4]),), order=1, modes=("rev", "fwd"))
        # vmap over a batch of trains
        batch = jnp.array([[1.0, 2.5, 4.4], [1.2, 3.9, 6.0]])
        d = jax.vmap(f)(batch)
        assert float(d[1]) == pytest.approx(0.0, abs=1e-7)


def _sttc_brute(a, b, dt, duration):
    def tiled(x):  # merge the windows [t - dt, t + dt] one by one, in plain Python
        covered, end = 0.0, -np.inf
        for t in sorted(x):
            lo, hi = max(t - dt, 0.0, end), min(t + dt, duration)
            covered += max(hi - lo, 0.0)
            end = max(end, hi)
        return covered / duration

    def prop(x, y):
        return np.mean(np.any(np.abs(x[:, None] - y[None, :]) <= dt, axis=1))

    ta, tb, pa, pb = tiled(a), tiled(b), prop(a, b), prop(b, a)
    return 0.5 * ((pa - tb) / (1 - pa * tb) + (pb - ta) / (1 - pb * ta))


def test_sttc_against_brute_force_and_limits():
    with jax.enable_x64(True):
        rng = np.random.default_rng(0)
        a = np.sort(rng.uniform(0, 100, 25))
        b = np.sort(np.concatenate([a[:12] + rng.normal(0, 0.3, 12), rng.uniform(0, 100, 8)]))
        b = np.clip(b, 0, 100)
        for dt in (0.5, 2.0):
            val = sy.sttc(jnp.array(a), jnp.array(b), dt, 100.0)
            assert float(val) == pytest.approx(_sttc_brute(a, b, dt, 100.0), abs=1e-12)
        assert float(sy.sttc(jnp.array(a), jnp.array(a), 1.0, 100.0)) == pytest.approx(1.0)
        far = sy.sttc(jnp.array([10.0, 30.0]), jnp.array([20.0, 40.0]), 1.0, 50.0)
        assert float(far) < 0
        empty = sy.sttc(jnp.array([1.0]), jnp.array([2.0]), 1.0, 10.0, mask_b=jnp.array([False]))
        assert float(empty) == 0.0
        g = jax.jit(jax.grad(lambda x: sy.sttc(x, jnp.array(b), 2.0, 100.0)))(jnp.array(a))
        assert np.all(np.isfinite(g))


def test_golomb_rinzel_chi():
    x = jax.random.normal(jax.random.key(0), (2000, 100))
    assert float(sy.golomb_rinzel_chi(x)) == pytest.approx(0.1, abs=0.03)  # ~ 1/sqrt(N)
    same = jnp.tile(x[:, :1], (1, 50))
    assert float(sy.golomb_rinzel_chi(same)) == pytest.approx(1.0, rel=1e-5)
    assert float(sy.golomb_rinzel_chi(jnp.ones((10, 3)))) == 0.0
    with pytest.raises(ValueError, match="traces"):
        sy.golomb_rinzel_chi(jnp.ones(5))


def test_coincidence_detection_synchronous_beats_spread_input():
    volleys = jnp.arange(20, 400, 40)

    @jax.jit
    @jax.vmap
    def run(jitter):
        raster = sy.coincidence_inputs(jax.random.key(3), 20, 400, volleys, jitter)
        return raster.sum(), sy.coincidence_response(raster, 1.0 / 15.0, beta=0.8)

    n_in, out = run(jnp.array([0.0, 1.0, 4.0, 8.0]))
    np.testing.assert_array_equal(n_in, 200.0)  # same spikes, only their timing differs
    counts = [int(c) for c in out]
    assert counts[0] == len(volleys)  # every synchronous volley crosses threshold
    assert counts[-1] < counts[0] and counts[2] < counts[0]
    assert counts == sorted(counts, reverse=True)


def test_synchrony_errors():
    with pytest.raises(ValueError, match="tau"):
        sy.van_rossum_distance(jnp.ones(2), jnp.ones(2), 0.0)
    with pytest.raises(ValueError, match="mask"):
        sy.van_rossum_distance(jnp.ones(2), jnp.ones(2), 1.0, mask_a=jnp.ones(3, bool))
    with pytest.raises(ValueError, match="duration"):
        sy.sttc(jnp.ones(2), jnp.ones(2), 1.0, 0.0)


def test_sttc_identical_trains_covering_the_record_is_one():
    """Issue 17: with windows of +-dt covering all of [0, duration], T_A = T_B = 1 and
    P_A = P_B = 1, each term 0/0. Cutts & Eglen's definition takes the limit: for P = 1 and
    any T < 1 the term (P - T) / (1 - P T) is exactly 1, so STTC = +1 (it returned 0)."""
    with jax.enable_x64(True):
        a = jnp.array([1.0, 3.0, 5.0, 7.0, 9.0])
        # dt = 1 on [0, 10]: the windows [t - 1, t + 1] tile the whole record
        assert float(sy.sttc(a, a, 1.0, 10.0)) == 1.0
        assert float(sy.sttc(a, a, 5.0, 10.0)) == 1.0
        # the limit is continuous: shrink the windows a little and the value stays 1
        assert float(sy.sttc(a, a, 0.999, 10.0)) == pytest.approx(1.0, abs=1e-12)
        # only A covers the record: B = [5] has P_B = 1, T_A = 1 (the 0/0 term, 1), while
        # P_A = 1/5 = T_B gives the other term 0: STTC = (0 + 1) / 2
        b = jnp.array([5.0])
        assert float(sy.sttc(a, b, 1.0, 10.0)) == pytest.approx(0.5, abs=1e-12)


def test_van_rossum_gradient_finite_for_identical_trains():
    """Issue 17: d sqrt(D^2) / da was inf * 0 = nan at D = 0. The safe sqrt gives the
    subgradient 0 there, and the usual 1 / (2D) d(D^2) elsewhere (finite differences)."""
    with jax.enable_x64(True):
        a = jnp.array([1.0, 2.5, 4.0])
        grad = jax.grad(lambda x: sy.van_rossum_distance(x, a, 1.5))
        for fn in (grad, jax.jit(grad)):
            np.testing.assert_array_equal(fn(a), 0.0)
        g_b = jax.grad(lambda y: sy.van_rossum_distance(a, y, 1.5))(a)
        np.testing.assert_array_equal(g_b, 0.0)
        # away from D = 0 the gradient is unchanged and matches finite differences
        check_grads(lambda x: sy.van_rossum_distance(x, a, 1.5), (a + 0.3,), order=1)


def test_van_rossum_nan_or_inf_spike_times_refused_or_nan():
    """Review: a nan spike time gave D = 0 (the safe sqrt sent nan to 0), [inf] vs [inf] too.
    Concrete non-finite kept spike times are refused; under jit they give nan."""
    nan, inf = jnp.nan, jnp.inf
    for a, b in [([nan], [0.5]), ([0.1, nan], [0.12, 0.31]), ([inf], [inf]), ([0.1], [-inf])]:
        with pytest.raises(ValueError, match="van_rossum_distance: [ab] must hold finite spike"):
            sy.van_rossum_distance(jnp.array(a), jnp.array(b), 0.01)
        for squared in (False, True):
            f = jax.jit(lambda x, y, s=squared: sy.van_rossum_distance(x, y, 0.01, squared=s))
            assert np.isnan(float(f(jnp.array(a), jnp.array(b))))
    # masked-out padding may be non-finite: it changes neither D nor its gradient
    with jax.enable_x64(True):
        a, m = jnp.array([1.0, inf, nan]), jnp.array([True, False, False])
        d2 = sy.van_rossum_distance(a, jnp.array([1.3]), 2.0, mask_a=m, squared=True)
        assert float(d2) == pytest.approx(1.0 - np.exp(-0.3 / 2.0), rel=1e-14)
        g = jax.grad(lambda x: sy.van_rossum_distance(x, jnp.array([1.3]), 2.0, mask_a=m))(a)
        # D = sqrt(1 - e^{-(1.3 - a)/tau}): dD/da = -e^{-0.3/tau} / (2 tau D)
        d = np.sqrt(1.0 - np.exp(-0.15))
        np.testing.assert_allclose(g, [-np.exp(-0.15) / (4.0 * d), 0.0, 0.0], rtol=1e-12)


def test_van_rossum_tau_checked_for_numpy_and_jax_scalars():
    one, two = jnp.array([1.0]), jnp.array([1.5])
    for tau in (np.float32(-1.0), jnp.array(-1.0), np.float64(0.0), np.inf, np.nan, None):
        with pytest.raises(ValueError, match="van_rossum_distance: tau must be a finite number"):
            sy.van_rossum_distance(one, two, tau)
    with jax.enable_x64(True):
        a, b = jnp.array([1.0]), jnp.array([1.5])  # float64 here
        d2 = sy.van_rossum_distance(a, b, np.float32(2.0), squared=True)
        assert float(d2) == pytest.approx(1.0 - np.exp(-0.25), rel=1e-12)
    # a traced tau cannot be refused: <= 0 or nan gives nan, not a number
    f = jax.jit(lambda t: sy.van_rossum_distance(one, two, t))
    assert np.isnan(float(f(-1.0))) and np.isnan(float(f(jnp.nan)))


def test_sttc_refuses_spikes_outside_record_and_non_finite_dt_duration():
    """Review: a spike at 5.0 (or -3.0) on [0, 1] gave STTC = 1; duration = inf gave 0.417,
    dt = inf 1.0, and a 0-d array dt = -1 slipped past the check (0.0)."""
    a = jnp.array([0.5])
    for bad in ([5.0], [-3.0], [jnp.nan], [jnp.inf]):
        with pytest.raises(ValueError, match=r"sttc: a must hold finite spike times in \[0, "):
            sy.sttc(jnp.array(bad), a, 0.01, 1.0)
        with pytest.raises(ValueError, match="sttc: b must hold"):
            sy.sttc(a, jnp.array(bad), 0.01, 1.0)
        # under jit: nan, not a plausible coefficient
        assert np.isnan(float(jax.jit(sy.sttc)(jnp.array(bad), a, 0.01, 1.0)))
    for dt in (np.inf, jnp.array(-1.0), np.float32(0.0), np.nan, None):
        with pytest.raises(ValueError, match="sttc: dt must be a finite number > 0"):
            sy.sttc(a, a, dt, 1.0)
    for duration in (np.inf, np.float32(-1.0), jnp.array(0.0)):
        with pytest.raises(ValueError, match="sttc: duration must be a finite number > 0"):
            sy.sttc(a, a, 0.01, duration)
    g = jax.jit(sy.sttc)
    assert np.isnan(float(g(a, a, 0.01, jnp.inf))) and np.isnan(float(g(a, a, jnp.nan, 1.0)))
    # a masked-out spike may lie anywhere; identical kept trains give exactly 1
    two = jnp.array([0.5, 7.0])
    assert float(sy.sttc(two, a, 0.01, 1.0, mask_a=jnp.array([True, False]))) == 1.0
    assert float(sy.sttc(jnp.array([0.0, 1.0]), jnp.array([0.0, 1.0]), 0.1, 1.0)) == 1.0


def test_golomb_rinzel_chi_nan_inf_and_empty_traces():
    """Review: a nan or inf in the traces gave chi = 0, and empty T or N gave 0."""
    for bad in (jnp.nan, jnp.inf):
        x = jnp.ones((10, 3)).at[0, 0].set(bad)
        assert np.isnan(float(sy.golomb_rinzel_chi(x)))
        assert np.isnan(float(jax.jit(sy.golomb_rinzel_chi)(x)))
    for shape in ((0, 3), (10, 0)):
        with pytest.raises(ValueError, match=r"golomb_rinzel_chi: traces must be \(T, N\) with"):
            sy.golomb_rinzel_chi(jnp.ones(shape))
    # two opposite square waves: the mean is constant, chi = 0; identical ones give 1
    s = jnp.array([1.0, -1.0, 1.0, -1.0])
    assert float(sy.golomb_rinzel_chi(jnp.stack([s, -s], 1))) == 0.0
    assert float(sy.golomb_rinzel_chi(jnp.stack([s, s], 1))) == 1.0


def test_coincidence_response_nan_input_gives_nan():
    """Review: a nan raster gave a count of 0. It gives nan (also under jit and vmap)."""
    ones = jnp.ones((5, 2))  # I = 2 > theta every step, reset to 0: one spike per step
    assert float(sy.coincidence_response(ones, 1.0)) == 5.0
    for raster, w in [(ones.at[2, 1].set(jnp.nan), 1.0), (ones.at[0, 0].set(jnp.inf), 1.0)]:
        assert np.isnan(float(sy.coincidence_response(raster, w)))
    assert np.isnan(float(sy.coincidence_response(ones, jnp.nan)))
    batch = jnp.stack([ones, ones.at[4, 0].set(jnp.nan)])
    out = jax.jit(jax.vmap(lambda r: sy.coincidence_response(r, 1.0)))(batch)
    assert float(out[0]) == 5.0 and np.isnan(float(out[1]))
