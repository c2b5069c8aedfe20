"""Mutation audit of spiking learning, conversion and wake-sleep: each test here fails with a
small deliberate fault that the rest of the suite let pass (named in its docstring), and holds
the code to a NumPy loop of the documented equations, a closed form or an exact message."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nnjax.brain import convert, dreams, generative_replay, helmholtz, spiking, surrogate
from nnjax.brain.consolidation_scores import paired_stats


def test_every_default_slope_puts_the_pseudo_derivative_at_one_at_threshold():
    """The default slopes (25, 2, 4, 1, -) make g(0) = 1 for every surrogate, as the
    straight-through one: fast_sigmoid 1, arctan k/2, sigmoid k/4, triangular k. Fault caught:
    DEFAULT_SLOPES["arctan"] = 1 (g(0) = 0.5: the default arctan net learned at half rate)."""
    for name in surrogate.SURROGATES:
        g0 = jax.grad(lambda x, n=name: surrogate.spike(x, n))(0.0)
        assert float(g0) == 1.0, name
        k = surrogate.DEFAULT_SLOPES[name]  # and the default is what the backward pass used
        g1 = jax.grad(lambda x, n=name: surrogate.spike(x, n))(0.3)
        np.testing.assert_allclose(g1, surrogate.SURROGATES[name](0.3, k), rtol=1e-6)


def _np_lif(current, beta, theta):
    """s_t = [u_t >= theta], u_t = beta v_{t-1} + I_t, v_t = u_t - theta s_t (subtract)."""
    v, out = np.zeros_like(current[0]), []
    for c in current:
        u = beta * v + c
        s = (u >= theta).astype(float)
        v = u - theta * s
        out.append(s)
    return np.stack(out)


def _np_spiking_mlp(params, x, T, beta, theta, gain, readout):
    """spiking_mlp's docstring as a NumPy loop: the deterministic rate train of clip(gain x)
    (an IF neuron, threshold 1, v_0 = 0), Dense, LIF, ..., Dense, then LIF + count or the
    mean of v_t = beta v_{t-1} + I_t."""
    p, v, s = np.clip(gain * x, 0.0, 1.0), np.zeros_like(x), []
    for _ in range(T):
        v = v + p
        s.append((v >= 1.0).astype(float))
        v = v - s[-1]
    a = np.stack(s)
    dense = [q for q in params if q]
    for q in dense[:-1]:
        a = _np_lif(a @ np.asarray(q["W"]) + np.asarray(q["b"]), beta, theta)
    cur = a @ np.asarray(dense[-1]["W"]) + np.asarray(dense[-1]["b"])
    if readout == "count":
        return _np_lif(cur, beta, theta).sum(0)
    m, vs = np.zeros_like(cur[0]), []
    for c in cur:
        m = beta * m + c
        vs.append(m)
    return np.mean(vs, axis=0)


@pytest.mark.parametrize("readout", ["count", "membrane"])
def test_spiking_mlp_uses_its_beta_theta_and_gain_in_every_layer(readout):
    """Faults caught: the membrane readout built as MembraneReadout() (beta 0.9 whatever beta
    was given), the LIFs built without theta (1.0), the encoder without gain (1.0)."""
    T, beta, theta, gain = 6, 0.5, 0.7, 1.6
    x = np.array([[0.1, 0.35, 0.5, 0.9], [0.6, 0.2, 0.05, 0.45]])
    with jax.enable_x64(True):
        net = spiking.spiking_mlp([5, 3], T, beta=beta, theta=theta, gain=gain, readout=readout)
        _, params = net.init(jax.random.key(3), (2, 4))
        params = jax.tree.map(lambda w: 2.0 * w + 0.25, params)  # enough drive to spike
        got = np.asarray(net.apply(params, jnp.asarray(x)))
    want = _np_spiking_mlp(params, x, T, beta, theta, gain, readout)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    assert np.abs(want).sum() > 0
    other = _np_spiking_mlp(params, x, T, 0.9, 1.0, 1.0, readout)  # the defaults differ here
    assert not np.allclose(want, other)


def test_spiking_accuracy_refuses_a_label_equal_to_the_number_of_outputs():
    """Labels run 0..n_out-1: y = n_out is one past the last class. Fault caught: the check
    was labels > n_out, so y = 3 of 3 outputs passed and counted as a wrong prediction."""
    rng = np.random.default_rng(0)
    layers = [{"W": rng.normal(0.0, 0.5, (4, 3)).astype(np.float32), "b": np.zeros(3, np.float32)}]
    conv = convert.Converted(layers, np.array([1.0, 2.0], np.float32))
    x = rng.random((3, 4)).astype(np.float32)
    with pytest.raises(ValueError, match=r"y must hold integer labels in 0\.\.2, got y\[1\] = 3"):
        convert.spiking_accuracy(conv, x, np.array([0, 3, 1]), 4)
    assert 0.0 <= convert.spiking_accuracy(conv, x, np.array([0, 2, 1]), 4) <= 1.0


def test_train_wake_sleep_draws_its_data_by_probs():
    """Patterns A, B with probs (1, 0): every batch holds A only, so the machine learns
    p(A) near 1 (KL = -log2 p(A) near 0). Fault caught: the data were drawn uniformly over the
    listed patterns (logits 0 instead of log probs): half the batch was B, p(A) about 1/2,
    KL about 1 bit (fixed seed)."""
    patterns = np.array([[1, 0, 1, 0], [0, 1, 0, 1]], np.float32)
    params, kl = helmholtz.train_wake_sleep(
        jax.random.key(0), patterns, np.array([1.0, 0.0]), n1=2, n2=1, steps=600, batch=8,
        lr=0.3, eval_every=300,
    )  # fmt: skip
    assert float(kl[-1]) < 0.3, np.asarray(kl)
    lp = np.asarray(helmholtz.log_marginal(params, patterns))
    assert lp[0] > np.log(0.8) and lp[1] < np.log(0.1), lp


NP_G = {  # the module docstring's g(x), in NumPy float64
    "fast_sigmoid": lambda x, k: 1.0 / (1.0 + k * np.abs(x)) ** 2,
    "arctan": lambda x, k: (k / 2.0) / (1.0 + (np.pi * k * x / 2.0) ** 2),
    "sigmoid": lambda x, k: k / (1.0 + np.exp(-k * x)) * (1.0 - 1.0 / (1.0 + np.exp(-k * x))),
    "triangular": lambda x, k: k * np.maximum(0.0, 1.0 - k * np.abs(x)),
}


@pytest.mark.parametrize("name, k", [("arctan", 0.7), ("sigmoid", 1.5), ("triangular", 0.4)])
def test_spiking_mlp_one_step_gradient_is_the_chosen_surrogate(name, k):
    """T = 1, sizes [3], binary x (the encoder passes x itself): count = H(u - theta),
    u = x W + b, so d sum(C count) / d b = sum_batch C g(u - theta) with the surrogate and slope
    given. Fault caught: spiking_mlp's LIFs built without the surrogate name (fast_sigmoid with
    the slope meant for another g); the BPTT audit compares spiking_mlp only with fast_sigmoid."""
    x = np.array([[1.0, 0.0, 1.0, 1.0], [0.0, 1.0, 1.0, 0.0], [1.0, 1.0, 0.0, 0.0]])
    C = np.array([[1.0, -2.0, 0.5], [0.3, 1.0, -1.0], [2.0, 0.1, 1.0]])
    theta = 0.8
    with jax.enable_x64(True):
        net = spiking.spiking_mlp([3], 1, theta=theta, surrogate=name, slope=k)
        _, params = net.init(jax.random.key(1), (3, 4))
        g = jax.grad(lambda p: jnp.sum(net.apply(p, jnp.asarray(x)) * C))(params)
    W, b = np.asarray(params[1]["W"]), np.asarray(params[1]["b"])
    u = x @ W + b - theta
    want = (C * NP_G[name](u, k)).sum(0)
    np.testing.assert_allclose(g[1]["b"], want, rtol=1e-12)
    other = (C * NP_G["fast_sigmoid"](u, k)).sum(0)
    assert not np.allclose(want, other)


@pytest.mark.parametrize("octave", [1, 2])
def test_deep_dream_step_moves_each_pixel_lr_on_average(octave):
    """x <- x + eta up_s(P_s g) / mean|up_s(P_s g)|: with linear features a = x A,
    J = |x A|^2 / (2 n), g = x A A^T / n in closed form; one step (jitter 0, no clip) moves the
    pixels by eta on average ("eta is a step per pixel"), along g. Fault caught: the step was
    normalised by max|g| (mean move below eta)."""
    rng = np.random.default_rng(5)
    A, x0, lr = rng.normal(size=(16, 3)), rng.random(16), 0.05
    with jax.enable_x64(True):
        feats = lambda p, x: x @ p  # noqa: E731
        x1, hist = dreams.deep_dream(feats, jnp.asarray(A), jnp.asarray(x0), jax.random.key(0),
                                     image_shape=(4, 4), steps=1, lr=lr, octaves=(octave,),
                                     jitter=0)  # fmt: skip
        x1, hist = np.asarray(x1), np.asarray(hist)
    g = (x0 @ A @ A.T / 3).reshape(2, octave, 2, octave) if octave == 2 else x0 @ A @ A.T / 3
    if octave == 2:  # the gradient summed over 2 x 2 blocks, repeated over each block
        g = np.broadcast_to(g.sum(axis=(1, 3), keepdims=True), g.shape)
    step = np.asarray(x1) - x0
    np.testing.assert_allclose(step, lr * g.reshape(-1) / np.abs(g).mean(), rtol=1e-10)
    np.testing.assert_allclose(np.abs(step).mean(), lr, rtol=1e-10)
    np.testing.assert_allclose(hist, [0.5 * np.mean((x @ A) ** 2) for x in (x0, x1)], rtol=1e-10)


@pytest.mark.parametrize("which", ["activation_maximisation", "deep_dream"])
def test_jitter_draws_every_offset_from_minus_to_plus_jitter(which, monkeypatch):
    """'rolled by a random offset of at most jitter pixels': each axis's offset is uniform on
    -jitter..jitter, both ends included (recorded as drawn). Fault caught: randint's maxval
    was jitter (exclusive), so the image never moved +jitter pixels: a one-sided jitter."""
    seen, randint = [], jax.random.randint

    def recording_randint(key, shape, minval, maxval, *a, **kw):
        out = randint(key, shape, minval, maxval, *a, **kw)
        jax.debug.callback(lambda s: seen.append(np.asarray(s)), out)
        return out

    monkeypatch.setattr(jax.random, "randint", recording_randint)
    A, x0 = np.random.default_rng(0).normal(size=(16, 3)), jnp.full(16, 0.5)
    feats = lambda p, x: x @ p  # noqa: E731
    kw = dict(image_shape=(4, 4), steps=30, jitter=2)
    if which == "deep_dream":
        dreams.deep_dream(feats, jnp.asarray(A, jnp.float32), x0, jax.random.key(1), **kw)
    else:
        dreams.activation_maximisation(feats, jnp.asarray(A, jnp.float32), x0, 0,
                                       jax.random.key(1), **kw)  # fmt: skip
    offsets = np.stack(seen)
    assert offsets.shape == (30, 2)
    assert set(np.unique(offsets).tolist()) == {-2, -1, 0, 1, 2}, np.unique(offsets)


@pytest.mark.parametrize("percentile, lam", [(75.0, 0.5), (50.0, 1.0), (90.0, 0.8)])
def test_normalize_takes_the_percentile_of_the_logits_themselves(percentile, lam):
    """lambda_L is the percentile of the output logits, negative ones included (np.percentile,
    linear): logits (-1, 1) give 0.5 at 75, 0 -> 1 at 50, 0.8 at 90. Fault caught: the
    percentile of relu(logits), as for the hidden layers (0.75, 0.5, 0.9: between a negative
    and a positive logit, interpolating relu'd values is not relu of the interpolation)."""
    params = [{"W": np.array([[1.0]], np.float32), "b": np.zeros(1, np.float32)}]
    X = np.array([[-1.0], [1.0]], np.float32)
    assert np.percentile([-1.0, 1.0], percentile) == (lam if lam != 1.0 else 0.0)
    conv = convert.normalize(params, X, percentile=percentile)
    np.testing.assert_allclose(conv.scales, [1.0, lam], rtol=1e-6)
    np.testing.assert_allclose(conv.layers[0]["W"], [[1.0 / lam]], rtol=1e-6)


def test_init_helmholtz_has_zero_biases_and_weights_of_std_scale():
    """'Small random weights N(0, scale^2), zero biases.' Faults caught: biases of ones;
    a weight matrix drawn with std scale^2 (0.25 instead of 0.5)."""
    p = helmholtz.init_helmholtz(jax.random.key(0), 40, 20, 10, scale=0.5)
    for name in ("b2", "b1", "b0", "r1", "r2"):
        assert not np.asarray(getattr(p, name)).any(), name
    for name in ("G2", "G1", "R1", "R2"):  # 200 to 800 draws: std within 20 % (0.47 to 0.56)
        w = np.asarray(getattr(p, name))
        assert abs(w.std() / 0.5 - 1.0) < 0.2 and abs(w.mean()) < 0.1, (name, w.std())


def test_sample_dreams_decode_standard_normal_codes():
    """'n dreams: the decoder's mean logistic(g(z)) at z ~ N(0, I)'. A decoder made to give
    g(z) = relu(z) - relu(-z) = z turns the dreams back into the codes: logit(dream) must
    look N(0, 1) (Kolmogorov-Smirnov, 4000 draws). Fault caught: z ~ U(0, 1)."""
    from scipy import stats

    vae = generative_replay.make_vae(1, latent=1, hidden=2)
    params = vae.init(jax.random.key(0))
    params["dec"][0] = {"W": jnp.array([[1.0, -1.0]]), "b": jnp.zeros(2)}
    params["dec"][2] = {"W": jnp.array([[1.0], [-1.0]]), "b": jnp.zeros(1)}
    x = np.asarray(generative_replay.sample_dreams(vae, params, jax.random.key(1), 4000), float)
    z = np.log(x / (1.0 - x)).ravel()
    assert stats.kstest(z, "norm").pvalue > 0.01, (z.mean(), z.std())


def test_replay_config_default_kl_weight_is_the_one_its_docstring_defends():
    """ReplayConfig's docstring argues for kl_weight = 0.5 with measured numbers. Fault
    caught: the default set back to the ELBO's 1.0, the prose left as it was."""
    doc = re.search(r"Why ``kl_weight = ([0-9.]+)``", generative_replay.ReplayConfig.__doc__)
    assert doc and generative_replay.ReplayConfig().kl_weight == float(doc.group(1)) == 0.5


def test_dream_all_classes_dreams_every_one_of_the_k_classes():
    """n_classes = K (every logit) is allowed, K + 1 refused. Fault caught: the check was
    n_classes >= K, so dreaming all K classes of the network was refused."""
    A = jnp.asarray(np.random.default_rng(1).normal(size=(4, 3)), jnp.float32)
    apply = lambda p, x: x @ p  # noqa: E731
    x0, kw = jnp.full(4, 0.5), dict(image_shape=(2, 2), steps=2, l2=0.5)
    xs, hist = dreams.dream_all_classes(apply, A, x0, jax.random.key(0), 3, **kw)
    assert xs.shape == (3, 4) and hist.shape == (3, 3)
    assert np.all(np.diff(np.asarray(hist), axis=1) >= 0)
    with pytest.raises(ValueError, match=r"n_classes must be <= 3 \(the logits\), got 4"):
        dreams.dream_all_classes(apply, A, x0, jax.random.key(0), 4, **kw)


def test_paired_stats_ties_magnitudes_within_16_eps():
    """|d| of 1 and 1 - 3e-15 differ by less than 16 eps max|a| (3.6e-15): one tied rank,
    so the signed-rank p is scipy's on the snapped d (0.398), not on the raw d (0.383).
    Fault caught: a tolerance of 4 eps (8.9e-16) left the pair untied."""
    from scipy import stats

    a = np.array([1.0, -(1.0 - 3e-15), 0.3, -0.6, 0.8, 0.45, 0.2, 0.9])
    snapped = a.copy()
    snapped[1] = -1.0
    want = stats.wilcoxon(snapped).pvalue
    assert want != stats.wilcoxon(a).pvalue
    assert paired_stats(a, np.zeros(8))["wilcoxon_p"] == pytest.approx(want, rel=1e-12)


def test_encoder_layers_pass_their_key_and_threshold_on():
    """RateEncoder: 'stochastic when apply gets a key', rate_encode(key, gain x); LatencyEncoder:
    threshold as latency_encode's (x = 0.3 <= 0.5 silent, 0.7 at round(0.3 * 4) = 1).
    Faults caught: RateEncoder's apply dropped the key (always the regular train);
    LatencyEncoder's apply dropped threshold (0.3 fired at step 3)."""
    x, key = jnp.full((2, 3), 0.4), jax.random.key(7)
    got = spiking.RateEncoder(50, gain=1.5).apply({}, x, key=key)
    np.testing.assert_array_equal(got, spiking.rate_encode(key, 1.5 * x, 50))
    regular = spiking.RateEncoder(50, gain=1.5).apply({}, x)
    assert not np.array_equal(got, regular) and float(regular.sum()) == 6 * 30
    lat = spiking.LatencyEncoder(5, threshold=0.5).apply({}, jnp.array([[0.3, 0.7]]))
    np.testing.assert_array_equal(lat[:, 0], [[0, 0], [0, 1], [0, 0], [0, 0], [0, 0]])


def test_relu_mlp_parts_and_layers_are_read_as_documented():
    """check_relu_mlp allows Identity and Dropout between Dense and relu layers; relu_mlp_layer(l)
    is hidden layer l (0-based) of the ReLU MLP, a NumPy forward pass. Faults caught: Identity
    dropped from the allowed parts (a ReLU MLP with an Identity refused); relu_mlp_layer read
    hidden layer l - 1 (layer 1 gave layer 0, layer 0 the last)."""
    from nnjax.layers import Activation, Dense, Dropout, Identity, serial

    model = serial(Dense(5), Identity(), Activation("relu"), Dropout(0.1), Dense(4),
                   Activation("relu"), Dense(2))  # fmt: skip
    convert.check_relu_mlp(model)
    _, params = model.init(jax.random.key(0), (-1, 3))
    x = np.random.default_rng(0).random((2, 3))
    dense = [p for p in params if p]
    a0 = np.maximum(x @ np.asarray(dense[0]["W"]) + np.asarray(dense[0]["b"]), 0)
    a1 = np.maximum(a0 @ np.asarray(dense[1]["W"]) + np.asarray(dense[1]["b"]), 0)
    for layer, want in ((0, a0), (1, a1)):
        got = dreams.relu_mlp_layer(layer, model=model)(params, jnp.asarray(x, jnp.float32))
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_make_vae_has_one_hidden_layer_of_hidden_units_each_side():
    """'one ReLU hidden layer of hidden units each side': encoder d -> hidden -> 2 latent,
    decoder latent -> hidden -> d. Fault caught: the decoder's hidden layer of latent units."""
    vae = generative_replay.make_vae(6, latent=2, hidden=5)
    p = vae.init(jax.random.key(0))
    shapes = {k: [tuple(q["W"].shape) for q in p[k] if q] for k in ("enc", "dec")}
    assert shapes == {"enc": [(6, 5), (5, 4)], "dec": [(2, 5), (5, 6)]}
