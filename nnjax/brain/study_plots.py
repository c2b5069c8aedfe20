"""The figures of the continual-learning study (``nnjax sleep --out``): accuracy.png,
heatmap.png and dreams.png, from :func:`nnjax.brain.study.run_study`'s result or its
results.json read back (:func:`nnjax.brain.study.as_arrays`). Matplotlib is imported here
only, when a figure is drawn."""

import numpy as np

from nnjax.brain.study import LABELS

HEATMAP_ROWS = ("sequential", "ewc", "replay1", "genreplay", "src", "joint")
"""The rows heatmap.png shows when the study ran any of them (else its first six rows)."""


def write_plots(res: dict, out: str) -> list[str]:
    """accuracy.png (accuracy on the groups seen so far after each task, mean and 95% CI over
    runs, every row), heatmap.png (per-group accuracy after each task, the first of the
    study's class orders, mean over seeds; the rows of :data:`HEATMAP_ROWS` that ran, else
    the first six), dreams.png (:func:`_plot_dreams`). ``res`` from
    :func:`nnjax.brain.study.run_study`, or ``as_arrays(json.load(...))`` of its
    results.json. Returns the names of the files written."""
    import os

    from nnjax.io import atomic_save_figure
    from nnjax.plotting import subplots

    st, rows = res["stats"], list(res["rows"])
    fig, ax = subplots(figsize=(7.5, 4.5))
    for i, r in enumerate(rows):
        mean = 100 * np.array([s["mean"] for s in st[r]["seen"]])
        ci = 100 * np.array([s["ci"] for s in st[r]["seen"]])
        x = np.arange(1, len(mean) + 1) + 0.03 * (i - len(rows) / 2)
        ax.errorbar(x, mean, yerr=ci, marker="o", ms=3, capsize=2, label=LABELS.get(r, r),
                    color=f"C{i % 10}", ls="-" if i < 10 else "--")  # fmt: skip
    n = len(res["orders"]) * res["n_seeds"]
    ax.set(xlabel="after task", ylabel="accuracy on the tasks seen so far (%)", ylim=(0, 101),
           title=f"{res['dataset']}: mean and 95% CI over {n} runs")  # fmt: skip
    ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    atomic_save_figure(fig, os.path.join(out, "accuracy.png"), dpi=110)

    names = [r for r in HEATMAP_ROWS if r in rows] or rows[:6]  # --methods si: no empty figure
    fig, axes = subplots(1, len(names), figsize=(2.9 * len(names), 2.8), squeeze=False)
    groups = np.asarray(res["task_groups"][0]).ravel().astype(int)
    for i, (ax, r) in enumerate(zip(axes[0], names)):
        A = 100 * np.asarray(res["A"][r])[0].mean(0)[:, groups]  # (T, G), the first order's columns
        im = ax.imshow(A, vmin=0, vmax=100, cmap="viridis", aspect="auto")
        ax.set_title(LABELS.get(r, r), fontsize=8)
        ax.set(xlabel="class" if res["scenario"] == "class" else "task",
               ylabel="after task" if i == 0 else None)  # fmt: skip
        ax.set_xticks(range(len(groups)), [str(c) for c in groups])
        ax.set_yticks(range(A.shape[0]), [str(t + 1) for t in range(A.shape[0])])
    fig.colorbar(im, ax=axes[0].tolist(), label="test accuracy (%)")
    atomic_save_figure(fig, os.path.join(out, "heatmap.png"), dpi=110, bbox_inches="tight")

    return ["accuracy.png", "heatmap.png"] + (["dreams.png"] if _plot_dreams(res, out) else [])


DREAM_ROWS = {
    "actmax_joint": "act. max., joint",
    "actmax_sequential": "act. max., no sleep",
    "actmax_src": "act. max., SRC",
    "actmax_replay": "act. max., gen. replay",
    "generator_samples": "VAE dreams (replay)",
}
"""dreams.png's rows (the keys of :func:`nnjax.brain.study._images`' images) and their
labels, top to bottom."""


def _plot_dreams(res, out) -> bool:
    """dreams.png: one row per image set :func:`nnjax.brain.study._images` made, in the order of
    :data:`DREAM_ROWS` (activation maximisation of joint, sequential, SRC and generative
    replay's classifier, then the VAE's dreams), up to 10 images a row; whether it was
    written (none of those methods ran, or ``--no-images``: an earlier study's is removed)."""
    import os

    from nnjax.io import atomic_save_figure
    from nnjax.plotting import subplots

    imgs = res.get("images") or {}  # none with --no-images
    rows = [k for k in DREAM_ROWS if k in imgs]
    if not rows:  # an earlier study's dreams would sit beside these results
        stale = os.path.join(out, "dreams.png")
        if os.path.isfile(stale) or os.path.islink(stale):
            os.remove(stale)
        return False
    shape = (8, 8) if res["dataset"] == "digits" else None
    fig, axes = subplots(len(rows), 10, figsize=(10, 1.2 * len(rows) + 0.4), squeeze=False)
    for r, key in enumerate(rows):
        for c in range(10):
            ax = axes[r, c]
            if c >= len(imgs[key]):  # fewer than 10 classes
                ax.axis("off")
                continue
            x = imgs[key][c]
            if shape:
                ax.imshow(x.reshape(shape), cmap="gray_r")
            else:
                ax.plot(x)
            ax.set_xticks([])
            ax.set_yticks([])
            if key.startswith("actmax"):
                ax.set_title(str(c), fontsize=8)
        axes[r, 0].set_ylabel(DREAM_ROWS[key], fontsize=7)
    fig.tight_layout()
    atomic_save_figure(fig, os.path.join(out, "dreams.png"), dpi=110)
    return True
