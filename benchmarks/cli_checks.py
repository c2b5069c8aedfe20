"""The checks of ``python -m benchmarks`` / ``nnjax bench`` (:mod:`benchmarks.cli`): a
command line that makes no sense is one line, exit 2, before anything runs; files of an
earlier run in ``--out`` are kept unless ``--overwrite``; the argument types of --out,
--repeats, --pause and --min-block. Imports nothing heavy."""

import argparse
import os
from pathlib import Path

from nnjax.commands import options

# workloads that run in full runs only: --quick skips them
FULL_ONLY = ("anatomy", "network", "scaling")
# the options only the MLP workload reads, and those only a timed workload reads (startup,
# dispatch, network and scaling time themselves)
MLP_OPTIONS = ("impls", "models", "batch_sizes", "optimizer", "memory")
TIMING_OPTIONS = ("repeats", "pause", "min_block")
TIMED = ("seed", "peak", "mlp", "cnn", "gru", "vmap", "anatomy")
MAX_REPEATS = 1000  # 11 rounds take 15 minutes: 1000 take a day; more would never end


def check(args) -> None:
    """Refuse, before anything runs, a batch larger than the MLP workload's examples (it had
    no step: a ZeroDivisionError), a workload, batch size, implementation or model named
    twice (run and reported twice, or quietly once), a workload ``--quick`` does not run, an
    option no chosen workload reads (quietly ignored), and an --out that is a file or has a
    file on its way."""
    from benchmarks.cli import MAX_EXAMPLES

    if getattr(args, "report_from", None) is not None:
        check_report_from(args)
        return
    for option, values in (
        ("--only", _given(args, "only")),
        ("--batch-sizes", args.batch_sizes),
        ("--impls", args.impls),
        ("--models", args.models),
    ):
        repeated = sorted({str(v) for v in values or () if list(values).count(v) > 1})
        if repeated:
            raise ValueError(f"{option}: {', '.join(repeated)} given twice; give each once")
    _check_options_read(args)
    most = MAX_EXAMPLES["quick" if args.quick else "full"]
    big = [b for b in args.batch_sizes or () if b > most]
    if big:
        raise ValueError(
            f"--batch-sizes {' '.join(map(str, big))}: the MLP workload trains on the first "
            f"{most} examples{' (--quick)' if args.quick else ''}; give sizes in [1, {most}]"
        )
    if args.out is not None and (error := options.out_parent_error(args.out)) is not None:
        raise error


def _given(args, dest: str):
    """The option's value when it was given on the command line, else None."""
    return getattr(args, dest) if dest in getattr(args, "given", ()) else None


def _check_options_read(args) -> None:
    """``--quick --only anatomy`` ran nothing and wrote an empty report (exit 0); ``--only
    peak --impls torch`` ran the peak and ignored --impls: refused, naming the option."""
    only = _given(args, "only")
    if only is None:  # every workload: each option is read by one of them
        return
    named = " ".join(only)
    skipped = [w for w in only if w in FULL_ONLY]
    if args.quick and skipped:
        raise ValueError(
            f"--only {' '.join(skipped)}: full runs only, --quick skips "
            f"{'it' if len(skipped) == 1 else 'them'}; leave out --quick, or pick workloads "
            "of " + ", ".join(w for w in _workloads() if w not in FULL_ONLY)
        )
    given = set(getattr(args, "given", ())) | {
        dest
        for dest in ("models", "batch_sizes", "repeats", "min_block", "memory")
        if getattr(args, dest, None) is not None
    }
    for dests, readers, who, add in (
        (MLP_OPTIONS, ("mlp",), "the mlp workload", "add mlp"),
        (TIMING_OPTIONS, TIMED, f"the timed workloads ({', '.join(TIMED)})", "add one"),
    ):
        ignored = [d for d in dests if d in given]
        if ignored and not set(only) & set(readers):
            option = "--" + ignored[0].replace("_", "-")
            if ignored[0] == "memory" and args.memory is False:
                option = "--no-memory"
            raise ValueError(
                f"{option}: only {who} read{'s' if len(readers) == 1 else ''} it, and "
                f"--only {named} runs none; {add} to --only, or leave {option} out"
            )


def _workloads() -> tuple:
    from benchmarks.cli import WORKLOADS

    return WORKLOADS


def run_files(args, stem: str) -> tuple[list[str], list[str]]:
    """The names a run of ``stem`` writes in --out, and those of the stem it removes (with
    --overwrite: the figures of an earlier run that this one does not draw, which its report
    would not name)."""
    only = set(args.only)
    drawn = [] if args.no_plots else [p for p in ("mlp", "vmap") if p in only]
    figures = {"mlp": f"{stem}-throughput.png", "vmap": f"{stem}-vmap.png"}
    writes = [f"{stem}.json", f"{stem}.md", *(figures[p] for p in drawn)]
    if "scaling" in only and not args.quick:
        writes.append(f"{stem}-scaling.json")
    return writes, [name for p, name in figures.items() if p not in drawn]


class OutKept(ValueError):
    """--out holds files of the names the run writes, and --overwrite was not given."""


def check_out_kept(args, stem: str) -> None:
    """Before any workload runs: the run's files already in --out (an earlier run's of the
    same device, day and workloads, or the user's) are kept; the run is refused (exit 2)
    unless --overwrite (``nnjax train``'s rule). A rerun of the day replaced the committed
    results of ``--out benchmarks/results`` silently."""
    if getattr(args, "overwrite", False) or args.out is None:
        return
    found = [n for names in run_files(args, stem) for n in names if _exists(args.out, n)]
    if found:
        them = "it" if len(found) == 1 else "them"
        raise OutKept(
            f"--out {args.out} already holds {', '.join(found)}, of the names this run "
            f"writes: add --overwrite to replace {them}, or choose another --out"
        )


def _exists(folder, name: str) -> bool:
    return os.path.lexists(os.path.join(folder, name))


# what a run's command line may say beside --report-from (the rest drives workloads)
REPORT_OPTIONS = ("out", "overwrite", "no_plots", "report_from")


def check_report_from(args) -> None:
    """``--report-from FILE``: FILE is a run's saved measurements; no option that drives a
    workload is given with it (it would be ignored); the report's files already in the
    output folder are kept unless ``--overwrite``."""
    given = set(getattr(args, "given", ())) | {
        dest
        for dest in ("models", "batch_sizes", "repeats", "min_block", "memory")
        if getattr(args, dest, None) is not None
    }
    if args.quick:
        given.add("quick")
    ignored = sorted(given - set(REPORT_OPTIONS))
    if ignored:
        option = "--" + ignored[0].replace("_", "-")
        raise ValueError(
            f"{option}: --report-from runs no workload and would ignore it; leave it out"
        )
    load_measurements(args.report_from)
    out = args.out if args.out is not None else args.report_from.parent
    if args.out is not None and (error := options.out_parent_error(args.out)) is not None:
        raise error
    stem = args.report_from.stem
    names = [f"{stem}.md", f"{stem}-throughput.png", f"{stem}-vmap.png"]
    if args.out is not None:
        names.insert(0, f"{stem}.json")
    same = os.path.realpath(out) == os.path.realpath(args.report_from.parent)
    found = [n for n in names if _exists(out, n) and not (same and n == f"{stem}.json")]
    if found and not args.overwrite:
        raise OutKept(
            f"{out} already holds {', '.join(found)}, of the names the report of "
            f"{args.report_from.name} writes: add --overwrite to replace "
            f"{'it' if len(found) == 1 else 'them'}, or choose another --out"
        )


def load_measurements(path) -> dict:
    """The measurements a run saved in ``path`` (its ``<stem>.json``); a ValueError naming
    --report-from for a file that is not one (an OSError for one that cannot be read)."""
    import json

    if not str(path).endswith(".json"):
        raise ValueError(f"--report-from {path}: give a run's <stem>.json")
    try:
        results = json.loads(open(path, encoding="utf-8").read())
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"--report-from {path}: not JSON ({e})") from None
    if not isinstance(results, dict) or results.get("suite") != "nnjax benchmarks":
        raise ValueError(
            f"--report-from {path}: not the measurements of a benchmark run (they hold "
            '"suite": "nnjax benchmarks")'
        )
    return results


def folder(text: str) -> Path:
    """A type: a folder path; an empty one is refused (``Path("")`` is the current folder,
    which would get the results unasked)."""
    if not text.strip():
        raise argparse.ArgumentTypeError(f"takes a folder path, got {text!r}")
    return Path(text)


def repeats(text: str) -> int:
    """A type: rounds in [1, MAX_REPEATS] (--repeats 1000000000 ran a quick seed for years)."""
    value = options.positive_int(text)
    if value > MAX_REPEATS:
        raise argparse.ArgumentTypeError(
            f"must be an integer in [1, {MAX_REPEATS}] ({MAX_REPEATS} rounds take about a "
            f"day), got {text!r}"
        )
    return value


MAX_SECONDS = 60.0  # --pause and --min-block: more would only make a run that never ends


def seconds(text: str) -> float:
    """A type: seconds in [0, 60] (1e308 overflowed time.sleep, or never finished a block)."""
    return options._float_in(
        text,
        lambda v: 0 <= v <= MAX_SECONDS,
        f"must be a number of seconds in [0, {MAX_SECONDS:g}]",
    )
