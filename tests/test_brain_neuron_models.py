"""AdEx, Izhikevich and the exact adaptive LIF: published firing patterns, stated in numbers,
parameters as traced pytrees (heterogeneous populations, gradients), exact spike times."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from nnjax.brain import adaptive_lif as alif
from nnjax.brain import adex, dynamics, neurons
from nnjax.brain import izhikevich as iz

BURST_GAP = 10.0  # ms: spikes closer than this belong to one burst
# alif.fi_curves compiled once per (n_isi, dt) for the tests of its numbers (called eagerly,
# each call compiles its scan anew); the tests of its argument checks call it eagerly
_fi_curves = jax.jit(alif.fi_curves, static_argnames=("n_isi", "duration", "dt"))


def _isis(trace_spike, dt):
    t = dynamics.spike_times(trace_spike, dt)
    return t, np.diff(t)


def _bursts(t):
    """Sizes of the groups of spikes separated by gaps of more than BURST_GAP ms."""
    breaks = np.flatnonzero(np.diff(t) > BURST_GAP)
    return np.diff(np.concatenate([[0], breaks + 1, [t.size]]))


@pytest.fixture(scope="module")
def naud():
    """Naud et al. 2008 Table 1 patterns, 600 ms step at dt = 0.1 ms, one batched run."""
    names = ["tonic", "adapting", "initial_burst", "regular_bursting"]
    ps = [adex.NAUD_2008[n][0] for n in names]
    params = jax.tree.map(lambda *x: jnp.array(x), *ps)  # a heterogeneous population
    current = jnp.array([adex.NAUD_2008[n][1] for n in names])
    tr = adex.simulate(jnp.broadcast_to(current, (6000, 4)), params, dt=0.1)
    return {n: _isis(tr.spike[:, j], 0.1) for j, n in enumerate(names)}


def test_adex_tonic_is_fast_and_does_not_adapt(naud):
    t, isi = naud["tonic"]
    # b = 0: 60 spikes in 600 ms; ISI 9.3 ms at first, 9.9 ms steady (101 Hz);
    # last / first ISI = 1.06 (no spike-frequency adaptation)
    assert t.size == 60
    assert isi[-1] / isi[0] < 1.1
    assert 1000.0 / isi[-10:].mean() == pytest.approx(101.0, abs=2.0)


def test_adex_adapting_interval_grows_sixfold(naud):
    t, isi = naud["adapting"]
    # ISIs grow monotonically from 11.6 ms to a steady 76 ms: a factor 6.6
    assert np.all(np.diff(isi[:7]) > 0)
    assert isi[-1] / isi[0] > 6.0
    assert isi[-1] == pytest.approx(76.0, abs=1.0)


def test_adex_initial_burst_then_tonic(naud):
    t, isi = naud["initial_burst"]
    # three spikes 3.8 and 7.7 ms apart, then regular spiking every 64 ms
    sizes = _bursts(t)
    assert sizes[0] == 3 and np.all(sizes[1:] == 1)
    assert np.all(isi[:2] < BURST_GAP) and np.all(isi[2:] > 50.0)
    assert isi[-1] == pytest.approx(64.2, abs=1.0)


def test_adex_regular_bursting_has_bimodal_intervals(naud):
    t, isi = naud["regular_bursting"]
    # bursts: 3 spikes, then doublets (5.8 ms apart) every ~139 ms; no ISI between 10 and 100
    sizes = _bursts(t)
    assert sizes[0] == 3 and np.all(sizes[1:] == 2) and sizes.size >= 4
    assert np.all((isi < BURST_GAP) | (isi > 100.0))
    assert np.sum(isi > 100.0) >= 3


@pytest.fixture(scope="module")
def izh():
    """Izhikevich 2003 Fig. 2 classes, I = 10 for 1 s from v = -65, u = b v, dt = 0.1 ms."""
    names = list(iz.IZHIKEVICH_2003)
    params = jax.tree.map(lambda *x: jnp.array(x), *(iz.IZHIKEVICH_2003[n] for n in names))
    tr = iz.simulate(jnp.full((10000, len(names)), 10.0), params, dt=0.1)
    return {n: _isis(tr.spike[:, j], 0.1) for j, n in enumerate(names)}


def test_izhikevich_regular_spiking_adapts(izh):
    t, isi = izh["RS"]
    # 23 spikes: the first ISI 23.7 ms, then a steady 45.1 ms (22 Hz): growth x1.9
    assert t.size == 23
    assert isi[-1] / isi[0] > 1.8 and np.ptp(isi[1:]) < 0.5
    assert np.all(_bursts(t) == 1)


def test_izhikevich_intrinsic_bursting(izh):
    t, isi = izh["IB"]
    # an initial burst of 3 spikes (2.5 and 4.6 ms apart), then single spikes every 31.5 ms
    sizes = _bursts(t)
    assert sizes[0] == 3 and np.all(sizes[1:] == 1)
    assert isi[-1] == pytest.approx(31.5, abs=0.5)


def test_izhikevich_chattering(izh):
    t, isi = izh["CH"]
    # repeated bursts of 5-7 spikes (intra-burst ISIs 1.6-5.1 ms), 47-48 ms between bursts:
    # the ISI distribution is bimodal with nothing between 6 and 40 ms
    sizes = _bursts(t)
    assert sizes.size >= 15 and sizes.min() >= 4 and sizes.max() <= 7
    assert np.all((isi < 6.0) | (isi > 40.0))


def test_izhikevich_fast_spiking_and_low_threshold(izh):
    t_fs, isi_fs = izh["FS"]
    t_rs, _ = izh["RS"]
    # FS: 131 spikes, steady ISI 7.8 ms (128 Hz), the last 100 ISIs within 3 % of each other
    assert t_fs.size > 5 * t_rs.size
    assert 1000.0 / isi_fs[-20:].mean() == pytest.approx(128.0, abs=3.0)
    late = isi_fs[-100:]
    assert late.max() / late.min() < 1.03
    # LTS: high rate with adaptation, ISI 3.1 -> 13.6 ms (x4.4)
    _, isi_lts = izh["LTS"]
    assert isi_lts[-1] / isi_lts[0] > 4.0 and isi_lts[-1] == pytest.approx(13.6, abs=0.3)


def test_surrogate_gradients_reach_adex_and_izhikevich_parameters():
    def count(p):
        return adex.simulate(jnp.full((3000,), 500.0), p, dt=0.1).spike.sum()

    g = jax.grad(count)(adex.NAUD_2008["adapting"][0])
    assert all(np.isfinite(float(x)) for x in g)
    assert float(g.b) < 0  # more adaptation, fewer spikes (through the surrogate)

    def rate_iz(p):
        return iz.simulate(jnp.full((3000,), 10.0), p, dt=0.1).spike.sum()

    g = jax.grad(rate_iz)(iz.IZHIKEVICH_2003["RS"])
    assert all(np.isfinite(float(x)) for x in g) and float(g.d) < 0


def test_adaptive_lif_without_adaptation_is_the_lif_closed_form():
    with jax.enable_x64(True):
        I = jnp.array([2.0, 3.0, 5.0])
        for dt in (0.1, 0.5, 2.0):  # exact: any dt <= t_ref
            rates, valid = _fi_curves(I, alif.ALIFParams(b=0.0), n_isi=5, dt=dt)
            assert bool(valid.all())
            theory = np.asarray(neurons.lif_rate_theory(I))[:, None]
            np.testing.assert_allclose(rates, np.broadcast_to(theory, rates.shape), rtol=1e-12)


def test_adaptive_lif_is_exact_at_any_dt_and_its_gradient_is_exact():
    with jax.enable_x64(True):
        I = jnp.array([2.0, 3.0, 5.0])
        p = alif.ALIFParams()
        ref, _ = _fi_curves(I, p, n_isi=8, dt=0.05)
        for dt in (0.25, 1.0, 2.0):
            got, _ = _fi_curves(I, p, n_isi=8, dt=dt)
            np.testing.assert_allclose(got, ref, rtol=1e-10)
        # adaptation: the first ISI's rate at 3 nA is 103.9 Hz, the eighth's 65.5 Hz
        np.testing.assert_allclose(ref[1, [0, 7]], [103.920, 65.515], atol=1e-3)

        def total(R, b, tau_w, tau_m):
            q = p._replace(R=R, b=b, tau_w=tau_w, tau_m=tau_m)
            return _fi_curves(I, q, n_isi=8, dt=0.5)[0].sum()

        # spike times are differentiated through the implicit function: exact gradients
        check_grads(total, (10.0, 0.2, 100.0, 10.0), order=1, modes=("rev",), eps=1e-5)


def test_neuron_model_errors():
    with pytest.raises(ValueError, match="t_ref"):
        alif.simulate(jnp.ones((3,)), alif.ALIFParams(t_ref=0.5), dt=1.0)
    with pytest.raises(ValueError, match="dt"):
        adex.simulate(jnp.ones((3,)), dt=0.0)
    with pytest.raises(ValueError, match="time axis"):
        iz.simulate(jnp.float32(1.0))
    with pytest.raises(ValueError, match="Delta_T"):
        adex.simulate(jnp.ones((3,)), adex.AdExParams(Delta_T=0.0))
    with pytest.raises(ValueError, match="n_isi"):
        alif.fi_curves(jnp.ones(2), n_isi=0)


def test_reset_is_exact_after_a_huge_overshoot():
    """One Euler step from just below the peak takes V to ~1e9 mV; the reset must land on
    V_r exactly (the form V1 + (V_r - V1) s cancels catastrophically in float32, which left
    V at 0 mV = V_peak and the neuron firing every step)."""
    p = adex.NAUD_2008["tonic"][0]
    near_peak = adex.AdExState(jnp.float32(-1.0), jnp.float32(0.0), jnp.float32(0.0))
    out = adex.step(near_peak, jnp.float32(0.0), p, 0.5)
    assert float(out.spike) == 1.0 and float(out.V) == p.V_r
    pz = iz.IZHIKEVICH_2003["FS"]
    outz = iz.step(
        iz.IzhikevichState(jnp.float32(29.0), jnp.float32(0.0), jnp.float32(0.0)),
        jnp.float32(1e6),
        pz,
        0.5,
    )
    assert float(outz.spike) == 1.0 and float(outz.v) == pz.c


def test_parameter_checks_cover_numpy_scalars_and_arrays():
    """NumPy float32 scalars, 0-d and per-neuron arrays are checked like Python floats (they
    skipped the checks: C = -1 pF ran to V = -2e31 mV); traced parameters still run."""
    I = jnp.full((50,), 500.0)
    with pytest.raises(ValueError, match=r"adex.simulate: C must be a finite number > 0, got -1.0"):
        adex.simulate(I, adex.AdExParams(C=np.float32(-1.0)))
    with pytest.raises(ValueError, match=r"adex.simulate: tau_w .* got -5.0 \(among \(2,\)\)"):
        adex.simulate(I, adex.AdExParams(tau_w=jnp.array([144.0, -5.0])))
    with pytest.raises(ValueError, match="adex.simulate: V_r must be finite and below V_peak"):
        adex.simulate(I, adex.AdExParams(V_r=jnp.array(5.0)))
    with pytest.raises(ValueError, match="adex.simulate: g_L must be a finite number > 0, got nan"):
        adex.simulate(I, adex.AdExParams(g_L=np.float64("nan")))
    J = jnp.full((50,), 2.0)
    with pytest.raises(ValueError, match="adaptive_lif.simulate: tau_m must be .* got -10.0"):
        alif.simulate(J, alif.ALIFParams(tau_m=np.float32(-10.0)))
    with pytest.raises(ValueError, match="adaptive_lif.simulate: R must be"):
        alif.simulate(J, alif.ALIFParams(R=jnp.array([10.0, 0.0])))
    with pytest.raises(ValueError, match="adaptive_lif.simulate: V_r must be finite and below"):
        alif.simulate(J, alif.ALIFParams(V_r=np.float32(-40.0)))
    with pytest.raises(ValueError, match="needs dt <= t_ref"):
        alif.simulate(J, alif.ALIFParams(t_ref=np.array([2.0, 0.05])), dt=0.1)
    # traced parameters are not checked, and give the eager result
    V = jax.jit(lambda C: adex.simulate(I, adex.AdExParams(C=C)).V)(281.0)
    np.testing.assert_array_equal(V, adex.simulate(I).V)


def test_izhikevich_checks_its_reset_and_recovery_rate():
    """c = 40 mV (reset above v_peak = 30) re-fired 60 times in 100 ms at I = 10; a < 0 made u
    diverge. Both are refused; b and d may be negative (Izhikevich 2004's class-1 cell)."""
    I = jnp.full((1000,), 10.0)
    with pytest.raises(ValueError, match="izhikevich.simulate: c must be finite and below v_peak"):
        iz.simulate(I, iz.IzhikevichParams(c=40.0))
    with pytest.raises(ValueError, match="izhikevich.simulate: c must .* got c=-65.0, v_peak=nan"):
        iz.simulate(I, iz.IzhikevichParams(v_peak=np.float32("nan")))
    with pytest.raises(ValueError, match="izhikevich.simulate: a must be a finite number > 0"):
        iz.simulate(I, iz.IzhikevichParams(a=-0.02))
    with pytest.raises(ValueError, match="izhikevich.simulate: a must be .* got 0.0"):
        iz.simulate(I, iz.IzhikevichParams(a=jnp.array([0.02, 0.0])))
    with pytest.raises(ValueError, match="izhikevich.simulate: dt must be > 0"):
        iz.simulate(I, dt=-0.1)
    tr = iz.simulate(jnp.full((2000,), 30.0), iz.IzhikevichParams(0.02, -0.1, -55.0, 6.0))
    assert np.isfinite(np.asarray(tr.v)).all() and 0 < float(tr.spike.sum()) < 100


def test_adaptive_lif_with_tau_w_equal_to_tau_m_takes_the_limit():
    """tau_w = tau_m is the limit of the closed form, u(s) = u0 e^{-s/tau} - R w0 (s/tau)
    e^{-s/tau}, not an error; in float32, tau_w = 10 + 1e-7 (== tau_m once rounded) gave
    V = nan from the first step (K = 0 * inf)."""
    with jax.enable_x64(True):
        p = alif.ALIFParams(tau_w=10.0)
        nan = jnp.array(jnp.nan)
        st = alif.ALIFState(jnp.array(-60.0), jnp.array(0.5), jnp.array(0.0), jnp.array(0.0), nan)
        out = alif.step(st, jnp.array(1.0), p, 0.5)  # V_inf = -55 mV: no spike
        e = np.exp(-0.05)
        assert float(out.V) == pytest.approx(-55.0 - 5.0 * e - 10.0 * 0.5 * 0.05 * e, rel=1e-14)
        assert float(out.w) == pytest.approx(0.5 * e, rel=1e-14)
        # continuous (and smooth) across tau_w = tau_m: +-1e-6 ms moves the rates ~1e-8
        I = jnp.array([2.0, 3.0, 5.0])
        at, _ = _fi_curves(I, p, n_isi=4, dt=0.5)
        for tau_w in (10.0 - 1e-6, 10.0 + 1e-6):
            near, _ = _fi_curves(I, p._replace(tau_w=tau_w), n_isi=4, dt=0.5)
            np.testing.assert_allclose(near, at, rtol=1e-7)
        total = lambda tau_w: _fi_curves(I, p._replace(tau_w=tau_w), n_isi=4, dt=0.5)[0].sum()
        check_grads(total, (10.0,), order=1, modes=("rev",), eps=1e-5)
    J = jnp.full((300,), 2.0)
    got = alif.simulate(J, alif.ALIFParams(tau_w=10.0 + 1e-7))
    assert np.isfinite(np.asarray(got.V)).all() and float(got.spike.sum()) == 1.0
    np.testing.assert_array_equal(got.V, alif.simulate(J, alif.ALIFParams(tau_w=10.0)).V)


def test_fi_curves_checks_dt_and_duration_and_keeps_nan():
    """duration < dt, dt = 0, dt = nan and duration < 0 failed deep inside (modulo by zero, a
    NaN-to-int conversion, a broadcast TypeError); a nan current read 0 Hz."""
    I = jnp.array([3.0])
    with pytest.raises(ValueError, match="fi_curves: duration must be at least dt = 0.1 ms"):
        alif.fi_curves(I, duration=0.05)
    with pytest.raises(ValueError, match="fi_curves: dt must be > 0 and finite .* got 0.0"):
        alif.fi_curves(I, dt=0.0)
    with pytest.raises(ValueError, match="fi_curves: dt must be > 0 and finite .* got nan"):
        alif.fi_curves(I, dt=float("nan"))
    with pytest.raises(ValueError, match=r"fi_curves: duration \(ms\) must be .* got -1.0"):
        alif.fi_curves(I, duration=-1.0)
    with pytest.raises(ValueError, match="fi_curves: needs dt <= t_ref"):
        alif.fi_curves(I, alif.ALIFParams(t_ref=1.0), dt=2.0)
    rates, valid = alif.fi_curves(jnp.array([jnp.nan, 3.0]), n_isi=np.int64(2))
    assert np.isnan(np.asarray(rates[0])).all() and not bool(valid[0].any())
    alone, _ = alif.fi_curves(I, n_isi=2)
    np.testing.assert_array_equal(rates[1], alone[0])
    assert 90.0 < float(alone[0, 0]) < 110.0


def test_simulate_names_shapes_that_do_not_broadcast():
    """A state, input or parameter shape that cannot be the scanned population's was a bare
    JAX TypeError from inside the scan."""
    with pytest.raises(ValueError, match=r"adex.simulate: the input's trailing shape \(3,\)"):
        adex.simulate(jnp.ones((5, 3)), state=adex.init_state((4,)))
    with pytest.raises(
        ValueError, match=r"izhikevich.simulate: .* parameters' shapes \[\(\), \(4,\)"
    ):
        iz.simulate(jnp.ones((5, 3)), iz.IzhikevichParams(a=jnp.full((4,), 0.02)))
    with pytest.raises(ValueError, match=r"adaptive_lif.simulate: .* state's fields \[\(2,\)"):
        alif.simulate(jnp.ones((5, 3)), state=alif.init_state((2,)))
    # a state wider than the input is a valid population: every neuron gets the same input
    tr = adex.simulate(jnp.full((5,), 500.0), state=adex.init_state((4,)))
    assert tr.V.shape == (5, 4)
    np.testing.assert_array_equal(tr.V[:, 3], adex.simulate(jnp.full((5,), 500.0)).V)


@pytest.mark.parametrize(
    "where, run, level",
    [
        ("adex.simulate", adex.simulate, 600.0),
        ("adaptive_lif.simulate", alif.simulate, 2.0),
        ("izhikevich.simulate", lambda I: iz.simulate(I, dt=0.1), 10.0),
        ("lif_continuous", neurons.lif_continuous, 2.0),
    ],
)
def test_a_nan_or_inf_input_is_refused_not_read_as_silence(where, run, level):
    """Review: a nan at step 5 made V nan for the rest of the run, which never crosses the
    threshold: 0 spikes and no error (7 spikes without it). Refused naming the step, also
    when the input is a constant inside a jit; a traced input is not checked."""
    I = jnp.full((2000,), level)
    out = run(I)
    assert float(out.spike.sum() if hasattr(out, "spike") else out.n_spikes.sum()) > 0
    for bad in (jnp.nan, jnp.inf):
        J = I.at[5].set(bad)
        with pytest.raises(ValueError, match=rf"^{where}: the input holds nan or inf \(first at "
                           r"step 5\)$"):  # fmt: skip
            run(J)
        with pytest.raises(ValueError, match=r"the input holds nan or inf"):
            jax.jit(lambda J=J: jax.tree.leaves(run(J))[0])()  # a constant of the traced fn
    jax.jit(lambda I: jax.tree.leaves(run(I))[0])(I.at[5].set(jnp.nan))  # traced: unchecked


def test_f_i_curves_read_a_nan_current_as_nan():
    """Review: lif_fi_curve gave 0 Hz for a nan current, where lif_rate_theory gives nan."""
    rates = neurons.lif_fi_curve(jnp.array([jnp.nan, 3.0]))
    assert np.isnan(float(rates[0])) and float(rates[1]) == float(neurons.lif_fi_curve(3.0))
    assert np.isnan(float(neurons.lif_rate_theory(jnp.array([jnp.nan]))[0]))
    np.testing.assert_allclose(rates[1], neurons.lif_rate_theory(3.0), rtol=1e-3)
