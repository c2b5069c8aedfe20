"""Audit of the brain side's network, spiking, dreams and event modules: bad input refused by
name before it turns into a wrong number or a deep failure, and no O(T^2) / O(n^2) memory."""

import tracemalloc

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nnjax.brain import circuits as ci
from nnjax.brain import diversity as dv
from nnjax.brain import dreams, planted, spiking
from nnjax.brain import homeostasis as ho
from nnjax.brain import hypnogram as hy
from nnjax.brain import network as nw

CFG = ci.NetworkConfig(n_exc=8, n_inh=2, p=0.5, rate_ext=0.0)


@pytest.fixture(scope="module")
def small():
    return ci.init_params(jax.random.key(0), CFG), CFG.spec


# ------------------------------------------------------------------------------ hypnogram


def test_stage_at_far_times_are_outside():
    """inf and 1e30 s overflowed int64 and were clipped to epoch 0: the first stage."""
    h = [3, 1, 2]
    got = hy.stage_at(h, [np.inf, 1e30, -np.inf, np.nan, 0.0, 89.9, 90.0], 30.0)
    np.testing.assert_array_equal(got, [-1, -1, -1, -1, 3, 2, -1])


def test_stage_at_refuses_strings():
    """NumPy parsed "35" as 35 s."""
    with pytest.raises(ValueError, match="stage_at: times must be numbers"):
        hy.stage_at([0, 1, 2], ["35"], 30.0)


@pytest.mark.parametrize("kw", [{"epoch_s": "30"}, {"fmax": "30"}])
def test_plot_spectrogram_names_bad_epoch_and_fmax(kw):
    """A str epoch_s or fmax failed deep in NumPy (UFuncTypeError)."""
    kw = {"hypno": [0, 1], **kw}
    with pytest.raises(ValueError, match="plot_spectrogram: (epoch_s|fmax) must be"):
        hy.plot_spectrogram(np.arange(3.0), np.arange(4.0), np.ones((4, 3)), **kw)


# ------------------------------------------------------------------------------- spiking


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: spiking.LIF(beta=True), "LIF: beta must be a number"),
        (lambda: spiking.LIF(beta="0.9"), "LIF: beta must be a number"),
        (lambda: spiking.LIF(theta="1"), "LIF: theta must be a number"),
        (lambda: spiking.LIF(theta=np.inf), "LIF: theta must be a finite number > 0"),
        (lambda: spiking.MembraneReadout(beta=True), "MembraneReadout: beta must be a number"),
        (lambda: spiking.MembraneReadout(beta="0.5"), "MembraneReadout: beta must be a number"),
    ],
)
def test_spiking_layers_refuse_bool_str_inf(make, match):
    """beta=True ran as 1 (no leak), a str failed in a bare comparison, theta=inf built a
    layer that can never fire."""
    with pytest.raises(ValueError, match=match):
        make()


def test_membrane_readout_long_input_has_no_square_kernel():
    """The (T, T) causal kernel: 40 GB at T = 10^5."""
    T = spiking.KERNEL_MAX_STEPS * 4 if hasattr(spiking, "KERNEL_MAX_STEPS") else 2048
    layer = spiking.MembraneReadout(0.9, "last")
    jaxpr = jax.make_jaxpr(lambda x: layer.apply({}, x))(
        jax.ShapeDtypeStruct((T, 2, 3), jnp.float32)
    )
    big = [v.aval.shape for e in jaxpr.eqns for v in e.outvars if np.prod(v.aval.shape) >= T * T]
    assert not big
    x = np.random.default_rng(0).normal(size=(T, 2, 3)).astype(np.float32)
    v = np.zeros((2, 3))
    for xt in x.astype(np.float64):
        v = 0.9 * v + xt
    np.testing.assert_allclose(layer.apply({}, jnp.asarray(x)), v, rtol=1e-4, atol=1e-4)


# ------------------------------------------------------------------------------- network


def test_simulate_refuses_huge_n_steps(small):
    """10^13 steps failed in XLA with RESOURCE_EXHAUSTED (40 TB of input series)."""
    params, spec = small
    with pytest.raises(ValueError, match="network: n_steps must be at most MAX_STEPS"):
        nw.simulate(jax.random.key(0), params, spec, 10**13, monitor=nw.Monitor(every=10**6))


def test_simulate_refuses_huge_recording(small, monkeypatch):
    """A recording above MAX_RECORD_BYTES is named before anything is allocated (a raster of
    every step of an hour at dt = 0.1 ms for 1000 cells, 36 GB, failed deep in XLA); here
    with the cap lowered to 1000 bytes: 100 rows of 10 raster bytes + rate + LFP."""
    from nnjax.brain import monitors

    params, spec = small
    monkeypatch.setattr(monitors, "MAX_RECORD_BYTES", 1000)
    assert monitors.record_bytes(nw.Monitor(), spec, 100) == 100 * (10 + 8 + 4)
    with pytest.raises(ValueError, match="MAX_RECORD_BYTES.*raise Monitor.every"):
        nw.simulate(jax.random.key(0), params, spec, 100)
    assert nw.check_monitor(nw.Monitor(every=10), spec, 100).every == 10  # 220 bytes: fine


def test_simulate_names_bad_monitor_lfp_and_stimulus(small):
    """Monitor.lfp="no" recorded the LFP; a str stimulus failed in NumPy naming nothing."""
    params, spec = small
    with pytest.raises(ValueError, match="network: Monitor.lfp"):
        nw.simulate(jax.random.key(0), params, spec, 5, monitor=nw.Monitor(lfp="no"))
    with pytest.raises(ValueError, match="network: stimulus must be numbers"):
        nw.simulate(jax.random.key(0), params, spec, 5, stimulus="a")


@pytest.mark.parametrize("delay", ["1.5", True])
def test_check_spec_delay_must_be_a_number(delay):
    """ "1.5" failed in a bare comparison; True ran as 1 ms."""
    with pytest.raises(ValueError, match="network: delay_ms must be a number"):
        nw.check_spec(nw.NetworkSpec(4, 1, delay_ms=delay))


@pytest.mark.parametrize("kind", ["fixed_in_degree", "bernoulli"])
def test_random_mask_no_self_must_be_a_flag(kind):
    """ "no" counted as True (bernoulli) or failed in int() naming nothing."""
    with pytest.raises(ValueError, match="connectivity: no_self"):
        ci.random_mask(jax.random.key(0), 3, 3, 1 / 3, kind, no_self="no")


# ----------------------------------------------------------------- dreams and homeostasis


@pytest.mark.parametrize("layer", ["0", 1.0, True, -1])
def test_relu_mlp_layer_checks_layer_when_built(layer):
    with pytest.raises(ValueError, match="relu_mlp_layer: layer must be an int >= 0"):
        dreams.relu_mlp_layer(layer)


def test_deep_dream_names_str_clip():
    with pytest.raises(ValueError, match="deep_dream: clip must be a number"):
        dreams.deep_dream(
            lambda p, x: x, {}, jnp.zeros(4), jax.random.key(0), image_shape=(2, 2), steps=1,
            clip=("0", "1"),
        )  # fmt: skip


@pytest.mark.parametrize(
    "kw, match",
    [
        ({"factors": ["0.5"]}, r"sweep: factors\[0\] must be a number"),
        ({"factors": [1.0, -0.5]}, r"sweep: factors\[1\] must be > 0"),
        ({"fractions": [0.2, True]}, r"sweep: fractions\[1\] must be a number"),
        ({"fractions": [0.2, 1.0]}, r"sweep: fractions\[1\] must be in \[0, 1\)"),
    ],
)
def test_sweep_checks_every_value_before_running(kw, match):
    """float() parsed "0.5"; a bad value failed only after the earlier runs, as downscale's
    "factor 0" (a layer's index). The check comes first: no network is needed to see it."""
    with pytest.raises(ValueError, match=match):
        ho.sweep(None, np.zeros((1, 2)), np.zeros(1), 5, **kw)


# ------------------------------------------------------------------ diversity and planted


def test_mean_pairwise_distance_memory_is_not_quadratic(monkeypatch):
    """The n x n Gram matrix: 29 GB per copy at n = 60000."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(2000, 3)) + 100.0
    monkeypatch.setattr(dv, "BLOCK_ROWS", 64)
    tracemalloc.start()
    got = dv.mean_pairwise_distance(X)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 8 * 2**20  # a single 2000 x 2000 float64 matrix is 32 MB
    d = np.sqrt(((X[:200, None] - X[None, :200]) ** 2).sum(-1))
    sub = dv.mean_pairwise_distance(X[:200])
    np.testing.assert_allclose(sub, d[np.triu_indices(200, 1)].mean(), rtol=1e-10)
    assert 2.0 < got < 3.5  # E||x - y|| for 3-D unit normals is about 2.26


def test_planted_refuses_absurd_event_counts():
    """Durations and gaps near 0 asked NumPy for TiB of draws (MemoryError)."""
    with pytest.raises(ValueError, match="plant_spindles: .*MAX_EVENTS"):
        planted.plant_spindles(
            jax.random.key(0), 100, 100.0, duration_s=(1e-12, 1e-12), gap_s=(0, 0)
        )


def test_a_bool_is_not_a_positive_number():
    """Finding: check_positive took True as 1 (RateEncoder(gain=True) ran with gain 1), and
    a boolean array as ones."""
    import numpy as np

    from nnjax.brain import dynamics, spiking

    with pytest.raises(ValueError, match="RateEncoder: gain must be a finite number > 0, got True"):
        spiking.RateEncoder(10, gain=True)
    with pytest.raises(ValueError, match="f: tau must be a finite number > 0, got booleans"):
        dynamics.check_positive(np.array([True, True]), "tau", "f")
    dynamics.check_positive(np.array([1, 2]), "tau", "f")  # ints are numbers


def test_welch_names_its_default_nperseg_when_fs_is_too_low():
    """Finding: at fs = 0.2 Hz the default nperseg (4 s) is 1 sample: the message said
    'nperseg must be an int >= 2, got 1', an argument the user never gave."""
    import numpy as np

    from nnjax.brain import rhythms

    default = r"welch: .*; the default nperseg, 4 s of samples at fs=0.2 Hz, is 1$"
    with pytest.raises(ValueError, match=default):
        rhythms.welch(np.ones(100), fs=0.2)
    freqs, _ = rhythms.welch(np.random.default_rng(0).normal(size=100), fs=0.2, nperseg=8)
    np.testing.assert_allclose(freqs, np.fft.rfftfreq(8, 5.0))


def test_a_surrogate_name_that_is_not_a_string_is_named():
    """Finding: check_surrogate(['a'], None) raised a bare 'unhashable type: list'."""
    from nnjax.brain import surrogate

    with pytest.raises(ValueError, match=r"unknown surrogate \['a'\]; valid names"):
        surrogate.check_surrogate(["a"], None)
