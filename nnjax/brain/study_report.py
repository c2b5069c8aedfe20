"""The study's table and its progress lines (:mod:`nnjax.brain.study`)."""

import sys
import time

import numpy as np

from nnjax.brain.study import LABELS

SECONDS_PER_UNIT = 0.25
"""The study's cost model (``study.plan``) in seconds on a quiet 2-core machine: the first ETA,
before anything was measured."""


class Progress:
    """Progress lines with an ETA for the study's groups (``plan``: [(rows, cost), ...]).

    ``begin(rows)`` before a group, ``hook`` as the driver's hook (after each task), ``end``
    after it. The ETA is elapsed / done x remaining, with "done" counted in the cost model's
    units (a compile and each method's relative cost per run); before the first task ends it
    is the cost model times :data:`SECONDS_PER_UNIT`."""

    def __init__(self, plan, stream=None, clock=time.perf_counter):
        self.plan, self.stream, self.clock = list(plan), stream or sys.stderr, clock
        self.total = sum(c for _, c in self.plan)
        self.done, self.cost, self.index, self.t0 = 0.0, 0.0, 0, clock()

    def _print(self, text: str) -> None:
        print(text, file=self.stream, flush=True)

    def start(self, what: str) -> None:
        eta = _duration(self.total * SECONDS_PER_UNIT)
        self._print(f"{what}; ETA about {eta} (a quiet 2-core machine's; refined as it runs)")

    def begin(self, rows) -> None:
        self.index += 1
        self.cost = dict(self.plan)[tuple(rows)]
        labels = ", ".join(LABELS.get(r, r) for r in rows)
        self._print(f"[{self.index}/{len(self.plan)}] {labels}: compiling, then 1 line per task")

    def hook(self, report) -> None:
        done = self.done + self.cost * report.end / report.total
        elapsed = self.clock() - self.t0
        eta = elapsed / max(done, 1e-9) * (self.total - done)
        self._print(f"    task {report.end}/{report.total}  elapsed {_duration(elapsed)}  "
                    f"ETA {_duration(eta)}")  # fmt: skip

    def end(self, rows, seconds: float) -> None:
        self.done += self.cost


def _duration(s: float) -> str:
    s = max(0, round(s))
    return f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"


def _pm(s: dict, scale: float = 100.0) -> str:
    return f"{scale * s['mean']:.1f} ± {scale * s['std']:.1f}"


def _ci(s: dict, scale: float = 100.0) -> str:
    return f"[{scale * s['lo']:.1f}, {scale * s['hi']:.1f}]"


def _p(p: float) -> str:
    """A p-value in the table: 2 significant digits, "<1e-4" below 1e-4, "n/a" when it is nan
    (the test is undefined, e.g. for 1 run: it is not significant)."""
    if np.isnan(p):
        return "n/a"
    return f"{p:.2g}" if p >= 1e-4 else "<1e-4"


def format_table(res: dict) -> str:
    """The results table (Markdown): per row the final accuracy (mean ± sample std, 95% t
    interval), BWT, FWT, forgetting and just-learned accuracy (mean ± std), the runs whose
    wake loss became nan/inf (scored as they ended, counted in every statistic); then the paired
    comparisons with sequential and SRC over the runs and (with 2 or more class orders) over
    the orders (:func:`nnjax.brain.scores_clustered.paired_clustered`); then the
    hyperparameters used."""
    st, rows = res["stats"], list(res["rows"])
    n = len(res["orders"]) * res["n_seeds"]
    scen = "class-incremental" if res.get("scenario") == "class" else "domain-incremental"
    lines = [
        f"{res['dataset']} ({scen}, 5 tasks): test split, class orders "
        f"{','.join(map(str, res['orders']))} x {res['n_seeds']} seeds = {n} paired runs. "
        "Accuracies in %: mean ± sample std (ddof 1), 95% CI of the mean (Student's t). "
        "Diverged: runs whose wake loss or final params became nan/inf, scored as they ended.",
        "",
        "| method | final accuracy | 95% CI | BWT | FWT | forgetting | just-learned | diverged |",
        "|---|---|---|---|---|---|---|---|",
    ]
    diverged = res.get("diverged", {})
    for r in rows:
        s = st[r]
        fwt = _pm(s["fwt"]) if "fwt" in s else "-"
        lines.append(
            f"| {LABELS.get(r, r)} | {_pm(s['final'])} | {_ci(s['final'])} | {_pm(s['bwt'])} | "
            f"{fwt} | {_pm(s['forgetting'])} | {_pm(s['just_learned'])} | "
            f"{diverged.get(r, 0)}/{n} |"
        )
    lines += _paired_lines(st, rows)
    lines += _order_lines(st, rows, len(res["orders"]), res["n_seeds"])
    lines += ["", "Hyperparameters:"]
    for r in rows:
        lines.append(f"- {LABELS.get(r, r)}: {_hp_text(res['hp'].get(r))} ({res['hp_source'][r]})")
    return "\n".join(lines)


def _paired_lines(st: dict, rows) -> list:
    lines = [
        "",
        "Final accuracy, paired by (class order, seed): difference in points with its 95% CI; "
        "two-sided paired t-test p and Wilcoxon signed-rank p; runs better / worse (the "
        "rest tied: accuracies within 1e-6, the same number of test examples right).",
        "",
        "| method | − sequential | p (t) | p (Wilcoxon) | better/worse | − SRC | p (t) | "
        "p (Wilcoxon) | better/worse |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    return lines + _comparison_rows(st, rows, "", _run_cells)


def _run_cells(c: dict) -> list:
    d = c["diff"]
    return [f"{100 * d['mean']:+.1f} {_ci(d)}", _p(c["p_t"]), _p(c["p_wilcoxon"]),
            f"{c['wins']}/{c['losses']}"]  # fmt: skip


def _order_cells(c: dict) -> list:
    icc = "n/a" if np.isnan(c["icc"]) else f"{c['icc']:.2f}"
    return [*_run_cells(c)[:2], f"{c['p_wilcoxon']:.3g}", f"{c['wins']}/{c['losses']}", icc]


def _comparison_rows(st: dict, rows, suffix: str, cells_of) -> list:
    """One table row per method: ``cells_of`` its comparison ``vs_<ref><suffix>`` with
    sequential, then with SRC (dashes where there is none: a method against itself)."""
    lines = []
    for r in rows:
        cells = []
        for ref in ("sequential", "src"):
            c = st[r].get(f"vs_{ref}{suffix}")
            cells += cells_of(c) if c is not None else ["-"] * (4 + (suffix != ""))
        lines.append(f"| {LABELS.get(r, r)} | " + " | ".join(cells) + " |")
    return lines


def _order_lines(st: dict, rows, n_orders: int, n_seeds: int) -> list:
    """The paired table over the class orders (``vs_<ref>_orders``), or nothing when the
    study has a single order (no test over orders exists)."""
    if not any(f"vs_{ref}_orders" in st[r] for r in rows for ref in ("sequential", "src")):
        return []
    low = 2.0 ** (1 - n_orders)  # the exact signed-rank test's smallest two-sided p
    lines = [
        "",
        f"Final accuracy over the {n_orders} class orders (the {n_seeds} seeds of an order "
        "share its tasks, so their runs are not independent: each order's seeds averaged "
        "first, the orders the paired units): difference in points with its 95% CI (t, "
        f"{n_orders - 1} df); two-sided paired t-test p and exact Wilcoxon signed-rank p over "
        f"the orders (3 digits; its smallest possible value is 2/2^{n_orders} = {low:g}); "
        "orders better / worse; ICC: intraclass correlation of the runs' differences within "
        "an order.",
        "",
        "| method | − sequential | p (t) | p (Wilcoxon) | better/worse | ICC | − SRC | p (t) | "
        "p (Wilcoxon) | better/worse | ICC |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    return lines + _comparison_rows(st, rows, "_orders", _order_cells)


def _hp_text(hp) -> str:
    if hp is None:
        return "none"
    if isinstance(hp, list):
        return "; ".join(_hp_text(h) for h in hp)
    parts = []
    for k, v in sorted(hp.items()):
        v = np.atleast_1d(np.asarray(v, np.float64))
        parts.append(f"{k}=" + ",".join(f"{x:.3g}" for x in v))
    return ", ".join(parts)
