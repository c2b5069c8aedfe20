"""Shape and value checks of nnjax.brain.synapses and nnjax.brain.plasticity: each bad case
used to fail in a bare JAX broadcast/TypeError that named neither the function nor the
argument, or to broadcast silently into a carried state or weight matrix of another shape
(a silent wrong number). Each is now a ValueError naming "<module>.<function>: ", the
argument and both shapes; the valid edge cases (scalars, documented broadcasts) still run,
also under jit and grad. Tiny inputs only: every case runs in milliseconds."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nnjax.brain import plasticity as pl
from nnjax.brain import synapses as syn

NAN = float("nan")
Q = syn.SynapseParams(tau=5.0)


def _proj(n_pre=4, n_post=3, max_delay=2, params=syn.AMPA):
    return syn.projection_init(n_pre, n_post, max_delay, params)


def _timed(n_pre=4, n_post=3, max_delay=2):
    return syn.timed_projection_init(n_pre, n_post, max_delay, Q)


def _pair(params=None, dt=1.0, **kw):
    params = pl.PairSTDPParams() if params is None else params
    W, pre, post = jnp.ones((3, 2)), jnp.ones(2), jnp.ones(3)
    return pl.pair_stdp_step(pl.pair_init(2, 3), W, pre, post, params, dt, **kw)


def _triplet(params=None, dt=1.0):
    params = pl.TripletParams() if params is None else params
    W, pre, post = jnp.ones((3, 2)), jnp.ones(2), jnp.ones(3)
    return pl.triplet_stdp_step(pl.triplet_init(2, 3), W, pre, post, params, dt)


def _scaling(params=None, dt=1.0):
    params = pl.ScalingParams() if params is None else params
    return pl.scaling_step(jnp.zeros(3), jnp.ones((3, 2)), jnp.zeros(3), params, dt)


X3 = syn.SynapseState(jnp.ones(3))
P_TAU = pl.PairSTDPParams  # short names for the table below
T_TAU = pl.TripletParams

# (id, call, message): the old behaviour in the comment after each group
CASES = [
    # synapses.step: tau (2, 3) or dt (2, 1) widened x (3,) into (2, 3); tau (4,): TypeError
    ("step/tau widens x", lambda: syn.step(X3, 0.0, syn.SynapseParams(tau=jnp.full((2, 3), 5.0)),
                                           0.1), r"synapses.step: tau must broadcast to the "
     r"state's shape \(3,\) without changing it, got tau of shape \(2, 3\)"),
    ("step/tau (4,)", lambda: syn.step(X3, 0.0, syn.SynapseParams(tau=jnp.full(4, 5.0)), 0.1),
     r"synapses.step: tau .* \(3,\) .* shape \(4,\)"),
    ("step/dt array", lambda: syn.step(X3, 0.0, Q, jnp.full((2, 1), 0.1)),
     r"synapses.step: dt has shape \(2, 1\); dt must be a scalar"),
    # synapses.current: V (4,) TypeError; V or E_rev (2, 3) widened the current; E_rev nan
    # gave a nan current; the kind error named no function
    ("current/V (4,)", lambda: syn.current(X3, jnp.zeros(4), syn.AMPA, "conductance"),
     r"synapses.current: V must broadcast to the state's shape \(3,\) .* shape \(4,\)"),
    ("current/V widens", lambda: syn.current(X3, jnp.zeros((2, 3)), syn.AMPA, "conductance"),
     r"synapses.current: V .* \(3,\) .* shape \(2, 3\)"),
    ("current/E_rev widens", lambda: syn.current(
        X3, 0.0, syn.SynapseParams(E_rev=jnp.zeros((2, 3))), "conductance"),
     r"synapses.current: E_rev .* \(3,\) .* shape \(2, 3\)"),
    ("current/E_rev nan", lambda: syn.current(X3, 0.0, syn.SynapseParams(E_rev=NAN),
                                              "conductance"),
     r"synapses.current: E_rev \(mV\) must be a finite number, got nan"),
    ("current/kind", lambda: syn.current(X3, 0.0, syn.AMPA, "volt"),
     "synapses.current: synapse kind must be one of"),
    # synapses.delay_read: JAX's "Incompatible types for broadcasting: input type=int32[4]
    # and requested type=int32[3,5]"; delays (2, 3, 4) read a 3-D block silently
    ("delay_read/(3, 5)", lambda: syn.delay_read(syn.delay_init(4, 2), jnp.zeros((3, 5), int)),
     r"synapses.delay_read: delays has shape \(3, 5\), the line holds 4 presynaptic neurons; "
     r"delays must be \(\), \(4,\) or \(n_post, 4\)"),
    ("delay_read/(3,)", lambda: syn.delay_read(syn.delay_init(4, 2), jnp.zeros(3, int)),
     r"synapses.delay_read: delays has shape \(3,\)"),
    ("delay_read/(2, 3, 4)", lambda: syn.delay_read(syn.delay_init(4, 2),
                                                    jnp.zeros((2, 3, 4), int)),
     r"synapses.delay_read: delays has shape \(2, 3, 4\)"),
    # synapses.synaptic_drive: per_synapse="no" counted as True; a list: AttributeError
    ("synaptic_drive/per_synapse str", lambda: syn.synaptic_drive(
        jnp.ones((3, 4)), jnp.ones((4, 2)), per_synapse="no"),
     "synapses.synaptic_drive: per_synapse must be True or False"),
    # synapses.projection_step: W (1, 4) gave all 3 neurons row 0's drive ([3. 3. 3.]),
    # tau (3, 1) widened x to (3, 3); delays (2, 4), pre (3,) and dt = 0 were reported by
    # synaptic_drive, delay_push and synapses.step
    ("projection_step/W (1, 4)", lambda: syn.projection_step(
        _proj(), jnp.ones(4), jnp.ones((1, 4)), 1, syn.AMPA, 0.1),
     r"synapses.projection_step: W has shape \(1, 4\), .* 4 presynaptic neurons onto x \(3,\); "
     r"W must be \(3, 4\)"),
    ("projection_step/W (3, 5)", lambda: syn.projection_step(
        _proj(), jnp.ones(4), jnp.ones((3, 5)), 1, syn.AMPA, 0.1),
     r"synapses.projection_step: W has shape \(3, 5\)"),
    ("projection_step/delays (2, 4)", lambda: syn.projection_step(
        _proj(), jnp.ones(4), jnp.ones((3, 4)), jnp.ones((2, 4), int), syn.AMPA, 0.1),
     r"synapses.projection_step: delays has shape \(2, 4\), .* \(\), \(4,\) or \(3, 4\)"),
    ("projection_step/delays 3", lambda: syn.projection_step(
        _proj(), jnp.ones(4), jnp.ones((3, 4)), 3, syn.AMPA, 0.1),
     r"synapses.projection_step: delays must be whole steps in \[0, max_delay=2\], got 3"),
    ("projection_step/pre_spikes", lambda: syn.projection_step(
        _proj(), jnp.ones(3), jnp.ones((3, 4)), 1, syn.AMPA, 0.1),
     r"synapses.projection_step: pre_spikes must have shape \(4,\) .* got \(3,\)"),
    ("projection_step/dt 0", lambda: syn.projection_step(
        _proj(), jnp.ones(4), jnp.ones((3, 4)), 1, syn.AMPA, 0.0),
     r"synapses.projection_step: dt \(ms\) must be a finite number > 0"),
    ("projection_step/tau widens x", lambda: syn.projection_step(
        _proj(), jnp.ones(4), jnp.ones((3, 4)), 1, syn.SynapseParams(tau=jnp.full((3, 1), 5.0)),
        0.1), r"synapses.projection_step: tau .* \(3,\) .* shape \(3, 1\)"),
    ("projection_init/n_post", lambda: syn.projection_init(4, 3.0, 2),
     "synapses.projection_init: n_post must be an int"),
    # synapses.arrival_weights: t_spike (3,) "Incompatible shapes for broadcasting", (2, 4)
    # widened the shares to (2, 4, 2), tau (3,) a TypeError; t_spike = 0.5 ms in a 0.1 ms
    # step gave shares [1.083, -4.164], t_spike = nan gave [nan, nan]
    ("arrival_weights/t_spike (3,)", lambda: syn.arrival_weights(
        jnp.ones(4), jnp.zeros(3), 0.1, Q),
     r"synapses.arrival_weights: t_spike must broadcast to spike's shape \(4,\) .* \(3,\)"),
    ("arrival_weights/t_spike widens", lambda: syn.arrival_weights(
        jnp.ones(4), jnp.zeros((2, 4)), 0.1, Q),
     r"synapses.arrival_weights: t_spike .* \(4,\) .* shape \(2, 4\)"),
    ("arrival_weights/tau (3,)", lambda: syn.arrival_weights(
        jnp.ones(4), jnp.zeros(4), 0.1, syn.SynapseParams(tau=jnp.full(3, 5.0))),
     r"synapses.arrival_weights: tau .* \(4,\) .* shape \(3,\)"),
    ("arrival_weights/t_spike > dt", lambda: syn.arrival_weights(
        jnp.ones(1), jnp.full(1, 0.5), 0.1, Q),
     r"synapses.arrival_weights: t_spike must be finite and in \[0, dt=0.1\] .* got 0.5"),
    ("arrival_weights/t_spike < 0", lambda: syn.arrival_weights(
        jnp.ones(1), jnp.full(1, -0.5), 0.1, Q), r"synapses.arrival_weights: t_spike .* -0.5"),
    ("arrival_weights/t_spike nan", lambda: syn.arrival_weights(
        jnp.ones(1), jnp.full(1, NAN), 0.1, Q), r"synapses.arrival_weights: t_spike .* got nan"),
    # timed projections: W (1, 4) gave every neuron row 0's drive, tau (3, 1) made the mean
    # (3, 3), delays (3,) a broadcast error; spike (3,) and t_spike (2, 4) were reported by
    # delay_push with shapes (3, 2) and (2, 4, 2); a tau per postsynaptic neuron, with
    # n_pre = n_post, computed presynaptic neuron j's shares with postsynaptic tau_j
    ("timed_projection_input/W", lambda: syn.timed_projection_input(
        _timed(), jnp.ones((1, 4)), 1, Q, 0.1),
     r"synapses.timed_projection_input: W has shape \(1, 4\), .* W must be \(3, 4\)"),
    ("timed_projection_input/delays", lambda: syn.timed_projection_input(
        _timed(), jnp.ones((3, 4)), jnp.ones(3, int), Q, 0.1),
     r"synapses.timed_projection_input: delays has shape \(3,\)"),
    ("timed_projection_input/tau", lambda: syn.timed_projection_input(
        _timed(), jnp.ones((3, 4)), 1, syn.SynapseParams(tau=jnp.full((3, 1), 5.0)), 0.1),
     r"synapses.timed_projection_input: tau has shape \(3, 1\); a timed projection needs one"),
    ("timed_projection_update/spike", lambda: syn.timed_projection_update(
        _timed(), jnp.zeros(3), jnp.ones(3), jnp.zeros(3), Q, 0.1),
     r"synapses.timed_projection_update: spike has shape \(3,\), .* spike must be \(4,\)"),
    ("timed_projection_update/t_spike", lambda: syn.timed_projection_update(
        _timed(), jnp.zeros(3), jnp.ones(4), jnp.zeros((2, 4)), Q, 0.1),
     r"synapses.timed_projection_update: t_spike .* \(4,\) .* shape \(2, 4\)"),
    ("timed_projection_update/tau per post", lambda: syn.timed_projection_update(
        syn.timed_projection_init(3, 3, 1, Q), jnp.zeros(3), jnp.ones(3), jnp.zeros(3),
        syn.SynapseParams(tau=jnp.array([1.0, 5.0, 10.0])), 0.1),
     r"synapses.timed_projection_update: tau has shape \(3,\)"),
    ("timed_projection_init/n_post", lambda: syn.timed_projection_init(4, -1, 2),
     "synapses.timed_projection_init: n_post must be an int >= 0"),
    # the module's older messages now start with "synapses."
    ("delay_push/prefix", lambda: syn.delay_push(syn.delay_init(3, 2), jnp.ones(1)),
     r"synapses.delay_push: spikes must have shape \(3,\)"),
    ("delay_init/prefix", lambda: syn.delay_init(0, 2), "synapses.delay_init: n_pre"),
    ("delay_steps/prefix", lambda: syn.delay_steps(-1.0, 0.1), "synapses.delay_steps: delays"),
    ("delay_read/prefix", lambda: syn.delay_read(syn.delay_init(4, 2), 3),
     r"synapses.delay_read: delays must be whole steps in \[0, max_delay=2\]"),
    # plasticity.pair_stdp_step: tau_plus (3, 1) turned x (2,) into (3, 2) and W into
    # (1, 3, 2); a_plus or w_max (4, 3, 2) made W (4, 3, 2); tau_plus (3,), tau_minus (2,),
    # a_plus (3,) and dt (2,) were TypeErrors ("mul got incompatible shapes")
    ("pair/tau_plus widens", lambda: _pair(P_TAU(tau_plus=jnp.full((3, 1), 16.8))),
     r"plasticity.pair_stdp_step: tau_plus must broadcast to the presynaptic trace's shape "
     r"\(2,\) without changing it, got tau_plus of shape \(3, 1\)"),
    ("pair/tau_plus (3,)", lambda: _pair(P_TAU(tau_plus=jnp.full(3, 16.8))),
     r"plasticity.pair_stdp_step: tau_plus .* \(2,\) .* shape \(3,\)"),
    ("pair/tau_minus (2,)", lambda: _pair(P_TAU(tau_minus=jnp.full(2, 33.7))),
     r"plasticity.pair_stdp_step: tau_minus .* postsynaptic trace's shape \(3,\) .* \(2,\)"),
    ("pair/a_plus widens W", lambda: _pair(P_TAU(a_plus=jnp.ones((4, 3, 2)))),
     r"plasticity.pair_stdp_step: a_plus must broadcast to W's shape \(3, 2\) .* \(4, 3, 2\)"),
    ("pair/a_minus (3,)", lambda: _pair(P_TAU(a_minus=jnp.ones(3))),
     r"plasticity.pair_stdp_step: a_minus .* W's shape \(3, 2\) .* shape \(3,\)"),
    ("pair/w_max widens W", lambda: _pair(P_TAU(w_max=jnp.ones((4, 3, 2)))),
     r"plasticity.pair_stdp_step: w_max .* \(4, 3, 2\)"),
    ("pair/dt (2,)", lambda: _pair(dt=jnp.ones(2)),
     r"plasticity.pair_stdp_step: dt has shape \(2,\); dt must be a scalar"),
    ("pair/w_min nan", lambda: _pair(P_TAU(w_min=NAN)),
     r"plasticity.pair_stdp_step: w_min must be a number or \+-inf, got nan"),
    ("pair/interaction", lambda: _pair(interaction="x"),
     "plasticity.pair_stdp_step: interaction must be one of"),
    # plasticity.triplet_stdp_step: tau_x (3, 1) turned r2 into (3, 2) and W into (1, 3, 2),
    # a3_plus (4, 3, 2) made W 3-D; tau_y (2, 1), a2_minus (4,) and dt (3, 1) failed in
    # bare broadcasts
    ("triplet/tau_x widens", lambda: _triplet(T_TAU(tau_x=jnp.full((3, 1), 101.0),
                                                    a3_minus=1e-3)),
     r"plasticity.triplet_stdp_step: tau_x .* presynaptic trace's shape \(2,\) .* \(3, 1\)"),
    ("triplet/tau_y", lambda: _triplet(T_TAU(tau_y=jnp.full((2, 1), 114.0))),
     r"plasticity.triplet_stdp_step: tau_y .* postsynaptic trace's shape \(3,\) .* \(2, 1\)"),
    ("triplet/a3_plus widens W", lambda: _triplet(T_TAU(a3_plus=jnp.ones((4, 3, 2)))),
     r"plasticity.triplet_stdp_step: a3_plus .* W's shape \(3, 2\) .* \(4, 3, 2\)"),
    ("triplet/a2_minus (4,)", lambda: _triplet(T_TAU(a2_minus=jnp.ones(4))),
     r"plasticity.triplet_stdp_step: a2_minus .* shape \(4,\)"),
    ("triplet/dt", lambda: _triplet(dt=jnp.ones((3, 1))),
     r"plasticity.triplet_stdp_step: dt has shape \(3, 1\)"),
    ("triplet/w_max nan", lambda: _triplet(T_TAU(w_max=NAN)),
     r"plasticity.triplet_stdp_step: w_max must be a number or \+-inf, got nan"),
    # plasticity.scaling_step: target_rate (2,) a TypeError, (3, 1) and tau_rate (2, 3) bare
    # broadcast errors; dt (3,) ran (one dt per neuron)
    ("scaling/target_rate (2,)", lambda: _scaling(pl.ScalingParams(target_rate=jnp.ones(2))),
     r"plasticity.scaling_step: target_rate must broadcast to the rates' shape \(3,\) .* \(2,\)"),
    ("scaling/target_rate (3, 1)", lambda: _scaling(pl.ScalingParams(
        target_rate=jnp.ones((3, 1)))), r"plasticity.scaling_step: target_rate .* \(3, 1\)"),
    ("scaling/tau_rate", lambda: _scaling(pl.ScalingParams(tau_rate=jnp.ones((2, 3)))),
     r"plasticity.scaling_step: tau_rate .* \(2, 3\)"),
    ("scaling/dt (3,)", lambda: _scaling(dt=jnp.ones(3)),
     r"plasticity.scaling_step: dt has shape \(3,\)"),
    # plasticity.scaling_init: "Incompatible types for broadcasting: input type=float32[5]"
    ("scaling_init/rate0", lambda: pl.scaling_init(3, rate0=jnp.ones(5)),
     r"plasticity.scaling_init: rate0 must broadcast to the rates' shape \(3,\) .* \(5,\)"),
]  # fmt: skip


@pytest.mark.parametrize("call, message", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_shapes_and_values_name_the_function_and_argument(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_documented_broadcasts_and_edge_values_still_run():
    # a scalar drive, tau, V; a tau per postsynaptic neuron; a receptor axis (tau (2, 1))
    assert syn.step(X3, 1.0, Q, 0.1).x.shape == (3,)
    het = syn.SynapseParams(tau=jnp.array([2.0, 5.0, 20.0]), E_rev=jnp.zeros(3))
    assert syn.step(X3, jnp.ones(3), het, 0.1).x.shape == (3,)
    assert syn.current(X3, -70.0, het, "conductance").shape == (3,)
    assert syn.current(X3, jnp.zeros(4), syn.AMPA, "current").shape == (3,)  # V unused
    two = syn.SynapseParams(tau=jnp.array([[5.0], [10.0]]))
    pr = syn.projection_step(_proj(params=two), jnp.ones(4), jnp.ones((3, 4)), 0, two, 0.1)
    assert pr.syn.x.shape == (2, 3)
    # delays: scalar, axonal (n_pre,), per synapse (n_post, n_pre); their largest value
    for d in (2, jnp.array([0, 1, 2, 2]), jnp.full((3, 4), 2)):
        pr = syn.projection_step(_proj(), jnp.ones(4), jnp.ones((3, 4)), d, syn.AMPA, 0.1)
        assert pr.syn.x.shape == (3,)
    assert syn.delay_read(syn.delay_init(4, 2), jnp.zeros((1, 4), int)).shape == (1, 4)
    # spike times: nan where no spike (adaptive_lif's), 0 and dt; a scalar t_spike
    out = syn.arrival_weights(jnp.array([1.0, 0.0, 1.0]), jnp.array([0.0, NAN, 0.1]), 0.1, Q)
    np.testing.assert_allclose(out[:, 0], [np.exp(-0.1 / 5.0), 0.0, 1.0], rtol=1e-6)
    assert syn.arrival_weights(jnp.ones(3), 0.05, 0.1, Q).shape == (3, 2)
    tp = syn.timed_projection_init(4, 3, 2, syn.SynapseParams(tau=jnp.array([5.0])))
    mean, jump = syn.timed_projection_input(tp, jnp.ones((3, 4)), jnp.full((3, 4), 2), Q, 0.1)
    tp = syn.timed_projection_update(tp, jump, jnp.ones(4), jnp.zeros(4), Q, 0.1)
    assert mean.shape == jump.shape == tp.syn.x.shape == (3,)
    assert syn.synaptic_drive(jnp.ones((3, 4)), [1.0, 0.0, 1.0, 0.0]).shape == (3,)  # a list
    # plasticity: amplitudes per presynaptic or postsynaptic neuron or per synapse, taus per
    # neuron of their side, bounds of W's shape, dt = 0, a scalar post in scaling, rate0 (1,)
    for p in (
        pl.PairSTDPParams(a_plus=jnp.ones(2), a_minus=jnp.ones((3, 1))),
        pl.PairSTDPParams(tau_plus=jnp.full(2, 16.8), tau_minus=jnp.full(3, 33.7)),
        pl.PairSTDPParams(w_min=jnp.zeros((3, 2)), w_max=jnp.ones((3, 2))),
    ):
        traces, W = _pair(p)
        assert W.shape == (3, 2) and traces.x.shape == (2,) and traces.y.shape == (3,)
    assert _pair(dt=0.0)[1].shape == (3, 2)
    tr, W = _triplet(pl.TripletParams(tau_x=jnp.full(2, 101.0), tau_y=jnp.full(3, 114.0)))
    assert W.shape == (3, 2) and tr.r2.shape == (2,) and tr.o2.shape == (3,)
    rate, W = pl.scaling_step(jnp.zeros(3), jnp.ones((3, 2)), 1.0,
                              pl.ScalingParams(target_rate=jnp.full(3, 5.0)), 1.0)  # fmt: skip
    assert rate.shape == (3,) and W.shape == (3, 2)
    np.testing.assert_array_equal(pl.scaling_init(3, rate0=jnp.array([2.0])), [2.0] * 3)


def test_projection_and_stdp_steps_trace_under_jit_and_grad():
    """The checks read static shapes and skip traced values: traced W, delays, tau, dt,
    spike times and amplitudes run under jit and grad."""
    pr = _proj()
    step = jax.jit(
        lambda W, d, tau, dt: (
            syn.projection_step(pr, jnp.ones(4), W, d, syn.SynapseParams(tau=tau), dt).syn.x
        )
    )
    x = step(jnp.ones((3, 4)), jnp.zeros(4, int), 5.0, 0.1)
    np.testing.assert_allclose(x, [4.0, 4.0, 4.0])

    def loss(W, tau):
        s = syn.projection_step(pr, jnp.ones(4), W, 0, syn.SynapseParams(tau=tau), 0.1)
        s = syn.projection_step(s, jnp.zeros(4), W, 0, syn.SynapseParams(tau=tau), 0.1)
        return jnp.sum(s.syn.x)

    gW, gtau = jax.grad(loss, argnums=(0, 1))(jnp.ones((3, 4)), 5.0)
    assert gW.shape == (3, 4) and np.isfinite(float(gtau))

    tp = _timed()

    @jax.jit
    def timed(W, spike, t_spike, dt):
        mean, jump = syn.timed_projection_input(tp, W, 1, Q, dt)
        return mean, syn.timed_projection_update(tp, jump, spike, t_spike, Q, dt).line.buffer

    mean, buf = timed(jnp.ones((3, 4)), jnp.ones(4), jnp.full(4, 0.05), 0.1)
    assert mean.shape == (3,) and buf.shape == (2, 4, 2)

    def stdp(W, a_plus, dt):
        p = pl.PairSTDPParams(a_plus=a_plus)
        return pl.pair_stdp_step(pl.pair_init(2, 3), W, jnp.ones(2), jnp.ones(3), p, dt)[1]

    assert jax.jit(stdp)(jnp.ones((3, 2)), 0.01, 1.0).shape == (3, 2)
    g = jax.grad(lambda a: jnp.sum(stdp(jnp.ones((3, 2)), a, 1.0)))(0.01)
    assert np.isfinite(float(g))
    trip = jax.jit(lambda W, dt: _triplet_W(W, dt))(jnp.ones((3, 2)), 1.0)
    assert trip.shape == (3, 2)
    rate, W = jax.jit(lambda dt: pl.scaling_step(jnp.zeros(3), jnp.ones((3, 2)), 1.0,
                                                 pl.ScalingParams(), dt))(1.0)  # fmt: skip
    assert rate.shape == (3,) and W.shape == (3, 2)


def _triplet_W(W, dt):
    tr = pl.triplet_init(2, 3)
    return pl.triplet_stdp_step(tr, W, jnp.ones(2), jnp.ones(3), pl.TripletParams(), dt)[1]
