"""Audit of the continual-learning splits (brain.tasks), generative replay and the dreams:
the formulas against float64 NumPy recomputations, the edge cases, and the bad inputs that
were silently ignored, silently nan, or named no argument."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from nnjax.brain import dreams as D
from nnjax.brain import generative_replay as G
from nnjax.brain import tasks
from nnjax.brain.continual_train import TrainConfig, make_model
from nnjax.models import mlp

# ------------------------------------------------------------------------------ the splits


@pytest.mark.parametrize("name", ["permuted-digits", "permuted-mnist1d"])
@pytest.mark.parametrize("cpt", [1, 2, 5, 10])
def test_a_permuted_split_refuses_classes_per_task(name, cpt):
    """Finding: load_split("permuted-digits", classes_per_task=5) returned 5 tasks of all 10
    classes, ignoring the argument; the permuted splits have no classes per task."""
    text = "load_split: classes_per_task is for the class-incremental splits"
    with pytest.raises(ValueError, match=f"{text} .*got classes_per_task={cpt}$"):
        tasks.load_split(name, 0, classes_per_task=cpt)


def test_classes_per_task_defaults_to_two_for_the_class_incremental_splits():
    default = tasks.load_split("digits", 3)
    explicit = tasks.load_split("digits", 3, classes_per_task=2)
    np.testing.assert_array_equal(default.task_classes, tasks.class_order(3).reshape(5, 2))
    for a, b in zip(default[:6], explicit[:6]):
        np.testing.assert_array_equal(a, b)
    sp = tasks.load_split("permuted-digits", 0)
    assert sp.X_tasks.shape[0] == tasks.PERMUTED_TASKS and sp.task_classes.shape == (5, 10)


def test_on_off_against_its_formula():
    X = np.array([[0.5, -1.0, 2.0, 0.0], [-3.0, 0.25, 0.0, -0.5]])
    want = np.clip(np.concatenate([np.maximum(X, 0), np.maximum(-X, 0)], axis=1) / 2.0, 0, 1)
    np.testing.assert_array_equal(tasks.on_off(X, 2.0), want)
    np.testing.assert_array_equal(tasks.on_off(X, np.float32(2.0)), want)
    assert tasks.on_off(np.zeros((0, 3)), 1.0).shape == (0, 6)


@pytest.mark.parametrize("scale", [0.0, -1.0, np.nan, np.inf, True, "2"])
def test_on_off_refuses_a_scale_that_is_not_finite_and_positive(scale):
    """Finding: on_off(X, 0.0) gave nan for a zero sample and 1 for every other, -1.0 swapped
    the ON and OFF channels, nan gave nan, inf zeroed both; none raised."""
    with pytest.raises(ValueError, match="on_off: scale must be a finite number > 0, got"):
        tasks.on_off(np.array([[0.5, -1.0, 0.0]]), scale)


def test_on_off_refuses_a_1d_signal():
    """Finding: a 1-D X failed in NumPy's concatenate ("axis 1 is out of bounds")."""
    with pytest.raises(ValueError, match=r"on_off: X must be 2-D \(n, d\) signals, got shape"):
        tasks.on_off(np.array([0.5, -1.0]), 1.0)


@pytest.mark.parametrize("n_tasks", [[0, 290, 290, 290, 290], [400, 290, 290, 290, 290],
                                     [290, 290, 290, 290], []])  # fmt: skip
@pytest.mark.parametrize("which", ["pad_tasks", "cumulative"])
def test_padding_and_the_joint_view_refuse_empty_or_overfull_tasks(n_tasks, which):
    """Finding: a task with n_t = 0 real rows was padded with rows of zeros labelled 0 (a run
    then trained on them), n_t = 400 > N = 290 kept 110 padding rows counted as real, and no
    task at all failed in np.stack / max() naming no argument."""
    sp = tasks.load_split("digits", 0)
    T = len(n_tasks) if n_tasks == [] else sp.X_tasks.shape[0]
    sp = sp._replace(X_tasks=sp.X_tasks[:T], y_tasks=sp.y_tasks[:T],
                     n_tasks=np.array(n_tasks, np.int32))  # fmt: skip
    call = {
        "pad_tasks": lambda: tasks.pad_tasks(sp, 300),
        "cumulative": lambda: tasks.cumulative(sp),
    }
    with pytest.raises(
        ValueError, match=rf"{which}: split.n_tasks must hold one int in \[1, 290\]"
    ):
        call[which]()


def test_the_joint_view_and_padding_keep_the_real_rows():
    sp = tasks.load_split("digits", 0)
    joint = tasks.pad_tasks(tasks.cumulative(sp), 1500)
    np.testing.assert_array_equal(joint.n_tasks, np.cumsum(sp.n_tasks))
    for t, n in enumerate(joint.n_tasks):
        real = np.concatenate([sp.X_tasks[s, : sp.n_tasks[s]] for s in range(t + 1)])
        np.testing.assert_array_equal(joint.X_tasks[t, :n], real)
        np.testing.assert_array_equal(joint.X_tasks[t], np.resize(real, (1500, 64)))  # cycled
        assert set(joint.y_tasks[t].tolist()) == set(sp.task_classes[: t + 1].ravel().tolist())


# -------------------------------------------------------------------------- generative replay


def _vae(d=6, latent=2, hidden=5, seed=0):
    vae = G.make_vae(d, latent, hidden)
    return vae, vae.init(jax.random.key(seed))


@pytest.mark.parametrize(
    "x, text",
    [
        (np.full((2, 6), np.nan), r"x must lie in \[0, 1\] \(Bernoulli means\), got nan"),
        (np.full((2, 6), 1.5), r"x must lie in \[0, 1\] \(Bernoulli means\), got 1.5"),
        (np.full((2, 6), -0.25), r"x must lie in \[0, 1\] \(Bernoulli means\), got -0.25"),
        (np.zeros((2, 5)), r"x must be \(B >= 1, 6\), got \(2, 5\)"),
    ],
)
def test_vae_loss_refuses_inputs_that_are_not_bernoulli_means_of_width_d(x, text):
    """Finding: a nan x gave a nan loss, x = 1.5 a loss unbounded below (sigmoid cross-entropy
    with a target above 1 falls without limit as the logit grows), a (2, 5) x an error
    naming "layer 0 (Dense(5))" instead of vae_loss and d."""
    vae, params = _vae()
    with pytest.raises(ValueError, match=f"vae_loss: {text}"):
        G.vae_loss(vae, params, jnp.asarray(x), jax.random.key(1))


def _replay_setup(K=4, d=6):
    model = make_model(TrainConfig(hidden=(5,)), K)
    method, vae = G.make_replay_method(model, K, d, G.ReplayConfig(latent=2, hidden=5, steps=1))
    rand = lambda a, i: jax.random.normal(jax.random.key(10 + i), a.shape, jnp.float64)  # noqa: E731
    extra = method.init(jax.random.key(0), None)
    leaves, tree = jax.tree.flatten({"gen": extra["gen"], "solver": extra["solver"]})
    extra = {**jax.tree.unflatten(tree, [rand(a, i) for i, a in enumerate(leaves)]),
             "seen": extra["seen"]}  # fmt: skip
    _, params = model.init(jax.random.key(5), (-1, d))
    params = jax.tree.map(lambda a: 0.7 * rand(a, 50), params)
    x = jax.random.uniform(jax.random.key(6), (3, d), jnp.float64)
    y = jax.nn.one_hot(jnp.array([0, 1, 1]), K, dtype=jnp.float64)
    return model, method, vae, extra, params, x, y


def _np_forward(params, x):
    """The bias-free ReLU MLP in NumPy."""
    Ws = [np.asarray(p["W"]) for p in params if "W" in p]
    for W in Ws[:-1]:
        x = np.maximum(x @ W, 0.0)
    return x @ Ws[-1]


def _np_ce(logits, target):
    logp = logits - np.logaddexp.reduce(logits, axis=1, keepdims=True)
    return -(target * logp).sum(1).mean()


@pytest.mark.parametrize("t, rho, seen", [(1, None, [1, 1, 0, 0]), (2, 0.5, [1, 1, 1, 0]),
                                          (3, 3.0, [0, 1, 1, 1])])  # fmt: skip
def test_replay_loss_is_the_documented_mixture(t, rho, seen):
    """L = 1/(1+rho t) CE(f(x), y) + rho t/(1+rho t) CE(f(x_r), onehot(argmax_{seen} f_old(x_r)))
    with B dreams x_r for B real inputs, against NumPy in float64."""
    with jax.enable_x64(True):
        model, method, vae, extra, params, x, y = _replay_setup()
        extra = {**extra, "seen": jnp.array(seen, bool)}
        key = jax.random.key(7)
        got = method.loss(params, extra, key, t, x, y, None if rho is None else {"rho": rho})
        r = 1.0 if rho is None else rho
        w = r * t / (1 + r * t)
        xr = np.asarray(G.sample_dreams(vae, extra["gen"], key, 3))  # B = 3 dreams
        old = np.where(np.array(seen, bool), _np_forward(extra["solver"], xr), -np.inf)
        assert np.array(seen)[old.argmax(1)].all()  # labels only among the classes seen
        yr = np.eye(4)[old.argmax(1)]
        want = (1 - w) * _np_ce(_np_forward(params, np.asarray(x)), np.asarray(y)) + (
            w * _np_ce(_np_forward(params, xr), yr)
        )
        np.testing.assert_allclose(float(got), want, rtol=1e-12)


@pytest.mark.parametrize("t, rho", [(0, None), (0, {"rho": 1.0}), (2, {"rho": 0.0})])
def test_replay_loss_at_zero_weight_is_plain_training_whatever_the_generator(t, rho):
    """Finding: where the dreams' weight rho t/(1+rho t) is 0 (task 0, or rho = 0) the loss was
    (1 - 0) CE + 0 * CE(dreams): a generator emitting nan made the loss and every gradient nan,
    so a run with rho = 0 (no replay) diverged with its generator."""
    with jax.enable_x64(True):
        model, method, vae, extra, params, x, y = _replay_setup()
        nan_gen = jax.tree.map(lambda a: a * jnp.nan, extra["gen"])
        extra = {**extra, "gen": nan_gen, "seen": jnp.array([1, 1, 0, 0], bool)}
        assert np.isnan(np.asarray(G.sample_dreams(vae, nan_gen, jax.random.key(7), 3))).all()
        value, grads = jax.value_and_grad(method.loss)(params, extra, jax.random.key(7), t, x, y,
                                                       rho)  # fmt: skip
        plain = lambda p: -jnp.mean(jnp.sum(y * jax.nn.log_softmax(model.apply(p, x)), -1))  # noqa: E731
        want_value, want_grads = jax.value_and_grad(plain)(params)
        np.testing.assert_allclose(float(value), _np_ce(_np_forward(params, np.asarray(x)),
                                                        np.asarray(y)), rtol=1e-12)  # fmt: skip
        np.testing.assert_allclose(float(value), float(want_value), rtol=1e-12)
        for g, h in zip(jax.tree.leaves(grads), jax.tree.leaves(want_grads)):
            np.testing.assert_allclose(np.asarray(g), np.asarray(h), rtol=1e-10, atol=1e-14)


def test_replay_loss_with_a_nan_generator_at_positive_weight_is_nan_not_hidden():
    """Where dreams count (w > 0) a broken generator shows: the wake loss is nan, which the run
    reports (NonFiniteLossError / a diverged run), rather than a quietly wrong number."""
    with jax.enable_x64(True):
        model, method, vae, extra, params, x, y = _replay_setup()
        nan_gen = jax.tree.map(lambda a: a * jnp.nan, extra["gen"])
        extra = {**extra, "gen": nan_gen, "seen": jnp.array([1, 1, 0, 0], bool)}
        assert np.isnan(float(method.loss(params, extra, jax.random.key(7), 1, x, y, None)))


def test_generator_training_weights_real_and_dreamed_inputs_1_over_t_plus_1(monkeypatch):
    """After task t one generator step (SGD here, in place of Adam) follows the gradient of
    1/(t+1) L_VAE(real batch) + t/(t+1) L_VAE(dreams of the previous generator)."""
    monkeypatch.setattr(G.optax, "adam", lambda lr: optax.sgd(lr))
    with jax.enable_x64(True):
        model, method, vae, extra, params, x, y = _replay_setup()
        extra = jax.tree.map(lambda a: 0.3 * a if a.dtype.kind == "f" else a, extra)
        X = jax.random.uniform(jax.random.key(8), (9, 6), jnp.float64)
        yt = jnp.array([2, 3, 2, 3, 2, 3, 2, 3, 2])
        key, t, cfg = jax.random.key(11), 2, G.ReplayConfig(latent=2, hidden=5, steps=1)
        _, new = method.after_task(params, extra, key, t, (X, yt, 7), None, None)
        np.testing.assert_array_equal(new["seen"], [False, False, True, True])
        assert new["solver"] is params

        k1, k2, k3, k4 = jax.random.split(jax.random.split(key, 1)[0], 4)
        xb = X[jax.random.randint(k1, (cfg.batch,), 0, 7)]  # real rows only (n_t = 7)
        xr = G.sample_dreams(vae, extra["gen"], k2, cfg.batch)

        def documented(g):
            b = cfg.kl_weight
            return (G.vae_loss(vae, g, xb, k3, b) + t * G.vae_loss(vae, g, xr, k4, b)) / (t + 1)

        grad = jax.jit(jax.grad(documented))(extra["gen"])  # one compile, not op by op
        want = jax.tree.map(lambda p, g: p - cfg.lr * g, extra["gen"], grad)
        for a, b in zip(jax.tree.leaves(new["gen"]), jax.tree.leaves(want)):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-12, atol=1e-15)


# ------------------------------------------------------------------------------------ dreams


def _net(seed=0):
    model = mlp([12, 8, 4], "relu")
    return model, model.init(jax.random.key(seed), (-1, 16))[1]


def _net64(seed=0):  # inside jax.enable_x64
    model, params = _net(seed)
    return model, jax.tree.map(lambda a: a.astype(jnp.float64), params)


def _np_layers(params, x):
    """(logits, [(pre-activation, activation) of each hidden layer]) of the ReLU MLP."""
    Ws = [(np.asarray(p["W"]), np.asarray(p["b"])) for p in params if "W" in p]
    hidden = []
    for W, b in Ws[:-1]:
        z = x @ W + b
        x = np.maximum(z, 0.0)
        hidden.append((z, x))
    return x @ Ws[-1][0] + Ws[-1][1], hidden


def _np_backprop(params, x, layer, g):
    """grad_x of (g . a_layer(x)) (or of g . logits for layer = -1) by the chain rule."""
    Ws = [np.asarray(p["W"]) for p in params if "W" in p]
    _, hidden = _np_layers(params, x)
    top = len(Ws) - 1 if layer == -1 else layer
    if layer != -1:
        g = g * (hidden[layer][0] > 0)
    for i in range(top, 0, -1):
        g = (Ws[i] @ g) * (hidden[i - 1][0] > 0)
    return Ws[0] @ g


def _np_roll(x, shifts):
    return np.roll(x.reshape(4, 4), tuple(int(s) for s in shifts), axis=(0, 1)).ravel()


def test_activation_maximisation_against_numpy_with_jitter_and_backtracking():
    """x <- roll^-1(roll(x) + eta 2^-j grad J_c(roll(x))), j the first that raises
    J_c(x) = f_c(x) - (l2/2)|x|^2 at the un-jittered image, else x stays; in float64."""
    with jax.enable_x64(True):
        model, params = _net64()
        x0 = np.asarray(jax.random.uniform(jax.random.key(3), (16,), jnp.float64))
        key, c, lr, l2, steps = jax.random.key(9), 2, 0.3, 0.1, 6
        got_x, got_h = D.activation_maximisation(
            model.apply, params, jnp.asarray(x0), c, key, image_shape=(4, 4), steps=steps,
            lr=lr, l2=l2, jitter=1, backtrack=4,
        )  # fmt: skip
        J = lambda x: _np_layers(params, x)[0][c] - 0.5 * l2 * x @ x  # noqa: E731
        x, hist = x0, [J(x0)]
        for k in jax.random.split(key, steps):
            shifts = np.asarray(jax.random.randint(k, (2,), -1, 2))
            xj = _np_roll(x, shifts)
            g = _np_backprop(params, xj, -1, np.eye(4)[c]) - l2 * xj
            for f in 2.0 ** -np.arange(5):
                cand = _np_roll(xj + f * lr * g, -shifts)
                if J(cand) > hist[-1]:
                    x = cand
                    break
            hist.append(J(x))
        np.testing.assert_allclose(np.asarray(got_x), x, atol=1e-10)
        np.testing.assert_allclose(np.asarray(got_h), hist, atol=1e-10)
        assert len(set(np.round(np.diff(hist), 12))) > 1  # not a run that never moved


def test_deep_dream_against_numpy_with_octaves_smoothness_and_clip():
    """J(x) = |a_l|^2 / (2 n_l) - (s/2) sum_{i~j} (x_i - x_j)^2; each step
    x <- clip(x + eta G / mean|G|), G = up_s(P_s roll^-1(grad J(roll x))); in float64."""
    with jax.enable_x64(True):
        _, params = _net64(seed=1)
        x0 = np.asarray(jax.random.uniform(jax.random.key(3), (16,), jnp.float64))
        key, smooth, lr, steps = jax.random.key(4), 0.2, 0.05, 3

        def J(x):
            a, img = _np_layers(params, x)[1][1][1], x.reshape(4, 4)
            tv = (np.diff(img, axis=0) ** 2).sum() + (np.diff(img, axis=1) ** 2).sum()
            return 0.5 * (a**2).mean() - 0.5 * smooth * tv

        def grad(x):
            a = _np_layers(params, x)[1][1][1]
            img, gs = x.reshape(4, 4), np.zeros((4, 4))
            for axis in (0, 1):
                dv = np.diff(img, axis=axis)
                lo, hi = [slice(None)] * 2, [slice(None)] * 2
                lo[axis], hi[axis] = slice(1, None), slice(None, -1)
                gs[tuple(lo)] += dv
                gs[tuple(hi)] -= dv
            return _np_backprop(params, x, 1, a / a.size) - smooth * gs.ravel()

        e = np.eye(16) * 1e-6  # the hand gradient against central differences
        fd = np.array([(J(x0 + e[i]) - J(x0 - e[i])) / 2e-6 for i in range(16)])
        np.testing.assert_allclose(grad(x0), fd, atol=1e-8)
        got_x, got_h = D.deep_dream(
            D.relu_mlp_layer(1), params, jnp.asarray(x0), key, image_shape=(4, 4), steps=steps,
            lr=lr, octaves=(2, 1), jitter=1, smooth=smooth, clip=(0.0, 1.0),
        )  # fmt: skip
        x, hist = x0, [J(x0)]
        for s, k in zip((2, 1), jax.random.split(key, 2)):
            for kk in jax.random.split(k, steps):
                shifts = np.asarray(jax.random.randint(kk, (2,), -1, 2))
                g = _np_roll(grad(_np_roll(x, shifts)), -shifts).reshape(4, 4)
                if s == 2:
                    g = np.kron(g.reshape(2, 2, 2, 2).sum(axis=(1, 3)), np.ones((2, 2)))
                g = g.ravel()
                x = np.clip(x + lr * g / (np.abs(g).mean() + 1e-12), 0.0, 1.0)
                hist.append(J(x))
        np.testing.assert_allclose(np.asarray(got_x), x, atol=1e-10)
        np.testing.assert_allclose(np.asarray(got_h), hist, atol=1e-10)


def test_deep_dream_takes_numpy_int_octaves():
    """Finding: octaves=(np.int64(2), 1) was refused ("octaves must be positive ints") while
    image_shape takes NumPy ints; it is the same run as (2, 1)."""
    model, params = _net()
    x0, k = jax.random.uniform(jax.random.key(3), (16,)), jax.random.key(1)
    run = lambda o: D.deep_dream(D.relu_mlp_layer(1), params, x0, k, image_shape=(4, 4),  # noqa: E731
                                 steps=2, octaves=o)  # fmt: skip
    for a, b in zip(run((np.int64(2), np.int32(1))), run((2, 1))):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


@pytest.mark.parametrize("octaves", [iter(()), (), [], np.int64(2), "21", None])
def test_deep_dream_refuses_no_octave(octaves):
    """Finding: an empty iterator passed the non-empty check (an iterator is truthy) and the
    dream ran no step, returning x0 and a one-entry history."""
    model, params = _net()
    x0 = jax.random.uniform(jax.random.key(3), (16,))
    with pytest.raises(ValueError, match="deep_dream: octaves must be a non-empty sequence"):
        D.deep_dream(D.relu_mlp_layer(1), params, x0, jax.random.key(1), image_shape=(4, 4),
                     steps=2, octaves=octaves)  # fmt: skip


def test_dream_all_classes_names_a_wrong_sized_start():
    """Finding: an x0 of 15 values for 16 inputs failed in the network's first layer
    ("layer 0 (Dense(12)): expected input of shape (..., 16)"), naming neither the function
    nor x0."""
    model, params = _net()
    with pytest.raises(ValueError, match=r"dream_all_classes: x0 must have shape \(16,\), got"):
        D.dream_all_classes(model.apply, params, jnp.zeros(15), jax.random.key(0), 4,
                            image_shape=(4, 4), steps=1)  # fmt: skip


def test_every_class_and_every_step_draws_its_own_jitter():
    """The key is split per class and per step: class c of dream_all_classes is
    activation_maximisation with the c-th split key, and the per-step shifts are not all equal."""
    model, params = _net()
    x0, key = jnp.full((16,), 0.5), jax.random.key(2)
    xs, hs = D.dream_all_classes(model.apply, params, x0, key, 4, image_shape=(4, 4), steps=4)
    # one compile for the four classes: the class and its key are traced arguments (documented
    # as jit-able); eager, each call compiled its own scan
    one = jax.jit(lambda c, k: D.activation_maximisation(model.apply, params, x0, c, k,
                                                         image_shape=(4, 4), steps=4))  # fmt: skip
    for c, k in enumerate(jax.random.split(key, 4)):
        x, h = one(c, k)
        np.testing.assert_allclose(np.asarray(xs[c]), np.asarray(x), atol=1e-6)
    shifts = [tuple(np.asarray(jax.random.randint(k, (2,), -1, 2)))
              for k in jax.random.split(jax.random.split(key, 4)[0], 4)]  # fmt: skip
    assert len(set(shifts)) > 1
