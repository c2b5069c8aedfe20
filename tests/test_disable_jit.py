"""``jax.disable_jit()`` (``JAX_DISABLE_JIT=1``), JAX's debugging mode, through nnjax's
ahead-of-time compiles: ``fit`` (fused and host-driven loops), ``compare``'s driver, the
verify compiles and ``nnjax train`` run op by op, with the numbers of the compiled runs.
Before, each failed with JAX's "Disable jit is not supported in the AOT path"."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import nnjax
from nnjax.cli import main
from nnjax.train.driver import drive
from nnjax.train.executables import ExecutableStore
from nnjax.verify.core import compile_fast


def _problem():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(20, 3))  # 2 steps of 10 an epoch
    y = (X[:, 0] + 0.5 * X[:, 1] > 0).astype(np.int32)
    model = nnjax.mlp([6, 2])
    _, params = model.init(jax.random.key(0), (-1, 3))
    return model, params, X, y


@pytest.mark.parametrize("execution", ["fused", "chunked:2"])
def test_fit_under_disable_jit_runs_op_by_op_with_the_compiled_numbers(execution):
    seen = []

    def loss(pred, y):  # a user's loss: compiled, traced once; under disable_jit, run per step
        seen.append(pred.shape)
        return nnjax.losses.softmax_cross_entropy(pred, y)

    with jax.enable_x64(True):
        model, params, X, y = _problem()
        kw = dict(loss=loss, optimizer="adam", learning_rate=0.05, epochs=2, batch_size=10)
        kw.update(key=3, execution=execution)
        compiled = nnjax.fit(model, params, X, y, **kw)
        assert seen.count((10, 2)) < 4  # traced, not run per step
        seen.clear()
        with jax.disable_jit():
            eager = nnjax.fit(model, params, X, y, **kw)
    assert seen.count((10, 2)) == 4  # run in Python at each step: 2 an epoch, 2 epochs
    np.testing.assert_allclose(eager.step_loss, compiled.step_loss, rtol=1e-12)
    for a, b in zip(jax.tree.leaves(eager.params), jax.tree.leaves(compiled.params)):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


def test_drive_under_disable_jit_calls_the_program_in_python_and_stores_nothing(tmp_path):
    calls = []

    def program(carry, indices, step):
        calls.append(indices.shape)
        return carry + step * jnp.sum(indices), indices * 2

    store = ExecutableStore(tmp_path / "programs", {"test": 1})
    args = (jnp.float32(0.5),)
    with jax.disable_jit():
        out = drive(program, jnp.float32(0), args, total=5, chunks=lambda d, s: 2, store=store)
    assert calls == [(2,), (2,), (1,)]  # called at each chunk, in Python: nothing to compile
    assert float(out.carry) == 0.5 * (0 + 1 + 2 + 3 + 4) and out.compile_time < 1.0
    np.testing.assert_array_equal(out.outputs, [0, 2, 4, 6, 8])
    assert not (tmp_path / "programs").exists()  # a function is not an executable to keep


def test_verify_compile_under_disable_jit_gives_the_compiled_value():
    def f(x):
        return jnp.sin(x) @ x.T

    x = jnp.arange(6.0).reshape(2, 3) / 7
    want = compile_fast(f, x.T)(x.T)
    with jax.disable_jit():
        got = compile_fast(f, x.T)(x.T)
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_train_command_under_disable_jit_says_so_and_trains(tmp_path, capsys):
    # logreg: one Dense layer, half the ops of the default MLP to compile one by one (the
    # command's handling of disable_jit is the same for every model; fit's op-by-op numbers
    # are checked above)
    argv = ["train", "--dataset", "xor", "--model", "logreg", "--epochs", "1"]
    with jax.disable_jit():
        status = main([*argv, "--out", str(tmp_path / "r")])
    assert status == 0
    out = capsys.readouterr().out
    first = out.splitlines()[0]
    assert first.startswith("nnjax ") and first.endswith(
        " | jit disabled (JAX_DISABLE_JIT): every op runs on its own, slowly"
    )
    assert "compile 0.00 s" in out
    assert (tmp_path / "r" / "params.npz").exists()
