"""A plastic network run continues exactly from ``Run.traces``: the STDP traces started at
zero in every ``simulate`` call, and a run split in two learned other weights than the
whole run (max |dW| 0.011 against a total change of 0.023, the same spikes)."""

import jax
import numpy as np
import pytest

from nnjax.brain import circuits, plasticity
from nnjax.brain import network as nw

CFG = circuits.NetworkConfig(n_exc=8, n_inh=2, p=0.5, delay_ms=0.3, rate_ext=3000.0,
                             I_bias=150.0)  # fmt: skip
STDP = plasticity.PairSTDPParams()
MON = nw.Monitor(every=1)


def test_a_split_plastic_run_equals_the_whole_run_with_its_traces():
    with jax.enable_x64(True):
        params, key = circuits.init_params(jax.random.key(0), CFG), jax.random.key(3)
        whole = nw.simulate(key, params, CFG.spec, 600, monitor=MON, stdp=STDP)
        a = nw.simulate(key, params, CFG.spec, 300, monitor=MON, stdp=STDP)
        go_on = dict(state=a.state, monitor=MON, stdp=STDP)
        later = params._replace(W_ee=a.W_ee)
        b = nw.simulate(key, later, CFG.spec, 300, traces=a.traces, **go_on)
        fresh = nw.simulate(key, later, CFG.spec, 300, **go_on)
        assert nw.simulate(key, params, CFG.spec, 10, monitor=MON).traces is None
    spikes = np.concatenate([a.record["spikes"], b.record["spikes"]])
    assert np.array_equal(spikes, whole.record["spikes"]) and spikes.sum() > 20
    np.testing.assert_allclose(b.W_ee, whole.W_ee, rtol=0, atol=1e-12)
    for t, w in zip(b.traces, whole.traces):
        assert t.shape == (8,) and t.dtype == np.float64
        np.testing.assert_allclose(t, w, rtol=0, atol=1e-12)
    assert np.abs(np.asarray(fresh.W_ee) - np.asarray(whole.W_ee)).max() > 1e-3  # pairs lost


def test_bad_traces_are_refused_naming_them():
    params, key = circuits.init_params(jax.random.key(0), CFG), jax.random.key(3)
    good = plasticity.pair_init(8, 8)
    cases = [
        (dict(traces=good), "traces continue a plastic run: give them with stdp"),
        (dict(stdp=STDP, traces=(good.x, good.y)), "traces must be a PairTraces"),
        (dict(stdp=STDP, traces=plasticity.pair_init(8, 9)), r"traces.y must be \(n_exc=8,\)"),
        (dict(stdp=STDP, traces=good._replace(x=good.x - 1.0)), "traces.x must be a finite"),
    ]
    for kwargs, message in cases:
        with pytest.raises(ValueError, match=message):
            nw.simulate(key, params, CFG.spec, 10, monitor=MON, **kwargs)


def test_the_consolidation_period_is_one_plastic_run_across_its_two_calls():
    """Its first raster_s seconds are recorded in one call and the rest run in another; the
    STDP traces restarted at zero between them, and pairs across the split were lost."""
    from nnjax.brain import consolidation as cons
    from nnjax.brain import sleep_states

    cfg = cons.SMALL_CORTEX._replace(n_exc=100, n_inh=25, p=0.8)
    proto = cons.Protocol(consolidation_s=0.3, raster_s=0.2)
    keys = jax.random.split(jax.random.key(5), 2)
    P = cons.pattern(proto, cfg.n_exc + cfg.n_inh)  # run_experiment's stimulus pattern
    params = jax.vmap(lambda k: circuits.init_params(k, cfg)._replace(stim_pattern=P))(keys)
    state = jax.vmap(lambda p: nw.init_state(p, cfg.spec))(params)
    nrem = sleep_states.modulation(sleep_states.STATES["NREM"], sleep_states.StateMap())
    p_end, _, raster = cons._consolidate(keys, params, state, nrem, proto, cfg, 10)
    first, rest = np.zeros((2000, proto.n_groups), np.float32), np.zeros((1000, proto.n_groups))
    p1, s1, _, traces = cons._run(keys, params, state, nrem, first, proto, cfg, cons._RASTER,
                                  True, 10)  # fmt: skip
    assert traces.x.shape == (2, 100) and float(traces.x.max()) > 0
    by_hand, lost = (
        cons._run(keys, p1, s1, nrem, rest, proto, cfg, cons._QUIET, True, 11, t)[0].W_ee
        for t in (traces, None)
    )
    np.testing.assert_array_equal(p_end.W_ee, by_hand)
    assert not np.array_equal(p_end.W_ee, lost) and raster.shape == (2, 200, 125)


def test_run_night_passes_the_traces_on():
    from nnjax.brain import sleep_states

    with jax.enable_x64(True):
        params, key = circuits.init_params(jax.random.key(0), CFG), jax.random.key(3)
        night = lambda p, **kw: sleep_states.run_night(  # noqa: E731
            key, p, CFG.spec, [1], 0.03, monitor=MON, stdp=STDP, **kw
        )
        a = night(params)
        later = params._replace(W_ee=a.W_ee)
        b, fresh = (night(later, state=a.state, traces=t) for t in (a.traces, None))
        assert a.traces is not None and float(a.traces.x.max()) > 0
        assert not np.array_equal(b.W_ee, fresh.W_ee)


def test_the_default_alif_i_cells_do_not_adapt():
    """NetworkConfig's docstring: ALIF E cells are adaptive_lif.DEFAULT, I cells the same with
    b = 0 (as AdEx's FS_CELL has b = 0 beside RS_CELL's 60 pA)."""
    from nnjax.brain import adaptive_lif

    exc, inh = circuits._cells(circuits.NetworkConfig(model="alif"))
    assert exc == adaptive_lif.DEFAULT and adaptive_lif.DEFAULT.b > 0
    assert inh == adaptive_lif.DEFAULT._replace(b=0.0)
    assert circuits._cells(circuits.NetworkConfig()) == (circuits.RS_CELL, circuits.FS_CELL)
