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


def test_schedule_step_counts_are_ints_and_warmup_cosine_needs_two_steps():
    """review: total_steps=np.int64(10) was refused and True taken as 1; steps_per_epoch 0
    or -3 ran as 1; warmup-cosine over a one-step run (``nnjax train --epochs 1 --schedule
    warmup-cosine`` on a full-batch set) ended in Optax's 'requires positive decay_steps'."""
    from nnjax.optim import make_schedule

    cos = make_schedule("cosine", 0.1, total_steps=np.int64(10))
    np.testing.assert_allclose(float(cos(5)), 0.1 * (1 + np.cos(np.pi * 5 / 10)) / 2, rtol=1e-6)
    for kw, name in [
        (dict(total_steps=True), "total_steps"),
        (dict(total_steps=10, steps_per_epoch=0), "steps_per_epoch"),
        (dict(total_steps=10, steps_per_epoch=-3), "steps_per_epoch"),
        (dict(total_steps=10, steps_per_epoch=2.0), "steps_per_epoch"),
    ]:
        with pytest.raises(ValueError, match=f"schedule: {name} must be an int >= 1, got"):
            make_schedule("exponential", 0.1, **kw)
    with pytest.raises(ValueError, match="warmup-cosine: the run has 1 step.*at least 2"):
        make_schedule("warmup-cosine", 0.1, total_steps=1)
    two = make_schedule("warmup-cosine", 0.1, total_steps=2)  # W = 1: eta_0 = 0, eta_1 = peak
    np.testing.assert_allclose([float(two(0)), float(two(1))], [0.0, 0.1], rtol=1e-6)


@pytest.mark.parametrize("bad", [True, "0.1", float("nan"), -1.0, [0.1]])
def test_weight_decay_must_be_a_finite_number(bad):
    """review: "0.1" ended in a TypeError from a comparison, True became lambda = 1."""
    from nnjax.optim import with_weight_decay

    with pytest.raises(ValueError, match="weight_decay must be a finite number >= 0, got"):
        with_weight_decay("sgd", 0.1, bad)
    opt = with_weight_decay("sgd", 0.1, np.float32(0.5))  # NumPy numbers are numbers
    assert opt.recipe["weight_decay"] == 0.5
