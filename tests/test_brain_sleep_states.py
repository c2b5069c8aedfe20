"""Sleep states as neuromodulation: the level -> modulation map, the hypnogram scheduler, and
the three regimes (wake asynchronous irregular, NREM Up/Down slow oscillation, REM
desynchronised) in a network with the in-degrees of CORTEX."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nnjax.brain import circuits
from nnjax.brain import network as nw
from nnjax.brain import sleep_states as ss

# CORTEX's cells and in-degrees (80 E + 20 I inputs each) at 400 neurons: the same regimes,
# a fifth of the cost
CORTEX_400 = circuits.CORTEX._replace(n_exc=320, n_inh=80, p=0.25)


def test_levels_map_to_the_documented_modulation():
    m = {name: ss.modulation(lv) for name, lv in ss.STATES.items()}
    smap = ss.StateMap()
    assert (float(m["wake"].g_K), float(m["wake"].b_scale)) == (0.0, 0.0)
    assert (float(m["wake"].gain_ee), float(m["wake"].ext_scale)) == (1.0, 1.0)
    assert float(m["NREM"].g_K) == smap.g_K_max and float(m["NREM"].b_scale) == 1.0
    assert float(m["NREM"].gain_ee) == pytest.approx(smap.gain_ee_max)
    assert float(m["NREM"].ext_scale) == pytest.approx(smap.ext_min)
    assert float(m["REM"].g_K) == 0.5 * smap.g_K_max and float(m["REM"].b_scale) == 0.0
    assert float(m["REM"].gain_ee) == 1.0 and float(m["REM"].ext_scale) == pytest.approx(0.35)
    # differentiable in the map and the levels; series in, series out
    g = jax.grad(lambda a: ss.modulation(ss.Levels(a, 0.5)).gain_ee)(0.25)
    assert float(g) == pytest.approx(-(smap.gain_ee_max - 1.0))
    series = ss.modulation(ss.Levels(jnp.linspace(0, 1, 5), 0.0))
    assert series.g_K.shape == series.gain_ii.shape == (5,)


def test_schedule_holds_each_epoch_and_ramps_linearly_between():
    lv = ss.schedule([0, 1, 2], 0.01, 0.1)  # 100 steps per epoch
    assert lv.ach.shape == (300,) and lv.ach.dtype == np.float32
    np.testing.assert_array_equal(lv.ach, np.repeat([1.0, 0.0, 1.0], 100))
    np.testing.assert_array_equal(lv.mono, np.repeat([1.0, 0.0, 0.0], 100))
    ramp = ss.schedule([0, 1], 0.01, 0.1, ramp_s=0.002)  # 20-step ramps, centred
    assert ramp.ach[89] == 1.0 and ramp.ach[111] == 0.0
    np.testing.assert_allclose(np.diff(ramp.ach[91:110]), -0.05, atol=1e-6)
    assert ramp.ach[100] == pytest.approx(0.5, abs=0.05)
    with pytest.raises(ValueError, match="codes"):
        ss.schedule([0, 3], 1.0, 0.1)
    with pytest.raises(ValueError, match="epoch_s"):
        ss.schedule([0], -1.0, 0.1)
    with pytest.raises(ValueError, match="ramp_s"):
        ss.schedule([0], 1.0, 0.1, ramp_s=-1.0)


def test_run_night_is_simulate_with_the_scheduled_levels():
    cfg = circuits.NetworkConfig(n_exc=40, n_inh=10, p=0.2)
    params = circuits.init_params(jax.random.key(0), cfg)
    mon = nw.Monitor(every=10, spikes=None)
    night = ss.run_night(jax.random.key(1), params, cfg.spec, [0, 1, 2], 0.02, monitor=mon)
    lv = ss.schedule([0, 1, 2], 0.02, cfg.dt)
    mod = ss.modulation(ss.Levels(jnp.asarray(lv.ach), jnp.asarray(lv.mono)))
    direct = nw.simulate(jax.random.key(1), params, cfg.spec, 600, modulation=mod, monitor=mon)
    assert night.record["lfp"].shape == (60,)
    np.testing.assert_array_equal(night.record["rate"], direct.record["rate"])


@pytest.mark.slow
def test_wake_is_asynchronous_nrem_oscillates_slowly_rem_is_desynchronised():
    """6 s of each state, vmapped. Measured (this seed, 400 neurons): wake 4.8 Hz, CV 1.21,
    correlation 0.012, slow-band fraction 0.038, Up 93 % of the time (a few short dips);
    NREM Up/Down at 0.56 Hz, Up 6 % of the time, slow-band fraction 0.23, peak 1.25 Hz,
    correlation 0.37; REM 2.1 Hz, correlation 0.013, slow-band fraction 0.067. (The
    1000-neuron CORTEX over 10 s: wake 5.7 Hz, NREM Up/Down 0.96 Hz, slow fraction 0.42.)"""
    params = circuits.init_params(jax.random.key(0), CORTEX_400)
    mods = ss.modulation(ss.Levels(jnp.array([1.0, 0.0, 1.0]), jnp.array([1.0, 0.0, 0.0])))
    mon = nw.Monitor(every=10, spikes="raster")
    one = lambda m: (
        nw.simulate(
            jax.random.key(1), params, CORTEX_400.spec, 60_000, modulation=m, monitor=mon
        ).record
    )
    # this one long program at XLA's optimisation level 2 (the suite compiles at 0,
    # conftest.py): 15 s of compile and run instead of 26, the same statistics to 4 digits
    rec = jax.jit(jax.vmap(one), compiler_options={"xla_backend_optimization_level": 2})(mods)
    wake, nrem, rem = (
        ss.describe(jax.tree.map(lambda a, i=i: np.asarray(a[i]), rec), 1.0, 320) for i in range(3)
    )
    # NREM: a spectral peak in 0.5-2 Hz that wake lacks; Up/Down at 0.5-1.5 Hz, both states
    assert 0.5 <= nrem["peak_hz_below_4"] <= 2.0
    assert nrem["slow_power_fraction"] > 0.15 > 0.08 > wake["slow_power_fraction"]
    assert nrem["slow_power_fraction"] > 3 * wake["slow_power_fraction"]
    assert 0.5 <= nrem["updown_hz"] <= 1.5 and 0.02 < nrem["up_fraction"] < 0.5
    assert nrem["n_up"] >= 3 and nrem["pairwise_correlation"] > 0.1
    # wake: asynchronous irregular (CV near 1, uncorrelated), Up nearly all the time
    assert wake["up_fraction"] > 0.85
    assert 0.8 <= wake["cv_isi_median"] <= 1.6 and abs(wake["pairwise_correlation"]) < 0.02
    assert 1.0 < wake["rate_exc_hz"] < 15.0
    # REM: desynchronised as in wake, at a lower rate
    assert abs(rem["pairwise_correlation"]) < 0.02 and rem["slow_power_fraction"] < 0.2
    assert rem["rate_exc_hz"] < wake["rate_exc_hz"]


def test_levels_outside_0_1_are_refused():
    """Finding: modulation(Levels(2, 1)) gave b_scale = -1 (a negative adaptation increment)
    and schedule took any levels."""
    with pytest.raises(ValueError, match=r"modulation: levels.ach must lie in \[0, 1\], got 2"):
        ss.modulation(ss.Levels(2.0, 1.0))
    with pytest.raises(ValueError, match="levels.mono must lie in"):
        ss.modulation(ss.Levels(jnp.array([0.0, 0.5]), np.array([0.2, -0.1])))
    with pytest.raises(ValueError, match="smap.b_block must lie in"):
        ss.modulation(ss.Levels(), ss.StateMap(b_block=1.5))
    states = dict(ss.STATES, REM=ss.Levels(ach=1.5, mono=0.0))
    with pytest.raises(ValueError, match=r"schedule: states\['REM'\]: levels.ach must lie in"):
        ss.schedule([0, 2], 0.01, 0.1, states=states)
    assert np.isnan(float(ss.modulation(ss.Levels(np.nan, 0.0)).b_scale))  # nan in, nan out


def _record(n_bins=3000, n=10, lfp=None):
    return {
        "rate": np.zeros((n_bins, 2)),
        "lfp": np.zeros(n_bins) if lfp is None else lfp,
        "spikes": np.zeros((n_bins, n), np.uint8),
    }


def test_describe_a_silent_network_and_an_indices_record():
    """Finding: a silent network (zero LFP) raised ZeroDivisionError; a record of
    Monitor(spikes="indices") raised KeyError 'spikes'."""
    d = ss.describe(_record(), 1.0, 8)
    assert np.isnan(d["slow_power_fraction"]) and np.isnan(d["peak_hz_below_4"])
    assert d["rate_exc_hz"] == 0.0 and d["n_up"] == 0
    lfp = np.sin(2 * np.pi * 1.0 * np.arange(3000) / 1000.0)  # 1 Hz in 1 ms bins
    d = ss.describe(_record(lfp=lfp), 1.0, 8, nperseg=2000)
    assert d["peak_hz_below_4"] == 1.0 and d["slow_power_fraction"] > 0.9
    rec = _record()
    del rec["spikes"]
    with pytest.raises(ValueError, match=r"describe: record lacks \['spikes'\]"):
        ss.describe(rec, 1.0, 8)


def test_check_hypnogram_names_stage_names_given_as_codes():
    """Finding: check_hypnogram(["W", "N2"]) raised a NumPy ufunc TypeError."""
    from nnjax.brain import hypnogram

    with pytest.raises(ValueError, match=r"codes must be integers 0..4 .*'N2'.*got \['N2', 'W'\]"):
        hypnogram.check_hypnogram(["W", "N2"])
    np.testing.assert_array_equal(hypnogram.check_hypnogram([0, 2.0]), [0, 2])
