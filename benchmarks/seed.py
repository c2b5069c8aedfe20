"""The seed example: logistic regression without bias, X = 0..5, y = 0,0,0,1,1,1, theta = 0,
1000 full-batch gradient-descent steps with learning rate 0.01, in float64.

Three ways, timed round robin:

* ``numpy_loop``: the seed's own loop, theta -= alpha (sigmoid(X theta) - y)^T X / m
  (``nnjax.reference.seed.numpy_seed_loop``);
* ``nnjax_step``: ``nnjax.make_train_step`` called 1000 times from Python;
* ``nnjax_fused``: the 1000 steps in one compiled call (``make_epochs_fn``, what ``fit`` runs).

Checked against the NumPy twin (``nnjax.reference``: logistic regression, the binary
cross-entropy from logits, GD) to 1e-12, and theta compared bit for bit with the seed loop.
``nnjax.fit`` is also timed once end to end (its compile included) for reference. Where theta
is not bit-identical, two checks say why: the seed's loop rounded the way the compiled step
rounds (:func:`reordered_seed_loop`), and ``nnjax.fit`` in a process whose XLA:CPU emits no
fused multiply-adds (:func:`theta_without_fma`).
"""

import os
import subprocess
import sys
from fractions import Fraction

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


def bench_seed(
    repeats: int, pause: float, min_block: float = 0.0, iterations: int = 1000, alpha: float = 0.01
) -> dict:
    with jax.enable_x64(True):
        X, y, model, params0 = _setup()
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
            carry = nnjax.train.Carry(params0, state0)
            return jax.block_until_ready(fused(carry, epochs, key, Xj, yj)[0].params)

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
        times = round_robin(runners, repeats, pause, min_block)
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
        # the seed's loop with the two roundings reverse mode and XLA:CPU do differently
        "fused_theta_equals_reordered_loop": bool(
            np.array_equal(thetas["nnjax_fused"], reordered_seed_loop(X, y, alpha, iterations))
        ),
        "step_theta_bit_identical": bool(np.array_equal(thetas["nnjax_step"], ref)),
        "fit_theta_without_fma": theta_without_fma(iterations, alpha),
        "fit_call_s": fit_s,
        "fit_compile_s": res.compile_time,
        "fit_run_s": res.run_time,
    }


def _setup():
    """The seed's data in float64, its bias-free logistic regression and theta = 0 (call
    under ``jax.enable_x64``)."""
    X, y = nnjax.data.toy()
    X, y = X.astype(np.float64), y.astype(np.float64)
    model = nnjax.logistic_regression(1, use_bias=False)
    _, params0 = model.init(jax.random.key(0), X.shape)
    return X, y, model, params0


def fit_theta(iterations: int = 1000, alpha: float = 0.01) -> float:
    """theta after ``nnjax.fit`` of the seed example (float64, full-batch GD)."""
    with jax.enable_x64(True):
        X, y, model, params0 = _setup()
        res = nnjax.fit(
            model, params0, X, y, optimizer="gd", learning_rate=alpha, loss=LOSS, epochs=iterations
        )
        return float(np.asarray(res.params["W"]).reshape(-1)[0])


NO_FMA_FLAGS = "--xla_cpu_max_isa=AVX"  # AVX has no fused multiply-add instructions


def theta_without_fma(iterations: int, alpha: float) -> dict | None:
    """:func:`fit_theta` in a fresh process whose XLA:CPU may not emit FMAs (CPU only):
    {"theta", "bit_identical"} against the seed's loop; None on another backend or when
    that process fails (its error is then printed)."""
    if jax.default_backend() != "cpu":
        return None
    env = {**os.environ, "XLA_FLAGS": f"{os.environ.get('XLA_FLAGS', '')} {NO_FMA_FLAGS}"}
    code = f"from benchmarks.seed import fit_theta; print(repr(fit_theta({iterations}, {alpha})))"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    try:
        theta = float(out.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        print(f"seed without FMA: no theta from the subprocess:\n{out.stderr[-2000:]}")
        return None
    X, y = nnjax.data.toy()
    seed = numpy_seed_loop(X.astype(np.float64), y.astype(np.float64), alpha, iterations)[0]
    return {"xla_flags": NO_FMA_FLAGS, "theta": theta, "bit_identical": theta == float(seed)}


def reordered_seed_loop(X, y, alpha: float, iterations: int) -> np.ndarray:
    """The seed's loop with two roundings in the order the compiled nnjax step has them.

    1. Reverse mode scales by 1/m *before* the sum: g = sum_i ((h_i - y_i) (1/m)) X_i
       (the mean's cotangent 1/m reaches each term first), where the seed computes
       (sum_i (h_i - y_i) X_i) / m.
    2. XLA:CPU fuses Optax's update theta + (-alpha) g into one fused multiply-add: one
       rounding (computed here exactly with fractions), where the seed rounds alpha g first.

    h = sigmoid(X theta) in the loss's form, (1 if z >= 0 else e) / (1 + e), e = exp(-|z|).
    """
    m = len(y)
    theta = [0.0] * X.shape[1]
    for _ in range(iterations):
        z = X @ np.asarray(theta)
        e = np.exp(-np.abs(z))
        h = np.where(z >= 0, 1.0, e) / (1.0 + e)
        g = (((h - y) * (1.0 / m))[:, None] * X).sum(axis=0)
        theta = [float(Fraction(-alpha) * Fraction(gj) + Fraction(t)) for gj, t in zip(g, theta)]
    return np.asarray(theta)


def _ulps(a: float, b: float) -> int:
    """How many float64 values lie between a and b."""
    ia, ib = (np.array(v, np.float64).view(np.int64) for v in (a, b))
    return int(abs(int(ia) - int(ib)))
