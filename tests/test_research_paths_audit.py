"""The research-script paths of training: nnjax's exported loop (``make_epochs_fn``,
``Carry``, :mod:`nnjax.train.order`) under ``jit``, ``vmap`` over seeds and learning rates
and ``grad`` through a short run, PRNG keys of every kind, the batch order against what
``fit`` trains on, and a study's runs against ``fit``'s. Oracles: a Python loop of single
runs (float64, to 1e-12), central finite differences, and NumPy SGD on a linear model
whose every update reveals its batch."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import nnjax
from nnjax.layers import Dense
from nnjax.optim import get_optimizer
from nnjax.train import (
    Carry,
    EarlyStopping,
    batch_indices,
    make_epochs_fn,
    run_batch_indices,
    run_keys,
)

N, D = 13, 3


@pytest.fixture(autouse=True)
def x64():
    with jax.enable_x64(True):
        yield


def data(n=N):
    rng = np.random.default_rng(0)
    return rng.normal(size=(n, D)), rng.integers(0, 2, n)


def mlp_params():
    model = nnjax.mlp((5, 2), "tanh")
    return model, model.init(jax.random.key(1), (D,))[1]


def leaves_err(a, b) -> float:
    return max(float(np.max(np.abs(np.asarray(u) - np.asarray(v)))) for u, v in
               zip(jax.tree.leaves(a), jax.tree.leaves(b)))  # fmt: skip


def test_vmap_over_rates_and_seeds_equals_loop_of_single_runs():
    model, params = mlp_params()
    X, y = data()
    opt = optax.inject_hyperparams(optax.sgd)(learning_rate=0.1)
    run, steps = make_epochs_fn(model, "softmax_cross_entropy", opt, n_examples=N, batch_size=4)
    assert steps == N // 4

    def one(lr, key):
        state = opt.init(params)
        state.hyperparams["learning_rate"] = jnp.asarray(lr)
        carry, out = run(Carry(params, state), jnp.arange(3), key, X, y)
        return carry.params, out.step_loss

    lrs, keys = jnp.array([0.01, 0.1, 0.5, 1.0]), jax.random.split(jax.random.key(0), 4)
    vp, vl = jax.jit(jax.vmap(one))(lrs, keys)
    single = jax.jit(one)  # one run alone, compiled once for every rate and key below
    for i in range(4):
        p, losses = single(lrs[i], keys[i])
        assert leaves_err(p, jax.tree.map(lambda a, i=i: a[i], vp)) < 1e-12
        assert float(jnp.max(jnp.abs(losses - vl[i]))) < 1e-12
    # int seeds, traced under vmap, are the runs of those seeds; so are legacy keys
    seeds = jax.jit(jax.vmap(lambda s: one(0.1, s)[1]))(jnp.arange(3))
    legacy_keys = jax.vmap(jax.random.PRNGKey)(jnp.arange(3))
    legacy = jax.jit(jax.vmap(lambda k: one(0.1, k)[1]))(legacy_keys)
    for s in range(3):
        assert float(jnp.max(jnp.abs(seeds[s] - single(lrs[1], jax.random.key(s))[1]))) == 0
        assert float(jnp.max(jnp.abs(legacy[s] - seeds[s]))) == 0


@pytest.mark.parametrize("impl", ["rbg", "unsafe_rbg"])
def test_vmap_over_keys_of_another_prng_equals_the_runs_alone(impl):
    # JAX draws other bits for a batch of RngBitGenerator keys than for each alone: the
    # vmapped runs trained on other orders (0.26 apart in the loss) than the runs alone
    model, params = mlp_params()
    X, y = data()
    opt = optax.sgd(0.1)
    run, _ = make_epochs_fn(
        model, "softmax_cross_entropy", opt, n_examples=N, batch_size=4, dropout=True
    )
    keys = jax.random.split(jax.random.key(0, impl=impl), 3)

    def losses(k):
        return run(Carry(params, opt.init(params)), jnp.arange(3), k, X, y)[1].step_loss

    batched = jax.jit(jax.vmap(losses))(keys)
    order_key = jax.vmap(lambda k: run_keys(k)[0])(keys)
    rows = jax.vmap(lambda k: batch_indices(k, 2, N, 4))(order_key)
    alone = jax.jit(losses)  # one run alone, compiled once for the three keys
    for i in range(3):
        assert float(jnp.max(jnp.abs(batched[i] - alone(keys[i])))) == 0
        np.testing.assert_array_equal(rows[i], batch_indices(run_keys(keys[i])[0], 2, N, 4))


def test_grad_through_a_run_wrt_a_named_optimizers_rate():
    # get_optimizer refused a traced rate: "learning_rate must be a positive float or an
    # optax schedule, got JitTracer(~float64[])"
    model, params = mlp_params()
    X, y = data()

    def final_loss(lr):
        opt = get_optimizer("sgd", lr)
        run, _ = make_epochs_fn(model, "softmax_cross_entropy", opt, n_examples=N, batch_size=4)
        return run(Carry(params, opt.init(params)), jnp.arange(2), 0, X, y)[1].step_loss[-1, -1]

    h = 1e-6
    loss_at = jax.jit(final_loss)  # the rate traced: one compile for every rate below
    fd = (loss_at(0.1 + h) - loss_at(0.1 - h)) / (2 * h)
    g = jax.jit(jax.grad(final_loss))(0.1)
    assert abs(float(g - fd)) < 1e-8 and abs(float(g)) > 1e-3
    rates = jnp.array([0.05, 0.2])
    batched = jax.jit(jax.vmap(final_loss))(rates)
    assert float(jnp.max(jnp.abs(batched - jnp.stack([loss_at(float(r)) for r in rates])))) < 1e-12
    with pytest.raises(ValueError, match="learning_rate must be > 0"):
        get_optimizer("sgd", -0.1)  # concrete rates are still checked


@pytest.mark.parametrize("epoch", [-1, 2**32, 2**32 + 1])
def test_run_refuses_epoch_indices_outside_uint32(epoch):
    # run(..., epochs=[-1]) trained silently on the order of epoch 2**32 - 1
    model, params = mlp_params()
    X, y = data()
    opt = optax.sgd(0.1)
    run, _ = make_epochs_fn(model, "softmax_cross_entropy", opt, n_examples=N, batch_size=4)
    refused = rf"epochs must be epoch indices in \[0, 2\*\*32\), got {epoch}"
    with pytest.raises(ValueError, match=refused):
        run(Carry(params, opt.init(params)), np.array([0, epoch]), 0, X, y)
    with pytest.raises(ValueError, match="epoch must be an int in"):
        batch_indices(run_keys(0)[0], epoch, N, 4)  # the rule batch_indices already had
    carry, out = run(Carry(params, opt.init(params)), jnp.arange(0), 0, X, y)  # no epochs
    assert out.step_loss.shape == (0, 3) and leaves_err(carry.params, params) == 0


@pytest.mark.parametrize(
    "n, batch_size, epochs, key",
    [(13, 4, 3, 0), (7, 7, 2, 5), (7, None, 2, 1), (1, 1, 3, 2), (10, 3, 2, "legacy")],
)
def test_fit_trains_on_the_order_of_run_batch_indices(n, batch_size, epochs, key):
    # linear model, mse, SGD: each update reveals its batch; NumPy replays run_batch_indices
    key = jax.random.PRNGKey(3) if key == "legacy" else key
    rng = np.random.default_rng(n)
    X, y = rng.normal(size=(n, 2)), rng.normal(size=(n, 1))
    model = Dense(1)
    params = model.init(jax.random.key(1), (2,))[1]
    r = nnjax.fit(model, params, X, y, optimizer="sgd", learning_rate=0.1, loss="mse",
                  epochs=epochs, batch_size=batch_size, key=key)  # fmt: skip
    idx = run_batch_indices(key, epochs, n, batch_size)
    idx = np.tile(np.arange(n), (epochs, 1)) if idx is None else idx
    T = len(idx) // epochs
    for e in range(epochs):  # every example at most once an epoch; n % b of them dropped
        rows = idx[e * T : (e + 1) * T].ravel()
        assert len(set(rows)) == rows.size == (n // (batch_size or n)) * (batch_size or n)
    W, b = np.array(params["W"]), np.array(params["b"])
    for rows in idx:
        res = X[rows] @ W + b - y[rows]
        W, b = W - 0.1 * 2 * X[rows].T @ res / res.size, b - 0.1 * 2 * res.sum(0) / res.size
    assert np.abs(W - np.asarray(r.params["W"])).max() < 1e-12
    assert np.abs(b - np.asarray(r.params["b"])).max() < 1e-12
    assert r.step_loss.shape == (len(idx),)
    np.asarray(params["W"])  # the caller's params stay valid (nothing donated)


def test_fit_twice_on_the_same_params_and_an_early_stopping_tie():
    model, params = mlp_params()
    X, y = data(20)
    first = nnjax.fit(model, params, X, y, epochs=2, batch_size=5, execution="chunked")
    second = nnjax.fit(model, params, X, y, epochs=2, batch_size=5)
    assert leaves_err(first.params, second.params) < 1e-12
    assert float(np.asarray(params[0]["W"]).sum()) == pytest.approx(float(params[0]["W"].sum()))
    tie = nnjax.fit(model, params, X, y, epochs=6, batch_size=5, optimizer="sgd",
                    learning_rate=1e-300, eval_data={"val": (X, y)},
                    early_stopping=EarlyStopping(2))  # fmt: skip
    assert tie.best_epoch == 1 and len(tie.metrics["val_loss"]) == 3  # equal is no improvement


def test_study_runs_equal_fit_under_x64():
    # the study cast each rate to the data's float32 while the params were float64: 0.05
    # trained as 0.0500000007, 1e-8 away from fit's run
    from nnjax.compare.study import Splits, seed_keys, train_optimizer

    rng = np.random.default_rng(0)
    X = rng.normal(size=(24, 2)).astype(np.float32)
    y = (X[:, 0] > 0).astype(np.int32)
    splits = Splits((X, y), (X[:8], y[:8]), (X[:8], y[:8]), 2, True)
    model = nnjax.mlp((4, 2), "tanh")
    lrs, seeds = [0.05, 0.3], [3, 7]
    runs = train_optimizer("adam", lrs, seeds, model, splits, epochs=2, batch_size=8)
    for i, lr in enumerate(lrs):
        for j, seed in enumerate(seeds):
            init_key, train_key = seed_keys(seed)
            p = model.init(init_key, (-1, 2))[1]
            r = nnjax.fit(model, p, X, y, optimizer="adam", learning_rate=lr, epochs=2,
                          batch_size=8, key=train_key, eval_data={"val": splits.val})  # fmt: skip
            assert np.abs(r.step_loss - runs.step_loss[i, j]).max() < 1e-12
            assert np.abs(r.metrics["val_loss"] - runs.metrics["val_loss"][i, j]).max() < 1e-12


@pytest.mark.parametrize("make", [np.asarray, jnp.asarray, np.int64])
def test_fit_takes_epochs_as_a_concrete_integer_scalar_of_any_kind(make):
    # jnp.asarray(2) was refused ("epochs must be a positive int") while np.int64(2) ran
    X = np.linspace(-1, 1, 12, dtype=np.float32).reshape(6, 2)
    y = np.array([0, 1, 0, 1, 0, 1])
    model = nnjax.mlp([2, 2], activation="relu")
    _, params = model.init(jax.random.key(0), (-1, 2))
    kw = dict(optimizer="sgd", learning_rate=0.1, batch_size=3, key=1)
    a = nnjax.fit(model, params, X, y, epochs=make(2), **kw)
    b = nnjax.fit(model, params, X, y, epochs=2, **kw)
    assert jax.tree.all(jax.tree.map(np.array_equal, a.params, b.params))
    with pytest.raises(ValueError, match=r"fit: epochs must be a positive int, got"):
        nnjax.fit(model, params, X, y, epochs=make(0), **kw)
    with pytest.raises(ValueError, match=r"fit: epochs must be a positive int, got"):
        nnjax.fit(model, params, X, y, epochs=jnp.asarray(2.0), **kw)
