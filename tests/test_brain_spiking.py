"""Spiking layers, encoders and decoders; a spiking MLP trained on digits; ANN -> SNN."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import nnjax
from nnjax.brain import convert, spiking


@pytest.fixture(scope="module")
def digits():
    return nnjax.data.load("digits", standardized=False)


def test_rate_encoder_rates_and_determinism():
    x = jnp.array([[0.0, 0.25, 0.5, 1.0, 1.7, -0.3]])
    s = spiking.rate_encode(jax.random.key(0), jnp.tile(x, (500, 1)), 40)
    assert s.shape == (40, 500, 6)
    np.testing.assert_allclose(s.mean(axis=(0, 1)), [0, 0.25, 0.5, 1, 1, 0], atol=0.01)
    det = spiking.rate_encode(None, x, 40)  # regular train: count = floor(T p)
    np.testing.assert_array_equal(det.sum(0)[0], [0, 10, 20, 40, 40, 0])


def test_latency_encoder_one_early_spike_for_strong_input():
    x = jnp.array([[1.0, 0.5, 0.0, 0.75]])
    s = spiking.latency_encode(x, 9)
    np.testing.assert_array_equal(s.sum(0)[0], [1, 1, 0, 1])
    np.testing.assert_array_equal(jnp.argmax(s[:, 0, [0, 1, 3]], axis=0), [0, 4, 2])


def test_membrane_readout_equals_recursion():
    x = jax.random.normal(jax.random.key(1), (7, 2, 3))
    layer = spiking.MembraneReadout(0.8, mode="max")
    v, vs = jnp.zeros((2, 3)), []
    for t in range(7):
        v = 0.8 * v + x[t]
        vs.append(v)
    np.testing.assert_allclose(layer.apply({}, x), jnp.stack(vs).max(0), rtol=1e-5, atol=1e-6)
    last = spiking.MembraneReadout(0.8, mode="last").apply({}, x)
    np.testing.assert_allclose(last, vs[-1], rtol=1e-5, atol=1e-6)


def test_lif_layer_composes_with_dense_via_serial():
    model = nnjax.serial(
        spiking.RateEncoder(5), nnjax.Dense(8), spiking.LIF(0.9), spiking.SpikeCount()
    )
    shape, params = model.init(jax.random.key(0), (-1, 4))
    assert shape == (-1, 8)
    x = jnp.full((3, 4), 0.7)

    def total(p):
        out = model.apply(p, x, key=jax.random.key(1))
        return out.sum(), out

    # gradients reach the Dense weights through the surrogate
    g, out = jax.jit(jax.grad(total, has_aux=True))(params)
    assert out.shape == (3, 8)
    assert float(out.min()) >= 0 and float(out.max()) <= 5
    assert float(jnp.abs(g[1]["W"]).sum()) > 0


def test_spiking_layer_errors():
    with pytest.raises(ValueError, match="time axis"):
        spiking.LIF().apply({}, jnp.ones(3))
    with pytest.raises(ValueError, match="beta"):
        spiking.LIF(beta=0.0)
    with pytest.raises(ValueError, match="mode"):
        spiking.MembraneReadout(mode="median")
    with pytest.raises(ValueError, match="readout"):
        spiking.spiking_mlp([10], readout="rate")
    with pytest.raises(ValueError, match="n_steps"):
        spiking.RateEncoder(0)


@pytest.fixture(scope="module")
def trained_snn(digits):
    """One spiking MLP per session: 64 -> 128 LIF -> 10 leaky readout units (mean membrane as
    logits), 25 steps of Bernoulli rate code; trained with jax.grad + Adam through nnjax.fit
    (the ``dropout`` flag hands a fresh key to the encoder at every step)."""
    model = spiking.spiking_mlp([128, 10], n_steps=25, readout="membrane")
    _, params = model.init(jax.random.key(0), (-1, 64))
    res = nnjax.fit(
        model,
        params,
        digits.X_train / 16.0,
        digits.y_train,
        optimizer="adam",
        learning_rate=2e-3,
        epochs=10,
        batch_size=64,
        dropout=True,
    )
    return model, res.params


def test_spiking_mlp_reaches_90_percent_on_digits(trained_snn, digits):
    model, params = trained_snn
    x = digits.X_test / 16.0
    # Bernoulli rate code, as in training (a fresh key for the test set)
    logits = jax.jit(lambda p, x, k: model.apply(p, x, key=k))(params, x, jax.random.key(7))
    acc = float(jnp.mean(jnp.argmax(logits, -1) == digits.y_test))
    assert acc >= 0.90, acc


@pytest.fixture(scope="module")
def trained_ann():
    ds = nnjax.data.load("digits")
    model = nnjax.mlp([64, 32, 10])
    _, params = model.init(jax.random.key(0), (-1, 64))
    res = nnjax.fit(model, params, ds.X_train, ds.y_train, epochs=15, batch_size=64)
    return ds, model, res.params


def test_converted_network_within_2_points_of_ann(trained_ann):
    ds, model, params = trained_ann
    logits = convert.ann_forward(convert.dense_params(params), ds.X_test)
    ann_acc = float(jnp.mean(jnp.argmax(logits, -1) == ds.y_test))
    conv = convert.normalize(params, ds.X_train, percentile=99.9)
    snn_acc = convert.spiking_accuracy(conv, ds.X_test, ds.y_test, 200, return_spikes=True)
    assert ann_acc > 0.9
    assert abs(ann_acc - snn_acc) <= 0.02, (ann_acc, snn_acc)


def test_conversion_normalisation_and_rates(trained_ann):
    ds, model, params = trained_ann
    layers = convert.dense_params(params)
    assert len(layers) == 3
    np.testing.assert_allclose(
        convert.ann_forward(layers, ds.X_test), model.apply(params, ds.X_test), rtol=1e-5
    )
    conv = convert.normalize(params, ds.X_train, percentile=100.0)
    _, hidden = convert.ann_forward(conv.layers, ds.X_train, return_hidden=True)
    for a in hidden:  # max normalisation puts every activation in [0, 1]
        assert float(a.max()) == pytest.approx(1.0, rel=1e-5)
    res = convert.simulate(conv, ds.X_test, 200, return_spikes=True)
    _, target = convert.ann_forward(conv.layers, ds.X_test, return_hidden=True)
    # first hidden layer is driven by a constant current: rate within 1/T of the ReLU
    # (clipped at 1: test inputs may exceed the training maximum)
    err = jnp.abs(res.rates[0] - jnp.clip(target[0], 0.0, 1.0))
    assert float(err.max()) <= 1 / 200 + 1e-5
    assert res.spikes[0].shape == (200, len(ds.X_test), 64)


def test_convert_errors(trained_ann):
    ds, _, params = trained_ann
    with pytest.raises(ValueError, match="percentile"):
        convert.normalize(params, ds.X_train, percentile=0.0)
    with pytest.raises(ValueError, match="X must have shape"):
        convert.normalize(params, ds.X_train[:, :10])
    conv = convert.normalize(params, ds.X_train)
    with pytest.raises(ValueError, match="n_steps"):
        convert.simulate(conv, ds.X_test, 0)
    with pytest.raises(ValueError, match="no Dense"):
        convert.dense_params([{}, {}])
