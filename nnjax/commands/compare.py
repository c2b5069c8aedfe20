"""``nnjax compare``: optimizers x learning rates x seeds on a built-in dataset, one compiled
program per optimizer; writes a Markdown report, CSV/JSON of every run and plots."""

import time

HELP = "compare optimizers across learning rates and seeds (report, CSV/JSON, plots)"


def add_arguments(p) -> None:
    from nnjax.compare.study import DEFAULT_OPTIMIZERS, SELECT
    from nnjax.data import DATASETS

    p.add_argument("--dataset", default="digits", choices=DATASETS)
    p.add_argument(
        "--optimizers",
        default=",".join(DEFAULT_OPTIMIZERS),
        help="comma-separated optimizer names (default: %(default)s); gd is full batch",
    )
    p.add_argument(
        "--lr",
        action="append",
        default=[],
        metavar="OPT=LR,LR,...",
        help="learning rates of one optimizer, e.g. --lr adam=1e-4,1e-3,1e-2 (repeatable; "
        "default: 5 log-spaced rates per optimizer)",
    )
    p.add_argument("--seeds", type=int, default=5, help="number of seeds (0..N-1)")
    p.add_argument("--epochs", type=int, default=None, help="default: the dataset's preset")
    p.add_argument("--batch-size", type=int, default=None, help="mini-batch size (not for gd)")
    p.add_argument("--hidden", default=None, help="hidden widths of the MLP, e.g. 64,64")
    p.add_argument("--activation", default=None, help="hidden activation (default relu)")
    p.add_argument(
        "--val-fraction",
        type=float,
        default=None,
        help="part of the training split held out to choose the learning rate (0.2)",
    )
    p.add_argument(
        "--target-loss",
        type=float,
        default=None,
        help="report the updates needed to reach this training loss",
    )
    p.add_argument(
        "--select", default=None, choices=SELECT, help="learning-rate criterion (default val_loss)"
    )
    p.add_argument("--out", default=None, help="output folder (default: compare-<dataset>)")
    p.add_argument("--no-plots", action="store_true", help="skip the PNGs")


def _ints(text: str, flag: str) -> list[int]:
    try:
        return [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise ValueError(f"{flag} takes comma-separated ints, got {text!r}") from None


def parse_lrs(items: list[str]) -> dict[str, list[float]]:
    """``["adam=1e-3,1e-2", ...]`` -> ``{"adam": [1e-3, 1e-2]}``."""
    out = {}
    for item in items:
        name, sep, values = item.partition("=")
        if not sep or not name.strip():
            raise ValueError(f"--lr takes OPT=LR,LR,..., got {item!r}")
        try:
            out[name.strip()] = [float(v) for v in values.split(",") if v.strip()]
        except ValueError:
            raise ValueError(f"--lr {item!r}: learning rates must be numbers") from None
        if not out[name.strip()]:
            raise ValueError(f"--lr {item!r}: give at least one learning rate")
    return out


def run(args) -> int:
    from nnjax.commands.info import info
    from nnjax.compare import compare

    optimizers = [s.strip() for s in args.optimizers.split(",") if s.strip()]
    out = args.out or f"compare-{args.dataset}"
    dev = info()
    print(f"nnjax {dev['nnjax']} | jax {dev['jax']} | {dev['backend']}: {dev['devices'][0]}")
    t0 = time.perf_counter()
    c = compare(
        args.dataset,
        optimizers=optimizers,
        learning_rates=parse_lrs(args.lr) or None,
        seeds=args.seeds,
        epochs=args.epochs,
        batch_size=args.batch_size,
        hidden=_ints(args.hidden, "--hidden") if args.hidden else None,
        activation=args.activation,
        val_fraction=args.val_fraction,
        target_loss=args.target_loss,
        select=args.select,
        out=out,
        plots=not args.no_plots,
        progress=True,
    )
    wall = time.perf_counter() - t0
    st, runs = c.result.study, c.result.runs
    n_runs = sum(r.step_loss.shape[0] * r.step_loss.shape[1] for r in runs.values())
    print(f"{c.result.model_name} on {st.dataset}: {n_runs} runs, {st.epochs} epochs each")
    print(
        f"{'optimizer':<10} {'best lr':>9} {'val loss':>16} {'test accuracy':>16} "
        f"{'compile':>8} {'run':>8}"
    )
    for name, s in c.summary.items():
        print(
            f"{name:<10} {s['best_lr']:>9.3g} "
            f"{s['val_loss']['mean']:>8.4f} ± {s['val_loss']['std']:.4f} "
            f"{s['test_accuracy']['mean']:>8.4f} ± {s['test_accuracy']['std']:.4f} "
            f"{s['compile_time_s']:>7.1f}s {s['run_time_s']:>7.1f}s"
        )
    compile_s = sum(r.compile_time for r in runs.values())
    run_s = sum(r.run_time for r in runs.values())
    print(
        f"wall {wall:.1f} s = compile {compile_s:.1f} s + run {run_s:.1f} s + data, report and "
        f"plots {wall - compile_s - run_s:.1f} s"
    )
    print(f"wrote {out}/: " + ", ".join(sorted(p.split("/")[-1] for p in c.paths.values())))
    return 0
