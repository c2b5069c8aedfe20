"""Audit of nnjax.brain.homeostasis (downscaling, pruning, spiking firing) and
nnjax.brain.sleep_states (levels, hypnogram schedule, describe), against NumPy oracles and
hand computation."""

from fractions import Fraction

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import signal

from nnjax.brain import convert as V
from nnjax.brain import homeostasis as H
from nnjax.brain import sleep_states as ss

# ---------------------------------------------------------------- homeostasis: downscaling


def _net(rng, sizes, bias):
    return [
        {"W": jnp.asarray(rng.normal(0, 0.5, (a, b))),
         "b": jnp.asarray(rng.normal(0, 0.1, b) if bias else np.zeros(b))}
        for a, b in zip(sizes[:-1], sizes[1:])
    ]  # fmt: skip


def test_downscaled_relu_output_is_c_to_the_L_times_in_float64():
    """Measured: max relative error 2.5e-16 (L = 3, c = 0.5, 0.1, 3, 1e-3; with and without
    biases, b_l <- c^l b_l)."""
    with jax.enable_x64(True):
        rng = np.random.default_rng(1)
        X = jnp.asarray(rng.uniform(0, 1, (20, 5)))
        for bias in (False, True):
            layers = _net(rng, (5, 8, 6, 3), bias)
            conv = V.Converted(layers, jnp.ones(4))
            y = np.asarray(V.ann_forward(layers, X))
            for c in (0.5, 0.1, 3.0, 1e-3):
                yc = np.asarray(V.ann_forward(H.downscaled(conv, c).layers, X))
                assert yc.dtype == np.float64
                np.testing.assert_allclose(yc, c**3 * y, rtol=1e-12, atol=1e-12 * c**3)
                np.testing.assert_array_equal(yc.argmax(-1), y.argmax(-1))


# ---------------------------------------------------------------- homeostasis: pruning


def _zeros(W, p):
    return int((np.asarray(H.prune(W, p)) == 0).sum())


def test_prune_removes_the_floor_of_the_intended_product():
    """k = floor(p n) for p = m/100 written in decimal (the intended product from
    Fraction(str(p))), among them every p whose float product p n falls below the integer
    (0.29, 0.57, 0.58 of 100; 0.41, 0.57, 0.69, 0.82 of 300), and for p = k/n. (Each k is
    one compile, so the grid is kept small; prune runs under one jax.jit per (n, p), its
    fraction static: k is computed from p in Python just as in the eager call, and one
    compile per k instead of the eager slice and scatter cut 12.8 s to 5.4 s.)"""
    prune = jax.jit(H.prune, static_argnums=1)

    def _zeros(W, p):
        return int((np.asarray(prune(W, p)) == 0).sum())

    for n, ms in ((100, (0, 1, 29, 50, 57, 58, 99)), (300, (41, 57, 69, 82, 33)),
                  (7, (14, 15, 43, 72, 99)), (10**5, (29, 57, 58)), (1, (0, 99))):  # fmt: skip
        W = jnp.arange(1, n + 1, dtype=jnp.float32)
        for m in ms:
            p = m / 100
            assert _zeros(W, p) == int(Fraction(str(p)) * n), (n, p)
    for n in (3, 6, 7, 10):
        W = jnp.arange(1, n + 1, dtype=jnp.float32)
        for k in range(n):
            assert _zeros(W, k / n) == k, (n, k)


def test_prune_reads_a_float32_fraction_as_written():
    """Finding: prune(W, np.float32(0.29)) pruned 28 of 100 weights (float32 0.29 is
    0.28999999165534973, far more than the few float64 ulps allowed), and sweep's
    fractions=np.float32 values did the same."""
    W = jnp.arange(1, 101, dtype=jnp.float32)
    for p, k in ((np.float32(0.29), 29), (jnp.float32(0.29), 29), (np.float32(0.57), 57),
                 (np.float16(0.3), 30), (np.asarray(np.float32(0.29)), 29)):  # fmt: skip
        assert _zeros(W, p) == k, p
    layers = [{"W": jnp.eye(2), "b": jnp.zeros(2)}, {"W": jnp.eye(2), "b": jnp.zeros(2)}]
    conv = V.Converted(layers, jnp.ones(3))
    X, y = jnp.eye(2), jnp.array([0, 1])
    s = H.sweep(conv, X, y, 5, factors=[1.0], fractions=np.array([0.29], np.float32))
    assert s.fractions.tolist() == [0.29]


def test_prune_orders_integer_weights_by_their_exact_magnitude():
    """Finding: jnp.abs(int8 -128) is -128, so the largest weight was pruned first:
    prune([-128, 1, 2, 3] int8, 0.25) gave [0, 1, 2, 3]."""
    W = jnp.array([-128, 1, 2, 3], jnp.int8)
    np.testing.assert_array_equal(H.prune(W, 0.25), [-128, 0, 2, 3])
    assert H.prune(W, 0.25).dtype == jnp.int8
    W = np.array([np.iinfo(np.int32).min, -1, 2, 1], np.int32)
    np.testing.assert_array_equal(H.prune(W, 0.5), [np.iinfo(np.int32).min, 0, 2, 0])
    np.testing.assert_array_equal(H.prune(np.array([3, 250, 1], np.uint8), 0.34), [3, 250, 0])


def test_prune_ties_zeros_and_the_ends_of_the_fraction():
    # ties by position: |1| = |-1|, the first two of four go
    np.testing.assert_array_equal(H.prune(jnp.array([1.0, -1.0, 1.0, 1.0]), 0.5), [0, 0, 1, 1])
    # zero weights are the smallest and count among the k
    np.testing.assert_array_equal(H.prune(jnp.array([0.0, 3.0, 0.0, 5.0, 1.0]), 0.4),
                                  [0, 3, 0, 5, 1])  # fmt: skip
    W = jnp.array([0.3, -0.2, 0.1])
    np.testing.assert_array_equal(H.prune(W, 0.0), W)
    np.testing.assert_array_equal(H.prune(W, 0.99), W * jnp.array([1, 0, 0]))  # one kept
    for bad in (1.0, -0.1, np.nan, True, "0.5"):
        with pytest.raises(ValueError, match="prune: fraction must be"):
            H.prune(W, bad)
    with pytest.raises(ValueError, match=r"prune: weights\[1\] must be finite, got 1 nan"):
        H.prune([W, jnp.array([1.0, jnp.nan])], 0.5)
    assert H.prune(jnp.zeros((0, 3)), 0.5).shape == (0, 3)


# ---------------------------------------------------------------- homeostasis: firing


def _numpy_if(layers, x, n_steps):
    """The converted network as a NumPy loop: IF neurons, threshold 1, subtractive reset,
    analog input; the output layer integrates the last hidden layer's spikes."""
    Ws = [np.asarray(p["W"], np.float64) for p in layers]
    bs = [np.asarray(p["b"], np.float64) for p in layers]
    v = [np.zeros((len(x), W.shape[1])) for W in Ws[:-1]]
    counts = [np.zeros_like(a) for a in v]
    for _ in range(n_steps):
        inp = x
        for i in range(len(v)):
            u = v[i] + (inp @ Ws[i] + bs[i])  # simulate's order of the sums
            s = (u >= 1.0).astype(np.float64)
            v[i], counts[i], inp = u - s, counts[i] + s, s
    rates = [c / n_steps for c in counts]
    return rates, rates[-1] @ Ws[-1] + bs[-1]


def test_firing_of_a_downscaled_network_matches_a_numpy_if_loop():
    """rates, silent fractions and accuracies of :func:`firing` equal a NumPy IF loop's
    (float64: exactly); the layer-1 rate of a constant drive z is floor(T c z) / T."""
    with jax.enable_x64(True):
        rng = np.random.default_rng(2)
        shapes = ((5, 8, -0.3, 0.6), (8, 6, -0.3, 0.5))
        layers = [
            {
                "W": jnp.asarray(rng.uniform(lo, hi, (m, n))),
                "b": jnp.asarray(rng.normal(0, 0.05, n)),
            }
            for m, n, lo, hi in shapes
        ]
        layers.append(
            {"W": jnp.asarray(rng.normal(0, 1, (6, 3))), "b": jnp.asarray(rng.normal(0, 0.1, 3))}
        )
        conv = V.Converted(layers, jnp.asarray([1.0, 2.0, 3.0, 1.5]))
        X, y = rng.uniform(0, 1, (20, 5)), rng.integers(0, 3, 20)
        for c in (1.0, 0.6, 0.3, 0.05):
            d = H.downscaled(conv, c)
            f = H.firing(d, jnp.asarray(X), jnp.asarray(y), 40)
            rates, out = _numpy_if(d.layers, X, 40)
            np.testing.assert_allclose(f.rates, [r.mean() for r in rates], rtol=1e-12)
            np.testing.assert_array_equal(f.silent, [(r.max(0) == 0).mean() for r in rates])
            assert f.accuracy == np.mean((1.5 * out).argmax(-1) == y)
            ann = np.asarray(V.ann_forward(d.layers, jnp.asarray(X))).argmax(-1)
            assert f.ann_accuracy == np.mean(ann == y)
        assert f.silent[-1] == 1.0  # c = 0.05: the deep layer is silent
        # analytic: layer 1 driven by z = x (identity weights), c z on the threshold 1
        one = V.Converted([{"W": jnp.eye(4), "b": jnp.zeros(4)},
                           {"W": jnp.ones((4, 2)), "b": jnp.zeros(2)}], jnp.ones(3))  # fmt: skip
        z = np.array([[0.37, 0.83, 0.0, 0.61]])
        for c in (1.0, 0.7, 0.45):
            r = V.simulate(H.downscaled(one, c), jnp.asarray(z), 97).rates[0]
            np.testing.assert_allclose(r, np.floor(97 * c * z) / 97, atol=1 / 97 + 1e-12)
            assert np.abs(np.asarray(r) - c * z).max() <= 1 / 97


# ---------------------------------------------------------------- sleep states: levels


def test_states_follow_krishnan_et_al_2016_at_the_extremes():
    """Wake: ACh and monoamines high; NREM: both low; REM: ACh as in wake, monoamines as in
    NREM (Krishnan et al. 2016's scheme, its levels at 0 and 1)."""
    assert ss.STAGE_NAMES == tuple(ss.STATES) == ("wake", "NREM", "REM")
    assert ss.STATES["wake"] == ss.Levels(1.0, 1.0) and ss.STATES["NREM"] == ss.Levels(0.0, 0.0)
    assert ss.STATES["REM"].ach == ss.STATES["wake"].ach
    assert ss.STATES["REM"].mono == ss.STATES["NREM"].mono == 0.0


# ---------------------------------------------------------------- sleep states: schedule


def _box(values, per, width):
    """np.repeat then the centred box of ``width`` samples, ends held, sample by sample."""
    x = np.repeat(np.asarray(values, np.float64), per)
    if width <= 1:
        return x
    idx = np.arange(len(x))[:, None] - width // 2 + np.arange(width)[None, :]
    return x[np.clip(idx, 0, len(x) - 1)].mean(axis=1)


def test_ramp_is_the_padded_box_filter():
    """Measured: max error 6e-8 (float32 rounding) over 300 random hypnograms, widths 0..per."""
    rng = np.random.default_rng(0)
    for _ in range(300):
        per = int(rng.integers(1, 30))
        vals = rng.choice([0.0, 0.3, 1.0], int(rng.integers(1, 8)))
        w = int(rng.integers(0, per + 1))
        np.testing.assert_allclose(ss._ramp(vals, per, w), _box(vals, per, w), atol=1e-7)


def test_schedule_epochs_are_whole_steps_none_lost_or_doubled():
    h = [0, 1, 2, 1, 0]
    lv = ss.schedule(h, 1.0, 0.3)  # 1000 / 0.3 = 3333.3: per = 3333, as documented
    assert lv.ach.shape == lv.mono.shape == (5 * 3333,) and lv.ach.dtype == np.float32
    want = np.repeat([ss.STATES[ss.STAGE_NAMES[c]] for c in h], 3333, axis=0)
    np.testing.assert_array_equal(np.stack([lv.ach, lv.mono], 1), want)
    for epoch_s, dt, per in ((0.00006, 0.1, 1), (0.0123, 0.07, 176)):
        assert ss.schedule(h, epoch_s, dt).ach.shape == (5 * per,)  # round(epoch_s 1000 / dt)
    with pytest.raises(ValueError, match=r"schedule: epoch_s = 4e-05 s is under one step"):
        ss.schedule(h, 0.00004, 0.1)
    # ramps: linear, centred on each boundary; symmetric, so the night's total is kept
    r = ss.schedule([0, 1, 0], 0.01, 0.1, ramp_s=0.01)  # width = per = 100
    assert r.ach[50] == 1.0 and r.ach[150] == 0.0 and r.ach[100] == 0.5
    np.testing.assert_allclose(np.diff(r.ach[51:150]), -0.01, atol=1e-6)
    assert r.ach.sum(dtype=np.float64) == pytest.approx(200.0, abs=1e-4)
    one = ss.schedule([2], 0.01, 0.1, ramp_s=0.01)  # one epoch: constant
    assert set(one.ach.tolist()) == {1.0} and set(one.mono.tolist()) == {0.0}
    with jax.enable_x64(True):  # float32 levels whatever the x64 mode (documented)
        assert ss.schedule([0, 1], 0.01, 0.1, ramp_s=0.003).ach.dtype == np.float32
    np.testing.assert_array_equal(ss.schedule([0.0, 2.0], 0.01, 0.1).ach, 1.0)


def test_schedule_refuses_unknown_stages():
    for hypno, match in (
        (["wake", "NREM"], r"codes must be integers 0..2 .*got \['NREM', 'wake'\]"),
        ([0, 3], r"codes \[3\] are not in 0..2"),
        ([0.5], r"codes must be integers, got \[0.5\]"),
        ([], "must be a non-empty 1-D"),
    ):
        with pytest.raises(ValueError, match="schedule: hypnogram: " + match):
            ss.schedule(hypno, 0.01, 0.1)
    states = {"wake": ss.Levels(), "NREM": ss.Levels(0, 0), "rem": ss.Levels(1, 0)}
    with pytest.raises(ValueError, match=r"schedule: states has no levels for \['REM'\]"):
        ss.schedule([0, 1], 0.01, 0.1, states=states)


def test_schedule_float32_ramp_and_dt_keep_the_ramp_within_one_epoch():
    """Findings: schedule(h, np.float32(0.3), dt, ramp_s=np.float32(0.3)) was refused
    ("ramp_s must be ... <= epoch_s, got 0.30000001192092896": epoch_s was read as it prints,
    ramp_s not); with dt = np.float32(0.2) and ramp_s = epoch_s = 0.0123 s the ramp took 62
    steps (rounded in float32, 61.5) and the epoch 61: the middle (wake) epoch of NREM, wake,
    NREM peaked at ach 0.984, never 1."""
    for v in (0.3, 0.7, 0.01):
        lv = ss.schedule([0, 1], np.float32(v), 0.1, ramp_s=np.float32(v))
        ref = ss.schedule([0, 1], v, 0.1, ramp_s=v)
        np.testing.assert_array_equal(lv.ach, ref.ach)
    r = ss.schedule([1, 0, 1], 0.0123, np.float32(0.2), ramp_s=0.0123)
    assert r.ach.shape == (3 * 61,) and r.ach[61:122].max() == 1.0  # wake's ach, reached
    exact = float(np.float32(0.2))  # the same dt as a Python float
    np.testing.assert_array_equal(r.ach, ss.schedule([1, 0, 1], 0.0123, exact, ramp_s=0.0123).ach)


# ---------------------------------------------------------------- sleep states: describe


def _record():
    """8 s in 1 ms bins: an E rate Down 0.5 s / Up 0.5 s (20 Hz); LFP sin 1 Hz + 0.5 sin
    10 Hz; E cell 0 with ISIs alternating 10 and 30 ms (CV 0.5), E cell 1 every 20 ms
    (CV 0); cell 2 (not E) every 7 ms."""
    n = 8000
    t = np.arange(n) / 1000.0
    rate = np.where(t % 1.0 < 0.5, 0.0, 20.0)
    lfp = np.sin(2 * np.pi * t) + 0.5 * np.sin(2 * np.pi * 10 * t)
    spikes = np.zeros((n, 3), np.uint8)
    s0 = np.cumsum(np.tile([10, 30], 200))
    spikes[s0[s0 < n], 0] = 1
    spikes[5::20, 1] = 1
    spikes[::7, 2] = 1
    return {"rate": np.stack([rate, 2 * rate], 1), "lfp": lfp, "spikes": spikes}


def test_describe_against_hand_computation():
    rec = _record()
    d = ss.describe(rec, 1.0, 2)
    f, p = signal.welch(rec["lfp"], 1000.0, nperseg=4000)
    band, total = (f >= 0.5) & (f <= 2.0), (f >= f[1]) & (f <= 100.0)
    slow = np.trapezoid(p[band], f[band]) / np.trapezoid(p[total], f[total])
    assert d["slow_power_fraction"] == pytest.approx(slow, rel=1e-4)  # psd in float32
    assert d["peak_hz_below_4"] == 1.0 and d["rate_exc_hz"] == 10.0
    assert d["cv_isi_median"] == pytest.approx(np.median([0.5, 0.0]), abs=1e-12)
    c = rec["spikes"][:, :2].reshape(-1, 5, 2).sum(1).astype(np.float64)
    assert d["pairwise_correlation"] == pytest.approx(np.corrcoef(c.T)[0, 1], abs=1e-12)
    assert d["updown_hz"] == pytest.approx(1.0, abs=1e-9)  # one Up onset a second
    assert d["n_up"] == 8 and d["up_fraction"] == pytest.approx(0.5, abs=0.01)


def test_describe_refuses_bins_off_the_5ms_windows_and_unequal_lengths():
    """Finding: bin_ms = 2 ran the spectrum and Up/Down detection, then failed with
    "pairwise_correlation: window_ms=5.0 must be a multiple of bin_ms=2.0" (neither
    describe nor an argument it has); an LFP of 5000 bins beside 8000-bin rate and spikes
    was described silently."""
    rec = _record()
    for bin_ms in (2.0, 0.3, 10.0):
        with pytest.raises(ValueError, match=rf"describe: bin_ms = {bin_ms:g} must divide the 5"):
            ss.describe(rec, bin_ms, 2)
    with pytest.raises(ValueError, match=r"describe: record's rate, lfp and spikes must have one "
                                         r"n_bins, got 8000, 5000, 8000"):  # fmt: skip
        ss.describe(dict(rec, lfp=rec["lfp"][:5000]), 1.0, 2)
    assert np.isfinite(ss.describe(rec, 0.5, 2)["pairwise_correlation"])
