"""Choosing SRC's hyperparameters on a validation split only.

The split: the digits *training* split cut again 80/20 (``load_split(validation=True)``), with
class order :data:`~nnjax.brain.continual.VALIDATION_ORDER` and seeds 1000.. — none of which is
used by the reported study (test split, class orders 0, 1, 2, seeds 0, 1, 2, ...).

The search: random search, log-uniform within a factor ``spread`` of a centre (first the
authors' MNIST values r = 240, inc = 0.032, dec = 0.0033, beta = (14.5, 44.6, 38.0),
alpha = 55.9, then the best of round 1), all candidates of a round in one vmapped program
run by fit's driver (:func:`score_candidates`).
Score: mean over the validation runs of the final 10-class validation accuracy. Run
``python -m nnjax.brain.sleep_search OUT.json``.
"""

import json
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

from nnjax.brain import continual as C
from nnjax.brain import sleep as S


def sample_candidates(key, centre: S.SRCParams, n: int, spread: float) -> S.SRCParams:
    """n candidates: each number times exp(U(-log spread, log spread)); candidate 0 = centre."""
    leaves, tree = jax.tree.flatten(centre)
    keys = jax.random.split(key, len(leaves))
    out = []
    for k, x in zip(keys, leaves):
        u = jax.random.uniform(k, (n, *x.shape), minval=-1.0, maxval=1.0)
        c = x * jnp.exp(u * jnp.log(spread))
        out.append(c.at[0].set(x))
    return jax.tree.unflatten(tree, out)


def score_candidates(split, cfg, src_cfg, hps: S.SRCParams, keys) -> np.ndarray:
    """(n_candidates, n_runs) final validation accuracies: every candidate x run, vmapped,
    through fit's driver (:func:`nnjax.brain.continual.run_seeds`). A candidate whose sleep
    drives the weights to nan is scored, not raised: a search explores such corners."""
    run = C.make_run(split, cfg, S.make_src_method(split.image_shape, src_cfg))
    runs = C.run_seeds(run, C.task_arrays(split), keys, hps, over="hp", check_finite=False)
    counts = C.class_counts(split.y_test, split.n_classes)
    return C.metrics(runs.A_after, split.task_classes, counts)["final"]


def search(
    n: int = 48, rounds: int = 2, spread: float = 4.0, n_runs: int = 3, steps: int = 1000
) -> dict:
    split = C.load_split("digits", C.VALIDATION_ORDER, validation=True)
    cfg, src_cfg = C.TrainConfig(), S.SRCConfig(steps=steps)
    keys = jax.random.split(jax.random.key(1000), n_runs)
    seq = C.run_seeds(C.make_run(split, cfg), C.task_arrays(split), keys).A_after
    counts = C.class_counts(split.y_test, split.n_classes)
    seq_final = C.metrics(seq, split.task_classes, counts)["final"]
    centre, log = S.PAPER, []
    for r in range(rounds):
        t0 = time.perf_counter()
        hps = sample_candidates(jax.random.key(r), centre, n, spread if r == 0 else np.sqrt(spread))
        final = score_candidates(split, cfg, src_cfg, hps, keys)
        best = int(np.argmax(final.mean(1)))
        centre = jax.tree.map(lambda x, b=best: x[b], hps)
        log.append(
            {
                "round": r,
                "seconds": time.perf_counter() - t0,
                "candidates": jax.tree.map(lambda x: np.asarray(x).tolist(), hps._asdict()),
                "final_val_accuracy": final.tolist(),
                "best": best,
            }
        )
        print(f"round {r}: best mean {final.mean(1)[best]:.3f} (paper cfg {final[0].mean():.3f})")
    return {
        "split": "digits train split cut 80/20 (seed 1); class order "
        f"{C.class_order(C.VALIDATION_ORDER).tolist()}; seeds 1000..{1000 + n_runs - 1}",
        "train_config": cfg._asdict(),
        "sleep_config": src_cfg._asdict(),
        "sequential_final_val_accuracy": seq_final.tolist(),
        "chosen": jax.tree.map(lambda x: np.asarray(x).tolist(), centre._asdict()),
        "rounds": log,
    }


if __name__ == "__main__":
    out = search()
    with open(sys.argv[1] if len(sys.argv) > 1 else "src_search.json", "w") as f:
        json.dump(out, f, indent=1)
    print("chosen", out["chosen"])
