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
timed round (two for the matmul peak, which times at least two), under 2 minutes on 2 cores;
its timings mean little.
"""

import argparse
import datetime
import shutil
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.cli_checks import OutKept, check, check_out_kept, folder, repeats, seconds
from benchmarks.output import ReportFailed, kept, report_from, save_measurements, stopped, write
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
        type=folder,
        default=None,
        metavar="DIR",
        help="output folder (default: a new temporary folder, printed; "
        "--out benchmarks/results writes the results that are committed)",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the files of an earlier run of the same device, day and workloads in "
        "--out (without it such a run is refused before any workload runs)",
    )
    given = options.StoreGiven  # an option no chosen workload reads is refused (check)
    p.add_argument(
        "--only",
        nargs="+",
        choices=WORKLOADS,
        default=list(WORKLOADS),
        action=given,
        metavar="NAME",
        help=f"the workloads to run, of {', '.join(WORKLOADS)} (default: all of them)",
    )
    p.add_argument(
        "--impls",
        nargs="+",
        choices=IMPL_NAMES,
        default=list(IMPL_NAMES),
        action=given,
        metavar="IMPL",
        help=f"MLP implementations, of {', '.join(IMPL_NAMES)} (default: all of them; the "
        "NumPy twin always runs: it is the oracle)",
    )
    p.add_argument(
        "--models",
        nargs="+",
        choices=MODEL_NAMES,
        default=None,
        metavar="MODEL",
        help=f"the MLP workload's models, each quoted (choices: {', '.join(map(repr, MODEL_NAMES))}"
        "; default: both, the first alone with --quick)",
    )
    p.add_argument(
        "--batch-sizes",
        nargs="+",
        type=options.positive_int,
        default=None,
        metavar="B",
        help=f"MLP batch sizes, each at most the examples trained on ({MAX_EXAMPLES['full']}; "
        f"quick {MAX_EXAMPLES['quick']}) (default 32 128 1024; quick 32)",
    )
    p.add_argument(
        "--optimizer",
        choices=("sgd", "adam"),
        default="sgd",
        action=given,
        help="the MLP workload's optimizer (default: sgd)",
    )
    p.add_argument(
        "--repeats",
        type=repeats,
        default=None,
        metavar="N",
        help="timed rounds (default 11; quick 1; the matmul peak at least 2)",
    )
    p.add_argument(
        "--pause",
        type=seconds,
        default=0.15,
        action=given,
        metavar="S",
        help="seconds before each timed block (default 0.15)",
    )
    p.add_argument(
        "--min-block",
        type=seconds,
        default=None,
        metavar="S",
        help="seconds of back-to-back calls per timed sample (default 0.25; quick 0)",
    )
    p.add_argument(
        "--memory",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="report compiled memory (default: on, off with --quick)",
    )
    p.add_argument("--no-plots", action="store_true", help="skip the PNG figures")
    p.add_argument(
        "--report-from",
        type=Path,
        default=None,
        metavar="FILE",
        help="run no workload: evaluate the targets of a run's saved measurements, FILE "
        "(its <stem>.json), and write its report and figures beside it (or into --out)",
    )


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
    """Run the suite into ``args.out``. Without ``--out`` into a new temporary folder, which
    a run that fails before its first workload has finished removes (it holds nothing). The
    measurements are saved after each workload (:class:`benchmarks.output.Progress`): a run
    stopped during a later one (a signal, a full disk, an error, a mismatch) keeps its folder
    and says in one line what it holds and how to report it (output.stopped), as a run
    whose report fails (ReportFailed) or is stopped at it (output.kept)."""
    if args.report_from is not None:
        return report_from(args)
    if args.out is not None:
        return _run(args)[0]
    args.out = out_dir(None)
    try:
        code, measurements = _run(args)
    except ReportFailed:
        raise
    except BaseException as e:
        if getattr(e, "measurements", None) is None:  # none saved (output.kept): no report
            shutil.rmtree(args.out, ignore_errors=True)
        raise
    if code != 0 and measurements is None:
        shutil.rmtree(args.out, ignore_errors=True)
    return code


def _run(args) -> tuple[int, Path | None]:
    """(exit status, the measurements a failed run keeps, or None)."""
    from benchmarks import harness, targets
    from benchmarks.check import Mismatch
    from benchmarks.workloads import run_workloads

    t_start = time.perf_counter()
    cfg = _settings(args)
    now = datetime.datetime.now(datetime.UTC)
    device = harness.device_label()
    date = now.strftime("%Y-%m-%d %H:%M UTC")
    # JAX has started: the device is known, and so are the names of the run's files
    check_out_kept(args, _stem(args, {"device": device, "date": date}))
    print(f"writing results to {args.out}", flush=True)
    env = harness.environment()
    cores = env["cores_available"]
    results = {
        "suite": "nnjax benchmarks",
        "mode": "quick" if args.quick else "full",
        "date": date,
        "device": device,
        "env": env,
        "settings": {
            **{k: v for k, v in cfg.items() if k != "target_steps"},
            "pause": args.pause,
        },
        "load": {},
        "warnings": [],
    }
    if only := _only(args):
        results["only"] = only  # the report's header names the workloads chosen

    def note_load(when):
        snap = harness.load_snapshot()
        results["load"][when] = snap
        w = harness.load_warning(snap, cores)
        if w:
            results["warnings"].append(f"{when}: {w}")
            print(f"WARNING ({when}): {w}", file=sys.stderr)

    note_load("start")
    stem = _stem(args, results)
    try:
        progress = run_workloads(args, cfg, results, note_load, stem)
    except Mismatch as e:
        print(f"\nBENCHMARK MISMATCH against the NumPy twin:\n  {e}\n", file=sys.stderr)
        if not ((progress := getattr(e, "progress", None)) and progress.path):
            return 1, None
        print(progress.note(), file=sys.stderr)  # the workloads before it are kept
        return 1, progress.path
    except BaseException as e:  # a signal, a full disk, a defect: what is saved is kept
        if not ((progress := getattr(e, "progress", None)) and progress.path):
            raise
        raise stopped(e, progress) from e
    try:
        note_load("end")
        results["total_s"] = time.perf_counter() - t_start
        saved = save_measurements(args.out, stem, results)
    except (OSError, KeyboardInterrupt) as e:  # every workload is in the file saved last
        if not (progress and progress.path):
            raise
        progress.running = None
        raise stopped(e, progress) from e
    try:  # a defect here must not lose the measurements of a 20-minute run
        results["targets"] = targets.evaluate(results)
        write(args.out, stem, results, args)
    except (OSError, KeyboardInterrupt) as e:  # a full disk, a path, a signal: one line, kept
        raise kept(e, saved) from e
    except Exception as e:
        raise ReportFailed(saved) from e
    return 0, None


def _stem(args, results) -> str:
    """``<device>-<date>[-quick]``, with ``-only-<workloads>`` when ``--only`` picked some: a
    partial run's files are named apart from the full run's of the same day (``--only
    scaling``'s report was ``<device>-<date>-scaling.json``, the full run's scaling JSON)."""
    part = "-only-" + "-".join(only) if (only := _only(args)) else ""
    return f"{results['device']}-{results['date'][:10]}{part}" + ("-quick" if args.quick else "")


def _only(args) -> list[str]:
    """The workloads ``--only`` chose, in run order; [] when it chose them all."""
    only = [w for w in WORKLOADS if w in args.only]
    return [] if len(only) == len(WORKLOADS) else only


def main(argv=None) -> int:
    """``python -m benchmarks``: an expected failure is one line and an exit status, as
    ``nnjax bench``'s (a path or a full disk, standard output included: 3; SIGINT, SIGTERM,
    SIGHUP: 128 + N, the lock of --out released and no temporary folder left)."""
    from nnjax.cli import Parser  # usage errors in one line, as nnjax bench's
    from nnjax.cli_signals import signals_unwind
    from nnjax.cli_stdout import reader_left, stdout_named

    parser = Parser(prog="python -m benchmarks", description=__doc__)
    parser.argv = sys.argv[1:] if argv is None else [str(a) for a in argv]  # `--pause -inf`
    add_arguments(parser)
    with stdout_named():
        try:
            try:
                args = parser.parse_args(argv)
            except SystemExit:  # --help: its text may still be buffered (a full disk: below)
                sys.stdout.flush()
                raise
            try:
                check(args)
            except ValueError as e:
                parser.error(str(e))
            with signals_unwind("bench", prog=parser.prog):  # the nnjax command's handlers
                code = _locked_run(args)
            sys.stdout.flush()  # output still buffered fails here, as one line
            return code
        except OutKept as e:  # an earlier run's files in --out: exit 2, as nnjax bench
            print(f"{parser.prog}: error: {e}", file=sys.stderr)
            return 2
        except OSError as e:  # a path (--out a file: exit 3, as nnjax bench), a full disk
            return _failed(parser.prog, e)
        except KeyboardInterrupt as e:  # a signal (nnjax.cli_signals): its lock is released
            return _interrupted(parser.prog, e)
        except SystemExit as e:  # rich's exit when the reader of stdout left: as SIGPIPE
            if not reader_left(e):
                raise
            return _failed(parser.prog, BrokenPipeError())


def _interrupted(prog: str, e: KeyboardInterrupt) -> int:
    """``<prog>: error: interrupted by SIGTERM``, and its status 128 + N."""
    from nnjax import errors

    print(f"{prog}: error: {errors.describe(e)}", file=sys.stderr)
    return errors.exit_code(e)


def _locked_run(args) -> int:
    from nnjax.commands.bench import output_folder

    folder = output_folder(args)
    if folder is None:
        return run(args)
    from nnjax.lock import lock_folder
    from nnjax.preflight import removing_new_folders

    # one run writes a folder at a time; a run that fails leaves no folder it made empty (a
    # full disk left --out a/b/c, empty): nnjax bench's, nnjax.cli._folder_lock
    with removing_new_folders(folder), lock_folder(folder):
        return run(args)


def _failed(prog: str, e: OSError) -> int:
    """A failed path, disk or standard output: one line, exit 3; a reader of stdout that left
    (``| head``): quietly, 141, as the ``nnjax`` command."""
    from nnjax import errors
    from nnjax.cli_stdout import STDOUT
    from nnjax.terminal import detach_stdout

    if isinstance(e, BrokenPipeError) or getattr(e, "filename", None) == STDOUT:
        detach_stdout()  # what is still buffered must not fail again at exit
    if isinstance(e, BrokenPipeError):
        return 128 + 13
    print(f"{prog}: error: {errors.describe(e)}", file=sys.stderr)
    return errors.exit_code(e)
