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
    """``mean ± std`` in points; the std of a single run is undefined: ``n/a`` (was "nan")."""
    std = "n/a" if np.isnan(s["std"]) else f"{scale * s['std']:.1f}"
    return f"{scale * s['mean']:.1f} ± {std}"


ACCURACY_RANGE, DIFFERENCE_RANGE = (0.0, 100.0), (-100.0, 100.0)
"""The values an accuracy (%) and a difference of two (points) can take."""
CUT = "†"
"""Marks an interval cut at its range (:func:`_ci`); :data:`CUT_NOTE` explains it."""
CUT_NOTE = (
    f"{CUT}: the 95% t interval mean ± t_(0.975, n-1) s / sqrt(n) reaches past the values it "
    "can take (an accuracy 0-100 %, a difference ±100 points), as one from few runs can; "
    "shown cut at that range (results.json keeps lo and hi uncut)."
)


def _ci(s: dict, scale: float = 100.0, bounds: tuple = ACCURACY_RANGE) -> str:
    """``[lo, hi]``, the 95% t interval of ``s`` in points: ``n/a`` for a single run (no
    spread; was "[nan, nan]"), cut at ``bounds`` and marked :data:`CUT` where it reaches past
    them (2 runs of joint training printed an accuracy interval of [51.1, 121.7])."""
    if np.isnan(s["ci"]):
        return "n/a"
    lo, hi = scale * s["lo"], scale * s["hi"]
    if lo >= bounds[0] and hi <= bounds[1]:
        return f"[{lo:.1f}, {hi:.1f}]"
    return f"[{max(lo, bounds[0]):.1f}, {min(hi, bounds[1]):.1f}]{CUT}"


def _p(p: float) -> str:
    """A p-value in the table: 2 significant digits, "<1e-4" below 1e-4, "n/a" when it is nan
    (the test is undefined, e.g. for 1 run: it is not significant)."""
    if np.isnan(p):
        return "n/a"
    return f"{p:.2g}" if p >= 1e-4 else "<1e-4"


_CLASS_FWT = (
    " FWT: in class-incremental learning a class never trained is not predicted (R_{j-1,j} ~ 0),"
    " so FWT is about minus the untrained network's accuracy, the same in every row."
)


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
    seeds = f"{res['n_seeds']} seed" + ("s" if res["n_seeds"] > 1 else "")
    runs = f"{n} paired runs" if n > 1 else "1 run (a std, CI or test needs 2: n/a below)"
    lines = [f"**Incomplete: {res['stopped']}.**", ""] if res.get("stopped") else []
    lines += [
        f"{res['dataset']} ({scen}, 5 tasks): test split, class orders "
        f"{','.join(map(str, res['orders']))} x {seeds} = {runs}. "
        "Accuracies in %: mean ± sample std (ddof 1), 95% CI of the mean (Student's t). "
        "Diverged: runs whose wake loss or final params became nan/inf, scored as they ended. "
        "Final accuracy: on all test examples after the last task (tasks weighted by their "
        "test examples: nnjax.brain.scores)."
        + (_CLASS_FWT if res.get("scenario") == "class" else ""),
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
    if any(CUT in line for line in lines):
        lines += ["", CUT_NOTE]
    lines += ["", "Hyperparameters:"]
    for r in rows:
        lines.append(f"- {LABELS.get(r, r)}: {_hp_text(res['hp'].get(r))} ({res['hp_source'][r]})")
    return "\n".join(lines)


def _paired_lines(st: dict, rows) -> list:
    """The paired table over the runs, or one line saying why there is none: every row is
    compared with sequential and with SRC, and a study without either beside another row
    (``--methods sequential``, ``--methods ewc,si``) printed a table of dashes."""
    if not any(f"vs_{ref}" in st[r] for r in rows for ref in ("sequential", "src")):
        return ["", "No paired comparison: each method is compared with sequential and with "
                "SRC, and this study ran neither of them beside another method."]  # fmt: skip
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
    """Difference (its t interval), p (t), p (Wilcoxon), better/worse; the t-test of a
    single pair is ``n/a`` whatever its difference (a tied pair printed p = 1, a nonzero one
    n/a); the signed-rank p of one nonzero pair is its exact value, 1."""
    d = c["diff"]
    p_t = c["p_t"] if d["n"] > 1 else np.nan
    diff = f"{100 * d['mean']:+.1f} {_ci(d, bounds=DIFFERENCE_RANGE)}"
    return [diff, _p(p_t), _p(c["p_wilcoxon"]), f"{c['wins']}/{c['losses']}"]


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
    share = (
        f"the {n_seeds} seeds of an order share its tasks, so their runs are not independent: "
        "each order's seeds averaged first, the orders the paired units"
        if n_seeds > 1
        else "1 seed per order: the orders are the runs"  # was "the 1 seeds of an order share"
    )
    lines = [
        "",
        f"Final accuracy over the {n_orders} class orders ({share}): difference in points "
        "with its 95% CI (t, "
        f"{n_orders - 1} df); two-sided paired t-test p and exact Wilcoxon signed-rank p over "
        f"the orders (3 digits; its smallest possible value is 2/2^{n_orders} = {low:g}); "
        "orders better / worse; ICC: intraclass correlation of the runs' differences within "
        "an order"
        + (" (n/a: 1 seed per order has no spread within an order)." if n_seeds < 2 else "."),
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
