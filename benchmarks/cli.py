"""``python -m benchmarks`` / ``nnjax bench``: run the suite, check, time, report.

Workloads (``--only`` picks some): ``startup`` (the CLI's and the import's start-up, the
compilation cache; the train pairs in full runs only), ``seed`` (the seed example),
``peak`` (matmul peak), ``mlp`` (MLP training, every implementation), ``cnn`` and ``gru``
(the MNIST-1D paper's CNN and GRU, Adam 1e-2 at batch 100: :mod:`benchmarks.nets`),
``vmap`` (vmap scaling), ``dispatch`` (the per-call floor), ``anatomy`` (each matmul of a
step timed alone; full runs only), ``scaling`` (data parallelism, ``benchmarks/scaling.py``
in its own process, full runs only, when that file exists), ``network`` (a 1000-neuron
spiking E/I network, 10 s of biological time, against Brian2's numpy runtime when Brian2
imports; full runs only). ``--quick`` is the smoke test of correctness: small problems, one
timed round, under 2 minutes on 2 cores; its timings mean little.
"""

import argparse
import datetime
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from nnjax.commands import options

# the implementations and models of the MLP workload (benchmarks.mlp.IMPLS and MODELS, which
# import JAX and every framework): named here so that --help starts none of them
IMPL_NAMES = (
    "numpy",
    "nnjax_step",
    "nnjax_fused",
    "pure_jax",
    "pure_jax_scan",
    "nnx_jit",
    "nnx_split",
    "linen",
    "equinox",
    "torch",
)
MODEL_NAMES = ("digits 64-256-256-10", "synthetic 784-256-256-10")
WORKLOADS = (
    "startup",
    "seed",
    "peak",
    "mlp",
    "cnn",
    "gru",
    "vmap",
    "dispatch",
    "anatomy",
    "scaling",
    "network",
)
# the MLP workload trains on the first rows of its data: a batch holds at most these
MAX_EXAMPLES = {"quick": 256, "full": 1024}
# the committed results: written here only when asked, `--out benchmarks/results`
RESULTS = Path(__file__).resolve().parent / "results"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--quick", action="store_true", help="small smoke run (< 2 min), e.g. for CI")
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help="output folder (default: a new temporary folder, printed; "
        "--out benchmarks/results writes the results that are committed)",
    )
    p.add_argument("--only", nargs="+", choices=WORKLOADS, default=list(WORKLOADS))
    p.add_argument(
        "--impls",
        nargs="+",
        choices=IMPL_NAMES,
        default=list(IMPL_NAMES),
        help="MLP implementations (the NumPy twin always runs: it is the oracle)",
    )
    p.add_argument("--models", nargs="+", choices=MODEL_NAMES, default=None)
    p.add_argument(
        "--batch-sizes",
        nargs="+",
        type=options.positive_int,
        default=None,
        help=f"MLP batch sizes, each at most the examples trained on ({MAX_EXAMPLES['full']}; "
        f"quick {MAX_EXAMPLES['quick']}) (default 32 128 1024; quick 32)",
    )
    p.add_argument("--optimizer", choices=("sgd", "adam"), default="sgd")
    p.add_argument(
        "--repeats",
        type=options.positive_int,
        default=None,
        help="timed rounds (default 11; quick 1)",
    )
    p.add_argument(
        "--pause",
        type=options.non_negative_float,
        default=0.15,
        help="seconds before each timed block (default 0.15)",
    )
    p.add_argument(
        "--min-block",
        type=options.non_negative_float,
        default=None,
        help="seconds of back-to-back calls per timed sample (default 0.25; quick 0)",
    )
    p.add_argument(
        "--memory",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="report compiled memory (default: on, off with --quick)",
    )
    p.add_argument("--no-plots", action="store_true")


def check(args) -> None:
    """Refuse, before anything runs, a batch larger than the MLP workload's examples (it had
    no step: a ZeroDivisionError) and an --out that is a file."""
    most = MAX_EXAMPLES["quick" if args.quick else "full"]
    big = [b for b in args.batch_sizes or () if b > most]
    if big:
        raise ValueError(
            f"--batch-sizes {' '.join(map(str, big))}: the MLP workload trains on the first "
            f"{most} examples{' (--quick)' if args.quick else ''}; give sizes in [1, {most}]"
        )
    if args.out is not None and args.out.exists() and not args.out.is_dir():
        raise ValueError(f"--out {args.out} is a file, not a folder")


def _settings(args) -> dict:
    quick = args.quick
    return {
        "repeats": args.repeats or (1 if quick else 11),
        "min_block": args.min_block if args.min_block is not None else (0.0 if quick else 0.25),
        "memory": (not quick) if args.memory is None else args.memory,
        "models": args.models
        or (
            ["digits 64-256-256-10"]
            if quick
            else ["digits 64-256-256-10", "synthetic 784-256-256-10"]
        ),
        "batch_sizes": args.batch_sizes or ([32] if quick else [32, 128, 1024]),
        # the first rows only (quick: an epoch at batch 32 is 8 steps); the steps per timed
        # call keep the full run under 15 minutes on 2 shared cores
        "max_examples": MAX_EXAMPLES["quick" if quick else "full"],
        "target_steps": (lambda B: 8) if quick else (lambda B: {32: 32, 128: 16}.get(B, 6)),
        "peak_sizes": [256, 512] if quick else [512, 1024, 2048],
        "vmap_counts": [4] if quick else [1, 8, 64, 256],  # quick: one compile, checked
        "vmap_epochs": 1 if quick else 5,
        "dispatch_calls": 200 if quick else 2000,
        # CNN/GRU: one epoch of MNIST-1D at batch 100 (quick: 800 examples, 8 steps)
        "nets_examples": 800 if quick else 4000,
    }


def out_dir(out: Path | None) -> Path:
    """``out``, or a new temporary folder: nothing is written into the source tree unless
    asked for (``--out benchmarks/results``)."""
    if out is not None:
        return out
    return Path(tempfile.mkdtemp(prefix="nnjax-bench-"))


def run(args) -> int:
    from benchmarks import harness, targets
    from benchmarks.check import Mismatch

    t_start = time.perf_counter()
    args.out = out_dir(args.out)
    print(f"writing results to {args.out}", flush=True)
    cfg = _settings(args)
    now = datetime.datetime.now(datetime.UTC)
    device = harness.device_label()
    env = harness.environment()
    cores = env["cores_available"]
    results = {
        "suite": "nnjax benchmarks",
        "mode": "quick" if args.quick else "full",
        "date": now.strftime("%Y-%m-%d %H:%M UTC"),
        "device": device,
        "env": env,
        "settings": {
            **{k: v for k, v in cfg.items() if k != "target_steps"},
            "pause": args.pause,
        },
        "load": {},
        "warnings": [],
    }

    def note_load(when):
        snap = harness.load_snapshot()
        results["load"][when] = snap
        w = harness.load_warning(snap, cores)
        if w:
            results["warnings"].append(f"{when}: {w}")
            print(f"WARNING ({when}): {w}", file=sys.stderr)

    note_load("start")
    try:
        _run_workloads(args, cfg, results, note_load)
    except Mismatch as e:
        print(f"\nBENCHMARK MISMATCH against the NumPy twin:\n  {e}\n", file=sys.stderr)
        return 1
    note_load("end")
    results["targets"] = targets.evaluate(results)
    results["total_s"] = time.perf_counter() - t_start
    _write(args, results)
    return 0


def _run_workloads(args, cfg, results, note_load):
    from benchmarks import harness

    only, R, pause, block = set(args.only), cfg["repeats"], args.pause, cfg["min_block"]
    spent = results["workload_s"] = {}
    clock = {"t": time.perf_counter(), "cpu": time.process_time()}

    def done(name):  # wall and CPU seconds of each workload, to keep --quick quick
        t, c = time.perf_counter(), time.process_time()
        spent[name] = {"wall": t - clock["t"], "cpu": c - clock["cpu"]}
        clock.update(t=t, cpu=c)

    if "torch" in args.impls:
        try:
            import torch

            torch.set_num_threads(harness.n_cores())
            results["env"]["torch_threads"] = torch.get_num_threads()
        except ImportError:
            pass
    if "startup" in only:  # first, in fresh processes, before this one has warmed anything
        from benchmarks.startup import bench_startup

        print("start-up (fresh processes) ...", flush=True)
        quick = args.quick
        results["startup"] = bench_startup(repeats=2 if quick else 5, pairs=0 if quick else 3)
        done("startup")
    if "seed" in only:
        from benchmarks.seed import bench_seed

        print("seed example ...", flush=True)
        results["seed"] = bench_seed(R, pause, block)
        done("seed")
    if "peak" in only:
        from benchmarks.micro import matmul_peak

        print("matmul peak ...", flush=True)
        results["peak"] = matmul_peak(cfg["peak_sizes"], max(R, 2), pause, block)
        done("peak")
    if "mlp" in only:
        from benchmarks import mlp

        impls = ["numpy"] + [n for n in args.impls if n != "numpy"]
        results["mlp"] = []
        for p in mlp.problems(
            cfg["models"],
            cfg["batch_sizes"],
            cfg["target_steps"],
            args.optimizer,
            0.01,
            cfg["max_examples"],
        ):
            print(f"MLP {p.label} ({p.steps} steps) ...", flush=True)
            t0 = time.perf_counter()
            # XLA's memory analysis compiles once more: the largest batch only, where it matters
            memory = cfg["memory"] and p.batch_size == max(cfg["batch_sizes"])
            results["mlp"].append(
                mlp.bench_problem(p, impls, repeats=R, pause=pause, memory=memory, min_block=block)
            )
            print(f"  {time.perf_counter() - t0:.0f} s", flush=True)
        if not args.quick:
            print("MLP per-step overhead (tiny model) ...", flush=True)
            results["overhead"] = mlp.bench_problem(
                mlp.overhead_problem(), impls, repeats=R, pause=pause, memory=False, min_block=block
            )
        done("mlp")
        note_load("after MLP")
        if "peak" in only:  # again, so the MLP rows are not held to a peak taken under other load
            from benchmarks.micro import matmul_peak

            again = matmul_peak(cfg["peak_sizes"], max(R, 2), pause, block)
            first = results["peak"]
            results["peak"] = max(first, again, key=lambda m: m["peak_gflops"])
            results["peak"]["measurements"] = [first["peak_gflops"], again["peak_gflops"]]
            done("peak again")
    if only & {"cnn", "gru"}:
        results["nets"] = _run_nets(args, cfg, R, pause, block)
        done("cnn/gru")
    if "vmap" in only:
        from benchmarks.micro import vmap_scaling

        print("vmap scaling ...", flush=True)
        results["vmap"] = vmap_scaling(
            cfg["vmap_counts"], R, pause, epochs=cfg["vmap_epochs"], min_block=block
        )
        done("vmap")
    if "dispatch" in only:
        from benchmarks.micro import dispatch_floor

        results["dispatch"] = dispatch_floor(cfg["dispatch_calls"])
        done("dispatch")
    if "anatomy" in only and not args.quick:
        from benchmarks.micro import compiled_programs, step_anatomy

        print("step anatomy ...", flush=True)
        results["anatomy"] = [
            {**step_anatomy(widths, B, R, pause, block), "programs": compiled_programs(widths, B)}
            for widths, B in (([784, 256, 256, 10], 1024), ([64, 256, 256, 10], 32))
        ]
        done("anatomy")
    if "network" in only and not args.quick:
        from benchmarks.network import bench_network

        print("spiking network (1000 AdEx neurons) ...", flush=True)
        results["network"] = bench_network(args.quick)
        done("network")
    if "scaling" in only and not args.quick:
        stem = _stem(args, results)
        args.out.mkdir(parents=True, exist_ok=True)
        results["scaling"] = run_scaling(args.out / f"{stem}-scaling.json")
        done("scaling")


def _run_nets(args, cfg, R, pause, block) -> list[dict]:
    """The CNN and GRU workloads (:mod:`benchmarks.nets`): quick runs check and time fit's
    auto mode and PyTorch only (about 1 minute of the quick run on 2 loaded cores)."""
    from benchmarks import nets

    names = list(nets.QUICK_IMPLS if args.quick else nets.impls())
    out = []
    for model in [m for m in ("cnn", "gru") if m in args.only]:
        p = nets.problem(model, batch_size=100, epochs=1, max_examples=cfg["nets_examples"])
        print(f"{p.label} ({p.steps} steps) ...", flush=True)
        t0 = time.perf_counter()
        out.append(nets.bench_net(p, names, repeats=R, pause=pause, min_block=block))
        print(f"  {time.perf_counter() - t0:.0f} s", flush=True)
    return out


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
    return {
        "command": " ".join(["python"] + cmd[1:]),
        "output": out,
        "returncode": rc,
        "seconds": time.perf_counter() - t0,
    }


def _stem(args, results) -> str:
    """``<device>-<date>[-quick]``, plus the workloads when ``--only`` picked some (a partial
    run does not overwrite the full run's report of the same day)."""
    only = [w for w in WORKLOADS if w in args.only]
    part = "" if len(only) == len(WORKLOADS) else "-" + "-".join(only)
    return f"{results['device']}-{results['date'][:10]}{part}" + ("-quick" if args.quick else "")


def _write(args, results):
    from benchmarks import plots, report
    from nnjax.io import atomic_write_text

    args.out.mkdir(parents=True, exist_ok=True)
    stem = _stem(args, results)
    pngs = {}
    if not args.no_plots:
        for name, fn in (("throughput", plots.throughput), ("vmap", plots.vmap_scaling)):
            path = args.out / f"{stem}-{name}.png"
            if fn(results, path):
                pngs[name] = path.name
    results["files"] = {"json": f"{stem}.json", "report": f"{stem}.md", "plots": pngs}
    report.write_json(results, args.out / f"{stem}.json")
    atomic_write_text(args.out / f"{stem}.md", report.markdown(results, pngs))
    report.print_terminal(results)
    print(f"\nwrote {args.out / stem}.json, .md and {len(pngs)} plots")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        check(args)
    except ValueError as e:
        parser.error(str(e))
    if args.out is None:
        return run(args)
    from nnjax import errors
    from nnjax.lock import lock_folder

    try:
        lock = lock_folder(args.out)  # one run writes a folder at a time (nnjax bench: the CLI's)
    except OSError as e:
        print(f"{parser.prog}: error: {errors.describe(e)}", file=sys.stderr)
        return errors.exit_code(e)
    with lock:
        return run(args)
