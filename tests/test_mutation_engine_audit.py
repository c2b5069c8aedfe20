"""Mutation audit of the training engine and the optimizer table: each test here failed on a
small fault (a mutant) that the rest of the suite let pass, and holds on the code as it is.

The oracles are written out independently: the run's order and dropout keys from
``jax.random`` itself (split, fold_in, permutation) fed to ``make_train_step`` by hand, the
driver's and the monitors' rules counted by hand on fabricated chunk reports, and the
optimizers' update equations in NumPy.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import nnjax
from nnjax.errors import NonFiniteLossError
from nnjax.layers import init_model
from nnjax.train import BoundedChunks, EarlyStopping, StopFlag, TrainingStopped
from nnjax.train.driver import ChunkReport
from nnjax.train.early import EarlyStoppingMonitor
from nnjax.train.execution import choose_execution, parse_execution
from nnjax.train.guards import check_losses, check_metrics
from nnjax.train.loop import EpochOutputs
from nnjax.train.model import as_apply


def _data(n, d=4, k=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)).astype(np.float32), rng.integers(0, k, n)


# ---- the order and the dropout keys of a run, from jax.random ------------------------------


@pytest.mark.parametrize("execution", ["fused", "per_step"])
def test_a_dropout_run_follows_the_documented_order_and_keys_built_with_jax_random(execution):
    """order_key, dropout_key = split(key); epoch e takes permutation(fold_in(order_key, e),
    n)[:T b] in T batches (n % b rows dropped) and step t the dropout key
    split(fold_in(dropout_key, e), T)[t]: fit equals that loop of make_train_step's steps."""
    n, b, E, lr = 11, 4, 3, 0.2
    T = n // b
    X, y = _data(n)
    model = nnjax.mlp([16, 3], dropout=0.5)
    params = model.init(jax.random.key(1), (4,))[1]
    res = nnjax.fit(model, params, X, y, epochs=E, batch_size=b, optimizer="sgd",
                    learning_rate=lr, key=7, dropout=True, execution=execution)  # fmt: skip
    step = nnjax.make_train_step(model, "softmax_cross_entropy", optax.sgd(lr))
    order_key, dropout_key = jax.random.split(jax.random.key(7))
    p, s, losses = params, optax.sgd(lr).init(params), []
    for e in range(E):
        perm = np.asarray(jax.random.permutation(jax.random.fold_in(order_key, e), n))
        keys = jax.random.split(jax.random.fold_in(dropout_key, e), T)
        for t in range(T):
            rows = perm[t * b : (t + 1) * b]
            p, s, loss = step(p, s, (X[rows], y[rows]), keys[t])
            losses.append(float(loss))
    np.testing.assert_allclose(res.step_loss, losses, rtol=1e-5, atol=1e-6)
    for a, w in zip(jax.tree.leaves(res.params), jax.tree.leaves(p)):
        np.testing.assert_allclose(a, w, rtol=1e-5, atol=1e-6)


# ---- the schedule's check spans the run's floor(n / b) * epochs steps -----------------------


def test_a_schedule_is_checked_at_the_last_of_epochs_times_floor_n_over_b_steps():
    """n = 10, b = 3: 3 steps an epoch, 9 in 3 epochs (t = 0..8). A rate negative from t = 9
    on is never used; one negative at t = 8 is refused naming schedule(8)."""
    X, y = _data(10)
    model = nnjax.mlp([3])
    params = model.init(jax.random.key(0), (4,))[1]
    kw = dict(epochs=3, batch_size=3, optimizer="sgd")
    ok = lambda t: jnp.where(t <= 8, 0.01, -1.0)  # noqa: E731
    assert nnjax.fit(model, params, X, y, learning_rate=ok, **kw).step_loss.shape == (9,)
    bad = lambda t: jnp.where(t < 8, 0.01, -1.0)  # noqa: E731
    with pytest.raises(ValueError, match=r"got schedule\(8\) = .* \(steps 0\.\.8\)"):
        nnjax.fit(model, params, X, y, learning_rate=bad, **kw)


# ---- the driver and the execution ------------------------------------------------------------


def test_bounded_chunks_cut_to_the_largest_divisor_up_to_half_as_documented():
    """8 -> 4 (not 2) at 1.5x the bound; 6 -> 3 -> 1; a chunk of exactly the bound stays."""
    assert BoundedChunks(8, 1.0)(0, 1.5) == 4
    assert BoundedChunks(8, 1.0)(0, 1.0) == 8
    six = BoundedChunks(6, 1.0)
    assert [six(0, 1.01), six(3, 1.01), six(4, 5.0)] == [3, 1, 1]


def test_chunked_runs_8_steps_a_call_and_auto_fuses_on_every_platform_but_the_cpu():
    """fit's docstring: "chunked" is compiled calls of 8 straight-line steps; "auto" keeps
    the fused loop off the CPU for a model with convolutions too (a TPU as a GPU)."""
    assert parse_execution("chunked") == ("chunked", 8)
    model = nnjax.cnn()
    _, p, s = init_model(model, jax.random.key(0), (-1, 40))
    x = np.zeros((1, 40), np.float32)
    modes = [choose_execution("auto", as_apply(model), p, s, x, pf)[:2] for pf in ("cpu", "tpu")]
    assert modes == [("chunked", 8), ("fused", None)]


# ---- early stopping and the finiteness checks: fabricated chunk reports -------------------


def _report(begin, step_loss, metrics, total=10, carry=None):
    out = EpochOutputs(np.asarray(step_loss, np.float32), {
        k: np.asarray(v, np.float32) for k, v in metrics.items()})  # fmt: skip
    end = begin + len(next(iter(metrics.values())))
    return ChunkReport(begin, end, total, carry, out, [out], 0.0, None, 0)


def _monitor(values, **rule):
    stop = StopFlag()
    mon = EarlyStoppingMonitor(EarlyStopping(metric="m", **rule), stop)
    for e, v in enumerate(values):
        if stop.requested:  # the driver runs no further chunk
            break
        mon.hook(_report(e, [[0.0]], {"m": [v]}, carry={"w": np.float32(e)}))
    return mon, stop


def test_early_stopping_counts_an_equal_value_as_no_improvement():
    """min_delta 0: 'improves' is strictly below the best; two equal values after the first
    are patience 2 used up after epoch 3."""
    mon, stop = _monitor([1.0, 1.0, 1.0], patience=2)
    assert (mon.best_epoch, mon.wait, stop.reason is not None) == (1, 2, True)
    assert "did not improve for 2 epochs (best 1 at epoch 1)" in stop.reason


def test_a_nonfinite_step_loss_in_a_later_chunk_is_named_by_its_run_index():
    """Chunk begin = 2 (epochs 3..), 3 steps an epoch: its step 4 is step_loss[10], batch 2
    of epoch 4."""
    hook = check_losses(3, lambda: None)
    with pytest.raises(NonFiniteLossError, match=r"step_loss\[10\] \(batch 2 of 3 in epoch 4\)"):
        hook(_report(2, [[1, 1, 1], [1, np.nan, 1]], {"step_loss_mean": [1, np.nan]}))


def test_a_nonfinite_metric_in_a_later_chunk_names_its_run_epoch():
    hook = check_metrics(lambda: None)
    with pytest.raises(NonFiniteLossError, match=r"^fit: val_loss became inf in epoch 5;"):
        hook(_report(3, [[1], [1]], {"val_loss": [1.0, np.inf]}))


# ---- how a run is cut into compiled calls ---------------------------------------------------


def test_calls_are_the_whole_run_one_epoch_with_a_stop_flag_one_interval_with_checkpoints(
    tmp_path,
):
    """on_epochs sees the end of every compiled call, once: by default one call for the run;
    with a stop flag one epoch a call (a stop asked from on_epochs after epoch 3 ends the run
    there, and the hooks re-run for the stop report it no second time); with checkpoint_every
    = 2 two epochs a call; early stopping takes an explicit epochs_per_call = 1."""
    X, y = _data(12)
    model = nnjax.mlp([3])
    params = model.init(jax.random.key(0), (4,))[1]
    flag = StopFlag()
    for kw, calls in [
        (dict(), [4]),
        (dict(stop=flag), [1, 2, 3]),
        (dict(checkpoint_dir=tmp_path / "ck", checkpoint_every=2), [2, 4]),
        (dict(early_stopping=EarlyStopping(9, "step_loss_mean"), epochs_per_call=1), [1, 2, 3, 4]),
    ]:
        seen = []

        def on_epochs(e, metrics, seen=seen):
            seen.append(e)
            if e == 3:
                flag.request("enough")

        try:
            nnjax.fit(model, params, X, y, epochs=4, on_epochs=on_epochs, **kw)
        except TrainingStopped as stopped:
            assert (stopped.epochs_done, kw) == (3, dict(stop=flag))
        assert seen == calls, kw


def test_a_chunks_time_is_bounded_by_default_with_a_checkpoint_dir_or_a_stop_flag():
    from nnjax.train.run_control import STOP_LATENCY_SECONDS, _max_chunk_seconds

    assert STOP_LATENCY_SECONDS == 5.0
    assert _max_chunk_seconds(None, "ck", None) == _max_chunk_seconds(None, None, StopFlag()) == 5
    assert _max_chunk_seconds(None, None, None) is None and _max_chunk_seconds(2, None, None) == 2


# ---- the optimizer table, at its default rates and hyperparameters --------------------------

RATES = {"gd": 1e-2, "sgd": 1e-2, "momentum": 1e-2, "nesterov": 1e-2, "adam": 1e-3,
         "adamw": 1e-3, "rmsprop": 1e-2, "adagrad": 1e-2}  # fmt: skip


def _twin_update(name, g, th, st, t, lr):
    """One step of the module docstring's equations (default hyperparameters), NumPy."""
    if name in ("gd", "sgd"):
        return th - lr * g
    if name in ("momentum", "nesterov"):
        st["v"] = 0.9 * st.get("v", 0.0) + g
        return th - lr * (st["v"] if name == "momentum" else g + 0.9 * st["v"])
    if name in ("adam", "adamw"):
        st["m"] = 0.9 * st.get("m", 0.0) + 0.1 * g
        st["s"] = 0.999 * st.get("s", 0.0) + 0.001 * g**2
        step = (st["m"] / (1 - 0.9**t)) / (np.sqrt(st["s"] / (1 - 0.999**t)) + 1e-8)
        return th - lr * (step + (1e-4 * th if name == "adamw" else 0.0))
    if name == "rmsprop":
        st["s"] = 0.9 * st.get("s", 0.0) + 0.1 * g**2
        return th - lr * g / np.sqrt(st["s"] + 1e-8)
    st["s"] = st.get("s", 0.1) + g**2  # adagrad
    return th - lr * g / np.sqrt(st["s"] + 1e-7)


def test_every_named_optimizer_at_its_default_rate_equals_its_numpy_twin():
    """fit(optimizer=name) with no learning_rate: 3 full-batch steps of the mean squared error
    of x w (w (4, 1), no bias) against the twin at the documented rate (0.01; adam and adamw
    0.001), momentum and nesterov mu 0.9, adagrad's accumulator from 0.1; gd given
    batch_size = n (its one full batch) as documented."""
    X, _ = _data(16)
    yv = (X @ np.array([[1.0], [-2.0], [0.5], [3.0]], np.float32)).astype(np.float32)
    model = nnjax.mlp([1], use_bias=False)
    params = model.init(jax.random.key(2), (4,))[1]
    for name, lr in RATES.items():
        b = 16 if name == "gd" else None  # full-batch gd takes batch_size n too
        res = nnjax.fit(model, params, X, yv, optimizer=name, loss="mse", epochs=3, batch_size=b)
        w, st = np.asarray(params[0]["W"], np.float64), {}
        for t in range(1, 4):
            g = 2 * X.T.astype(np.float64) @ (X @ w - yv) / yv.size
            w = _twin_update(name, g, w, st, t, lr)
        np.testing.assert_allclose(res.params[0]["W"], w, rtol=2e-5, atol=1e-7, err_msg=name)


def test_the_warmup_is_rounded_to_nearest_and_a_decay_rate_of_1_is_constant():
    """W = round(0.05 T): T = 30 gives W = 2 (1.5 rounds up), so step 1 is at half the peak;
    T = 70 gives W = 4. decay_rate may be 1 ((0, 1]): every rate the peak."""
    for T, W in [(30, 2), (70, 4)]:
        s = nnjax.optim.make_schedule("warmup-cosine", 0.1, total_steps=T)
        rates = [float(s(jnp.int32(t))) for t in range(W + 1)]
        np.testing.assert_allclose(rates, 0.1 * np.arange(W + 1) / W, rtol=1e-6, err_msg=T)
    s = nnjax.optim.make_schedule("exponential", 0.1, total_steps=9, decay_rate=1.0)
    assert [float(s(jnp.int32(t))) for t in (0, 4, 8)] == [pytest.approx(0.1)] * 3


def test_adamw_given_no_weight_decay_keeps_its_own_1e_4_and_0_turns_it_off():
    """with_weight_decay("adamw", lr, None): theta <- theta - lr (adam step + 1e-4 theta); a
    zero gradient makes the adam step 0, so theta = 100 at lr 1 becomes 99.99 (0: stays)."""
    theta, zero = {"w": jnp.float32(100.0)}, {"w": jnp.float32(0.0)}
    for wd, want in [(None, 99.99), (0.0, 100.0)]:
        opt = nnjax.optim.with_weight_decay("adamw", 1.0, wd)
        updates, _ = opt.update(zero, opt.init(theta), theta)
        assert float(optax.apply_updates(theta, updates)["w"]) == pytest.approx(want, rel=1e-7)
        assert opt.recipe["weight_decay"] == (1e-4 if wd is None else 0.0)


def test_the_cli_schedule_counts_the_steps_fit_takes():
    """nnjax train sizes its schedules with its own (T, steps per epoch): they must be the
    rows of fit's batch order (n % b rows dropped; full batch one step), or a cosine would
    end a step early or late."""
    from argparse import Namespace

    from nnjax.commands.train_options import total_steps
    from nnjax.train import batch_indices

    for n, b in ((10, 3), (12, 4), (1437, 32), (5, 5)):  # the rows' shape, traced: no compile
        rows = jax.eval_shape(lambda n=n, b=b: batch_indices(jax.random.key(0), 0, n, b))
        per_epoch = rows.shape[0]
        assert total_steps(Namespace(epochs=7), n, b) == (7 * per_epoch, per_epoch), (n, b)
    assert total_steps(Namespace(epochs=7), 10, None) == (7, 1)
