"""The continual-learning study behind ``nnjax sleep``: every method, class order and seed.

For each method one compiled program runs all (class order, seed) pairs,
``vmap_orders(vmap_seeds(run))``, through fit's driver
(:func:`nnjax.brain.continual.run_seeds`: one task per chunk, the wake losses checked,
compile and run timed apart). Runs are *paired*: the same (order, seed) gives every
method the same initial weights and the same mini-batch stream for task 0, so "SRC improves
every run" compares like with like. ``sequential`` and ``joint`` share one compiled program
(the task arrays of both are padded to one shape).
"""

import time

import jax
import numpy as np

from nnjax.brain import continual as C
from nnjax.brain import dreams as D
from nnjax.brain import sleep as S

LABELS = {
    "sequential": "no sleep (sequential)",
    "src": "SRC (sleep)",
    "replay": "generative replay",
    "joint": "joint (upper bound)",
}


def _stack(splits):
    arrays = [C.task_arrays(s) for s in splits]
    return jax.tree.map(lambda *a: np.stack(a), *arrays)


def run_sleep_study(
    dataset: str = "digits",
    orders=(0, 1, 2),
    n_seeds: int = 5,
    methods=("sequential", "src", "replay", "joint"),
    *,
    steps: int = 300,
    sleep_steps: int | None = None,
    src_params: S.SRCParams | None = None,
) -> dict:
    """Run the study; returns a dict of NumPy arrays and floats (see :func:`format_table`).

    ``A[method]`` (O, S, T, K) per-class test accuracy after each task (after sleep for SRC;
    ``A_wake["src"]`` before it), ``metrics[method]`` runs-flattened (O*S,) arrays.
    """
    cfg = C.TrainConfig(steps=steps)
    src_cfg = S.SRCConfig() if sleep_steps is None else S.SRCConfig(steps=sleep_steps)
    hp = src_params if src_params is not None else S.CHOSEN
    splits = [C.load_split(dataset, o) for o in orders]
    cums = [C.cumulative(s) for s in splits]
    N = max(s.X_tasks.shape[1] for s in cums)
    seq = [C.pad_tasks(s, N) for s in splits]
    cums = [C.pad_tasks(s, N) for s in cums]
    template = seq[0]
    d, K = template.X_tasks.shape[2], template.n_classes
    keys = jax.random.split(jax.random.key(0), n_seeds)
    model = C.make_model(cfg, K)

    def program(method):
        return C.seed_program(C.make_run(template, cfg, method), over="arrays")

    plain = program(None)  # sequential and joint share it: one compile
    replay_method, vae = D.make_replay_method(model, K, d)
    fns = {
        "sequential": (plain, seq, None),
        "joint": (plain, cums, None),
        "src": (program(S.make_src_method(template.image_shape, src_cfg)), seq, hp),
        "replay": (program(replay_method), seq, None),
    }
    counts = C.class_counts(template.y_test, K)
    res = {
        "dataset": dataset, "orders": list(orders), "n_seeds": n_seeds, "steps": steps,
        "sleep_steps": src_cfg.steps, "src_params": S.as_dict(hp), "A": {}, "A_wake": {},
        "metrics": {}, "seconds": {}, "task_classes": [s.task_classes for s in splits],
    }  # fmt: skip
    finals = {}
    for name in methods:
        f, data, h = fns[name]
        t0 = time.perf_counter()
        runs = C.run_seeds(f, _stack(data), keys, h, over="arrays")
        res["seconds"][name] = time.perf_counter() - t0
        res["A"][name], res["A_wake"][name] = runs.A_after, runs.A_wake
        res["metrics"][name] = _metrics(runs.A_after, splits, counts)
        if name == "src":
            res["metrics"]["src_wake"] = _metrics(runs.A_wake, splits, counts)
        finals[name] = jax.tree.map(lambda a: a[0, 0], runs.final)  # order 0, seed 0
        print(
            f"{name}: {res['seconds'][name]:.1f} s (compile {runs.compile_time:.1f} s "
            f"+ run {runs.run_time:.1f} s)",
            flush=True,
        )
    res["images"] = _images(finals, vae, model, template, cfg)
    return res


def _metrics(A, splits, counts) -> dict:
    per = [C.metrics(A[o], s.task_classes, counts) for o, s in enumerate(splits)]
    return {k: np.concatenate([m[k] for m in per]) for k in per[0]}


def _images(finals, vae, model, split, cfg) -> dict:
    """DeepDream images of the last network of each method (order 0, seed 0) and dreams of the
    generative-replay VAE."""
    out = {}
    x0 = np.concatenate([x[:n] for x, n in zip(split.X_tasks, split.n_tasks)]).mean(0)
    for name, (params, extra) in finals.items():
        imgs, hist = D.dream_all_classes(
            model.apply, params, x0, jax.random.key(1), split.n_classes,
            image_shape=split.image_shape, steps=100, lr=0.05, l2=0.1, jitter=1,
        )  # fmt: skip
        out[f"deepdream_{name}"] = np.asarray(imgs)
        out[f"deepdream_{name}_objective"] = np.asarray(hist)
        if name == "replay":
            out["generator_samples"] = np.asarray(
                D.sample_dreams(vae, extra["gen"], jax.random.key(2), 20)
            )
    return out


def format_table(res: dict) -> str:
    """A Markdown table of mean ± std over the runs (orders x seeds)."""
    runs = len(res["orders"]) * res["n_seeds"]
    lines = [
        f"{res['dataset']}: 5 tasks of 2 classes, {len(res['orders'])} class orders x "
        f"{res['n_seeds']} seeds = {runs} runs (mean ± std over runs; accuracies in %)",
        "",
        "| method | final 10-class acc | old-task acc | forgetting | seconds |",
        "|---|---|---|---|---|",
    ]
    m = res["metrics"]
    rows = [(k, LABELS.get(k, k)) for k in ("sequential", "src_wake", "src", "replay", "joint")]
    for key, label in rows:
        if key not in m:
            continue
        if key == "src_wake":
            label = "SRC, before the last sleep"
        f, o, g = (100 * m[key][x] for x in ("final", "old", "forgetting"))
        sec = res["seconds"].get(key)
        lines.append(
            f"| {label} | {f.mean():.1f} ± {f.std():.1f} | {o.mean():.1f} ± {o.std():.1f} | "
            f"{g.mean():.1f} ± {g.std():.1f} | {'' if sec is None else f'{sec:.0f}'} |"
        )
    if "sequential" in m:
        base = m["sequential"]["final"]
        for key in ("src", "replay"):
            if key in m:
                gain = 100 * (m[key]["final"] - base)
                lines.append(
                    f"\n{LABELS[key]} - sequential, final accuracy: {gain.mean():+.1f} ± "
                    f"{gain.std():.1f} points; improved {int((gain > 0).sum())}/{len(gain)} runs"
                    f" (min gain {gain.min():+.1f})"
                )
    return "\n".join(lines)


def jsonable(x):
    """NumPy arrays -> lists, recursively, for json.dump."""
    if isinstance(x, dict):
        return {k: jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [jsonable(v) for v in x]
    if isinstance(x, np.ndarray | np.generic):
        return np.round(x.astype(np.float64), 4).tolist()
    return x


def as_arrays(x):
    """The inverse of :func:`jsonable` for plotting: lists of numbers -> NumPy arrays."""
    if isinstance(x, dict):
        return {k: as_arrays(v) for k, v in x.items()}
    if isinstance(x, list) and x and all(isinstance(v, dict) for v in x):
        return [as_arrays(v) for v in x]
    if isinstance(x, list) and not any(isinstance(v, str) for v in x):
        return np.asarray(x)
    return x


def write_plots(res: dict, out: str) -> None:
    """accuracy.png (seen-class accuracy after each task), heatmap.png (per-class accuracy,
    class order 0, mean over seeds), dreams.png (DeepDream per class, generator samples).
    ``res`` from :func:`run_sleep_study`, or ``as_arrays(json.load(...))`` of its results.json."""
    import os

    from nnjax.plotting import subplots

    m = res["metrics"]
    fig, ax = subplots(figsize=(6, 4))
    for key in ("sequential", "src", "replay", "joint"):
        if key in m:
            s = 100 * m[key]["seen"]
            x = np.arange(1, s.shape[1] + 1)
            ax.errorbar(x, s.mean(0), yerr=s.std(0), marker="o", capsize=3, label=LABELS[key])
            ax.set_xticks(x)
    ax.set(xlabel="after task", ylabel="accuracy on the classes seen so far (%)", ylim=(0, 101),
           title=f"split {res['dataset']}: class-incremental")  # fmt: skip
    ax.legend()
    fig.tight_layout()
    fig.savefig(os.path.join(out, "accuracy.png"), dpi=110)

    names = [k for k in ("sequential", "src", "replay", "joint") if k in res["A"]]
    fig, axes = subplots(1, len(names), figsize=(3.2 * len(names), 2.8), squeeze=False)
    order0 = np.asarray(res["task_classes"][0]).ravel().astype(int)
    for i, (ax, key) in enumerate(zip(axes[0], names)):
        A = 100 * res["A"][key][0].mean(0)[:, order0]  # (T, K), columns in order-0 order
        im = ax.imshow(A, vmin=0, vmax=100, cmap="viridis", aspect="auto")
        ax.set(title=LABELS[key], xlabel="class", ylabel="after task" if i == 0 else None)
        ax.set_xticks(range(len(order0)), [str(c) for c in order0])
        ax.set_yticks(range(A.shape[0]), [str(t + 1) for t in range(A.shape[0])])
    fig.colorbar(im, ax=axes[0].tolist(), label="test accuracy (%)")
    fig.savefig(os.path.join(out, "heatmap.png"), dpi=110, bbox_inches="tight")

    _plot_dreams(res, out)


def _plot_dreams(res, out) -> None:
    import os

    from nnjax.plotting import subplots

    imgs = res["images"]
    rows = [
        k for k in ("deepdream_joint", "deepdream_sequential", "generator_samples") if k in imgs
    ]
    if not rows:
        return
    shape = (8, 8) if res["dataset"] == "digits" else None
    fig, axes = subplots(len(rows), 10, figsize=(10, 1.2 * len(rows) + 0.4), squeeze=False)
    titles = {
        "deepdream_joint": "DeepDream, joint net",
        "deepdream_sequential": "DeepDream, no-sleep net",
        "generator_samples": "VAE dreams (replay)",
    }
    for r, key in enumerate(rows):
        for c in range(10):
            ax = axes[r, c]
            x = imgs[key][c]
            if shape:
                ax.imshow(x.reshape(shape), cmap="gray_r")
            else:
                ax.plot(x)
            ax.set_xticks([])
            ax.set_yticks([])
            if key.startswith("deepdream"):
                ax.set_title(str(c), fontsize=8)
        axes[r, 0].set_ylabel(titles[key], fontsize=7)
    fig.tight_layout()
    fig.savefig(os.path.join(out, "dreams.png"), dpi=110)
