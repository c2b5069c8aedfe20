"""The workloads of the suite, run in order (see :mod:`benchmarks.cli` for what each is).

:data:`STEPS` is the table: each step is ``step(args, cfg, results, note_load, stem)`` and
writes its measurements into ``results``. After each finished workload its measurements are
saved (:class:`benchmarks.output.Progress`), so that a run stopped during workload k keeps
workloads 1..k-1 in ``<stem>.json``."""

import os
import subprocess
import sys
import time
from pathlib import Path


def run_workloads(args, cfg, results, note_load, stem: str):
    """Run the workloads ``args.only`` picks, in the order of :data:`STEPS`, with the settings
    ``cfg`` (:func:`benchmarks.cli._settings`), into ``results``; ``note_load(when)`` records
    the machine's load; ``stem`` names the run's files in ``args.out``. After each workload
    ``args.out/<stem>.json`` holds every finished one (``"complete": false``, ``"done"``,
    ``"missing"``). Returns the :class:`benchmarks.output.Progress`; an exception raised
    during a workload (or its save) leaves with its ``progress`` set to it."""
    from benchmarks.output import Progress

    plan = [name for name in STEPS if _runs(name, args)]
    out = getattr(args, "out", None)  # None (a caller's own namespace): nothing is saved
    progress = Progress(out, stem, [n for n in plan if n in _workload_names()])
    spent = results["workload_s"] = {}
    clock = {"t": time.perf_counter(), "cpu": time.process_time()}
    _torch_threads(args, results)
    for name in plan:
        progress.running = name
        try:
            STEPS[name](args, cfg, results, note_load, stem)
            t, c = time.perf_counter(), time.process_time()  # wall and CPU s of each step
            spent[name] = {"wall": t - clock["t"], "cpu": c - clock["cpu"]}
            clock.update(t=t, cpu=c)
            progress.finished(name, results)
        except BaseException as e:
            e.progress = progress
            raise
    progress.running = None
    return progress


def _workload_names() -> tuple:
    from benchmarks.cli import WORKLOADS

    return WORKLOADS


def _runs(name: str, args) -> bool:
    """Whether the step ``name`` runs: a workload ``--only`` picks (``--quick`` skips those
    of full runs only); the peak again after the MLP rows when both run."""
    from benchmarks.cli_checks import FULL_ONLY

    only = set(args.only)
    if name == "peak again":
        return {"peak", "mlp"} <= only
    return name in only and not (args.quick and name in FULL_ONLY)


def _torch_threads(args, results) -> None:
    """PyTorch's rows: the MLP's with --impls torch, and those of the CNN and GRU (whose
    implementations --impls does not choose): --impls without torch left them unset."""
    from benchmarks import harness

    only = set(args.only)
    if "mlp" in only and "torch" in args.impls or only & {"cnn", "gru"}:
        try:
            import torch

            torch.set_num_threads(harness.n_cores())
            results["env"]["torch_threads"] = torch.get_num_threads()
        except ImportError:
            pass


def _timing(args, cfg):
    """(rounds, pause, seconds per timed block)."""
    return cfg["repeats"], args.pause, cfg["min_block"]


def _startup(args, cfg, results, note_load, stem):
    """First, in fresh processes, before this one has warmed anything."""
    from benchmarks.startup import bench_startup

    print("start-up (fresh processes) ...", flush=True)
    quick = args.quick
    results["startup"] = bench_startup(repeats=2 if quick else 5, pairs=0 if quick else 5)


def _seed(args, cfg, results, note_load, stem):
    from benchmarks.seed import bench_seed

    print("seed example ...", flush=True)
    results["seed"] = bench_seed(*_timing(args, cfg))


def _peak(args, cfg, results, note_load, stem):
    from benchmarks.micro import matmul_peak

    print("matmul peak ...", flush=True)
    R, pause, block = _timing(args, cfg)
    results["peak"] = matmul_peak(cfg["peak_sizes"], max(R, 2), pause, block)


# the MLP workload's learning rate per optimizer: Adam at its usual 1e-3 (at 1e-2 the
# 784-dim loss jumped from 3.3 to 4.5 in its second step, a regime where rounding decides)
MLP_RATES = {"sgd": 0.01, "adam": 1e-3}


def _mlp(args, cfg, results, note_load, stem):
    from benchmarks import mlp

    R, pause, block = _timing(args, cfg)
    impls = ["numpy"] + [n for n in args.impls if n != "numpy"]
    rows = []  # into results at the end: a stopped MLP workload leaves no half of it there
    for p in mlp.problems(
        cfg["models"],
        cfg["batch_sizes"],
        cfg["target_steps"],
        args.optimizer,
        MLP_RATES[args.optimizer],
        cfg["max_examples"],
    ):
        print(f"MLP {p.label} ({p.steps} steps) ...", flush=True)
        t0 = time.perf_counter()
        # XLA's memory analysis compiles once more: the largest batch only, where it matters
        memory = cfg["memory"] and p.batch_size == max(cfg["batch_sizes"])
        rows.append(
            mlp.bench_problem(p, impls, repeats=R, pause=pause, memory=memory, min_block=block)
        )
        print(f"  {time.perf_counter() - t0:.0f} s", flush=True)
    overhead = None
    if not args.quick:
        print("MLP per-step overhead (tiny model) ...", flush=True)
        overhead = mlp.bench_problem(
            mlp.overhead_problem(), impls, repeats=R, pause=pause, memory=False, min_block=block
        )
    results["mlp"] = rows
    if overhead is not None:
        results["overhead"] = overhead
    note_load("after MLP")


def _peak_again(args, cfg, results, note_load, stem):
    """Again, so the MLP rows are not held to a peak taken under other load."""
    from benchmarks.micro import matmul_peak

    R, pause, block = _timing(args, cfg)
    again = matmul_peak(cfg["peak_sizes"], max(R, 2), pause, block)
    first = results["peak"]
    results["peak"] = max(first, again, key=lambda m: m["peak_gflops"])
    results["peak"]["measurements"] = [first["peak_gflops"], again["peak_gflops"]]


def _net(model: str):
    """The step of the CNN or the GRU workload."""

    def step(args, cfg, results, note_load, stem):
        rows = _run_nets(args, cfg, *_timing(args, cfg), (model,))
        results["nets"] = [*results.get("nets", []), *rows]

    step.__name__ = f"_{model}"
    return step


def _run_nets(args, cfg, R, pause, block, models=("cnn", "gru")) -> list[dict]:
    """The CNN and GRU workloads of ``models`` (:mod:`benchmarks.nets`): quick runs check and
    time fit's auto mode and PyTorch only (about 1 minute of the quick run on 2 loaded
    cores)."""
    from benchmarks import nets

    names = list(nets.QUICK_IMPLS if args.quick else nets.impls())
    out = []
    for model in [m for m in models if m in args.only]:
        p = nets.problem(model, batch_size=100, epochs=1, max_examples=cfg["nets_examples"])
        print(f"{p.label} ({p.steps} steps) ...", flush=True)
        t0 = time.perf_counter()
        out.append(nets.bench_net(p, names, repeats=R, pause=pause, min_block=block))
        print(f"  {time.perf_counter() - t0:.0f} s", flush=True)
    return out


def _vmap(args, cfg, results, note_load, stem):
    from benchmarks.micro import vmap_scaling

    print("vmap scaling ...", flush=True)
    R, pause, block = _timing(args, cfg)
    results["vmap"] = vmap_scaling(
        cfg["vmap_counts"], R, pause, epochs=cfg["vmap_epochs"], min_block=block
    )


def _dispatch(args, cfg, results, note_load, stem):
    from benchmarks.micro import dispatch_floor

    results["dispatch"] = dispatch_floor(cfg["dispatch_calls"])


def _anatomy(args, cfg, results, note_load, stem):
    from benchmarks.micro import compiled_programs, step_anatomy

    print("step anatomy ...", flush=True)
    R, pause, block = _timing(args, cfg)
    results["anatomy"] = [
        {**step_anatomy(widths, B, R, pause, block), "programs": compiled_programs(widths, B)}
        for widths, B in (([784, 256, 256, 10], 1024), ([64, 256, 256, 10], 32))
    ]
    peak_from_anatomy(results)


def _network(args, cfg, results, note_load, stem):
    from benchmarks.network import bench_network

    print("spiking network (1000 AdEx neurons) ...", flush=True)
    results["network"] = bench_network(args.quick)


def _scaling(args, cfg, results, note_load, stem):
    args.out.mkdir(parents=True, exist_ok=True)
    results["scaling"] = run_scaling(args.out / f"{stem}-scaling.json")


# the steps in the order they run: each a workload of --only (benchmarks.cli.WORKLOADS), and
# "peak again" (not one: the peak measured again after the MLP rows, when both run)
STEPS = {
    "startup": _startup,
    "seed": _seed,
    "peak": _peak,
    "mlp": _mlp,
    "peak again": _peak_again,
    "cnn": _net("cnn"),
    "gru": _net("gru"),
    "vmap": _vmap,
    "dispatch": _dispatch,
    "anatomy": _anatomy,
    "network": _network,
    "scaling": _scaling,
}


def run_scaling(out_json: Path, timeout: float = 360.0) -> dict | None:
    """``python -m benchmarks.scaling --quick`` in its own process (the virtual device count
    must be set before JAX starts), if that module exists; its printed table goes into the
    report and its JSON to ``out_json``. Its quick mode (strong scaling on 1/2/4/8 devices)
    keeps the full suite under 15 minutes; ``python -m benchmarks.scaling`` adds weak scaling.
    """
    if not (Path(__file__).parent / "scaling.py").exists():
        return None
    print("data-parallel scaling (subprocess) ...", flush=True)
    root = Path(__file__).resolve().parent.parent
    cmd = [sys.executable, "-m", "benchmarks.scaling", "--quick", "--out", str(out_json)]
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(
            cmd,
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=root,
            env={**os.environ, "PYTHONPATH": str(root)},
        )
        out, rc = proc.stdout + proc.stderr[-2000:], proc.returncode
    except subprocess.TimeoutExpired:
        out, rc = f"timed out after {timeout:.0f} s", None
    _check_scaling(out_json, rc)
    return {
        "command": " ".join(["python"] + cmd[1:]),
        "output": out,
        "returncode": rc,
        "seconds": time.perf_counter() - t0,
    }


def _check_scaling(out_json: Path, rc: int | None) -> None:
    """The scaling run's own check (every device count's final loss against one device's)
    stops the suite as a mismatch against the twin does: it exits 1 on a mismatch, which
    the report only printed ("exit status 1") under a run that exited 0."""
    import json

    from benchmarks.check import Mismatch
    from benchmarks.scaling import LOSS_TOL

    if rc != 1 or not out_json.exists():
        return
    diff = json.loads(out_json.read_text()).get("loss_max_abs_diff_vs_1")
    if diff is not None and diff > LOSS_TOL:
        raise Mismatch(
            f"data-parallel scaling: the final loss differs from one device's by {diff:.2g} "
            f"(tolerance {LOSS_TOL:g}; {out_json})"
        )


def peak_from_anatomy(results: dict) -> None:
    """The peak is the fastest plain matmul of the run (``jnp.dot`` under ``jit``, medians):
    when one of the step anatomy's beats the square sizes' best, it becomes the peak, the
    square sizes' kept as ``square_peak_gflops``. On 2026-12-03 (AVX2) n = 2048 ran at 127.7
    GFLOP/s and the anatomy's (1024,256)x(256,256) at 149.8: the MLP rows read 103-106% of
    the "peak" and the 75% target held against a peak that was none."""
    peak = results.get("peak")
    mats = [(r["gflops"], k) for a in results.get("anatomy") or [] for k, r in a["matmuls"].items()]
    if not peak or not mats or max(mats)[0] <= peak["peak_gflops"]:
        return
    peak["square_peak_gflops"] = peak["peak_gflops"]
    peak["peak_gflops"], peak["peak_n"] = max(mats)
