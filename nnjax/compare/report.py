"""Aggregates over seeds, the learning-rate choice, and the Markdown report (the files, CSV,
JSON and plots, are rendered and written by :mod:`nnjax.compare.files`).

Over the S seeds of one (optimizer, learning rate): mean, standard deviation (sample, ddof=1:
sqrt(sum_s (a_s - mean)^2 / (S - 1)); undefined for a single seed, so nan there, shown "n/a"
and null in the JSON) and median. A run *diverged* when its loss became nan or inf, or its
final fit-set training loss is above k = 10 times its initial loss
(:func:`nnjax.compare.select.diverged`, where k is justified); it never wins the
learning-rate choice, and the report states the rule and counts such runs. An optimizer whose
every rate has a diverged run has no chosen rate: "no rate converged", no numbers.

The learning rate of each optimizer is chosen on the validation split, never on the test
split (see :func:`best_index`).
"""

import os
from typing import Any

import numpy as np

from nnjax.compare.select import (
    CRITERIA,
    DIVERGENCE_FACTOR,
    NO_RATE,
    best_index,
    diverged,
    final,
)
from nnjax.compare.study import OptimizerRuns, StudyResult
from nnjax.data import NO_SPLIT

_MOMENTS = (
    r"$m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t$, $s_t = \beta_2 s_{t-1} + (1-\beta_2) g_t^2$, "
    r"$\hat m_t = m_t / (1-\beta_1^t)$, $\hat s_t = s_t / (1-\beta_2^t)$"
)
_ADAM = r"($\beta_1 = 0.9$, $\beta_2 = 0.999$, $\epsilon = 10^{-8}$ outside the root)"
# each optimizer's update with nnjax.optim's defaults, in Optax's conventions
EQUATIONS: dict[str, str] = {
    "gd": r"**GD**: $\theta_t = \theta_{t-1} - \eta\, g_t$",
    "sgd": r"**SGD**: $\theta_t = \theta_{t-1} - \eta\, g_t$",
    "momentum": r"**SGD with momentum** ($\mu = 0.9$, Optax's form): "
    r"$v_t = \mu v_{t-1} + g_t$, $\theta_t = \theta_{t-1} - \eta\, v_t$",
    "nesterov": r"**Nesterov momentum** ($\mu = 0.9$, Optax's form): "
    r"$v_t = \mu v_{t-1} + g_t$, $\theta_t = \theta_{t-1} - \eta\, (g_t + \mu v_t)$",
    "adam": rf"**Adam** {_ADAM}: {_MOMENTS}, "
    r"$\theta_t = \theta_{t-1} - \eta\, \hat m_t / (\sqrt{\hat s_t} + \epsilon)$",
    "adamw": rf"**AdamW** {_ADAM[:-1]}, decoupled weight decay $\lambda = 10^{{-4}}$): "
    rf"{_MOMENTS}, $\theta_t = \theta_{{t-1}} - \eta\, (\hat m_t / (\sqrt{{\hat s_t}} + "
    r"\epsilon) + \lambda \theta_{t-1})$",
    "rmsprop": r"**RMSProp** ($\rho = 0.9$, $s_0 = 0$, $\epsilon = 10^{-8}$ inside the root): "
    r"$s_t = \rho s_{t-1} + (1-\rho) g_t^2$, $\theta_t = \theta_{t-1} - \eta\, g_t / "
    r"\sqrt{s_t + \epsilon}$",
    "adagrad": r"**Adagrad** ($s_0 = 0.1$, $\epsilon = 10^{-7}$ inside the root): "
    r"$s_t = s_{t-1} + g_t^2$, $\theta_t = \theta_{t-1} - \eta\, g_t / \sqrt{s_t + \epsilon}$",
}


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


def update_equations(names, full_batch=()) -> str:
    """The update equations of the optimizers ``names`` (those the study ran), in their
    order, after what ``g_t`` is for them: the gradient on all of the fit set for those in
    ``full_batch`` (gd, and any whose batch held the whole fit set), on a mini-batch for
    the others."""
    full = [n for n in names if n in full_batch]
    mini = [n for n in names if n not in full_batch]
    parts = [f"all of the fit set for {', '.join(full)}"] if full else []
    parts += [f"a mini-batch for {', '.join(mini)}"] if mini else []
    head = (
        r"With parameters $\theta$, the gradient $g_t = \nabla_\theta J(\theta_{t-1})$ of the "
        rf"loss on the batch ({'; '.join(parts)}) and learning rate $\eta$:"
    )
    return "\n".join([head, "", *(f"* {EQUATIONS[n]}" for n in names)])


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
    """mean, std, median, min, max over the last axis (the S seeds). std is the sample
    standard deviation sqrt(sum_s (a_s - mean)^2 / (S - 1)); for S = 1 it is undefined: nan
    (a spread of 0 would claim a precision one seed cannot show)."""
    a = np.asarray(a, dtype=float)
    n = a.shape[-1]
    with np.errstate(invalid="ignore"):  # an inf (a diverged run): its std is nan, silently
        std = np.std(a, axis=-1, ddof=1) if n > 1 else np.full(a.shape[:-1], np.nan)
    return {
        "mean": np.mean(a, axis=-1),
        "std": std,
        "median": np.median(a, axis=-1),
        "min": np.min(a, axis=-1),
        "max": np.max(a, axis=-1),
    }


def summarize(result: StudyResult) -> dict[str, dict[str, Any]]:
    """Per optimizer: the chosen learning rate and the seed statistics of every final metric
    (and of the steps to the target loss) at that rate, plus timings. Plain Python values.

    ``status`` is "chosen", or :data:`~nnjax.compare.select.NO_RATE` when every rate diverged
    (:func:`best_index` is None): then ``best_lr`` and ``best_index`` are None, every
    statistic is nan (null in the JSON) and ``diverged`` counts the diverged runs of all
    rates; otherwise ``diverged`` counts those of the chosen rate."""
    return {
        name: _summary_entry(runs, best_index(runs, result.study.select), result)
        for name, runs in result.runs.items()
    }


def _summary_entry(runs: OptimizerRuns, b: int | None, result: StudyResult) -> dict[str, Any]:
    """One optimizer's summary at chosen rate index ``b`` (None: no rate converged)."""
    L, S = runs.step_loss.shape[:2]
    entry: dict[str, Any] = {
        "best_lr": None if b is None else float(runs.learning_rates[b]),
        "best_index": b,
        "status": NO_RATE if b is None else "chosen",
        "batch_size": runs.batch_size,
        "steps_per_epoch": runs.steps_per_epoch,
        "updates": runs.steps_per_epoch * result.study.epochs,
        "compile_time_s": runs.compile_time,
        "run_time_s": runs.run_time,
        "run_time_per_run_s": runs.run_time / L / S,
        "diverged": int(diverged(runs).sum() if b is None else diverged(runs)[b].sum()),
    }
    for m in FINAL_METRICS:
        stats = seed_stats(final(runs, m)).items()
        entry[m] = {k: float("nan") if b is None else float(v[b]) for k, v in stats}
    if b is None:
        entry["steps_to_target"] = {"median": float("nan"), "reached": 0, "values": [None] * S}
        return entry
    steps = steps_to_target(runs, result.study.target_loss)[b]
    reached = np.isfinite(steps)
    entry["steps_to_target"] = {
        "median": float(np.median(steps)) if reached.all() else float("nan"),
        "reached": int(reached.sum()),
        "values": [None if np.isnan(s) else int(s) for s in steps],
    }
    return entry


def _device() -> str:
    import jax

    d = jax.devices()[0]
    kind = "" if d.device_kind == d.platform else f" ({d.device_kind})"
    return f"{d.platform.upper()}{kind}"


def _f(x: float, digits: int = 4) -> str:
    """``x`` in ``digits`` decimals; a value that is not finite as itself (nan, inf): the
    "diverged" column counts the diverged runs (a run with an infinite validation loss and a
    finite training loss has not diverged, and its row said "diverged" beside 0/S)."""
    return str(float(x)) if not np.isfinite(x) else f"{x:.{digits}f}"


def _pm(stats: dict, digits: int = 4) -> str:
    """``mean ± std``; the std of a single seed is undefined: ``± n/a``; a mean that is not
    finite: that value alone (:func:`_f`)."""
    if not np.isfinite(stats["mean"]):
        return _f(stats["mean"])
    std = "n/a" if np.isnan(stats["std"]) else f"{stats['std']:.{digits}f}"
    return f"{stats['mean']:.{digits}f} ± {std}"


def _percent(fraction: float) -> str:
    """``fraction`` as a percentage to 3 significant digits: 0.2 is 20%, 0.125 12.5% and
    0.003 0.3% (``:.0%`` wrote 12% and 0%, the latter beside the examples held out)."""
    return f"{fraction * 100:.3g}%"


def _lr(x: float) -> str:
    return f"{x:.3g}"


def markdown(result: StudyResult, summary: dict | None = None, plots: tuple[str, ...] = ()) -> str:
    """The report: setup, the best-learning-rate table, every learning rate, plots, equations."""
    summary = summary or summarize(result)
    lines = [f"# Optimizer comparison on `{result.study.dataset}`", ""]
    if result.stopped:  # StudyResult.stopped: the optimizers the study lacks
        kept = ", ".join(result.runs)
        lines += [f"**Incomplete: {result.stopped}.** The results are those of {kept}.", ""]
    lines += _setup(result)
    lines += _best_table(result, summary) + _timing(result) + _every_rate_table(result, summary)
    lines += _literature(result, summary)
    if plots:
        lines += ["", "## Plots", ""]
        lines += [f"![{p}]({p})" for p in plots]
    lines += ["", "## Update equations", "", _equations(result), ""]
    return "\n".join(lines)


def _equations(result: StudyResult) -> str:
    """:func:`update_equations` of the optimizers run, each batch as it was run."""
    full = [n for n, r in result.runs.items() if r.batch_size is None]
    return update_equations(list(result.runs), full)


def computed_dtype(result: StudyResult) -> str:
    """The dtype the runs computed in: float32, or float64 under ``jax_enable_x64`` (the
    initial weights are drawn in it, so the numbers differ from a float32 study's)."""
    dtypes = {np.asarray(r.step_loss).dtype for r in result.runs.values()}
    return str(max(dtypes, key=lambda d: d.itemsize)) if dtypes else "float32"


def _setup(result: StudyResult) -> list[str]:
    """The bullet list: model, data, epochs and batches, seeds, rates, how a rate is chosen."""
    st, sz = result.study, result.sizes
    _, _, crit = CRITERIA[st.select]
    val_where = (
        f"a held-out validation split ({sz['n_val']} examples, {_percent(st.val_fraction)} of the "
        "training split, stratified)"
        if result.held_out_val
        else "the fit set itself (no held-out split: "
        + ("this dataset is too small to split)" if st.dataset in NO_SPLIT else "val_fraction 0)")
    )
    split_off = "; the validation part is split off the training split"
    split_off = split_off if result.held_out_val else ""
    batches = ", ".join(
        f"{n}: {'full batch' if r.batch_size is None else r.batch_size} "
        f"({r.steps_per_epoch} update{'s' if r.steps_per_epoch > 1 else ''}/epoch)"
        for n, r in result.runs.items()
    )
    rates = "; ".join(
        f"{n}: {', '.join(_lr(x) for x in r.learning_rates)}" for n, r in result.runs.items()
    )
    dtype = computed_dtype(result)
    return [
        f"* Model: `{result.model_name}`, softmax cross-entropy"
        + ("" if dtype == "float32" else f", in {dtype}")
        + f"; {sz['n_features']} feature"
        f"{'' if sz['n_features'] == 1 else 's'}, {sz['n_classes']} classes.",
        f"* Data: {sz['n_fit']} fit / {sz['n_val']} validation / {sz['n_test']} test examples "
        f"(data seed {st.data_seed}{split_off}).",
        f"* {st.epochs} epoch{'' if st.epochs == 1 else 's'}; batch size: {batches}.",
        f"* Seeds {', '.join(map(str, st.seeds))} (each seed fixes the initial weights and the "
        "shuffles; the same seeds for every learning rate and optimizer)."
        + (
            " 1 seed: no spread (a standard deviation needs 2 seeds; the ± columns read n/a)."
            if len(st.seeds) == 1
            else ""
        ),
        f"* Learning rates: {rates}",
        f"* **Learning-rate choice**: per optimizer, the rate with the {crit} (mean over seeds, "
        f"after the last epoch) on {val_where}. The test split is never used to choose.",
        f"* **Diverged**: a run whose loss became nan/inf, or whose final training loss on the "
        f"fit set exceeds {DIVERGENCE_FACTOR:g}x its initial loss (the loss of "
        "its first batch at the initial weights, about log K for K classes: ten times the loss "
        "of a uniform guess is a blown-up run, not a slow one). A diverged run never wins the "
        "learning-rate choice; the last table counts them. An optimizer whose every rate has a "
        f'diverged run has no chosen rate, and the tables say "{NO_RATE}".',
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
        times = f"| {s['run_time_per_run_s'] * 1e3:.1f} ms | {s['compile_time_s']:.1f} s |"
        if s["best_lr"] is None:
            lines.append(f"| {name} | {NO_RATE} " + "| - " * 6 + times)
            continue
        stt = s["steps_to_target"]
        steps = (
            f"{stt['median']:.0f} ({stt['reached']}/{n_seeds})"
            if np.isfinite(stt["median"])
            else f"not all ({stt['reached']}/{n_seeds})"
        )
        lines.append(
            f"| {name} | {_lr(s['best_lr'])} | {_pm(s['train_loss'])} | {_pm(s['val_loss'])} "
            f"| {_pm(s['test_loss'])} | **{_pm(s['test_accuracy'])}** "
            f"| {_f(s['test_accuracy']['median'])} | {steps} " + times
        )
    return lines


def _timing(result: StudyResult) -> list[str]:
    """What the time columns mean, and the whole study's compile and run time."""
    compile_s = sum(r.compile_time for r in result.runs.values())
    run_s = sum(r.run_time for r in result.runs.values())
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    whole = "The optimizers that finished" if result.stopped else "Whole study"
    return [
        "",
        "Run time / run: the compiled run time of all runs of the optimizer (trained together, "
        f"vmapped) divided by their number; compile time apart. {whole}: compile "
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
            mark = " (chosen)" if b is not None and i == b else ""
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
    ok = {n: a for n, a in acc.items() if np.isfinite(a) and summary[n].get("status") != NO_RATE}
    each = ", ".join(f"{n} {a:.1%}" if n in ok else f"{n}: {NO_RATE}" for n, a in acc.items())
    if not ok:
        here = f"here: none, {NO_RATE} for any optimizer ({each})."
    else:
        best = max(ok, key=ok.get)
        here = f"here, **{ok[best]:.1%}** ({best} at its chosen rate; {each})."
    return [
        "",
        "## Against the literature",
        "",
        f"Published: {cite}. The MLP's **{figure:.0%}** against nnjax's best mean test accuracy "
        + here,
        "",
        differences,
    ]
