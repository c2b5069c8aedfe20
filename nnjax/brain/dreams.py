"""Dreams: activation maximisation and DeepDream (generative replay: re-exported).

**Activation maximisation** (Erhan, Bengio, Courville and Vincent 2009; Simonyan, Vedaldi and
Zisserman 2014, "class model visualisation") — what input does the network take for the
ideal class c? Gradient ascent on the *input* of the class-c logit f_c:

    J_c(x) = f_c(x) - (lambda / 2) ||x||^2,      x <- x + eta grad_x J_c(x)

with ``jax.grad`` with respect to x. Jitter: before each step the image is rolled by a random
offset of at most ``jitter`` pixels and rolled back after it, so the result cannot hide in a
single pixel pattern. A ReLU network is only piecewise smooth, so a fixed step can cross a
kink and lower J_c; each step therefore backtracks (eta, eta/2, ..., eta/2^backtrack: the
longest step that raises J_c at the un-jittered image is taken, none: the image stays). So J_c
never decreases; the history of J_c is returned. Started from the mean input, the result is
the network's picture of class c, not a picture of any input.

**DeepDream** (Mordvintsev, Olah and Tyka 2015) — what does a layer see *in this input*?
Gradient ascent, from a real input x_0, on the size of layer l's activation a_l(x) (n_l units):

    J(x) = (1 / 2 n_l) ||a_l(x)||^2 - (s / 2) sum_{i~j} (x_i - x_j)^2,
    x <- x + eta g / mean|g|,    g = grad_x J (at a jittered copy of x, rolled back),

whatever the layer already responds to in x is amplified; no class is chosen. The gradient is
normalised by its mean absolute value (so eta is a step per pixel, as in the original), the
optional smoothness prior (weight ``smooth``, sum over horizontally and vertically adjacent
pixels i~j) keeps the changes spatially coherent, and ``clip`` projects back into the input
range. Octaves: the original runs the network on the image at a few scales, coarse first;
a dense network takes only its own input size, so for 8 x 8 digits an octave here is a scale
s of the *change*: x <- x + eta up_s(P_s g) / mean|P_s g|, with P_s the sum over s x s blocks
(the gradient of J with respect to a coarse image upsampled by block repetition, up_s) —
coarse structure first, detail last. At 8 x 8 this is only a 2 x coarser pass (s = 2; s = 4
leaves 2 x 2 blocks): cheap, and meaningful only to that extent. Without jitter or clipping,
every step is an ascent direction (g . up_s(P_s g) = ||P_s g||^2 >= 0), so for small eta J
increases at every step.

Generative replay and its VAE live in :mod:`nnjax.brain.generative_replay` (re-exported
here).
"""

from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from nnjax.brain import dynamics
from nnjax.brain.generative_replay import (  # noqa: F401 (re-exported: dreams.make_vae, ...)
    VAE,
    ReplayConfig,
    decode_logits,
    make_replay_method,
    make_vae,
    sample_dreams,
    vae_loss,
)

Array = jax.Array


# ----------------------------------------------------------------- activation maximisation


def class_objective(apply: Callable, params, x: Array, cls: int | Array, l2: float) -> Array:
    """J_c(x) = f_c(x) - (l2 / 2) ||x||^2 for one flat input x (d,), a scalar; ``l2`` a
    finite number >= 0 (a concrete nan gave J = nan; a string failed deep in NumPy)."""
    where = "class_objective"
    dynamics.check_positive(l2, "l2", where, allow_zero=True)
    if jnp.ndim(x) != 1:  # (4, 4) failed in apply's shape check, with the batch axis added
        raise ValueError(f"{where}: x must be one flat input (d,), got shape {jnp.shape(x)}")
    logits = apply(params, x[None])[0]
    c = dynamics.concrete(cls)  # an index past K was clamped by JAX: another class's logit
    if c is not None and (c.ndim != 0 or c.dtype.kind not in "iu" or not 0 <= c < logits.shape[-1]):
        raise ValueError(
            f"class_objective: cls must be an int class in [0, {logits.shape[-1]}), got {cls!r}"
        )
    return logits[cls] - 0.5 * l2 * jnp.sum(x * x)


def _roll(x: Array, shifts: Array, image_shape: tuple) -> Array:
    img = x.reshape(image_shape)
    for axis in range(len(image_shape)):
        img = jnp.roll(img, shifts[axis], axis=axis)
    return img.reshape(-1)


def _is_shape(image_shape) -> bool:
    """A non-empty tuple or list of ints >= 1 (not bools)."""
    return (
        isinstance(image_shape, tuple | list)
        and len(image_shape) > 0
        and all(
            not isinstance(n, bool) and isinstance(n, int | np.integer) and n >= 1
            for n in image_shape
        )
    )


def _check_image(where: str, x0: Array, image_shape: tuple) -> None:
    if not _is_shape(image_shape):  # an int, a float or a negative side failed deep in JAX
        raise ValueError(f"{where}: image_shape must be a tuple of ints >= 1, got {image_shape!r}")
    if not isinstance(x0, jax.Array | np.ndarray) or not jnp.issubdtype(x0.dtype, jnp.floating):
        raise ValueError(  # a list had no .ndim, an int x0 failed in jax.grad
            f"{where}: x0 must be a floating array (d,), got {type(x0).__name__} "
            f"{getattr(x0, 'dtype', '')}"
        )
    v = dynamics.concrete(x0)
    if v is not None and not np.all(np.isfinite(v)):  # a nan start gave a nan image, no error
        raise ValueError(f"{where}: x0 must be finite, got nan or inf")
    if x0.ndim != 1 or x0.shape[0] != int(np.prod(image_shape)):
        raise ValueError(
            f"{where}: x0 must have shape ({int(np.prod(image_shape))},), "
            f"got {x0.shape} for image_shape {image_shape}"
        )


def _check_ascent(x0, image_shape, steps, lr, l2, jitter, backtrack) -> None:
    where = "activation_maximisation"
    _check_image(where, x0, image_shape)
    dynamics.check_count(steps, "steps", where)
    dynamics.check_positive(lr, "lr", where)
    dynamics.check_positive(l2, "l2", where, allow_zero=True)
    dynamics.check_count(jitter, "jitter", where, minimum=0)
    dynamics.check_count(backtrack, "backtrack", where, minimum=0)


def _check_class(apply: Callable, params, x0: Array, cls) -> None:
    """A ValueError unless a concrete ``cls`` is an integer in [0, K), K the number of logits
    ``apply`` gives (a traced class, as under vmap over classes, passes)."""
    c = dynamics.concrete(cls)
    if c is None and not isinstance(cls, jax.core.Tracer):  # a string failed deep in JAX
        raise ValueError(f"activation_maximisation: cls must be an int class, got {cls!r}")
    if c is None:
        return
    K = jax.eval_shape(apply, params, x0[None]).shape[-1]
    if c.ndim != 0 or c.dtype.kind not in "iu" or not 0 <= c < K:
        raise ValueError(
            f"activation_maximisation: cls must be an int class in [0, {K}) (the network has "
            f"{K} logits), got {cls!r}"
        )


def activation_maximisation(
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
    """Class-logit activation maximisation (module docstring). ``x0`` (d,) the start (e.g.
    the mean input), ``cls`` the class whose logit is maximised (an int in [0, K), K the
    network's logits; a concrete one is checked). Returns (x (d,), J_c history
    (steps+1,)). jit/vmap-able (``cls`` and ``key`` may be traced)."""
    _check_ascent(x0, image_shape, steps, lr, l2, jitter, backtrack)
    _check_class(apply, params, x0, cls)
    grad = jax.grad(class_objective, argnums=2)
    J = lambda x: class_objective(apply, params, x, cls, l2)  # noqa: E731
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
    """:func:`activation_maximisation` for every class at once (vmap): (K, d) images,
    (K, steps+1) J_c."""
    n_classes = dynamics.check_count(n_classes, "n_classes", "dream_all_classes")
    # before eval_shape: a wrong-sized x0 failed in the network's first layer, naming neither
    _check_image("dream_all_classes", x0, kw.get("image_shape"))
    K = jax.eval_shape(apply, params, jnp.asarray(x0)[None]).shape[-1]
    if n_classes > K:  # classes past the logits were clamped: copies of the last class
        raise ValueError(
            f"dream_all_classes: n_classes must be <= {K} (the logits), got {n_classes}"
        )
    keys = jax.random.split(key, n_classes)
    f = jax.vmap(lambda c, k: activation_maximisation(apply, params, x0, c, k, **kw))
    return f(jnp.arange(n_classes), keys)


# --------------------------------------------------------------------------- DeepDream


def relu_mlp_layer(layer: int, *, model=None) -> Callable:
    """``features(params, x) -> a_l`` (B, n_l): hidden layer ``layer`` (0-based) of a ReLU MLP
    (:func:`nnjax.mlp` params, biases or not), a_l = relu(a_{l-1} W_l + b_l). The params do
    not say which activation the network used (an activation layer's params are ``{}``): pass
    ``model``, the Layer they belong to, and a non-ReLU MLP is refused naming its activation
    (:func:`nnjax.brain.convert.check_relu_mlp`; a tanh MLP's features were computed as ReLU's).
    """
    from nnjax.brain.convert import ann_forward, check_relu_mlp, dense_params

    layer = dynamics.check_count(layer, "layer", "relu_mlp_layer", minimum=0)  # "0", 1.0, True
    if model is not None:
        check_relu_mlp(model, "relu_mlp_layer")

    def features(params, x):
        layers = dense_params(params)
        if not 0 <= layer < len(layers) - 1:
            raise ValueError(
                f"relu_mlp_layer: layer must be in [0, {len(layers) - 1}) (the hidden layers), "
                f"got {layer}"
            )
        return ann_forward(layers, x, return_hidden=True)[1][layer]

    return features


def _smoothness(x: Array, image_shape: tuple) -> Array:
    """sum over adjacent pixel pairs (along every axis) of (x_i - x_j)^2."""
    img = x.reshape(image_shape)
    return sum(jnp.sum(jnp.diff(img, axis=a) ** 2) for a in range(len(image_shape)))


def dream_layer_objective(
    features: Callable, params, x: Array, image_shape: tuple, smooth: float = 0.0
) -> Array:
    """DeepDream's J(x) = (1 / 2 n_l) ||a_l(x)||^2 - (smooth / 2) sum_{i~j} (x_i - x_j)^2 for
    one flat input x (d,), a_l = ``features(params, x[None])[0]``; ``smooth`` a finite
    number >= 0 (nan gave J = nan), ``image_shape`` ints whose product is d."""
    where = "dream_layer_objective"
    dynamics.check_positive(smooth, "smooth", where, allow_zero=True)
    if jnp.ndim(x) != 1 or not _is_shape(image_shape) or int(np.prod(image_shape)) != x.size:
        raise ValueError(  # a reshape TypeError deep in JAX before
            f"{where}: x must be flat (d,) with d = prod(image_shape), got x {jnp.shape(x)} "
            f"and image_shape {image_shape!r}"
        )
    a = features(params, x[None])[0]
    return 0.5 * jnp.mean(a * a) - 0.5 * smooth * _smoothness(x, image_shape)


def _coarse(g: Array, image_shape: tuple, s: int) -> Array:
    """up_s(P_s g): the gradient summed over s x s blocks, repeated back over each block."""
    img = g.reshape(image_shape)
    shape = [n for n in image_shape for _ in (0, 1)]
    shape[1::2] = [s] * len(image_shape)
    shape[0::2] = [n // s for n in image_shape]
    axes = tuple(range(1, 2 * len(image_shape), 2))
    blocks = img.reshape(shape).sum(axis=axes, keepdims=True)
    return jnp.broadcast_to(blocks, shape).reshape(-1)


def _check_deep_dream(x0, image_shape, steps, lr, octaves, jitter, smooth, clip) -> None:
    where = "deep_dream"
    _check_image(where, x0, image_shape)
    dynamics.check_count(steps, "steps", where)
    dynamics.check_positive(lr, "lr", where)
    dynamics.check_count(jitter, "jitter", where, minimum=0)
    dynamics.check_positive(smooth, "smooth", where, allow_zero=True)
    for s in octaves:  # NumPy ints too (np.int64(2) was refused)
        if isinstance(s, bool) or not isinstance(s, int | np.integer) or s < 1:
            raise ValueError(f"deep_dream: octaves must be positive ints, got {octaves}")
        if any(n % s for n in image_shape):
            raise ValueError(
                f"deep_dream: octave scale {s} must divide every side of image_shape {image_shape}"
            )
    if clip is not None:
        if not isinstance(clip, tuple | list) or len(clip) != 2:
            raise ValueError(f"deep_dream: clip must be (low, high) or None, got {clip!r}")
        for c in clip:  # a str failed deep in jnp.clip
            if c is not None and not isinstance(c, jax.core.Tracer):  # None: one-sided
                dynamics.check_number(c, "clip", where)
        dynamics.check_below(clip[0], clip[1], ("clip low", "clip high"), where)


def deep_dream(
    features: Callable,
    params,
    x0: Array,
    key: Array,
    *,
    image_shape: tuple,
    steps: int = 20,
    lr: float = 0.02,
    octaves: Sequence[int] = (1,),
    jitter: int = 1,
    smooth: float = 0.0,
    clip: tuple[float, float] | None = None,
) -> tuple[Array, Array]:
    """DeepDream (module docstring) from a real input ``x0`` (d,) on the layer that
    ``features(params, x (B, d)) -> a (B, n_l)`` returns (e.g. :func:`relu_mlp_layer`).

    ``steps`` normalised ascent steps per octave, octaves in the order given (scales s, e.g.
    ``(2, 1)``: a 2 x coarser pass, then full resolution); ``jitter`` the largest roll in
    pixels; ``smooth`` the weight of the smoothness prior; ``clip`` (lo, hi), lo < hi, the
    input range, or None. Returns (x (d,), J history (len(octaves) * steps + 1,)), J at the
    un-jittered image before the first step and after each. jit-able (``key`` may be traced).
    ``image_shape`` is the pixel grid: every axis of it is rolled by the jitter, enters the
    smoothness prior and is coarsened by an octave, so a channel axis would be treated as a
    spatial one.
    """
    if isinstance(octaves, int | np.integer | str) or not hasattr(octaves, "__iter__"):
        raise ValueError(  # an int failed in tuple()
            f"deep_dream: octaves must be a non-empty sequence of ints, got {octaves!r}"
        )
    octaves = tuple(octaves)
    if not octaves:  # () ran no step, as did an empty iterator (truthy before tuple())
        raise ValueError("deep_dream: octaves must be a non-empty sequence of ints, got none")
    octaves = tuple(int(s) if isinstance(s, np.integer) else s for s in octaves)
    _check_deep_dream(x0, image_shape, steps, lr, octaves, jitter, smooth, clip)
    J = lambda x: dream_layer_objective(features, params, x, image_shape, smooth)  # noqa: E731
    grad = jax.grad(J)

    def make_step(s):
        def step(x, k):
            shifts = jax.random.randint(k, (len(image_shape),), -jitter, jitter + 1)
            g = _roll(grad(_roll(x, shifts, image_shape)), -shifts, image_shape)
            g = g if s == 1 else _coarse(g, image_shape, s)
            x = x + lr * g / (jnp.mean(jnp.abs(g)) + 1e-12)
            x = x if clip is None else jnp.clip(x, *clip)
            return x, J(x)

        return step

    x, hist = x0, [J(x0)[None]]
    for s, k in zip(octaves, jax.random.split(key, len(octaves))):
        x, h = jax.lax.scan(make_step(s), x, jax.random.split(k, steps))
        hist.append(h)
    return x, jnp.concatenate(hist)
