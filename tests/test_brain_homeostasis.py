"""Synaptic downscaling and pruning in a spiking network with fixed thresholds
(nnjax.brain.homeostasis), against the invariance of the bias-free ReLU network."""

import jax.numpy as jnp
import numpy as np
import pytest

from nnjax.brain import convert as V
from nnjax.brain import homeostasis as H
from nnjax.brain import sleep as S


def test_prune_zeroes_the_smallest_magnitudes_of_each_layer():
    W1 = jnp.array([[0.5, -0.1, 0.3], [-0.7, 0.2, -0.05]])
    W2 = jnp.array([[1.0], [-2.0], [0.1], [0.0]])
    P1, P2 = H.prune([W1, W2], 0.5)  # floor(0.5 * 6) = 3 and floor(0.5 * 4) = 2 per layer
    np.testing.assert_array_equal(P1, jnp.array([[0.5, 0.0, 0.3], [-0.7, 0.0, 0.0]]))
    np.testing.assert_array_equal(P2, jnp.array([[1.0], [-2.0], [0.0], [0.0]]))
    Q1, _ = H.prune([W1, W2], 0.4)  # floor(2.4) = 2: -0.05 and -0.1 go, 0.2 stays
    assert int((Q1 == 0).sum()) == 2 and Q1[1, 1] == W1[1, 1]
    np.testing.assert_array_equal(H.prune([W1], 0.0)[0], W1)
    with pytest.raises(ValueError, match="fraction must be in"):
        H.prune([W1], 1.0)


@pytest.fixture(scope="module")
def swept(digits_net):
    """The trained 64-32-32-10 net converted to IF neurons (threshold 1), 50 steps on the 360
    test digits."""
    model, params, (X, _), (X_test, y_test) = digits_net
    conv = V.normalize(params, X)
    return model, params, H.sweep(conv, X_test, y_test, 50), (X_test, y_test)


def test_downscaling_at_fixed_threshold_silences_the_deep_layers(swept):
    """Measured (T = 50): mean rates of hidden layers 1 / 2 at c = 1, 0.8, 0.6, 0.5, 0.4, 0.3,
    0.2, 0.1: 0.169 / 0.140, 0.134 / 0.087, 0.099 / 0.046, 0.082 / 0.030, 0.064 / 0.017,
    0.047 / 0.007, 0.029 / 0.0006, 0.012 / 0; accuracy 95.8, 95.8, 95.6, 95.6, 95.3, 92.5,
    38.9, 10.0% (chance: every layer-2 neuron silent), while the ReLU network's stays 95.8%."""
    _, _, s, _ = swept
    np.testing.assert_array_equal(s.factors, [1.0, 0.8, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1])
    r = s.down_rates  # (factors, 2 hidden layers), factors decreasing
    assert np.all(np.diff(r[:, 0]) < 0)  # layer 1: strictly monotone in c
    assert np.all(np.diff(r[:, 1]) <= 0) and np.all(np.diff(r[:6, 1]) < 0)  # layer 2, to 0
    rel = r / r[0]
    np.testing.assert_allclose(rel[:6, 0], s.factors[:6], atol=0.04)  # layer 1 ~ c
    assert np.all(rel[1:6, 1] < rel[1:6, 0])  # the deeper layer falls faster (~ c^2)
    assert s.down_silent[-1, 1] == 1.0
    acc = s.down_accuracy
    assert np.all(acc[:5] >= acc[0] - 0.01)  # c >= 0.4: within 1 point
    assert acc[6] < acc[0] - 0.3 and acc[7] <= 0.15  # c = 0.2, 0.1: lost
    np.testing.assert_array_equal(s.down_ann_accuracy, s.down_ann_accuracy[0])  # the contrast


def test_the_bias_free_relu_net_ignores_the_same_downscaling(swept):
    model, params, _, (X_test, _) = swept
    Ws = iter(S.downscale([p["W"] for p in params if "W" in p], 0.1))
    scaled = [{"W": next(Ws)} if "W" in p else p for p in params]
    y, ys = model.apply(params, X_test), model.apply(scaled, X_test)
    np.testing.assert_allclose(ys, 0.1**3 * y, rtol=1e-4, atol=1e-7)
    np.testing.assert_array_equal(ys.argmax(-1), y.argmax(-1))


def test_pruning_the_weakest_synapses_holds_then_drops(swept):
    """Measured (T = 50): accuracy at p = 0, 0.2, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9: 95.8, 95.3,
    92.5, 91.4, 91.4, 77.8, 51.4, 36.4%; the layer-2 rate falls from 0.140 to 0.062. The
    ReLU network with the same pruned weights tracks the spiking one (the loss is the
    network's, not the spikes')."""
    _, _, s, _ = swept
    np.testing.assert_array_equal(s.fractions, [0.0, 0.2, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9])
    acc = s.pruned_accuracy
    assert np.all(acc[:5] >= acc[0] - 0.06)  # up to p = 0.6: within 6 points
    assert acc[5] < acc[0] - 0.1 and acc[6] < acc[0] - 0.3  # p = 0.7, 0.8: drops
    np.testing.assert_allclose(acc, s.pruned_ann_accuracy, atol=0.05)
    assert s.pruned_rates[-1, 1] < 0.6 * s.pruned_rates[0, 1]


def test_prune_of_one_matrix_prunes_it_whole_and_returns_a_matrix():
    W = jnp.array([[0.5, -0.1, 0.3], [-0.7, 0.2, -0.05]])
    P = H.prune(W, 0.5)  # floor(0.5 * 6) = 3 over the whole matrix, not 1 per row
    assert isinstance(P, jnp.ndarray) and P.shape == (2, 3)
    np.testing.assert_array_equal(P, jnp.array([[0.5, 0.0, 0.3], [-0.7, 0.0, 0.0]]))
    np.testing.assert_array_equal(H.prune(np.asarray(W), 0.5), P)
    np.testing.assert_array_equal(H.prune([W], 0.5)[0], P)  # the list form agrees


def test_sweep_refuses_empty_factors_or_fractions():
    layers = [{"W": jnp.eye(2), "b": jnp.zeros(2)}, {"W": jnp.eye(2), "b": jnp.zeros(2)}]
    conv = V.normalize(layers, jnp.array([[1.0, 0.0], [0.0, 1.0]]))
    X, y = jnp.array([[1.0, 0.0], [0.0, 1.0]]), jnp.array([0, 1])
    with pytest.raises(ValueError, match=r"sweep: factors must hold at least one value, got none"):
        H.sweep(conv, X, y, 5, factors=())
    with pytest.raises(
        ValueError, match=r"sweep: fractions must hold at least one value, got none"
    ):
        H.sweep(conv, X, y, 5, fractions=[])
    s = H.sweep(conv, X, y, 5, factors=[np.float32(1.0)], fractions=[0.0])
    np.testing.assert_array_equal(s.down_accuracy, [1.0])  # x = e_i: rate 1 on unit i
    np.testing.assert_array_equal(s.down_rates, [[0.5]])
