"""Audit of the public Python API's input checks: bad input is a ValueError naming the
function, the argument and the valid values (never a silent wrong number, NaN, or a deep JAX
error), and valid edge inputs still pass. Each check's old behaviour is in its comment."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import nnjax
from nnjax import data, initializers, losses, optim, parallel
from nnjax.layers import BatchNorm, Dense, init_model, serial
from nnjax.standardizer import Standardizer
from nnjax.train import batch_indices, step_keys
from nnjax.train.loop import make_epochs_fn

K = jax.random.key(0)


# ---- 1. nnjax.save refuses what nnjax.load could not open, or would predict nan with ------


@pytest.fixture(scope="module")
def dense():
    model = nnjax.mlp([2])
    return model, init_model(model, K, (-1, 2))[1]


@pytest.mark.parametrize(
    "std, match",
    [  # all saved, then load failed blaming the model ("cannot rebuild the model")
        (Standardizer(np.zeros(2), np.zeros(2)), r"feature 0 has mean 0 and std 0"),
        ({"mean": [0.0, 0.0], "std": "x"}, "mean and std must be numbers"),
        (Standardizer(np.array([np.nan, 0.0]), np.ones(2)), "feature 0 has mean nan"),
        ("mean", "must be a nnjax.data.Standardizer, its dict or None; got str"),
    ],
)
def test_save_refuses_a_standardizer_load_cannot_read(tmp_path, dense, std, match):
    with pytest.raises(ValueError, match=r"^nnjax\.save: .*standardizer.*" + match):
        nnjax.save(tmp_path / "m", *dense, standardizer=std)
    assert not (tmp_path / "m").exists()


def test_save_refuses_non_finite_params_and_a_negative_variance(tmp_path, dense):
    model, params = dense
    nan = jax.tree.map(lambda a: a.at[0].set(jnp.nan), params)  # predict blamed the inputs
    with pytest.raises(ValueError, match=r"nnjax.save: params leaf \[0\]\['W'\] holds 2 nan"):
        nnjax.save(tmp_path / "m", model, nan, input_shape=(-1, 2))
    bn = serial(Dense(2), BatchNorm())
    _, p, s = init_model(bn, K, (-1, 2))
    s = jax.tree.map(lambda a: a, s)
    s[1]["var"] = -s[1]["var"]
    with pytest.raises(ValueError, match=r"state leaf \[1\]\['var'\], a running variance"):
        nnjax.save(tmp_path / "m", bn, p, state=s, input_shape=(-1, 2))


def test_save_refuses_label_names_given_as_one_string(tmp_path, dense):
    with pytest.raises(ValueError, match="label_names must be a list of 2 names.*'ab'"):
        nnjax.save(tmp_path / "m", *dense, input_shape=(-1, 2), label_names="ab")  # was a, b
    std = Standardizer(np.zeros(2, np.float32), np.ones(2, np.float32)).to_dict()
    nnjax.save(tmp_path / "m", *dense, standardizer=std, label_names=["ab", "cd"])
    assert nnjax.load(tmp_path / "m").standardizer.to_dict() == std


# ---- 2. binary cross-entropies: targets in [0, 1] ----------------------------------------


@pytest.mark.parametrize(
    "loss, x, t, match",
    [
        (losses.binary_cross_entropy, [[0.9]], [2], "from 2 to 2"),  # was -2.09
        (losses.binary_cross_entropy_with_logits, [[-5.0]], [-1], "from -1 to -1"),  # -4.99
        (losses.binary_cross_entropy_with_logits, [[0.0]], [-1.0], "from -1 to -1"),
        (losses.binary_cross_entropy, [[0.9]], np.array(["a"]), "numbers in"),  # a JAX error
    ],
)
def test_binary_cross_entropy_targets_must_be_in_the_unit_interval(loss, x, t, match):
    with pytest.raises(ValueError, match=rf"^{loss.__name__}: target must .*{match}"):
        loss(jnp.array(x), t)


def test_binary_cross_entropy_soft_and_traced_targets_pass():
    p, t = jnp.array([[0.2], [0.7]]), jnp.array([0.0, 0.75])
    want = -np.mean([np.log(0.8), 0.75 * np.log(0.7) + 0.25 * np.log(0.3)])
    np.testing.assert_allclose(losses.binary_cross_entropy(p, t), want, rtol=1e-6)
    assert np.isfinite(losses.binary_cross_entropy_with_logits(p, np.array([True, False])))
    jax.jit(losses.binary_cross_entropy_with_logits)(p, t)  # traced targets: not checked


# ---- 3. optimizers: learning rate, schedule, hyperparameters -----------------------------


def test_learning_rate_must_be_finite_in_the_default_float():
    with pytest.raises(ValueError, match=r"learning_rate 1e\+39 is infinite in float32"):
        optim.get_optimizer("sgd", 1e39)  # one update made the params -inf
    with pytest.raises(ValueError, match=r"learning_rate 1e\+39 is infinite in float32"):
        optim.make_schedule("cosine", 1e39, total_steps=10)
    with jax.enable_x64(True):  # finite in float64: allowed there
        optim.get_optimizer("sgd", 1e39)


@pytest.mark.parametrize(
    "schedule, match",
    [
        (lambda s: jnp.nan, "schedule\\(0\\) gave nan"),  # NaN updates
        (lambda s: -0.1, "schedule\\(0\\) gave -0.1"),
        (lambda: 0.1, "schedule\\(0\\) raised TypeError"),  # failed later inside Optax
        (lambda s: jnp.ones(2), "schedule\\(0\\) gave"),
    ],
)
def test_a_schedule_is_tried_at_step_0(schedule, match):
    with pytest.raises(ValueError, match="^learning_rate is a schedule.*" + match):
        optim.get_optimizer("adam", schedule)


def test_a_warmup_schedule_starting_at_0_passes():
    optim.get_optimizer("adam", optax.warmup_cosine_decay_schedule(0.0, 0.1, 5, 50))
    optim.get_optimizer("sgd", optim.make_schedule("warmup-cosine", 0.1, total_steps=10))


@pytest.mark.parametrize(
    "name, kwargs, match",
    [  # '<=' not supported ..., no name; "truth value ... ambiguous"; False accepted
        ("adam", {"b1": "0.9"}, r"adam: b1 must be in \[0, 1\), got '0.9' \(str, not a number"),
        ("adam", {"b2": None}, r"adam: b2 must be in \[0, 1\), got None"),
        ("momentum", {"momentum": "0.9"}, r"momentum: momentum must be in \[0, 1\)"),
        ("nesterov", {"momentum": np.array([0.1, 0.2])}, r"momentum must be in \[0, 1\)"),
        ("momentum", {"momentum": False}, r"momentum must be in \[0, 1\), got False"),
        ("rmsprop", {"decay": "0.9"}, r"rmsprop: decay must be in \[0, 1\)"),
        ("adamw", {"weight_decay": "0.1"}, "adamw: weight_decay must be a finite number >= 0"),
        ("adagrad", {"eps": True}, "adagrad: eps must be a finite number > 0, got True"),
        ("sgd", {"momentum": 0.9}, "'sgd': bad hyperparameters: unknown momentum; it takes none"),
    ],
)
def test_hyperparameters_of_the_wrong_type_are_named(name, kwargs, match):
    with pytest.raises(ValueError, match=match):
        optim.get_optimizer(name, 0.1, **kwargs)


def test_numpy_hyperparameters_pass_and_schedule_options_are_named():
    optim.get_optimizer("adam", 0.1, b1=np.float32(0.8), b2=jnp.float32(0.9), eps=1)
    with pytest.raises(ValueError, match=r"schedule exponential: decay_rate must be in \(0, 1\]"):
        optim.make_schedule("exponential", 0.1, total_steps=10, decay_rate="0.9")  # TypeError
    with pytest.raises(ValueError, match=r"schedule warmup-cosine: warmup must be in \(0, 1\)"):
        optim.make_schedule("warmup-cosine", 0.1, total_steps=10, warmup=None)


# ---- 4. initializers ---------------------------------------------------------------------


@pytest.mark.parametrize("std", [float("inf"), float("nan"), "0.1", True, 0.0, -1.0])
def test_normal_std_must_be_a_finite_positive_number(std):
    with pytest.raises(
        ValueError, match=r"normal initializer: std must be > 0 and finite \(a number\), got"
    ):
        initializers.normal(std)  # inf gave weights of +-inf, "0.1" a TypeError, True passed


@pytest.mark.parametrize(
    "name, shape",
    [("he_normal", (0, 4)), ("glorot_uniform", (-1, 4)), ("glorot_uniform", (2.0, 4)),
     ("lecun_normal", (4,)), ("zeros", (-1,)), ("ones", (True, 2))],
)  # fmt: skip
def test_initializers_by_name_check_their_shape(name, shape):
    # ZeroDivisionError, MLIRError, TypeError before
    with pytest.raises(ValueError, match=rf"initializer {name}: shape must be .*got"):
        initializers.get_initializer(name)(K, shape)


def test_initializers_give_jaxs_numbers_for_valid_shapes():
    got = initializers.get_initializer("he_normal")(K, (np.int64(3), 4), jnp.float32)
    np.testing.assert_array_equal(got, jax.nn.initializers.he_normal()(K, (3, 4)))
    assert initializers.zeros(K, (0, 3)).shape == (0, 3)
    np.testing.assert_array_equal(
        initializers.normal(0.5)(K, (2,)), jax.random.normal(K, (2,)) * 0.5
    )


# ---- 5. datasets -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, match",
    [  # the first three were ignored silently; "no" counted as True
        (dict(name="toy", test_fraction=0.5), "dataset 'toy' is not split .* no test_fraction"),
        (dict(name="xor", test_fraction=0.5), "dataset 'xor' is not split"),
        (dict(name="moons", canonical=False), "dataset 'moons' takes no canonical .*test_frac"),
        (dict(name="moons", standardized="no"), "load: standardized must be True or False"),
        (dict(name="mnist1d", canonical="yes"), "load: canonical must be True or False"),
    ],
)
def test_load_refuses_options_the_dataset_does_not_take(kwargs, match):
    with pytest.raises(ValueError, match=match):
        data.load(**kwargs)


def test_load_splits_fractions_must_leave_a_training_split():
    with pytest.raises(ValueError, match=r"val_fraction 0.9 \+ test_fraction 0.2 must be below"):
        data.load_splits("moons", val_fraction=0.9)  # "leaves -40 of 320 examples"
    with pytest.raises(ValueError, match=r"load_splits: val_fraction must be in \[0, 1\)"):
        data.load_splits("moons", val_fraction="0.1")  # a TypeError
    with pytest.raises(ValueError, match=r"^load_splits: test_fraction must be in \(0, 1\)"):
        data.load_splits(["moons"], test_fraction=2)  # named as load's, after loading, before
    ds = data.load_splits("moons", val_fraction=np.float32(0.25), test_fraction=0.25)
    assert (len(ds.y_train), len(ds.y_val), len(ds.y_test)) == (200, 100, 100)
    assert data.load("mnist1d", canonical=np.bool_(True), standardized=False).X_train.shape == (
        4000, 40)  # fmt: skip


# ---- 6. the order of the data ------------------------------------------------------------


@pytest.mark.parametrize("epoch", [1.5, -1, 2**32, "1", jnp.array(1.0), True])
def test_batch_indices_epoch_must_be_a_non_negative_int(epoch):
    # 1.5 was epoch 1, -1 epoch 2**32 - 1
    with pytest.raises(ValueError, match=r"batch_indices: epoch must be an int in \[0, 2\*\*32\)"):
        batch_indices(K, epoch, 10, 3)
    with pytest.raises(ValueError, match=r"step_keys: epoch must be an int"):
        step_keys(K, epoch, 2)


def test_batch_indices_takes_int_arrays_and_traced_epochs():
    want = batch_indices(K, 3, 10, 3)
    np.testing.assert_array_equal(batch_indices(K, np.int64(3), 10, 3), want)
    np.testing.assert_array_equal(jax.jit(lambda e: batch_indices(K, e, 10, 3))(3), want)


def test_step_keys_checks_n_steps_and_takes_an_int_seed():
    for n in (-1, 0, 2.0):  # an MLIRError, an empty array, ...
        with pytest.raises(ValueError, match="step_keys: n_steps must be a positive int"):
            step_keys(K, 0, n)
    got = jax.random.key_data(step_keys(7, 1, 3))  # JAX's invalid-key TypeError before
    np.testing.assert_array_equal(got, jax.random.key_data(step_keys(jax.random.key(7), 1, 3)))
    with pytest.raises(ValueError, match="step_keys: dropout_key must be an int seed"):
        step_keys("7", 1, 3)


# ---- 7. make_epochs_fn's unroll ----------------------------------------------------------


@pytest.mark.parametrize("unroll", ["2", 2.5, None, 0, -1])
def test_unroll_is_checked_when_the_loop_is_made(unroll):
    model, opt = nnjax.mlp([2]), optim.get_optimizer("sgd", 0.1)
    with pytest.raises(ValueError, match="make_epochs_fn: unroll must be an int >= 1 .* or a bool"):
        make_epochs_fn(model, "mse", opt, n_examples=4, batch_size=2, unroll=unroll)


def test_unroll_true_and_numpy_ints_pass():
    model, opt = nnjax.mlp([1]), optim.get_optimizer("sgd", 0.1)
    _, p = init_model(model, K, (-1, 1))[:2]
    X, y = jnp.ones((4, 1)), jnp.ones((4, 1))
    for unroll in (True, np.int64(3)):
        run, _ = make_epochs_fn(model, "mse", opt, n_examples=4, batch_size=2, unroll=unroll)
        carry, out = jax.jit(run)((p, opt.init(p), ()), jnp.arange(2), K, X, y)
        assert out.step_loss.shape == (2, 2)


# ---- 8. nnjax.parallel -------------------------------------------------------------------


@pytest.mark.parametrize("batch", [0, -4, 4.0, True, "8"])
def test_check_batch_wants_a_positive_int(batch):
    # passed silently; "8": "not all arguments converted during string formatting"
    with pytest.raises(ValueError, match="check_batch: batch_size must be an int >= 1, got"):
        parallel.check_batch(batch, parallel.make_mesh())


def test_mesh_functions_take_a_device_count_as_as_mesh_does():
    # AttributeError: 'int' object has no attribute 'axis_types' (or 'size')
    parallel.check_batch(np.int64(4), 1)
    assert parallel.auto_axes(1).axis_names == ("data",)
    assert parallel.replicated(1).mesh.size == parallel.batch_sharding(1).mesh.size == 1
    np.testing.assert_array_equal(parallel.replicate(jnp.ones(2), 1), jnp.ones(2))
    for fn in (parallel.replicated, parallel.batch_sharding, parallel.auto_axes):
        with pytest.raises(ValueError, match=rf"^{fn.__name__}: mesh must be a jax.sharding.Mesh"):
            fn("1")


def test_make_mesh_devices_must_be_a_sequence_of_devices():
    with pytest.raises(ValueError, match="make_mesh: devices must be a sequence of JAX devices"):
        parallel.make_mesh(devices=jax.devices()[0])  # "not iterable"
    with pytest.raises(ValueError, match="make_mesh: devices must be JAX devices.*'cpu'"):
        parallel.make_mesh(devices=["cpu"])  # an AttributeError
    assert parallel.make_mesh(devices=tuple(jax.devices())).size == jax.device_count()
