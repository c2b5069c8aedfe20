"""fit's options in combinations: early stopping beside a caller's stop flag, a stopped run's
best epoch, a metric never finite, and arguments refused with a clear error instead of a
silent misreading or a traceback from inside the compiled loop."""

import jax
import numpy as np
import pytest

import nnjax
from nnjax.train import StopFlag, TrainingStopped
from nnjax.train.early import EarlyStopping


def _data(n=40, d=5, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)).astype(np.float32)
    return X, (X[:, 0] > 0).astype(np.int32) + (X[:, 1] > 1).astype(np.int32)


def _mlp(sizes=(4, 3), d=5):
    model = nnjax.mlp(list(sizes))
    return model, model.init(jax.random.key(0), (-1, d))[1]


def test_early_stopping_leaves_the_callers_stop_flag_unset():
    """Early stopping requested its stop on the caller's flag: the next fit with the same flag
    (a sweep inside one stop_on_signals block) stopped at once, before epoch 1."""
    X, y = _data()
    Xv, yv = _data(20, seed=1)
    model, params = _mlp()
    flag = StopFlag()
    kw = dict(optimizer="sgd", learning_rate=0.5, batch_size=8, eval_data={"val": (Xv, yv)})
    res = nnjax.fit(
        model, params, X, y, epochs=30, early_stopping=EarlyStopping(1), stop=flag, **kw
    )
    assert res.best_epoch is not None and len(res.metrics["val_loss"]) < 30
    assert flag.reason is None
    again = nnjax.fit(model, params, X, y, epochs=2, stop=flag)  # not stopped at epoch 0
    assert len(again.metrics["step_loss_mean"]) == 2
    # the caller's own request still stops a run with early stopping, with its reason
    with pytest.raises(TrainingStopped, match="after epoch 2: mine") as e:
        nnjax.fit(
            model, params, X, y, epochs=5, eval_data={"val": (X, y)}, stop=flag,
            early_stopping=EarlyStopping(10),
            on_epochs=lambda d, m: d == 2 and flag.request("mine"),
        )  # fmt: skip
    assert e.value.epochs_done == 2 and flag.reason == "mine"


def test_a_stopped_run_with_early_stopping_says_whose_params_it_holds():
    """TrainingStopped.result held the best epoch's params with best_epoch None."""
    X, y = _data()
    Xv, yv = _data(20, seed=1)
    model, params = _mlp()
    flag = StopFlag()
    with pytest.raises(TrainingStopped) as e:  # mode "max" on a falling loss: epoch 1 is best
        nnjax.fit(
            model, params, X, y, epochs=6, batch_size=8, eval_data={"val": (Xv, yv)},
            early_stopping=EarlyStopping(10, mode="max"), stop=flag,
            on_epochs=lambda done, m: done == 3 and flag.request("user"),
        )  # fmt: skip
    r = e.value.result
    losses = r.metrics["val_loss"]
    assert len(losses) == 3 and losses[0] > losses[1] > losses[2]
    assert r.best_epoch == 1
    got = nnjax.evaluate(model, r.params, Xv, yv)["loss"]
    np.testing.assert_allclose(got, losses[0], rtol=1e-6)


def test_early_stopping_on_a_metric_never_finite_ends_without_a_crash():
    """The stop reason formatted best=None: TypeError: unsupported format string."""
    X, y = _data()
    model, params = _mlp()
    res = nnjax.fit(
        model, params, X, y, epochs=4, eval_data={"val": (X, y)}, optimizer="sgd",
        learning_rate=1e30, check_finite=False, early_stopping=EarlyStopping(2),
    )  # fmt: skip
    assert res.best_epoch is None and len(res.metrics["val_loss"]) < 4
    assert not np.isfinite(res.metrics["val_loss"]).any()


@pytest.mark.parametrize("value", [None, "no", 0.0, 1])
def test_check_finite_takes_a_bool_only(value):
    """None and 0.0 turned the checks off, "no" left them on: truthiness, not a bool."""
    X, y = _data()
    model, params = _mlp()
    with pytest.raises(ValueError, match="fit: check_finite must be True or False, got"):
        nnjax.fit(model, params, X, y, epochs=1, check_finite=value)


def test_integer_params_are_refused_naming_the_leaf():
    """They failed inside the compiled loop with JAX's 'grad requires real- or
    complex-valued inputs'."""
    X, y = _data()
    model, params = _mlp()
    params[2]["W"] = np.asarray(params[2]["W"] * 10, np.int32)
    with pytest.raises(ValueError, match=r"fit: params\[2\]\['W'\] has dtype int32; every leaf"):
        nnjax.fit(model, params, X, y, epochs=1)


def test_softmax_cross_entropy_on_one_output_is_refused():
    """A softmax over one class is 1: the loss was 0 at every step and nothing trained."""
    X, y = _data()
    model, params = _mlp((4, 1))
    with pytest.raises(ValueError, match="fit: loss 'softmax_cross_entropy' on the model's 1 "):
        nnjax.fit(model, params, X, np.zeros(len(X), np.int32), epochs=1)


@pytest.mark.parametrize("rate", [-1.0, float("nan"), "0.1", 0.0])
def test_injectable_optimizer_checks_a_concrete_rate(rate):
    from nnjax.optim import injectable_optimizer

    with pytest.raises(ValueError, match="learning_rate must be"):
        injectable_optimizer("sgd", rate)
    jax.vmap(lambda lr: injectable_optimizer("sgd", lr).init({"w": np.ones(2)}))(np.ones(2))
