"""Machine-level workloads: the matmul peak, vmap scaling, and the cost of one dispatch.

* :func:`matmul_peak`: ``jnp.dot`` under ``jax.jit`` on n x n float32 matrices; GFLOP/s =
  2 n^3 / t. The best size's median is "this machine's peak" that MLP rows are held to (the
  full run measures it before and after the MLP workload and keeps the higher).
* :func:`vmap_scaling`: N independent small MLPs (different initial params, the same data)
  trained by ``jax.vmap`` of nnjax's fused loop in one jit; time per model = t(N) / N.
* :func:`dispatch_floor`: the time of one call of a trivial jitted function (and of an
  ``nnx.jit`` one): the per-step cost no per-step loop can go under.
"""

import time

import jax
import jax.numpy as jnp
import numpy as np

import nnjax
from benchmarks.check import Mismatch, compare
from benchmarks.harness import Runner, round_robin, stats
from nnjax.reference import mlp as ref_mlp
from nnjax.reference import train as ref_train


def matmul_peak(sizes, repeats: int, pause: float, min_block: float = 0.0) -> dict:
    dot = jax.jit(jnp.dot)
    rng = np.random.default_rng(0)
    runners, mats = {}, {}
    for n in sizes:
        A, B = (rng.standard_normal((n, n), dtype=np.float32) for _ in range(2))
        a, b = jnp.asarray(A), jnp.asarray(B)
        C = np.asarray(dot(a, b))
        err = float(np.abs(C - A @ B).max())
        if err > 1e-3 * np.sqrt(n):
            raise Mismatch(f"matmul n={n}: jnp.dot differs from NumPy by {err:.3g}")
        mats[n] = (a, b)
        runners[str(n)] = Runner(lambda: None, lambda a=a, b=b: dot(a, b).block_until_ready(), None)
    times = round_robin(runners, repeats, pause, min_block)
    rows = {
        n: {"time": stats(ts), "gflops": 2 * int(n) ** 3 / stats(ts)["median"] / 1e9}
        for n, ts in times.items()
    }
    best = max(rows, key=lambda n: rows[n]["gflops"])
    return {"dtype": "float32", "sizes": rows, "peak_gflops": rows[best]["gflops"], "peak_n": best}


def vmap_scaling(
    counts,
    repeats: int,
    pause: float,
    epochs: int = 10,
    batch_size: int = 32,
    min_block: float = 0.0,
) -> dict:
    """Train N MLPs 2-32-32-2 (ReLU) on the moons data with SGD, vmapped; check the first and
    last model of each N against the NumPy twin trained from the same params."""
    ds = nnjax.data.load("moons")
    X, y = ds.X_train, ds.y_train
    sizes = [32, 32, 2]
    model = nnjax.mlp(sizes, "relu")
    opt = nnjax.get_optimizer("sgd", 0.1)
    run_fn, n_steps = nnjax.train.make_epochs_fn(
        model, "softmax_cross_entropy", opt, n_examples=len(X), batch_size=batch_size
    )
    batched = jax.jit(jax.vmap(run_fn, in_axes=(0, None, None, None, None)))
    key, Xj, yj, ep = jax.random.key(1), jnp.asarray(X), jnp.asarray(y), jnp.arange(epochs)
    idx = nnjax.train.run_batch_indices(key, epochs, len(X), batch_size)
    forward, backward = ref_mlp.mlp(sizes, "relu")
    runners, first, checks = {}, {}, {}
    for N in counts:
        keys = jax.random.split(jax.random.key(100), N)
        params = jax.vmap(lambda k: model.init(k, (-1, X.shape[1]))[1])(keys)
        carry = nnjax.train.Carry(params, jax.vmap(opt.init)(params))
        run = lambda carry=carry: jax.block_until_ready(batched(carry, ep, key, Xj, yj))  # noqa: E731
        t0 = time.perf_counter()
        out = run()
        first[N] = time.perf_counter() - t0
        checks[N] = []
        for i in sorted({0, N - 1}):
            p0 = jax.tree.map(lambda a, i=i: np.asarray(a[i]), params)
            ref_p, ref_l = ref_train.train(
                forward,
                backward,
                p0,
                X,
                y,
                loss="softmax_cross_entropy",
                optimizer="sgd",
                learning_rate=0.1,
                batch_indices=idx,
            )
            got = jax.tree.map(lambda a, i=i: np.asarray(a[i]), out[0].params)
            checks[N].append(
                compare(
                    f"vmap N={N} model {i}",
                    got,
                    np.asarray(out[1].step_loss[i]).reshape(-1),
                    ref_p,
                    ref_l,
                    p0,
                )
            )
        runners[str(N)] = Runner(lambda: None, run, None)
    for r in runners.values():
        r.run()
    times = round_robin(runners, repeats, pause, min_block)
    rows = {}
    for N in counts:
        s = stats(times[str(N)])
        rows[str(N)] = {
            "time": s,
            "per_model_ms": 1e3 * s["median"] / N,
            "compile_s": max(0.0, first[N] - s["median"]),
            "check": checks[N],
        }
    return {
        "model": "moons 2-32-32-2, SGD 0.1",
        "steps": epochs * n_steps,
        "batch_size": batch_size,
        "rows": rows,
    }


def dispatch_floor(calls: int = 2000) -> dict:
    """Median per-call time (microseconds) of trivial jitted functions, in chunks of 100."""
    f = jax.jit(lambda x: x + 1.0)
    out = {"jax.jit": _per_call(lambda x: f(x), jnp.zeros(()), calls)}
    try:
        from flax import nnx

        class Tiny(nnx.Module):
            def __init__(self):
                self.w = nnx.Param(jnp.zeros(()))

        g = nnx.jit(lambda m, x: m.w[...] + x)
        m = Tiny()
        out["nnx.jit"] = _per_call(lambda x: g(m, x), jnp.zeros(()), calls)
    except ImportError:
        pass
    return out


def _per_call(fn, x, calls):
    jax.block_until_ready(fn(x))
    chunks = []
    for _ in range(max(1, calls // 100)):
        t0 = time.perf_counter()
        for _ in range(100):
            y = fn(x)
        jax.block_until_ready(y)
        chunks.append((time.perf_counter() - t0) / 100 * 1e6)
    return float(np.median(chunks))


def step_anatomy(
    widths, batch_size: int, repeats: int, pause: float, min_block: float = 0.0
) -> dict:
    """Where an MLP step's time goes: each of its matmuls timed alone under jit at its own
    shape (forward x W, weight gradient a^T delta, input gradient delta W^T), their sum, and
    the whole nnjax step (loss, gradient, SGD update) and its forward pass, float32.

    The matmuls' own GFLOP/s are the ceiling for the step at this shape; step minus their
    sum is the elementwise work (bias, ReLU, softmax, update) and the dispatch."""
    rng = np.random.default_rng(0)
    B = batch_size
    dot = jax.jit(jnp.dot)
    shapes = []  # (name, (m, k), (k, n))
    for i in range(len(widths) - 1):
        n_in, n_out = widths[i], widths[i + 1]
        shapes.append((f"fwd {i}: ({B},{n_in})x({n_in},{n_out})", (B, n_in), (n_in, n_out)))
        shapes.append((f"dW {i}: ({n_in},{B})x({B},{n_out})", (n_in, B), (B, n_out)))
        if i:
            shapes.append((f"dx {i}: ({B},{n_out})x({n_out},{n_in})", (B, n_out), (n_out, n_in)))
    runners = {}
    for name, sa, sb in shapes:
        a = jnp.asarray(rng.standard_normal(sa, dtype=np.float32))
        b = jnp.asarray(rng.standard_normal(sb, dtype=np.float32))
        dot(a, b).block_until_ready()
        runners[name] = Runner(lambda: None, lambda a=a, b=b: dot(a, b).block_until_ready(), None)
    model = nnjax.mlp(list(widths[1:]), "relu")
    _, params = model.init(jax.random.key(0), (-1, widths[0]))
    opt = nnjax.get_optimizer("sgd", 0.01)
    step = nnjax.make_train_step(model, "softmax_cross_entropy", opt)
    fwd = jax.jit(model.apply)
    x = jnp.asarray(rng.standard_normal((B, widths[0]), dtype=np.float32))
    y = jnp.asarray(rng.integers(0, widths[-1], B).astype(np.int32))
    state = opt.init(params)
    jax.block_until_ready(step(params, state, (x, y)))
    fwd(params, x).block_until_ready()
    runners["nnjax step (whole)"] = Runner(
        lambda: None, lambda: jax.block_until_ready(step(params, state, (x, y))), None
    )
    runners["forward only"] = Runner(lambda: None, lambda: fwd(params, x).block_until_ready(), None)
    times = round_robin(runners, repeats, pause, min_block)
    rows = {}
    for name, sa, sb in shapes:
        t = stats(times[name])["median"]
        rows[name] = {"ms": 1e3 * t, "gflops": 2 * sa[0] * sa[1] * sb[1] / t / 1e9}
    mm = sum(r["ms"] for r in rows.values())
    return {
        "widths": list(widths),
        "batch_size": B,
        "matmuls": rows,
        "matmul_sum_ms": mm,
        "step_ms": 1e3 * stats(times["nnjax step (whole)"])["median"],
        "forward_ms": 1e3 * stats(times["forward only"])["median"],
    }


def compiled_programs(widths, batch_size: int) -> dict:
    """The optimised XLA programs of the nnjax step and the hand-written JAX step at one
    shape, summarised (dots, fusions, lines of HLO): equal programs mean any measured
    difference between the two rows is the framework's Python-side dispatch, or noise."""
    import re

    from benchmarks import impl_jax

    rng = np.random.default_rng(0)
    model = nnjax.mlp(list(widths[1:]), "relu")
    _, params = model.init(jax.random.key(0), (-1, widths[0]))
    opt = nnjax.get_optimizer("sgd", 0.01)
    x = jnp.asarray(rng.standard_normal((batch_size, widths[0]), dtype=np.float32))
    y = jnp.asarray(rng.integers(0, widths[-1], batch_size).astype(np.int32))
    step = nnjax.make_train_step(model, "softmax_cross_entropy", opt)
    texts = {"nnjax step": step.lower(params, opt.init(params), (x, y)).compile().as_text()}
    _, update = impl_jax._hand_optimizer("sgd", 0.01)

    @jax.jit
    def pure(layers, x, y):
        loss, g = jax.value_and_grad(impl_jax._loss)(layers, x, y)
        return update(g, (), layers)[0], loss

    layers = [(d["W"], d["b"]) for d in params if d]
    texts["hand-written JAX step"] = pure.lower(layers, x, y).compile().as_text()
    return {
        name: {
            "dots": len(re.findall(r"\bdot\(", t)),
            "fusions": len(re.findall(r"\bfusion\(", t)),
            "hlo_lines": len(t.splitlines()),
        }
        for name, t in texts.items()
    }
