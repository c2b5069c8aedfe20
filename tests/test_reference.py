"""The NumPy twin: its own derivatives vs finite differences, and twin vs JAX/Optax/fit."""

import ast
import pathlib

import jax
import jax.numpy as jnp
import jax.test_util
import numpy as np
import optax
import pytest

import nnjax
from nnjax import verify as V
from nnjax.reference import activations as RA
from nnjax.reference import layers as RLay
from nnjax.reference import losses as RL
from nnjax.reference import optim as RO
from nnjax.reference.mlp import logistic_regression, mlp
from nnjax.reference.train import train

REFERENCE_DIR = pathlib.Path(RA.__file__).parent


def _assert_rows_pass(rows):
    bad = [f"{r.component}: abs {r.max_abs:.2e} rel {r.max_rel:.2e}" for r in rows if not r.passed]
    assert rows and not bad, "\n".join(bad)


def _fd(f, z, h=1e-6):
    return (f(z + h) - f(z - h)) / (2 * h)


# --- every public name has a twin -----------------------------------------------------


def test_every_public_name_has_a_twin():
    walks = (
        (nnjax.activations.ACTIVATIONS, RA.ACTIVATIONS),
        (nnjax.losses.LOSSES, RL.LOSSES),
        (nnjax.layers.LAYERS, RLay.LAYERS),
        (nnjax.optim.OPTIMIZERS, RO.OPTIMIZERS),
    )
    for public, twins in walks:
        missing = sorted(set(public) - set(twins))
        assert not missing, f"no NumPy twin for {missing}"
    for name in nnjax.activations.ACTIVATIONS:
        f, df = RA.ACTIVATIONS[name]
        assert callable(f) and callable(df), name
    for name in nnjax.losses.LOSSES:
        value, grad = RL.LOSSES[name]
        assert callable(value) and callable(grad), name
    _assert_rows_pass(V.check_registries())


def test_registry_check_fails_on_a_missing_twin(monkeypatch):
    monkeypatch.setitem(nnjax.activations.ACTIVATIONS, "mish", lambda z: z)
    rows = V.check_registries()
    assert not rows[0].passed and "mish" in rows[0].component


def test_reference_imports_nothing_from_jax():
    for path in REFERENCE_DIR.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            for n in names:
                top = n.split(".")[0]
                assert top not in ("jax", "jaxlib", "optax", "flax", "equinox"), (path, n)
                assert top != "nnjax" or n.startswith("nnjax.reference"), (path, n)


# --- the ReLU derivative ----------------------------------------------------------------


def test_relu_derivative_is_the_step_and_max0z_fails_finite_differences():
    z = np.random.default_rng(0).uniform(-3.0, 3.0, 500)
    z = z[np.abs(z) > 1e-3]
    fd = _fd(RA.relu, z)
    np.testing.assert_allclose(RA.relu_derivative(z), fd, rtol=1e-8, atol=1e-8)
    wrong = RA.relu_derivative_wrong(z)
    assert not np.allclose(wrong, fd, rtol=1e-3, atol=1e-3)
    np.testing.assert_array_equal(wrong, RA.relu(z))  # it is ReLU itself
    # the convention at the kink: 0, the value jax.grad gives
    assert RA.relu_derivative(0.0) == 0.0 == float(jax.grad(jax.nn.relu)(0.0))
    assert RA.ACTIVATIONS["relu"][1] is RA.relu_derivative
    _assert_rows_pass(V.check_relu_derivative(np.random.default_rng(1)))


# --- the twin's own derivatives vs finite differences ------------------------------------


@pytest.mark.parametrize("name", sorted(RA.ACTIVATIONS))
def test_activation_derivative_vs_finite_differences(name):
    rng = np.random.default_rng(0)
    z = rng.normal(0.0, 2.0, (6, 4))
    z = np.where(np.abs(z) < 1e-3, 0.5, z)  # away from the kinks of relu and friends
    f, df = RA.ACTIVATIONS[name]
    dout = rng.normal(size=z.shape)
    if name in RA.NOT_ELEMENTWISE:
        K = z.shape[-1]
        jac = np.stack([_fd(lambda t, j=j: f(z + t * np.eye(K)[j]), 0.0) for j in range(K)])
        np.testing.assert_allclose(df(z), np.moveaxis(jac, 0, -1), atol=1e-8)
        np.testing.assert_allclose(RA.vjp(name, z, dout), np.einsum("bi,bij->bj", dout, df(z)))
    else:
        np.testing.assert_allclose(df(z), _fd(f, z), rtol=1e-7, atol=1e-9)
        np.testing.assert_allclose(RA.vjp(name, z, dout), dout * df(z))


def test_activations_are_stable_for_huge_inputs():
    z = np.array([-1e4, -800.0, 0.0, 800.0, 1e4])
    for name, (f, df) in RA.ACTIVATIONS.items():
        with np.errstate(over="raise", invalid="raise", divide="raise"):  # underflow is fine
            assert np.isfinite(f(z)).all() and np.isfinite(df(z)).all(), name


@pytest.mark.parametrize("loss", sorted(RL.LOSSES))
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_loss_gradient_vs_finite_differences(loss, reduction):
    rng = np.random.default_rng(1)
    value, grad = RL.LOSSES[loss]
    if loss == "binary_cross_entropy":
        pred, target = rng.uniform(0.05, 0.95, (7, 1)), rng.integers(0, 2, 7).astype(float)
    elif loss == "softmax_cross_entropy":
        pred, target = rng.normal(size=(7, 4)), rng.integers(0, 4, 7)
    else:
        pred, target = rng.normal(size=(7, 3)), rng.integers(0, 2, (7, 3)).astype(float)
    J = lambda p: np.sum(value(p, target, reduction))
    fd = np.zeros_like(pred)
    for i in np.ndindex(pred.shape):
        e = np.zeros_like(pred)
        e[i] = 1.0
        fd[i] = _fd(lambda t, e=e: J(pred + t * e), 0.0)
    g = grad(pred, target, reduction)
    assert g.shape == pred.shape
    np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-9)


def test_binary_cross_entropy_clips_probabilities_like_nnjax():
    eps = np.finfo(np.float64).eps
    p = np.array([[0.0], [1.0], [0.3], [1.0], [1.0 - eps]])
    t = np.array([0.0, 1.0, 1.0, 0.0, 0.0])
    value, grad = RL.LOSSES["binary_cross_entropy"]
    assert np.isfinite(value(p, t))
    # beyond the clip: the gradient at the bound (the right target: about -+1; the wrong
    # one: 1/eps), never 0; at the bound 1 - eps itself: the exact 1 / (1 - p)
    want = [1 / (1 - eps), -1 / (1 - eps), -1 / 0.3, 1 / eps, 1 / eps]
    np.testing.assert_allclose(grad(p, t, "sum")[:, 0], want, rtol=1e-15)


# --- twin vs JAX, component by component --------------------------------------------------


def test_activations_match_jax():
    _assert_rows_pass(V.check_activations(np.random.default_rng(0)))


def test_losses_match_jax_including_extreme_logits():
    rows = V.check_losses(np.random.default_rng(0))
    assert any("extreme" in r.component for r in rows)
    _assert_rows_pass(rows)


def test_layers_match_jax():
    _assert_rows_pass(V.check_layers(np.random.default_rng(0)))


def test_mlp_gradients_vs_finite_differences():
    rows = V.check_finite_differences(np.random.default_rng(0))
    assert len(rows) == len(nnjax.activations.ACTIVATIONS)
    _assert_rows_pass(rows)


def test_jax_mlp_passes_check_grads_and_matches_the_twin():
    """jax.test_util.check_grads on the JAX side, then the twin on the same problem."""
    arch = V.Arch(3, (5, 2), 4, "gelu", None, "softmax_cross_entropy", "labels")
    params, X, y = V.make_problem(arch, np.random.default_rng(2))
    model, _ = V.models(arch)
    with jax.enable_x64(True):
        f = jax.jit(lambda p: nnjax.losses.softmax_cross_entropy(model.apply(p, X), y))
        jax.test_util.check_grads(f, (params,), order=1, modes=["rev"])
    _assert_rows_pass(V.compare_mlp(arch, 2))


def _params_like(layer, input_shape, rng):
    """Random NumPy params with exactly the structure ``layer.init`` gives (no PRNG compile)."""
    shapes = jax.eval_shape(lambda: layer.init(jax.random.key(0), input_shape)[1])
    return jax.tree.map(lambda s: rng.normal(size=s.shape), shapes)


def test_logistic_regression_twin_matches_jax():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(9, 4))
    y = (X[:, 0] > 0).astype(np.float64)
    model = nnjax.logistic_regression(4)
    params = _params_like(model, X.shape, rng)
    assert set(params) == {"W", "b"} and params["W"].shape == (4, 1) and params["b"].shape == (1,)
    with jax.enable_x64(True):
        loss = lambda p: nnjax.losses.binary_cross_entropy_with_logits(model.apply(p, X), y)
        g = jax.grad(loss)(params)
    forward, backward = logistic_regression(4)
    out, cache = forward(params, X)
    _, g_ref = backward(RL.binary_cross_entropy_with_logits_grad(out, y), cache)
    _assert_rows_pass([V.check("logistic regression grads", g, g_ref, V.RTOL64)])


def test_twin_sizes_refuse_bools_and_take_numpy_ints():
    """Review: logistic_regression(True) built a 1-feature twin and mlp([4, True]) a 1-unit
    layer; NumPy ints (sizes from a computation) were refused."""
    with pytest.raises(ValueError, match=r"logistic_regression: n_features must be an int >= 1"):
        logistic_regression(True)
    with pytest.raises(ValueError, match=r"mlp: sizes must be a non-empty list of positive ints"):
        mlp([4, True])
    forward, _ = logistic_regression(np.int64(3))
    out, _ = forward({"W": np.ones((3, 1)), "b": np.zeros(1)}, np.ones((2, 3)))
    np.testing.assert_array_equal(out, np.full((2, 1), 3.0))
    forward, _ = mlp([np.int64(2)], "relu")
    out, _ = forward([{"W": np.ones((3, 2)), "b": np.zeros(2)}], np.ones((1, 3)))
    np.testing.assert_array_equal(out, np.full((1, 2), 3.0))


@pytest.mark.parametrize("use_bias", [True, False])
def test_mlp_params_structure_is_nnjax_mlp(use_bias):
    sizes, act, out_act = [7, 3], "tanh", "softmax"
    params = _params_like(
        nnjax.mlp(sizes, act, out_act, use_bias=use_bias), (-1, 5), np.random.default_rng(0)
    )
    assert len(params) == 4 and params[1] == {} and params[3] == {}
    forward, backward = mlp(sizes, act, out_act, use_bias=use_bias)
    out, cache = forward(params, np.ones((2, 5)))
    dx, grads = backward(np.ones_like(out), cache)
    assert jax.tree.structure(grads) == jax.tree.structure(params)
    assert out.shape == (2, 3) and dx.shape == (2, 5)


# --- optimizers ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(nnjax.optim.OPTIMIZERS))
def test_optimizer_200_step_trajectory_matches_optax(name):
    jp, rp = V.optimizer_trajectory(name, steps=200)
    _assert_rows_pass([V.check(f"{name} trajectory", jp, rp, V.TRAJ_ATOL, "abs")])


@pytest.mark.parametrize(
    "name, hyperparams",
    [
        ("momentum", {"momentum": 0.5}),
        ("nesterov", {"momentum": 0.99}),
        ("adam", {"b1": 0.5, "b2": 0.9, "eps": 1e-3}),
        ("adamw", {"weight_decay": 0.1}),
        ("adamw", {"weight_decay": 0.0}),
        ("rmsprop", {"decay": 0.5, "eps": 1e-2}),
        ("adagrad", {"initial_accumulator_value": 0.0, "eps": 1e-3}),
    ],
)
def test_optimizer_hyperparameters_match_optax(name, hyperparams):
    jp, rp = V.optimizer_trajectory(name, steps=50, learning_rate=0.05, **hyperparams)
    _assert_rows_pass([V.check(f"{name} {hyperparams}", jp, rp, V.TRAJ_ATOL, "abs")])


def test_optimizer_with_a_schedule_matches_optax():
    sched = optax.exponential_decay(0.05, transition_steps=10, decay_rate=0.5)
    jp, rp = V.optimizer_trajectory("momentum", steps=60, learning_rate=sched)
    _assert_rows_pass([V.check("momentum schedule", jp, rp, V.TRAJ_ATOL, "abs")])


def test_rmsprop_and_adagrad_put_eps_inside_the_sqrt():
    """Optax 0.2.8: rmsprop g / sqrt(s + eps) (eps_in_sqrt=True), adagrad likewise."""
    p = {"w": np.array([1.0])}
    g = {"w": np.array([1e-3])}
    for name, s in (("rmsprop", 0.1 * 1e-6), ("adagrad", 0.1 + 1e-6)):
        init, update = RO.OPTIMIZERS[name](1.0, eps=0.5)
        new, _ = update(g, init(p), p)
        np.testing.assert_allclose(1.0 - new["w"], 1e-3 / np.sqrt(s + 0.5))


def test_optimizer_update_keeps_tree_structure_and_dtype():
    init, update = RO.OPTIMIZERS["adam"](0.1)
    params = {"a": [np.ones(2, np.float32)], "b": (np.zeros((1, 2), np.float32),)}
    new, state = update(RO.tree_map(np.ones_like, params), init(params), params)
    assert isinstance(new["a"], list) and isinstance(new["b"], tuple)
    assert new["a"][0].dtype == np.float32 and state["count"] == 1


# --- training loop -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "optimizer, batch_size, epochs",
    [("sgd", 16, 4), ("nesterov", 10, 3), ("adam", 16, 4), ("gd", None, 10)],
)
def test_fit_matches_reference_train_step_by_step(optimizer, batch_size, epochs):
    fit_params, ref_params, fit_losses, ref_losses = V.compare_fit(optimizer, batch_size, epochs)
    steps = epochs * (1 if batch_size is None else 48 // batch_size)
    assert fit_losses.shape == ref_losses.shape == (steps,)
    _assert_rows_pass(
        [
            V.check("losses", fit_losses, ref_losses, V.TRAJ_ATOL, "abs"),
            V.check("params", fit_params, ref_params, V.TRAJ_ATOL, "abs"),
        ]
    )


def test_float32_agrees_within_the_documented_tolerance():
    rows = V.check_float32(np.random.default_rng(0))
    _assert_rows_pass(rows)
    assert all(r.max_abs > 0 for r in rows)  # float32 really ran


def test_train_rejects_mismatched_data():
    forward, backward = mlp([2])
    with pytest.raises(ValueError, match="examples"):
        params = [{"W": np.ones((3, 2)), "b": np.zeros(2)}]
        train(forward, backward, params, np.ones((4, 3)), np.zeros(5), loss="mse",
              optimizer="sgd", learning_rate=0.1, batch_indices=[None])  # fmt: skip


# --- clear errors ----------------------------------------------------------------------


def test_reference_errors_name_the_culprit():
    with pytest.raises(ValueError, match="unknown activation 'swish'"):
        RA.vjp("swish", np.zeros(2), np.zeros(2))
    with pytest.raises(ValueError, match="unknown loss"):
        RL.get("hinge")
    with pytest.raises(ValueError, match="do not fit"):
        RL.mse(np.zeros((3, 2)), np.zeros(3))
    with pytest.raises(ValueError, match="labels"):
        RL.softmax_cross_entropy(np.zeros((3, 2)), np.array([0, 1, 2]))
    with pytest.raises(ValueError, match=r"labels must be in \[0, 3\)"):
        RL.softmax_cross_entropy_grad(np.zeros((2, 3)), np.array([0, -1]))
    with pytest.raises(ValueError, match="unknown optimizer"):
        RO.get("lion", 0.1)
    with pytest.raises(ValueError, match="bad hyperparameters"):
        RO.get("adam", 0.1, beta1=0.9)
    with pytest.raises(ValueError, match="Dense: expected input"):
        RLay.dense_forward({"W": np.ones((3, 2))}, np.ones((4, 5)))
    with pytest.raises(ValueError, match="layer 1"):
        RLay.serial(RLay.flatten(), RLay.dense(2)).forward([{}, {"W": np.ones((3, 2))}],
                                                           np.ones((4, 5, 1)))  # fmt: skip
    with pytest.raises(ValueError, match="params entries"):
        mlp([4, 2])[0]([{"W": np.ones((3, 4)), "b": np.zeros(4)}], np.ones((1, 3)))
    with pytest.raises(ValueError, match="mask shape"):
        RLay.dropout(0.5, np.ones((2, 2), bool)).forward({}, np.ones((3, 2)))


def test_dropout_twin_is_inverted_dropout_with_the_fixed_mask():
    x = jnp.arange(1.0, 9.0).reshape(2, 4)
    keep = np.array([[1, 0, 1, 1], [0, 0, 1, 0]], bool)
    out, cache = RLay.dropout(0.25, keep).forward({}, np.asarray(x))
    np.testing.assert_allclose(out, np.where(keep, np.asarray(x) / 0.75, 0.0))
    dx, grads = RLay.dropout(0.25, keep).backward(np.ones((2, 4)), cache)
    np.testing.assert_allclose(dx, keep / 0.75)
    assert grads == {}
    np.testing.assert_array_equal(RLay.dropout(0.25).forward({}, np.asarray(x))[0], x)


@pytest.mark.parametrize("name", ["cosine", "warmup-cosine", "exponential"])
def test_nnjax_schedules_match_the_twin_exactly_in_float64(name):
    """Review: Optax calls a schedule with an int32 count, and its exponential and
    warmup-cosine schedules then computed in float32 even under x64: sgd's params were
    1.4e-8 from the twin's after 30 steps. nnjax.optim.make_schedule's run in float64."""
    from nnjax.reference import optim as R

    with jax.enable_x64(True):
        sched = nnjax.optim.make_schedule(name, 0.05, total_steps=30, steps_per_epoch=7)
        opt, (init, update) = optax.sgd(sched), R.sgd(sched)
        P, RP = {"w": jnp.array([1.0, -2.0])}, {"w": np.array([1.0, -2.0])}
        state, rstate = opt.init(P), init(RP)
        for t in range(30):
            g = np.array([0.3, -0.1]) * (t + 1)
            u, state = opt.update({"w": jnp.asarray(g)}, state, P)
            P = optax.apply_updates(P, u)
            RP, rstate = update({"w": g}, rstate, RP)
        assert P["w"].dtype == jnp.float64
        np.testing.assert_array_equal(np.asarray(P["w"]), RP["w"])
    for t in (0, 3, 29):  # float32: the rates of Optax's own schedule, bit for bit
        raw = {"cosine": optax.cosine_decay_schedule(0.05, 30),
               "warmup-cosine": optax.warmup_cosine_decay_schedule(0.0, 0.05, 2, 30, 0.0),
               "exponential": optax.exponential_decay(0.05, 7, 0.95)}[name]  # fmt: skip
        got = nnjax.optim.make_schedule(name, 0.05, total_steps=30, steps_per_epoch=7)
        assert got(jnp.int32(t)) == raw(jnp.int32(t)) and got(jnp.int32(t)).dtype == jnp.float32
