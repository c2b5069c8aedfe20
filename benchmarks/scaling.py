"""Data-parallel scaling: training throughput of ``nnjax`` on 1, 2, 4, 8 devices.

    python -m benchmarks.scaling --quick     # strong scaling on a small problem (4 processes)
    python -m benchmarks.scaling             # strong and weak scaling (8 processes)
    python -m benchmarks.scaling --devices 1,2 --out /tmp/scaling.json

Each device count runs in its own process: the number of virtual CPU devices
(``XLA_FLAGS=--xla_force_host_platform_device_count=N``) must be fixed before JAX starts its
backend. On a GPU machine the same flag only sizes the (unused) CPU backend and the worker
takes the first N accelerators; a count above the machine's is reported as skipped.

The workload is the fused training loop ``fit`` runs (:func:`nnjax.train.make_epochs_fn`)
with the batch sharded over a 1-D mesh (:mod:`nnjax.parallel`): an MLP 64-256-256-10 on
synthetic float32 data, Adam, compiled once (compile time reported apart), then timed over
repeats (median, min-max) with ``block_until_ready``. Throughput = examples/s.

* strong scaling: the global batch fixed (every count sees the same batches in the same
  order, so the final loss is checked against one device's, float32 tolerance 1e-4);
* weak scaling (full runs): the per-device batch fixed, the global batch grows with N.

Virtual CPU devices share the machine's cores: on a 2-core CPU no speedup is possible and
the numbers measure the cost of partitioning and of the all-reduce, not a gain. Real gains
need real devices (several GPUs, or several hosts through ``jax.distributed``).
"""

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WIDTHS = (256, 256, 10)
FEATURES = 64
LOSS_TOL = 1e-4


def _config(quick: bool) -> dict:
    if quick:
        return {"n_examples": 4096, "batch": 256, "epochs": 2, "repeats": 3, "weak": None}
    return {"n_examples": 8192, "batch": 512, "epochs": 2, "repeats": 5, "weak": 128}


def worker(n: int, n_examples: int, batch: int, epochs: int, repeats: int) -> dict:
    """Time the sharded fused loop on ``n`` devices; a dict of the measurements."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    import nnjax
    from nnjax import parallel
    from nnjax.optim import get_optimizer
    from nnjax.train import Carry, make_epochs_fn

    devices = jax.devices()
    base = {"devices": n, "backend": jax.default_backend(), "device_kind": devices[0].device_kind}
    if len(devices) < n:
        return {**base, "skipped": f"only {len(devices)} {base['backend']} device(s)"}
    mesh = parallel.make_mesh(n)
    parallel.check_batch(batch, mesh)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n_examples, FEATURES), dtype=np.float32)
    y = (np.abs(X[:, :10]).argmax(axis=1)).astype(np.int32)  # a learnable rule
    model = nnjax.mlp(list(WIDTHS))
    params = model.init(jax.random.key(0), (-1, FEATURES))[1]
    opt = get_optimizer("adam", 1e-3)
    run, steps = make_epochs_fn(
        model,
        "softmax_cross_entropy",
        opt,
        n_examples=n_examples,
        batch_size=batch,
        batch_sharding=parallel.batch_sharding(mesh),
    )
    carry = Carry(params, opt.init(params))
    args = parallel.replicate(
        (carry, jnp.arange(epochs), jax.random.key(0), jnp.asarray(X), jnp.asarray(y)), mesh
    )
    jitted = jax.jit(run, out_shardings=parallel.replicated(mesh))
    t0 = time.perf_counter()
    compiled = jitted.lower(*args).compile()
    compile_s = time.perf_counter() - t0
    out = jax.block_until_ready(compiled(*args))  # warm-up, and the checked result
    final_loss = float(np.asarray(out[1].step_loss)[-1].mean())  # the last epoch's mean
    times = []
    for _ in range(repeats):
        time.sleep(0.1)  # let spinning worker threads settle
        t0 = time.perf_counter()
        jax.block_until_ready(compiled(*args))
        times.append(time.perf_counter() - t0)
    med = statistics.median(times)
    examples = epochs * steps * batch
    return {
        **base,
        "batch": batch,
        "per_device_batch": batch // n,
        "steps": epochs * steps,
        "compile_s": compile_s,
        "median_s": med,
        "min_s": min(times),
        "max_s": max(times),
        "examples_per_s": examples / med,
        "final_loss": final_loss,
        "all_reduce": "all-reduce" in compiled.as_text(),
    }


def _spawn(n: int, cfg: dict, batch: int, timeout: float) -> dict:
    flags = [
        f
        for f in os.environ.get("XLA_FLAGS", "").split()
        if "xla_force_host_platform_device_count" not in f
    ]
    flags.append(f"--xla_force_host_platform_device_count={n}")
    env = {**os.environ, "XLA_FLAGS": " ".join(flags), "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "benchmarks.scaling", "--worker", str(n), "--batch", str(batch)]
    cmd += [f"--{k.replace('_', '-')}={cfg[k]}" for k in ("n_examples", "epochs", "repeats")]
    try:
        proc = subprocess.run(
            cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        return {"devices": n, "batch": batch, "skipped": f"timed out after {timeout:.0f} s"}
    lines = [s for s in proc.stdout.splitlines() if s.startswith("{")]
    if proc.returncode or not lines:
        return {"devices": n, "batch": batch, "skipped": f"failed: {proc.stderr.strip()[-300:]}"}
    return json.loads(lines[-1])


def _table(title: str, rows: list[dict]) -> str:
    ok = [r for r in rows if "skipped" not in r]
    base = ok[0]["examples_per_s"] if ok and ok[0]["devices"] == 1 else None
    head = f"{'devices':>7} {'batch':>6} {'per-dev':>7} {'compile s':>9} "
    head += f"{'median ms':>9} {'min-max ms':>15} {'examples/s':>11} {'vs 1':>6}"
    out = [title, head]
    for r in rows:
        if "skipped" in r:
            out.append(f"{r['devices']:>7} skipped: {r['skipped']}")
            continue
        ratio = f"{r['examples_per_s'] / base:5.2f}x" if base else "-"
        spread = f"{1e3 * r['min_s']:.1f}-{1e3 * r['max_s']:.1f}"
        out.append(
            f"{r['devices']:>7} {r['batch']:>6} {r['per_device_batch']:>7} {r['compile_s']:>9.2f} "
            f"{1e3 * r['median_s']:>9.1f} {spread:>15} {r['examples_per_s']:>11.0f} {ratio:>6}"
        )
    return "\n".join(out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.scaling", description=__doc__)
    ap.add_argument("--quick", action="store_true", help="small problem, strong scaling only")
    ap.add_argument("--devices", default="1,2,4,8", help="device counts, e.g. 1,2,4,8")
    ap.add_argument(
        "--out",
        type=Path,
        default=None,
        help="JSON path (default: in a new temporary folder; benchmarks/results/... to commit)",
    )
    ap.add_argument("--timeout", type=float, default=240.0, help="seconds per device count")
    ap.add_argument("--worker", type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--batch", type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--n-examples", type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--epochs", type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--repeats", type=int, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker is not None:
        res = worker(args.worker, args.n_examples, args.batch, args.epochs, args.repeats)
        print(json.dumps(res), flush=True)
        return 0

    try:
        counts = [int(c) for c in args.devices.split(",") if c.strip()]
    except ValueError:
        ap.error(f"--devices takes comma-separated ints like 1,2,4,8, got {args.devices!r}")
    if not counts or min(counts) < 1:
        ap.error(f"--devices must list counts >= 1, got {args.devices!r}")
    cfg = _config(args.quick)
    t0 = time.perf_counter()
    results = {
        "config": {**cfg, "model": f"mlp {FEATURES}-" + "-".join(map(str, WIDTHS))},
        "machine": {
            "platform": platform.platform(),
            "cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
            "load_avg_start": os.getloadavg() if hasattr(os, "getloadavg") else None,
        },
    }
    lcm = math.lcm(*counts)  # the global batch must split evenly on every count
    batch = -(-cfg["batch"] // lcm) * lcm
    strong = [_spawn(n, cfg, batch, args.timeout) for n in counts]
    ok = [r for r in strong if "skipped" not in r]
    ref = next((r["final_loss"] for r in ok if r["devices"] == 1), None)
    diff = max((abs(r["final_loss"] - ref) for r in ok), default=0.0) if ref is not None else None
    results["strong"] = strong
    results["loss_max_abs_diff_vs_1"] = diff
    text = [_table(f"strong scaling: global batch {batch}, {cfg['epochs']} epochs", strong)]
    if diff is not None:
        verdict = "OK" if diff <= LOSS_TOL else "MISMATCH"
        text.append(f"final loss vs 1 device: max |diff| = {diff:.1e} (tol {LOSS_TOL}) {verdict}")
    if cfg["weak"]:
        weak = [_spawn(n, cfg, cfg["weak"] * n, args.timeout) for n in counts]
        results["weak"] = weak
        text.append(_table(f"weak scaling: {cfg['weak']} examples per device", weak))
    backend = ok[0]["backend"] if ok else "unknown"
    if backend == "cpu":
        text.append(
            "virtual CPU devices share the machine's "
            f"{results['machine']['cpus']} core(s): this measures the partitioning and "
            "all-reduce overhead, not a speedup"
        )
    results["machine"]["load_avg_end"] = os.getloadavg() if hasattr(os, "getloadavg") else None
    results["seconds"] = time.perf_counter() - t0
    print("\n\n".join(text))
    out = args.out or Path(tempfile.mkdtemp(prefix="nnjax-scaling-")) / (
        f"scaling-{backend}" + ("-quick" if args.quick else "") + ".json"
    )
    from nnjax import errors
    from nnjax.io import atomic_write_text

    try:  # atomic: a full disk or a kill keeps an earlier file of the name whole
        out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out, json.dumps(results, indent=1))
    except OSError as e:
        print(f"{ap.prog}: error: {errors.describe(e)}", file=sys.stderr)
        return errors.exit_code(e)
    print(f"wrote {out}")
    return 0 if diff is None or diff <= LOSS_TOL else 1


if __name__ == "__main__":
    sys.exit(main())
