"""A comparison's files: the per-run CSV, the JSON of the study and its summary, the
Markdown report and the plots, each rendered in memory first and then written atomically, so
an interrupted or failing write never leaves a part of a new comparison beside an old one."""

import csv
import io
import json
import os
from typing import Any

import numpy as np

from nnjax.compare.plot import PLOTS
from nnjax.compare.report import (
    FINAL_METRICS,
    computed_dtype,
    markdown,
    steps_to_target,
    summarize,
)
from nnjax.compare.select import best_index, diverged, final
from nnjax.compare.study import StudyResult
from nnjax.errors import broken_link
from nnjax.io import atomic_write_bytes, atomic_write_files


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
                    "chosen_lr": summary_best[name] is not None and i == summary_best[name],
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
    """JSON has no nan/inf: they become null. Finite values keep every digit, as runs.csv
    does (rounding to 7 decimals wrote a learning rate of 1e-8 as 0.0, and a chosen rate no
    longer equal to any of the study's)."""
    x = float(x)
    return x if np.isfinite(x) else None


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
        "seeds": [int(s) for s in st.seeds],
        "epochs": int(st.epochs),
        "batch_size": int(st.batch_size),
        # as run: gd, and any optimizer whose batch held the whole fit set
        "full_batch": [n for n, r in result.runs.items() if r.batch_size is None],
        "val_fraction": float(st.val_fraction),
        "held_out_val": result.held_out_val,
        "target_loss": float(st.target_loss),
        "select": st.select,
        "data_seed": int(st.data_seed),
        "dtype": computed_dtype(result),  # float64 where jax_enable_x64 was on
        **{k: int(v) for k, v in result.sizes.items()},
        "stopped": result.stopped,  # None: every optimizer asked for is here
    }

    def clean_tree(x):
        if isinstance(x, dict):
            return {k: clean_tree(v) for k, v in x.items()}
        if isinstance(x, list):
            return [clean_tree(v) for v in x]
        return _clean(x) if isinstance(x, float) else x

    return {"study": study, "summary": clean_tree(summary), "runs": runs_out}


def csv_text(rows: list[dict[str, Any]]) -> str:
    """``rows`` as CSV text (None as an empty cell)."""
    buf = io.StringIO(newline="")
    w = csv.DictWriter(buf, fieldnames=list(rows[0]))
    w.writeheader()
    w.writerows({k: ("" if v is None else v) for k, v in r.items()} for r in rows)
    return buf.getvalue()


def write_csv(path: str, rows: list[dict[str, Any]]) -> None:
    """``rows`` as CSV, written atomically (:func:`nnjax.io.atomic_write_bytes`)."""
    atomic_write_bytes(path, csv_text(rows).encode("utf-8"))


def check_out(out) -> str:
    """The output folder ``out`` as a path, checked before a study trains: a folder, or a
    path that can be made one (its nearest existing parent a writable folder). A ValueError
    names what is wrong; the study would otherwise train, then fail to write."""
    path = os.fspath(out) if isinstance(out, str | os.PathLike) else None
    if not isinstance(path, str) or not path:
        raise ValueError(f"compare: out must be a folder path (a str), got {out!r}")
    if os.path.exists(path) and not os.path.isdir(path):
        raise ValueError(
            f"compare: out {path!r} is an existing file, not a folder; give a folder for the "
            "report (it is made if missing)"
        )
    parent = os.path.abspath(path)
    while not os.path.exists(parent):
        if (link := broken_link(parent)) is not None:  # os.makedirs: "File exists", after training
            raise ValueError(f"compare: out {path!r} cannot be made: {parent!r} {link[0]}")
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        raise ValueError(f"compare: out {path!r} cannot be made: {parent!r} is a file")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ValueError(f"compare: out {path!r}: the folder {parent!r} is not writable")
    return path


def render(result: StudyResult, *, plots: bool = True) -> dict[str, tuple[str, bytes]]:
    """Every output file's contents, made in memory: {kind: (file name, bytes)}, in the
    order they are written (runs.csv, runs.json, the PNGs, report.md last). A value that
    cannot be serialised raises here, before any file is touched."""
    summary = summarize(result)
    files = {
        "csv": ("runs.csv", csv_text(run_rows(result)).encode("utf-8")),
        "json": (
            "runs.json",
            json.dumps(to_json(result, summary), separators=(",", ":")).encode("utf-8"),
        ),
    }
    if plots:
        from nnjax.compare.plot import render_plots

        files.update(render_plots(result))
    pngs = tuple(name for name, _ in files.values() if name.endswith(".png"))
    files["report"] = ("report.md", markdown(result, summary, pngs).encode("utf-8"))
    return files


# every file write_report writes into ``out`` or removes there (render's names, in its order;
# nnjax.commands.compare.OUT_FILES is a light copy, which a test keeps equal): ``compare``
# refuses an ``out`` holding any of them unless overwrite=True (``nnjax compare``: --overwrite)
OUT_FILES = ("runs.csv", "runs.json", *(f"{name}.png" for name in PLOTS), "report.md")


def report_names(plots: bool = True) -> tuple[list[str], tuple[str, ...]]:
    """The files :func:`write_report` writes into its folder, and those it removes there
    (the PNGs, with ``plots=False``)."""
    pngs = tuple(f"{name}.png" for name in PLOTS)
    return [n for n in OUT_FILES if plots or n not in pngs], () if plots else pngs


def check_kept(out: str, *, plots: bool = True, overwrite: bool = False) -> None:
    """A ValueError when the folder ``out`` holds a file that :func:`write_report` would
    replace (a name of :data:`OUT_FILES`; with ``plots=False`` not the PNGs) or remove (the
    PNGs, with ``plots=False``), unless ``overwrite``: the message names the folder, the
    files and ``overwrite=True``. A name counts whatever it is (a file, a link, a folder),
    whether an earlier comparison wrote it or the user did: nothing saved under a name
    compare uses is lost without ``overwrite=True``, the rule of ``nnjax compare``, which
    refuses such an ``--out`` unless ``--overwrite``. Reads only."""
    if overwrite:
        return
    writes, removes = report_names(plots)
    replaced, removed = ([n for n in names if os.path.lexists(os.path.join(out, n))]
                         for names in (writes, removes))  # fmt: skip
    if not replaced and not removed:
        return
    what = []
    if replaced:
        what.append(f"{', '.join(replaced)}, which compare would replace with its own")
    if removed:
        what.append(f"{', '.join(removed)}, which {'it' if replaced else 'compare'} would remove")
    verb = " and ".join(v for v, names in (("replace", replaced), ("remove", removed)) if names)
    them = "it" if len(replaced) + len(removed) == 1 else "them"
    raise ValueError(
        f"compare: out {out!r} already holds {', and '.join(what)}: pass overwrite=True to "
        f"{verb} {them}, or choose another out"
    )


def write_report(result: StudyResult, out: str, *, plots: bool = True) -> dict[str, str]:
    """Write report.md, runs.csv, runs.json and (``plots=True``) the PNGs into ``out``.

    All contents are made first (:func:`render`); then all files are written in full to
    temporary files in ``out`` and only then renamed over the old ones
    (:func:`nnjax.io.atomic_write_files`), so a full disk or a kill while writing leaves the
    earlier comparison's files as they were. Files of an earlier comparison in
    ``out`` are replaced; with ``plots=False`` its PNGs (only compare's own names,
    :data:`nnjax.compare.plot.PLOTS`) are removed, so no stale figure sits beside the new
    report. No other file in ``out`` is touched. This low-level writer does not ask:
    :func:`nnjax.compare.compare` refuses such an ``out`` unless ``overwrite=True``
    (:func:`check_kept`; call it first to keep the same rule). Returns {kind: path}."""
    from nnjax.layers.checks import flag

    out = check_out(out)
    plots = flag("write_report", "plots", plots)  # "no" wrote the plots
    return write_checked(result, out, plots=plots)


def write_checked(result: StudyResult, out: str, *, plots: bool = True) -> dict[str, str]:
    """:func:`write_report` into a folder ``out`` checked (:func:`check_out`) before the
    study ran: one that changed since (made a file or a link to nothing, made read-only, or
    a folder on its way made a file) fails as an ``OSError``, which
    :func:`nnjax.rescue.write_or_rescue` answers by writing the files to a temporary folder
    (check_out's ValueError there lost the study, exit 2). One removed since, with its
    parents or not, is made again, as a missing ``out`` is."""
    from nnjax.errors import not_a_folder

    if (error := not_a_folder(out, "the output folder")) is not None:
        raise error  # os.makedirs: a bare "File exists"
    files = render(result, plots=plots)
    os.makedirs(out, exist_ok=True)
    paths = {kind: os.path.join(out, name) for kind, (name, _) in files.items()}
    atomic_write_files([(paths[kind], data) for kind, (_, data) in files.items()])
    if not plots:
        for name in PLOTS:
            stale = os.path.join(out, f"{name}.png")
            if os.path.isfile(stale) or os.path.islink(stale):
                os.remove(stale)
    return paths
