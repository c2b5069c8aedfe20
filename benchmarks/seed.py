"""The seed example: logistic regression without bias, X = 0..5, y = 0,0,0,1,1,1, theta = 0,
1000 full-batch gradient-descent steps with learning rate 0.01, in float64.

Three ways, timed round robin:

* ``numpy_loop``: the seed's own loop, theta -= alpha (sigmoid(X theta) - y)^T X / m
  (``nnjax.reference.seed.numpy_seed_loop``);
* ``nnjax_step``: ``nnjax.make_train_step`` called 1000 times from Python;
* ``nnjax_fused``: the 1000 steps in one compiled call (``make_epochs_fn``, what ``fit`` runs).

Checked against the NumPy twin (``nnjax.reference``: logistic regression, the binary
cross-entropy from logits, GD) to 1e-12, and theta compared bit for bit with the seed loop.
``nnjax.fit`` is also timed once end to end (its compile included) for reference.
"""

import jax
import jax.numpy as jnp
import numpy as np

import nnjax
from benchmarks.check import Mismatch
from benchmarks.harness import Runner, round_robin, stats, timed
from nnjax.reference import mlp as ref_mlp
from nnjax.reference import train as ref_train
from nnjax.reference.seed import numpy_seed_loop

LOSS = "binary_cross_entropy_with_logits"


def bench_seed(repeats: int, pause: float, iterations: int = 1000, alpha: float = 0.01) -> dict:
    with jax.enable_x64(True):
        X, y = nnjax.data.toy()
        X, y = X.astype(np.float64), y.astype(np.float64)
        model = nnjax.logistic_regression(1, use_bias=False)
        _, params0 = model.init(jax.random.key(0), X.shape)
        opt = nnjax.get_optimizer("gd", alpha)
        step = nnjax.make_train_step(model, LOSS, opt)
        run_fn, _ = nnjax.train.make_epochs_fn(model, LOSS, opt, n_examples=6, batch_size=None)
        fused = jax.jit(run_fn)
        Xj, yj, key, epochs = (
            jnp.asarray(X),
            jnp.asarray(y),
            jax.random.key(0),
            jnp.arange(iterations),
        )
        state0 = opt.init(params0)

        def step_loop():
            params, state = params0, state0
            for _ in range(iterations):
                params, state, _ = step(params, state, (Xj, yj))
            return jax.block_until_ready(params)

        def fused_run():
            return jax.block_until_ready(fused(params0, state0, key, Xj, yj, epochs)[0])

        runners = {
            "numpy_loop": Runner(
                lambda: None, lambda: numpy_seed_loop(X, y, alpha, iterations), None
            ),
            "nnjax_step": Runner(lambda: None, step_loop, None),
            "nnjax_fused": Runner(lambda: None, fused_run, None),
        }
        first, thetas = {}, {}
        for name, r in runners.items():
            first[name], out = timed(r.run)
            thetas[name] = np.asarray(out["W"]).reshape(-1) if isinstance(out, dict) else out
        forward, backward = ref_mlp.logistic_regression(1, use_bias=False)
        twin, _ = ref_train.train(
            forward,
            backward,
            jax.tree.map(np.asarray, params0),
            X,
            y,
            loss=LOSS,
            optimizer="gd",
            learning_rate=alpha,
            batch_indices=[None] * iterations,
        )
        twin = np.asarray(twin["W"]).reshape(-1)
        for name, theta in thetas.items():
            if theta.dtype != np.float64 or not np.allclose(theta, twin, rtol=1e-12, atol=0):
                raise Mismatch(
                    f"seed example: {name} theta = {theta!r} ({theta.dtype}), the NumPy twin's "
                    f"{twin!r}"
                )
        for r in runners.values():  # warm-up
            r.run()
        times = round_robin(runners, repeats, pause)
        fit_s, res = timed(
            lambda: nnjax.fit(
                model,
                params0,
                X,
                y,
                optimizer="gd",
                learning_rate=alpha,
                loss=LOSS,
                epochs=iterations,
            )
        )
    rows = {}
    for name, ts in times.items():
        rows[name] = {
            "time": stats(ts),
            "first_call_s": first[name],
            "theta": float(thetas[name][0]),
        }
        rows[name]["compile_s"] = max(0.0, first[name] - rows[name]["time"]["median"])
    ref = thetas["numpy_loop"]
    diff = float(np.abs(thetas["nnjax_fused"] - ref).max())
    return {
        "iterations": iterations,
        "dtype": "float64",
        "rows": rows,
        "theta_twin": float(twin[0]),
        "fused_vs_numpy_theta_abs_diff": diff,
        "fused_vs_numpy_theta_ulps": _ulps(thetas["nnjax_fused"][0], ref[0]),
        "fused_theta_bit_identical": bool(np.array_equal(thetas["nnjax_fused"], ref)),
        "step_theta_bit_identical": bool(np.array_equal(thetas["nnjax_step"], ref)),
        "fit_call_s": fit_s,
        "fit_compile_s": res.compile_time,
        "fit_run_s": res.run_time,
    }


def _ulps(a: float, b: float) -> int:
    """How many float64 values lie between a and b."""
    ia, ib = (np.array(v, np.float64).view(np.int64) for v in (a, b))
    return int(abs(int(ia) - int(ib)))
