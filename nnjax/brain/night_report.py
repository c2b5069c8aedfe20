"""The README of ``nnjax night`` (:func:`report_markdown`) from its results: the night's
stage table, the consolidation's paired tables (mean and 95 % t interval, ddof = 1, of sleep,
quiet wake and their difference d = sleep - wake over seeds; the paired t-test's p), the replay
score and a verdict per comparison. Split from :mod:`nnjax.brain.night`, which re-exports
:func:`report_markdown`, :func:`verdict`, :func:`p_text` and :func:`replay_s`.
"""

import os

import numpy as np


def p_text(s: dict) -> str:
    """The paired t-test's p of ``s`` (consolidation's ``paired_stats``) for the README: 2
    significant digits, or, when it is nan, why there is no test: "n/a (every d = 0)" (sleep
    and quiet wake gave every seed the same value: before the conditions split, or a phase
    too short to change anything) or "n/a (nan value)" (a seed's value is not a number).
    A null of results.json (None) reads as NaN."""
    s = nan_for_null(s)
    p, d = s["t_test_p"], s["difference"]
    if np.isfinite(p):
        return f"{p:.2g}"
    return "n/a (every d = 0)" if d["mean"] == 0 and d["ci95"] == [0, 0] else "n/a (nan value)"


def verdict(s: dict) -> str:
    """One sentence on a paired comparison (sleep minus quiet wake); None reads as NaN."""
    s = nan_for_null(s)
    d, p = s["difference"], s["t_test_p"]
    lo, hi = d["ci95"]
    if not np.isfinite(p):  # no test: the README said "p = nan"
        diff = f"{d['mean']:+.3f} [{lo:.3f}, {hi:.3f}]"
        return f"no significant difference: {diff}, no test: p {p_text(s)}"
    if np.isfinite(p) and p < 0.05 and lo > 0:
        return f"sleep helped: +{d['mean']:.3f} [{lo:.3f}, {hi:.3f}], paired t p = {p:.2g}"
    if np.isfinite(p) and p < 0.05 and hi < 0:
        return f"sleep hurt: {d['mean']:.3f} [{lo:.3f}, {hi:.3f}], paired t p = {p:.2g}"
    return f"no significant difference: {d['mean']:+.3f} [{lo:.3f}, {hi:.3f}], paired t p = {p:.2g}"


def _fmt(s: dict) -> str:
    lo, hi = s["ci95"]
    return f"{s['mean']:.3f} [{lo:.3f}, {hi:.3f}]"


def _cell(x, fmt: str) -> str:
    """``x`` formatted, or "n/a" when it is not a finite number (a statistic with no data)."""
    return format(x, fmt) if x is not None and np.isfinite(x) else "n/a"


def _night_section(n: dict, stopped: str | None = None) -> list[str]:
    L = ["## The night", ""]
    if "epochs_run" in n:  # a night stopped before its end (nnjax night on a signal)
        k, epochs = n["epochs_run"], n["hypnogram"].split(",")
        by = f" by {stopped}" if stopped else ""
        L += [f"**Stopped{by} after {k} of its {len(epochs)} epochs** (`{','.join(epochs[:k])}`): "
              "what follows describes those epochs, the same numbers as a night of that "
              "hypnogram.", ""]  # fmt: skip
    L += [f"Hypnogram `{n['hypnogram']}`, epochs of {n['epoch_s']:g} s; {n['network']}. Each "
          "stage is described over its longest run, the first second after a transition left "
          "out. Slow fraction: the LFP proxy's power in 0.5-2 Hz over that from the first "
          f"non-zero Welch frequency to 100 Hz ({1 / _spectrum_s():g} Hz for "
          f"{_spectrum_s():g} s segments, 1/T for a stretch of T < {_spectrum_s():g} s, "
          "taken whole); Up/Down: "
          "`detect_updown` on the E rate; CV: median over E cells of the "
          "ISI coefficient of variation; correlation: mean Pearson correlation of spike counts "
          "in 5 ms windows over 2000 random pairs.", ""]  # fmt: skip
    head = ["stage", "s", "E rate (Hz)", "slow fraction", "peak < 4 Hz", "Up/Down (Hz)",
            "time Up", "CV ISI", "correlation"]  # fmt: skip
    L += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, d in n["stages"].items():
        cells = [("rate_exc_hz", ".2f"), ("slow_power_fraction", ".3f"),
                 ("peak_hz_below_4", ".2f"), ("updown_hz", ".2f"), ("up_fraction", ".2f"),
                 ("cv_isi_median", ".2f"), ("pairwise_correlation", ".3f")]  # fmt: skip
        row = [name, f"{d['seconds']:g}"] + [_cell(d[k], f) for k, f in cells]
        L.append("| " + " | ".join(row) + " |")
    if any(not np.isfinite(d["updown_hz"]) for d in n["stages"].values()):
        L += ["", "Up/Down n/a: fewer than two Down-to-Up transitions in the stretch, no "
              "alternation to time (a population that stays Up, or never goes Up)."]  # fmt: skip
    L += ["", "![hypnogram and spectrogram](night.png)", "", "![rasters](stages.png)", ""]
    return L


def replay_s(protocol: dict) -> float:
    """The seconds of NREM whose raster the replay is scored on: the first ``raster_s`` of
    the consolidation period, all of it when shorter (:mod:`nnjax.brain.consolidation`)."""
    return min(protocol["raster_s"], protocol["consolidation_s"])


def _consolidation_section(c: dict) -> list[str]:
    p, st = c["protocol"], c["stats"]
    L = ["## Consolidation: NREM sleep against quiet wake", ""]
    L += [f"{c['network']}; {st['recall']['after_learning']['S1']['n']} seeds (vmapped). "
          f"S1 = groups G0 -> ... -> G{p['n_groups'] - 1} of {p['group_size']} E cells, driven "
          f"{p['step_ms']:.0f} ms apart ({p['width_ms']:.0f} ms each, every {p['period_ms']:.0f} "
          f"ms) for {p['train_s']:g} s with pair STDP on the E->E weights; then "
          f"{p['consolidation_s']:g} s of NREM or of quiet wake (STDP on, no input); then S2 "
          f"(the reverse order) for "
          f"{p['interference_s']:g} s. Recall of a sequence: after a {p['cue_ms']:.0f} ms cue of "
          f"its first group, the fraction of the cells of each later group that fire within "
          f"{p['window_ms']:.0f} ms, minus that fraction in the {p['window_ms']:.0f} ms before "
          f"the cue, averaged over groups and {p['n_cues']} cues; tests in the wake state with "
          f"STDP off, after {p['settle_s']:g} s without input. Synaptic trace: mean forward minus "
          "mean backward weight between successive groups (nS). Means with 95 % CIs (t, "
          "ddof = 1); p: paired t-test (Wilcoxon signed-rank in results.json).", ""]  # fmt: skip
    for measure, unit in (("recall", ""), ("trace", " (nS)")):
        head = ["stage", "sequence", "sleep", "quiet wake", "sleep - wake", "p"]
        L += [f"**{measure}{unit}**", "", "| " + " | ".join(head) + " |", "|" + "---|" * 6]
        for stage, seqs in st[measure].items():
            for seq, s in seqs.items():
                row = [stage.replace("_", " "), seq, _fmt(s["a"]), _fmt(s["b"]),
                       _fmt(s["difference"]), p_text(s)]  # fmt: skip
                L.append("| " + " | ".join(row) + " |")
        L.append("")
    L += [_replay_line(st["replay_order_sleep"], p), ""]
    rec, tr = st["recall"], st["trace"]
    L += [
        "**Did sleep help?** S1 recall after the consolidation period: "
        + verdict(rec["after_consolidation"]["S1"])
        + ". S1 recall after the interfering sequence: "
        + verdict(rec["after_interference"]["S1"])
        + ". The synaptic trace of S1 (nS) after the consolidation period: "
        + verdict(tr["after_consolidation"]["S1"])
        + "; after the interfering sequence: "
        + verdict(tr["after_interference"]["S1"])
        + ".",
        "",
    ]
    L += ["![recall](recall.png)", "", "![replay](replay.png)", ""]
    return L


def _replay_line(r: dict, p: dict) -> str:
    """The README's sentence on the replay score ``r`` (:func:`replay_summary`; a results.json
    of before it has no ``n_scored``); "n/a" and why when no seed was scored (it printed
    "averaged: nan")."""
    tau, last, n = r["mean"], f"G{p['n_groups'] - 1}", len(r["values"])
    scored = r.get("n_scored", n)
    head = (f"Replay: in the first {replay_s(p):g} s of NREM, Kendall's tau between a group's "
            "place in S1 and its first spike after each Up-state onset, averaged")  # fmt: skip
    if not np.isfinite(tau):
        return (
            f"{head}: n/a (no seed of {n} had an Up state with 3 or more of the groups "
            "firing in that window: nothing to score; lengthen --consolidation-s)"
        )
    over = "" if scored == n else f" over the {scored} of {n} seeds with a scored Up state"
    return (f"{head}{over}: {tau:.2f} (+1: in every Up state the groups first fire in order "
            f"G0 -> {last}, though the lag of the detected onset keeps sweeps in order below "
            f"about 0.9; 0: no order; -1: {last} -> G0)"
            + (": the Up states ran through the groups mostly in reverse order, and pair STDP "
               "depresses a forward link G_k -> G_{k+1} when G_{k+1} fires first."
               if tau < -0.1 else "."))  # fmt: skip


def nan_for_null(obj):
    """``obj`` with every None, in dicts and lists at any depth, replaced by NaN: a
    results.json read back (``nnjax.brain.night.jsonable`` writes NaN as null). A night's
    results hold no other None."""
    if obj is None:
        return float("nan")
    if isinstance(obj, dict):
        return {k: nan_for_null(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [nan_for_null(v) for v in obj]
    return obj


def report_markdown(results: dict) -> str:
    """The README of ``nnjax night --out DIR``, from its results or their results.json, whose
    nulls (NaN written as strict JSON) print as NaN did: n/a."""
    results = nan_for_null(results)
    a = results["args"]
    L = ["# A network that sleeps", ""]
    flags = " ".join(f"--{k.replace('_', '-')} {','.join(v) if k == 'parts' else v}"
                     for k, v in a.items())  # fmt: skip
    L += [f"Generated by `nnjax night --out DIR {flags}`; wall time "
          f"{results.get('wall_s', 0):.0f} s, load average "
          f"{results.get('load_average', [0])[0]:.1f} at the end on {os.cpu_count()} cores "
          "(a load above the core count means the times were shared).", ""]  # fmt: skip
    if results.get("unfinished"):
        L += [_unfinished_line(results["unfinished"]), ""]
    skipped = "consolidation" in a.get("parts", ()) and "consolidation" not in results
    if results.get("stopped") and skipped:  # nnjax night stopped by a signal in the night
        L += [f"The consolidation part did not run: the run was stopped by {results['stopped']} "
              "in the night part.", ""]  # fmt: skip
    if "night" in results:
        L += _night_section(results["night"], results.get("stopped"))
    if "consolidation" in results:
        L += _consolidation_section(results["consolidation"])
    return "\n".join(L) + "\n"


def _unfinished_line(unfinished) -> str:
    """What a README written before the run's end (``nnjax night`` writes the night part's
    files before the consolidation part starts) says it lacks."""
    names = " and ".join(unfinished)
    return (f"**Unfinished run.** Written when the {names} part had not yet finished: a run "
            "that ends replaces these files with all of its results; one stopped before "
            f"(a signal, killed, out of memory) leaves them as they are, without the {names} "
            "part.")  # fmt: skip


def _spectrum_s() -> float:
    """nnjax.brain.night.SPECTRUM_S (imported when used: night imports this module)."""
    from nnjax.brain.night import SPECTRUM_S

    return SPECTRUM_S
