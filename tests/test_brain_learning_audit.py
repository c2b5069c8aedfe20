"""Audit of the brain-inspired learning modules (convert, surrogate, helmholtz, dreams,
diversity, homeostasis) against their analytic definitions: each finding's test fails on the
code before the fix; the oracle tests pin what was found sound (NumPy, float64)."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nnjax.brain import convert as V
from nnjax.brain import diversity as D
from nnjax.brain import dreams as R
from nnjax.brain import helmholtz as HM
from nnjax.brain import homeostasis as H
from nnjax.brain.surrogate import spike


def _sig(z):
    return 1.0 / (1.0 + np.exp(-z))


# ------------------------------------------------------------------------------ convert


def test_if_rate_is_floor_of_t_z_over_t_within_one_over_t():
    """IF, theta = 1, subtractive reset, constant drive z: N(T) = floor(T z) spikes for z in
    [0, 1] (exactly, away from products that round onto an integer), rate 1 above, 0 below."""
    with jax.enable_x64(True):
        z = np.linspace(-0.5, 1.5, 401) + 1e-7  # off the grid k / T
        n = z.size
        conv = V.Converted(
            [{"W": jnp.eye(n), "b": jnp.zeros(n)}, {"W": jnp.ones((n, 1)), "b": jnp.zeros(1)}],
            jnp.ones(3),
        )
        for T in (1, 7, 100, 1000):
            r = np.asarray(V.simulate(conv, jnp.asarray(z)[None], T).rates[0][0])
            counts = np.where(z >= 1, T, np.floor(T * np.clip(z, 0, 1)))
            np.testing.assert_array_equal(np.round(r * T), counts)
            np.testing.assert_allclose(r, counts / T, rtol=1e-15, atol=0)
            assert np.abs(r - np.clip(z, 0, 1)).max() < 1 / T


def test_simulate_memory_does_not_grow_with_n_steps():
    """Finding: the scan stacked every step's spikes and output currents to average them
    afterwards: XLA's temporary memory was 8.6 MB at T = 100 and 840 MB at T = 10^4 (B = 100,
    two hidden layers of 100), so a long run ran out of memory. Counts in the carry now."""
    layers = [
        {"W": jnp.ones((10, 100)), "b": jnp.zeros(100)},
        {"W": jnp.ones((100, 100)), "b": jnp.zeros(100)},
        {"W": jnp.ones((100, 10)), "b": jnp.zeros(10)},
    ]
    x = jnp.ones((100, 10))
    temp = []
    for T in (100, 10000):
        m = V._simulate.lower(layers, jnp.ones(4), x, T, "subtract", 1.0, False).compile()
        analysis = m.memory_analysis()
        if analysis is None:
            pytest.skip("this backend gives no memory analysis")
        temp.append(analysis.temp_size_in_bytes)
    assert temp[1] <= temp[0] + 1024 and temp[1] < 50e6, temp


def test_simulate_output_and_rates_against_the_relu_network():
    """Decoded output = r_{L-1} W_L' + b_L' times lambda_L -> the ANN's logits as T grows; a
    nan potential under a trace still gives nan (not silence) after the rewrite."""
    with jax.enable_x64(True):
        ks = jax.random.split(jax.random.key(1), 4)
        shapes = [(5, 8), (8, 6), (6, 3)]
        params = [{"W": jax.random.normal(k, s), "b": 0.1 * jnp.ones(s[1])}
                  for k, s in zip(ks, shapes)]  # fmt: skip
        X = jax.random.normal(ks[3], (200, 5))
        conv = V.normalize(params, X, percentile=100.0)
        logits = V.ann_forward(params, X)
        errs = [float(jnp.abs(V.simulate(conv, X, T).output - logits).max()) for T in (100, 10000)]
        assert errs[1] < 0.02 and errs[1] < errs[0] / 20, errs
        res = V.simulate(conv, X[:3], 50, return_spikes=True)
        for r, s in zip(res.rates, res.spikes):  # the rates are the trains' means, exactly
            np.testing.assert_array_equal(r, s.mean(axis=0))
        out = jax.jit(lambda x: V.simulate(conv, x, 20).output)(X[:2].at[0, 0].set(jnp.nan))
        assert np.isnan(out[0]).all() and np.isfinite(out[1]).all()
    with pytest.raises(ValueError, match=r"simulate: n_steps must be <= 2147483647"):
        V.simulate(conv, X, 2**31)


# ---------------------------------------------------------------------------- surrogate


def test_spike_of_nan_is_nan_not_silence():
    """Finding: spike(nan) was 0.0 (nan >= 0 is False), so a diverged potential read as a
    quiet neuron; now nan, under jit too, and its surrogate gradient is nan as well."""
    x = jnp.array([jnp.nan, 0.0, -0.0, 1e-30, -1e-30])
    for f in (spike, jax.jit(spike)):
        np.testing.assert_array_equal(f(x), [np.nan, 1.0, 1.0, 1.0, 0.0])
    assert np.isnan(jax.grad(lambda v: spike(v, "sigmoid", 2.0))(jnp.nan))


@pytest.mark.parametrize("x", [False, jnp.array([True, False]), jnp.array([1 + 1j]), "a"])
def test_spike_refuses_bools_complex_and_strings(x):
    """Finding: spike(False) was 1.0 (False >= 0), spike(1+1j) dropped the imaginary part,
    "a" failed inside JAX."""
    with pytest.raises(ValueError, match=r"spike: x must hold real numbers"):
        spike(x)


def test_the_new_checks_keep_bfloat16():
    """bfloat16 has NumPy kind "V": the checks ask JAX's dtype tree (or refuse only bool,
    complex and string kinds), so bfloat16 arrays pass as the real numbers they are."""
    x = jnp.array([-1.0, 0.0, 2.0], jnp.bfloat16)
    assert spike(x).dtype == jnp.bfloat16 and spike(x).tolist() == [0.0, 1.0, 1.0]
    assert jax.grad(lambda v: spike(v).sum())(x).dtype == jnp.bfloat16
    assert H.prune(jnp.array([3.0, 1.0, 2.0, 4.0], jnp.bfloat16), 0.5).tolist() == [3, 0, 0, 4]
    Xb = np.array([[0.0, 3.0], [4.0, 0.0]], dtype=jnp.bfloat16)
    assert D.mean_pairwise_distance(Xb) == 5.0


def test_spike_second_derivative_is_the_surrogates_derivative():
    """grad of grad differentiates g: for ``sigmoid``, g'(x) = k^2 s (1 - s) (1 - 2 s)."""
    with jax.enable_x64(True):
        k, x = 2.0, np.linspace(-2, 2, 41)
        got = jax.vmap(jax.grad(jax.grad(lambda v: spike(v, "sigmoid", k))))(jnp.asarray(x))
        s = _sig(k * x)
        np.testing.assert_allclose(got, k * k * s * (1 - s) * (1 - 2 * s), rtol=1e-12, atol=1e-15)


# ---------------------------------------------------------------------------- helmholtz


def _brute_log_p(P, V_):
    """log p(v) by summing p(h2) p(h1|h2) p(v|h1) over every (h2, h1), in NumPy float64."""

    def bern(x, p):
        return np.prod(np.where(x == 1, p, 1 - p))

    n1, n2 = P["b1"].size, P["b2"].size
    out = []
    for v in V_:
        tot = 0.0
        for h2 in itertools.product((0.0, 1.0), repeat=n2):
            for h1 in itertools.product((0.0, 1.0), repeat=n1):
                h1a, h2a = np.array(h1), np.array(h2)
                tot += (bern(h2a, _sig(P["b2"])) * bern(h1a, _sig(h2a @ P["G2"] + P["b1"]))
                        * bern(v, _sig(h1a @ P["G1"] + P["b0"])))  # fmt: skip
        out.append(np.log(tot))
    return np.array(out)


def test_exact_kl_merges_repeated_patterns():
    """Finding: a pattern listed twice (0.25 + 0.25) was summed term by term:
    exact_kl gave 2.81277 bits where KL(p_data || p) = 3.31277 bits (seed 0, 4-2-1)."""
    with jax.enable_x64(True):
        p = HM.init_helmholtz(jax.random.key(0), 4, 2, 1, scale=1.0)
        P = {k: np.asarray(v) for k, v in p._asdict().items()}
        pats = np.array([[0, 1, 0, 1], [1, 1, 0, 0], [0, 1, 0, 1]], float)
        probs = np.array([0.25, 0.5, 0.25])
        lp = _brute_log_p(P, pats[:2])
        want = 0.5 * np.log2(0.5 / np.exp(lp[0])) + 0.5 * np.log2(0.5 / np.exp(lp[1]))
        assert float(HM.exact_kl(p, pats, probs)) == pytest.approx(want, rel=1e-12)
        assert float(HM.exact_kl(p, pats[:2], np.array([0.5, 0.5]))) == pytest.approx(
            want, rel=1e-12
        )


def test_log_marginal_and_kl_against_brute_force_on_the_bars():
    with jax.enable_x64(True):
        p = HM.init_helmholtz(jax.random.key(3), 9, 3, 2, scale=1.5)
        p = p._replace(b2=jnp.array([0.3, -0.7]), b0=jnp.linspace(-1, 1, 9))
        P = {k: np.asarray(v) for k, v in p._asdict().items()}
        pats, probs = HM.bars_distribution(3, 0.2)
        lp = _brute_log_p(P, pats.astype(float))
        np.testing.assert_allclose(HM.log_marginal(p, pats), lp, rtol=0, atol=1e-12)
        kl = np.sum(probs * np.log2(probs / np.exp(lp)))
        assert float(HM.exact_kl(p, pats, probs)) == pytest.approx(kl, rel=1e-12)
        total = np.exp(np.asarray(HM.log_marginal(p, HM.binary_states(9)))).sum()
        assert total == pytest.approx(1.0, abs=1e-12)  # p(v) sums to 1 over all 512 v
    # the bars: orientation 1/2, each bar on with p_bar; empty and full grids merged
    by_count = {int(pt.sum()): pr for pt, pr in zip(pats, probs)}
    assert len(pats) == 2 * 2**3 - 2
    assert by_count[0] == pytest.approx(0.8**3) and by_count[9] == pytest.approx(0.2**3)
    assert by_count[3] == pytest.approx(0.5 * 0.2 * 0.8**2)


# ----------------------------------------------------------------------- dreams, diversity


def _tiny_net():
    ks = jax.random.split(jax.random.key(0), 2)
    return [{"W": 0.3 * jax.random.normal(ks[0], (16, 12)), "b": jnp.zeros(12)},
            {"W": 0.3 * jax.random.normal(ks[1], (12, 5)), "b": 0.1 * jnp.ones(5)}]  # fmt: skip


def test_dream_objectives_refuse_bad_regularisers_and_shapes():
    """Finding: class_objective(..., l2=nan) and dream_layer_objective(..., smooth=nan)
    returned nan, l2="a" failed in NumPy, a (3, 4) image_shape for 16 inputs failed in a
    reshape."""
    params, x = _tiny_net(), jnp.linspace(-1, 1, 16)
    apply = V.ann_forward
    with pytest.raises(ValueError, match=r"class_objective: l2 must be a finite number >= 0"):
        R.class_objective(apply, params, x, 1, float("nan"))
    with pytest.raises(ValueError, match=r"class_objective: l2 must be a finite number >= 0"):
        R.class_objective(apply, params, x, 1, "a")
    with pytest.raises(ValueError, match=r"class_objective: x must be one flat input"):
        R.class_objective(apply, params, x.reshape(4, 4), 1, 0.1)
    f = R.relu_mlp_layer(0)
    with pytest.raises(ValueError, match=r"dream_layer_objective: smooth must be a finite"):
        R.dream_layer_objective(f, params, x, (4, 4), float("nan"))
    with pytest.raises(ValueError, match=r"dream_layer_objective: x must be flat .* \(3, 4\)"):
        R.dream_layer_objective(f, params, x, (3, 4))
    # the values against NumPy: J_c and the DeepDream objective with its smoothness prior
    W1, W2 = (np.asarray(p["W"]) for p in params)
    xn, img = np.asarray(x), np.asarray(x).reshape(4, 4)
    a = np.maximum(xn @ W1, 0)
    jc = (a @ W2 + 0.1)[1] - 0.05 * xn @ xn
    assert float(R.class_objective(apply, params, x, 1, 0.1)) == pytest.approx(jc, rel=1e-5)
    sm = (np.diff(img, axis=0) ** 2).sum() + (np.diff(img, axis=1) ** 2).sum()
    got = float(R.dream_layer_objective(f, params, x, (4, 4), 0.5))
    assert got == pytest.approx(a @ a / (2 * 12) - 0.25 * sm, rel=1e-5)


def test_pairwise_distance_and_entropy_refuse_nan_and_bools():
    """Finding: mean_pairwise_distance of a nan row returned nan, of bools counted True as 1;
    entropy_bits([True, False]) was 0.0."""
    with pytest.raises(ValueError, match=r"mean_pairwise_distance: X must be finite.* row 1\)"):
        D.mean_pairwise_distance([[0.0], [np.inf], [1.0]])
    with pytest.raises(ValueError, match=r"mean_pairwise_distance: X must hold real numbers"):
        D.mean_pairwise_distance(np.array([[True], [False]]))
    with pytest.raises(ValueError, match=r"entropy_bits: histogram must hold real numbers"):
        D.entropy_bits([True, False])
    # hand computations: p = (1/4, 1/4, 1/2): H = 1.5 bits; all samples equal: D = 0
    assert D.entropy_bits([1, 1, 2, 0]) == 1.5
    assert D.mean_pairwise_distance(np.full((5, 3), 7.25)) == 0.0


# --------------------------------------------------------------------------- homeostasis


def test_prune_takes_the_intended_floor_of_fraction_times_size():
    """Finding: prune(W of 100 entries, 0.29) zeroed 28 (0.29 * 100 = 28.999999999999996 in
    binary), 0.57 zeroed 56, 0.58 zeroed 57."""
    W = jnp.arange(1.0, 101.0)
    for p, k in ((0.29, 29), (0.57, 57), (0.58, 58), (0.5, 50), (0.999, 99), (0.0, 0)):
        P = H.prune(W, p)
        assert int((P == 0).sum()) == k
        np.testing.assert_array_equal(P[k:], W[k:])  # the k smallest |w| go
    ties = H.prune(jnp.array([1.0, -1.0, 1.0, 2.0]), 0.5)  # ties broken by position
    np.testing.assert_array_equal(ties, [0.0, 0.0, 1.0, 2.0])
    assert H.prune(jnp.array([3, 1, 2, 4], jnp.int32), 0.5).dtype == jnp.int32  # was float32


def test_prune_refuses_nan_and_bool_weights():
    """Finding: a nan weight sorted last and was kept (prune([1, nan, 3, 4], 0.5) gave
    [0, nan, 0, 4]); bool weights came back as floats."""
    with pytest.raises(ValueError, match=r"prune: weights\[1\] must be finite, got 1 nan/inf"):
        H.prune([jnp.ones(3), jnp.array([1.0, jnp.nan, 3.0, 4.0])], 0.5)
    with pytest.raises(ValueError, match=r"prune: weights must be an array of real numbers"):
        H.prune(jnp.array([True, False]), 0.5)


@pytest.mark.parametrize("c", [0, -1.0, float("nan"), float("inf"), True, [0.5, 0.5], "0.5"])
def test_downscaled_refuses_bad_factors_by_name(c):
    """Finding: downscaled(conv, True) ran as c = 1, a list failed with "unsupported operand
    type(s) for ** or pow()", and 0 was reported as "downscale: factor 0 must be > 0"."""
    conv = V.Converted([{"W": jnp.ones((2, 3)), "b": jnp.ones(3)}] * 1, jnp.ones(2))
    with pytest.raises(ValueError, match=r"^downscaled: c must be a (finite )?number"):
        H.downscaled(conv, c)


def test_downscaled_relu_network_scales_by_c_to_the_l():
    """relu(c^{l-1} a W_l c + c^l b_l) = c^l a_l: output x c^L, argmax unchanged, to float64
    precision, biases included."""
    with jax.enable_x64(True):
        ks = jax.random.split(jax.random.key(4), 4)
        shapes = [(6, 9), (9, 7), (7, 4)]
        layers = [{"W": jax.random.normal(k, s), "b": jax.random.normal(k, (s[1],))}
                  for k, s in zip(ks, shapes)]  # fmt: skip
        conv = V.Converted(layers, jnp.ones(4))
        X = jax.random.normal(ks[3], (50, 6))
        out = V.ann_forward(layers, X)
        for c in (0.5, 0.1, 3.0):
            got = V.ann_forward(H.downscaled(conv, c).layers, X)
            np.testing.assert_allclose(got, c**3 * out, rtol=1e-12, atol=1e-12 * c**3)
            np.testing.assert_array_equal(got.argmax(1), out.argmax(1))


@pytest.mark.parametrize("y", [[0.5, 1.0], [7, 1], [True, False], [np.nan, 1.0]])
def test_firing_refuses_labels_that_match_no_class(y):
    """Finding: firing(conv, X, y=[0.5, 1.5]) gave accuracy 0.0, y=[7, 1] 0.5 (2 outputs),
    y=[True, False] 0.0, silently; spiking_accuracy refused them."""
    conv = V.Converted([{"W": jnp.eye(2), "b": jnp.zeros(2)}] * 2, jnp.ones(3))
    X = jnp.array([[1.0, 0.0], [0.0, 1.0]])
    assert H.firing(conv, X, np.array([0, 1]), 10).accuracy == 1.0
    with pytest.raises(ValueError, match=r"^firing: y must hold integer labels"):
        H.firing(conv, X, np.array(y), 10)
