"""``nnjax night``: a spiking network goes through a night, and sleeps on a memory.

Two parts (``--parts``): ``night`` runs the 1000-neuron CORTEX network through a hypnogram
of wake, NREM and REM (neuromodulation inside one scan) and draws the hypnogram over the
LFP's spectrogram and a raster per stage; ``consolidation`` imprints a sequence by STDP in
``--seeds`` networks (vmapped), then gives each NREM sleep or an equal time of quiet wake,
then an interfering sequence, and reports recall with 95 % CIs and paired tests. Writes
``results.json``, ``README.md`` and the figures into ``--out``; a folder that already holds
a file of those names (:data:`OUT_FILES`) is refused unless ``--overwrite``. A run of both
parts writes the night's files as soon as the night has finished, so that a signal during
the consolidation keeps them (:mod:`nnjax.commands.night_write`); a signal during the night
ends it after the running second of network time and writes the epochs that had ended
(:mod:`nnjax.commands.night_stop`).
"""

import argparse
import math
import os
import sys
import time

# the figures of each part, the numbers, and every file a run writes into --out or removes
# there (a run into a folder holding any of them is refused unless --overwrite)
from nnjax.commands.night_write import FIGURES, NUMBERS, OUT_FILES

HELP = (
    "a spiking E/I network through wake, NREM and REM (hypnogram, spectrogram, rasters), and "
    "a sequence memory consolidated in NREM sleep vs quiet wake (recall, CIs over seeds)"
)
PARTS = ("night", "consolidation")
# nnjax.brain.night.DEFAULT_NIGHT and consolidation.Protocol's phase lengths (a test keeps
# them equal): here so that `--help` needs no JAX
DEFAULT_NIGHT = "W,W,N,N,N,R,W,N,N,N,R"
TRAIN_S, CONSOLIDATION_S, INTERFERENCE_S = 4.0, 6.0, 3.0
# nnjax.brain.night.describe_stages' rule: a stage is described over its longest run, its
# first SETTLE_S left out, when at least DESCRIBED_S remain
SETTLE_S, DESCRIBED_S = 1.0, 2.0


# the networks record in 1 ms and 10 ms bins (Monitor.every at dt 0.1 ms): every duration is a
# whole number of the coarser one
GRID_S = 0.01
# memory, measured (peak RSS, 2 cores): the night part grew by 340 MB for 55 more simulated
# seconds at 1000 cells and by 269 MB at 500 cells (its recordings and schedules): 3.6 MB
# plus 2.6 kB per cell per simulated second; the consolidation part by 23 MB for 26 more
# seconds of each phase (its input arrays)
NIGHT_BYTES_PER_S, NIGHT_BYTES_PER_CELL_S = 3.6e6, 2.6e3
# and its dense float32 synapses, whatever the night's length (nnjax.brain.circuits.init_params:
# W_ee and mask_ee n_exc x n_exc, W_ei and W_ie n_exc x n_inh, W_ii n_inh x n_inh): --n-exc
# 80000 needed 51 GB for them alone, and the check, counting the recordings only, let it start
SYNAPSE_BYTES = 4


def synapse_bytes(n_exc: int) -> float:
    """The bytes of the night network's weight matrices and E->E mask at ``n_exc`` E cells."""
    n_inh = n_exc // 4
    return SYNAPSE_BYTES * (2.0 * n_exc * n_exc + 2.0 * n_exc * n_inh + n_inh * n_inh)


PHASE_BYTES_PER_S = 1.0e6
# and by 163 MB for 40 more --seeds at phases of 0.1 s (each seed's network, its state and
# its tests' recordings): 4.1 MB per seed, plus its two 1 ms rasters of the first seconds of
# consolidation (250 cells, uint8): 0.5 MB per seed per second recorded
SEED_BYTES, SEED_RASTER_BYTES_PER_S = 4.1e6, 5.0e5
RASTER_S = 4.0  # nnjax.brain.consolidation.Protocol.raster_s (a test keeps them equal)


def seconds(text: str) -> float:
    """A type: a finite number of seconds > 0, a whole number of 10 ms (:data:`GRID_S`)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a number of seconds > 0, got {text!r}")
    if abs(value / GRID_S - round(value / GRID_S)) > 1e-6:
        raise argparse.ArgumentTypeError(
            f"must be a whole number of 10 ms (0.01 s: the networks record in 10 ms bins), "
            f"got {text!r}"
        )
    return value


def add_arguments(p) -> None:
    from nnjax.commands import options as o

    p.add_argument("--out", required=True, metavar="DIR",
                   help="write results.json, README.md and the figures here (required, no "
                   "default; a folder holding any of them is refused unless "
                   "--overwrite)")  # fmt: skip
    p.add_argument("--overwrite", action="store_true",
                   help=f"replace the files of --out named {', '.join(OUT_FILES)} (an earlier "
                   "run's, or yours), and remove the figures of a part not run now; without it "
                   "a run into a folder holding any of them is refused")  # fmt: skip
    p.add_argument("--parts", type=o.name_list(PARTS, "part"), default=",".join(PARTS),
                   metavar="NAME,...", help=o.choices_help("what to run", PARTS))  # fmt: skip
    given = o.StoreGiven  # an option of a part that does not run is refused (check)
    p.add_argument("--seeds", type=o.int_at_least(2, "must be an integer >= 2 (a CI needs two)"),
                   default=10, metavar="N", action=given,
                   help="networks in the consolidation experiment")  # fmt: skip
    p.add_argument("--seed", type=o.seed, default=0, help="the random seed: the night's network "
                   "and its noise (seed and seed + 1); the consolidation's --seeds networks are "
                   "split from it, not seeds seed, seed + 1, ...")  # fmt: skip
    p.add_argument("--hypnogram", default=DEFAULT_NIGHT, metavar="W,N,R,...", action=given,
                   help="the night, one letter per epoch: W wake, N NREM, R REM")  # fmt: skip
    p.add_argument("--n-exc", type=o.int_at_least(100), default=800, metavar="N", action=given,
                   help="E cells of the night's network (N/4 I cells, 80 E + 20 I inputs "
                   "each)")  # fmt: skip
    p.add_argument("--epoch-s", type=seconds, default=5.0, metavar="S", action=given,
                   help="seconds of one hypnogram epoch")  # fmt: skip
    p.add_argument("--train-s", type=seconds, default=TRAIN_S, metavar="S", action=given,
                   help="seconds of learning the sequence")  # fmt: skip
    p.add_argument("--consolidation-s", type=seconds, default=CONSOLIDATION_S, metavar="S",
                   action=given, help="seconds of NREM sleep, and of quiet wake")  # fmt: skip
    p.add_argument("--interference-s", type=seconds, default=INTERFERENCE_S, metavar="S",
                   action=given, help="seconds of learning the interfering sequence")  # fmt: skip


# the options each part reads (by dest); --out, --parts and --seed are both parts'
PART_OPTIONS = {
    "night": ("hypnogram", "n_exc", "epoch_s"),
    "consolidation": ("seeds", "train_s", "consolidation_s", "interference_s"),
}


def check(args) -> None:
    """Checks before JAX starts: no option of a part left out of --parts, the hypnogram's
    letters, the output folder (not blank, not a file, no file on its way), the stage
    runs, the memory, no file of :data:`OUT_FILES` in --out unless --overwrite, and an --out
    that can be written (the probe's folders removed again)."""
    _check_parts_options(args)
    letters = [t.strip().upper() for t in args.hypnogram.split(",")]
    bad = sorted({t for t in letters if t not in ("W", "N", "R")})
    if bad:
        raise ValueError(f"--hypnogram: letters must be W, N or R separated by commas, got {bad}")
    from nnjax.commands.options import blank_out_error, out_parent_error

    for error in (blank_out_error(args.out), out_parent_error(args.out)):
        if error is not None:
            raise error
    if args.n_exc % 4:
        raise ValueError(f"--n-exc must be a multiple of 4 (N/4 I cells), got {args.n_exc}")
    if "night" in args.parts:
        _check_stage_runs(letters, args.epoch_s)
    _check_memory(args, len(letters))
    _check_out_kept(args)
    from nnjax.commands.options import probe_writable

    probe_writable(args.out, "--out")  # one line naming --out (it was the lock file's EROFS)


def _check_out_kept(args) -> None:
    """Files of the names a run writes (results.json, README.md, its parts' figures) or
    removes (the other part's figures) already in --out are kept: the run is refused, unless
    --overwrite (:func:`nnjax.commands.options.out_kept_error`)."""
    from nnjax.commands.options import out_kept_error

    error = out_kept_error(args.out, "night", *_out_names(args), overwrite=args.overwrite)
    if error is not None:
        raise error


def _out_names(args) -> tuple[tuple[str, ...], list[str]]:
    """The files a run writes into --out (results.json, README.md, its parts' figures), and
    those it removes there (the other part's figures)."""
    drawn = [name for part in args.parts for name in FIGURES[part]]
    return (*NUMBERS, *drawn), [n for n in OUT_FILES[len(NUMBERS) :] if n not in drawn]


def _check_parts_options(args) -> None:
    """An option given for a part that --parts leaves out would be ignored: refused."""
    given = getattr(args, "given", frozenset())
    for part, dests in PART_OPTIONS.items():
        ignored = [d for d in dests if d in given and part not in args.parts]
        if ignored:
            option = "--" + ignored[0].replace("_", "-")
            raise ValueError(
                f"{option}: only the {part} part reads it, and --parts {','.join(args.parts)} "
                f"leaves that part out; add {part} to --parts, or leave {option} out"
            )


def _check_stage_runs(letters: list[str], epoch_s: float) -> None:
    """Every stage of the hypnogram needs a run long enough to be described and drawn."""
    longest: dict[str, int] = {}
    run = 0
    for i, t in enumerate(letters):
        run = run + 1 if i and letters[i - 1] == t else 1
        longest[t] = max(longest.get(t, 0), run)
    need = SETTLE_S + DESCRIBED_S
    short = {t: n for t, n in longest.items() if n * epoch_s < need}
    if short:
        t, n = next(iter(short.items()))
        raise ValueError(
            f"--hypnogram/--epoch-s: the longest run of {t} is {n} epoch(s) of {epoch_s:g} s = "
            f"{n * epoch_s:g} s; every stage needs a run of at least {need:g} s ({SETTLE_S:g} s "
            f"to settle after a transition, then {DESCRIBED_S:g} s described): lengthen "
            f"--epoch-s or repeat the letter"
        )


def _check_memory(args, n_epochs: int) -> None:
    """A run whose recordings, synapses or inputs would not fit in this machine's memory is
    refused before it starts (the measured estimates above)."""
    from nnjax._host import physical_memory, size_text

    have = physical_memory()
    if have is None:  # not known here: no check
        return
    if "night" in args.parts:
        night_s, cells = n_epochs * args.epoch_s, args.n_exc + args.n_exc // 4
        need = (NIGHT_BYTES_PER_S + NIGHT_BYTES_PER_CELL_S * cells) * night_s
        need += synapse_bytes(args.n_exc)
        if need > have:
            raise ValueError(
                f"--hypnogram/--epoch-s/--n-exc: {n_epochs} epochs of {args.epoch_s:g} s = "
                f"{night_s:g} s of {cells} cells need about {size_text(need)} of memory for their "
                f"recordings and synapses; this machine has {size_text(have)}: shorten --epoch-s "
                "or the hypnogram, or lower --n-exc"
            )
    if "consolidation" in args.parts:
        _check_seeds_memory(args, have)
        for option in ("--train-s", "--consolidation-s", "--interference-s"):
            phase_s = getattr(args, option[2:].replace("-", "_"))
            if PHASE_BYTES_PER_S * phase_s > have:
                raise ValueError(
                    f"{option} {phase_s:g}: {phase_s:g} s of simulation need about "
                    f"{size_text(PHASE_BYTES_PER_S * phase_s)} of memory for their input; this "
                    f"machine has {size_text(have)}"
                )


def _check_seeds_memory(args, have: int) -> None:
    """The consolidation's --seeds networks run together (vmapped): too many for this
    machine's memory are refused at once (they failed as out of memory after a minute)."""
    from nnjax._host import size_text

    recorded_s = min(RASTER_S, args.consolidation_s)
    need = args.seeds * (SEED_BYTES + SEED_RASTER_BYTES_PER_S * recorded_s)
    if need > have:
        raise ValueError(
            f"--seeds {args.seeds}: {args.seeds} networks simulated together need about "
            f"{size_text(need)} of memory; this machine has {size_text(have)}: fewer --seeds"
        )


def output_folder(args) -> str:
    return args.out


# time, measured on this machine (2 cores shared with other work, load 4 to 8): the night
# part's scan took 1.9 s per simulated second of 1000 cells (2.9 in the committed run), 0.77
# at 500 cells, 4.7 at 1500 and 12.4 at 2000: the synapses are dense (a step is a
# matrix-vector product of cells^2), and the blocks of 4 to 16 MB outgrow the caches, so the
# cost grows as cells^NIGHT_POWER; the consolidation took 0.39 to 0.59 s per seed and
# simulated second (250 cells, vmapped); each part also compiles and draws for about PART_S s
NIGHT_S_PER_S_AT_1000, NIGHT_POWER, SEED_S_PER_S, PART_S = 2.5, 2.5, 0.5, 20.0
TEST_S = 3.0  # one test of the consolidation (Protocol's settle_s + 2 x n_cues x cue_period)
LONG_S = 600.0  # a run expected to take longer is announced on stderr before it starts


def estimate_seconds(args) -> dict[str, float]:
    """The expected wall time (s) of each part of ``args.parts`` on this machine, from the
    options alone (the measured rates above; within a factor of 2, more on a loaded machine):

        night:         PART_S + NIGHT_S_PER_S_AT_1000 x T_night x (cells / 1000)^NIGHT_POWER
                       T_night = epochs x --epoch-s, cells = 5/4 --n-exc
        consolidation: PART_S + SEED_S_PER_S x --seeds x T_seed
                       T_seed = --train-s + 2 (--consolidation-s + --interference-s) + 5 TEST_S

    (each seed learns S1, then, per condition, sleeps or rests and learns S2; five tests).
    The default run: 157 s + 205 s (the committed one took 72 s + 125 s on 2 quiet cores,
    177 s + 238 s the time before at a load of 5.7)."""
    out = {}
    if "night" in args.parts:
        night_s = len(args.hypnogram.split(",")) * args.epoch_s
        scale = ((args.n_exc + args.n_exc // 4) / 1000.0) ** NIGHT_POWER
        out["night"] = PART_S + NIGHT_S_PER_S_AT_1000 * night_s * scale
    if "consolidation" in args.parts:
        seed_s = args.train_s + 2 * (args.consolidation_s + args.interference_s) + 5 * TEST_S
        out["consolidation"] = PART_S + SEED_S_PER_S * args.seeds * seed_s
    return out


def _duration(seconds: float) -> str:
    """``seconds`` as ``'40 min'`` or ``'2.5 h'``."""
    return f"{seconds / 60:.0f} min" if seconds < 5400 else f"{seconds / 3600:.1f} h"


def long_run_line(args) -> str | None:
    """The line announcing a run of more than :data:`LONG_S` (:func:`estimate_seconds`), with
    the options that drive it; None for a shorter run."""
    parts = estimate_seconds(args)
    if sum(parts.values()) <= LONG_S:
        return None
    said = []
    if "night" in parts:
        n, cells = len(args.hypnogram.split(",")), args.n_exc + args.n_exc // 4
        said.append(f"night {_duration(parts['night'])}: --hypnogram of {n} epochs x --epoch-s "
                    f"{args.epoch_s:g} of --n-exc {args.n_exc} ({cells} cells)")  # fmt: skip
    if "consolidation" in parts:
        said.append(f"consolidation {_duration(parts['consolidation'])}: --seeds {args.seeds} x "
                    f"(--train-s {args.train_s:g} + 2 x (--consolidation-s "
                    f"{args.consolidation_s:g} + --interference-s {args.interference_s:g}) + "
                    f"{5 * TEST_S:g} s of tests)")  # fmt: skip
    return (f"nnjax night: this run is expected to take about "
            f"{_duration(sum(parts.values()))} on this machine ({'; '.join(said)})")  # fmt: skip


def run(args) -> int:
    _check_out_kept(args)  # again, under the lock: a run into --out that ended since check()
    if (line := long_run_line(args)) is not None:  # before JAX loads: hours without a word
        print(line, file=sys.stderr, flush=True)
    from nnjax.brain import night
    from nnjax.commands.night_stop import NightStop, stopped_line, stopped_night
    from nnjax.commands.night_write import write_files, write_first_part
    from nnjax.io import signals_deferred
    from nnjax.rescue import out_appeared_error, write_or_rescue
    from nnjax.train import stop_on_signals

    os.makedirs(args.out, exist_ok=True)
    t0 = time.perf_counter()
    results = {"command": "nnjax night", "args": _args_dict(args)}
    figures, before = {}, None  # before: --out's files after the night part's own write

    def refuse():  # files of its names that appeared in --out meanwhile are kept
        return out_appeared_error(args.out, *_out_names(args), args.overwrite, before=before)

    def timed() -> dict:
        return {**results, "wall_s": time.perf_counter() - t0,
                "load_average": list(os.getloadavg())}  # fmt: skip

    flag, parts = NightStop(args.out), args.parts  # a signal in the night: what ended is kept
    if "night" in args.parts:
        with stop_on_signals(flag=flag):
            figures.update(night.run_night_part(args, results, stop=flag))
        if flag.requested:
            stopped_night(flag, results, figures)
            parts = ("night",)
        elif "consolidation" in args.parts:  # minutes more, which a signal cannot cut short
            before = write_first_part(args.out, timed(), figures, refuse, args.overwrite)
    if "consolidation" in parts:
        figures.update(night.run_consolidation_part(args, results))
    results = timed()
    # the numbers and their report first, together (both on disk before either replaces an
    # earlier run's): a disk that fills up at the figures keeps them, and no figure of an
    # earlier run stays beside them (write_numbers_then_figures). A disk that filled
    # meanwhile: they go to a temporary folder instead, as where files of its names
    # appeared in --out meanwhile
    try:
        with signals_deferred():  # a signal lets them land (a stop between them left figures out)
            write_or_rescue(
                args.out, lambda d: write_files(d, results, figures, parts, args.overwrite),
                "night", "the results and figures", refuse=refuse,
            )  # fmt: skip
    except KeyboardInterrupt as stop:  # one that waited: a failed write's line (where the
        if isinstance(stop.__context__, OSError):  # files went instead) is said, not the stop
            raise stop.__context__ from None
        raise
    # printed once every file is written: a standard output that fails (a full disk) lost
    # the figures (the summary was printed between the numbers and them)
    print(night.report_markdown(results).split("\n## ")[0])
    print(f"wrote {os.path.join(args.out, 'results.json')}, README.md, " + ", ".join(figures))
    if flag.requested:
        raise stopped_line(flag, results, args.out)
    return 0


def _args_dict(args) -> dict:
    """The settings of the run: --parts, --seed and the options of the parts it ran (the
    README's command line repeats them; the others did nothing)."""
    keep = ("parts", "seed", *(d for p in args.parts for d in PART_OPTIONS[p]))
    return {k: getattr(args, k) for k in keep}
