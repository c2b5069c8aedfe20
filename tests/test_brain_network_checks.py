"""network.simulate's argument checks and the raster monitor's width: named ValueErrors for
shapes that do not fit the spec, NumPy ints accepted, no count that wraps around."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nnjax.brain import adaptive_lif, circuits
from nnjax.brain import monitors as mon
from nnjax.brain import network as nw

SMALL = circuits.NetworkConfig(n_exc=8, n_inh=2, p=0.5, delay_ms=0.3, rate_ext=0.0)


def test_raster_counts_do_not_wrap_past_255_spikes_a_bin():
    """Finding: 5 cells firing every few steps (no refractory period) counted 262 and 375
    spikes in a bin of 1000 steps; the uint8 raster showed 6 and 119."""
    cfg = circuits.CORTEX._replace(n_exc=4, n_inh=1, I_bias=20000.0, t_ref=0.0, rate_ext=0.0)
    params, key = circuits.init_params(jax.random.key(0), cfg), jax.random.key(1)
    fine = nw.simulate(key, params, cfg.spec, 1000, monitor=nw.Monitor(every=1))
    coarse = nw.simulate(key, params, cfg.spec, 1000, monitor=nw.Monitor(every=1000))
    true = np.asarray(fine.record["spikes"]).sum(0, dtype=np.int64)
    assert true.max() > 255
    assert coarse.record["spikes"].dtype == np.uint16
    np.testing.assert_array_equal(coarse.record["spikes"][0], true)
    assert mon.raster_dtype(10) == jnp.uint8 and mon.raster_dtype(255) == jnp.uint8  # small
    assert mon.raster_dtype(256) == jnp.uint16 and mon.raster_dtype(65536) == jnp.uint32


def _run(params=None, spec=SMALL.spec, n_steps=10, **kw):
    params = circuits.init_params(jax.random.key(0), SMALL) if params is None else params
    return nw.simulate(jax.random.key(0), params, spec, n_steps, **kw)


def test_shapes_that_do_not_fit_the_spec_are_named():
    """Finding: these gave raw broadcast errors from inside the scan."""
    p = circuits.init_params(jax.random.key(0), SMALL)
    other = circuits.NetworkConfig(n_exc=6, n_inh=2, p=0.5, delay_ms=0.3)
    state = nw.init_state(circuits.init_params(jax.random.key(0), other), other.spec)
    with pytest.raises(ValueError, match="network: state must come from this network"):
        _run(p, state=state)
    cases = {
        "neuron.C": p._replace(neuron=p.neuron._replace(C=jnp.full(7, 200.0))),
        "rate_ext": p._replace(rate_ext=jnp.ones(3)),
        "I_bias": p._replace(I_bias=jnp.ones((10, 1))),
        "mask_ee": p._replace(mask_ee=jnp.ones((8, 9))),
        "exc_syn.tau": p._replace(exc_syn=p.exc_syn._replace(tau=jnp.full(10, 5.0))),
    }
    for name, bad in cases.items():
        with pytest.raises(ValueError, match=f"network: {name} must be"):
            _run(bad)
    alif = adaptive_lif.DEFAULT
    with pytest.raises(ValueError, match="params.neuron must be AdExParams"):
        _run(p._replace(neuron=alif))
    _run(p._replace(I_bias=jnp.linspace(0, 1, 10), rate_ext=5.0))  # (N,) and scalars pass


def test_sizes_and_monitor_ids_must_be_ints_and_numpy_ints_pass():
    """Finding: n_exc=0 surfaced as 'asks for 0 inputs from 0 neurons'; neurons=(1.7,) was
    truncated to neuron 1; np.int64 n_exc, every and n_steps were refused."""
    with pytest.raises(ValueError, match="network: n_exc must be an int >= 1, got 0"):
        circuits.init_params(jax.random.key(0), SMALL._replace(n_exc=0))
    with pytest.raises(ValueError, match="Monitor.neurons must be ints in 0..9, got 1.7"):
        _run(monitor=nw.Monitor(neurons=(1.7,)))
    with pytest.raises(ValueError, match="Monitor.every must be an int >= 1"):
        _run(monitor=nw.Monitor(every=2.0))
    with pytest.raises(ValueError, match="n_steps must be an int >= 1"):
        _run(n_steps=10.0)
    cfg = SMALL._replace(n_exc=np.int64(8), rate_ext=2000.0)
    params = circuits.init_params(jax.random.key(0), cfg)
    monitor = nw.Monitor(every=np.int64(5), neurons=(np.int32(3),))
    got = nw.simulate(jax.random.key(1), params, cfg.spec, np.int64(50), monitor=monitor)
    ref = nw.simulate(
        jax.random.key(1), params, SMALL._replace(rate_ext=2000.0).spec, 50,
        monitor=nw.Monitor(every=5, neurons=(3,)),
    )  # fmt: skip
    for k in ref.record:
        np.testing.assert_array_equal(got.record[k], ref.record[k])
