"""``nnjax sleep``: the continual-learning study — no sleep / SRC / generative replay / joint."""

import json
import os
import time

HELP = (
    "class-incremental split digits / MNIST-1D: sequential (no sleep), Sleep Replay "
    "Consolidation, generative replay and joint training, mean ± std over class orders x seeds"
)
METHODS = ("sequential", "src", "replay", "joint")
# nnjax.brain.continual.SPLIT_DATASETS (a test keeps them equal): here so that `--help` needs
# no JAX
SPLIT_DATASETS = ("digits", "mnist1d")


def add_arguments(p) -> None:
    from nnjax.commands import options as o

    p.add_argument("--dataset", default="digits", choices=SPLIT_DATASETS, help="dataset to split")
    p.add_argument(
        "--out",
        default=None,
        metavar="DIR",
        help="write results.json, table.md and plots here (default: print only)",
    )
    p.add_argument(
        "--seeds", type=o.positive_int, default=5, metavar="N", help="seeds per class order"
    )
    p.add_argument(
        "--orders",
        type=o.int_list(0, "0,1,2"),
        default="0,1,2",
        metavar="K,K,...",
        help="class orders (0 = 0..9)",
    )
    p.add_argument("--steps", type=o.positive_int, default=300, metavar="N", help="SGD steps/task")
    p.add_argument(
        "--sleep-steps",
        type=o.positive_int,
        default=None,
        metavar="N",
        help="SRC time steps per sleep (default: the study's own, SRCConfig.steps)",
    )
    p.add_argument(
        "--methods",
        type=o.name_list(METHODS, "method"),
        default=",".join(METHODS),
        metavar="NAME,...",
        help=o.choices_help("comma-separated methods", METHODS),
    )


def run(args) -> int:
    from nnjax.brain import study

    t0 = time.perf_counter()
    res = study.run_sleep_study(
        args.dataset,
        args.orders,
        args.seeds,
        args.methods,
        steps=args.steps,
        sleep_steps=args.sleep_steps,
    )
    res["wall_s"] = time.perf_counter() - t0
    res["load_average"] = os.getloadavg()
    print(study.format_table(res))
    print(f"wall {res['wall_s']:.1f} s, load average {res['load_average'][0]:.1f} (1 min)")
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        study.write_plots(res, args.out)
        with open(os.path.join(args.out, "table.md"), "w") as f:
            f.write(study.format_table(res) + "\n")
        with open(os.path.join(args.out, "results.json"), "w") as f:
            json.dump(study.jsonable(res), f, indent=1)
        print(f"wrote {args.out}/results.json, table.md, accuracy.png, heatmap.png, dreams.png")
    return 0
