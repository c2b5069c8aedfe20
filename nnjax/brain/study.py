"""The continual-learning study behind ``nnjax sleep``: every method on the test protocol.

The test protocol: the dataset's test split, class orders ``orders`` (default 0-4) x seeds
``split(key(0), n_seeds)`` (default 2): 10 runs, none of which the hyperparameter search saw
(:mod:`nnjax.brain.harness`). Runs are *paired*: the same (order, seed) gives every method the
same initial network and the same first-task batches, so differences are compared run by
run (:func:`nnjax.brain.scores.paired`) and, the seeds of an order averaged, order by order
(:func:`nnjax.brain.scores_clustered.paired_clustered`: an order's runs share its tasks).

Every method runs with the hyperparameters the search chose on the validation runs for the
final-accuracy objective (:mod:`nnjax.brain.tuned`); SRC runs a second time as
``src:plastic`` with those chosen for the plasticity-constrained objective. Methods that share
a program run in one compiled call: sequential with joint (their tasks padded to one shape),
the three replay buffers (M is a hyperparameter), SRC's two choices. Every call is driven by
fit's driver, one task per chunk; its hooks report progress.
"""

import time

import jax
import jax.numpy as jnp
import numpy as np

from nnjax.brain import continual as C
from nnjax.brain import dreams as D
from nnjax.brain import harness as H
from nnjax.brain import scores
from nnjax.brain.scores_clustered import paired_clustered
from nnjax.train.driver import check_stop
from nnjax.train.signals import stopped_text

TEST_ORDERS = (0, 1, 2, 3, 4)
TEST_SEEDS = 2
ROWS = (*H.METHODS[:-2], "src:plastic", *H.METHODS[-2:])  # src:plastic right after src
LABELS = {**H.LABELS, "src:plastic": "SRC, plasticity-constrained choice"}
GROUPS = (("sequential", "joint"), ("ewc",), ("si",), ("lwf",),
          ("replay1", "replay5", "replay20"), ("genreplay",), ("src", "src:plastic"),
          ("src+replay1",))  # fmt: skip
COST = {"sequential": 1, "joint": 1.5, "ewc": 2, "si": 2, "lwf": 1.5, "replay1": 2,
        "replay5": 2, "replay20": 2, "genreplay": 9, "src": 1.5, "src:plastic": 1.5,
        "src+replay1": 3}  # fmt: skip
COMPILE_COST = 40  # one program's compile, in the units of COST x runs: only for the ETA
METRICS = ("final", "bwt", "fwt", "forgetting", "just_learned", "first_task", "old")


def chosen_hp(dataset: str, row: str):
    """(hyperparameters, where they come from) of ``row`` on ``dataset``: the search's winner
    (:mod:`nnjax.brain.tuned`; a permuted dataset without its own search takes its base's),
    else the box's centre, candidate 0."""
    from nnjax.brain import tuned

    name, objective = (row.split(":") + ["final"])[:2]
    if name not in H.BOX:
        return None, "no hyperparameters"
    objective = "plastic" if objective == "plastic" else "final"
    for ds in (dataset, H.base_dataset(dataset)):
        plain = tuned.CHOSEN.get(ds, {}).get(name, {}).get(objective)
        if plain is not None:
            return H.as_hp(name, plain), f"tuned on {ds} validation runs ({objective} objective)"
    hp = jax.tree.map(lambda x: x[0], H.candidates(name, 1))
    return hp, "untuned: the search box's centre"


def plan(dataset: str, rows, n_runs: int) -> list:
    """The groups of ``rows`` to run, in order, with their rows and relative costs (ETA)."""
    out = []
    for group in GROUPS:
        names = tuple(r for r in group if r in rows)
        if names:
            out.append((names, COMPILE_COST + n_runs * sum(COST[r] for r in names)))
    return out


def _group_splits(names, dataset, orders):
    """(splits, {row: (hp index, slice of splits)}): sequential and joint stack their arrays
    (one program), every other group stacks its hyperparameters."""
    seq = H.splits_for(dataset, orders, validation=False)
    O = len(orders)
    if names[0] in ("sequential", "joint"):
        cum = H.splits_for(dataset, orders, validation=False, joint=True)
        N = max(cum[0].X_tasks.shape[1], seq[0].X_tasks.shape[1])
        splits = [C.pad_tasks(s, N) for s in (seq + cum)]
        where = {"sequential": (0, slice(0, O)), "joint": (0, slice(O, 2 * O))}
        return splits, {r: where[r] for r in names}
    return seq, {r: (i, slice(0, O)) for i, r in enumerate(names)}


def run_group(names, dataset, orders, keys, cfg=None, src_cfg=None, hooks=(), stop=None):
    """Run the rows ``names`` of one group on the test protocol: {row: {"metrics", "A",
    "final" (params, extra) of order 0 / seed 0, "hp", "hp_source", "diverged"}} and the
    seconds. A run whose wake loss became nan/inf is not stopped: it is scored as it ends
    (its accuracies count in every statistic) and counted in "diverged". ``stop`` (a
    :class:`nnjax.train.StopFlag`): a stop requested ends the runs after the running task,
    and ``(None, seconds)`` is returned."""
    d_cfg, d_src = H.configs(dataset)
    cfg, src_cfg = cfg or d_cfg, src_cfg or d_src
    splits, where = _group_splits(names, dataset, orders)
    method = H.build(names[0].split(":")[0], splits[0], cfg, src_cfg)
    chosen = {r: chosen_hp(dataset, r) for r in names}
    if chosen[names[0]][0] is None:
        hps = jnp.zeros(1)  # a dummy candidate axis
    else:
        hps = jax.tree.map(lambda *x: jnp.stack(x), *(chosen[r][0] for r in names))
    t0 = time.perf_counter()
    program = C.seed_program(C.make_run(splits[0], cfg, method), over="hp+arrays")
    runs = C.run_seeds(program, H.stack_arrays(splits), keys, hps, over="hp+arrays",
                       check_finite=False, hooks=hooks, stop=stop)  # fmt: skip
    if runs is None:
        return None, time.perf_counter() - t0
    bad = H.diverged(runs)  # (C, O, S): a wake loss or the final params non-finite
    out = {}
    for r, (i, sl) in where.items():
        part = runs._replace(
            A_after=runs.A_after[i : i + 1, sl], A_start=runs.A_start[i : i + 1, sl]
        )
        m = H.score_runs(part, splits[sl])
        out[r] = {
            "metrics": {k: v[0] for k, v in m.items()},
            "A": runs.A_after[i, sl],
            "final": jax.tree.map(lambda a, i=i, o=sl.start: a[i, o, 0], runs.final),
            "hp": None if chosen[r][0] is None else H.hp_at(_one(chosen[r][0]), 0),
            "hp_source": chosen[r][1],
            "diverged": int(bad[i, sl].sum()),
        }
    return out, time.perf_counter() - t0


def _one(tree):
    return jax.tree.map(lambda x: jnp.asarray(x)[None], tree)


def run_study(
    dataset: str = "digits",
    orders=TEST_ORDERS,
    n_seeds: int = TEST_SEEDS,
    rows=ROWS,
    *,
    cfg: C.TrainConfig | None = None,
    src_cfg=None,
    progress=None,
    images: bool = True,
    stop=None,
) -> dict:
    """Run every row of ``rows`` on the test protocol; returns a dict of NumPy arrays, floats
    and strings (see :func:`summarise`, :func:`nnjax.brain.study_report.format_table`).

    ``dataset``: one of :data:`nnjax.brain.tasks.SPLIT_DATASETS`; ``orders``: distinct class
    orders (ints >= 0, or permutations for a class-incremental dataset), at least one;
    ``n_seeds`` >= 1; ``rows``: distinct names of :data:`ROWS`, at least one (all checked
    before anything runs, :func:`check_study`). ``cfg``/``src_cfg`` override the dataset's
    wake / sleep settings (the tuned hyperparameters were chosen for the defaults).
    ``progress``: a :class:`nnjax.brain.study_report.Progress` (its hooks go to the driver).
    ``stop`` (a :class:`nnjax.train.StopFlag`): a stop requested ends the study after the
    running task; the rows that finished every run are summarised as a whole study's, the
    others named in ``"unfinished"`` and ``"stopped"`` (absent for a whole study).
    """
    check_stop(stop, "run_study")
    orders, rows = check_study(dataset, orders, n_seeds, rows, cfg, src_cfg)
    d_cfg, d_src = H.configs(dataset)
    cfg, src_cfg = cfg or d_cfg, src_cfg or d_src
    keys = jax.random.split(jax.random.key(0), n_seeds)
    res = {
        "dataset": dataset, "orders": list(orders), "n_seeds": n_seeds, "rows": [],
        "wake": cfg._asdict(), "sleep": src_cfg._asdict(), "metrics": {}, "A": {}, "hp": {},
        "hp_source": {}, "seconds": {}, "task_groups": [], "scenario": "", "diverged": {},
    }  # fmt: skip
    finals = {}
    for names, _ in plan(dataset, rows, len(orders) * n_seeds):
        if stop is not None and stop.requested:
            break
        if progress is not None:
            progress.begin(names)
        hooks = () if progress is None else (progress.hook,)
        out, seconds = run_group(names, dataset, orders, keys, cfg, src_cfg, hooks, stop)
        if out is None:
            break
        for r in names:
            res["rows"].append(r)
            res["metrics"][r], res["A"][r] = out[r]["metrics"], out[r]["A"]
            res["hp"][r], res["hp_source"][r] = out[r]["hp"], out[r]["hp_source"]
            res["seconds"][r] = seconds / len(names)
            res["diverged"][r] = out[r]["diverged"]
            finals[r] = out[r]["final"]
        if progress is not None:
            progress.end(names, seconds)
    unfinished = [r for r in rows if r not in res["rows"]]
    if unfinished:
        res["unfinished"] = unfinished
        res["stopped"] = stopped_text(stop.reason, unfinished, bool(res["rows"]), "method")
    splits = [C.load_split(dataset, o) for o in orders]
    res["task_groups"] = [s.task_groups for s in splits]
    res["scenario"] = splits[0].scenario
    res["stats"] = summarise(res)
    if images and res["rows"]:
        res["images"] = _dream_images(finals, splits[0], cfg)
    return res


def check_study(dataset, orders, n_seeds, rows, cfg=None, src_cfg=None) -> tuple:
    """(orders, rows) as lists when the arguments of :func:`run_study` are valid, else a
    ValueError naming the argument and its valid values: a repeated order would count its runs
    twice (a smaller spread, a narrower interval: false certainty), an unknown row would be
    left out silently."""
    from nnjax.brain import sleep as S
    from nnjax.brain.dynamics import check_count

    if dataset not in C.SPLIT_DATASETS:
        raise ValueError(f"run_study: unknown dataset {dataset!r}; valid: {C.SPLIT_DATASETS}")
    check_count(n_seeds, "n_seeds", "run_study")
    orders = _names(orders, "orders")
    keys = [_order_key(o) for o in orders]
    if len(set(keys)) != len(keys):
        raise ValueError(f"run_study: orders must be distinct (a repeat counts its runs twice), "
                         f"got {orders}")  # fmt: skip
    _check_permutations(dataset, orders)
    rows = _names(rows, "rows")
    unknown = [r for r in rows if r not in ROWS]
    if unknown or len(set(rows)) != len(rows):
        what = f"unknown {unknown}" if unknown else f"a repeated row in {list(rows)}"
        raise ValueError(f"run_study: rows must be distinct names of {ROWS}; got {what}")
    if cfg is not None:
        C.check_train_config(cfg, "run_study")
    if src_cfg is not None:
        S.check_config(src_cfg, "run_study")
    return orders, rows


def _names(seq, name: str) -> list:
    """``seq`` as a non-empty list (a str is one name, not a sequence of them)."""
    if isinstance(seq, str) or not hasattr(seq, "__iter__"):
        raise ValueError(f"run_study: {name} must be a sequence, got {seq!r}")
    out = list(seq)
    if not out:
        raise ValueError(f"run_study: {name} is empty; give at least one")
    return out


def _check_permutations(dataset: str, orders) -> None:
    """A ValueError for an explicit class order that the dataset's split refuses: not a
    permutation of its classes, or any array for a permuted dataset (which takes int orders).
    It was found only when the first group loaded its split, after the study had begun."""
    for order in orders:
        if isinstance(order, int | np.integer):
            continue
        try:
            C.load_split(dataset, np.asarray(order))  # a few ms: the split is in memory
        except ValueError as e:
            raise ValueError(f"run_study: orders: {str(e).removeprefix('load_split: ')}") from None


def _order_key(order):
    """A hashable form of a class order: the int (>= 0), or the permutation as a tuple."""
    if isinstance(order, int | np.integer) and not isinstance(order, bool) and order >= 0:
        return int(order)
    if np.ndim(order) == 1 and np.asarray(order).dtype.kind in "iu":
        return tuple(np.asarray(order).tolist())
    raise ValueError(f"run_study: an order must be an int >= 0 or a permutation of the classes, "
                     f"got {order!r}")  # fmt: skip


def summarise(res: dict) -> dict:
    """Per row: :func:`nnjax.brain.scores.summary` of each metric and of the seen-accuracy
    curve after each task; the paired comparison of its final accuracy with sequential's and
    with SRC's over the runs (``vs_<ref>``, :func:`nnjax.brain.scores.paired`) and, with 2 or
    more class orders, over the orders (``vs_<ref>_orders``: each order's seeds averaged,
    :func:`nnjax.brain.scores_clustered.paired_clustered`; runs are order-major)."""
    m, out = res["metrics"], {}
    by_order = np.repeat(np.arange(len(res["orders"])), res["n_seeds"])  # run o * n_seeds + s
    for r in res["rows"]:
        row = {k: scores.summary(m[r][k]) for k in METRICS if k in m[r]}
        seen = np.asarray(m[r]["seen"])
        row["seen"] = [scores.summary(seen[:, t]) for t in range(seen.shape[1])]
        for ref in ("sequential", "src"):
            if ref in m and ref != r:
                row[f"vs_{ref}"] = scores.paired(m[r]["final"], m[ref]["final"])
                if len(res["orders"]) > 1:
                    row[f"vs_{ref}_orders"] = paired_clustered(m[r]["final"], m[ref]["final"],
                                                               by_order)  # fmt: skip
        out[r] = row
    return out


def _dream_images(finals, split, cfg) -> dict:
    """The images of :func:`_images` for the networks of sequential, SRC, generative replay
    and joint (the first order given, its first seed: ``--orders 7`` draws order 7's)."""
    keep = {"sequential": "sequential", "src": "src", "genreplay": "replay", "joint": "joint"}
    nets = {keep[k]: v for k, v in finals.items() if k in keep}
    if not nets:
        return {}
    model = C.make_model(cfg, split.n_classes)
    vae = D.make_replay_method(model, split.n_classes, split.X_tasks.shape[2])[1]
    return _images(nets, vae, model, split, cfg)


def _images(finals, vae, model, split, cfg) -> dict:
    """Activation maximisation (class-logit ascent, :func:`nnjax.brain.dreams.dream_all_classes`)
    images of the last network of each method (the first order given, its first seed) and
    dreams of the generative-replay VAE."""
    out = {}
    x0 = np.concatenate([x[:n] for x, n in zip(split.X_tasks, split.n_tasks)]).mean(0)
    for name, (params, extra) in finals.items():
        imgs, hist = D.dream_all_classes(
            model.apply, params, x0, jax.random.key(1), split.n_classes,
            image_shape=split.image_shape, steps=100, lr=0.05, l2=0.1, jitter=1,
        )  # fmt: skip
        out[f"actmax_{name}"] = np.asarray(imgs)
        out[f"actmax_{name}_objective"] = np.asarray(hist)
        if name == "replay":
            out["generator_samples"] = np.asarray(
                D.sample_dreams(vae, extra["gen"], jax.random.key(2), 20)
            )
    return out


def jsonable(x):
    """NumPy arrays -> lists (float64, 4 decimals), recursively, for json.dump; NaN and +-inf
    -> None, JSON's null (strict JSON has no NaN: ``allow_nan=False``; :func:`as_arrays`
    reads null back as NaN)."""
    if isinstance(x, float) and not np.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [jsonable(v) for v in x]
    if isinstance(x, np.ndarray | np.generic):
        return jsonable(np.round(x.astype(np.float64), 4).tolist())
    return x


def as_arrays(x, _numbers: bool = False):
    """The inverse of :func:`jsonable` for plotting: lists of numbers -> NumPy arrays, a null
    among them NaN; under ``stats`` (numbers only) a null number NaN too. A null elsewhere
    stays None (``hp``: a method without hyperparameters)."""
    if isinstance(x, dict):
        return {k: as_arrays(v, _numbers or k == "stats") for k, v in x.items()}
    if isinstance(x, list) and x and all(isinstance(v, dict) for v in x):
        return [as_arrays(v, _numbers) for v in x]
    if isinstance(x, list) and not any(isinstance(v, str) for v in x):
        return np.asarray(_nan_for_none(x))
    return np.nan if x is None and _numbers else x


def _nan_for_none(x):
    """A list of numbers (nested) with None -> NaN."""
    if isinstance(x, list):
        return [_nan_for_none(v) for v in x]
    return np.nan if x is None else x
