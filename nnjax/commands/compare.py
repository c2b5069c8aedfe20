"""``nnjax compare``: optimizers x learning rates x seeds on a built-in dataset, one compiled
program per optimizer; writes a Markdown report, CSV/JSON of every run and plots. An output
folder that already holds a file of those names (:data:`OUT_FILES`) is refused unless
``--overwrite``."""

import os
import time

HELP = "compare optimizers across learning rates and seeds (report, CSV/JSON, plots)"
# nnjax.compare.settings' DEFAULT_OPTIMIZERS and SELECT (a test keeps them equal): here so that
# `--help` needs no JAX
DEFAULT_OPTIMIZERS = ("gd", "sgd", "momentum", "adam")
SELECT = ("val_loss", "val_accuracy", "train_loss")
# nnjax.compare.files.OUT_FILES and nnjax.compare.plot.PLOTS (a test keeps them equal): every
# file a study writes into --out (the PNGs removed with --no-plots); here so that a run into a
# folder holding one of them is refused (unless --overwrite) before JAX starts
PLOT_FILES = ("loss_curves.png", "lr_sensitivity.png", "test_accuracy.png")
OUT_FILES = ("runs.csv", "runs.json", *PLOT_FILES, "report.md")


def add_arguments(p) -> None:
    from nnjax.commands import options as o
    from nnjax.data import DATASETS

    names = o.optimizers()[0]
    p.add_argument("--dataset", default="digits", choices=DATASETS, help="built-in dataset")
    p.add_argument(
        "--optimizers",
        type=o.name_list(names, "optimizer"),
        default=",".join(DEFAULT_OPTIMIZERS),
        metavar="NAME,...",
        help=o.choices_help("comma-separated optimizers (gd is full batch)", names),
    )
    p.add_argument(
        "--lr",
        type=_lr_item(names),
        action="append",
        default=[],
        metavar="OPT=LR,LR,...",
        help="learning rates of one optimizer, e.g. --lr adam=1e-4,1e-3,1e-2 (repeatable; "
        "default: 5 log-spaced rates per optimizer)",
    )
    p.add_argument("--seeds", type=o.positive_int, default=5, metavar="N", help="seeds 0..N-1")
    presets = "default: the dataset's preset (from nnjax.compare import PRESETS)"
    p.add_argument("--epochs", type=o.positive_int, default=None, metavar="N", help=presets)
    p.add_argument(
        "--batch-size",
        type=o.positive_int,
        default=None,
        metavar="N",
        help=f"mini-batch size, not for gd ({presets})",
    )
    p.add_argument(
        "--hidden", type=o.widths, default=None, metavar="W,W,...", help=f"MLP widths ({presets})"
    )
    p.add_argument(
        "--activation",
        type=o.hidden_activation,
        default=None,
        metavar="NAME",
        help=o.choices_help(
            "hidden activation (default: relu, or the dataset's preset where it has one: tanh "
            "for toy; from nnjax.compare import PRESETS)",
            o.HIDDEN_ACTIVATIONS,
        ),
    )
    p.add_argument(
        "--val-fraction",
        type=o.fraction_or_zero,
        metavar="F",
        default=None,
        help="part of the training split held out to choose the learning rate, in [0, 1) (0: "
        "none, the rate is chosen on the fit set; default: 0.2; toy and xor, not split, refuse "
        "it)",
    )
    p.add_argument(
        "--target-loss",
        type=o.positive_float,
        metavar="LOSS",
        default=None,
        help=f"report the updates needed to reach this training loss ({presets})",
    )
    p.add_argument(
        "--select", default=None, choices=SELECT, help="learning-rate criterion (default: val_loss)"
    )
    p.add_argument(
        "--out",
        default=None,
        metavar="DIR",
        help="output folder (default: compare-<dataset>; one holding the report's files is "
        "refused unless --overwrite)",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help=f"replace the files of --out named {', '.join(OUT_FILES)} (an earlier "
        "comparison's, or yours; the PNGs are removed with --no-plots); without it a run into "
        "a folder holding any of them is refused",
    )
    p.add_argument("--no-plots", action="store_true", help="skip the PNGs")


def _lr_item(names):
    """A type: ``OPT=LR,LR,...`` -> ``(OPT, [LR, ...])``, each rate a valid learning rate."""
    import argparse

    from nnjax.commands.options import learning_rate

    def parse(text: str):
        name, sep, values = text.partition("=")
        name = name.strip()
        if not sep or name not in names:
            raise argparse.ArgumentTypeError(
                f"takes OPT=LR,LR,... with OPT one of {', '.join(names)}, got {text!r}"
            )
        return name, [learning_rate(v.strip()) for v in values.split(",")]

    parse.__name__ = "OPT=LR,..."
    return parse


def check(args) -> None:
    """Learning rates are given only for optimizers in the study, once each; options that
    would be ignored are refused (:func:`_check_ignored`); the output folder is not blank,
    not an existing file, no file on its way, holds no file of :data:`OUT_FILES` unless
    --overwrite (:func:`_check_out_kept`, before JAX is imported) and can be written (the
    probe's folders removed again); then every setting as
    the study checks it (the batch fits the fit set, the split leaves every class in both
    parts, the model and the curves fit in memory), its messages naming the options. All
    before the output folder is made and JAX runs."""

    extra = sorted({name for name, _ in args.lr} - set(args.optimizers))
    if extra:
        raise ValueError(
            f"--lr given for {', '.join(extra)}, not in --optimizers {','.join(args.optimizers)}"
        )
    names = [name for name, _ in args.lr]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(f"--lr given twice for {', '.join(repeated)}: give all its rates at once")
    _check_ignored(args)
    from nnjax.commands.options import blank_out_error, out_parent_error

    # a blank --out is not the default folder, silently
    for error in (blank_out_error(args.out), out_parent_error(output_folder(args))):
        if error is not None:
            raise error
    _check_out_kept(args)
    from nnjax.commands.options import probe_writable

    probe_writable(output_folder(args), "--out")  # it was the lock file's EROFS, --out unnamed
    from nnjax.compare import make_study

    try:
        make_study(args.dataset, label=option_label, **_settings(args))
    except ValueError as e:  # "compare: " repeats what the CLI's line starts with
        raise ValueError(str(e).removeprefix("compare: ")) from None


def _check_out_kept(args) -> None:
    """Files of the names a study writes (:data:`OUT_FILES`; with --no-plots, the PNGs it
    removes) already in the output folder are kept: the run is refused, before JAX starts,
    unless --overwrite (:func:`nnjax.commands.options.out_kept_error`)."""
    from nnjax.commands.options import out_kept_error

    error = out_kept_error(output_folder(args), "compare", *_out_names(args), **_out_where(args))
    if error is not None:
        raise error


def _out_names(args) -> tuple[list[str], tuple[str, ...]]:
    """The files a study writes into the output folder, and those it removes there (the
    figures, with --no-plots)."""
    plots = () if args.no_plots else PLOT_FILES
    return [n for n in OUT_FILES if n not in PLOT_FILES or n in plots], () if plots else PLOT_FILES


def _out_where(args) -> dict:
    where = None if args.out else f"the output folder {output_folder(args)} (the default --out)"
    return {"overwrite": args.overwrite, "where": where}


def _check_ignored(args) -> None:
    """An option the study would silently ignore is refused, naming it and why:
    ``--batch-size`` when every optimizer is full batch (gd), ``--val-fraction`` on a
    dataset too small to split (:data:`nnjax.data.NO_SPLIT`)."""
    from nnjax.commands.options import optimizers
    from nnjax.data import NO_SPLIT

    full_batch = optimizers()[2]
    if args.batch_size is not None and all(n in full_batch for n in args.optimizers):
        raise ValueError(
            f"--batch-size {args.batch_size}: --optimizers {','.join(args.optimizers)} "
            "train on the whole fit set at every step (full batch), so a batch size would be "
            "ignored; leave --batch-size out, or add a mini-batch optimizer (sgd, adam, ...)"
        )
    if args.val_fraction is not None and args.dataset in NO_SPLIT:
        raise ValueError(
            f"--val-fraction {args.val_fraction:g}: --dataset {args.dataset} is too small to "
            "split (fit = validation = test = all its points), so it has no validation split "
            "to size; leave --val-fraction out"
        )


# the study's settings (nnjax.compare.Study) that the options set, by option
_SETTINGS = ("dataset", "optimizers", "seeds", "epochs", "batch_size", "hidden", "activation")
_SETTINGS += ("val_fraction", "target_loss", "select")
OPTION_OF = {"learning_rates": "--lr", **{s: "--" + s.replace("_", "-") for s in _SETTINGS}}


def _settings(args) -> dict:
    """The study's settings from the options (None: the dataset's preset, or the default)."""
    return {
        "optimizers": args.optimizers,
        "learning_rates": dict(args.lr) or None,
        "seeds": args.seeds,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "hidden": args.hidden,
        "activation": args.activation,
        "val_fraction": args.val_fraction,
        "target_loss": args.target_loss,
        "select": args.select,
    }


def option_label(setting: str, optimizer: str | None = None) -> str:
    """How the study's messages name a setting here: by the option that sets it (``--lr
    adam`` for one optimizer's rates), given or not (it is the one to change)."""
    option = OPTION_OF.get(setting)
    if option is None:  # not an option of the command (data_seed)
        return setting
    return option if optimizer is None else f"{option} {optimizer}"


def _number(x: float) -> str:
    """``x`` in 4 decimals, or in 4 significant digits when that would take more than 8
    columns (a rate of 1e9 printed a validation loss of 23 digits, "1213...5296.0000")."""
    text = f"{x:.4f}"
    return text if len(text) <= 8 else f"{x:.4g}"


PM_WIDTH = 17  # the columns of _pm's "mean ± std", which the printed table's header spans


def _pm(stats: dict) -> str:
    """``mean ± std`` in 8 + 3 + 6 = 17 columns (:data:`PM_WIDTH`; 18 for a mean in
    e-notation, 1.213e+22); the std of a single seed is undefined: ``n/a``."""
    std = "n/a" if stats["std"] != stats["std"] else _number(stats["std"])  # nan != nan
    return f"{_number(stats['mean']):>8} ± {std:<6}"


def output_folder(args) -> str:
    return args.out or f"compare-{args.dataset}"


def run(args) -> int:
    from nnjax.commands.study_stop import StudyFinishing
    from nnjax.train import stop_on_signals

    _check_out_kept(args)  # again, under the lock: a run into the folder that ended since check()
    # a signal: the optimizers that finished are written
    stop = StudyFinishing(output_folder(args), "compare", "optimizer", "report")
    with stop_on_signals(flag=stop):
        _run(args, stop)
    stop.end()
    return 0


def _run(args, stop) -> None:
    from nnjax.commands.info import banner
    from nnjax.compare import StudyStopped, compare
    from nnjax.compare.files import write_checked
    from nnjax.rescue import out_appeared_error, write_or_rescue

    out = output_folder(args)
    print(banner())
    t0 = time.perf_counter()
    try:
        c = compare(args.dataset, **_settings(args), progress=True, stop=stop)  # files: below
    except StudyStopped as e:
        stop.stopped(() if e.comparison is None else e.comparison.result.runs, e.unfinished)
        c = e.comparison
    stop.begin()  # a signal from here on: the files are written first
    paths = write_or_rescue(  # a disk that filled meanwhile: into a temporary folder instead
        out,
        lambda folder: write_checked(c.result, folder, plots=not args.no_plots),
        "compare",
        "the report and its files",
        # files that appeared there while it trained are kept: the same, and named
        refuse=lambda: out_appeared_error(out, *_out_names(args), **_out_where(args)),
    )
    wall = time.perf_counter() - t0
    st, runs = c.result.study, c.result.runs
    n_runs = sum(r.step_loss.shape[0] * r.step_loss.shape[1] for r in runs.values())
    epochs = f"{st.epochs} epoch{'' if st.epochs == 1 else 's'}"
    print(f"{c.result.model_name} on {st.dataset}: {n_runs} runs, {epochs} each")
    # the headers over their columns (at 16, each mean ± std of 17 ran one column past)
    print(
        f"{'optimizer':<10} {'best lr':>9} {'val loss':>{PM_WIDTH}} "
        f"{'test accuracy':>{PM_WIDTH}} {'compile':>8} {'run':>8}"
    )
    for name, s in c.summary.items():
        times = f"{s['compile_time_s']:>7.1f}s {s['run_time_s']:>7.1f}s"
        if s["best_lr"] is None:  # every rate diverged: no numbers to show
            print(f"{name:<10} {s['status']:<45} {times}")
            continue
        print(
            f"{name:<10} {s['best_lr']:>9.3g} {_pm(s['val_loss'])} {_pm(s['test_accuracy'])} "
            + times
        )
    compile_s = sum(r.compile_time for r in runs.values())
    run_s = sum(r.run_time for r in runs.values())
    if stop.unfinished:  # the time of the optimizers not finished is in the wall time only
        print(f"wall {wall:.1f} s; the finished optimizers: compile {compile_s:.1f} s + run "
              f"{run_s:.1f} s")  # fmt: skip
    else:
        print(
            f"wall {wall:.1f} s = compile {compile_s:.1f} s + run {run_s:.1f} s + data, report "
            f"and plots {wall - compile_s - run_s:.1f} s"
        )
    names = ", ".join(sorted(os.path.basename(p) for p in paths.values()))
    print(f"wrote {os.path.join(out, '')}: {names}")  # one slash after a trailing one
