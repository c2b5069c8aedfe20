"""Optimizers by name through Optax; validation of hyperparameters."""

import jax.numpy as jnp
import numpy as np
import optax
import pytest

from nnjax.optim import OPTIMIZERS, get_optimizer, injectable_optimizer


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_every_optimizer_decreases_a_quadratic(name):
    opt = get_optimizer(name, 0.05)
    p = {"w": jnp.array([3.0, -2.0])}
    state = opt.init(p)
    for _ in range(100):
        g = {"w": 2 * p["w"]}
        u, state = opt.update(g, state, p)
        p = optax.apply_updates(p, u)
    assert float(jnp.sum(p["w"] ** 2)) < 13.0 * 0.5


def test_gd_first_step_is_minus_lr_times_gradient():
    opt = get_optimizer("gd", 0.1)
    p = {"w": jnp.array([1.0])}
    u, _ = opt.update({"w": jnp.array([4.0])}, opt.init(p), p)
    np.testing.assert_allclose(u["w"], [-0.4])


def test_schedules_and_transformations_are_accepted():
    sched = optax.linear_schedule(0.1, 0.0, 10)
    opt = get_optimizer("sgd", sched)
    p = {"w": jnp.array([1.0])}
    u, _ = opt.update({"w": jnp.array([1.0])}, opt.init(p), p)
    np.testing.assert_allclose(u["w"], [-0.1])
    tx = optax.lion(1e-3)
    assert get_optimizer(tx) is tx


def test_injectable_learning_rate_matches_plain():
    p = {"w": jnp.array([1.0, 2.0])}
    g = {"w": jnp.array([0.5, -1.0])}
    a = injectable_optimizer("adam", 0.01)
    b = get_optimizer("adam", 0.01)
    ua, _ = a.update(g, a.init(p), p)
    ub, _ = b.update(g, b.init(p), p)
    np.testing.assert_allclose(ua["w"], ub["w"], rtol=1e-6)


@pytest.mark.parametrize(
    "args, kwargs, match",
    [
        (("adam", 0.0), {}, "learning_rate must be > 0"),
        (("sgd", -1.0), {}, "learning_rate must be > 0"),
        (("sgd", float("nan")), {}, "learning_rate must be > 0"),
        (("adam", "fast"), {}, "positive float or an optax schedule"),
        (("momentum", 0.1), {"momentum": 1.0}, "momentum must be in \\[0, 1\\)"),
        (("nesterov", 0.1), {"momentum": -0.1}, "momentum must be in \\[0, 1\\)"),
        (("adam", 0.1), {"b2": 1.5}, "b2 must be in"),
        (("adamw", 0.1), {"weight_decay": -1}, "adamw: weight_decay must be a finite number >= 0"),
        (("adamw", 0.1), {"weight_decay": float("nan")}, "weight_decay must be a finite number"),
        (("adamw", 0.1), {"weight_decay": float("inf")}, "weight_decay must be a finite number"),
        # an infinite eps made every update 0: nothing trained, silently
        (("adam", 0.1), {"eps": float("inf")}, "adam: eps must be a finite number > 0, got inf"),
        (("rmsprop", 0.1), {"eps": 0.0}, "rmsprop: eps must be a finite number > 0"),
        (
            ("adagrad", 0.1),
            {"initial_accumulator_value": float("nan")},
            "adagrad: initial_accumulator_value must be a finite number >= 0, got nan",
        ),
        (("rmsprop", 0.1), {"decay": 1.0}, "decay must be in"),
        (("adam", 0.1), {"beta": 0.9}, "bad hyperparameters"),
        (("adamm", 0.1), {}, "unknown optimizer 'adamm'.*gd, sgd, momentum"),
        (("adam",), {}, "needs a learning_rate"),
    ],
)
def test_bad_hyperparameters_raise(args, kwargs, match):
    with pytest.raises(ValueError, match=match):
        get_optimizer(*args, **kwargs)


@pytest.mark.parametrize(
    "name, kwargs",
    [
        ("adam", {"eps": float("inf")}),
        ("rmsprop", {"eps": float("nan")}),
        ("adamw", {"weight_decay": float("inf")}),
        ("adamw", {"weight_decay": float("nan")}),
        ("adagrad", {"initial_accumulator_value": float("inf")}),
        ("adagrad", {"initial_accumulator_value": float("nan")}),
    ],
)
def test_numpy_twin_refuses_what_nnjax_refuses(name, kwargs):
    """Review: the NumPy twins took an infinite eps (every update 0), a nan or infinite
    weight decay and accumulator that nnjax.optim refuses; both now refuse them."""
    from nnjax.reference import optim as RO

    with pytest.raises(ValueError, match="must be a finite number"):
        get_optimizer(name, 0.1, **kwargs)
    with pytest.raises(ValueError, match="must be a finite number"):
        RO.get(name, 0.1, **kwargs)
