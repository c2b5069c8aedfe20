"""The hyperparameter search of every method (:mod:`nnjax.brain.harness`), run once, committed.

``python -m nnjax.brain.tuning DATASET OUT.json [N] [METHOD,...]`` draws N candidates per
method, scores each on the 10 validation runs, writes every candidate's scores and both
winners to OUT.json (after each method, so a stopped search keeps what it did), and the
winners to :mod:`nnjax.brain.tuned` (the file ``nnjax/brain/tuned.py``), which ``nnjax
sleep`` reads (format it with ``ruff format`` afterwards). It takes tens of minutes: it is
not part of the command (8 candidates: digits 29 min wall, 12 min CPU, on the 2-core machine
under a load of about 8; MNIST-1D 566 s on a faster 2-core machine at a load under 2).
"""

import ast
import json
import os
import pprint
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

from nnjax.brain import harness as H
from nnjax.io import atomic_write_text

TUNED_PATH = os.path.join(os.path.dirname(__file__), "tuned.py")


def _summary(x: np.ndarray) -> dict:
    return {"mean": x.mean(1).tolist(), "std": x.std(1, ddof=1).tolist()}


def tune_methods(names, dataset: str, n: int, group: int = 16) -> dict:
    """The search of ``names``, methods that share one program (the replay buffers: M is a
    hyperparameter), run together: {name: record} (:func:`_record`)."""
    keys = jax.random.split(jax.random.key(1000), H.VALIDATION_SEEDS)
    hps = [H.candidates(name, n) if name in H.BOX else None for name in names]
    stacked = None if hps[0] is None else jax.tree.map(lambda *x: jnp.concatenate(x), *hps)
    runs = H.run_candidates(names[0], dataset, stacked, H.VALIDATION_ORDERS, keys,
                            validation=True, group=group)  # fmt: skip
    out = {}
    for i, (name, hp) in enumerate(zip(names, hps)):
        part = slice(i * n, (i + 1) * n) if hp is not None else slice(0, 1)
        sub = H.Runs({k: v[part] for k, v in runs.metrics.items()}, runs.diverged[part],
                     runs.seconds / len(names))  # fmt: skip
        out[name] = _record(sub, hp, n)
    return out


def _record(runs: H.Runs, hps, n: int) -> dict:
    """One method's candidates, their validation scores and the two winners, as JSON data."""
    record = {
        "seconds": runs.seconds,
        "validation_runs": int(runs.diverged.shape[1]),
        "final_accuracy": _summary(runs.metrics["final"]),
        "just_learned_accuracy": _summary(runs.metrics["just_learned"]),
        "first_task_accuracy": _summary(runs.metrics["first_task"]),
        "diverged_runs": runs.diverged.sum(1).tolist(),
    }
    if hps is None:
        return record
    pick = H.select(runs)
    record["candidates"] = [H.hp_at(hps, i) for i in range(n)]
    record["winners"] = {obj: pick[obj] for obj in H.OBJECTIVES}
    record["plastic_met_floor"] = pick["plastic_met_floor"]
    record["chosen"] = {obj: None if i < 0 else H.hp_at(hps, i) for obj, i in pick.items()
                        if obj in H.OBJECTIVES}  # fmt: skip
    return record


SHARED = (("replay1", "replay5", "replay20"),)  # methods that share one compiled program


def _batches(methods) -> list:
    out, done = [], set()
    for name in methods:
        if name in done:
            continue
        group = next((g for g in SHARED if name in g), (name,))
        batch = tuple(m for m in group if m in methods)
        out.append(batch)
        done.update(batch)
    return out


def tune(dataset: str, out: str, n: int = 16, methods=H.METHODS, group: int = 16) -> dict:
    """Every method's search (:func:`tune_methods`), written to ``out`` as it goes. Every
    argument is checked before the first method runs (a bad ``n`` or method name failed only
    when its turn came, after the methods before it had run for minutes)."""
    methods, n, group = _check_tune(dataset, out, n, methods, group)
    res = {
        "dataset": dataset, "n_candidates": n, "search_seed": H.SEARCH_SEED,
        "validation_orders": list(H.VALIDATION_ORDERS), "validation_seeds":
        f"jax.random.split(jax.random.key(1000), {H.VALIDATION_SEEDS})",
        "plasticity_floor": H.PLASTICITY_FLOOR, "box": {k: [H.hp_at(_one(b), 0) for b in v]
        for k, v in H.BOX.items()}, "wake": H.configs(dataset)[0]._asdict(),
        "sleep": H.configs(dataset)[1]._asdict(), "load_average_start": os.getloadavg(),
        "methods": {},
    }  # fmt: skip
    t0 = time.perf_counter()
    for batch in _batches(methods):
        t1 = time.perf_counter()
        res["methods"].update(tune_methods(batch, dataset, n, group))
        for name in batch:
            rec = res["methods"][name]
            print(f"{name}: {time.perf_counter() - t1:.0f} s, {_best_line(rec)}", flush=True)
        res["seconds"] = time.perf_counter() - t0
        res["load_average_end"] = os.getloadavg()
        atomic_write_text(out, json.dumps(res, indent=1))
    write_tuned(dataset, res)
    return res


def _best_line(rec: dict) -> str:
    """The winner's validation accuracy, or that no candidate competed (winner -1: indexing
    with it printed the last candidate's accuracy as the best)."""
    best = rec.get("winners", {}).get("final", 0)
    if best < 0:
        return "no candidate competed (every one had a diverged run or a nan mean)"
    acc = rec["final_accuracy"]["mean"][best]
    return f"best validation final accuracy {acc:.3f} (candidate {best})"


def _check_tune(dataset, out, n, methods, group) -> tuple:
    """(methods as a tuple, n, group) when :func:`tune`'s arguments are valid, else a
    ValueError naming the argument."""
    from nnjax.brain.dynamics import check_count

    H.configs(dataset)  # an unknown dataset, named
    n, group = check_count(n, "n", "tune"), check_count(group, "group", "tune")
    if isinstance(methods, str) or not hasattr(methods, "__iter__"):
        raise ValueError(f"tune: methods must be a sequence of names, got {methods!r}")
    methods = tuple(methods)
    unknown = [m for m in methods if m not in H.METHODS]
    if not methods or unknown or len(set(methods)) != len(methods):
        raise ValueError(f"tune: methods must be distinct names of {H.METHODS}, at least one; "
                         f"got {list(methods)}")  # fmt: skip
    path = os.fspath(out) if isinstance(out, str | os.PathLike) else ""
    if not path or os.path.isdir(path) or not os.path.isdir(os.path.dirname(os.path.abspath(path))):
        raise ValueError(f"tune: out must be a file path in an existing folder, got {out!r}")
    return methods, n, group


def _one(tree):
    return jax.tree.map(lambda x: np.asarray(x)[None], tree)


def _written(path: str) -> tuple[dict, dict]:
    """``(CHOSEN, SEARCH)`` of the tuned file at ``path`` (read as literals, not run), or of
    the imported :mod:`nnjax.brain.tuned` where ``path`` does not exist."""
    if not os.path.exists(path):
        from nnjax.brain import tuned

        return dict(tuned.CHOSEN), dict(tuned.SEARCH)
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), path)
    found = {
        target.id: ast.literal_eval(node.value)
        for node in tree.body
        if isinstance(node, ast.Assign)
        for target in node.targets
        if isinstance(target, ast.Name) and target.id in ("CHOSEN", "SEARCH")
    }
    return dict(found.get("CHOSEN", {})), dict(found.get("SEARCH", {}))


def write_tuned(dataset: str, res: dict, path: str = TUNED_PATH) -> None:
    """Merge ``dataset``'s winners into ``nnjax/brain/tuned.py``: other datasets, and the
    methods of ``dataset`` this search did not run, are kept (a search of one method replaced
    the dataset's whole entry, and ``nnjax sleep`` fell back to the box centres for every
    other method). ``SEARCH[dataset]``: ``n_candidates`` one number, or {method: n} when the
    kept methods were searched with another n; ``seconds`` summed over the searches kept.
    The winners kept are those of the file at ``path`` as it is now (the package's
    :mod:`nnjax.brain.tuned` where no such file exists yet): the module imported when the
    process started was merged instead, so a second search in one process (another dataset
    or method) put back the winners the first had replaced."""
    chosen, search = _written(path)
    old, prev = dict(chosen.get(dataset, {})), dict(search.get(dataset, {}))
    new = {k: r["chosen"] for k, r in res["methods"].items() if "chosen" in r}
    kept = [k for k in old if k not in new]
    n_new, n_old = res["n_candidates"], prev.get("n_candidates")
    if kept and n_old != n_new:
        per = n_old if isinstance(n_old, dict) else dict.fromkeys(old, n_old)
        n_cand = {**{k: per.get(k) for k in kept}, **dict.fromkeys(new, n_new)}
    else:
        n_cand = n_new
    chosen[dataset] = {**old, **new}
    search[dataset] = {"n_candidates": n_cand,
                       "validation_runs": len(H.VALIDATION_ORDERS) * H.VALIDATION_SEEDS,
                       "seconds": round(res.get("seconds", 0.0))
                       + (prev.get("seconds", 0) if kept else 0)}  # fmt: skip
    text = (
        '"""Hyperparameters chosen by the harness\'s search on the validation runs.\n\n'
        "Generated by ``python -m nnjax.brain.tuning`` (see :mod:`nnjax.brain.harness`); do "
        "not edit by hand.\n``CHOSEN[dataset][method][objective]``: a dict of plain numbers "
        "(floats, or lists of them); a\ncombined method's (``src+replay1``) is a list of one "
        'such dict per part, the replay\'s then SRC\'s."""\n\n'
        f"CHOSEN = {pprint.pformat(chosen, width=96, sort_dicts=True)}\n\n"
        f"SEARCH = {pprint.pformat(search, width=96, sort_dicts=True)}\n"
    )
    atomic_write_text(path, text)


if __name__ == "__main__":
    args = sys.argv[1:]
    if not 2 <= len(args) <= 4:
        sys.exit("usage: python -m nnjax.brain.tuning DATASET OUT.json [N] [METHOD,...]")
    n = int(args[2]) if len(args) > 2 else 16
    methods = args[3].split(",") if len(args) > 3 else H.METHODS
    tune(args[0], args[1], n, methods)
