"""Activation maximisation and DeepDream (gradient ascent on the input), the VAE of generative
replay."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from nnjax.brain import dreams as D
from nnjax.models import mlp


def _net(activation="relu", d=16, seed=0):
    model = mlp([12, 4], activation)
    _, params = model.init(jax.random.key(seed), (-1, d))
    return model, params


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_class_objective_gradient_matches_finite_differences(activation):
    with jax.enable_x64(True):
        model, params = _net(activation)
        params = jax.tree.map(lambda a: a.astype(jnp.float64), params)
        x = jax.random.uniform(jax.random.key(1), (16,), jnp.float64)
        f = lambda x: D.class_objective(model.apply, params, x, 2, 0.1)  # noqa: E731
        check_grads(f, (x,), order=1, modes=("rev",), eps=1e-6, atol=1e-6, rtol=1e-6)


def test_class_objective_increases_at_every_step_without_jitter():
    model, params = _net("relu")
    x0 = jnp.full((16,), 0.5)
    f = jax.jit(
        jax.vmap(
            lambda c: D.activation_maximisation(model.apply, params, x0, c, jax.random.key(0),
                                                image_shape=(4, 4), steps=60, lr=0.05, l2=0.1,
                                                jitter=0)
        )
    )  # fmt: skip
    xs, hist = f(jnp.arange(4))
    hist = np.asarray(hist)
    assert np.all(np.diff(hist, axis=1) > 0), hist
    # the dream raises its own class's logit above where it started
    logits = model.apply(params, xs)
    start = model.apply(params, x0[None])[0]
    assert np.all(np.diagonal(logits) > start)


def test_class_objective_never_decreases_with_jitter():
    model, params = _net("relu", seed=3)
    x0, k = jnp.full((16,), 0.5), jax.random.key(0)
    _, hist = D.activation_maximisation(model.apply, params, x0, 1, k, image_shape=(4, 4),
                                        steps=30, lr=0.05, l2=0.1, jitter=1)  # fmt: skip
    hist = np.asarray(hist)
    assert np.all(np.diff(hist) >= 0) and hist[-1] > hist[0]


def test_jitter_roll_is_undone():
    x = jnp.arange(16.0)
    shifts = jnp.array([1, -1])
    y = D._roll(D._roll(x, shifts, (4, 4)), -shifts, (4, 4))
    np.testing.assert_array_equal(x, y)
    assert not np.array_equal(D._roll(x, shifts, (4, 4)), x)


def test_activation_maximisation_validates():
    model, params = _net()
    k = jax.random.key(0)
    with pytest.raises(ValueError, match="x0 must have shape"):
        D.activation_maximisation(model.apply, params, jnp.zeros(15), 0, k, image_shape=(4, 4))
    with pytest.raises(ValueError, match="lr must be a finite number > 0"):
        D.activation_maximisation(model.apply, params, jnp.zeros(16), 0, k, image_shape=(4, 4),
                                  lr=0.0)  # fmt: skip


def test_activation_maximisation_refuses_bad_classes_and_settings():
    """Finding: cls=4 (or -1) with 4 logits silently maximised class 3 (JAX clamps the index);
    lr=nan returned x0 with a finite J history; backtrack=-1 failed in argmax of an empty
    sequence; steps=2.5 raised TypeError."""
    model, params = _net()
    x0, k = jnp.zeros(16), jax.random.key(0)
    run = lambda c, **kw: D.activation_maximisation(  # noqa: E731
        model.apply, params, x0, c, k, image_shape=(4, 4), **{"steps": 2, **kw}
    )
    for cls in (4, -1, 1.5, np.array([0, 1])):
        with pytest.raises(ValueError, match=r"cls must be an int class in \[0, 4\)"):
            run(cls)
    for kw, text in (({"lr": np.nan}, "lr must be a finite number > 0"),
                     ({"backtrack": -1}, "backtrack must be an int >= 0"),
                     ({"steps": 2.5}, "steps must be an int >= 1"),
                     ({"l2": np.nan}, "l2 must be a finite number >= 0"),
                     ({"jitter": -1}, "jitter must be an int >= 0")):  # fmt: skip
        with pytest.raises(ValueError, match=f"activation_maximisation: {text}"):
            run(0, **kw)
    x, hist = run(np.int64(3))  # NumPy ints are classes too
    assert hist.shape == (3,) and np.isfinite(np.asarray(hist)).all()


def test_vae_loss_is_the_negative_elbo():
    vae = D.make_vae(6, latent=2, hidden=5)

    @jax.jit  # one program: op by op, every eager op would compile on its own (~11 s in all)
    def run(k_init, k_x, key):
        params = vae.init(k_init)
        x = jax.random.uniform(k_x, (3, 6))
        h = vae.encoder.apply(params["enc"], x)
        noise = jax.random.normal(key, (3, 2))
        return (
            params,
            x,
            h,
            noise,
            D.vae_loss(vae, params, x, key),
            D.vae_loss(vae, params, x, key, kl_weight=0.25),
            D.sample_dreams(vae, params, key, 7),
        )

    params, x, h, noise, got, got_beta, s = run(
        jax.random.key(0), jax.random.key(1), jax.random.key(2)
    )
    # the same computation by hand, from the layers' outputs
    h = np.asarray(h, np.float64)
    mu, logvar = h[:, :2], h[:, 2:]
    z = mu + np.exp(0.5 * logvar) * np.asarray(noise)
    logits = jax.jit(vae.decoder.apply)(params["dec"], jnp.asarray(z, jnp.float32))
    logits = np.asarray(logits, np.float64)
    p = 1 / (1 + np.exp(-logits))
    xn = np.asarray(x, np.float64)
    rec = -(xn * np.log(p) + (1 - xn) * np.log(1 - p)).sum(1)
    kl = 0.5 * (mu**2 + np.exp(logvar) - logvar - 1).sum(1)
    np.testing.assert_allclose(got, (rec + kl).mean(), rtol=1e-4)
    np.testing.assert_allclose(got_beta, (rec + 0.25 * kl).mean(), rtol=1e-4)
    assert s.shape == (7, 6) and float(s.min()) >= 0 and float(s.max()) <= 1
    with pytest.raises(ValueError, match="latent must be a positive int"):
        D.make_vae(6, latent=0)
