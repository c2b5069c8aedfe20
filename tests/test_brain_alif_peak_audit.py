"""Adaptive LIF: a spike where V rises past theta and falls back within one step (w < 0).

The step sought a crossing only where V at the step's end was at or above theta, so with a
spike-triggered depolarisation (w < 0) a threshold crossing inside the step was missed. The
oracle is the closed form evaluated on a fine grid, the first crossing refined by bisection,
all in NumPy float64 (independent of the module's peak formula and its search).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nnjax.brain import adaptive_lif as alif

# V = -50.2 mV, w = -3 nA, tau_w = 1 ms, no input, dt = 2 ms: V peaks above theta near
# 0.68 ms and is back below it (-50.60 mV) at the step's end (the module docstring's case)
CASE = dict(V0=-50.2, w0=-3.0, dt=2.0, params=alif.ALIFParams(tau_w=1.0, b=-1.0))
# the limit form tau_w = tau_m: the peak at tau_m (1 + u0 / (R w0)) = 1.69 ms, V(5) below theta
LIMIT = dict(V0=-50.05, w0=-1.8, dt=5.0, params=alif.ALIFParams(tau_w=10.0, t_ref=5.0, b=-1.0))


def closed_form(s, V0, w0, p, current=0.0):
    """V(s) (mV) of the free membrane, as written in the module docstring (NumPy float64)."""
    s = np.asarray(s, np.float64)
    u0, V_inf = V0 - (p.E_L + p.R * current), p.E_L + p.R * current
    if p.tau_w == p.tau_m:
        return V_inf + np.exp(-s / p.tau_m) * (u0 - p.R * w0 * s / p.tau_m)
    K = -p.R * w0 * p.tau_w / (p.tau_w - p.tau_m)
    return V_inf + (u0 - K) * np.exp(-s / p.tau_m) + K * np.exp(-s / p.tau_w)


def first_crossing(V0, w0, p, dt):
    """The first s in [0, dt] with V(s) >= theta (nan where none): a grid of 2e5 intervals,
    then 200 bisections of the first interval that crosses."""
    grid = np.linspace(0.0, dt, 200_001)
    above = np.nonzero(closed_form(grid, V0, w0, p) >= p.theta)[0]
    if not above.size:
        return np.nan
    lo, hi = grid[above[0] - 1], grid[above[0]]
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        lo, hi = (lo, mid) if closed_form(mid, V0, w0, p) >= p.theta else (mid, hi)
    return hi


def one_step(V0, w0, p, dt, current=0.0):
    z = jnp.zeros(jnp.shape(V0))
    state = alif.ALIFState(jnp.asarray(V0, float), jnp.asarray(w0, float), z, z, z * jnp.nan)
    return alif.step(state, current, p, dt)


@pytest.mark.parametrize("case", [CASE, LIMIT], ids=["tau_w=1", "tau_w=tau_m"])
def test_a_rise_past_theta_that_falls_back_within_the_step_spikes_at_the_oracle_time(case):
    V0, w0, p, dt = case["V0"], case["w0"], case["params"], case["dt"]
    grid = np.linspace(0.0, dt, 200_001)
    V = closed_form(grid, V0, w0, p)
    assert V.max() > p.theta + 0.1 and V[-1] < p.theta  # the case: up past theta and back
    want = first_crossing(V0, w0, p, dt)
    with jax.enable_x64(True):
        out = one_step(V0, w0, p, dt)
        assert float(out.spike) == 1.0  # was 0: no spike, V left at V(dt) below theta
        assert abs(float(out.t_spike) - want) < 1e-9
        after = dt - want  # reset, refractory and the jump of w at the crossing
        assert float(out.V) == p.V_r
        np.testing.assert_allclose(float(out.ref), p.t_ref - after, rtol=0, atol=1e-9)
        w_want = (w0 * np.exp(-want / p.tau_w) + p.b) * np.exp(-after / p.tau_w)
        np.testing.assert_allclose(float(out.w), w_want, rtol=1e-9)


def test_a_peak_just_above_theta_spikes_and_one_just_below_does_not():
    """theta 1e-6 mV below and above the peak of the constructed case: a near-tangent crossing
    (V - theta has a near-double root) is found to the oracle's time; a miss stays silent."""
    V0, w0, p, dt = CASE["V0"], CASE["w0"], CASE["params"], CASE["dt"]
    grid = np.linspace(0.0, dt, 200_001)
    peak = closed_form(grid, V0, w0, p).max()
    assert closed_form(dt, V0, w0, p) < peak - 0.5
    with jax.enable_x64(True):
        for gap, spikes in [(1e-6, True), (-1e-6, False), (-1.0, False)]:
            q = p._replace(theta=peak - gap)
            out = one_step(V0, w0, q, dt)
            assert float(out.spike) == float(spikes), gap
            if spikes:  # the root is ill-conditioned there: ~1e-14 mV / V' of ~1e-3 mV/ms
                assert abs(float(out.t_spike) - first_crossing(V0, w0, q, dt)) < 1e-8
            else:
                assert np.isnan(float(out.t_spike))
                np.testing.assert_allclose(float(out.V), closed_form(dt, V0, w0, q), rtol=1e-13)


@pytest.mark.parametrize("case", [CASE, LIMIT], ids=["tau_w=1", "tau_w=tau_m"])
def test_the_spike_time_gradient_matches_central_differences(case):
    """dt*/dp through the one Newton step taken outside stop_gradient, under jit, against
    central differences of the whole step, for V0, w0 and every parameter that moves V."""
    dt = case["dt"]
    x0 = jnp.array([case["V0"], case["w0"], -50.0, 1.0, 10.0, 10.0])
    tau_w = case["params"].tau_w

    def t_spike(x):
        p = case["params"]._replace(theta=x[2], tau_w=x[3] * tau_w, tau_m=x[4], R=x[5])
        if case is LIMIT:  # keep tau_w = tau_m exactly: the limit form's derivatives
            p = p._replace(tau_w=x[4] * x[3])
        return one_step(x[0], x[1], p, dt).t_spike

    with jax.enable_x64(True):
        x0 = x0.astype(jnp.float64)
        grad = np.asarray(jax.jit(jax.grad(t_spike))(x0))
        h, f = 1e-6, jax.jit(t_spike)
        fd = [(f(x0.at[i].add(h)) - f(x0.at[i].add(-h))) / (2 * h) for i in range(6)]
    assert np.all(np.isfinite(grad)) and np.all(np.abs(grad) > 1e-3)
    np.testing.assert_allclose(grad, np.asarray(fd), rtol=1e-6, atol=1e-8)


def test_vmap_and_jit_of_the_step_agree_with_single_calls():
    """A population mixing the missed case, a sub-threshold peak, a rise past theta at the end
    and w >= 0: vmapped (the peak test's cond becomes a select) and jitted alike."""
    p = CASE["params"]
    V0 = jnp.array([-50.2, -50.2, -50.2, -52.0])
    w0 = jnp.array([-3.0, -1.0, -6.0, 0.5])
    I = jnp.array([0.0, 0.0, 0.0, 3.0])
    with jax.enable_x64(True):
        V0, w0, I = V0.astype(float), w0.astype(float), I.astype(float)
        step = jax.jit(lambda v, w, i: one_step(v, w, p, 2.0, i))
        # single calls: scalar inputs, so the peak test stays a cond (one compile for the four)
        single = [step(V0[i], w0[i], I[i]) for i in range(4)]
        vm = jax.jit(jax.vmap(lambda v, w, i: one_step(v, w, p, 2.0, i)))(V0, w0, I)
        pop = step(V0, w0, I)
    for got in (vm, pop):
        np.testing.assert_array_equal(got.spike, [1.0, 0.0, 1.0, 1.0])
        want = np.array([float(s.t_spike) for s in single])
        np.testing.assert_allclose(got.t_spike, want, rtol=1e-12)


def test_a_run_with_b_at_least_zero_is_unchanged():
    """Values computed with the code before the fix (float64, its spike times, last V and w):
    with w >= 0 V has no interior maximum, and the peak search is skipped."""
    want_t = [
        [9.441129506400948, 23.189266695245717, 38.446756212407585, 52.79466389400098,
         65.61762707512045, 78.53425289642936],
        [15.207528210352049, 24.717219853260627, 32.761938437969356, 41.86944012127172,
         51.71719737285477, 61.350546944713244],
        [11.786309257703346, 23.300847398564706, 39.789357295134316, 56.1256215585845,
         71.94458681191139, 93.41752372378359],
        [4.730412719048849, 12.829165474346857, 22.649385141397055, 33.63322444983361,
         49.44174700121655, 63.55549930644776],
        [7.045592133937632, 19.080609105372112, 47.74262581636851, 89.14456318668823,
         np.nan, np.nan],
        [11.332778966233677, 25.68542370492816, 43.0701948187237, 59.367903559685786,
         77.4819839748684, 94.47072258202168],
    ]  # fmt: skip
    want_V = [-54.04411455433072, -50.856667943771726, -55.634244662939835, -50.370019009627576,
              -61.535971917452464, -62.24424597415863]  # fmt: skip
    want_w = [0.0, 0.2537690087176258, 1.1927617904267842, 0.9786253078784235,
              2.3443814720332226, 0.4310928953877639]  # fmt: skip
    with jax.enable_x64(True):
        r = np.random.default_rng(7)
        n = 6
        p = alif.ALIFParams(
            tau_m=jnp.asarray(r.uniform(5, 20, n)),
            V_r=jnp.asarray(r.uniform(-70, -55, n)),
            t_ref=jnp.asarray(r.uniform(0.5, 3, n)),
            tau_w=jnp.asarray(r.uniform(1, 200, n)),
            b=jnp.asarray(np.r_[0.0, r.uniform(0, 1, n - 1)]),
        )
        tr = alif.simulate(jnp.asarray(r.uniform(0, 6, (400, n))), p, dt=0.25)
        times, _ = alif.spike_time_array(tr, 0.25, 6)
    np.testing.assert_allclose(times, want_t, rtol=1e-13)  # measured bitwise equal here
    np.testing.assert_allclose(tr.V[-1], want_V, rtol=1e-13)
    np.testing.assert_allclose(tr.w[-1], want_w, rtol=1e-13)
