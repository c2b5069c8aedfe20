"""Dreams as learning mechanisms: activation maximisation (DeepDream) and generative replay.

**Activation maximisation / DeepDream** — what does the network "dream" for class c? Gradient
ascent on the *input*:

    J_c(x) = f_c(x) - (lambda / 2) ||x||^2,      x <- x + eta grad_x J_c(x)

with ``jax.grad`` with respect to x (f_c the class-c logit). Jitter (Mordvintsev et al. 2015):
before each step the image is rolled by a random offset of at most ``jitter`` pixels and rolled
back after it, so the dream cannot hide in a single pixel pattern. A ReLU network is only
piecewise smooth, so a fixed step can cross a kink and lower J_c; each step therefore backtracks
(eta, eta/2, ..., eta/2^backtrack: the longest step that raises J_c at the un-jittered image is
taken, none: the image stays). So J_c never decreases, and increases at every step where the
ascent direction is one (always, in our tests, without jitter); the history of J_c is returned.

**Generative replay** (Shin, Lee, Kim and Kim 2017, "dreaming old memories"): next to the
classifier (the solver) a small VAE (the generator, built from nnjax ``Dense`` layers) learns
the inputs of every task. While task t is learned, each batch of real data is joined by a
batch of dreams x ~ generator_{t-1}, labelled by the solver at the end of task t-1
(arg max over the classes seen before t); the two cross-entropies are weighted 1/(t+1) and
t/(t+1), so each task counts equally. After task t the generator is trained the same way on
the real inputs of task t plus its own dreams of tasks 0..t-1.

The VAE (Kingma and Welling 2014): q(z|x) = N(mu(x), diag sigma^2(x)), p(z) = N(0, I),
p(x|z) = Bernoulli(logistic(g(z))) on inputs in [0, 1]; its loss is the negative ELBO
  -E_q[log p(x|z)] + KL(q(z|x) || p(z)),  KL = 1/2 sum(mu^2 + sigma^2 - log sigma^2 - 1),
with the reparameterisation z = mu + sigma eps.
"""

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from nnjax.layers import Activation, Dense, serial

Array = jax.Array


# --------------------------------------------------------------------------- DeepDream


def dream_objective(apply: Callable, params, x: Array, cls: int | Array, l2: float) -> Array:
    """J_c(x) = f_c(x) - (l2 / 2) ||x||^2 for one flat input x (d,)."""
    return apply(params, x[None])[0, cls] - 0.5 * l2 * jnp.sum(x * x)


def _roll(x: Array, shifts: Array, image_shape: tuple) -> Array:
    img = x.reshape(image_shape)
    for axis in range(len(image_shape)):
        img = jnp.roll(img, shifts[axis], axis=axis)
    return img.reshape(-1)


def deep_dream(
    apply: Callable,
    params,
    x0: Array,
    cls: int | Array,
    key: Array,
    *,
    image_shape: tuple,
    steps: int = 100,
    lr: float = 0.05,
    l2: float = 0.1,
    jitter: int = 1,
    backtrack: int = 6,
) -> tuple[Array, Array]:
    """Gradient ascent on the input (module docstring). ``x0`` (d,) the start (e.g. the mean
    input), ``cls`` the class whose logit is maximised. Returns (x (d,), J history (steps+1,)).
    jit/vmap-able (``cls`` and ``key`` may be traced)."""
    if x0.ndim != 1 or x0.shape[0] != int(np.prod(image_shape)):
        raise ValueError(
            f"deep_dream: x0 must have shape ({int(np.prod(image_shape))},), "
            f"got {x0.shape} for image_shape {image_shape}"
        )
    if steps < 1 or lr <= 0 or l2 < 0 or jitter < 0:
        raise ValueError(
            f"deep_dream: need steps >= 1, lr > 0, l2 >= 0, jitter >= 0; got "
            f"steps={steps}, lr={lr}, l2={l2}, jitter={jitter}"
        )
    grad = jax.grad(dream_objective, argnums=2)
    J = lambda x: dream_objective(apply, params, x, cls, l2)  # noqa: E731
    fractions = 2.0 ** -jnp.arange(backtrack + 1.0)

    def step(carry, k):
        x, Jx = carry
        shifts = jax.random.randint(k, (len(image_shape),), -jitter, jitter + 1)
        xj = _roll(x, shifts, image_shape)
        g = grad(apply, params, xj, cls, l2)
        cands = jax.vmap(lambda f: _roll(xj + f * lr * g, -shifts, image_shape))(fractions)
        Jc = jax.vmap(J)(cands)
        ok = Jc > Jx
        first = jnp.argmax(ok)  # the longest step that raises J; none: stay
        x, Jx = jax.lax.cond(ok.any(), lambda: (cands[first], Jc[first]), lambda: (x, Jx))
        return (x, Jx), Jx

    J0 = J(x0)
    (x, _), hist = jax.lax.scan(step, (x0, J0), jax.random.split(key, steps))
    return x, jnp.concatenate([J0[None], hist])


def dream_all_classes(apply, params, x0, key, n_classes: int, **kw) -> tuple[Array, Array]:
    """:func:`deep_dream` for every class at once (vmap): (K, d) images, (K, steps+1) J."""
    keys = jax.random.split(key, n_classes)
    f = jax.vmap(lambda c, k: deep_dream(apply, params, x0, c, k, **kw))
    return f(jnp.arange(n_classes), keys)


# --------------------------------------------------------------------------- VAE


class VAE(NamedTuple):
    """A VAE as nnjax layers: ``encoder`` x (B, d) -> (B, 2 z) = [mu, log sigma^2];
    ``decoder`` z (B, z) -> (B, d) Bernoulli logits. Params: ``{"enc": ..., "dec": ...}``."""

    encoder: object
    decoder: object
    d: int
    latent: int

    def init(self, key: Array):
        k1, k2 = jax.random.split(key)
        _, enc = self.encoder.init(k1, (-1, self.d))
        _, dec = self.decoder.init(k2, (-1, self.latent))
        return {"enc": enc, "dec": dec}


def make_vae(d: int, latent: int = 8, hidden: int = 128) -> VAE:
    """A VAE for inputs of width ``d`` with one ReLU hidden layer of ``hidden`` units each side."""
    for name, v in (("d", d), ("latent", latent), ("hidden", hidden)):
        if not isinstance(v, int) or v < 1:
            raise ValueError(f"make_vae: {name} must be a positive int, got {v!r}")
    enc = serial(Dense(hidden), Activation("relu"), Dense(2 * latent))
    dec = serial(Dense(hidden), Activation("relu"), Dense(d))
    return VAE(enc, dec, d, latent)


def vae_loss(vae: VAE, params, x: Array, key: Array) -> Array:
    """Mean over the batch of the negative ELBO (module docstring), x (B, d) in [0, 1]."""
    h = vae.encoder.apply(params["enc"], x)
    mu, logvar = h[:, : vae.latent], h[:, vae.latent :]
    z = mu + jnp.exp(0.5 * logvar) * jax.random.normal(key, mu.shape)
    logits = decode_logits(vae, params, z)
    rec = jnp.sum(optax.sigmoid_binary_cross_entropy(logits, x), axis=-1)
    kl = 0.5 * jnp.sum(mu**2 + jnp.exp(logvar) - logvar - 1.0, axis=-1)
    return jnp.mean(rec + kl)


def decode_logits(vae: VAE, params, z: Array) -> Array:
    return vae.decoder.apply(params["dec"], z)


def sample_dreams(vae: VAE, params, key: Array, n: int) -> Array:
    """n dreams (n, d): the decoder's mean logistic(g(z)) at z ~ N(0, I)."""
    z = jax.random.normal(key, (n, vae.latent))
    return jax.nn.sigmoid(decode_logits(vae, params, z))


# --------------------------------------------------------------------------- generative replay


class ReplayConfig(NamedTuple):
    """The generator: a VAE (``latent``, ``hidden``) trained ``steps`` Adam steps (``lr``) on
    batches of ``batch`` real and ``batch`` dreamed inputs after each task."""

    latent: int = 8
    hidden: int = 128
    steps: int = 600
    batch: int = 64
    lr: float = 1e-3


def make_replay_method(model, n_classes: int, d: int, cfg: ReplayConfig | None = None):
    """Generative replay as a :class:`nnjax.brain.continual.Method` for the solver ``model``
    (module docstring); returns (method, vae). The classes seen so far are carried in the
    method's state, so one compiled run serves every class order."""
    from nnjax.brain.continual import Method, sgd_steps, soft_cross_entropy

    cfg = cfg or ReplayConfig()
    vae = make_vae(d, cfg.latent, cfg.hidden)
    opt = optax.adam(cfg.lr)
    K = n_classes

    def init(key, params, hp=None):
        k1, k2 = jax.random.split(key)
        gen, solver = vae.init(k1), model.init(k2, (-1, d))[1]
        return {"gen": gen, "solver": solver, "seen": jnp.zeros(K, bool)}

    def loss(params, extra, key, t, x, y1h, hp=None):
        rho = 1.0 if hp is None else hp["rho"]  # the dreams' weight, as the replay buffer's
        w = rho * t / (1.0 + rho * t)
        xr = sample_dreams(vae, extra["gen"], key, x.shape[0])
        old_logits = jnp.where(extra["seen"], model.apply(extra["solver"], xr), -jnp.inf)
        yr = jax.nn.one_hot(jnp.argmax(old_logits, axis=-1), K)
        return (1.0 - w) * soft_cross_entropy(model.apply(params, x), y1h) + (
            w * soft_cross_entropy(model.apply(params, xr), yr)
        )

    def after_task(params, extra, key, t, task, seen, hp):
        Xt, yt, nt = task
        gen_prev = extra["gen"]
        w = t / (t + 1.0)

        def gen_loss(g, k):
            k1, k2, k3, k4 = jax.random.split(k, 4)
            x = Xt[jax.random.randint(k1, (cfg.batch,), 0, nt)]
            xr = sample_dreams(vae, gen_prev, k2, cfg.batch)
            return (1.0 - w) * vae_loss(vae, g, x, k3) + w * vae_loss(vae, g, xr, k4)

        gen, _ = sgd_steps(gen_loss, gen_prev, key, cfg.steps, opt)
        seen = extra["seen"].at[yt].set(True)  # padded rows repeat real ones
        return params, {"gen": gen, "solver": params, "seen": seen}

    return Method(init=init, loss=loss, after_task=after_task), vae
