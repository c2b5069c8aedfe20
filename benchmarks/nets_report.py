"""The CNN and GRU workloads (:mod:`benchmarks.nets`) in the report: their targets, a
terminal table and a Markdown section.

Targets (issue 14), for each model at batch 100, ratios of medians from one run, with the
min-max of the per-round (paired) ratios:

* nnjax's training as ``fit`` runs it (``execution="auto"``) >= 1.5x PyTorch eager:
  ``t_torch / t_fit``;
* >= 0.95x the faster of the hand-written per-step jit and the hand-written scan:
  ``min(t_jit, t_scan) / t_fit``, per round the faster of the two in that round.
"""

import numpy as np

from benchmarks.harness import paired_ratios
from benchmarks.targets import verdict, why_unmeasured

HEADER = [
    "implementation",
    "ms/step (median)",
    "min-max ms/step",
    "time / nnjax fit",
    "8000 steps, s",
    "compile s",
    "first loss",
    "loss err vs twin (steps checked)",
    "whole run vs",
]


def _times(row, steps):
    return [t / steps for t in row["time"]["times"]]


def _ratio(cfg, others: list[str]):
    """time(faster of ``others``, per round) / time(fit's auto mode): median and paired
    min-max; None when a row is missing or a time is no measurement
    (:func:`benchmarks.targets.why_unmeasured`)."""
    rows, mine = cfg["rows"], f"nnjax_{cfg['auto']}"
    if why_unmeasured(rows, [*others, mine]):
        return None
    rounds = [min(ts) for ts in zip(*(rows[o]["time"]["times"] for o in others))]
    # the median of the same per-round minima the interval pairs (the faster median alone
    # could fall outside its own interval: 10.00x [1.00-5.00])
    best = float(np.median(rounds))
    return best / rows[mine]["time"]["median"], paired_ratios(rounds, rows[mine]["time"]["times"])


def _target(nets, text, others, threshold, side=None):
    vals, parts, unmeasured = [], [], []
    for cfg in nets:
        r = _ratio(cfg, others)
        if r is None:
            why = why_unmeasured(cfg["rows"], [*others, f"nnjax_{cfg['auto']}"])
            unmeasured.append(f"{cfg['model']} B={cfg['batch_size']} ({why})")
            continue
        vals.append(r[0])
        s = _ratio(cfg, [side]) if side else None
        parts.append(
            f"{cfg['model']} B={cfg['batch_size']} (fit runs it {cfg['auto']}): "
            f"{r[0]:.2f}x [{r[1]['min']:.2f}-{r[1]['max']:.2f}]"
            + (f" (PyTorch with 1 thread: {s[0]:.2f}x)" if s else "")
        )
    return verdict(text, parts, vals, threshold, unmeasured)


def targets(results: dict) -> list[dict]:
    nets = results.get("nets") or []
    if not nets:
        return []
    return [
        _target(
            nets,
            "CNN/GRU: nnjax fit >= 1.5x PyTorch eager, batch 100",
            ["torch"],
            1.5,
            side="torch_1thread",
        ),
        _target(
            nets,
            "CNN/GRU: nnjax fit >= 0.95x the faster of the hand-written per-step jit and scan",
            ["pure_jax", "pure_jax_scan"],
            0.95,
        ),
    ]


def rows(cfg: dict) -> list[list[str]]:
    """One line per implementation: the columns of :data:`HEADER`."""
    base = cfg["rows"].get(f"nnjax_{cfg['auto']}", {}).get("step_ms")
    out = []
    for name, r in cfg["rows"].items():
        per = _times(r, cfg["steps"])
        check = r.get("check")
        label = r["label"] + (" (= fit, auto)" if name == f"nnjax_{cfg['auto']}" else "")
        out.append(
            [
                label,
                f"{r['step_ms']:.3f}",
                f"{1e3 * min(per):.3f}-{1e3 * max(per):.3f}",
                f"{r['step_ms'] / base:.2f}" if base else "n/a",
                f"{r['recipe_s']:.1f}",
                f"{r['compile_s']:.2f}",
                f"{r['first_loss']:.6f}",
                f"{check['max_loss_rel_err']:.1e} ({check['steps_checked']})",
                _whole(check),
            ]
        )
    return out


def _whole(check: dict) -> str:
    """The whole run's check: against the twin, or fit's against the hand-written step."""
    for key, what in (("whole_run_vs_twin", "twin"), ("whole_run_vs_hand_jax", "JAX step")):
        if key in check:
            c = check[key]
            loss, params = c["max_loss_rel_err"], c["max_param_err_vs_moved"]
            return f"{what}: loss {loss:.0e}, params {params:.0e}"
    return "-"


def title(cfg: dict) -> str:
    return (
        f"{cfg['model'].upper()}, batch {cfg['batch_size']}, {cfg['steps']} steps on "
        f"{cfg['n_examples']} MNIST-1D examples ({cfg['optimizer']}); fit's auto mode: "
        f"{cfg['auto']}"
    )


def print_terminal(results: dict, console) -> None:
    from rich.markup import escape
    from rich.table import Table

    for cfg in results.get("nets") or []:
        t = Table(title=escape(title(cfg)))
        for h in HEADER:
            t.add_column(h, justify="left" if h == "implementation" else "right")
        for row in rows(cfg):
            t.add_row(*map(escape, row))  # plain text, as in benchmarks.report
        console.print(t)
        for name, note in cfg["skipped"].items():
            console.print(f"  skipped {name}: {note}", markup=False)


def markdown(results: dict, table) -> list[str]:
    """The section's lines; ``table(header, rows)`` renders a Markdown table."""
    nets = results.get("nets") or []
    if not nets:
        return []
    L = ["## CNN and GRU training (the MNIST-1D paper's models, Adam 1e-2)", "", METHOD, ""]
    for cfg in nets:
        L += [f"### {title(cfg)}", ""]
        L += table(HEADER, rows(cfg))
        for name, note in cfg["skipped"].items():
            L += [f"Skipped {name}: {note}", ""]
    return L


METHOD = """\
Every row trains the same initial params (nnjax's init, converted exactly) on the batches
`nnjax.fit` draws, and is checked before it is timed: its first loss against nnjax's to 1e-5
relative, its losses against the NumPy twin's to 3e-4 relative and, in a run of at most 8
steps, its params to 5% of their movement. Adam at lr 1e-2 amplifies float32 rounding ~10x
every 3-4 steps (the hand-written JAX CNN step vs the twin: 6e-8 at step 0, 3e-5 at step 8,
6e-3 at step 32), so a longer run is checked against the twin on the losses of its first 8
steps, and fit's
loops on the whole run (loss, params relative to their movement) against the hand-written
JAX step, which rounds like them. Equinox's and Flax's GRU cells merge the r/z biases
(b_i + b_h), so their GRU runs leave the others' after the first Adam update: checked on the
first loss only.
"nnjax fit, fused / chunked / per_step" is `fit`'s own loop in each execution mode (built as
`fit` builds it, run by its driver); "(= fit, auto)" marks the one `execution="auto"` picks.
ms/step = the median run / its steps; "8000 steps" = 8000 x that (the paper's
recipe), compile time apart (first call minus the median)."""
