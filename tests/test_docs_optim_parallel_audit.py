"""The claims of docs/optimizers.md, docs/parallel.md and nnjax.optim's docstrings, held
against the code: each update equation computed by hand in NumPy (float64, one step after
another, to 1e-12), the NumPy twin, the schedules, the default grids and presets the docs
quote, the uneven-batch message the docs print; and two defects an audit found:

* ``make_schedule`` took a schedule as its peak rate and returned a schedule that failed
  with a bare ``TypeError`` (function times array) at the first step;
* a learning rate that is 0 in the params' float dtype (1e-50, 1e-39 in float32) was taken,
  and ``fit`` trained for its epochs without moving the params at all.
"""

import os
import re

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import nnjax
from nnjax import optim, parallel
from nnjax.optim_checks import SMALLEST_RATE, check_rate_nonzero
from nnjax.reference import optim as twin

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ETA = 0.05


def _data():
    rng = np.random.default_rng(0)
    return rng.normal(size=5), [rng.normal(size=5) for _ in range(4)]


def _run(opt, theta, grads):
    """The params after each step of ``opt`` with the gradients ``grads`` (float64)."""
    p = jnp.asarray(theta)
    state, out = opt.init(p), []
    for g in grads:
        u, state = opt.update(jnp.asarray(g), state, p)
        p = optax.apply_updates(p, u)
        out.append(np.asarray(p))
    return out


def _by_hand(name, theta, grads, wd=0.0, mu=0.9, b1=0.9, b2=0.999, eps=None):
    """The update equations of docs/optimizers.md and the nnjax.optim docstring, written
    out: L2 weight decay ``wd`` on the gradient, except adam/adamw (decoupled, times eta)."""
    p, v, m, s, out = theta.copy(), np.zeros(5), np.zeros(5), np.zeros(5), []
    if name == "adagrad":
        s = np.full(5, 0.1)
    for t, g in enumerate(grads, 1):
        if name not in ("adam", "adamw"):
            g = g + wd * p
        if name in ("gd", "sgd"):
            p = p - ETA * g
        elif name in ("momentum", "nesterov"):
            v = mu * v + g  # heavy ball: the velocity sums raw gradients
            p = p - ETA * ((g + mu * v) if name == "nesterov" else v)
        elif name in ("adam", "adamw"):
            m, s = b1 * m + (1 - b1) * g, b2 * s + (1 - b2) * g * g
            mh, sh = m / (1 - b1**t), s / (1 - b2**t)
            p = p - ETA * (mh / (np.sqrt(sh) + (eps or 1e-8)) + wd * p)  # eps outside
        elif name == "rmsprop":
            s = 0.9 * s + 0.1 * g * g
            p = p - ETA * g / np.sqrt(s + (eps or 1e-8))  # eps inside the root
        else:  # adagrad
            s = s + g * g
            p = p - ETA * g / np.sqrt(s + (eps or 1e-7))
        out.append(p.copy())
    return out


def _maxdiff(a, b):
    return max(float(np.max(np.abs(x - y))) for x, y in zip(a, b, strict=True))


@pytest.mark.parametrize("name", list(optim.OPTIMIZERS))
def test_update_equations_hold_to_1e12_in_float64(name):
    theta, grads = _data()
    with jax.enable_x64(True):
        ours = _run(optim.get_optimizer(name, ETA), theta, grads)
        hand = _by_hand(name, theta, grads, wd=1e-4 if name == "adamw" else 0.0)
        assert _maxdiff(ours, hand) < 1e-12
        if name in ("adam", "rmsprop", "adagrad"):  # a large eps shows where it goes
            ours = _run(optim.get_optimizer(name, ETA, eps=0.3), theta, grads)
            assert _maxdiff(ours, _by_hand(name, theta, grads, eps=0.3)) < 1e-12
        # the NumPy twin takes the same steps
        init, update = twin.get(name, ETA)
        p, state, steps = theta.copy(), init(theta.copy()), []
        for g in grads:
            p, state = update(g, state, p)
            steps.append(np.asarray(p))
        assert _maxdiff(_run(optim.get_optimizer(name, ETA), theta, grads), steps) < 1e-12


def test_momentum_is_heavy_ball_not_nesterov():
    theta, grads = _data()
    with jax.enable_x64(True):
        ours = _run(optim.get_optimizer("momentum", ETA), theta, grads)
        assert _maxdiff(ours, _by_hand("nesterov", theta, grads)) > 1e-3


@pytest.mark.parametrize("name", list(optim.OPTIMIZERS))
def test_weight_decay_acts_as_documented(name):
    # adam -> adamw (decoupled, scaled by eta); the others: L2 on the gradient before the
    # optimizer's own transformation (optim.WEIGHT_DECAY)
    theta, grads = _data()
    with jax.enable_x64(True):
        ours = _run(optim.with_weight_decay(name, ETA, 0.1), theta, grads)
        assert _maxdiff(ours, _by_hand(name, theta, grads, wd=0.1)) < 1e-12


def test_schedules_follow_their_formulas():
    T, S, lr = 40, 7, 0.1
    with jax.enable_x64(True):
        sched = {
            n: optim.make_schedule(n, lr, total_steps=T, steps_per_epoch=S, warmup=0.1)
            for n in ("cosine", "warmup-cosine", "exponential")
        }
        W = round(0.1 * T)
        for t in range(T):
            count = jnp.asarray(t, jnp.int32)  # as Optax passes it
            cos = lr * (1 + np.cos(np.pi * t / T)) / 2
            warm = lr * t / W if t < W else lr * (1 + np.cos(np.pi * (t - W) / (T - W))) / 2
            assert abs(float(sched["cosine"](count)) - cos) < 1e-15
            assert abs(float(sched["warmup-cosine"](count)) - warm) < 1e-15
            assert abs(float(sched["exponential"](count)) - lr * 0.95 ** (t / S)) < 1e-15
    assert optim.make_schedule("constant", lr, total_steps=T) == lr


@pytest.mark.parametrize("name", optim.SCHEDULES)
def test_make_schedule_refuses_a_schedule_as_its_peak_rate(name):
    # before: cosine and exponential returned a schedule that raised "unsupported operand
    # type(s) for *: 'function'" at the first step; constant returned the schedule itself
    with pytest.raises(ValueError, match=r"^make_schedule: learning_rate must be one number"):
        optim.make_schedule(name, optax.constant_schedule(0.1), total_steps=10)


@pytest.mark.parametrize(
    "call",
    [
        lambda lr: optim.get_optimizer("sgd", lr),
        lambda lr: optim.injectable_optimizer("adam", lr),
        lambda lr: optim.make_schedule("cosine", lr, total_steps=10),
        lambda lr: optim.with_weight_decay("momentum", lr, 0.1),
    ],
    ids=["get_optimizer", "injectable_optimizer", "make_schedule", "with_weight_decay"],
)
def test_a_rate_that_is_zero_in_float32_is_refused(call):
    # before: taken, and every update was 0
    for lr in (1e-50, 1e-39):
        with pytest.raises(ValueError, match=rf"learning_rate {lr:g} is 0 in float32"):
            call(lr)
    call(2.0**-126)  # the smallest normal float32 is a (tiny) rate


def test_fit_with_a_zero_rate_says_so_instead_of_training_nothing():
    ds = nnjax.data.load("moons")
    model = nnjax.mlp([4, 2])
    params = model.init(jax.random.key(0), (-1, 2))[1]
    kw = dict(optimizer="sgd", batch_size=32, epochs=1)
    with pytest.raises(ValueError, match=r"^fit: .*learning_rate 1e-50 is 0 in float32"):
        nnjax.fit(model, params, ds.X_train, ds.y_train, learning_rate=1e-50, **kw)
    # under x64 the default float is float64, where 1e-40 is a number; float32 params are
    # still what the update meets
    with jax.enable_x64(True), pytest.raises(ValueError, match=r"1e-40 is 0 in float32, the dtype"):
        nnjax.fit(model, params, ds.X_train, ds.y_train, learning_rate=1e-40, **kw)


@pytest.mark.parametrize("dtype", list(SMALLEST_RATE))
def test_smallest_rate_is_where_xla_updates_stop(dtype):
    # the table against XLA itself: just below it a step changes nothing, at it it does
    smallest = SMALLEST_RATE[dtype]
    with jax.enable_x64(True):
        p, g = jnp.zeros(3, dtype), jnp.ones(3, dtype)

        def step(rate):
            opt = optax.sgd(rate)
            u, _ = opt.update(g, opt.init(p), p)
            return np.asarray(optax.apply_updates(p, u), np.float64)

        # float16: 2^-25 is 0 however a CPU rounds (a tie to even), the next float32 is not
        below = smallest * 0.999 if dtype != "float16" else 2.0**-25
        assert np.all(step(below) == 0) and np.all(step(smallest) < 0)
        check_rate_nonzero(smallest, dtype)
        with pytest.raises(ValueError, match=rf"is 0 in {dtype}"):
            check_rate_nonzero(below, dtype)


def test_default_grids_rates_and_presets_are_the_documented_ones():
    from nnjax.compare import DEFAULT_LEARNING_RATES, DEFAULT_OPTIMIZERS, PRESETS

    assert DEFAULT_OPTIMIZERS == ("gd", "sgd", "momentum", "adam")
    for name, (lo, hi) in {
        "gd": (-1.5, 0.5),
        "sgd": (-2.5, -0.5),
        "momentum": (-3.5, -1.5),
        "adam": (-4.0, -2.0),
    }.items():
        np.testing.assert_allclose(DEFAULT_LEARNING_RATES[name], np.logspace(lo, hi, 5))
    quoted = {  # docs/optimizers.md: hidden widths, epochs, batch size
        "toy": ((4,), 200, "tanh"),
        "xor": ((8,), 300, None),
        "moons": ((32,), 60, None),
        "spirals": ((64, 64), 100, None),
        "digits": ((64,), 60, None),
        "mnist1d": ((128,), 40, None),
    }
    for name, (hidden, epochs, act) in quoted.items():
        p = PRESETS[name]
        assert (p["hidden"], p["epochs"], p.get("activation")) == (hidden, epochs, act)
    assert PRESETS["digits"]["batch_size"] == 32 and PRESETS["mnist1d"]["batch_size"] == 64
    assert optim.DEFAULT_LEARNING_RATE["adam"] == 1e-3 and optim.FULL_BATCH == {"gd"}


def test_the_uneven_batch_message_in_docs_parallel_is_the_one_fit_gives():
    text = open(os.path.join(ROOT, "docs", "parallel.md"), encoding="utf-8").read()
    block = re.search(r"\n    ValueError: (fit: batch_size=30 .*?)\n\n", text, re.S).group(1)
    documented = " ".join(block.split())

    class EightDevices:  # a mesh's size is all check_batch reads (CPU: counts up to 16)
        size = 8

    with pytest.raises(ValueError) as e:
        parallel.check_batch(30, EightDevices(), "fit: batch_size")
    assert str(e.value) == documented
