"""Bad input to the brain side's public functions: each case used to give a silent wrong
number, a nan, an out-of-memory kill or an error that named neither the function nor the
argument (a bare IndexError, a JAX TypeError, NumPy's own message). Each is now a ValueError
naming the function and the argument. Tiny inputs only: every case runs in milliseconds."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nnjax.brain import (
    activity,
    adex,
    circuits,
    convert,
    detect,
    diversity,
    dreams,
    dynamics,
    helmholtz,
    homeostasis,
    hypnogram,
    izhikevich,
    kuramoto,
    neurons,
    planted,
    plasticity,
    rhythms,
    scores,
    sleep,
    spiking,
    surrogate,
)
from nnjax.brain import adaptive_lif as alif
from nnjax.brain import consolidation_protocol as cp
from nnjax.brain import consolidation_scores as cs
from nnjax.brain import hodgkin_huxley as hh
from nnjax.brain import network as nw
from nnjax.brain import sleep_states as ss
from nnjax.brain import synapses as syn
from nnjax.brain import synchrony as sy

NAN, INF = float("nan"), float("inf")
KEY = jax.random.key(0)


# ------------------------------------------------------------------ small shared inputs


@functools.cache
def _alif_trace():
    return alif.simulate(jnp.full((50, 2), 2.0))


@functools.cache
def _net():
    cfg = circuits.NetworkConfig(n_exc=8, n_inh=2)
    return circuits.init_params(jax.random.PRNGKey(0), cfg), cfg.spec


def _simulate(**kw):
    params, spec = _net()
    params = kw.pop("params", params)
    return nw.simulate(jax.random.PRNGKey(0), params, spec, 10, **kw)


@functools.cache
def _mlp():
    k1, k2 = jax.random.split(jax.random.PRNGKey(0))
    params = [
        {"W": jax.random.normal(k1, (16, 8)) * 0.5, "b": jnp.zeros(8)},
        {},
        {"W": jax.random.normal(k2, (8, 3)) * 0.5, "b": jnp.zeros(3)},
    ]
    return params, (lambda p, x: convert.ann_forward(convert.dense_params(p), x))


@functools.cache
def _converted():
    params, _ = _mlp()
    X = jax.random.uniform(jax.random.PRNGKey(1), (6, 16))
    return convert.normalize(params, X), X, jnp.arange(6) % 3


def _am(**kw):
    params, apply = _mlp()
    args = dict(x0=jnp.full(16, 0.5), cls=1, image_shape=(4, 4), steps=2)
    args.update(kw)
    x0, cls = args.pop("x0"), args.pop("cls")
    return dreams.activation_maximisation(apply, params, x0, cls, KEY, **args)


def _deep_dream(**kw):
    params, _ = _mlp()
    args = dict(image_shape=(4, 4), steps=2)
    args.update(kw)
    return dreams.deep_dream(dreams.relu_mlp_layer(0), params, jnp.full(16, 0.5), KEY, **args)


@functools.cache
def _vae():
    vae = dreams.make_vae(16, 4, 8)
    return vae, vae.init(KEY)


@functools.cache
def _helmholtz():
    return helmholtz.init_helmholtz(KEY, 9, 3, 1)


def _sleep(X, **kw):
    Ws = [jnp.full((16, 8), 0.1), jnp.full((8, 4), 0.1)]
    hp = sleep.SRCParams(*(jnp.asarray(v) for v in (100.0, 0.01, 0.001, [1.0, 1.0], 1.0)))
    mask = jnp.ones(X.shape[0], bool)
    return sleep.sleep(Ws, KEY, X, mask, hp, (4, 4), sleep.SRCConfig(steps=5), **kw)


def _raster(n_bins=200, n=10):
    return (np.random.default_rng(0).random((n_bins, n)) < 0.1).astype(float)


SIGNAL = np.sin(np.arange(2000) / 100.0 * 2 * np.pi * 10.0)
CURRENT = jnp.full((20, 2), 2.0)

# (id, call, the message's start: the function and the argument)
CASES = [
    # dynamics: the shared checks
    ("check_dt/bool", lambda: neurons.lif_continuous(CURRENT, dt=True), "lif_continuous: dt"),
    ("check_dt/str", lambda: adex.simulate(jnp.ones((5, 2)), dt="0.1"), "adex.simulate: dt"),
    ("spike_times/dt<0", lambda: dynamics.spike_times(np.array([0, 1]), -1.0), "spike_times: dt"),
    ("check_positive/str", lambda: neurons.lif_continuous(CURRENT, tau="10"),
     "lif_continuous: tau"),
    ("init_state/shape", lambda: adex.init_state((3,), adex.AdExParams(C=jnp.ones(5))),
     r"adex.init_state: shape \(3,\) and the parameters"),
    ("init_state/int", lambda: izhikevich.init_state(3), "izhikevich.init_state: shape must be"),
    ("init_state/neg", lambda: alif.init_state((-1,)), "adaptive_lif.init_state: shape must be"),
    ("init_state/hh", lambda: hh.init_state((3,), V0=jnp.zeros(4)), "hodgkin_huxley.init_state"),
    ("init_state/syn", lambda: syn.init_state((3,), syn.SynapseParams(tau=jnp.ones(4))),
     "synapses.init_state"),
    # neurons
    ("lif_step/reset", lambda: neurons.lif_step(jnp.zeros(2), jnp.ones(2), beta=0.9, theta=1.0,
                                                reset="foo"), "lif_step: reset must be one of"),
    ("lif_step/beta", lambda: neurons.lif_step(jnp.zeros(2), jnp.ones(2), beta=2.0, theta=1.0),
     "lif_step: beta"),
    ("lif_step/theta", lambda: neurons.lif_step(jnp.zeros(2), jnp.ones(2), beta=0.9, theta=-1.0),
     "lif_step: theta"),
    ("lif/v0 nan", lambda: neurons.lif(jnp.ones((4, 2)), v0=NAN), "lif: v0"),
    ("lif_isi_discrete/nan", lambda: neurons.lif_isi_discrete(NAN, 0.5),
     "lif_isi_discrete: current"),
    ("lif_isi_discrete/str", lambda: neurons.lif_isi_discrete("1", 0.5),
     "lif_isi_discrete: current must be a number"),
    ("lif_isi_discrete/array", lambda: neurons.lif_isi_discrete(1.0, np.array([0.5, 0.6])),
     "lif_isi_discrete: beta must be a number"),
    ("lif_continuous/V0 shape", lambda: neurons.lif_continuous(CURRENT, V0=jnp.zeros(5)),
     "lif_continuous: the input's trailing shape"),
    ("lif_continuous/dt array", lambda: neurons.lif_continuous(CURRENT, dt=np.array([0.1, 0.2])),
     "lif_continuous: dt"),
    ("rate_from_spike_times/shapes",
     lambda: neurons.rate_from_spike_times(jnp.ones((5, 2), bool), jnp.ones((5, 1))),
     "rate_from_spike_times: spikes, spike_times"),
    ("rate_from_spike_times/T=0",
     lambda: neurons.rate_from_spike_times(jnp.ones((0, 2), bool), jnp.ones((0, 2))),
     "rate_from_spike_times"),
    ("lif_fi_curve/dt str", lambda: neurons.lif_fi_curve([1.0], dt="0.1"), "lif_fi_curve: dt"),
    # neuron models: the steps, spike times and f-I curves
    ("adex.step/dt", lambda: adex.step(adex.init_state((2,)), jnp.ones(2),
                                       adex.BRETTE_GERSTNER_2005, -1.0), "adex.step: dt"),
    ("izhikevich.step/dt", lambda: izhikevich.step(izhikevich.init_state((2,)), jnp.ones(2),
                                                   izhikevich.IZHIKEVICH_2003["RS"], 0.0),
     "izhikevich.step: dt"),
    ("adaptive_lif.step/dt", lambda: alif.step(alif.init_state((2,)), jnp.ones(2), alif.DEFAULT,
                                               0.0), "adaptive_lif.step: dt"),
    ("hh.rk4_step/dt", lambda: hh.rk4_step(hh.init_state((2,)), 1.0, -0.01),
     "hodgkin_huxley.rk4_step: dt"),
    ("spike_time_array/n", lambda: alif.spike_time_array(_alif_trace(), 0.1, -1),
     "spike_time_array: n_spikes"),
    ("spike_time_array/dt", lambda: alif.spike_time_array(_alif_trace(), NAN, 3),
     "spike_time_array: dt"),
    ("fi_curves/duration str", lambda: alif.fi_curves(jnp.ones(2), duration="50"),
     "fi_curves: duration"),
    ("hh.simulate/V0 shape", lambda: hh.simulate(jnp.ones((5, 2)), V0=jnp.zeros(3)),
     "hodgkin_huxley.simulate: the input's trailing shape"),
    ("hh.resting_potential/duration", lambda: hh.resting_potential(duration="10"),
     "resting_potential: duration"),
    ("hh.fi_curve/discard", lambda: hh.fi_curve([10.0], duration=50.0, discard="10"),
     "fi_curve: discard"),
    ("hh.fi_curve/prominence", lambda: hh.fi_curve([10.0], duration=50.0, discard=10.0,
                                                  prominence=np.array([1.0, 2.0])),
     "fi_curve: prominence"),
    # plasticity
    ("pair_stdp_step/a_plus", lambda: plasticity.pair_stdp_step(
        plasticity.pair_init(3, 2), jnp.ones((2, 3)), jnp.ones(3), jnp.ones(2),
        plasticity.PairSTDPParams(a_plus=NAN), 1.0), "pair_stdp_step: a_plus"),
    ("triplet_stdp_step/a3_plus", lambda: plasticity.triplet_stdp_step(
        plasticity.triplet_init(3, 2), jnp.ones((2, 3)), jnp.ones(3), jnp.ones(2),
        plasticity.TripletParams(a3_plus=NAN), 1.0), "triplet_stdp_step: a3_plus"),
    ("scaling_init/rate0", lambda: plasticity.scaling_init(2, rate0=NAN), "scaling_init: rate0"),
    # synchrony, kuramoto
    ("coincidence_response/weight shape", lambda: sy.coincidence_response(jnp.ones((5, 3)),
                                                                         jnp.ones(3)),
     "coincidence_response: weight"),
    ("coincidence_response/weight str", lambda: sy.coincidence_response(jnp.ones((5, 3)), "0.3"),
     "coincidence_response: weight"),
    ("order_parameter/N=0", lambda: kuramoto.order_parameter(jnp.zeros(0)),
     "order_parameter: theta"),
    ("order_parameter/scalar", lambda: kuramoto.order_parameter(0.0), "order_parameter: theta"),
    ("velocity/omega", lambda: kuramoto.velocity(jnp.ones(4), jnp.ones(3), 1.0), "velocity: theta"),
    ("velocity/coupling", lambda: kuramoto.velocity(jnp.ones(4), jnp.ones(4), 1.0,
                                                    coupling=jnp.ones((3, 3))), "velocity: theta"),
    ("velocity/K", lambda: kuramoto.velocity(jnp.ones(4), jnp.ones(4), jnp.ones(3)), "velocity: K"),
    # flags: a string such as "no" counted as True
    ("kuramoto.simulate/return_phases", lambda: kuramoto.simulate(
        jnp.zeros(3), jnp.zeros(3), 1.0, n_steps=2, return_phases="no"),
     "simulate: return_phases must be True or False"),
    ("van_rossum_distance/squared", lambda: sy.van_rossum_distance(
        jnp.ones(2), jnp.ones(2), 1.0, squared="no"),
     "van_rossum_distance: squared must be True or False"),
    ("band_powers/relative", lambda: rhythms.band_powers(
        np.linspace(0, 50, 11), np.ones(11), relative="no"),
     "band_powers: relative must be True or False"),
    ("network/Monitor.rate", lambda: _simulate(monitor=nw.Monitor(rate="no")),
     "network: Monitor.rate must be True or False"),
    ("dynamics.run/dt", lambda: dynamics.run(
        lambda s, x, p, dt: s + x, jnp.zeros(2), jnp.ones((3, 2)), None, -0.1),
     "run: dt must be > 0"),
    # activity
    ("isi_cv/min_spikes", lambda: activity.isi_cv(_raster(), 1.0, min_spikes=2.5),
     "isi_cv: min_spikes"),
    ("pairwise_correlation/seed", lambda: activity.pairwise_correlation(_raster(), 1.0, seed=-1),
     "pairwise_correlation: seed"),
    ("pairwise_correlation/complex",
     lambda: activity.pairwise_correlation(_raster().astype(complex), 1.0),
     "pairwise_correlation: raster must hold real numbers"),
    ("raster_points/nan", lambda: activity.raster_points(np.where(_raster() > 0, NAN, 0), 1.0),
     "raster_points: raster must hold finite"),
    ("raster_points/t0_ms", lambda: activity.raster_points(_raster(), 1.0, t0_ms=NAN),
     "raster_points: t0_ms"),
    ("plot_raster/n_exc", lambda: activity.plot_raster(_raster(), 1.0, n_exc="5"),
     "plot_raster: n_exc"),
    # rhythms
    ("welch/complex", lambda: rhythms.welch(SIGNAL.astype(complex), 100.0),
     "welch: x must be a real signal"),
    ("welch/float16", lambda: rhythms.welch(SIGNAL.astype(np.float16), 100.0),
     "welch: x must be float32 or float64"),
    ("spectrogram/float16", lambda: rhythms.spectrogram(SIGNAL.astype(np.float16), 100.0),
     "spectrogram: x must be float32"),
    ("band_power/axis", lambda: rhythms.band_power(np.arange(5.0), jnp.ones(5), (1, 2), axis=3),
     "band_power: psd shape"),
    ("band_power/axis float", lambda: rhythms.band_power(np.arange(5.0), jnp.ones(5), (1, 2),
                                                         axis=0.5), "band_power: axis"),
    ("band_powers/str", lambda: rhythms.band_powers(np.arange(5.0), jnp.ones(5), bands="delta"),
     "band_powers: bands must be a dict"),
    ("band_powers/number", lambda: rhythms.band_powers(np.arange(5.0), jnp.ones(5), bands=1.0),
     "band_powers: bands must be a dict or a list of names, got 1.0"),  # a TypeError before
    # detectors, planted events
    ("detect_slow_waves/str", lambda: detect.detect_slow_waves(SIGNAL, 100.0, neg_threshold="-80"),
     "detect_slow_waves: neg_threshold"),
    ("detect_slow_waves/array", lambda: detect.detect_slow_waves(
        SIGNAL, 100.0, ptp_threshold=np.array([1.0, 2.0])), "detect_slow_waves: ptp_threshold"),
    ("detect_spindles/thresh", lambda: detect.detect_spindles(SIGNAL, 100.0, thresh_low="1"),
     "detect_spindles: thresh_low"),
    ("detect_spindles/min_distance", lambda: detect.detect_spindles(
        SIGNAL, 100.0, min_distance_s="0.5"), "detect_spindles: min_distance_s"),
    ("detect_updown/smooth_s", lambda: detect.detect_updown(SIGNAL + 2, 100.0, smooth_s="0.02"),
     "detect_updown: smooth_s"),
    ("detect_updown/up str", lambda: detect.detect_updown(SIGNAL + 2, 100.0, up_threshold="2.5",
                                                          down_threshold=1.5),
     "detect_updown: up_threshold"),
    ("detect_updown/up inf", lambda: detect.detect_updown(SIGNAL + 2, 100.0, up_threshold=INF,
                                                          down_threshold=1.5),
     "detect_updown: up_threshold"),
    ("runs/2-D", lambda: detect.runs(np.ones((2, 3), bool)), "runs: mask"),
    ("match_events/str", lambda: detect.match_events([["a", "b"]], [[0, 1]]),
     "match_events: detected"),
    ("pink_noise/nan", lambda: planted.pink_noise(KEY, 100, exponent=NAN), "pink_noise: exponent"),
    ("pink_noise/str", lambda: planted.pink_noise(KEY, 100, exponent="1"), "pink_noise: exponent"),
    ("plant_slow_waves/inf", lambda: planted.plant_slow_waves(KEY, 600, 100.0,
                                                              depth_uv=(130.0, INF)),
     "plant_slow_waves: depth_uv"),
    # hypnograms, sleep states
    ("stage_durations/inf", lambda: hypnogram.stage_durations([0, 1], INF),
     "stage_durations: epoch_s"),
    ("plot_spectrogram/fmax", lambda: hypnogram.plot_spectrogram(
        np.arange(3.0), np.arange(1.0, 5.0), np.ones((4, 3)), fmax=0.5), "plot_spectrogram"),
    ("plot_spectrogram/empty", lambda: hypnogram.plot_spectrogram(
        np.zeros(0), np.arange(4.0), np.ones((4, 0))), "plot_spectrogram"),
    ("modulation/shapes", lambda: ss.modulation(ss.Levels(ach=jnp.ones(3), mono=jnp.ones(4))),
     "modulation: levels.ach"),
    ("modulation/g_K_max", lambda: ss.modulation(ss.Levels(), ss.StateMap(g_K_max=-1.0)),
     "modulation: smap.g_K_max"),
    ("modulation/gain_ee_max", lambda: ss.modulation(ss.Levels(), ss.StateMap(gain_ee_max=NAN)),
     "modulation: smap.gain_ee_max"),
    ("schedule/epoch < dt", lambda: ss.schedule([0, 1], 1e-5, 0.1), "schedule: epoch_s"),
    ("schedule/epoch inf", lambda: ss.schedule([0, 1], INF, 0.1), "schedule: epoch_s"),
    ("schedule/ramp > epoch", lambda: ss.schedule([0, 1], 0.01, 0.1, ramp_s=1.0),
     "schedule: ramp_s"),
    ("schedule/ramp str", lambda: ss.schedule([0, 1], 0.01, 0.1, ramp_s="0.1"), "schedule: ramp_s"),
    ("schedule/states array", lambda: ss.schedule(
        [0, 1], 0.01, 0.1, states={n: ss.Levels(ach=jnp.ones(2) / 2) for n in ss.STAGE_NAMES}),
     r"schedule: states\['wake'\].ach"),
    # network, circuits, monitors
    ("network/W nan", lambda: _simulate(params=_net()[0]._replace(
        W_ee=_net()[0].W_ee.at[0, 1].set(NAN))), "network: W_ee"),
    ("network/modulation nan", lambda: _simulate(modulation=nw.Modulation(g_K=NAN)),
     "network: modulation.g_K"),
    ("network/modulation < 0", lambda: _simulate(modulation=nw.Modulation(gain_ee=-1.0)),
     "network: modulation.gain_ee"),
    ("network/modulation tuple", lambda: _simulate(modulation=(0.0, 1.0)),
     "network: modulation must be a Modulation"),
    ("network/stimulus nan", lambda: _simulate(
        params=_net()[0]._replace(stim_pattern=jnp.ones((10, 1))),
        stimulus=jnp.ones((10, 1)).at[3, 0].set(NAN)), "network: stimulus"),
    ("network/stim_pattern nan", lambda: _simulate(
        params=_net()[0]._replace(stim_pattern=jnp.full((10, 1), NAN)),
        stimulus=jnp.ones((10, 1))), "network: stim_pattern"),
    ("network/Monitor.neurons", lambda: _simulate(monitor=nw.Monitor(neurons=5)),
     "network: Monitor.neurons"),
    ("network/Monitor.variables", lambda: _simulate(monitor=nw.Monitor(variables="Vw")),
     "network: Monitor.variables"),
    ("network/monitor tuple", lambda: _simulate(monitor=(1, "raster")),
     "network: monitor must be a Monitor"),
    ("network/stdp", lambda: _simulate(stdp=(1.0, 2.0)), "network: stdp"),
    ("network.init_state/N", lambda: nw.init_state(_net()[0], _net()[1]._replace(n_exc=9)),
     "network: neuron.C"),
    ("bin_times/n_bins", lambda: nw.bin_times(-1, 10, 0.1), "bin_times: n_bins"),
    ("bin_times/dt", lambda: nw.bin_times(5, 10, -0.1), "bin_times: dt"),
    ("random_mask/n_post", lambda: circuits.random_mask(KEY, -1, 4, 0.5),
     "connectivity: n_post"),
    ("random_mask/p str", lambda: circuits.random_mask(KEY, 3, 4, "0.5"), "connectivity: p"),
    ("in_degree/n_pre", lambda: circuits.in_degree(0.5, 4.5), "connectivity: n_pre"),
    # sleep (SRC), homeostasis, conversion
    ("sleep/X empty", lambda: _sleep(jnp.ones((0, 16))), "sleep: X must hold at least one"),
    ("stdp_gate/scale", lambda: sleep.stdp_gate(jnp.ones(3), 0.0), "stdp_gate: scale"),
    ("masked_mean_input/patch", lambda: sleep.masked_mean_input(KEY, jnp.ones(16), (4, 4), 0),
     "masked_mean_input: patch"),
    ("masked_mean_input/mean", lambda: sleep.masked_mean_input(KEY, jnp.ones(15), (4, 4), 2),
     "masked_mean_input: mean"),
    ("forward_activations/X", lambda: sleep.forward_activations([jnp.ones((16, 8))],
                                                                jnp.ones((3, 5))),
     "forward_activations"),
    ("layer_scales/mask", lambda: sleep.layer_scales([jnp.ones((16, 8))], jnp.ones((3, 16)),
                                                     jnp.ones(5, bool)), "layer_scales: mask"),
    ("dense_params/W 1-D", lambda: convert.dense_params([{"W": jnp.ones(3)}]),
     "dense_params: entry 0's W"),
    ("dense_params/b", lambda: convert.dense_params([{"W": jnp.ones((3, 2)), "b": jnp.ones(5)}]),
     "dense_params: entry 0's b"),
    ("ann_forward/x", lambda: convert.ann_forward(convert.dense_params(_mlp()[0]),
                                                  jnp.ones((2, 5))), "ann_forward"),
    ("ann_forward/no layer", lambda: convert.ann_forward([], jnp.ones((2, 5))), "ann_forward"),
    ("normalize/percentile", lambda: convert.normalize(_mlp()[0], jnp.ones((2, 16)),
                                                       percentile="50"), "normalize: percentile"),
    ("convert.simulate/theta str", lambda: convert.simulate(_converted()[0], _converted()[1], 5,
                                                            theta="1"), "simulate: theta"),
    ("convert.simulate/converted", lambda: convert.simulate(_mlp()[0], _converted()[1], 5),
     "simulate: converted"),
    ("convert.simulate/W nan", lambda: convert.simulate(convert.Converted(
        [{**p, "W": p["W"] * NAN} for p in _converted()[0].layers], _converted()[0].scales),
        _converted()[1], 5), "simulate: layer 0 W"),
    ("spiking_accuracy/y", lambda: convert.spiking_accuracy(_converted()[0], _converted()[1],
                                                            jnp.zeros(4, int), 5),
     "spiking_accuracy: y"),
    ("prune/str", lambda: homeostasis.prune([jnp.ones((2, 2))], "0.5"), "prune: fraction"),
    ("with_layer_weights/count", lambda: homeostasis.with_layer_weights(
        _converted()[0], [jnp.ones((16, 8))]), "with_layer_weights"),
    ("with_layer_weights/shape", lambda: homeostasis.with_layer_weights(
        _converted()[0], [jnp.ones((2, 2)), jnp.ones((2, 2))]), "with_layer_weights"),
    ("firing/y", lambda: homeostasis.firing(_converted()[0], _converted()[1], jnp.zeros(4, int),
                                            5), "firing: y"),
    ("sweep/factors", lambda: homeostasis.sweep(*_converted(), 5, factors=0.5),
     "sweep: factors"),
    # dreams
    ("activation_maximisation/x0 nan", lambda: _am(x0=jnp.full(16, NAN)),
     "activation_maximisation: x0 must be finite"),
    ("activation_maximisation/x0 int", lambda: _am(x0=jnp.ones(16, int)),
     "activation_maximisation: x0 must be a floating"),
    ("activation_maximisation/image_shape", lambda: _am(image_shape=16),
     "activation_maximisation: image_shape"),
    ("activation_maximisation/cls str", lambda: _am(cls="1"), "activation_maximisation: cls"),
    ("dream_all_classes/n > K", lambda: dreams.dream_all_classes(
        _mlp()[1], _mlp()[0], jnp.full(16, 0.5), KEY, 5, image_shape=(4, 4), steps=1),
     "dream_all_classes: n_classes"),
    ("dream_all_classes/n < 0", lambda: dreams.dream_all_classes(
        _mlp()[1], _mlp()[0], jnp.full(16, 0.5), KEY, -1, image_shape=(4, 4), steps=1),
     "dream_all_classes: n_classes"),
    ("class_objective/cls", lambda: dreams.class_objective(_mlp()[1], _mlp()[0], jnp.ones(16), 5,
                                                           0.1), "class_objective: cls"),
    ("deep_dream/octaves", lambda: _deep_dream(octaves=()), "deep_dream: octaves"),
    ("deep_dream/octaves int", lambda: _deep_dream(octaves=2), "deep_dream: octaves"),
    ("deep_dream/clip", lambda: _deep_dream(clip=1.0), "deep_dream: clip"),
    ("deep_dream/x0", lambda: dreams.deep_dream(dreams.relu_mlp_layer(0), _mlp()[0],
                                                jnp.full(16, NAN), KEY, image_shape=(4, 4)),
     "deep_dream: x0"),
    ("sample_dreams/n", lambda: dreams.sample_dreams(*_vae(), KEY, -1), "sample_dreams: n"),
    ("vae_loss/x", lambda: dreams.vae_loss(*_vae(), jnp.ones(16), KEY), "vae_loss: x"),
    ("vae_loss/kl_weight", lambda: dreams.vae_loss(*_vae(), jnp.ones((2, 16)), KEY, -1.0),
     "vae_loss: kl_weight"),
    ("make_replay_method/steps", lambda: dreams.make_replay_method(
        None, 3, 16, dreams.ReplayConfig(steps=0)), "make_replay_method: ReplayConfig.steps"),
    ("make_replay_method/n_classes", lambda: dreams.make_replay_method(None, 0, 16),
     "make_replay_method: n_classes"),
    # helmholtz, diversity, scores
    ("binary_states/huge", lambda: helmholtz.binary_states(40), "binary_states: n must be <="),
    ("binary_states/0", lambda: helmholtz.binary_states(0), "binary_states: n"),
    ("init_helmholtz/n0", lambda: helmholtz.init_helmholtz(KEY, -1, 2, 1), "init_helmholtz: n0"),
    ("init_helmholtz/scale", lambda: helmholtz.init_helmholtz(KEY, 4, 2, 1, scale=NAN),
     "init_helmholtz: scale"),
    ("log_marginal/V", lambda: helmholtz.log_marginal(_helmholtz(), jnp.ones((2, 5))),
     "log_marginal: V"),
    ("exact_kl/empty", lambda: helmholtz.exact_kl(_helmholtz(), np.ones((0, 9)), np.ones(0)),
     "exact_kl: need patterns"),
    ("wake_sleep_step/v", lambda: helmholtz.wake_sleep_step(_helmholtz(), KEY, jnp.ones((2, 5)),
                                                            0.1), "wake_sleep_step: v"),
    ("wake_sleep_step/lr", lambda: helmholtz.wake_sleep_step(_helmholtz(), KEY, jnp.ones((2, 9)),
                                                             NAN), "wake_sleep_step: lr"),
    ("smooth/2-D", lambda: helmholtz.smooth(np.ones((3, 10)), 2), "smooth: x"),
    ("class_histogram/float", lambda: diversity.class_histogram([0.5, 1.0], 3),
     "class_histogram: labels must be ints"),
    ("entropy_bits/nan", lambda: diversity.entropy_bits([NAN, 2.0]), "entropy_bits"),
    ("paired/empty", lambda: scores.paired([], []), "paired: a and b hold no run"),
    ("paired/tie nan", lambda: scores.paired([1.0, 2.0], [0.0, 1.0], tie=NAN), "paired: tie"),
    ("paired/tie str", lambda: scores.paired([1.0, 2.0], [0.0, 1.0], tie="x"), "paired: tie"),
    # the consolidation protocol and its scores
    ("pattern/n", lambda: cp.pattern(cp.Protocol(), 50), "pattern: n = 50"),
    ("groups/n_groups", lambda: cp.groups(cp.Protocol(n_groups=0)), "groups: protocol.n_groups"),
    ("sequence_stimulus/order -1", lambda: cp.sequence_stimulus(cp.Protocol(), 100, 0.1, [-1]),
     "sequence_stimulus: order"),
    ("sequence_stimulus/dt", lambda: cp.sequence_stimulus(cp.Protocol(), 100, 0.0, [0, 1]),
     "sequence_stimulus: dt"),
    ("cue_stimulus/dt", lambda: cp.cue_stimulus(cp.Protocol(), 0.0, [0]), "cue_stimulus: dt"),
    ("cue_stimulus/cued", lambda: cp.cue_stimulus(cp.Protocol(), 0.1, [9]), "cue_stimulus: cued"),
    ("replay_order/lead_ms", lambda: cs.replay_order(_raster(500, 200), 1.0, cp.Protocol(),
                                                     [0, 1, 2, 3, 4], lead_ms=NAN),
     "replay_order: lead_ms"),
    ("replay_order/raster", lambda: cs.replay_order(np.ones(500), 1.0, cp.Protocol(),
                                                    [0, 1, 2, 3, 4]), "replay_order: raster"),
    # spiking layers and encoders, surrogate slopes
    ("latency_encode/threshold", lambda: spiking.latency_encode(jnp.ones(3) / 2, 4,
                                                                threshold=NAN),
     "latency_encode: threshold"),
    ("RateEncoder/gain", lambda: spiking.RateEncoder(5, gain=-1.0), "RateEncoder: gain"),
    ("spiking_mlp/gain", lambda: spiking.spiking_mlp([4, 3], gain=0.0), "RateEncoder: gain"),
    ("LatencyEncoder/threshold", lambda: spiking.LatencyEncoder(5, threshold=NAN),
     "LatencyEncoder: threshold"),
    ("LIF/detach_reset", lambda: spiking.LIF(detach_reset="no"), "LIF: detach_reset"),
    ("SpikeCount.init/1-D", lambda: spiking.SpikeCount().init(KEY, (6,)),
     "SpikeCount: needs a time axis"),
    ("MembraneReadout.init/1-D", lambda: spiking.MembraneReadout().init(KEY, (6,)),
     r"MembraneReadout\(mean\): needs a time axis"),
    ("spike/slope str", lambda: surrogate.spike(jnp.ones(2), slope="1"), "surrogate slope"),
    ("spike/slope bool", lambda: surrogate.spike(jnp.ones(2), slope=True), "surrogate slope"),
]  # fmt: skip


@pytest.mark.parametrize("call, message", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_a_value_error_naming_the_function_and_argument(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_sleep_casts_an_integer_or_float16_X_to_the_weights_dtype():
    """An int X (pixels 0/1) or a float16 X failed in the scan's carry with a JAX TypeError;
    both now sleep as the float X of the same values does."""
    X = (jax.random.uniform(KEY, (5, 16)) > 0.5).astype(jnp.float32)
    Ws, counts = _sleep(X)
    for other in (X.astype(jnp.int32), X.astype(jnp.float16)):
        Ws_o, counts_o = _sleep(other)
        assert Ws_o[0].dtype == jnp.float32
        np.testing.assert_allclose(np.asarray(counts_o), np.asarray(counts))
        np.testing.assert_allclose(np.asarray(Ws_o[0]), np.asarray(Ws[0]))


def test_class_histogram_of_no_label_and_of_whole_float_labels():
    """An empty list (NumPy makes it float64) failed in np.bincount's cast; whole floats are
    class ids."""
    np.testing.assert_array_equal(diversity.class_histogram([], 3), [0, 0, 0])
    np.testing.assert_array_equal(diversity.class_histogram([0.0, 2.0, 2.0], 3), [1, 0, 2])


def test_the_new_checks_pass_tracers_under_jit_vmap_and_grad():
    """The checks read only static shapes and concrete values: traced dt, amplitudes, weights,
    classes and levels still run."""
    st = adex.init_state((2,))
    jax.jit(lambda dt: adex.step(st, jnp.ones(2), adex.BRETTE_GERSTNER_2005, dt))(0.1)
    jax.jit(lambda v0: neurons.lif(jnp.ones((3, 2)), v0=v0))(0.2)
    jax.jit(lambda a: plasticity.pair_stdp_step(
        plasticity.pair_init(3, 2), jnp.ones((2, 3)), jnp.ones(3), jnp.ones(2),
        plasticity.PairSTDPParams(a_plus=a), 1.0))(0.01)  # fmt: skip
    g = jax.grad(lambda w: sy.coincidence_response(jnp.ones((5, 3)), w))(0.3)
    assert np.isfinite(float(g))
    params, apply = _mlp()
    J = jax.vmap(lambda c: dreams.class_objective(apply, params, jnp.ones(16), c, 0.1))
    assert J(jnp.arange(3)).shape == (3,)
    jax.jit(lambda lr: helmholtz.wake_sleep_step(_helmholtz(), KEY, jnp.ones((2, 9)), lr))(0.1)
    jax.jit(lambda a: ss.modulation(ss.Levels(ach=a, mono=a)))(jnp.full(4, 0.5))
    assert jax.jit(kuramoto.order_parameter)(jnp.zeros(4)).shape == ()
