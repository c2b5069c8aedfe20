"""Pair STDP, the triplet rule and synaptic scaling against closed forms and published
numbers (Bi & Poo's window time constants; Sjöström et al.'s frequency dependence through
Pfister & Gerstner's fitted parameters)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from nnjax.brain import adex
from nnjax.brain import plasticity as pl
from nnjax.brain import synapses as syn

TAU_PLUS, TAU_MINUS = 16.8, 33.7  # ms, Bi & Poo 2001's fit to Bi & Poo 1998


def _pairing_events(freq, lag, n=60):
    """Event-driven pairing protocol: (dt (2n,), pre (2n,), post (2n,)): n pairs, a pre spike
    every 1000/freq ms and a post spike ``lag`` ms after it (before it when lag < 0). The
    traces decay exactly over any dt, so stepping from event to event equals a fine grid."""
    period = 1000.0 / freq
    t_pre = 100.0 + period * jnp.arange(n)
    times = jnp.concatenate([t_pre, t_pre + lag])
    is_pre = jnp.concatenate([jnp.ones(n), jnp.zeros(n)])
    order = jnp.argsort(times)
    times, is_pre = times[order], is_pre[order]
    dt = jnp.diff(times, prepend=0.0)
    return dt, is_pre, 1.0 - is_pre


def _weight_change(step, init, params, events, interaction):
    dt, pre, post = events

    def body(c, e):
        tr, W = c
        d, sp, so = e
        return step(tr, W, sp[None], so[None], params, d, interaction=interaction), None

    (_, W), _ = jax.lax.scan(body, (init(1, 1), jnp.ones((1, 1))), (dt, pre, post))
    return W[0, 0] - 1.0


def _pair_change(params, events, interaction="all_to_all"):
    return _weight_change(pl.pair_stdp_step, pl.pair_init, params, events, interaction)


def _triplet_change(params, events, interaction):
    return _weight_change(pl.triplet_stdp_step, pl.triplet_init, params, events, interaction)


def test_pair_rule_reproduces_the_bi_poo_window():
    """Bi & Poo 1998's protocol: 60 pairings at 1 Hz. Potentiation for pre-before-post,
    depression after, each exponential in |Delta t| with tau_plus = 16.8 ms and tau_minus =
    33.7 ms (recovered by a log-linear fit of the simulated window)."""
    with jax.enable_x64(True):
        p = pl.PairSTDPParams(w_min=-np.inf)
        lags = jnp.concatenate([-jnp.arange(100.0, 0.0, -5.0), jnp.arange(5.0, 101.0, 5.0)])
        dw = jax.vmap(lambda lag: _pair_change(p, _pairing_events(1.0, lag)))(lags)
    lags, dw = np.asarray(lags), np.asarray(dw)
    pos, neg = lags > 0, lags < 0
    assert np.all(dw[pos] > 0) and np.all(dw[neg] < 0)
    # rtol 1e-8: neighbouring pairings 1 s apart add ~e^{-900/33.7} = 3e-12 relative terms
    np.testing.assert_allclose(dw[pos], 60 * 0.005 * np.exp(-lags[pos] / TAU_PLUS), rtol=1e-8)
    np.testing.assert_allclose(dw[neg], -60 * 0.00525 * np.exp(lags[neg] / TAU_MINUS), rtol=1e-8)
    tau_p = -1.0 / np.polyfit(lags[pos], np.log(dw[pos]), 1)[0]
    tau_m = 1.0 / np.polyfit(lags[neg], np.log(-dw[neg]), 1)[0]
    assert tau_p == pytest.approx(16.8, abs=1e-6) and tau_m == pytest.approx(33.7, abs=1e-6)


def test_pair_rule_on_a_grid_equals_event_driven():
    with jax.enable_x64(True):
        p, dt = pl.PairSTDPParams(w_min=-np.inf), 0.1
        events = _pairing_events(20.0, 7.0, n=5)
        T = 4000
        times = np.cumsum(np.asarray(events[0]))
        k = np.round(times / dt).astype(int)
        pre, post = np.zeros(T), np.zeros(T)
        pre[k[np.asarray(events[1]) > 0]] = 1.0
        post[k[np.asarray(events[2]) > 0]] = 1.0
        grid = _pair_change(p, (jnp.full(T, dt), jnp.asarray(pre), jnp.asarray(post)))
        assert float(grid) == pytest.approx(float(_pair_change(p, events)), rel=1e-9)


def test_nearest_and_all_to_all_pairs_in_closed_form():
    """50 Hz pairs, post 10 ms after pre: nearest-spike sees only the adjacent spikes, all-to-
    all the geometric sums over every earlier spike (steady state after the first pairs)."""
    with jax.enable_x64(True):
        p = pl.PairSTDPParams(w_min=-np.inf)
        ev = _pairing_events(50.0, 10.0, n=40)
        near = float(_pair_change(p, ev, "nearest"))
        full = float(_pair_change(p, ev, "all_to_all"))
    ep, em = np.exp(-10 / TAU_PLUS), np.exp(-10 / TAU_MINUS)
    # nearest: every post pairs with the pre 10 ms earlier; every pre but the first with the
    # post 10 ms earlier
    assert near == pytest.approx(40 * 0.005 * ep - 39 * 0.00525 * em, rel=1e-12)
    # all-to-all: post k sees sum_{j<=k} e^{-(10 + 20 (k-j))/tau+}, pre k sees
    # sum_{j<k} e^{-(10 + 20 (k-1-j))/tau-}
    qp, qm = np.exp(-20 / TAU_PLUS), np.exp(-20 / TAU_MINUS)
    ltp = sum(0.005 * ep * (1 - qp ** (k + 1)) / (1 - qp) for k in range(40))
    ltd = sum(0.00525 * em * (1 - qm**k) / (1 - qm) for k in range(40))
    assert full == pytest.approx(ltp - ltd, rel=1e-12)


FREQS = np.array([0.1, 10.0, 20.0, 40.0, 50.0])  # NumPy: float64 under x64


def _sjostrom(params, interaction):
    """60 pairings at each frequency, post 10 ms after (+10) or before (-10) the pre spike."""
    run = lambda f, lag: _triplet_change(params, _pairing_events(f, lag), interaction)
    plus = jax.vmap(lambda f: run(f, 10.0))(FREQS)
    minus = jax.vmap(lambda f: run(f, -10.0))(FREQS)
    return np.asarray(plus), np.asarray(minus)


@pytest.mark.parametrize(
    "name, interaction, plus, minus",
    [
        # measured (weight change over 60 pairings, units of the initial weight)
        (
            "visual_cortex_all_to_all_minimal",
            "all_to_all",
            [0.0, 0.1186, 0.2278, 0.5321, 0.7627],
            [-0.3166, -0.3322, -0.3417, 0.1737, 0.7492],
        ),
        (
            "visual_cortex_nearest_minimal",
            "nearest",
            [0.0, 0.1009, 0.3220, 0.5683, 0.6358],
            [-0.3568, -0.3556, -0.2786, 0.2898, 0.6299],
        ),
    ],
)
def test_triplet_rule_reproduces_sjostrom_frequency_dependence(name, interaction, plus, minus):
    """Sjöström, Turrigiano & Nelson 2001 (visual cortex L5): +10 ms pairings give no LTP at
    0.1 Hz and LTP growing with frequency; -10 ms pairings give LTD at low frequency and LTP
    at 40-50 Hz. Pfister & Gerstner's minimal models (Table 3 parameters) reproduce it:"""
    with jax.enable_x64(True):
        got_plus, got_minus = _sjostrom(pl.PFISTER_GERSTNER_2006[name], interaction)
    np.testing.assert_allclose(got_plus, plus, atol=5e-4)
    np.testing.assert_allclose(got_minus, minus, atol=5e-4)
    assert abs(got_plus[0]) < 1e-12  # A2+ = 0: a lone pair never potentiates
    assert np.all(np.diff(got_plus) > 0)  # LTP grows with frequency at +10 ms
    assert np.all(got_minus[:3] < -0.25) and np.all(got_minus[3:] > 0)  # LTD -> LTP
    # at 0.1 Hz the pairs are independent: -10 ms gives -60 A2- e^{-10/33.7} exactly
    a2m = pl.PFISTER_GERSTNER_2006[name].a2_minus
    assert got_minus[0] == pytest.approx(-60 * a2m * np.exp(-10 / TAU_MINUS), rel=1e-9)


def test_pair_rule_cannot_turn_depression_into_potentiation():
    """The contrast that motivates the triplet term: with the same depression (A- = 7.1e-3)
    and a pair LTP term, -10 ms pairings depress at every frequency."""
    with jax.enable_x64(True):
        p = pl.PairSTDPParams(a_plus=5e-3, a_minus=7.1e-3, w_min=-np.inf)
        minus = jax.vmap(lambda f: _pair_change(p, _pairing_events(f, -10.0)))(FREQS)
    assert np.all(np.asarray(minus) < 0)


def test_triplet_without_triplet_terms_is_the_pair_rule():
    rng = np.random.default_rng(1)
    pre = jnp.asarray((rng.random((400, 4)) < 0.05).astype(float))
    post = jnp.asarray((rng.random((400, 3)) < 0.05).astype(float))
    tp = pl.TripletParams(a2_plus=0.01, a3_plus=0.0, a2_minus=0.012, a3_minus=0.0, w_min=-1.0)
    pp = pl.PairSTDPParams(a_plus=0.01, a_minus=0.012, w_min=-1.0)
    for inter in pl.INTERACTIONS:

        def run(step, init, params, inter=inter):
            def body(c, s):
                return step(*c, s[0], s[1], params, 0.5, interaction=inter), None

            return jax.lax.scan(body, (init(4, 3), jnp.full((3, 4), 0.5)), (pre, post))[0][1]

        np.testing.assert_allclose(
            run(pl.triplet_stdp_step, pl.triplet_init, tp),
            run(pl.pair_stdp_step, pl.pair_init, pp),
            rtol=1e-6,
            atol=1e-6,
        )


def test_plasticity_gradients_and_bounds():
    with jax.enable_x64(True):
        ev = _pairing_events(20.0, 10.0, n=10)

        def dw(a3, tau_y):
            p = pl.TripletParams(a3_plus=a3, tau_y=tau_y)
            return _triplet_change(p, ev, "all_to_all")

        # under jax.jit: one compiled scan instead of op by op (2.4 s became 1.1 s); the
        # parameters are traced in check_grads either way
        check_grads(jax.jit(dw), (6.5e-3, 114.0), order=1, modes=("rev", "fwd"))
        # hard bounds clip, and a mask freezes absent synapses
        p = pl.PairSTDPParams(a_plus=1.0, w_max=1.2)
        tr = pl.PairTraces(jnp.ones(2), jnp.zeros(1))
        _, W = pl.pair_stdp_step(
            tr, jnp.ones((1, 2)), jnp.zeros(2), jnp.ones(1), p, 0.1, mask=jnp.array([[1.0, 0.0]])
        )
        np.testing.assert_allclose(W, [[1.2, 1.0]])


def test_a_fractional_mask_scales_each_synapse_update():
    """The docstring's W <- clip(W + mask * dW) where mask != 0, by hand: x decays one step."""
    with jax.enable_x64(True):
        p = pl.PairSTDPParams(a_plus=0.1)
        tr = pl.PairTraces(jnp.ones(3), jnp.zeros(1))
        mask = jnp.array([[0.25, 0.5, 0.0]])
        _, W = pl.pair_stdp_step(tr, jnp.ones((1, 3)), jnp.zeros(3), jnp.ones(1), p, 0.1, mask=mask)
        dw = 0.1 * np.exp(-0.1 / 16.8)
        np.testing.assert_allclose(W, [[1 + 0.25 * dw, 1 + 0.5 * dw, 1.0]], rtol=1e-14)


def test_scaling_is_multiplicative_with_its_time_constant():
    with jax.enable_x64(True):
        p = pl.ScalingParams(target_rate=5.0, tau_rate=200.0, tau_scaling=1000.0)
        W0 = jnp.array([[1.0, 2.0, 4.0], [3.0, 1.0, 0.5]])
        # neuron 0 fires every 50 ms (20 Hz), neuron 1 never: 5 s at dt = 1 ms
        post = jnp.zeros((5000, 2)).at[::50, 0].set(1.0)

        def body(c, s):
            return pl.scaling_step(*c, s, p, 1.0), None

        (rate, W), _ = jax.lax.scan(body, (pl.scaling_init(2), W0), post)
    ratio = np.asarray(W / W0)
    # the ratios between a neuron's synapses never change: one factor per row
    np.testing.assert_allclose(ratio, ratio[:, :1] * np.ones((1, 3)), rtol=1e-12)
    # a silent neuron scales up as e^{t / tau_scaling}: e^5 after 5 s
    assert ratio[1, 0] == pytest.approx(np.exp(5.0), rel=1e-12)
    # the 20 Hz neuron scales down (its estimate settles at 20 Hz, 4x the target)
    assert float(rate[0]) == pytest.approx(20.0, rel=0.15) and ratio[0, 0] < 1e-3


def test_scaling_brings_a_driven_neuron_to_its_target_rate():
    """Two AdEx neurons, 100 Poisson inputs at 10 Hz each, current synapses; one starts far
    above the 10 Hz target, one silent. Scaling (tau 2 s) brings both to it."""
    dt, T, n_in = 0.5, 40000, 100  # 20 s
    p = adex.NAUD_2008["tonic"][0]
    sp = pl.ScalingParams(target_rate=10.0, tau_rate=500.0, tau_scaling=2000.0)
    ps = syn.SynapseParams(tau=5.0)
    pattern = jax.random.uniform(jax.random.key(0), (2, n_in), minval=0.5, maxval=1.5)
    W0 = pattern * jnp.array([[80.0], [10.0]])  # pA

    def body(c, t):
        n, s, rate, W = c
        inputs = jax.random.bernoulli(
            jax.random.fold_in(jax.random.key(1), t), 10e-3 * dt, (n_in,)
        ).astype(jnp.float32)
        n = adex.step(n, s.x, p, dt)
        s = syn.step(s, W @ inputs, ps, dt)
        rate, W = pl.scaling_step(rate, W, n.spike, sp, dt)
        return (n, s, rate, W), n.spike

    init = (adex.init_state((2,), p), syn.init_state((2,)), pl.scaling_init(2), W0)
    (_, _, _, W), spikes = jax.lax.scan(body, init, jnp.arange(T))
    spikes = np.asarray(spikes)
    first = spikes[:2000].sum(0) / 1.0  # Hz over the first second
    last = spikes[-10000:].sum(0) / 5.0  # Hz over the last 5 s
    assert first[0] > 30.0 and first[1] < 2.0
    np.testing.assert_allclose(last, 10.0, rtol=0.25)
    np.testing.assert_allclose(W / W[:, :1], pattern / pattern[:, :1], rtol=1e-4)


def test_plasticity_errors():
    with pytest.raises(ValueError, match="interaction"):
        pl.pair_stdp_step(
            pl.pair_init(1, 1),
            jnp.ones((1, 1)),
            jnp.ones(1),
            jnp.ones(1),
            pl.PairSTDPParams(),
            0.1,
            interaction="nearest_neighbour",
        )
    with pytest.raises(ValueError, match="interaction"):
        pl.triplet_stdp_step(
            pl.triplet_init(1, 1),
            jnp.ones((1, 1)),
            jnp.ones(1),
            jnp.ones(1),
            pl.TripletParams(),
            0.1,
            interaction="all",
        )


def _pair_once(params, dt, W=None, pre=(1.0,), post=(1.0,), traces=None):
    W = jnp.full((len(post), len(pre)), 0.5) if W is None else W
    traces = pl.PairTraces(jnp.ones(len(pre)), jnp.ones(len(post))) if traces is None else traces
    return pl.pair_stdp_step(traces, W, jnp.array(pre), jnp.array(post), params, dt)


def _triplet_once(params, dt=0.1):
    ones = jnp.ones(1)
    tr = pl.TripletTraces(ones, ones, ones, ones)
    return pl.triplet_stdp_step(tr, jnp.full((1, 1), 0.5), ones, ones, params, dt)


def test_plasticity_time_constants_and_dt_are_checked():
    """tau = 0 was a ZeroDivisionError, tau < 0 or dt < 0 grew the traces; the triplet rule
    refused even tau_x = 0 that no term reads (a3_minus = 0)."""
    for params, dt, msg in (
        (pl.PairSTDPParams(tau_plus=0.0), 0.1, r"tau_plus \(ms\) must be .* > 0, got 0.0"),
        (pl.PairSTDPParams(tau_minus=np.float32(-5.0)), 0.1, r"tau_minus \(ms\) .* got -5.0"),
        (pl.PairSTDPParams(), -0.1, r"dt \(ms\) must be a finite number >= 0, got -0.1"),
    ):
        with pytest.raises(ValueError, match="pair_stdp_step: " + msg):
            _pair_once(params, dt)
    with pytest.raises(ValueError, match=r"triplet_stdp_step: tau_y \(ms\) .* > 0, got 0.0"):
        _triplet_once(pl.TripletParams(tau_y=0.0))  # read by a3_plus = 6.5e-3
    with pytest.raises(ValueError, match=r"triplet_stdp_step: tau_x \(ms\) .* > 0, got 0.0"):
        _triplet_once(pl.TripletParams(tau_x=0.0, a3_minus=1e-3))
    with pytest.raises(ValueError, match=r"triplet_stdp_step: tau_x \(ms\) .* >= 0, got -1.0"):
        _triplet_once(pl.TripletParams(tau_x=-1.0))
    # unused tau_x = 0: the same weights as any other tau_x, and r2 holds only the spikes
    tr0, W0 = _triplet_once(pl.TripletParams(tau_x=0.0))
    tr1, W1 = _triplet_once(pl.TripletParams(tau_x=101.0))
    np.testing.assert_array_equal(W0, W1)
    np.testing.assert_allclose(
        W0,
        [
            [
                0.5
                + np.exp(-0.1 / 16.8) * (6.5e-3 * np.exp(-0.1 / 114.0))
                - np.exp(-0.1 / 33.7) * 7.1e-3
            ]
        ],
        rtol=1e-6,
    )
    assert float(tr0.r2[0]) == 1.0 and float(tr1.r2[0]) == pytest.approx(1 + np.exp(-0.1 / 101))
    # dt = 0 (two events at one time, stepping event to event): no decay, no pairing change
    traces, W = _pair_once(pl.PairSTDPParams(), 0.0)
    np.testing.assert_allclose(W, [[0.5 + 0.005 - 0.00525]], rtol=1e-6)
    np.testing.assert_array_equal(traces.x, [2.0])
    for params, msg in (
        (pl.ScalingParams(tau_rate=0.0), "tau_rate must be a finite number > 0, got 0.0"),
        (pl.ScalingParams(tau_scaling=-1.0), "tau_scaling must be a finite number > 0"),
    ):
        with pytest.raises(ValueError, match="scaling_step: " + msg):
            pl.scaling_step(jnp.zeros(1), jnp.ones((1, 1)), jnp.zeros(1), params, 1.0)
    # traced parameters (jit) are not checked
    W = jax.jit(lambda p: _pair_once(p, 0.1)[1])(pl.PairSTDPParams())
    np.testing.assert_allclose(W, _pair_once(pl.PairSTDPParams(), 0.1)[1], rtol=1e-6)


def test_scaling_needs_a_positive_target_and_stdp_ordered_bounds():
    """target_rate = 0 gave W = nan at rate 0 and W = 0 above; w_min = 1 > w_max = 0 set every
    weight to 0."""
    rate, W0, post = jnp.array([0.0, 5.0]), jnp.ones((2, 1)), jnp.zeros(2)
    for target in (0.0, -5.0, np.float32(np.nan)):
        with pytest.raises(ValueError, match="scaling_step: target_rate must be a finite number"):
            pl.scaling_step(rate, W0, post, pl.ScalingParams(target_rate=target), 0.1)
    _, W = pl.scaling_step(rate, W0, post, pl.ScalingParams(target_rate=5.0), 0.1)
    np.testing.assert_allclose(W[:, 0], [np.exp(0.1 / 10000.0), 1.0], rtol=1e-6)
    with pytest.raises(ValueError, match="pair_stdp_step: w_min must be <= w_max, got w_min=1.0"):
        _pair_once(pl.PairSTDPParams(w_min=1.0, w_max=0.0), 0.1)
    with pytest.raises(ValueError, match="triplet_stdp_step: w_min must be <= w_max"):
        _triplet_once(pl.TripletParams(w_min=jnp.array([[0.0, 2.0]]), w_max=1.0))
    _, W = _pair_once(pl.PairSTDPParams(w_min=0.25, w_max=0.25), 0.1)  # pinned weights
    np.testing.assert_array_equal(W, [[0.25]])


def test_stdp_names_mismatched_shapes():
    """W (n_post, n_pre) against the spikes (n_pre,), (n_post,) and the traces: a bare JAX
    broadcast TypeError before."""
    p = pl.PairSTDPParams()
    ok, W = _pair_once(p, 0.1, W=jnp.full((3, 2), 0.5), pre=(1.0, 0.0), post=(0.0, 1.0, 0.0))
    assert W.shape == (3, 2) and ok.x.shape == (2,) and ok.y.shape == (3,)
    with pytest.raises(ValueError, match=r"pair_stdp_step: needs W \(n_post, n_pre\).* W \(2, 3\)"):
        _pair_once(p, 0.1, W=jnp.ones((2, 3)), pre=(1.0, 0.0), post=(0.0, 1.0, 0.0))
    with pytest.raises(ValueError, match=r"pair_stdp_step: .* presynaptic traces \[\(3,\)\]"):
        _pair_once(
            p, 0.1, W=jnp.ones((1, 2)), pre=(1.0, 0.0), post=(1.0,), traces=pl.pair_init(3, 1)
        )
    with pytest.raises(ValueError, match=r"triplet_stdp_step: needs W .* got W \(1, 2\)"):
        ones = jnp.ones(1)
        tr = pl.TripletTraces(ones, ones, ones, ones)
        pl.triplet_stdp_step(tr, jnp.ones((1, 2)), ones, ones, pl.TripletParams(), 0.1)
