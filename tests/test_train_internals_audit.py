"""Audit of the training engine's internals (nnjax/train) on argument combinations nobody tried.

Each defect test failed on the code before its fix (the old output is quoted in its
docstring); the others hold a documented property against an oracle: the NumPy twin of one
run written out by hand, the order of :mod:`nnjax.train.order`, or the run in another
execution mode, bit for bit.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import nnjax
from nnjax import EarlyStopping
from nnjax.train import NonFiniteLossError, run_batch_indices
from nnjax.train.step import classification_accuracy


def _data(n=60, d=4, k=3, seed=0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)).astype(dtype), rng.integers(0, k, n)


def _init(model, d=4):
    return model.init(jax.random.key(0), (d,))[1]


def _equal(a, b) -> bool:
    return all(np.array_equal(u, v) for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


# ---- defects ------------------------------------------------------------------------------


def test_a_nonfinite_step_is_named_by_its_step_loss_index_and_counted_batches():
    """Before: 'at step 8 (batch 2 of epoch 3)' for step_loss[8] with 3 batches an epoch:
    the batch counted from 0 beside an epoch counted from 1, so 'batch 2' was the third."""
    X, y = _data()
    model = nnjax.mlp([8, 3])
    kw = dict(epochs=8, batch_size=16, optimizer="sgd", learning_rate=1e3)
    res = nnjax.fit(model, _init(model), X, y, check_finite=False, **kw)
    i = int(np.flatnonzero(~np.isfinite(res.step_loss))[0])
    T = 60 // 16
    want = rf"at step_loss\[{i}\] \(batch {i % T + 1} of {T} in epoch {i // T + 1}\)"
    with pytest.raises(NonFiniteLossError, match=want):
        nnjax.fit(model, _init(model), X, y, **kw)


@pytest.mark.parametrize(
    "bad, shown", [("mlp", r"str 'mlp' \(build one"), (None, "NoneType None"), (3, "int 3")]
)
def test_a_model_that_is_no_model_is_refused_naming_fit(bad, shown):
    """Before: 'model must be an nnjax Layer or an apply function, got <class 'str'>',
    naming neither fit nor the value."""
    X, y = _data()
    model = nnjax.mlp([8, 3])
    with pytest.raises(ValueError, match=rf"^fit: model must be an nnjax Layer .* got {shown}"):
        nnjax.fit(bad, _init(model), X, y, epochs=1)


def test_a_full_batch_optimizer_with_mini_batches_names_the_batch_size():
    """Before: "optimizer 'gd' is full-batch (batch_size=None); ..." without the value."""
    X, y = _data()
    model = nnjax.mlp([3])
    with pytest.raises(ValueError, match=r"'gd' is full-batch: batch_size must be None "
                       r"\(or n = 60\), got batch_size=16"):  # fmt: skip
        nnjax.fit(model, _init(model), X, y, optimizer="gd", batch_size=16)


def test_an_unknown_early_stopping_mode_is_named():
    """Before: "early_stopping mode must be 'min', 'max' or None" without the value."""
    X, y = _data()
    model = nnjax.mlp([3])
    rule = EarlyStopping(2, "step_loss_mean", mode="up")
    with pytest.raises(ValueError, match=r"early_stopping mode must be .* got 'up'"):
        nnjax.fit(model, _init(model), X, y, early_stopping=rule)


def test_accuracy_is_float64_under_x64_and_exact():
    """Before: float32 under x64 (jnp.mean of a bool array), 1/3 as 0.3333333432674408."""
    with jax.enable_x64(True):
        pred = jnp.asarray([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]], jnp.float64)
        acc = classification_accuracy(pred, jnp.asarray([0, 0, 1]))
        assert acc.dtype == jnp.float64 and float(acc) == 1 / 3
        X, y = _data(dtype=np.float64)
        Xv, yv = _data(30, seed=1, dtype=np.float64)
        model = nnjax.mlp([3])
        params = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), _init(model))
        res = nnjax.fit(model, params, X, y, epochs=2, eval_data={"v": (Xv, yv)})
        W, b = (np.asarray(res.params[0][k]) for k in ("W", "b"))
        right = np.sum(np.argmax(Xv @ W + b, axis=1) == yv)
        assert res.metrics["v_accuracy"].dtype == np.float64
        assert res.metrics["v_accuracy"][-1] == right / 30
    assert classification_accuracy(pred.astype(jnp.bfloat16), jnp.asarray([0, 0, 1])).dtype == (
        jnp.float32
    )


# ---- properties found sound, held against oracles -----------------------------------------


def _softmax_step(W, b, X, y):
    """Mean softmax cross-entropy of X @ W + b against labels y, and its gradient."""
    z = X @ W + b
    z = z - z.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    rows = np.arange(len(y))
    g = np.exp(logp)
    g[rows, y] -= 1
    g /= len(y)
    return -logp[rows, y].mean(), X.T @ g, g.sum(axis=0)


def test_history_equals_a_numpy_run_of_the_documented_order_in_float64():
    """n = 50, b = 16: T = 3 steps an epoch on the permutation's first 48 rows (2 dropped);
    step_loss is each step's loss before its update, step_loss_mean their epoch mean (not the
    loss on the whole training set), val_loss the loss after the epoch: all to 1e-12."""
    n, b, E, lr = 50, 16, 3, 0.1
    with jax.enable_x64(True):
        X, y = _data(n, dtype=np.float64)
        Xv, yv = _data(20, seed=1, dtype=np.float64)
        model = nnjax.mlp([3])
        params = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), _init(model))
        res = nnjax.fit(model, params, X, y, epochs=E, batch_size=b, optimizer="sgd",
                        learning_rate=lr, eval_data={"val": (Xv, yv)})  # fmt: skip
        idx = run_batch_indices(0, E, n, b)
    T = n // b
    assert idx.shape == (E * T, b) and res.step_loss.shape == (E * T,)
    W, c = np.asarray(params[0]["W"]), np.asarray(params[0]["b"])
    losses, means, val = [], [], []
    for e in range(E):
        rows = idx[e * T : (e + 1) * T]
        assert len(np.unique(rows)) == T * b  # T b distinct rows of the epoch's permutation
        for t in range(T):
            loss, gW, gb = _softmax_step(W, c, X[rows[t]], y[rows[t]])
            losses.append(loss)
            W, c = W - lr * gW, c - lr * gb
        means.append(np.mean(losses[-T:]))
        val.append(_softmax_step(W, c, Xv, yv)[0])
    assert not np.array_equal(idx[:T], idx[T : 2 * T])  # another order each epoch
    np.testing.assert_allclose(res.step_loss, losses, rtol=0, atol=1e-12)
    np.testing.assert_allclose(res.metrics["step_loss_mean"], means, rtol=0, atol=1e-12)
    np.testing.assert_allclose(res.metrics["val_loss"], val, rtol=0, atol=1e-12)
    np.testing.assert_allclose(res.params[0]["W"], W, rtol=0, atol=1e-12)
    assert abs(_softmax_step(W, c, X, y)[0] - means[-1]) > 1e-3  # not the whole-set loss


def test_early_stopping_returns_the_best_epochs_carry_in_every_execution_mode():
    """Patience 1 and 2: the run stops at the same epoch in every mode, best_epoch is the
    argmin of val_loss, and the carry equals a plain run of best_epoch epochs, bit for bit
    (the other modes agree up to float rounding, as documented: measured 1 ulp apart)."""
    X, y = _data()
    Xv, yv = _data(20, seed=1)
    model = nnjax.mlp([8, 3])
    params = _init(model)
    kw = dict(batch_size=16, learning_rate=0.05, eval_data={"val": (Xv, yv)})
    plains = {}  # the plain run of each best_epoch, run once (both patiences keep epoch 6)
    for patience in (1, 2):
        runs = [
            nnjax.fit(
                model,
                params,
                X,
                y,
                epochs=30,
                execution=mode,
                early_stopping=EarlyStopping(patience),
                **kw,
            )  # fmt: skip
            for mode in ("fused", "chunked", "per_step")
        ]
        first = runs[0]
        val = first.metrics["val_loss"]
        assert first.best_epoch == int(np.argmin(val)) + 1
        assert len(val) == first.best_epoch + patience < 30
        if first.best_epoch not in plains:
            plains[first.best_epoch] = nnjax.fit(model, params, X, y, epochs=first.best_epoch, **kw)
        plain = plains[first.best_epoch]
        assert _equal(first.params, plain.params) and _equal(first.opt_state, plain.opt_state)
        for other in runs[1:]:
            assert other.best_epoch == first.best_epoch
            np.testing.assert_allclose(other.metrics["val_loss"], val, rtol=1e-6)
            for a, b in zip(jax.tree.leaves(other.params), jax.tree.leaves(first.params)):
                np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("n, batch_size, steps", [(7, 3, 2), (50, 1, 50), (1, 1, 1), (1, None, 1)])
def test_odd_batch_arithmetic_runs_n_over_b_steps(n, batch_size, steps):
    """n % b rows dropped each epoch; b = 1 and n = 1 train too."""
    X, y = _data(n)
    model = nnjax.mlp([3])
    res = nnjax.fit(model, _init(model), X, y, epochs=2, batch_size=batch_size)
    assert res.step_loss.shape == (2 * steps,) and np.isfinite(res.step_loss).all()


def test_swapped_loss_and_optimizer_are_named_as_such():
    """Before: make_train_step(model, optax.adam(1e-3), "softmax_cross_entropy") suggested
    nnjax.get_optimizer('softmax_cross_entropy', learning_rate), itself an invalid call."""
    model = nnjax.mlp([3])
    with pytest.raises(ValueError, match=r"got the loss name 'softmax_cross_entropy': are the"):
        nnjax.make_train_step(model, optax.adam(1e-3), "softmax_cross_entropy")
    with pytest.raises(ValueError, match=r"get_optimizer\('adam', learning_rate\)\), got 'sgdd'"):
        nnjax.make_train_step(model, "softmax_cross_entropy", "sgdd")
