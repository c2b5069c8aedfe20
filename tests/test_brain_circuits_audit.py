"""Audit of the spiking-circuit building blocks (circuits, delays, planted, monitors, kuramoto)
on the paths nobody tried: populations of 0 or 1, delays of 0 steps and longer than the run,
float64, jit and vmap, empty records, contiguous events, N = 1 oscillators; values against
NumPy loops and analytic results."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nnjax.brain import adaptive_lif
from nnjax.brain import circuits as ci
from nnjax.brain import delays as dl
from nnjax.brain import kuramoto as ku
from nnjax.brain import monitors as mo
from nnjax.brain import network as nw
from nnjax.brain import planted as pl

# ------------------------------------------------------------------------------- delays


def _numpy_delayed(spikes: np.ndarray, delays: np.ndarray) -> np.ndarray:
    """out[t] = spikes[t - d] (zeros before the run), per presynaptic column; delays (n_pre,)
    or (n_post, n_pre)."""
    T, n_pre = spikes.shape
    out = np.zeros((T,) + delays.shape)
    for t in range(T):
        for idx in np.ndindex(delays.shape):
            j, d = idx[-1], delays[idx]
            out[(t,) + idx] = spikes[t - d, j] if t - d >= 0 else 0.0
    return out


def _run_line(spikes, delays, max_delay):
    line = dl.delay_init(spikes.shape[1], max_delay)
    out = []
    for s in spikes:
        line = dl.delay_push(line, jnp.asarray(s))
        out.append(np.asarray(dl.delay_read(line, delays)))
    return np.array(out)


@pytest.mark.parametrize("max_delay", [0, 1, 4, 30])  # 30: longer than the 12-step run
def test_delayed_spike_arrives_exactly_d_steps_later(max_delay):
    rng = np.random.default_rng(max_delay)
    spikes = (rng.random((12, 3)) < 0.4).astype(np.float32)
    axonal = rng.integers(0, max_delay + 1, 3)
    per_synapse = rng.integers(0, max_delay + 1, (2, 3))
    for d in (axonal, per_synapse, np.full(3, max_delay)):
        np.testing.assert_array_equal(_run_line(spikes, d, max_delay), _numpy_delayed(spikes, d))


def test_delay_longer_than_the_run_reads_only_zeros_and_one_spike_lands_once():
    line = dl.delay_init(1, 50)
    seen = []
    for t in range(60):
        line = dl.delay_push(line, jnp.array([1.0 if t == 3 else 0.0]))
        seen.append(float(dl.delay_read(line, 50)[0]))
    assert np.flatnonzero(seen).tolist() == [53]  # pushed at step 3, read 50 steps later


def test_delay_line_under_jit_and_vmap_matches_the_loop():
    spikes = (np.random.default_rng(0).random((4, 10, 3)) < 0.5).astype(np.float32)
    delays = jnp.array([0, 2, 5])

    def run(sp):
        def body(line, s):
            line = dl.delay_push(line, s)
            return line, dl.delay_read(line, delays)

        return jax.lax.scan(body, dl.delay_init(3, 5), sp)[1]

    got = np.asarray(jax.jit(jax.vmap(run))(jnp.asarray(spikes)))
    for b in range(4):
        np.testing.assert_array_equal(got[b], _numpy_delayed(spikes[b], np.asarray(delays)))


def test_delay_push_takes_lists_and_bools():
    """A Python list failed with AttributeError: 'list' object has no attribute 'astype'."""
    line = dl.delay_push(dl.delay_init(3, 2), [1.0, 0.0, 1.0])
    np.testing.assert_array_equal(dl.delay_read(line, 0), [1.0, 0.0, 1.0])
    line = dl.delay_push(line, np.array([False, True, False]))
    np.testing.assert_array_equal(dl.delay_read(line, jnp.array([1, 0, 1])), [1.0, 1.0, 1.0])


def test_delay_line_in_float64_keeps_float64():
    with jax.enable_x64(True):
        line = dl.delay_init(2, 3, channels=2)
        assert line.buffer.dtype == jnp.float64
        x = np.array([[1.0 + 1e-12, 2.0], [3.0, 4.0]])
        line = dl.delay_push(line, jnp.asarray(x))
        line = dl.delay_push(line, jnp.zeros((2, 2)))
        got = np.asarray(dl.delay_read(line, 1))
        assert got.dtype == np.float64 and got[0, 0] - 1.0 == pytest.approx(1e-12, rel=1e-3)


def test_delay_steps_of_dt_that_does_not_divide_rounds_to_the_nearest_step():
    # 0.34 / 0.1 = 3.4 -> 3, 0.36 / 0.1 = 3.6 -> 4, 0.04 / 0.1 = 0.4 -> 0
    np.testing.assert_array_equal(dl.delay_steps(np.array([0.34, 0.36, 0.0, 0.04]), 0.1),
                                  [3, 4, 0, 0])  # fmt: skip
    traced = jax.jit(lambda d: dl.delay_steps(d, 0.1))(jnp.array([0.34, 0.36]))
    np.testing.assert_array_equal(traced, [3, 4])


def test_delay_steps_refuses_a_small_negative_delay():
    """-0.04 ms at dt = 0.1 rounded to -0 steps and passed as a delay of 0 (the docstring, and
    NetworkSpec's check, refuse negative delays)."""
    with pytest.raises(ValueError, match="delay_steps: delays must be >= 0 ms, got min -0.04"):
        dl.delay_steps(np.array([0.3, -0.04]), 0.1)
    assert int(dl.delay_steps(-0.0, 0.1)) == 0


def test_delays_refuse_strings_and_bools():
    """delay_read(line, "1") read 1 step back, delay_steps(True, 0.1) gave 10 steps and
    delay_steps("1", 0.1) failed in JAX naming no function."""
    line = dl.delay_push(dl.delay_init(3, 2), jnp.ones(3))
    for bad in ("1", True, np.array([True, False, True])):
        with pytest.raises(ValueError, match="synapses.delay_read: delays must be real numbers"):
            dl.delay_read(line, bad)
        with pytest.raises(ValueError, match="synapses.delay_steps: delays must be real numbers"):
            dl.delay_steps(bad, 0.1)


def test_delay_steps_of_2_to_the_31_steps_is_refused_in_float32():
    """2^31 steps (float32 2147483648.0) compared equal to INT32_MAX in float32 and was cast
    to 2147483647 steps, silently."""
    with pytest.raises(ValueError, match="delays must be at most 2147483647 steps"):
        dl.delay_steps(np.float32(2**31 * 0.1), 0.1)
    assert int(dl.delay_steps(2**30 * 0.1, 0.1)) == 2**30


# ------------------------------------------------------------------------------- circuits


def test_random_mask_of_empty_and_single_populations():
    """An empty square block without self-connections raised 'p=0.5 asks for 0 inputs from 0
    neurons without self-connections': there is nothing to connect, the mask is (0, 0)."""
    key = jax.random.key(0)
    for kind in ci.CONNECTIVITY:
        assert ci.random_mask(key, 0, 0, 0.5, kind, no_self=True).shape == (0, 0)
        assert ci.random_mask(key, 0, 7, 0.5, kind).shape == (0, 7)
        assert ci.random_mask(key, 3, 0, 0.5, kind).shape == (3, 0)
        np.testing.assert_array_equal(ci.random_mask(key, 1, 1, 1.0, kind), [[1.0]])
        np.testing.assert_array_equal(ci.random_mask(key, 1, 1, 0.4, kind, no_self=True), [[0]])
    with pytest.raises(ValueError, match="p=1.0 asks for 1 inputs from 1 neurons without self"):
        ci.random_mask(key, 1, 1, 1.0, no_self=True)


def test_random_mask_in_degree_jit_vmap_and_float64():
    keys = jax.random.split(jax.random.key(1), 5)
    draw = lambda k: ci.random_mask(k, 30, 30, 0.3, no_self=True)
    batched = np.asarray(jax.jit(jax.vmap(draw))(keys))
    for b in range(5):
        np.testing.assert_array_equal(batched[b], draw(keys[b]))
        np.testing.assert_array_equal(batched[b].sum(1), 9)  # K = round(0.3 * 30)
        assert np.trace(batched[b]) == 0
    with jax.enable_x64(True):
        m = ci.random_mask(jax.random.key(2), 4, 6, 0.5)
        assert m.dtype == jnp.float64
        np.testing.assert_array_equal(np.asarray(m).sum(1), 3)
    for kind in ci.CONNECTIVITY:  # all or nothing
        m = ci.random_mask(keys[0], 6, 6, 0.0, kind, no_self=True)
        np.testing.assert_array_equal(m, np.zeros((6, 6)))
        np.testing.assert_array_equal(ci.random_mask(keys[0], 6, 6, 1.0, kind), np.ones((6, 6)))
    full = ci.random_mask(keys[0], 6, 6, 1.0, "bernoulli", no_self=True)
    np.testing.assert_array_equal(full, 1.0 - np.eye(6))


def test_init_params_of_one_cell_per_population_and_vmap_over_keys():
    cfg = ci.NetworkConfig(n_exc=1, n_inh=1, p=1.0, rate_ext=0.0, connectivity="bernoulli")
    params = ci.init_params(jax.random.key(0), cfg)
    np.testing.assert_array_equal(params.W_ee, [[0.0]])  # no self-connection
    np.testing.assert_array_equal(params.W_ei, [[cfg.w_ei]])
    np.testing.assert_array_equal(params.W_ie, [[cfg.w_ie]])
    np.testing.assert_array_equal(params.W_ii, [[0.0]])
    assert params.neuron.b.shape == (2,) and float(params.neuron.b[1]) == 0.0  # FS: no b
    cfg = ci.NetworkConfig(n_exc=6, n_inh=3, p=0.5)
    batched = jax.vmap(lambda k: ci.init_params(k, cfg))(jax.random.split(jax.random.key(3), 2))
    one = ci.init_params(jax.random.split(jax.random.key(3), 2)[1], cfg)
    np.testing.assert_array_equal(batched.W_ie[1], one.W_ie)
    np.testing.assert_array_equal(np.asarray(batched.W_ee[1] > 0).sum(1), 3)


def test_init_params_refuses_cells_of_another_model():
    """An ALIFParams I population beside AdEx E cells was zipped field by field into an
    AdExParams (tau_m read as C, theta as V_T; V_r and V_peak left at AdEx's defaults for
    every cell), silently."""
    for cfg, name in ((ci.NetworkConfig(n_exc=3, n_inh=2, inh=adaptive_lif.DEFAULT), "inh"),
                      (ci.NetworkConfig(n_exc=3, n_inh=2, exc=adaptive_lif.DEFAULT), "exc"),
                      (ci.NetworkConfig(n_exc=3, n_inh=2, model="alif", w_ei=-1.0, w_ii=-1.0,
                                        inh=ci.FS_CELL), "inh")):  # fmt: skip
        kind = "ALIFParams" if cfg.model == "alif" else "AdExParams"
        with pytest.raises(ValueError, match=f"NetworkConfig.{name} must be an {kind} for model"):
            ci.init_params(jax.random.key(0), cfg)


def test_init_params_places_per_cell_arrays_and_names_a_wrong_length():
    """A per-cell array of the wrong length failed in JAX's broadcast_to, naming no field."""
    cfg = ci.NetworkConfig(n_exc=3, n_inh=2, exc=ci.RS_CELL._replace(b=jnp.array([1.0, 2, 3])))
    b = ci.init_params(jax.random.key(0), cfg).neuron.b
    np.testing.assert_array_equal(b, [1.0, 2.0, 3.0, ci.FS_CELL.b, ci.FS_CELL.b])
    cfg = cfg._replace(inh=ci.FS_CELL._replace(V_T=jnp.zeros(3)))
    with pytest.raises(ValueError, match=r"init_params: NetworkConfig.inh.V_T must be a scalar "
                       r"or \(2,\), one value per cell, got shape \(3,\)"):  # fmt: skip
        ci.init_params(jax.random.key(0), cfg)


def test_init_params_refuses_weights_that_are_not_numbers():
    """w_ee="4" failed in the product with the mask: 'Only integer scalar arrays can be
    converted to a scalar index'."""
    for bad in ("4", True):
        with pytest.raises(ValueError, match="init_params: w_ee must be a number or an array"):
            ci.init_params(jax.random.key(0), ci.NetworkConfig(n_exc=3, n_inh=2, w_ee=bad))


# ------------------------------------------------------------------------------- monitors

SMALL = ci.NetworkConfig(n_exc=4, n_inh=2, p=0.5, rate_ext=2000.0, w_ext=3.0, I_bias=800.0)


@pytest.fixture(scope="module")
def small():
    return ci.init_params(jax.random.key(0), SMALL), SMALL.spec


def test_monitor_bins_equal_numpy_means_of_the_per_step_trace(small):
    params, spec = small
    key = jax.random.key(5)
    every, T = 8, 160
    mon = mo.Monitor(every=1, neurons=(0, 5), variables=("V", "w"))
    fine = nw.simulate(key, params, spec, T, monitor=mon)
    coarse = nw.simulate(key, params, spec, T, monitor=mon._replace(every=every))
    raster = np.asarray(fine.record["spikes"], np.int64)
    assert raster.sum() > 5
    bins = raster.reshape(T // every, every, spec.n).sum(1)
    np.testing.assert_array_equal(coarse.record["spikes"], bins)
    seconds = every * spec.dt / 1000.0
    rate = np.stack([bins[:, :4].sum(1) / 4, bins[:, 4:].sum(1) / 2], 1) / seconds
    np.testing.assert_allclose(coarse.record["rate"], rate, rtol=1e-6)
    lfp = np.asarray(fine.record["lfp"], np.float64).reshape(T // every, every).mean(1)
    np.testing.assert_allclose(coarse.record["lfp"], lfp, rtol=1e-5)
    for v in ("V", "w"):  # the state at the bin's end: every `every`-th row of the fine trace
        np.testing.assert_allclose(coarse.record[v], fine.record[v][every - 1 :: every], rtol=1e-6)
    np.testing.assert_allclose(mo.bin_times(T // every, every, spec.dt),
                               spec.dt * every * np.arange(1, T // every + 1))  # fmt: skip


def test_monitor_with_an_empty_record_and_one_bin_for_the_whole_run(small):
    params, spec = small
    key = jax.random.key(1)
    empty = mo.Monitor(spikes=None, rate=False, lfp=False, variables=())
    assert nw.simulate(key, params, spec, 10, monitor=empty).record == {}
    no_neurons = nw.simulate(key, params, spec, 10, monitor=mo.Monitor(neurons=()))
    assert no_neurons.record["V"].shape == (10, 0)
    whole = nw.simulate(key, params, spec, 10, monitor=mo.Monitor(every=10)).record
    fine = nw.simulate(key, params, spec, 10).record
    assert whole["spikes"].shape == (1, spec.n)
    np.testing.assert_array_equal(whole["spikes"][0], np.asarray(fine["spikes"]).sum(0))
    with pytest.raises(ValueError, match=r"Monitor.every must be a positive int dividing "
                       r"n_steps=10, got 20"):  # fmt: skip
        nw.simulate(key, params, spec, 10, monitor=mo.Monitor(every=20))


def test_monitor_variables_and_neurons_given_as_lists(small):
    """Monitor(variables=["V", "w"]) passed check_monitor (which takes a list) and then failed
    in jit: 'Non-hashable static arguments are not supported'."""
    params, spec = small
    key = jax.random.key(2)
    ref = nw.simulate(key, params, spec, 6, monitor=mo.Monitor(neurons=(1,), variables=("V", "w")))
    got = nw.simulate(key, params, spec, 6, monitor=mo.Monitor(neurons=[1], variables=["V", "w"]))
    for v in ("V", "w"):
        np.testing.assert_array_equal(got.record[v], ref.record[v])


def test_record_bytes_counts_the_float_width(small):
    """In float64 the rates, LFP and variables take 8 bytes each: the 8 GiB cap let 16 GiB
    through."""
    _, spec = small
    mon = mo.Monitor(spikes=None, neurons=(0, 1), variables=("V",))
    assert mo.record_bytes(mon, spec, 10) == 10 * 4 * (2 + 1 + 2)
    with jax.enable_x64(True):
        assert mo.record_bytes(mon, spec, 10) == 10 * 8 * (2 + 1 + 2)


# ------------------------------------------------------------------------------- planted


def test_contiguous_slow_waves_match_the_formula():
    """gap 0 and fixed shapes: back-to-back waves, the signal of the docstring's formula."""
    fs, n, A, r, d1, d2 = 100.0, 1001, 150.0, 0.8, 0.4, 0.6
    x, iv = pl.plant_slow_waves(jax.random.key(0), n, fs, depth_uv=(A, A), pos_ratio=(r, r),
                                neg_duration_s=(d1, d1), pos_duration_s=(d2, d2),
                                gap_s=(0.0, 0.0))  # fmt: skip
    np.testing.assert_allclose(iv, np.stack([np.arange(10), np.arange(1, 11)], 1), atol=1e-12)
    t = np.arange(n) / fs
    u = t - np.floor(t + 1e-9)
    want = np.where(u < d1, -A * np.sin(np.pi * u / d1), r * A * np.sin(np.pi * (u - d1) / d2))
    want[t >= 10 - 1e-9] = 0.0  # no wave starts after the last whole one
    np.testing.assert_allclose(x, want, atol=1e-9)


def test_spindles_of_fixed_shape_and_the_taper():
    fs, n, A, f, d = 200.0, 2001, 10.0, 12.0, 1.0
    x, iv = pl.plant_spindles(jax.random.key(1), n, fs, amplitude_uv=(A, A), freq_hz=(f, f),
                              duration_s=(d, d), gap_s=(1.0, 1.0))  # fmt: skip
    np.testing.assert_allclose(iv, [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0], [7.0, 8.0], [9.0, 10.0]],
                               atol=1e-12)  # fmt: skip
    t = np.arange(n) / fs
    inside = np.zeros(n, bool)
    for s, e in iv:
        inside |= (t >= s - 1e-9) & (t < e - 1e-9)
    assert np.all(x[~inside] == 0.0)
    assert np.abs(x).max() <= A + 1e-9
    mid = (t > 1.3) & (t < 1.7)  # the flat middle half: a pure sine of amplitude A
    assert np.abs(x[mid]).max() == pytest.approx(A, rel=0.01)


def test_two_state_rate_is_zero_in_down_states_and_the_up_rate_on_average():
    fs, n, R, N = 100.0, 60_000, 20.0, 50
    rate, up = pl.two_state_rate(jax.random.key(2), n, fs, n_neurons=N, up_rate_hz=R,
                                 down_rate_hz=0.0)  # fmt: skip
    t = np.arange(n) / fs
    in_up = np.zeros(n, bool)
    for s, e in up:
        in_up |= (t >= s) & (t < e)
    assert np.all(rate[~in_up] == 0.0)
    m = in_up.sum()
    sd = np.sqrt(R * fs / N / m)  # Poisson(N R / fs) counts x fs / N, averaged over m bins
    assert abs(rate[in_up].mean() - R) < 5 * sd
    np.testing.assert_allclose(rate * N / fs, np.round(rate * N / fs), atol=1e-9)  # counts


@pytest.mark.parametrize("exponent", [0.0, 1.0, 2.0])
def test_pink_noise_unit_variance_zero_mean_and_slope(exponent):
    n = 4096
    xs = [pl.pink_noise(jax.random.key(k), n, exponent=exponent) for k in range(20)]
    for x in xs:
        assert abs(x.mean()) < 1e-12 and x.std() == pytest.approx(1.0, abs=1e-12)
    power = np.mean([np.abs(np.fft.rfft(x)) ** 2 for x in xs], 0)[1:]
    f = np.fft.rfftfreq(n)[1:]
    slope = np.polyfit(np.log(f), np.log(power), 1)[0]
    assert slope == pytest.approx(-exponent, abs=0.1)
    np.testing.assert_array_equal(xs[0], pl.pink_noise(jax.random.key(0), n, exponent=exponent))


def test_a_zero_cycle_names_the_arguments_and_value():
    """The refusal named no argument: 'the shortest event plus the shortest gap must be > 0 s'."""
    with pytest.raises(ValueError, match=r"two_state_rate: .* \(up_duration_s low \+ "
                       r"down_duration_s low\), got 0 s"):  # fmt: skip
        pl.two_state_rate(jax.random.key(0), 100, 100.0, up_duration_s=(0.0, 1.0),
                          down_duration_s=(0.0, 1.0))  # fmt: skip
    with pytest.raises(ValueError, match=r"plant_spindles: .* \(duration_s low \+ gap_s low\)"):
        pl.plant_spindles(jax.random.key(0), 100, 100.0, duration_s=(0.0, 1.0), gap_s=(0, 1))


# ------------------------------------------------------------------------------- kuramoto


def test_one_oscillator_runs_at_its_own_frequency_with_r_one():
    with jax.enable_x64(True):
        res = ku.simulate(jnp.array([0.3]), jnp.array([1.7]), 5.0, dt=0.1, n_steps=50,
                          return_phases=True)  # fmt: skip
        t = 0.1 * np.arange(1, 51)
        np.testing.assert_allclose(res.phases[:, 0], 0.3 + 1.7 * t, atol=1e-12)
        np.testing.assert_allclose(res.r, 1.0, atol=1e-15)
        np.testing.assert_allclose(res.psi, np.angle(np.exp(1j * (0.3 + 1.7 * t))), atol=1e-12)


def test_zero_coupling_keeps_r_of_identical_oscillators():
    with jax.enable_x64(True):
        theta0 = jnp.array([0.0, 0.5, 2.0, 4.0])
        r0 = abs(np.exp(1j * np.asarray(theta0)).mean())
        res = ku.simulate(theta0, jnp.full(4, 0.9), 0.0, dt=0.05, n_steps=200)
        np.testing.assert_allclose(res.r, r0, atol=1e-12)
        np.testing.assert_allclose(res.theta, theta0 + 0.9 * 10.0, atol=1e-12)


@pytest.mark.parametrize("K", [0.5, 2.0])
def test_identical_oscillators_synchronise_for_any_positive_K(K):
    theta0 = jax.random.uniform(jax.random.key(0), (50,), maxval=np.pi)  # a half circle
    res = ku.simulate(theta0, jnp.full(50, 0.3), K, dt=0.05, n_steps=2000)
    assert float(res.r[0]) < 0.95 and float(res.r[-1]) > 0.999
    assert np.all(np.diff(np.asarray(res.r)) > -1e-6)  # r never falls (gradient flow)


def _numpy_rk4(theta, omega, K, A, dt, n_steps):
    n = theta.size
    f = lambda th: omega + K / n * (A * np.sin(th[None, :] - th[:, None])).sum(1)
    for _ in range(n_steps):
        k1 = f(theta)
        k2 = f(theta + dt / 2 * k1)
        k3 = f(theta + dt / 2 * k2)
        k4 = f(theta + dt * k3)
        theta = theta + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
    return theta


def test_simulate_equals_a_numpy_rk4_on_a_coupling_matrix():
    with jax.enable_x64(True):
        rng = np.random.default_rng(0)
        theta0, omega = rng.uniform(0, 6, 5), rng.normal(size=5)
        A = (rng.random((5, 5)) < 0.6).astype(float)
        got = ku.simulate(theta0, omega, 1.3, dt=0.02, n_steps=100, coupling=A).theta
        np.testing.assert_allclose(got, _numpy_rk4(theta0, omega, 1.3, A, 0.02, 100), atol=1e-12)


def test_simulate_of_mixed_float_widths():
    """float32 phases with float64 frequencies (x64 on) failed in lax.scan: 'the input carry
    component ... has type float32[3] but the corresponding output carry component has type
    float64[3]'."""
    with jax.enable_x64(True):
        theta0 = jnp.array([0.0, 1.0, 2.0], jnp.float32)
        omega = np.array([0.3, 0.0, -0.2])
        res = ku.simulate(theta0, omega, jnp.float64(1.5), dt=0.1, n_steps=10)
        ref = ku.simulate(np.asarray(theta0, np.float64), omega, 1.5, dt=0.1, n_steps=10)
        assert res.theta.dtype == jnp.float64
        np.testing.assert_allclose(res.theta, ref.theta, atol=1e-12)


def test_K_of_a_wider_batch_than_theta0_is_refused():
    """K (3, 1) with theta0 (N,) passed the check and failed in lax.scan's carry types."""
    with pytest.raises(ValueError, match=r"simulate: K must be a scalar or of shape .* batch "
                       r"\(\) .*got shape \(3, 1\)"):  # fmt: skip
        ku.simulate(jnp.zeros(4), jnp.zeros(4), jnp.ones((3, 1)), n_steps=2)


def test_simulate_vmaps_over_K_like_a_batch():
    theta0 = jax.random.uniform(jax.random.key(1), (8,), maxval=2 * np.pi)
    omega = ku.gaussian_frequencies(8, sigma=0.2)
    Ks = jnp.array([0.0, 1.0, 4.0])
    run = lambda K: ku.simulate(theta0, omega, K, dt=0.1, n_steps=20).r
    vm = jax.jit(jax.vmap(run))(Ks)
    batch = ku.simulate(jnp.tile(theta0, (3, 1)), omega, Ks[:, None], dt=0.1, n_steps=20).r
    np.testing.assert_allclose(vm, batch.T, atol=1e-6)


def test_simulate_takes_a_list_K_and_bfloat16_phases():
    """K=[1.0] reached velocity as a list of tracers ('K must be a number ..., got
    [JitTracer(...)]'); a bfloat16 theta0 was refused as 'not a number' (its dtype kind is
    "V")."""
    theta0, omega = jnp.array([0.0, 1.0, 2.0, 3.0]), jnp.zeros(4)
    ref = ku.simulate(theta0, omega, 1.0, n_steps=4).theta
    np.testing.assert_array_equal(ku.simulate(theta0, omega, [1.0], n_steps=4).theta, ref)
    got = ku.simulate(theta0.astype(jnp.bfloat16), omega, 1.0, n_steps=4).theta
    assert got.dtype == jnp.float32  # bfloat16 phases promoted with float32 frequencies
    np.testing.assert_allclose(got, ref, atol=2e-2)  # theta0 rounded to bfloat16


def test_frequencies_refuse_float64_without_x64():
    """dtype=float64 with x64 off came back float32 (a UserWarning only)."""
    with jax.enable_x64(False):
        for fn in (ku.lorentzian_frequencies, ku.gaussian_frequencies):
            with pytest.raises(ValueError, match=f"{fn.__name__}: dtype float64 needs JAX's "
                               "64-bit mode"):  # fmt: skip
                fn(3, dtype=jnp.float64)
    with jax.enable_x64(True):
        assert ku.lorentzian_frequencies(3, dtype=jnp.float64).dtype == jnp.float64


def test_delay_steps_rounds_as_the_network_spec_does():
    """synapses.delay_steps divided in float32 and NetworkSpec.delay_steps in float64: 2.55
    ms at dt 0.1 was 26 steps against 25, 0.15 ms 2 against 1."""
    from nnjax.brain import synapses
    from nnjax.brain.network_types import NetworkSpec

    for dt in (0.1, 0.05, 0.25):
        for k in range(0, 400):
            ms = round(k * 0.05, 10)
            want = NetworkSpec(delay_ms=ms, dt=dt).delay_steps
            assert int(synapses.delay_steps(ms, dt)) == want, (ms, dt)
    got = jax.jit(synapses.delay_steps, static_argnums=1)(jnp.float32(3.0), 0.1)
    assert got.dtype == jnp.int32 and int(got) == 30  # a traced delay: its own float
