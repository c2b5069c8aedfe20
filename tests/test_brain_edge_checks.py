"""Edge cases of the brain side's public functions that used to pass silently (a wrong shape,
a nan state, a misleading error): each is now a ValueError naming the function, the
argument and its valid range. Short simulations only."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nnjax.brain import activity, adaptive_lif, adex, circuits, izhikevich, kuramoto, neurons
from nnjax.brain import detect as de
from nnjax.brain import hodgkin_huxley as hh
from nnjax.brain import network as nw
from nnjax.brain import plasticity as pl
from nnjax.brain import spiking as sp
from nnjax.brain import synapses as syn
from nnjax.brain import synchrony as sy

NAN = float("nan")


# plasticity: shapes that broadcast W into another shape


def test_stdp_mask_of_another_shape_is_refused_not_broadcast_into_W():
    """Finding: a mask (n_pre,) or (k, n_post, n_pre) broadcast W (3, 2) into (4, 3, 2)."""
    W, pre, post = jnp.ones((3, 2)), jnp.ones(2), jnp.ones(3)
    for mask in (jnp.ones((4, 3, 2)), jnp.ones((2, 3))):
        with pytest.raises(ValueError, match=r"pair_stdp_step: mask must have W's shape"):
            pl.pair_stdp_step(pl.pair_init(2, 3), W, pre, post, pl.PairSTDPParams(), 1.0, mask=mask)
        with pytest.raises(ValueError, match=r"triplet_stdp_step: mask must have W's shape"):
            pl.triplet_stdp_step(
                pl.triplet_init(2, 3), W, pre, post, pl.TripletParams(), 1.0, mask=mask
            )
    # a mask of W's shape, or one that broadcasts to it without widening it, still works
    _, W1 = pl.pair_stdp_step(
        pl.pair_init(2, 3), W, pre, post, pl.PairSTDPParams(), 1.0, mask=jnp.ones(2)
    )
    assert W1.shape == (3, 2)


def test_scaling_step_refuses_shapes_that_broadcast_W():
    """Finding: W (3,) became (3, 3), and a rate (1,) scaled every row by one estimate."""
    p = pl.ScalingParams()
    with pytest.raises(ValueError, match=r"scaling_step: needs W \(n_post, n_pre\)"):
        pl.scaling_step(jnp.zeros(3), jnp.ones(3), jnp.zeros(3), p, 1.0)
    with pytest.raises(ValueError, match=r"scaling_step: .* rate \(1,\)"):
        pl.scaling_step(jnp.zeros(1), jnp.ones((3, 4)), jnp.ones(3), p, 1.0)
    rate, W = pl.scaling_step(jnp.zeros(3), jnp.ones((3, 4)), jnp.ones(3), p, 1.0)
    assert rate.shape == (3,) and W.shape == (3, 4)


def test_trace_inits_name_a_negative_size():
    for f, where in (
        (lambda: pl.pair_init(-1, 2), "pair_init"),
        (lambda: pl.triplet_init(2, -1), "triplet_init"),
        (lambda: pl.scaling_init(-1), "scaling_init"),
    ):
        with pytest.raises(ValueError, match=rf"{where}: n_\w+ must be an int >= 0"):
            f()


# synapses: a drive or a spike vector that would widen the state


def test_synapse_step_and_delay_push_refuse_wider_inputs():
    """Finding: a drive (2, 3) turned x (3,) into (2, 3); spikes (1,) pushed the one neuron's
    spike onto every presynaptic neuron."""
    with pytest.raises(ValueError, match=r"synapses.step: drive must broadcast to .* \(3,\)"):
        syn.step(syn.init_state((3,)), jnp.ones((2, 3)), syn.AMPA, 0.1)
    with pytest.raises(ValueError, match=r"delay_push: spikes must have shape \(3,\)"):
        syn.delay_push(syn.delay_init(3, 2), jnp.ones(1))
    assert syn.step(syn.init_state((3,)), 1.0, syn.AMPA, 0.1).x.shape == (3,)
    # Finding: arrival_weights at dt = 0 gave nan, at tau = 0 silently 0
    with pytest.raises(ValueError, match=r"arrival_weights: dt \(ms\) must be a finite number > 0"):
        syn.arrival_weights(jnp.ones(2), jnp.zeros(2), 0.0, syn.AMPA)
    with pytest.raises(ValueError, match=r"arrival_weights: tau \(ms\) must be a finite number"):
        syn.arrival_weights(jnp.ones(2), jnp.zeros(2), 0.1, syn.SynapseParams(tau=0.0))


# neurons: nan parameters made a silent neuron


@pytest.mark.parametrize(
    "kw, name", [({"R": NAN}, "R"), ({"R": -10.0}, "R"), ({"E_L": NAN}, "E_L"), ({"V0": NAN}, "V0")]
)
def test_lif_continuous_refuses_nan_or_negative_parameters(kw, name):
    """Finding: R = nan, E_L = nan or V0 = nan gave a nan membrane and no spike (0 Hz)."""
    with pytest.raises(ValueError, match=rf"lif_continuous: {name} must be a finite number"):
        neurons.lif_continuous(jnp.full((5, 2), 2.0), **kw)


def test_lif_names_a_v0_that_widens_the_population_and_if_rate_takes_numpy_ints():
    with pytest.raises(ValueError, match=r"lif: .* v0 \(2, 3\)"):
        neurons.lif(jnp.ones((4, 3)), v0=jnp.zeros((2, 3)))
    assert neurons.if_rate(0.5, np.int64(10)).shape == ()


@pytest.mark.parametrize(
    "simulate, params, name",
    [
        (adaptive_lif.simulate, adaptive_lif.ALIFParams(E_L=NAN), "E_L"),
        (adaptive_lif.simulate, adaptive_lif.ALIFParams(b=NAN), "b"),
        (adex.simulate, adex.AdExParams(E_L=NAN), "E_L"),
        (adex.simulate, adex.AdExParams(V_T=NAN), "V_T"),
        (adex.simulate, adex.AdExParams(a=NAN), "a"),
        (izhikevich.simulate, izhikevich.IzhikevichParams(b=NAN), "b"),
        (izhikevich.simulate, izhikevich.IzhikevichParams(d=np.array([8.0, NAN])), "d"),
    ],
)
def test_neuron_models_refuse_nan_parameters(simulate, params, name):
    """Finding: each of these ran and returned nan membranes (a silent neuron), no error."""
    with pytest.raises(ValueError, match=rf"simulate: {name} must be a finite number"):
        simulate(jnp.ones((5, 2)), params)


def test_hodgkin_huxley_blames_a_nan_parameter_not_dt():
    """Finding: ENa = nan, celsius = nan or V0 = nan were reported as 'RK4 diverges at
    dt = 0.01 ms; use a smaller dt'."""
    I = jnp.zeros((5,))
    with pytest.raises(ValueError, match=r"simulate: ENa \(mV\) must be a finite number"):
        hh.simulate(I, params=hh.HHParams(ENa=NAN))
    with pytest.raises(ValueError, match=r"simulate: celsius \(C\) must be a finite number"):
        hh.simulate(I, params=hh.HHParams(celsius=NAN))
    with pytest.raises(ValueError, match=r"simulate: V0 \(mV\) must be a finite number"):
        hh.simulate(I, V0=NAN)
    with pytest.raises(ValueError, match=r"fi_curve: EL \(mV\) must be a finite number"):
        hh.fi_curve(jnp.ones(1), duration=1.0, discard=0.0, params=hh.HHParams(EL=NAN))


def test_hodgkin_huxley_durations_and_steps_are_checked():
    """Finding: resting_potential(dt=0) raised ZeroDivisionError, duration < 0 a TypeError;
    fi_curve(duration=inf) an OverflowError, and dt = inf ran no step and read 0 Hz."""
    with pytest.raises(ValueError, match=r"resting_potential: dt must be > 0 and finite"):
        hh.resting_potential(dt=0.0)
    with pytest.raises(ValueError, match=r"resting_potential: duration \(ms\) must be"):
        hh.resting_potential(duration=-1.0)
    with pytest.raises(ValueError, match=r"fi_curve: need 0 <= discard < duration, duration fin"):
        hh.fi_curve(jnp.ones(1), duration=float("inf"))
    with pytest.raises(ValueError, match=r"fi_curve: dt must be > 0 and finite .* got inf"):
        hh.fi_curve(jnp.ones(1), duration=10.0, discard=0.0, dt=float("inf"))


def test_hodgkin_huxley_float32_stays_float32_under_x64():
    with jax.enable_x64(True):
        tr = hh.simulate(jnp.zeros((3,), jnp.float32))
        assert tr.V.dtype == tr.m.dtype == jnp.float32
        assert hh.simulate(jnp.zeros((3,), jnp.float64)).V.dtype == jnp.float64


# kuramoto


def test_kuramoto_refuses_no_oscillators_and_nan_inputs():
    """Finding: N = 0 returned r = nan at every record; a nan K, omega, theta0 or coupling
    entry turned every phase into nan with no error; a string K raised a TypeError."""
    th, om = jnp.linspace(0.0, 1.0, 5), jnp.zeros(5)
    with pytest.raises(ValueError, match=r"simulate: theta0 must hold N >= 1"):
        kuramoto.simulate(jnp.zeros((0,)), jnp.zeros((0,)), 1.0, n_steps=10)
    cases = [
        ({"K": NAN}, "K"),
        ({"omega": om.at[2].set(NAN)}, "omega"),
        ({"theta0": th.at[0].set(np.inf)}, "theta0"),
        ({"coupling": jnp.full((5, 5), NAN)}, "coupling"),
    ]
    for kw, name in cases:
        args = {"theta0": th, "omega": om, "K": 1.0, **kw}
        with pytest.raises(ValueError, match=rf"simulate: {name} must be a finite number"):
            kuramoto.simulate(n_steps=10, **args)
    with pytest.raises(ValueError, match=r"simulate: K must be a number"):
        kuramoto.simulate(th, om, "1", n_steps=10)
    r1 = kuramoto.simulate(jnp.zeros(1), jnp.ones(1), -1.0, n_steps=10).r  # N = 1, K < 0: fine
    np.testing.assert_allclose(r1, 1.0, rtol=1e-6)


def test_frequency_draws_refuse_a_negative_or_nan_width():
    """Finding: gamma = -1 gave the frequencies in reverse order, gamma = nan all nan."""
    for f, name in (
        (kuramoto.lorentzian_frequencies, "gamma"),
        (kuramoto.gaussian_frequencies, "sigma"),
    ):
        for bad in (-1.0, NAN, 0.0):
            with pytest.raises(
                ValueError, match=rf"frequencies: {name} must be a finite number > 0"
            ):
                f(5, bad)
        with pytest.raises(ValueError, match=r"frequencies: omega0 must be a finite number"):
            f(5, 1.0, NAN)


# synchrony


def test_coincidence_inputs_refuse_nan_jitter_and_volleys_outside_the_run():
    """Finding: jitter = nan rounded to an arbitrary int32 step (a plausible raster); a volley
    at step 50 of a 10-step run piled every spike onto the last step."""
    key, v = jax.random.key(0), jnp.array([5])
    with pytest.raises(ValueError, match=r"coincidence_inputs: jitter \(steps\) must be a fin"):
        sy.coincidence_inputs(key, 3, 10, v, NAN)
    with pytest.raises(ValueError, match=r"coincidence_inputs: jitter \(steps\) must be .* >= 0"):
        sy.coincidence_inputs(key, 3, 10, v, -1.0)
    with pytest.raises(ValueError, match=r"coincidence_inputs: volley_times must be .* \[0, n_st"):
        sy.coincidence_inputs(key, 3, 10, jnp.array([50]), 0.0)
    with pytest.raises(ValueError, match=r"coincidence_inputs: n_steps must be an int >= 1"):
        sy.coincidence_inputs(key, 3, 0, v, 0.0)
    assert float(sy.coincidence_inputs(key, 3, 10, v, 0.0)[5].sum()) == 3.0


# network: parameter values were never checked


SMALL = circuits.NetworkConfig(n_exc=4, n_inh=2, p=0.5, delay_ms=0.3, rate_ext=0.0)


def _small(model="adex"):
    currents = {"w_ei": -50.0, "w_ii": -50.0} if model == "alif" else {}  # ALIF's inhibition
    cfg = SMALL._replace(model=model, **currents)
    return circuits.init_params(jax.random.key(0), cfg), cfg.spec


@pytest.mark.parametrize(
    "model, change, match",
    [
        ("adex", lambda p: p._replace(neuron=p.neuron._replace(C=-p.neuron.C)), "C must be"),
        ("adex", lambda p: p._replace(neuron=p.neuron._replace(E_L=p.neuron.E_L * NAN)), "E_L"),
        (
            "alif",
            lambda p: p._replace(neuron=p.neuron._replace(tau_m=0.0 * p.neuron.tau_m)),
            "tau_m must be",
        ),
        ("alif", lambda p: p._replace(neuron=p.neuron._replace(t_ref=0.01)), "needs dt <= t_ref"),
        ("adex", lambda p: p._replace(exc_syn=syn.SynapseParams(tau=0.0)), r"exc_syn.tau \(ms\)"),
        ("adex", lambda p: p._replace(inh_syn=syn.SynapseParams(tau=-1.0)), r"inh_syn.tau"),
        ("adex", lambda p: p._replace(rate_ext=-100.0), "rate_ext must be a finite number >= 0"),
        ("adex", lambda p: p._replace(t_ref=-1.0), "t_ref must be a finite number >= 0"),
        ("adex", lambda p: p._replace(w_ext=NAN), "w_ext must be a finite number"),
        ("alif", lambda p: p._replace(I_bias=NAN), "I_bias must be a finite number"),
    ],
)
def test_network_refuses_parameter_values_out_of_range(model, change, match):
    """Finding: each ran to the end (a negative capacitance, a zero time constant, two spikes
    per step of an adaptive-LIF cell, a negative Poisson rate read as silence)."""
    params, spec = _small(model)
    with pytest.raises(ValueError, match=rf"network.*{match}"):
        nw.simulate(jax.random.key(1), change(params), spec, 4)


def test_network_parameter_checks_pass_traced_values():
    params, spec = _small()
    run = jax.vmap(lambda r: nw.simulate(jax.random.key(1), params._replace(rate_ext=r), spec, 4))
    assert run(jnp.array([0.0, 10.0])).record["rate"].shape == (2, 4, 2)


def test_network_names_an_infinite_delay():
    """Finding: delay_ms = inf raised an OverflowError from round()."""
    params, spec = _small()
    with pytest.raises(ValueError, match=r"network: delay_ms must give"):
        nw.simulate(jax.random.key(1), params, spec._replace(delay_ms=float("inf")), 4)


def test_adex_refuses_a_step_past_its_fastest_time_constant():
    """Finding: dt = 15 ms (> C / g_L = 9.4 ms) ran, and the cell fired 24 spikes in 1 s at
    800 pA against 17 at dt = 0.1 ms: Euler overshoots rest every step."""
    with pytest.raises(ValueError, match=r"adex.simulate: dt must be below .* 9.36\d* ms"):
        adex.simulate(jnp.full((3, 1), 800.0), dt=15.0)
    params, spec = _small()
    with pytest.raises(ValueError, match=r"network: neuron: dt must be below"):
        nw.simulate(jax.random.key(1), params, spec._replace(dt=25.0, delay_ms=25.0), 2)
    assert adex.simulate(jnp.full((3, 1), 800.0), dt=5.0).V.shape == (3, 1)


def test_surrogate_gradient_of_the_spike_count_does_not_explode_over_spikes():
    """Finding: d(count)/d(input scale) through the surrogate went -1.0e9 (AdEx, 800 pA,
    300 ms, 6 spikes) and -6.3e15 (Izhikevich RS, I = 10, 300 ms; nan over 1 s): the jump
    w += b s (u += d s) carried the surrogate into the next upswing, where it grew by orders
    of magnitude per spike, and the sign came out wrong. The jump now follows detach_reset."""

    def count_adex(x):
        return adex.simulate(jnp.full((3000, 1), 800.0) * x).spike.sum()

    def count_iz(x):
        return izhikevich.simulate(jnp.full((3000, 1), 10.0) * x).spike.sum()

    for count, bound in ((count_adex, 1e6), (count_iz, 1e5)):
        g = float(jax.grad(count)(1.0))
        assert 0.0 < g < bound  # more drive, more spikes; bounded
    # the forward pass is unchanged, and dL/db, dL/dd keep their sign (more adaptation,
    # fewer spikes)
    assert float(count_adex(1.0)) == 6.0 and float(count_iz(1.0)) == 8.0
    g_b = jax.grad(
        lambda b: adex.simulate(jnp.full((3000,), 800.0), adex.AdExParams(b=b)).spike.sum()
    )
    g_d = jax.grad(
        lambda d: izhikevich.simulate(
            jnp.full((3000,), 10.0), izhikevich.IzhikevichParams(d=d)
        ).spike.sum()
    )
    assert float(g_b(80.5)) < 0 and float(g_d(8.0)) < 0


# activity and detect: counts read as spikes, windows in seconds


def test_activity_refuses_counts_that_are_not_whole_and_a_bad_n_pairs():
    """Finding: isi_cv of a raster of 0.5 or -1 counts read nan for every neuron (0.5 was
    truncated to 0 spikes); raster_points dropped half-counts; n_pairs = 0 gave nan with a
    NumPy warning, -1 'negative dimensions are not allowed'."""
    r = np.random.default_rng(0).poisson(0.1, (200, 5))
    for bad in (-r, 0.5 * r):
        with pytest.raises(ValueError, match=r"isi_cv: raster must hold spike counts"):
            activity.isi_cv(bad, 1.0)
        with pytest.raises(ValueError, match=r"raster_points: raster must hold spike counts"):
            activity.raster_points(bad, 1.0)
    for n in (0, -1):
        with pytest.raises(ValueError, match=r"pairwise_correlation: n_pairs must be an int >= 1"):
            activity.pairwise_correlation(r, 1.0, n_pairs=n)
    nan = r.astype(float)
    nan[0, 0] = np.nan  # a nan count still reads nan for its neuron, as documented
    assert np.isnan(activity.isi_cv(nan, 1.0)[0]) and np.isfinite(activity.isi_cv(r, 1.0)).all()


def test_detectors_name_their_own_window_arguments():
    """Finding: min_distance_s = nan raised 'cannot convert float NaN to integer'; smooth_s =
    -1 or nan was named as moving_average's window_s; min_up_s = inf an OverflowError;
    match_events on a (3,) array 'cannot reshape array of size 3'."""
    x = np.sin(np.arange(2000) / 100 * 2 * np.pi * 12) * 100
    with pytest.raises(ValueError, match=r"detect_spindles: min_distance_s must be a finite"):
        de.detect_spindles(x, 100.0, min_distance_s=NAN)
    with pytest.raises(ValueError, match=r"detect_spindles: min_distance_s must be .* >= 0"):
        de.detect_spindles(x, 100.0, min_distance_s=-1.0)
    for v in (-1.0, NAN):
        with pytest.raises(ValueError, match=r"detect_updown: smooth_s must be a finite number"):
            de.detect_updown(np.abs(x), 100.0, smooth_s=v)
    with pytest.raises(ValueError, match=r"detect_updown: min_up_s and min_down_s .* finite"):
        de.detect_updown(np.abs(x), 100.0, min_up_s=float("inf"))
    with pytest.raises(ValueError, match=r"match_events: detected must be intervals \(k, 2\)"):
        de.match_events(np.zeros(3), np.zeros((0, 2)))
    assert de.match_events([0.0, 1.0], [[0.5, 2.0]]) == (1.0, 1.0)  # one interval, as before


def test_synchrony_names_train_batches_that_do_not_broadcast():
    """Finding: a (2, 3) against b (3, 3) raised jax's 'add got incompatible shapes' (van
    Rossum) and 'sub got incompatible shapes' (sttc), naming neither function nor argument."""
    a, b = jnp.zeros((2, 3)), jnp.zeros((3, 3))
    with pytest.raises(ValueError, match=r"van_rossum_distance: trains a .* a \(2, 3\) and b"):
        sy.van_rossum_distance(a, b, 1.0)
    with pytest.raises(ValueError, match=r"sttc: trains a .* a \(2, 3\) and b \(3, 3\)"):
        sy.sttc(a, b, 1.0, 10.0)
    # trains of different lengths, and batches that broadcast, still work
    assert sy.van_rossum_distance(jnp.zeros((1, 3)), jnp.zeros((3, 2)), 1.0).shape == (3,)


def test_membrane_readout_refuses_zero_time_steps():
    """Finding: T = 0 gave a NaN mean (mode 'mean') or an IndexError (mode 'last')."""
    for mode in ("mean", "max", "last"):
        layer = sp.MembraneReadout(0.9, mode)
        with pytest.raises(ValueError, match=r"MembraneReadout\(\w+\): needs at least one"):
            layer.init(jax.random.key(0), (0, 4, 3))
        with pytest.raises(ValueError, match=r"T >= 1\), got T = 0"):
            layer.apply({}, jnp.ones((0, 4, 3)))
    # one step: v_1 = I_1, whatever the mode
    x = jnp.arange(12.0).reshape(1, 4, 3)
    for mode in ("mean", "max", "last"):
        np.testing.assert_allclose(sp.MembraneReadout(0.9, mode).apply({}, x), x[0])


def test_coincidence_response_names_itself_for_a_raster_not_2d():
    """Finding: a 3-D raster gave a silent count of 6 over a flattened axis; a 1-D one
    blamed ``lif``."""
    for shape in ((5,), (2, 3, 4)):
        with pytest.raises(ValueError, match=r"coincidence_response: raster must have shape"):
            sy.coincidence_response(jnp.ones(shape), 1.0)
    # (T, n) still counts: 3 inputs at weight 0.5 give 1.5 > theta = 1 every step, reset to 0
    assert float(sy.coincidence_response(jnp.ones((4, 3)), 0.5)) == 4.0


def test_weights_of_the_wrong_sign_for_the_model_are_refused():
    """NetworkConfig's inhibitory defaults are AdEx conductances (50 nS); with model 'alif'
    they were used as currents, +50 nA: excitation called inhibition, without a word."""
    with pytest.raises(ValueError, match=r"init_params: w_ei must be <= 0 \(a current\) for "):
        circuits.init_params(jax.random.key(0), SMALL._replace(model="alif"))
    with pytest.raises(ValueError, match="init_params: w_ie must be >= 0 for model 'adex'"):
        circuits.init_params(jax.random.key(0), SMALL._replace(w_ie=-4.0))
    params, _ = _small("alif")
    assert float(params.W_ei.min()) == -50.0 and float(params.W_ei.max()) == 0.0
