"""Aggregates over seeds, the learning-rate choice, and the written outputs (Markdown, CSV, JSON).

Over the S seeds of one (optimizer, learning rate): mean, standard deviation (sample, ddof=1;
0 for a single seed) and median. A run *diverged* when its loss became nan or inf, or its
final fit-set training loss is above k = 10 times its initial loss
(:func:`nnjax.compare.select.diverged`, where k is justified); it never wins the
learning-rate choice, and the report states the rule and counts such runs.

The learning rate of each optimizer is chosen on the validation split, never on the test
split (see :func:`best_index`).
"""

import csv
import io
import json
import os
from typing import Any

import numpy as np

from nnjax.compare.select import CRITERIA, DIVERGENCE_FACTOR, best_index, diverged, final
from nnjax.compare.study import OptimizerRuns, StudyResult
from nnjax.io import atomic_write_text
from nnjax.optim import FULL_BATCH

UPDATE_EQUATIONS = r"""
With parameters $\theta$, the gradient $g_t = \nabla_\theta J(\theta_{t-1})$ of the loss
on the batch (all of the fit set for GD, a mini-batch otherwise) and learning rate $\eta$:

* **GD** (full batch) and **SGD** (mini-batch): $\theta_t = \theta_{t-1} - \eta\, g_t$
* **SGD with momentum** ($\mu = 0.9$, Optax's form): $v_t = \mu v_{t-1} + g_t$,
  $\theta_t = \theta_{t-1} - \eta\, v_t$
* **Adam** ($\beta_1 = 0.9$, $\beta_2 = 0.999$, $\epsilon = 10^{-8}$):
  $m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t$, $s_t = \beta_2 s_{t-1} + (1-\beta_2) g_t^2$,
  $\hat m_t = m_t / (1-\beta_1^t)$, $\hat s_t = s_t / (1-\beta_2^t)$,
  $\theta_t = \theta_{t-1} - \eta\, \hat m_t / (\sqrt{\hat s_t} + \epsilon)$
"""

# Published figures a dataset's report sets nnjax's numbers against: (citation, figure,
# the differences in one paragraph).
LITERATURE: dict[str, tuple[str, float, str]] = {
    "mnist1d": (
        "Greydanus & Kobak, *Scaling down deep learning with MNIST-1D* (2020; ICML 2024), "
        "table of test accuracies on the canonical split (4000 train / 1000 test): logistic "
        "regression 32%, MLP 68%, CNN 94%, GRU 91%",
        0.68,
        "The split and the test set are the same (the package's defaults, "
        "`nnjax.data.load('mnist1d')`). The models and budgets are not: the paper's MLP is "
        "40-100-100-10 with a residual middle layer (`nnjax.models.resmlp`), trained on all "
        "4000 training examples with Adam at 1e-2, batch 100, for several thousand updates; "
        "this study's default is a one-hidden-layer 40-128-10 MLP trained on 80% of the "
        "training split (the rest is held out to choose the learning rate) for the preset's "
        "epochs, with inputs standardised per feature. A smaller network, fewer examples and "
        "fewer updates: expect a lower figure than 68%, and read the gap as that, not as a "
        "defect of the optimizers.",
    ),
}


# the per-epoch metrics whose final value the summary and the per-run rows report
FINAL_METRICS = (
    "train_loss",
    "train_accuracy",
    "val_loss",
    "val_accuracy",
    "test_loss",
    "test_accuracy",
)


def steps_to_target(runs: OptimizerRuns, target: float) -> np.ndarray:
    """(L, S) number of updates until the training loss on the whole fit set, measured after
    each epoch, first reaches ``target`` or below (nan: never). Measured per epoch, so the
    count is a multiple of the steps per epoch."""
    hit = runs.metrics["train_loss"] <= target  # nan compares False
    first = np.argmax(hit, axis=-1)
    return np.where(hit.any(axis=-1), (first + 1.0) * runs.steps_per_epoch, np.nan)


def seed_stats(a: np.ndarray) -> dict[str, np.ndarray]:
    """mean, std (ddof=1; 0 for one seed), median, min, max over the last axis (the seeds)."""
    a = np.asarray(a, dtype=float)
    n = a.shape[-1]
    std = np.std(a, axis=-1, ddof=1) if n > 1 else np.zeros(a.shape[:-1])
    return {
        "mean": np.mean(a, axis=-1),
        "std": std,
        "median": np.median(a, axis=-1),
        "min": np.min(a, axis=-1),
        "max": np.max(a, axis=-1),
    }


def summarize(result: StudyResult) -> dict[str, dict[str, Any]]:
    """Per optimizer: the chosen learning rate and the seed statistics of every final metric
    (and of the steps to the target loss) at that rate, plus timings. Plain Python values."""
    out = {}
    for name, runs in result.runs.items():
        b = best_index(runs, result.study.select)
        entry: dict[str, Any] = {
            "best_lr": float(runs.learning_rates[b]),
            "best_index": b,
            "batch_size": runs.batch_size,
            "steps_per_epoch": runs.steps_per_epoch,
            "updates": runs.steps_per_epoch * result.study.epochs,
            "compile_time_s": runs.compile_time,
            "run_time_s": runs.run_time,
            "run_time_per_run_s": runs.run_time / runs.step_loss.shape[0] / runs.step_loss.shape[1],
            "diverged": int(diverged(runs)[b].sum()),
        }
        for m in FINAL_METRICS:
            entry[m] = {k: float(v[b]) for k, v in seed_stats(final(runs, m)).items()}
        steps = steps_to_target(runs, result.study.target_loss)[b]
        reached = np.isfinite(steps)
        entry["steps_to_target"] = {
            "median": float(np.median(steps)) if reached.all() else float("nan"),
            "reached": int(reached.sum()),
            "values": [None if np.isnan(s) else int(s) for s in steps],
        }
        out[name] = entry
    return out


def _device() -> str:
    import jax

    d = jax.devices()[0]
    kind = "" if d.device_kind == d.platform else f" ({d.device_kind})"
    return f"{d.platform.upper()}{kind}"


def _f(x: float, digits: int = 4) -> str:
    return "diverged" if not np.isfinite(x) else f"{x:.{digits}f}"


def _pm(stats: dict, digits: int = 4) -> str:
    if not np.isfinite(stats["mean"]):
        return "diverged"
    return f"{stats['mean']:.{digits}f} ± {stats['std']:.{digits}f}"


def _lr(x: float) -> str:
    return f"{x:.3g}"


def markdown(result: StudyResult, summary: dict | None = None, plots: tuple[str, ...] = ()) -> str:
    """The report: setup, the best-learning-rate table, every learning rate, plots, equations."""
    summary = summary or summarize(result)
    lines = [f"# Optimizer comparison on `{result.study.dataset}`", "", *_setup(result)]
    lines += _best_table(result, summary) + _timing(result) + _every_rate_table(result, summary)
    lines += _literature(result, summary)
    if plots:
        lines += ["", "## Plots", ""]
        lines += [f"![{p}]({p})" for p in plots]
    lines += ["", "## Update equations", "", UPDATE_EQUATIONS.strip(), ""]
    return "\n".join(lines)


def _setup(result: StudyResult) -> list[str]:
    """The bullet list: model, data, epochs and batches, seeds, rates, how a rate is chosen."""
    st, sz = result.study, result.sizes
    _, _, crit = CRITERIA[st.select]
    val_where = (
        f"a held-out validation split ({sz['n_val']} examples, {st.val_fraction:.0%} of the "
        "training split, stratified)"
        if result.held_out_val
        else "the fit set itself (no held-out split for this dataset)"
    )
    batches = ", ".join(
        f"{n}: {'full batch' if r.batch_size is None else r.batch_size} "
        f"({r.steps_per_epoch} update{'s' if r.steps_per_epoch > 1 else ''}/epoch)"
        for n, r in result.runs.items()
    )
    rates = "; ".join(
        f"{n}: {', '.join(_lr(x) for x in r.learning_rates)}" for n, r in result.runs.items()
    )
    return [
        f"* Model: `{result.model_name}`, softmax cross-entropy; {sz['n_features']} features, "
        f"{sz['n_classes']} classes.",
        f"* Data: {sz['n_fit']} fit / {sz['n_val']} validation / {sz['n_test']} test examples "
        f"(data seed {st.data_seed}; the validation part is split off the training split).",
        f"* {st.epochs} epochs; batch size: {batches}.",
        f"* Seeds {', '.join(map(str, st.seeds))} (each seed fixes the initial weights and the "
        "shuffles; the same seeds for every learning rate and optimizer).",
        f"* Learning rates: {rates}",
        f"* **Learning-rate choice**: per optimizer, the rate with the {crit} (mean over seeds, "
        f"after the last epoch) on {val_where}. The test split is never used to choose.",
        f"* **Diverged**: a run whose loss became nan/inf, or whose final training loss on the "
        f"fit set exceeds {DIVERGENCE_FACTOR:g}x its initial loss (the loss of "
        "its first batch at the initial weights, about log K for K classes: ten times the loss "
        "of a uniform guess is a blown-up run, not a slow one). A diverged run never wins the "
        "learning-rate choice; the last table counts them.",
        f"* Steps to target: updates until the loss on the whole fit set (measured after each "
        f"epoch) first reaches {st.target_loss:g} (median over seeds; `n/{len(st.seeds)}` "
        "runs reached it).",
    ]


def _best_table(result: StudyResult, summary: dict) -> list[str]:
    """Each optimizer at its chosen rate: losses, accuracy, steps to target, time."""
    n_seeds = len(result.study.seeds)
    lines = [
        "",
        "## Best learning rate per optimizer (mean ± std over seeds, after the last epoch)",
        "",
        "| optimizer | best lr | train loss | val loss | test loss | test accuracy "
        "| test acc. median | steps to target | run time / run | compile |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, s in summary.items():
        stt = s["steps_to_target"]
        steps = (
            f"{stt['median']:.0f} ({stt['reached']}/{n_seeds})"
            if np.isfinite(stt["median"])
            else f"not all ({stt['reached']}/{n_seeds})"
        )
        lines.append(
            f"| {name} | {_lr(s['best_lr'])} | {_pm(s['train_loss'])} | {_pm(s['val_loss'])} "
            f"| {_pm(s['test_loss'])} | **{_pm(s['test_accuracy'])}** "
            f"| {_f(s['test_accuracy']['median'])} | {steps} "
            f"| {s['run_time_per_run_s'] * 1e3:.1f} ms | {s['compile_time_s']:.1f} s |"
        )
    return lines


def _timing(result: StudyResult) -> list[str]:
    """What the time columns mean, and the whole study's compile and run time."""
    compile_s = sum(r.compile_time for r in result.runs.values())
    run_s = sum(r.run_time for r in result.runs.values())
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return [
        "",
        "Run time / run: the compiled run time of all runs of the optimizer (trained together, "
        "vmapped) divided by their number; compile time apart. Whole study: compile "
        f"{compile_s:.1f} s + run {run_s:.1f} s on {_device()} ({os.cpu_count()} cores; "
        f"1-minute load average {load:.1f} when the report was written).",
    ]


def _every_rate_table(result: StudyResult, summary: dict) -> list[str]:
    """Every learning rate of every optimizer, the chosen one marked, diverged runs counted."""
    lines = [
        "",
        "## Every learning rate (mean ± std over seeds, after the last epoch)",
        "",
        "| optimizer | lr | train loss | val loss | val accuracy | test accuracy | diverged |",
        "|---|---|---|---|---|---|---|",
    ]
    metrics = ("train_loss", "val_loss", "val_accuracy", "test_accuracy")
    for name, runs in result.runs.items():
        b = summary[name]["best_index"]
        div = diverged(runs).sum(axis=-1)
        stats = {m: seed_stats(final(runs, m)) for m in metrics}
        for i, lr in enumerate(runs.learning_rates):
            row = {m: {k: v[i] for k, v in s.items()} for m, s in stats.items()}
            mark = " (chosen)" if i == b else ""
            lines.append(
                f"| {name} | {_lr(lr)}{mark} | {_pm(row['train_loss'])} | {_pm(row['val_loss'])} "
                f"| {_pm(row['val_accuracy'])} | {_pm(row['test_accuracy'])} "
                f"| {div[i]}/{len(result.study.seeds)} |"
            )
    return lines


def _literature(result: StudyResult, summary: dict) -> list[str]:
    """The "against the literature" section of a dataset with a published figure, else []."""
    if result.study.dataset not in LITERATURE:
        return []
    cite, figure, differences = LITERATURE[result.study.dataset]
    acc = {n: s["test_accuracy"]["mean"] for n, s in summary.items()}
    best = max(acc, key=lambda n: -np.inf if np.isnan(acc[n]) else acc[n])
    return [
        "",
        "## Against the literature",
        "",
        f"Published: {cite}. The MLP's **{figure:.0%}** against nnjax's best mean test accuracy "
        f"here, **{acc[best]:.1%}** ({best} at its chosen rate; "
        + ", ".join(f"{n} {a:.1%}" for n, a in acc.items())
        + ").",
        "",
        differences,
    ]


def run_rows(result: StudyResult) -> list[dict[str, Any]]:
    """One flat row per run (final metrics, steps to target, timings): the CSV's rows."""
    summary_best = {n: best_index(r, result.study.select) for n, r in result.runs.items()}
    rows = []
    for name, runs in result.runs.items():
        L, S = runs.step_loss.shape[:2]
        steps = steps_to_target(runs, result.study.target_loss)
        div = diverged(runs)
        for i in range(L):
            for j in range(S):
                row = {
                    "optimizer": name,
                    "learning_rate": float(runs.learning_rates[i]),
                    "seed": int(runs.seeds[j]),
                    "chosen_lr": i == summary_best[name],
                    "batch_size": "full" if runs.batch_size is None else runs.batch_size,
                    "epochs": result.study.epochs,
                    "updates": runs.steps_per_epoch * result.study.epochs,
                }
                for m in FINAL_METRICS:
                    row[m] = float(final(runs, m)[i, j])
                row["steps_to_target"] = None if np.isnan(steps[i, j]) else int(steps[i, j])
                row["diverged"] = bool(div[i, j])
                row["run_time_s"] = runs.run_time / (L * S)
                row["compile_time_s"] = runs.compile_time
                rows.append(row)
    return rows


def _clean(x: float) -> float | None:
    """JSON has no nan/inf: they become null."""
    x = float(x)
    return round(x, 7) if np.isfinite(x) else None


def to_json(result: StudyResult, summary: dict | None = None) -> dict[str, Any]:
    """Everything: the study, the summary, and every run with its per-step loss and per-epoch
    metrics (nan/inf as null)."""
    summary = summary or summarize(result)
    runs_out = []
    rows = iter(run_rows(result))
    for runs in result.runs.values():
        L, S = runs.step_loss.shape[:2]
        for i in range(L):
            for j in range(S):
                row = next(rows)
                row = {k: (_clean(v) if isinstance(v, float) else v) for k, v in row.items()}
                row["step_loss"] = [_clean(v) for v in runs.step_loss[i, j]]
                row["epoch_metrics"] = {
                    k: [_clean(v) for v in a[i, j]] for k, a in runs.metrics.items()
                }
                runs_out.append(row)
    st = result.study
    study = {
        "dataset": st.dataset,
        "model": result.model_name,
        "optimizers": list(st.optimizers),
        "learning_rates": {n: r.learning_rates.tolist() for n, r in result.runs.items()},
        "seeds": list(st.seeds),
        "epochs": st.epochs,
        "batch_size": st.batch_size,
        "full_batch": [n for n in st.optimizers if n in FULL_BATCH],
        "val_fraction": st.val_fraction,
        "held_out_val": result.held_out_val,
        "target_loss": st.target_loss,
        "select": st.select,
        "data_seed": st.data_seed,
        **result.sizes,
    }

    def clean_tree(x):
        if isinstance(x, dict):
            return {k: clean_tree(v) for k, v in x.items()}
        if isinstance(x, list):
            return [clean_tree(v) for v in x]
        return _clean(x) if isinstance(x, float) else x

    return {"study": study, "summary": clean_tree(summary), "runs": runs_out}


def write_csv(path: str, rows: list[dict[str, Any]]) -> None:
    """``rows`` as CSV, written atomically (:func:`nnjax.io.atomic_write_text`)."""
    buf = io.StringIO(newline="")
    w = csv.DictWriter(buf, fieldnames=list(rows[0]))
    w.writeheader()
    w.writerows({k: ("" if v is None else v) for k, v in r.items()} for r in rows)
    atomic_write_text(path, buf.getvalue())


def write_report(result: StudyResult, out: str, *, plots: bool = True) -> dict[str, str]:
    """Write report.md, runs.csv, runs.json and (``plots=True``) the PNGs into ``out``, each
    atomically, so a full disk or a kill leaves whole files or none. Returns {kind: path}."""
    os.makedirs(out, exist_ok=True)
    summary = summarize(result)
    paths = {"csv": os.path.join(out, "runs.csv"), "json": os.path.join(out, "runs.json")}
    write_csv(paths["csv"], run_rows(result))
    atomic_write_text(paths["json"], json.dumps(to_json(result, summary), separators=(",", ":")))
    pngs: tuple[str, ...] = ()
    if plots:
        from nnjax.compare.plot import plot_all

        written = plot_all(result, out)
        paths.update(written)
        pngs = tuple(os.path.basename(p) for p in written.values())
    paths["report"] = os.path.join(out, "report.md")
    atomic_write_text(paths["report"], markdown(result, summary, pngs))
    return paths
