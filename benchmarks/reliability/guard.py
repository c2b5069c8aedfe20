"""How far above its start does the training loss of a normal run go? The study behind the
defaults of :class:`nnjax.train.DivergenceGuard` (factor 10, 3 epochs).

    python -m benchmarks.reliability.guard [--datasets toy,xor,...] [--epochs 20]

For each built-in dataset, an MLP (64, 64, relu; the CLI's default when the guard was
chosen), every named optimizer at 1, 3 and 10 times its default learning rate, batch 32
(full batch for gd and for datasets smaller than 32), key 0: L_0 = the first step's loss,
L_e = epoch e's mean step loss. Prints one JSON line per run (the largest L_e / L_0 and, for
k in 2, 3, 5, 10, the longest streak of epochs with L_e > k L_0), then the worst case per
learning-rate multiple. Then the diverging runs the guard is for (Adam at 1e6, SGD at 1e3
and 1e9): the epoch at which the default guard stops them, or the first non-finite epoch.
"""

import argparse
import json
import math

import numpy as np

FACTORS = (2, 3, 5, 10)


def longest_above(means, first: float, k: float) -> int:
    """The longest run of consecutive epochs with mean > k * first (nan counts as above)."""
    best = run = 0
    for m in means:
        run = run + 1 if not m <= k * first else 0
        best = max(best, run)
    return best


def one_run(ds, optimizer: str, learning_rate: float, epochs: int) -> dict:
    import jax

    import nnjax

    model = nnjax.mlp([64, 64, ds.n_classes], "relu")
    params = model.init(jax.random.key(0), (-1, ds.X_train.shape[1]))[1]
    batch = None if optimizer == "gd" or len(ds.X_train) < 32 else 32
    res = nnjax.fit(model, params, ds.X_train, ds.y_train, optimizer=optimizer,
                    learning_rate=learning_rate, epochs=epochs, batch_size=batch, key=0,
                    check_finite=False)  # fmt: skip
    first, means = float(res.step_loss[0]), np.asarray(res.metrics["step_loss_mean"])
    finite = np.isfinite(means)
    return {
        "dataset": ds.name,
        "optimizer": optimizer,
        "learning_rate": learning_rate,
        "first_loss": first,
        "max_ratio": float(means[finite].max() / first) if finite.any() else math.nan,
        "final": float(means[-1]),
        "first_nonfinite_epoch": int(np.flatnonzero(~finite)[0]) + 1 if not finite.all() else None,
        "streaks": {k: longest_above(means, first, k) for k in FACTORS},
        "guard_stops_at": _guard_epoch(means, first),
    }


def _guard_epoch(means, first, factor=10.0, epochs=3) -> int | None:
    run = 0
    for e, m in enumerate(means):
        run = run + 1 if not m <= factor * first else 0
        if run >= epochs:
            return e + 1
    return None


def main() -> None:
    import nnjax
    from nnjax.optim import DEFAULT_LEARNING_RATE

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--datasets", default=",".join(nnjax.data.DATASETS))
    p.add_argument("--epochs", type=int, default=20)
    args = p.parse_args()
    rows = []
    for name in args.datasets.split(","):
        ds = nnjax.data.load(name, seed=0)
        for opt, base in DEFAULT_LEARNING_RATE.items():
            for mult in (1, 3, 10):
                rows.append(one_run(ds, opt, base * mult, args.epochs) | {"multiple": mult})
                print(json.dumps(rows[-1]), flush=True)
        for opt, lr in (("adam", 1e6), ("sgd", 1e3), ("sgd", 1e9)):
            print(json.dumps(one_run(ds, opt, lr, args.epochs) | {"diverging": True}), flush=True)
    for mult in (1, 3, 10):
        sub = [r for r in rows if r["multiple"] == mult]
        worst = {k: max(sub, key=lambda r: r["streaks"][k]) for k in FACTORS}
        print(f"x{mult}: longest streak above k x L_0: " + ", ".join(
            f"k={k}: {w['streaks'][k]} ({w['dataset']}/{w['optimizer']})" for k, w in worst.items()
        ))  # fmt: skip


if __name__ == "__main__":
    main()
