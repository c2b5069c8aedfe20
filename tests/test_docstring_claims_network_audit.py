"""Docstring claims of nnjax.brain's spiking network and its night held to what the code does
(network, network_step, network_types, sleep_states, night, circuits, convert, helmholtz,
hypnogram). Each defect test failed on the code before its fix; the rest pin stated numbers
against independent oracles (analytic formulas, SciPy)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from nnjax.brain import circuits, convert, hypnogram, night, sleep_states
from nnjax.brain import network as N

# ----------------------------------------------------------------- defects (fixed here)


def _in_degrees(n_exc: int) -> tuple[int, int]:
    """(E inputs, I inputs) per cell of night_network(n_exc), counted in drawn masks."""
    cfg = night.night_network(n_exc)
    p = circuits.init_params(jax.random.key(0), cfg)
    from_e = np.asarray(jnp.concatenate([p.W_ee, p.W_ie]) > 0).sum(1)
    from_i = np.asarray(jnp.concatenate([p.W_ei, p.W_ii]) > 0).sum(1)
    assert len(set(from_e)) == 1 and len(set(from_i)) == 1  # fixed in-degree
    return int(from_e[0]), int(from_i[0])


def test_night_network_in_degrees_are_not_always_cortex_s():
    """night_network's docstring promised CORTEX's in-degrees, 80 E and 20 I inputs per cell,
    for any n_exc >= 83; with n_exc // 4 I cells and p = 80 / n_exc, n_exc = 83, 87, ...,
    119 gave every cell 19 I inputs (round(80 / 83 * 20) = 19). The docstring says so now."""
    assert _in_degrees(83) == (80, 19)  # drawn; the rest by in_degree, what the masks use
    assert _in_degrees(84) == (80, 20)
    bad = [
        n
        for n in range(83, 400)
        if circuits.in_degree(80.0 / n, n // 4) != 20 or circuits.in_degree(80.0 / n, n) != 80
    ]
    assert bad == list(range(83, 120, 4))
    doc = " ".join(night.night_network.__doc__.split())
    assert "but 19 for n_exc = 83, 87, ..., 119" in doc
    assert "CORTEX's 20 when n_exc is a multiple of 4" in doc


def test_simulate_night_bins_are_ten_steps_not_always_1_ms(tmpdir_here):
    """simulate_night's docstring said "1 ms bins"; they are 10 steps (Monitor(every=10)):
    0.5 ms for a network at dt = 0.05 ms."""
    cfg = night.night_network(84)._replace(dt=0.05)
    out = night.simulate_night(np.array([0]), 0.01, cfg=cfg)
    assert out["bin_ms"] == pytest.approx(0.5)
    assert out["record"]["rate"].shape == (20, 2)  # 10 ms of 0.5 ms bins
    assert out["stages"] == {}  # no stage lasts DESCRIBED_S
    doc = " ".join(night.simulate_night.__doc__.split())
    assert "bins of 10 steps: bin_ms = 10 cfg.dt, 1 ms at CORTEX's dt = 0.1 ms" in doc


@pytest.mark.parametrize(
    "dataset, order, match",
    [
        ("digits", [0, 0, 1], r"order must be a permutation of 0..9, got \[0 0 1\]"),
        ("digits", list(range(1, 11)), r"order must be a permutation of 0..9"),
        ("permuted-digits", [1, 0], r"permuted-digits takes an int order >= 0"),
    ],
)
def test_run_study_refuses_a_bad_explicit_order_before_the_study_runs(
    dataset, order, match, monkeypatch
):
    """run_study's docstring: orders (ints >= 0, or permutations for a class-incremental
    dataset) are checked before anything runs (check_study). An integer array that is no
    permutation of the classes, or any array for a permuted dataset, passed check_study and
    failed only when the first group loaded its split, inside the study."""
    from nnjax.brain import study

    monkeypatch.setattr(study, "run_group", lambda *a, **k: pytest.fail("the study ran"))
    with pytest.raises(ValueError, match=rf"^run_study: orders: {match}"):
        study.run_study(dataset, orders=[order], n_seeds=1, rows=("sequential",), images=False)
    orders, _ = study.check_study("digits", [0, np.arange(10)[::-1]], 1, ["sequential"])
    assert len(orders) == 2  # a true permutation passes


def test_network_docstring_does_not_credit_the_benchmark_with_dense_against_gather():
    """network's docstring: a dense product is cheaper than a gather at N = 1000, p = 0.1,
    "``benchmarks/network.py`` measures it"; that benchmark times nnjax against Brian2 and
    never builds a gather. The docstring now quotes the measurement (3 to 4 times: 64
    against 258 us a step) and says what the benchmark times."""
    import pathlib

    bench = pathlib.Path(__file__).parents[1] / "benchmarks" / "network.py"
    assert "gather" not in bench.read_text(encoding="utf-8")
    doc = " ".join(N.__doc__.split())
    assert "measures it" not in doc
    assert "3 to 4 times cheaper" in doc
    assert "64 against 258 us a step for one 1000 x 1000 block" in doc
    assert "times the whole network against Brian2, not this choice" in doc


# ------------------------------------------------------ stated numbers, re-measured


def _pair(t_ref=5.0, delay_ms=1.5, model="adex", w_ie=0.0, bias=600.0):
    """1 E + 1 I cell, no recurrent synapse but E -> I (w_ie), no external input, the E cell
    driven by a constant bias (pA, or nA for adaptive LIF)."""
    cfg = circuits.NetworkConfig(
        n_exc=1, n_inh=1, model=model, p=0.0, w_ee=0.0, w_ei=0.0, w_ie=0.0, w_ii=0.0,
        rate_ext=0.0, w_ext=0.0, t_ref=t_ref, delay_ms=delay_ms,
    )  # fmt: skip
    p = circuits.init_params(jax.random.key(0), cfg)
    return p._replace(W_ie=jnp.full((1, 1), w_ie), I_bias=jnp.array([bias, 0.0])), cfg.spec


@pytest.mark.parametrize("t_ref, steps", [(2.06, 21), (2.05, 20), (0.35, 4), (5.0, 50)])
def test_adex_refractory_clamp_lasts_the_stated_steps(t_ref, steps):
    """network docstring: a cell that spiked is held at V_r for round(t_ref / dt) steps:
    2.06 ms -> 21, 2.05 -> 20, 0.35 -> 4 (the half-step remainders as float rounding gives)."""
    p, spec = _pair(t_ref)
    mon = N.Monitor(every=1, neurons=(0,), variables=("V",))
    rec = N.simulate(jax.random.key(0), p, spec, 400, monitor=mon).record
    V, spikes = np.asarray(rec["V"])[:, 0], np.flatnonzero(np.asarray(rec["spikes"])[:, 0])
    held = V[spikes[0] : spikes[1]] == float(circuits.RS_CELL.V_r)
    assert held[0]  # reset at the spike step
    assert np.argmin(held[1:]) == steps  # then exactly `steps` steps at V_r


@pytest.mark.parametrize("delay_ms, d", [(0.0, 0), (0.3, 3), (1.5, 15)])
def test_adex_spike_enters_the_conductance_at_the_end_of_step_t_plus_d(delay_ms, d):
    """NetworkSpec: an AdEx spike of step t enters the conductance at the end of step t + d;
    syn_exc is the conductance at a step's start, so it is first > 0 at step t + d + 1."""
    p, spec = _pair(delay_ms=delay_ms, w_ie=4.0)
    assert spec.delay_steps == d
    mon = N.Monitor(every=1, neurons=(1,), variables=("syn_exc",))
    rec = N.simulate(jax.random.key(0), p, spec, 300, monitor=mon).record
    t = np.flatnonzero(np.asarray(rec["spikes"])[:, 0])[0]
    assert np.flatnonzero(np.asarray(rec["syn_exc"])[:, 0] > 0)[0] == t + d + 1


def test_alif_spike_arrives_exactly_d_dt_after_its_time():
    """NetworkSpec: an adaptive-LIF spike at k dt + t_spike arrives d dt later; the I cell's
    syn_exc (the current's mean over a step) is that of a jump of w at the arrival time."""
    w, dt = 0.5, 0.1
    p, spec = _pair(t_ref=2.0, delay_ms=0.5, model="alif", w_ie=w, bias=1.73)
    mon = N.Monitor(every=1, neurons=(0, 1), variables=("t_spike", "syn_exc"))
    rec = N.simulate(jax.random.key(0), p, spec, 400, monitor=mon).record
    k = np.flatnonzero(np.asarray(rec["spikes"])[:, 0])[0]
    arrival = k * dt + float(np.asarray(rec["t_spike"])[k, 0]) + spec.delay_steps * dt
    j = int(arrival // dt)
    g = np.asarray(rec["syn_exc"], np.float64)[:, 1]
    assert np.flatnonzero(g)[0] == j
    tau, rest = float(p.exc_syn.tau), (j + 1) * dt - arrival
    assert g[j] == pytest.approx(w * tau * (1 - np.exp(-rest / tau)) / dt, rel=1e-4)


def test_poisson_truncation_tail_numbers():
    """network docstring: P(X > 8) is 1e-6 at a mean of 1 per step and 2.4e-4 at 2 (a 20 kHz
    drive at dt = 0.1 ms); MAX_STEPS is about 30 h at dt = 0.1 ms."""
    assert N.POISSON_MAX == 8
    assert stats.poisson.sf(8, 1.0) == pytest.approx(1e-6, rel=0.2)
    assert stats.poisson.sf(8, 20_000 * 0.1 / 1000) == pytest.approx(2.4e-4, rel=0.02)
    assert N.MAX_STEPS * 0.1 / 1000 / 3600 == pytest.approx(30, rel=0.01)
    u = jnp.linspace(0.0005, 0.9995, 2000)  # inverse transform: the quantiles of Poisson(2)
    counts = N._poisson_inverse(u, jnp.full_like(u, 2.0))
    want = np.minimum(stats.poisson.ppf(np.asarray(u), 2.0), N.POISSON_MAX)
    np.testing.assert_array_equal(np.asarray(counts), want)


def test_sleep_state_levels_give_the_documented_modulation():
    """sleep_states: g_K = g_K_max (1 - (ach + mono) / 2), b_scale = 1 - b_block ach,
    gain_ee = 1 + (gain_ee_max - 1)(1 - ach), ext_scale = ext_min + (1 - ext_min) mono; wake,
    NREM, REM at their levels; a 0.2 s ramp is linear and centred on the boundary."""
    want = {
        "wake": (0.0, 0.0, 1.0, 1.0),
        "NREM": (1.5, 1.0, 1.8, 0.35),
        "REM": (0.75, 0.0, 1.0, 0.35),
    }
    for stage, (g_K, b, gain, ext) in want.items():
        m = sleep_states.modulation(sleep_states.STATES[stage])
        got = [float(m.g_K), float(m.b_scale), float(m.gain_ee), float(m.ext_scale)]
        np.testing.assert_allclose(got, [g_K, b, gain, ext], rtol=1e-6)
        assert float(m.gain_ei) == float(m.gain_ie) == float(m.gain_ii) == 1.0
    ach = sleep_states.schedule([0, 1], 1.0, 1.0, ramp_s=0.2).ach  # wake -> NREM, 1 ms steps
    np.testing.assert_allclose(ach[900:1101], np.linspace(1.0, 0.0, 201), atol=1e-6)
    assert len(sleep_states.schedule([1], 1.0, 0.3).ach) == 3333  # 0.9999 s an epoch


def test_stated_small_numbers():
    """stage_bins: three 0.35 s epochs end at 1.0499999999999998 s, bin 1050; stage_at: 0.3 s
    is in epoch 3 of 0.1 s epochs; convert: z = 0.1 for T = 10 gives 0 spikes in float64 and
    1 in float32, floor(T z) spikes elsewhere; MIN_N_EXC = 83 is the fewest that wire."""
    assert (
        0.35 + 0.35 + 0.35 == 1.0499999999999998 and night.stage_bins(1.0499999999999998, 1) == 1050
    )
    names = ("a", "b", "c", "d")
    assert hypnogram.stage_at([0, 1, 2, 3], 0.3, 0.1, names=names) == 3
    for dtype, spikes in ((np.float32, 1), (np.float64, 0)):
        with jax.enable_x64(dtype is np.float64):
            one = {"W": jnp.eye(1, dtype=dtype), "b": jnp.zeros(1, dtype)}
            conv = convert.Converted([one, one], jnp.ones(3, dtype))
            rate = convert.simulate(conv, jnp.array([[0.1]], dtype), 10).rates[0]
            assert round(float(rate[0, 0]) * 10) == spikes
    z = np.random.default_rng(0).uniform(0, 1.2, (1, 40)).astype(np.float32)
    eye = {"W": jnp.eye(40), "b": jnp.zeros(40)}
    rate = convert.simulate(convert.Converted([eye, eye], jnp.ones(3)), z, 100).rates[0]
    np.testing.assert_array_equal(
        np.round(np.asarray(rate) * 100), np.floor(100 * np.clip(z, 0, 1))
    )
    assert night.MIN_N_EXC == 83
    night.night_network(83)
    with pytest.raises(ValueError, match=r"connectivity: p=0.975609756097561 asks for 20 inputs"):
        circuits.init_params(
            jax.random.key(0), circuits.CORTEX._replace(n_exc=82, n_inh=20, p=80 / 82)
        )
