"""PNG plots of a run: MLP throughput vs batch size per implementation; vmap scaling.

Drawn on stand-alone Figures (:func:`nnjax.plotting.subplots`): importing this module no
longer switches the process's backend to Agg (a notebook lost its inline figures), and a
figure whose save fails is not left open in pyplot (it was closed after the save only).
"""

from pathlib import Path

from nnjax.io import atomic_save_figure
from nnjax.plotting import subplots


def throughput(results: dict, path: Path) -> bool:
    """examples/s vs batch size (log-log), one panel per model, one line per implementation."""
    mlp = results.get("mlp") or []
    models = list(dict.fromkeys(c["model"] for c in mlp))
    if not models:
        return False
    fig, axes = subplots(1, len(models), figsize=(6 * len(models), 4.5), squeeze=False)
    for ax, model in zip(axes[0], models):
        cfgs = sorted((c for c in mlp if c["model"] == model), key=lambda c: c["batch_size"])
        names = list(dict.fromkeys(n for c in cfgs for n in c["rows"]))
        for name in names:
            pts = [(c["batch_size"], c["rows"][name]) for c in cfgs if name in c["rows"]]
            xs = [b for b, _ in pts]
            ys = [r["examples_per_s"] for _, r in pts]
            style = "-" if name.startswith("nnjax") else "--"
            ax.plot(xs, ys, style, marker="o", label=pts[0][1]["label"])
        ax.set(xscale="log", yscale="log", xlabel="batch size", ylabel="training examples / s")
        ax.set_title(model)
        ax.grid(True, which="both", alpha=0.3)
    axes[0][-1].legend(fontsize=8, loc="best")
    fig.suptitle(f"MLP training throughput, {results['device']}, {results['date']}")
    fig.tight_layout()
    atomic_save_figure(fig, path, dpi=110)
    return True


def vmap_scaling(results: dict, path: Path) -> bool:
    """Time per model (ms) vs the number N of vmapped models, log-log."""
    rows = (results.get("vmap") or {}).get("rows")
    if not rows:
        return False
    ns = sorted(rows, key=int)
    fig, ax = subplots(figsize=(5.5, 4))
    ax.plot([int(n) for n in ns], [rows[n]["per_model_ms"] for n in ns], marker="o")
    ax.set(
        xscale="log",
        yscale="log",
        xlabel="N models in one jit (vmap)",
        ylabel="ms per model (whole run)",
    )
    ax.set_title(f"vmap scaling: {results['vmap']['model']}", fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    atomic_save_figure(fig, path, dpi=110)
    return True
