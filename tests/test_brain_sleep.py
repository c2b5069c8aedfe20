"""Sleep Replay Consolidation's pieces against hand-computed values; synaptic downscaling."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nnjax.brain import sleep as S
from nnjax.models import mlp


def _bias_free_net(key, sizes=(16, 12, 5), d=7):
    model = mlp(list(sizes), "relu", use_bias=False)
    _, params = model.init(key, (-1, d))
    return model, params


def _scale_layer(params, i, c):
    Ws = [p for p in params if "W" in p]
    target = Ws[i]
    return [{"W": c * p["W"]} if p is target else p for p in params]


@pytest.mark.parametrize("layer", [0, 1, 2])
def test_bias_free_relu_net_is_positively_homogeneous_in_each_layer(layer):
    model, params = _bias_free_net(jax.random.key(0))
    x = jax.random.normal(jax.random.key(1), (11, 7))
    y = model.apply(params, x)
    for c in (0.3, 2.5):
        yc = model.apply(_scale_layer(params, layer, c), x)
        np.testing.assert_allclose(yc, c * y, rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(jnp.argmax(yc, -1), jnp.argmax(y, -1))


def test_downscale_all_layers_scales_output_by_product_and_keeps_predictions():
    model, params = _bias_free_net(jax.random.key(2))
    x = jax.random.normal(jax.random.key(3), (9, 7))
    Ws = [p["W"] for p in params if "W" in p]
    factors = [0.5, 0.8, 0.9]
    new = iter(S.downscale(Ws, factors))
    scaled = [{"W": next(new)} if "W" in p else p for p in params]
    y, ys = model.apply(params, x), model.apply(scaled, x)
    np.testing.assert_allclose(ys, np.prod(factors) * y, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(jnp.argmax(ys, -1), jnp.argmax(y, -1))
    # a negative factor flips the sign of the logits: homogeneity is only for c > 0
    with pytest.raises(ValueError, match="factor 1 must be > 0"):
        S.downscale(Ws, [1.0, -0.5, 1.0])
    with pytest.raises(ValueError, match="2 factors for 3"):
        S.downscale(Ws, [1.0, 1.0])


def test_biases_break_homogeneity():
    # the property needs bias-free layers: with a bias, f(cW) != c f(W)
    model = mlp([6, 3], "relu", use_bias=True)
    _, params = model.init(jax.random.key(4), (-1, 4))
    params[0]["b"] = params[0]["b"] + 1.0
    x = jax.random.normal(jax.random.key(5), (5, 4))
    scaled = [dict(p, W=2.0 * p["W"]) if "W" in p else p for p in params]
    assert not np.allclose(model.apply(scaled, x), 2.0 * model.apply(params, x))


def test_stdp_gate_values():
    g = S.stdp_gate(jnp.array([-1.0, 0.0, 1.0, -0.001]))
    np.testing.assert_allclose(g, [2.0, 1.0, 0.0, 2 / (1 + np.exp(-1.0))], atol=1e-6)


def test_layer_scales_match_numpy():
    rng = np.random.default_rng(0)
    Ws = [rng.normal(size=(5, 4)), rng.normal(size=(4, 3))]
    X = rng.uniform(size=(6, 5))
    mask = np.array([1, 1, 0, 1, 0, 1], bool)
    prev, want = 1.0, []
    a = X[mask]
    for W in Ws:
        a = np.maximum(a @ W, 0)
        f = max(np.max(np.maximum(W, 0)), a.max()) / prev
        want.append(1 / f)
        prev = f
    got = S.layer_scales([jnp.asarray(W, jnp.float32) for W in Ws], jnp.asarray(X, jnp.float32),
                         jnp.asarray(mask))  # fmt: skip
    np.testing.assert_allclose(got, want, rtol=1e-5)


@pytest.mark.parametrize("shape,patch,kept", [((8, 8), 3, 9), ((40,), 10, 10), ((4, 4), 9, 16)])
def test_masked_mean_input_keeps_one_window(shape, patch, kept):
    mean = jnp.arange(1.0, 1.0 + np.prod(shape))
    x = S.masked_mean_input(jax.random.key(7), mean, shape, patch)
    nz = np.flatnonzero(np.asarray(x))
    assert len(nz) == kept
    np.testing.assert_array_equal(np.asarray(x)[nz], np.asarray(mean)[nz])
    if len(shape) == 2:  # a contiguous square
        rows, cols = np.unravel_index(nz, shape)
        assert rows.max() - rows.min() + 1 == min(patch, shape[0])
        assert cols.max() - cols.min() + 1 == min(patch, shape[1])


def test_one_sleep_step_applies_the_stdp_rule_exactly():
    # input [1, 0] fires pixel 0 surely (rate 500: p = min(1, 2 dt r x) = 1) and never pixel 1
    W = jnp.array([[0.5, -0.2], [-0.5, 0.3]])
    X, mask = jnp.array([[1.0, 0.0]]), jnp.array([True])
    hp = S.SRCParams(jnp.array(500.0), jnp.array(0.1), jnp.array(0.01), jnp.array([0.4]),
                     jnp.array(1.0))  # fmt: skip
    cfg = S.SRCConfig(steps=1, patch=2)
    (W1,), counts = S.sleep([W], jax.random.key(0), X, mask, hp, (2,), cfg)
    # scale: s = max(max W+, max relu(X W)) = 0.5 -> alpha_1 = 2; v = 2 * [0.5, -0.2] = [1, -0.4]
    # so only output 0 fires (1 >= 0.4): potentiate W[0, 0] (pre fired), depress W[1, 0]
    want = np.array(W)
    want[0, 0] += 0.1 * float(S.stdp_gate(jnp.array(0.5)))
    want[1, 0] -= 0.01 * float(S.stdp_gate(jnp.array(-0.5)))
    np.testing.assert_allclose(W1, want, rtol=1e-6)
    np.testing.assert_array_equal(counts, [1, 1])


def test_sleep_is_jittable_and_validates():
    model, params = _bias_free_net(jax.random.key(8), (6, 4), d=4)
    Ws = [p["W"] for p in params if "W" in p]
    X = jax.random.uniform(jax.random.key(9), (10, 4))
    hp = S.SRCParams(jnp.array(200.0), jnp.array(0.01), jnp.array(0.001), jnp.array([1.0, 1.0]),
                     jnp.array(5.0))  # fmt: skip
    cfg = S.SRCConfig(steps=50, patch=2)
    f = jax.jit(lambda W, k: S.sleep(W, k, X, jnp.ones(10, bool), hp, (2, 2), cfg))
    new, counts = f(Ws, jax.random.key(1))
    assert all(a.shape == b.shape for a, b in zip(new, Ws))
    assert counts[0] > 0
    bad = hp._replace(beta=jnp.array([1.0, 1.0, 1.0]))
    with pytest.raises(ValueError, match="beta has 3 entries for 2 layers"):
        S.sleep(Ws, jax.random.key(1), X, jnp.ones(10, bool), bad, (2, 2), cfg)
    with pytest.raises(ValueError, match="X has 3 features"):
        S.sleep(Ws, jax.random.key(1), X[:, :3], jnp.ones(10, bool), hp, (2, 2), cfg)


def _small_sleep_case():
    Ws = [
        jnp.array([[0.5, -0.2], [-0.5, 0.3], [0.1, 0.2], [0.0, -0.1]]),
        jnp.array([[1.0], [-1.0]]),
    ]
    X = jnp.array([[1.0, 0.0, 0.5, 0.2], [0.3, 0.9, 0.1, 0.0]])
    hp = S.SRCParams(jnp.array(500.0), jnp.array(0.1), jnp.array(0.01), jnp.array([0.4, 0.4]),
                     jnp.array(1.0))  # fmt: skip
    return Ws, X, jnp.ones(2, bool), hp


@pytest.mark.parametrize(
    "cfg, match",
    [
        (S.SRCConfig(patch=0), "SRCConfig.patch must be an int >= 1, got 0"),
        (S.SRCConfig(patch=-2), "SRCConfig.patch must be an int >= 1"),
        (S.SRCConfig(steps=-1), "SRCConfig.steps must be an int >= 1, got -1"),
        (S.SRCConfig(steps=2.5), "SRCConfig.steps must be an int"),
        (S.SRCConfig(decay=1.5), r"SRCConfig.decay must be finite and in \[0, 1\]"),
        (S.SRCConfig(dt=float("nan")), "SRCConfig.dt must be finite and > 0"),
    ],
)
def test_sleep_refuses_a_config_that_would_not_sleep(cfg, match):
    Ws, X, mask, hp = _small_sleep_case()
    with pytest.raises(ValueError, match=f"sleep: {match}"):
        S.sleep(Ws, jax.random.key(0), X, mask, hp, (2, 2), cfg)
    with pytest.raises(ValueError, match=f"make_src_method: {match}"):
        S.make_src_method((2, 2), cfg)


def test_sleep_checks_shapes_and_parameters_up_front():
    Ws, X, mask, hp = _small_sleep_case()
    cfg, key = S.SRCConfig(steps=3, patch=2), jax.random.key(0)
    cases = [
        ((Ws, X, mask, hp, (3, 3)), "image_shape must be a tuple of ints >= 1 with 4 pixels"),
        ((Ws, X, mask, hp._replace(beta=jnp.array(0.4)), (4,)), "hp.beta is a scalar for 2 layers"),
        ((Ws, X, mask[:1], hp, (4,)), r"mask must be \(2,\)"),
        ((Ws, X, mask & False, hp, (4,)), "mask selects no input"),  # slept silently before
        ((Ws[:1] + [jnp.ones((3, 1))], X, mask, hp, (4,)), r"W_2 is \(3, 1\) after \(4, 2\)"),
        ((Ws, X, mask, hp._replace(rate=jnp.array(np.nan)), (4,)), "hp.rate must be finite"),
        ((Ws, X, mask, hp._replace(alpha=-1.0), (4,)), "hp.alpha must be finite and > 0"),
    ]
    for (W, x, m, h, shape), match in cases:
        with pytest.raises(ValueError, match=f"sleep: .*{match}"):
            S.sleep(W, key, x, m, h, shape, cfg)
    listed = hp._replace(beta=[0.4, 0.4], rate=500.0)  # a list and a float are arrays too
    a, _ = S.sleep(Ws, key, X, mask, listed, (4,), cfg)
    b, _ = S.sleep(Ws, key, X, mask, hp, (4,), cfg)
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)


def test_sleep_returns_nan_for_nan_inputs_or_parameters():
    Ws, X, mask, hp = _small_sleep_case()
    cfg, key = S.SRCConfig(steps=3, patch=2), jax.random.key(0)
    new, counts = S.sleep(Ws, key, X.at[0, 1].set(np.nan), mask, hp, (2, 2), cfg)
    assert all(np.isnan(W).all() for W in new) and np.isnan(counts).all()
    f = jax.jit(lambda h: S.sleep(Ws, key, X, mask, h, (2, 2), cfg))  # traced: no check
    new, _ = f(hp._replace(rate=jnp.array(np.nan)))
    assert all(np.isnan(W).all() for W in new)
    new, _ = f(hp)
    assert all(np.isfinite(W).all() for W in new)


def test_downscale_takes_numpy_and_0d_scalars_and_refuses_inf():
    Ws = [jnp.ones((2, 3)), 2.0 * jnp.ones((3, 1))]
    for c in (np.float32(0.5), jnp.array(0.5), np.array(0.5), 0.5):
        out = S.downscale(Ws, c)
        np.testing.assert_allclose(out[1], 1.0)
    for c in (np.inf, np.float32(np.nan), jnp.array(-1.0)):
        with pytest.raises(ValueError, match="downscale: factor 0 must be > 0 and finite"):
            S.downscale(Ws, c)
