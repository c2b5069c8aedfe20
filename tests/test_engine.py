"""The training engine: the one batch order, the driver (chunks, hooks, stop requests, bounded
chunks, one compile per chunk length), the model state threaded through the fused loop, the
evaluations and the checkpoints, and a stop request that ends fit cleanly and resumes."""

import os
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import nnjax
from nnjax import checkpoint as ck
from nnjax.compare.study import Splits, seed_keys, train_optimizer
from nnjax.layers import default_float
from nnjax.train import (
    BoundedChunks,
    FixedChunks,
    StopFlag,
    TrainingStopped,
    batch_indices,
    drive,
    make_train_step,
    run_batch_indices,
    run_keys,
)
from nnjax.train.history import History

# ---- the order ------------------------------------------------------------------------------


def test_batch_indices_are_the_epochs_permutation_cut_into_batches():
    order_key, _ = run_keys(jax.random.key(5))
    idx = np.asarray(batch_indices(order_key, 3, 10, 3))
    assert idx.shape == (3, 3) and idx.dtype == np.int32
    perm = np.asarray(jax.random.permutation(jax.random.fold_in(order_key, 3), 10))
    np.testing.assert_array_equal(idx.reshape(-1), perm[:9])  # the 10th row is dropped
    other = np.asarray(batch_indices(order_key, 4, 10, 3))
    assert not np.array_equal(idx, other)  # each epoch its own shuffle
    run = run_batch_indices(5, 5, 10, 3)  # an int seed or a key: the same order
    assert run.shape == (15, 3)
    np.testing.assert_array_equal(run[9:12], idx)
    np.testing.assert_array_equal(run, run_batch_indices(jax.random.key(5), 5, 10, 3))
    assert run_batch_indices(5, 5, 10, None) is None  # full batch: all rows in order


# ---- the driver -----------------------------------------------------------------------------


def _counting_program(carry, indices, scale):
    """carry + sum(indices) * scale, with the per-index values as outputs."""
    values = indices * scale
    return carry + jnp.sum(values), {"v": values}


def test_drive_runs_chunks_compiles_once_per_length_and_calls_hooks_in_order():
    seen = []
    out = drive(
        _counting_program,
        jnp.float32(0.0),
        (jnp.float32(2.0),),
        total=10,
        start=1,
        chunks=FixedChunks(4),
        hooks=(lambda r: seen.append(("a", r.begin, r.end, r.final)), lambda r: seen.append("b")),
        history=({"v": np.array([-1.0])},),  # a resumed run's outputs come first
    )
    assert float(out.carry) == 2.0 * sum(range(1, 10)) and out.done == 10
    np.testing.assert_array_equal(out.outputs["v"], [-1.0, *(2.0 * np.arange(1, 10))])
    assert seen == [("a", 1, 5, False), "b", ("a", 5, 9, False), "b", ("a", 9, 10, True), "b"]
    assert out.stopped is None and out.compile_time > 0 and out.run_time > 0


def test_history_joins_chunks_as_concatenation_does_and_its_views_stay_valid():
    rng = np.random.default_rng(0)
    for axis in (0, 1):
        chunks = [
            {"a": rng.normal(size=(3, k, 2) if axis else (k, 3, 2)), "b": np.arange(k) * 1.0}
            for k in (1, 4, 2, 7, 1)
        ]
        chunks = [{"a": c["a"], "b": np.expand_dims(c["b"], 0) if axis else c["b"]} for c in chunks]
        history, seen = History(axis), []
        assert history.joined() is None and history.copy() is None
        for c in chunks:
            history.append(c)
            seen.append(history.joined())
        for n, joined in enumerate(seen, 1):  # earlier views unchanged by later appends
            for leaf in ("a", "b"):
                want = np.concatenate([c[leaf] for c in chunks[:n]], axis=axis)
                np.testing.assert_array_equal(joined[leaf], want)
        assert len(history) == 5 and not seen[-1]["a"].flags.writeable
        mine = history.copy()
        mine["a"][...] = 0.0  # a copy of its own: the history is untouched
        assert np.abs(history.joined()["a"]).sum() > 0
    with pytest.raises(ValueError, match="changed structure"):
        History(0, [{"a": np.zeros(1)}, {"b": np.zeros(1)}])
    with pytest.raises(ValueError, match=r"leaf 0 .* shape \(3,\) beside the axis"):
        History(0, [np.zeros((1, 2)), np.zeros((1, 3))])


def test_reading_every_chunks_outputs_after_each_chunk_costs_linear_time():
    """A hook reading all outputs so far after each of n chunks: the joins once took O(n^2)
    NumPy calls (14 s of a 1000-epoch ``nnjax train``). Counted, not timed: the number of
    buffer growths is logarithmic in n."""
    history, grown = History(0), 0
    for i in range(4096):
        before = history._buffers[0] if i else None
        history.append({"v": np.full(1, float(i))})
        grown += history._buffers[0] is not before
        assert history.joined()["v"][-1] == i
    assert grown <= 14  # 1, 2, 4, ..., 4096


def test_a_program_compiles_once_across_drives():
    program = nnjax.train.Program(_counting_program)
    for total in (6, 9):
        drive(program, jnp.float32(0.0), (jnp.float32(1.0),), total=total, chunks=FixedChunks(3))
    assert list(program.by_length) == [3]


def test_a_stop_request_ends_the_run_after_the_running_chunk():
    stop, reports = StopFlag(), []

    def hook(r):
        reports.append((r.end, r.stopping, r.final))
        if r.end == 4:
            stop.request("preempted")  # as a signal handler would, while the hooks run

    out = drive(
        _counting_program, jnp.float32(0.0), (jnp.float32(1.0),), total=10,
        chunks=FixedChunks(2), hooks=(hook,), stop=stop,
    )  # fmt: skip
    assert out.stopped == "preempted" and out.done == 4 and float(out.carry) == 0 + 1 + 2 + 3
    # the hooks saw chunk 2 once as usual, then once more as the last (a checkpoint is due)
    assert reports == [(2, None, False), (4, None, False), (4, "preempted", True)]
    stop = StopFlag()
    stop.request("before")
    out = drive(_counting_program, jnp.float32(5.0), (jnp.float32(1.0),), total=3, stop=stop)
    assert out.done == 0 and float(out.carry) == 5.0 and out.outputs is None


def test_bounded_chunks_halve_a_chunk_that_ran_too_long():
    t = [0.0]

    def clock():  # every reading is one second after the previous: each chunk "takes" 1 s
        t[0] += 1.0
        return t[0]

    sizes = []
    out = drive(
        _counting_program, jnp.float32(0.0), (jnp.float32(1.0),), total=20,
        chunks=BoundedChunks(8, max_seconds=0.3), hooks=(lambda r: sizes.append(r.end - r.begin),),
        clock=clock,
    )  # fmt: skip
    # the size halves until the chunk, at the speed measured, fits: 1 s per 8 -> 0.25 s per 2
    assert sizes == [8, 2] + [1] * 10 and out.done == 20
    assert float(out.carry) == sum(range(20))
    bounded = BoundedChunks(8, max_seconds=10.0)
    assert [bounded(0, s) for s in (None, 3.0, 25.0, 1.0)] == [8, 8, 2, 2]
    with pytest.raises(ValueError, match="max_seconds must be > 0"):
        BoundedChunks(8, 0.0)


# ---- a stateful model, threaded through the fused loop --------------------------------------


class StatefulLayer(NamedTuple):
    """The layer protocol's stateful form (``stateful=True``)."""

    init: Any
    apply: Any
    name: str = "RunningMeanDense"
    stateful: bool = True
    spec: Any = None


def running_mean_dense(features: int, momentum: float = 0.5) -> StatefulLayer:
    """y = (x - m) W + b. Train mode: m <- momentum m + (1 - momentum) mean_batch(x) first, and
    ``count`` += 1; evaluation uses m as it is and leaves the state alone."""

    def init(key, input_shape):
        d, dt = input_shape[-1], default_float()
        params = {
            "W": 0.3 * jax.random.normal(key, (d, features), dt),
            "b": jnp.zeros(features, dt),
        }
        state = {"mean": jnp.zeros(d, dt), "count": jnp.zeros((), jnp.int32)}
        return (*input_shape[:-1], features), params, state

    def apply(params, x, *, key=None, state, train=False):
        if train:
            m = momentum * state["mean"] + (1.0 - momentum) * jnp.mean(x, axis=0)
            state = {"mean": m, "count": state["count"] + 1}
        return (x - state["mean"]) @ params["W"] + params["b"], state

    return StatefulLayer(init, apply)


def _data(n=40, d=2, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) + 3.0  # a mean far from 0: the running mean matters
    return X, (X[:, 0] > 3.0).astype(np.int32) + (X[:, 1] > 3.5).astype(np.int32)


def test_a_stateful_model_needs_its_state_and_a_stateless_one_takes_none():
    model = running_mean_dense(3)
    _, params, state = model.init(jax.random.key(0), (-1, 2))
    X, y = _data()
    with pytest.raises(ValueError, match="RunningMeanDense is stateful; pass state="):
        nnjax.fit(model, params, X, y)
    with pytest.raises(ValueError, match="evaluate: RunningMeanDense is stateful"):
        nnjax.evaluate(model, params, X, y)
    step = make_train_step(model, "softmax_cross_entropy", nnjax.get_optimizer("sgd", 0.1))
    with pytest.raises(ValueError, match="step: RunningMeanDense is stateful"):
        step(params, (), (X[:4], y[:4]))
    mlp = nnjax.mlp([3])
    with pytest.raises(ValueError, match="the model is stateless"):
        nnjax.fit(mlp, mlp.init(jax.random.key(0), (-1, 2))[1], X, y, state=state)


def test_fused_fit_threads_the_state_as_a_python_loop_of_train_steps_does():
    model = running_mean_dense(3)
    with jax.enable_x64(True):
        _, p0, s0 = model.init(jax.random.key(0), (-1, 2))
        X, y = _data()
        Xt, yt = _data(12, seed=1)
        opt = nnjax.get_optimizer("momentum", 0.1)
        res = nnjax.fit(
            model, p0, X, y, optimizer=opt, epochs=3, batch_size=8, key=5, state=s0,
            eval_data={"test": (Xt, yt)},
        )  # fmt: skip
        step = make_train_step(model, "softmax_cross_entropy", opt)
        params, opt_state, state, losses = p0, opt.init(p0), s0, []
        for idx in run_batch_indices(5, 3, len(X), 8):
            params, opt_state, loss, state = step(params, opt_state, (X[idx], y[idx]), state=state)
            losses.append(float(loss))
        ev = nnjax.evaluate(model, res.params, Xt, yt, state=res.state)
        ev0 = nnjax.evaluate(model, res.params, Xt, yt, state=s0)
    assert int(res.state["count"]) == 3 * 5  # every step, in train mode, inside the fused loop
    np.testing.assert_allclose(res.step_loss, losses, rtol=1e-12)
    for a, b in zip(jax.tree.leaves((res.params, res.state)), jax.tree.leaves((params, state))):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
    # evaluation uses the state (and does not change it): the running mean, not zero
    W, b, m = (np.asarray(a) for a in (res.params["W"], res.params["b"], res.state["mean"]))
    logits = (Xt - m) @ W + b
    logp = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    assert ev["loss"] == pytest.approx(-logp[np.arange(len(yt)), yt].mean(), rel=1e-12)
    assert res.metrics["test_loss"][-1] == pytest.approx(ev["loss"], rel=1e-12)
    assert abs(ev0["loss"] - ev["loss"]) > 1e-3


def test_the_state_is_checkpointed_and_a_stop_request_resumes_bit_identical(tmp_path):
    model = running_mean_dense(3)
    _, p0, s0 = model.init(jax.random.key(0), (-1, 2))
    X, y = _data()
    kw = dict(epochs=5, batch_size=8, key=2, state=s0, optimizer="adam", learning_rate=0.05)
    full = nnjax.fit(model, p0, X, y, **kw)
    stop = StopFlag()

    def on_epochs(done, metrics):
        if done == 2:
            stop.request("SIGTERM")

    d = tmp_path / "ckpt"
    with pytest.raises(TrainingStopped, match="stopped after epoch 2: SIGTERM") as err:
        nnjax.fit(
            model, p0, X, y, **kw, checkpoint_dir=d, checkpoint_every=3, epochs_per_call=1,
            on_epochs=on_epochs, stop=stop,
        )  # fmt: skip
    assert err.value.epochs_done == 2 and err.value.result.step_loss.shape == (2 * 5,)
    assert ck.steps(d) == [2]  # not due by checkpoint_every=3: written because of the stop
    saved = ck.load(d).arrays
    np.testing.assert_array_equal(saved["['state']['count']"], 2 * 5)
    res = nnjax.fit(model, p0, X, y, **kw, checkpoint_dir=d, checkpoint_every=3, resume=True)
    for a, b in zip(jax.tree.leaves(res[:3]), jax.tree.leaves(full[:3])):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(res.step_loss, full.step_loss)
    assert ck.steps(d) == [2, 5] and os.path.exists(d / "ckpt_00000005.npz")


def test_compare_trains_a_stateful_model_as_fit_does():
    model = running_mean_dense(2)
    X, y = _data(48)
    y = (y > 0).astype(np.int32)
    splits = Splits((X, y), (X[:8], y[:8]), (X[:8], y[:8]), 2, True)
    runs = train_optimizer("sgd", [0.1], [4], model, splits, epochs=2, batch_size=16)
    init_key, train_key = seed_keys(4)
    _, p0, s0 = model.init(init_key, (-1, 2))
    ref = nnjax.fit(
        model, p0, X, y, optimizer="sgd", learning_rate=0.1, epochs=2, batch_size=16,
        key=train_key, state=s0, eval_data={"val": splits.val},
    )  # fmt: skip
    np.testing.assert_allclose(runs.step_loss[0, 0], ref.step_loss, rtol=1e-6)
    np.testing.assert_allclose(runs.metrics["val_loss"][0, 0], ref.metrics["val_loss"], rtol=1e-6)
