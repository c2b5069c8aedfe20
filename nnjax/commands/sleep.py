"""``nnjax sleep``: the continual-learning study — no sleep / SRC / generative replay / joint."""

import json
import os
import time

HELP = (
    "class-incremental split digits / MNIST-1D: sequential (no sleep), Sleep Replay "
    "Consolidation, generative replay and joint training, mean ± std over class orders x seeds"
)
METHODS = ("sequential", "src", "replay", "joint")


def add_arguments(p) -> None:
    from nnjax.brain.continual import SPLIT_DATASETS

    p.add_argument("--dataset", default="digits", choices=SPLIT_DATASETS)
    p.add_argument("--out", default=None, help="write results.json, table.md and plots here")
    p.add_argument("--seeds", type=int, default=5, help="seeds per class order (>= 1)")
    p.add_argument("--orders", default="0,1,2", help="class orders, e.g. 0,1,2 (0 = 0..9)")
    p.add_argument("--steps", type=int, default=300, help="SGD steps per task")
    p.add_argument("--sleep-steps", type=int, default=None, help="SRC time steps per sleep")
    p.add_argument("--methods", default=",".join(METHODS), help="subset of " + ",".join(METHODS))


def _parse_ints(text: str, what: str) -> list[int]:
    try:
        vals = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise ValueError(f"{what} takes comma-separated ints, got {text!r}") from None
    if not vals or any(v < 0 for v in vals):
        raise ValueError(f"{what} must be non-negative ints, got {text!r}")
    return vals


def run(args) -> int:
    from nnjax.brain import study

    orders = _parse_ints(args.orders, "--orders")
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    bad = [m for m in methods if m not in METHODS]
    if bad or not methods:
        raise ValueError(f"--methods: unknown {bad}; valid: {', '.join(METHODS)}")
    if args.seeds < 1 or args.steps < 1:
        raise ValueError(f"--seeds and --steps must be >= 1, got {args.seeds}, {args.steps}")
    t0 = time.perf_counter()
    res = study.run_sleep_study(
        args.dataset, orders, args.seeds, methods, steps=args.steps, sleep_steps=args.sleep_steps
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
