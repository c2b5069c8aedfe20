"""A night of a spiking network: the hypnogram, its rhythms, and the consolidation report.

Units: s for the night's times, ms for bins, Hz, pA for the LFP proxy (as
:mod:`~nnjax.brain.network`). :func:`simulate_night` runs :data:`~nnjax.brain.circuits.CORTEX`
through a hypnogram (:func:`~nnjax.brain.sleep_states.run_night`) and describes each stage;
the figure functions return stand-alone matplotlib Figures; :func:`report_markdown` writes
the report of ``nnjax night`` from its results. Used by :mod:`nnjax.commands.night`.
"""

import numpy as np

from nnjax.brain import activity, circuits, consolidation, sleep_states

DEFAULT_NIGHT = "W,W,N,N,N,R,W,N,N,N,R"
"""Two cycles of wake -> NREM -> REM (W = wake, N = NREM, R = REM), one letter per epoch."""

LETTERS = {"W": 0, "N": 1, "R": 2}


def parse_hypnogram(text: str) -> np.ndarray:
    """ "W,N,R,..." -> codes (wake 0, NREM 1, REM 2); ValueError naming a bad letter."""
    letters = [t.strip().upper() for t in str(text).split(",")]
    bad = [t for t in letters if t not in LETTERS]
    if bad or not letters:
        raise ValueError(f"hypnogram: letters must be W, N or R separated by commas, got {bad}")
    return np.array([LETTERS[t] for t in letters], np.int64)


MIN_N_EXC = 83
"""The fewest E cells :func:`night_network` can wire (its docstring)."""


def night_network(n_exc: int = 800) -> circuits.NetworkConfig:
    """CORTEX with ``n_exc`` E cells, n_exc // 4 I cells and p = 80 / n_exc: every cell gets
    CORTEX's 80 E inputs and round(p n_inh) I inputs, CORTEX's 20 when n_exc is a multiple
    of 4 (as ``nnjax night`` asks) or at least 120, but 19 for n_exc = 83, 87, ..., 119 (3
    mod 4: n_exc // 4 falls short of n_exc / 4 by 3/4 and p n_inh rounds down). ``n_exc`` an
    int >= :data:`MIN_N_EXC` (83: the E cells' 80 E inputs, none from themselves, need 81 E
    cells, and the I cells' round(p n_inh) I inputs need as many other I cells; 80 to 82
    were taken and failed in the connectivity, naming p)."""
    from nnjax.brain.dynamics import check_count

    n_exc = check_count(n_exc, "n_exc", "night_network", minimum=MIN_N_EXC)  # 0 divided by 0
    if n_exc == circuits.CORTEX.n_exc:
        return circuits.CORTEX
    return circuits.CORTEX._replace(n_exc=n_exc, n_inh=n_exc // 4, p=80.0 / n_exc)


BIN_STEPS = 10
"""The steps of one recorded bin of :func:`simulate_night` (1 ms at CORTEX's dt = 0.1 ms)."""


def simulate_night(
    hypno, epoch_s: float, *, seed: int = 0, cfg=circuits.CORTEX, settle_s=1.0, stop=None,
    hooks=(),
):  # fmt: skip
    """Run ``cfg`` through the hypnogram (bins of 10 steps: bin_ms = 10 cfg.dt, 1 ms at
    CORTEX's dt = 0.1 ms). Returns a dict: record (NumPy arrays), bin_ms, hypno, epoch_s and
    ``stages``: :func:`describe_stages` (each stage described over its longest run, not
    pooled over its runs, its first ``settle_s`` left out).

    ``stop`` (a :class:`nnjax.train.StopFlag`): a stop requested ends the night after the
    running block of 1 s of network time (:func:`~nnjax.brain.sleep_states.run_night`); the
    dict then holds the epochs that had ended (``hypno`` and ``record`` cut there: the same
    numbers as a night of that hypnogram) and ``epochs_run``, their number (absent for a
    whole night); no stage is described when none had ended. ``hooks``: called after each
    block (``run_night``'s)."""
    import jax

    from nnjax.train.order import SEEDS, check_seed

    seed = check_seed(seed, "simulate_night")
    _check_settle(settle_s, "simulate_night")  # it failed after the whole night had run
    params = circuits.init_params(jax.random.key(seed), cfg)
    monitor = sleep_states.network.Monitor(every=BIN_STEPS, spikes="raster")
    run = sleep_states.run_night(
        jax.random.key((seed + 1) % SEEDS), params, cfg.spec, hypno, epoch_s, monitor=monitor,
        stop=stop, hooks=hooks,
    )  # fmt: skip
    hypno, bin_ms = np.asarray(hypno), monitor.every * cfg.dt
    record = {k: np.asarray(v) for k, v in run.record.items()}
    per = int(round(epoch_s * 1000.0 / cfg.dt))  # steps an epoch (schedule's)
    steps, ran = len(record["lfp"]) * monitor.every, len(hypno)
    if steps < ran * per:  # stopped: the epochs that had ended
        ran = steps // per
        record = {k: v[: ran * per // monitor.every] for k, v in record.items()}
    night = {"record": record, "bin_ms": bin_ms, "hypno": hypno[:ran], "epoch_s": epoch_s,
             "n_exc": cfg.n_exc}  # fmt: skip
    if ran < len(hypno):
        night["epochs_run"] = ran
    described = ran and describe_stages(record, hypno[:ran], epoch_s, bin_ms, cfg.n_exc, settle_s)
    return {**night, "stages": described or {}}


DESCRIBED_S = 2.0  # the shortest stretch of a stage that is described (after settle_s)
SPECTRUM_S = 4.0  # Welch segments of a stage's LFP, or the whole stretch when shorter


def stage_bins(seconds: float, bin_ms: float) -> int:
    """The number of ``bin_ms`` bins in ``seconds``, rounded to the nearest: the times are
    whole numbers of bins, and truncating lost one (``int``): three epochs of 0.35 s end at
    1.0499999999999998 s, bin 1049 instead of 1050."""
    return int(round(seconds * 1000.0 / bin_ms))


def _check_settle(settle_s, where: str) -> None:
    """A ValueError naming ``where`` unless ``settle_s`` is a finite number >= 0 (s)."""
    from nnjax.brain.dynamics import check_positive

    if isinstance(settle_s, bool) or not isinstance(settle_s, int | float | np.number):
        raise ValueError(f"{where}: settle_s (s) must be a number, got {settle_s!r}")
    check_positive(settle_s, "settle_s (s)", where, allow_zero=True)


def describe_stages(record, hypno, epoch_s, bin_ms, n_exc, settle_s=1.0) -> dict:
    """{stage name: describe(...) of the stage's longest run, without its first settle_s},
    for each stage with at least DESCRIBED_S seconds left. ``settle_s`` finite and >= 0 (a
    negative one started the stretch before the recording: Python's negative index took the
    end of the night instead)."""
    from nnjax.brain import hypnogram

    _check_settle(settle_s, "describe_stages")

    codes, spans = hypnogram.stage_intervals(hypno, epoch_s, sleep_states.STAGE_NAMES)
    out = {}
    for code, name in enumerate(sleep_states.STAGE_NAMES):
        runs = [s for c, s in zip(codes, spans) if c == code]
        if not runs:
            continue
        start, end = max(runs, key=lambda s: s[1] - s[0])
        a, b = stage_bins(start + settle_s, bin_ms), stage_bins(end, bin_ms)
        if b - a < stage_bins(DESCRIBED_S, bin_ms):
            continue
        seg = {k: v[a:b] for k, v in record.items()}
        nperseg = min(stage_bins(SPECTRUM_S, bin_ms), b - a)
        out[name] = sleep_states.describe(seg, bin_ms, n_exc, nperseg=nperseg)
        out[name]["seconds"] = (b - a) * bin_ms / 1000.0
    return out


def figure_night(night: dict):
    """The hypnogram over the LFP proxy's spectrogram (0-30 Hz)."""
    from nnjax.brain import hypnogram, rhythms

    fs = 1000.0 / night["bin_ms"]
    t, f, sxx = rhythms.spectrogram(
        night["record"]["lfp"].astype(np.float64), fs, nperseg=stage_bins(2.0, night["bin_ms"])
    )
    return hypnogram.plot_spectrogram(
        t, f, np.asarray(sxx), fmax=30.0, hypno=night["hypno"], epoch_s=night["epoch_s"],
        names=sleep_states.STAGE_NAMES,
    )  # fmt: skip


def figure_stages(night: dict, seconds: float = 3.0):
    """One raster and E rate per stage: ``seconds`` from the middle of each stage's longest
    run."""
    from nnjax.brain import hypnogram
    from nnjax.plotting import subplots

    codes, spans = hypnogram.stage_intervals(
        night["hypno"], night["epoch_s"], sleep_states.STAGE_NAMES
    )
    names = [n for n in sleep_states.STAGE_NAMES if n in night["stages"]]
    fig, axes = subplots(2, len(names), figsize=(4 * len(names), 5), squeeze=False,
                         height_ratios=[3, 1], layout="constrained")  # fmt: skip
    per_s = 1000.0 / night["bin_ms"]
    for j, name in enumerate(names):
        code = sleep_states.STAGE_NAMES.index(name)
        start, end = max((s for c, s in zip(codes, spans) if c == code), key=lambda s: s[1] - s[0])
        a = stage_bins((start + end) / 2 - seconds / 2, night["bin_ms"])
        b = a + stage_bins(seconds, night["bin_ms"])
        raster = night["record"]["spikes"][a:b]
        activity.plot_raster(raster, night["bin_ms"], n_exc=night["n_exc"],
                             t0_ms=a * night["bin_ms"], ax=axes[0, j], title=name)  # fmt: skip
        t = (np.arange(a, b) + 0.5) / per_s
        axes[1, j].plot(t, night["record"]["rate"][a:b, 0], lw=0.6)
        axes[1, j].set_xlabel("time (s)")
        axes[0, j].set_xlabel("")
    axes[1, 0].set_ylabel("E rate (Hz)")
    return fig


def figure_replay(results: dict, protocol: consolidation.Protocol, bin_ms: float):
    """The first seconds of NREM sleep and of quiet wake after learning (seed 0): E cells of
    the sequence's groups coloured in order."""
    from nnjax.plotting import subplots

    fig, axes = subplots(2, 1, figsize=(9, 5.5), sharex=True, layout="constrained")
    shown = protocol.n_groups * protocol.group_size * 2
    for ax, cond in zip(axes, consolidation.CONDITIONS):
        raster = results["raster"][cond][:, :shown]
        activity.plot_raster(raster, bin_ms, ax=ax, groups=list(consolidation.groups(protocol)),
                             title=f"{cond.replace('_', ' ')}: groups G0..G{protocol.n_groups - 1}"
                             " in colour, other E cells blue")  # fmt: skip
    axes[0].set_xlabel("")
    return fig


def figure_recall(stats: dict):
    """Recall of S1 and S2 after each stage, sleep vs quiet wake: mean and 95 % CI."""
    from nnjax.plotting import subplots

    fig, axes = subplots(1, 2, figsize=(9, 3.5), sharey=True, layout="constrained")
    x = np.arange(len(consolidation.STAGES))
    for ax, seq in zip(axes, ("S1", "S2")):
        for k, cond in enumerate(consolidation.CONDITIONS):
            m = [stats[st][seq]["a" if cond == "sleep" else "b"] for st in consolidation.STAGES]
            mean = np.array([v["mean"] for v in m])
            lo, hi = np.array([v["ci95"] for v in m]).T
            ax.errorbar(x + 0.08 * (2 * k - 1), mean, yerr=[mean - lo, hi - mean], marker="o",
                        capsize=3, label=cond.replace("_", " "))  # fmt: skip
        ax.set_xticks(x, [s.replace("_", "\n") for s in consolidation.STAGES])
        ax.set_title(f"recall of {seq}" + (" (the memory)" if seq == "S1" else " (interference)"))
        ax.axhline(0.0, color="grey", lw=0.5)
    axes[0].set_ylabel("recall (evoked fraction)")
    axes[0].legend()
    return fig


def run_night_part(args, results: dict, stop=None) -> dict:
    """The night of ``nnjax night``: simulate, describe (into ``results``), draw. Returns the
    figures to write, by file name. ``stop``: :func:`simulate_night`'s; a night stopped
    before its end is described up to its last whole epoch (``epochs_run`` in ``results``),
    and has no figures when no stage could be described. A progress line on stderr
    (:class:`nnjax.progress.Progress`) counts the seconds of network time simulated."""
    from nnjax.progress import Progress

    hypno = parse_hypnogram(args.hypnogram)
    t0 = __import__("time").perf_counter()
    cfg = night_network(args.n_exc)
    with Progress(round(len(hypno) * args.epoch_s), "night", unit="simulated s") as bar:
        bar.start("compiling...")

        def show(report):  # after each block: report.end bins of BIN_STEPS steps
            t = report.end * BIN_STEPS * cfg.dt / 1000.0
            e = min(int(t / args.epoch_s), len(hypno) - 1)  # the epoch running
            stage = sleep_states.STAGE_NAMES[hypno[e]]
            bar.update(round(t), f"epoch {e + 1}/{len(hypno)} ({stage})")

        night = simulate_night(
            hypno, args.epoch_s, seed=args.seed, cfg=cfg, stop=stop, hooks=[show]
        )
    results["night"] = {
        "hypnogram": args.hypnogram,
        "epoch_s": args.epoch_s,
        "stages": night["stages"],
        "wall_s": __import__("time").perf_counter() - t0,
        "network": f"CORTEX: {args.n_exc} E + {args.n_exc // 4} I AdEx cells, 80 E + 20 I "
        "inputs each, dt 0.1 ms",
    }
    if "epochs_run" in night:
        results["night"]["epochs_run"] = night["epochs_run"]
        if not night["stages"]:
            return {}
    return {"night.png": figure_night(night), "stages.png": figure_stages(night)}


def run_consolidation_part(args, results: dict) -> dict:
    """The consolidation experiment of ``nnjax night`` (described into ``results``); returns
    the figures to write, by file name."""
    import functools
    import time

    protocol = consolidation.Protocol(
        train_s=args.train_s, consolidation_s=args.consolidation_s,
        interference_s=args.interference_s,
    )  # fmt: skip
    t0 = time.perf_counter()
    cfg = consolidation.SMALL_CORTEX
    # each line flushed: a log file (nnjax night > log, block-buffered) shows it at once
    log = functools.partial(print, flush=True)
    raw = consolidation.run_experiment(args.seeds, protocol, cfg, seed=args.seed, log=log)
    results["consolidation"] = {
        "protocol": protocol._asdict(),
        "network": "CORTEX cells and in-degrees at 200 E + 50 I",
        "stats": experiment_stats(raw),
        "raw": {k: raw[k] for k in ("recall", "trace", "replay_order")},
        "wall_s": time.perf_counter() - t0,
    }
    bin_ms = consolidation.raster_bin_ms(cfg)
    return {
        "recall.png": figure_recall(results["consolidation"]["stats"]["recall"]),
        "replay.png": figure_replay(raw, protocol, bin_ms),
    }


def experiment_stats(raw: dict) -> dict:
    """Sleep (a) against quiet wake (b) for every stage and sequence, recall and trace."""
    out = {}
    for measure in ("recall", "trace"):
        out[measure] = {
            st: {
                seq: consolidation.paired_stats(
                    raw[measure]["sleep"][st][seq], raw[measure]["quiet_wake"][st][seq]
                )
                for seq in ("S1", "S2")
            }
            for st in consolidation.STAGES
        }
    out["replay_order_sleep"] = replay_summary(raw["replay_order"]["sleep"])
    return out


def replay_summary(tau) -> dict:
    """The seeds' replay scores ``tau`` (n,) (Kendall's tau, nan for a seed without a scored
    Up state): ``values``, ``mean`` over the finite ones (nan when there is none: no seed had
    an Up state with 3 active groups in the window; numpy's nanmean warned "Mean of empty
    slice" to the terminal then) and ``n_scored``, how many seeds that mean is over."""
    tau = np.asarray(tau, np.float64)
    scored = np.isfinite(tau)
    mean = float(tau[scored].mean()) if scored.any() else float("nan")
    return {"values": tau, "mean": mean, "n_scored": int(scored.sum())}


def jsonable(obj):
    """NumPy arrays and scalars -> lists and floats, recursively; NaN and +-inf -> None, JSON's
    null (strict JSON has no NaN: ``json.dumps(..., allow_nan=False)`` writes what jq and
    JSON.parse read; :func:`load_results` and :func:`report_markdown` read null as NaN)."""
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return jsonable(obj.item())
    if hasattr(obj, "_asdict"):
        return jsonable(obj._asdict())
    return obj


def load_results(path) -> dict:
    """The results.json of ``nnjax night`` as it was written: null (a NaN or inf,
    :func:`jsonable`) read back as NaN, so that ``f"{p:.2g}"`` prints nan as before."""
    import json

    with open(path, encoding="utf-8") as f:
        return nan_for_null(json.load(f))


# the README of nnjax night (re-exported: nnjax.brain.night.report_markdown, verdict, ...)
from nnjax.brain.night_report import (  # noqa: E402
    nan_for_null,
    p_text,
    replay_s,
    report_markdown,
    verdict,
)

__all__ = ["nan_for_null", "p_text", "replay_s", "report_markdown", "verdict"]
