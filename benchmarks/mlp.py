"""The MLP training workload: every implementation on every (model, batch size) problem.

For each problem: set every implementation up (``Unavailable`` ones are skipped with a
note), run each once and check it against the NumPy twin (:mod:`benchmarks.check`): that
first call is also the warm-up (it compiles); then time ``repeats`` round-robin rounds. The
first call's time minus the steady-state median is reported as tracing + compilation.
"""

import gc
from collections.abc import Callable

from benchmarks import impl_frameworks as fw
from benchmarks import impl_jax as jx
from benchmarks.check import compare
from benchmarks.harness import Unavailable, load_snapshot, round_robin, stats, timed
from benchmarks.problem import Problem, digits_data, synthetic_data

# name -> (label, factory(problem, memory) -> Runner); the twin first: it is the oracle.
IMPLS: dict[str, tuple[str, Callable]] = {
    "numpy": ("NumPy twin", fw.numpy_twin),
    "nnjax_step": ("nnjax step (jit per step)", jx.nnjax_step),
    "nnjax_fused": ("nnjax fused (fit's loop)", jx.nnjax_fused),
    "pure_jax": ("hand-written JAX step", jx.pure_jax),
    "pure_jax_scan": ("hand-written JAX scan, pre-batched", jx.pure_jax_scan),
    "nnx_jit": ("Flax NNX (nnx.jit)", fw.nnx_jit),
    "nnx_split": ("Flax NNX (split/merge + jax.jit)", fw.nnx_split),
    "linen": ("Flax linen", fw.linen),
    "equinox": ("Equinox (filter_jit)", fw.equinox),
    "torch": ("PyTorch eager (CPU)", fw.torch_eager),
}

MODELS = {
    "digits 64-256-256-10": (digits_data, [256, 256, 10]),
    "synthetic 784-256-256-10": (synthetic_data, [256, 256, 10]),
}


def problems(
    model_names, batch_sizes, target_steps: Callable[[int], int], optimizer, lr, max_examples=None
):
    """The (model, batch) problems; epochs chosen so each run has about target_steps(B) steps
    (at least one epoch); ``max_examples`` keeps only the first rows of the data."""
    for name in model_names:
        make_data, sizes = MODELS[name]
        X, y = make_data()
        X, y = X[:max_examples], y[:max_examples]
        for B in batch_sizes:
            per_epoch = len(X) // B
            epochs = max(1, round(target_steps(B) / per_epoch))
            yield Problem(name, X, y, sizes, B, epochs, optimizer=optimizer, learning_rate=lr)


def overhead_problem() -> Problem:
    """A 16-32-32-4 MLP at batch 32 (0.29 MFLOP a step): each implementation's time per step
    here is its cost per step beyond the arithmetic (dispatch, Python, framework)."""
    X, y = synthetic_data(n=1024, d=16, k=4)
    return Problem("tiny 16-32-32-4", X, y, [32, 32, 4], 32, 1)


def bench_problem(
    p: Problem,
    impls,
    *,
    repeats: int,
    pause: float,
    memory: bool,
    min_block: float = 0.0,
    log=print,
) -> dict:
    """Check and time every implementation on ``p``; a dict ready for JSON."""
    runners, notes = {}, {}
    for name in sorted(impls, key=lambda n: n != "numpy"):  # the twin first: the oracle
        try:
            runners[name] = IMPLS[name][1](p)
        except Unavailable as e:
            notes[name] = str(e)
            log(f"  skip {name}: {e}")
    if "numpy" not in runners:
        raise ValueError("benchmarks: the NumPy twin ('numpy') must be among the implementations")
    rows = {}
    ref = None
    for name, r in runners.items():  # the check; the first call also traces and compiles
        r.reset()
        first, out = timed(r.run)
        params, losses = r.result(out)
        if ref is None:
            ref = (params, losses)
        norm = "fro" if p.optimizer == "adam" else "max"  # Adam: benchmarks.check
        errs = compare(f"{p.label} {name}", params, losses, *ref, p.params0, param_norm=norm)
        rows[name] = {"label": IMPLS[name][0], "first_call_s": first, "check": errs}
        rows[name]["final_loss"] = float(losses[-1])
    load_before = load_snapshot(0.3)
    times = round_robin(runners, repeats, pause, min_block)
    load_after = load_snapshot(0.3)
    flops = p.flops_per_step()
    for name, ts in times.items():
        s = stats(ts)
        row = rows[name]
        row["time"] = s
        mem = runners[name].memory
        row["memory"] = mem() if memory and mem is not None else None
        row["compile_s"] = max(0.0, row["first_call_s"] - s["median"])
        row["step_ms"] = 1e3 * s["median"] / p.steps
        row["examples_per_s"] = p.steps * p.batch_size / s["median"]
        row["gflops"] = flops * p.steps / s["median"] / 1e9
    del runners
    gc.collect()
    return {
        "model": p.name,
        "batch_size": p.batch_size,
        "steps": p.steps,
        "epochs": p.epochs,
        "n_examples": len(p.X),
        "optimizer": p.optimizer,
        "learning_rate": p.learning_rate,
        "dtype": str(p.X.dtype),
        "flops_per_step": flops,
        "rows": rows,
        "skipped": notes,
        "load": [load_before, load_after],
    }
