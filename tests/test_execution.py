"""How fit runs its loop: fused, chunked, per step. The three give the same run (same batches,
same steps, same evaluations, model state and dropout keys included) up to float rounding;
"auto" picks by the documented rule; the host loop compiles straight-line steps (no while
loop, the reason it exists) and checkpoints and resumes like the fused loop."""

import jax
import numpy as np
import pytest

import nnjax
from nnjax import checkpoint as ck
from nnjax.layers import (
    Activation,
    BatchNorm,
    Conv,
    Dense,
    Dropout,
    Flatten,
    Reshape,
    init_model,
    serial,
)
from nnjax.train import Carry, StopFlag, TrainingStopped
from nnjax.train.execution import CHUNK_STEPS, choose_execution, parse_execution
from nnjax.train.model import as_apply
from nnjax.train.stepped import SteppedLoop


def _net():
    """Conv + BatchNorm (state) + Dropout (keys): every thread a loop carries."""
    return serial(
        Reshape((8, 8, 1)),
        Conv(4, 3, strides=2, padding="SAME", use_bias=False),  # BatchNorm has the offset
        BatchNorm(),
        Activation("relu"),
        Dropout(0.2),
        Flatten(),
        Dense(10),
    )


def _digits(n=110, m=40):
    ds = nnjax.data.load("digits")
    return (ds.X_train[:n], ds.y_train[:n]), (ds.X_test[:m], ds.y_test[:m])


def _fit(execution, batch_size=20, epochs=3, **kw):
    (X, y), test = _digits()
    net = _net()
    _, p0, s0 = init_model(net, jax.random.key(0), (-1, 64))
    cast = lambda t: jax.tree.map(lambda a: np.asarray(a, np.float64), t)  # noqa: E731
    return nnjax.fit(
        net, cast(p0), X.astype(np.float64), y, state=cast(s0), epochs=epochs,
        batch_size=batch_size, learning_rate=0.01, key=4, dropout=True,
        eval_data={"test": (test[0].astype(np.float64), test[1])}, execution=execution, **kw,
    )  # fmt: skip


@pytest.mark.parametrize(
    "batch_size, modes", [(18, ("per_step", "chunked:4")), (None, ("per_step",))]
)
def test_fused_chunked_and_per_step_runs_are_equal(batch_size, modes):
    """6 steps an epoch: per step, and chunks of 3 (the largest divisor of 6 up to 4); full
    batch."""
    with jax.enable_x64(True):
        runs = {ex: _fit(ex, batch_size) for ex in ("fused", *modes)}
    ref = runs["fused"]
    steps = 3 * (110 // 18 if batch_size else 1)
    for name, res in runs.items():
        assert res.step_loss.shape == (steps,), name
        np.testing.assert_allclose(res.step_loss, ref.step_loss, rtol=1e-10, err_msg=name)
        for k in ref.metrics:
            np.testing.assert_allclose(res.metrics[k], ref.metrics[k], rtol=1e-10, err_msg=k)
        for a, b in zip(jax.tree.leaves(res[:3]), jax.tree.leaves(ref[:3])):
            np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12, err_msg=name)
    assert not np.allclose(ref.state[2]["mean"], 0.0)  # the running statistics moved


def test_auto_picks_chunked_for_convolutions_on_the_cpu_and_fused_otherwise():
    x = np.zeros((1, 40), np.float32)

    def choose(model, platform="cpu", execution="auto"):
        _, p, s = init_model(model, jax.random.key(0), (-1, 40))
        return choose_execution(execution, as_apply(model), p, s, x, platform)

    cnn = choose(nnjax.cnn())
    assert (cnn.mode, cnn.steps_per_call) == ("chunked", CHUNK_STEPS)
    assert "convolutions" in cnn.reason
    for model in (nnjax.gru(), nnjax.resmlp(), nnjax.mlp([8, 10])):
        assert choose(model).mode == "fused"
    assert choose(nnjax.cnn(), platform="gpu").mode == "fused"
    assert choose(nnjax.gru(), execution="per_step")[:2] == ("per_step", 1)
    assert choose(nnjax.gru(), execution="chunked:5")[:2] == ("chunked", 5)


@pytest.mark.parametrize("bad", ["fast", "chunked:0", "chunked:x", "per_step:2", 1, None])
def test_a_bad_execution_is_refused_with_the_valid_values(bad):
    with pytest.raises(ValueError, match="execution must be one of 'auto', 'fused'"):
        parse_execution(bad)
    (X, y), _ = _digits(40)
    with pytest.raises(ValueError, match="execution must be one of"):
        nnjax.fit(nnjax.mlp([10]), nnjax.mlp([10]).init(jax.random.key(0), (-1, 64))[1], X, y,
                  execution=bad)  # fmt: skip


def test_a_chunk_is_the_largest_divisor_of_the_epochs_steps():
    sgd = nnjax.get_optimizer("sgd", 0.1)  # a SteppedLoop checks its optimizer: a real one
    loop = lambda k, n: SteppedLoop(nnjax.mlp([2]), "mse", sgd, n_examples=n, batch_size=10,  # noqa: E731
                                    steps_per_call=k).k  # fmt: skip
    assert (loop(8, 400), loop(8, 440), loop(8, 430), loop(8, 30), loop(1, 400)) == (8, 4, 1, 3, 1)


@pytest.mark.xla_defaults  # a property of XLA's optimised program
def test_the_host_loop_compiles_straight_line_steps():
    """No while loop in a k-step call: XLA:CPU keeps its fast convolution kernel there."""
    (X, y), _ = _digits(100)
    net = nnjax.cnn(input_shape=(8, 8, 1))
    _, p = net.init(jax.random.key(0), (-1, 64))
    opt = nnjax.get_optimizer("adam", 1e-2)
    loop = SteppedLoop(net, "softmax_cross_entropy", opt, n_examples=100, batch_size=10,
                       steps_per_call=4)  # fmt: skip
    carry, key = Carry(p, opt.init(p), ()), jax.random.key(1)
    idx, keys = jax.jit(loop._order)(key, 0)
    for length in (1, 4):
        hlo = jax.jit(loop._steps(length)).lower(carry, idx, keys, 0, X, y).compile().as_text()
        assert "while" not in hlo and "convolution" in hlo, length


def test_a_stopped_chunked_run_resumes_bit_identical(tmp_path):
    with jax.enable_x64(True):
        full = _fit("chunked:2", epochs=4)
        stop = StopFlag()

        def on_epochs(done, metrics):
            if done == 2:
                stop.request("SIGTERM")

        kw = dict(checkpoint_dir=tmp_path, epochs_per_call=1)
        with pytest.raises(TrainingStopped):
            _fit("chunked:2", epochs=4, on_epochs=on_epochs, stop=stop, **kw)
        assert ck.steps(tmp_path) == [1, 2]  # every epoch, as epochs_per_call=1
        res = _fit("chunked:2", epochs=4, resume=True, **kw)
    for a, b in zip(jax.tree.leaves(res[:3]), jax.tree.leaves(full[:3])):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(res.step_loss, full.step_loss)
