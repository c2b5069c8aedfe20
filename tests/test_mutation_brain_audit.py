"""Tests that kill deliberate faults (mutants) the rest of the brain tests let pass.

Each test checks one documented formula against an independent oracle written here (a NumPy
loop of the equations, an analytic value or a hand-made table), at a point the other tests
leave open: a boundary (V0 exactly at threshold, a spike exactly dt away, a time on an epoch
boundary), a parameter at a value where a wrong formula agrees with the right one (V_r = E_L,
rho = 1), a documented default that no test pinned, a rule that only a longer run exercises.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nnjax.brain import baselines, detect, kuramoto, neurons, scores, sleep, synchrony
from nnjax.brain import rhythms as rh


def test_lif_continuous_fires_at_once_from_exactly_the_threshold():
    # docstring: "A neuron that starts at or above theta (V0 >= theta) fires at t = 0";
    # with V >= theta read as V > theta, V0 = theta under no input never fired
    tr = neurons.lif_continuous(jnp.zeros((5, 2)), V0=jnp.array([-50.0, -50.0 - 1e-3]))
    assert np.asarray(tr.spikes)[:, 0].tolist() == [True, False, False, False, False]
    assert float(tr.spike_times[0, 0]) == 0.0
    assert not np.asarray(tr.spikes)[:, 1].any()  # just below it, decaying to E_L: silent
    np.testing.assert_allclose(np.asarray(tr.v)[:, 0], -65.0)  # reset to V_r, held t_ref


@pytest.mark.parametrize("dt", [0.5, 3.0])  # 3 ms > t_ref: steps holding several spikes
def test_lif_fi_curve_with_a_reset_below_rest_against_the_closed_form(dt):
    # f = 1 / (t_ref + tau ln((R I + E_L - V_r) / (R I + E_L - theta))): at the default
    # V_r = E_L the two are interchangeable (at V_r = -72 mV the rates differ by 7-24 %)
    kw = dict(tau=10.0, R=10.0, E_L=-65.0, theta=-50.0, V_r=-72.0, t_ref=2.0)
    I = np.array([1.6, 2.0, 3.0, 5.0, 40.0])
    want = 1000.0 / (2.0 + 10.0 * np.log((10.0 * I - 65.0 + 72.0) / (10.0 * I - 65.0 + 50.0)))
    np.testing.assert_allclose(neurons.lif_rate_theory(I, **kw), want, rtol=1e-6)
    sim = neurons.lif_fi_curve(jnp.asarray(I), duration=600.0, dt=dt, **kw)
    np.testing.assert_allclose(sim, want, rtol=1e-5)


def test_lif_isi_discrete_rheobase_tolerance_scales_with_one_over_one_minus_beta():
    # a current within RHEOBASE_TOL (1 + 1 / (1 - beta)) (relative) of theta (1 - beta) is
    # the rheobase (inf); at beta = 0.9 that is 44 eps: 0.1 (1 + 30 eps) is inf, not the
    # finite ISI a bare RHEOBASE_TOL (4 eps) gave; 1e-12 above it is the closed form
    eps = np.finfo(float).eps
    assert neurons.lif_isi_discrete(0.1 * (1 + 30 * eps), 0.9) == np.inf
    I = 0.1 * (1 + 1e-12)
    want = np.ceil(np.log(1.0 - 0.09999999999999998 / I) / np.log(0.9))
    assert neurons.lif_isi_discrete(I, 0.9) == want == 263


def test_si_importance_drops_negative_path_integrals():
    # Omega_i += max(omega_i, 0) / (Delta_i^2 + xi): where the task loss rose along the path
    # (omega < 0) the parameter gets no importance (|omega| passed the other tests)
    omega = {"W": jnp.array([0.3, -0.3, 0.0, -2.0])}
    start = {"W": jnp.array([0.0, 0.0, 1.0, 0.5])}
    end = {"W": jnp.array([0.5, 0.5, 1.0, -0.5])}
    got = baselines.si_importance(omega, start, end, 0.1)
    want = np.maximum([0.3, -0.3, 0.0, -2.0], 0.0) / (np.array([0.5, 0.5, 0.0, -1.0]) ** 2 + 0.1)
    np.testing.assert_allclose(np.asarray(got["W"]), want, rtol=1e-6)
    assert float(got["W"][1]) == 0.0 and float(got["W"][3]) == 0.0


def _ce(logits, labels):
    z = logits - logits.max(-1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(-1, keepdims=True))
    return -np.mean(logp[np.arange(len(labels)), labels])


@pytest.mark.parametrize("rho, t", [(2.0, 1), (0.5, 2), (3.0, 3)])
def test_replay_mixes_as_one_over_one_plus_rho_t(rho, t):
    # L = 1/(1 + rho t) l(current) + rho t/(1 + rho t) l(replayed); at rho = 1 a wrong
    # rho t / (1 + t) agrees; a buffer of one example makes the replayed term exact
    W = np.array([[1.0, -0.5], [0.25, 2.0]])
    apply = lambda p, x: x @ p  # noqa: E731
    m = baselines.replay_method(apply, n_tasks=2, n_classes=2, d=2, capacity=1)
    extra = m.init(jax.random.PRNGKey(0), jnp.asarray(W), {})
    xb = np.array([0.7, -1.2])
    extra = {"X": extra["X"].at[0, 1, 0].set(xb), "valid": extra["valid"].at[0, 1, 0].set(True)}
    x, y = np.array([[1.0, 0.0], [0.3, 0.9], [-0.4, 0.2]]), np.array([0, 1, 1])
    hp = {"rho": jnp.asarray(rho), "m": jnp.asarray(1)}
    got = m.loss(jnp.asarray(W), extra, jax.random.PRNGKey(1), t, jnp.asarray(x),
                 jax.nn.one_hot(y, 2), hp)  # fmt: skip
    w = rho * t / (1.0 + rho * t)
    want = (1 - w) * _ce(x @ W, y) + w * _ce(np.tile(xb @ W, (3, 1)), np.array([1, 1, 1]))
    np.testing.assert_allclose(float(got), want, rtol=1e-5)


def test_forgetting_and_bwt_of_a_hand_made_accuracy_matrix():
    # R_lj: accuracy on task j after task l. Task 0 improves at the end (backward transfer):
    # forgetting f_0 = max(R00, R10) - R20 = -0.3 is negative, not clamped at 0 by a max that
    # wrongly takes in the last row; f_1 = R11 - R21 = 0.1
    R = np.array([[0.5, 0.1, 0.0], [0.6, 0.8, 0.2], [0.9, 0.7, 0.9]])
    np.testing.assert_allclose(scores.forgetting(R), (-0.3 + 0.1) / 2, atol=1e-12)
    m = scores.metrics(R, np.arange(3)[:, None], np.ones(3))  # one group per task
    np.testing.assert_allclose(m["forgetting"], -0.1, atol=1e-12)
    np.testing.assert_allclose(m["bwt"], ((0.9 - 0.5) + (0.7 - 0.8)) / 2, atol=1e-12)
    np.testing.assert_allclose(m["seen"], [0.5, 0.7, (0.9 + 0.7 + 0.9) / 3], atol=1e-12)


def test_kuramoto_rk4_against_the_exact_two_oscillator_solution():
    # N = 2, equal frequencies: phi = theta_2 - theta_1 obeys dphi/dt = -K sin(phi), so
    # tan(phi/2) = tan(phi0/2) e^{-K t}; and r = |cos(phi/2)|. At dt = 0.2 classical RK4 is
    # within 4.4e-5 of it; an RK4 whose third stage reuses k1 is off by far more
    phi0, K, dt, n = 2.5, 1.5, 0.2, 10
    with jax.enable_x64(True):
        res = kuramoto.simulate(
            jnp.array([0.0, phi0]), jnp.zeros(2), K, dt=dt, n_steps=n, return_phases=True
        )
        th, r = np.asarray(res.phases), np.asarray(res.r)
    t = dt * np.arange(1, n + 1)
    exact = 2.0 * np.arctan(np.tan(phi0 / 2.0) * np.exp(-K * t))
    np.testing.assert_allclose(th[:, 1] - th[:, 0], exact, atol=1e-4)
    np.testing.assert_allclose(r, np.abs(np.cos(exact / 2.0)), atol=1e-4)


def _src_oracle(Ws, X, hp, cfg):
    """NumPy loop of SRC's steps 1-4 (sleep.py's docstring) for a mean input whose firing
    probability min(1, 2 dt r x) is 1 everywhere and a window covering the whole image."""
    Ws = [np.array(W, np.float64) for W in Ws]
    a, prev, alphas = np.asarray(X, np.float64), 1.0, []
    for W in Ws:  # s_l = max(max W_l, max a_l), f_l = s_l / f_{l-1}, alpha_l = alpha / f_l
        a = np.maximum(a @ W, 0.0)
        f = max(W.max(), a.max()) / prev
        alphas.append(hp["alpha"] / f)
        prev = f
    vs, counts = [np.zeros(W.shape[1]) for W in Ws], np.zeros(len(Ws) + 1)
    for _ in range(cfg.steps):
        s = np.ones(X.shape[1])
        counts[0] += s.sum()
        for l, W in enumerate(Ws):
            v = cfg.decay * vs[l] + alphas[l] * (s @ W)
            post = (v >= hp["beta"][l] * cfg.threshold).astype(float)
            gate = 2.0 / (1.0 + np.exp(W / cfg.gate_scale))  # 2 (1 - logistic(w / 0.001))
            pre = hp["inc"] * s[:, None] - hp["dec"] * (1 - s)[:, None]
            Ws[l] = W + pre * post[None, :] * gate
            vs[l] = np.where(post > 0, 0.0, v)  # reset to 0, not by subtraction
            counts[l + 1] += post.sum()
            s = post
    return np.array(alphas) / hp["alpha"], Ws, counts


def test_src_sleep_follows_a_numpy_loop_of_its_documented_steps():
    # three layers (the layer-scale recursion f_l = s_l / f_{l-1} differs from s_l / s_{l-1}
    # only from layer 3 on), rate 500 at dt 0.001 and x = 1: p = 2 dt r x = 1 exactly (a
    # missing factor 2 makes it 0.5), and a reset to 0 (a subtractive one fires 35, not 29)
    Ws = [
        np.array([[0.3, -0.2, 0.1], [0.2, 0.25, -0.3], [-0.1, 0.3, 0.2], [0.1, -0.05, 0.15]]),
        np.array([[0.5, -0.4], [-0.2, 0.6], [0.3, 0.1]]),
        np.array([[0.7, -0.1], [-0.3, 0.4]]),
    ]
    hp = dict(rate=500.0, inc=0.01, dec=0.002, beta=[0.9, 0.7, 0.5], alpha=0.45)
    cfg = sleep.SRCConfig(steps=30, patch=2)
    X = np.ones((1, 4))
    scales, want_W, want_counts = _src_oracle(Ws, X, hp, cfg)
    with jax.enable_x64(True):
        p = sleep.SRCParams(*(jnp.asarray(hp[k]) for k in ("rate", "inc", "dec", "beta", "alpha")))
        Ws64, X, mask = [jnp.asarray(W) for W in Ws], jnp.asarray(X), jnp.ones(1, bool)
        np.testing.assert_allclose(sleep.layer_scales(Ws64, X, mask), scales, rtol=1e-12)
        np.testing.assert_allclose(scales, [2.0, 5 / 6, 12 / 7], rtol=1e-12)  # by hand
        new, counts = sleep.sleep(Ws64, jax.random.key(3), X, mask, p, (2, 2), cfg)
    np.testing.assert_array_equal(np.asarray(counts), want_counts)
    np.testing.assert_array_equal(want_counts, [120, 29, 3, 3])
    for got, want in zip(new, want_W):
        np.testing.assert_allclose(np.asarray(got), want, atol=1e-12)


def test_slow_wave_defaults_are_massimini_minus_80_and_140():
    # isolated dips of growing depth: their band-passed negative peaks and peak-to-peak
    # amplitudes grow together; the defaults keep exactly those with neg <= -80 and
    # ptp >= 140 (several have neg <= -80 with ptp in [120, 140): a 120 keeps them)
    fs, rng = 100.0, np.random.default_rng(0)
    t = np.arange(0, 80, 1 / fs)
    x = rng.normal(0, 1, t.size)
    for k, a in enumerate(np.linspace(80, 200, 15)):
        x -= a * np.exp(-0.5 * ((t - 4 - 5 * k) / 0.15) ** 2)
    every = detect.detect_slow_waves(x, fs, neg_threshold=-1e-9, ptp_threshold=1e-9)
    keep = (every.neg_amplitude <= -80) & (every.ptp >= 140)
    assert 0 < keep.sum() < len(keep)
    assert ((every.neg_amplitude <= -80) & (every.ptp >= 120) & (every.ptp < 140)).sum() >= 2
    np.testing.assert_array_equal(detect.detect_slow_waves(x, fs).start, every.start[keep])


def test_spindle_defaults_are_1_5_and_2_5_times_the_median_envelope():
    fs, rng = 100.0, np.random.default_rng(1)
    ts = np.arange(7000) / fs
    y = rng.normal(0, 1.0, ts.size)
    for k, a in enumerate(np.linspace(0.8, 2.0, 12)):  # 13 Hz bursts of growing amplitude
        env = np.where(
            np.abs(ts - 4 - 5.5 * k) < 0.6, np.cos(np.pi * (ts - 4 - 5.5 * k) / 1.2) ** 2, 0
        )
        y += a * env * np.sin(2 * np.pi * 13 * ts)
    m = float(np.median(rh.moving_rms(rh.bandpass(y, fs, rh.SPINDLE_BAND, order=4), fs, 0.3)))
    every = detect.detect_spindles(y, fs, thresh_high=1.5)  # every run above 1.5 m
    keep = every.rms >= 2.5 * m
    assert 0 < keep.sum() < len(keep) and ((every.rms >= 2.25 * m) & ~keep).any()
    np.testing.assert_array_equal(detect.detect_spindles(y, fs).peak, every.peak[keep])


def test_updown_default_thresholds_are_half_and_quarter_of_the_95th_percentile():
    # plateaus of 10 Hz (30 % of the time: the 95th percentile is 10) make Up states; one
    # of 5.5 Hz, above 0.5 x 10 but below 0.6 x 10, is an Up state too; an Up state that
    # falls to 2.7 Hz (above 0.25 x 10) stays Up until the rate drops under 2.5
    fs, rate = 1000.0, np.zeros(10_000)
    for k in range(3, 10):
        rate[k * 1000 : k * 1000 + 430] = 10.0
    rate[1000:1300] = 5.5
    rate[3430:3700] = 2.7  # continues the Up state begun at 3 s
    ud = detect.detect_updown(rate, fs)
    assert (ud.up_threshold, ud.down_threshold) == (5.0, 2.5)
    np.testing.assert_allclose(ud.up[:2], [[1.0, 1.3], [3.0, 3.7]], atol=0.02)
    assert len(ud.up) == 8


def test_recall_reads_the_windows_just_before_and_after_each_cue():
    # frac(G fires in bins [b, b + w)) - frac(G fires in bins [b - w, b)), averaged over cues
    # and the groups after order[0]; a raster whose bin b - w - 1 and b - 1 differ catches
    # a window shifted by one bin
    from nnjax.brain.consolidation_protocol import Protocol
    from nnjax.brain.consolidation_scores import recall

    protocol = Protocol(n_groups=3, group_size=2, window_ms=4.0)
    r = (np.random.default_rng(5).random((20, 6)) < 0.3).astype(int)
    r[5, 2:] = 1  # bin b - 1 = 5 of the first cue: every later cell fires
    r[1, 2:] = 0  # bin b - w - 1 = 1: none does
    onsets, w = [6.0, 11.0], 4
    want = []
    for b in (6, 11):
        for cells in ([2, 3], [4, 5]):
            after = np.mean([r[b : b + w, c].any() for c in cells])
            before = np.mean([r[b - w : b, c].any() for c in cells])
            want.append(after - before)
    got = recall(r, 1.0, onsets, protocol, [0, 1, 2])
    np.testing.assert_allclose(got, np.mean(want), atol=1e-12)


def test_replay_order_skips_up_states_with_fewer_than_three_groups():
    # order [1, 2, 3]; group 0 (inside 0..max id, outside the order) carries every Up state.
    # Three Up states sweep 1 -> 2 -> 3 (tau = 1); a fourth holds only 3 -> 2 (tau = -1 of
    # two groups): "an Up state needs 3 active groups", so the score stays 1, not 0.5
    from nnjax.brain.consolidation_protocol import Protocol, groups
    from nnjax.brain.consolidation_scores import replay_order

    protocol = Protocol(n_groups=4, group_size=3)
    G, r = groups(protocol), np.zeros((5000, 12), int)
    sweeps = [(500, {1: 40, 2: 60, 3: 80}), (1500, {1: 40, 2: 60, 3: 80})]
    sweeps += [(2500, {1: 40, 2: 60, 3: 80}), (3500, {3: 40, 2: 60})]
    for t0, starts in sweeps:
        r[t0 : t0 + 200, G[0]] = 1
        for g, s in starts.items():
            r[t0 + s : t0 + 200, G[g]] = 1
    assert replay_order(r, 1.0, protocol, [1, 2, 3]) == 1.0


def test_sttc_counts_a_spike_exactly_dt_away_as_near():
    # T_A is the cover of the closed windows [t - dt, t + dt], so P_A counts |a - b| <= dt:
    # spikes 0.5 apart at dt = 0.5 (all exact in binary) give P = 1, T = 0.1, STTC = 1
    # (with |a - b| < dt: P = 0 and STTC = -0.1)
    a, b = jnp.array([1.0, 6.0]), jnp.array([1.5, 5.5])
    np.testing.assert_allclose(float(synchrony.sttc(a, b, 0.5, 20.0)), 1.0, atol=1e-6)
    one = synchrony.sttc(jnp.array([1.0]), jnp.array([1.5 + 2**-10]), 0.5, 10.0)
    np.testing.assert_allclose(float(one), -0.1, atol=1e-6)  # just outside: P = 0


def test_stage_at_reads_a_time_on_an_epoch_boundary_as_the_next_epoch():
    # docstring: 0.3 s is in epoch 3 of 0.1 s epochs, though 0.3 / 0.1 = 2.9999999999999996
    # (0.7 / 0.1 = 6.999999999999999: epoch 7); the end of the record (0.8 s) is outside
    from nnjax.brain import hypnogram

    h = np.array([0, 1, 2, 3, 4, 3, 2, 1])
    got = hypnogram.stage_at(h, [0.0, 0.3, 0.7, 0.25, 0.8, -1e-9], epoch_s=0.1)
    np.testing.assert_array_equal(got, [0, 3, 1, 2, -1, -1])


@pytest.mark.parametrize("t", [1, 2])
def test_lwf_weighs_the_old_classes_by_t_over_t_plus_one(t):
    # L = 1/(1+t) l + t/(1+t) lambda T^2 KD, KD over the seen classes' softmaxes at T
    W, W_old = np.array([[1.0, -0.5, 0.2], [0.3, 0.8, -1.0]]), np.array([[0.5, 0.1, 0.0]] * 2)
    x, y = np.array([[1.0, 0.5], [-0.3, 0.9]]), np.array([2, 0])
    m = baselines.lwf_method(lambda p, x: x @ p, n_classes=3)
    extra = {"old": jnp.asarray(W_old), "seen": jnp.array([True, True, False])}
    hp = {"temperature": jnp.asarray(2.0), "lam": jnp.asarray(1.5)}
    got = m.loss(jnp.asarray(W), extra, None, t, jnp.asarray(x), jax.nn.one_hot(y, 3), hp)
    z, z_old = (x @ W)[:, :2] / 2.0, (x @ W_old)[:, :2] / 2.0
    q = np.exp(z_old) / np.exp(z_old).sum(-1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(-1, keepdims=True))
    kd = -np.mean(np.sum(q * logp, -1))
    w = t / (t + 1.0)
    np.testing.assert_allclose(float(got), (1 - w) * _ce(x @ W, y) + w * 1.5 * 4.0 * kd, rtol=1e-5)
