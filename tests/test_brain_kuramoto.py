"""Kuramoto model: the Lorentzian self-consistency r = sqrt(1 - 2 gamma / K) and locking.

Convention: dtheta_i/dt = omega_i + (K/N) sum_j sin(theta_j - theta_i); with N = 2 the phase
difference obeys dphi/dt = delta_omega - K sin(phi), so the pair locks iff |delta_omega| <= K.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nnjax.brain import kuramoto as ku


def test_stationary_r_matches_lorentzian_theory():
    with jax.enable_x64(True):
        n = 10_000
        omega = ku.lorentzian_frequencies(n, gamma=1.0)
        Ks = jnp.array([1.0, 3.0, 4.0, 8.0])[:, None]  # one network per K, vectorised
        # t = 40 from phase-locked start; r averaged over t in [20, 40]. The run (not its
        # compile) dominates, so this one program is compiled at XLA's optimisation level 2
        # (the suite's is 0): 7.5 s became 5.5 s, r the same to 1e-15.
        run = jax.jit(
            lambda: ku.simulate(jnp.zeros((4, n)), omega, Ks, dt=0.2, n_steps=200, record_every=5),
            compiler_options={"xla_backend_optimization_level": 2},
        )
        res = run()
        r = np.asarray(res.r[res.r.shape[0] // 2 :]).mean(axis=0)
        theory = np.asarray(ku.stationary_r(Ks[:, 0], gamma=1.0))
        np.testing.assert_allclose(r[1:], theory[1:], atol=0.01)
        assert r[0] < 0.02  # below K_c = 2 gamma = 2: incoherent, r = O(1/sqrt(N))


@pytest.mark.parametrize("ratio", [0.0, 0.5, 0.95, 1.05, 1.5, 3.0])
def test_two_oscillators_lock_iff_delta_omega_le_K(ratio):
    with jax.enable_x64(True):
        K = 1.0
        dw = ratio * K
        omega = jnp.array([0.3 + dw / 2, 0.3 - dw / 2])
        res = ku.simulate(
            jnp.array([0.0, 2.0]),
            omega,
            K,
            dt=0.01,
            n_steps=20_000,
            record_every=10_000,
            return_phases=True,
        )
        # observed beat frequency over the second half (t in [100, 200])
        phi = res.phases[:, 0] - res.phases[:, 1]
        beat = float((phi[1] - phi[0]) / 100.0)
        if ratio <= 1.0:
            assert abs(beat) < 1e-3
        else:  # drifting, at the Adler beat frequency sqrt(dw^2 - K^2)
            assert beat == pytest.approx(np.sqrt(dw**2 - K**2), rel=0.02)


def test_coupling_matrix_agrees_with_mean_field_and_masks():
    with jax.enable_x64(True):
        n = 64
        omega = ku.gaussian_frequencies(n, sigma=0.5)
        theta0 = jax.random.uniform(jax.random.key(0), (n,), maxval=2 * jnp.pi)
        mf = ku.simulate(theta0, omega, 2.0, n_steps=50)
        dense = ku.simulate(theta0, omega, 2.0, n_steps=50, coupling=jnp.ones((n, n)))
        np.testing.assert_allclose(mf.theta, dense.theta, atol=1e-10)
        np.testing.assert_allclose(mf.r, dense.r, atol=1e-10)
        # no coupling: every oscillator runs free at omega_i
        free = ku.velocity(theta0, omega, 2.0, jnp.zeros((n, n)))
        np.testing.assert_allclose(free, omega, atol=1e-12)
        # a directed edge: oscillator 0 feels oscillator 1 only
        A = jnp.zeros((n, n)).at[0, 1].set(1.0)
        v = ku.velocity(theta0, omega, 2.0, A)
        assert float(v[0]) == pytest.approx(
            float(omega[0] + 2.0 / n * jnp.sin(theta0[1] - theta0[0]))
        )
        np.testing.assert_allclose(v[1:], omega[1:], atol=1e-12)


def test_frequencies_and_order_parameter():
    w = ku.lorentzian_frequencies(1000, gamma=2.0)
    assert float(jnp.median(w)) == pytest.approx(0.0, abs=1e-6)
    assert float(jnp.percentile(w, 75)) == pytest.approx(2.0, rel=0.01)  # quartile = gamma
    z = ku.order_parameter(jnp.zeros(10))
    assert float(jnp.abs(z)) == pytest.approx(1.0)
    assert float(jnp.abs(ku.order_parameter(jnp.linspace(0, 2 * jnp.pi, 8, endpoint=False)))) < 1e-6


def test_kuramoto_errors():
    with pytest.raises(ValueError, match="coupling"):
        ku.simulate(jnp.zeros(3), jnp.zeros(3), 1.0, coupling=jnp.ones((2, 2)))
    with pytest.raises(ValueError, match="record_every"):
        ku.simulate(jnp.zeros(3), jnp.zeros(3), 1.0, n_steps=10, record_every=3)
    with pytest.raises(ValueError, match=r"lorentzian_frequencies: n must be an int >= 1"):
        ku.lorentzian_frequencies(0)
    with pytest.raises(ValueError, match=r"gaussian_frequencies: n must be an int >= 1, got True"):
        ku.gaussian_frequencies(True)
    with pytest.raises(ValueError, match=r"simulate: theta0 \(10,\) and omega \(9,\) must be"):
        ku.simulate(jnp.zeros(10), jnp.ones(9), 1.0)  # was JAX's own broadcasting error


def test_frequencies_take_numpy_counts():
    """Review: np.int64(5) (a count from a NumPy computation) was refused as not an int."""
    np.testing.assert_array_equal(
        ku.lorentzian_frequencies(np.int64(5)), ku.lorentzian_frequencies(5)
    )
    np.testing.assert_array_equal(ku.gaussian_frequencies(np.int32(4)), ku.gaussian_frequencies(4))


def test_stationary_r_zero_below_threshold_and_for_negative_K():
    """Review: stationary_r(-1) gave sqrt(1 + 2) = 1.732 > 1, and gamma = -1 was accepted."""
    K = np.array([-4.0, -1.0, 0.0, 1.0, 2.0, 3.0, 8.0, np.inf, np.nan])
    with jax.enable_x64(True):
        r = np.asarray(ku.stationary_r(jnp.array(K), gamma=1.0))
    with np.errstate(divide="ignore"):
        expected = np.where(K > 2.0, np.sqrt(np.clip(1.0 - 2.0 / K, 0.0, None)), 0.0)
    expected[-1] = np.nan
    np.testing.assert_allclose(r, expected, rtol=1e-15)
    assert float(ku.stationary_r(-1.0)) == 0.0
    for gamma in (-1.0, 0.0, np.inf, np.nan, np.float32(-1.0), jnp.array(-2.0)):
        with pytest.raises(ValueError, match="stationary_r: gamma must be a finite number > 0"):
            ku.stationary_r(1.0, gamma=gamma)
    assert np.isnan(float(jax.jit(ku.stationary_r)(3.0, jnp.nan)))  # traced: nan, not 0


def test_simulate_step_arguments_numpy_and_0d_accepted_bad_refused():
    """Review: a 0-d array dt hit jit's non-hashable static argument, np.int64 n_steps was
    refused, dt = None raised a bare TypeError and dt = inf ran to r = nan."""
    theta0, omega = jnp.array([0.0, 1.0, 2.0]), jnp.array([0.3, 0.0, -0.2])
    ref = ku.simulate(theta0, omega, 1.5, dt=0.25, n_steps=8, record_every=2)
    for kw in (
        dict(dt=jnp.array(0.25), n_steps=np.int64(8), record_every=np.int32(2)),
        dict(dt=np.float64(0.25), n_steps=jnp.array(8), record_every=np.array(2)),
    ):
        out = ku.simulate(theta0, omega, 1.5, **kw)
        np.testing.assert_array_equal(out.theta, ref.theta)
        np.testing.assert_array_equal(out.r, ref.r)
    for dt in (None, np.inf, np.nan, -0.1, 0.0, True, jnp.array([0.1]), "0.1"):
        with pytest.raises(ValueError, match="simulate: dt must be a finite number > 0"):
            ku.simulate(theta0, omega, 1.0, dt=dt, n_steps=4)
    for n in (0, 4.0, True, None, np.array([4])):
        with pytest.raises(ValueError, match="simulate: n_steps must be an int >= 1"):
            ku.simulate(theta0, omega, 1.0, n_steps=n)


def test_K_of_one_strength_per_oscillator_is_refused():
    """Review: K of shape (N,) with B == N broadcast over the oscillator axis, coupling each
    oscillator with its own strength, silently (B != N: a bare broadcasting error)."""
    th = jnp.tile(jnp.linspace(0, 1, 3), (3, 1))
    om = jnp.linspace(-1, 1, 3)
    for K in (jnp.array([0.0, 0, 100.0]), jnp.ones((3, 2))):
        with pytest.raises(ValueError, match=r"K must be a scalar or of shape \(\.\.\., 1\) .*"
                           r"batch \(3,\) .*got shape"):  # fmt: skip
            ku.simulate(th, om, K, dt=0.1, n_steps=10)
    per_network = ku.simulate(th, om, jnp.array([[0.0], [0.0], [100.0]]), dt=0.1, n_steps=10).r
    assert per_network[-1, 2] != per_network[-1, 0]  # one K per network, as documented


def test_api_edges_are_one_line_errors():
    with pytest.raises(
        ValueError, match=r"order_parameter: theta must be \(\.\.\., N\) with N >= 1"
    ):
        ku.order_parameter(jnp.zeros((3, 0)))
    theta0, omega = jnp.zeros(3), jnp.zeros(3)
    with pytest.raises(ValueError, match=r"simulate: n_steps must be an int >= 1, got 0"):
        ku.simulate(theta0, omega, 1.0, n_steps=0)
    with pytest.raises(ValueError, match=r"simulate: n_steps \(4\) must be a multiple of"):
        ku.simulate(theta0, omega, 1.0, n_steps=4, record_every=8)
    for bad in (jnp.ones((3, 2)), jnp.ones((2, 3, 3))):
        with pytest.raises(ValueError, match=r"simulate: coupling must have shape \(3, 3\)"):
            ku.simulate(theta0, omega, 1.0, n_steps=2, coupling=bad)
    with pytest.raises(ValueError, match="simulate: coupling must be a finite number, got nan"):
        ku.simulate(theta0, omega, 1.0, n_steps=2, coupling=jnp.ones((3, 3)).at[0, 1].set(jnp.nan))
    for fn in (ku.lorentzian_frequencies, ku.gaussian_frequencies):
        for n in (0, -1, 2.0, 2.5, "3", None):
            with pytest.raises(ValueError, match=f"{fn.__name__}: n must be an int >= 1"):
                fn(n)
        assert float(fn(1)[0]) == 0.0  # one oscillator: the median, omega0


def test_stationary_r_at_and_around_the_critical_coupling():
    with jax.enable_x64(True):
        for gamma in (0.5, 1.0, 2.0):
            kc = 2.0 * gamma
            K = jnp.array([0.5 * kc, kc, kc * (1 + 1e-9), 1.5 * kc, 4.0 * kc])
            r = np.asarray(ku.stationary_r(K, gamma))
            expected = [0.0, 0.0, np.sqrt(1 - 1 / (1 + 1e-9)), np.sqrt(1 / 3), np.sqrt(0.75)]
            np.testing.assert_allclose(r, expected, rtol=1e-6, atol=0)
