"""fit checks params against the model and eval_data's type; early stopping keeps the best
epoch's params; FitResult prints in one short line."""

import jax
import numpy as np
import pytest

import nnjax
from nnjax.train import ChunkReport, Driven, EpochOutputs, StopFlag
from nnjax.train.early import EarlyStopping, EarlyStoppingMonitor


def _data(n=64, d=6, k=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)).astype(np.float32)
    return X, (X[:, 0] > 0).astype(np.int32) + (X[:, 1] > 1).astype(np.int32) * (k > 2)


def test_params_of_another_width_are_refused_naming_the_leaf():
    """The issue's example: mlp([64, 32, 10]) given params of mlp([64, 16, 10])."""
    X, y = _data(d=20)
    _, p16 = nnjax.mlp([64, 16, 10]).init(jax.random.key(0), (-1, 20))
    with pytest.raises(ValueError) as e:
        nnjax.fit(nnjax.mlp([64, 32, 10]), p16, X, y, epochs=1)
    msg = str(e.value)
    assert "params[2]['W'] has shape (64, 16), the model's has shape (64, 32)" in msg, msg


def test_params_with_a_missing_layer_and_an_extra_leaf():
    X, y = _data(d=20)
    model = nnjax.mlp([8, 3])
    _, p = model.init(jax.random.key(0), (-1, 20))
    with pytest.raises(ValueError, match=r"params\[2\]\['W'\] is missing .*\(8, 3\)"):
        nnjax.fit(model, p[:2], X, y, epochs=1)
    extra = [p[0], p[1], {**p[2], "gamma": np.ones(3, np.float32)}]
    with pytest.raises(ValueError, match=r"params\[2\]\['gamma'\] is not in the model's params"):
        nnjax.fit(model, extra, X, y, epochs=1)


def test_stateful_state_is_checked_too():
    X, y = _data(d=6)
    model = nnjax.serial(nnjax.Dense(5), nnjax.layers.BatchNorm(), nnjax.Dense(3))
    _, p, s = model.init(jax.random.key(0), (-1, 6))
    bad = [(), {**s[1], "mean": np.zeros(4, np.float32)}, ()]
    with pytest.raises(ValueError, match=r"state\[1\]\['mean'\] has shape \(4,\).*\(5,\)"):
        nnjax.fit(model, p, X, y, epochs=1, state=bad)


@pytest.mark.parametrize(
    "eval_data, match",
    [
        ("pair", r"eval_data must be a dict, got a tuple of 2 \(an \(X, y\) pair\?\).*'test'"),
        ("list", r"eval_data must be a dict, got a list"),
        ("bad value", r"eval_data\['val'\] must be an \(X, y\) pair, got a ndarray"),
    ],
)
def test_eval_data_of_the_wrong_type_says_what_to_pass(eval_data, match):
    X, y = _data()
    model = nnjax.mlp([3])
    _, p = model.init(jax.random.key(0), (-1, 6))
    given = {"pair": (X, y), "list": [(X, y)] * 3, "bad value": {"val": X}}[eval_data]
    with pytest.raises(ValueError, match=match):
        nnjax.fit(model, p, X, y, epochs=1, eval_data=given)


def test_evaluate_refuses_out_of_range_labels():
    X, y = _data()
    model = nnjax.mlp([3])
    _, p = model.init(jax.random.key(0), (-1, 6))
    with pytest.raises(ValueError, match=r"labels from 0 to 3, but the model has 3 outputs"):
        nnjax.evaluate(model, p, X, np.where(y == 2, 3, y))


def test_targets_that_do_not_fit_the_loss_are_refused_before_compiling():
    X, y = _data()
    model = nnjax.mlp([3])
    _, p = model.init(jax.random.key(0), (-1, 6))
    with pytest.raises(ValueError, match=r"fit: y \(64,\) does not fit loss 'mse' .* \(64, 3\)"):
        nnjax.fit(model, p, X, y, epochs=1, loss="mse")
    with pytest.raises(ValueError, match=r"fit: y \(64,\) does not fit .*'softmax_cross_entropy'"):
        nnjax.fit(model, p, X, y.astype(np.float32), epochs=1)
    ev = {"val": (X, np.zeros((64, 2), np.float32))}
    with pytest.raises(ValueError, match=r"eval_data\['val'\] labels \(64, 2\) does not fit"):
        nnjax.fit(model, p, X, y, epochs=1, eval_data=ev)
    with pytest.raises(ValueError, match="evaluate: y .* does not fit loss 'mse'"):
        nnjax.evaluate(model, p, X, y, loss="mse")


def test_eval_inputs_another_model_cannot_take_name_the_set():
    X, y = _data()
    model = nnjax.mlp([3])
    _, p = model.init(jax.random.key(0), (-1, 6))
    with pytest.raises(
        ValueError, match=r"fit: eval_data\['t'\]: model does not accept X .*\(64, 4\)"
    ):
        nnjax.fit(model, p, X, y, epochs=1, eval_data={"t": (X[:, :4], y)})
    with pytest.raises(ValueError, match=r"evaluate: model does not accept X of shape \(64, 4\)"):
        nnjax.evaluate(model, p, X[:, :4], y)


def test_eval_sets_of_other_lengths_are_each_checked_against_their_own_outputs():
    """A convolution takes any length: an eval set of length 12 before one of the training
    length 16 must not make the second be checked against outputs of length 12."""
    model = nnjax.serial(nnjax.layers.Conv(2, 3, padding="SAME"))
    _, p = model.init(jax.random.key(0), (-1, 16, 1))
    rng = np.random.default_rng(0)
    X, Xs = rng.normal(size=(32, 16, 1)), rng.normal(size=(8, 12, 1))
    X, Xs = X.astype(np.float32), Xs.astype(np.float32)
    Y, Ys = np.repeat(X, 2, axis=2), np.repeat(Xs, 2, axis=2)
    ev = {"short": (Xs, Ys), "same": (X[:8], Y[:8])}
    res = nnjax.fit(model, p, X, Y, loss="mse", epochs=1, batch_size=8, eval_data=ev)
    assert np.isfinite(res.metrics["short_loss"][-1]) and np.isfinite(res.metrics["same_loss"][-1])


@pytest.mark.parametrize("lr", ["0.1", True])
def test_a_learning_rate_that_is_not_a_number_is_refused(lr):
    X, y = _data()
    model = nnjax.mlp([3])
    _, p = model.init(jax.random.key(0), (-1, 6))
    with pytest.raises(ValueError, match="fit: learning_rate must be a positive float"):
        nnjax.fit(model, p, X, y, epochs=1, optimizer="sgd", learning_rate=lr)


_SPLIT = jax.random.split(jax.random.key(0), 2)


@pytest.mark.parametrize(
    "key, got",
    [
        (_SPLIT, r"key<fry> of shape \(2,\)"),
        (np.zeros((2, 2), np.uint32), r"uint32 of shape \(2, 2\)"),
        (1.5, "float 1.5"),
        (True, "bool True"),
    ],
)
def test_a_key_that_is_not_one_key_is_refused_before_compiling(key, got):
    X, y = _data()
    model = nnjax.mlp([3])
    _, p = model.init(jax.random.key(0), (-1, 6))
    with pytest.raises(ValueError, match=f"fit: key must be an int seed or one PRNG.*got {got}"):
        nnjax.fit(model, p, X, y, epochs=1, key=key)


def test_an_int_seed_a_typed_key_and_a_raw_key_give_the_same_run():
    X, y = _data()
    model = nnjax.mlp([3])
    _, p = model.init(jax.random.key(0), (-1, 6))
    runs = [
        nnjax.fit(model, p, X, y, epochs=2, batch_size=8, key=k).params
        for k in (5, np.int64(5), jax.random.key(5), jax.random.PRNGKey(5), jax.numpy.asarray(5))
    ]
    for other in runs[1:]:
        jax.tree.map(np.testing.assert_array_equal, runs[0], other)


def _report(begin, value, carry, total=20, stopping=None):
    out = EpochOutputs(np.zeros((1, 2)), {"val_loss": np.array([value])})
    return ChunkReport(begin, begin + 1, total, carry, out, [out], 0.1, stopping, 0)


def test_monitor_on_a_fake_sequence_stops_after_patience_and_keeps_the_best():
    losses = [1.0, 0.8, 0.85, 0.7, 0.71, 0.72, np.nan, 0.9, 0.5]
    stop = StopFlag()
    mon = EarlyStoppingMonitor(EarlyStopping(patience=3), stop)
    for e, v in enumerate(losses):
        carry = {"w": jax.numpy.full(2, float(e))}
        mon.hook(_report(e, v, carry))
        mon.hook(_report(e, v, carry))  # the driver may show a report twice: counted once
        if stop.requested:
            break
    assert e == 6  # epochs 5, 6, 7 (1-based) did not beat 0.7 (nan never improves)
    assert mon.best_epoch == 4 and mon.best == 0.7
    assert "did not improve for 3 epochs (best 0.7 at epoch 4)" in stop.reason
    np.testing.assert_array_equal(mon.best_carry["w"], [3.0, 3.0])
    driven = mon.finish(Driven({"w": None}, None, 0.0, 0.0, 7, stop.reason))
    assert driven.stopped is None and driven.carry is mon.best_carry
    other = StopFlag()
    other.request("SIGTERM")  # someone else stopped first: still a stop
    assert mon.finish(Driven({}, None, 0.0, 0.0, 7, "SIGTERM")).stopped == "SIGTERM"


def test_monitor_accuracy_is_maximised_and_min_delta():
    mon = EarlyStoppingMonitor(EarlyStopping(2, "val_accuracy", min_delta=0.05), StopFlag())
    for e, v in enumerate([0.5, 0.6, 0.62, 0.64, 0.70]):
        out = EpochOutputs(np.zeros((1, 1)), {"val_accuracy": np.array([v])})
        mon.hook(ChunkReport(e, e + 1, 10, {}, out, [out], 0.0, None, 0))
        if mon.stop.requested:
            break
    assert e == 3 and mon.best_epoch == 2  # 0.62, 0.64 are within 0.05 of 0.6


def test_early_stopping_real_run_returns_the_best_epochs_params():
    X, y = _data(n=96, seed=1)
    Xv, yv = _data(n=48, seed=2)
    model = nnjax.mlp([32, 3])
    _, p = model.init(jax.random.key(0), (-1, 6))
    kw = dict(batch_size=16, learning_rate=0.05, eval_data={"val": (Xv, yv)}, key=3)
    res = nnjax.fit(model, p, X, y, epochs=60, early_stopping=EarlyStopping(2), **kw)
    n_run, best = len(res.metrics["val_loss"]), res.best_epoch
    assert n_run < 60 and n_run == best + 2  # stopped 2 epochs after its best
    assert res.metrics["val_loss"][best - 1] == res.metrics["val_loss"].min()
    again = nnjax.fit(model, p, X, y, epochs=best, **kw)  # the same run, cut at the best
    jax.tree.map(np.testing.assert_array_equal, res.params, again.params)
    assert nnjax.evaluate(model, res.params, Xv, yv)["loss"] == pytest.approx(
        float(res.metrics["val_loss"][best - 1]), rel=1e-6
    )


def test_early_stopping_errors():
    X, y = _data()
    model = nnjax.mlp([3])
    _, p = model.init(jax.random.key(0), (-1, 6))
    with pytest.raises(ValueError, match=r"watches 'val_loss'.*eval_data=\{'val': \(X, y\)\}"):
        nnjax.fit(model, p, X, y, epochs=2, early_stopping=EarlyStopping(2))
    with pytest.raises(ValueError, match="patience must be an int >= 1"):
        nnjax.fit(model, p, X, y, eval_data={"val": (X, y)}, early_stopping=EarlyStopping(0))
    with pytest.raises(ValueError, match="one epoch per compiled call"):
        nnjax.fit(
            model, p, X, y, eval_data={"val": (X, y)}, epochs_per_call=2,
            early_stopping=EarlyStopping(2),
        )  # fmt: skip


def test_fit_result_repr_is_short():
    X, y = _data()
    model = nnjax.mlp([16, 3])
    _, p = model.init(jax.random.key(0), (-1, 6))
    res = nnjax.fit(model, p, X, y, epochs=3, batch_size=16, eval_data={"test": (X, y)})
    text = repr(res)
    assert "\n" not in text and len(text) < 300, text
    assert text.startswith("FitResult(params 4 arrays / 163 values, epochs 3 x 4 steps")
    acc = res.metrics["test_accuracy"][-1]
    assert f"test_accuracy {acc:.4g}" in text and "Array" not in text


def test_data_that_is_not_numbers_or_that_jax_would_change_is_refused_naming_it():
    """review: y of strings ended in JAX's 'Error interpreting argument to stage'; an int64
    X beyond int32 (x64 off) silently wrapped around (2**40 became 0) and trained; a float64
    X beyond float32's range was reported as nan/inf the data did not hold."""
    X, y = _data()
    model = nnjax.mlp([8, 3])
    _, p = model.init(jax.random.key(0), (-1, X.shape[1]))
    wrap = X.astype(np.int64)
    wrap[5, 2] = 2**40
    wide = X.astype(np.float64)
    wide[7, 0] = 1e39
    cases = [
        (
            X,
            y.astype(str),
            r"fit: y must hold numbers \(bool, int or float\), got dtype <U\d+ \(text",
        ),
        (X.astype(complex), y, "fit: X must hold numbers .* got dtype complex128"),
        (wrap, y, r"fit: X holds integers from -?\d+ to 1099511627776, beyond int32"),
        (wide, y, r"fit: X holds values beyond float32's range .* would become inf"),
    ]
    for Xb, yb, match in cases:
        with pytest.raises(ValueError, match=match):
            nnjax.fit(model, p, Xb, yb, epochs=1)
    with pytest.raises(ValueError, match=r"fit eval_data\['val'\]: X holds integers"):
        nnjax.fit(model, p, X, y, epochs=1, eval_data={"val": (wrap, y)})
    with pytest.raises(ValueError, match="evaluate: y must hold numbers"):
        nnjax.evaluate(model, p, X, y.astype(object))
    small = nnjax.fit(model, p, np.round(X * 4).astype(np.int64), y, epochs=2, key=1)
    same = nnjax.fit(model, p, np.round(X * 4).astype(np.float32), y, epochs=2, key=1)
    np.testing.assert_allclose(small.step_loss, same.step_loss, rtol=1e-6)  # ints in range


def test_float64_jax_arrays_made_under_x64_train_in_float32_once_x64_is_off(tmp_path):
    """review: params created inside ``jax.enable_x64(True)`` and given to fit outside it
    (x64 off) ended in lax.scan's "carry input and carry output must have equal types"; a
    float64 X too, in a custom_jvp error. They now train as their NumPy float64 twins do
    (float32, as JAX converts NumPy arrays), and the checkpoint records float32."""
    X, y = _data()
    model = nnjax.mlp([8, 3])
    assert not jax.config.jax_enable_x64
    with jax.enable_x64(True):
        _, p64 = model.init(jax.random.key(0), (-1, X.shape[1]))
        X64 = jax.numpy.asarray(X, jax.numpy.float64)
    assert {a.dtype for a in jax.tree.leaves(p64)} == {np.dtype("float64")}
    host = jax.tree.map(np.asarray, p64)  # NumPy float64: JAX makes it float32
    kw = dict(epochs=2, batch_size=16, key=1)
    want = nnjax.fit(model, host, X, y, **kw)
    got = nnjax.fit(model, p64, X64, y, checkpoint_dir=tmp_path, **kw)
    assert {a.dtype for a in jax.tree.leaves(got.params)} == {np.dtype("float32")}
    np.testing.assert_array_equal(got.step_loss, want.step_loss)
    for a, b in zip(jax.tree.leaves(got.params), jax.tree.leaves(want.params)):
        np.testing.assert_array_equal(a, b)
    assert nnjax.checkpoint.load(tmp_path).metadata["config"]["dtype"] == "float32"
