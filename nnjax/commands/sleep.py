"""``nnjax sleep``: the continual-learning study — every baseline, SRC and generative replay,
with the hyperparameters chosen on validation runs, on the paired test runs. With ``--out``,
writes results.json, table.md and the plots there; a folder that already holds a file of
those names (:data:`OUT_FILES`) is refused unless ``--overwrite``."""

import os
import sys
import time

HELP = (
    "continual learning on split / permuted digits and MNIST-1D: sequential, EWC, SI, LwF, "
    "replay buffers, generative replay, Sleep Replay Consolidation and joint training; mean, "
    "sample std, confidence intervals, BWT, FWT, forgetting and paired tests over class "
    "orders x seeds"
)
# nnjax.brain.tasks.SPLIT_DATASETS and nnjax.brain.harness.METHODS (a test keeps them equal):
# here so that `--help` needs no JAX
SPLIT_DATASETS = ("digits", "mnist1d", "permuted-digits", "permuted-mnist1d")
METHODS = ("sequential", "ewc", "si", "lwf", "replay1", "replay5", "replay20", "genreplay",
           "src", "src+replay1", "joint")  # fmt: skip
TEST_ORDERS, TEST_SEEDS = "0,1,2,3,4", 2  # nnjax.brain.study's TEST_ORDERS and TEST_SEEDS
VALIDATION_ORDERS = (100, 101)  # nnjax.brain.harness.VALIDATION_ORDERS (a test keeps them equal)
# An order k > 0 seeds NumPy's permutation of the classes, which takes any int; above 2**32 - 1
# (--seed's range) none is new (10! = 3628800 orders of 10 classes), and results.json's
# orders would no longer be read back exactly by readers whose numbers are float64 or int64.
ORDER_LIMIT = 2**32 - 1


def add_arguments(p) -> None:
    from nnjax.commands import options as o

    p.add_argument("--dataset", default="digits", choices=SPLIT_DATASETS, help="dataset")
    p.add_argument(
        "--out",
        default=None,
        metavar="DIR",
        help="write results.json, table.md and plots here (default: print only; a folder "
        "holding any of them is refused unless --overwrite)",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help=f"replace the files of --out named {', '.join(OUT_FILES)} (an earlier study's, "
        "or yours; dreams.png is removed when none is drawn); without it a run into a folder "
        "holding any of them is refused",
    )
    p.add_argument(
        "--seeds", type=o.positive_int, default=TEST_SEEDS, metavar="N", help="seeds per order"
    )
    p.add_argument(
        "--orders",
        type=o.int_list(0, TEST_ORDERS, ORDER_LIMIT, " (each seeds a class order, as --seed)"),
        default=TEST_ORDERS,
        metavar="K,K,...",
        help="class orders, each in [0, 2**32 - 1] (0 = 0..9; permuted datasets: the "
        "permutations' seed); not 100, "
        "101: the hyperparameter search's",
    )
    p.add_argument(
        "--methods",
        type=o.name_list(METHODS, "method"),
        default=",".join(METHODS),
        metavar="NAME,...",
        help=o.choices_help(
            "comma-separated methods (src also runs its plasticity-constrained choice)", METHODS
        ),  # fmt: skip
    )
    p.add_argument(
        "--steps",
        type=o.positive_int,
        default=None,
        metavar="N",
        help="SGD steps per task (default: the dataset's, nnjax.brain.harness.WAKE; the "
        "hyperparameters were tuned for it)",
    )
    p.add_argument(
        "--sleep-steps",
        type=o.positive_int,
        default=None,
        metavar="N",
        help="SRC time steps per sleep (default: the dataset's, nnjax.brain.harness.SLEEP)",
    )
    p.add_argument("--no-images", action="store_true", help="skip the dream images")


def check(args) -> None:
    """Checks across options, before JAX starts: distinct orders, none of the search's
    validation orders, at least 2 runs (the statistics need a sample), the memory, and a
    ``--out`` that is not blank, not a file, no file on its way, holds none of
    :data:`OUT_FILES` unless ``--overwrite``, and can be written (the probe's folders
    removed again)."""
    orders = ",".join(map(str, args.orders))
    if len(set(args.orders)) != len(args.orders):
        raise ValueError(f"--orders {orders}: an order is repeated")
    searched = sorted(set(args.orders) & set(VALIDATION_ORDERS))
    if searched:  # the tuned hyperparameters were chosen on these class orders' runs
        raise ValueError(
            f"--orders {orders}: order {searched[0]} is one the hyperparameter search chose on "
            f"({','.join(map(str, VALIDATION_ORDERS))}, nnjax.brain.harness); test runs must "
            "not share a class order with it"
        )
    if len(args.orders) * args.seeds < 2:
        raise ValueError(
            f"--orders {orders} x --seeds {args.seeds} gives 1 run; the std, CI and paired "
            "tests need at least 2: give --seeds 2 or more, or a second order"
        )
    if args.sleep_steps is not None and not _sleeps(args):
        raise ValueError(
            f"--sleep-steps {args.sleep_steps}: only SRC sleeps ({', '.join(SLEEPING)}), and "
            f"--methods {','.join(args.methods)} has none of them; add one, or leave "
            "--sleep-steps out"
        )
    _check_memory(args)
    if args.out is None and args.overwrite:
        raise ValueError("--overwrite replaces files in --out: give it with --out")
    if args.out is not None:
        from nnjax.commands.options import blank_out_error, out_parent_error, probe_writable

        # a file on its way was "not writable: a component of the path is a file, not a
        # directory", unnamed, and a link to nothing on its way "No such file or directory"
        for error in (blank_out_error(args.out), out_parent_error(args.out)):
            if error is not None:
                raise error
        _check_out_kept(args)
        probe_writable(args.out, "--out")  # leaves no folder: the run's lock makes it


def _check_out_kept(args) -> None:
    """Files of the names a study writes or removes (:data:`OUT_FILES`) already in --out
    are kept: the run is refused unless --overwrite. Asked by :func:`check`, before JAX,
    and again by :func:`run`, under the folder's lock: a run into the same folder that
    ended between the two (its lock released) has written them since."""
    from nnjax.commands.options import out_kept_error

    kept = out_kept_error(args.out, "sleep", *_out_names(args), overwrite=args.overwrite)
    if kept is not None:
        raise kept


def _out_names(args) -> tuple[list[str], tuple[str, ...]]:
    """The files a study writes into --out, and those it removes there (dreams.png when it
    draws no dreams)."""
    dreams = not args.no_images and any(m in DREAMING for m in args.methods)
    writes = [n for n in OUT_FILES if dreams or n != "dreams.png"]
    return writes, () if dreams else ("dreams.png",)


# measured: at 10^9 steps of 2 runs, XLA asked for one buffer of 64.0 GB, for --steps as for
# --sleep-steps (digits, one method): 32 bytes per step and run
BYTES_PER_STEP_AND_RUN = 32


# the steps when --steps / --sleep-steps are not given: nnjax.brain.harness.WAKE's and SLEEP's
# (every dataset's; a test keeps them equal), here so that the check needs no JAX
DEFAULT_STEPS, DEFAULT_SLEEP_STEPS = 300, 1000


def _check_memory(args) -> None:
    """A run whose per-step buffers cannot fit in this machine's memory is refused at once,
    naming the option (it was XLA's out-of-memory error after loading JAX and the data):
    --steps or --sleep-steps (when a method sleeps), or, at their defaults, --seeds and
    --orders (--seeds 10**12 was a traceback from XLA)."""
    from nnjax._host import physical_memory, size_text

    have, runs = physical_memory(), len(args.orders) * args.seeds
    options = [("--steps", args.steps, DEFAULT_STEPS)]
    if _sleeps(args):  # no sleep, no buffer of sleep steps
        options.append(("--sleep-steps", args.sleep_steps, DEFAULT_SLEEP_STEPS))
    for option, given, default in options:
        steps = given or default
        need = BYTES_PER_STEP_AND_RUN * steps * runs
        if have is not None and need > have:
            # the culprit: the factor furthest above its default (the default study: 10 runs)
            if given and given / default >= runs / (len(TEST_ORDERS.split(",")) * TEST_SEEDS):
                culprit = f"{option} {steps}"
            else:
                culprit = f"--seeds {args.seeds} x {len(args.orders)} --orders"
            runs_of = f"{runs} runs of {steps} steps" + ("" if given else f" ({option}'s default)")
            raise ValueError(
                f"{culprit}: {runs_of} need at least {size_text(need)} of memory; this "
                f"machine has {size_text(have)}"
            )


SLEEPING = ("src", "src+replay1")  # the methods that run SRC's sleep (--sleep-steps)
# the methods whose networks dreams.png draws (nnjax.brain.study._dream_images'; a test keeps
# them equal): without one of them, or with --no-images, a study removes dreams.png
DREAMING = ("sequential", "src", "genreplay", "joint")


def _sleeps(args) -> bool:
    """Whether a method of the study runs SRC's sleep."""
    return any(m in SLEEPING for m in args.methods)


def output_folder(args) -> str | None:
    return args.out


def run(args) -> int:
    if args.out is not None:  # under the lock now: what another run wrote since check()
        _check_out_kept(args)
    from nnjax.commands.study_stop import StudyFinishing
    from nnjax.train import stop_on_signals

    stop = StudyFinishing(args.out, "sleep", "method", "table")  # a signal: what finished is kept
    with stop_on_signals(flag=stop):
        _run(args, stop)
    stop.end()
    return 0


def _run(args, stop) -> None:
    n = len(args.orders) * args.seeds
    rows = [*args.methods] + (["src:plastic"] if "src" in args.methods else [])
    print(f"nnjax sleep: {args.dataset}, {len(rows)} rows x {n} runs; loading JAX and the data",
          file=sys.stderr, flush=True)  # fmt: skip
    from nnjax.brain import harness, study
    from nnjax.brain import study_report as report

    rows = [r for r in study.ROWS if r in rows]
    cfg, src_cfg = harness.configs(args.dataset)
    cfg = cfg if args.steps is None else cfg._replace(steps=args.steps)
    src_cfg = src_cfg if args.sleep_steps is None else src_cfg._replace(steps=args.sleep_steps)
    progress = report.Progress(study.plan(args.dataset, rows, n))
    progress.start(f"nnjax sleep: {len(progress.plan)} compiled programs")
    t0 = time.perf_counter()
    res = study.run_study(
        args.dataset, args.orders, args.seeds, rows, cfg=cfg, src_cfg=src_cfg,
        progress=progress, images=not args.no_images, stop=stop,
    )  # fmt: skip
    if res.get("unfinished"):
        stop.stopped(res["rows"], res["unfinished"])
    stop.begin()  # a signal from here on: the files are written first
    res["wall_s"] = time.perf_counter() - t0
    res["load_average"] = os.getloadavg()
    res["cpu_count"] = os.cpu_count()
    table = report.format_table(res)
    timing = (f"wall {res['wall_s']:.1f} s, load average {res['load_average'][0]:.1f} "
              f"(1 min) on {res['cpu_count']} cores")  # fmt: skip
    # the files first: a standard output that fails (a full disk) must not lose the study
    drawn = None
    if args.out:  # files of its names that appeared there meanwhile are kept
        from functools import partial

        from nnjax.rescue import out_appeared_error

        appeared = partial(out_appeared_error, args.out, *_out_names(args), args.overwrite)
        drawn = _write(args.out, res, table, timing, refuse=appeared)
    print(table)
    print(timing)
    if drawn is not None:
        print(_wrote(args.out, drawn))


# every file a study writes into --out (_write, and nnjax.brain.study_plots.write_plots, which
# removes dreams.png when it draws none): a run into a folder holding any of them is refused
# unless --overwrite (check; a test keeps the list whole)
OUT_FILES = ("results.json", "table.md", "accuracy.png", "heatmap.png", "dreams.png")


def _write(out: str, res: dict, table: str, timing: str, refuse=None) -> list[str]:
    """:func:`_write_files` into ``out``; a disk that filled meanwhile, or the error
    ``refuse()`` gives (files of its names that appeared there while the study ran): into a
    temporary folder instead, named by the error (:func:`nnjax.rescue.write_or_rescue`)."""
    from nnjax.rescue import write_or_rescue

    return write_or_rescue(
        out,
        lambda folder: _write_files(folder, res, table, timing),
        "sleep",
        "the results and figures",
        refuse=refuse,
    )


def _wrote(out: str, drawn) -> str:
    names = ", ".join(["results.json", "table.md", *drawn])
    return f"wrote {os.path.join(out, '')}{{{names}}}"  # one slash after a trailing one


def _write_files(out: str, res: dict, table: str, timing: str) -> list[str]:
    """results.json and table.md, then the figures; returns the names of the figures drawn."""
    import json

    from nnjax import io
    from nnjax.brain import study, study_plots

    # the numbers and their table first, together (both on disk before either replaces an
    # earlier study's): a disk that fills up at the plots keeps them, and no figure of an
    # earlier study stays beside them (write_numbers_then_figures)
    numbers = json.dumps(study.jsonable(res), indent=1, allow_nan=False) + "\n"  # NaN: null
    files = [
        (os.path.join(out, "results.json"), numbers.encode()),
        (os.path.join(out, "table.md"), f"{table}\n\n{timing}\n".encode()),
    ]
    return io.write_numbers_then_figures(
        out,
        [n for n in OUT_FILES if n.endswith(".png")],
        lambda: io.atomic_write_files(files),
        lambda: study_plots.write_plots(res, out),
        numbers=["results.json", "table.md"],
    )
