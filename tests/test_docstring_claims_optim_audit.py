"""Docstring claims of the optimizers, initializers and small utilities, checked against what
they do: nnjax.optim's update equations and schedules against NumPy, the rate and eps
floors, the initializers' distributions (float16/bfloat16 and complex too), size_text."""

import inspect
import math
import re

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from nnjax import _host, initializers, optim

KEY = jax.random.key(1)


def _doc(obj) -> str:
    return " ".join(obj.__doc__.split())


# --- nnjax._host.size_text ------------------------------------------------------------


def test_size_text_has_3_significant_digits_and_no_exponent():
    # .3g wrote 1000 bytes as '1e+03 bytes' and 1023 MiB and a bit as '1.02e+03 MiB'
    assert _host.size_text(1000) == "0.977 KiB"
    assert _host.size_text(1023) == "0.999 KiB"
    assert _host.size_text(1000 * 1024) == "0.977 MiB"
    assert _host.size_text(1023.99 * 2**20) == "1 GiB"
    assert _host.size_text(2**60) == "1024 PiB"
    assert _host.size_text(999) == "999 bytes"
    assert _host.size_text(1024) == "1 KiB"
    assert _host.size_text(23.5 * 2**30) == "23.5 GiB"
    for n in np.geomspace(1, 2.0**62, 400):
        text = _host.size_text(float(n))
        number, unit = text.split()
        assert "e" not in number and unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB")
        if unit != "PiB":
            assert float(number) < 1000


# --- nnjax.initializers -----------------------------------------------------------------


def _stated_half_bounds() -> dict[str, float]:
    """The relative excess the module docstring allows in float16 and bfloat16."""
    m = re.search(r"relative (2\^-\d+) \(float16\) or (2\^-\d+) \(bfloat16\)", _doc(initializers))
    assert m, "the module docstring states no bound for float16/bfloat16"
    return {k: 2.0 ** -int(v.split("^-")[1]) for k, v in zip(("float16", "bfloat16"), m.groups())}


@pytest.mark.parametrize(
    "name, shape, dtype, one_rounding",
    [
        ("he_uniform", (1000, 200), jnp.float16, 2**-11),
        ("glorot_uniform", (4027, 49), jnp.bfloat16, 2**-8),
    ],
)
def test_half_precision_bound_is_the_stated_one_not_one_rounding(name, shape, dtype, one_rounding):
    # the docstring said one rounding, 2^-11 (float16) or 2^-8 (bfloat16): JAX rounds the
    # variance, its square root and the product, and these draws went 7.1e-4 and 5.4e-3 past
    fan_in, fan_out = shape
    var = 2 / fan_in if name.startswith("he") else 2 / (fan_in + fan_out)
    w = np.asarray(initializers.get_initializer(name)(KEY, shape, dtype), np.float64)
    excess = np.abs(w).max() / math.sqrt(3 * var) - 1
    assert excess > one_rounding
    assert excess <= _stated_half_bounds()[np.dtype(dtype).name]


@pytest.mark.parametrize("dtype", [jnp.float16, jnp.bfloat16])
def test_half_precision_normals_stay_inside_2_28_sqrt_var_up_to_the_stated_bound(dtype):
    allowed = _stated_half_bounds()[np.dtype(dtype).name]
    for name, shape in (("he_normal", (1054, 190)), ("lecun_normal", (4000, 50))):
        var = (2 if name.startswith("he") else 1) / shape[0]
        w = np.asarray(initializers.get_initializer(name)(KEY, shape, dtype), np.float64)
        assert 2.2 < np.abs(w).max() / math.sqrt(var) <= 2.28 * (1 + allowed)


def test_complex_initializers_are_a_disk_and_a_truncated_complex_normal():
    shape = (500, 400)
    var = 2 / 500
    disk = np.asarray(initializers.he_uniform(KEY, shape, jnp.complex64), np.complex128)
    normal = np.asarray(initializers.he_normal(KEY, shape, jnp.complex64), np.complex128)
    for w in (disk, normal):
        assert abs(np.mean(np.abs(w) ** 2) / var - 1) < 0.03
    # not U(-sqrt(3 var), sqrt(3 var)): |w| <= sqrt(2 var), and filled up to it
    assert math.sqrt(2 * var) * 0.999 < np.abs(disk).max() <= math.sqrt(2 * var) * (1 + 1e-6)
    assert 2.05 * math.sqrt(var) < np.abs(normal).max() < 2.10 * math.sqrt(var)
    doc = _doc(initializers)
    assert "|w| <= sqrt(2 var)" in doc and "|w| < 2.10 sqrt(var)" in doc


@pytest.mark.parametrize("family", ["glorot", "he", "lecun"])
@pytest.mark.parametrize("kind", ["normal", "uniform"])
def test_variance_and_bounds_of_a_conv_kernel(family, kind):
    shape = (3, 3, 40, 60)
    fan_in, fan_out = 9 * 40, 9 * 60
    var = {"glorot": 2 / (fan_in + fan_out), "he": 2 / fan_in, "lecun": 1 / fan_in}[family]
    w = np.asarray(initializers.get_initializer(f"{family}_{kind}")(KEY, shape), np.float64)
    assert abs(w.var() / var - 1) < 0.03
    bound = (2.28 if kind == "normal" else math.sqrt(3)) * math.sqrt(var)
    assert 0.99 * bound < np.abs(w).max() < bound
    same = getattr(jax.nn.initializers, f"{family}_{kind}")()(KEY, shape)
    assert np.array_equal(w, np.asarray(same, np.float64))


@pytest.mark.parametrize(
    "key, got",
    [
        (np.zeros(3, np.uint32), r"a uint32 array of shape \(3,\), not one raw key"),
        (np.zeros((2, 2), np.uint32), r"a uint32 array of shape \(2, 2\)"),
        (jax.random.split(jax.random.key(0)), r"a key array of shape \(2,\) \(pass one key"),
    ],
)
def test_a_key_that_is_not_one_key_is_a_type_error_naming_the_initializer(key, got):
    # "key: one PRNG key ... else a TypeError", "each error naming the initializer": these
    # reached JAX ("invalid PRNG key data", "accepts a single key", a ValueError)
    with pytest.raises(
        TypeError, match=rf"^initializer he_normal: key must be a PRNG key .*got {got}"
    ):
        initializers.he_normal(key, (3, 4))
    one = jax.random.PRNGKey(3)
    assert initializers.he_normal(one, (3, 4)).shape == (3, 4)
    keys = jax.random.split(jax.random.key(1), 3)
    assert jax.vmap(lambda k: initializers.he_normal(k, (3, 4)))(keys).shape == (3, 3, 4)


# --- nnjax.optim ---------------------------------------------------------------------------


def _numpy_steps(name, lr, grads, theta, hp):
    """The module docstring's update equations, in NumPy float64."""
    th, v, m = theta.copy(), np.zeros_like(theta), np.zeros_like(theta)
    s = np.full_like(theta, hp.get("initial_accumulator_value", 0.1) if name == "adagrad" else 0)
    mu, b1, b2 = hp.get("momentum", 0.9), hp.get("b1", 0.9), hp.get("b2", 0.999)
    eps = hp.get("eps", 1e-7 if name == "adagrad" else 1e-8)
    for t, g in enumerate(grads):
        eta = float(lr(t)) if callable(lr) else lr
        if name in ("gd", "sgd"):
            th = th - eta * g
        elif name in ("momentum", "nesterov"):
            v = mu * v + g
            th = th - eta * (v if name == "momentum" else g + mu * v)
        elif name in ("adam", "adamw"):
            m, s = b1 * m + (1 - b1) * g, b2 * s + (1 - b2) * g**2
            step = m / (1 - b1 ** (t + 1)) / (np.sqrt(s / (1 - b2 ** (t + 1))) + eps)
            wd = hp.get("weight_decay", optim.ADAMW_WEIGHT_DECAY) if name == "adamw" else 0
            th = th - eta * (step + wd * th)
        else:
            s = (
                hp.get("decay", 0.9) * s + (1 - hp.get("decay", 0.9)) * g**2
                if name == "rmsprop"
                else s + g**2
            )
            th = th - eta * g / np.sqrt(s + eps)
    return th


@pytest.mark.parametrize("name", list(optim.OPTIMIZERS))
def test_update_equations_of_every_named_optimizer_in_float64(name):
    rng = np.random.default_rng(0)
    grads = [rng.normal(size=3) for _ in range(4)]
    grads[2][1] = 0.0  # a dead unit: eps keeps the update finite
    theta = rng.normal(size=3)
    hp = {"momentum": {"momentum": 0.5}, "adamw": {"weight_decay": 0.3}, "rmsprop": {"eps": 0.5},
          "adagrad": {"eps": 0.5, "initial_accumulator_value": 0.2}}.get(name, {})  # fmt: skip
    with jax.enable_x64(True):
        for lr in (optim.DEFAULT_LEARNING_RATE[name], optax.cosine_decay_schedule(0.1, 10)):
            opt = optim.get_optimizer(name, lr, **hp)
            p = jnp.asarray(theta)
            state = opt.init(p)
            for g in grads:
                u, state = opt.update(jnp.asarray(g), state, p)
                p = optax.apply_updates(p, u)
            np.testing.assert_allclose(
                p, _numpy_steps(name, lr, grads, theta, hp), rtol=0, atol=1e-14
            )


def test_defaults_are_optaxs_and_every_name_has_a_rate():
    assert set(optim.DEFAULT_LEARNING_RATE) == set(optim.OPTIMIZERS)
    assert (
        inspect.signature(optax.adamw).parameters["weight_decay"].default
        == optim.ADAMW_WEIGHT_DECAY
    )
    for ours, theirs in (
        ("_adagrad", optax.adagrad),
        ("_rmsprop", optax.rmsprop),
        ("_adam", optax.adam),
    ):
        mine = inspect.signature(getattr(optim, ours)).parameters
        for k, p in mine.items():
            if k != "learning_rate":
                assert p.default == inspect.signature(theirs).parameters[k].default, (ours, k)


def test_schedules_follow_their_formulas_in_float64():
    T, t = 20, np.arange(20)
    want = {
        "constant": np.full(T, 0.1),
        "cosine": 0.1 * (1 + np.cos(np.pi * t / T)) / 2,
        "warmup-cosine": np.where(
            t < 4, 0.1 * t / 4, 0.1 * (1 + np.cos(np.pi * (t - 4) / (T - 4))) / 2
        ),
        "exponential": 0.1 * 0.5 ** (t / 4),
    }
    with jax.enable_x64(True):
        for name, expected in want.items():
            s = optim.make_schedule(
                name, 0.1, total_steps=T, steps_per_epoch=4, warmup=0.2, decay_rate=0.5
            )
            got = np.array([float(s(jnp.asarray(i, jnp.int32))) if callable(s) else s for i in t])
            np.testing.assert_allclose(got, expected, rtol=1e-14, atol=1e-16)


def test_float32_floors_of_the_rate_and_eps_are_xlas_smallest_normal():
    tiny = float(np.finfo(np.float32).tiny)
    p = jnp.zeros(2, jnp.float32)
    for lr, moves in ((tiny, True), (tiny / 2, False)):
        u, _ = optax.sgd(lr).update(jnp.ones(2, jnp.float32), optax.sgd(lr).init(p), p)
        assert bool(jnp.all(u != 0)) is moves
    optim.get_optimizer("sgd", tiny)
    optim.get_optimizer("adam", 0.1, eps=tiny)
    with pytest.raises(ValueError, match=r"^learning_rate 5\.87747e-39 is 0 in float32"):
        optim.get_optimizer("sgd", tiny / 2)
    with pytest.raises(ValueError, match=r"^rmsprop: eps 1e-39 is 0 in float32"):
        optim.get_optimizer("rmsprop", 0.1, eps=1e-39)


def test_a_traced_rate_passes_under_jit_vmap_and_grad():
    def after_one_step(lr):
        opt = optim.get_optimizer("sgd", lr)
        p = jnp.ones(2)
        u, _ = opt.update(jnp.ones(2), opt.init(p), p)
        return jnp.sum(optax.apply_updates(p, u))

    assert float(jax.grad(after_one_step)(0.1)) == -2.0
    np.testing.assert_allclose(
        jax.vmap(after_one_step)(jnp.array([0.1, 0.2])), [1.8, 1.6], rtol=1e-6
    )
    peak = jax.grad(lambda lr: optim.make_schedule("warmup-cosine", lr, total_steps=10)(3))(0.1)
    np.testing.assert_allclose(
        peak, optim.make_schedule("warmup-cosine", 1.0, total_steps=10)(3), rtol=1e-6
    )


@pytest.mark.parametrize("name", ["gd", "momentum", "nesterov", "rmsprop", "adagrad", "adam"])
def test_weight_decay_acts_as_the_table_says(name):
    # L2 on the gradient before the optimizer's own step; adam's is adamw's decoupled decay
    rng = np.random.default_rng(2)
    grads, theta, lam, lr = [rng.normal(size=3) for _ in range(3)], rng.normal(size=3), 0.3, 0.05
    with jax.enable_x64(True):
        opt = optim.with_weight_decay(name, lr, lam)
        p = jnp.asarray(theta)
        state = opt.init(p)
        for g in grads:
            u, state = opt.update(jnp.asarray(g), state, p)
            p = optax.apply_updates(p, u)
        if name == "adam":
            want = _numpy_steps("adamw", lr, grads, theta, {"weight_decay": lam})
        else:  # replay with g + lam * theta, theta as it was at each step
            plain = optim.get_optimizer(name, lr)
            q, s = jnp.asarray(theta), plain.init(jnp.asarray(theta))
            for g in grads:
                u, s = plain.update(jnp.asarray(g) + lam * q, s, q)
                q = optax.apply_updates(q, u)
            want = np.asarray(q)
        np.testing.assert_allclose(p, want, rtol=0, atol=1e-14)
        assert opt.recipe == {"name": name, "learning_rate": lr, "weight_decay": lam}


# --- nnjax.tree_arrays ---------------------------------------------------------------------


def test_an_extra_field_of_a_namedtuple_is_refused_as_an_extra_dict_key_is():
    # "An array under prefix that like has no place for is a ValueError naming it": the
    # path '.b' (a namedtuple's field) did not count as under the prefix '' and was dropped
    import collections

    from nnjax import tree_arrays

    Big, Small = collections.namedtuple("Big", "a b"), collections.namedtuple("Small", "a")
    arrays, _ = tree_arrays.flatten(Big(jnp.ones(2), jnp.zeros(3)))
    assert sorted(arrays) == [".a", ".b"]
    with pytest.raises(ValueError, match=r"^ckpt: \.b is not in like \(1 of the stored"):
        tree_arrays.unflatten(arrays, Small(jnp.ones(2)), where="ckpt")
    back = tree_arrays.unflatten(arrays, Small(jnp.ones(2)), partial=True)
    assert isinstance(back, Small) and np.array_equal(back.a, np.ones(2))
    nested = {"['opt'].a": np.ones(2, np.float32), "['opt'].b": np.ones(1), "['opts']": np.ones(1)}
    with pytest.raises(ValueError, match=r"^arrays: \['opt'\]\.b is not in like \(1 of"):
        tree_arrays.unflatten(nested, Small(jnp.ones(2)), prefix="['opt']")


def test_bad_key_data_is_named_without_jaxs_function_addresses():
    from nnjax import tree_arrays

    with pytest.raises(ValueError) as err:
        tree_arrays.unflatten({"['k']": np.ones(3, np.uint32)}, {"k": jax.random.key(0)}, where="c")
    text = str(err.value)
    assert text.startswith("c: ['k'] is uint32[3], not the data of a threefry2x32 PRNG key")
    assert "\n" not in text and "0x" not in text and "PRNGImpl" not in text


# --- nnjax.errors ----------------------------------------------------------------------------


def test_a_stop_on_any_signal_is_one_line_and_128_plus_n():
    # Interrupted(35) (SIGRTMIN + 1: signal.Signals has no name for it) made describe raise
    from nnjax import errors

    assert errors.exit_code(errors.Interrupted(35)) == 163
    assert errors.describe(errors.Interrupted(35, "stopped")) == "interrupted by signal 35: stopped"
    assert errors.describe(errors.Interrupted(15)) == "interrupted by SIGTERM"
    assert errors.describe(KeyboardInterrupt()) == "interrupted by SIGINT"
    assert errors.exit_code(KeyboardInterrupt()) == 130


@pytest.mark.parametrize("name", ["constant", "cosine", "exponential", "warmup-cosine"])
def test_every_schedule_refuses_a_bad_warmup_or_decay_rate(name):
    # "warmup a number in (0, 1), decay_rate in (0, 1] ... A ValueError names a bad
    # argument": cosine took warmup=5 and decay_rate=0 without a word
    with pytest.raises(
        ValueError, match=r"^schedule warmup-cosine: warmup must be in \(0, 1\), got 5$"
    ):
        optim.make_schedule(name, 0.1, total_steps=10, warmup=5)
    with pytest.raises(
        ValueError, match=r"^schedule exponential: decay_rate must be in \(0, 1\], got 0$"
    ):
        optim.make_schedule(name, 0.1, total_steps=10, decay_rate=0)


def test_an_os_error_on_a_path_with_a_newline_is_one_line():
    """describe_os_error printed a path holding a newline as it is: two lines, not one."""
    import errno

    from nnjax.errors import describe_os_error

    exc = OSError(errno.ENOSPC, "No space left on device", "out\nput/metrics.csv")
    line = describe_os_error(exc)
    assert line == "'out\\nput/metrics.csv': No space left on device (errno 28, ENOSPC)"
    plain = describe_os_error(OSError(errno.ENOENT, "No such file or directory", "é/a b.csv"))
    assert plain == "é/a b.csv: No such file or directory (errno 2, ENOENT)"
