"""The MNIST-1D paper's table, reproduced: ``python -m benchmarks.mnist1d_table --out DIR``.

Greydanus & Kobak, "Scaling down deep learning with MNIST-1D" (ICML 2024, arXiv:2011.14439)
report test accuracies on MNIST-1D of 32% (logistic regression), 68% (MLP), 94% (CNN) and
91% (GRU). This script trains the four models with the recipe of the paper's repository
(github.com/greydanus/mnist1d, ``notebooks/train.py`` and ``notebooks/models.py``):

* data: the canonical split (4000 train / 1000 test, ``nnjax.data.load("mnist1d",
  standardized=False)``), not standardised (the script feeds the raw signals);
* Adam, learning rate 1e-2, weight decay 0, batch 100, cross-entropy;
* batches in the stored order, no shuffling: step s takes rows 100 s mod 4000 onwards
  (``make_epochs_fn(..., shuffle=False)``); 8000 steps = 200 epochs of 40 steps (the
  script's ``range(total_steps + 1)`` makes 8001 updates);
* models: ``LinearBase`` (one linear layer 40 -> 10, softmax: multinomial logistic
  regression), ``MLPBase`` (hidden 100 with a residual middle layer: ``nnjax.resmlp``),
  ``ConvBase`` (``nnjax.cnn``), ``GRUBase`` (bidirectional, hidden 6: ``nnjax.gru``);
* evaluation: the test accuracy after the last step (the script evaluates every 250 steps;
  here after every epoch of 40 steps, the best of those is reported beside the final one).

Each model's seeds train together: fit's loop (:func:`nnjax.train.make_epochs_fn`)
``vmap``-ed over the seeds' initial params, compiled once and run in chunks by
:func:`nnjax.train.drive`. Seeds differ only in their initial params (the order is fixed),
as the paper's script's ``set_seed`` does. ``--init torch`` draws them as PyTorch's default
initialisation does (:func:`torch_init`) instead of nnjax's defaults.
"""

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import nnjax
from nnjax.layers import init_model
from nnjax.train import Carry, FixedChunks, drive, make_epochs_fn

PAPER = {"logreg": 32.0, "mlp": 68.0, "cnn": 94.0, "gru": 91.0}  # test accuracy, %
TARGET = {"logreg": (29.0, 35.0), "mlp": (66.0, None), "cnn": (92.0, None), "gru": (88.0, None)}
RECIPE = {"optimizer": "adam", "learning_rate": 1e-2, "weight_decay": 0.0, "batch_size": 100,
          "steps": 8000, "shuffle": False, "standardized": False}  # fmt: skip
LABELS = {"logreg": "logistic regression", "mlp": "MLP (residual, hidden 100)",
          "cnn": "CNN (3 conv, 25 channels)", "gru": "GRU (bidirectional, hidden 6)"}  # fmt: skip


def build(name: str):
    """The paper's model ``name`` (see the module docstring)."""
    return {
        "logreg": lambda: nnjax.mlp([10]),
        "mlp": lambda: nnjax.resmlp(10, hidden=100),
        "cnn": lambda: nnjax.cnn(10),
        "gru": lambda: nnjax.gru(10, hidden=6),
    }[name]()


def torch_init(params, key):
    """``params`` redrawn as PyTorch's defaults draw them: U(-a, a) with a = 1/sqrt(fan_in)
    for a Linear's or a Conv's weight and bias (fan_in = inputs x kernel size), and
    a = 1/sqrt(H) for every weight and bias of a GRU cell of H units (its ``W_h`` is (H, 3H)).
    Other leaves (norm scales) are kept."""
    counter = iter(range(1 << 30))

    def uniform(a, bound):
        k = jax.random.fold_in(key, next(counter))
        return jax.random.uniform(k, a.shape, a.dtype, -bound, bound)

    def walk(p):
        if isinstance(p, dict) and "W_h" in p:
            bound = 1.0 / np.sqrt(p["W_h"].shape[0])
            return {k: uniform(v, bound) for k, v in p.items()}
        if isinstance(p, dict) and "W" in p:
            bound = 1.0 / np.sqrt(np.prod(p["W"].shape[:-1]))
            return {k: uniform(v, bound) if k in ("W", "b") else v for k, v in p.items()}
        if isinstance(p, dict):
            return {k: walk(v) for k, v in p.items()}
        if isinstance(p, list | tuple):
            return type(p)(walk(v) for v in p)
        return p

    return walk(params)


def seed_params(model, seeds, init: str):
    """The seeds' initial params stacked on a leading axis: seed s draws with key(s)."""
    each = []
    for s in seeds:
        _, params, _ = init_model(model, jax.random.key(s), (-1, 40))
        if init == "torch":
            params = torch_init(params, jax.random.key(10_000 + s))
        each.append(params)
    return jax.tree.map(lambda *a: jnp.stack(a), *each)


def train(name: str, data, seeds, steps: int, init: str, chunks: int = 10, log=print) -> dict:
    """Train model ``name`` for ``steps`` steps with every seed at once; its row of the table."""
    (X, y), (Xt, yt) = data
    model, opt = build(name), nnjax.get_optimizer("adam", RECIPE["learning_rate"])
    b = RECIPE["batch_size"]
    run, per_epoch = make_epochs_fn(model, "softmax_cross_entropy", opt, n_examples=len(X),
                                    batch_size=b, eval_names=("test",), shuffle=False)  # fmt: skip
    if steps % per_epoch:
        raise ValueError(f"--steps {steps}: must be a multiple of {per_epoch} (one epoch)")
    epochs = steps // per_epoch
    params = seed_params(model, seeds, init)
    carry = Carry(params, jax.vmap(opt.init)(params), ())
    t0 = time.perf_counter()

    def progress(report):
        if not np.isfinite(report.outputs.step_loss).all():
            raise FloatingPointError(f"{name}: the training loss became nan/inf")
        acc = 100 * report.outputs.metrics["test_accuracy"][:, -1]
        log(f"  {name}: step {report.end * per_epoch}/{steps}, test accuracy "
            f"{', '.join(f'{a:.1f}' for a in acc)} ({time.perf_counter() - t0:.0f} s)")  # fmt: skip

    driven = drive(
        jax.vmap(run, in_axes=(0, None, None, None, None, None)),
        carry,
        (jax.random.key(0), jnp.asarray(X), jnp.asarray(y), ((jnp.asarray(Xt), jnp.asarray(yt)),)),
        total=epochs,
        chunks=FixedChunks(max(1, -(-epochs // chunks))),
        hooks=(progress,),
        axis=1,  # outputs (seeds, epochs, ...)
    )
    wall = time.perf_counter() - t0
    train_acc = jax.vmap(lambda p: nnjax.train.make_eval_fn(model)(p, X, y)[1])(driven.carry.params)
    curve = 100 * np.asarray(driven.outputs.metrics["test_accuracy"])  # (seeds, epochs)
    return _row(name, seeds, curve, 100 * np.asarray(train_acc), per_epoch, driven, wall)


def _row(name, seeds, curve, train_acc, per_epoch, driven, wall) -> dict:
    final = curve[:, -1].tolist()
    lo, hi = TARGET[name]
    mean = statistics.mean(final)
    return {
        "model": name,
        "label": LABELS[name],
        "paper": PAPER[name],
        "seeds": list(seeds),
        "final_test_accuracy": final,
        "mean": mean,
        # ddof = 1; one seed has no spread to estimate (0.0 here read as "no spread at all")
        "std": statistics.stdev(final) if len(final) > 1 else None,
        "best_test_accuracy": curve.max(axis=1).tolist(),
        "final_train_accuracy": train_acc.tolist(),
        "final_step_loss": np.asarray(driven.outputs.step_loss)[:, -1, -1].tolist(),
        "test_accuracy_every_epoch": np.round(curve, 2).tolist(),
        "steps_per_epoch": per_epoch,
        "target": {"at_least": lo, "at_most": hi},
        "holds": mean >= lo and (hi is None or mean <= hi),
        "within_3_points_or_better": mean >= PAPER[name] - 3.0,
        "compile_s": driven.compile_time,
        "run_s": driven.run_time,
        "wall_s": wall,
    }


def cpu_name() -> str:
    """The CPU's model name (``/proc/cpuinfo``), or what ``platform`` says."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment() -> dict:
    return {
        "cpu": cpu_name(),
        "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "load_average_at_start": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "jax": jax.__version__,
        "backend": jax.default_backend(),
        "python": platform.python_version(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


def run_table(models, seeds, steps: int, init: str, log=print) -> dict:
    """Every model's row, the recipe and the machine: the JSON of the report."""
    ds = nnjax.data.load("mnist1d", standardized=RECIPE["standardized"])
    data = ((ds.X_train, ds.y_train), (ds.X_test, ds.y_test))
    env = environment()
    rows = []
    for name in models:
        log(f"{LABELS[name]}: {len(seeds)} seeds vmapped, {steps} steps ...")
        rows.append(train(name, data, seeds, steps, init, log=log))
        r = rows[-1]
        spread = "" if r["std"] is None else f" +- {r['std']:.1f}"
        log(f"  {name}: {r['mean']:.1f}{spread} % (paper {r['paper']:.0f} %), "
            f"{r['wall_s']:.0f} s")  # fmt: skip
    env["load_average_at_end"] = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {
        "paper": "Greydanus & Kobak, Scaling down deep learning with MNIST-1D, ICML 2024 "
        "(arXiv:2011.14439)",
        "recipe": {**RECIPE, "steps": steps, "init": init},
        "n_train": len(ds.X_train),
        "n_test": len(ds.X_test),
        "environment": env,
        "rows": rows,
        "command": "python -m benchmarks.mnist1d_table " + " ".join(sys.argv[1:]),
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.mnist1d_table", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("--out", type=Path, required=True, help="write README.md and results.json")
    p.add_argument("--models", default="logreg,mlp,cnn,gru", help="(default: all four)")
    p.add_argument("--seeds", default="0,1,2", help="comma-separated (default: 0,1,2)")
    p.add_argument("--steps", type=int, default=RECIPE["steps"], help="(default: 8000)")
    p.add_argument(
        "--init",
        choices=("nnjax", "torch"),
        default="nnjax",
        help="initial params: nnjax's or PyTorch's defaults (default: nnjax)",
    )
    args = p.parse_args(argv)
    models = args.models.split(",")
    bad = [m for m in models if m not in PAPER]
    if bad or args.steps < 1:
        p.error(f"--models takes {','.join(PAPER)}; --steps >= 1 (got {args.models}, {args.steps})")
    try:
        seeds = [int(s) for s in args.seeds.split(",")]
    except ValueError:
        seeds = []
    if not seeds or len(set(seeds)) < len(seeds):  # a repeated seed is no second sample
        p.error(f"--seeds takes distinct comma-separated integers, e.g. 0,1,2 (got {args.seeds!r})")
    from benchmarks.mnist1d_report import markdown

    results = run_table(models, seeds, args.steps, args.init)
    args.out.mkdir(parents=True, exist_ok=True)
    nnjax.io.atomic_write_json(args.out / "results.json", results)
    nnjax.io.atomic_write_text(args.out / "README.md", markdown(results))
    print(f"wrote {args.out / 'README.md'} and results.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
