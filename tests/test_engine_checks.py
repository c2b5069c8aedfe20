"""The engine's argument checks: bad input to fit, evaluate, make_epochs_fn, SteppedLoop and the
order functions is a ValueError naming the function and the argument, before anything is
compiled or trained; valid input (NumPy ints, int seeds) runs as its Python twin does."""

import glob
import os

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import nnjax
from nnjax.train import (
    Carry,
    EarlyStopping,
    SteppedLoop,
    batch_indices,
    make_epochs_fn,
    make_train_step,
    run_batch_indices,
    run_keys,
)
from nnjax.train.early import check_early_stopping
from nnjax.train.guards import DivergenceGuard, as_guard

LOSS = "softmax_cross_entropy"


def _data(n=50, d=4, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)).astype(np.float32)
    return X, (X[:, 0] > 0).astype(np.int32)


def _net(sizes=(8, 2), d=4, **kw):
    model = nnjax.mlp(list(sizes), **kw)
    _, p = model.init(jax.random.key(0), (-1, d))
    return model, p


def _loop(**kw):
    model, p = _net()
    opt = optax.sgd(0.1)
    args = dict(n_examples=50, batch_size=10) | kw
    run, _ = make_epochs_fn(model, LOSS, opt, **args)
    return run, Carry(p, opt.init(p), ())


# ---- 1, 3: the data a built loop is called with (checked at trace time, on static shapes) ----


def test_a_loop_run_on_other_rows_than_it_was_built_for_is_refused():
    X, y = _data()
    run, carry = _loop()
    with pytest.raises(ValueError, match=r"make_epochs_fn: run got X with 30 rows.*n_examples=50"):
        jax.eval_shape(run, carry, jnp.arange(1), jax.random.key(0), X[:30], y[:30])
    model, p = _net()
    loop = SteppedLoop(model, LOSS, optax.sgd(0.1), n_examples=50, batch_size=10)
    with pytest.raises(ValueError, match=r"SteppedLoop: run got X with 30 rows"):
        loop.compile(carry, np.arange(1), (jax.random.key(0), X[:30], y[:30], ()))
    big_X, big_y = _data(n=60)  # rows the batches would never visit
    with pytest.raises(ValueError, match=r"got X with 60 rows"):
        jax.eval_shape(run, carry, jnp.arange(1), jax.random.key(0), big_X, big_y)


def test_evals_must_match_eval_names_and_names_must_not_be_one_string():
    X, y = _data()
    run, carry = _loop(eval_names=("val",))
    with pytest.raises(ValueError, match=r"run got 0 evaluation sets, but eval_names=\('val',\)"):
        jax.eval_shape(run, carry, jnp.arange(1), jax.random.key(0), X, y)
    run, carry = _loop()
    with pytest.raises(ValueError, match=r"run got 1 evaluation sets, but eval_names=\(\)"):
        jax.eval_shape(run, carry, jnp.arange(1), jax.random.key(0), X, y, ((X, y),))
    with pytest.raises(ValueError, match=r"make_epochs_fn: eval_names must be a tuple of names, "):
        _loop(eval_names="val")
    out = jax.eval_shape(_loop(eval_names=["val"])[0], carry, jnp.arange(1), 0, X, y, [(X, y)])
    assert sorted(out[1].metrics) == ["step_loss_mean", "val_accuracy", "val_loss"]


def test_the_loop_takes_epochs_as_a_list_or_array_and_refuses_other_shapes():
    """review: epochs=[0, 1, 2] (or a range) ended in "'list' object has no attribute
    'shape'", a scalar in an IndexError, a (1, 3) array in a broadcasting error; a float
    array ran, each epoch's shuffle keyed by a truncated float."""
    X, y = _data()
    run, carry = _loop()
    kinds = (jnp.arange(3), [0, 1, 2], range(3), np.arange(3))  # closed over: run sees each
    want, *others = jax.jit(lambda c: [run(c, e, 0, X, y)[1].step_loss for e in kinds])(carry)
    jax.tree.map(np.testing.assert_array_equal, others, [want] * 3)  # one compile, four runs
    np.testing.assert_array_equal(jax.jit(run)(carry, [0, 1, 2], 0, X, y)[1].step_loss, want)
    for bad, got in [(jnp.int32(2), r"int32\[\]"), (jnp.arange(3)[None], r"int32\[1, 3\]"),
                     (jnp.arange(3.0), r"float32\[3\]")]:  # fmt: skip
        with pytest.raises(
            ValueError, match=r"run: epochs must be an int array \(E,\) .*got " + got
        ):
            jax.eval_shape(run, carry, bad, 0, X, y)


# ---- 2, 7, 13: batch sizes and orders ---------------------------------------------------------


def _make(kind, batch_size, shuffle=True):
    model, _ = _net()
    opt = optax.sgd(0.1)
    if kind == "make_epochs_fn":
        make_epochs_fn(model, LOSS, opt, n_examples=50, batch_size=batch_size, shuffle=shuffle)
    elif kind == "SteppedLoop":
        SteppedLoop(model, LOSS, opt, n_examples=50, batch_size=batch_size, shuffle=shuffle)
    elif kind == "run_batch_indices":
        run_batch_indices(7, 2, 50, batch_size)
    else:
        batch_indices(jax.random.key(7), 0, 50, batch_size, shuffle)


KINDS = ["make_epochs_fn", "SteppedLoop", "run_batch_indices", "batch_indices"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("batch_size", [60, 0, -5, 16.0, True, "10"])
def test_a_batch_size_outside_1_to_n_is_refused_by_name(kind, batch_size):
    with pytest.raises(ValueError, match=rf"{kind}: batch_size must be an int in \[1, 50\]"):
        _make(kind, batch_size)


def test_numpy_int_batch_sizes_are_ints_and_none_is_full_batch_where_allowed():
    model, _ = _net()
    run, steps = make_epochs_fn(model, LOSS, optax.sgd(0.1), n_examples=50, batch_size=np.int64(10))
    assert steps == 5 and type(steps) is int
    assert run_batch_indices(7, 2, 50, np.int32(10)).shape == (10, 10)
    assert run_batch_indices(7, 2, 50, None) is None
    with pytest.raises(ValueError, match=r"batch_indices: batch_size must be an int in \[1, 50\],"):
        batch_indices(jax.random.key(7), 0, 50, None)


@pytest.mark.parametrize("kind", ["make_epochs_fn", "SteppedLoop", "batch_indices"])
def test_shuffle_false_that_would_never_use_the_tail_rows_is_refused(kind):
    with pytest.raises(ValueError, match=rf"{kind}: shuffle=False .* never train on rows 40..49"):
        _make(kind, 20, shuffle=False)  # 50 rows, batches of 20: rows 40..49 never used
    _make(kind, 25, shuffle=False)  # 25 divides 50: every row every epoch
    idx = np.asarray(batch_indices(jax.random.key(7), 3, 50, 25, shuffle=False))
    np.testing.assert_array_equal(idx.reshape(-1), np.arange(50))


# ---- 4, 5, 9: evaluate and the loss --------------------------------------------------------------


@pytest.mark.parametrize("name", ["binary_cross_entropy", "mse"])
def test_a_loss_given_as_its_function_scores_accuracy_as_its_name_does(name):
    """Probabilities are thresholded at 0.5 whether the loss is named or passed as the
    function; at 0.0 every prediction would count as positive."""
    X, _ = _data()
    y = (X[:, 1] > 0.3).astype(np.float32)
    model, p = _net((8, 1), output_activation="sigmoid")
    fn = getattr(nnjax.losses, name)
    by_name = nnjax.evaluate(model, p, X, y, loss=name)
    assert nnjax.evaluate(model, p, X, y, loss=fn) == by_name
    prob = np.asarray(model.apply(p, X))[:, 0]
    assert by_name["accuracy"] == pytest.approx(np.mean((prob > 0.5) == (y > 0.5)))
    assert by_name["accuracy"] != pytest.approx(np.mean(y > 0.5))  # not the share of positives
    kw = dict(epochs=1, optimizer=optax.sgd(0.0), eval_data={"v": (X, y)})  # params as given
    res = nnjax.fit(model, p, X, y, loss=fn, **kw)
    assert res.metrics["v_accuracy"][0] == np.float32(by_name["accuracy"])


def test_evaluate_refuses_params_of_another_model():
    X, y = _data()
    _, p5 = _net((8, 5))
    with pytest.raises(ValueError, match=r"evaluate: params do not match the model: params\[2\]"):
        nnjax.evaluate(nnjax.mlp([8, 3]), p5, X, y)


BAD_LOSSES = {
    "per-example vector": (lambda p, t: jnp.mean(p, axis=1), r"got shape \(50,\) and dtype"),
    "an int": (lambda p, t: jnp.int32(1), r"got shape \(\) and dtype int32"),
    "a tuple": (lambda p, t: (jnp.mean(p), 1.0), r"got tuple"),
}


@pytest.mark.parametrize("what", list(BAD_LOSSES))
@pytest.mark.parametrize("where", ["fit", "evaluate"])
def test_a_loss_that_does_not_return_a_float_scalar_is_refused_by_name(what, where):
    X, y = _data()
    model, p = _net()
    loss, got = BAD_LOSSES[what]
    with pytest.raises(ValueError, match=rf"{where}: loss '<lambda>' must return a float scalar"):
        if where == "fit":
            nnjax.fit(model, p, X, y, epochs=1, loss=loss)
        else:
            nnjax.evaluate(model, p, X, y, loss=loss)
    with pytest.raises(ValueError, match=got):
        nnjax.evaluate(model, p, X, y, loss=loss)


# ---- 6, 7, 8: fit's chunking, NumPy ints and the optimizer state -------------------------------


def test_checkpoints_that_would_fall_inside_a_compiled_call_are_refused(tmp_path):
    X, y = _data()
    model, p = _net()
    kw = dict(epochs=10, checkpoint_dir=tmp_path, keep=None)
    with pytest.raises(ValueError, match=r"fit: checkpoint_every=2 does not line up with "):
        nnjax.fit(model, p, X, y, epochs_per_call=3, checkpoint_every=2, **kw)
    with pytest.raises(ValueError, match=r"multiple of 4 .*divides 2 \(1, 2\)"):
        nnjax.fit(model, p, X, y, epochs_per_call=4, checkpoint_every=2, **kw)
    assert not os.listdir(tmp_path)  # refused before anything was written


def _checkpoint_epochs(directory):
    return sorted(int(os.path.basename(f)[5:13]) for f in glob.glob(f"{directory}/ckpt_*.json"))


def test_numpy_ints_run_as_python_ints(tmp_path):
    X, y = _data()
    model, p = _net()
    kw = dict(epochs_per_call=1, learning_rate=0.05)
    a = nnjax.fit(
        model, p, X, y, epochs=np.int64(4), batch_size=np.int64(10), checkpoint_dir=tmp_path / "a",
        checkpoint_every=np.int64(2), keep=np.int64(5), divergence_guard=(10.0, np.int64(3)), **kw,
    )  # fmt: skip
    b = nnjax.fit(
        model, p, X, y, epochs=4, batch_size=10, checkpoint_dir=tmp_path / "b",
        checkpoint_every=2, keep=5, divergence_guard=(10.0, 3), **kw,
    )  # fmt: skip
    jax.tree.map(np.testing.assert_array_equal, a.params, b.params)
    assert _checkpoint_epochs(tmp_path / "a") == _checkpoint_epochs(tmp_path / "b") == [2, 4]
    assert as_guard((np.float32(5), np.int64(3))) == DivergenceGuard(5.0, 3)


def _adam_state_of_another_width():
    _, p9 = _net((9, 2))
    return optax.adam(1e-3).init(p9)


def _float_count():
    state = optax.adam(1e-3).init(_net()[1])
    return (state[0]._replace(count=jnp.float32(0)), *state[1:])


OPT_STATES = {
    "other shapes": (_adam_state_of_another_width, r"opt_state\[0\]\.mu\[0\]\['W'\] has shape "),
    "a dict": (lambda: {"a": 1}, r"opt_state\[0\]\.count is missing"),
    "adam's with sgd": (
        lambda: optax.adam(1e-3).init(_net()[1]),
        r"opt_state\[0\]\.count is not in the optimizer's opt_state",
    ),
    "another dtype": (_float_count, r"opt_state\[0\]\.count has dtype float32, the optimizer's"),
}


@pytest.mark.parametrize("what", list(OPT_STATES))
def test_an_opt_state_that_does_not_fit_the_optimizer_is_refused_naming_the_leaf(what):
    X, y = _data()
    model, p = _net()
    make, match = OPT_STATES[what]
    optimizer = "sgd" if what == "adam's with sgd" else "adam"
    with pytest.raises(ValueError, match="fit: opt_state does not match the optimizer's state"):
        nnjax.fit(model, p, X, y, epochs=1, optimizer=optimizer, opt_state=make())
    with pytest.raises(ValueError, match=match):
        nnjax.fit(model, p, X, y, epochs=1, optimizer=optimizer, opt_state=make())


# ---- 10, 11, 12: dropout, callbacks and the smaller arguments ----------------------------------


def test_dropout_must_be_a_bool_and_needs_a_dropout_layer():
    X, y = _data()
    model, p = _net(dropout=0.3)
    for bad in (0.5, "no", 1):
        with pytest.raises(ValueError, match=rf"fit: dropout must be True or False.*got {bad!r}"):
            nnjax.fit(model, p, X, y, epochs=1, dropout=bad)
    plain, q = _net()
    with pytest.raises(ValueError, match="fit: dropout=True, but the model has no Dropout layer"):
        nnjax.fit(plain, q, X, y, epochs=1, dropout=True)
    with pytest.raises(ValueError, match=r"make_epochs_fn: dropout must be True or False"):
        make_epochs_fn(model, LOSS, optax.sgd(0.1), n_examples=50, batch_size=10, dropout=0.5)
    from nnjax.train.model import has_dropout  # how fit tells (from the layer's spec)

    drop = nnjax.Dropout(0.1)
    assert has_dropout(model) and has_dropout(nnjax.resmlp(dropout=0.1))
    assert has_dropout(nnjax.serial(nnjax.Dense(3), nnjax.layers.residual(nnjax.serial(drop))))
    assert has_dropout(plain) is False and has_dropout(nnjax.cnn()) is False
    assert has_dropout(lambda params, x, key=None: x) is None  # a function: taken at its word


@pytest.mark.parametrize(
    "on_epochs, match",
    [
        (5, "fit: on_epochs must be a function on_epochs"),
        (lambda done: None, r"fit: on_epochs is called as on_epochs\(epochs_done, metrics\)"),
    ],
)
def test_on_epochs_is_checked_before_the_first_chunk(on_epochs, match):
    X, y = _data()
    model, p = _net()
    with pytest.raises(ValueError, match=match):
        nnjax.fit(model, p, X, y, epochs=2, epochs_per_call=1, on_epochs=on_epochs)


BAD_FIT = {
    "stop=True": ({"stop": True}, "fit: stop must be a StopFlag"),
    "guard factor": ({"divergence_guard": ("a", 3)}, "fit: divergence_guard: factor must be"),
    "optax and a rate": (
        {"optimizer": optax.adam(1e-3), "learning_rate": 0.1},
        "fit: learning_rate=0.1 is for a named optimizer",
    ),
    "unknown optimizer": ({"optimizer": "adamm"}, "fit: optimizer: unknown optimizer 'adamm'"),
    "schedule arity": (
        {"optimizer": "sgd", "learning_rate": lambda: 0.1},
        r"fit: learning_rate is a schedule, .* schedule\(0\) raised TypeError",
    ),
    "negative schedule": (
        {"optimizer": "sgd", "learning_rate": optax.linear_schedule(0.1, -0.1, 5)},
        r"fit: learning_rate schedule must give one finite rate >= 0 .*schedule\(9\)",
    ),
    "metric=3": (
        {"eval_data": {"val": None}, "early_stopping": EarlyStopping(2, metric=3)},
        "fit: early_stopping metric must be a metric's name",
    ),
}


@pytest.mark.parametrize("what", list(BAD_FIT))
def test_smaller_fit_arguments_are_refused_by_name(what):
    X, y = _data()
    model, p = _net()
    kw, match = BAD_FIT[what]
    if "eval_data" in kw:
        kw = {**kw, "eval_data": {"val": (X, y)}}
    with pytest.raises(ValueError, match=match):
        nnjax.fit(model, p, X, y, epochs=2, batch_size=10, **kw)


def test_early_stopping_takes_numpy_numbers():
    rule = check_early_stopping(EarlyStopping(np.int64(2), min_delta=np.float32(0.1)), ("val",))
    assert rule.patience == 2 and type(rule.patience) is int
    assert rule.min_delta == pytest.approx(0.1) and type(rule.min_delta) is float
    with pytest.raises(ValueError, match="min_delta must be a finite number >= 0"):
        check_early_stopping(EarlyStopping(2, min_delta="0.1"), ("val",))


@pytest.mark.parametrize("make", [make_epochs_fn, make_train_step, SteppedLoop])
def test_an_optimizer_name_is_refused_where_a_transformation_is_needed(make):
    model, _ = _net()
    kw = dict(n_examples=50, batch_size=10) if make is not make_train_step else {}
    with pytest.raises(ValueError, match=r"optimizer must be an optax.GradientTransformation .*"):
        make(model, LOSS, "adam", **kw)


def test_the_order_functions_take_the_keys_fit_takes():
    want = run_batch_indices(jax.random.key(7), 2, 10, 5)
    np.testing.assert_array_equal(run_batch_indices(7, 2, 10, 5), want)
    np.testing.assert_array_equal(run_batch_indices(jnp.array(7), 2, 10, 5), want)
    np.testing.assert_array_equal(run_batch_indices(None, 2, 10, 5), run_batch_indices(0, 2, 10, 5))
    order_key, _ = run_keys(7)
    typed_key, _ = run_keys(jax.random.key(7))
    np.testing.assert_array_equal(
        np.asarray(batch_indices(7, 1, 10, 5)),
        np.asarray(batch_indices(jax.random.key(7), 1, 10, 5)),
    )
    assert jax.random.key_data(order_key).tolist() == jax.random.key_data(typed_key).tolist()
    X, y = _data()
    run, carry = _loop()
    jax.eval_shape(run, carry, jnp.arange(1), 7, X, y)  # an int seed, as fit takes it
    with pytest.raises(ValueError, match=r"run_batch_indices: key must be an int seed or one PRNG"):
        run_batch_indices(1.5, 2, 10, 5)


@pytest.mark.parametrize(
    "seed, alias",
    [(2**32 + 5, 5), (-1, 2**32 - 1), (np.uint64(2**40), 0), (np.int64(2**32), 0)],
)
def test_a_seed_outside_32_bits_is_refused_not_aliased(seed, alias):
    """Review: without x64 JAX keeps a seed's low 32 bits, so fit(key=2**32 + 5) was the run
    of seed 5 (and key=-1 that of 4294967295): two seeds of a sweep, one run."""
    assert not jax.config.jax_enable_x64  # the hazard guarded against: JAX aliases the seed
    assert jax.random.key_data(jax.random.key(int(seed))).tolist() == (
        jax.random.key_data(jax.random.key(alias)).tolist()
    )
    want = (
        rf"fit: key as a seed must be an int in \[0, 2\*\*32\), got {int(seed)} \(JAX keeps its "
        rf"low 32 bits: it would be seed {alias}\)"
    )
    with pytest.raises(ValueError, match=want):
        nnjax.fit(*_net(), *_data(), epochs=1, key=seed)
    with pytest.raises(
        ValueError, match=r"run_keys: key as a seed must be an int in \[0, 2\*\*32\)"
    ):
        run_keys(seed)
    top, zero = run_keys(2**32 - 1)[0], run_keys(0)[0]  # the largest seed is taken
    assert jax.random.key_data(top).tolist() != jax.random.key_data(zero).tolist()


def test_seeds_given_to_the_study_functions_are_ints_in_32_bits():
    """compare's seed_keys and the night's simulate_night took a seed as given: 2**32 was
    the run of seed 0; a float is no seed."""
    from nnjax.brain.night import simulate_night
    from nnjax.compare.study import seed_keys

    with pytest.raises(
        ValueError, match=r"seed_keys: seed as a seed must be an int in \[0, 2\*\*32"
    ):
        seed_keys(2**32)
    with pytest.raises(ValueError, match=r"seed_keys: seed must be an int seed .*got 2.5"):
        seed_keys(2.5)
    with pytest.raises(ValueError, match=r"simulate_night: seed must be an int seed .*got True"):
        simulate_night(None, 1.0, seed=True)
    init, _ = seed_keys(np.int64(3))
    assert jax.random.key_data(init).tolist() == jax.random.key_data(seed_keys(3)[0]).tolist()
