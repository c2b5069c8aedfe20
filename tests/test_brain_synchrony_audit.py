"""Audit of the synchrony measures against their definitions: van Rossum against a brute-force
integral and at its cusps, masks, STTC against a brute-force tiling, Golomb–Rinzel chi of
constant traces, and the coincidence-detection inputs and response as their docstrings state.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from nnjax.brain import synchrony as sy


def _filtered(t, spikes, tau):
    """f(t) = sum_i e^{-(t - t_i)/tau} H(t - t_i) on a grid t."""
    out = np.zeros_like(t)
    for s in spikes:
        out += np.where(t >= s, np.exp(-(t - s) / tau), 0.0)
    return out


def _van_rossum_brute(a, b, tau):
    """(1/tau) int (f - g)^2 dt by the midpoint rule on a fine grid, piece by piece between
    the spike times (the integrand jumps at a spike), up to 40 tau past the last spike."""
    breaks = np.unique(np.concatenate([a, b]))
    breaks = np.append(breaks, breaks[-1] + 40.0 * tau)
    total = 0.0
    for lo, hi in zip(breaks[:-1], breaks[1:]):
        h = (hi - lo) / 40000
        t = lo + (np.arange(40000) + 0.5) * h
        total += h * np.sum((_filtered(t, a, tau) - _filtered(t, b, tau)) ** 2)
    return total / tau


def test_van_rossum_matches_brute_force_integral_padded_and_batched():
    with jax.enable_x64(True):
        rng = np.random.default_rng(5)
        for n, m in [(1, 0), (3, 4), (6, 2), (5, 5)]:
            a, b = rng.uniform(0, 10, n), rng.uniform(0, 10, m)  # unsorted
            tau = float(rng.uniform(0.3, 3.0))
            ref = _van_rossum_brute(a, b, tau)
            d2 = sy.van_rossum_distance(a, b, tau, squared=True)
            assert float(d2) == pytest.approx(ref, rel=1e-6)
            # the same trains padded with junk (even inf and nan) behind a mask
            pa = np.concatenate([a, [np.inf, -3.0]])
            pb = np.concatenate([b, [np.nan]])
            mask_a = np.r_[np.ones(n, bool), False, False]
            mask_b = np.r_[np.ones(m, bool), False]
            d2p = sy.van_rossum_distance(pa, pb, tau, mask_a=mask_a, mask_b=mask_b, squared=True)
            assert float(d2p) == pytest.approx(ref, rel=1e-6)
        # a batch (2, n) against one train (m,) equals each row on its own, and vmap
        A = rng.uniform(0, 10, (2, 4))
        B = rng.uniform(0, 10, 3)
        rows = [float(sy.van_rossum_distance(x, B, 1.3)) for x in A]
        np.testing.assert_allclose(sy.van_rossum_distance(A, B, 1.3), rows, rtol=1e-13)
        vm = jax.vmap(lambda x: sy.van_rossum_distance(x, B, 1.3))(jnp.asarray(A))
        np.testing.assert_allclose(vm, rows, rtol=1e-13)


def test_van_rossum_analytic_cases():
    with jax.enable_x64(True):
        one = sy.van_rossum_distance(jnp.array([2.0]), jnp.zeros(0), 0.7, squared=True)
        assert float(one) == 0.5
        assert float(sy.van_rossum_distance(jnp.zeros(0), jnp.zeros(0), 1.0)) == 0.0
        for delta, tau in [(0.3, 1.0), (2.0, 0.5), (1e-6, 1.0)]:
            d2 = sy.van_rossum_distance(
                jnp.array([1.0]), jnp.array([1.0 + delta]), tau, squared=True
            )
            assert float(d2) == pytest.approx(-np.expm1(-delta / tau), rel=1e-9)
        # identical trains in another order give exactly 0 (the closed form left 3e-8 for D)
        a = jnp.array([1.0, 2.0, 3.0])
        assert float(sy.van_rossum_distance(a, a[jnp.array([2, 0, 1])], 1.0)) == 0.0


def test_van_rossum_float32_has_no_cancellation():
    """Finding: the closed form, 1/2 (S_aa + S_bb - 2 S_ab), subtracts sums of size n tau /
    spacing; in float32, these 1000 spikes shifted by 1e-3 (tau = 10) gave D^2 = 0.09765625
    against 0.09911991 (1.5% off). The merged-train sum gives 0.09911991 (3e-9 relative)."""
    rng = np.random.default_rng(0)
    a = np.sort(rng.uniform(0, 1000, 1000)).astype(np.float32)
    b = a + np.float32(1e-3)
    d2 = float(sy.van_rossum_distance(a, b, 10.0, squared=True))
    x, y = a.astype(np.float64), b.astype(np.float64)

    def k(u, v):
        return np.exp(-np.abs(u[:, None] - v[None, :]) / 10.0).sum()

    exact = 0.5 * (k(x, x) + k(y, y) - 2.0 * k(x, y))  # float64 closed form
    assert d2 == pytest.approx(exact, rel=1e-5)


def test_van_rossum_gradient_at_coincident_spikes_is_the_mean_slope():
    """Finding: jnp.abs has slope 1 at 0, so the gradient of D^2 at identical trains (its
    minimum) was 1/tau per spike, not 0, and at one coincident pair the right-hand slope
    (1.117 against the central difference 0.117)."""
    with jax.enable_x64(True):
        a = jnp.array([1.0, 2.5, 4.0])
        g = jax.grad(lambda x: sy.van_rossum_distance(x, a, 1.5, squared=True))(a)
        np.testing.assert_array_equal(g, 0.0)  # was 1/1.5 per spike
        b = jnp.array([1.0, 5.0])

        @jax.jit
        def f(x):
            return sy.van_rossum_distance(x, b, 1.0, squared=True)

        x0, h = jnp.array([1.0, 3.0]), 1e-6
        central = [(f(x0.at[i].add(h)) - f(x0.at[i].add(-h))) / (2 * h) for i in range(2)]
        np.testing.assert_allclose(jax.grad(f)(x0), central, atol=1e-7)
        np.testing.assert_allclose(jax.jacfwd(f)(x0), central, atol=1e-7)
        # away from ties: finite differences, both modes, D and D^2, through jit
        for squared in (False, True):
            fn = jax.jit(lambda x, y, s=squared: sy.van_rossum_distance(x, y, 0.7, squared=s))
            check_grads(fn, (jnp.array([1.0, 2.1, 4.0]), jnp.array([0.5, 2.0, 2.2])), order=1)


def test_masks_must_be_booleans_or_0_1():
    """Finding: a mask entry was used as a weight: mask_a=[2] gave D^2 = 2.0 for one spike
    against none (not 1/2), 0.5 gave 0.125, and sttc with mask_a=[2, 2] read 0.577, not
    0.711. Concrete masks other than 0/1 are refused; a traced one keeps spikes where > 0."""
    one, none = jnp.array([1.0]), jnp.zeros(0)
    for bad in ([2.0], [0.5], [-1.0], [np.nan]):
        with pytest.raises(ValueError, match=r"van_rossum_distance: mask_a must hold booleans"):
            sy.van_rossum_distance(one, none, 1.0, mask_a=jnp.array(bad), squared=True)
    with pytest.raises(ValueError, match=r"sttc: mask_a must hold booleans or 0/1 .*got 2"):
        sy.sttc(jnp.array([1.0, 5.0]), one, 0.5, 10.0, mask_a=np.array([2, 2]))
    f = jax.jit(lambda m: sy.van_rossum_distance(one, none, 1.0, mask_a=m, squared=True))
    assert float(f(jnp.array([2.0]))) == 0.5 and float(f(jnp.array([0.0]))) == 0.0
    g = jax.jit(lambda m: sy.sttc(jnp.array([1.0, 5.0]), one, 0.5, 10.0, mask_a=m))
    assert float(g(jnp.array([2.0, 2.0]))) == pytest.approx(
        float(sy.sttc([1.0, 5.0], one, 0.5, 10.0))
    )
    # 0/1 numbers and bools are the same mask
    ints = sy.van_rossum_distance([1.0, 9.0], [1.5], 1.0, mask_a=np.array([1, 0]))
    bools = sy.van_rossum_distance([1.0, 9.0], [1.5], 1.0, mask_a=np.array([True, False]))
    assert float(ints) == float(bools)


def _tiled(x, dt, duration):
    """Length of the union of [t - dt, t + dt] clipped to [0, duration], by merging."""
    spans = sorted((max(t - dt, 0.0), min(t + dt, duration)) for t in x)
    covered, lo, hi = 0.0, None, None
    for s, e in spans:
        if hi is not None and s <= hi:
            hi = max(hi, e)
            continue
        covered += 0.0 if hi is None else hi - lo
        lo, hi = s, e
    covered += 0.0 if hi is None else hi - lo
    return covered / duration


def _sttc_brute(a, b, dt, duration):
    def prop(x, y):
        return np.mean([any(abs(s - u) <= dt for u in y) for s in x])

    ta, tb, pa, pb = _tiled(a, dt, duration), _tiled(b, dt, duration), prop(a, b), prop(b, a)
    with np.errstate(invalid="ignore", divide="ignore"):  # 0/0 where P T = 1: skipped
        return 0.5 * ((pa - tb) / (1 - pa * tb) + (pb - ta) / (1 - pb * ta))


def test_sttc_matches_brute_force_definition():
    with jax.enable_x64(True):
        rng = np.random.default_rng(1)
        worst = 0.0
        for k in range(60):
            duration = float(rng.uniform(5, 50))
            dt = float(rng.choice([0.1, 0.5, 1.0, 3.0]))
            a = rng.uniform(0, duration, rng.integers(1, 12))
            b = rng.uniform(0, duration, rng.integers(1, 12))
            if k % 3 == 0:  # correlated: b near a
                b = np.clip(np.r_[a + rng.normal(0, dt, a.size), b[:2]], 0, duration)
            ref = _sttc_brute(a, b, dt, duration)
            if not np.isfinite(ref):
                continue
            # padded to 16 behind masks: one compiled shape for every case
            pa, pb = np.zeros(16), np.full(16, -1.0)  # padding may lie outside the record
            pa[: a.size], pb[: b.size] = a, b
            got = sy.sttc(pa, pb, dt, duration, mask_a=np.arange(16) < a.size,
                          mask_b=np.arange(16) < b.size)  # fmt: skip
            worst = max(worst, abs(float(got) - ref))
        assert worst < 1e-12
        a = np.array([1.0, 4.0, 9.5])
        assert float(sy.sttc(a, a[::-1], 0.5, 10.0)) == 1.0  # identical, any order
        # dt longer than the record: T = P = 1 for both, the documented limit 1
        assert float(sy.sttc(a, np.array([2.0]), 20.0, 10.0)) == 1.0
        # an empty train: the documented 0 (undefined in Cutts & Eglen), never nan
        assert float(sy.sttc(np.zeros(0), a, 0.5, 10.0)) == 0.0
        assert float(sy.sttc(np.zeros(0), np.zeros(0), 0.5, 10.0)) == 0.0


def test_golomb_rinzel_chi_of_constant_traces_is_zero_in_float32():
    """Finding: float32 var of a constant trace is not exactly 0 (0.1 repeated 1000 times
    has a mean that is not 0.1), so constant traces gave chi = 1.18 (> 1, impossible),
    0.94 and 0.51 for 0.1, 0.3 and 1000, and 0.145 for three different constants, instead
    of the documented 0."""
    for c in (0.1, 0.3, 1000.0, -65.0):
        assert float(sy.golomb_rinzel_chi(jnp.full((1000, 3), c, jnp.float32))) == 0.0
    t = jnp.tile(jnp.array([[0.1, 0.2, -65.3]], jnp.float32), (777, 1))
    assert float(sy.golomb_rinzel_chi(t)) == 0.0
    # bool and unsigned traces are read as numbers (a uint difference would wrap)
    x = np.array([[0, 1], [1, 0], [0, 1], [1, 1]])
    ref = float(sy.golomb_rinzel_chi(x.astype(np.float32)))
    assert float(sy.golomb_rinzel_chi(x.astype(np.uint8))) == pytest.approx(ref)
    assert float(sy.golomb_rinzel_chi(x.astype(bool))) == pytest.approx(ref)
    # independent traces: chi ~ 1/sqrt(N)
    for n in (16, 64, 256):
        chi = float(sy.golomb_rinzel_chi(jax.random.normal(jax.random.key(n), (4000, n))))
        assert chi == pytest.approx(1 / np.sqrt(n), rel=0.05)


def test_coincidence_inputs_round_the_spike_time():
    """Finding: the time was cast with astype, so a fractional volley time was truncated:
    volleys at 10.6 and 30.4 fired at steps 10 and 30 (not 11 and 30), and jittered spikes
    around 100.5 averaged 99.99."""
    r = sy.coincidence_inputs(jax.random.key(0), 5, 50, jnp.array([10.6, 30.4]), 0.0)
    np.testing.assert_array_equal(np.flatnonzero(np.asarray(r).sum(1)), [11, 30])
    np.testing.assert_array_equal(np.asarray(r).sum(0), 2.0)  # once per volley and input
    r = sy.coincidence_inputs(jax.random.key(0), 20000, 200, jnp.array([100.5]), 3.0)
    t = np.argmax(np.asarray(r), axis=0)
    assert t.mean() == pytest.approx(100.5, abs=0.1)
    assert t.std() == pytest.approx(np.sqrt(9.0 + 1.0 / 12.0), rel=0.03)  # rounded normal


def _lif_count(raster, weight, beta, theta):
    """The docstring's neuron, step by step: u = beta v + I, spike iff u >= theta, v = 0."""
    v, count = 0.0, 0
    for current in weight * np.asarray(raster, np.float64).sum(1):
        u = beta * v + current
        count, v = (count + 1, 0.0) if u >= theta else (count, u)
    return count


def test_coincidence_response_is_the_stated_lif_and_names_itself():
    rng = np.random.default_rng(0)
    for _ in range(5):
        raster = (rng.random((300, 10)) < 0.05).astype(np.float64)
        w, beta = float(rng.uniform(0.1, 0.5)), float(rng.uniform(0.5, 0.99))
        out = float(sy.coincidence_response(raster, w, beta=beta))
        assert out == _lif_count(raster, w, beta, 1.0)
    assert float(sy.coincidence_response(np.ones((1, 1)), 1.0)) == 1.0  # u = theta fires
    # Finding: these were refused by lif, under its own name ("lif: beta ...")
    for kw, name in [({"beta": 0.0}, "beta"), ({"beta": 1.5}, "beta"), ({"theta": 0.0}, "theta")]:
        with pytest.raises(ValueError, match=f"coincidence_response: {name} must be"):
            sy.coincidence_response(np.ones((5, 2)), 1.0, **kw)
